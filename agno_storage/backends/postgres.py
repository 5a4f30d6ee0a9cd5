"""The PostgreSQL backend: one sessions table in agno 1.x's PostgreSQL layout.

The table is the one agno 1.x's ``PostgresStorage`` creates (schema ``ai`` by
default, JSONB data columns, BIGINT epoch-second timestamps, SQLAlchemy's
``ix_<schema>_<table>_<column>`` index names), so tables agno made are read
and updated in place; a table this store creates also gets its recency
indexes unless ``recency_indexes=False``. Connections, transactions, retries and error
translation live in :mod:`agno_storage.backends.pg_conn`; this module owns
the table: its statements, its schema checks and how its rows are read and
written. Schema changes run under a transaction-scoped advisory lock, so
several processes may start at once.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.abc import Buffer
from psycopg.adapt import Loader

from agno_storage import schema
from agno_storage.backends import postgres_ddl as ddl
from agno_storage.backends.base import BATCH_SIZE, BaseStorage
from agno_storage.backends.pg_conn import Connections, invalid_value, libpq_url
from agno_storage.errors import InvalidInputError, StorageError
from agno_storage.models import Mode
from agno_storage.schema import ColumnKind, TableShape

T = TypeVar("T")

_JSON_KINDS = (ColumnKind.JSON, ColumnKind.JSON_ANY)

# Advisory-lock keys are hashed from these prefixes plus the qualified name.
_LOCK_PREFIX = "agno_storage:table:"
_SCHEMA_LOCK_PREFIX = "agno_storage:schema:"


class PostgresStorage(BaseStorage):
    """A sessions table of one mode in a PostgreSQL database.

    ``schema=None`` leaves names unqualified (the search path decides), as
    agno does. Thread-safe; a forked child makes its own pool. After a lost
    connection or a serialization failure, a call is retried up to
    ``retries`` times if it is a read, a write whose COMMIT was not yet
    sent (for :meth:`upsert_many`, only while it has taken at most
    ``4 * BATCH_SIZE`` sessions from its iterable, which it then replays),
    or a single :meth:`upsert`: that is one autocommit statement with
    no COMMIT of its own, idempotent, so it is rerun even if it may have
    committed. Nothing is retried inside :meth:`transaction`, nor a write
    whose connection was lost during COMMIT. Otherwise a lost server raises
    :class:`ConnectionLostError` within about ``connect_timeout`` seconds
    instead of hanging.

    ``recency_indexes`` adds three indexes beside agno's when this object
    creates the table (see :meth:`create_recency_indexes`): "newest sessions"
    of one user, of one entity and of all become an index walk instead of a
    sort of every matching row, at a cost per write (docs/benchmarks.md).
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
        recency_indexes: bool = True,
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
        self.recency_indexes = recency_indexes
        self._conns = Connections(
            libpq_url(db_url),
            table=table_name,
            pool_size=pool_size,
            connect_timeout=self.connect_timeout,
            retries=retries,
            configure=_configure,
        )
        self._build_sql()
        # Fail now, before anything is written, if the table is another mode's;
        # upgrade an old one now if auto_upgrade_schema says so.
        try:
            self._check_on_open()
        except BaseException:
            self._conns.close()  # a refused store keeps no server connection
            raise

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
        self._placeholder = "%s"
        self._filter_columns = (
            '"session_id"',
            '"user_id"',
            sql.Identifier(schema.ENTITY_COLUMN[self.mode]).as_string(None),
        )
        self._sql_count = sql.SQL("SELECT COUNT(*) FROM {}").format(t).as_string(None)
        self._regclass_name = self._qualified_text()

    def _qualified_text(self) -> str:
        parts = [self.schema, self.table_name] if self.schema else [self.table_name]
        return ".".join(schema.quote(p) for p in parts)

    # --- connections -------------------------------------------------------

    def transaction(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        """A write transaction: commits only if the block finishes, else rolls back.

        Nested use opens a savepoint. Every store call made inside the block
        on this thread joins it. Not retried: a lost connection raises
        ConnectionLostError.
        """
        return self._conns.transaction()

    def close(self) -> None:
        """Close this process's pool; the next call opens a new one."""
        self._conns.close()

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

        return self._conns.run(body, write=False)

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
            if self.recency_indexes:
                for statement in ddl.create_recency_indexes(self.table_name, self.mode, self.schema):
                    conn.execute(statement)

        try:
            self._conns.run(body, write=True)
        except StorageError as exc:
            # A writer that takes no lock (agno itself) created it first: fine.
            if not isinstance(exc.__cause__, (pg_errors.DuplicateTable, pg_errors.UniqueViolation)):
                raise
            if self._table_layout() is None:
                raise

    def create_recency_indexes(self) -> None:
        """Add the recency indexes to an existing table (one agno made, say); idempotent.

        agno keeps reading and writing the table. ``CREATE INDEX`` blocks
        writes to the table while it builds; on a large table in use, run the
        statements of ``postgres_ddl.create_recency_indexes`` by hand with
        ``CREATE INDEX CONCURRENTLY`` instead.
        """
        self._checked_shape(create=True)

        def body(conn: psycopg.Connection[Any]) -> None:
            self._lock(conn)
            for statement in ddl.create_recency_indexes(self.table_name, self.mode, self.schema):
                conn.execute(statement)

        self._conns.run(body, write=True)

    def _apply_migrations(self) -> TableShape | None:
        def body(conn: psycopg.Connection[Any]) -> TableShape | None:
            self._lock(conn)
            shape = self._inspect()
            if shape is None:
                return None
            columns = schema.pending_columns(shape)
            if not columns:
                return shape
            for statement in ddl.add_columns(self.table_name, self.mode, self.schema, columns):
                conn.execute(statement)
            return self._inspect()

        return self._conns.run(body, write=True)

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
            return self._conns.run(body, write=True, replayable=replayable, single=single)
        except StorageError as exc:
            if not self._vanished(exc):
                raise
        # Dropped by someone else since this object checked it: make it again, once.
        self._checked_shape(create=True)
        if not replayable():
            raise StorageError(f"table {self.table_name!r} vanished during a write", table=self.table_name)
        return self._conns.run(body, write=True, replayable=replayable, single=single)

    def _execute_row(self, conn: psycopg.Connection[Any], query: str, params: list[Any]) -> psycopg.Cursor[Any]:
        try:
            return conn.execute(query, params)
        except (psycopg.DataError, UnicodeEncodeError) as exc:
            raise invalid_value(exc, self.table_name, params[0]) from exc

    def _write_batch(self, conn: psycopg.Connection[Any], params_list: list[list[Any]]) -> int:
        with conn.cursor() as cur:
            try:
                cur.executemany(self._sql_upsert, params_list)
            except (psycopg.DataError, UnicodeEncodeError) as exc:
                raise invalid_value(exc, self.table_name, None) from exc
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

        return self._conns.run(body, write=False)

    def _vanished(self, exc: StorageError) -> bool:
        if not isinstance(exc.__cause__, pg_errors.UndefinedTable) or self._conns.held() is not None:
            return False
        self._forget_shape()  # dropped by someone else since this object checked it
        return True

    def _build_select(self, by_id: bool, by_user: int, by_entity: int, limited: bool, ids_only: bool) -> str:
        query = self._sql_select_ids if ids_only else self._sql_select
        query += self._where(by_id, by_user, by_entity)
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
            return self._conns.run(body, write=True)
        except StorageError as exc:
            if not self._vanished(exc):
                raise
            return False

    def _drop(self) -> None:
        def body(conn: psycopg.Connection[Any]) -> None:
            self._lock(conn)
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._qualified_name))

        self._conns.run(body, write=True)


class _JsonText(Loader):
    """Load json/jsonb as its UTF-8 text: the codec decodes it, exactly (wide integers included)."""

    def load(self, data: Buffer) -> bytes:
        return bytes(data)


def _configure(conn: psycopg.Connection[Any]) -> None:
    """Set up a new pooled connection: json and jsonb arrive as text for the codec."""
    conn.adapters.register_loader("jsonb", _JsonText)
    conn.adapters.register_loader("json", _JsonText)


__all__ = ["PostgresStorage", "libpq_url"]
