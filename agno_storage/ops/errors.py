"""Errors of the operations: subclasses of :class:`~agno_storage.errors.StorageError`."""

from __future__ import annotations

from typing import Any

from agno_storage.errors import StorageError


class DatabaseMissingError(StorageError):
    """The SQLite file named is not there; nothing was created."""


class ExportFormatError(StorageError):
    """A line of an export file cannot be imported; nothing of its batch was written.

    ``line`` is its 1-based line number; ``imported`` how many sessions of
    earlier batches were committed before it.
    """

    def __init__(self, message: str, *, line: int, imported: int = 0, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.line = line
        self.imported = imported


__all__ = ["DatabaseMissingError", "ExportFormatError"]
