"""Write agno 3.1.10's tables: one writer per engine, each with its own connection and SQL.

A writer makes the tables (and their version stamps) if they are missing,
tells which sessions it already holds from an earlier run, and upserts a
batch of mapped sessions in one transaction: a batch is all there or not at
all, so an interrupted run resumes where it stopped. The rows it upserts are
made by :mod:`agno_storage.agno3.rows`; what it reads of DST before it
writes, by the queries of :mod:`agno_storage.agno3.target_reader`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from agno_storage.agno3 import ddl, target_reader
from agno_storage.agno3.mapping import Mapped
from agno_storage.agno3.records import Agno3Memory, Encoded, Previous
from agno_storage.agno3.rows import rows_for
from agno_storage.backends import sqlite_bulk
from agno_storage.backends.sqlite_errors import translate
from agno_storage.backends.sqlite_files import file_id, refuse_non_file
from agno_storage.codec_exact import has_non_finite
from agno_storage.errors import DatabaseReplacedError, InvalidInputError, StorageError
from agno_storage.ops.values import NON_FINITE_HINT
from agno_storage.schema import quote


class Writer(Protocol):
    """What the migration needs from a target database."""

    #: ``"sqlite"`` or ``"postgres"``: the rows :meth:`encode` makes are :func:`rows_for` this engine's.
    engine: str

    @property
    def path(self) -> str | None:
        """The SQLite file written, which a failed write may have grown to the file-size limit (see
        :func:`driver_error`); None for PostgreSQL."""

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

    def memory_contents(self, memory_ids: Sequence[str]) -> dict[str, tuple[str | None, Any]]:
        """For each of ``memory_ids`` already in ``agno_memories``: its ``user_id`` and decoded ``memory``."""

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


#: The most rows of one SQLite upsert statement (fewer where SQLite binds fewer parameters). Each statement
#: may abort (the runs' foreign key), so SQLite journals the pages it changes that an earlier statement of
#: the transaction wrote: every statement journaled the same index pages again. Measured on 1,000
#: benchmark sessions: 0.55 s of CPU one row per statement, 0.35 s fifty rows per statement; writing
#: 5,000 encoded sessions (200 to a batch), 1.60-1.83 s of CPU fifty rows per statement, 1.18-1.73 s
#: a thousand (one machine, five interleaved rounds).
SQLITE_ROWS_PER_STATEMENT = 1000
#: A batch's rows past its full statements go in one statement of a multiple of this many rows and one of
#: fewer: each size is a statement SQLite prepares once (a thousand rows take it ~17 ms), so the sizes
#: are few whatever the batches hold.
SQLITE_ROWS_STEP = 50
#: Statements the writer's connection keeps prepared: the sizes above for each table, and the reads.
_SQLITE_CACHED_STATEMENTS = 512


def statement_sizes(rows: int, most: int, step: int) -> list[int]:
    """The rows of each upsert statement for ``rows`` rows: ``most`` each, then a multiple of ``step``, then the rest."""
    sizes = [most] * (rows // most)
    rest = rows % most
    if rest >= step:
        sizes.append(rest - rest % step)
    if rest % step:
        sizes.append(rest % step)
    return sizes


def driver_error(
    exc: BaseException,
    what: str,
    session_id: str | None = None,
    table: str = ddl.SESSIONS,
    path: str | None = None,
    *,
    read_only: bool = False,
) -> StorageError:
    """The typed error for what a database's driver (or the file system under it) raised while ``what``.

    ``session_id`` names the one session the statement wrote, where it wrote one; ``table`` the table the
    error concerns (agno 3's sessions table unless told); ``path`` the SQLite file written, where it wrote
    one, so that a write the process's file-size limit stopped is a DiskFullError naming the limit;
    ``read_only``, a SQLite connection opened ``mode=ro``, whose temporary files the limit stops so.
    """
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, sqlite3.Error):
        error = translate(exc, table, path, read_only=read_only)
        return type(error)(f"{what}: {error.message}", table=error.table, session_id=session_id)
    if isinstance(exc, OSError):
        return StorageError(f"{what}: {exc}", session_id=session_id)
    if isinstance(exc, OverflowError):  # sqlite3 refuses to bind an integer past 64 bits
        # Any table's bound integer (a time) may be the one: the session is named, no table guessed.
        return InvalidInputError(f"{what}: {exc}", session_id=session_id)
    module = type(exc).__module__ or ""
    if module.startswith("psycopg"):
        from agno_storage.backends.pg_conn import translate as translate_pg

        error = translate_pg(exc, table)
        return type(error)(f"{what}: {error.message}", table=error.table, session_id=session_id)
    return StorageError(f"{what}: {exc}", session_id=session_id)


def non_finite_error(exc: BaseException, encoded: Encoded) -> InvalidInputError | None:
    """The error for ``encoded``, refused by PostgreSQL with ``exc``, if it is refused for a NaN or an infinity
    (agno 1.x's own store writes them, which no JSON, and so no ``jsonb``, holds), or None.

    It names the first agno 3 column holding one and says how to repair the session, as export does
    (:data:`agno_storage.ops.values.NON_FINITE_HINT`). Only the server's refusal of JSON text (SQLSTATE 22P02)
    is taken for it.
    """
    if getattr(exc, "sqlstate", None) != "22P02":
        return None
    for table, rows in _batch_rows([encoded]).items():
        columns = ddl.COLUMNS[table]
        for row in rows:
            for column, value in zip(columns, row, strict=True):
                if column in ddl.JSON_COLUMNS[table] and has_non_finite(getattr(value, "obj", value)):
                    return InvalidInputError(
                        f"writing agno 3 session {encoded.session_id!r}: {table}.{column} holds NaN or an infinity"
                        f" {NON_FINITE_HINT} (PostgreSQL's jsonb cannot store it, nor can agno 3's PostgresDb;"
                        " or migrate into SQLite, whose agno 3 tables keep it)",
                        table=table,
                        session_id=encoded.session_id,
                        column=column,
                    )
    return None


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
        refuse_non_file(Path(path).expanduser())
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self.path = str(Path(path).expanduser())
        self._conn = sqlite3.connect(
            self.path, timeout=busy_timeout, isolation_level=None, cached_statements=_SQLITE_CACHED_STATEMENTS
        )
        try:
            self._configure()
            #: (device, inode) of the file this connection opened: a batch is written only while the path names it.
            self._file_id = file_id(self.path)
            self._checkpointer = sqlite_bulk.Checkpointer(path)
            self._checkpointer.start()
        except BaseException:
            self._conn.close()  # a file SQLite refuses (not a database, read-only...): nothing left open
            raise
        self._wal = sqlite_bulk.wal_path(path)
        self._unsynced = False  # batches committed since the last fsync of the WAL
        self._rows = rows_for(self.engine)
        self._sql: dict[tuple[str, int], str] = {}
        #: Bound parameters a statement may hold (SQLite's default is 32,766 since 3.32, 999 before).
        self._variables = self._conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)

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
        # agno_runs' nine indexes outgrow SQLite's default 2 MiB page cache after a few thousand sessions; each
        # page that falls out is read again from the file. 16 MiB took a sixth off this process's CPU time at
        # 10,000 sessions, mostly in the kernel (64 MiB no more); a bound, so memory stays flat.
        conn.execute("PRAGMA cache_size = -16384")
        # Checkpoints run on a thread of their own (sqlite_bulk.Checkpointer), overlapping the writes; this
        # connection's own bound the WAL.
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        conn.execute(f"PRAGMA wal_autocheckpoint = {sqlite_bulk.checkpoint_pages(page_size)}")

    @contextmanager
    def batch(self) -> Iterator[None]:
        inside = False
        try:
            with self._transaction():  # BEGIN IMMEDIATE: the write lock, until it commits
                inside = True
                yield
        except sqlite3.Error as exc:
            if inside:  # the block's own error, raised as it is
                raise
            # The lock not given: another writer's, held past the busy timeout.
            raise driver_error(exc, f"taking the write lock of DST {self.path!r}", path=self.path) from exc

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
                now: tuple[int, int] | None = file_id(self.path)
            except OSError:
                now = None
            if now != self._file_id:
                what = "was deleted" if now is None else "was replaced by another file"
                raise DatabaseReplacedError(
                    f"DST {self.path!r} {what} during the migration; nothing more was written to it"
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
            raise driver_error(exc, f"committing a batch to DST {self.path!r}", path=self.path) from exc
        self._unsynced = True

    def prepare(self) -> None:
        with self._transaction() as conn:
            # SQLite knows no case in names: a table another program spelled AGNO_SESSIONS is agno_sessions.
            present = {str(r[0]).lower() for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
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
        return target_reader.sqlite_previous(self._conn, session_ids)

    def run_owners(self, run_ids: Sequence[str]) -> dict[str, str]:
        return target_reader.select_run_owners(self._conn, run_ids, "", "?")

    def encode(self, mapped: Mapped) -> Encoded:
        return self._rows.encode(mapped)

    def _upsert(self, conn: sqlite3.Connection, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Upsert ``rows`` in order, in as few statements as :func:`statement_sizes` gives."""
        most = max(min(SQLITE_ROWS_PER_STATEMENT, self._variables // len(ddl.COLUMNS[table])), 1)
        start = 0
        for size in statement_sizes(len(rows), most, min(SQLITE_ROWS_STEP, most)):
            part = rows[start : start + size]
            start += size
            sql = self._sql.get((table, size))
            if sql is None:
                sql = self._sql[table, size] = _upsert_sql(table, "", "?", size)
            conn.execute(sql, [value for row in part for value in row])

    def write(self, batch: Sequence[Encoded]) -> None:
        rows = _batch_rows(batch)
        with self._transaction() as conn:
            for table in (ddl.SESSIONS, ddl.RUNS, ddl.MEMORIES):
                self._upsert(conn, table, rows[table])
            _tidy_runs(conn, batch, "", "?")

    def memory_stamps(self, memory_ids: Sequence[str]) -> dict[str, int | None]:
        return target_reader.select_memory_stamps(self._conn, memory_ids, "", "?")

    def memory_contents(self, memory_ids: Sequence[str]) -> dict[str, tuple[str | None, Any]]:
        return target_reader.select_memory_contents(self._conn, memory_ids, "", "?")

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
    path: None = None

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
        from agno_storage.backends import postgres_ddl  # psycopg's, as this class is

        with self._conn.transaction():
            # One migration at a time per database: the same lock key on every writer.
            self._conn.execute("SELECT pg_advisory_xact_lock(hashtext('agno_storage.to_agno3'))")
            # CREATE SCHEMA IF NOT EXISTS asks for CREATE on the database even where the schema is there: a role
            # granted CREATE on the schema alone (the usual grant) could not migrate into it.
            if self._schema and not self._conn.execute(postgres_ddl.SCHEMA_EXISTS, (self._schema,)).fetchone():
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
        import psycopg

        failed = False
        try:
            with self._conn.transaction():
                # SHARE ROW EXCLUSIVE: agno 3's writes of agno_sessions (and another migration's batch) wait until
                # this commits; reads go on. The transactions of the calls inside are savepoints in this one.
                self._conn.execute(f"LOCK TABLE {self._prefix}{ddl.SESSIONS} IN SHARE ROW EXCLUSIVE MODE")
                try:
                    yield
                except BaseException:
                    failed = True
                    raise
        except psycopg.Error as exc:  # the lock refused (a role that may only read), the connection lost...
            if failed:  # the block's own error, raised as it is
                raise
            what = f"a batch's transaction in DST (its lock on {self._prefix}{ddl.SESSIONS}, or its commit)"
            raise driver_error(exc, what) from exc

    def previous(self, session_ids: Sequence[str]) -> dict[str, Previous]:
        with self._conn.transaction():
            return target_reader.postgres_previous(self._conn, self._prefix, session_ids)

    def run_owners(self, run_ids: Sequence[str]) -> dict[str, str]:
        with self._conn.transaction(), self._conn.cursor() as cur:
            return target_reader.select_run_owners(cur, run_ids, self._prefix, "%s")

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
            return target_reader.select_memory_stamps(cur, memory_ids, self._prefix, "%s")

    def memory_contents(self, memory_ids: Sequence[str]) -> dict[str, tuple[str | None, Any]]:
        with self._conn.transaction(), self._conn.cursor() as cur:
            return target_reader.select_memory_contents(cur, memory_ids, self._prefix, "%s")

    def write_memories(self, memories: Sequence[Agno3Memory]) -> None:
        rows = [self._rows.of(ddl.MEMORIES, m) for m in memories]
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.executemany(self._sql[ddl.MEMORIES], rows)

    def forget_memories(self, memory_ids: Sequence[str]) -> None:
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.executemany(_FORGET_MEMORY_SQL.format(prefix=self._prefix, mark="%s"), [(m,) for m in memory_ids])

    def close(self) -> None:
        self._conn.close()


__all__ = ["PostgresWriter", "SqliteWriter", "Writer", "driver_error"]
