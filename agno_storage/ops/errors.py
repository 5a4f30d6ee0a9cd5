"""Errors of the operations: subclasses of :class:`~agno_storage.errors.StorageError`."""

from __future__ import annotations

from typing import Any

from agno_storage.errors import StorageError


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


class RowsKeptError(StorageError):
    """The database kept rows of a batch out of a write without an error (another program's trigger that skips
    them: ``RAISE(IGNORE)``, one returning NULL, a rule ``DO INSTEAD NOTHING``); the batch was rolled back.

    Run again, the operation would meet the same trigger: it is said, not retried.
    """


__all__ = ["DatabaseMissingError", "ExportFormatError", "HotJournalError", "OutputIsSourceError", "RowsKeptError"]
