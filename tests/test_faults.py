"""Fault injection: crashes, races, a full disk, damaged, replaced and read-only files, bad input.

Sized for CI; ``AGNO_STORAGE_STRESS=1`` (``make stress``) runs the same tests
larger. Every test asserts what a user relies on: no acknowledged write is
lost, a failed write leaves nothing behind, and every failure is a typed
:class:`~agno_storage.errors.StorageError`.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from agno_storage import (
    AgentSession,
    CorruptRowError,
    DatabaseCorruptError,
    DatabaseReplacedError,
    DiskFullError,
    InvalidInputError,
    ReadOnlyDatabaseError,
    SqliteStorage,
    StorageError,
)
from agno_storage.backends.batches import BATCH_SIZE
from agno_storage.models import Mode

STRESS = os.environ.get("AGNO_STORAGE_STRESS") == "1"
#: Processes that open one file at once, and the upserts each makes.
STARTERS = 8
UPSERTS = 200 if STRESS else 50
#: Rounds of the startup race, and of SIGKILL during a write.
RACE_ROUNDS = 10 if STRESS else 1
KILL_ROUNDS = 40 if STRESS else 6

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TABLE = "agent_sessions"


def _session(sid: str, **data: Any) -> AgentSession:
    return AgentSession(session_id=sid, user_id="u", agent_id="a", session_data=data or {"n": sid})


# --- several processes opening one file that is not yet in WAL mode ----------


def _start_and_write(path: str, writer: int, upgrade: bool, go: Any, out: Any) -> None:
    """Open the store as soon as ``go`` is set, upsert UPSERTS sessions; put every error's type on ``out``."""
    go.wait()
    errors: list[str] = []
    try:
        store = SqliteStorage(TABLE, db_file=path, auto_upgrade_schema=upgrade)
        for i in range(UPSERTS):
            try:
                store.upsert(_session(f"w{writer}-{i}", writer=writer, i=i))
            except StorageError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
        store.close()
    except StorageError as exc:
        errors.append(f"open: {type(exc).__name__}: {exc}")
    out.put(errors)


def _race(path: Path, *, upgrade: bool = False) -> list[str]:
    ctx = multiprocessing.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_start_and_write, args=(str(path), w, upgrade, go, out)) for w in range(STARTERS)]
    for proc in procs:
        proc.start()
    time.sleep(1.0)  # let every interpreter start, so they open the file together
    # Another program (agno, say) is reading the file as they start: SQLite refuses
    # to change the journal mode under its shared lock, without waiting.
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM sqlite_master").fetchone()
    go.set()
    time.sleep(0.3)
    reader.execute("COMMIT")
    reader.close()
    errors = [e for _ in procs for e in out.get(timeout=120)]
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    return errors


@pytest.mark.parametrize(
    "start_from",
    [
        "new file",  # table creation races too
        "agno 1.x file",  # agno's file is in rollback-journal mode
        "old agno 1.x file, upgraded on open",  # the migration races too
    ],
)
def test_processes_starting_on_one_file_at_once_all_succeed(tmp_path: Path, start_from: str) -> None:
    for round_ in range(RACE_ROUNDS):
        path = tmp_path / f"race{round_}.db"
        before = 0
        if start_from != "new file":
            shutil.copy(FIXTURES / ("agno_agent.db" if start_from == "agno 1.x file" else "agno_agent_pre12.db"), path)
            with sqlite3.connect(path) as conn:
                assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
                before = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
        errors = _race(path, upgrade=start_from.startswith("old"))
        assert errors == []
        store = SqliteStorage(TABLE, db_file=path)
        assert store.count() == before + STARTERS * UPSERTS
        assert store.schema_shape() is not None and store.schema_shape().version == 2  # type: ignore[union-attr]
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# --- SIGKILL in the middle of a write -------------------------------------------

GROUP = 2 * BATCH_SIZE + 200  # sessions per all-or-nothing write: three executemany batches


