"""Writing stored rows into a sessions table: checked, in batches, one transaction per batch.

On PostgreSQL, batches are committed by a thread of the writer's own
while the caller reads and checks the next one: the server works in a
process of its own and psycopg waits for it without the GIL, so checking a
batch in Python costs no time the server would not take anyway. On SQLite
they are committed in the caller's thread: SQLite's work runs inside this
process and takes the GIL back for every row, so a thread only added
switching (measured: import 10-20% slower with one).

On SQLite the batches commit at ``synchronous=NORMAL`` while a thread
checkpoints the WAL (``sqlite_bulk.Checkpointer``; the writing connection's
own checkpoints every BULK_CHECKPOINT_PAGES keep the WAL bounded), and
:meth:`RowWriter.flush` then fsyncs the WAL once, which is what a FULL commit does: once an import
or a copy returns, or raises after some batches, every batch it counts is
as durable as the store's FULL commits make it. Midway, a crash of the
process leaves the batches committed before it, each whole; a power loss
may also take the last of them (never part of one, and the ones before
stay). Rerunning the operation upserts the same rows again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from agno_storage import agent_runs, codec
from agno_storage.backends import sqlite_bulk
from agno_storage.backends.base import BaseStorage
from agno_storage.backends.sqlite import SqliteStorage, Synchronous
from agno_storage.errors import InvalidInputError, StorageError
from agno_storage.models import Mode
from agno_storage.modes import JSON_KINDS, SPECS, TEXT_KINDS, ColumnKind
from agno_storage.ops import runs
from agno_storage.ops.db import open_store
from agno_storage.ops.errors import RowsKeptError, rerun_completes
from agno_storage.ops.values import BadValue, row_check

#: Sessions per write transaction: short enough never to hold the write lock for long.
BATCH_SIZE = 1000
#: SQLite: WAL pages the writer's connection lets pile up before it checkpoints (see sqlite_bulk).
BULK_CHECKPOINT_PAGES = sqlite_bulk.CHECKPOINT_PAGES


class RowWriter:
    """Upserts rows (every column of the mode, in table order, JSON as text) into one table.

    Creates the table (the engine's layout) if it is not there; refuses a
    table of another mode (SchemaMismatchError) or an old version
    (SchemaVersionError: upgrade it first). An existing session is
    overwritten whoever owns it, and keeps its ``created_at``; ``updated_at``
    is the row's own, not now.

    :meth:`write` commits a batch (on PostgreSQL: hands it to the writer's
    thread and returns once the batch before it is committed, so at most
    two batches are held, the one being committed and the one being built).
    :meth:`flush` waits for the commits and raises what a batch raised; a
    batch that failed is not written (one transaction each) and no batch
    after it is. Use from one thread; close it (or use ``with``): closing
    after an exception drops a batch not yet started.
    """

    def __init__(self, url: str, table: str, mode: Mode, schema: str | None = "ai") -> None:
        self.store: BaseStorage = open_store(url, table, mode, schema)
        try:
            if runs.holds_runs(self.store):
                # Beside an agent_runs that is not agno-golang's (a sessions table an earlier build let be named
                # so), no store reads or deletes the sessions written: refused before anything is made.
                agent_runs.check_store_layout(self.store)
            self.store.create()
        except BaseException:
            self.store.close()
            raise
        spec = SPECS[mode]
        self._row_check = row_check(mode)
        self._json = [i for i, c in enumerate(spec.columns) if c.kind in JSON_KINDS]
        # The Go port's NOT NULL text columns spell "no value" as ''.
        self._required = (
            [i for i, c in enumerate(spec.columns) if c.kind is ColumnKind.REQUIRED_TEXT]
            if isinstance(self.store, SqliteStorage)
            else []
        )
        self._upsert = self.store.statements.upsert
        #: PostgreSQL's JSON columns are jsonb, which refuses '' (SQLite keeps it as it was).
        self._jsonb = not isinstance(self.store, SqliteStorage)
        #: Where PostgreSQL's text and jsonb refuse U+0000: the text and JSON columns (index, name, is JSON).
        self._nul_checks = [
            (i, c.name, c.kind in JSON_KINDS) for i, c in enumerate(spec.columns) if c.kind in JSON_KINDS | TEXT_KINDS
        ]
        #: PostgreSQL: the store's refusal of a value past a narrower column (varchar(n), integer), which the
        #: server would refuse naming no column, or cut without a word (trailing spaces).
        self._check_narrow: Callable[[list[list[Any]]], None] | None = getattr(self.store, "check_narrow", None)
        #: PostgreSQL: a refusal naming no column made to name the session and column refused, the types read again
        #: (another program narrowed a column after the table was opened, which check_narrow could not know).
        self._narrowed_since: Callable[[InvalidInputError, list[list[Any]]], InvalidInputError] | None = getattr(
            self.store, "narrowed_since", None
        )
        #: SQLite: the WAL file to fsync once the batches are committed (see flush).
        self._wal: str | None = None
        #: SQLite file: checkpoints the WAL while batches are written; None elsewhere.
        self._checkpointer: sqlite_bulk.Checkpointer | None = None
        if isinstance(self.store, SqliteStorage) and self.store.db_path is not None:
            if self.store.synchronous is Synchronous.FULL:
                # Batches commit at NORMAL (no fsync of their own); flush() then
                # fsyncs the WAL once, which is what a FULL commit does: every
                # batch committed is then as durable as under FULL. Only the
                # writer thread's connection, opened after this, has these.
                self._wal = sqlite_bulk.wal_path(self.store.db_path)
            # Checkpoints run on a thread of their own while batches are written (sqlite_bulk.Checkpointer).
            self.store.pragmas = {
                **self.store.pragmas,
                "synchronous": Synchronous.NORMAL.value,
                "wal_autocheckpoint": BULK_CHECKPOINT_PAGES,
            }
            # The connection create() used keeps what it was opened with; the next one has these.
            self.store.close()
            self._checkpointer = sqlite_bulk.Checkpointer(self.store.db_path)
            self._checkpointer.start()
        self._unsynced = False  # batches committed since the last fsync of the WAL
        #: Whether batches are committed by a thread of their own (see the module's docstring).
        self._threaded = not isinstance(self.store, SqliteStorage)
        #: Sessions committed so far (rows, less those the caller said were a session written before).
        self.written = 0
        self._pending: list[list[Any]] | None = None  # handed over, not started
        self._pending_sessions = 0  # the sessions it counts
        self._busy = False  # a batch is being committed
        self._error: BaseException | None = None
        self._closing = False
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None

    def check(self, row: Sequence[Any]) -> list[Any]:
        """``row`` ready to write; BadValue for a value an export line could not hold or import would refuse,
        InvalidInputError for one past a narrower PostgreSQL column (``varchar(n)``, ``integer``) of the target.

        The one check export makes (:func:`agno_storage.ops.values.row_check`):
        copy and import write no row export would refuse.
        """
        self._row_check(row)
        out = list(row)
        if self._jsonb:
            for i in self._json:
                if out[i] == "":
                    out[i] = None  # the Go port's "marshal failed", read as no value; jsonb cannot hold ''
            for i, name, json in self._nul_checks:
                if out[i] is not None and codec.holds_nul(out[i], json=json):
                    raise BadValue(name, "holds U+0000, which PostgreSQL cannot store (SQLite can)")
            if self._check_narrow is not None:
                self._check_narrow([out])
        for i in self._required:
            if out[i] is None:
                out[i] = ""
        return out

    def write(self, rows: list[list[Any]], sessions: int | None = None) -> None:
        """Upsert ``rows`` (already checked) in one transaction: all of them or none.

        ``sessions``: how many of them :attr:`written` counts once committed
        (default all; import leaves out a session it wrote before). On
        PostgreSQL, hands them over after the batch handed before is
        committed. Raises what this or an earlier batch raised (and then
        writes nothing more).
        """
        if not rows:
            return
        counted = len(rows) if sessions is None else sessions
        if not self._threaded:
            if self._error is not None:
                raise self._error
            try:
                self._commit(rows)
            except BaseException as exc:
                self._error = self._counted(exc)
                raise
            self.written += counted
            self._unsynced = True
            return
        with self._ready:
            self._wait_idle()
            self._pending, self._pending_sessions = rows, counted
            self._ready.notify_all()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="agno-storage-row-writer", daemon=True)
            self._thread.start()

    @property
    def holds_runs(self) -> bool:
        """Whether the table can have ``agent_runs`` beside it (an agent table in SQLite)."""
        return runs.holds_runs(self.store)

    def write_runs(self, batch: list[tuple[Any, ...]]) -> None:
        """Commit ``agent_runs`` rows (:data:`runs.COLUMNS`) in one transaction, as durable as the batches.

        Only where :attr:`holds_runs` (SQLite: not threaded), after the
        session batches are flushed. A StorageError says how many sessions
        were committed before it (they stay), as a session batch's does.
        """
        if not batch:
            return
        if not self.holds_runs:
            raise ValueError("only an agent table in SQLite has agent_runs beside it")
        try:
            runs.write(self.store, batch)
        except StorageError as exc:  # the sessions are committed: say so, or the user thinks none were written
            self.say_written(exc, "the agent_runs batch")
            raise
        self._unsynced = True

    def flush(self) -> int:
        """Wait until every batch handed over is committed and durable; how many sessions are (:attr:`written`).

        Raises what a batch raised (the batches before it are committed and durable).
        """
        try:
            with self._ready:
                self._wait_idle()
        finally:
            self._sync()
        return self.written

    def _sync(self) -> None:
        """fsync the WAL and its folder if batches were committed at NORMAL since the last time (SQLite, FULL store)."""
        with self._ready:
            if not self._unsynced or self._busy or self._wal is None:
                return
            self._unsynced = False
        sqlite_bulk.fsync_wal(self._wal)

    def _wait_idle(self) -> None:
        # Called with self._ready held.
        while (self._pending is not None or self._busy) and self._error is None:
            self._ready.wait()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            with self._ready:
                while self._pending is None and not self._closing:
                    self._ready.wait()
                rows, counted = self._pending, self._pending_sessions
                if rows is None:  # closing
                    return
                self._pending, self._busy = None, True
            try:
                self._commit(rows)
            except BaseException as exc:  # handed to the caller's thread by _wait_idle
                with self._ready:
                    self._error, self._busy = self._counted(exc), False
                    self._ready.notify_all()
                return
            with self._ready:
                self.written += counted
                self._unsynced = True
                self._busy = False
                self._ready.notify_all()

    def _counted(self, exc: BaseException) -> BaseException:
        """``exc``, its message saying how many rows were committed before the batch it stopped (a refused
        batch, a full disk: the caller's table is then partly written), and that a rerun completes it where one
        can (:func:`~agno_storage.ops.errors.rerun_completes`)."""
        if isinstance(exc, StorageError):
            self.say_written(exc, "the batch")
        return exc

    def say_written(self, exc: StorageError, batch: str) -> None:
        """Add to ``exc``'s message the sessions committed before ``batch`` failed, and whether a rerun completes it."""
        exc.message = (
            f"{exc.message}; {self.written} sessions were written before {batch} that failed, "
            "none of that batch" + (" (running it again completes it)" if rerun_completes(exc) else "")
        )

    def _commit(self, rows: list[list[Any]]) -> None:
        try:
            self._upsert_batch(rows)
        except InvalidInputError as exc:
            named = exc if self._narrowed_since is None else self._narrowed_since(exc, rows)
            if named is exc:
                raise
            raise named from exc

    def _upsert_batch(self, rows: list[list[Any]]) -> None:
        with self.store.transaction() as conn:
            cursor = conn.cursor()
            try:
                cursor.executemany(self._upsert, rows)
                # The upsert writes every row it is given (no owner check here): fewer is a trigger or rule of
                # another program that skipped some without an error, and the count would say they were written.
                if 0 <= cursor.rowcount < len(rows):
                    raise RowsKeptError(
                        f"the database kept {len(rows) - cursor.rowcount} of the {len(rows)} sessions of a batch "
                        f"out of table {self.store.table_name!r} without an error (a trigger or rule of another "
                        "program); the batch was rolled back",
                        table=self.store.table_name,
                    )
            finally:
                cursor.close()

    def close(self) -> None:
        """Stop the writer's thread (a batch it has started is finished, one not started is dropped), close the store."""
        with self._ready:
            self._closing = True
            self._pending = None
            self._ready.notify_all()
        if self._thread is not None:
            self._thread.join()
        try:
            if self._checkpointer is not None:
                self._checkpointer.stop()
            self._sync()
        finally:
            self.store.close()

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["BATCH_SIZE", "BadValue", "RowWriter"]
