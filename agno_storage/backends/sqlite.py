"""The SQLite backend: one sessions table in a file (or in memory).

File databases are switched to WAL mode (once the store's table is there or
being made) and use a busy timeout; every write runs
in ``BEGIN IMMEDIATE`` so writers queue on the lock instead of failing
half-way. Connections are per thread and re-made in a forked child.
"""

from __future__ import annotations

import enum
import itertools
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from agno_storage import schema
from agno_storage.backends.base import BATCH_SIZE, EQUALS, BaseStorage, filter_condition, filter_kind
from agno_storage.errors import BusyError, InvalidInputError, StorageError
from agno_storage.models import Mode
from agno_storage.schema import TableShape, quote

_JSON_KINDS = (schema.ColumnKind.JSON, schema.ColumnKind.JSON_ANY)
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6


class Synchronous(enum.StrEnum):
    """How hard SQLite works to keep a commit through power loss."""

    #: fsync the WAL on every commit: a committed session survives power loss. The default.
    FULL = "FULL"
    #: fsync only at checkpoints: faster commits; the last commits before a power
    #: loss (not a process crash) may be lost. The file is never corrupted.
    NORMAL = "NORMAL"


class _Handle:
    """A connection, the depth of transactions open on it, and whether it has switched the file to WAL."""

    __slots__ = ("conn", "depth", "pid", "thread", "wal")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.depth = 0
        self.pid = os.getpid()
        self.thread = threading.current_thread()
        self.wal = False


