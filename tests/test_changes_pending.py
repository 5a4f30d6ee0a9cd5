"""The change feed (SQLite) around a REPLACE's pending row: it never moves a consumer's cursor, and feeds an
earlier version made keep their log."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agno_storage import AgentSession, SqliteStorage
from agno_storage.changes_log import Change
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
    with sqlite3.connect(db) as conn:  # ignored again, then REPLACEd by its owner: no delete, alice keeps it
        conn.execute("INSERT OR IGNORE INTO agent_sessions (session_id, user_id, agent_id) VALUES ('s', 'bob', 'x')")
        conn.execute("INSERT OR REPLACE INTO agent_sessions (session_id, user_id, agent_id) VALUES ('s', 'alice', 'x')")
        conn.execute("UPDATE OR IGNORE agent_sessions SET session_id = 's' WHERE session_id = 't'")
        conn.execute("DELETE FROM agent_sessions WHERE session_id = 't'")
        conn.execute("UPDATE agent_sessions SET session_id = 't' WHERE session_id = 's'")
    conn.close()
    assert [(c.session_id, c.user_id, c.op) for c in store.changes(since=last.cursor)][1:] == [
        ("s", "alice", "insert"),
        ("t", "alice", "delete"),
        ("s", "alice", "delete"),
        ("t", "alice", "insert"),
    ]
    store.close()


def as_an_earlier_version_left_it(
    store: SqliteStorage, db: Path, lacking: tuple[str, ...], mark: int | None = None
) -> Change:
    """Make the feed of ``store`` as an earlier version left it (without the triggers ``agent_sessions_<lacking>``,
    its version ``mark`` in the meta table, or none); check that changes() reads it and enable_changes() keeps
    its cursors. The one change logged before, whose cursor a consumer holds."""
    with sqlite3.connect(db) as conn:
        for trigger in lacking:
            conn.execute(f'DROP TRIGGER "agent_sessions_{trigger}"')
        conn.execute("DELETE FROM agent_sessions_changes_meta WHERE key = 'replace_trigger'")
        if mark is not None:
            conn.execute("INSERT INTO agent_sessions_changes_meta VALUES ('replace_trigger', ?)", (mark,))
    conn.close()
    (held,) = store.changes()
    assert store.changes(since=held.cursor) == []
    store.enable_changes()
    assert store.changes(since=held.cursor) == []
    return held


def test_a_feed_made_before_agent_runs_had_its_replace_triggers_keeps_its_cursors(tmp_path: Path) -> None:
    """A feed made before ``agent_runs`` had its BEFORE triggers (``replace`` and ``reid``, added together;
    the sessions table's came later still, and no mark in the meta table) missed nothing:
    changes() reads it, and enable_changes() adds the triggers and keeps every consumer's cursor."""
    db = tmp_path / "old.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    first = store.append_run("go-a", "kestrels", "ok", user_id="u")
    store.enable_changes()
    store.upsert(AgentSession(session_id="s", user_id="u", agent_id="x"))
    held = as_an_earlier_version_left_it(
        store, db, ("runs_changes_replace", "runs_changes_reid", "changes_replace", "changes_reid", "changes_rename")
    )
    with sqlite3.connect(db) as conn:
        write_run_as_another_program(conn, first.id, session_id="go-b")
    conn.close()
    assert [(c.session_id, c.op) for c in store.changes(since=held.cursor)] == [("go-a", "update"), ("go-b", "insert")]
    store.close()


def test_a_session_renamed_onto_another_owners_by_update_or_replace_is_a_delete_in_that_owners_feed(
    tmp_path: Path,
) -> None:
    """UPDATE OR REPLACE of a session_id onto a session another user holds deletes that one with no delete
    trigger fired: its owner's feed sees it deleted; an UPDATE OR IGNORE that changes nothing logs nothing."""
    db = tmp_path / "r.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.upsert(AgentSession(session_id="s", user_id="alice", agent_id="x"))
    store.upsert(AgentSession(session_id="t", user_id="carol", agent_id="x"))
    store.upsert(AgentSession(session_id="u", user_id="dave", agent_id="x"))
    store.enable_changes()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE OR IGNORE agent_sessions SET session_id = 's' WHERE session_id = 'u'")
    conn.close()
    assert store.changes() == []
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE OR REPLACE agent_sessions SET session_id = 's' WHERE session_id = 't'")
    conn.close()
    assert store.read("s", user_id="alice") is None
    assert [(c.session_id, c.op) for c in store.changes(user_id="alice")] == [("s", "delete")]
    assert [(c.session_id, c.user_id, c.op) for c in store.changes()] == [
        ("s", "alice", "delete"),
        ("t", "carol", "delete"),
        ("s", "carol", "insert"),
    ]
    store.close()


@pytest.mark.parametrize(
    ("mark", "lacking"),
    [(None, ("replace", "reid", "rename")), (1, ("reid", "rename"))],
    ids=["before the replace trigger", "before the reid trigger"],
)
def test_a_feed_an_earlier_version_made_keeps_its_cursors_and_gets_the_later_triggers(
    tmp_path: Path, mark: int | None, lacking: tuple[str, ...]
) -> None:
    """A feed made before the sessions table had its BEFORE triggers (the version in the meta table, or none,
    says which) has no gap for lacking them; enable_changes() adds them and keeps the log."""
    db = tmp_path / "old.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.upsert(AgentSession(session_id="s", user_id="alice", agent_id="x"))
    store.upsert(AgentSession(session_id="t", user_id="carol", agent_id="x"))
    store.enable_changes()
    store.upsert(AgentSession(session_id="u", user_id="alice", agent_id="x"))
    held = as_an_earlier_version_left_it(store, db, tuple(f"changes_{op}" for op in lacking), mark)
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT OR REPLACE INTO agent_sessions (session_id, user_id, agent_id) VALUES ('s', 'bob', 'x')")
        conn.execute("UPDATE OR REPLACE agent_sessions SET session_id = 'u' WHERE session_id = 't'")
    conn.close()
    assert [(c.session_id, c.user_id, c.op) for c in store.changes(since=held.cursor)] == [
        ("s", "alice", "delete"),
        ("s", "bob", "insert"),
        ("u", "alice", "delete"),
        ("t", "carol", "delete"),
        ("u", "carol", "insert"),
    ]
    store.close()
