"""Raw connections for the operations: a SQLite file opened read-only, or a PostgreSQL schema.

The operations read rows as they are stored (JSON columns as their text, not
decoded), which the store's API does not offer; they open their own
connection here. Writes go through the store (:func:`open_store`). A SQLite
file is opened with ``mode=ro``: nothing this module does changes its bytes
or its journal mode, and a read-only file or folder can be read.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from agno_storage import urls
from agno_storage.backends import sqlite_ddl, sqlite_errors
from agno_storage.backends.base import BaseStorage
from agno_storage.backends.sqlite import SqliteStorage
from agno_storage.backends.sqlite_errors import text_or_bytes
from agno_storage.backends.sqlite_files import read_only_uri, refuse_non_file
from agno_storage.errors import BusyError, DatabaseCorruptError, DiskFullError, StorageError
from agno_storage.models import Mode
from agno_storage.ops.conninfo import check_conninfo, scrubbed
from agno_storage.ops.errors import DatabaseMissingError, HotJournalError, OutputIsSourceError
from agno_storage.schema import Engine, quote, table_key

#: Rows fetched per round trip when streaming a table.
FETCH_SIZE = 1000
#: The files SQLite keeps beside a database (``PATH-wal`` ...): writing one of them writes the database.
SIDE_SUFFIXES = ("-wal", "-shm", "-journal")
#: SQLITE_READONLY_ROLLBACK: a read-only connection found a hot journal it may not roll back.
_READONLY_ROLLBACK = 776


def sqlite_path(target: urls.SqliteTarget) -> str:
    """The absolute path of a SQLite target; DatabaseMissingError if there is no such file, InvalidInputError if
    it is not a regular file (a directory, a named pipe, a device)."""
    if target.path is None:
        raise StorageError("an in-memory database starts empty; give a file")
    path = Path(target.path).expanduser()
    refuse_non_file(path)
    if not path.is_file():
        raise DatabaseMissingError(f"no database file {target.path!r}")
    return str(path.resolve())


def is_part_of(path: str | os.PathLike[str], database: str | os.PathLike[str]) -> bool:
    """Whether writing ``path`` would write the SQLite database file ``database``, or reading one the other.

    True for the file itself by any name (another path, a symbolic or hard
    link) and for the files SQLite keeps beside it (``-wal``, ``-shm``,
    ``-journal``), whether or not they are there now, also through a link
    (a dangling one names the file it would make); and the other way round,
    when ``database`` is one of the files SQLite keeps beside ``path``: a
    database written at ``path`` (copy's, import's, backup's) takes such a
    file for its own, and writes or removes it. A name that is not there
    yet is compared by its absolute path, links resolved.
    """
    return _is_beside(path, database) or _is_beside(database, path)


def refuse_source(path: str | os.PathLike[str], database: str | os.PathLike[str], what: str) -> None:
    """Raise OutputIsSourceError if ``path`` (``what`` a command writes or reads) and ``database`` share a file
    (:func:`is_part_of`)."""
    if _is_beside(path, database):
        raise OutputIsSourceError(
            f"{what} {os.fspath(path)!r} is the database {os.fspath(database)!r} itself or one of its files "
            "(-wal, -shm, -journal): one would be written over the other; choose another file",
            path=os.fspath(path),
        )
    if _is_beside(database, path):
        raise OutputIsSourceError(
            f"the database {os.fspath(database)!r} is named as one of the files SQLite keeps beside {what} "
            f"{os.fspath(path)!r} (-wal, -shm, -journal): SQLite would write or remove it with a database there; "
            "choose another file",
            path=os.fspath(path),
        )


def _is_beside(path: str | os.PathLike[str], database: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is the file ``database`` by any name, or one of the files SQLite keeps beside it."""
    given = Path(path).expanduser()
    owner = Path(database).expanduser()
    names = (given, Path(os.path.realpath(given)))
    owners = (owner, Path(os.path.realpath(owner)))
    # The database ``path`` would be a side file of, by its name or its link's target's ...
    stems = [
        name.with_name(name.name.removesuffix(suffix))
        for name in names
        for suffix in SIDE_SUFFIXES
        if name.name.endswith(suffix) and name.name != suffix
    ]
    # ... and the side files of the database, by its name or its link's target's (a hard link to one of them).
    sides = [name.with_name(name.name + suffix) for name in owners for suffix in SIDE_SUFFIXES]
    return any(_same_file(name, owner) for name in (*names, *stems)) or any(_same_file(given, side) for side in sides)


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file: the same file where both are there, else the same absolute name."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one is not there (yet): the file it would be is the one its name resolves to
        return os.path.realpath(a) == os.path.realpath(b)


def hot_journal_error(
    path: str | os.PathLike[str], exc: BaseException, table: str | None = None
) -> HotJournalError | None:
    """The error for a file a read-only connection cannot read because of a hot journal, if ``exc`` (or an
    error it was raised from) is that; ``None`` otherwise. The one wording of it: ops and the web server."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, sqlite3.Error):
        cause = cause.__cause__
    if getattr(cause, "sqlite_errorcode", None) != _READONLY_ROLLBACK:
        return None
    name = os.fspath(path)
    return HotJournalError(
        f"{name!r} has a hot journal ({name}-journal): a writer stopped in the middle of a transaction, and "
        "only a read-write connection may roll it back (not a read-only one such as agno-storage doctor's "
        f"or serve's). Open the file read-write once (e.g. sqlite3 {shlex.quote(name)} 'PRAGMA quick_check', "
        "or any write by the program that writes it) and try again",
        path=name,
        table=table,
    )


def connect_readonly(path: str | os.PathLike[str], timeout: float | None = None) -> sqlite3.Connection:
    """A read-only connection to the SQLite file at ``path`` (``mode=ro``; the path is URI-escaped).

    Never writes the file nor changes its journal mode; works on a read-only
    file or folder. Autocommit: each statement is its own snapshot.
    ``timeout``: seconds to wait for a lock (a URL's ``?timeout=``), or sqlite3's 5.
    """
    uri = read_only_uri(path)
    try:
        return sqlite3.connect(
            uri, uri=True, isolation_level=None, check_same_thread=False, timeout=5.0 if timeout is None else timeout
        )
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open {os.fspath(path)!r} read-only: {exc}") from exc


def roll_back_hot_journal(path: str | os.PathLike[str], timeout: float | None = None) -> None:
    """Let SQLite roll back a hot journal of the file at ``path`` (a read-write read); for commands that write it.

    Does nothing when there is no ``-journal`` file. ``timeout``: seconds to
    wait for another connection's lock (a URL's ``?timeout=``), or 5 to find
    the journal and 30 to roll it back. Raises StorageError if the file
    cannot be opened read-write.
    """
    if not os.path.exists(os.fspath(path) + "-journal") or not _hot_journal(path, timeout):
        return
    try:
        conn = sqlite3.connect(os.fspath(path), isolation_level=None, timeout=30 if timeout is None else timeout)
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StorageError(f"cannot roll back the hot journal of {os.fspath(path)!r}: {exc}") from exc


def _hot_journal(path: str | os.PathLike[str], timeout: float | None) -> bool:
    """Whether a read-only read of the file finds a hot journal (SQLite's proof: a live writer's is not one)."""
    try:
        conn = connect_readonly(path, timeout)
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchall()
        finally:
            conn.close()
    except (StorageError, sqlite3.Error) as exc:
        return hot_journal_error(path, exc) is not None
    return False


@attrs.frozen
class TableIdentity:
    """What a PostgreSQL server says a table is: :meth:`Database.table_identity`."""

    #: ``pg_postmaster_start_time()``: one server's run.
    started: Any
    #: ``pg_control_system()``'s system identifier, shared by a cluster, its standbys and the servers made
    #: from its base backups; ``None`` where the role may not run that function.
    system: int | None
    #: The database's oid and the table's.
    database: int
    table: int
    #: ``pg_is_in_recovery()``: a standby (or a server restored from a backup and not yet promoted).
    in_recovery: bool

    def is_same(self, other: TableIdentity) -> bool:
        """Whether the two are one table: upserting one's rows into the other writes a table back over itself.

        The same oids on the same server (the same start time); or the same
        oids and system identifier with either side in recovery: a standby
        replays its primary's writes, so its table is the primary's as of a
        moment ago. A promoted standby, like a server started from a base
        backup without recovery, writes on its own: out of recovery, it is
        a database of its own, whatever system identifier it shares. Without
        both system identifiers a standby cannot be told from an unrelated
        server whose oids happen to match (a new cluster's first database
        and table get the same oids), so only the start time counts then.
        """
        if (self.database, self.table) != (other.database, other.table):
            return False
        if self.system is not None and other.system is not None:
            if self.system != other.system:
                return False
            if self.in_recovery or other.in_recovery:
                return True
        return bool(self.started == other.started)


class Database:
    """One raw connection: a SQLite file read-only, or a PostgreSQL database (read-only transactions).

    Not thread-safe. ``schema`` (PostgreSQL) is the schema the tables are
    looked for in; ``None`` is the connection's current schema.
    """

    def __init__(
        self, engine: Engine, conn: Any, *, schema: str | None = None, location: str = "", path: str | None = None
    ) -> None:
        self.engine = engine
        self.conn = conn
        self.schema = schema
        self.location = location
        #: SQLite: the file's absolute path.
        self.path = path
        self.placeholder = "?" if engine == "sqlite" else "%s"
        #: What the driver raises: turned into StorageErrors by :meth:`query` and :meth:`stream`.
        self._driver_error: type[Exception] = sqlite3.Error
        if engine != "sqlite":
            import psycopg  # only for a PostgreSQL connection

            self._driver_error = psycopg.Error

    def same_table(self, a: str, b: str) -> bool:
        """Whether table names ``a`` and ``b`` name one table here (:func:`~agno_storage.schema.table_key`)."""
        return table_key(a, self.engine) == table_key(b, self.engine)

    def table_identity(self, table: str) -> TableIdentity | None:
        """PostgreSQL: what ``table`` (in :attr:`schema`, else where the search path finds it) is on the server.

        Two identities are one table when :meth:`TableIdentity.is_same` says
        so, however the URLs spell host, port and database. ``None`` when
        there is no such table or this connection may not look it up (nor
        then write it). SQLite has :meth:`same_table` and the file's path.
        """
        import psycopg  # only for a PostgreSQL connection

        # pg_control_system() is only called where it may be, in a statement of its own: the server checks the
        # privilege of every function of a statement before running it, also of a call a CASE would never reach.
        statement = (
            "SELECT pg_postmaster_start_time(), (SELECT oid FROM pg_database WHERE datname = current_database()), "
            "to_regclass(%s)::oid, pg_is_in_recovery(), has_function_privilege('pg_control_system()', 'EXECUTE')"
        )
        try:
            with self.conn.transaction():  # a savepoint: a refused lookup leaves the snapshot usable
                row = self.conn.execute(statement, (self.name(table),)).fetchone()
        except psycopg.Error:
            return None
        if row is None or row[2] is None:
            return None
        system = None
        if row[4]:
            try:
                with self.conn.transaction():  # a server that refuses it anyway (a managed service's): no identifier
                    system = self.conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()[0]
            except psycopg.Error:
                system = None
        started, database, oid, in_recovery, _ = row
        return TableIdentity(
            started=started, system=system, database=database, table=oid, in_recovery=bool(in_recovery)
        )

    @property
    def is_sqlite(self) -> bool:
        return self.engine == "sqlite"

    def name(self, table: str) -> str:
        """``table`` quoted, with its schema on PostgreSQL: as a value (``to_regclass(%s)``) or in a message."""
        if self.schema and not self.is_sqlite:
            return f"{quote(self.schema)}.{quote(table)}"
        return quote(table)

    def qualified(self, table: str) -> str:
        """:meth:`name` for the text of a statement :meth:`query` or :meth:`stream` runs.

        On PostgreSQL a ``%`` in it is doubled: psycopg reads the text of a
        statement run with parameters (these always pass some, if only
        ``()``) for ``%s`` placeholders, and another program may name a
        table ``old_100%``.
        """
        return self.name(table) if self.is_sqlite else for_psycopg(self.name(table))

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """A block whose failed statement leaves the connection's transaction usable for the next one.

        On PostgreSQL a savepoint (an error aborts the whole transaction otherwise); SQLite needs none.
        """
        if self.is_sqlite:
            yield
            return
        with self.conn.transaction():
            yield

    def as_text(self, column: str) -> str:
        """A select-list item giving a JSON column's stored text."""
        if self.is_sqlite:
            return quote(column)
        return f"{quote(column)}::text"

    def query(self, statement: str, params: Sequence[Any] = (), *, table: str | None = None) -> list[tuple[Any, ...]]:
        """The rows of ``statement``; a driver's error as a StorageError (``table``, the table it reads, named in it).

        On PostgreSQL the typed errors the store raises
        (:func:`agno_storage.backends.pg_conn.translate`): ConnectionLostError,
        BusyError, ...; a role's missing privilege is a StorageError saying
        "permission denied".
        """
        try:
            rows: list[tuple[Any, ...]] = self.conn.execute(statement, params).fetchall()
        except self._driver_error as exc:
            raise self._error(exc, table) from exc
        return rows

    def _error(self, exc: Exception, table: str | None) -> StorageError:
        """The StorageError for the driver's error ``exc``."""
        if self.is_sqlite:
            hot = hot_journal_error(self.path, exc, table) if self.path is not None else None
            if hot is not None:
                return hot
            typed = (
                sqlite_errors.translate(exc, table, self.path, read_only=True)
                if isinstance(exc, sqlite3.Error)
                else None
            )
            if isinstance(typed, BusyError):
                return BusyError(f"{self.location} stayed locked past the busy timeout: {exc}", table=table)
            if isinstance(typed, DatabaseCorruptError | DiskFullError):
                # A damaged file, or a full disk (or the file-size limit) for a sort's temporary file: the
                # same type the store gives, with the location named.
                return type(typed)(f"{self.location}: {typed}", table=table)
            return StorageError(f"SQLite error on {self.location}: {exc}", table=table)
        from agno_storage.backends.pg_conn import translate  # psycopg: only for a PostgreSQL connection

        error = translate(exc, table or "")
        if table is None and type(error) is StorageError:  # no table to name: translate's words would name ''
            return StorageError(f"PostgreSQL error: {exc}")
        return error

    def stream(
        self, statement: str, params: Sequence[Any] = (), size: int = FETCH_SIZE, *, table: str | None = None
    ) -> Iterator[list[Any]]:
        """The rows of ``statement`` in lists of at most ``size``; memory stays flat (a server-side cursor on PostgreSQL).

        Errors as :meth:`query` raises them.
        """
        try:
            if self.is_sqlite:
                cursor = self.conn.execute(statement, params)
                while rows := cursor.fetchmany(size):
                    yield rows
                return
            with self.conn.cursor(name="agno_storage_stream") as named:
                named.itersize = size
                named.execute(statement, params)
                while rows := named.fetchmany(size):
                    yield rows
        except self._driver_error as exc:
            raise self._error(exc, table) from exc

    def table_names(self) -> list[str]:
        """Every table of the file, or of the schema, by name.

        On PostgreSQL also the tables this role may not read (the catalogue,
        not ``information_schema``, which leaves them out): reading one is
        then an error saying so, not a schema that looks empty.
        """
        if self.is_sqlite:
            rows = self.query(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        else:
            # relkind r and p: information_schema's BASE TABLEs (plain and partitioned tables).
            rows = self.query(
                "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = COALESCE(%s, current_schema()) AND c.relkind IN ('r', 'p') ORDER BY c.relname",
                (self.schema,),
            )
        return [r[0] for r in rows]

    def layout(self, table: str) -> tuple[list[str], list[str], str] | None:
        """(column names, index names, CREATE TABLE text) of ``table``, or ``None`` if it is not there.

        PostgreSQL keeps no CREATE TABLE text (``''``); its index names lose
        the schema SQLAlchemy puts in them, as the store reads them.
        """
        if self.is_sqlite:
            return sqlite_ddl.table_layout(self.query, table)
        from agno_storage.backends import postgres_ddl  # psycopg: only for a PostgreSQL connection

        return postgres_ddl.table_layout(self.query, table, self.schema)

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Statements run inside read one snapshot of the database.

        SQLite: a read transaction (the connection is otherwise autocommit,
        a snapshot per statement). PostgreSQL: its connections read one
        already (a REPEATABLE READ, read-only transaction).
        """
        if not self.is_sqlite or self.conn.in_transaction:
            yield
            return
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            # It only read: ending it so also ends a cursor left unread. SQLite may have ended it already,
            # after an error (then a ROLLBACK would fail and hide that error).
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")

    def close(self) -> None:
        """Close the connection; never raises for a PostgreSQL connection the server already ended."""
        if not self.is_sqlite:
            import psycopg  # only for a PostgreSQL connection

            # A read-only transaction: nothing to keep, and on a lost connection nothing to roll back (the error
            # that lost it is the one to see).
            with contextlib.suppress(psycopg.Error):
                self.conn.rollback()
        self.conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_database(
    url: str, schema: str | None = "ai", *, lenient_text: bool = False, timeout: float | None = None
) -> Database:
    """A :class:`Database` for ``url`` (a SQLite path or URL, or a PostgreSQL URL), for reading.

    SQLite files are opened read-only and must exist (DatabaseMissingError).
    PostgreSQL connections run read-only transactions. ``lenient_text`` hands
    back SQLite text that is not UTF-8 as bytes instead of failing the statement.
    ``timeout``: seconds a SQLite connection waits for a lock, in place of the URL's ``?timeout=``.
    """
    target = urls.parse_location(url)
    if isinstance(target, urls.SqliteTarget):
        path = sqlite_path(target)
        conn = connect_readonly(path, target.timeout if timeout is None else timeout)
        if lenient_text:
            conn.text_factory = text_or_bytes
        return Database("sqlite", conn, location=repr(target.path), path=path)
    try:
        import psycopg
    except ImportError as exc:
        raise StorageError(f"PostgreSQL needs psycopg: pip install 'agno-session-storage[postgres]' ({exc})") from exc
    check_conninfo(url)
    try:
        pg = psycopg.connect(
            target.conninfo, autocommit=False, connect_timeout=10, client_encoding="utf8", prepare_threshold=None
        )
    except psycopg.Error as exc:
        raise StorageError(f"cannot connect to PostgreSQL: {scrubbed(str(exc), url)}") from exc
    pg.read_only = True
    # One snapshot for the connection's transaction: an export's sessions and runs, a copy's, agree.
    pg.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    return Database("postgres", pg, schema=schema, location="PostgreSQL")


def open_store(url: str, table: str, mode: Mode, schema: str | None = "ai", *, read_only: bool = False) -> BaseStorage:
    """The store of ``table`` for writing (owner changes allowed: the operations restore and move data).

    ``read_only``: a SQLite file opened ``mode=ro``, never changed (a PostgreSQL store only reads until it writes):
    the refusals of a store that would write, for an operation that does not."""
    target = urls.parse_location(url)
    if isinstance(target, urls.SqliteTarget):
        if target.path is None:
            raise StorageError("an in-memory database starts empty; give a file")
        return SqliteStorage(
            table,
            db_file=target.path,
            mode=mode,
            allow_owner_change=True,
            busy_timeout=target.timeout,
            read_only=read_only,
        )
    return urls.open_storage(url, table_name=table, mode=mode, schema=schema, allow_owner_change=True)


def store_qualified(store: BaseStorage, table: str) -> str:
    """``table`` quoted for a statement (run with parameters) on ``store``'s connection, in the store's schema on
    PostgreSQL, where a ``%`` in it is doubled (:meth:`Database.qualified`)."""
    schema_name = getattr(store, "schema", None)
    if isinstance(schema_name, str) and schema_name:
        name = f"{quote(schema_name)}.{quote(table)}"
    else:
        name = quote(table)
    return name if store.statements.placeholder == "?" else for_psycopg(name)


def for_psycopg(text: str) -> str:
    """``text`` (quoted identifiers) as it stands in a statement psycopg runs with parameters: each ``%`` doubled."""
    return text.replace("%", "%%")


__all__ = [
    "FETCH_SIZE",
    "SIDE_SUFFIXES",
    "Database",
    "TableIdentity",
    "check_conninfo",
    "connect_readonly",
    "for_psycopg",
    "hot_journal_error",
    "is_part_of",
    "open_database",
    "open_store",
    "refuse_source",
    "roll_back_hot_journal",
    "scrubbed",
    "sqlite_path",
    "store_qualified",
]
