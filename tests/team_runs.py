"""Real agno 1.8.4 Teams whose leader calls tools from a script, and two-step v2 Workflows, on the fake model.

Used by tests/test_conversation.py to check where a team run's member runs
and system prompts land in ``history()``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agno.agent import Agent
from agno.models.message import Message as AgnoMessage
from agno.models.response import ModelResponse
from agno.team import Team
from agno.workflow.v2 import Step
from agno.workflow.v2 import Workflow as WorkflowV2

from devkit.fake_model import FakeModel, FakeReply
from tests.agno_runner import make_storage

#: One model turn of a script: the tool calls the leader makes in one assistant message, each (name, arguments).
Turn = list[tuple[str, dict[str, Any]]]


@dataclass
class ToolReply(FakeReply):
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ScriptedLeader(FakeModel):
    """Makes the script's tool calls, one step per model call of a run, then answers as FakeModel does.

    A step already taken in this run is an assistant message with tool
    calls that agno did not replay from an earlier run.
    """

    script: list[Turn] = field(default_factory=list)

    def _answer(self, messages: list[AgnoMessage]) -> FakeReply:
        reply = super()._answer(messages)
        taken = sum(1 for m in messages if m.role == "assistant" and m.tool_calls and not m.from_history)
        if taken >= len(self.script):
            return reply
        calls = [
            {
                "id": f"call-{len(self.calls)}-{i}",
                "type": "function",
                "function": {"name": n, "arguments": json.dumps(a)},
            }
            for i, (n, a) in enumerate(self.script[taken])
        ]
        return ToolReply(content="", tool_calls=calls)

    def parse_provider_response(self, response: Any, **kwargs: Any) -> ModelResponse:
        return ModelResponse(
            role="assistant", content=response.content or None, tool_calls=getattr(response, "tool_calls", [])
        )


def lookup(q: str) -> str:
    """Look something up (the leader's own tool)."""
    return f"lookup result for {q}"


def member(agent_id: str) -> Agent:
    return Agent(
        name=agent_id.title(),
        agent_id=agent_id,
        model=FakeModel(prefix=agent_id),
        instructions=f"{agent_id} rules",
        telemetry=False,
        monitoring=False,
    )


def run_team(db: str, session_id: str, mode: str, script: list[Turn], questions: list[str]) -> None:
    """One run per question of a fresh ``mode`` Team (members alpha and beta, the ``lookup`` tool) on ``db``.

    Each run rebuilds the team, so only storage carries its history; the
    leader replays earlier runs (``add_history_to_messages``).
    """
    leader = ScriptedLeader(prefix="lead", script=script)
    for question in questions:
        team = Team(
            name="Pair",
            team_id="pair",
            mode=mode,  # type: ignore[arg-type]
            model=leader,
            tools=[lookup],
            members=[member("alpha"), member("beta")],
            instructions="leader rules",
            storage=make_storage("ours", db, "team_sessions"),
            session_id=session_id,
            user_id="user-1",
            enable_team_history=True,
            add_history_to_messages=True,
            num_history_runs=10,
            telemetry=False,
            monitoring=False,
        )
        team.run(question)


def run_workflow_v2(db: str, session_id: str, questions: list[str]) -> None:
    """One run per question of a fresh two-step v2 Workflow (agents research, then write, each with its
    instructions) on ``db``."""
    for question in questions:
        flow = WorkflowV2(
            name="pipeline",
            workflow_id="pipeline-wf",
            storage=make_storage("ours", db, "workflow_v2_sessions"),
            steps=[Step(name="research", agent=member("research")), Step(name="write", agent=member("write"))],
            session_id=session_id,
            user_id="user-1",
        )
        flow.run(message=question)
