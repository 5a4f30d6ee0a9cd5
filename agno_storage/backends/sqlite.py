"""The SQLite backend: one sessions table in a file (or in memory).

File databases are switched to WAL mode before the first write and use a busy
timeout; every write runs in ``BEGIN IMMEDIATE`` so writers queue on the lock
instead of failing half-way, and first checks that the path still names the
file the connection has open. Connections are per thread and re-made in a
forked child.
"""

from __future__ import annotations

import contextlib
import enum
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from typing import Any

from agno_storage.backends import process
from agno_storage.backends import sqlite_ddl as ddl
from agno_storage.backends.base import BaseStorage
from agno_storage.backends.batches import Batches
from agno_storage.backends.core import Tracer, check_bool
from agno_storage.backends.sqlite_conn import Handle, Transaction
from agno_storage.backends.sqlite_errors import text_or_bytes as _text_or_bytes
from agno_storage.backends.sqlite_errors import translate as _translate
from agno_storage.backends.sqlite_files import (
    file_id,
    lock_wait,
    read_only_uri,
    refuse_non_file,
    resolve_path,
    writable,
)
from agno_storage.backends.statements import Statements
from agno_storage.errors import (
    BusyError,
    DatabaseReplacedError,
    InvalidInputError,
    ReadOnlyDatabaseError,
    StorageError,
)
from agno_storage.models import Mode
from agno_storage.modes import JSON_KINDS
from agno_storage.schema import TableShape, quote


class Synchronous(enum.StrEnum):
    """How hard SQLite works to keep a commit through power loss."""

    #: fsync the WAL on every commit: a committed session survives power loss. The default.
    FULL = "FULL"
    #: fsync only at checkpoints: faster commits; the last commits before a power
    #: loss (not a process crash) may be lost. The file is never corrupted.
    NORMAL = "NORMAL"


#: Seconds a store waits for another writer's lock unless its busy_timeout or its URL's timeout says otherwise.
DEFAULT_BUSY_TIMEOUT = 10.0

#: The pragmas every new connection gets, in the order they are set, with their defaults.
#: ``synchronous`` and ``busy_timeout`` (milliseconds) follow the constructor's
#: arguments. ``journal_mode`` is not among them: it is a property of the file,
#: set once (see ``SqliteStorage``), not of a connection.
DEFAULT_PRAGMAS: dict[str, str | int] = {
    # How hard a commit works to survive power loss; see Synchronous.
    "synchronous": "FULL",
    # How long a statement waits for another writer's lock before BusyError.
    "busy_timeout": round(DEFAULT_BUSY_TIMEOUT * 1000),
}


