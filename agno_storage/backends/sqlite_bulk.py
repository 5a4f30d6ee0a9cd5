"""Bulk loads into SQLite: commits with no fsync of their own, one fsync of the WAL once they are done.

In WAL mode a commit at ``synchronous=NORMAL`` appends its pages to the WAL
without an fsync; an fsync of the WAL file (and of its folder, for a WAL
the load created) then makes every commit before it as durable as FULL
commits make them. Until that fsync, a crash of the process loses nothing
committed, and a power loss may take the last commits, each whole, never a
part of one. ``agno_storage.ops`` (import, copy) and ``to_agno3`` load
this way.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from agno_storage.backends.sqlite_files import file_uri

log = logging.getLogger("agno_storage")

#: WAL pages a bulk load's connection lets pile up before it checkpoints them
#: into the file (64 MiB at 4 KiB a page; SQLite's default is 1,000). Each
#: checkpoint fsyncs the WAL and the file: fewer, larger syncs are most of a
#: bulk write's speed. Other connections keep their own setting.
CHECKPOINT_PAGES = 16384


def checkpoint_pages(page_size: int) -> int:
    """:data:`CHECKPOINT_PAGES`' interval in pages of ``page_size`` bytes (the same number of bytes)."""
    return max(1, CHECKPOINT_PAGES * 4096 // page_size)


def wal_path(db_path: str | os.PathLike[str]) -> str:
    """The WAL of the database at ``db_path``: SQLite names it after the file a symlink points to."""
    return os.path.realpath(Path(db_path).expanduser()) + "-wal"


def fsync_wal(wal: str) -> None:
    """fsync the WAL file ``wal`` and its folder; nothing when there is no WAL.

    No WAL means the last connection closed, and its checkpoint synced the
    database file and removed the WAL.
    """
    try:
        fd = os.open(wal, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    # A WAL made since the last FULL commit needs its folder's entry on disk
    # too, as SQLite syncs the folder of a journal it creates.
    fsync_folder(os.path.dirname(wal))


def fsync_folder(folder: str | os.PathLike[str]) -> None:
    """fsync ``folder``, so that the names made, moved or removed in it are on disk (a file's fsync is not)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a folder cannot be opened on Windows: NTFS journals its entries
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Checkpointer:
    """Checkpoints a database's WAL from a thread of its own while a bulk load writes to it.

    A checkpoint copies the WAL's pages into the database file and syncs it.
    On the writing connection (SQLite's autocheckpoint) the load waits for
    all of that I/O every :data:`CHECKPOINT_PAGES`; here most of it overlaps
    the load. Every ``interval`` seconds in which the WAL was written to,
    the thread runs a PASSIVE checkpoint: it never blocks a reader or the
    writer and takes the pages they leave it. Python's sqlite3 lets go of
    the GIL while SQLite works, so the load's Python runs on.

    The loading connection keeps its own ``wal_autocheckpoint =``
    :data:`CHECKPOINT_PAGES`: SQLite starts the WAL over from its beginning
    only when a writer begins a transaction with every page already
    checkpointed, which a checkpoint on another thread seldom finishes in
    time for, so without it the WAL would hold the whole load. The
    writer's own checkpoint then finds most pages copied already, and the
    WAL stays within about :data:`CHECKPOINT_PAGES` and a batch or two
    (``test_the_wal_of_an_import_stays_within_the_checkpoint_interval``,
    ``test_the_wal_of_a_migration_stays_within_the_checkpoint_interval``)
    while no other connection holds a read transaction open: SQLite cannot
    start the WAL over under a reader, however it is checkpointed.

    A checkpoint that fails (a disk error, say) changes nothing committed:
    its pages stay in the WAL, for the writer's own checkpoints. The thread
    then stops and :attr:`error` holds what it raised; :meth:`stop` logs it
    as a warning on the ``agno_storage`` logger, since the load itself goes
    on (more slowly) and reports no error for it.
    """

    def __init__(self, db_path: str | os.PathLike[str], *, interval: float = 0.2) -> None:
        # Absolute at once, as the WAL's path is: a chdir before the thread opens it changes neither.
        self._path = os.path.abspath(Path(db_path).expanduser())
        self._wal = wal_path(db_path)
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: What a checkpoint raised; the thread stopped then.
        self.error: BaseException | None = None
        #: Checkpoints run so far.
        self.passes = 0

    def start(self) -> None:
        """Start the thread. One that cannot start (the process's thread limit) is logged as a warning and kept in
        :attr:`error`: the load goes on with its connection's own checkpoints."""
        if self._thread is not None:
            raise RuntimeError("checkpointer already started")
        thread = threading.Thread(target=self._run, name="agno-storage-checkpointer", daemon=True)
        try:
            thread.start()
        except RuntimeError as exc:
            self.error = exc
            log.warning("checkpointing %s from a thread: %s; the writing connection checkpoints alone", self._path, exc)
            return
        self._thread = thread

    @property
    def failed(self) -> bool:
        """Whether the thread stopped on an error (see the class)."""
        return self.error is not None

    def stop(self) -> None:
        """Stop the thread, after the checkpoint it is running, if any; log a checkpoint that failed. Safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            if self.error is not None:
                log.warning(
                    "checkpointing %s from a thread stopped after %d checkpoints: %s; the writing connection's"
                    " own checkpoints went on",
                    self._path,
                    self.passes,
                    self.error,
                )

    def _wal_stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self._wal)
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size

    def _run(self) -> None:
        try:
            # Never made: a file deleted since the load opened it stays deleted.
            conn = sqlite3.connect(file_uri(self._path, "rw"), isolation_level=None, check_same_thread=False, uri=True)
        except BaseException as exc:  # kept, as a checkpoint's error is: never a traceback from the thread
            self.error = exc
            return
        try:
            conn.execute("PRAGMA schema_version").fetchone()  # a file that is no database fails here, at once
            seen = self._wal_stamp()
            while not self._stop.wait(self._interval):
                now = self._wal_stamp()
                if now is None or now == seen:
                    continue
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                self.passes += 1
                seen = now
        except BaseException as exc:  # kept for the loader to see; the thread ends here
            self.error = exc
        finally:
            conn.close()


@contextmanager
def bulk(conn: sqlite3.Connection, db_path: str | os.PathLike[str]) -> Iterator[None]:
    """While the block runs, ``conn`` (in WAL mode, between transactions) commits as a bulk load does.

    Its commits are at ``synchronous=NORMAL`` and checkpoint every
    :data:`CHECKPOINT_PAGES`, with a :class:`Checkpointer` beside it. At
    the end, raised or not (by the block, or as the thread stops; a
    thread that cannot start is logged and left out), ``conn`` gets back its own ``synchronous`` and
    ``wal_autocheckpoint``, and, where it committed at FULL (or EXTRA), the
    WAL is fsynced once: every commit of the block is then as durable as
    its own commits would have made it. A connection already at NORMAL or
    OFF keeps that. A connection closed meanwhile (its file replaced, say)
    has nothing to restore.
    """
    (synchronous,) = conn.execute("PRAGMA synchronous").fetchone()
    (interval,) = conn.execute("PRAGMA wal_autocheckpoint").fetchone()
    (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    # Each step undone whatever the next raises (a thread that cannot start, a KeyboardInterrupt while
    # the checkpointer stops): the connection's settings and the fsync, last, are never skipped.
    with ExitStack() as undo:
        if synchronous >= 2:
            undo.callback(fsync_wal, wal_path(db_path))
        undo.callback(_restore, conn, int(synchronous), int(interval))
        conn.execute(f"PRAGMA synchronous = {min(int(synchronous), 1)}")
        conn.execute(f"PRAGMA wal_autocheckpoint = {checkpoint_pages(int(page_size))}")
        checkpointer = Checkpointer(db_path)
        checkpointer.start()  # one that cannot start is logged, and the connection checkpoints alone
        undo.callback(checkpointer.stop)
        yield


def _restore(conn: sqlite3.Connection, synchronous: int, interval: int) -> None:
    """Give ``conn`` back the ``synchronous`` and ``wal_autocheckpoint`` :func:`bulk` found it with."""
    try:
        conn.execute(f"PRAGMA wal_autocheckpoint = {interval}")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
    except sqlite3.ProgrammingError:  # closed: the next connection gets the store's own pragmas
        pass


__all__ = ["CHECKPOINT_PAGES", "Checkpointer", "bulk", "checkpoint_pages", "fsync_folder", "fsync_wal", "wal_path"]
