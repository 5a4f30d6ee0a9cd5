"""A database's sessions tables, read-only, whatever its engine: :class:`Source`, one reader per table.

:class:`Source` lists the sessions tables and hands out one
:class:`~agno_storage.web.table_reader.TableReader` per table, looked at
again every :data:`RECHECK_AFTER` seconds and replaced when its table (or
the file) changed. What each engine adds (its connections, its read-only
guarantees) is in :mod:`agno_storage.web.source`.
"""

from __future__ import annotations

import abc
import contextlib
import threading
import time
from typing import ClassVar

import attrs

from agno_storage import schema
from agno_storage.agent_runs import TABLE as RUNS_TABLE
from agno_storage.backends.base import BaseStorage
from agno_storage.errors import InvalidInputError, SchemaMismatchError, StorageError, TableNotFoundError
from agno_storage.modes import SPECS, TEXT_KINDS
from agno_storage.ops.db import Database
from agno_storage.ops.tables import TableInfo, check_types, describe, inexact_ids, list_tables
from agno_storage.web.table_reader import TableReader

#: Seconds a table's reader is used before the table's columns are looked at again (one cheap look, no row read).
RECHECK_AFTER = 2.0
#: The least seconds between two looks asked for at once (before a 409): on PostgreSQL each is a connection.
FRESH_AFTER = 0.5
#: Seconds a replaced reader's store stays open for requests still reading through it.
RETIRED_GRACE = 60.0
#: A table's (column names, index names, CREATE TABLE text): what its reader was made for.
Layout = tuple[list[str], list[str], str]
#: The file a reader or connection reads, as (device, inode); None where there is no file (PostgreSQL).
FileId = tuple[int, int] | None


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
    layout: Layout
    checked: float
    #: The file the path named when the reader was made.
    file: FileId = None
    #: A thread is looking at the table now.
    looking: bool = False


class Source(abc.ABC):
    """Every sessions table of one database, read-only. Thread-safe.

    ``recheck_after``: seconds a table's reader is used before the table is
    looked at again (see :meth:`reader`).
    """

    #: The engine, which says how it compares table names (``schema.CASE_BLIND_NAMES``).
    ENGINE: ClassVar[schema.Engine]

    def __init__(self, *, recheck_after: float = RECHECK_AFTER) -> None:
        self.recheck_after = recheck_after
        self._readers: dict[str, _Cached] = {}
        # Stores of replaced readers, with when they were replaced: closed RETIRED_GRACE seconds on.
        self._retired: list[tuple[float, BaseStorage]] = []
        self._lock = threading.Lock()
        #: The file the location named at the last call of :meth:`reader`.
        self._file_seen: FileId = None

    @abc.abstractmethod
    def _bounded(self) -> contextlib.AbstractContextManager[Database]:
        """A read-only :class:`~agno_storage.ops.db.Database` of this source whose statements stop at this
        thread's request's deadline, closed (or kept for the next caller) after use."""

    def ping(self) -> None:
        """Raise StorageError unless the database answers a trivial query now (cheap: no table is read)."""
        with self._bounded() as db:
            db.query("SELECT 1")

    def tables(self, *, count_rows: bool = True) -> Tables:
        """The sessions tables there now (``agno-storage tables``' list: mode, layout, version, rows).

        ``count_rows=False``: each table's ``rows`` is None, and no row is read
        (a count reads a whole table: too slow for a big one under a request's deadline).

        A table whose name or columns the stores refuse, or that the role may not read
        (PostgreSQL), is listed apart, with why: :meth:`reader` could not
        read it, so it is not offered as readable.
        """
        unreadable: list[tuple[str, str]] = []
        readable = []
        with self._bounded() as db:
            # One the role may not read is listed apart, with why; agent_runs' counts are not shown.
            report = list_tables(db, unreadable, count_rows=count_rows, runs=False)
            if report.unfit_runs is not None:  # nothing reads it, by this name or as runs: say why, and the fix
                unreadable.append((report.unfit_runs.name, report.unfit_runs.reason))
            for info in report.sessions:
                try:
                    schema.check_table_name(info.name, engine=db.engine)
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

    def file(self) -> FileId:
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
        schema.check_table_name(table, engine=self.ENGINE)
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

    def _drop_readers_of_other_files(self, file: FileId) -> None:
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
        """The name ``table``'s reader is kept under: one for every spelling the engine takes as that table
        (SQLite: ``AGENT_SESSIONS`` gets ``agent_sessions``'s reader; one reader per spelling held a file
        descriptor each, and every request failed once they ran out)."""
        return schema.table_key(table, self.ENGINE)

    def lists(self, tables: Tables, table: str) -> bool:
        """Whether ``tables`` (a list :meth:`tables` read) names ``table``, readable or not, as the engine
        compares names (SQLite without ASCII case)."""
        key = self._key(table)
        names = [t.name for t in tables.readable] + [name for name, _ in tables.unreadable]
        return any(self._key(name) == key for name in names)

    def _look(self, table: str, known: Layout | None) -> tuple[Layout, TableInfo | None]:
        """``table``'s layout now, and what it is unless that is ``known``; TableNotFoundError if it is no sessions table."""
        with self._bounded() as db:
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
                    return layout, describe(db, table, count_rows=False)  # a reader needs no row count
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


__all__ = ["FRESH_AFTER", "RECHECK_AFTER", "RETIRED_GRACE", "FileId", "Layout", "Source", "Tables"]