class SqliteStorage(BaseStorage):
    """A sessions table of one mode in a SQLite database.

    ``db_url`` (``sqlite:///relative.db``, ``sqlite:////absolute.db``) wins over
    ``db_file``; with neither the database is in memory and private to this
    object. Safe to share between threads; a forked child opens its own
    connections. ``busy_timeout`` is in seconds; a lock held longer raises
    :class:`BusyError`. ``recency_indexes`` adds two indexes beside the Go
    port's when this object creates the table (see docs/benchmarks.md): they
    make "newest sessions of a user / an entity" an index walk, at a small cost
    per write. The store switches the file to WAL mode, persistently, when it
    opens a table of its mode, or before the first write creates the table:
    a refused open, or reads of a table that is not there, leave the file as
    it was. With ``auto_upgrade_schema`` an old table is upgraded before the
    constructor returns.
    """

    def __init__(
        self,
        table_name: str,
        db_url: str | None = None,
        db_file: str | os.PathLike[str] | None = None,
        mode: Mode | str | None = Mode.AGENT,
        *,
        auto_upgrade_schema: bool = False,
        allow_owner_change: bool = False,
        busy_timeout: float = 10.0,
        synchronous: Synchronous | str = Synchronous.FULL,
        recency_indexes: bool = True,
    ) -> None:
        super().__init__(
            table_name, mode, auto_upgrade_schema=auto_upgrade_schema, allow_owner_change=allow_owner_change
        )
        if (
            isinstance(busy_timeout, bool)
            or not isinstance(busy_timeout, (int, float))
            or not 0 <= busy_timeout < 2**31 / 1000
        ):
            raise InvalidInputError(f"busy_timeout must be seconds >= 0, got {busy_timeout!r}")
        try:
            self.synchronous = Synchronous(str(synchronous).upper())
        except ValueError:
            raise InvalidInputError(f"synchronous must be FULL or NORMAL, got {synchronous!r}") from None
        self.busy_timeout = float(busy_timeout)
        self.recency_indexes = recency_indexes
        self.db_path = _resolve_path(db_url, db_file)
        self._local = threading.local()
        self._handles: list[_Handle] = []
        self._handles_lock = threading.Lock()
        self._memory: _Handle | None = None
        self._memory_lock = threading.RLock()
        self._build_sql()
        # The journal mode is a write to the file too: it waits until the
        # table is known to be this mode's, or is about to be created.
        self._wal_allowed = False
        try:
            self._check_on_open()
        except BaseException:
            self.close()
            raise

    def _fit_to_write(self) -> None:
        if not self._wal_allowed:
            self._wal_allowed = True
            if self.db_path is not None:
                self._thread_handle()  # switches this thread's connection now, outside a transaction

    def _build_sql(self) -> None:
        t = quote(self.table_name)
        columns = schema.mode_columns(self.mode)
        names = [c.name for c in columns]
        select_list = schema.select_list(self.mode)
        updates = ", ".join(f"{quote(n)} = excluded.{quote(n)}" for n in names if n not in ("session_id", "created_at"))
        placeholders = ", ".join("?" for _ in names)
        # Quoted identifiers only; every value is bound.
        upsert = f'INSERT INTO {t} ({select_list}) VALUES ({placeholders}) ON CONFLICT ("session_id") DO UPDATE SET {updates}'  # noqa: S608
        if not self.allow_owner_change:
            # The update happens only for the owner or an unowned row; a refused
            # row changes nothing and returns nothing.
            upsert += f' WHERE {t}."user_id" IS NULL OR {t}."user_id" = \'\' OR {t}."user_id" = excluded."user_id"'
        self._sql_upsert = upsert
        self._sql_upsert_returning = upsert + ' RETURNING "created_at", "updated_at"'
        # Columns are qualified with the table everywhere they are read: SQLite
        # takes an unknown bare "name" for a string literal, qualified ones fail.
        # JSON comes back as its UTF-8 bytes: no str is built only to be re-encoded.
        qualified = ", ".join(
            f"CAST({self._col(c.name)} AS BLOB)" if c.kind in _JSON_KINDS else self._col(c.name) for c in columns
        )
        self._sql_select = f"SELECT {qualified} FROM {t}"  # noqa: S608 - quoted identifiers only
        self._sql_select_ids = f"SELECT {self._col('session_id')} FROM {t}"  # noqa: S608 - quoted identifiers only
        self._sql_order = f" ORDER BY {self._col('created_at')} DESC, {self._col('session_id')}"
        self._placeholder = "?"
        self._filter_columns = (
            self._col("session_id"),
            self._col("user_id"),
            self._col(schema.ENTITY_COLUMN[self.mode]),
        )
        self._sql_count = f"SELECT COUNT(*) FROM {t}"  # noqa: S608 - quoted identifiers only

    def _col(self, name: str) -> str:
        return f"{quote(self.table_name)}.{quote(name)}"

    # --- connections -------------------------------------------------------

    def _open(self) -> _Handle:
        path = ":memory:" if self.db_path is None else self.db_path
        try:
            conn = sqlite3.connect(path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise _translate(exc, self.table_name) from exc
        try:
            conn.execute(f"PRAGMA synchronous = {self.synchronous.value}")
        except sqlite3.Error as exc:
            conn.close()
            raise _translate(exc, self.table_name) from exc
        handle = _Handle(conn)
        pid = os.getpid()
        with self._handles_lock:
            # Threads that ended leave their connections behind; close them here
            # so a thread-per-request server does not run out of descriptors.
            ended = [h for h in self._handles if h.pid == pid and not h.thread.is_alive() and h is not self._memory]
            self._handles = [h for h in self._handles if h not in ended]
            self._handles.append(handle)
        for old in ended:
            old.conn.close()
        return handle

    def _use_wal(self, handle: _Handle) -> None:
        """Switch the file to WAL (persistent) through ``handle``; raise StorageError if SQLite refuses.

        Only between transactions: SQLite cannot change the journal mode in one.
        """
        try:
            journal = handle.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.Error as exc:
            raise _translate(exc, self.table_name) from exc
        if str(journal).lower() != "wal":
            raise StorageError(
                f"cannot use WAL journal mode on {self.db_path!r} (got {journal!r})", table=self.table_name
            )
        handle.wal = True

    def _memory_handle(self) -> _Handle:
        if self._memory is None or self._memory.pid != os.getpid():
            self._memory = self._open()
        return self._memory

    def _thread_handle(self) -> _Handle:
        handle: _Handle | None = getattr(self._local, "handle", None)
        if handle is None or handle.pid != os.getpid():
            handle = self._open()
            self._local.handle = handle
        if self._wal_allowed and not handle.wal and handle.depth == 0:
            self._use_wal(handle)
        return handle

    def _query(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """Run one read statement outside any write transaction (it is its own snapshot)."""
        try:
            if self.db_path is None:
                with self._memory_lock:
                    return self._memory_handle().conn.execute(sql, params).fetchall()
            return self._thread_handle().conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise _translate(exc, self.table_name) from exc

    def transaction(self) -> _Transaction:
        """A write transaction (``BEGIN IMMEDIATE``); nested use opens a savepoint.

        Commits only if the block finishes; any exception rolls it back and
        propagates. Waiting longer than busy_timeout for the lock raises
        BusyError. Use as ``with store.transaction() as conn:``.
        """
        return _Transaction(self)

    def close(self) -> None:
        """Close every connection this object opened in this process.

        The object stays usable: the next call opens a new connection (an
        in-memory database starts empty again).
        """
        pid = os.getpid()
        with self._handles_lock:
            handles, self._handles = self._handles, []
        for handle in handles:
            # A connection inherited over fork belongs to the parent: closing it
            # here could checkpoint or delete the WAL under the parent's feet.
            if handle.pid == pid:
                handle.conn.close()
        self._local = threading.local()
        self._memory = None
        self._forget_shape()

    # --- primitives --------------------------------------------------------

    def _table_layout(self) -> tuple[list[str], list[str], str] | None:
        columns = [r[0] for r in self._query("SELECT name FROM pragma_table_info(?)", (self.table_name,))]
        if not columns:
            return None
        indexes: list[str] = []
        table_sql = ""
        for kind, name, sql in self._query(
            "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = ? COLLATE NOCASE", (self.table_name,)
        ):
            if kind == "index":
                indexes.append(name)
            elif kind == "table":
                table_sql = sql or ""
        return columns, indexes, table_sql

    def _create_table(self) -> None:
        with self.transaction() as conn:
            if self._table_layout() is not None:
                return  # made by someone else meanwhile: leave its DDL and indexes alone
            conn.execute(schema.sqlite_create_table(self.table_name, self.mode))
            for statement in schema.sqlite_create_indexes(self.table_name, self.mode):
                conn.execute(statement)
            if self.recency_indexes:
                for statement in schema.sqlite_create_recency_indexes(self.table_name, self.mode):
                    conn.execute(statement)

    def create_recency_indexes(self) -> None:
        """Add the recency indexes to an existing table (one made by Go or agno, say).

        Idempotent. The table's own DDL is unchanged; Go and agno keep reading
        and writing it.
        """
        self._checked_shape(create=True)
        with self.transaction() as conn:
            for statement in schema.sqlite_create_recency_indexes(self.table_name, self.mode):
                conn.execute(statement)

    def _apply_migrations(self) -> TableShape | None:
        with self.transaction() as conn:
            shape = self._inspect()
            if shape is None:
                return None
            for statement in schema.sqlite_upgrade_statements(self.table_name, shape):
                conn.execute(statement)
            return self._inspect()

    def _write(self, rows: Iterable[list[Any]], *, returning: bool) -> list[tuple[int, int]] | int:
        """Upsert ``rows`` (mode column order) in one transaction.

        With ``returning``, return each row's stored (created_at, updated_at);
        otherwise the number of rows written. Raises OwnershipError, rolling
        everything back, if any row's session_id belongs to another user. A
        table dropped since it was checked is made again and the write retried
        once: the first statement is where that shows, so nothing is lost.
        """
        iterator = iter(rows)
        first = list(itertools.islice(iterator, BATCH_SIZE))
        try:
            return self._write_once(first, iterator, returning)
        except StorageError as exc:
            if not self._vanished(exc):
                raise
        self._checked_shape(create=True)
        return self._write_once(first, iterator, returning)

    def _write_once(
        self, first: list[list[Any]], rest: Iterator[list[Any]], returning: bool
    ) -> list[tuple[int, int]] | int:
        if returning:
            now = int(time.time())
            out: list[tuple[int, int]] = []
            with self.transaction() as conn:
                for params in first:
                    got = conn.execute(self._sql_upsert_returning, self._stamp(params, now)).fetchall()
                    if not got:
                        raise self._ownership_error(params)
                    out.append((got[0][0], got[0][1]))
            return out
        count = 0
        with self.transaction() as conn:
            batch = first
            while batch:
                now = int(time.time())
                params_list = [self._stamp(row, now) for row in batch]
                cursor = conn.executemany(self._sql_upsert, params_list)
                if cursor.rowcount != len(params_list):
                    self._raise_refused(
                        params_list, lambda params: bool(conn.execute(self._sql_upsert_returning, params).fetchall())
                    )
                count += len(params_list)
                batch = list(itertools.islice(rest, BATCH_SIZE))
        return count

    def _build_select(self, by_id: bool, by_user: int, by_entity: int, limited: bool, ids_only: bool) -> str:
        sql = self._sql_select_ids if ids_only else self._sql_select
        sql += self._where(by_id, by_user, by_entity)
        if not by_id:
            sql += self._sql_order
        if limited:
            sql += " LIMIT ?"
        return sql

    def _vanished(self, exc: StorageError) -> bool:
        """True if ``exc`` says the table is gone and the store can look again.

        Inside a caller's transaction nothing is retried: its work so far
        stands or falls with it.
        """
        cause = exc.__cause__
        if not (isinstance(cause, sqlite3.OperationalError) and str(cause).startswith("no such table")):
            return False
        self._forget_shape()
        return self._depth() == 0

    def _depth(self) -> int:
        if self.db_path is None:
            return self._memory.depth if self._memory is not None else 0
        handle: _Handle | None = getattr(self._local, "handle", None)
        return handle.depth if handle is not None and handle.pid == os.getpid() else 0

    def _delete(self, session_id: str, user_id: str | None) -> bool:
        sql = f"DELETE FROM {quote(self.table_name)} WHERE {self._col('session_id')} = ?"  # noqa: S608 - quoted
        params = [session_id]
        how = filter_kind(user_id)
        if how:
            sql += " AND " + filter_condition(self._col("user_id"), how, "?")
        if how == EQUALS and user_id is not None:
            params.append(user_id)
        try:
            with self.transaction() as conn:
                return conn.execute(sql, params).rowcount > 0
        except StorageError as exc:
            if not self._vanished(exc):
                raise
            return False

    def _drop(self) -> None:
        with self.transaction() as conn:
            conn.execute(f"DROP TABLE IF EXISTS {quote(self.table_name)}")


class _Transaction:
    """The context manager behind :meth:`SqliteStorage.transaction` (a class: it is on every write's path)."""

    __slots__ = ("depth", "handle", "locked", "store")

    def __init__(self, store: SqliteStorage) -> None:
        self.store = store

    def __enter__(self) -> sqlite3.Connection:
        store = self.store
        self.locked = store.db_path is None
        if self.locked:
            store._memory_lock.acquire()
        try:
            handle = store._memory_handle() if self.locked else store._thread_handle()
            depth = handle.depth
            handle.conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT sp{depth}")
        except BaseException as exc:
            if self.locked:
                store._memory_lock.release()
            if isinstance(exc, sqlite3.Error):
                raise _translate(exc, store.table_name) from exc
            raise
        handle.depth = depth + 1
        self.handle, self.depth = handle, depth
        return handle.conn

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn, depth = self.handle.conn, self.depth
        self.handle.depth = depth
        try:
            if exc is None:
                if depth:
                    conn.execute(f"RELEASE sp{depth}")
                    return
                try:
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                return
            if depth:
                conn.execute(f"ROLLBACK TO sp{depth}")
                conn.execute(f"RELEASE sp{depth}")
            elif conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error as error:
            raise _translate(error, self.store.table_name) from (exc or error)
        finally:
            if self.locked:
                self.store._memory_lock.release()
        if isinstance(exc, sqlite3.Error):
            raise _translate(exc, self.store.table_name) from exc


def _resolve_path(db_url: str | None, db_file: str | os.PathLike[str] | None) -> str | None:
    """The database file for ``db_url`` / ``db_file`` (creating its folder), or None for memory."""
    if db_url is not None:
        if not isinstance(db_url, str):
            raise InvalidInputError(f"db_url must be a str, got {db_url!r}")
        scheme, sep, rest = db_url.partition("://")
        if not sep or scheme.split("+")[0] != "sqlite":
            raise InvalidInputError(f"db_url must look like sqlite:///path.db, got {db_url!r}")
        if "?" in rest:
            raise InvalidInputError(f"db_url query parameters are not supported: {db_url!r}")
        if rest in ("", "/", "/:memory:"):
            return None
        if not rest.startswith("/"):
            raise InvalidInputError(f"db_url must look like sqlite:///path.db, got {db_url!r}")
        db_file = rest[1:]
    if db_file is None:
        return None
    try:
        path = Path(db_file).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
    except ValueError as exc:  # an embedded NUL byte
        raise InvalidInputError(f"db_file is not a usable path: {db_file!r} ({exc})") from exc
    except OSError as exc:
        raise StorageError(f"cannot make the folder of {db_file!r}: {exc}") from exc
    return str(path)


def _translate(exc: sqlite3.Error, table: str) -> StorageError:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return BusyError(f"database stayed locked past the busy timeout: {exc}", table=table)
    return StorageError(f"SQLite error on table {table!r}: {exc}", table=table)
