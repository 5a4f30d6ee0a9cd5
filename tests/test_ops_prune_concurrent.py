"""prune finishes the job when writers keep, update or delete the very sessions one of its batches picks."""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agno_storage import AgentSession, Mode
from agno_storage.ops import prune as prune_ops
from agno_storage.ops.db import open_database, open_store
from tests.support import BoundedProgress

DAY = 86400
NOW = 1_800_000_000
CUTOFF = NOW - 30 * DAY
BATCH = 5
SESSIONS = [f"s{i:02d}" for i in range(3 * BATCH - 2)]  # two full batches and a short one
_schemas = itertools.count()


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prune_ops, "PRUNE_BATCH", BATCH)


def old_sessions(url: str, schema: str | None) -> None:
    store = open_store(url, "agent_sessions", Mode.AGENT, schema)
    store.upsert_many([AgentSession(session_id=s, user_id="u", agent_id="x") for s in SESSIONS])
    store.close()


@pytest.fixture
def pg(pg_server: Any) -> Iterator[tuple[str, str, Any]]:
    """(dsn, a fresh schema holding old agent sessions, an autocommit connection); dropped afterwards."""
    import psycopg

    schema = f"prune_concurrent_{next(_schemas)}"
    conn = psycopg.connect(pg_server.dsn, autocommit=True)
    old_sessions(pg_server.dsn, schema)
    conn.execute(f"UPDATE {schema}.agent_sessions SET created_at = 1, updated_at = 1")
    try:
        yield pg_server.dsn, schema, conn
    finally:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.close()


def wait_until_prune_waits(conn: Any, pruner: threading.Thread) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and pruner.is_alive():
        waiting = conn.execute(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%FOR UPDATE%'"
        ).fetchone()[0]
        if waiting:
            return
        time.sleep(0.02)
    raise AssertionError("prune never waited for the writer's row locks")


@pytest.mark.parametrize("action", ["update", "delete"])
def test_a_first_batch_every_session_of_which_a_writer_takes_does_not_end_prune_on_postgres(
    pg: tuple[str, str, Any], action: str
) -> None:
    """The writer locks exactly the sessions prune's first batch would pick and, while prune waits for
    them, updates (or deletes) them all: that batch finds the next old sessions, and prune goes on to
    the end. PostgreSQL applies LIMIT to the rows that pass the check of their newest version."""
    import psycopg

    url, schema, conn = pg
    taken = SESSIONS[:BATCH]
    writer = psycopg.connect(url)
    locked = writer.execute(
        f"SELECT session_id FROM {schema}.agent_sessions ORDER BY session_id LIMIT {BATCH} FOR UPDATE"
    ).fetchall()
    assert [r[0] for r in locked] == taken
    if action == "update":
        writer.execute(f"UPDATE {schema}.agent_sessions SET updated_at = %s WHERE session_id = ANY(%s)", (NOW, taken))
    else:
        writer.execute(f"DELETE FROM {schema}.agent_sessions WHERE session_id = ANY(%s)", (taken,))
    result: dict[str, Any] = {}

    def run() -> None:
        with open_database(url, schema) as db:
            result["summary"] = prune_ops.prune(db, url, "agent_sessions", 30 * DAY, schema=schema, now=NOW)

    pruner = threading.Thread(target=run)
    pruner.start()
    try:
        wait_until_prune_waits(conn, pruner)
    finally:
        writer.commit()
        writer.close()
        pruner.join(30)
    assert result["summary"].session_ids == tuple(SESSIONS[BATCH:])
    left = [r[0] for r in conn.execute(f"SELECT session_id FROM {schema}.agent_sessions ORDER BY session_id")]
    assert left == (taken if action == "update" else [])


