"""Measurements that need a process of their own; each prints one JSON object.

    python -m bench.child bulk --kind ours|floor|agno|agno-wal --db F --n N [--synchronous FULL]
    python -m bench.child write --db F --n N --prefix P [--start-at T]
    python -m bench.child large-mem --kind ours|agno --db F

A fresh process gives a clean peak RSS (``ru_maxrss``) and keeps writers
that share a file in separate processes, as they would be in production.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sqlite3
import sys
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

from agno_storage import SqliteStorage, StorageError
from bench import rss, sessions
from bench.contenders import TABLE, Agno, encode_row
from bench.harness import FIELDS, ours_session

#: Distinct session bodies reused by the bulk generator: memory stays flat
#: however many sessions are generated, while every row is encoded in full.
TEMPLATES = 64
TEMPLATE_DICTS = [sessions.small(i) for i in range(TEMPLATES)]
#: Where bulk_dicts' per-session overrides go in an encoded row.
_KEY_POSITIONS = tuple(FIELDS.index(f) for f in ("session_id", "user_id", "agent_id", "created_at"))


def bulk_dicts(n: int, prefix: str = "bulk") -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(template, per-session overrides) for n sessions, lazily."""
    for i in range(n):
        over = {
            "session_id": f"{prefix}-{i:07d}",
            "user_id": f"user-{(i * 7) % 100:04d}",
            "agent_id": f"agent-{i % 10:02d}",
            "created_at": sessions.BASE_TS + i,
        }
        yield TEMPLATE_DICTS[i % TEMPLATES], over


def bulk_rows(encoded: dict[int, list[Any]], n: int, prefix: str = "bulk") -> Iterator[list[Any]]:
    """bulk_dicts as upsert parameters, lazily: each template's pre-encoded row with the session's own keys.

    ``encoded`` maps ``id(template)`` to the template's row in FIELDS order,
    encoded before any clock starts; copying it and setting the four keys is
    all that is left to do per session.
    """
    sid, uid, aid, cat = _KEY_POSITIONS
    for t, over in bulk_dicts(n, prefix):
        row = list(encoded[id(t)])
        row[sid], row[uid], row[aid], row[cat] = (
            over["session_id"],
            over["user_id"],
            over["agent_id"],
            over["created_at"],
        )
        yield row


def _bulk_ours(db: str, n: int, synchronous: str) -> dict[str, Any]:
    st = SqliteStorage(table_name=TABLE, db_file=db, synchronous=synchronous)
    st.create()
    gen = (ours_session(t, **over) for t, over in bulk_dicts(n))
    start = time.perf_counter()
    count = st.upsert_many(gen)
    seconds = time.perf_counter() - start
    st.close()
    return {"count": count, "seconds": seconds}


