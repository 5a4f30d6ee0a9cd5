"""Small builders of sessions for the tests."""

from __future__ import annotations

from typing import Any

from agno_storage import AgentSession, Mode, Session, TeamSession, WorkflowSession, WorkflowSessionV2


def make_session(mode: Mode | str, session_id: str, user_id: str | None = "alice", **fields: Any) -> Session:
    """A session of ``mode`` with every column set to something distinctive."""
    mode = Mode(mode)
    common: dict[str, Any] = {
        "session_id": session_id,
        "user_id": user_id,
        "memory": {"runs": [{"input": f"hello from {session_id}", "n": 1}], "summary": None},
        "session_data": {"session_name": f"name of {session_id}", "session_state": {"k": [1, 2.5, True]}},
        "extra_data": {"tags": ["x", "y"]},
    }
    if mode is Mode.AGENT:
        common.update(agent_id="agent-1", agent_data={"model": {"id": "fake"}}, team_session_id=None)
    elif mode is Mode.TEAM:
        common.update(team_id="team-1", team_data={"members": ["a", "b"]}, team_session_id="ts-1")
    elif mode is Mode.WORKFLOW:
        common.update(workflow_id="wf-1", workflow_data={"steps": 3})
    else:
        common.update(workflow_id="wf-2", workflow_name="pipeline", workflow_data={"steps": 2}, runs=[{"run_id": "r1"}])
    common.update(fields)
    cls = {Mode.AGENT: AgentSession, Mode.TEAM: TeamSession, Mode.WORKFLOW: WorkflowSession}.get(
        mode, WorkflowSessionV2
    )
    return cls(**common)  # type: ignore[no-any-return]
