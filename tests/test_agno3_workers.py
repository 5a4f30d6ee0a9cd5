"""to-agno3 with worker processes: the same tables as in one process, errors named, a dead worker a StorageError.

The source is the benchmark's agno 1.8.4-shaped agent sessions (bench/sessions.py)
plus a Go Agent's agent_runs rows, written through this project's stores.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agno_storage import SqliteStorage
from agno_storage import workers as pool_module
from agno_storage.agno3 import to_agno3
from agno_storage.agno3.chunks import SourceSpec
from agno_storage.agno3.workers import WorkerPool
from agno_storage.errors import CorruptRowError, StorageError
from agno_storage.models import Mode
from bench import harness, sessions
from bench.agno3 import build_source

N = 23
RUNS = 3


def _source(path: Path, n: int = N) -> str:
    build_source(path, n, RUNS)
    store = SqliteStorage(table_name="agent_sessions", db_file=str(path), mode="agent")
    try:
        # A Go Agent's conversation with no session row, and one beside an agno session.
        store.append_run("go-only", "hola", "olá", user_id="u-go")
        store.append_run("s-0000002", "more", "yes")
    finally:
        store.close()
    return str(path)


def _tables(db: str) -> dict[str, list[tuple[Any, ...]]]:
    with sqlite3.connect(db) as conn:
        return {
            "sessions": conn.execute("SELECT * FROM agno_sessions ORDER BY session_id").fetchall(),
            "runs": conn.execute("SELECT * FROM agno_runs ORDER BY run_id").fetchall(),
            "memories": conn.execute("SELECT * FROM agno_memories ORDER BY memory_id").fetchall(),
        }


def _report(report: Any) -> dict[str, Any]:
    out = report.to_dict()
    out.pop("seconds")
    return out


def test_workers_write_the_rows_one_process_writes_and_rerun_alike(tmp_path: Path) -> None:
    src = _source(tmp_path / "src.db")
    alone, pooled = str(tmp_path / "alone.db"), str(tmp_path / "pooled.db")
    first = to_agno3(src, alone, batch_size=4, workers=0)
    assert _report(to_agno3(src, pooled, batch_size=4, workers=2)) == _report(first)
    assert first.total("sessions") == N + 1 and first.total("runs") == N * RUNS + 2
    assert _tables(pooled) == _tables(alone)
    # The source changes: one session loses a run, one gains a word. Both reruns do the same.
    with sqlite3.connect(src) as conn:
        (memory,) = conn.execute("SELECT memory FROM agent_sessions WHERE session_id = 's-0000005'").fetchone()
        changed = json.loads(memory)
        changed["runs"].pop()
        conn.execute("UPDATE agent_sessions SET memory = ? WHERE session_id = 's-0000005'", (json.dumps(changed),))
        conn.execute("UPDATE agent_sessions SET extra_data = '{\"w\": 1}' WHERE session_id = 's-0000011'")
    again = to_agno3(src, alone, batch_size=4, workers=0)
    assert _report(to_agno3(src, pooled, batch_size=4, workers=2)) == _report(again)
    assert again.total("sessions") == 2 and again.total("runs_removed") == 1 and again.total("unchanged") == N - 1
    assert _tables(pooled) == _tables(alone)


def test_a_dry_run_with_workers_reports_what_one_process_reports_and_writes_nothing(tmp_path: Path) -> None:
    src = _source(tmp_path / "src.db")
    alone = to_agno3(src, str(tmp_path / "a.db"), dry_run=True, batch_size=5, workers=0)
    pooled = to_agno3(src, str(tmp_path / "b.db"), dry_run=True, batch_size=5, workers=2)
    assert _report(pooled) == _report(alone) and alone.total("sessions") == N + 1
    assert not (tmp_path / "a.db").exists() and not (tmp_path / "b.db").exists()


@pytest.mark.parametrize("workers", [0, 2])
def test_a_corrupt_source_row_stops_the_migration_naming_it_after_whole_batches(tmp_path: Path, workers: int) -> None:
    """The worker's CorruptRowError reaches the caller as it is; the batches before it are written, its own not."""
    src, dst = _source(tmp_path / "src.db"), str(tmp_path / "dst.db")
    bad = "s-0000009"  # oldest first: the third batch of four
    with sqlite3.connect(src) as conn:
        conn.execute("UPDATE agent_sessions SET memory = '{\"runs\": [' WHERE session_id = ?", (bad,))
    with pytest.raises(CorruptRowError, match=bad):
        to_agno3(src, dst, batch_size=4, workers=workers)
    with sqlite3.connect(dst) as conn:
        written = {r[0] for r in conn.execute("SELECT session_id FROM agno_sessions")}
    assert bad not in written and len(written) == 8


