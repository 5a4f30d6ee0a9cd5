"""The change feed (SQLite) around a REPLACE's pending row: it never moves a consumer's cursor, and feeds an
earlier version made keep their log."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agno_storage import AgentSession, SqliteStorage


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
