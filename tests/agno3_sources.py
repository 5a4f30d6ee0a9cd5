"""agno 1.8.4 sources the to-agno3 tests need beyond tests/agno_runner.py's.

- :func:`run_delegating_team_turn`: a coordinate-mode Team whose leader model
  calls agno 1.8.4's ``transfer_task_to_member`` tool, so its members really
  run and their runs land in the team session (``member_responses``).
- :func:`run_memory_v2_agent_turn`: an Agent on Memory v2 with a
  ``SqliteMemoryDb`` in the same file as its sessions table, so user memories
  are in agno 1.x's separate ``memory`` table.
- :func:`run_tool_call_turn`: an Agent whose model calls one tool, so its
  run holds a tool call with its time.

All run real agno 1.8.4 on canned models (no network).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agno.agent import Agent
from agno.memory.v2.db.base import MemoryDb
from agno.memory.v2.db.sqlite import SqliteMemoryDb
from agno.memory.v2.memory import Memory
from agno.memory.v2.schema import UserMemory
from agno.models.message import Message
from agno.models.response import ModelResponse
from agno.storage.base import Storage
from agno.storage.sqlite import SqliteStorage
from agno.team import Team

from devkit.fake_model import FakeModel, FakeReply

DELEGATE_TOOL = "transfer_task_to_member"


@dataclass
class DelegatingReply(FakeReply):
    """A canned reply that may carry tool calls (OpenAI's shape, which agno 1.8.4 runs)."""

    tool_calls: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class DelegatingModel(FakeModel):
    """A Team leader's canned model: on a new user turn it hands the task to ``members`` in turn.

    Each call whose last message is the user's (not a tool result) answers
    with one ``transfer_task_to_member`` call per member id (when the tool is
    offered); the call after the tool results answers with text, as
    :class:`FakeModel` does.
    """

    members: tuple[str, ...] = ()

    def _answer(self, messages: list[Message]) -> FakeReply:
        reply = super()._answer(messages)
        if not messages or messages[-1].role != "user" or not self.members:
            return reply
        task = messages[-1].get_content_string()
        turn = sum(1 for m in messages if m.role == "user" and not m.from_history)
        calls = [
            {
                "id": f"call-{len(self.calls)}-{i}",
                "type": "function",
                "function": {
                    "name": DELEGATE_TOOL,
                    "arguments": json.dumps(
                        {"member_id": member, "task_description": f"{member} task {turn}: {task}"},
                    ),
                },
            }
            for i, member in enumerate(self.members)
        ]
        return DelegatingReply(content="", tool_calls=calls)

    def parse_provider_response(self, response: Any, **kwargs: Any) -> ModelResponse:
        calls = getattr(response, "tool_calls", None)
        return ModelResponse(role="assistant", content=response.content or None, tool_calls=calls or [])


def run_delegating_team_turn(db_file: str, session_id: str, user_id: str, message: str) -> dict[str, Any]:
    """One turn of a coordinate Team (members Alpha and Beta) that delegates to both; what each model saw."""
    leader = DelegatingModel(prefix="team", members=("alpha", "beta"))
    alpha = FakeModel(prefix="alpha")
    beta = FakeModel(prefix="beta")
    storage = SqliteStorage(table_name="team_sessions", db_file=db_file, mode="team")
    team = Team(
        name="Pair",
        team_id="pair",
        mode="coordinate",
        members=[
            Agent(name="Alpha", agent_id="alpha", model=alpha, telemetry=False, monitoring=False),
            Agent(name="Beta", agent_id="beta", model=beta, telemetry=False, monitoring=False),
        ],
        model=leader,
        storage=storage,
        session_id=session_id,
        user_id=user_id,
        enable_team_history=True,
        num_history_runs=10,
        telemetry=False,
        monitoring=False,
    )
    try:
        response = team.run(message)
    finally:
        storage.db_engine.dispose()
    return {
        "content": response.content,
        "leader": leader.calls,
        "alpha": alpha.calls,
        "beta": beta.calls,
        "member_run_ids": [m.run_id for m in response.member_responses],
        "run_id": response.run_id,
    }


def _memory_stores(db: str) -> tuple[MemoryDb, Storage]:
    """agno 1.8.4's memory table and agent sessions table in one database: a SQLite file or a postgresql:// URL."""
    if db.startswith("postgres"):
        from agno.memory.v2.db.postgres import PostgresMemoryDb
        from agno.storage.postgres import PostgresStorage

        url = "postgresql+psycopg://" + db.partition("://")[2]
        return (
            PostgresMemoryDb(table_name="memory", db_url=url),
            PostgresStorage(table_name="agent_sessions", db_url=url, mode="agent"),
        )
    return (
        SqliteMemoryDb(table_name="memory", db_file=db),
        SqliteStorage(table_name="agent_sessions", db_file=db, mode="agent"),
    )


def run_memory_v2_agent_turn(db: str, session_id: str, user_id: str, message: str) -> dict[str, Any]:
    """One turn of an Agent on Memory v2 whose memories live in agno's memory table in the same database.

    ``SqliteMemoryDb`` for a file, ``PostgresMemoryDb`` (schema ``ai``) for a
    URL. The memory is added with agno's own ``Memory.add_user_memory`` (the
    canned model cannot run agno's memory manager), as a real app does
    through ``enable_agentic_memory`` or by hand.
    """
    memory_db, storage = _memory_stores(db)
    memory = Memory(db=memory_db)
    agent = Agent(
        name="Rememberer",
        agent_id="rememberer",
        model=FakeModel(prefix="agent"),
        memory=memory,
        storage=storage,
        session_id=session_id,
        user_id=user_id,
        add_history_to_messages=True,
        telemetry=False,
        monitoring=False,
    )
    try:
        response = agent.run(message)
        memory_id = memory.add_user_memory(
            UserMemory(memory=f"remembers: {message}", topics=["facts"], input=message), user_id=user_id
        )
    finally:
        storage.db_engine.dispose()  # type: ignore[attr-defined]
        memory_db.db_engine.dispose()  # type: ignore[attr-defined]
    return {"content": response.content, "memory_id": memory_id}


def run_tool_call_turn(db_file: str, session_id: str, user_id: str, message: str, *, history: bool = False) -> Any:
    """One turn of an Agent (``a``) whose model calls its one tool (``transfer_task_to_member``) once; its
    response (agno 1.8.4's ``RunResponse``). ``history``: the session's earlier turns are replayed to the model
    (``add_history_to_messages``); each turn's call has the same id, ``call-0-0``."""

    def lookup(member_id: str, task_description: str) -> str:
        """Look it up."""
        return f"found {task_description}"

    lookup.__name__ = DELEGATE_TOOL  # the tool DelegatingModel calls
    storage = SqliteStorage(table_name="agent_sessions", db_file=db_file, mode="agent")
    try:
        agent = Agent(
            agent_id="a",
            model=DelegatingModel(prefix="a", members=("kestrel",)),
            tools=[lookup],
            storage=storage,
            session_id=session_id,
            user_id=user_id,
            add_history_to_messages=history,
            telemetry=False,
            monitoring=False,
        )
        return agent.run(message)
    finally:
        storage.db_engine.dispose()  # type: ignore[attr-defined]


__all__ = [
    "DelegatingModel",
    "run_delegating_team_turn",
    "run_memory_v2_agent_turn",
    "run_tool_call_turn",
]
