"""What the HTTP server reads: every sessions table of one database, opened read-only.

A :class:`Source` lists the sessions tables of a SQLite file or a PostgreSQL
schema (``agno-storage tables``' list: :func:`agno_storage.ops.tables.list_tables`)
and hands out one :class:`~agno_storage.web.table_reader.TableReader` per
table, holding a store of it that reads through this source's read-only
connections (what a reader adds: :mod:`agno_storage.web.table_reader`).

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

import abc
import sqlite3
import string
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import attrs

from agno_storage import schema, urls
from agno_storage.agent_runs import TABLE as RUNS_TABLE
from agno_storage.backends.base import BaseStorage
from agno_storage.backends.core import check_bool
from agno_storage.backends.sqlite_errors import text_or_bytes, translate
from agno_storage.backends.sqlite_files import file_id
from agno_storage.errors import (
    ConnectionLostError,
    InvalidInputError,
    SchemaMismatchError,
    StorageError,
    TableNotFoundError,
)
from agno_storage.modes import SPECS, TEXT_KINDS
from agno_storage.ops.db import Database, connect_readonly, hot_journal_error, open_database
from agno_storage.ops.errors import DatabaseMissingError, HotJournalError
from agno_storage.ops.tables import TableInfo, check_types, describe, inexact_ids, list_tables
from agno_storage.web.limits import REQUEST_TIMEOUT, BoundedSqlite, check_deadline
from agno_storage.web.table_reader import TableReader

#: Seconds a SQLite source waits for another connection's lock (a rollback-journal file's writer) without ?timeout=.
BUSY_TIMEOUT = 5.0
#: Seconds a table's reader is used before the table's columns are looked at again (one cheap look, no row read).
RECHECK_AFTER = 2.0
#: The least seconds between two looks asked for at once (before a 409): on PostgreSQL each is a connection.
FRESH_AFTER = 0.5
#: Seconds a replaced reader's store stays open for requests still reading through it.
RETIRED_GRACE = 60.0
#: ASCII upper case to lower case, the only case SQLite folds in names.
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_Row = tuple[Any, ...]
#: A table's (column names, index names, CREATE TABLE text): what its reader was made for.
_Layout = tuple[list[str], list[str], str]
#: The file a reader or connection reads, as (device, inode); None where there is no file (PostgreSQL).
_FileId = tuple[int, int] | None
T = TypeVar("T")


@attrs.frozen
class Tables:
    """The sessions tables of the database now: those a reader is made for, and those none can be."""

    readable: tuple[TableInfo, ...]
    #: (name, why) of each sessions table the stores refuse (a name that is not a plain SQL identifier).
    unreadable: tuple[tuple[str, str], ...] = ()


@attrs.define
class _Cached:
    """A reader, the layout of the table it was made for, and when that was last seen to hold (monotonic)."""

    reader: TableReader
    layout: _Layout
    checked: float
    #: The file the path named when the reader was made.
    file: _FileId = None
    #: A thread is looking at the table now.
    looking: bool = False


class Source(abc.ABC):
    """Every sessions table of one database, read-only. Thread-safe.

    ``recheck_after``: seconds a table's reader is used before the table is
    looked at again (see :meth:`reader`).
    """

    def __init__(self, *, recheck_after: float = RECHECK_AFTER) -> None:
        self.recheck_after = recheck_after
        self._readers: dict[str, _Cached] = {}
        # Stores of replaced readers, with when they were replaced: closed RETIRED_GRACE seconds on.
        self._retired: list[tuple[float, BaseStorage]] = []
        self._lock = threading.Lock()
        #: The file the location named at the last call of :meth:`reader`.
        self._file_seen: _FileId = None

    @abc.abstractmethod
    def _database(self) -> Database:
        """A new read-only :class:`~agno_storage.ops.db.Database` of this source (the caller closes it)."""

    def ping(self) -> None:
        """Raise StorageError unless the database answers a trivial query now (cheap: no table is read)."""
        with self._database() as db:
            db.query("SELECT 1")

    def tables(self) -> Tables:
        """The sessions tables there now (``agno-storage tables``' list: mode, layout, version, rows).

        A table whose name or columns the stores refuse, or that the role may not read
        (PostgreSQL), is listed apart, with why: :meth:`reader` could not
        read it, so it is not offered as readable.
        """
        unreadable: list[tuple[str, str]] = []
        readable = []
        with self._database() as db:
            found = list_tables(db, unreadable).sessions  # one the role may not read: listed apart, with why
            for info in found:
                try:
                    schema.check_table_name(info.name)
                except InvalidInputError as exc:
                    unreadable.append((info.name, str(exc)))
                    continue
                why = inexact_ids(db, info.name, [c.name for c in SPECS[info.mode].columns if c.kind in TEXT_KINDS])
                if why is not None:  # no store opens it ('ALICE' would read alice's sessions)
                    unreadable.append((info.name, f"{why}: the store compares ids and owners exactly"))
                    continue
                try:
                    check_types(db, info)  # nor one that changes what it writes (a session id cut to 63 bytes)
                except SchemaMismatchError as exc:
                    unreadable.append((info.name, str(exc)))
                    continue
                readable.append(info)
        return Tables(tuple(readable), tuple(unreadable))

    def file(self) -> _FileId:
        """The file the location names now, which a reader made on another is replaced for (default: no file)."""
        return None

    @abc.abstractmethod
    def _make_store(self, info: TableInfo) -> BaseStorage:
        """A store of ``info``'s table that reads through read-only connections and refuses every write."""

    @abc.abstractmethod
    def describe(self) -> str:
        """The database, fit to show (no password)."""

    def reader(self, table: str, *, fresh: bool = False) -> TableReader:
        """The reader of ``table``; TableNotFoundError if it is not a sessions table here (now).

        A reader is kept and handed out again for ``recheck_after`` seconds;
        after that (or with ``fresh``, if it was last looked at more than
        :data:`FRESH_AFTER` seconds ago) the table's layout is read again (no
        row is), and a table dropped and made again in another mode or
        layout, or upgraded, gets a new reader. One thread looks at a time:
        the others go on with the reader they have meanwhile. A SQLite
        reader made on a file the path no longer names is replaced at once
        (one ``stat`` per call). InvalidInputError for a name no store takes
        (not a plain SQL identifier), before the database is asked;
        DatabaseMissingError if the SQLite path names no file.
        """
        # A name such as "a-b" or one holding NUL is no table a store reads; PostgreSQL would refuse NUL as a
        # DataError, not as a missing table.
        schema.check_table_name(table)
        file = self.file()
        if file != self._file_seen:
            self._drop_readers_of_other_files(file)
        self._close_retired()
        now = time.monotonic()
        key = self._key(table)
        with self._lock:
            cached = self._readers.get(key)
            if cached is not None and cached.file != file:
                # Its connections read the old file (unlinked, it stays readable to them): make one on the file
                # there now; the old one is retired when the new one takes its place below.
                cached = None
            if cached is not None:
                due = now - cached.checked >= (min(FRESH_AFTER, self.recheck_after) if fresh else self.recheck_after)
                if not due or cached.looking:
                    return cached.reader
                cached.looking = True
        try:
            layout, info = self._look(table, None if cached is None else cached.layout)
        except TableNotFoundError:
            self.forget(key)
            raise
        finally:
            if cached is not None:
                cached.looking = False
        if info is None:
            assert cached is not None  # the layout it was made for is the one there now
            cached.checked = time.monotonic()
            return cached.reader
        made = _Cached(TableReader(info, self._make_store(info)), layout, time.monotonic(), file)
        spare: _Cached | None
        with self._lock:
            current = self._readers.get(key)
            if current is not None and current is not cached and (current.layout, current.file) == (layout, file):
                made, spare = current, made  # another thread made one for this layout first
            else:
                self._readers[key] = made
                spare = current
        if spare is not None:
            self._retire(spare.reader.store)
        return made.reader

    def _drop_readers_of_other_files(self, file: _FileId) -> None:
        """Retire every reader made on another file than ``file``: each keeps its file open, unlinked, on disk."""
        with self._lock:
            self._file_seen = file
            stale = [name for name, cached in self._readers.items() if cached.file != file]
            stores = [self._readers.pop(name).reader.store for name in stale]
        for store in stores:
            self._retire(store)

    def _retire(self, store: BaseStorage) -> None:
        """Close ``store`` once no request can still be reading through it (:data:`RETIRED_GRACE` seconds on).

        Closing a store closes every thread's connection at once, which must
        not happen under a query another request is running on it.
        """
        with self._lock:
            self._retired.append((time.monotonic(), store))
        self._close_retired()

    def _close_retired(self) -> None:
        """Close the stores retired more than :data:`RETIRED_GRACE` seconds ago (each request looks: a replaced
        file's old store would otherwise hold the unlinked file, and its disk space, until another was retired)."""
        now = time.monotonic()
        with self._lock:
            if not self._retired or now - self._retired[0][0] <= RETIRED_GRACE:
                return
            done = [s for at, s in self._retired if now - at > RETIRED_GRACE]
            self._retired = [(at, s) for at, s in self._retired if now - at <= RETIRED_GRACE]
        for old in done:
            old.close()

    def _key(self, table: str) -> str:
        """The name ``table``'s reader is kept under: the name itself (PostgreSQL's are case-sensitive)."""
        return table

    def lists(self, tables: Tables, table: str) -> bool:
        """Whether ``tables`` (a list :meth:`tables` read) names ``table``, readable or not, as the engine
        compares names (SQLite without ASCII case)."""
        key = self._key(table)
        names = [t.name for t in tables.readable] + [name for name, _ in tables.unreadable]
        return any(self._key(name) == key for name in names)

    def _look(self, table: str, known: _Layout | None) -> tuple[_Layout, TableInfo | None]:
        """``table``'s layout now, and what it is unless that is ``known``; TableNotFoundError if it is no sessions table."""
        with self._database() as db:
            if db.is_sqlite:
                # SQLite finds a table under any ASCII case of its name: the reader reads it under the name the
                # file spells (one reader whatever the request spells; a view is no sessions table).
                row = db.query(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE", (table,)
                )
                if not row:
                    raise TableNotFoundError(f"no sessions table {table!r} in {self.describe()}", table=table)
                table = str(row[0][0])
            layout = db.layout(table)
            # What agno-storage tables' list leaves out is no sessions table here either.
            if layout is not None and table != RUNS_TABLE and schema.identify_mode(layout[0]) is not None:
                if layout == known:
                    return layout, None
                try:
                    return layout, describe(db, table)
                except SchemaMismatchError:
                    pass
        raise TableNotFoundError(f"no sessions table {table!r} in {self.describe()}", table=table)

    def forget(self, table: str) -> None:
        """Drop the reader of ``table`` (it vanished or changed); the next call looks again."""
        with self._lock:
            cached = self._readers.pop(self._key(table), None)
        if cached is not None:
            self._retire(cached.reader.store)

    def explain(self, exc: StorageError) -> StorageError:
        """``exc``, or an error that says better what happened and how to recover (see :class:`SqliteSource`)."""
        return exc

    def close(self) -> None:
        with self._lock:
            stores = [c.reader.store for c in self._readers.values()] + [s for _, s in self._retired]
            self._readers.clear()
            self._retired.clear()
        for store in stores:
            store.close()


class SqliteSource(Source):
    """A SQLite file opened read-only (``mode=ro``, ``query_only``): one connection per thread."""

    def __init__(
        self, path: str | Path, *, busy_timeout: float = BUSY_TIMEOUT, recheck_after: float = RECHECK_AFTER
    ) -> None:
        super().__init__(recheck_after=recheck_after)
        self.path = Path(path).expanduser().resolve()
        if not self.path.is_file():
            raise DatabaseMissingError(f"no database file {str(path)!r}")
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        # (thread, connection): a server's worker threads come and go, and the
        # connections of threads that ended are closed when the next one opens.
        self._conns: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._conns_lock = threading.Lock()
        self.tables()  # fail now on a file that is not a database

    def describe(self) -> str:
        return str(self.path)

    def _key(self, table: str) -> str:
        """SQLite compares names without ASCII case: ``AGENT_SESSIONS`` gets ``agent_sessions``'s reader (one
        reader per spelling held a file descriptor each, and every request failed once they ran out)."""
        return table.translate(_ASCII_LOWER)

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
            try:
                conn = connect_readonly(self.path)
                conn.execute(f"PRAGMA busy_timeout = {round(self.busy_timeout * 1000)}")
                conn.execute("PRAGMA query_only = 1")
            except sqlite3.Error as exc:
                raise translate(exc) from exc
            self._local.conn, self._local.file = conn, file
            with self._conns_lock:
                ended = [c for t, c in self._conns if not t.is_alive()]
                self._conns = [(t, c) for t, c in self._conns if t.is_alive()]
                self._conns.append((threading.current_thread(), conn))
            for old in ended:
                old.close()
        return conn

    def _database(self) -> Database:
        return open_database(str(self.path), None, timeout=self.busy_timeout)

    def ping(self) -> None:
        """Read the header of the file the path names now (not the one a connection opened before it was replaced)."""
        self.query("SELECT 1 FROM sqlite_master LIMIT 1", ())

    def tables(self) -> Tables:
        return self._explained(super().tables)

    def _look(self, table: str, known: _Layout | None) -> tuple[_Layout, TableInfo | None]:
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
        for _, conn in conns:
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
        # The server cancels a statement at statement_timeout (a request's deadline; limits.Limits).
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
        self._reachable(self._check_read_only)
        self.tables()

    def describe(self) -> str:
        where = f"schema {self.schema_name!r}" if self.schema_name else "the search path"
        return f"{urls.without_password(self._shown)} ({where})"

    def _check_read_only(self) -> None:
        """StorageError unless the server starts this source's connections read-only, as its URL asks.

        A connection pooler between cannot pass :data:`READ_ONLY_OPTION` on:
        PgBouncer refuses the startup parameter ``options``, or, told to
        ignore it, drops it, and every connection would then be read-write.
        """
        import psycopg

        how = f"the startup parameter options ({READ_ONLY_OPTION!r}), which makes every connection read-only"
        advice = "a connection pooler such as PgBouncer does: point serve at the PostgreSQL server itself"
        try:
            with open_database(self.url, self.schema_name) as db:
                setting = db.query("SHOW default_transaction_read_only")[0][0]
        except StorageError as exc:
            cause = exc.__cause__
            if isinstance(cause, psycopg.OperationalError) and "unsupported startup parameter" in str(cause):
                raise StorageError(f"{self.describe()} refuses {how}; {advice}") from exc
            raise
        if setting != "on":
            raise StorageError(
                f"{self.describe()} dropped {how} (default_transaction_read_only is {setting}); {advice}"
            )

    def _database(self) -> Database:
        return open_database(self.url, self.schema_name)

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

    def tables(self) -> Tables:
        return self._reachable(super().tables)

    def _look(self, table: str, known: _Layout | None) -> tuple[_Layout, TableInfo | None]:
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
    "RECHECK_AFTER",
    "HotJournalError",
    "PostgresSource",
    "Source",
    "SqliteSource",
    "Tables",
    "open_source",
]
