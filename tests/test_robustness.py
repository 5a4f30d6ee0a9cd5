"""Odd inputs, odd rows and odd timing: every failure is a typed error, nothing hangs or leaks."""

from __future__ import annotations

import collections
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agno_storage import (
    AgentSession,
    CorruptRowError,
    InvalidInputError,
    Mode,
    OwnershipError,
    SchemaMismatchError,
    SqliteStorage,
    StorageError,
    codec,
)
from tests.conftest import StoreFactory
from tests.sessions import make_session

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.mark.parametrize(
    "call",
    [
        lambda st: st.read("\ud800"),
        lambda st: st.read("s1", user_id="\ud800"),
        lambda st: st.delete("\ud800"),
        lambda st: st.list(entity_id="\udc00"),
        lambda st: st.list(limit=2**70),
        lambda st: st.upsert_many(None),
        lambda st: st.upsert_many(make_session(Mode.AGENT, "one")),
        lambda st: st.upsert(AgentSession(session_id="s2", memory={"a": 2**64, "b": "\ud800"})),
    ],
)
def test_odd_arguments_raise_invalid_input(tmp_path: Path, call: object) -> None:
    store = SqliteStorage("s", db_file=tmp_path / "x.db")
    store.upsert(make_session(Mode.AGENT, "s1"))
    with pytest.raises(InvalidInputError):
        call(store)  # type: ignore[operator]
    assert store.get_all_session_ids() == ["s1"]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ([1], "memory must be a dict or None, got list$"),
        (
            collections.OrderedDict(),
            "memory must be a dict or None, got a OrderedDict, a subclass that JSON cannot keep",
        ),
    ],
)
def test_a_json_column_of_the_wrong_type_is_named_as_it_is(value: object, says: str) -> None:
    with pytest.raises(InvalidInputError, match=says):
        SqliteStorage("s").upsert(AgentSession(session_id="s1", memory=value))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["order", "select", "sqlite_x", "pg_catalog_copy", "TABLE"])
def test_reserved_table_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInputError):
        SqliteStorage(name)


@pytest.mark.parametrize("db_file", ["a\x00b.db", ""])
def test_unusable_paths_raise_typed_errors(db_file: str) -> None:
    with pytest.raises(InvalidInputError):
        SqliteStorage("s", db_file=db_file)


def test_a_file_where_a_folder_should_be_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StorageError):
        SqliteStorage("s", db_file=tmp_path / "file" / "x.db")


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 10**12])
def test_unusable_busy_timeouts_are_refused(value: float) -> None:
    with pytest.raises(InvalidInputError):
        SqliteStorage("s", busy_timeout=value)


@pytest.mark.parametrize(
    ("column", "stored", "error"),
    [
        ("memory", "5", "holds a JSON int"),
        ("session_data", "'[1, 2]'", "holds a JSON list"),
        ("extra_data", "'\"text\"'", "holds a JSON str"),
        ("created_at", "9e999", "not a Unix timestamp"),
        ("updated_at", "'soon'", "not a Unix timestamp"),
    ],
)
def test_wrongly_typed_stored_values_raise_corrupt_row(tmp_path: Path, column: str, stored: str, error: str) -> None:
    path = tmp_path / "agno.db"
    shutil.copy(FIXTURES / "agno_agent.db", path)
    store = SqliteStorage("agent_sessions", db_file=path)
    sid = store.get_all_session_ids()[0]
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE agent_sessions SET {column} = {stored} WHERE session_id = ?", (sid,))
    with pytest.raises(CorruptRowError, match=error) as info:
        store.read(sid)
    assert (info.value.table, info.value.session_id, info.value.column) == ("agent_sessions", sid, column)
    with pytest.raises(CorruptRowError):
        store.list()


def test_an_agent_store_refuses_an_agno_team_table_with_agent_columns(tmp_path: Path) -> None:
    path = tmp_path / "team.db"
    shutil.copy(FIXTURES / "agno_team_default_mode.db", path)
    with pytest.raises(SchemaMismatchError) as info:
        SqliteStorage("team_sessions", db_file=path, mode="agent")
    assert info.value.found_mode == "team"
    assert SqliteStorage("team_sessions", db_file=path, mode="team").list() != []


def test_store_recovers_after_close_of_an_in_memory_database() -> None:
    store = SqliteStorage("s")
    store.upsert(make_session(Mode.AGENT, "s1"))
    store.close()
    assert store.read("s1") is None, "a closed in-memory database starts empty"
    store.upsert(make_session(Mode.AGENT, "s2"))
    assert store.get_all_session_ids() == ["s2"]


def test_a_rolled_back_first_write_leaves_a_working_store(tmp_path: Path) -> None:
    store = SqliteStorage("s", db_file=tmp_path / "x.db")
    with pytest.raises(RuntimeError), store.transaction():
        store.upsert(make_session(Mode.AGENT, "s1"))
        raise RuntimeError("undo")
    assert not store.table_exists()
    assert store.read("s1") is None
    store.upsert(make_session(Mode.AGENT, "s2"))
    assert store.get_all_session_ids() == ["s2"]


