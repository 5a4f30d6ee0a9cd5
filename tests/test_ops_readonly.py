"""The inspecting commands (info, list, show, tables, doctor, export, history, search, usage) never change a SQLite file.

Not its bytes, not its journal mode, not the frames waiting in its -wal; and a
file or folder this process may not write can still be inspected.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import sqlite3
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest

from agno_storage import AgentSession, DatabaseCorruptError, ReadOnlyDatabaseError, SqliteStorage
from agno_storage.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def inspections(path: Path, table: str, session_id: str) -> list[tuple[list[str], int]]:
    """Every inspecting command on ``path`` with the exit status it must give."""
    db = str(path)
    return [
        (["info", db, "--table", table], 0),
        (["list", db, "--table", table], 0),
        (["list", db, "--table", table, "--json"], 0),
        (["show", db, "--table", table, session_id], 0),
        (["show", db, "--table", table, "no-such-session"], 1),
        (["list", db, "--table", "no_such_table"], 1),
        (["tables", db], 0),
        (["doctor", db], 0),
        (["export", db, "--table", table], 0),
        (["history", db, "--table", table, session_id], 0),
        (["search", db, "--table", table, "the"], 0),
        (["usage", db, "--table", table], 0),
    ]


def run_all(commands: list[tuple[list[str], int]]) -> None:
    for argv, status in commands:
        assert (argv[0], main(argv)) == (argv[0], status)


def state(path: Path) -> tuple[str, list[tuple[str, str]]]:
    """(journal mode from the file's header, [(name, sha256)] of every file in its folder)."""
    versions = path.read_bytes()[18:20]  # the header's write and read versions: 1 rollback journal, 2 WAL
    files = sorted((p.name, hashlib.sha256(p.read_bytes()).hexdigest()) for p in path.parent.iterdir())
    return {b"\x01\x01": "delete", b"\x02\x02": "wal"}[versions], files


def test_info_list_show_leave_an_agno_rollback_journal_file_byte_for_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "agno_agent.db"
    shutil.copy(FIXTURES / "agno_agent.db", path)
    before = state(path)
    assert before[0] == "delete"  # agno 1.x's file: a store's first write would switch it to WAL
    run_all(inspections(path, "agent_sessions", "agent-01"))
    assert "journal_mode=delete (WAL from the first write)" in capsys.readouterr().out
    assert state(path) == before  # bytes, journal mode, and no -wal / -shm / -journal left beside it


def test_inspection_leaves_the_frames_of_a_wal_file_where_they_are(tmp_path: Path) -> None:
    """A -wal holding committed frames stays as it is: no checkpoint into the file on close."""
    live = tmp_path / "live"
    live.mkdir()
    shutil.copy(FIXTURES / "go_agent_conversation.db", live / "go.db")
    writer = sqlite3.connect(live / "go.db", isolation_level=None)
    writer.execute("PRAGMA journal_mode = WAL")
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("""UPDATE agent_sessions SET memory = '{"after": "the last checkpoint"}'""")
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("go.db", "go.db-wal"):  # as a crashed writer leaves them
        shutil.copy(live / name, copy / name)
    writer.close()
    path = copy / "go.db"
    files = sorted((p.name, hashlib.sha256(p.read_bytes()).hexdigest()) for p in copy.iterdir())
    run_all(inspections(path, "agent_sessions", "agent-existing"))
    # mode=ro adds the -shm index SQLite needs to read a WAL file; the file and its -wal are untouched.
    after = sorted(
        (p.name, hashlib.sha256(p.read_bytes()).hexdigest()) for p in copy.iterdir() if p.suffix != ".db-shm"
    )
    assert after == files
    store = SqliteStorage("agent_sessions", db_file=path, read_only=True)
    assert store.read("agent-existing").memory == {"after": "the last checkpoint"}  # type: ignore[union-attr]
    store.close()


def test_a_read_only_mode_file_with_no_sidecars_gets_an_empty_wal_and_shm(tmp_path: Path) -> None:
    """What docs/ops.md says of WAL files: a read-only open leaves -wal (empty) and -shm behind."""
    path = tmp_path / "go.db"
    shutil.copy(FIXTURES / "go_agent.db", path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["go.db"]
    assert main(["info", str(path), "--table", "agent_sessions"]) == 0
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["go.db", "go.db-shm", "go.db-wal"]
    assert (tmp_path / "go.db-wal").stat().st_size == 0
    # The next writer's last close removes them, as for any WAL file.
    SqliteStorage("agent_sessions", db_file=path).close()
    store = SqliteStorage("agent_sessions", db_file=path)
    store.upsert(AgentSession(session_id="s", agent_id="a"))
    store.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["go.db"]


def test_a_read_only_store_refuses_every_write(tmp_path: Path) -> None:
    path = tmp_path / "agno.db"
    shutil.copy(FIXTURES / "agno_agent.db", path)
    before = state(path)
    store = SqliteStorage("agent_sessions", db_file=path, read_only=True)
    assert store.count() == 16
    with pytest.raises(ReadOnlyDatabaseError, match="read_only=True"):
        store.upsert(AgentSession(session_id="new", agent_id="a"))
    with pytest.raises(ReadOnlyDatabaseError):
        store.delete("agent-01")
    other = SqliteStorage("new_table", db_file=path, read_only=True)
    assert other.read("x") is None
    with pytest.raises(ReadOnlyDatabaseError):
        other.create()
    store.close()
    other.close()
    assert state(path) == before


# --- without write permission -------------------------------------------------

_CAP_VERSION_3 = 0x20080522


def _drop_capabilities() -> None:
    """Give up every capability (root's CAP_DAC_OVERRIDE included): file modes then apply to root too."""

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.capset(ctypes.byref(Header(_CAP_VERSION_3, 0)), (Data * 2)()) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def without_write_permission(check: Callable[[], None]) -> None:
    """Run ``check`` in a forked child that file permissions bind (root gives up its capabilities)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        os.close(read_end)
        status = 0
        try:
            if os.geteuid() == 0:
                _drop_capabilities()
            check()
        except BaseException:
            os.write(write_end, traceback.format_exc().encode())
            status = 1
        finally:
            sys.stdout.flush()
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        failure = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, failure


@pytest.mark.skipif(sys.platform != "linux", reason="capabilities and fork: Linux")
@pytest.mark.parametrize("name", ["agno_agent.db", "go_agent_conversation.db"])
def test_a_read_only_file_in_a_read_only_folder_can_be_inspected(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / name
    shutil.copy(FIXTURES / name, path)
    before = state(path)
    session = "agent-01" if name.startswith("agno") else "agent-existing"
    path.chmod(0o444)
    folder.chmod(0o555)

    def check() -> None:
        with pytest.raises(PermissionError):  # the child really may not write here
            (folder / "probe").touch()
        with pytest.raises(PermissionError):
            path.open("ab")
        run_all(inspections(path, "agent_sessions", session))
        with pytest.raises(ReadOnlyDatabaseError):
            SqliteStorage("agent_sessions", db_file=path).upsert(AgentSession(session_id="x", agent_id="a"))

    try:
        without_write_permission(check)
    finally:
        folder.chmod(0o755)
        path.chmod(0o644)
    assert state(path) == before


# --- a database named as the files SQLite keeps beside another ------------------------------------------------


def folder_state(folder: Path) -> list[tuple[str, str]]:
    return sorted((p.name, hashlib.sha256(p.read_bytes()).hexdigest()) for p in folder.iterdir() if p.is_file())


@pytest.mark.parametrize("suffix", ["-journal", "-wal", "-shm"])
@pytest.mark.parametrize("how", ["its name", "a symbolic link", "a hard link"])
def test_copy_and_backup_refuse_a_new_database_whose_own_files_are_the_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str, how: str
) -> None:
    """SQLite takes ``DEST-journal`` (``-wal``, ``-shm``) for the new DEST's own and removes or overwrites it (or
    reads it with the backup's copy): a source by that name, under any name of its own, is refused before
    anything is written (DEST not there yet)."""
    folder = tmp_path / "f"
    folder.mkdir()
    dest = folder / "x.db"
    side = folder / f"x.db{suffix}"
    shutil.copy(FIXTURES / "go_agent.db", side)
    source = side
    if how == "a symbolic link":
        source = tmp_path / "link.db"
        source.symlink_to(side)
    elif how == "a hard link":
        source = tmp_path / "hard.db"
        os.link(side, source)
    before = folder_state(folder)
    assert main(["copy", str(source), "--table", "agent_sessions", str(dest)]) == 2
    assert "one of the files SQLite keeps beside the destination" in capsys.readouterr().err
    assert main(["backup", str(source), str(dest)]) == 2  # the copy would take the source for its own
    assert "x.db" in capsys.readouterr().err
    assert folder_state(folder) == before  # the source as it was, and no DEST
    assert main(["copy", str(source), "--table", "agent_sessions", str(folder / "other.db")]) == 0


@pytest.mark.parametrize("suffix", ["-wal", "-journal", "-shm"])
@pytest.mark.parametrize("how", ["its name", "a symbolic link", "a linked folder"])
def test_import_refuses_a_file_named_as_the_new_databases_own_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str, how: str
) -> None:
    """``import DEST FILE`` with FILE named ``DEST-wal`` (``-journal``, ``-shm``) and DEST not there yet: SQLite
    would take FILE for DEST's and remove or overwrite it while it is read; refused before anything is written."""
    folder = tmp_path / "f"
    folder.mkdir()
    dest = folder / "iw.db"
    lines = folder / f"iw.db{suffix}"
    assert main(["export", str(FIXTURES / "go_agent.db"), "--table", "agent_sessions", "-o", str(lines)]) == 0
    given_file, given_dest = lines, dest
    if how == "a symbolic link":
        given_file = tmp_path / "sessions.jsonl"
        given_file.symlink_to(lines)
    elif how == "a linked folder":
        (tmp_path / "alias").symlink_to(folder)
        given_dest = tmp_path / "alias" / "iw.db"
    before = folder_state(folder)
    capsys.readouterr()
    assert main(["import", str(given_dest), "--table", "agent_sessions", str(given_file)]) == 2
    assert "is the database" in capsys.readouterr().err
    assert folder_state(folder) == before  # the file as it was, and no DEST
    assert main(["import", str(folder / "other.db"), "--table", "agent_sessions", str(given_file)]) == 0


def test_an_empty_file_is_a_database_with_no_tables_that_inspection_leaves_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SQLite reads a 0-byte file as an empty database: doctor says it holds no tables (it said "all is well",
    as though it had checked sessions), and no inspecting command, nor a store's read, writes to it."""
    path = tmp_path / "empty.db"
    path.touch()
    db = str(path)
    run_all(
        [
            (["tables", db], 0),
            (["export", db, "--table", "agent_sessions"], 1),
            (["history", db, "--table", "agent_sessions", "s"], 1),
            (["list", db, "--table", "agent_sessions"], 1),
            (["prune", db, "--table", "agent_sessions", "--older-than", "1d", "--dry-run"], 1),
        ]
    )
    capsys.readouterr()
    assert main(["doctor", db]) == 0
    said = capsys.readouterr().out
    assert "the file (SQLite reads an empty file as an empty database) holds no tables" in said
    assert said.endswith("nothing to check: no tables\n") and "all is well" not in said
    for read_only in (True, False):
        store = SqliteStorage("agent_sessions", db_file=path, read_only=read_only)
        assert (store.read("s"), store.list(), store.count()) == (None, [], 0)
        store.close()
    assert [(p.name, p.stat().st_size) for p in tmp_path.iterdir()] == [("empty.db", 0)]


def test_a_text_file_is_refused_as_no_database_and_left_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that is not SQLite: doctor names it unreadable, the other commands and the store stop with
    DatabaseCorruptError (exit 2), and none of them writes to it or leaves a file beside it."""
    path = tmp_path / "notes.db"
    path.write_text("not a database, only text\n")
    db = str(path)
    commands = [
        ["tables", db],
        ["export", db, "--table", "agent_sessions"],
        ["history", db, "--table", "agent_sessions", "s"],
        ["prune", db, "--table", "agent_sessions", "--older-than", "1d"],
    ]
    for argv in commands:
        assert (argv[0], main(argv)) == (argv[0], 2)
        assert "not a database" in capsys.readouterr().err
    assert main(["doctor", db]) == 3
    assert "problem: SQLite cannot read the file" in capsys.readouterr().out
    with pytest.raises(DatabaseCorruptError, match="not a database"):
        SqliteStorage("agent_sessions", db_file=path)
    assert [(p.name, p.read_text()) for p in tmp_path.iterdir()] == [("notes.db", "not a database, only text\n")]
