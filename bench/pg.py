"""The PostgreSQL part of the benchmark suite.

    python -m bench.pg --quick                       # this part alone, printed
    python -m bench.pg --full --json bench/results/postgres_full.json \\
        --render-with bench/results/full.json --out docs/

``python -m bench`` runs it too, after the SQLite workloads (``--no-postgres``
leaves it out). It starts one throwaway PostgreSQL server (tests/pgserver.py)
and turns durability back on before anything is measured: ``fsync``,
``full_page_writes`` and ``synchronous_commit`` on, ``shared_buffers`` at
PostgreSQL's default 128MB, so a commit waits for its WAL flush as in a real
deployment. Every contender uses that one server and database over TCP on
127.0.0.1. Without the server binaries or psycopg the part is skipped with a
one-line note.

Workloads (timed ones interleaved as in bench/workloads.py):
  P1 upsert small sessions, new then existing, one transaction each
  P2 read small sessions by session_id
  P3 newest 20 of one user / one agent / all, among many rows
  P4 bulk import through upsert_many (agno: its upsert in a loop on a sample, extrapolated)
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import itertools
import json
import shlex
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import orjson

from bench import sessions
from bench.harness import FIELDS, Contender, ours_session
from bench.pg_contenders import SCHEMA, PgAgno, PgFloor, PgOurs, encode_pg_row
from bench.workloads import interleave, rows_for

Row = dict[str, Any]

#: What the benchmark server runs with, on top of tests/pgserver.py's throwaway settings.
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
        from tests.pgserver import missing_requirement
    except ImportError:
        return "tests/pgserver.py not importable (run from the repository root)"
    return missing_requirement()


@contextlib.contextmanager
def durable_server() -> Iterator[Any]:
    """A throwaway server with durability on (see DURABLE_SETTINGS), removed afterwards."""
    import psycopg

    from tests.pgserver import running_server

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


def _open(contenders: list[Contender], tag: str) -> None:
    for i, c in enumerate(contenders):
        c.path = f"{tag}_{i}_{c.kind}"
        c.open(c.path)


def small_writes_and_reads(cfg: PgConfig, dsn: str, url: str, small: list[dict[str, Any]]) -> list[Row]:
    """P1 and P2: upsert new, upsert existing and read small sessions, one transaction each."""
    ours = PgOurs(dsn)
    floor = PgFloor(dsn)
    floor_tx = PgFloor(dsn, "floor, BEGIN/COMMIT per upsert", explicit_tx=True)
    agno = PgAgno(url)
    writers: list[Contender] = [ours, floor, floor_tx, agno]
    _open(writers, "small")
    for c in writers:
        c.prepare("small", small)
    n = cfg.small_batch

    def upsert(c: Contender, r: int) -> tuple[float, int, int]:
        s, e = c.upsert("small", r * n, n)
        return s, n, e

    out = rows_for("1. upsert new small", interleave(writers, cfg.rounds, upsert), writers)
    out += rows_for("1. upsert existing small", interleave(writers, cfg.rounds, upsert), writers)

    floor_decode = PgFloor(dsn, "floor + orjson.loads", decode=True)
    floor_decode.open(floor.path)  # a second view of the floor's table
    floor_decode.prepare("small", small)
    readers: list[Contender] = [ours, floor, floor_decode, agno]
    written = cfg.rounds * n
    m = min(cfg.read_batch, written)

    def read(c: Contender, r: int) -> tuple[float, int, int]:
        start = (r * m) % max(written - m, 1)
        s, e = c.read("small", start, m)
        return s, m, e

    out += rows_for("2. read small", interleave(readers, cfg.rounds, read), readers)
    for c in [*writers, floor_decode]:
        c.close()
    return out


def _bulk_rows(n: int, prefix: str) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    from bench.child import bulk_dicts

    return bulk_dicts(n, prefix=prefix)


def _populate_recent(cfg: PgConfig, dsn: str) -> tuple[str, str]:
    """One table of cfg.recent_rows sessions in agno's layout, and a copy with indexes made for the queries."""
    import psycopg

    from agno_storage.backends.postgres import PostgresStorage

    table, best = "recent", "recent_best"
    st = PostgresStorage(table, db_url=dsn, schema=SCHEMA, mode="agent")
    st.drop()
    st.create()
    st.upsert_many(ours_session(t, **over) for t, over in _bulk_rows(cfg.recent_rows, "r"))
    st.close()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP TABLE IF EXISTS "{SCHEMA}"."{best}"')
        conn.execute(f'CREATE TABLE "{SCHEMA}"."{best}" (LIKE "{SCHEMA}"."{table}" INCLUDING ALL)')
        conn.execute(f'INSERT INTO "{SCHEMA}"."{best}" SELECT * FROM "{SCHEMA}"."{table}"')  # noqa: S608 - constants
        key = '"created_at" DESC NULLS LAST, "session_id" COLLATE "C"'
        for name, lead in (("user", '"user_id", '), ("agent", '"agent_id", '), ("all", "")):
            conn.execute(f'CREATE INDEX "best_{name}_recent" ON "{SCHEMA}"."{best}" ({lead}{key})')
        for t in (table, best):
            conn.execute(f'VACUUM ANALYZE "{SCHEMA}"."{t}"')
    return table, best


