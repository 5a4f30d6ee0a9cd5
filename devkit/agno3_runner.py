"""Run agno 3.1.10 on a migrated database: resume a session with a canned model, report what it saw.

Runs only under the agno 3 interpreter (devkit/agno3_env.py makes it)::

    .venv-agno3/bin/python devkit/agno3_runner.py KIND DB SESSION_ID USER_ID ENTITY_ID MESSAGE

KIND is agent, team or workflow; DB a SQLite file or a postgresql:// URL.
Prints one JSON object: the model's calls, the runs agno 3's ``get_session``
returns, the sessions ``get_sessions`` returns, the chat history and the
user's memories. ``AGNO3_MEMORIES=1`` puts the user's memories in the
agent's context (``add_memories_to_context``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from agno.agent import Agent
from agno.db.base import SessionType
from agno.models.base import Model
from agno.models.message import Message
from agno.models.response import ModelResponse
from agno.team import Team
from agno.workflow import Step, Workflow


@dataclass
class FakeModel3(Model):
    """Answers ``"<prefix> #<n>: <last user text>"`` and records the messages of every call."""

    id: str = "fake-model"
    name: str = "FakeModel"
    provider: str = "Fake"
    prefix: str = "reply"
    calls: list[list[dict[str, str]]] = field(default_factory=list)

    def __deepcopy__(self, memo: dict[int, Any]) -> FakeModel3:
        return self

    def _answer(self, messages: list[Message]) -> ModelResponse:
        seen = [{"role": m.role, "content": m.get_content_string()} for m in messages]
        self.calls.append(seen)
        last = next((m["content"] for m in reversed(seen) if m["role"] == "user"), "")
        return ModelResponse(role="assistant", content=f"{self.prefix} #{len(self.calls)}: {last}")

    def invoke(self, *args: Any, **kwargs: Any) -> ModelResponse:
        return self._answer(kwargs["messages"])

    async def ainvoke(self, *args: Any, **kwargs: Any) -> ModelResponse:
        return self._answer(kwargs["messages"])

    def invoke_stream(self, *args: Any, **kwargs: Any) -> Iterator[ModelResponse]:
        yield self._answer(kwargs["messages"])

    async def ainvoke_stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ModelResponse]:  # type: ignore[override]
        yield self._answer(kwargs["messages"])

    def _parse_provider_response(self, response: Any, **kwargs: Any) -> ModelResponse:
        return response  # type: ignore[no-any-return]

    def _parse_provider_response_delta(self, response: Any) -> ModelResponse:
        return response  # type: ignore[no-any-return]


def open_db(db: str) -> Any:
    if db.startswith("postgres"):
        from agno.db.postgres import PostgresDb

        return PostgresDb(db_url="postgresql+psycopg://" + db.partition("://")[2])
    from agno.db.sqlite import SqliteDb

    return SqliteDb(db_file=db)


def main(kind: str, db_url: str, session_id: str, user_id: str, entity_id: str, message: str) -> dict[str, Any]:
    db = open_db(db_url)
    model = FakeModel3(prefix=kind)
    session_type = {"agent": SessionType.AGENT, "team": SessionType.TEAM, "workflow": SessionType.WORKFLOW}[kind]
    before = db.get_session(session_id=session_id, session_type=session_type, deserialize=False)
    history: list[Any] = []
    if kind == "agent":
        agent = Agent(
            id=entity_id,
            model=model,
            db=db,
            session_id=session_id,
            user_id=user_id,
            add_history_to_context=True,
            num_history_runs=50,
            add_memories_to_context=os.environ.get("AGNO3_MEMORIES") == "1",
            telemetry=False,
        )
        agent.run(message)
        history = [m.to_dict() for m in agent.get_chat_history(session_id=session_id)]
    elif kind == "team":
        member = Agent(name="Alpha", id="alpha", model=FakeModel3(prefix="alpha"), telemetry=False)
        team = Team(
            id=entity_id,
            members=[member],
            model=model,
            db=db,
            session_id=session_id,
            user_id=user_id,
            add_history_to_context=True,
            num_history_runs=50,
            telemetry=False,
        )
        team.run(message)
        history = [m.to_dict() for m in team.get_chat_history(session_id=session_id)]
    else:
        step_agent = Agent(name="Chat", model=model, telemetry=False)
        flow = Workflow(
            id=entity_id,
            db=db,
            session_id=session_id,
            user_id=user_id,
            steps=[Step(name="chat", agent=step_agent)],
            add_workflow_history_to_steps=True,
            telemetry=False,
        )
        flow.run(input=message)
    after = db.get_session(session_id=session_id, session_type=session_type, deserialize=False)
    listed = db.get_sessions(session_type=session_type, deserialize=False)
    sessions, _total = listed if isinstance(listed, tuple) else (listed, len(listed))
    memories = db.get_user_memories(user_id=user_id)
    return {
        "memories": sorted((m.memory_id, m.memory, m.input, m.topics, m.created_at, m.updated_at) for m in memories),
        "calls": model.calls,
        "runs_before": len((before or {}).get("runs") or []),
        "runs_after": len((after or {}).get("runs") or []),
        "run_ids_before": [r.get("run_id") for r in (before or {}).get("runs") or []],
        "sessions": sorted(s["session_id"] for s in sessions),
        "session_runs": {s["session_id"]: len(s.get("runs") or []) for s in sessions},
        "history": [(m.get("role"), m.get("content")) for m in history],
        "summary": (after or {}).get("summary"),
        "metadata_keys": sorted(((after or {}).get("metadata") or {}).keys()),
        "session_data": (after or {}).get("session_data"),
    }


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:]), default=str))
