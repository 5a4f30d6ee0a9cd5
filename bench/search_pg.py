"""Benchmark: full-text search on PostgreSQL, side by side with what it replaces.

    python -m bench.search_pg [--sessions 50000] [--runs 10]    (make bench-search-pg)

The same sessions as ``bench.search`` (``--sessions`` agno 1.x agent
sessions of ``--runs`` runs, 2 x sessions x runs messages: 1,000,000 by
default), written by this project's ``PostgresStorage`` into a throwaway
server with durability on (``bench.pg.durable_server``). Reports, each a
median measured in this one process:

- a two-word query: ``store.search()`` with the index (a GIN-indexed
  tsvector) vs an ``ILIKE '%word%'`` scan of the memory column's text (what
  a message table with a LIKE search does), and vs ``search()`` without the
  index (one run);
- building the index (messages per second);
- catching up after another process rewrote 10,000 sessions (plain
  ``UPDATE`` statements through psycopg, as agno's and Go's writers do),
  and what the log trigger costs that writer.

``history()`` does not depend on the engine past the read: see
``bench.search``. Nothing here is a test: numbers go to stdout (and ``--json``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from agno_storage.backends.postgres import PostgresStorage
from bench import pg
from bench.search import RARE, agent_sessions, scan_then_build, timed

TABLE = "agent_sessions"
SCHEMA = "ai"

#: What the other process runs: argv[1] is the server, argv[2] the table, argv[3] how many sessions it rewrites,
#: in one transaction.
_REWRITER = """
import sys, time
import psycopg
from psycopg import sql
dsn, table, n = sys.argv[1], sql.Identifier("ai", sys.argv[2]), int(sys.argv[3])
with psycopg.connect(dsn) as conn:
    rows = conn.execute(
        sql.SQL("SELECT session_id, memory::text FROM {} ORDER BY session_id LIMIT %s").format(table), (n,)
    ).fetchall()
    start = time.perf_counter()
    with conn.cursor() as cur:
        cur.executemany(
            sql.SQL("UPDATE {} SET memory = %s::jsonb WHERE session_id = %s").format(table),
            [(text.replace("vb ", "quokka "), sid) for sid, text in rows],
        )
    conn.commit()
print(time.perf_counter() - start)
"""


def build(store: PostgresStorage, sessions: int, runs: int) -> None:
    """The sessions ``bench.search.build`` writes to SQLite, upserted here in batches."""
    store.upsert_many(agent_sessions(sessions, runs))


def rewrite(dsn: str, table: str, n: int) -> float:
    """Another process rewrites ``n`` sessions' memory; its own seconds."""
    done = subprocess.run(
        [sys.executable, "-c", _REWRITER, dsn, table, str(n)], capture_output=True, text=True, check=True
    )
    return float(done.stdout.strip())


def run(dsn: str, sessions: int, runs: int, table: str = TABLE, drop: bool = False) -> dict[str, Any]:
    import psycopg

    messages = 2 * sessions * runs
    out: dict[str, Any] = {"sessions": sessions, "messages": messages}
    with psycopg.connect(dsn, autocommit=True) as conn:
        out["postgres"] = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    print(f"{sessions:,} sessions, {messages:,} messages, PostgreSQL {out['postgres']}", flush=True)
    store = PostgresStorage(table, db_url=dsn, schema=SCHEMA, mode="agent")
    try:
        start = time.perf_counter()
        build(store, sessions, runs)
        print(f"written in {time.perf_counter() - start:.1f} s", flush=True)
        pairs = [(a, b) for a in RARE for b in RARE if a < b][:12]

        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"VACUUM ANALYZE {store.qualified_table}")

            def like() -> int:
                hits = 0
                for a, b in pairs[:3]:
                    hits += len(
                        conn.execute(
                            f"SELECT session_id FROM {store.qualified_table} WHERE memory::text ILIKE %s "  # noqa: S608
                            "AND memory::text ILIKE %s",
                            (f"%{a}%", f"%{b}%"),
                        ).fetchall()
                    )
                return hits

            build_s = scan_then_build(store, like, " ".join(pairs[0]), messages, out, "ILIKE")
        print(f"index built in {build_s:.1f} s ({out['index_build_cpu_s']:.1f} s of this process's CPU)", flush=True)

        def one(a: str, b: str) -> Any:
            return lambda: store.search(f"{a} {b}")

        one(*pairs[0])()  # warm the server's caches as the ILIKE scans did theirs
        single = sorted(timed(one(a, b), 1)[0] for a, b in pairs for _ in range(3))
        out["search_index_median_ms"] = single[len(single) // 2] * 1000
        out["search_index_hits"] = sum(len(store.search(f"{a} {b}")) for a, b in pairs)

        n = min(10_000, sessions)
        out["writer_with_trigger_s"] = rewrite(dsn, table, n)
        start, cpu = time.perf_counter(), time.process_time()
        store.search("quokka kestrel")
        out["catch_up_s"] = time.perf_counter() - start
        out["catch_up_cpu_s"] = time.process_time() - cpu
        out["catch_up_sessions"] = n
        store.disable_search()
        out["writer_without_trigger_s"] = rewrite(dsn, table, n)
        if drop:
            store.drop()
    finally:
        store.close()
    print(
        f"search with the index: {out['search_index_median_ms']:.2f} ms median over {len(pairs) * 3} two-word"
        f" queries (ILIKE scan {out['like_scan_ms']:.0f} ms, {out['like_scan_ms'] / out['search_index_median_ms']:.0f}x)\n"
        f"index build: {out['index_build_messages_per_s']:,.0f} messages/s\n"
        f"catch-up after {n:,} sessions rewritten by another process: {out['catch_up_s']:.2f} s "
        f"({out['catch_up_cpu_s']:.2f} s CPU)\n"
        f"that writer: {out['writer_with_trigger_s']:.2f} s with the index's trigger, "
        f"{out['writer_without_trigger_s']:.2f} s without",
        flush=True,
    )
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.search_pg", description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=10, help="runs per session (2 messages each)")
    parser.add_argument("--dsn", default=None, help="a server to use (default: a throwaway one)")
    parser.add_argument("--table", default=TABLE, help=f"the sessions table, in schema {SCHEMA} (default {TABLE})")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--drop", action="store_true", help="drop the table afterwards (on a server of --dsn)")
    args = parser.parse_args(argv)
    if args.dsn is not None:
        out = run(args.dsn, args.sessions, args.runs, args.table, args.drop)
    else:
        why = pg.missing()
        if why is not None:
            raise SystemExit(f"python -m bench.search_pg: no PostgreSQL server can run here: {why}")
        with pg.durable_server() as server:
            out = run(server.dsn, args.sessions, args.runs, args.table)
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
