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
127.0.0.1. Without the server binaries or psycopg the part is skipped with a
one-line note.

Workloads (timed ones through bench/harness.py, as the SQLite ones):
  P1 upsert small sessions, new then existing, one transaction each
  P2 read small sessions by session_id
  P3 newest 20 of one user / one agent / all, among many rows
  P4 bulk import through upsert_many (agno: its upsert in a loop on a sample, extrapolated)
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import itertools
import json
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs

from bench import harness, sessions
from bench.child import TEMPLATE_DICTS, bulk_dicts, bulk_rows
from bench.harness import Contender, Entry, Row, ours_session
from bench.pg_contenders import SCHEMA, PgAgno, PgFloor, PgOurs, encode_pg_row

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


@attrs.define
class PgConfig:
    mode: str
    rounds: int
    small_batch: int  # upserts per contender per round
    read_batch: int
    recent_rows: int
    recent_ops: int  # queries per contender per round, at most ...
    recent_budget_s: float  # ... or this long
    bulk_n: int
    bulk_rounds: int
    agno_sample: int  # agno has no bulk API: this many upserts, extrapolated


def make_config(mode: str) -> PgConfig:
    if mode == "smoke":
        return PgConfig(mode, 2, 4, 8, 300, 3, 0.05, 200, 1, 10)
    if mode == "quick":
        return PgConfig(mode, 5, 40, 200, 10_000, 50, 0.2, 5_000, 1, 100)
    if mode == "full":
        return PgConfig(mode, 9, 150, 1000, 100_000, 100, 0.5, 50_000, 3, 1000)
    raise ValueError(f"unknown mode {mode!r}")


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


def _tables(tag: str) -> Callable[[int, Contender], str]:
    """A table for each contender: ``<tag>_<index>_<kind>``, new on this throwaway server."""
    return lambda i, c: f"{tag}_{i}_{c.kind}"


def small_writes_and_reads(cfg: PgConfig, dsn: str, url: str, small: list[dict[str, Any]]) -> list[Row]:
    """P1 and P2: upsert new, upsert existing and read small sessions, one transaction each."""
    ours = PgOurs(dsn)
    floor = PgFloor(dsn)
    agno = PgAgno(url)
    writers: list[Contender] = [
        ours,
        PgOurs(dsn, "agno_storage, recency_indexes=False", recency_indexes=False),
        floor,
        PgFloor(dsn, "floor, BEGIN/COMMIT per upsert", explicit_tx=True),
        agno,
    ]
    floor_decode = PgFloor(dsn, "floor + orjson.loads", decode=True)
    floor_decode.twin = floor  # a second view of the floor's table
    readers: list[Contender] = [ours, floor, floor_decode, agno]
    with harness.closing([*writers, floor_decode]):
        return harness.small_writes_and_reads(
            writers, readers, _tables("small"), small, cfg.rounds, cfg.small_batch, cfg.read_batch
        )


def _populate_recent(cfg: PgConfig, dsn: str) -> tuple[str, str]:
    """One table of cfg.recent_rows sessions with agno's indexes only, and a copy with the recency indexes too."""
    import psycopg

    from agno_storage.backends.postgres import PostgresStorage

    table, indexed = "recent", "recent_rx"
    st = PostgresStorage(table, db_url=dsn, schema=SCHEMA, mode="agent", recency_indexes=False)
    st.drop()
    st.create()
    st.upsert_many(ours_session(t, **over) for t, over in bulk_dicts(cfg.recent_rows, "r"))
    st.close()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP TABLE IF EXISTS "{SCHEMA}"."{indexed}"')
        conn.execute(f'CREATE TABLE "{SCHEMA}"."{indexed}" (LIKE "{SCHEMA}"."{table}" INCLUDING ALL)')
        conn.execute(f'INSERT INTO "{SCHEMA}"."{indexed}" SELECT * FROM "{SCHEMA}"."{table}"')  # noqa: S608 - constants
    rx = PostgresStorage(indexed, db_url=dsn, schema=SCHEMA, mode="agent")
    rx.create_recency_indexes()
    rx.close()
    with psycopg.connect(dsn, autocommit=True) as conn:
        for t in (table, indexed):
            conn.execute(f'VACUUM ANALYZE "{SCHEMA}"."{t}"')
    return table, indexed


def recent_sessions(cfg: PgConfig, dsn: str, url: str) -> list[Row]:
    """P3: the 20 newest sessions of one user, of one agent, and of all."""
    table, indexed = _populate_recent(cfg, dsn)
    on_indexed: list[Contender] = [
        PgOurs(dsn, "agno_storage (recency indexes)"),
        PgFloor(dsn, "floor, recency indexes (raw rows)"),
        PgFloor(dsn, "floor, recency indexes + orjson.loads", decode=True),
    ]
    on_agnos: list[Contender] = [
        PgOurs(dsn, "agno_storage (agno's indexes only)", recency_indexes=False),
        PgFloor(dsn, "floor, agno's indexes (raw rows)"),
        PgAgno(url),
    ]
    contenders = [*on_indexed, *on_agnos]
    with harness.closing(contenders):
        for c in contenders:
            harness.open_at(c, indexed if c in on_indexed else table)
        plans = _plans(on_indexed[1], on_agnos[1])
        return harness.newest_20(3, cfg.recent_rows, contenders, cfg.rounds, cfg.recent_ops, cfg.recent_budget_s, plans)


