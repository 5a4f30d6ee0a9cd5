"""What the HTTP server reads: every sessions table of one database, opened read-only.

A :class:`Source` lists the sessions tables of a SQLite file or a PostgreSQL
schema (``agno-storage tables``' list: :func:`agno_storage.ops.tables.list_tables`)
and hands out one :class:`~agno_storage.web.table_reader.TableReader` per
table, holding a store of it that reads through this source's read-only
connections (what a reader adds: :mod:`agno_storage.web.table_reader`).
What a source does whatever its engine is :mod:`agno_storage.web.source_base`;
each engine's source, and :func:`open_source`, are here.

Read-only on both engines: a SQLite table's store is a
``SqliteStorage(read_only=True)``, whose connections open the file with
``mode=ro`` and whose writes raise ReadOnlyDatabaseError (the pages' queries
run on it too); the health check's trivial query runs on a ``mode=ro``,
``query_only`` connection of its own. PostgreSQL connections start with
``default_transaction_read_only``. Nothing here writes.

A table may be dropped and made again (in another mode or layout) or
upgraded while the server runs: a reader is used for at most
:data:`RECHECK_AFTER` seconds before the table's columns are looked at
again, and one whose table changed is replaced. A SQLite file replaced by
another (a restored copy moved into place) is seen by the next request: a
reader made on the old file is replaced, as is a connection of the health
check's.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from agno_storage import urls
from agno_storage.backends.base import BaseStorage
from agno_storage.backends.core import check_bool
from agno_storage.backends.sqlite_errors import text_or_bytes, translate
from agno_storage.backends.sqlite_files import file_id, refuse_non_file
from agno_storage.errors import ConnectionLostError, InvalidInputError, StorageError
from agno_storage.ops.db import Database, connect_readonly, hot_journal_error, open_database
from agno_storage.ops.errors import DatabaseMissingError, HotJournalError
from agno_storage.ops.tables import TableInfo
from agno_storage.web.limits import (
    REQUEST_TIMEOUT,
    BoundedSqlite,
    check_deadline,
    interrupt_at_deadline,
    past_deadline,
)
from agno_storage.web.source_base import FRESH_AFTER, RECHECK_AFTER, Layout, Source, Tables

#: Seconds a SQLite source waits for another connection's lock (a rollback-journal file's writer) without ?timeout=.
BUSY_TIMEOUT = 5.0
#: Idle connections a SQLite source keeps for its lists of tables and its tables' re-checks (see :meth:`SqliteSource._bounded`).
SPARES = 4
_Row = tuple[Any, ...]
T = TypeVar("T")


class SqliteSource(Source):
    """A SQLite file opened read-only (``mode=ro``, ``query_only``): one connection per thread."""

    ENGINE = "sqlite"

    def __init__(
        self, path: str | Path, *, busy_timeout: float = BUSY_TIMEOUT, recheck_after: float = RECHECK_AFTER
    ) -> None:
        super().__init__(recheck_after=recheck_after)
        refuse_non_file(Path(path).expanduser())
        self.path = Path(path).expanduser().resolve()
        if not self.path.is_file():
            raise DatabaseMissingError(f"no database file {str(path)!r}")
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        # (thread, connection): a server's worker threads come and go, and the
        # connections of threads that ended are closed when the next one opens.
        self._conns: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._conns_lock = threading.Lock()
        # Idle connections for the list of tables and the tables' re-checks, with the file each one reads.
        self._spares: list[tuple[tuple[int, int], sqlite3.Connection]] = []
        self._closed = False
        self.tables(count_rows=False)  # fail now on a file that is not a database

    def describe(self) -> str:
        return str(self.path)

    def file(self) -> tuple[int, int]:
        """(device, inode) of the file at the path now (one ``stat``); DatabaseMissingError if there is none."""
        try:
            return file_id(str(self.path))
        except OSError:
            raise DatabaseMissingError(f"no database file {str(self.path)!r}") from None

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection, to the file the path names now (DatabaseMissingError if none)."""
        file = self.file()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.file != file:
            # Opened on a file since replaced or deleted: it would go on answering for that one.
            with self._conns_lock:
                self._conns = [(t, c) for t, c in self._conns if c is not conn]
            conn.close()
            conn = self._local.conn = None
        if conn is None:
            conn = self._connect()
            self._local.conn, self._local.file = conn, file
            with self._conns_lock:
                ended = [c for t, c in self._conns if not t.is_alive()]
                self._conns = [(t, c) for t, c in self._conns if t.is_alive()]
                self._conns.append((threading.current_thread(), conn))
            for old in ended:
                old.close()
        return conn

    def _connect(self) -> sqlite3.Connection:
        """A new read-only (``mode=ro``, ``query_only``) connection to the file the path names now."""
        try:
            conn = connect_readonly(self.path)
            conn.execute(f"PRAGMA busy_timeout = {round(self.busy_timeout * 1000)}")
            conn.execute("PRAGMA query_only = 1")
        except sqlite3.Error as exc:
            raise translate(exc) from exc
        return conn

    @contextmanager
    def _spare(self) -> Iterator[list[Any]]:
        """``[connection, keep]``: an idle connection to the file the path names now, or a new one; kept for the
        next caller after (at most :data:`SPARES`) while ``keep`` stays True, unless the file was replaced
        meanwhile. Those of a replaced file are closed."""
        file = self.file()
        with self._conns_lock:
            stale = [c for f, c in self._spares if f != file]
            fit = [c for f, c in self._spares if f == file]
            conn = fit.pop() if fit else None
            self._spares = [(file, c) for c in fit]
        for old in stale:
            old.close()
        if conn is None:
            conn = self._connect()
        kept = False
        lease: list[Any] = [conn, True]
        try:
            yield lease
        finally:
            if conn.in_transaction:  # never a snapshot held for the next caller
                conn.rollback()
            with self._conns_lock:
                if lease[1] and not self._closed and len(self._spares) < SPARES:
                    self._spares.append((file, conn))
                    kept = True
            if not kept:
                conn.close()

    @contextmanager
    def _bounded(self) -> Iterator[Database]:
        """An idle read-only connection (:meth:`_spare`) whose statements stop at this thread's request's
        deadline: a statement begun past it at its first step, and one running then by an interrupt (the
        list's row counts).

        It runs only catalogue statements and row counts, a few steps each:
        its progress handler looks at the deadline at every step, which a
        count's one long step is never interrupted before. Not a new
        connection each time (each list of tables, each table's re-check):
        a new connection's first read may rebuild the index of a
        write-ahead log another program left behind, reading all of it,
        in a step no deadline stops (docs/web.md).
        """
        with self._spare() as lease:
            conn: sqlite3.Connection = lease[0]
            done = threading.Lock()
            ended = False

            def interrupt() -> None:
                with done:
                    if not ended:  # never a statement of the connection's next user
                        lease[1] = False  # nor the connection itself: an interrupt may outlive its statement
                        conn.interrupt()

            conn.set_progress_handler(past_deadline, 1)
            stop = interrupt_at_deadline(interrupt)
            try:
                yield Database("sqlite", conn, location=repr(str(self.path)), path=str(self.path))
            finally:
                with done:
                    ended = True
                stop()
                conn.set_progress_handler(None, 1)

    def ping(self) -> None:
        """Read the header of the file the path names now (not the one a connection opened before it was replaced)."""
        self.query("SELECT 1 FROM sqlite_master LIMIT 1", ())

    def tables(self, *, count_rows: bool = True) -> Tables:
        return self._explained(lambda: super(SqliteSource, self).tables(count_rows=count_rows))

    def _look(self, table: str, known: Layout | None) -> tuple[Layout, TableInfo | None]:
        return self._explained(lambda: super(SqliteSource, self)._look(table, known))

    def explain(self, exc: StorageError) -> StorageError:
        """A HotJournalError saying how to recover for a read that found a hot journal; else ``exc``."""
        return hot_journal_error(self.path, exc, exc.table) or exc

    def _explained(self, call: Callable[[], T]) -> T:
        """``call()``, with an error :meth:`explain` says more of raised as that."""
        try:
            return call()
        except StorageError as exc:
            better = self.explain(exc)
            if better is exc:
                raise
            raise better from exc

    def _make_store(self, info: TableInfo) -> BaseStorage:
        return BoundedSqlite(
            info.name,
            db_file=self.path,
            mode=info.mode,
            read_only=True,
            busy_timeout=self.busy_timeout,
            tracer=check_deadline,
        )

    def query(self, statement: str, params: Sequence[Any], table: str | None = None) -> list[_Row]:
        """Run one read statement on this thread's read-only connection, to the file the path names now."""
        return self._explained(lambda: self._query(statement, params, table))

    def _query(self, statement: str, params: Sequence[Any], table: str | None) -> list[_Row]:
        conn = self._conn()
        try:
            return conn.execute(statement, params).fetchall()
        except sqlite3.OperationalError as exc:
            if not str(exc).startswith("Could not decode to UTF-8"):
                raise translate(exc, table) from exc
        except sqlite3.Error as exc:
            raise translate(exc, table) from exc
        # Text another program stored that is not UTF-8: read it as bytes, for
        # the codec to name the session and column.
        try:
            conn.text_factory = text_or_bytes
            return conn.execute(statement, params).fetchall()
        except sqlite3.Error as exc:
            raise translate(exc, table) from exc
        finally:
            conn.text_factory = str

    def close(self) -> None:
        super().close()
        with self._conns_lock:
            conns, self._conns = self._conns, []
            spares, self._spares = self._spares, []
            self._closed = True
        for _, conn in conns + spares:
            conn.close()