def test_a_worker_that_dies_is_a_storage_error(tmp_path: Path) -> None:
    src = _source(tmp_path / "src.db")
    spec = SourceSpec(src=src, tables={Mode.AGENT: "agent_sessions"}, schema=None)
    with WorkerPool(1, spec, "sqlite") as pool:
        results = pool.map([[("s-0000001", (Mode.AGENT,), False)]], lambda chunk: {})
        assert next(results).counts["agent"].sessions == 1
        pool._workers[0].proc.kill()
        pool._workers[0].proc.wait()
        with pytest.raises(StorageError, match="exited"):
            list(pool.map([[("s-0000002", (Mode.AGENT,), False)]], lambda chunk: {}))


def test_a_source_a_worker_cannot_open_is_raised_before_any_batch(tmp_path: Path) -> None:
    from agno_storage.errors import DatabaseCorruptError

    (tmp_path / "not.db").write_bytes(b"not a database, " * 512)
    spec = SourceSpec(src=str(tmp_path / "not.db"), tables={Mode.AGENT: "agent_sessions"}, schema=None)
    with pytest.raises(DatabaseCorruptError):  # the worker's own typed error, raised as the pool starts
        WorkerPool(1, spec, None)
    # Started without waiting (to_agno3 makes DST's tables meanwhile): raised by wait(), the worker ended.
    pool = WorkerPool(1, spec, None, wait=False)
    with pytest.raises(DatabaseCorruptError):
        pool.wait()
    assert pool.pids == []


def test_workers_that_cannot_import_the_package_are_an_error_when_asked_for_and_skipped_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A path without this package's dependencies (a zipapp's, say): asked for, a StorageError; by default, none."""
    import sys

    from agno_storage.agno3 import migrate

    stdlib = [p for p in sys.path if p and "site-packages" not in p and "work/main" not in p]
    monkeypatch.setattr(pool_module, "_child_path", lambda: stdlib)
    src = _source(tmp_path / "src.db", 5)
    with pytest.raises(StorageError, match="exited with status 1"):
        to_agno3(src, str(tmp_path / "asked.db"), workers=2)
    monkeypatch.setattr(migrate, "WORKERS_FROM", 1)
    monkeypatch.setattr(pool_module.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(pool_module.os, "cpu_count", lambda: 2)
    assert to_agno3(src, str(tmp_path / "default.db")).total("sessions") == 6


def test_workers_must_not_be_negative(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="workers"):
        to_agno3(_source(tmp_path / "src.db", 1), str(tmp_path / "dst.db"), workers=-1)


def test_workers_above_the_limit_are_refused_before_anything_starts(tmp_path: Path) -> None:
    from agno_storage.agno3 import WORKERS_LIMIT

    with pytest.raises(ValueError, match=f"workers must be an int from 0 to {WORKERS_LIMIT}"):
        to_agno3(_source(tmp_path / "src.db", 1), str(tmp_path / "dst.db"), workers=WORKERS_LIMIT + 1)
    assert not (tmp_path / "dst.db").exists()


def test_no_more_workers_start_than_there_are_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker with no batch to map only costs its start (a third of a second) and its memory."""
    from agno_storage.agno3 import migrate

    started: list[int] = []

    class Counted(WorkerPool):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(len(self.pids))

    monkeypatch.setattr(migrate, "WorkerPool", Counted)
    src = _source(tmp_path / "src.db")  # N + 1 sessions: three batches of 10
    alone = to_agno3(src, str(tmp_path / "alone.db"), batch_size=10, workers=0)
    pooled = to_agno3(src, str(tmp_path / "pooled.db"), batch_size=10, workers=8)
    assert started == [3] and _report(pooled) == _report(alone)
    assert _tables(str(tmp_path / "pooled.db")) == _tables(str(tmp_path / "alone.db"))
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    assert to_agno3(str(empty), str(tmp_path / "none.db"), workers=8).total("sessions") == 0
    assert started == [3]  # no batch: no pool


