"""What decoding a row costs over fetch + ``orjson.loads``: the generated decoder against the reference loop.

    python -m bench.decode [--n 500] [--rounds 21]

Writes ``--n`` small benchmark sessions with the store, then fetches each
row on one plain ``sqlite3`` connection with the statement the store's
``read`` runs, once for each of three decoders, and times only the decode:
``orjson.loads`` of the four JSON columns (the floor's), the reference
``RowCodec.decode_reference`` (the loop over the column plan) and
``RowCodec.decode`` (the decoder ``agno_storage.rowplan`` generates). The
order rotates row by row, so the machine's drift lands on all three. It
prints each one's median over rounds of the mean per row, and its ratio to
the first.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agno_storage import SqliteStorage
from bench import sessions
from bench.contenders import TABLE
from bench.harness import _decoded, ours_session


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.decode", description=__doc__)
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--rounds", type=int, default=21)
    args = p.parse_args(argv)
    small = [ours_session(sessions.small(i)) for i in range(args.n)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "decode.db"
        store = SqliteStorage(table_name=TABLE, db_file=path)
        store.upsert_many(small)
        seen: list[str] = []
        store.tracer = lambda statement, params: seen.append(statement)
        store.read(small[0].session_id)
        statement = seen[-1]
        conn = sqlite3.connect(path)
        ids = [s.session_id for s in small]
        codec = store.row_codec

        def loop(decode: Callable[[Sequence[Any]], object]) -> Callable[[], None]:
            def run() -> None:
                for sid in ids:
                    decode(conn.execute(statement, (sid, 1)).fetchall()[0])

            return run

        ways: list[tuple[str, Callable[[Sequence[Any]], object]]] = [
            ("orjson.loads of the JSON columns", _decoded),
            ("RowCodec.decode_reference", codec.decode_reference),
            ("RowCodec.decode (generated)", codec.decode),
        ]
        times: dict[str, list[float]] = {name: [] for name, _ in ways}
        clock = time.perf_counter_ns
        for r in range(args.rounds):
            spent = dict.fromkeys(times, 0)
            for i, sid in enumerate(ids):
                # Each way decodes a row of its own, fetched just before, in an order that rotates row by row.
                rows = [conn.execute(statement, (sid, 1)).fetchall()[0] for _ in ways]
                for k in range(len(ways)):
                    name, decode = ways[(i + r + k) % len(ways)]
                    started = clock()
                    decode(rows[k])
                    spent[name] += clock() - started
            for name, ns in spent.items():
                times[name].append(ns / len(ids) / 1e9)
        conn.close()
        store.close()
    base = statistics.median(times["orjson.loads of the JSON columns"])
    print(f"{args.n} small sessions, {args.rounds} rounds, decode time per row (median over rounds):")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"  {name:<34} {median * 1e6:7.1f} µs  {median / base:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
