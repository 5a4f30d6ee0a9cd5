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
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote as uri_quote

from agno_storage import urls
from agno_storage.backends import sqlite_ddl
from agno_storage.backends.base import BaseStorage
from agno_storage.backends.sqlite import SqliteStorage
from agno_storage.backends.sqlite_errors import text_or_bytes
from agno_storage.errors import StorageError
from agno_storage.models import Mode
from agno_storage.ops.errors import DatabaseMissingError
from agno_storage.schema import quote

#: Rows fetched per round trip when streaming a table.
FETCH_SIZE = 1000


def sqlite_path(target: urls.SqliteTarget) -> str:
    """The absolute path of a SQLite target; DatabaseMissingError if there is no such file."""
    if target.path is None:
        raise StorageError("an in-memory database starts empty; give a file")
    path = Path(target.path).expanduser()
    if not path.is_file():
        raise DatabaseMissingError(f"no database file {target.path!r}")
    return str(path.resolve())


def connect_readonly(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """A read-only connection to the SQLite file at ``path`` (``mode=ro``; the path is URI-escaped).

    Never writes the file nor changes its journal mode; works on a read-only
    file or folder. Autocommit: each statement is its own snapshot.
    """
    uri = "file:" + uri_quote(os.path.abspath(os.fspath(path))) + "?mode=ro"
    try:
        return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open {os.fspath(path)!r} read-only: {exc}") from exc


class Database:
    """One raw connection: a SQLite file read-only, or a PostgreSQL database (read-only transactions).

    Not thread-safe. ``schema`` (PostgreSQL) is the schema the tables are
    looked for in; ``None`` is the connection's current schema.
    """

    def __init__(self, engine: str, conn: Any, *, schema: str | None = None, location: str = "") -> None:
        self.engine = engine
        self.conn = conn
        self.schema = schema
        self.location = location
        self.placeholder = "?" if engine == "sqlite" else "%s"

    @property
    def is_sqlite(self) -> bool:
        return self.engine == "sqlite"

    def qualified(self, table: str) -> str:
        """``table`` quoted, with its schema on PostgreSQL."""
        if self.schema and not self.is_sqlite:
            return f"{quote(self.schema)}.{quote(table)}"
        return quote(table)

    def as_text(self, column: str) -> str:
        """A select-list item giving a JSON column's stored text."""
        if self.is_sqlite:
            return quote(column)
        return f"{quote(column)}::text"

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            rows: list[tuple[Any, ...]] = self.conn.execute(statement, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"SQLite error on {self.location}: {exc}") from exc
        return rows

    def stream(self, statement: str, params: Sequence[Any] = (), size: int = FETCH_SIZE) -> Iterator[list[Any]]:
        """The rows of ``statement`` in lists of at most ``size``; memory stays flat (a server-side cursor on PostgreSQL)."""
        if self.is_sqlite:
            try:
                cursor = self.conn.execute(statement, params)
                while rows := cursor.fetchmany(size):
                    yield rows
            except sqlite3.Error as exc:
                raise StorageError(f"SQLite error on {self.location}: {exc}") from exc
            return
        with self.conn.cursor(name="agno_storage_stream") as cursor:
            cursor.itersize = size
            cursor.execute(statement, params)
            while rows := cursor.fetchmany(size):
                yield rows

    def table_names(self) -> list[str]:
        """Every table of the file, or of the schema, by name."""
        if self.is_sqlite:
            rows = self.query(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        else:
            rows = self.query(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = "
                "COALESCE(%s, current_schema()) AND table_type = 'BASE TABLE' ORDER BY table_name",
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
            self.conn.execute("ROLLBACK")  # it only read: ending it so also ends a cursor left unread

    def close(self) -> None:
        if not self.is_sqlite:
            self.conn.rollback()  # a read-only transaction: nothing to keep
        self.conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_database(url: str, schema: str | None = "ai", *, lenient_text: bool = False) -> Database:
    """A :class:`Database` for ``url`` (a SQLite path or URL, or a PostgreSQL URL), for reading.

    SQLite files are opened read-only and must exist (DatabaseMissingError).
    PostgreSQL connections run read-only transactions. ``lenient_text`` hands
    back SQLite text that is not UTF-8 as bytes instead of failing the statement.
    """
    target = urls.parse_location(url)
    if isinstance(target, urls.SqliteTarget):
        path = sqlite_path(target)
        conn = connect_readonly(path)
        if lenient_text:
            conn.text_factory = text_or_bytes
        return Database("sqlite", conn, location=repr(target.path))
    try:
        import psycopg
    except ImportError as exc:
        raise StorageError(f"PostgreSQL needs psycopg: pip install 'agno-session-storage[postgres]' ({exc})") from exc
    try:
        pg = psycopg.connect(target.conninfo, autocommit=False, connect_timeout=10, client_encoding="utf8")
    except psycopg.Error as exc:
        raise StorageError(f"cannot connect to PostgreSQL: {exc}") from exc
    pg.read_only = True
    # One snapshot for the connection's transaction: an export's sessions and runs, a copy's, agree.
    pg.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    return Database("postgres", pg, schema=schema, location="PostgreSQL")


def open_store(url: str, table: str, mode: Mode, schema: str | None = "ai") -> BaseStorage:
    """The store of ``table`` for writing (owner changes allowed: the operations restore and move data)."""
    target = urls.parse_location(url)
    if isinstance(target, urls.SqliteTarget):
        if target.path is None:
            raise StorageError("an in-memory database starts empty; give a file")
        return SqliteStorage(table, db_file=target.path, mode=mode, allow_owner_change=True)
    return urls.open_storage(url, table_name=table, mode=mode, schema=schema, allow_owner_change=True)


def store_qualified(store: BaseStorage, table: str) -> str:
    """``table`` quoted for ``store``'s connection, in the store's schema on PostgreSQL."""
    schema_name = getattr(store, "schema", None)
    if isinstance(schema_name, str) and schema_name:
        return f"{quote(schema_name)}.{quote(table)}"
    return quote(table)


__all__ = [
    "FETCH_SIZE",
    "Database",
    "connect_readonly",
    "open_database",
    "open_store",
    "sqlite_path",
    "store_qualified",
]
