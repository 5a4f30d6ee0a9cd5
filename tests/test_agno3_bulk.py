"""to-agno3 as a bulk load: each session encoded as it is mapped, a batch all there or not at all.

The source is the benchmark's agno 1.8.4-shaped agent sessions (bench/sessions.py),
written through SqliteStorage; no agno is run here (tests/test_agno3.py runs agno 3
over the output).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import attrs
import pytest

from agno_storage import SqliteStorage
from agno_storage.agno3 import chunks, to_agno3
from agno_storage.agno3.mapping import Mapped
from agno_storage.errors import StorageError
from bench import harness, sessions
from bench.agno3 import build_source

N = 7
RUNS = 3


def _source(path: Path, n: int = N, runs: int = RUNS) -> str:
    build_source(path, n, runs)
    return str(path)


def _session_ids(db: str) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT session_id FROM agno_sessions ORDER BY session_id")]


def _runs(db: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT run_id, session_id, run_index, run_data FROM agno_runs ORDER BY run_id").fetchall()


def test_every_session_and_run_is_written_once_with_its_json(tmp_path: Path) -> None:
    src, dst = _source(tmp_path / "src.db"), str(tmp_path / "dst.db")
    report = to_agno3(src, dst, batch_size=3)
    assert report.total("sessions") == N and report.total("runs") == N * RUNS
    assert len(_session_ids(dst)) == N
    runs = _runs(dst)
    assert len(runs) == N * RUNS
    for _, _, _, run_data in runs:
        data = json.loads(run_data)  # as agno 3 reads it
        assert data["status"] == "COMPLETED" and len(data["messages"]) == 3
    # Run again: nothing changed, nothing written.
    again = to_agno3(src, dst, batch_size=3)
    assert again.total("unchanged") == N and again.total("sessions") == 0
    assert _runs(dst) == runs


def test_a_value_json_cannot_hold_names_its_session_and_its_batch_is_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session whose mapped rows cannot be encoded: StorageError naming it; earlier batches stay whole."""
    src, dst = _source(tmp_path / "src.db"), str(tmp_path / "dst.db")
    bad = "s-0000004"
    real = chunks.map_session

    def map_session(session_id: str, *args: Any, **kwargs: Any) -> Mapped:
        mapped = real(session_id, *args, **kwargs)
        if session_id != bad:
            return mapped
        run = mapped.runs[0]
        broken = attrs.evolve(run, run_data={**run.run_data, "not_json": {1, 2}})
        return attrs.evolve(mapped, runs=(broken, *mapped.runs[1:]))

    monkeypatch.setattr(chunks, "map_session", map_session)
    with pytest.raises(StorageError, match=bad) as caught:
        to_agno3(src, dst, batch_size=3)
    assert caught.value.__cause__ is not None
    # Batches of 3, oldest session first: those before the bad one are whole, its own wrote nothing.
    with sqlite3.connect(src) as conn:
        oldest_first = [r[0] for r in conn.execute("SELECT session_id FROM agent_sessions ORDER BY created_at")]
    before = oldest_first[: oldest_first.index(bad) // 3 * 3]
    assert len(before) == 3  # the bad one is in the second batch
    written = _session_ids(dst)
    assert written == sorted(before)
    assert {sid for _, sid, _, _ in _runs(dst)} == set(written)
    # Fixed, the rerun writes the rest.
    monkeypatch.setattr(chunks, "map_session", real)
    report = to_agno3(src, dst, batch_size=3)
    assert report.total("unchanged") == len(written)
    assert len(_session_ids(dst)) == N


def test_more_runs_than_one_statement_holds_are_all_written_and_rewritten(tmp_path: Path) -> None:
    """120 runs in one batch (SQLite statements of 100 rows, then 20): each once, in order; a rerun updates them."""
    n, runs = 12, 10
    src, dst = _source(tmp_path / "src.db", n, runs), str(tmp_path / "dst.db")
    assert to_agno3(src, dst).total("runs") == n * runs
    first = _runs(dst)
    assert len(first) == n * runs
    with sqlite3.connect(dst) as conn:
        indexes = conn.execute("SELECT session_id, group_concat(run_index) FROM agno_runs GROUP BY session_id")
        assert all(order == ",".join(str(i) for i in range(runs)) for _, order in indexes)
    # The source changes (a later updated_at): every session and run is written again, none twice.
    with sqlite3.connect(src) as conn:
        conn.execute("""UPDATE agent_sessions SET updated_at = updated_at + 10, extra_data = '{"again": true}'""")
    again = to_agno3(src, dst)
    assert again.total("sessions") == n and again.total("unchanged") == 0
    assert _runs(dst) == first
    with sqlite3.connect(dst) as conn:
        metadata = [json.loads(m) for (m,) in conn.execute("SELECT metadata FROM agno_sessions")]
    assert len(metadata) == n and all(m["again"] is True for m in metadata)


def test_a_sqlite_that_binds_fewer_parameters_gets_statements_it_can_take(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite before 3.32 binds 999 parameters a statement: 120 runs of 13 columns are written in statements
    that fit, each once, in order."""
    n, runs = 12, 10
    src, dst = _source(tmp_path / "src.db", n, runs), str(tmp_path / "dst.db")
    real = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real(*args, **kwargs)
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
        return conn

    monkeypatch.setattr(sqlite3, "connect", connect)
    assert to_agno3(src, dst, workers=0).total("runs") == n * runs
    with real(dst) as conn:
        indexes = conn.execute("SELECT session_id, group_concat(run_index) FROM agno_runs GROUP BY session_id")
        orders = [order for _, order in indexes]
    assert orders == [",".join(str(i) for i in range(runs))] * n


@pytest.mark.parametrize("rows", [0, 1, 49, 50, 120, 999, 1000, 1001, 2049, 5000])
def test_a_batch_is_upserted_in_few_statements_of_few_sizes(rows: int) -> None:
    from agno_storage.agno3.writer import statement_sizes

    sizes = statement_sizes(rows, 1000, 50)
    assert sum(sizes) == rows and all(0 < s <= 1000 for s in sizes)
    assert len(sizes) <= rows // 1000 + 2
    # Past the full statements, one multiple of the step and one smaller: at most 19 + 49 sizes besides 1,000.
    assert all(s == 1000 or s % 50 == 0 or s < 50 for s in sizes)


def test_a_run_id_twice_in_one_statement_is_the_later_row(tmp_path: Path) -> None:
    """Rows of one statement are upserted in order, as one statement per row did: the later one wins."""
    from agno_storage.agno3.mapping import map_session
    from agno_storage.agno3.writer import SqliteWriter

    first, second = (
        map_session(s.session_id, [s], [])
        for s in (harness.ours_session(sessions.agno_session(i, n_runs=2)) for i in range(2))
    )
    clash = attrs.evolve(second.runs[0], run_id=first.runs[0].run_id, run_index=7)
    second = attrs.evolve(second, runs=(clash,))
    writer = SqliteWriter(str(tmp_path / "dst.db"))
    try:
        writer.prepare()
        writer.write([writer.encode(first), writer.encode(second)])
    finally:
        writer.close()
    rows = {run_id: (sid, index) for run_id, sid, index, _ in _runs(str(tmp_path / "dst.db"))}
    assert rows[first.runs[0].run_id] == (second.session.session_id, 7)
    assert len(rows) == 2


def _fsynced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths this process fsyncs from Python from now on (SQLite's own fsyncs are not seen)."""
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return synced


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="reads fd paths from /proc")
def test_the_wal_is_fsynced_once_the_batches_are_committed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches commit at synchronous=NORMAL; before to_agno3 returns, the WAL and its folder are fsynced."""
    src = _source(tmp_path / "src.db")
    dst = tmp_path / "dst.db"
    synced = _fsynced(monkeypatch)
    to_agno3(src, str(dst), batch_size=3)
    assert synced == [os.path.realpath(str(dst)) + "-wal", os.path.realpath(tmp_path)]


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="reads fd paths from /proc")
def test_the_wal_is_fsynced_when_a_batch_fails_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch refused after others were committed: StorageError, and the committed ones are made durable."""
    from agno_storage.agno3.writer import SqliteWriter

    src = _source(tmp_path / "src.db")
    dst = tmp_path / "dst.db"
    real = SqliteWriter.write
    calls: list[int] = []

    def write(self: SqliteWriter, batch: Any) -> None:
        calls.append(len(batch))
        if len(calls) == 2:
            raise sqlite3.OperationalError("disk I/O error")
        real(self, batch)

    monkeypatch.setattr(SqliteWriter, "write", write)
    synced = _fsynced(monkeypatch)
    with pytest.raises(StorageError, match="disk I/O error"):
        to_agno3(src, str(dst), batch_size=3)
    assert len(_session_ids(str(dst))) == 3
    assert synced == [os.path.realpath(str(dst)) + "-wal", os.path.realpath(tmp_path)]


def _source_with_a_memory_table(path: Path) -> str:
    """A 1.x source of one session, beside agno 1.x's memory table holding one memory."""
    src = _source(path, 1)
    with sqlite3.connect(src) as conn:
        conn.execute(
            "CREATE TABLE memory (id TEXT PRIMARY KEY, user_id TEXT, memory TEXT, created_at TEXT, updated_at TEXT)"
        )
        conn.execute("INSERT INTO memory VALUES ('m1', 'u', ?, NULL, NULL)", (str({"memory": "likes tea"}),))
    return src


def test_a_failure_removing_copies_of_memory_table_memories_names_agno_memories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agno_storage.agno3.writer import SqliteWriter

    src = _source_with_a_memory_table(tmp_path / "src.db")

    def forget_memories(self: SqliteWriter, memory_ids: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(SqliteWriter, "forget_memories", forget_memories)
    with pytest.raises(StorageError, match="removing copies of memory-table memories") as failed:
        to_agno3(src, str(tmp_path / "dst.db"))
    assert failed.value.table == "agno_memories"
    assert "agno_sessions" not in str(failed.value)


@pytest.mark.parametrize(("reading", "table"), [("run_owners", "agno_runs"), ("memory_stamps", "agno_memories")])
def test_a_failure_reading_what_dst_holds_names_the_table_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reading: str, table: str
) -> None:
    from agno_storage.agno3.writer import SqliteWriter

    src = _source_with_a_memory_table(tmp_path / "src.db")

    def fails(self: SqliteWriter, ids: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(SqliteWriter, reading, fails)
    with pytest.raises(StorageError, match=f"in {table}") as failed:
        to_agno3(src, str(tmp_path / "dst.db"))
    assert failed.value.table == table


def test_a_session_changed_within_the_second_it_was_migrated_is_migrated_again(tmp_path: Path) -> None:
    src, dst = _source(tmp_path / "src.db"), str(tmp_path / "dst.db")
    to_agno3(src, dst)
    # The source changes and keeps its updated_at, as a write in the same second does.
    with sqlite3.connect(src) as conn:
        (memory,) = conn.execute("SELECT memory FROM agent_sessions WHERE session_id = 's-0000001'").fetchone()
        changed = json.loads(memory)
        changed["runs"][0]["content"] = "changed within the second"
        conn.execute("UPDATE agent_sessions SET memory = ? WHERE session_id = 's-0000001'", (json.dumps(changed),))
    again = to_agno3(src, dst)
    assert again.total("sessions") == 1 and again.total("unchanged") == N - 1
    with sqlite3.connect(dst) as conn:
        texts = [
            json.loads(r[0]) for r in conn.execute("SELECT run_data FROM agno_runs WHERE session_id = 's-0000001'")
        ]
    assert any(t.get("content") == "changed within the second" for t in texts)


def test_the_wal_of_a_migration_stays_within_the_checkpoint_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer's own checkpoints bound the WAL while the checkpoint thread does most of the copying."""
    from agno_storage.backends import sqlite_bulk

    src, dst = _source(tmp_path / "src.db", 300), tmp_path / "dst.db"
    monkeypatch.setattr(sqlite_bulk, "CHECKPOINT_PAGES", 64)  # 256 KiB
    wal_sizes: list[int] = []

    def progress(done: int, total: int) -> None:
        wal_sizes.append(os.path.getsize(f"{dst}-wal"))

    to_agno3(src, str(dst), batch_size=20, progress=progress)
    # About 3.7 MB went through the WAL, 250 KB a batch: it stays near the interval and a batch or two.
    assert os.path.getsize(dst) > 3_500_000
    assert len(wal_sizes) == 15 and max(wal_sizes) < 1_500_000, wal_sizes


def _page_size(db: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("PRAGMA page_size").fetchone()[0])


def test_a_new_target_file_has_the_writers_page_size_and_an_existing_one_keeps_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agno_storage.agno3 import writer
    from agno_storage.backends import sqlite_bulk

    src = _source(tmp_path / "src.db")
    new, old = str(tmp_path / "new.db"), str(tmp_path / "old.db")
    with sqlite3.connect(old) as conn:  # a file some other program made, with SQLite's default pages
        conn.execute("CREATE TABLE other (x)")
    intervals: list[int] = []
    real = sqlite_bulk.checkpoint_pages
    monkeypatch.setattr(sqlite_bulk, "checkpoint_pages", lambda size: intervals.append(real(size)) or real(size))
    to_agno3(src, new)
    to_agno3(src, old)
    assert _page_size(new) == writer.PAGE_SIZE == 16384 and _page_size(old) == 4096
    # The writer's checkpoint interval is the same number of bytes whatever the page size.
    assert intervals == [sqlite_bulk.CHECKPOINT_PAGES // 4, sqlite_bulk.CHECKPOINT_PAGES]
    assert _session_ids(new) == _session_ids(old) and len(_session_ids(new)) == N
    with sqlite3.connect(old) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM other").fetchone()[0] == 0


FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.mark.parametrize("build", ["b58d964", "3dddad1", "fcbec24", "217f9df", "a477cd2", "fb2bef9", "c0b4865"])
@pytest.mark.parametrize("source", ["agno_agent", "go_agent_conversation"])
def test_sessions_an_earlier_build_migrated_are_left_alone_while_their_source_is_unchanged(
    tmp_path: Path, build: str, source: str
) -> None:
    """An upgrade must not rewrite what agno 3 went on with: the stamps earlier builds wrote still count, and
    the report says how many sessions keep an earlier build's mapping (``rewrite=True`` gives them this one's).

    The targets were written by those builds themselves (fixtures/make_agno3_stamped.py): b58d964 stamped
    updated_at, 3dddad1 every value of the decoded sessions, fcbec24 the stored rows under ``r2:``, 217f9df
    under ``r3:``, a477cd2 under ``r4:``, fb2bef9 under ``r5:``, c0b4865 under ``r6:``.
    """
    src, dst = tmp_path / "src.db", tmp_path / "dst.db"
    shutil.copyfile(FIXTURES / f"{source}.db", src)
    shutil.copyfile(FIXTURES / f"agno3_stamped_{build}_{source}.db", dst)
    with sqlite3.connect(dst) as conn:
        sids = [r[0] for r in conn.execute("SELECT session_id FROM agno_sessions ORDER BY session_id")]
        conn.execute("UPDATE agno_sessions SET summary = ?", (json.dumps({"summary": "agno 3 went on"}),))
    assert len(sids) >= 2
    again = to_agno3(str(src), str(dst))
    assert again.total("sessions") == 0 and again.total("unchanged") == len(sids)
    assert again.total("earlier_mapping") == len(sids)
    with sqlite3.connect(dst) as conn:
        summaries = [json.loads(r[0]) for r in conn.execute("SELECT summary FROM agno_sessions")]
    assert summaries == [{"summary": "agno 3 went on"}] * len(sids)
    # A source written again (a later updated_at, as agno and Go write) is migrated again, stamped by this
    # build, and then left alone in turn.
    with sqlite3.connect(src) as conn:
        changed = conn.execute(
            "UPDATE agent_sessions SET extra_data = '{\"changed\": true}', updated_at = updated_at + 1"
            " WHERE session_id = ?",
            (sids[0],),
        ).rowcount
    assert to_agno3(str(src), str(dst)).total("sessions") == changed
    after = to_agno3(str(src), str(dst))
    assert (after.total("unchanged"), after.total("earlier_mapping")) == (len(sids), len(sids) - changed)
    # rewrite gives every one this build's mapping and stamp; a rerun then finds none of an earlier build.
    assert to_agno3(str(src), str(dst), rewrite=True).total("sessions") == len(sids)
    last = to_agno3(str(src), str(dst))
    assert (last.total("unchanged"), last.total("earlier_mapping")) == (len(sids), 0)


def test_a_source_whose_wal_holds_commits_is_not_written(tmp_path: Path) -> None:
    """An app killed before it checkpointed leaves its last commits in the WAL: the migration reads them
    and leaves the file and its WAL byte for byte as they were (a read-write connection would checkpoint
    the WAL into the file when it closes)."""
    import hashlib
    import subprocess
    import sys

    src = _source(tmp_path / "src.db")
    killed = (
        "import os, sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1])\n"
        "conn.execute('PRAGMA wal_autocheckpoint = 0')\n"
        'conn.execute("UPDATE agent_sessions SET extra_data = \'{\\"late\\": 1}\'")\n'
        "conn.commit()\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", killed, src], check=True)

    def digest(path: str) -> str:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()

    before = (digest(src), digest(src + "-wal"))
    assert os.path.getsize(src + "-wal") > 0
    dst = str(tmp_path / "dst.db")
    to_agno3(src, dst, workers=0)
    assert (digest(src), digest(src + "-wal")) == before
    with sqlite3.connect(dst) as conn:
        metadata = [json.loads(r[0]) for r in conn.execute("SELECT metadata FROM agno_sessions")]
    assert len(metadata) == N and all(m.get("late") == 1 for m in metadata)  # the WAL's commits were read


@pytest.mark.parametrize("workers", [0, 2])
def test_a_target_deleted_during_the_migration_stops_it_with_a_typed_error(
    tmp_path: Path, workers: int, capfd: pytest.CaptureFixture[str]
) -> None:
    """The folder of DST removed after the first batches: the run does not go on writing into a file nobody
    can open (and report it written); it raises DatabaseReplacedError, and its workers end quietly."""
    from agno_storage.errors import DatabaseReplacedError

    src = _source(tmp_path / "src.db", 12)
    folder = tmp_path / "out"
    folder.mkdir()

    def progress(done: int, total: int) -> None:
        if done == 4:
            shutil.rmtree(folder)

    with pytest.raises(DatabaseReplacedError, match="was deleted"):
        to_agno3(src, str(folder / "dst.db"), batch_size=2, workers=workers, progress=progress)
    assert "Fatal Python error" not in capfd.readouterr().err


def test_a_target_that_cannot_be_a_database_is_a_typed_error(tmp_path: Path) -> None:
    from agno_storage.errors import DatabaseCorruptError, InvalidInputError

    src = _source(tmp_path / "src.db")
    text = tmp_path / "notes.db"
    text.write_text("not a database " * 300)
    with pytest.raises(DatabaseCorruptError, match="opening DST"):
        to_agno3(src, str(text), workers=0)
    with pytest.raises(StorageError, match="opening DST"):
        to_agno3(src, str(text / "under-a-file.db"), workers=0)
    with pytest.raises(InvalidInputError, match=r"^DST '.*' is a directory, not a database file$"):
        to_agno3(src, str(tmp_path), workers=0)  # a folder: refused before SQLite is asked


@pytest.mark.parametrize("size", [0, -1, 2.5, True])
def test_batch_size_must_be_a_positive_int(tmp_path: Path, size: Any) -> None:
    from agno_storage.errors import InvalidInputError

    src = _source(tmp_path / "src.db")
    with pytest.raises(InvalidInputError, match="batch_size"):
        to_agno3(src, str(tmp_path / "dst.db"), batch_size=size)
    assert not (tmp_path / "dst.db").exists()


def test_values_a_source_should_not_hold_are_typed_errors_or_kept_not_raw_exceptions(tmp_path: Path) -> None:
    """A Go run whose metrics is not JSON: CorruptRowError naming it. A summary stamped in milliseconds, a
    memory-table row stamped infinity or holding text that is neither JSON nor a dict: migrated, kept."""
    from agno_storage.agent_runs import create_statements
    from agno_storage.errors import CorruptRowError

    src = _source(tmp_path / "go.db", 3)
    with sqlite3.connect(src) as conn:
        for statement in create_statements("agent_sessions"):
            conn.execute(statement)
        conn.execute("INSERT INTO agent_runs VALUES ('r1', 'go-1', 'u', 'n', '{}', 'hi', 'hello', '[]', '{bad', 1, 1)")
    with pytest.raises(CorruptRowError) as info:
        to_agno3(src, str(tmp_path / "dst-go.db"), workers=0)
    assert (info.value.table, info.value.session_id, info.value.column) == ("agent_runs", "go-1", "metrics")

    src = _source(tmp_path / "odd.db", 3)
    with sqlite3.connect(src) as conn:
        sid, memory = conn.execute("SELECT session_id, memory FROM agent_sessions LIMIT 1").fetchone()
        data = json.loads(memory)
        data["summary"] = {"summary": "talked about kestrels", "updated_at": 1733000000000}
        conn.execute("UPDATE agent_sessions SET memory = ? WHERE session_id = ?", (json.dumps(data), sid))
        conn.execute(
            "CREATE TABLE memory (id VARCHAR PRIMARY KEY, user_id VARCHAR, memory TEXT, created_at DATETIME,"
            " updated_at DATETIME)"
        )
        conn.execute("INSERT INTO memory VALUES ('m1', 'u', ?, ?, NULL)", ("{'memory': 'likes tea'}", float("inf")))
        conn.execute("INSERT INTO memory VALUES ('m2', 'u', '{[1]: 2}', '2024-01-01 00:00:00', NULL)")
    dst = str(tmp_path / "dst-odd.db")
    report = to_agno3(src, dst, workers=0)
    assert report.total("memories") >= 2
    with sqlite3.connect(dst) as conn:
        summary, metadata = conn.execute(
            "SELECT summary, metadata FROM agno_sessions WHERE session_id = ?", (sid,)
        ).fetchone()
        memories = dict(conn.execute("SELECT memory_id, memory FROM agno_memories WHERE memory_id IN ('m1', 'm2')"))
    # Not seconds, which agno 3 cannot read: kept in metadata.
    assert json.loads(summary) == {"summary": "talked about kestrels"}
    assert json.loads(metadata)["agno_v1"]["summary_updated_at"] == 1733000000000
    assert json.loads(memories["m1"]) == "likes tea" and json.loads(memories["m2"]) == "{[1]: 2}"


@pytest.mark.parametrize("workers", [0, 2])
def test_a_dry_run_reports_what_the_run_after_it_does(tmp_path: Path, workers: int) -> None:
    """Against a DST an earlier migration wrote, a dry run reads what is there (read only) and reports the
    sessions left alone and the runs that would be deleted, as the real run then does."""
    import hashlib

    src, dst = _source(tmp_path / "src.db"), str(tmp_path / "dst.db")
    to_agno3(src, dst, workers=0)
    with sqlite3.connect(src) as conn:
        sid, memory = conn.execute("SELECT session_id, memory FROM agent_sessions LIMIT 1").fetchone()
        data = json.loads(memory)
        data["runs"] = data["runs"][:1]  # the 1.x app trimmed this session's runs
        conn.execute("UPDATE agent_sessions SET memory = ? WHERE session_id = ?", (json.dumps(data), sid))
    with sqlite3.connect(dst) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = hashlib.sha256(Path(dst).read_bytes()).hexdigest()
    dry = to_agno3(src, dst, dry_run=True, workers=workers)
    assert hashlib.sha256(Path(dst).read_bytes()).hexdigest() == before
    real = to_agno3(src, dst, workers=0)
    for what in ("sessions", "unchanged", "runs", "runs_removed"):
        assert dry.total(what) == real.total(what), what
    assert (real.total("sessions"), real.total("unchanged"), real.total("runs_removed")) == (1, N - 1, RUNS - 1)
    # A dry run into a DST that is not there yet: every session would be written, nothing is made.
    fresh = tmp_path / "none.db"
    assert to_agno3(src, str(fresh), dry_run=True, workers=workers).total("sessions") == N
    assert not fresh.exists()


def test_a_batch_refused_whole_but_written_a_session_at_a_time_is_not_an_error() -> None:
    """The engine refused the batch, then took each of its sessions alone (a value it refuses only beside the
    others' rows, say): every session is written, so the batch is not reported as failed."""
    from types import SimpleNamespace

    from agno_storage.agno3 import migrate

    written: list[list[str]] = []

    class Writer:
        def write(self, batch: list[Any]) -> None:
            if len(batch) > 1:
                raise sqlite3.DataError("string or blob too big")
            written.append([e.session_id for e in batch])

    result = chunks.ChunkResult()
    result.encoded.extend(SimpleNamespace(session_id=f"s{i}") for i in range(3))  # type: ignore[misc]
    migrate._write(result, Writer(), migrate.Agno3Report(dry_run=False))  # type: ignore[arg-type]
    assert written == [["s0"], ["s1"], ["s2"]]


def test_a_value_past_64_bits_is_named_by_its_session_and_the_sessions_before_it_are_kept() -> None:
    """sqlite3 will not bind an integer past 64 bits (OverflowError, before SQLite sees it): the batch is
    written a session at a time, as for SQLite's own refusals, and the InvalidInputError names the session.
    (A run's time past 64 bits no longer gets here: the mapping keeps it in the run's metadata.)"""
    from types import SimpleNamespace

    from agno_storage.agno3 import migrate
    from agno_storage.errors import InvalidInputError

    written: list[str] = []

    class Writer:
        path = None

        def write(self, batch: list[Any]) -> None:
            if any(e.session_id == "s3" for e in batch):
                raise OverflowError("Python int too large to convert to SQLite INTEGER")
            written.extend(e.session_id for e in batch)

    result = chunks.ChunkResult()
    result.encoded.extend(SimpleNamespace(session_id=f"s{i}") for i in range(5))  # type: ignore[misc]
    error = migrate._write(result, Writer(), migrate.Agno3Report(dry_run=False))  # type: ignore[arg-type]
    assert isinstance(error, InvalidInputError) and error.session_id == "s3"
    assert written == ["s0", "s1", "s2"]


def test_an_error_that_rolled_the_whole_batch_back_is_raised_as_it_is(tmp_path: Path) -> None:
    """SQLite rolls a transaction back itself on a full disk or an I/O error: undoing the savepoint inside the
    batch then would fail with "no such savepoint" and hide the error that counts."""
    from agno_storage.agno3.writer import SqliteWriter

    writer = SqliteWriter(str(tmp_path / "agno3.db"))
    try:
        writer.prepare()
        with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
            with writer.batch(), writer._transaction() as conn:
                conn.execute("ROLLBACK")  # what SQLite does on SQLITE_FULL
                raise sqlite3.OperationalError("database or disk is full")
        with writer.batch():  # the writer goes on
            pass
    finally:
        writer.close()


@pytest.mark.parametrize("when", ["a session alone", "the commit"])
def test_a_full_disk_in_a_batch_of_one_or_at_its_commit_is_a_typed_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """SQLite rolls the transaction back itself on a full disk: the batch's commit then has nothing to commit
    (which was an untyped "cannot commit - no transaction is active"), or is where the disk fills up."""
    from agno_storage import AgentSession
    from agno_storage.agno3 import writer as writer_module
    from agno_storage.errors import StorageError

    src, dst = tmp_path / "src.db", tmp_path / "dst.db"
    with SqliteStorage("agent_sessions", db_file=src) as store:
        store.upsert(AgentSession(session_id="s0", user_id="u", memory={"runs": []}))
    real = writer_module.SqliteWriter

    class Full(real):  # type: ignore[misc, valid-type]
        def write(self, batch: Any) -> None:
            if when == "a session alone":
                self._conn.execute("ROLLBACK")  # what SQLite does on SQLITE_FULL
                raise sqlite3.OperationalError("database or disk is full")
            super().write(batch)

        def _transaction(self) -> Any:  # the commit fails
            if when != "the commit" or self._conn.in_transaction:
                return super()._transaction()
            return _failing_commit(self, super()._transaction())

    monkeypatch.setattr(writer_module, "SqliteWriter", Full)
    monkeypatch.setattr("agno_storage.agno3.migrate.SqliteWriter", Full)
    # A typed error with SQLite's message (DiskFullError where SQLite gives its code, which a test cannot fake).
    with pytest.raises(StorageError, match="database or disk is full"):
        to_agno3(str(src), str(dst), workers=0, memory_table=None, batch_size=1)


class _FailingConn:
    """A connection whose COMMIT fails as a full disk's does (and takes the transaction with it)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT":
            self._conn.execute("ROLLBACK")
            raise sqlite3.OperationalError("database or disk is full")
        return self._conn.execute(sql, *args)


def _failing_commit(writer: Any, transaction: Any) -> Any:
    import contextlib

    @contextlib.contextmanager
    def wrapped() -> Any:
        plain = writer._conn
        writer._conn = _FailingConn(plain)
        try:
            with transaction as conn:
                yield conn
        finally:
            writer._conn = plain

    return wrapped()


def test_a_dry_run_on_a_target_that_is_no_database_leaves_no_file_open(tmp_path: Path) -> None:
    """The dry run's read-only look at DST fails on its first query there: the error is raised, and the
    connection it opened is closed (a long-lived caller would otherwise keep a descriptor per attempt)."""
    src = _source(tmp_path / "src.db")
    text = tmp_path / "notes.db"
    text.write_text("not a database " * 300)

    def open_on_text() -> int:
        return sum(1 for fd in os.listdir("/proc/self/fd") if os.path.realpath(f"/proc/self/fd/{fd}") == str(text))

    for _ in range(3):
        with pytest.raises(StorageError):
            to_agno3(src, str(text), workers=0, dry_run=True)
    assert open_on_text() == 0


def test_agno3_tables_another_program_spelled_in_capitals_are_agno3s_tables(tmp_path: Path) -> None:
    """SQLite knows no case in table names: a DST whose agno_sessions is spelled AGNO_SESSIONS holds agno 3's
    tables, and a rerun migrates into them, as into the lower-case ones."""
    src, dst = _source(tmp_path / "src.db"), str(tmp_path / "dst.db")
    to_agno3(src, dst, workers=0)
    sessions, runs = _session_ids(dst), _runs(dst)
    conn = sqlite3.connect(dst)
    for table in ("agno_sessions", "agno_runs"):
        conn.execute(f"ALTER TABLE {table} RENAME TO {table}_tmp")
        conn.execute(f"ALTER TABLE {table}_tmp RENAME TO {table.upper()}")
    conn.commit()
    conn.close()
    report = to_agno3(src, dst, workers=0)  # before: "table agno_sessions already exists"
    assert not report.problems and report.total("sessions") == 0 and report.total("unchanged") == len(sessions)
    assert _session_ids(dst) == sessions and _runs(dst) == runs


def test_a_batch_kept_waiting_past_the_busy_timeout_by_another_writer_is_a_busy_error(tmp_path: Path) -> None:
    """Each batch first takes SQLite's write lock; another program holding it past DST's busy timeout stops the
    run with the package's BusyError, the batches before it written."""
    from agno_storage.errors import BusyError

    src, dst = _source(tmp_path / "src.db", 6), tmp_path / "dst.db"
    holders: list[sqlite3.Connection] = []

    def hold_the_lock(done: int, total: int) -> None:
        if not holders:
            holders.append(sqlite3.connect(dst, isolation_level=None))
            holders[0].execute("BEGIN IMMEDIATE")

    try:
        with pytest.raises(BusyError):
            to_agno3(src, f"sqlite:///{dst}?timeout=0.1", workers=0, batch_size=2, progress=hold_the_lock)
    finally:
        for conn in holders:
            conn.close()
    with sqlite3.connect(dst) as conn:
        assert conn.execute("SELECT count(*) FROM agno_sessions").fetchone() == (2,)