def recent_sessions(cfg: PgConfig, dsn: str, url: str) -> list[Row]:
    """P3: the 20 newest sessions of one user, of one agent, and of all."""
    table, best = _populate_recent(cfg, dsn)
    floor_best = PgFloor(dsn, "floor, index made for the query (raw rows)")
    contenders: list[Contender] = [
        PgOurs(dsn, "agno_storage (agno's indexes)"),
        PgFloor(dsn, "floor, agno's indexes (raw rows)"),
        PgFloor(dsn, "floor, agno's indexes + orjson.loads", decode=True),
        floor_best,
        PgAgno(url),
    ]
    for c in contenders:
        c.open(best if c is floor_best else table)
    queries: dict[str, list[tuple[str | None, str | None]]] = {
        "user": [(f"user-{(k * 7) % 100:04d}", None) for k in range(50)],
        "agent": [(None, f"agent-{k % 10:02d}") for k in range(50)],
        "all": [(None, None)] * 50,
    }
    plans = _plans(contenders[1], floor_best)
    out: list[Row] = []
    for name, args in queries.items():

        def run(c: Contender, r: int, args: list[tuple[str | None, str | None]] = args) -> tuple[float, int, int]:
            # Fixed time budget per batch: the slow contenders run fewer queries.
            ops, errors = 0, 0
            start = time.perf_counter()
            while True:
                user, agent = args[(r * 7 + ops) % len(args)]
                if c.recent(user, agent, 20) == 0:
                    errors += 1
                ops += 1
                elapsed = time.perf_counter() - start
                if ops >= cfg.recent_ops or elapsed >= cfg.recent_budget_s:
                    return elapsed, ops, errors

        rows = rows_for(
            f"3. newest 20 of {name} ({cfg.recent_rows:,} rows)", interleave(contenders, cfg.rounds, run), contenders
        )
        for row in rows:
            row["plan"] = plans.get((row["contender"], name), "")
        out += rows
    for c in contenders:
        c.close()
    return out