#: libpq's options that make every transaction of a connection read-only.
READ_ONLY_OPTION = "-c default_transaction_read_only=on"


def read_only_url(url: str, statement_timeout: float = REQUEST_TIMEOUT) -> str:
    """``url`` with :data:`READ_ONLY_OPTION` and ``statement_timeout`` (seconds) added to libpq's ``options``."""
    return urls.with_libpq_options(
        url, f"{READ_ONLY_OPTION} -c statement_timeout={max(1, round(statement_timeout * 1000))}"
    )


class PostgresSource(Source):
    """The sessions tables of one PostgreSQL schema; every connection is read-only."""

    ENGINE = "postgres"

    def __init__(
        self,
        url: str,
        *,
        schema_name: str | None = "ai",
        connect_timeout: float = 5.0,
        recheck_after: float = RECHECK_AFTER,
        prepared_statements: bool = False,
        statement_timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        super().__init__(recheck_after=recheck_after)
        target = urls.parse(url)
        if not isinstance(target, urls.PostgresTarget):
            raise InvalidInputError(f"not a PostgreSQL URL: {urls.shown(url)}")
        # The server cancels a statement at statement_timeout (a request's deadline; limits.Limits), or at the
        # one the URL, the role or the database sets, if stricter (see _check_read_only).
        self.url = read_only_url(url, statement_timeout)
        self.schema_name = schema_name
        self.connect_timeout = connect_timeout
        #: Whether each table's store prepares what it repeats on the server (PostgresStorage's option).
        self.prepared_statements = check_bool("prepared_statements", prepared_statements)
        self._shown = url
        # The health check's: when the server last answered, and the last check's end and error (None: it
        # answered); one check runs at a time.
        self._answered_at = -1e9
        self._pinged_at = -1e9
        self._ping_error: StorageError | None = None
        self._ping_lock = threading.Lock()
        self._reachable(lambda: self._check_read_only(statement_timeout))
        self.tables(count_rows=False)

    def describe(self) -> str:
        where = f"schema {self.schema_name!r}" if self.schema_name else "the search path"
        return f"{urls.without_password(self._shown)} ({where})"

    def _check_read_only(self, statement_timeout: float) -> None:
        """StorageError unless the server starts this source's connections read-only, as its URL asks; then
        :attr:`url` cancels a statement at ``statement_timeout`` seconds, or at the ``statement_timeout`` a
        connection of the URL gets (its ``options``, the role's or the database's setting) if stricter.

        A connection pooler between cannot pass :data:`READ_ONLY_OPTION` on:
        PgBouncer refuses the startup parameter ``options``, or, told to
        ignore it, drops it, and every connection would then be read-write.
        """
        import psycopg

        how = f"the startup parameter options ({READ_ONLY_OPTION!r}), which makes every connection read-only"
        advice = "a connection pooler such as PgBouncer does: point serve at the PostgreSQL server itself"
        try:
            # Without the source's statement_timeout, which would replace the one the URL's connection gets.
            with open_database(urls.with_libpq_options(self._shown, READ_ONLY_OPTION), self.schema_name) as db:
                setting, given = db.query(
                    "SELECT current_setting('default_transaction_read_only'), "
                    "(SELECT setting::bigint FROM pg_settings WHERE name = 'statement_timeout')"
                )[0]
        except StorageError as exc:
            cause = exc.__cause__
            if isinstance(cause, psycopg.OperationalError) and "unsupported startup parameter" in str(cause):
                raise StorageError(f"{self.describe()} refuses {how}; {advice}") from exc
            raise
        if setting != "on":
            raise StorageError(
                f"{self.describe()} dropped {how} (default_transaction_read_only is {setting}); {advice}"
            )
        if 0 < int(given) < statement_timeout * 1000:  # milliseconds; 0 is none
            self.url = read_only_url(self._shown, int(given) / 1000)

    @contextmanager
    def _bounded(self) -> Iterator[Database]:
        """A new connection that starts no statement past this thread's request's deadline (TooSlow), and whose
        statement running then is cancelled: the list of tables runs several a table, and each one's
        ``statement_timeout`` does not bound them all."""
        with open_database(self.url, self.schema_name) as db:
            db.conn.cursor_factory = _deadline_cursor()
            stop = interrupt_at_deadline(functools.partial(_cancel, db.conn))
            try:
                yield db
            finally:
                stop()

    def ping(self) -> None:
        """Raise StorageError unless the server answers, asking it at most once every :data:`FRESH_AFTER`
        seconds while it answers, and once at a time.

        Each ask is a new connection (a server process), and the health check
        answers without a token: a caller waiting for another's ask takes its
        answer.
        """
        asked = time.monotonic()
        if asked - self._answered_at <= FRESH_AFTER:
            return
        with self._ping_lock:
            if self._pinged_at >= asked:  # an ask that ended after this call began: its answer is as fresh
                if self._ping_error is not None:
                    raise self._ping_error
                return
            try:
                self._reachable(super().ping)
            except StorageError as exc:
                self._ping_error = exc
                raise
            else:
                self._ping_error = None
                self._answered_at = time.monotonic()
            finally:
                self._pinged_at = time.monotonic()

    def tables(self, *, count_rows: bool = True) -> Tables:
        return self._reachable(lambda: super(PostgresSource, self).tables(count_rows=count_rows))

    def _look(self, table: str, known: Layout | None) -> tuple[Layout, TableInfo | None]:
        return self._reachable(lambda: super(PostgresSource, self)._look(table, known))

    def _reachable(self, call: Callable[[], T]) -> T:
        """``call()``, with a server that cannot be reached raised as ConnectionLostError."""
        import psycopg

        try:
            return call()
        except psycopg.OperationalError as exc:
            raise ConnectionLostError(f"lost {self.describe()}: {exc}") from exc
        except StorageError as exc:
            if isinstance(exc.__cause__, psycopg.OperationalError):
                raise ConnectionLostError(f"cannot reach {self.describe()}: {exc.__cause__}") from exc
            raise

    def _make_store(self, info: TableInfo) -> BaseStorage:
        return urls.open_storage(
            self.url,
            info.name,
            mode=info.mode,
            schema=self.schema_name,
            connect_timeout=self.connect_timeout,
            recency_indexes=False,
            prepared_statements=self.prepared_statements,
            tracer=check_deadline,
        )


def _cancel(conn: Any) -> None:
    """Ask the server to cancel psycopg connection ``conn``'s statement; a request that could not be sent (the
    server unreachable a moment, ``conn`` closed meanwhile) is let go: the deadline's watch sends another."""
    import psycopg

    with suppress(psycopg.Error):
        conn.cancel()


@functools.cache
def _deadline_cursor() -> type[Any]:
    """psycopg's cursor, checking the request's deadline before each statement (:func:`check_deadline`)."""
    import psycopg

    class DeadlineCursor(psycopg.Cursor[Any]):
        def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            check_deadline(str(query), None)
            return super().execute(query, *args, **kwargs)

    return DeadlineCursor


def open_source(
    location: str,
    *,
    schema_name: str | None = "ai",
    recheck_after: float = RECHECK_AFTER,
    prepared_statements: bool = False,
    statement_timeout: float = REQUEST_TIMEOUT,
) -> Source:
    """The source of a SQLite path or URL, or a PostgreSQL URL; StorageError if it cannot be read.

    A SQLite file with a hot journal (a writer stopped mid-transaction) cannot
    be read until a connection that may write opens it: HotJournalError says how.
    ``prepared_statements`` is PostgreSQL's (see PostgresStorage); for SQLite,
    which prepares every statement anyway, it is InvalidInputError.
    ``statement_timeout``: seconds a PostgreSQL server runs one statement of this source, and the most a
    SQLite source waits for a lock (a URL's ``?timeout=``, else :data:`BUSY_TIMEOUT`, if that is less).
    """
    target = urls.parse_location(location)
    if isinstance(target, urls.SqliteTarget):
        if check_bool("prepared_statements", prepared_statements):
            raise InvalidInputError("prepared_statements applies to PostgreSQL only (SQLite prepares every statement)")
        if target.path is None:
            raise InvalidInputError(f"{location!r} is an in-memory database, which starts empty; give a file")
        # SQLite's progress handler, which stops a statement at the request's deadline, is not called while
        # SQLite waits for a lock: the wait itself is bounded by the deadline's length.
        busy = BUSY_TIMEOUT if target.timeout is None else target.timeout
        return SqliteSource(target.path, busy_timeout=min(busy, statement_timeout), recheck_after=recheck_after)
    return PostgresSource(
        location,
        schema_name=schema_name,
        recheck_after=recheck_after,
        prepared_statements=prepared_statements,
        statement_timeout=statement_timeout,
    )


__all__ = [
    "BUSY_TIMEOUT",
    "FRESH_AFTER",
    "RECHECK_AFTER",
    "HotJournalError",
    "PostgresSource",
    "Source",
    "SqliteSource",
    "Tables",
    "open_source",
]
