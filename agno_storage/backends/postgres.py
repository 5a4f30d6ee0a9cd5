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

import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.abc import Buffer
from psycopg.adapt import Loader

from agno_storage import codec, schema, urls
from agno_storage.backends import pg_conn
from agno_storage.backends import postgres_ddl as ddl
from agno_storage.backends.base import BaseStorage
from agno_storage.backends.batches import Batches
from agno_storage.backends.core import Tracer, check_bool
from agno_storage.backends.pg_conn import Connections, invalid_value
from agno_storage.backends.statements import Statements
from agno_storage.errors import InvalidInputError, RowsKeptError, StorageError
from agno_storage.models import Mode
from agno_storage.modes import JSON_KINDS
from agno_storage.schema import PG_NAME_BYTES, TableShape

# Advisory-lock keys are hashed from these prefixes plus the qualified name.
_LOCK_PREFIX = "agno_storage:table:"
_SCHEMA_LOCK_PREFIX = "agno_storage:schema:"
_BULK_LOCK_PREFIX = "agno_storage:bulk:"
#: The bulk writers' turn on a table: the prefix (%s) and the table's OID, from its quoted name (%s, %s).
_BULK_TURN = "SELECT pg_advisory_xact_lock(hashtextextended(%s || COALESCE(to_regclass(%s)::oid::text, %s), 0))"


#: A value the server refuses to store: bad data (class 22), one too big for it (54000: a JSONB string past
#: 256 MiB, an index row past 2,704 bytes), one a CHECK constraint of the table or of a domain refuses (23514), or
#: text that cannot be encoded. A write raises InvalidInputError for it.
_REFUSED_VALUE = (psycopg.DataError, pg_errors.ProgramLimitExceeded, pg_errors.CheckViolation, UnicodeEncodeError)

#: Runs of one statement on a connection after which it is prepared there, with ``prepared_statements``
#: (psycopg's default: a statement run once or twice, DDL say, is not kept on the server).
PREPARE_THRESHOLD = 5

