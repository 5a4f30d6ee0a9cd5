"""Write agno 3.1.10's tables: one writer per engine, each with its own connection and SQL.

A writer makes the tables (and their version stamps) if they are missing,
tells which sessions it already holds from an earlier run, and upserts a
batch of mapped sessions in one transaction: a batch is all there or not at
all, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import operator
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import attrs
import orjson

from agno_storage.agno3 import ddl
from agno_storage.agno3.mapping import KEEP_KEY, Mapped
from agno_storage.agno3.records import Agno3Memory, Encoded, Previous
from agno_storage.backends import sqlite_bulk
from agno_storage.backends.sqlite import file_id
from agno_storage.backends.sqlite_errors import translate
from agno_storage.errors import DatabaseReplacedError, InvalidInputError, StorageError
from agno_storage.schema import quote

_INF = float("inf")
#: Types json.dumps refuses (datetimes, dataclasses) or spells its own way (str/int/dict/list subclasses) are
#: not encoded by orjson either: they go to json.dumps, which refuses or spells them as before.
_ORJSON_STRICT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


def _dumps(value: Any) -> str:
    """A JSON column's text: orjson's compact UTF-8, or ``json.dumps`` where orjson would differ or refuses.

    agno 3 reads its JSON columns with ``json.loads``, which gives the same
    values from either spelling; orjson encodes a run about six times faster
    than ``json.dumps`` (docs/architecture.md, "Choices written down").
    orjson writes NaN and infinities as ``null`` and refuses integers past
    64 bits, keys that are not strings, lone surrogates and deep nesting:
    those values get ``json.dumps``'s text, as agno 3 would write them, so
    nothing is lost or changed.
    """
    try:
        raw = orjson.dumps(value, option=_ORJSON_STRICT)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value)
    if b"null" in raw and value is not None and _has_non_finite(value):
        return json.dumps(value)
    return raw.decode()


def _has_non_finite(value: Any) -> bool:
    """Whether a NaN or infinite float sits anywhere in ``value`` (JSON data: dicts, lists, tuples, scalars)."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is float:
            if item != item or item in (_INF, -_INF):
                return True
        elif kind is dict:
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif isinstance(item, float):
            if item != item or item in (_INF, -_INF):
                return True
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


class Writer(Protocol):
    """What the migration needs from a target database."""

    #: ``"sqlite"`` or ``"postgres"``: the rows :meth:`encode` makes are :func:`rows_for` this engine's.
    engine: str

    def prepare(self) -> None:
        """Make the missing tables, indexes and version stamps."""

    def previous(self, session_ids: Sequence[str]) -> dict[str, Previous]:
        """For each of ``session_ids`` already in ``agno_sessions``: its owner, and what an earlier migration left there."""

    def run_owners(self, run_ids: Sequence[str]) -> dict[str, str]:
        """For each of ``run_ids`` already in ``agno_runs``: the session holding it."""

    def encode(self, mapped: Mapped) -> Encoded:
        """``mapped`` as this writer's parameter rows (raises TypeError / ValueError for a value JSON cannot hold)."""

    def batch(self) -> AbstractContextManager[None]:
        """One transaction for the reads and writes inside it, under a lock that keeps other writers of
        ``agno_sessions`` (agno 3 itself, another migration) waiting until it commits: what it read of DST
        is still so when it writes. The calls inside nest in it; one that fails rolls back alone."""

    def write(self, batch: Sequence[Encoded]) -> None:
        """Upsert the sessions, runs and memories of ``batch`` in one transaction."""

    def memory_stamps(self, memory_ids: Sequence[str]) -> dict[str, int | None]:
        """For each of ``memory_ids`` already in ``agno_memories``: its ``updated_at``."""

    def write_memories(self, memories: Sequence[Agno3Memory]) -> None:
        """Upsert ``memories`` in one transaction."""

    def forget_memories(self, memory_ids: Sequence[str]) -> None:
        """Delete the memories ``memory_ids`` that are there, in one transaction."""

    def close(self) -> None: ...


