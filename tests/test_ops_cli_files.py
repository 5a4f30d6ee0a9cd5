"""The files export and backup write and import reads: export's temporary file never writes through a link, the
files written are no more readable than what they replace or copy, import reads a pipe as it reads a file."""

from __future__ import annotations

import io
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from agno_storage.cli import main
from agno_storage.ops.db import open_database
from agno_storage.ops.export import export_table

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TABLE = "agent_sessions"


@pytest.mark.parametrize("leftover", ["a link to another file", "a dangling link", "a file"])
def test_export_never_writes_through_what_is_already_at_its_temporary_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], leftover: str
) -> None:
    out = tmp_path / "x.jsonl"
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    partial = Path(f"{out}.partial")
    if leftover == "a link to another file":
        partial.symlink_to(victim)
    elif leftover == "a dangling link":
        partial.symlink_to(tmp_path / "made.txt")
    else:
        partial.write_text("what a stopped export left")
    assert main(["export", str(FIXTURES / "go_agent.db"), "--table", TABLE, "-o", str(out)]) == 0
    whole = io.BytesIO()
    with open_database(str(FIXTURES / "go_agent.db")) as db:
        export_table(db, TABLE, whole)
    assert out.read_bytes() == whole.getvalue()
    assert victim.read_text() == "keep me"
    assert not (tmp_path / "made.txt").exists()
    assert partial.is_symlink() or partial.read_text() == "what a stopped export left"  # not the export's: left
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"x.jsonl", "victim.txt", partial.name})


def test_two_exports_to_one_file_at_once_leave_it_whole_and_both_succeed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each writes a temporary file of its own: neither removes nor moves the other's half-written one."""
    from agno_storage.ops import export as export_ops

    out = tmp_path / "x.jsonl"
    real = export_ops.export_table
    inner: list[int] = []

    def export_table(db: Any, table: str, sink: Any, **kwargs: Any) -> Any:
        if inner:  # the second export: as it is
            return real(db, table, sink, **kwargs)
        inner.append(-1)
        sink.write(b"half of the first export's lines\n")
        # The second export runs whole while the first is half written.
        inner[0] = main(["export", str(FIXTURES / "go_agent.db"), "--table", TABLE, "-o", str(out)])
        return real(db, table, _Rest(sink), **kwargs)

    monkeypatch.setattr(export_ops, "export_table", export_table)
    assert main(["export", str(FIXTURES / "go_agent.db"), "--table", TABLE, "-o", str(out)]) == 0
    assert inner == [0]
    monkeypatch.setattr(export_ops, "export_table", real)
    whole = io.BytesIO()
    with open_database(str(FIXTURES / "go_agent.db")) as db:
        real(db, TABLE, whole)
    assert out.read_bytes() == whole.getvalue()
    assert [p.name for p in tmp_path.iterdir()] == ["x.jsonl"]


class _Rest:
    """A sink that starts the file over: what the fake wrote first is not part of the export."""

    def __init__(self, sink: Any) -> None:
        sink.seek(0)
        sink.truncate()
        self._sink = sink

    def write(self, data: bytes) -> int:
        return int(self._sink.write(data))


def test_import_reads_a_named_pipe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = tmp_path / "x.jsonl"
    assert main(["export", str(FIXTURES / "go_agent.db"), "--table", TABLE, "-o", str(lines)]) == 0
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def feed() -> None:
        with fifo.open("wb") as pipe:
            pipe.write(lines.read_bytes())

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        code = main(["import", str(tmp_path / "t.db"), "--table", TABLE, str(fifo)])
    finally:
        if feeder.is_alive():  # import refused it unread: let the writer finish
            with fifo.open("rb") as pipe:
                pipe.read()
        feeder.join()
    assert code == 0
    assert "imported" in capsys.readouterr().out


def test_import_still_refuses_a_folder_or_no_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(FIXTURES / "go_agent.db", tmp_path / "t.db")
    assert main(["import", str(tmp_path / "t.db"), "--table", TABLE, str(tmp_path)]) == 1
    assert "is a folder" in capsys.readouterr().err
    assert main(["import", str(tmp_path / "t.db"), "--table", TABLE, str(tmp_path / "none.jsonl")]) == 1
    assert "no file" in capsys.readouterr().err


def test_import_from_a_closed_stdin_and_export_to_an_empty_name_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "t.db"
    shutil.copy(FIXTURES / "go_agent.db", db)
    monkeypatch.setattr("sys.stdin", None)  # what Python makes of a closed stdin (``<&-``)
    assert main(["import", str(db), "--table", "copy", "-"]) == 2
    assert "stdin is closed" in capsys.readouterr().err
    assert main(["export", str(db), "--table", TABLE, "-o", ""]) == 2
    assert "-o" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.db"]


