"""history() and search() of agno 1.8.4 Agents and Teams that keep their runs in ``AgentMemory`` / ``TeamMemory``.

Those keep each run as ``{message, messages, response}``: ``response`` is
the whole run (its messages, a team's member runs), ``messages`` only the
messages an app added to the run (``Agent.add_messages``, ``run(...,
messages=...)``). The runs are real, on the fake model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from agno.agent import Agent
from agno.memory.agent import AgentMemory
from agno.memory.team import TeamMemory
from agno.team import Team

from agno_storage import SqliteStorage
from devkit.fake_model import FakeModel
from tests.agno_runner import close_storages, make_storage
from tests.team_runs import ScriptedLeader, member

QUESTIONS = ["which kestrel hovers", "where do kestrels nest"]


def agent_turns(db: str, added: dict[str, Any]) -> list[str]:
    """One run per question of a fresh Agent with an ``AgentMemory``; the replies."""
    replies = []
    for q in QUESTIONS:
        agent = Agent(
            agent_id="historian",
            model=FakeModel(prefix="agent"),
            memory=AgentMemory(),
            storage=make_storage("ours", db, "agent_sessions"),
            session_id="s",
            user_id="u",
            add_history_to_messages=True,
            telemetry=False,
            monitoring=False,
            add_messages=added.get("add_messages"),
        )
        extra = [{"role": "user", "content": f"notes for {q}"}] if added.get("messages") else None
        replies.append(str(agent.run(q, messages=extra).content))
    close_storages()
    return replies


@pytest.mark.parametrize(
    "added",
    [
        pytest.param({"messages": True}, id="run-messages"),
        pytest.param({"add_messages": [{"role": "user", "content": "an example"}]}, id="agent-add_messages"),
    ],
)
def test_an_agent_memory_run_with_added_messages_keeps_its_question_and_answer(
    tmp_path: Path, added: dict[str, Any]
) -> None:
    """The question and the answer of each run are in history() and found by search(), after the messages the
    app added; before, only the added messages were read and both were lost."""
    db = str(tmp_path / "agno.db")
    replies = agent_turns(db, added)
    store = SqliteStorage("agent_sessions", db_file=db, mode="agent")
    try:
        got = [(m.role, m.content) for m in store.history("s") if m.role != "system"]
        expected: list[tuple[str, str | None]] = []
        for k, (q, reply) in enumerate(zip(QUESTIONS, replies, strict=True)):
            if added.get("messages"):
                expected.append(("user", f"notes for {q}"))
            elif k == 0:  # sent again unchanged on every run, shown once (as a system prompt)
                expected.append(("user", "an example"))
            expected += [("user", q), ("assistant", reply)]
        assert got == expected
        assert {QUESTIONS[1], replies[1]} <= {h.message.content for h in store.search("nest")}
    finally:
        store.close()


def test_a_team_memory_runs_member_runs_show_where_they_ran(tmp_path: Path) -> None:
    """A coordinate Team with a ``TeamMemory``: each member run sits between the leader's delegating call and
    its result, as for a Team with agno's default memory; before, member runs were left out."""
    db = str(tmp_path / "agno.db")
    transfer = (
        "transfer_task_to_member",
        {"member_id": "alpha", "task_description": "find it", "expected_output": "x"},
    )
    for q in QUESTIONS:
        Team(
            team_id="pair",
            mode="coordinate",
            model=ScriptedLeader(prefix="lead", script=[[transfer]]),
            members=[member("alpha"), member("beta")],
            memory=TeamMemory(),
            storage=make_storage("ours", db, "team_sessions"),
            session_id="s",
            user_id="u",
            enable_team_history=True,
            add_history_to_messages=True,
            telemetry=False,
            monitoring=False,
        ).run(q)
    close_storages()
    store = SqliteStorage("team_sessions", db_file=db, mode="team")
    try:
        got = [(m.role, m.member) for m in store.history("s") if m.role != "system"]
    finally:
        store.close()
    run = [
        ("user", None),
        ("assistant", None),  # the call of transfer_task_to_member
        ("user", "alpha"),
        ("assistant", "alpha"),
        ("tool", None),
        ("assistant", None),
    ]
    assert got == run * len(QUESTIONS)
