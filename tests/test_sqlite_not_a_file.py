"""A SQLite path that names a directory, a named pipe (FIFO), a device or a socket is refused before it is opened.

SQLite opens whatever a path names: a device (``/dev/null``) takes the
writes and leaves a ``-journal`` beside it, a FIFO blocks a read-only open
until some writer comes, a directory fails with "unable to open". Each
entry point that opens a SQLite file refuses such a path with an
InvalidInputError naming it and what it is, makes no file beside it, and
returns.
"""

from __future__ import annotations

import functools
import os
import socket
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from agno_storage import AgentSession, DatabaseReplacedError, InvalidInputError, SqliteStorage
from agno_storage.agno3 import to_agno3
from agno_storage.cli import main
from agno_storage.models import Mode
from agno_storage.ops.backup import backup
from agno_storage.ops.db import open_database, open_store
from agno_storage.ops.prune import vacuum
from agno_storage.web.source import open_source

#: Seconds a refusal may take: a call still running then is hung (a FIFO's open waits for a writer for ever).
TIMEOUT = 20.0
TABLE = "agent_sessions"
SIDES = ("-journal", "-wal", "-shm")
#: What each path is called in the refusal.
KINDS = {
    "fifo": "is a named pipe (FIFO)",
    "directory": "is a directory",
    "device": "is a character device",
    "socket": "is a socket",
}