def test_a_table_dropped_by_another_store_is_made_again_on_write(tmp_path: Path) -> None:
    a = SqliteStorage("s", db_file=tmp_path / "x.db")
    b = SqliteStorage("s", db_file=tmp_path / "x.db")
    a.upsert(make_session(Mode.AGENT, "s1"))
    b.drop()
    assert a.count() == 0
    assert a.read("s1") is None
    assert a.list() == []
    assert a.delete("s1") is False
    a.upsert(make_session(Mode.AGENT, "s2"))
    b.drop()
    assert a.upsert_many([make_session(Mode.AGENT, "s3")]) == 1
    assert a.get_all_session_ids() == ["s3"]


def test_in_memory_store_does_not_deadlock_a_writer_and_a_reader() -> None:
    store = SqliteStorage("s")
    started = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with store.transaction():
                started.set()
                time.sleep(0.3)
                store.upsert(make_session(Mode.AGENT, "s1"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    def reader() -> None:
        started.wait()
        try:
            store.read("s1")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, daemon=True), threading.Thread(target=reader, daemon=True)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    assert not any(th.is_alive() for th in threads), "deadlock"
    assert errors == []
    assert store.read("s1") is not None


def test_connections_of_finished_threads_are_closed(tmp_path: Path) -> None:
    store = SqliteStorage("s", db_file=tmp_path / "x.db")
    store.upsert(make_session(Mode.AGENT, "s1"))

    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = fds()
    for _ in range(200):
        th = threading.Thread(target=store.read, args=("s1",))
        th.start()
        th.join()
    assert fds() - before < 20, "one connection per finished thread was kept open"


def test_empty_user_id_filters_mean_nobody_whatever_the_spelling(tmp_path: Path) -> None:
    path = tmp_path / "agno.db"
    shutil.copy(FIXTURES / "agno_agent.db", path)
    store = SqliteStorage("agent_sessions", db_file=path)
    sid = store.get_all_session_ids()[0]
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE agent_sessions SET user_id = NULL, agent_id = NULL WHERE session_id = ?", (sid,))
    got = store.read(sid, user_id="")
    assert got is not None and got.user_id is None
    assert sid in [s.session_id for s in store.list(user_id="")]
    assert sid in store.get_all_session_ids(entity_id="")
    assert store.delete(sid, user_id="") is True


def test_no_owner_spelled_null_or_empty_is_one_owner_on_either_engine(
    make_store: StoreFactory, backend: str, tmp_path: Path
) -> None:
    """agno writes no owner as NULL, Go as '': on both engines ``user_id=""`` finds both, neither is anyone's, and
    with claim_unowned=False a write with an owner takes neither."""
    if backend == "sqlite":  # agno's SQLite table: its user_id column may hold NULL
        shutil.copy(FIXTURES / "agno_agent.db", tmp_path / "sessions.db")
    store = make_store(table_name="agent_sessions", claim_unowned=False)
    table = getattr(store, "qualified_table", '"agent_sessions"')
    store.upsert_many(make_session(Mode.AGENT, sid, user_id="u") for sid in ("null", "empty"))
    with store.transaction() as conn:
        conn.execute(f"UPDATE {table} SET user_id = NULL WHERE session_id = 'null'")
        conn.execute(f"UPDATE {table} SET user_id = '' WHERE session_id = 'empty'")
    assert sorted(s.session_id for s in store.list(user_id="") if s.session_id in ("null", "empty")) == [
        "empty",
        "null",
    ]
    for sid in ("null", "empty"):
        got = store.read(sid, user_id="")
        assert got is not None and got.user_id is None, sid
        assert store.read(sid, user_id="alice") is None
        with pytest.raises(OwnershipError, match="has no owner"):
            store.upsert(make_session(Mode.AGENT, sid, user_id="alice", memory={"lost": 1}))
        stored = store.upsert(make_session(Mode.AGENT, sid, user_id=None, memory={"kept": sid}))
        assert stored.user_id is None
        assert store.delete(sid, user_id="alice") is False
        assert store.delete(sid, user_id="") is True


def test_star_import_needs_neither_agno_nor_psycopg() -> None:
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('agno', 'psycopg', 'psycopg_pool'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from agno_storage import *\n"
        "from agno_storage import open_storage, StorageError\n"
        "try:\n"
        "    open_storage('postgresql://u@h/db', 't')\n"
        "except StorageError as exc:\n"
        "    assert 'agno-session-storage[postgres]' in str(exc), exc\n"
        "else:\n"
        "    raise SystemExit('no error')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_wide_integer_values_keep_the_same_float_spelling_rules() -> None:
    # The stdlib path takes over for ints past 64 bits; the text stays valid JSON.
    assert codec.loads(codec.dumps({"b": 2**64, "f": 0.5})) == {"b": 2**64, "f": 0.5}
