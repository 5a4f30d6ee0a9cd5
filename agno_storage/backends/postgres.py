"""The PostgreSQL backend: one sessions table in agno 1.x's PostgreSQL layout.

The table is the one agno 1.x's ``PostgresStorage`` creates (schema ``ai`` by
default, JSONB data columns, BIGINT epoch-second timestamps, SQLAlchemy's
``ix_<schema>_<table>_<column>`` index names), so tables agno made are read
and updated in place. Connections come from a ``psycopg_pool`` pool, made
per process; statements are never prepared, so the store also works behind
a pooler in transaction mode. Schema changes run under a transaction-scoped
advisory lock, so several processes may start at once.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.abc import Buffer
from psycopg.adapt import Loader
from psycopg_pool import ConnectionPool, PoolTimeout

from agno_storage import schema
from agno_storage.backends import postgres_ddl as ddl
from agno_storage.backends.base import BATCH_SIZE, BaseStorage, filter_condition
from agno_storage.errors import (
    BusyError,
    ConnectionLostError,
    InvalidInputError,
    SchemaMismatchError,
    StorageError,
)
from agno_storage.models import Mode
from agno_storage.schema import ColumnKind, TableShape

T = TypeVar("T")

_JSON_KINDS = (ColumnKind.JSON, ColumnKind.JSON_ANY)

# SQLSTATEs after which the server rolled the transaction back and a rerun is safe.
_RETRYABLE_CONFLICTS = frozenset({"40001", "40P01"})
# The server is going away or not there yet: the connection is as good as lost.
_SHUTDOWN_STATES = frozenset({"57P01", "57P02", "57P03"})
_BUSY_STATES = frozenset({"40001", "40P01", "55P03", "57014"})

# Advisory-lock keys are hashed from these prefixes plus the qualified name.
_LOCK_PREFIX = "agno_storage:table:"
_SCHEMA_LOCK_PREFIX = "agno_storage:schema:"


def libpq_url(db_url: str) -> str:
    """``db_url`` as libpq understands it: a SQLAlchemy ``postgresql+psycopg://`` drops its driver."""
    scheme, sep, rest = db_url.partition("://")
    if sep and scheme.split("+")[0] in ("postgresql", "postgres"):
        return f"postgresql://{rest}"
    if sep:
        raise InvalidInputError(f"db_url must look like postgresql://user@host/db, got {db_url!r}")
    return db_url  # a libpq key=value string