def _write_groups(path: str, how: str, ready: Any) -> None:
    """Write generations of GROUP sessions, each in one upsert_many or one transaction(), until killed."""
    store = SqliteStorage(TABLE, db_file=path)
    store.create()
    ready.set()
    for generation in range(1, 10**9):
        sessions = (_session(f"s{i}", generation=generation, pad="x" * 200) for i in range(GROUP))
        if how == "upsert_many":
            store.upsert_many(sessions)
        else:
            with store.transaction():
                for s in sessions:
                    store.upsert(s)


@pytest.mark.parametrize("how", ["upsert_many", "transaction"])
def test_sigkill_during_a_write_leaves_every_group_whole(tmp_path: Path, how: str) -> None:
    path = tmp_path / "killed.db"
    ctx = multiprocessing.get_context("spawn")
    generations_seen: set[int] = set()
    for round_ in range(KILL_ROUNDS):
        ready = ctx.Event()
        proc = ctx.Process(target=_write_groups, args=(str(path), how, ready))
        proc.start()
        assert ready.wait(60)
        time.sleep(0.05 + 0.37 * (round_ % 5) / 4)  # kill at different points of a group
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(60)
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        sessions = SqliteStorage(TABLE, db_file=path).list()
        # All or nothing: every session carries the generation of one whole write.
        generations = {s.session_data["generation"] for s in sessions if s.session_data}
        assert len(sessions) in (0, GROUP)
        assert len(generations) <= 1, f"a killed write left a mix of generations: {sorted(generations)}"
        generations_seen |= generations
    assert generations_seen, "no write ever committed before the kill"


# --- a full disk ------------------------------------------------------------------


@contextmanager
def _tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """``folder`` (made) on a tmpfs mounted with ``options``; skipped where mounting is not permitted."""
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a 2 MiB tmpfs; skipped where mounting is not permitted."""
    with _tmpfs(tmp_path / "small", "size=2m") as folder:
        yield folder


def test_an_export_onto_a_full_disk_says_which_file_it_could_not_write_and_leaves_none(
    tmp_path: Path, small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """export -o onto a disk that fills up: exit 2 with an error naming the output and the full disk (it was the
    bare "[Errno 28] No space left on device"), and no file, whole or partial, left there."""
    from agno_storage.cli import main

    db = tmp_path / "big.db"
    with SqliteStorage(TABLE, db_file=db) as store:
        store.upsert_many(_session(f"s{i}", pad=os.urandom(2000).hex()) for i in range(1000))
    output = small_disk / "out.jsonl"
    assert main(["export", str(db), "--table", TABLE, "-o", str(output)]) == 2
    err = capsys.readouterr().err
    assert repr(str(output)) in err and "disk is full" in err, err
    assert os.listdir(small_disk) == []


def test_a_full_disk_raises_loses_nothing_acknowledged_and_recovers(small_disk: Path) -> None:
    path = small_disk / "full.db"
    filler = small_disk / "filler"
    filler.write_bytes(b"f" * 1024 * 1024)
    store = SqliteStorage(TABLE, db_file=path)
    acknowledged: dict[str, int] = {}
    with pytest.raises(DiskFullError):
        for i in range(10_000):
            store.upsert(_session(f"s{i}", i=i, pad=os.urandom(2000).hex()))
            acknowledged[f"s{i}"] = i
    assert len(acknowledged) > 20
    with pytest.raises(DiskFullError):  # a batch fails whole
        store.upsert_many(_session(f"batch{i}", pad=os.urandom(2000).hex()) for i in range(200))
    store.close()
    fresh = SqliteStorage(TABLE, db_file=path)
    kept = {s.session_id: s.session_data["i"] for s in fresh.list() if s.session_data}
    assert kept == acknowledged, "an acknowledged session was lost, or a refused one kept"
    assert fresh.count() == len(acknowledged)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # Space freed: the same store writes again.
    filler.unlink()
    fresh.upsert(_session("after", pad="y"))
    fresh.upsert_many(_session(f"batch{i}") for i in range(200))
    assert fresh.read("after") is not None
    assert fresh.count() == len(acknowledged) + 201


def test_a_backup_onto_a_full_disk_raises_disk_full_and_leaves_no_file(small_disk: Path, tmp_path: Path) -> None:
    from agno_storage.ops.backup import backup

    source = tmp_path / "source.db"
    _populated(source, 3000)
    (small_disk / "filler").write_bytes(b"f" * 1024 * 1024)
    assert source.stat().st_size > 1024 * 1024
    with pytest.raises(DiskFullError, match="disk is full"):
        backup(str(source), small_disk / "copy.db")
    assert [p.name for p in small_disk.iterdir()] == ["filler"]


@pytest.mark.parametrize("free_files", [0, 1])
def test_a_backup_onto_a_disk_with_no_file_left_to_make_is_a_full_disk(tmp_path: Path, free_files: int) -> None:
    """A file system out of inodes is full too: no room for the copy, or for the journal SQLite makes beside it."""
    from agno_storage.ops.backup import backup

    source = tmp_path / "source.db"
    _populated(source)
    # The folder itself takes one inode; the filler the rest but ``free_files``.
    with _tmpfs(tmp_path / "few_files", f"size=2m,nr_inodes={2 + free_files}") as folder:
        (folder / "filler").touch()
        with pytest.raises(DiskFullError, match="no room"):
            backup(str(source), folder / "copy.db")
        assert [p.name for p in folder.iterdir()] == ["filler"]


def test_a_store_whose_folder_has_no_file_left_for_its_wal_is_a_full_disk(tmp_path: Path) -> None:
    """A new database file is made, but SQLite cannot make its WAL beside it: "unable to open database file"
    was a plain StorageError; it is a full disk, and the write is not kept."""
    # The folder and two fillers take an inode each, the database file the last one: none for its -wal and -shm.
    with _tmpfs(tmp_path / "few_files", "size=2m,nr_inodes=4") as folder:
        fillers = [folder / "f1", folder / "f2"]
        for filler in fillers:
            filler.touch()
        store = SqliteStorage(TABLE, db_file=folder / "x.db")
        try:
            with pytest.raises(DiskFullError, match="no inode left"):
                store.upsert(_session("s1"))
        finally:
            store.close()
        for filler in fillers:
            filler.unlink()
        with SqliteStorage(TABLE, db_file=folder / "x.db") as again:  # room again: the write goes through
            again.upsert(_session("s1"))
            assert again.read("s1") is not None


_IMPORT_WITH_A_FULL_TEMPORARY_FOLDER = """
import sys
from agno_storage.errors import StorageError
from agno_storage.ops.load import import_lines

