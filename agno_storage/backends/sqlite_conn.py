"""A SQLite store's connections: a connection's handle and the write transaction run on it.

The store (:class:`~agno_storage.backends.sqlite.SqliteStorage`) opens,
checks and closes the handles: one per thread for a file, one shared under
a lock for an in-memory database, each re-made in a forked child.
:class:`Transaction` is what ``store.transaction()`` returns.
"""

from __future__ import annotations

import sqlite3
import threading
from types import TracebackType
from typing import TYPE_CHECKING

from agno_storage.backends import process
from agno_storage.backends.sqlite_errors import translate as _translate

if TYPE_CHECKING:
    from agno_storage.backends.sqlite import SqliteStorage


class Handle:
    """A connection, the depth of transactions open on it, whether it has switched the file to WAL,
    and the identity (device, inode) of the file it opened."""

    __slots__ = ("conn", "depth", "file_id", "pid", "thread", "wal")

    def __init__(self, conn: sqlite3.Connection, file_id: tuple[int, int] | None) -> None:
        self.conn = conn
        self.depth = 0
        self.file_id = file_id
        self.pid = process.current.pid
        self.thread = threading.current_thread()
        self.wal = False


class Transaction:
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
            if depth:
                handle.conn.execute(f"SAVEPOINT sp{depth}")
            elif self.locked:
                handle.conn.execute("BEGIN IMMEDIATE")
            else:
                store._begin_write(handle)
        except BaseException as exc:
            if self.locked:
                store._memory_lock.release()
            if isinstance(exc, sqlite3.Error):
                raise _translate(exc, store.table_name, store.db_path) from exc
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
            # SQLite rolls the whole transaction back by itself after some
            # errors (a full disk, an I/O error); then there is no savepoint
            # left to go back to, and the original error is what matters.
            if not conn.in_transaction:
                pass
            elif depth:
                conn.execute(f"ROLLBACK TO sp{depth}")
                conn.execute(f"RELEASE sp{depth}")
            else:
                conn.execute("ROLLBACK")
        except sqlite3.Error as error:
            raise _translate(error, self.store.table_name, self.store.db_path) from (exc or error)
        finally:
            if self.locked:
                self.store._memory_lock.release()
        if isinstance(exc, sqlite3.Error):
            raise _translate(exc, self.store.table_name, self.store.db_path) from exc
