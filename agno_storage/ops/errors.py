"""Errors of the operations: subclasses of :class:`~agno_storage.errors.StorageError`."""

from __future__ import annotations

import functools
from typing import Any

from agno_storage.errors import (
    BusyError,
    ConnectionLostError,
    DatabaseReplacedError,
    DiskFullError,
    RowsKeptError,
    StorageError,
)


class DatabaseMissingError(StorageError):
    """The SQLite file named is not there; nothing was created."""


class OutputIsSourceError(StorageError):
    """A file a command would write is the database it reads (or its -wal, -shm, -journal); nothing was written.

    ``path`` is the file named.
    """

    def __init__(self, message: str, *, path: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.path = path


class HotJournalError(StorageError):
    """A rollback-journal SQLite file has a hot journal a read-only connection may not roll back.

    A writer stopped in the middle of a transaction; the next read-write
    connection rolls it back. ``path`` is the database file.
    """

    def __init__(self, message: str, *, path: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.path = path


class ExportFormatError(StorageError):
    """A line of an export file cannot be imported; nothing of its batch was written.

    ``line`` is its 1-based line number; ``imported`` how many sessions of
    earlier batches were committed before it.
    """

    def __init__(self, message: str, *, line: int, imported: int = 0, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.line = line
        self.imported = imported

    def __reduce__(self) -> tuple[Any, ...]:
        # ``line`` is required: rebuilt with it, the rest restored from the state (StorageError.__reduce__).
        return (functools.partial(self.__class__, line=self.line), (self.message,), self.__dict__)


#: What stops a write for a while, not for good: a full disk, a lock held past the busy timeout (on PostgreSQL a
#: statement cancelled or timed out too), a lost connection, a SQLite file replaced while open. Running the operation
#: again after it meets none of it, or waits for it again. Anything else (a value or constraint the database
#: refuses: another program's UNIQUE index, NOT NULL or CHECK, a narrower column; a table of another mode; rows a
#: trigger keeps out) a rerun meets again.
_PASSING = (BusyError, ConnectionLostError, DatabaseReplacedError, DiskFullError)


def rerun_completes(exc: BaseException) -> bool:
    """Whether running a batched write (import, copy, prune) again can complete what ``exc`` stopped midway."""
    return isinstance(exc, _PASSING)


__all__ = [
    "DatabaseMissingError",
    "ExportFormatError",
    "HotJournalError",
    "OutputIsSourceError",
    "RowsKeptError",
    "rerun_completes",
]