def _upsert_sql(table: str, prefix: str, placeholder: str, rows: int = 1) -> str:
    """The upsert of ``rows`` rows of ``table`` in one statement (SQLite applies them in order, as one each)."""
    columns = ddl.COLUMNS[table]
    key = ddl.KEYS[table]
    names = ", ".join(columns)
    marks = ", ".join(f"({', '.join(placeholder for _ in columns)})" for _ in range(rows))
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != key)
    sql = f"INSERT INTO {prefix}{table} ({names}) VALUES {marks} ON CONFLICT ({key}) DO UPDATE SET {updates}"  # noqa: S608 - constant identifiers only
    if table == ddl.MEMORIES:
        # A user memory is kept when the one there is newer: agno 3 changed it since, or another session
        # held a later copy of it.
        sql += f" WHERE {table}.updated_at IS NULL OR excluded.updated_at >= {table}.updated_at"
    return sql


#: Rows per SQLite upsert statement (650 parameters at most, under SQLite's oldest limit of 999). Each
#: statement may abort (the runs' foreign key), so SQLite journals the pages it changes: one statement
#: per row journaled the same index pages row after row. Measured on 1,000 benchmark sessions: 0.55 s
#: of CPU one row per statement, 0.35 s fifty rows per statement.
SQLITE_ROWS_PER_STATEMENT = 50


class Rows:
    """Records to parameter tuples in column order: each field read as it is, JSON columns encoded once.

    The records' fields are the table's columns in order
    (``tests/test_agno3_records.py`` checks that each tuple equals what the
    strict converter unstructures), and their values are plain JSON data
    already, so the converter's walk over every nested value is skipped:
    it was the largest cost of a migration (docs/architecture.md, "Choices
    written down").
    """

    def __init__(self, jsonb: Any = None) -> None:
        wrap = jsonb if jsonb is not None else _dumps
        self._wrap = wrap
        #: Per table: the record's fields in column order, and the positions of its JSON columns.
        self._plans: dict[str, tuple[Callable[[object], tuple[Any, ...]], tuple[int, ...]]] = {}
        for table, columns in ddl.COLUMNS.items():
            json_columns = ddl.JSON_COLUMNS[table]
            self._plans[table] = (
                operator.attrgetter(*columns),
                tuple(i for i, c in enumerate(columns) if c in json_columns),
            )

    def of(self, table: str, record: object) -> tuple[Any, ...]:
        get, json_at = self._plans[table]
        values = list(get(record))
        wrap = self._wrap
        for i in json_at:
            values[i] = wrap(values[i])
        return tuple(values)

    def encode(self, mapped: Mapped) -> Encoded:
        return Encoded(
            session_id=mapped.session.session_id,
            session=self.of(ddl.SESSIONS, mapped.session),
            runs=tuple(self.of(ddl.RUNS, r) for r in mapped.runs),
            memories=tuple(self.of(ddl.MEMORIES, x) for x in mapped.memories),
            run_ids=tuple(r.run_id for r in mapped.runs),
            stale_runs=mapped.stale_runs,
            rewrite=mapped.rewrite,
            stale_memories=mapped.legacy_memories if mapped.rewrite else (),
        )


def driver_error(
    exc: BaseException, what: str, session_id: str | None = None, table: str = ddl.SESSIONS
) -> StorageError:
    """The typed error for what a database's driver (or the file system under it) raised while ``what``.

    ``session_id`` names the one session the statement wrote, where it wrote one; ``table`` the table the
    error concerns (agno 3's sessions table unless told).
    """
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, sqlite3.Error):
        error = translate(exc, table)
        return type(error)(f"{what}: {error.message}", table=error.table, session_id=session_id)
    if isinstance(exc, OSError):
        return StorageError(f"{what}: {exc}", session_id=session_id)
    if isinstance(exc, OverflowError):  # sqlite3 refuses to bind an integer past 64 bits
        return InvalidInputError(f"{what}: {exc}", table=ddl.RUNS, session_id=session_id)
    module = type(exc).__module__ or ""
    if module.startswith("psycopg"):
        from agno_storage.backends.pg_conn import translate as translate_pg

        error = translate_pg(exc, table)
        return type(error)(f"{what}: {error.message}", table=error.table, session_id=session_id)
    return StorageError(f"{what}: {exc}", session_id=session_id)