try:
    with open(sys.argv[1], "rb") as lines:
        import_lines(lines, sys.argv[2], "agent_sessions")
except StorageError as exc:
    print(type(exc).__name__)
    print(exc.message)
"""


def test_an_import_whose_temporary_folder_fills_up_is_a_full_disk_saying_what_it_wrote(
    small_disk: Path, tmp_path: Path
) -> None:
    from agno_storage.ops.lines import header_for, make_converter

    # Import keeps the ids it wrote in a temporary file, which spills past SQLite's 2 MB cache: 3 MB of ids.
    header = header_for(Mode.AGENT, layout="agno-golang", engine="sqlite", table=TABLE)
    lines = [orjson.dumps(make_converter().unstructure(header))]
    columns = header.columns
    for i in range(10_000):
        row = dict.fromkeys(columns)
        row.update(session_id=f"{i:06d}{'x' * 300}", user_id="u", created_at=1, updated_at=1)
        lines.append(orjson.dumps(row))
    export = tmp_path / "agent.jsonl"
    export.write_bytes(b"\n".join(lines) + b"\n")
    target = tmp_path / "restored.db"
    env = {**os.environ, "SQLITE_TMPDIR": str(small_disk)}
    (small_disk / "filler").write_bytes(b"f" * 1024 * 1024)
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_WITH_A_FULL_TEMPORARY_FOLDER, str(export), str(target)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    kind, message = done.stdout.splitlines()
    assert kind == "DiskFullError", done.stdout + done.stderr
    with sqlite3.connect(target) as conn:
        (kept,) = conn.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()
    assert 0 < kept < 10_000
    assert f"{kept} sessions were written before the batch that failed" in message
    assert "running it again completes it" in message
    # Space freed, the same import completes the table.
    (small_disk / "filler").unlink()
    rerun = subprocess.run(
        [sys.executable, "-c", _IMPORT_WITH_A_FULL_TEMPORARY_FOLDER, str(export), str(target)],
        capture_output=True,
        text=True,
        env={**os.environ, "SQLITE_TMPDIR": str(tmp_path)},
        check=True,
    )
    assert rerun.stdout == ""
    with sqlite3.connect(target) as conn:
        assert conn.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone() == (10_000,)


_FILE_SIZE_LIMITED = """
import os, resource, signal, sys
from agno_storage import SqliteStorage
from agno_storage.errors import DiskFullError
from agno_storage.models import AgentSession

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the process is killed at the limit
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), resource.RLIM_INFINITY))
store = SqliteStorage("agent_sessions", db_file=sys.argv[1])
acknowledged = 0
try:
    for i in range(100_000):
        store.upsert(AgentSession(session_id=f"s{i}", user_id="u", session_data={"pad": os.urandom(2000).hex()}))
        acknowledged += 1
