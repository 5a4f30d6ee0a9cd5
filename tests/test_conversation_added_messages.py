"""history() of an agno 1.8.4 Agent given ``add_messages``: messages agno sends again, unchanged, on every run.

agno puts them right after the system prompt of each run and lists them in
the run's ``extra_data.add_messages``. The runs are real, on the fake model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agno.agent import Agent

from agno_storage import SqliteStorage
from devkit.fake_model import FakeModel
from tests.agno_runner import close_storages, make_storage

FIRST = [{"role": "user", "content": "what eats voles"}, {"role": "assistant", "content": "kestrels do"}]
SECOND = [{"role": "user", "content": "what eats mice"}, {"role": "assistant", "content": "owls do"}]


def birder_turns(db: str, turns: list[tuple[list[dict[str, Any]], str]], **options: Any) -> list[str]:
    """One run per (examples, question) of a fresh Agent given those ``add_messages``, in session "s"; the
    replies. ``options`` are more of the Agent's arguments."""
    replies = []
    for examples, question in turns:
        agent = Agent(
            agent_id="birder",
            model=FakeModel(prefix="birder"),
            storage=make_storage("ours", db, "agent_sessions"),
            session_id="s",
            user_id="u",
            add_messages=examples,
            add_history_to_messages=True,
            telemetry=False,
            monitoring=False,
            **options,
        )
        replies.append(str(agent.run(question).content))
    close_storages()
    return replies


def test_messages_agno_adds_to_every_run_show_once_until_they_change(tmp_path: Path) -> None:
    """Three runs, the examples changed before the third: each set shows once, in the first run that sent it;
    a question that happens to read as an example is still the run's own."""
    db = str(tmp_path / "agno.db")
    turns: list[tuple[list[dict[str, Any]], str]] = [
        (FIRST, "which falcon hovers"),
        (FIRST, "what eats voles"),
        (SECOND, "where do owls nest"),
    ]
    replies = birder_turns(db, turns)
    store = SqliteStorage("agent_sessions", db_file=db, mode="agent")
    try:
        got = [(m.role, m.content) for m in store.history("s") if m.role != "system"]
        hits = store.search("kestrels")
    finally:
        store.close()
    pair = [(m["role"], m["content"]) for m in FIRST]
    assert got == [
        *pair,
        ("user", "which falcon hovers"),
        ("assistant", replies[0]),
        ("user", "what eats voles"),
        ("assistant", replies[1]),
        *[(m["role"], m["content"]) for m in SECOND],
        ("user", "where do owls nest"),
        ("assistant", replies[2]),
    ]
    assert [h.message.content for h in hits] == ["kestrels do"]


def test_added_messages_that_begin_with_a_system_message_show_once_as_other_added_messages_do(tmp_path: Path) -> None:
    """Examples that open with a system message of their own, after the agent's system prompt: the prompt and
    the examples each show once, not once per run."""
    db = str(tmp_path / "agno.db")
    examples = [{"role": "system", "content": "answer in one line"}, *FIRST]
    turns = [(examples, q) for q in ("which falcon hovers", "where do owls nest")]
    replies = birder_turns(db, turns, instructions=["be brief"])
    store = SqliteStorage("agent_sessions", db_file=db, mode="agent")
    try:
        got = [(m.role, m.content) for m in store.history("s")]
    finally:
        store.close()
    assert got[1:] == [
        *[(m["role"], m["content"]) for m in examples],
        ("user", "which falcon hovers"),
        ("assistant", replies[0]),
        ("user", "where do owls nest"),
        ("assistant", replies[1]),
    ]
    assert got[0][0] == "system" and "be brief" in (got[0][1] or "")