@pytest.mark.parametrize("output", ["none/x.jsonl", "t.db/x.jsonl", "new/"], ids=["no-folder", "under-a-file", "slash"])
def test_export_to_a_place_it_cannot_write_names_that_place_not_its_temporary_file(
    output: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(FIXTURES / "go_agent.db", tmp_path / "t.db")
    assert main(["export", "t.db", "--table", TABLE, "-o", output]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and repr(output) in err and ".partial" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.db"]


_STALLED_EXPORT = """
import sys, time
from agno_storage.cli import main
from agno_storage.ops import export as export_ops

real = export_ops.export_table

def stalled(db, table, sink, **kwargs):
    summary = real(db, table, sink, **kwargs)
    sink.flush()
    print("written", flush=True)
    time.sleep(60)  # killed here, its temporary file whole but not yet moved in place
    return summary

export_ops.export_table = stalled
sys.exit(main(sys.argv[1:]))
"""


def test_an_export_killed_with_sigterm_leaves_no_temporary_file(tmp_path: Path) -> None:
    """As a service manager stops it (``kill``): the temporary file is removed, exit 143, no output appears."""
    import signal
    import subprocess
    import sys

    out = tmp_path / "x.jsonl"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _STALLED_EXPORT,
            "export",
            str(FIXTURES / "go_agent.db"),
            "--table",
            TABLE,
            "-o",
            str(out),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "written\n"
        assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")]  # there while it runs
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=30) == 143
    finally:
        child.kill()
    assert list(tmp_path.iterdir()) == []


def test_an_export_to_a_long_file_name_fits_its_temporary_file_in_255_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / ("n" * 245 + ".jsonl")  # 251 bytes: the file system's limit is 255
    assert main(["export", str(FIXTURES / "go_agent.db"), "--table", TABLE, "-o", str(out)]) == 0
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


@pytest.mark.parametrize("host_handles_sigterm", [False, True])
def test_export_stops_on_sigterm_only_where_the_process_would_anyway(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, host_handles_sigterm: bool
) -> None:
    """A program calling ``main`` that handles SIGTERM itself keeps its handler while an export runs."""
    import signal

    from agno_storage.ops import export as export_ops

    def host(signum: int, frame: object) -> None:
        raise AssertionError("not sent here")

    seen: list[object] = []
    real = export_ops.export_table

    def export_table(*args: Any, **kwargs: Any) -> Any:
        seen.append(signal.getsignal(signal.SIGTERM))
        return real(*args, **kwargs)

    monkeypatch.setattr(export_ops, "export_table", export_table)
    previous = signal.signal(signal.SIGTERM, host if host_handles_sigterm else signal.SIG_DFL)
    try:
        assert main(["export", str(FIXTURES / "go_agent.db"), "--table", TABLE, "-o", str(tmp_path / "x.jsonl")]) == 0
        assert signal.getsignal(signal.SIGTERM) is (host if host_handles_sigterm else signal.SIG_DFL)
    finally:
        signal.signal(signal.SIGTERM, previous)
    (during,) = seen
    assert (during is host) if host_handles_sigterm else callable(during)


def test_an_export_to_a_file_name_that_is_not_utf8_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / os.fsdecode(b"\xff.jsonl")
    assert main(["export", str(FIXTURES / "go_agent.db"), "--table", TABLE, "-o", str(out)]) == 0
    assert [p.name for p in tmp_path.iterdir()] == [out.name] and out.stat().st_size > 0


@pytest.fixture
def umask_022() -> Any:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.mark.usefixtures("umask_022")
def test_export_over_a_file_keeps_its_mode_and_a_new_file_gets_the_umasks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As writing into the file (``>``) keeps it: an export of conversations over a 0600 file is no one else's."""
    for kept in (0o600, 0o640, 0o666):
        out = tmp_path / f"{kept:o}.jsonl"
        out.write_text("an older export")
        out.chmod(kept)
        assert main(["export", str(FIXTURES / "go_agent.db"), "--table", TABLE, "-o", str(out)]) == 0
        assert mode(out) == kept and out.read_text() != "an older export"
    assert main(["export", str(FIXTURES / "go_agent.db"), "--table", TABLE, "-o", str(tmp_path / "new.jsonl")]) == 0
    assert mode(tmp_path / "new.jsonl") == 0o644


@pytest.mark.usefixtures("umask_022")
@pytest.mark.parametrize(
    ("source_mode", "copy_mode"),
    [(0o600, 0o600), (0o640, 0o640), (0o666, 0o644), (0o444, 0o444)],
    ids=["0600", "0640", "0666", "0444"],
)
def test_a_backup_has_the_sources_mode_less_the_umask(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source_mode: int, copy_mode: int
) -> None:
    """As ``cp`` makes a copy: no one may read the backup who may not read the database (a read-only
    database's backup is read-only too)."""
    source = tmp_path / "src.db"
    shutil.copy(FIXTURES / "go_agent.db", source)
    source.chmod(source_mode)
    assert main(["backup", str(source), str(tmp_path / "copy.db")]) == 0
    assert mode(tmp_path / "copy.db") == copy_mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.db", "src.db"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="only root gives a file to another user")
def test_export_by_root_over_another_users_file_leaves_it_theirs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.jsonl"
    out.write_text("an older export")
    os.chown(out, 65534, 65534)
    out.chmod(0o600)
    assert main(["export", str(FIXTURES / "go_agent.db"), "--table", TABLE, "-o", str(out)]) == 0
    assert (out.stat().st_uid, out.stat().st_gid, mode(out)) == (65534, 65534, 0o600)


def test_export_over_a_file_syncs_the_new_file_before_it_takes_the_name_and_the_folder_after(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A power cut must leave the old export or the new one whole: a rename that reaches the disk before the
    bytes it names would leave an empty file where yesterday's export was. (A small table: its lines are still
    in the file object's buffer until flushed, where a large one's went to the kernel as they were written.)"""
    from agno_storage import AgentSession, SqliteStorage

    db = tmp_path / "small.db"
    with SqliteStorage(TABLE, db_file=db) as store:
        store.upsert(AgentSession(session_id="s1", user_id="u", agent_id="a", memory={"runs": []}))
    out = tmp_path / "x.jsonl"
    out.write_text("yesterday's export")
    # (the file's inode, or "folder"; the output's inode then; the file's size then, as the kernel has it)
    synced: list[tuple[int | str, int, int | None]] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        folder = os.path.isdir(f"/proc/self/fd/{fd}")
        what = "folder" if folder else os.fstat(fd).st_ino
        synced.append((what, os.stat(out).st_ino, None if folder else os.fstat(fd).st_size))
        real_fsync(fd)

    old = out.stat().st_ino
    monkeypatch.setattr(os, "fsync", fsync)
    assert main(["export", str(db), "--table", TABLE, "-o", str(out)]) == 0
    new, size = out.stat().st_ino, out.stat().st_size
    assert 0 < size < io.DEFAULT_BUFFER_SIZE
    assert (new, old, size) in synced, synced  # all its bytes on disk before it took the name
    assert ("folder", new, None) in synced  # and the name on disk once it has it


def test_a_backup_is_on_disk_before_it_takes_its_name_and_its_name_after(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a power cut, DEST is the whole checked copy or not there: never a name for bytes not yet written."""
    dest = tmp_path / "b.db"
    synced: list[tuple[int | str, int | None]] = []  # (the file's inode, or "folder"; DEST's inode then)
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        what = "folder" if os.path.isdir(f"/proc/self/fd/{fd}") else os.fstat(fd).st_ino
        synced.append((what, dest.stat().st_ino if dest.exists() else None))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    assert main(["backup", str(FIXTURES / "go_agent.db"), str(dest)]) == 0
    new = dest.stat().st_ino
    assert (new, None) in synced
    assert ("folder", new) in synced


def test_export_to_a_folder_is_refused_before_anything_is_read_or_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not after a whole export, with an error naming a temporary file the user never gave."""
    from agno_storage.ops import export as export_ops

    folder = tmp_path / "out"
    folder.mkdir()
    read: list[str] = []
    monkeypatch.setattr(export_ops, "export_table", lambda *args, **kwargs: read.append("read"))
    assert main(["export", str(FIXTURES / "go_agent.db"), "--table", TABLE, "-o", str(folder)]) == 2
    err = capsys.readouterr().err
    assert f"{str(folder)!r} is a folder" in err and ".partial" not in err
    assert read == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and not any(folder.iterdir())


@pytest.mark.parametrize("output", ["/dev/stdout", "/proc/self/fd/1", "/dev/fd/1"])
@pytest.mark.parametrize("into", ["a file opened to append", "a pipe"])
def test_export_to_a_path_naming_stdout_writes_the_lines_alone_through_it(
    tmp_path: Path, output: str, into: str
) -> None:
    """``-o /dev/stdout >> log`` replaced log (the export moved over it), and the summary line went into the
    stream, where import then stopped at it: the path writes through the descriptor, lines only, as ``-o -``."""
    import subprocess
    import sys

    whole = io.BytesIO()
    with open_database(str(FIXTURES / "go_agent.db")) as db:
        export_table(db, TABLE, whole)
    args = [sys.executable, "-m", "agno_storage", "export", str(FIXTURES / "go_agent.db"), "--table", TABLE]
    if into == "a pipe":
        done = subprocess.run([*args, "-o", output], capture_output=True, check=False)
        assert (done.returncode, done.stdout) == (0, whole.getvalue()), done.stderr
        return
    log = tmp_path / "log.txt"
    log.write_bytes(b"precious line\n")
    with open(log, "ab") as sink:
        done = subprocess.run([*args, "-o", output], stdout=sink, stderr=subprocess.PIPE, check=False)
    assert done.returncode == 0, done.stderr
    assert log.read_bytes() == b"precious line\n" + whole.getvalue()
