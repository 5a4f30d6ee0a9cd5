"""The PostgreSQL workloads P1 to P4. Each returns a list of result rows (dicts) for the report.

The timed ones go through bench.harness, as the SQLite ones do. Each takes
the server's libpq DSN (for this project's store and the floor) and its
SQLAlchemy URL (for agno). Needs psycopg: bench/pg.py imports this module
only once it has checked that it is installed.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import psycopg

from agno_storage import PostgresStorage
from bench import harness
from bench.child import TEMPLATE_DICTS, bulk_dicts, bulk_rows
from bench.config import PgConfig
from bench.harness import Contender, Entry, Row, ours_session
from bench.pg_contenders import (
    FLOOR_PREPARED,
    FLOOR_WRITES_PREPARED,
    OURS_PREPARED,
    SCHEMA,
    PgAgno,
    PgFloor,
    PgOurs,
    encode_pg_row,
)


def _tables(tag: str) -> Callable[[int, Contender], str]:
    """A table for each contender: ``<tag>_<index>_<kind>``, new on this throwaway server."""
    return lambda i, c: f"{tag}_{i}_{c.kind}"


def small_writes_and_reads(cfg: PgConfig, dsn: str, url: str, small: list[dict[str, Any]]) -> list[Row]:
    """P1 and P2: upsert new, upsert existing and read small sessions, one transaction each."""
    ours = PgOurs(dsn)
    prepared = PgOurs(dsn, OURS_PREPARED, prepared=True)
    floor = PgFloor(dsn)
    agno = PgAgno(url)
    writers: list[Contender] = [
        ours,
        PgOurs(dsn, "agno_storage, recency_indexes=False", recency_indexes=False),
        prepared,
        floor,
        PgFloor(dsn, FLOOR_WRITES_PREPARED, prepared=True),
        PgFloor(dsn, "floor, BEGIN/COMMIT per upsert", explicit_tx=True),
        agno,
    ]
    floor_decode = PgFloor(dsn, "floor + orjson.loads", decode=True)
    floor_decode.twin = floor  # a second view of the floor's table
    floor_prepared = PgFloor(dsn, FLOOR_PREPARED, decode=True, prepared=True)
    floor_prepared.twin = floor
    readers: list[Contender] = [ours, prepared, floor, floor_decode, floor_prepared, agno]
    with harness.closing([*writers, floor_decode, floor_prepared]):
        return harness.small_writes_and_reads(
            writers, readers, _tables("small"), small, cfg.rounds, cfg.small_batch, cfg.read_batch
        )


def _populate_recent(cfg: PgConfig, dsn: str) -> tuple[str, str]:
    """One table of cfg.recent_rows sessions with agno's indexes only, and a copy with the recency indexes too."""
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
        seconds, errors = c.time_each(c.upsert_one, items)
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
