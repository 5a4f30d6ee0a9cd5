"""Writers other than the store stopped by the process's file-size limit: DiskFullError naming it, nothing lost.

The store's own case is tests/test_faults.py::test_a_file_size_limit_is_a_full_disk_and_loses_nothing_acknowledged.
Each call here runs in a child process whose RLIMIT_FSIZE is set (SIGXFSZ ignored, else the kernel kills it at
the limit); SQLite reports the write that reaches it as SQLITE_IOERR_WRITE, "disk I/O error".
"""

from __future__ import annotations

import json
import resource
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from agno_storage.agno3 import to_agno3
from agno_storage.ops.db import open_database
from agno_storage.ops.export import export_table
from bench.agno3 import build_source

ROOT = Path(__file__).resolve().parent.parent

#: Runs ``sys.argv[1]`` (Python calling agno_storage) and prints the type and message of the StorageError it raises.
_CALL = """
import sys
from agno_storage.errors import StorageError
try:
    exec(sys.argv[1])
except StorageError as exc:
    print(type(exc).__name__, exc.message, sep="\\n")
else:
    print("no error")
"""


def _limited(call: str, limit: int) -> tuple[str, str]:
    """The StorageError's type name and message ``call`` raises in a child process whose files stop at ``limit`` bytes."""

    def limit_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    done = subprocess.run(
        [sys.executable, "-c", _CALL, call],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
        preexec_fn=limit_files,
    )
    assert done.returncode == 0, done.stderr
    kind, _, message = done.stdout.partition("\n")
    return kind, message


def _memory_table(src: Path, n: int) -> None:
    """agno 1.x's memory table in ``src``, ``n`` memories of about 2 KB each."""
    with sqlite3.connect(src) as conn:
        conn.execute(
            "CREATE TABLE memory (id VARCHAR PRIMARY KEY, user_id VARCHAR, memory TEXT, created_at DATETIME,"
            " updated_at DATETIME)"
        )
        conn.executemany(
            "INSERT INTO memory VALUES (?, 'u', ?, '2024-01-01 00:00:00', NULL)",
            [(f"m{i}", json.dumps({"memory": f"{i} " + "likes tea " * 200})) for i in range(n)],
        )


def _oldest_first(src: Path) -> list[str]:
    with sqlite3.connect(src) as conn:
        return [r[0] for r in conn.execute("SELECT session_id FROM agent_sessions ORDER BY created_at, session_id")]


# The limits leave room for some batches of 10 before the one that reaches it (1 MB is past the first batch of
# sessions already).
@pytest.mark.parametrize(("fills", "limit"), [("sessions", 2_000_000), ("memories", 1_000_000)])
def test_to_agno3_past_the_file_size_limit_is_a_full_disk_and_a_rerun_completes_it(
    tmp_path: Path, fills: str, limit: int
) -> None:
    """The limit reached by a batch of sessions, or of agno 1.x's memory table: DiskFullError naming it; the
    batches before it are there, and the rerun without the limit writes the rest."""
    src, dst = tmp_path / "src.db", tmp_path / "dst.db"
    sessions, memories = (80, 0) if fills == "sessions" else (2, 700)
    build_source(src, sessions, 10)
    if memories:
        _memory_table(src, memories)
    kind, message = _limited(
        f"from agno_storage.agno3 import to_agno3; to_agno3({str(src)!r}, {str(dst)!r}, workers=0, batch_size=10)",
        limit,
    )
    assert kind == "DiskFullError", message
    assert "file-size limit" in message and str(limit) in message

    def held() -> tuple[list[str], int, int]:
        with sqlite3.connect(dst) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            ids = [r[0] for r in conn.execute("SELECT session_id FROM agno_sessions")]
            runs = conn.execute("SELECT count(*) FROM agno_runs").fetchone()[0]
            kept = conn.execute("SELECT count(*) FROM agno_memories WHERE memory_id LIKE 'm%'").fetchone()[0]
        return ids, runs, kept

    # Before the rerun: whole batches of 10, oldest first, each session with its 10 runs.
    ids, runs, kept = held()
    if fills == "sessions":
        assert 0 < len(ids) < sessions and len(ids) % 10 == 0
        assert sorted(ids) == sorted(_oldest_first(src)[: len(ids)]) and runs == len(ids) * 10 and kept == 0
    else:  # the sessions' batch, then the memory table's batches
        assert sorted(ids) == sorted(_oldest_first(src)) and runs == sessions * 10
        assert 0 < kept < memories and kept % 10 == 0
    report = to_agno3(str(src), str(dst), workers=0, batch_size=10)
    agent = report.modes["agent"]
    assert agent.sessions == sessions - len(ids) and agent.unchanged == len(ids)
    if fills == "memories":
        assert report.total("memories") == memories - kept
    ids, runs, kept = held()
    assert sorted(ids) == sorted(_oldest_first(src)) and runs == sessions * 10 and kept == memories


def test_to_agno3_sorting_an_unindexed_memory_table_past_the_file_size_limit_is_a_full_disk(tmp_path: Path) -> None:
    """agno 1.x's memory table, read oldest first, is sorted in a temporary file of SQLite's: past the limit
    that was a plain StorageError ("disk I/O error"), the target far below it; the rerun without it moves all."""
    src, dst = tmp_path / "src.db", tmp_path / "dst.db"
    build_source(src, 2, 2)
    _memory_table(src, 3000)
    kind, message = _limited(
        f"from agno_storage.agno3 import to_agno3; to_agno3({str(src)!r}, {str(dst)!r}, workers=0, batch_size=10)",
        1_000_000,
    )
    assert kind == "DiskFullError", message
    assert "file-size limit" in message and "1000000" in message and "temporary file" in message
    assert dst.stat().st_size < 1_000_000
    assert to_agno3(str(src), str(dst), workers=0, batch_size=10).total("memories") == 3000


def test_a_backup_past_the_file_size_limit_is_a_full_disk_and_leaves_no_file(tmp_path: Path) -> None:
    src, dest = tmp_path / "src.db", tmp_path / "copy.db"
    build_source(src, 80, 10)
    assert src.stat().st_size > 1_000_000
    kind, message = _limited(
        f"from agno_storage.ops.backup import backup; backup({str(src)!r}, {str(dest)!r})", 1_000_000
    )
    assert kind == "DiskFullError", message
    assert "file-size limit" in message and "1000000" in message
    assert not [p.name for p in tmp_path.iterdir() if not p.name.startswith("src.db")], "a partial copy was left"


def test_copy_and_import_past_the_file_size_limit_are_a_full_disk(tmp_path: Path) -> None:
    """copy and import write through the store: the limit is a DiskFullError naming it there too."""
    src = tmp_path / "src.db"
    build_source(src, 80, 10)
    copy = (
        "from agno_storage.ops.db import open_database; from agno_storage.ops.copy import copy_table;"
        f" copy_table(open_database({str(src)!r}), 'agent_sessions', {str(tmp_path / 'copy.db')!r})"
    )
    export = tmp_path / "sessions.jsonl"
    with open(export, "wb") as out:
        export_table(open_database(str(src)), "agent_sessions", out)
    imported = (
        "from agno_storage.ops.load import import_lines;"
        f" import_lines(open({str(export)!r}, 'rb'), {str(tmp_path / 'imported.db')!r}, 'agent_sessions')"
    )
    for call in (copy, imported):
        kind, message = _limited(call, 1_000_000)
        assert kind == "DiskFullError", message
        assert "file-size limit" in message and "1000000" in message