def rows_for(engine: str) -> Rows:
    """The row encoder of the target engine's writer: ``"sqlite"`` (JSON text) or ``"postgres"`` (``Jsonb``)."""
    if engine == "sqlite":
        return Rows()
    if engine == "postgres":
        from psycopg.types.json import Jsonb

        return Rows(jsonb=lambda v: Jsonb(v, dumps=_dumps))
    raise ValueError(f"unknown engine {engine!r}")


def _batch_rows(batch: Sequence[Encoded]) -> dict[str, list[tuple[Any, ...]]]:
    return {
        ddl.SESSIONS: [e.session for e in batch],
        ddl.RUNS: [r for e in batch for r in e.runs],
        ddl.MEMORIES: [x for e in batch for x in e.memories],
    }


_VERSION_COLUMNS = ("table_name", "version", "created_at", "updated_at")


def _check_existing(table: str, names: set[str], where: str) -> None:
    """Refuse a table already in DST under an agno 3 name that lacks agno 3's columns (agno-golang's
    PostgreSQL ``agno_sessions``, say): writing into it would fail half-way or mix layouts."""
    wanted = ddl.COLUMNS.get(table, _VERSION_COLUMNS)
    missing = [c for c in wanted if c not in names]
    if missing:
        raise InvalidInputError(
            f"{where}{table} in DST is not agno 3's {table} table (no column {', '.join(missing)});"
            " write agno 3's tables into another database or schema"
        )


def _previous_of(user_id: Any, metadata: Any) -> Previous:
    """The owner a session row holds, and the stamp and run ids an earlier migration kept in its metadata.

    A session with no stamp there (``migrated`` False) is never written
    over: agno 3 made it, or gave it to the user who resumed it and wrote
    its metadata anew, when its runs still carry the migration's mark
    (``Previous.marked``, which only decides what the report says).
    """
    owner = user_id if isinstance(user_id, str) else None
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return Previous(stamp=None, run_ids=(), migrated=False, user_id=owner)
    keep = metadata.get(KEEP_KEY) if isinstance(metadata, dict) else None
    stamp = keep.get("stamp") if isinstance(keep, dict) else None
    if not isinstance(keep, dict) or not isinstance(stamp, str):
        return Previous(stamp=None, run_ids=(), migrated=False, user_id=owner)
    run_ids = keep.get("run_ids")
    ids = tuple(r for r in run_ids if isinstance(r, str)) if isinstance(run_ids, list) else ()
    return Previous(stamp=stamp, run_ids=ids, user_id=owner)


_MEMORY_STAMPS_SQL = f"SELECT memory_id, updated_at FROM {{prefix}}{ddl.MEMORIES} WHERE memory_id IN ({{marks}})"  # noqa: S608
_RUN_OWNERS_SQL = f"SELECT run_id, session_id FROM {{prefix}}{ddl.RUNS} WHERE run_id IN ({{marks}})"  # noqa: S608


def _run_owners(cur: Any, run_ids: Sequence[str], prefix: str, mark: str) -> dict[str, str]:
    """For each of ``run_ids`` already in ``agno_runs``: the session holding it."""
    out: dict[str, str] = {}
    for start in range(0, len(run_ids), 500):
        chunk = list(run_ids[start : start + 500])
        sql = _RUN_OWNERS_SQL.format(prefix=prefix, marks=", ".join(mark for _ in chunk))
        out.update({rid: sid for rid, sid in cur.execute(sql, chunk).fetchall()})
    return out


def _with_elsewhere(cur: Any, found: dict[str, Previous], prefix: str, mark: str) -> dict[str, Previous]:
    """``found`` with each session's ``elsewhere``: the runs it was written with that another session holds now.

    Builds before 2026-12 moved a run whose id two sessions held into the
    later one; the session that lost it is then written again.
    """
    owners = _run_owners(cur, [r for p in found.values() for r in p.run_ids], prefix, mark)
    for sid, before in found.items():
        moved = tuple(r for r in before.run_ids if owners.get(r, sid) != sid)
        if moved:
            found[sid] = attrs.evolve(before, elsewhere=moved)
    return found


