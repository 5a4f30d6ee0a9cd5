"""Benchmark: conversation history and full-text search on SQLite, side by side with what they replace.

    python -m bench.search [--sessions 50000] [--runs 10] [--dir DIR]    (make bench-search)

Builds an agent table of ``--sessions`` agno 1.x sessions, each with
``--runs`` runs of a user message and an answer (agno's memory form, the
earlier turns replayed with ``from_history``), so 2 x sessions x runs
messages (1,000,000 by default). Reports, each a median of several runs
measured in this one process:

- a two-word query: ``store.search()`` with the index vs a ``LIKE
  '%word%'`` scan of the memory column (what a message table with a LIKE
  search does), and vs ``search()`` without the index (one run);
- building the index (messages per second);
- catching up after another process rewrote 10,000 sessions (Go's
  ``INSERT OR REPLACE``), and what the log trigger costs that writer;
  the build and the catch-up also as this process's CPU seconds, which
  other work on the machine moves less than wall time;
- ``history()`` of one session with 1,000 runs vs decoding its memory
  column alone, and vs its floor: that decode plus building the same
  ``Message`` objects from fields picked out beforehand.

Nothing here is a test: numbers go to stdout (and ``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from agno_storage import AgentSession, Message, SqliteStorage, codec

TABLE = "agent_sessions"
#: The two words every query asks for: each in about 1 message in 1,000, together in a few.
RARE = ["kestrel", "bandicoot", "capybara", "dugong", "echidna", "fennec", "gharial", "hoatzin"]


def vocabulary_words(size: int = 20_000) -> list[str]:
    """Pseudo-words of letters only (digits in the text would measure the JSON codec's integer scan, not search)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = []
    for i in range(size):
        word = ""
        while True:
            i, r = divmod(i, 26)
            word += letters[r]
            if not i:
                break
        out.append("v" + word)
    return out


def words(rng: random.Random, vocabulary: list[str], n: int) -> str:
    return " ".join(rng.choice(vocabulary) for _ in range(n))


def memory(rng: random.Random, vocabulary: list[str], runs: int, start: int) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    for r in range(runs):
        q = words(rng, vocabulary, 12)
        a = words(rng, vocabulary, 24)
        if rng.random() < 0.02:
            q += " " + " ".join(rng.sample(RARE, 2))
        now = [
            {"role": "user", "content": q, "created_at": start + r, "from_history": False},
            {"role": "assistant", "content": a, "created_at": start + r, "from_history": False},
        ]
        out.append({"run_id": f"r{start}-{r}", "created_at": start + r, "model": "m", "messages": [*history, *now]})
        # agno keeps the replayed turns in each run: the last 3 here, to bound the file.
        history = [{**m, "from_history": True} for m in [*history, *now]][-6:]
    return {"runs": out}


def agent_sessions(sessions: int, runs: int) -> Iterator[AgentSession]:
    """The benchmark's sessions (the same on every call): 100 users, 7 agents, ``runs`` runs each."""
    rng = random.Random(7)
    vocabulary = vocabulary_words()
    for i in range(sessions):
        yield AgentSession(
            session_id=f"s{i:06d}",
            user_id=f"u{i % 100}",
            agent_id=f"a{i % 7}",
            memory=memory(rng, vocabulary, runs, 1_700_000_000 + i),
            created_at=1_700_000_000 + i,
        )


def build(db: Path, sessions: int, runs: int) -> None:
    store = SqliteStorage(TABLE, db_file=db, synchronous="NORMAL")
    store.upsert_many(agent_sessions(sessions, runs))
    store.close()


def scan_then_build(
    store: Any, like: Callable[[], int], query: str, messages: int, out: dict[str, Any], like_name: str
) -> float:
    """Time ``like`` (three queries, three times), one ``search(query)`` without the index, then
    ``enable_search()``; into ``out``. The build's seconds."""
    like_s, _ = timed(like, 3)
    out["like_scan_ms"] = like_s / 3 * 1000
    scan_s, _ = timed(lambda: store.search(query), 1)
    out["search_scan_ms"] = scan_s * 1000
    print(
        f"{like_name} scan {out['like_scan_ms']:.0f} ms/query; search() without index {out['search_scan_ms']:.0f} ms",
        flush=True,
    )
    start, cpu = time.perf_counter(), time.process_time()
    store.enable_search()
    build_s = time.perf_counter() - start
    out["index_build_s"] = build_s
    out["index_build_cpu_s"] = time.process_time() - cpu
    out["index_build_messages_per_s"] = messages / build_s
    return build_s


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median seconds of ``repeat`` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def interleaved(fns: list[Callable[[], Any]], rounds: int) -> list[float]:
    """Median seconds of each of ``fns``, called in turn ``rounds`` times."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for fn, kept in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            kept.append(time.perf_counter() - start)
    return [statistics.median(kept) for kept in times]


_REWRITER = """
import sqlite3, sys, time
db, n = sys.argv[1], int(sys.argv[2])
conn = sqlite3.connect(db, isolation_level=None, timeout=30)
rows = conn.execute("SELECT session_id, user_id, memory, agent_id FROM agent_sessions LIMIT ?", (n,)).fetchall()
start = time.perf_counter()
conn.execute("BEGIN IMMEDIATE")
for sid, user, mem, agent in rows:
    conn.execute(
        "INSERT OR REPLACE INTO agent_sessions (session_id, user_id, memory, agent_id) VALUES (?, ?, ?, ?)",
        (sid, user, mem.replace("vb ", "quokka "), agent),
    )
conn.execute("COMMIT")
print(time.perf_counter() - start)
"""


def rewrite(db: Path, n: int) -> float:
    """Another process rewrites ``n`` sessions as the Go port does; its own seconds."""
    done = subprocess.run(
        [sys.executable, "-c", _REWRITER, str(db), str(n)], capture_output=True, text=True, check=True
    )
    return float(done.stdout.strip())


def build_floor(db: Path) -> float:
    """Seconds SQLite alone takes to make the index ``db`` holds: its rows copied by SQL into the same tables.

    The floor of any build with this layout: the map's rows (each message with its JSON and text) inserted
    in one statement and FTS5 fed the same text in another, into a fresh file made with the same DDL, as the
    store's connection sets it up (WAL, ``synchronous=FULL``); nothing read, decoded or extracted in Python.
    """
    floor = db.with_name("floor.db")
    for leftover in (floor, Path(f"{floor}-wal"), Path(f"{floor}-shm")):
        leftover.unlink(missing_ok=True)
    names = (f"{TABLE}_search_text", f"{TABLE}_search_text_session", f"{TABLE}_search")
    source = sqlite3.connect(db)
    ddl = dict(source.execute(f"SELECT name, sql FROM sqlite_master WHERE name IN {names}").fetchall())  # noqa: S608
    source.close()
    conn = sqlite3.connect(floor, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("ATTACH ? AS src", (str(db),))
    for name in names:
        conn.execute(ddl[name])
    start = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(f'INSERT INTO main."{names[0]}" SELECT * FROM src."{names[0]}" ORDER BY rowid')  # noqa: S608
    conn.execute(f'INSERT INTO main."{names[2]}" (rowid, content) SELECT rowid, content FROM main."{names[0]}"')  # noqa: S608
    conn.execute("COMMIT")
    seconds = time.perf_counter() - start
    copied, indexed = (
        conn.execute(f'SELECT count(*) FROM {schema}."{names[0]}"').fetchone()[0]  # noqa: S608
        for schema in ("main", "src")
    )
    conn.close()
    if copied != indexed:
        raise RuntimeError(f"the floor copied {copied:,} messages of the index's {indexed:,}")
    for leftover in (floor, Path(f"{floor}-wal"), Path(f"{floor}-shm")):
        leftover.unlink(missing_ok=True)
    return seconds


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.search", description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=10, help="runs per session (2 messages each)")
    parser.add_argument("--long-runs", type=int, default=1000, help="runs of the one long session timed by history()")
    parser.add_argument("--dir", type=Path, default=None, help="where the file goes (default: a temp folder)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    folder = Path(args.dir or tempfile.mkdtemp(prefix="bench-search-"))
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "search.db"
    if db.exists():
        os.remove(db)
    messages = 2 * args.sessions * args.runs
    out: dict[str, Any] = {"sessions": args.sessions, "messages": messages, "sqlite": sqlite3.sqlite_version}
    print(f"{args.sessions:,} sessions, {messages:,} messages, SQLite {sqlite3.sqlite_version}, in {db}", flush=True)

    start = time.perf_counter()
    build(db, args.sessions, args.runs)
    print(f"written in {time.perf_counter() - start:.1f} s", flush=True)
    store = SqliteStorage(TABLE, db_file=db)
    pairs = [(a, b) for a in RARE for b in RARE if a < b][:12]

    conn = sqlite3.connect(db)

    def like() -> int:
        hits = 0
        for a, b in pairs[:3]:
            hits += len(
                conn.execute(
                    f"SELECT session_id FROM {TABLE} WHERE memory LIKE ? AND memory LIKE ?",  # noqa: S608
                    (f"%{a}%", f"%{b}%"),
                ).fetchall()
            )
        return hits

    build_s = scan_then_build(store, like, " ".join(pairs[0]), messages, out, "LIKE")
    floor_s = build_floor(db)
    out["index_build_floor_s"] = floor_s
    out["index_build_floor_messages_per_s"] = messages / floor_s
    print(f"index built in {build_s:.1f} s; SQLite alone makes the same index in {floor_s:.1f} s", flush=True)

    def indexed() -> int:
        return sum(len(store.search(f"{a} {b}")) for a, b in pairs)

    indexed()  # warm the page cache as the LIKE scans did theirs
    per_query, _ = timed(indexed, 5)
    out["search_index_ms"] = per_query / len(pairs) * 1000

    def one(a: str, b: str) -> Callable[[], object]:
        return lambda: store.search(f"{a} {b}")

    single = [timed(one(a, b), 1)[0] for a, b in pairs for _ in range(3)]
    out["search_index_median_ms"] = statistics.median(single) * 1000

    n = min(10_000, args.sessions)
    with_trigger = [rewrite(db, n)]
    start, cpu = time.perf_counter(), time.process_time()
    store.search("quokka kestrel")
    out["catch_up_s"] = time.perf_counter() - start
    out["catch_up_cpu_s"] = time.process_time() - cpu
    out["catch_up_sessions"] = n
    print(f"caught up with {n:,} rewritten sessions in {out['catch_up_s']:.2f} s", flush=True)
    # The writer's cost, alternating with and without the log trigger (the machine's noise hits both).
    without_trigger = []
    for _ in range(2):
        store.disable_search()
        without_trigger.append(rewrite(db, n))
        store.enable_search()
        with_trigger.append(rewrite(db, n))
    store.disable_search()
    out["writer_with_trigger_s"] = statistics.median(with_trigger)
    out["writer_without_trigger_s"] = statistics.median(without_trigger)

    # history of one session with 1,000 runs vs decoding its memory column alone.
    rng = random.Random(9)
    vocabulary = vocabulary_words()
    store.upsert(
        AgentSession(session_id="long", agent_id="a", memory=memory(rng, vocabulary, args.long_runs, 1_800_000_000))
    )
    raw = conn.execute(f"SELECT memory FROM {TABLE} WHERE session_id = 'long'").fetchone()[0]  # noqa: S608
    got = store.history("long")
    # The floor of any history() that returns Message objects: the decode, and the same Messages built
    # from their fields picked out beforehand (no row read, no walk of the stored dicts).
    fields = [(m.role, m.content, m.created_at, m.run_id) for m in got]

    def decode_and_build() -> list[Message]:
        codec.loads(raw)
        return [Message(role=r, content=c, created_at=t, run_id=i) for r, c, t, i in fields]

    # Interleaved round by round: the machine's speed drifts between one batch of calls and the next.
    decode_s, orjson_s, history_s, read_s, floor_s = interleaved(
        [
            lambda: codec.loads(raw),
            lambda: orjson.loads(raw),
            lambda: store.history("long"),
            lambda: store.read("long"),
            decode_and_build,
        ],
        15,
    )
    out["history_1000_runs_ms"] = history_s * 1000
    out["read_1000_runs_ms"] = read_s * 1000
    out["decode_memory_ms"] = decode_s * 1000
    out["orjson_memory_ms"] = orjson_s * 1000
    out["history_over_decode"] = history_s / decode_s
    out["history_floor_ms"] = floor_s * 1000
    out["history_floor_over_decode"] = floor_s / decode_s
    out["history_messages"] = len(got)
    conn.close()
    store.close()

    print(
        f"two-word search, index:      {out['search_index_median_ms']:.2f} ms median per query "
        f"({out['search_index_ms']:.2f} ms mean over {len(pairs)} pairs)\n"
        f"two-word LIKE '%w%' scan:    {out['like_scan_ms']:.0f} ms per query\n"
        f"two-word search, no index:   {out['search_scan_ms']:.0f} ms (one run)\n"
        f"index build:                 {out['index_build_s']:.1f} s, {out['index_build_messages_per_s']:,.0f} messages/s "
        f"({out['index_build_cpu_s']:.1f} s of this process's CPU); its floor, SQLite alone making the same "
        f"index, {out['index_build_floor_s']:.1f} s, {out['index_build_floor_messages_per_s']:,.0f} messages/s "
        f"({out['index_build_s'] / out['index_build_floor_s']:.2f}x the floor's time)\n"
        f"catch-up after {n:,} sessions rewritten by another process: {out['catch_up_s']:.2f} s "
        f"({out['catch_up_cpu_s']:.2f} s CPU)\n"
        f"that writer's {n:,} INSERT OR REPLACE (median): {out['writer_with_trigger_s']:.3f} s with the log trigger, "
        f"{out['writer_without_trigger_s']:.3f} s without\n"
        f"history of {args.long_runs:,} runs:       {out['history_1000_runs_ms']:.1f} ms ({out['history_messages']} messages); "
        f"read() {out['read_1000_runs_ms']:.1f} ms; decoding its memory alone {out['decode_memory_ms']:.1f} ms "
        f"({out['history_over_decode']:.2f}x; orjson.loads without the codec's checks {out['orjson_memory_ms']:.1f} ms); "
        f"its floor, the decode and building the same Messages, {out['history_floor_ms']:.1f} ms "
        f"({out['history_floor_over_decode']:.2f}x)"
    )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return out


if __name__ == "__main__":
    main()
