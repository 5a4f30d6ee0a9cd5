"""One SQLite error translation for the store, the operations and the HTTP server."""

from __future__ import annotations

import resource
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from agno_storage import SqliteStorage
from agno_storage.backends.sqlite_errors import text_or_bytes, translate
from agno_storage.errors import BusyError, DiskFullError, ReadOnlyDatabaseError, StorageError, TableNotFoundError
from agno_storage.models import Mode
from agno_storage.ops.db import open_database
from agno_storage.web.source import SqliteSource
from tests.sessions import make_session


def test_an_error_of_no_table_is_worded_without_one() -> None:
    missing = translate(sqlite3.OperationalError("no such table: x"))
    assert type(missing) is TableNotFoundError and missing.table is None
    assert str(missing) == "a table is not there: no such table: x"
    other = translate(sqlite3.OperationalError("near 'x': syntax error"))
    assert type(other) is StorageError and str(other) == "SQLite error: near 'x': syntax error"
    named = translate(sqlite3.OperationalError("no such table: x"), "x")
    assert str(named) == "table 'x' is not there: no such table: x" and named.table == "x"


def test_a_folder_sqlite_cannot_make_a_file_in_is_said_to_be_what_stops_it() -> None:
    """SQLITE_READONLY_DIRECTORY (a folder this process may not write, as file modes make it for a user who is
    not root, so it is raised here by hand): the file may not even be read (a WAL-mode file needs its -shm)."""
    exc = sqlite3.OperationalError("attempt to write a readonly database")
    exc.sqlite_errorcode = sqlite3.SQLITE_READONLY | (6 << 8)  # type: ignore[attr-defined]
    error = translate(exc, "agent_sessions")
    assert type(error) is ReadOnlyDatabaseError and error.table == "agent_sessions"
    assert "folder cannot be written" in error.message and "-shm" in error.message
    plain = sqlite3.OperationalError("attempt to write a readonly database")
    plain.sqlite_errorcode = sqlite3.SQLITE_READONLY  # type: ignore[attr-defined]
    assert "folder cannot be written" not in translate(plain).message


def test_the_server_and_the_store_name_a_locked_database_alike(tmp_path: Path) -> None:
    db = tmp_path / "locked.db"
    with SqliteStorage("agent_sessions", db_file=db) as store:
        store.upsert(make_session(Mode.AGENT, "a"))
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
    source = SqliteSource(db, busy_timeout=0.05)
    store = SqliteStorage("agent_sessions", db_file=db, busy_timeout=0.05, read_only=True)
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(BusyError) as by_server:
            source.query('SELECT COUNT(*) FROM "agent_sessions"', (), table="agent_sessions")
        with pytest.raises(BusyError) as by_store:
            store.count()
        assert str(by_server.value) == str(by_store.value)
        assert by_server.value.table == by_store.value.table == "agent_sessions"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        store.close()
        source.close()


def test_the_server_names_a_missing_table(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    sqlite3.connect(db).close()
    source = SqliteSource(db)
    try:
        with pytest.raises(TableNotFoundError) as caught:
            source.query('SELECT * FROM "gone"', (), table="gone")
        assert caught.value.table == "gone"
    finally:
        source.close()


def test_text_that_is_not_utf8_reads_as_its_bytes_on_every_connection(tmp_path: Path) -> None:
    assert text_or_bytes("é".encode()) == "é"
    assert text_or_bytes(b"\xff") == b"\xff"
    db = tmp_path / "latin1.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.execute("INSERT INTO notes VALUES (CAST(X'ff41' AS TEXT)), ('plain')")
    source = SqliteSource(db)
    try:
        assert source.query("SELECT body FROM notes ORDER BY rowid", ()) == [(b"\xffA",), ("plain",)]
    finally:
        source.close()
    with open_database(str(db), lenient_text=True) as ops_db:
        assert ops_db.query("SELECT body FROM notes ORDER BY rowid") == [(b"\xffA",), ("plain",)]


#: Prints the type of the error ``translate`` makes of a failed write to the file ``sys.argv[1]``.
_TRANSLATE = """
import sqlite3, sys
from agno_storage.backends.sqlite_errors import translate
error = sqlite3.OperationalError("disk I/O error")
error.sqlite_errorcode = 778  # SQLITE_IOERR_WRITE
print(type(translate(error, "t", sys.argv[1])).__name__)
"""


def _translated_under_limit(db: Path, limit: int | None) -> str:
    """The type name of the error a failed write to ``db`` is, in a child process whose files stop at ``limit``."""

    def limit_files() -> None:
        if limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills it at the limit
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    done = subprocess.run(
        [sys.executable, "-c", _TRANSLATE, str(db)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=60,
        check=False,
        preexec_fn=limit_files,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_failed_write_is_a_full_disk_only_at_the_file_size_limit(tmp_path: Path) -> None:
    """SQLite reports every failed write() that is not ENOSPC as SQLITE_IOERR_WRITE: only one that left a file
    of the database at the process's file-size limit is a DiskFullError; an I/O error stays a StorageError,
    with no limit and under one alike."""
    db = tmp_path / "x.db"
    db.write_bytes(b"x" * 4096)
    error = sqlite3.OperationalError("disk I/O error")
    error.sqlite_errorcode = 778  # type: ignore[attr-defined]  # SQLITE_IOERR_WRITE
    plain = translate(error, "t", str(db))
    assert type(plain) is StorageError and not isinstance(plain, DiskFullError)
    assert _translated_under_limit(db, None) == "StorageError"
    assert _translated_under_limit(db, 1 << 20) == "StorageError"  # a limit the file is far from
    Path(f"{db}-wal").write_bytes(b"w" * (1 << 20))  # its WAL at the limit: the limit stopped the write
    assert _translated_under_limit(db, 1 << 20) == "DiskFullError"