except DiskFullError as exc:
    print(acknowledged, type(exc).__name__)
try:
    store.upsert_many(AgentSession(session_id=f"b{i}", session_data={"pad": "x" * 4000}) for i in range(200))
except DiskFullError as exc:
    print(type(exc).__name__)
"""


# 1 MB stops a write to the WAL; 5 MB, past SQLite's automatic checkpoint, also the checkpoint's to the file.
@pytest.mark.parametrize("limit", [1_000_000, 5_000_000])
def test_a_file_size_limit_is_a_full_disk_and_loses_nothing_acknowledged(tmp_path: Path, limit: int) -> None:
    """A process's file-size limit (RLIMIT_FSIZE; SQLite reports SQLITE_IOERR_WRITE, the write failing with
    EFBIG) stops writes as a full disk does: DiskFullError, nothing of the refused write kept."""
    path = tmp_path / "limited.db"
    done = subprocess.run(
        [sys.executable, "-c", _FILE_SIZE_LIMITED, str(path), str(limit)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split()
    assert lines[1:] == ["DiskFullError", "DiskFullError"], done.stdout + done.stderr
    acknowledged = int(lines[0])
    assert acknowledged > 10
    fresh = SqliteStorage(TABLE, db_file=path)
    assert sorted(fresh.get_all_session_ids()) == sorted(f"s{i}" for i in range(acknowledged))
    fresh.upsert(_session("after"))  # no limit here: the same file takes writes again
    fresh.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# --- damaged, replaced and read-only files --------------------------------------------


def _populated(path: Path, n: int = 300) -> None:
    store = SqliteStorage(TABLE, db_file=path)
    store.upsert_many(_session(f"s{i}", pad="z" * 500) for i in range(n))
    store.close()  # the last connection to close checkpoints the WAL into the file


def test_a_file_of_garbage_raises_database_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(os.urandom(64 * 1024))
    with pytest.raises(DatabaseCorruptError):
        SqliteStorage(TABLE, db_file=path)


def test_a_truncated_database_raises_database_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "truncated.db"
    _populated(path)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)
    with pytest.raises(DatabaseCorruptError):
        store = SqliteStorage(TABLE, db_file=path)
        store.list()


def _lose(path: Path, how: str) -> None:
    """Delete the database at ``path`` (with its WAL), and if ``how`` is "replaced" put another file there,
    holding the session "other", as another program might while the store has it open."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    if how == "replaced":
        other = SqliteStorage(TABLE, db_file=path.with_name("other.db"))
        other.upsert(_session("other"))
        other.close()
        os.replace(path.with_name("other.db"), path)


