"""SQLite-only behaviour: URLs, pragmas, locking, in-memory databases, fork."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
from pathlib import Path

import pytest

from agno_storage import BusyError, InvalidInputError, Mode, SqliteStorage, Synchronous
from tests.sessions import make_session
from tests.support import forked_while_held


def test_file_database_uses_wal_and_the_chosen_durability(tmp_path: Path) -> None:
    store = SqliteStorage("s", db_file=tmp_path / "x.db")
    store.create()
    with store.transaction() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000
    fast = SqliteStorage("s", db_file=tmp_path / "x.db", synchronous="normal", busy_timeout=0.5)
    assert fast.synchronous is Synchronous.NORMAL
    with fast.transaction() as conn:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 500


@pytest.mark.parametrize(
    ("url", "relative"),
    [("sqlite:///rel/x.db", "rel/x.db"), ("sqlite+pysqlite:///rel/y.db", "rel/y.db")],
)
def test_db_url_names_a_file_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, relative: str
) -> None:
    monkeypatch.chdir(tmp_path)
    store = SqliteStorage("s", db_url=url)
    store.upsert(make_session(Mode.AGENT, "s1"))
    assert (tmp_path / relative).exists()
    assert store.db_path == str(tmp_path / relative)


def test_absolute_db_url_wins_over_db_file(tmp_path: Path) -> None:
    store = SqliteStorage("s", db_url=f"sqlite:///{tmp_path}/a.db", db_file=tmp_path / "b.db")
    assert store.db_path == str(tmp_path / "a.db")


@pytest.mark.parametrize(
    "url", ["postgresql://x/y", "sqlite:/x.db", "sqlite://host/x.db", "x.db", "sqlite:///x.db?mode=ro"]
)
def test_bad_db_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidInputError):
        SqliteStorage("s", db_url=url)


@pytest.mark.parametrize("kwargs", [{"busy_timeout": -1}, {"busy_timeout": "10"}, {"synchronous": "OFF"}])
def test_bad_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        SqliteStorage("s", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [1, "false", None])
def test_read_only_must_be_a_bool(tmp_path: Path, value: object) -> None:
    """``read_only="false"`` would otherwise open the file read-only: the setting is refused, as the others are."""
    with pytest.raises(InvalidInputError, match="read_only must be True or False"):
        SqliteStorage("s", db_file=tmp_path / "x.db", read_only=value)  # type: ignore[arg-type]


def test_in_memory_store_is_shared_by_its_threads() -> None:
    store = SqliteStorage("s", mode="team")
    assert store.db_path is None
    threads = [threading.Thread(target=store.upsert, args=(make_session(Mode.TEAM, f"s{i}"),)) for i in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(store.get_all_session_ids()) == 10
    assert SqliteStorage("s", mode="team").list() == [], "each in-memory store is private"


@pytest.mark.parametrize("db_file", [":memory:", Path(":memory:")])
def test_db_file_memory_is_an_in_memory_database_not_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_file: object
) -> None:
    # sqlite3 reads ":memory:" as "in memory" (agno 1.x's own SqliteStorage makes a file of that name, and so
    # does the agno adapter, which resolves db_file as agno does before the core store sees it).
    monkeypatch.chdir(tmp_path)
    store = SqliteStorage("s", db_file=db_file)  # type: ignore[arg-type]
    store.upsert(make_session(Mode.AGENT, "a"))
    assert store.db_path is None
    assert store.read("a") is not None
    assert list(tmp_path.iterdir()) == [], "no file named :memory: was made"


def test_a_held_write_lock_raises_busy_error_after_the_timeout(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    store = SqliteStorage("s", db_file=path, busy_timeout=0.2)
    store.create()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(BusyError) as info:
            store.upsert(make_session(Mode.AGENT, "s1"))
        assert info.value.table == "s"
        assert store.read("s1") is None, "readers are not blocked by a writer in WAL mode"
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    store.upsert(make_session(Mode.AGENT, "s1"))
    assert store.read("s1") is not None


def test_corrupt_json_names_table_session_and_column(tmp_path: Path) -> None:
    from agno_storage import CorruptRowError

    path = tmp_path / "x.db"
    store = SqliteStorage("s", db_file=path)
    store.upsert(make_session(Mode.AGENT, "s1"))
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE s SET agent_data = '{broken' WHERE session_id = 's1'")
    with pytest.raises(CorruptRowError) as info:
        store.read("s1")
    assert (info.value.table, info.value.session_id, info.value.column) == ("s", "s1", "agent_data")


def test_go_and_agno_empty_spellings_read_as_none(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    store = SqliteStorage("s", db_file=path)
    store.create()
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO s (session_id, user_id, memory, session_data, extra_data, agent_id, agent_data) "
            "VALUES ('s1', '', NULL, 'null', '', '', '{}')"
        )
    got = store.read("s1")
    assert got is not None
    assert (got.user_id, got.memory, got.session_data, got.extra_data, got.agent_id, got.agent_data) == (
        None,
        None,
        None,
        None,
        None,
        {},
    )


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_an_in_memory_store_in_a_child_forked_while_another_thread_used_it_is_not_held_by_its_lock() -> None:
    """An in-memory store's one connection is shared behind a lock; held at the fork by another thread, the
    child's copy stayed held for ever. The child starts a database of its own, empty, and can write to it."""
    store = SqliteStorage(table_name="agent_sessions")
    store.upsert(make_session(Mode.AGENT, "s1"))

    def child() -> bool:
        empty = store.get_all_session_ids() == []
        store.upsert(make_session(Mode.AGENT, "c1"))
        return empty and store.get_all_session_ids() == ["c1"]

    try:
        assert forked_while_held(store._memory_lock, child) == 0
        assert store.get_all_session_ids() == ["s1"], "the parent's database is its own"
    finally:
        store.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_thread_that_forks_inside_an_in_memory_transaction_leaves_it_in_the_child() -> None:
    """The lock the forking thread itself held stays its own in the child: leaving the block there works."""
    store = SqliteStorage(table_name="agent_sessions")
    pid = -1
    try:
        with store.transaction():
            store.upsert(make_session(Mode.AGENT, "s1"))
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child
                signal.alarm(10)
    except BaseException:
        if pid == 0:  # pragma: no cover - the child
            os._exit(2)
        raise
    if pid == 0:  # pragma: no cover - the child: it left the block
        os._exit(0)
    try:
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        assert store.get_all_session_ids() == ["s1"]
    finally:
        store.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_while_another_thread_opened_a_connection_is_not_held_by_its_lock(tmp_path: Path) -> None:
    """A thread's connection is listed under a lock; held at the fork by a thread the child does not have, the
    child's copy of that lock stayed held for ever, and the child's first call hung."""
    store = SqliteStorage(table_name="agent_sessions", db_file=tmp_path / "s.db")
    store.upsert(make_session(Mode.AGENT, "s1"))
    try:
        assert forked_while_held(store._handles_lock, lambda: store.get_all_session_ids() == ["s1"]) == 0
    finally:
        store.close()


AGENT_COLUMNS = "session_id, agent_id, user_id, team_session_id, memory, agent_data, session_data, extra_data, created_at, updated_at"


@pytest.mark.parametrize(
    ("statement", "what"),
    [
        ("CREATE VIEW agent_sessions AS SELECT * FROM base", "a view"),
        (f"CREATE VIRTUAL TABLE agent_sessions USING fts5({AGENT_COLUMNS})", "a virtual table"),
    ],
)
def test_a_view_or_virtual_table_of_the_tables_name_is_refused_when_the_store_opens(
    tmp_path: Path, statement: str, what: str
) -> None:
    """A view (or an FTS5 table) with the sessions table's name and columns reads like one, but no upsert
    reaches it: the store says so when it opens, naming the table and what it is, not at the first write."""
    from agno_storage import SchemaMismatchError

    db = tmp_path / "s.db"
    SqliteStorage("base", db_file=db).upsert(make_session(Mode.AGENT, "s1"))
    with sqlite3.connect(db) as conn:
        conn.execute(statement)
    with pytest.raises(SchemaMismatchError, match=what) as refused:
        SqliteStorage("agent_sessions", db_file=db)
    assert refused.value.table == "agent_sessions" and "agent_sessions" in str(refused.value)