class PostgresStorage(BaseStorage):
    """A sessions table of one mode in a PostgreSQL database.

    ``schema=None`` leaves names unqualified (the search path decides), as
    agno does. Thread-safe; a forked child makes its own pool. Reads, and
    writes whose COMMIT was not yet sent, are retried up to ``retries``
    times after a lost connection or a serialization failure; otherwise a
    lost server raises :class:`ConnectionLostError` within about
    ``connect_timeout`` seconds instead of hanging.
    """

    def __init__(
        self,
        table_name: str,
        db_url: str | None = None,
        schema: str | None = "ai",
        mode: Mode | str | None = Mode.AGENT,
        *,
        auto_upgrade_schema: bool = False,
        allow_owner_change: bool = False,
        pool_size: int = 10,
        connect_timeout: float = 5.0,
        retries: int = 2,
    ) -> None:
        super().__init__(
            table_name, mode, auto_upgrade_schema=auto_upgrade_schema, allow_owner_change=allow_owner_change
        )
        if not isinstance(db_url, str) or not db_url:
            raise InvalidInputError(f"db_url must be a PostgreSQL URL, got {db_url!r}", table=table_name)
        if schema is not None and (not isinstance(schema, str) or not schema):
            raise InvalidInputError(f"schema must be a non-empty str or None, got {schema!r}", table=table_name)
        if type(pool_size) is not int or pool_size < 1:
            raise InvalidInputError(f"pool_size must be an int >= 1, got {pool_size!r}")
        if isinstance(connect_timeout, bool) or not isinstance(connect_timeout, (int, float)) or connect_timeout <= 0:
            raise InvalidInputError(f"connect_timeout must be seconds > 0, got {connect_timeout!r}")
        if type(retries) is not int or retries < 0:
            raise InvalidInputError(f"retries must be an int >= 0, got {retries!r}")
        self.db_url = db_url
        self.schema = schema
        self.pool_size = pool_size
        self.connect_timeout = float(connect_timeout)
        self.retries = retries
        self._conninfo = libpq_url(db_url)
        self._pool: ConnectionPool | None = None
        self._pool_pid = 0
        self._pool_lock = threading.Lock()
        self._local = threading.local()
        self._build_sql()
        # Fail now, before anything is written, if the table is another mode's.
        self._inspect()

    def _build_sql(self) -> None:
        columns = schema.mode_columns(self.mode)
        names = [c.name for c in columns]
        self._required_pos = [i for i, c in enumerate(columns) if c.kind is ColumnKind.REQUIRED_TEXT]
        self._qualified_name = ddl.qualified(self.table_name, self.schema)
        t = self._qualified_name
        # JSON arrives as the codec's text, cast once by the server; it leaves as text for the codec.
        values = sql.SQL(", ").join(sql.SQL("%s::jsonb") if c.kind in _JSON_KINDS else sql.SQL("%s") for c in columns)
        col_list = sql.SQL(", ").join(sql.Identifier(n) for n in names)
        updates = sql.SQL(", ").join(
            sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(n), sql.Identifier(n))
            for n in names
            if n not in ("session_id", "created_at")
        )
        upsert = sql.SQL("INSERT INTO {} AS {} ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {}").format(
            t, sql.Identifier("existing"), col_list, values, sql.Identifier("session_id"), updates
        )
        if not self.allow_owner_change:
            # Only the owner, or anyone for an unowned row, updates; a refused row returns nothing.
            upsert += sql.SQL(
                ' WHERE "existing"."user_id" IS NULL OR "existing"."user_id" = \'\''
                ' OR "existing"."user_id" = EXCLUDED."user_id"'
            )
        # Rendered once: a Composed is rendered again on every execute.
        self._sql_upsert = upsert.as_string(None)
        self._sql_upsert_returning = (upsert + sql.SQL(' RETURNING "created_at", "updated_at"')).as_string(None)
        # JSON columns are fetched as they are: the connection's loader hands the
        # codec their text (a cast to text in SQL would run on every row a sort
        # looks at, not only the LIMIT rows returned).
        select_list = sql.SQL(", ").join(sql.Identifier(n) for n in names)
        self._sql_select = sql.SQL("SELECT {} FROM {}").format(select_list, t).as_string(None)
        self._sql_select_ids = sql.SQL("SELECT {} FROM {}").format(sql.Identifier("session_id"), t).as_string(None)
        self._entity_column = sql.Identifier(schema.ENTITY_COLUMN[self.mode])
        self._regclass_name = self._qualified_text()

    def _qualified_text(self) -> str:
        parts = [self.schema, self.table_name] if self.schema else [self.table_name]
        return ".".join(schema.quote(p) for p in parts)

    # --- connections -------------------------------------------------------

    def _get_pool(self) -> ConnectionPool:
        pid = os.getpid()
        pool = self._pool
        if pool is not None and self._pool_pid == pid:
            return pool
        with self._pool_lock:
            if self._pool is None or self._pool_pid != pid:
                # A pool inherited over fork is the parent's: its sockets are shared
                # with the parent and its worker threads did not survive, so it is
                # left alone (psycopg does not close a parent's connection on GC).
                self._pool = ConnectionPool(
                    self._conninfo,
                    min_size=1,
                    max_size=self.pool_size,
                    kwargs={
                        "autocommit": True,
                        # No prepared statements: they break behind a transaction-mode pooler.
                        "prepare_threshold": None,
                        "connect_timeout": max(2, round(self.connect_timeout)),
                        "application_name": "agno_storage",
                        # Notice a dead peer within about 30 s instead of the kernel's hours.
                        "keepalives": 1,
                        "keepalives_idle": 10,
                        "keepalives_interval": 5,
                        "keepalives_count": 3,
                    },
                    configure=_configure,
                    timeout=self.connect_timeout,
                    # The pool's own reconnect backoff grows to minutes; give up on
                    # it early so that the next call after an outage connects at once.
                    reconnect_timeout=2 * self.connect_timeout,
                    name=f"agno_storage:{self.table_name}",
                    open=False,
                )
                self._pool.open(wait=False)
                self._pool_pid = pid
            return self._pool

    def _held(self) -> psycopg.Connection[Any] | None:
        """The connection of a transaction open on this thread, if any."""
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        return conn

    @contextmanager
    def _checkout(self) -> Iterator[psycopg.Connection[Any]]:
        with self._get_pool().connection(timeout=self.connect_timeout) as conn:
            self._local.conn = conn
            self._local.depth = 0
            try:
                yield conn
            finally:
                self._local.conn = None

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """A write transaction: commits only if the block finishes, else rolls back.

        Nested use opens a savepoint. Every store call made inside the block
        on this thread joins it. Not retried: a lost connection raises
        ConnectionLostError.
        """
        held = self._held()
        if held is not None:
            depth = self._local.depth
            savepoint = sql.Identifier(f"sp{depth}")
            with _errors(self.table_name):
                held.execute(sql.SQL("SAVEPOINT {}").format(savepoint))
            self._local.depth = depth + 1
            try:
                yield held
            except BaseException:
                self._local.depth = depth
                with _errors(self.table_name):
                    held.execute(sql.SQL("ROLLBACK TO SAVEPOINT {}").format(savepoint))
                    held.execute(sql.SQL("RELEASE SAVEPOINT {}").format(savepoint))
                raise
            self._local.depth = depth
            with _errors(self.table_name):
                held.execute(sql.SQL("RELEASE SAVEPOINT {}").format(savepoint))
            return
        committing = False
        try:
            with self._checkout() as conn:
                conn.execute("BEGIN")
                try:
                    yield conn
                except BaseException:
                    _rollback(conn)
                    raise
                committing = True
                conn.execute("COMMIT")
        except (psycopg.Error, PoolTimeout) as exc:
            raise _translate(exc, self.table_name, committing=committing) from exc

    def _run(
        self,
        body: Callable[[psycopg.Connection[Any]], T],
        *,
        write: bool,
        replayable: Callable[[], bool] = lambda: True,
        single: bool = False,
    ) -> T:
        """Run ``body`` on a pooled connection, in a transaction if ``write``.

        ``single`` says ``body`` runs one statement, atomic on its own in
        autocommit mode, so no BEGIN/COMMIT is sent. Inside a caller's
        transaction, ``body`` joins it and is not retried. Otherwise a lost
        connection or a serialization failure before COMMIT is sent reruns
        ``body`` on a fresh connection, up to ``retries`` times, while
        ``replayable()`` says the inputs can be replayed (a single upsert is
        idempotent, so it is rerun even if it may have committed).
        """
        held = self._held()
        if held is not None:
            if not write:
                with _errors(self.table_name):
                    return body(held)
            # A savepoint, so a failed write leaves the caller's transaction usable.
            with self.transaction() as conn, _errors(self.table_name):
                return body(conn)
        for attempt in itertools.count():
            committing = False
            try:
                with self._checkout() as conn:
                    if not write or single:
                        return body(conn)
                    conn.execute("BEGIN")
                    try:
                        result = body(conn)
                    except BaseException:
                        _rollback(conn)
                        raise
                    committing = True
                    conn.execute("COMMIT")
                    return result
            except PoolTimeout as exc:
                # The pool already waited connect_timeout for a connection: no rerun.
                raise _translate(exc, self.table_name) from exc
            except psycopg.Error as exc:
                transient = _is_lost(exc) or exc.sqlstate in _RETRYABLE_CONFLICTS
                if transient and not committing and attempt < self.retries and replayable():
                    if _is_lost(exc):
                        self._discard_broken()
                    time.sleep(0.05 * 3**attempt)
                    continue
                raise _translate(exc, self.table_name, committing=committing) from exc
        raise AssertionError("unreachable")

    def _discard_broken(self) -> None:
        # After a server restart every idle connection is dead; test them all
        # now rather than failing on each in turn.
        pool = self._pool
        if pool is not None and self._pool_pid == os.getpid():
            try:
                pool.check()
            except (psycopg.Error, PoolTimeout):
                pass

    def close(self) -> None:
        """Close this process's pool; the next call opens a new one."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
            owned = self._pool_pid == os.getpid()
        if pool is not None and owned:
            pool.close()

    # --- primitives --------------------------------------------------------

    def _table_layout(self) -> tuple[list[str], list[str], str] | None:
        query = (
            "SELECT ARRAY(SELECT attname::text FROM pg_attribute WHERE attrelid = r.oid"
            " AND attnum > 0 AND NOT attisdropped ORDER BY attnum),"
            " ARRAY(SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = r.oid)"
            " FROM (SELECT to_regclass(%s) AS oid) r WHERE r.oid IS NOT NULL"
        )

        def body(conn: psycopg.Connection[Any]) -> tuple[list[str], list[str], str] | None:
            row = conn.execute(query, (self._regclass_name,)).fetchone()
            if row is None:
                return None
            columns, indexes = list(row[0]), list(row[1])
            # PostgreSQL keeps no CREATE TABLE text; the index names tell who made it.
            return columns, [self._core_index_name(n) for n in indexes], ""

        return self._run(body, write=False)

    def _core_index_name(self, name: str) -> str:
        # The core tells agno's tables by ``ix_<table>_``; SQLAlchemy put the schema in between.
        prefix = f"ix_{self.schema}_{self.table_name}_"
        if self.schema and name.startswith(prefix):
            return f"ix_{self.table_name}_" + name[len(prefix) :]
        return name

    def _lock(self, conn: psycopg.Connection[Any]) -> None:
        """Serialise schema changes to this table across processes until the transaction ends."""
        if self.schema:
            # Schema first, table second, always: two tables of one new schema cannot deadlock.
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (_SCHEMA_LOCK_PREFIX + self.schema,))
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (_LOCK_PREFIX + self._regclass_name,))

    def _create_table(self) -> None:
        def body(conn: psycopg.Connection[Any]) -> None:
            self._lock(conn)
            if self._table_layout() is not None:
                return  # made by someone else meanwhile: leave its DDL and indexes alone
            if self.schema:
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
            for statement in ddl.create_statements(self.table_name, self.mode, self.schema):
                conn.execute(statement)

        try:
            self._run(body, write=True)
        except StorageError as exc:
            # A writer that takes no lock (agno itself) created it first: fine.
            if not isinstance(exc.__cause__, (pg_errors.DuplicateTable, pg_errors.UniqueViolation)):
                raise
            if self._table_layout() is None:
                raise

    def _apply_migrations(self) -> TableShape | None:
        def body(conn: psycopg.Connection[Any]) -> TableShape | None:
            self._lock(conn)
            shape = self._inspect()
            if shape is None:
                return None
            if not schema.pending_migrations(shape):
                return shape
            for statement in ddl.add_missing_columns(self.table_name, self.mode, self.schema, shape.missing):
                conn.execute(statement)
            return self._inspect()

        return self._run(body, write=True)

    def _stamp(self, row: list[Any], now: int) -> list[Any]:
        # agno's layout has nullable id columns: the codec's '' for "none" is NULL here.
        for pos in self._required_pos:
            if row[pos] == "":
                row[pos] = None
        return super()._stamp(row, now)

    def _write(self, rows: Iterable[list[Any]], *, returning: bool) -> list[tuple[int, int]] | int:
        """Upsert ``rows`` (mode column order) in one transaction.

        With ``returning``, return each row's stored (created_at, updated_at);
        otherwise the number of rows written. Raises OwnershipError, rolling
        everything back, if any row's session_id belongs to another user.
        """
        if returning:
            stamped = [self._stamp(row, int(time.time())) for row in rows]

            def write_returning(conn: psycopg.Connection[Any]) -> list[tuple[int, int]]:
                out: list[tuple[int, int]] = []
                for params in stamped:
                    got = self._execute_row(conn, self._sql_upsert_returning, params).fetchall()
                    if not got:
                        raise self._ownership_error(params)
                    out.append((got[0][0], got[0][1]))
                return out

            # One upsert is one atomic statement: no BEGIN/COMMIT round trips.
            return self._run_write(write_returning, lambda: True, single=len(stamped) == 1)

        # A rerun replays the rows already consumed, so only while they are few.
        iterator = iter(rows)
        consumed: list[list[Any]] = []
        limit = 4 * BATCH_SIZE

        def write_many(conn: psycopg.Connection[Any]) -> int:
            count = 0
            now = int(time.time())
            replay = list(consumed) if len(consumed) <= limit else []
            for start in range(0, len(replay), BATCH_SIZE):
                count += self._write_batch(conn, replay[start : start + BATCH_SIZE])
            while batch := list(itertools.islice(iterator, BATCH_SIZE)):
                params_list = [self._stamp(row, now) for row in batch]
                if len(consumed) <= limit:
                    consumed.extend(params_list)
                count += self._write_batch(conn, params_list)
            return count

        return self._run_write(write_many, lambda: len(consumed) <= limit)

    def _run_write(
        self, body: Callable[[psycopg.Connection[Any]], T], replayable: Callable[[], bool], *, single: bool = False
    ) -> T:
        try:
            return self._run(body, write=True, replayable=replayable, single=single)
        except StorageError as exc:
            if not self._vanished(exc):
                raise
        # Dropped by someone else since this object checked it: make it again, once.
        self._checked_shape(create=True)
        if not replayable():
            raise StorageError(f"table {self.table_name!r} vanished during a write", table=self.table_name)
        return self._run(body, write=True, replayable=replayable, single=single)

    def _execute_row(self, conn: psycopg.Connection[Any], query: str, params: list[Any]) -> psycopg.Cursor[Any]:
        try:
            return conn.execute(query, params)
        except (psycopg.DataError, UnicodeEncodeError) as exc:
            raise _invalid(exc, self.table_name, params[0]) from exc

    def _write_batch(self, conn: psycopg.Connection[Any], params_list: list[list[Any]]) -> int:
        with conn.cursor() as cur:
            try:
                cur.executemany(self._sql_upsert, params_list)
            except (psycopg.DataError, UnicodeEncodeError) as exc:
                raise _invalid(exc, self.table_name, None) from exc
            if cur.rowcount != len(params_list):
                self._raise_refused(
                    params_list,
                    lambda params: bool(self._execute_row(conn, self._sql_upsert_returning, params).fetchall()),
                )
        return len(params_list)

    def _query(self, statement: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Run one read statement; retried after a lost connection unless inside a transaction."""

        def body(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
            return conn.execute(statement, params).fetchall()

        return self._run(body, write=False)

    def _vanished(self, exc: StorageError) -> bool:
        if not isinstance(exc.__cause__, pg_errors.UndefinedTable) or self._held() is not None:
            return False
        self._forget_shape()  # dropped by someone else since this object checked it
        return True

    def _build_select(self, by_id: bool, by_user: int, by_entity: int, limited: bool, ids_only: bool) -> str:
        entity = self._entity_column.as_string(None)
        where = ['"session_id" = %s'] if by_id else []
        where += [
            w for w in (filter_condition('"user_id"', by_user, "%s"), filter_condition(entity, by_entity, "%s")) if w
        ]
        query = self._sql_select_ids if ids_only else self._sql_select
        if where:
            query += " WHERE " + " AND ".join(where)
        if not by_id:
            # NULLS LAST and byte order match SQLite's, whatever the server's collation.
            query += ' ORDER BY "created_at" DESC NULLS LAST, "session_id" COLLATE "C"'
        if limited:
            query += " LIMIT %s"
        return query

    def _delete(self, session_id: str, user_id: str | None) -> bool:
        query = sql.SQL('DELETE FROM {} WHERE "session_id" = %s').format(self._qualified_name)
        params: list[Any] = [session_id]
        if user_id == "":
            query = query + sql.SQL(""" AND ("user_id" IS NULL OR "user_id" = '')""")
        elif user_id is not None:
            query = query + sql.SQL(' AND "user_id" = %s')
            params.append(user_id)

        def body(conn: psycopg.Connection[Any]) -> bool:
            return conn.execute(query, params).rowcount > 0

        try:
            return self._run(body, write=True)
        except StorageError as exc:
            if not self._vanished(exc):
                raise
            return False

    def _drop(self) -> None:
        def body(conn: psycopg.Connection[Any]) -> None:
            self._lock(conn)
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._qualified_name))

        self._run(body, write=True)


