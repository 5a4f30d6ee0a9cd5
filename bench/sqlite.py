"""The SQLite part of the benchmark suite: workloads 1 to 6, against agno 1.8.4, the floor and agno-golang.

``python -m bench`` (bench/cli.py) runs it, then the PostgreSQL part
(bench/pg.py), then writes the report (bench/report.py).
"""

from __future__ import annotations

import datetime
import os
import platform
import sqlite3
import time
from pathlib import Path
from typing import Any

import attrs
import orjson

from bench import config, harness, projected, sessions, workloads
from bench.contenders import Agno, Floor, Ours
from bench.gobench import Go, GoServer, build, go_available
from bench.harness import Contender
from bench.provenance import package_version, revision


def versions() -> dict[str, Any]:
    """The machine and the versions the SQLite part ran with."""
    return {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite_python": sqlite3.sqlite_version,
        "agno": package_version("agno"),
        "sqlalchemy": package_version("sqlalchemy"),
        "orjson": package_version("orjson"),
        "agno_storage": package_version("agno-session-storage"),
        "revision": revision(),
    }


def load() -> list[float]:
    """The machine's load averages over 1, 5 and 15 minutes (``os.getloadavg``)."""
    return [round(x, 2) for x in os.getloadavg()]


def run(mode: str, workdir: Path, use_go: bool, command: str) -> dict[str, Any]:
    """Run the SQLite workloads (and the Go contender unless ``use_go`` is False) in ``workdir``; return the results.

    Without ``go`` or when the build fails, the Go rows are left out and
    ``notes`` says why.
    """
    cfg = config.make(mode, workdir)
    started = time.time()
    env = versions()
    env["load_before"] = load()
    notes: list[str] = []
    small = [sessions.small(i) for i in range(cfg.rounds * cfg.small_batch)]
    large = [sessions.large(i) for i in range(cfg.large_rounds * cfg.large_batch)]

    server: GoServer | None = None
    binary: Path | None = None
    sessions_file: Path | None = None
    why_not = None if use_go else "skipped on request (--no-go)"
    if why_not is None:
        why_not = go_available()
    if why_not is None:
        try:
            binary = build(workdir)
        except Exception as exc:
            why_not = f"`go build ./cmd/bench` failed: {getattr(exc, 'stderr', exc)}".strip()
    if why_not is None and binary is not None:
        sessions_file = workdir / "sessions.json"
        changed = [sessions.changed(d) for d in small]
        sessions_file.write_bytes(orjson.dumps({"small": small, harness.CHANGED_SMALL: changed, "large": large}))
        server = GoServer(binary, sessions_file)
        info = server.call(op="info")
        env["sqlite_go"] = info["sqlite_version"]
        env["go"] = info["go_version"]
    else:
        binary = None
        notes.append(f"Go column skipped: {why_not}.")
        env["sqlite_go"] = env["go"] = "n/a"

    def go() -> list[Contender]:
        return [Go(server)] if server is not None else []

    # Workloads 1 and 2.
    ours = Ours("agno_storage")
    floor = Floor("floor (sqlite3)", best_indexes=False)
    agno = Agno()
    agno_wal = Agno(wal=True)
    w1: list[Contender] = [
        ours,
        Ours("agno_storage, synchronous=NORMAL", synchronous="NORMAL"),
        Ours("agno_storage, no recency indexes", recency_indexes=False),
        floor,
        Floor("floor, synchronous=NORMAL", synchronous="NORMAL", best_indexes=False),
        agno,
        agno_wal,
        *go(),
    ]
    floor_decode = Floor("floor + orjson.loads", decode=True, best_indexes=False)
    floor_decode.twin = floor
    readers: list[Contender] = [ours, floor, floor_decode, agno, agno_wal, *go()]
    with harness.closing([*w1, floor_decode]):
        rows = workloads.small_writes_and_reads(cfg, w1, readers, small)
        env["agno_pragmas"] = agno.pragmas()
        env["agno_wal_pragmas"] = agno_wal.pragmas()

    # Workload 3.
    large_floor = Floor("floor (sqlite3)", best_indexes=False)
    large_decode = Floor("floor + orjson.loads", decode=True, best_indexes=False)
    large_decode.twin = large_floor
    w3: list[Contender] = [Ours("agno_storage"), large_floor, Agno(), Agno(wal=True), *go()]
    r3: list[Contender] = [w3[0], large_floor, large_decode, *w3[2:]]
    with harness.closing([*w3, large_decode]):
        rows += workloads.large_writes_and_reads(cfg, w3, r3, large)
    large_mem = workloads.large_memory(cfg)
    if server is not None:
        server.close()

    rows += workloads.recent_sessions(cfg)
    if not projected.available():
        notes.append("Workload 4b (newest 20 projected) not run: this revision of the store has no list_summaries().")
    rows += workloads.bulk_import(cfg)
    concurrent = workloads.concurrent_writers(cfg, binary, sessions_file)
    if binary is None:
        notes.append("Workload 6 ran two Python writers only (no Go writer).")

    env["load_after"] = load()
    results = {
        "mode": mode,
        "command": command,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": time.time() - started,
        "env": env,
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in attrs.asdict(cfg).items() if k != "workdir"},
        "small_json_bytes": sessions.json_bytes(small[0]),
        "large_json_bytes": sessions.json_bytes(large[0]),
        "rows": rows,
        "large_mem": large_mem,
        "concurrent": concurrent,
        "notes": notes,
        "go": server is not None,
        "go_skipped": None if server is not None else why_not,  # why the Go contender did not run
    }
    return results
