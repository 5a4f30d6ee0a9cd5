"""What bench/ops.py times: each operation of ``agno_storage.ops`` and the plain loop it is held against.

Every function runs one operation once and returns ``(seconds, sessions)``,
the clock around the operation only (tables made, files removed outside it).

    python -m bench.ops_work rss export|import|copy --src F --out F [--dest F] [--url U --table T]

runs one operation in a process of its own and prints one JSON object with
its peak RSS (VmHWM after a reset, else ``resource.getrusage``), so each
memory figure has a fresh process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from agno_storage import SqliteStorage
from agno_storage.backends import sqlite_bulk
from agno_storage.models import Mode
from agno_storage.modes import SPECS, ColumnKind
from agno_storage.ops.copy import copy_table
from agno_storage.ops.db import connect_readonly, open_database, open_store
from agno_storage.ops.export import export_table
from agno_storage.ops.load import import_lines
from agno_storage.schema import quote
from bench import rss, sessions

TABLE = "agent_sessions"
NAMES = SPECS[Mode.AGENT].names
#: Rows per fetch and per write transaction in the plain loops: what the operations use (FETCH_SIZE, BATCH_SIZE).
BATCH = 1000
#: Distinct small sessions the source is made of; each row gets its own ids and times.
TEMPLATES = 64
#: The ``updated_at`` every source row is stamped with (fixed: two builds give the same file).
STAMP = sessions.BASE_TS + 10_000_000


# --- the source ----------------------------------------------------------------


def _source_rows(n: int) -> Iterator[list[Any]]:
    """n small sessions of bench/sessions.py as the store's upsert parameters, lazily.

    Encoded with the store's own codec from TEMPLATES distinct sessions; each
    row has its own session_id, user_id, agent_id and created_at.
    """
    encoder = SqliteStorage(table_name=TABLE)  # in memory: used only for its codec
    from bench.harness import ours_session

    encoded = [
        encoder.row_codec.stamp(encoder.row_codec.encode(ours_session(sessions.small(t))), STAMP)
        for t in range(TEMPLATES)
    ]
    encoder.close()
    at = {name: NAMES.index(name) for name in ("session_id", "user_id", "agent_id", "created_at")}
    for i in range(n):
        row = list(encoded[i % TEMPLATES])
        row[at["session_id"]] = f"s-{i:07d}"
        row[at["user_id"]] = f"user-{(i * 7) % 100:04d}"
        row[at["agent_id"]] = f"agent-{i % 10:02d}"
        row[at["created_at"]] = sessions.BASE_TS + i
        yield row


def build_source(path: Path, n: int) -> None:
    """A SQLite file with ``n`` small sessions in ``agent_sessions``, made by the store, filled fast.

    The rows go in with the store's own upsert statement in big transactions
    (synchronous=OFF: the file is rebuilt if the machine dies); the WAL is
    checkpointed into the file, so every reader starts from the same file.
    """
    store = SqliteStorage(table_name=TABLE, db_file=str(path), mode="agent")
    store.create()
    sql = store.statements.upsert
    store.close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        rows = _source_rows(n)
        while True:
            chunk = [row for _, row in zip(range(20_000), rows, strict=False)]
            if not chunk:
                break
            conn.execute("BEGIN")
            conn.executemany(sql, chunk)
            conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def count_rows(path: Path, table: str = TABLE) -> int:
    conn = connect_readonly(path)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {quote(table)}").fetchone()[0])  # noqa: S608
    finally:
        conn.close()


# --- export ----------------------------------------------------------------------


def ours_export(src: Path, out: Path) -> tuple[float, int]:
    """``export_table`` of the whole table into the file ``out``."""
    start = time.perf_counter()
    with open_database(str(src)) as db, out.open("wb") as f:
        done = export_table(db, TABLE, f).sessions
    return time.perf_counter() - start, done


def floor_export(src: Path, out: Path) -> tuple[float, int]:
    """The plain loop: sqlite3 read-only, the same SELECT order, each row as a dict through ``orjson.dumps``.

    It writes the same session lines as export (the header aside), and checks nothing.
    """
    start = time.perf_counter()
    conn = sqlite3.connect(f"file:{src}?mode=ro", uri=True, isolation_level=None)
    done = 0
    try:
        cols = ", ".join(quote(n) for n in NAMES)
        cursor = conn.execute(f"SELECT {cols} FROM {quote(TABLE)} ORDER BY session_id")  # noqa: S608
        dumps, names = orjson.dumps, NAMES
        with out.open("wb") as f:
            f.write(b'{"floor":true}\n')  # a first line as export writes one
            while rows := cursor.fetchmany(BATCH):
                f.write(b"".join([dumps(dict(zip(names, row, strict=True))) + b"\n" for row in rows]))
                done += len(rows)
    finally:
        conn.close()
    return time.perf_counter() - start, done


def checked_export(src: Path, out: Path) -> tuple[float, int]:
    """The plain loop, checking what import will refuse: each JSON text decodes (``orjson.loads``) to an object
    (or null; NULL and ``''`` are no value), each time is an integer of 64 bits, the session_id is a non-empty
    text.

    The least any export that never writes a line its import refuses must do
    (ops/values.py asks the same questions, with the codec's fallback for what
    orjson refuses); it writes the same lines as the plain loop.
    """
    start = time.perf_counter()
    conn = sqlite3.connect(f"file:{src}?mode=ro", uri=True, isolation_level=None)
    done = 0
    kinds = {ColumnKind.JSON: (dict,), ColumnKind.JSON_ANY: (dict, list)}
    json_at = [(i, kinds[c.kind]) for i, c in enumerate(SPECS[Mode.AGENT].columns) if c.kind in kinds]
    time_at = [i for i, c in enumerate(SPECS[Mode.AGENT].columns) if c.kind is ColumnKind.TIMESTAMP]
    try:
        cols = ", ".join(quote(n) for n in NAMES)
        cursor = conn.execute(f"SELECT {cols} FROM {quote(TABLE)} ORDER BY session_id")  # noqa: S608
        dumps, loads, names = orjson.dumps, orjson.loads, NAMES
        with out.open("wb") as f:
            f.write(b'{"floor":true}\n')
            while rows := cursor.fetchmany(BATCH):
                for row in rows:
                    if type(row[0]) is not str or not row[0]:
                        raise ValueError(f"session_id {row[0]!r}")
                    for i, allowed in json_at:
                        # NULL, '' (what the Go port writes for no value) and the JSON null are no value.
                        if row[i] and (value := loads(row[i])) is not None and type(value) not in allowed:
                            raise ValueError(f"{names[i]} of {row[0]!r} is not {allowed}")
                    for i in time_at:
                        if row[i] is not None and (type(row[i]) is not int or not -(2**63) <= row[i] < 2**63):
                            raise ValueError(f"{names[i]} of {row[0]!r} is not a timestamp")
                f.write(b"".join([dumps(dict(zip(names, row, strict=True))) + b"\n" for row in rows]))
                done += len(rows)
    finally:
        conn.close()
    return time.perf_counter() - start, done


# --- import ----------------------------------------------------------------------


def ours_import(lines: Path, dest: Path) -> tuple[float, int]:
    """``import_lines`` of an export file into a new SQLite file (the table made inside the clock)."""
    start = time.perf_counter()
    with lines.open("rb") as f:
        done = import_lines(f, str(dest), TABLE).sessions
    return time.perf_counter() - start, done


def floor_import(lines: Path, dest: Path) -> tuple[float, int]:
    """The plain loop: ``orjson.loads`` of each line, the store's upsert by ``executemany``, 1,000 a transaction.

    The table is made by the store before the clock starts. Durable as import
    is (ops/write.py): the transactions commit at synchronous=NORMAL while a
    thread checkpoints the WAL, and the WAL is fsynced once at the end, as a
    FULL commit would. Checks nothing.
    """
    sql = _bulk_table(dest)
    start = time.perf_counter()
    done = 0
    with _bulk_connection(dest) as conn:
        loads, names = orjson.loads, NAMES
        with lines.open("rb") as f:
            next(f)
            batch: list[list[Any]] = []
            for line in f:
                d = loads(line)
                batch.append([d[k] for k in names])
                if len(batch) >= BATCH:
                    done += _commit(conn, sql, batch)
                    batch = []
            if batch:
                done += _commit(conn, sql, batch)
    return time.perf_counter() - start, done


def sql_import(lines: Path, dest: Path) -> tuple[float, int]:
    """The raw SQL floor of import: the plain loop's statements and durability over rows decoded before the clock.

    What SQLite itself takes to store the sessions on this machine: no file
    read, no JSON decoded inside the clock.
    """
    with lines.open("rb") as f:
        next(f)
        rows = [[d[k] for k in NAMES] for d in map(orjson.loads, f)]
    sql = _bulk_table(dest)
    start = time.perf_counter()
    with _bulk_connection(dest) as conn:
        for at in range(0, len(rows), BATCH):
            _commit(conn, sql, rows[at : at + BATCH])
    return time.perf_counter() - start, len(rows)


def _bulk_table(dest: Path) -> str:
    """Make the sessions table in ``dest`` with the store (outside any clock); its upsert statement."""
    store = SqliteStorage(table_name=TABLE, db_file=str(dest), mode="agent")
    store.create()
    sql = store.statements.upsert
    store.close()
    return sql


@contextlib.contextmanager
def _bulk_connection(dest: Path) -> Iterator[sqlite3.Connection]:
    """A plain connection with import's settings: WAL, commits at NORMAL, checkpoints by import's thread.

    On leaving, the checkpoint thread stops and the WAL is fsynced once, as
    import does.
    """
    conn = sqlite3.connect(dest, isolation_level=None)
    checkpointer = sqlite_bulk.Checkpointer(dest)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA wal_autocheckpoint = {sqlite_bulk.CHECKPOINT_PAGES}")
        checkpointer.start()
        yield conn
        checkpointer.stop()
        sqlite_bulk.fsync_wal(sqlite_bulk.wal_path(dest))
    finally:
        checkpointer.stop()
        conn.close()


def _commit(conn: sqlite3.Connection, sql: str, batch: list[list[Any]]) -> int:
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(sql, batch)
    conn.execute("COMMIT")
    return len(batch)


# --- copy to PostgreSQL ------------------------------------------------------------


def ours_copy(src: Path, url: str, table: str) -> tuple[float, int]:
    """``copy_table`` of the whole table to a new table of ``url`` (schema ``ai``; made inside the clock)."""
    start = time.perf_counter()
    with open_database(str(src)) as db:
        done = copy_table(db, TABLE, url, to_table=table).sessions
    return time.perf_counter() - start, done


def floor_copy(src: Path, url: str, table: str) -> tuple[float, int]:
    """The plain loop: sqlite3 rows straight into psycopg's ``executemany`` of the store's upsert, 1,000 a transaction.

    The table is made by the store before the clock starts. Checks nothing.
    """
    import psycopg

    from agno_storage.backends.postgres import configure_connection

    store = open_store(url, table, Mode.AGENT)
    store.create()
    sql = store.statements.upsert
    store.close()
    start = time.perf_counter()
    lite = sqlite3.connect(f"file:{src}?mode=ro", uri=True, isolation_level=None)
    done = 0
    try:
        with psycopg.connect(url) as pg:
            configure_connection(pg)
            cols = ", ".join(quote(n) for n in NAMES)
            cursor = lite.execute(f"SELECT {cols} FROM {quote(TABLE)} ORDER BY session_id")  # noqa: S608
            while rows := cursor.fetchmany(BATCH):
                with pg.transaction(), pg.cursor() as cur:
                    cur.executemany(sql, rows)
                done += len(rows)
    finally:
        lite.close()
    return time.perf_counter() - start, done


def sql_copy(src: Path, url: str, table: str) -> tuple[float, int]:
    """The raw SQL floor of copy: the plain loop's ``executemany`` over rows read from SQLite before the clock."""
    import psycopg

    from agno_storage.backends.postgres import configure_connection

    lite = sqlite3.connect(f"file:{src}?mode=ro", uri=True, isolation_level=None)
    try:
        cols = ", ".join(quote(n) for n in NAMES)
        rows = lite.execute(f"SELECT {cols} FROM {quote(TABLE)} ORDER BY session_id").fetchall()  # noqa: S608
    finally:
        lite.close()
    store = open_store(url, table, Mode.AGENT)
    store.create()
    sql = store.statements.upsert
    store.close()
    start = time.perf_counter()
    with psycopg.connect(url) as pg:
        configure_connection(pg)
        for at in range(0, len(rows), BATCH):
            with pg.transaction(), pg.cursor() as cur:
                cur.executemany(sql, rows[at : at + BATCH])
    return time.perf_counter() - start, len(rows)