#: A run carries a migration's mark when its ``run_data`` holds an object at this path (SQLite / PostgreSQL).
_MARK_PATH = f"$.metadata.{KEEP_KEY}"
_MARK_KEYS = ["metadata", KEEP_KEY]
_HELD_SQLITE = (
    f"SELECT session_id, run_id, CASE WHEN json_valid(run_data) THEN json_type(run_data, ?) END = 'object' FROM {ddl.RUNS}"  # noqa: S608
    " WHERE session_id IN ({marks}) ORDER BY run_index, created_at, run_id"
)
_HELD_POSTGRES = (
    f"SELECT session_id, run_id, jsonb_typeof(run_data #> %s) = 'object' FROM {{prefix}}{ddl.RUNS}"  # noqa: S608
    " WHERE session_id = ANY(%s) ORDER BY run_index, created_at, run_id"
)


def _with_held(found: dict[str, Previous], rows: Sequence[tuple[str, str, Any]]) -> dict[str, Previous]:
    """``found`` with the runs carrying a migration's mark (``marked``) that ``rows`` (session_id, run_id,
    marked) give its unstamped sessions."""
    marked: dict[str, list[str]] = {}
    for sid, run_id, is_marked in rows:
        if is_marked:
            marked.setdefault(sid, []).append(run_id)
    for sid, runs in marked.items():
        found[sid] = attrs.evolve(found[sid], marked=tuple(runs))
    return found


def _sqlite_previous(conn: sqlite3.Connection, session_ids: Sequence[str], runs: bool = True) -> dict[str, Previous]:
    """What ``agno_sessions`` holds of ``session_ids``; ``runs``: whether there is an ``agno_runs`` to look in."""
    out: dict[str, Previous] = {}
    for start in range(0, len(session_ids), 500):
        chunk = list(session_ids[start : start + 500])
        marks = ", ".join("?" for _ in chunk)
        sql = f"SELECT session_id, user_id, metadata FROM {ddl.SESSIONS} WHERE session_id IN ({marks})"  # noqa: S608
        for sid, user_id, metadata in conn.execute(sql, chunk):
            out[sid] = _previous_of(user_id, metadata)
    if not runs:
        return out
    unstamped = [sid for sid, p in out.items() if not p.migrated]
    for start in range(0, len(unstamped), 500):
        chunk = unstamped[start : start + 500]
        sql = _HELD_SQLITE.format(marks=", ".join("?" for _ in chunk))
        _with_held(out, conn.execute(sql, [_MARK_PATH, *chunk]).fetchall())
    return _with_elsewhere(conn, out, "", "?")


def _postgres_previous(conn: Any, prefix: str, session_ids: Sequence[str], runs: bool = True) -> dict[str, Previous]:
    if not session_ids:
        return {}
    sql = f"SELECT session_id, user_id, metadata FROM {prefix}{ddl.SESSIONS} WHERE session_id = ANY(%s)"  # noqa: S608
    rows = conn.execute(sql, (list(session_ids),)).fetchall()
    found = {sid: _previous_of(user_id, metadata) for sid, user_id, metadata in rows}
    if not runs:
        return found
    unstamped = [sid for sid, p in found.items() if not p.migrated]
    if unstamped:
        held = conn.execute(_HELD_POSTGRES.format(prefix=prefix), (_MARK_KEYS, unstamped)).fetchall()
        _with_held(found, held)
    return _with_elsewhere(conn, found, prefix, "%s")


