"""store.changes(): every write of every writer, in commit order, resumable from a cursor."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agno_storage import AgentSession, InvalidInputError, SqliteStorage, StorageError
from agno_storage.changes import Change
from tests.agno_runner import close_storages, run_in_new_process, run_turn
from tests.test_go_upstream import USER, go_agent, go_cmds, go_team  # noqa: F401


def ops(changes: list[Change]) -> list[tuple[str, str, str]]:
    return [(c.table, c.session_id, c.op) for c in changes]


def test_feed_resumes_from_a_cursor(make_store: Any) -> None:
    store = make_store("agent")
    with pytest.raises(StorageError):
        store.changes()
    store.enable_changes()
    table = store.table_name
    store.upsert(AgentSession(session_id="a", user_id="u1", agent_id="x"))
    store.upsert(AgentSession(session_id="b", user_id="u2", agent_id="x"))
    store.upsert(AgentSession(session_id="a", user_id="u1", agent_id="y"))
    store.delete("b")
    first = store.changes(limit=2)
    assert ops(first) == [(table, "a", "insert"), (table, "b", "insert")]
    cursor = first[-1].cursor
    store.close()

    # A new consumer, after a restart, goes on from the last cursor it processed.
    again = make_store("agent", table_name=table)
    rest = again.changes(since=cursor)
    assert ops(rest) == [(table, "a", "update"), (table, "b", "delete")]
    assert [c.cursor for c in first + rest] == sorted({c.cursor for c in first + rest})
    assert again.changes(since=rest[-1].cursor) == []
    assert [c.session_id for c in again.changes(user_id="u2")] == ["b", "b"]
    assert {c.user_id for c in again.changes(user_id="u1")} == {"u1"}
    again.upsert(AgentSession(session_id="c", user_id="u1", agent_id="x"))
    assert ops(again.changes(since=rest[-1].cursor)) == [(table, "c", "insert")]
    assert all(c.at > 1_600_000_000 for c in again.changes())
    with pytest.raises(InvalidInputError):
        again.changes(since=-1)
    with pytest.raises(InvalidInputError):
        again.enable_changes(retention=1)
    again.enable_changes()  # idempotent: the log and its cursors stay
    assert len(again.changes()) == 5
    again.disable_changes()
    with pytest.raises(StorageError):
        again.changes()
    again.upsert(AgentSession(session_id="d", agent_id="x"))  # writes go on without the feed


def test_a_table_dropped_behind_the_feed_is_an_error_not_a_silent_gap(make_store: Any) -> None:
    """Another program drops the table and makes it again: its triggers are gone, and later writes would go
    unlogged; changes() says so until the feed is started again."""
    from tests.test_search import drop_behind

    store = make_store("agent")
    store.enable_changes()
    store.upsert(AgentSession(session_id="a", agent_id="x"))
    cursor = store.changes()[-1].cursor
    drop_behind(store)
    store.upsert(AgentSession(session_id="b", agent_id="x"))  # makes the table again
    with pytest.raises(StorageError, match="stopped logging"):
        store.changes(since=cursor)
    store.disable_changes()
    store.enable_changes()
    store.upsert(AgentSession(session_id="c", agent_id="x"))
    assert [c.session_id for c in store.changes()] == ["c"]


def test_agent_runs_dropped_behind_the_feed_is_an_error(tmp_path: Path) -> None:
    store = SqliteStorage("agent_sessions", db_file=tmp_path / "s.db")
    store.enable_changes()
    store.append_run("go-1", "hi", "hello", user_id="u")
    conn = sqlite3.connect(tmp_path / "s.db")
    conn.execute("DROP TABLE agent_runs")  # as a Go program resetting its runs would
    conn.commit()
    conn.close()
    store.append_run("go-1", "again", "hello again", user_id="u")  # agent_runs made again, unwatched
    with pytest.raises(StorageError, match="agent_runs was dropped"):
        store.changes()
    store.close()


def test_pruned_changes_are_not_skipped_silently(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.enable_changes(retention=60)
    store.upsert(AgentSession(session_id="old", agent_id="x"))
    store.upsert(AgentSession(session_id="new", agent_id="x"))
    conn = sqlite3.connect(db)
    conn.execute("UPDATE agent_sessions_changes SET at = at - 3600 WHERE session_id = 'old'")
    conn.commit()
    conn.close()
    with pytest.raises(StorageError, match="pruned"):
        store.changes(since=0)
    assert [c.session_id for c in store.changes(since=1)] == ["new"]
    store.close()


def test_every_writer_in_commit_order_across_a_restart(go_cmds: Path, tmp_path: Path) -> None:  # noqa: F811
    """agno 1.8.4 (here and in another process), a Go Agent, a Go Team and this store, in the order they wrote."""
    db = tmp_path / "all.db"
    agents = SqliteStorage("agent_sessions", db_file=db)
    teams = SqliteStorage("team_sessions", db_file=db, mode="team")
    agents.enable_changes()
    teams.enable_changes()
    run_turn("agent", "ours", str(db), "py-agent", USER, "hello")
    close_storages()
    go_agent(go_cmds, db, "go-agent", ["one", "two"], tmp_path / "a.json")
    go_team(go_cmds, db, "go-team", ["one"], tmp_path / "t.json")
    run_in_new_process("agent", "ours", str(db), "py-agent", "again")
    agents.upsert(AgentSession(session_id="store", user_id=USER, agent_id="x"))
    agents.delete("go-agent")
    go_team(go_cmds, db, "go-team", ["two"], tmp_path / "t2.json")

    seen = agents.changes(limit=3)
    agents.close()
    resumed = SqliteStorage("agent_sessions", db_file=db)  # the consumer restarts
    seen += resumed.changes(since=seen[-1].cursor)
    # agno writes its session once per run; each Go Agent turn is one agent_runs row; delete() of the
    # Go Agent's session (it has no session row) removes its runs.
    assert ops(seen) == [
        ("agent_sessions", "py-agent", "insert"),
        ("agent_runs", "go-agent", "insert"),
        ("agent_runs", "go-agent", "insert"),
        ("agent_sessions", "py-agent", "update"),
        ("agent_sessions", "store", "insert"),
        ("agent_runs", "go-agent", "delete"),
        ("agent_runs", "go-agent", "delete"),
    ]
    assert [c.cursor for c in seen] == sorted(c.cursor for c in seen)
    team_changes = teams.changes()
    assert ops(team_changes) == [("team_sessions", "go-team", "insert")] * 2  # Go's INSERT OR REPLACE, each run
    assert {c.user_id for c in team_changes} == {USER}
    resumed.close()
    teams.close()