def _plans(floor_indexed: Contender, floor_agnos: Contender) -> dict[tuple[str, str], str]:
    """EXPLAIN (COSTS OFF) of the store's statement for each query, on each of the two tables."""
    out: dict[tuple[str, str], str] = {}
    params = {"user": ("user-0007", 20), "agent": ("agent-01", 20), "all": (20,)}
    for c, labels in (
        (floor_indexed, ("agno_storage (recency indexes)", "floor, recency indexes (raw rows)")),
        (floor_agnos, ("agno_storage (agno's indexes only)", "floor, agno's indexes (raw rows)")),
    ):
        assert isinstance(c, PgFloor) and c.conn is not None
        for q, p in params.items():
            plan = c.conn.execute("EXPLAIN (COSTS OFF) " + c.sql_recent[q], p).fetchall()
            text = "; ".join(line[0].strip().removeprefix("->  ") for line in plan)
            for label in labels:
                out[(label, q)] = text
    return out


def bulk_import(cfg: PgConfig, dsn: str, url: str) -> list[Row]:
    """P4: upsert_many of many small sessions into a fresh table, in this process."""
    import psycopg

    from agno_storage.backends.postgres import PostgresStorage

    n = cfg.bulk_n

    def ours(table: str) -> tuple[float, int]:
        st = PostgresStorage(table, db_url=dsn, schema=SCHEMA, mode="agent")
        st.create()
        gen = (ours_session(t, **over) for t, over in bulk_dicts(n, "bulk"))
        start = time.perf_counter()
        count = st.upsert_many(gen)
        seconds = time.perf_counter() - start
        st.close()
        return seconds, count

    def floor(table: str) -> tuple[float, int]:
        c = PgFloor(dsn)
        c.open(table)
        sql = c.store.statements.upsert  # without RETURNING, as upsert_many runs it
        now = int(time.time())
        # The store binds parameters in mode column order, as the SQLite store does.
        it = bulk_rows({id(t): encode_pg_row(c.store, t, now) for t in TEMPLATE_DICTS}, n, "bulk")
        count = 0
        start = time.perf_counter()
        with c.conn.transaction(), c.conn.cursor() as cur:
            while batch := list(itertools.islice(it, 500)):
                cur.executemany(sql, batch)
                count += cur.rowcount
        seconds = time.perf_counter() - start
        c.close()
        return seconds, count

    def agno(table: str) -> tuple[float, int]:
        c = PgAgno(url)
        c.open(table)
        items = [c.convert({**t, **over}) for t, over in bulk_dicts(cfg.agno_sample, "bulk")]
        seconds, errors = c._loop(c.upsert_one, items)
        c.close()
        return seconds, len(items) - errors

    todo = {"ours": ours, "floor": floor, "agno": agno}

    def run(e: Entry, r: int) -> tuple[float, int]:
        table = f"bulk_{e.key}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP TABLE IF EXISTS "{SCHEMA}"."{table}"')
        return todo[e.key](table)

    entries = [
        Entry("ours", f"agno_storage upsert_many ({n:,})", "ours", n),
        Entry("floor", f"floor executemany ({n:,})", "floor", n),
        Entry("agno", f"agno 1.8.4 upsert loop ({cfg.agno_sample:,}, extrapolated)", "agno", cfg.agno_sample),
    ]
    # The report's wording is "100k would take".
    return harness.bulk_import("4. bulk import small", entries, cfg.bulk_rounds, run, extrapolate_to=100_000)


def _versions() -> dict[str, str]:
    from bench.cli import package_version

    return {name: package_version(name) for name in ("psycopg", "psycopg-binary", "psycopg-pool", "sqlalchemy", "agno")}


def run(mode: str, command: str) -> dict[str, Any]:
    """Run the PostgreSQL part; return its results, or ``{"skipped": reason}``."""
    reason = missing()
    if reason is not None:
        return {"skipped": reason}
    from bench.cli import _revision

    cfg = make_config(mode)
    started = time.time()
    small = [sessions.small(i) for i in range(cfg.rounds * cfg.small_batch)]
    try:
        server_cm = durable_server()
        server = server_cm.__enter__()
    except RuntimeError as exc:  # initdb or pg_ctl failed: note it, keep the SQLite results
        return {"skipped": f"could not start a PostgreSQL server: {str(exc).splitlines()[0]}"}
    try:
        dsn, url = server.dsn, server.sqlalchemy_url()
        settings = server_settings(dsn)
        rows = small_writes_and_reads(cfg, dsn, url, small)
        rows += recent_sessions(cfg, dsn, url)
        rows += bulk_import(cfg, dsn, url)
    finally:
        server_cm.__exit__(None, None, None)
    return {
        "mode": mode,
        "command": command,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": time.time() - started,
        "revision": _revision(),
        "versions": _versions(),
        "server": settings,
        "connection": "TCP to 127.0.0.1, one server and database for every contender",
        "config": attrs.asdict(cfg),
        "small_json_bytes": sessions.json_bytes(small[0]),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    from bench import pg_report, report
    from bench.cli import add_mode_options

    p = argparse.ArgumentParser(
        prog="python -m bench.pg", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    add_mode_options(p, "small sizes (default)")
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
    print(pg_report.summary(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