#: The longest connect_timeout taken (a day): past it, libpq's own arithmetic overflows.
_MOST_TIMEOUT = 86_400


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

    ``prepared_statements`` lets the server keep each statement this store
    runs often (five times on a connection: psycopg's default) parsed and
    planned, which saves that work on every later run (a read by id in
    about half the time: docs/postgres.md). A prepared statement that no
    longer fits its table (another program changed a column's type) costs
    its connection: the call runs again on a fresh one. Off by default, and
    never behind a pooler in transaction mode: the next statement may go to
    a server connection that never saw it prepared, or that holds another
    client's statement by the same name.
    """

    ENGINE = "postgres"

    def __init__(
        self,
        table_name: str,
        db_url: str | None = None,
        schema: str | None = "ai",
        mode: Mode | str | None = Mode.AGENT,
        *,
        auto_upgrade_schema: bool = False,
        allow_owner_change: bool = False,
        claim_unowned: bool = True,
        pool_size: int = 10,
        connect_timeout: float = 5.0,
        retries: int = 2,
        recency_indexes: bool = True,
        prepared_statements: bool = False,
        tracer: Tracer | None = None,
    ) -> None:
        super().__init__(
            table_name,
            mode,
            auto_upgrade_schema=auto_upgrade_schema,
            allow_owner_change=allow_owner_change,
            claim_unowned=claim_unowned,
            # agno's layout has nullable id columns: "no value" is NULL there.
            empty_text_is_null=True,
            tracer=tracer,
        )
        if not isinstance(db_url, str) or not db_url or not codec.is_utf8(db_url):
            raise InvalidInputError(f"db_url must be a PostgreSQL URL, got {urls.shown(db_url)}", table=table_name)
        conninfo = urls.postgres_conninfo(db_url)
        if schema is not None and (not isinstance(schema, str) or not schema or not codec.is_utf8(schema)):
            raise InvalidInputError(f"schema must be a non-empty str or None, got {schema!r}", table=table_name)
        if schema is not None and "%" in schema:
            # Statements are rendered with the schema in them and run with bound values, where psycopg reads
            # a % as the start of a placeholder. (Table names are plain identifiers already.)
            raise InvalidInputError(f"schema {schema!r}: a '%' in a schema name is not supported", table=table_name)
        if schema is not None and "\x00" in schema:
            # No PostgreSQL name holds one: the catalogue query would refuse it as a value, naming no schema.
            raise InvalidInputError(f"schema {schema!r}: a name cannot hold U+0000 (NUL)", table=table_name)
        if schema is not None and len(schema.encode()) > PG_NAME_BYTES:
            # PostgreSQL would cut it, silently making two long names one schema (the table name is
            # checked already, by check_table_name).
            raise InvalidInputError(
                f"schema {schema!r} is longer than PostgreSQL's {PG_NAME_BYTES} bytes", table=table_name
            )
        if type(pool_size) is not int or pool_size < 1:
            raise InvalidInputError(f"pool_size must be an int >= 1, got {pool_size!r}")
        if (
            isinstance(connect_timeout, bool)
            or not isinstance(connect_timeout, (int, float))
            or not 0 < connect_timeout <= _MOST_TIMEOUT  # NaN fails this too
        ):
            raise InvalidInputError(
                f"connect_timeout must be seconds > 0 and at most {_MOST_TIMEOUT:,}, got {connect_timeout!r}"
            )
        if type(retries) is not int or retries < 0:
            raise InvalidInputError(f"retries must be an int >= 0, got {retries!r}")
        self.db_url = db_url
        self.schema = schema
        self.pool_size = pool_size
        self.connect_timeout = float(connect_timeout)
        self.retries = retries
        self.recency_indexes = check_bool("recency_indexes", recency_indexes)
        self.prepared_statements = check_bool("prepared_statements", prepared_statements)
        self._qualified_name = ddl.qualified(self.table_name, self.schema)
        self.qualified_table = self._regclass_name = self._qualified_text()  # public: the table in SQL, quoted
        #: The table's columns of a narrower type than the store writes, as last checked (usually none): a value
        #: past one is refused before it is sent, and named.
        self._narrow: list[ddl.Narrow] = []
        self._conns = Connections(
            conninfo,
            table=table_name,
            pool_size=pool_size,
            connect_timeout=self.connect_timeout,
            retries=retries,
            configure=configure_connection,
            prepare_threshold=PREPARE_THRESHOLD if self.prepared_statements else None,
        )
        # Fail now, before anything is written, if the table is another mode's;
        # upgrade an old one now if auto_upgrade_schema says so.
        try:
            self._check_on_open()
        except BaseException:
            self._conns.close()  # a refused store keeps no server connection
            raise

    def _build_statements(self) -> Statements:
        names = self.spec.names
        t = self._qualified_name
        # JSON arrives as the codec's text, cast once by the server.
        values = sql.SQL(", ").join(
            sql.SQL("%s::jsonb") if c.kind in JSON_KINDS else sql.SQL("%s") for c in self.spec.columns
        )
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
            # Only the owner, or anyone for an unowned row (with claim_unowned=False, only a session that has no
            # owner either), updates; a refused row returns nothing.
            unowned = '("existing"."user_id" IS NULL OR "existing"."user_id" = \'\')'
            if not self.claim_unowned:
                unowned += ' AND (EXCLUDED."user_id" IS NULL OR EXCLUDED."user_id" = \'\')'
            upsert += sql.SQL(" WHERE " + unowned + ' OR "existing"."user_id" = EXCLUDED."user_id"')
        # Rendered once, here: a Composed is rendered again on every execute.
        # JSON columns are fetched as they are: the connection's loader hands the
        # codec their text (a cast to text in SQL would run on every row a sort
        # looks at, not only the LIMIT rows returned).
        select_list = sql.SQL(", ").join(sql.Identifier(n) for n in names)
        return Statements(
            placeholder="%s",
            upsert=upsert.as_string(None),
            upsert_returning=(upsert + sql.SQL(' RETURNING "created_at", "updated_at"')).as_string(None),
            select=sql.SQL("SELECT {} FROM {}").format(select_list, t).as_string(None),
            select_ids=sql.SQL("SELECT {} FROM {}").format(sql.Identifier("session_id"), t).as_string(None),
            select_summaries=sql.SQL("SELECT {} FROM {}")
            .format(sql.SQL(", ").join(sql.Identifier(n) for n in self.spec.summary_columns), t)
            .as_string(None),
            count=sql.SQL("SELECT COUNT(*) FROM {}").format(t).as_string(None),
            delete=sql.SQL("DELETE FROM {}").format(t).as_string(None),
            # NULLS LAST and byte order match SQLite's, whatever the server's collation.
            order=' ORDER BY "created_at" DESC NULLS LAST, "session_id" COLLATE "C"',
            id_column='"session_id"',
            user_column='"user_id"',
            entity_column=sql.Identifier(self.spec.entity_column).as_string(None),
        )

    def _qualified_text(self) -> str:
        parts = [self.schema, self.table_name] if self.schema else [self.table_name]
        return ".".join(schema.quote(p) for p in parts)

    # --- connections -------------------------------------------------------

    def transaction(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        """A write transaction: commits only if the block finishes, else rolls back.

        Nested use opens a savepoint. Every store call made inside the block
        on this thread joins it, in a savepoint of its own: a typed error
        from one that the block catches leaves the transaction usable. A
        statement of the caller's own that fails aborts the transaction
        (PostgreSQL's rule), even if the block catches its error: the
        block's end then rolls back and raises StorageError instead of
        committing. A process forked inside the block does not join it.
        Not retried: a lost connection raises ConnectionLostError.
        """
        return self._conns.transaction()

    def close(self) -> None:
        """Close this process's pool; the next call opens a new one."""
        self._conns.close()

    # --- primitives --------------------------------------------------------

    def _table_layout(self) -> tuple[list[str], list[str], str] | None:
        """The layout; SchemaMismatchError for a view (or another relation no upsert writes) of the name."""

        def body(conn: psycopg.Connection[Any]) -> tuple[tuple[list[str], list[str], str], str] | None:
            return ddl.layout_and_kind(lambda q, p: conn.execute(q, p).fetchall(), self.table_name, self.schema)

        found = self._conns.run(body, write=False)
        if found is None:
            return None
        layout, not_a_table = found
        if not_a_table:
            raise schema.not_a_table(self.table_name, self.spec.mode, not_a_table)
        return layout

    def _check_columns(self, table_sql: str) -> None:
        """A text column that compares other than exactly, or a column of a type that changes or refuses what
        the store writes (``ddl.check_columns``)."""

        def body(conn: psycopg.Connection[Any]) -> list[ddl.Narrow]:
            columns = ddl.check_columns(conn, self.table_name, self._regclass_name, self.spec)
            return ddl.narrow_columns(self.spec, columns, conn.info.parameter_status("server_encoding"))

        self._narrow = self._conns.run(body, write=False)

    def check_narrow(self, rows: list[list[Any]]) -> None:
        """InvalidInputError, before anything is sent, for a value of ``rows`` (encoded, stamped) past a column
        of a narrower type than the store writes (``varchar(n)``, ``integer``): PostgreSQL would refuse it, naming
        no column, or cut its trailing spaces without a word. Costs nothing on a table with no such column."""
        past = ddl.first_past(rows, self._narrow) if self._narrow else None
        if past is not None:
            sid, column, why = past
            raise InvalidInputError(
                f"session {sid!r}, column {column}: {why}", table=self.table_name, session_id=sid, column=column
            )

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
            # CREATE SCHEMA IF NOT EXISTS asks for CREATE on the database even where the schema is there: a role
            # granted CREATE on the schema alone (the usual grant) could not make its table.
            if self.schema and not conn.execute(ddl.SCHEMA_EXISTS, (self.schema,)).fetchone():
                self._run_all(conn, [sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))])
            statements = ddl.create_statements(self.table_name, self.spec, self.schema)
            if self.recency_indexes:
                statements += ddl.create_recency_indexes(self.table_name, self.spec, self.schema)
            self._refuse_taken_names(conn, agno=True, recency=self.recency_indexes)
            self._run_all(conn, statements)

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
            self._refuse_taken_names(conn, agno=False, recency=True)
            self._run_all(conn, ddl.create_recency_indexes(self.table_name, self.spec, self.schema))

        self._conns.run(body, write=True)

    def _refuse_taken_names(self, conn: psycopg.Connection[Any], *, agno: bool, recency: bool) -> None:
        """Raise StorageError if another relation holds a name the indexes about to be made need.

        A table renamed keeps its indexes' names: the primary key's would fail
        the CREATE TABLE with a bare "already exists", and ``CREATE INDEX IF
        NOT EXISTS`` would skip the others, leaving the new table without them.
        """
        names = ddl.index_names(self.table_name, self.spec, self.schema, agno=agno, recency=recency)
        taken = [
            f"{name!r} ({f'an index of table {owner}' if owner else f'a relation of kind {kind!r}'})"
            for name, kind, owner, ours in conn.execute(ddl.TAKEN_NAMES, (self._regclass_name, names, self.schema))
            if not ours
        ]
        if taken:
            where = f"schema {self.schema!r}" if self.schema else "the schema the search path gives"
            raise StorageError(
                f"cannot make the indexes of table {self.table_name!r}: {where} has "
                f"{', '.join(taken)} under the name{'s' if len(taken) > 1 else ''} they take (a table renamed keeps its"
                " indexes' names); rename those (ALTER INDEX ... RENAME TO ...) or drop them, then try again",
                table=self.table_name,
            )

    def _apply_migrations(self) -> TableShape | None:
        def body(conn: psycopg.Connection[Any]) -> TableShape | None:
            self._lock(conn)
            shape = self._inspect()
            if shape is None:
                return None
            columns = schema.pending_columns(shape)
            if not columns:
                return shape
            self._run_all(conn, ddl.add_columns(self.table_name, self.spec, self.schema, columns))
            return self._inspect()

        return self._conns.run(body, write=True)

    def _run_all(self, conn: psycopg.Connection[Any], statements: Sequence[sql.Composed]) -> None:
        for statement in statements:
            if self.tracer is not None:
                self.tracer(statement.as_string(conn), None)
            conn.execute(statement)

    def _write_one(self, row: list[Any]) -> tuple[int, int]:
        statement = self.statements.upsert_returning
        self.row_codec.stamp(row, int(time.time()))
        self.check_narrow([row])

        def body(conn: psycopg.Connection[Any]) -> tuple[int, int]:
            got = self._execute_row(conn, statement, row).fetchall()
            if not got:
                error = self._refused_error(row)
                if not isinstance(error, RowsKeptError):
                    raise error
                # The owner check passes now. The upsert committed on its own, so the row that refused it may
                # have changed since (its owner deleted it, or gave it away): run it once more, as it would run
                # now. Refused again with the check passing, a trigger or rule keeps it out.
                got = self._execute_row(conn, statement, row).fetchall()
                if not got:
                    raise self._refused_error(row)
            return got[0][0], got[0][1]

        try:
            # One upsert is one atomic statement: no BEGIN/COMMIT round trips.
            return self._conns.run(body, write=True, single=True)
        except InvalidInputError as exc:
            named = self.narrowed_since(exc, [row])
            if named is exc:
                raise  # as it was, with the server's error its cause
            raise named from exc

    def _write_many(self, batches: Batches) -> int:
        statements, stamp = self.statements, self.row_codec.stamp

        # Two bulk writes to the same sessions in different orders would each hold rows the other waits for
        # (a deadlock, which a rerun meets again): they take turns per table, as they do on SQLite. A single
        # upsert locks one row, so it cannot close such a cycle and never waits here. Inside a caller's
        # transaction() no turn is taken: it holds rows of its own already (waiting for a turn while holding
        # them is a cycle of its own), and the lock would last until the caller's transaction ends.
        take_turn = not self._in_transaction()

        #: The batch being written: the one a refusal concerns.
        current: list[list[Any]] = []

        def body(conn: psycopg.Connection[Any]) -> int:
            if take_turn:
                # Keyed by the table's OID, not its name here: one table named by its schema by one store and
                # through the search path by another is one turn (its name alone, if it is not there).
                conn.execute(_BULK_TURN, (_BULK_LOCK_PREFIX, self._regclass_name, self._regclass_name))
            count = 0
            for batch in batches:  # a rerun replays the rows already taken
                now = int(time.time())
                for row in batch:
                    stamp(row, now)
                current[:] = batch
                self.check_narrow(batch)
                count += self._write_batch(conn, statements, batch)
            return count

        try:
            return self._conns.run(body, write=True, replayable=batches.replayable)
        except InvalidInputError as exc:
            named = self.narrowed_since(exc, current)
            if named is exc:
                raise  # as it was, with the server's error its cause
            raise named from exc

    def _execute_row(self, conn: psycopg.Connection[Any], query: str, row: list[Any]) -> psycopg.Cursor[Any]:
        if self.tracer is not None:
            self.tracer(query, row)
        try:
            return conn.execute(query, row)
        except _REFUSED_VALUE as exc:
            raise self._refused([row], exc) from exc

    def _write_batch(self, conn: psycopg.Connection[Any], statements: Statements, batch: list[list[Any]]) -> int:
        # Rows locked in session_id order (a stable sort: of one id twice, the later still wins): two
        # transactions writing the same sessions a batch at a time take them in one order, not in a cycle.
        # A refused row is looked for in the caller's order, as on SQLite.
        ordered = sorted(batch, key=self.row_codec.session_id)
        self._trace(statements.upsert, ordered)
        with conn.cursor() as cur:
            try:
                # executemany rides this pipeline; its results are all in once the block has exited.
                with pg_conn.pipeline(conn) as pipeline:
                    try:
                        cur.executemany(statements.upsert, ordered)
                    except psycopg.Error:
                        _close_aborted(conn, pipeline)
                        raise
            except _REFUSED_VALUE as exc:
                raise self._refused(batch, exc) from exc
            if cur.rowcount != len(batch):
                self._raise_refused(
                    batch, lambda row: bool(self._execute_row(conn, statements.upsert_returning, row).fetchall())
                )
        return len(batch)

    def _refused(self, rows: list[list[Any]], exc: BaseException) -> InvalidInputError:
        """The error for ``rows`` the server refused with ``exc``, naming the session (and column) at fault.

        The server does not say which row: U+0000, what it refuses most, is looked for here (a value past a
        narrower column's type is refused before sending: :meth:`check_narrow`).
        """
        found = codec.first_nul(rows, self.spec)
        if found is not None:
            return invalid_value(exc, self.table_name, *found)
        return invalid_value(exc, self.table_name, self.row_codec.session_id(rows[0]) if len(rows) == 1 else None)

    def narrowed_since(self, exc: InvalidInputError, rows: list[list[Any]]) -> InvalidInputError:
        """``exc``, or, if the server refused a value of ``rows`` no column of which was known to be narrower
        (another program narrowed one since the types were read), the error naming its session and column.

        The types are read again first (a catalogue query, on this path only), so the next write is checked
        before it is sent; SchemaMismatchError if the table's columns no longer fit at all. ``rows`` are encoded
        and stamped, as :meth:`check_narrow` takes them (import and copy call it on a batch the server refused)."""
        if exc.column is not None or not rows:
            return exc
        self._check_columns("")
        past = ddl.first_past(rows, self._narrow)
        if past is None:
            return exc
        sid, column, why = past
        return InvalidInputError(
            f"session {sid!r}, column {column}: {why}", table=self.table_name, session_id=sid, column=column
        )

    def _query(self, statement: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Run one read statement; retried after a lost connection unless inside a transaction."""

        def body(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
            self._trace(statement, params)
            return conn.execute(statement, params).fetchall()

        return self._conns.run(body, write=False)

    def _execute_write(self, statement: str, params: Sequence[Any]) -> int:
        def body(conn: psycopg.Connection[Any]) -> int:
            self._trace(statement, params)
            return conn.execute(statement, params).rowcount

        return self._conns.run(body, write=True)

    def _in_transaction(self) -> bool:
        return self._conns.held() is not None

    def _drop(self) -> None:
        def body(conn: psycopg.Connection[Any]) -> None:
            self._lock(conn)
            self._run_all(conn, [sql.SQL("DROP TABLE IF EXISTS {}").format(self._qualified_name)])

        self._conns.run(body, write=True)


def _close_aborted(conn: psycopg.Connection[Any], pipeline: psycopg.Pipeline) -> None:
    """Collect the results of the statements a failed statement aborted, so the pipeline closes cleanly.

    Left to the pipeline's exit, they fail there again ("pipeline aborted"),
    which psycopg logs as a warning: printed to stderr, for every refused
    batch, in a program that configured no logging.
    """
    if conn.broken:
        return
    try:
        pipeline.sync()
    except psycopg.Error:
        pass  # the error being raised is the one to see


class _JsonText(Loader):
    """Load json/jsonb as its UTF-8 text: the codec decodes it, exactly (wide integers included)."""

    def load(self, data: Buffer) -> bytes:
        return bytes(data)


def configure_connection(conn: psycopg.Connection[Any]) -> None:
    """Set up a connection as the store sets up each of its own: json and jsonb arrive as UTF-8 text.

    For tools that read the store's tables on a connection of their own and
    decode rows with ``store.row_codec``.
    """
    conn.adapters.register_loader("jsonb", _JsonText)
    conn.adapters.register_loader("json", _JsonText)


__all__ = ["PREPARE_THRESHOLD", "PostgresStorage", "configure_connection"]