def _pg_rows(dsn: str, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        return {
            table: conn.execute(f"SELECT * FROM {schema}.{table} ORDER BY 1").fetchall()
            for table in ("agno_sessions", "agno_runs", "agno_memories")
        }


def test_workers_into_postgres_write_what_one_process_writes(pg_server: Any, tmp_path: Path) -> None:
    """The workers encode PostgreSQL's rows (Jsonb) and hand them over: equal tables in two schemas."""
    src = _source(tmp_path / "src.db")
    dsn = pg_server.dsn
    alone = to_agno3(src, dsn, dst_schema="w_alone", batch_size=4, workers=0)
    pooled = to_agno3(src, dsn, dst_schema="w_pooled", batch_size=4, workers=2)
    assert _report(pooled) == _report(alone) and alone.total("runs") == N * RUNS + 2
    assert _pg_rows(dsn, "w_pooled") == _pg_rows(dsn, "w_alone")


def test_workers_read_a_postgres_source(pg_server: Any, tmp_path: Path) -> None:
    """Each worker opens the PostgreSQL source itself (its own connection) and reads its batches."""
    from agno_storage.urls import open_storage

    dsn = pg_server.dsn
    store = open_storage(dsn, table_name="agent_sessions", mode="agent", schema="w_src")
    try:
        store.create()
        store.upsert_many(harness.ours_session(sessions.agno_session(i, n_runs=RUNS)) for i in range(N))
    finally:
        store.close()
    alone, pooled = str(tmp_path / "alone.db"), str(tmp_path / "pooled.db")
    first = to_agno3(dsn, alone, schema="w_src", batch_size=4, workers=0)
    assert _report(to_agno3(dsn, pooled, schema="w_src", batch_size=4, workers=2)) == _report(first)
    assert first.total("sessions") == N
    assert _tables(pooled) == _tables(alone)


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


_KILLED = """
import sys
from agno_storage.agno3 import to_agno3
def progress(done, total):
    print(done, flush=True)
to_agno3(sys.argv[1], sys.argv[2], batch_size=10, workers=2, progress=progress)
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the workers through /proc")
def test_a_killed_migration_leaves_no_worker_behind_and_the_rerun_completes(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    n = 300
    src, dst = _source(tmp_path / "src.db", n), str(tmp_path / "dst.db")
    child = subprocess.Popen([sys.executable, "-c", _KILLED, src, dst], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    for _ in range(3):  # three batches written
        assert child.stdout.readline().strip()
    workers = _children(child.pid)
    assert len(workers) == 2
    child.send_signal(signal.SIGKILL)
    child.wait()
    deadline = time.monotonic() + 20
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers), "a worker outlived the migration that started it"
    with sqlite3.connect(dst) as conn:
        written = conn.execute("SELECT COUNT(*) FROM agno_sessions").fetchone()[0]
    assert 30 <= written < n + 1  # whole batches only: the rerun goes on from there
    report = to_agno3(src, dst, batch_size=50, workers=2)
    assert report.total("unchanged") == written and report.total("sessions") == n + 1 - written
    with sqlite3.connect(dst) as conn:
        assert conn.execute("SELECT COUNT(*) FROM agno_runs").fetchone()[0] == n * RUNS + 2


def test_workers_chosen_by_default_fall_back_to_this_process_where_none_can_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A frozen program (or no interpreter path) cannot start ``python -m``: asked for, an error; by default, none."""
    import sys

    from agno_storage.agno3 import migrate

    src = _source(tmp_path / "src.db", 5)
    monkeypatch.setattr(migrate, "WORKERS_FROM", 1)
    monkeypatch.setattr(pool_module.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(pool_module.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    with pytest.raises(StorageError, match="no Python interpreter"):
        to_agno3(src, str(tmp_path / "asked.db"), workers=2)
    report = to_agno3(src, str(tmp_path / "default.db"))
    assert report.total("sessions") == 6


def test_a_worker_ignores_ctrl_c_and_ends_with_its_input(tmp_path: Path) -> None:
    """Ctrl-C goes to the whole process group: the worker leaves stopping to the migrating process."""
    import os
    import signal

    src = _source(tmp_path / "src.db", 3)
    spec = SourceSpec(src=src, tables={Mode.AGENT: "agent_sessions"}, schema=None)
    with WorkerPool(1, spec, "sqlite") as pool:
        (pid,) = pool.pids
        first = next(pool.map([[("s-0000000", (Mode.AGENT,), False)]], lambda chunk: {}))
        os.kill(pid, signal.SIGINT)
        again = next(pool.map([[("s-0000001", (Mode.AGENT,), False)]], lambda chunk: {}))
        assert first.counts["agent"].sessions == again.counts["agent"].sessions == 1
    assert not _alive(pid)


def test_a_pool_closed_with_replies_unread_ends_its_workers_without_killing_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an error or Ctrl-C the parent stops reading: a worker writing a large reply must still end by itself."""
    monkeypatch.setattr(pool_module, "CLOSE_GRACE", 60.0)  # killed only after a minute: exit status -9
    src = _source(tmp_path / "src.db", 40)
    spec = SourceSpec(src=src, tables={Mode.AGENT: "agent_sessions"}, schema=None)
    chunks = [[(f"s-{i:07d}", (Mode.AGENT,), False) for i in range(start, start + 20)] for start in (0, 20)]
    pool = WorkerPool(1, spec, "sqlite")
    (pid,) = pool.pids
    proc = pool._workers[0].proc
    results = pool.map(chunks, lambda chunk: {})
    first = next(results)  # the reply to the second batch (~200 KB, more than a pipe holds) goes unread
    assert first.counts["agent"].sessions == 20
    pool.close()
    assert proc.returncode == 0 and not _alive(pid)


def test_workers_import_this_package_whatever_the_working_folder_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m`` would put the working folder first on the worker's path; an ``agno_storage`` there must not win."""
    src = _source(tmp_path / "src.db", 5)
    decoy = tmp_path / "work" / "agno_storage"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise ImportError('the wrong agno_storage')\n")
    monkeypatch.chdir(decoy.parent)
    report = to_agno3(src, str(tmp_path / "dst.db"), batch_size=2, workers=2)
    assert report.total("sessions") == 6


def test_no_workers_by_default_under_an_embedding_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under uWSGI ``sys.executable`` is the server: ``-m`` would start another server, not a worker."""
    import sys

    from agno_storage.agno3 import migrate

    monkeypatch.setattr(migrate, "WORKERS_FROM", 1)
    monkeypatch.setattr(pool_module.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(pool_module.os, "cpu_count", lambda: 2)
    started: list[int] = []
    monkeypatch.setattr(migrate.WorkerPool, "__init__", lambda self, n, *a, **k: started.append(n) or None)
    monkeypatch.setattr(sys, "executable", "/usr/local/bin/uwsgi")
    src = _source(tmp_path / "src.db", 5)
    assert to_agno3(src, str(tmp_path / "dst.db")).total("sessions") == 6
    assert started == []
    monkeypatch.setattr(sys, "executable", "/usr/bin/python3")  # the same file with an interpreter: workers
    with pytest.raises(AttributeError):  # the stubbed pool has no workers to map with
        to_agno3(src, str(tmp_path / "dst2.db"), batch_size=1)  # six batches: a worker for each core
    assert started == [2]


def test_output_at_a_workers_start_does_not_mix_into_its_replies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A sitecustomize (or .pth file) that prints when Python starts: replies come on a pipe of their own,
    so the migration neither hangs on a garbled frame nor reads the text as one."""
    import os

    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text("print('hello from sitecustomize')\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hooks), os.environ.get("PYTHONPATH", "")]))
    src = _source(tmp_path / "src.db", 5)
    report = to_agno3(src, str(tmp_path / "dst.db"), batch_size=2, workers=2)
    assert report.total("sessions") == 6
    assert len(_tables(str(tmp_path / "dst.db"))["sessions"]) == 6
    assert "hello from sitecustomize" not in capfd.readouterr().out  # nor in this process's output