class _JsonText(Loader):
    """Load json/jsonb as its UTF-8 text: the codec decodes it, exactly (wide integers included)."""

    def load(self, data: Buffer) -> bytes:
        return bytes(data)


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.adapters.register_loader("jsonb", _JsonText)
    conn.adapters.register_loader("json", _JsonText)


def _rollback(conn: psycopg.Connection[Any]) -> None:
    if conn.broken or conn.closed:
        return  # the server rolls back a transaction whose connection died
    try:
        conn.execute("ROLLBACK")
    except psycopg.Error:
        pass  # the original error matters more; the pool discards a bad connection


def _is_lost(exc: BaseException) -> bool:
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in _SHUTDOWN_STATES


def _invalid(exc: BaseException, table: str, session_id: str | None) -> InvalidInputError:
    return InvalidInputError(f"PostgreSQL cannot store this value: {exc}", table=table, session_id=session_id)


@contextmanager
def _errors(table: str) -> Iterator[None]:
    try:
        yield
    except (psycopg.Error, PoolTimeout) as exc:
        raise _translate(exc, table) from exc


def _translate(exc: BaseException, table: str, *, committing: bool = False) -> StorageError:
    """The typed error for a driver error; ``committing`` means COMMIT was under way."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, PoolTimeout):
        return ConnectionLostError(f"no connection to the PostgreSQL server: {exc}", table=table)
    if _is_lost(exc):
        outcome = " during COMMIT; the write may or may not have been saved" if committing else ""
        return ConnectionLostError(f"lost the connection to the PostgreSQL server{outcome}: {exc}", table=table)
    state = getattr(exc, "sqlstate", None) or ""
    if state in _BUSY_STATES:
        return BusyError(f"PostgreSQL gave up waiting for another transaction: {exc}", table=table)
    if isinstance(exc, psycopg.DataError) or state.startswith("22"):
        return InvalidInputError(f"PostgreSQL cannot store this value: {exc}", table=table)
    if isinstance(exc, pg_errors.UndefinedColumn):
        return SchemaMismatchError(f"table {table!r} changed shape under this store: {exc}", table=table)
    return StorageError(f"PostgreSQL error on table {table!r}: {exc}", table=table)


__all__ = ["PostgresStorage", "libpq_url"]