def test_a_writer_updating_the_next_batch_before_each_transaction_does_not_end_prune_on_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: each batch holds the write lock, so a writer goes between two batches; updating every
    session the next batch would pick leaves that batch the old sessions after them."""
    path = str(tmp_path / "a.db")
    old_sessions(path, None)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("UPDATE agent_sessions SET created_at = 1, updated_at = 1")
    taken: list[str] = []

    def take_next_batch() -> None:
        rows = writer.execute(
            "SELECT session_id FROM agent_sessions WHERE updated_at < ? ORDER BY session_id LIMIT ?", (CUTOFF, BATCH)
        ).fetchall()
        ids = [r[0] for r in rows]
        writer.executemany("UPDATE agent_sessions SET updated_at = ? WHERE session_id = ?", [(NOW, i) for i in ids])
        taken.extend(ids)

    class Store:
        """The store prune writes through, with the writer going first before each of its transactions."""

        def __init__(self, store: Any) -> None:
            self.store = store
            self.transactions = 0

        def __getattr__(self, name: str) -> Any:
            return getattr(self.store, name)

        def transaction(self) -> Any:
            self.transactions += 1
            if self.transactions == 1:
                take_next_batch()
            return self.store.transaction()

    opened = prune_ops.open_store
    monkeypatch.setattr(prune_ops, "open_store", lambda *args, **kwargs: Store(opened(*args, **kwargs)))
    with open_database(path) as db:
        summary = prune_ops.prune(db, path, "agent_sessions", 30 * DAY, now=NOW)
    assert taken == SESSIONS[:BATCH]
    assert summary.session_ids == tuple(SESSIONS[BATCH:])
    assert [r[0] for r in writer.execute("SELECT session_id FROM agent_sessions ORDER BY session_id")] == taken
    writer.close()


class RefuseAfterFirstBatch:
    """prune's progress hook: after its first batch, another program forbids deleting sessions (a trigger)."""

    def __init__(self, writer: sqlite3.Connection) -> None:
        self.writer = writer

    def start(self, total: int | None) -> None:
        pass

    def advance(self, count: int) -> None:
        self.writer.execute(
            "CREATE TRIGGER IF NOT EXISTS keep BEFORE DELETE ON agent_sessions BEGIN SELECT RAISE(ABORT, 'kept'); END"
        )


def test_a_prune_stopped_midway_says_how_many_sessions_it_had_removed(tmp_path: Path) -> None:
    """A batch the database refuses (here a trigger another program added meanwhile; a lock held past the busy
    timeout, a full disk) stops prune: the batches before it stay deleted, and the error says how many."""
    from agno_storage.errors import StorageError

    path = str(tmp_path / "a.db")
    old_sessions(path, None)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("UPDATE agent_sessions SET created_at = 1, updated_at = 1")

    with open_database(path) as db, pytest.raises(StorageError) as stopped:
        prune_ops.prune(db, path, "agent_sessions", 30 * DAY, now=NOW, progress=RefuseAfterFirstBatch(writer))
    left = {r[0] for r in writer.execute("SELECT session_id FROM agent_sessions")}
    writer.close()
    assert left == set(SESSIONS[BATCH:])
    assert f"{BATCH} sessions were removed before it stopped" in str(stopped.value)


def test_a_prune_stopped_midway_counts_only_the_runs_it_removed(tmp_path: Path) -> None:
    """The batch that failed had deleted its sessions' agent_runs rows before its sessions' delete failed, and
    the error counted them as removed though its transaction rolled them back: every run was still there."""
    from agno_storage.errors import StorageError

    path = str(tmp_path / "a.db")
    old_sessions(path, None)
    store = open_store(path, "agent_sessions", Mode.AGENT)
    for sid in SESSIONS:
        store.append_run(sid, "question", "answer", user_id="u")
    store.close()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("UPDATE agent_sessions SET created_at = 1, updated_at = 1")
    writer.execute("UPDATE agent_runs SET created_at = 1, updated_at = 1")

    with open_database(path) as db, pytest.raises(StorageError) as stopped:
        prune_ops.prune(db, path, "agent_sessions", 30 * DAY, now=NOW, progress=RefuseAfterFirstBatch(writer))
    (runs_left,) = writer.execute("SELECT COUNT(*) FROM agent_runs").fetchone()
    writer.close()
    assert runs_left == len(SESSIONS) - BATCH
    assert f"; {BATCH} agent_runs rows)" in str(stopped.value)