def _bulk_floor(db: str, n: int, synchronous: str) -> dict[str, Any]:
    st = SqliteStorage(table_name=TABLE, db_file=db, synchronous=synchronous)
    st.create()
    sql = st.statements.upsert  # the store's statement without RETURNING, as upsert_many runs it
    st.close()
    # Pre-encoded before the clock starts: the floor pays for SQL only.
    encoded = {id(t): encode_row(t) for t in TEMPLATE_DICTS}
    conn = sqlite3.connect(db, timeout=10.0, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    it = bulk_rows(encoded, n)
    count = 0
    start = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    while batch := list(itertools.islice(it, 500)):
        count += conn.executemany(sql, batch).rowcount
    conn.execute("COMMIT")
    seconds = time.perf_counter() - start
    conn.close()
    return {"count": count, "seconds": seconds}


def _bulk_agno(db: str, n: int, wal: bool = False) -> dict[str, Any]:
    agno = Agno(wal=wal)
    agno.open(db)
    items = (agno.convert({**t, **over}) for t, over in bulk_dicts(n))
    count = 0
    start = time.perf_counter()
    for item in items:
        count += agno.upsert_one(item)
    seconds = time.perf_counter() - start
    agno.close()
    return {"count": count, "seconds": seconds}


def bulk(args: argparse.Namespace) -> dict[str, Any]:
    base = rss.start_window()
    if args.kind == "ours":
        out = _bulk_ours(args.db, args.n, args.synchronous)
    elif args.kind == "floor":
        out = _bulk_floor(args.db, args.n, args.synchronous)
    else:
        out = _bulk_agno(args.db, args.n, wal=args.kind == "agno-wal")
    out.update(rss_base_kib=base, rss_peak_kib=rss.peak_kib())
    return out


def write(args: argparse.Namespace) -> dict[str, Any]:
    """One writer sharing a file: upsert n small sessions one at a time, counting errors.

    A failed upsert is counted and the loop goes on, as the Go writer does
    with every error its Upsert returns. The store promises StorageError;
    anything else is counted as well, and also as ``unexpected`` (a store
    bug worth a look), instead of ending the writer. Samples name the type.
    """
    st = SqliteStorage(table_name=TABLE, db_file=args.db)
    st.create()
    items = [ours_session(TEMPLATE_DICTS[i % TEMPLATES], session_id=f"{args.prefix}-{i:06d}") for i in range(args.n)]
    wait = args.start_at - time.time()
    if wait > 0:
        time.sleep(wait)
    errors, unexpected, count = 0, 0, 0
    samples: list[str] = []
    start = time.time()
    for item in items:
        try:
            st.upsert(item)
            count += 1
        except Exception as exc:
            errors += 1
            unexpected += not isinstance(exc, StorageError)
            if len(samples) < 5:
                samples.append(f"{type(exc).__name__}: {exc}")
    end = time.time()
    st.close()
    return {
        "count": count,
        "errors": errors,
        "unexpected": unexpected,
        "error_samples": samples,
        "start": start,
        "end": end,
    }


def large_mem(args: argparse.Namespace) -> dict[str, Any]:
    """Peak Python allocations (tracemalloc) of one upsert and one read of a large session."""
    d = sessions.large(0)
    json_bytes = sum(len(json.dumps(d[k], separators=(",", ":"))) for k in ("memory", "session_data", "agent_data"))
    if args.kind == "ours":
        st = SqliteStorage(table_name=TABLE, db_file=args.db)
        st.create()
        item: Any = ours_session(d)
        st.upsert(ours_session(sessions.large(1)))  # first-call costs outside the measurement

        def up() -> Any:
            return st.upsert(item)

        def rd() -> Any:
            return st.read(item.session_id)
    else:
        agno = Agno()
        agno.open(args.db)
        item = agno.convert(d)
        agno.upsert_one(agno.convert(sessions.large(1)))

        def up() -> Any:
            return agno.st.upsert(item)

        def rd() -> Any:
            return agno.st.read(item.session_id)

    base = rss.start_window()
    tracemalloc.start()
    up()
    _, peak_up = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    got = rd()
    _, peak_rd = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert got is not None
    del got
    return {
        "json_bytes": json_bytes,
        "upsert_peak_bytes": peak_up,
        "read_peak_bytes": peak_rd,
        "rss_base_kib": base,
        "rss_peak_kib": rss.peak_kib(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.child")
    sub = p.add_subparsers(dest="task", required=True)
    b = sub.add_parser("bulk")
    b.add_argument("--kind", choices=("ours", "floor", "agno", "agno-wal"), required=True)
    b.add_argument("--db", required=True)
    b.add_argument("--n", type=int, required=True)
    b.add_argument("--synchronous", default="FULL")
    w = sub.add_parser("write")
    w.add_argument("--db", required=True)
    w.add_argument("--n", type=int, required=True)
    w.add_argument("--prefix", required=True)
    w.add_argument("--start-at", type=float, default=0.0)
    m = sub.add_parser("large-mem")
    m.add_argument("--kind", choices=("ours", "agno"), required=True)
    m.add_argument("--db", required=True)
    args = p.parse_args(argv)
    task = {"bulk": bulk, "write": write, "large-mem": large_mem}[args.task]
    json.dump(task(args), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
