"""The SQLite backend: one sessions table in a file (or in memory).

File databases are opened in WAL mode with a busy timeout; every write runs
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
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agno_storage import schema
from agno_storage.backends.base import BATCH_SIZE, BaseStorage
from agno_storage.errors import BusyError, InvalidInputError, StorageError
from agno_storage.models import Mode
from agno_storage.schema import TableShape, quote

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
    """A connection plus the depth of transactions open on it."""

    __slots__ = ("conn", "depth", "pid")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.depth = 0
        self.pid = os.getpid()


class SqliteStorage(BaseStorage):
    """A sessions table of one mode in a SQLite database.

    ``db_url`` (``sqlite:///relative.db``, ``sqlite:////absolute.db``) wins over
    ``db_file``; with neither the database is in memory and private to this
    object. Safe to share between threads; a forked child opens its own
    connections. ``busy_timeout`` is in seconds; a lock held longer raises
    :class:`BusyError`. ``recency_indexes`` adds two indexes beside the Go
    port's when this object creates the table (see docs/benchmarks.md): they
    make "newest sessions of a user / an entity" an index walk, at a small cost
    per write. Opening the file switches it to WAL mode, persistently.
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
        if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, (int, float)) or busy_timeout < 0:
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
        # Fail now, before anything is written, if the table is another mode's.
        self._inspect()

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
        qualified = ", ".join(self._col(n) for n in names)
        self._sql_select = f"SELECT {qualified} FROM {t}"  # noqa: S608 - quoted identifiers only
        self._sql_select_ids = f"SELECT {self._col('session_id')} FROM {t}"  # noqa: S608 - quoted identifiers only
        self._sql_order = f" ORDER BY {self._col('created_at')} DESC, {self._col('session_id')}"
        self._entity_column = self._col(schema.ENTITY_COLUMN[self.mode])
        self._select_sql: dict[tuple[bool, ...], str] = {}

    def _col(self, name: str) -> str:
        return f"{quote(self.table_name)}.{quote(name)}"

    # --- connections -------------------------------------------------------

    def _open(self) -> _Handle:
        path = ":memory:" if self.db_path is None else self.db_path
        try:
            conn = sqlite3.connect(path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
            if self.db_path is not None:
                journal = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(journal).lower() != "wal":
                    conn.close()
                    raise StorageError(f"cannot use WAL journal mode on {path!r} (got {journal!r})")
            conn.execute(f"PRAGMA synchronous = {self.synchronous.value}")
        except sqlite3.Error as exc:
            raise _translate(exc, self.table_name) from exc
        handle = _Handle(conn)
        with self._handles_lock:
            self._handles.append(handle)
        return handle

    @contextmanager
    def _handle(self) -> Iterator[_Handle]:
        if self.db_path is None:
            # One private in-memory database: one connection, one user at a time.
            with self._memory_lock:
                yield self._memory_handle()
            return
        yield self._thread_handle()

    def _memory_handle(self) -> _Handle:
        if self._memory is None or self._memory.pid != os.getpid():
            self._memory = self._open()
        return self._memory

    def _thread_handle(self) -> _Handle:
        handle: _Handle | None = getattr(self._local, "handle", None)
        if handle is None or handle.pid != os.getpid():
            handle = self._open()
            self._local.handle = handle
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

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``); nested use opens a savepoint.

        Commits only if the block finishes; any exception rolls it back and
        propagates. Waiting longer than busy_timeout for the lock raises
        BusyError.
        """
        with self._handle() as handle, _errors(self.table_name):
            conn = handle.conn
            depth = handle.depth
            conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT sp{depth}")
            handle.depth = depth + 1
            try:
                yield conn
            except BaseException:
                handle.depth = depth
                if depth == 0:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                else:
                    conn.execute(f"ROLLBACK TO sp{depth}")
                    conn.execute(f"RELEASE sp{depth}")
                raise
            handle.depth = depth
            if depth == 0:
                try:
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            else:
                conn.execute(f"RELEASE sp{depth}")

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

    # --- primitives --------------------------------------------------------

    def _table_layout(self) -> tuple[list[str], list[str], str] | None:
        columns = [r[0] for r in self._query("SELECT name FROM pragma_table_info(?)", (self.table_name,))]
        if not columns:
            return None
        indexes: list[str] = []
        table_sql = ""
        for kind, name, sql in self._query(
            "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = ?", (self.table_name,)
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
            layout = self._table_layout()
            assert layout is not None
            present = frozenset(layout[0])
            for migration in schema.pending_migrations(shape):
                for statement in migration.sqlite_statements(self.table_name, present, shape.flavor):
                    conn.execute(statement)
            return self._inspect()

    def _write(self, rows: Iterable[list[Any]], *, returning: bool) -> list[tuple[int, int]] | int:
        """Upsert ``rows`` (mode column order) in one transaction.

        With ``returning``, return each row's stored (created_at, updated_at);
        otherwise the number of rows written. Raises OwnershipError, rolling
        everything back, if any row's session_id belongs to another user.
        """
        if returning:
            stamped = [self._stamp(row, int(time.time())) for row in rows]
            out: list[tuple[int, int]] = []
            with self.transaction() as conn:
                for params in stamped:
                    got = conn.execute(self._sql_upsert_returning, params).fetchall()
                    if not got:
                        raise self._ownership_error(params)
                    out.append((got[0][0], got[0][1]))
            return out
        count = 0
        iterator = iter(rows)
        with self.transaction() as conn:
            while batch := list(itertools.islice(iterator, BATCH_SIZE)):
                now = int(time.time())
                params_list = [self._stamp(row, now) for row in batch]
                cursor = conn.executemany(self._sql_upsert, params_list)
                if cursor.rowcount != len(params_list):
                    self._raise_refused(
                        params_list, lambda params: bool(conn.execute(self._sql_upsert_returning, params).fetchall())
                    )
                count += len(params_list)
        return count

    def _select(
        self,
        *,
        session_id: str | None,
        user_id: str | None,
        entity_id: str | None,
        limit: int | None,
        ids_only: bool,
    ) -> list[tuple[Any, ...]]:
        key = (session_id is not None, user_id is not None, entity_id is not None, limit is not None, ids_only)
        sql = self._select_sql.get(key)
        if sql is None:
            sql = self._select_sql[key] = self._build_select(*key)
        params = [v for v in (session_id, user_id, entity_id, limit) if v is not None]
        return self._query(sql, params)

    def _build_select(self, by_id: bool, by_user: bool, by_entity: bool, limited: bool, ids_only: bool) -> str:
        sql = self._sql_select_ids if ids_only else self._sql_select
        where = [
            f"{column} = ?"
            for column, used in (
                (self._col("session_id"), by_id),
                (self._col("user_id"), by_user),
                (self._entity_column, by_entity),
            )
            if used
        ]
        if where:
            sql += " WHERE " + " AND ".join(where)
        if not by_id:
            sql += self._sql_order
        if limited:
            sql += " LIMIT ?"
        return sql

    def _delete(self, session_id: str, user_id: str | None) -> bool:
        sql = f"DELETE FROM {quote(self.table_name)} WHERE {self._col('session_id')} = ?"  # noqa: S608 - quoted
        params = [session_id]
        if user_id is not None:
            sql += f" AND {self._col('user_id')} = ?"
            params.append(user_id)
        with self.transaction() as conn:
            return conn.execute(sql, params).rowcount > 0

    def _drop(self) -> None:
        with self.transaction() as conn:
            conn.execute(f"DROP TABLE IF EXISTS {quote(self.table_name)}")


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
    path = Path(db_file).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path)


@contextmanager
def _errors(table: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise _translate(exc, table) from exc


def _translate(exc: sqlite3.Error, table: str) -> StorageError:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return BusyError(f"database stayed locked past the busy timeout: {exc}", table=table)
    return StorageError(f"SQLite error on table {table!r}: {exc}", table=table)