@pytest.mark.parametrize("table", ["agent_sessions", "agent_runs"])
def test_a_delete_the_database_silently_skips_stops_the_prune_instead_of_looping(tmp_path: Path, table: str) -> None:
    """Another program's trigger that skips deletes (``RAISE(IGNORE)``: a soft-delete policy) left the batch's
    sessions there, and prune chose them again and again for ever, deleting their runs meanwhile. It stops now,
    saying so, and the batch is left whole: its sessions with every run."""
    from agno_storage.errors import StorageError

    path = str(tmp_path / "a.db")
    old_sessions(path, None)
    store = open_store(path, "agent_sessions", Mode.AGENT)
    for sid in SESSIONS:
        store.append_run(sid, "question", "answer", user_id="u")
    store.append_run("go-only", "question", "answer", user_id="u")  # a session only agent_runs holds
    store.close()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("UPDATE agent_sessions SET created_at = 1, updated_at = 1")
    writer.execute("UPDATE agent_runs SET created_at = 1, updated_at = 1")
    writer.execute(f"CREATE TRIGGER keep BEFORE DELETE ON {table} BEGIN SELECT RAISE(IGNORE); END")
    with open_database(path) as db, pytest.raises(StorageError, match="kept") as stopped:
        prune_ops.prune(db, path, "agent_sessions", 30 * DAY, now=NOW, progress=BoundedProgress())
    sessions = {r[0] for r in writer.execute("SELECT session_id FROM agent_sessions")}
    runs = {r[0] for r in writer.execute("SELECT session_id FROM agent_runs")}
    writer.close()
    if table == "agent_sessions":
        assert sessions == runs - {"go-only"} == set(SESSIONS)
        assert "0 sessions were removed before it stopped" in str(stopped.value)
    else:
        assert sessions == set() and runs == {*SESSIONS, "go-only"}


def test_a_prune_a_trigger_stops_midway_does_not_say_a_rerun_completes_it(tmp_path: Path) -> None:
    """Another program's trigger that refuses deletes (added after the first batch) stopped prune, whose error
    said that running it again completes it: a rerun meets the same trigger."""
    from agno_storage.errors import StorageError

    path = str(tmp_path / "a.db")
    old_sessions(path, None)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("UPDATE agent_sessions SET created_at = 1, updated_at = 1")
    with open_database(path) as db, pytest.raises(StorageError, match="kept") as stopped:
        prune_ops.prune(db, path, "agent_sessions", 30 * DAY, now=NOW, progress=RefuseAfterFirstBatch(writer))
    writer.close()
    assert f"{BATCH} sessions were removed before it stopped" in str(stopped.value)
    assert "running it again completes it" not in str(stopped.value)


def test_a_prune_another_programs_foreign_key_stops_midway_does_not_say_a_rerun_completes_it_on_postgres(
    pg: tuple[str, str, Any],
) -> None:
    """A table of another program whose foreign key keeps the later sessions (ON DELETE RESTRICT) stopped prune,
    whose error said that running it again completes it: a rerun meets the same key."""
    from agno_storage.errors import StorageError

    url, schema, conn = pg
    conn.execute(
        f"CREATE TABLE {schema}.notes (session_id varchar PRIMARY KEY"
        f" REFERENCES {schema}.agent_sessions (session_id) ON DELETE RESTRICT)"
    )
    conn.execute(
        f"INSERT INTO {schema}.notes SELECT session_id FROM {schema}.agent_sessions WHERE session_id >= %s",
        (SESSIONS[BATCH],),
    )
    with open_database(url, schema) as db, pytest.raises(StorageError) as stopped:
        prune_ops.prune(db, url, "agent_sessions", 30 * DAY, schema=schema, now=NOW)
    assert f"{BATCH} sessions were removed before it stopped" in str(stopped.value)
    assert "running it again completes it" not in str(stopped.value)


def test_a_prune_a_lock_held_past_the_busy_timeout_stops_says_a_rerun_completes_it(tmp_path: Path) -> None:
    """A lock another connection holds past the busy timeout is gone on a rerun: the error says so."""
    from agno_storage.errors import BusyError

    path = str(tmp_path / "a.db")
    old_sessions(path, None)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("UPDATE agent_sessions SET created_at = 1, updated_at = 1")

    class LockAfterFirstBatch:
        def start(self, total: int | None) -> None:
            pass

        def advance(self, count: int) -> None:
            if not writer.in_transaction:
                writer.execute("BEGIN IMMEDIATE")

    try:
        with open_database(path) as db, pytest.raises(BusyError) as stopped:
            prune_ops.prune(
                db, f"sqlite:///{path}?timeout=0.2", "agent_sessions", 30 * DAY, now=NOW, progress=LockAfterFirstBatch()
            )
    finally:
        writer.close()
    assert f"{BATCH} sessions were removed before it stopped" in str(stopped.value)
    assert "none of the batch that failed (running it again completes it)" in str(stopped.value)