@pytest.fixture(params=sorted(KINDS))
def odd(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    """A path that is not a regular file, and the words its refusal names it by."""
    kind: str = request.param
    if kind == "device":
        return Path(os.devnull), KINDS[kind]
    path = tmp_path / "odd.db"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(path))  # the name stays when the socket closes
    else:
        path.mkdir()
    return path, KINDS[kind]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A database with one session, in a folder of its own (the odd path's folder is checked for new files)."""
    folder = tmp_path / "src"
    folder.mkdir()
    db = folder / "src.db"
    with SqliteStorage(TABLE, db_file=db) as store:
        store.upsert(AgentSession(session_id="s1", agent_id="a", user_id="u"))
    return db


def _release(path: Path) -> None:
    """Let a call blocked opening the FIFO ``path`` for reading go on: a writer's open is what it waits for."""
    if stat.S_ISFIFO(os.stat(path).st_mode):
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:  # no reader (any more)
            pass


def _outcome(call: Callable[[], object], path: Path) -> object:
    """What ``call`` returned or raised; the test fails if it has not returned after TIMEOUT seconds."""
    box: list[object] = []

    def run() -> None:
        try:
            box.append(call())
        except BaseException as exc:
            box.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(TIMEOUT)
    if thread.is_alive():
        _release(path)
        thread.join(TIMEOUT)
        pytest.fail(f"the call on {path} did not return within {TIMEOUT} s")
    return box[0]


def _listing(path: Path) -> list[str]:
    """What is in ``path``'s folder (and in ``path``, a directory): what a refusal must leave as it was."""
    if path.parent == Path(os.devnull).parent:  # /dev changes by itself; only the side files are checked
        return []
    inside = sorted(os.listdir(path)) if path.is_dir() else []
    return sorted(os.listdir(path.parent)) + inside


def assert_refused(odd: tuple[Path, str], call: Callable[[], object]) -> str:
    """``call`` raises InvalidInputError naming the path and what it is, returns, and creates no file; its
    message."""
    path, kind = odd
    before = _listing(path)
    outcome = _outcome(call, path)
    assert isinstance(outcome, InvalidInputError), repr(outcome)
    assert str(outcome).endswith(f"{str(path)!r} {kind}, not a database file"), str(outcome)
    for suffix in SIDES:
        assert not os.path.lexists(f"{path}{suffix}"), f"{path}{suffix} was created"
    assert _listing(path) == before
    return str(outcome)


def assert_cli_refused(
    odd: tuple[Path, str], capsys: pytest.CaptureFixture[str], argv: Callable[[Path], list[str]]
) -> None:
    """The command exits 2 with the refusal's words on stderr, returns, and creates no file."""
    path, kind = odd
    before = _listing(path)
    code = _outcome(lambda: main([str(a) for a in argv(path)]), path)
    err = capsys.readouterr().err
    assert code == 2, (code, err)
    assert err.startswith("agno-storage: error: ") and err.endswith(f"{str(path)!r} {kind}, not a database file\n"), err
    for suffix in SIDES:
        assert not os.path.lexists(f"{path}{suffix}"), f"{path}{suffix} was created"
    assert _listing(path) == before


# --- the store ---------------------------------------------------------------


def test_the_store_refuses_a_path_that_is_not_a_file(odd: tuple[Path, str]) -> None:
    path = odd[0]

    def write() -> None:
        with SqliteStorage(TABLE, db_file=path) as store:
            store.upsert(AgentSession(session_id="s1", agent_id="a"))

    assert_refused(odd, write)


def test_the_store_refuses_it_read_only_and_by_url(odd: tuple[Path, str]) -> None:
    path = odd[0]
    assert_refused(odd, lambda: SqliteStorage(TABLE, db_file=path, read_only=True))
    assert_refused(odd, lambda: SqliteStorage(TABLE, db_url=f"sqlite:///{path}"))


def test_a_link_to_a_file_and_a_new_file_are_still_a_database(tmp_path: Path, source: Path) -> None:
    link = tmp_path / "link.db"
    link.symlink_to(source)
    with SqliteStorage(TABLE, db_file=link, read_only=True) as store:
        assert [s.session_id for s in store.get_all_sessions()] == ["s1"]
    with SqliteStorage(TABLE, db_file=tmp_path / "new" / "new.db") as store:
        store.upsert(AgentSession(session_id="s2", agent_id="a"))
    with SqliteStorage(TABLE, db_file=":memory:") as store:
        assert store.get_all_sessions() == []


# --- the operations: reading -------------------------------------------------


def test_reading_it_is_refused(odd: tuple[Path, str]) -> None:
    """export, doctor, tables, backup's source: every raw read-only connection."""
    path = odd[0]
    assert_refused(odd, lambda: open_database(str(path)))
    assert_refused(odd, lambda: vacuum(str(path), TABLE))


def test_backing_it_up_or_into_it_is_refused(odd: tuple[Path, str], source: Path) -> None:
    path = odd[0]
    assert_refused(odd, lambda: backup(str(path), source.parent / "copy.db"))
    assert_refused(odd, lambda: backup(str(source), path))


def test_serving_it_is_refused(odd: tuple[Path, str]) -> None:
    assert_refused(odd, lambda: open_source(str(odd[0])))


# --- the operations: writing -------------------------------------------------


def test_copying_or_importing_into_it_is_refused(odd: tuple[Path, str]) -> None:
    """copy's and import's DST is opened with :func:`open_store`."""
    assert_refused(odd, lambda: open_store(str(odd[0]), TABLE, Mode.AGENT))


def test_migrating_from_or_into_it_is_refused(odd: tuple[Path, str], source: Path) -> None:
    path = odd[0]
    for src, dst, what in ((path, source.parent / "a3.db", "SRC"), (source, path, "DST")):
        for dry_run in (False, True):
            said = assert_refused(odd, functools.partial(to_agno3, str(src), str(dst), workers=0, dry_run=dry_run))
            assert said.startswith(f"{what} '"), said


# --- the commands -------------------------------------------------------------


COMMANDS: dict[str, Callable[[Path, Path], list[str | Path]]] = {
    "copy DST": lambda odd, src: ["copy", src, odd, "--table", TABLE],
    "import DST": lambda odd, src: ["import", odd, src.parent / "x.jsonl", "--table", TABLE],
    "export": lambda odd, src: ["export", odd, "--table", TABLE],
    "info": lambda odd, src: ["info", odd, "--table", TABLE],
    "list": lambda odd, src: ["list", odd, "--table", TABLE],
    "tables": lambda odd, src: ["tables", odd],
    "doctor": lambda odd, src: ["doctor", odd],
    "prune": lambda odd, src: ["prune", odd, "--table", TABLE, "--older-than", "1d"],
    "backup SRC": lambda odd, src: ["backup", odd, src.parent / "copy.db"],
    "backup DEST": lambda odd, src: ["backup", src, odd],
    "to-agno3 SRC": lambda odd, src: ["to-agno3", odd, src.parent / "a3.db", "--workers", "0"],
    "to-agno3 DST": lambda odd, src: ["to-agno3", src, odd, "--workers", "0"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_refuses_it(
    command: str, odd: tuple[Path, str], source: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = source.parent / "x.jsonl"
    assert main(["export", str(source), "--table", TABLE, "-o", str(lines)]) == 0
    capsys.readouterr()
    assert_cli_refused(odd, capsys, lambda path: [str(a) for a in COMMANDS[command](path, source)])


def test_serve_refuses_it_before_listening(odd: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert_cli_refused(odd, capsys, lambda path: ["serve", str(path), "--port", "0"])


def test_a_file_replaced_by_a_fifo_is_refused_where_a_new_connection_would_wait(source: Path) -> None:
    """A store and serve open a connection per thread: one opened after the file was replaced by a named pipe
    is refused. A read-only one waited for a writer for ever (a request's thread with it); a store's read or
    write failed with "disk I/O error" where a replaced file is DatabaseReplacedError."""
    stores = [SqliteStorage(TABLE, db_file=source, read_only=True), SqliteStorage(TABLE, db_file=source)]
    served = open_source(str(source))
    try:
        fifo = source.with_name("pipe")
        os.mkfifo(fifo)
        os.replace(fifo, source)
        words = f"{str(source)!r} {KINDS['fifo']}, not a database file"
        for store in stores:
            write = functools.partial(store.upsert, AgentSession(session_id="s2", agent_id="a"))
            for call in (store.get_all_sessions, write):
                outcome = _outcome(call, source)  # in a thread of its own: a new connection
                assert isinstance(outcome, DatabaseReplacedError) and words in str(outcome), repr(outcome)
        outcome = _outcome(lambda: served.tables(count_rows=False), source)
        assert isinstance(outcome, InvalidInputError) and str(outcome) == words, repr(outcome)
    finally:
        for store in stores:
            store.close()
        served.close()
