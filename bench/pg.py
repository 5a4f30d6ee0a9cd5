"""The PostgreSQL part of the benchmark suite.

    python -m bench.pg --quick                       # this part alone, printed
    python -m bench.pg --full --json bench/results/postgres_full.json \\
        --render-with bench/results/full.json --out docs/

``python -m bench`` runs it too, after the SQLite workloads (``--no-postgres``
leaves it out). It starts one throwaway PostgreSQL server (devkit/pgserver.py)
and turns durability back on before anything is measured: ``fsync``,
``full_page_writes`` and ``synchronous_commit`` on, ``shared_buffers`` at
PostgreSQL's default 128MB, so a commit waits for its WAL flush as in a real
deployment. Every contender uses that one server and database over TCP on
127.0.0.1. Without the server binaries, psycopg or devkit/, or when the
server does not start, the part cannot run: the page and the printed
summary then carry a warning that names the cause, and ``python -m bench.pg``
(like ``python -m bench --full``) exits with status 1.

Workloads (bench/pg_workloads.py; timed ones through bench/harness.py, as the SQLite ones):
  P1 upsert small sessions, new then existing, one transaction each
  P2 read small sessions by session_id
  P3 newest 20 of one user / one agent / all, among many rows
  P4 bulk import through upsert_many (agno: its upsert in a loop on a sample, extrapolated)
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from bench import config, pg_report, report, sessions
from bench.provenance import package_version, revision

#: What the benchmark server runs with, on top of devkit/pgserver.py's throwaway settings.
DURABLE_SETTINGS = {
    "fsync": "on",
    "full_page_writes": "on",
    "synchronous_commit": "on",
    "shared_buffers": "128MB",
}
#: Settings read back from the running server into the report.
REPORTED = (
    "server_version",
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "wal_sync_method",
    "shared_buffers",
    "wal_level",
    "max_wal_size",
)


def missing() -> str | None:
    """One line saying why the PostgreSQL part cannot run here, or None."""
    try:
        from devkit.pgserver import missing_requirement
    except ImportError:
        return "devkit/pgserver.py not importable (run from the repository root)"
    return missing_requirement()


@contextlib.contextmanager
def durable_server() -> Iterator[Any]:
    """A throwaway server with durability on (see DURABLE_SETTINGS), removed afterwards."""
    import psycopg

    from devkit.pgserver import running_server

    with running_server() as server:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            for name, value in DURABLE_SETTINGS.items():
                # ALTER SYSTEM takes no bind parameters; names and values are constants above.
                conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        server.stop(mode="fast")  # shared_buffers needs a restart
        server.start()
        yield server


def server_settings(dsn: str) -> dict[str, str]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        return {name: str(conn.execute(f"SHOW {name}").fetchone()[0]) for name in REPORTED}  # type: ignore[index]


def versions() -> dict[str, str]:
    """The drivers and agno the PostgreSQL part ran with."""
    return {name: package_version(name) for name in ("psycopg", "psycopg-binary", "psycopg-pool", "sqlalchemy", "agno")}


def not_run(reason: str, detail: str = "") -> dict[str, Any]:
    """The results of a PostgreSQL part that could not run: ``skipped`` says why in one line.

    The report turns them into a warning (``bench.pg_report``), never a quiet note.
    """
    out = {"skipped": reason}
    if detail:
        out["detail"] = detail
    return out


def run(mode: str, command: str) -> dict[str, Any]:
    """Run the PostgreSQL part; return its results, or :func:`not_run`'s when it cannot run here.

    A missing server, driver or devkit, or a server that does not start,
    gives ``{"skipped": reason, ...}`` so the SQLite results are still
    written; a failure once the server runs is raised.
    """
    reason = missing()
    if reason is not None:
        return not_run(reason)
    # The workloads need psycopg, which missing() has just found.
    from bench import pg_workloads

    cfg = config.make_pg(mode)
    started = time.time()
    load_before = [round(x, 2) for x in os.getloadavg()]
    small = [sessions.small(i) for i in range(cfg.rounds * cfg.small_batch)]
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(durable_server())
        except Exception as exc:  # initdb, pg_ctl or the restart with durability on failed
            text = str(exc).strip() or type(exc).__name__
            return not_run(f"could not start a PostgreSQL server: {text.splitlines()[0]}", text[-4000:])
        dsn, url = server.dsn, server.sqlalchemy_url()
        settings = server_settings(dsn)
        rows = pg_workloads.small_writes_and_reads(cfg, dsn, url, small)
        rows += pg_workloads.recent_sessions(cfg, dsn, url)
        rows += pg_workloads.bulk_import(cfg, dsn, url)
    return {
        "mode": mode,
        "command": command,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": time.time() - started,
        "revision": revision(),
        "versions": versions(),
        "server": settings,
        "connection": "TCP to 127.0.0.1, one server and database for every contender",
        "config": attrs.asdict(cfg),
        "small_json_bytes": sessions.json_bytes(small[0]),
        "rows": rows,
        "cores": os.cpu_count(),
        "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.pg", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    config.add_mode_options(p, "small sizes (default)")
    p.add_argument("--json", type=Path, default=None, help="save the raw results here")
    p.add_argument(
        "--render-with",
        type=Path,
        default=None,
        help="saved results of the SQLite run: write benchmarks.md from them plus this run",
    )
    p.add_argument("--out", type=Path, default=Path("docs"), help="folder for benchmarks.md (with --render-with)")
    args = p.parse_args(argv)
    command = "python -m bench.pg " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    results = run(args.mode or "quick", command)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    if args.render_with is not None:
        merged = json.loads(args.render_with.read_text())
        merged["postgres"] = results
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "benchmarks.md").write_text(report.render(merged))
    print(pg_report.summary(results))  # the warning, when the part did not run
    return 1 if "skipped" in results else 0


if __name__ == "__main__":
    raise SystemExit(main())
