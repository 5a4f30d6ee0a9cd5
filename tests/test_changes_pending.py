"""The change feed (SQLite) around a REPLACE's pending row: it never moves a consumer's cursor, and feeds an
earlier version made keep their log."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agno_storage import AgentSession, SqliteStorage
from tests.support import write_run_as_another_program


def test_an_ignored_insert_never_tells_an_up_to_date_consumer_it_fell_behind(tmp_path: Path) -> None:
    """An INSERT OR IGNORE of a session under another owner changes nothing: a consumer that had read every
    change and comes back after the retention is not told changes after its cursor were pruned."""
    db = tmp_path / "p.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.enable_changes(retention=60)
    store.upsert(AgentSession(session_id="s", user_id="alice", agent_id="x"))
    (last,) = store.changes()
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT OR IGNORE INTO agent_sessions (session_id, user_id, agent_id) VALUES ('s', 'bob', 'x')")
        conn.execute("UPDATE agent_sessions_changes SET at = at - 3600")  # every change is past the retention
    conn.close()
    assert store.changes(since=last.cursor) == []
    store.upsert(AgentSession(session_id="t", user_id="alice", agent_id="x"))
    assert [(c.session_id, c.op) for c in store.changes(since=last.cursor)] == [("t", "insert")]
    store.close()


def test_a_feed_made_before_agent_runs_had_its_replace_triggers_keeps_its_cursors(tmp_path: Path) -> None:
    """A feed made before ``agent_runs`` had its BEFORE triggers (``replace`` and ``reid``, added together,
    as the sessions table's ``replace`` came later still, with no mark in the meta table) missed nothing:
    changes() reads it, and enable_changes() adds the triggers and keeps every consumer's cursor."""
    db = tmp_path / "old.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    first = store.append_run("go-a", "kestrels", "ok", user_id="u")
    store.enable_changes()
    store.upsert(AgentSession(session_id="s", user_id="u", agent_id="x"))
    with sqlite3.connect(db) as conn:  # as that version left it
        for trigger in ("agent_sessions_changes_replace", "agent_sessions_runs_changes_replace"):
            conn.execute(f'DROP TRIGGER "{trigger}"')
        conn.execute('DROP TRIGGER "agent_sessions_runs_changes_reid"')
        conn.execute("DELETE FROM agent_sessions_changes_meta WHERE key = 'replace_trigger'")
    conn.close()
    (held,) = store.changes()
    assert store.changes(since=held.cursor) == []
    store.enable_changes()
    assert store.changes(since=held.cursor) == []
    with sqlite3.connect(db) as conn:
        write_run_as_another_program(conn, first.id, session_id="go-b")
    conn.close()
    assert [(c.session_id, c.op) for c in store.changes(since=held.cursor)] == [("go-a", "update"), ("go-b", "insert")]
    store.close()
