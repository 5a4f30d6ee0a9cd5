"""Typed errors: every failure of the store is a subclass of :class:`StorageError`.

Errors carry the table, session_id and column they concern as attributes (``None``
where they do not apply) and survive pickling, so they cross process boundaries
intact.
"""

from __future__ import annotations

from typing import Any


class StorageError(Exception):
    """Root of every error this package raises."""

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        session_id: str | None = None,
        column: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.table = table
        self.session_id = session_id
        self.column = column

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only attributes are not in ``args``; carry them in the state.
        return (self.__class__, (self.message,), self.__dict__)

    def __str__(self) -> str:
        return self.message


class InvalidInputError(StorageError, ValueError):
    """The caller passed something that cannot be stored; nothing was written."""


class SchemaMismatchError(StorageError):
    """The table exists but belongs to another mode or has a shape this code does not know."""

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        expected_mode: str | None = None,
        found_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, table=table, **kwargs)
        self.expected_mode = expected_mode
        self.found_mode = found_mode


class SchemaVersionError(StorageError):
    """The table has an older schema version; call ``upgrade_schema()``."""

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        found_version: int | None = None,
        current_version: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, table=table, **kwargs)
        self.found_version = found_version
        self.current_version = current_version


class TableNotFoundError(StorageError):
    """The table is not there: dropped by another program while this store used it.

    A store's own calls read a missing table as empty and make it again on
    the next write; this error reaches the caller only inside a
    ``transaction()``, whose work so far stands or falls with it.
    """


class CorruptRowError(StorageError):
    """A stored value cannot be decoded (invalid JSON, wrong type)."""


class DiskFullError(StorageError):
    """The disk (or the database's size limit, or the process's file-size limit) is full; nothing of the failed
    write was kept.

    Retryable once space is freed.
    """


class DatabaseCorruptError(StorageError):
    """The database file is damaged or is not a database; retrying will not help."""


class ReadOnlyDatabaseError(StorageError):
    """The database (its file or its folder) cannot be written; reads still work, nothing was written."""


class DatabaseReplacedError(StorageError):
    """The database file was deleted or replaced while this store had it open; the write was not made.

    The store opens the file now at its path on the next call; retry there
    if the new file is the one meant.
    """


class BusyError(StorageError):
    """The database stayed locked by another writer for longer than the busy timeout."""


class OwnershipError(StorageError):
    """A write was refused: the session_id belongs to another user, or has no owner to give (claim_unowned=False).

    The agno adapter also raises it for a session of another user than the one it is scoped to. Nothing of the
    refused write is kept; ``user_id`` is the user the write was made as.
    """

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, table=table, session_id=session_id, **kwargs)
        self.user_id = user_id


class ConnectionLostError(StorageError):
    """The connection to the database server broke and the operation could not be retried safely."""


class RowsKeptError(StorageError):
    """The database kept rows out of a write without an error (another program's trigger that skips them:
    ``RAISE(IGNORE)``, one returning NULL, a rule ``DO INSTEAD NOTHING``); the write was rolled back.

    Raised by ``upsert`` and ``upsert_many`` (naming the session), and by import, copy and prune. Run again, the
    write would meet the same trigger: it is said, not retried.
    """


__all__ = [
    "BusyError",
    "ConnectionLostError",
    "CorruptRowError",
    "DatabaseCorruptError",
    "DatabaseReplacedError",
    "DiskFullError",
    "InvalidInputError",
    "OwnershipError",
    "ReadOnlyDatabaseError",
    "RowsKeptError",
    "SchemaMismatchError",
    "SchemaVersionError",
    "StorageError",
    "TableNotFoundError",
]