def drop_pg_table(url: str, table: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute(f"DROP TABLE IF EXISTS ai.{quote(table)}")


def count_pg_rows(url: str, table: str) -> int:
    import psycopg

    with psycopg.connect(url) as pg:
        row = pg.execute(f"SELECT COUNT(*) FROM ai.{quote(table)}").fetchone()  # noqa: S608
    return int(row[0]) if row else 0


# --- peak RSS, one process per measurement -------------------------------------------


def measure(argv: list[str]) -> dict[str, Any]:
    """Run one operation (``rss`` arguments, see the module docstring); its peak RSS, time and count."""
    p = argparse.ArgumentParser(prog="python -m bench.ops_work rss")
    p.add_argument("op", choices=("export", "import", "copy"))
    p.add_argument("--src", type=Path, required=True, help="the SQLite source (import: the export file)")
    p.add_argument("--out", type=Path, help="export: the file to write; import: the SQLite file to write")
    p.add_argument("--url", help="copy: the PostgreSQL URL")
    p.add_argument("--table", help="copy: the destination table")
    args = p.parse_args(argv)
    # Everything the operation imports is loaded now: the baseline is the process as it starts to work.
    before = rss.start_window()
    if args.op == "export":
        seconds, count = ours_export(args.src, args.out)
    elif args.op == "import":
        seconds, count = ours_import(args.src, args.out)
    else:
        seconds, count = ours_copy(args.src, args.url, args.table)
    return {"op": args.op, "peak_kib": rss.peak_kib(), "start_kib": before, "seconds": seconds, "count": count}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "rss":
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(measure(args[1:])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
