"""Run the benchmark suite and write docs/benchmarks.md and docs/benchmarks.png.

python -m bench --quick --out docs/      # under a minute
python -m bench --full --out docs/       # the numbers in docs/benchmarks.md
python -m bench --smoke --out /tmp/x     # seconds; what the test suite runs

The PostgreSQL part (bench/pg.py) runs last when the server binaries are
installed; --no-postgres leaves it out.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import shlex
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs
import orjson

from bench import config, harness, report, sessions, workloads
from bench.contenders import Agno, Floor, Ours
from bench.gobench import Go, GoServer, build, go_available
from bench.harness import Contender


def package_version(name: str) -> str:
    """The installed version of distribution ``name``, or "not installed"."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def add_mode_options(p: argparse.ArgumentParser, quick_help: str) -> None:
    """--quick, --full and --smoke, into ``mode`` (None when none is given)."""
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="mode", action="store_const", const="quick", help=quick_help)
    size.add_argument("--full", dest="mode", action="store_const", const="full", help="the documented run")
    size.add_argument("--smoke", dest="mode", action="store_const", const="smoke", help="tiny sizes, for tests")


def _versions() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite_python": sqlite3.sqlite_version,
        "agno": package_version("agno"),
        "sqlalchemy": package_version("sqlalchemy"),
        "orjson": package_version("orjson"),
        "agno_storage": package_version("agno_storage"),
        "revision": _revision(),
    }


def _revision() -> str:
    """The commit the package was measured at, with "+changes" if agno_storage/ differs from it."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "agno_storage"], cwd=root, capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError):
        # Run from an export of a commit (see docs/benchmarks.md): it says which.
        return os.environ.get("AGNO_STORAGE_REVISION", "unknown")
    return head.stdout.strip() + (" +uncommitted changes in agno_storage/" if dirty.stdout.strip() else "")


def run(
    mode: str,
    out: Path,
    workdir: Path,
    use_go: bool,
    command: str,
    json_path: Path | None = None,
    postgres: bool = False,
) -> dict[str, Any]:
    cfg = config.make(mode, workdir)
    started = time.time()
    env = _versions()
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
    w1: list[Contender] = [
        ours,
        Ours("agno_storage, synchronous=NORMAL", synchronous="NORMAL"),
        Ours("agno_storage, no recency indexes", recency_indexes=False),
        floor,
        Floor("floor, synchronous=NORMAL", synchronous="NORMAL", best_indexes=False),
        agno,
        *go(),
    ]
    floor_decode = Floor("floor + orjson.loads", decode=True, best_indexes=False)
    floor_decode.twin = floor
    readers: list[Contender] = [ours, floor, floor_decode, agno, *go()]
    with harness.closing([*w1, floor_decode]):
        rows = workloads.small_writes_and_reads(cfg, w1, readers, small)
        env["agno_pragmas"] = agno.pragmas()

    # Workload 3.
    w3: list[Contender] = [Ours("agno_storage"), Floor("floor (sqlite3)", best_indexes=False), Agno(), *go()]
    with harness.closing(w3):
        rows += workloads.large_writes_and_reads(cfg, w3, large)
    large_mem = workloads.large_memory(cfg)
    if server is not None:
        server.close()

    rows += workloads.recent_sessions(cfg)
    rows += workloads.bulk_import(cfg)
    concurrent = workloads.concurrent_writers(cfg, binary, sessions_file)
    if binary is None:
        notes.append("Workload 6 ran two Python writers only (no Go writer).")

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
    }
    if postgres:
        from bench import pg

        results["postgres"] = pg.run(mode, command)
    report.write(results, out, json_path)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    add_mode_options(p, "under a minute (default)")
    p.add_argument("--out", type=Path, default=Path("docs"), help="folder for benchmarks.md/.png/.json (default docs/)")
    p.add_argument("--workdir", type=Path, default=None, help="folder for the database files (default: a temp dir)")
    p.add_argument(
        "--json", type=Path, default=None, help="also save the raw results here (re-render: python -m bench.report)"
    )
    p.add_argument("--no-go", dest="go", action="store_false", help="leave out the Go contender")
    p.add_argument(
        "--no-postgres",
        dest="postgres",
        action="store_false",
        help="leave out the PostgreSQL part (skipped with a note anyway when no server binaries are found)",
    )
    args = p.parse_args(argv)
    mode = args.mode or "quick"
    command = "python -m bench " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    args.out.mkdir(parents=True, exist_ok=True)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        results = run(mode, args.out, args.workdir.resolve(), args.go, command, args.json, args.postgres)
    else:
        with tempfile.TemporaryDirectory(prefix="agno-storage-bench-") as tmp:
            results = run(mode, args.out, Path(tmp), args.go, command, args.json, args.postgres)
    print(report.summary(results))
    return 0