class TargetReader:
    """What a dry run reads of DST, which it never writes: what earlier migrations left there.

    A DST that is not there, or has no agno 3 tables yet, holds nothing:
    every session would be written.
    """

    def __init__(self, target: Any, schema: str | None = "ai") -> None:
        from agno_storage import urls

        self._sqlite: sqlite3.Connection | None = None
        self._pg: Any = None
        self._prefix = ""
        self._tables: set[str] = set()
        if isinstance(target, urls.SqliteTarget):
            path = Path(str(target.path)).expanduser()
            if not path.exists():
                return
            self._sqlite = _read_only(path)
            self._tables = {r[0] for r in self._sqlite.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            return
        import psycopg

        self._pg = psycopg.connect(target.conninfo, autocommit=True, prepare_threshold=None)
        self._prefix = f"{quote(schema)}." if schema else ""
        for table in (ddl.SESSIONS, ddl.RUNS, ddl.MEMORIES):
            row = self._pg.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{self._prefix}{table}",)).fetchone()
            if row and row[0]:
                self._tables.add(table)

    def previous(self, session_ids: Sequence[str]) -> dict[str, Previous]:
        if ddl.SESSIONS not in self._tables:
            return {}
        runs = ddl.RUNS in self._tables
        if self._sqlite is not None:
            return _sqlite_previous(self._sqlite, session_ids, runs)
        return _postgres_previous(self._pg, self._prefix, session_ids, runs)

    def run_owners(self, run_ids: Sequence[str]) -> dict[str, str]:
        if ddl.RUNS not in self._tables:
            return {}
        if self._sqlite is not None:
            return _run_owners(self._sqlite, run_ids, "", "?")
        return _run_owners(self._pg, run_ids, self._prefix, "%s")

    def memory_stamps(self, memory_ids: Sequence[str]) -> dict[str, int | None]:
        if ddl.MEMORIES not in self._tables:
            return {}
        if self._sqlite is not None:
            return _memory_stamps(self._sqlite, memory_ids, "", "?")
        return _memory_stamps(self._pg, memory_ids, self._prefix, "%s")

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            self._pg.close()


def _read_only(path: Path) -> sqlite3.Connection:
    """A connection to ``path`` that reads only and leaves no file behind.

    A WAL-mode file with no ``-wal`` beside it has no other connection open:
    a ``mode=ro`` connection would leave the ``-wal`` and ``-shm`` it makes
    (it may not delete them), so it is opened read-write with ``query_only``,
    and SQLite deletes them when it closes, as the last connection does.
    With a ``-wal`` there (another connection's), ``mode=ro`` changes nothing.
    """
    uri = path.resolve().as_uri()
    if Path(f"{path}-wal").exists():
        return sqlite3.connect(uri + "?mode=ro", uri=True)
    conn = sqlite3.connect(uri + "?mode=rw", uri=True)
    try:
        conn.execute("PRAGMA query_only = 1")
    except BaseException:
        conn.close()
        raise
    return conn


def _memory_stamps(cur: Any, memory_ids: Sequence[str], prefix: str, mark: str) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for start in range(0, len(memory_ids), 500):
        chunk = list(memory_ids[start : start + 500])
        sql = _MEMORY_STAMPS_SQL.format(prefix=prefix, marks=", ".join(mark for _ in chunk))
        out.update({mid: stamp for mid, stamp in cur.execute(sql, chunk).fetchall()})
    return out


_STALE_SQL = f"DELETE FROM {{prefix}}{ddl.RUNS} WHERE session_id = {{mark}} AND run_id = {{mark}}"  # noqa: S608
_FORGET_MEMORY_SQL = f"DELETE FROM {{prefix}}{ddl.MEMORIES} WHERE memory_id = {{mark}}"  # noqa: S608
_ORDER_SQL = (
    f"SELECT run_id FROM {{prefix}}{ddl.RUNS} WHERE session_id = {{mark}}"  # noqa: S608
    " ORDER BY run_index, created_at, run_id"
)
_RENUMBER_SQL = f"UPDATE {{prefix}}{ddl.RUNS} SET run_index = {{mark}} WHERE run_id = {{mark}}"  # noqa: S608


def _tidy_runs(cur: Any, batch: Sequence[Encoded], prefix: str, mark: str) -> None:
    """After a batch's upserts: runs its sources lost are deleted; agno 3's own runs come after the migrated ones.

    Only sessions an earlier migration wrote are touched, and only runs that
    migration wrote are deleted (their ids are in the session's metadata);
    runs agno 3 added keep their order, renumbered to follow the migrated runs.
    """
    stale = [(e.session_id, run_id) for e in batch for run_id in e.stale_runs]
    if stale:
        cur.executemany(_STALE_SQL.format(prefix=prefix, mark=mark), stale)
    forgotten = [(memory_id,) for e in batch for memory_id in e.stale_memories]
    if forgotten:
        cur.executemany(_FORGET_MEMORY_SQL.format(prefix=prefix, mark=mark), forgotten)
    for encoded in batch:
        if not encoded.rewrite:
            continue
        ours = set(encoded.run_ids)
        order = cur.execute(_ORDER_SQL.format(prefix=prefix, mark=mark), (encoded.session_id,)).fetchall()
        theirs = [row[0] for row in order if row[0] not in ours]
        if theirs:
            start = len(encoded.run_ids)
            cur.executemany(
                _RENUMBER_SQL.format(prefix=prefix, mark=mark),
                [(start + i, run_id) for i, run_id in enumerate(theirs)],
            )


#: The page size of a target file this writer makes (SQLite's default is 4,096). A run is a row of
#: about 3 KiB of JSON, so at 4 KiB most pages of agno_runs held one run and the rest of a page went
#: unused; at 16 KiB, 10,000 benchmark sessions of 10 runs made a file of 360 MB instead of 445 MB and
#: the migration spent 0.7 s less in the kernel (docs/agno3.md). SQLite sets it only on a file that
#: has no tables yet: an existing file (agno 3's own, say) keeps its page size.
PAGE_SIZE = 16384


class SqliteWriter:
    """agno 3's tables in a SQLite file, written with the standard library's sqlite3.

    Batches commit at ``synchronous=NORMAL`` (no fsync of their own) and a
    thread checkpoints the WAL meanwhile (``sqlite_bulk.Checkpointer``);
    :meth:`close` first fsyncs the WAL and its
    folder once, which is what a FULL commit does: once :func:`to_agno3`
    returns, or raises after some batches, every batch it wrote is as
    durable as FULL commits make it. Midway, a crash leaves the batches
    committed before it, each whole; a power loss may also take the last of
    them (never part of one). The rerun writes them again.
    """

    engine = "sqlite"

    def __init__(self, path: str, *, busy_timeout: float = 30.0) -> None:
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(Path(path).expanduser()), timeout=busy_timeout, isolation_level=None)
        try:
            self._configure()
            self._path = str(Path(path).expanduser())
            #: (device, inode) of the file this connection opened: a batch is written only while the path names it.
            self._file_id = file_id(self._path)
        except BaseException:
            self._conn.close()  # a file SQLite refuses (not a database, read-only...): nothing left open
            raise
        self._checkpointer = sqlite_bulk.Checkpointer(path)
        self._checkpointer.start()
        self._wal = sqlite_bulk.wal_path(path)
        self._unsynced = False  # batches committed since the last fsync of the WAL
        self._rows = rows_for(self.engine)
        self._sql: dict[tuple[str, int], str] = {}

    def _configure(self) -> None:
        conn = self._conn
        conn.execute("PRAGMA foreign_keys = ON")
        # A new file gets pages of PAGE_SIZE bytes (an existing one keeps its own; see PAGE_SIZE).
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        conn.execute("PRAGMA journal_mode=WAL")
        # Each upsert of a batch is a statement that may abort (the runs' foreign key), so SQLite keeps a
        # statement journal of the pages it changes; in a temp file that was ~550 MB of writes per 1,000
        # sessions. In memory it is one statement's pages at a time.
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA synchronous = NORMAL")
        # Checkpoints run on a thread of their own (sqlite_bulk.Checkpointer), overlapping the writes; this
        # connection's own bound the WAL.
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        conn.execute(f"PRAGMA wal_autocheckpoint = {sqlite_bulk.checkpoint_pages(page_size)}")

    @contextmanager
    def batch(self) -> Iterator[None]:
        with self._transaction():  # BEGIN IMMEDIATE: the write lock, until it commits
            yield

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self._conn.in_transaction:  # inside batch(): a savepoint, so that a failed write rolls back alone
            self._conn.execute("SAVEPOINT agno3_write")
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:  # a disk full or I/O error may have rolled the whole one back
                    self._conn.execute("ROLLBACK TO agno3_write")
                    self._conn.execute("RELEASE agno3_write")
                raise
            self._conn.execute("RELEASE agno3_write")
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            # Under the write lock: a file deleted or replaced since it was opened would take every batch
            # written from now on with it, while the run reported them written.
            try:
                now: tuple[int, int] | None = file_id(self._path)
            except OSError:
                now = None
            if now != self._file_id:
                what = "was deleted" if now is None else "was replaced by another file"
                raise DatabaseReplacedError(
                    f"DST {self._path!r} {what} during the migration; nothing more was written to it"
                    " (run it again to write what is missing)",
                    table=ddl.SESSIONS,
                )
            yield self._conn
        except BaseException:
            if self._conn.in_transaction:  # SQLite rolls back itself on a disk full or I/O error
                self._conn.execute("ROLLBACK")
            raise
        if not self._conn.in_transaction:
            # SQLite rolled it back after an error the block holds (to_agno3 raises it once the block is left):
            # nothing to commit.
            return
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:  # a full disk, say, found only when the commit writes
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise driver_error(exc, f"committing a batch to DST {self._path!r}") from exc
        self._unsynced = True

    def prepare(self) -> None:
        with self._transaction() as conn:
            present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            for table in ddl.TABLE_ORDER:
                if table in present:
                    _check_existing(table, {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}, "")
                    continue
                for statement in ddl.sqlite_statements(table):
                    conn.execute(statement)
                if table != ddl.VERSIONS:
                    now = datetime.now().isoformat()
                    conn.execute(
                        f"INSERT INTO {ddl.VERSIONS} (table_name, version, created_at, updated_at) VALUES (?, ?, ?, ?)"  # noqa: S608
                        " ON CONFLICT (table_name) DO NOTHING",
                        (table, ddl.SCHEMA_VERSION, now, now),
                    )

    def previous(self, session_ids: Sequence[str]) -> dict[str, Previous]:
        return _sqlite_previous(self._conn, session_ids)

    def run_owners(self, run_ids: Sequence[str]) -> dict[str, str]:
        return _run_owners(self._conn, run_ids, "", "?")

    def encode(self, mapped: Mapped) -> Encoded:
        return self._rows.encode(mapped)

    def _upsert(self, conn: sqlite3.Connection, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Upsert ``rows`` in order, :data:`SQLITE_ROWS_PER_STATEMENT` to a statement."""
        step = SQLITE_ROWS_PER_STATEMENT
        for start in range(0, len(rows), step):
            part = rows[start : start + step]
            sql = self._sql.get((table, len(part)))
            if sql is None:
                sql = self._sql[table, len(part)] = _upsert_sql(table, "", "?", len(part))
            conn.execute(sql, [value for row in part for value in row])

    def write(self, batch: Sequence[Encoded]) -> None:
        rows = _batch_rows(batch)
        with self._transaction() as conn:
            for table in (ddl.SESSIONS, ddl.RUNS, ddl.MEMORIES):
                self._upsert(conn, table, rows[table])
            _tidy_runs(conn, batch, "", "?")

    def memory_stamps(self, memory_ids: Sequence[str]) -> dict[str, int | None]:
        return _memory_stamps(self._conn, memory_ids, "", "?")

    def write_memories(self, memories: Sequence[Agno3Memory]) -> None:
        with self._transaction() as conn:
            self._upsert(conn, ddl.MEMORIES, [self._rows.of(ddl.MEMORIES, m) for m in memories])

    def forget_memories(self, memory_ids: Sequence[str]) -> None:
        with self._transaction() as conn:
            conn.executemany(_FORGET_MEMORY_SQL.format(prefix="", mark="?"), [(m,) for m in memory_ids])

    def sync(self) -> None:
        """fsync the WAL and its folder if batches were committed since the last time (see the class)."""
        if not self._unsynced:
            return
        self._unsynced = False
        sqlite_bulk.fsync_wal(self._wal)

    def close(self) -> None:
        try:
            self._checkpointer.stop()
            self.sync()
        finally:
            self._conn.close()


class PostgresWriter:
    """agno 3's tables in a PostgreSQL schema (``ai`` by default, as ``PostgresDb``), written with psycopg."""

    engine = "postgres"

    def __init__(self, conninfo: str, schema: str | None = "ai") -> None:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - the postgres extra
            raise StorageError(
                f"PostgreSQL needs psycopg: pip install 'agno-session-storage[postgres]' ({exc})"
            ) from exc
        self._conn = psycopg.connect(conninfo, autocommit=False, prepare_threshold=None)
        self._schema = schema
        self._prefix = f"{quote(schema)}." if schema else ""
        self._rows = rows_for(self.engine)
        self._sql = {t: _upsert_sql(t, self._prefix, "%s") for t in (ddl.SESSIONS, ddl.RUNS, ddl.MEMORIES)}

    def prepare(self) -> None:
        with self._conn.transaction():
            # One migration at a time per database: the same lock key on every writer.
            self._conn.execute("SELECT pg_advisory_xact_lock(hashtext('agno_storage.to_agno3'))")
            if self._schema:
                self._conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(self._schema)}")
            for table in ddl.TABLE_ORDER:
                exists = self._conn.execute("SELECT to_regclass(%s)", (f"{self._prefix}{table}",)).fetchone()
                if exists is not None and exists[0] is not None:
                    names = self._conn.execute(
                        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
                        " AND NOT attisdropped",
                        (f"{self._prefix}{table}",),
                    ).fetchall()
                    _check_existing(table, {r[0] for r in names}, self._prefix)
                    continue
                for statement in ddl.postgres_statements(table, self._schema):
                    self._conn.execute(statement)
                if table != ddl.VERSIONS:
                    now = datetime.now().isoformat()
                    self._conn.execute(
                        f"INSERT INTO {self._prefix}{ddl.VERSIONS} (table_name, version, created_at, updated_at)"  # noqa: S608
                        " VALUES (%s, %s, %s, %s) ON CONFLICT (table_name) DO NOTHING",
                        (table, ddl.SCHEMA_VERSION, now, now),
                    )

    @contextmanager
    def batch(self) -> Iterator[None]:
        with self._conn.transaction():
            # SHARE ROW EXCLUSIVE: agno 3's writes of agno_sessions (and another migration's batch) wait until
            # this commits; reads go on. The transactions of the calls inside are savepoints in this one.
            self._conn.execute(f"LOCK TABLE {self._prefix}{ddl.SESSIONS} IN SHARE ROW EXCLUSIVE MODE")
            yield

    def previous(self, session_ids: Sequence[str]) -> dict[str, Previous]:
        with self._conn.transaction():
            return _postgres_previous(self._conn, self._prefix, session_ids)

    def run_owners(self, run_ids: Sequence[str]) -> dict[str, str]:
        with self._conn.transaction(), self._conn.cursor() as cur:
            return _run_owners(cur, run_ids, self._prefix, "%s")

    def encode(self, mapped: Mapped) -> Encoded:
        return self._rows.encode(mapped)

    def write(self, batch: Sequence[Encoded]) -> None:
        rows = _batch_rows(batch)
        with self._conn.transaction(), self._conn.cursor() as cur:
            for table in (ddl.SESSIONS, ddl.RUNS, ddl.MEMORIES):
                if rows[table]:
                    cur.executemany(self._sql[table], rows[table])
            _tidy_runs(cur, batch, self._prefix, "%s")

    def memory_stamps(self, memory_ids: Sequence[str]) -> dict[str, int | None]:
        with self._conn.transaction(), self._conn.cursor() as cur:
            return _memory_stamps(cur, memory_ids, self._prefix, "%s")

    def write_memories(self, memories: Sequence[Agno3Memory]) -> None:
        rows = [self._rows.of(ddl.MEMORIES, m) for m in memories]
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.executemany(self._sql[ddl.MEMORIES], rows)

    def forget_memories(self, memory_ids: Sequence[str]) -> None:
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.executemany(_FORGET_MEMORY_SQL.format(prefix=self._prefix, mark="%s"), [(m,) for m in memory_ids])

    def close(self) -> None:
        self._conn.close()


__all__ = ["PostgresWriter", "Rows", "SqliteWriter", "TargetReader", "Writer", "driver_error", "rows_for"]