class SqliteStorage(BaseStorage):
    """A sessions table of one mode in a SQLite database.

    ``db_url`` (``sqlite:///relative.db``, ``sqlite:////absolute.db``) wins over
    ``db_file``; with neither (or ``db_file=":memory:"``) the database is in memory and private to this
    object; a path naming something other than a file (a directory, a named pipe, a device) raises
    :class:`InvalidInputError` before anything is opened. Safe to share between threads; a forked child opens its own
    connections. ``busy_timeout`` is in seconds (10 by default, or the
    ``db_url``'s ``?timeout=``, as SQLAlchemy and sqlite3 name it; not both);
    a lock held longer raises :class:`BusyError`. ``recency_indexes`` adds three indexes beside the Go
    port's when this object creates the table (see docs/benchmarks.md): they
    make "newest sessions of a user / an entity / all" an index walk, at a small cost
    per write. The store switches the file to WAL mode, persistently, before
    its first write: until then it only reads, so a refused open or reads
    leave the file as it was, and a file that cannot be written (read-only
    file, folder or mount) can be read; writing to it raises
    :class:`ReadOnlyDatabaseError`. A write to a file that was deleted or
    replaced since the store opened it raises :class:`DatabaseReplacedError`
    instead of going to the lost file; so does a thread's first call, read or write, once the path names
    something other than a file (a named pipe, a device, a directory). With ``auto_upgrade_schema`` an old
    table is upgraded before the constructor returns. ``read_only`` opens an
    existing file with ``mode=ro``: nothing this store does changes the file
    (not even the checkpoint SQLite runs when the last connection to a WAL
    file closes), and every write raises :class:`ReadOnlyDatabaseError`.
    ``read_non_finite`` reads ``NaN`` and infinities in a JSON column, which
    agno 1.x's own store writes (``json.dumps``), as floats instead of
    raising :class:`CorruptRowError`; writing them is refused either way.
    """

    ENGINE = "sqlite"

    def __init__(
        self,
        table_name: str,
        db_url: str | None = None,
        db_file: str | os.PathLike[str] | None = None,
        mode: Mode | str | None = Mode.AGENT,
        *,
        auto_upgrade_schema: bool = False,
        allow_owner_change: bool = False,
        claim_unowned: bool = True,
        busy_timeout: float | None = None,
        synchronous: Synchronous | str = Synchronous.FULL,
        recency_indexes: bool = True,
        tracer: Tracer | None = None,
        read_only: bool = False,
        read_non_finite: bool = False,
    ) -> None:
        super().__init__(
            table_name,
            mode,
            auto_upgrade_schema=auto_upgrade_schema,
            allow_owner_change=allow_owner_change,
            claim_unowned=claim_unowned,
            read_non_finite=read_non_finite,
            tracer=tracer,
        )
        busy_timeout = lock_wait(db_url, busy_timeout, DEFAULT_BUSY_TIMEOUT)
        if (
            isinstance(busy_timeout, bool)
            or not isinstance(busy_timeout, (int, float))
            or not 0 <= busy_timeout < 2**31 / 1000
        ):
            # SQLite takes the wait in milliseconds, as a 32-bit int.
            raise InvalidInputError(
                f"busy_timeout (a URL's timeout=) must be from 0 to 2147483.647 seconds, got {busy_timeout!r}"
            )
        try:
            self.synchronous = Synchronous(str(synchronous).upper())
        except ValueError:
            raise InvalidInputError(f"synchronous must be FULL or NORMAL, got {synchronous!r}") from None
        self.busy_timeout = float(busy_timeout)
        self.recency_indexes = check_bool("recency_indexes", recency_indexes)
        #: The pragmas set on each new connection (DEFAULT_PRAGMAS with this store's settings).
        self.pragmas: dict[str, str | int] = {
            **DEFAULT_PRAGMAS,
            "synchronous": self.synchronous.value,
            "busy_timeout": round(self.busy_timeout * 1000),
        }
        self.read_only = check_bool("read_only", read_only)
        self.db_path = resolve_path(db_url, db_file, make_folder=not self.read_only)
        if self.read_only and self.db_path is None:
            raise InvalidInputError("read_only needs a database file: an in-memory database starts empty")
        self._local = threading.local()
        self._handles: list[Handle] = []
        self._handles_lock = process.ForkLock()  # a child forked while another thread held it goes on
        # The file this store has open, (device, inode): set by the first connection, and by the first after
        # a DatabaseReplacedError or close(). Every later connection, a new thread's too, is checked against it.
        self._file_id: tuple[int, int] | None = None
        self._memory: Handle | None = None
        self._memory_lock = process.ForkRLock()
        try:
            self._check_on_open()
        except BaseException:
            self.close()
            raise

    def _build_statements(self) -> Statements:
        t = quote(self.table_name)
        names = self.spec.names
        columns = ", ".join(quote(n) for n in names)
        updates = ", ".join(f"{quote(n)} = excluded.{quote(n)}" for n in names if n not in ("session_id", "created_at"))
        placeholders = ", ".join("?" for _ in names)
        # Quoted identifiers only; every value is bound.
        upsert = (
            f'INSERT INTO {t} ({columns}) VALUES ({placeholders}) ON CONFLICT ("session_id") DO UPDATE SET {updates}'  # noqa: S608
        )
        if not self.allow_owner_change:
            # The update happens only for the owner or an unowned row (with claim_unowned=False, an unowned
            # row only for a session that has no owner either); a refused row changes nothing and returns nothing.
            unowned = f'({t}."user_id" IS NULL OR {t}."user_id" = \'\')'
            if not self.claim_unowned:
                unowned += ' AND (excluded."user_id" IS NULL OR excluded."user_id" = \'\')'
            upsert += f' WHERE {unowned} OR {t}."user_id" = excluded."user_id"'
        # Columns are qualified with the table everywhere they are read: SQLite
        # takes an unknown bare "name" for a string literal, qualified ones fail.
        # JSON comes back as its UTF-8 bytes: no str is built only to be re-encoded.
        qualified = ", ".join(
            f"CAST({self._col(c.name)} AS BLOB)" if c.kind in JSON_KINDS else self._col(c.name)
            for c in self.spec.columns
        )
        summary = ", ".join(self._col(n) for n in self.spec.summary_columns)
        return Statements(
            placeholder="?",
            upsert=upsert,
            upsert_returning=upsert + ' RETURNING "created_at", "updated_at"',
            select=f"SELECT {qualified} FROM {t}",  # noqa: S608 - quoted identifiers only
            select_ids=f"SELECT {self._col('session_id')} FROM {t}",  # noqa: S608 - quoted identifiers only
            select_summaries=f"SELECT {summary} FROM {t}",  # noqa: S608 - quoted identifiers only
            count=f"SELECT COUNT(*) FROM {t}",  # noqa: S608 - quoted identifiers only
            delete=f"DELETE FROM {t}",  # noqa: S608 - quoted identifiers only
            order=f" ORDER BY {self._col('created_at')} DESC, {self._col('session_id')}",
            id_column=self._col("session_id"),
            user_column=self._col("user_id"),
            entity_column=self._col(self.spec.entity_column),
        )

    def _col(self, name: str) -> str:
        return f"{quote(self.table_name)}.{quote(name)}"

    # --- connections -------------------------------------------------------

    def _open(self) -> Handle:
        if self.db_path is not None:
            try:
                refuse_non_file(self.db_path)
            except InvalidInputError as exc:
                if self._file_id is None:
                    raise
                # The file this store opened was replaced by something SQLite would block on (a named pipe,
                # for a read-only open) or fail to read.
                raise DatabaseReplacedError(
                    f"{self.db_path!r} was replaced since this store opened it: {exc}", table=self.table_name
                ) from exc
        path = ":memory:" if self.db_path is None else self.db_path
        if self.read_only:
            path = read_only_uri(path)
        try:
            conn = sqlite3.connect(
                path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False, uri=self.read_only
            )
        except sqlite3.Error as exc:
            raise _translate(exc, self.table_name, self.db_path) from exc
        try:
            for name, value in self.pragmas.items():
                conn.execute(f"PRAGMA {name} = {value}")
            try:
                self._check_encoding(conn.execute("PRAGMA encoding").fetchone()[0])
            except StorageError:
                conn.close()
                raise
            # SQLite has opened (or made) the file by now; what it opened is what
            # later writes are checked against (see _check_same_file).
            opened = None if self.db_path is None else file_id(self.db_path)
        except sqlite3.Error as exc:
            conn.close()
            raise _translate(exc, self.table_name, self.db_path) from exc
        except OSError as exc:
            conn.close()
            raise DatabaseReplacedError(
                f"{self.db_path!r} vanished while it was being opened: {exc}", table=self.table_name
            ) from exc
        pid = process.current.pid
        with self._handles_lock:
            if self._file_id is None:
                self._file_id = opened
            # A new thread's connection opens whatever the path names now: if that is another file than
            # the store's, its first write is refused as every other connection's is (see _replaced).
            handle = Handle(conn, self._file_id)
            # Threads that ended leave their connections behind; close them here
            # so a thread-per-request server does not run out of descriptors.
            ended = [h for h in self._handles if h.pid == pid and not h.thread.is_alive() and h is not self._memory]
            self._handles = [h for h in self._handles if h not in ended]
            self._handles.append(handle)
        for old in ended:
            old.conn.close()
        return handle

    def _use_wal(self, handle: Handle) -> None:
        """Switch the file to WAL (persistent) through ``handle``; raise StorageError if SQLite refuses.

        Only between transactions: SQLite cannot change the journal mode in one.
        """
        # SQLite does not call the busy handler for this switch: a file another
        # connection is switching (or writing) refuses it at once. Wait as
        # every other statement waits, up to the busy timeout.
        deadline = time.monotonic() + self.busy_timeout
        pause = 0.001
        while True:
            try:
                self._trace("PRAGMA journal_mode = WAL", None)
                journal = handle.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.Error as exc:
                error = _translate(exc, self.table_name, self.db_path)
                if not isinstance(error, BusyError) or time.monotonic() >= deadline:
                    raise error from exc
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        if str(journal).lower() != "wal":
            if not writable(self.db_path):
                raise ReadOnlyDatabaseError(
                    f"{self.db_path!r} (or its folder) cannot be written; it can only be read",
                    table=self.table_name,
                )
            raise StorageError(
                f"cannot use WAL journal mode on {self.db_path!r} (got {journal!r})", table=self.table_name
            )
        handle.wal = True

    def _memory_handle(self) -> Handle:
        if self._memory is None or self._memory.pid != process.current.pid:
            self._memory = self._open()
        return self._memory

    def _thread_handle(self) -> Handle:
        handle: Handle | None = getattr(self._local, "handle", None)
        if handle is None or handle.pid != process.current.pid:
            handle = self._open()
            self._local.handle = handle
        return handle

    def _begin_write(self, handle: Handle) -> None:
        """Start a write transaction on ``handle`` (a file's): WAL first, then the lock, then the file check."""
        if self.read_only:
            raise ReadOnlyDatabaseError(
                f"this store opened {self.db_path!r} with read_only=True; it only reads", table=self.table_name
            )
        if not handle.wal:
            self._use_wal(handle)
        handle.conn.execute("BEGIN IMMEDIATE")
        error = self._replaced(handle)
        if error is not None:
            handle.conn.execute("ROLLBACK")
            handle.conn.close()
            raise error

    def _replaced(self, handle: Handle) -> DatabaseReplacedError | None:
        """The error to raise if the path no longer names the file ``handle`` has open, else None.

        One ``stat`` per write transaction, under the write lock. A stale
        handle is dropped, so this thread's next call opens whatever the path
        names then.
        """
        assert self.db_path is not None
        try:
            now: tuple[int, int] | None = file_id(self.db_path)
        except OSError:
            now = None
        if now == handle.file_id:
            return None
        if getattr(self._local, "handle", None) is handle:
            self._local.handle = None
        with self._handles_lock:
            if handle in self._handles:
                self._handles.remove(handle)
            if self._file_id == handle.file_id:
                self._file_id = None  # the next connection takes the file the path names then
        self._forget_shape()
        what = "was deleted" if now is None else "was replaced by another file"
        return DatabaseReplacedError(
            f"{self.db_path!r} {what} while this store had it open; nothing was written "
            "(the next call opens the file now at that path)",
            table=self.table_name,
        )

    def _query(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """Run one read statement outside any write transaction (it is its own snapshot)."""
        if self.tracer is not None:
            self.tracer(sql, params)
        try:
            if self.db_path is None:
                with self._memory_lock:
                    return self._memory_handle().conn.execute(sql, params).fetchall()
            return self._thread_handle().conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if not str(exc).startswith("Could not decode to UTF-8"):
                raise _translate(exc, self.table_name, self.db_path) from exc
        except sqlite3.Error as exc:
            raise _translate(exc, self.table_name, self.db_path) from exc
        # Text another program stored that is not UTF-8 fails the whole
        # statement; read it again with such text as bytes, for the codec to
        # name the session and column (the fast default factory stays on
        # every other read).
        return self._query_lenient(sql, params)

    def _query_lenient(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """``_query`` with text that is not UTF-8 read as bytes (a rare, slower path)."""
        memory = self.db_path is None
        try:
            with self._memory_lock if memory else contextlib.nullcontext():
                conn = (self._memory_handle() if memory else self._thread_handle()).conn
                conn.text_factory = _text_or_bytes
                try:
                    return conn.execute(sql, params).fetchall()
                finally:
                    conn.text_factory = str
        except sqlite3.Error as exc:
            raise _translate(exc, self.table_name, self.db_path) from exc

    def transaction(self) -> Transaction:
        """A write transaction (``BEGIN IMMEDIATE``); nested use opens a savepoint.

        Commits only if the block finishes; any exception rolls it back and
        propagates. Waiting longer than busy_timeout for the lock raises
        BusyError. Use as ``with store.transaction() as conn:``.
        """
        return Transaction(self)

    def close(self) -> None:
        """Close every connection this object opened in this process.

        The object stays usable: the next call opens a new connection (an
        in-memory database starts empty again).
        """
        pid = process.current.pid
        with self._handles_lock:
            handles, self._handles = self._handles, []
        for handle in handles:
            # A connection inherited over fork belongs to the parent: closing it
            # here could checkpoint or delete the WAL under the parent's feet.
            if handle.pid == pid:
                handle.conn.close()
        self._local = threading.local()
        self._memory = None
        self._file_id = None
        self._forget_shape()

    # --- primitives --------------------------------------------------------

    def _table_layout(self) -> tuple[list[str], list[str], str] | None:
        # Again each time the table is looked at: a file that was empty when the store opened it takes its
        # encoding from whoever writes it first. Asked after the layout query, which reads the file's header:
        # before it, a connection that saw the file empty still answers UTF-8.
        layout = ddl.table_layout(self._query, self.table_name)
        self._check_encoding(self._query("PRAGMA encoding", ())[0][0])
        if layout is not None:
            ddl.check_is_table(self._query, self.table_name, self.spec, layout[2])
        return layout

    def _check_columns(self, table_sql: str) -> None:
        """A declared type SQLite would convert the store's values to; a collation other than BINARY."""
        declared = dict(self._query("SELECT name, type FROM pragma_table_info(?)", (self.table_name,)))
        ddl.check_declared_types(self.table_name, self.spec, declared)
        ddl.check_collations(self._query, self.table_name, self.spec, table_sql)

    def _check_encoding(self, encoding: str) -> None:
        """StorageError unless the file keeps its text as UTF-8.

        JSON is read as the file's own bytes (CAST AS BLOB), which are UTF-8
        in every file agno, agno-golang and this store make; a UTF-16 file's
        sessions would read as not JSON.
        """
        if encoding != "UTF-8":
            raise StorageError(
                f"{self.db_path!r} keeps its text as {encoding}; agno_storage reads and writes UTF-8 "
                "database files only (the encoding agno and agno-golang make)",
                table=self.table_name,
            )

    def trigger_exists(self, name: str, on: str) -> bool:
        """Whether the file has a trigger named ``name`` on table ``on`` (both unquoted).

        One a dropped table took with it has gone; one whose table was
        renamed (``ALTER TABLE ... RENAME``, which takes its triggers along)
        is on the new name, not on ``on``.
        """
        return bool(
            self._query(
                "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ? COLLATE NOCASE "
                "AND tbl_name = ? COLLATE NOCASE",
                (name, on),
            )
        )

    def _create_table(self) -> None:
        statements = [ddl.create_table(self.table_name, self.spec), *ddl.create_indexes(self.table_name, self.spec)]
        if self.recency_indexes:
            statements += ddl.create_recency_indexes(self.table_name, self.spec)
        with self.transaction() as conn:
            if self._table_layout() is not None:
                return  # made by someone else meanwhile: leave its DDL and indexes alone
            self._run_all(conn, statements)

    def create_recency_indexes(self) -> None:
        """Add the recency indexes to an existing table (one made by Go or agno, say).

        Idempotent. The table's own DDL is unchanged; Go and agno keep reading
        and writing it.
        """
        self._checked_shape(create=True)
        with self.transaction() as conn:
            self._run_all(conn, ddl.create_recency_indexes(self.table_name, self.spec))

    def _apply_migrations(self) -> TableShape | None:
        with self.transaction() as conn:
            shape = self._inspect()
            if shape is None:
                return None
            self._run_all(conn, ddl.upgrade_statements(self.table_name, self.spec, shape))
            return self._inspect()

    def _run_all(self, conn: sqlite3.Connection, statements: Sequence[str]) -> None:
        for statement in statements:
            self._trace(statement, None)
            conn.execute(statement)

    def _write_one(self, row: list[Any]) -> tuple[int, int]:
        statement = self.statements.upsert_returning
        self.row_codec.stamp(row, int(time.time()))
        with self.transaction() as conn:
            if self.tracer is not None:
                self.tracer(statement, row)
            got = conn.execute(statement, row).fetchall()
            if not got:
                raise self._refused_error(row)
        created_at, updated_at = got[0]
        return created_at, updated_at

    def _write_many(self, batches: Batches) -> int:
        statements, stamp = self.statements, self.row_codec.stamp
        count = 0
        with self.transaction() as conn:

            def upsert_one(row: list[Any]) -> bool:
                self._trace(statements.upsert_returning, row)
                return bool(conn.execute(statements.upsert_returning, row).fetchall())

            for batch in batches:
                now = int(time.time())
                for row in batch:
                    stamp(row, now)
                self._trace(statements.upsert, batch)
                if conn.executemany(statements.upsert, batch).rowcount != len(batch):
                    self._raise_refused(batch, upsert_one)
                count += len(batch)
        return count

    def _execute_write(self, statement: str, params: Sequence[Any]) -> int:
        with self.transaction() as conn:
            self._trace(statement, params)
            return conn.execute(statement, params).rowcount

    def _in_transaction(self) -> bool:
        if self.db_path is None:
            return self._memory is not None and self._memory.depth > 0
        handle: Handle | None = getattr(self._local, "handle", None)
        return handle is not None and handle.pid == process.current.pid and handle.depth > 0

    def _drop(self) -> None:
        with self.transaction() as conn:
            self._run_all(conn, [f"DROP TABLE IF EXISTS {quote(self.table_name)}"])
