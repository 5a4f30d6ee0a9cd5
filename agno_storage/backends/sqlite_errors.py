"""SQLite's errors as :mod:`agno_storage.errors` names them, and its lenient text factory.

One definition for every SQLite connection the package opens: the store's
(:mod:`agno_storage.backends.sqlite`), the operations' read-only ones
(:mod:`agno_storage.ops.db`) and the HTTP server's
(:mod:`agno_storage.web.source`).
"""

from __future__ import annotations

import sqlite3

from agno_storage.errors import (
    BusyError,
    DatabaseCorruptError,
    DiskFullError,
    ReadOnlyDatabaseError,
    SchemaMismatchError,
    StorageError,
    TableNotFoundError,
)

# Primary result codes (the low byte of an extended code).
_SQLITE_READONLY = 8
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_NOTADB = 26
_BUSY_CODES = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED


def text_or_bytes(data: bytes) -> str | bytes:
    """A TEXT value as str, or as its bytes if they are not UTF-8 (the codec reports those).

    A ``text_factory``: with it, a statement over text another program
    stored in another encoding returns rows instead of failing.
    """
    try:
        return data.decode()
    except UnicodeDecodeError:
        return data


def translate(exc: sqlite3.Error, table: str | None = None) -> StorageError:
    """The typed error for a SQLite error: by result code, or by message where SQLite has no code of its own.

    ``table`` is the table the statement concerned, ``None`` for one that
    concerned the database as a whole.
    """
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if code is not None else None
    text = str(exc)
    if primary == _SQLITE_READONLY:
        return ReadOnlyDatabaseError(
            f"the database (its file or its folder) cannot be written; it can only be read: {exc}", table=table
        )
    if primary in _BUSY_CODES:
        return BusyError(f"database stayed locked past the busy timeout: {exc}", table=table)
    if primary == _SQLITE_FULL:
        return DiskFullError(f"the disk is full; nothing of this write was kept: {exc}", table=table)
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return DatabaseCorruptError(f"the database file is damaged or not a database: {exc}", table=table)
    # These come with the generic SQLITE_ERROR code; the message is all SQLite gives.
    named = "a table" if table is None else f"table {table!r}"
    if text.startswith("no such table"):
        return TableNotFoundError(f"{named} is not there: {exc}", table=table)
    # A read names a missing column "no such column: t.c", a write "table t has no column named c".
    if text.startswith("no such column") or (text.startswith("table ") and " has no column named " in text):
        return SchemaMismatchError(f"{named} changed shape under this store: {exc}", table=table)
    where = "" if table is None else f" on table {table!r}"
    return StorageError(f"SQLite error{where}: {exc}", table=table)


__all__ = ["text_or_bytes", "translate"]
