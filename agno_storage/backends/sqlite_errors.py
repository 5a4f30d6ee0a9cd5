"""SQLite's errors as :mod:`agno_storage.errors` names them, and its lenient text factory.

One definition for every SQLite connection the package opens: the store's
(:mod:`agno_storage.backends.sqlite`), the operations' read-only ones
(:mod:`agno_storage.ops.db`) and the HTTP server's
(:mod:`agno_storage.web.source`).
"""

from __future__ import annotations

import os
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
_SQLITE_CANTOPEN = 14
_SQLITE_READONLY_DIRECTORY = _SQLITE_READONLY | (6 << 8)  # an extended code: the folder is read-only
_SQLITE_NOTADB = 26
_SQLITE_IOERR_WRITE = 10 | (3 << 8)  # an extended code: write() failed, and not for want of space
# The files whose writes a transaction makes: the database, its WAL, its rollback journal.
_SUFFIXES = ("", "-wal", "-journal")
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


def translate(
    exc: sqlite3.Error, table: str | None = None, path: str | None = None, *, read_only: bool = False
) -> StorageError:
    """The typed error for a SQLite error: by result code, or by message where SQLite has no code of its own.

    ``table`` is the table the statement concerned, ``None`` for one that
    concerned the database as a whole. ``path``, the database file, lets a
    failed write be told as the process's file-size limit (see
    :func:`file_size_limit_reached`). ``read_only``: the connection was
    opened ``mode=ro`` and writes no file of the database, so a write that
    failed was one of its temporary files' (a sort's, of a table with no
    index for its order); with a file-size limit in force, the limit is
    what a file that grows (and no database file) meets.
    """
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if code is not None else None
    text = str(exc)
    if code == _SQLITE_IOERR_WRITE and path is not None:
        limit = file_size_limit_reached(path)
        if limit is not None:
            return DiskFullError(
                f"the database's files reached this process's file-size limit (RLIMIT_FSIZE, {limit} bytes); "
                f"nothing of this write was kept: {exc}",
                table=table,
            )
    if code == _SQLITE_IOERR_WRITE and read_only:
        limit = file_size_limit()
        if limit is not None:
            return DiskFullError(
                "a temporary file SQLite sorts this read in (in SQLITE_TMPDIR, else TMPDIR) could not be written"
                f" past this process's file-size limit (RLIMIT_FSIZE, {limit} bytes); the database was only read,"
                f" never written: {exc}",
                table=table,
            )
    if primary == _SQLITE_CANTOPEN and path is not None and no_inode_left(os.path.dirname(os.path.abspath(path))):
        # SQLite could not make a file beside the database (its WAL, its journal): Python's sqlite3 gives no
        # errno, and a file system out of inodes makes no new file.
        return DiskFullError(
            f"no file can be made beside the database (its disk has no inode left); nothing of this write was"
            f" kept: {exc}",
            table=table,
        )
    if code == _SQLITE_READONLY_DIRECTORY or (
        primary == _SQLITE_CANTOPEN and path is not None and _folder_read_only(path)
    ):
        return ReadOnlyDatabaseError(
            "the database's folder cannot be written, and SQLite must make a file beside the database there: a"
            " WAL-mode database is read through its -shm file, and written through its -wal (another through its"
            f" journal); open it where its folder can be written, or copy it: {exc}",
            table=table,
        )
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


def _folder_read_only(path: str) -> bool:
    """Whether the database file at ``path`` is there in a folder this process cannot make files in."""
    return os.path.isfile(path) and not os.access(os.path.dirname(os.path.abspath(path)), os.W_OK)


def no_inode_left(folder: str | os.PathLike[str]) -> bool:
    """Whether the file system of ``folder`` has no inode left for a new file (where it counts them)."""
    try:
        fs = os.statvfs(folder)
    except OSError:
        return False
    return fs.f_files > 0 and fs.f_favail == 0


def file_size_limit_reached(path: str) -> int | None:
    """The process's file-size limit (RLIMIT_FSIZE) when a file of the database at ``path`` is at it, else None.

    SQLite reports a write past the limit (errno EFBIG) as SQLITE_IOERR_WRITE,
    the code of any failed write, not as SQLITE_FULL, and Python's sqlite3
    does not give the errno. A file cannot grow past the limit, and a write
    that reaches it fails, so a failed write with the database, its WAL or
    its journal at the limit is one the limit stopped.
    """
    soft = file_size_limit()
    if soft is None:
        return None
    for suffix in _SUFFIXES:
        try:
            if os.path.getsize(path + suffix) >= soft:
                return soft
        except OSError:
            continue
    return None


def file_size_limit() -> int | None:
    """The process's file-size limit (RLIMIT_FSIZE) in bytes: no file it writes grows past it; None if there is none."""
    try:
        import resource
    except ImportError:  # no such limit where there is no resource module (Windows)
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


__all__ = ["file_size_limit", "file_size_limit_reached", "no_inode_left", "text_or_bytes", "translate"]