def _plans(floor: Contender, floor_best: Contender) -> dict[tuple[str, str], str]:
    """EXPLAIN (COSTS OFF) of each query on the agno-indexed table and on the copy."""
    out: dict[tuple[str, str], str] = {}
    params = {"user": ("user-0007", 20), "agent": ("agent-01", 20), "all": (20,)}
    for c, labels in (
        (floor, ("agno_storage (agno's indexes)", "floor, agno's indexes (raw rows)")),
        (floor_best, (floor_best.label,)),
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
    runs: dict[str, list[tuple[float, int]]] = {"ours": [], "floor": [], "agno": []}

    def fresh(name: str) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP TABLE IF EXISTS "{SCHEMA}"."{name}"')

    def ours() -> tuple[float, int]:
        fresh("bulk_ours")
        st = PostgresStorage("bulk_ours", db_url=dsn, schema=SCHEMA, mode="agent")
        st.create()
        gen = (ours_session(t, **over) for t, over in _bulk_rows(n, "bulk"))
        start = time.perf_counter()
        count = st.upsert_many(gen)
        seconds = time.perf_counter() - start
        st.close()
        return seconds, count

    def floor() -> tuple[float, int]:
        fresh("bulk_floor")
        c = PgFloor(dsn)
        c.open("bulk_floor")
        from bench.child import TEMPLATE_DICTS

        sql = c.store._sql_upsert  # without RETURNING, as upsert_many runs it
        now = int(time.time())
        encoded = {id(t): encode_pg_row(c.store, t, now) for t in TEMPLATE_DICTS}
        # The store binds parameters in mode column order, as the SQLite store does.
        sid, uid, aid, cat = (FIELDS.index(f) for f in ("session_id", "user_id", "agent_id", "created_at"))

        def rows() -> Iterator[list[Any]]:
            for t, over in _bulk_rows(n, "bulk"):
                row = list(encoded[id(t)])
                row[sid], row[uid], row[aid], row[cat] = (
                    over["session_id"],
                    over["user_id"],
                    over["agent_id"],
                    over["created_at"],
                )
                yield row

        it = rows()
        count = 0
        start = time.perf_counter()
        with c.conn.transaction(), c.conn.cursor() as cur:
            while batch := list(itertools.islice(it, 500)):
                cur.executemany(sql, batch)
                count += cur.rowcount
        seconds = time.perf_counter() - start
        c.close()
        return seconds, count

    def agno() -> tuple[float, int]:
        fresh("bulk_agno")
        c = PgAgno(url)
        c.open("bulk_agno")
        items = [c.convert({**t, **over}) for t, over in _bulk_rows(cfg.agno_sample, "bulk")]
        seconds, errors = c._loop(c.upsert_one, items)
        c.close()
        return seconds, len(items) - errors

    todo = {"ours": ours, "floor": floor, "agno": agno}
    for r in range(cfg.bulk_rounds):
        for key in list(todo) if r % 2 == 0 else list(reversed(todo)):
            runs[key].append(todo[key]())
    labels = {
        "ours": f"agno_storage upsert_many ({n:,})",
        "floor": f"floor executemany ({n:,})",
        "agno": f"agno 1.8.4 upsert loop ({cfg.agno_sample:,}, extrapolated)",
    }
    expected = {"ours": n, "floor": n, "agno": cfg.agno_sample}
    base = statistics.median(s / max(c, 1) for s, c in runs["ours"])
    out = []
    for key, results in runs.items():
        per = statistics.median(s / max(c, 1) for s, c in results)
        out.append(
            {
                "workload": "4. bulk import small",
                "contender": labels[key],
                "kind": key,
                "median_us": per * 1e6,
                "ops_per_s": 1.0 / per,
                "speedup": per / base,
                "errors": sum(expected[key] - c for _, c in results),
                "rounds": len(results),
                # The report's wording is "100k would take".
                "extrapolated_s": per * 100_000 if key == "agno" else None,
            }
        )
    return out


def _versions() -> dict[str, str]:
    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    return {name: version(name) for name in ("psycopg", "psycopg-binary", "psycopg-pool", "sqlalchemy", "agno")}


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
        "small_json_bytes": sum(
            len(orjson.dumps(small[0][k])) for k in ("memory", "session_data", "extra_data", "agent_data")
        ),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    from bench import pg_report, report

    p = argparse.ArgumentParser(
        prog="python -m bench.pg", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="mode", action="store_const", const="quick", help="small sizes (default)")
    size.add_argument("--full", dest="mode", action="store_const", const="full", help="the documented run")
    size.add_argument("--smoke", dest="mode", action="store_const", const="smoke", help="tiny sizes, for tests")
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