@pytest.mark.parametrize("write", ["upsert", "upsert_many", "delete"])
@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_write_to_a_deleted_or_replaced_file_is_refused_then_goes_to_the_new_file(
    tmp_path: Path, how: str, write: str
) -> None:
    path = tmp_path / "moving.db"
    store = SqliteStorage(TABLE, db_file=path)
    store.upsert(_session("before"))
    _lose(path, how)
    with pytest.raises(DatabaseReplacedError):
        if write == "upsert":
            store.upsert(_session("lost?"))
        elif write == "upsert_many":
            store.upsert_many([_session("lost?"), _session("lost-too?")])
        else:
            store.delete("other")
    # Nobody who opens the path later misses a write the store acknowledged.
    # The next call after the error works on the file the path names now.
    store.upsert(_session("after"))
    reader = SqliteStorage(TABLE, db_file=path)
    expected = ["after"] if how == "deleted" else ["after", "other"]
    assert sorted(reader.get_all_session_ids()) == expected


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_new_threads_first_write_to_a_deleted_or_replaced_file_is_refused_too(tmp_path: Path, how: str) -> None:
    """A thread-per-request server: the thread that writes after the file went opens its first connection
    then, on whatever the path names; that write is refused as the store's older connections' are."""
    import threading

    path = tmp_path / "moving.db"
    store = SqliteStorage(TABLE, db_file=path)
    store.upsert(_session("before"))
    _lose(path, how)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            store.upsert(_session("lost?"))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    thread.join()
    assert len(errors) == 1 and isinstance(errors[0], DatabaseReplacedError)
    with pytest.raises(DatabaseReplacedError):  # this thread's own connection, to the file that went
        store.upsert(_session("lost too?"))
    store.upsert(_session("after"))  # then the store works on the file the path names now
    expected = ["after"] if how == "deleted" else ["after", "other"]
    assert sorted(SqliteStorage(TABLE, db_file=path).get_all_session_ids()) == expected


def test_a_transaction_on_a_replaced_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "moving.db"
    store = SqliteStorage(TABLE, db_file=path)
    store.upsert(_session("before"))
    os.replace(path, tmp_path / "moved-away.db")
    shutil.copy(tmp_path / "moved-away.db", path)
    with pytest.raises(DatabaseReplacedError), store.transaction():
        pytest.fail("the block ran on the old file")


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(writable folder, the same folder seen through a read-only bind mount).

    A read-only mount, because root (which runs CI containers) ignores file
    permissions; skipped where mounting is not permitted.
    """
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    bound = subprocess.run(["mount", "--bind", str(rw), str(ro)], capture_output=True, check=False)
    if bound.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bound.stderr.decode().strip()}")
    try:
        remount = subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], capture_output=True, check=False)
        if remount.returncode != 0:
            pytest.skip(f"cannot make a read-only mount here: {remount.stderr.decode().strip()}")
        yield rw, ro
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=False)


@pytest.mark.parametrize("source", ["agno_agent.db", "ours"])
def test_a_read_only_rollback_journal_file_is_readable_and_refuses_writes(
    read_only_folder: tuple[Path, Path], source: str
) -> None:
    rw, ro = read_only_folder
    if source == "ours":
        _populated(rw / "db.db", 20)
        conn = sqlite3.connect(rw / "db.db")
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.close()
    else:
        shutil.copy(FIXTURES / source, rw / "db.db")
    expected = SqliteStorage(TABLE, db_file=rw / "db.db").get_all_session_ids()
    # The writable copy was only read: it is still in rollback-journal mode.
    with sqlite3.connect(rw / "db.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    store = SqliteStorage(TABLE, db_file=ro / "db.db")
    assert store.get_all_session_ids() == expected != []
    assert store.read(expected[0]) is not None
    assert store.count() == len(expected)
    with pytest.raises(ReadOnlyDatabaseError):
        store.upsert(_session("refused"))
    with pytest.raises(ReadOnlyDatabaseError):
        store.delete(expected[0])
    assert store.count() == len(expected)


def test_a_wal_file_in_a_read_only_folder_without_its_shm_says_why_it_cannot_be_read(
    read_only_folder: tuple[Path, Path],
) -> None:
    """SQLite reads a WAL-mode file through a -shm file beside it, which a read-only folder cannot hold: the
    error said the file "can only be read" when it could not be read at all; it says what SQLite needs."""
    rw, ro = read_only_folder
    _populated(rw / "db.db", 5)
    assert sorted(p.name for p in rw.iterdir()) == ["db.db"]  # closed: checkpointed, no -wal or -shm left
    with pytest.raises(ReadOnlyDatabaseError, match="folder cannot be written") as raised:
        SqliteStorage(TABLE, db_file=ro / "db.db", read_only=True).get_all_session_ids()
    assert "-shm" in raised.value.message and "can only be read" not in raised.value.message
    assert sorted(p.name for p in rw.iterdir()) == ["db.db"]


def test_a_read_only_store_of_a_missing_file_makes_no_folder(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        SqliteStorage(TABLE, db_file=tmp_path / "new" / "deeper" / "db.db", read_only=True).read("s1")
    assert list(tmp_path.iterdir()) == []


# --- values other programs stored with the wrong type ------------------------------

#: (what another program stored, the SQL value, the column): each must raise CorruptRowError.
BAD_VALUES = [
    ("a BLOB user_id", "user_id", "X'00ff'"),
    ("a BLOB agent_id", "agent_id", "X'41'"),
    ("a float created_at", "created_at", "1.5"),
    ("a text updated_at", "updated_at", "'soon'"),
    ("text that is not UTF-8", "user_id", "CAST(X'ff41' AS TEXT)"),
    ("an integer in a JSON column", "memory", "5"),
    ("JSON that is not UTF-8", "session_data", "CAST(X'7b22ff223a317d' AS TEXT)"),
    # Go decodes JSON nested up to 10,000 levels, so a Go program can store this.
    ("JSON nested past the decoders", "memory", '\'{"a":' + "[" * 3000 + "]" * 3000 + "}'"),
]


@pytest.mark.parametrize(("what", "column", "value"), BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_a_wrongly_typed_stored_value_raises_corrupt_row(tmp_path: Path, what: str, column: str, value: str) -> None:
    path = tmp_path / "bad.db"
    store = SqliteStorage(TABLE, db_file=path)
    store.upsert_many([_session("good"), _session("bad")])
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE {TABLE} SET {column} = {value} WHERE session_id = 'bad'")
    with pytest.raises(CorruptRowError) as info:
        store.read("bad")
    assert (info.value.session_id, info.value.column) == ("bad", column)
    assert "bad" in str(info.value) and column in str(info.value)
    with pytest.raises(CorruptRowError) as listed:  # never skipped silently
        store.list()
    assert (listed.value.session_id, listed.value.column) == ("bad", column)
    good = store.read("good")
    assert good is not None and good.session_data == {"n": "good"}


@pytest.mark.parametrize(("what", "column", "value"), BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_list_summaries_raises_corrupt_row_for_a_listed_column_and_skips_json(
    tmp_path: Path, what: str, column: str, value: str
) -> None:
    path = tmp_path / "bad.db"
    store = SqliteStorage(TABLE, db_file=path)
    store.upsert_many([_session("good"), _session("bad")])
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE {TABLE} SET {column} = {value} WHERE session_id = 'bad'")
    if column not in store.spec.summary_columns:
        # A summary reads no JSON column: damage there does not stop a listing.
        assert sorted(s.session_id for s in store.list_summaries()) == ["bad", "good"]
        return
    with pytest.raises(CorruptRowError) as info:
        store.list_summaries()
    assert (info.value.session_id, info.value.column) == ("bad", column)


@pytest.mark.parametrize(
    ("what", "value"), [("NULL", "NULL"), ("not UTF-8", "CAST(X'ff41' AS TEXT)"), ("a BLOB", "X'41'")]
)
def test_a_wrongly_typed_session_id_raises_corrupt_row(tmp_path: Path, what: str, value: str) -> None:
    path = tmp_path / "bad.db"
    store = SqliteStorage(TABLE, db_file=path)
    store.upsert(_session("good"))
    with sqlite3.connect(path) as conn:
        # agno's and Go's tables let a NULL session_id in: SQLite's TEXT PRIMARY KEY is nullable.
        conn.execute(
            f"INSERT INTO {TABLE} (session_id, user_id, agent_id, created_at, updated_at) VALUES ({value}, 'u', 'a', 1, 1)"
        )
    with pytest.raises(CorruptRowError) as info:
        store.list()
    assert info.value.column == "session_id"
    with pytest.raises(CorruptRowError):
        store.get_all_session_ids()
    with pytest.raises(CorruptRowError) as summaries:
        store.list_summaries()
    assert summaries.value.column == "session_id"
    assert store.read("good") is not None


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize("db_file", [5, b"/x.db", 1.5, ["a.db"]])
def test_a_db_file_that_is_not_a_path_is_invalid_input(db_file: Any) -> None:
    with pytest.raises(InvalidInputError):
        SqliteStorage(TABLE, db_file=db_file)


# --- PostgreSQL: a server that is not there, a full disk, damaged data --------------------

_CONNECT_TO_NOTHING = """
import logging, sys
if sys.argv[2] == "configured":
    logging.basicConfig(level=logging.WARNING)
from agno_storage.backends.postgres import PostgresStorage
from agno_storage.errors import ConnectionLostError
try:
    PostgresStorage("t", db_url=sys.argv[1], connect_timeout=1)
except ConnectionLostError as exc:
    print(exc)
"""


@pytest.mark.parametrize("logging_configured", [False, True])
def test_an_unreachable_server_is_named_with_the_reason(logging_configured: bool) -> None:
    pytest.importorskip("psycopg_pool")
    from tests.pgserver import free_port

    port = free_port()  # nothing listens there
    url = f"postgresql://bob:hunter2@127.0.0.1:{port}/sessions"
    proc = subprocess.run(
        [sys.executable, "-c", _CONNECT_TO_NOTHING, url, "configured" if logging_configured else "not configured"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    message = proc.stdout
    assert f"127.0.0.1:{port}/sessions" in message
    assert "Connection refused" in message
    assert "hunter2" not in message + proc.stderr
    if logging_configured:
        assert "psycopg.pool" in proc.stderr, "a program that configured logging sees the pool's warnings"
    else:
        assert proc.stderr == "", "the pool's log lines reached a program that did not ask for them"


@pytest.mark.parametrize(
    ("sqlstate", "error"),
    [("53100", DiskFullError), ("XX001", DatabaseCorruptError), ("XX002", DatabaseCorruptError)],
)
def test_postgresql_disk_full_and_corruption_are_typed(sqlstate: str, error: type[StorageError]) -> None:
    # A full disk or a damaged page cannot be made on demand on a test server;
    # the mapping from the server's SQLSTATE is what this checks.
    pytest.importorskip("psycopg_pool")
    from psycopg import errors as pg_errors

    from agno_storage.backends import pg_conn

    driver_error = pg_errors.lookup(sqlstate)("server says no")
    assert type(pg_conn.translate(driver_error, "t")) is error


def test_a_utf16_database_is_refused_before_anything_is_read_or_written(tmp_path: Path) -> None:
    """JSON is read as the file's own bytes, which must be UTF-8: a UTF-16 file is refused by name, never
    read as corrupt rows nor written to."""
    path = tmp_path / "utf16.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA encoding = 'UTF-16le'")
        conn.execute("CREATE TABLE other (x TEXT)")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StorageError, match="UTF-16le"):
        SqliteStorage(TABLE, db_file=path)
    assert path.read_bytes() == before


def test_an_empty_file_another_program_makes_utf16_after_the_store_opened_it_is_refused(tmp_path: Path) -> None:
    """An empty file takes its encoding from whoever writes it first: the store looks again when it first
    looks at its table."""
    path = tmp_path / "late.db"
    store = SqliteStorage(TABLE, db_file=path)  # the file is empty: nothing to refuse yet
    maker = SqliteStorage(TABLE, db_file=tmp_path / "maker.db")  # the store's own DDL, made in UTF-16
    maker.create()
    maker.close()
    with sqlite3.connect(tmp_path / "maker.db") as conn:
        ddl = [sql for (sql,) in conn.execute("SELECT sql FROM sqlite_master") if sql]
    conn.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA encoding = 'UTF-16le'")
        for statement in ddl:
            conn.execute(statement)
    conn.close()
    with pytest.raises(StorageError, match="UTF-16le"):
        store.append_run("go-1", "hello", "hi")  # a Go Agent's run, through its own table
    with pytest.raises(StorageError, match="UTF-16le"):
        store.upsert(_session("s1"))
    with pytest.raises(StorageError, match="UTF-16le"):
        store.read("s1")
    with sqlite3.connect(path) as conn:
        assert conn.execute(f'SELECT COUNT(*) FROM "{TABLE}"').fetchone() == (0,)
        assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'agent_runs'").fetchall()
    conn.close()


# --- another writer during a search's catch-up ---------------------------------

#: Sessions other programs wrote behind a search index before the search that catches up with them. At the stress
#: size one write transaction for the whole catch-up held the lock past agno's 5 s on this project's machine.
BACKLOG = 40_000 if STRESS else 2_000


@pytest.mark.parametrize("work", ["catch-up", "build"])
def test_agnos_upsert_during_a_long_catch_up_is_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, work: str
) -> None:
    """agno 1.8.4 waits 5 s for SQLite's write lock and then drops the session it was saving (its upsert logs the
    error and returns None). A search catching up with a large backlog, and enable_search() building the index of
    a large table, must let it in between their batches. (At the CI size the whole catch-up takes less than 5 s:
    that the lock is let go between batches is checked by another program's write there, made while sessions
    are still to be indexed.)"""
    import threading

    from agno.storage.session.agent import AgentSession as AgnoAgentSession
    from agno.storage.sqlite import SqliteStorage as AgnoSqliteStorage

    from bench import harness, sessions

    db = tmp_path / "s.db"
    store = SqliteStorage(TABLE, db_file=db, synchronous="NORMAL")
    if work == "catch-up":
        store.enable_search()
    # Sessions as agno 1.8.4 writes them (three runs, 6.8 KiB of JSON each), logged for the index to catch up.
    store.upsert_many(harness.ours_session(sessions.small(i)) for i in range(BACKLOG))
    first = harness.ours_session(sessions.small(0)).session_id
    errors: list[BaseException] = []

    def search() -> None:
        try:
            if work == "build":
                store.enable_search()
            store.search("Lisbon weather")
        except BaseException as exc:  # raised in the test below
            errors.append(exc)

    probe = sqlite3.connect(db, timeout=0, isolation_level=None)
    left_when_another_wrote: list[int] = []
    real_transaction = store.transaction

    def transaction() -> Any:
        if threading.current_thread() is searching and not left_when_another_wrote:
            # Between two of the search's transactions, some of the backlog indexed and some not: another
            # program's write (which may wait for agno's, never for the search).
            other = sqlite3.connect(db, timeout=30, isolation_level=None)
            try:
                backlog = f"SELECT COUNT(*) FROM {TABLE}_search_queue WHERE session_id != 'agno'"  # agno's is not
                (left,) = other.execute(backlog).fetchone()
            except sqlite3.OperationalError:  # no index yet: enable_search() makes it
                left = BACKLOG
            if 0 < left < BACKLOG:
                other.execute(f"UPDATE {TABLE} SET updated_at = updated_at + 1 WHERE session_id = ?", (first,))
                left_when_another_wrote.append(left)
            other.close()
        return real_transaction()

    monkeypatch.setattr(store, "transaction", transaction)
    searching = threading.Thread(target=search)
    searching.start()
    while searching.is_alive():  # until the catch-up holds the write lock
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
        except sqlite3.OperationalError:
            break
    agno = AgnoSqliteStorage(table_name=TABLE, db_file=str(db))
    memory = {"runs": [{"run_id": "r", "messages": [{"role": "user", "content": "ospreys nest on poles"}]}]}
    saved = agno.upsert(AgnoAgentSession(session_id="agno", user_id="u", agent_id="a", memory=memory))
    searching.join()
    probe.close()
    assert not errors
    # The other program wrote while the catch-up had sessions still to index: the lock was let go between batches.
    assert len(left_when_another_wrote) == 1, "the backlog was indexed in one write transaction"
    assert saved is not None and saved.session_id == "agno"
    assert [h.session_id for h in store.search("ospreys")] == ["agno"]
    queue = sqlite3.connect(db)
    assert queue.execute(f"SELECT COUNT(*) FROM {TABLE}_search_queue").fetchone() == (0,)
    queue.close()
    store.close()
