"""``backup``: an online, consistent snapshot of a SQLite file, checked before it is kept."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

import attrs

from agno_storage import urls
from agno_storage.backends.sqlite_bulk import fsync_folder
from agno_storage.backends.sqlite_errors import file_size_limit, no_inode_left, translate
from agno_storage.backends.sqlite_files import refuse_non_file
from agno_storage.errors import BusyError, DiskFullError, StorageError
from agno_storage.ops import files
from agno_storage.ops.db import SIDE_SUFFIXES, connect_readonly, hot_journal_error, refuse_source, sqlite_path


@attrs.frozen
class BackupSummary:
    source: str
    destination: str
    bytes: int
    pages: int


def backup(url: str, destination: str | os.PathLike[str]) -> BackupSummary:
    """Copy the SQLite database at ``url`` to ``destination`` while writers keep writing.

    SQLite's online backup API copies every page under one read snapshot of
    a read-only connection: the copy holds exactly what was committed when it
    began, and writers are not stopped (in WAL mode; a rollback-journal file
    makes them wait for the copy). The copy is written to a temporary file of
    its own beside ``destination`` (``.DEST.XXXXXXXX.partial``, see
    :func:`files.new_file`), and that file is moved into place only after
    ``PRAGMA integrity_check`` said ``ok`` of it; it has the source's
    permission bits less the umask. Refuses an existing destination (one
    another backup made while this one ran too), and (OutputIsSourceError) a
    destination that is the source or one of its files. Stopped by an
    exception (SIGTERM in the command), it removes its temporary file; killed
    outright, it leaves it, and no later backup removes it. A file
    with a hot journal raises HotJournalError: the source is never written,
    and only a read-write connection may roll the journal back. PostgreSQL: use ``pg_dump`` (docs/ops.md).
    """
    target = urls.parse_location(url)
    if not isinstance(target, urls.SqliteTarget):
        raise StorageError("backup copies SQLite files; for PostgreSQL use pg_dump (see docs/ops.md)")
    source = sqlite_path(target)
    refuse_non_file(Path(destination).expanduser())  # a clearer word for it than "exists" below
    dest = Path(destination).expanduser().resolve()
    if dest.exists():
        raise StorageError(f"{os.fspath(destination)!r} exists; choose a new file")
    for suffix in ("-wal", "-journal"):
        # Another database's leftover there: SQLite would pair it with the copy on its first open (a WAL's
        # pages read as the copy's, a journal rolled back into it), and the backup would not be the source's.
        stale = dest.with_name(dest.name + suffix)
        if stale.exists():
            raise StorageError(
                f"{os.fspath(stale)!r} exists, left by another database: SQLite would read it with the copy;"
                " remove it or choose a new file"
            )
    # Before anything is written: DEST must not be the source or one of its files.
    refuse_source(destination, source, "the destination")
    src = connect_readonly(source, target.timeout)
    partial: Path | None = None
    try:
        # A read transaction first: a file another connection holds locked (EXCLUSIVE, a rollback journal's
        # writer) fails after the busy timeout, as every other command does, where backup() retries forever.
        src.execute("BEGIN")
        src.execute("SELECT count(*) FROM sqlite_master").fetchall()
        # The copy is the snapshot's pages, byte for byte: past the process's file-size limit, SQLite would
        # fail part way with a plain I/O error and take back what it wrote (nothing left to tell it by).
        size = src.execute("PRAGMA page_count").fetchone()[0] * src.execute("PRAGMA page_size").fetchone()[0]
        limit = file_size_limit()
        if limit is not None and size > limit:
            raise DiskFullError(
                f"backup of {source!r}: the copy would be {size} bytes, past this process's file-size limit"
                f" (RLIMIT_FSIZE, {limit} bytes); nothing was written"
            )
        # A file of this backup's own, which no other backup to DEST writes, moves or removes. As cp makes
        # a copy: with the source's permission bits less the umask, so that no one may read the copy who may
        # not read the database.
        fd, partial = files.new_file(dest, os.stat(source).st_mode & 0o777, beside=SIDE_SUFFIXES)
        try:
            mode = os.fstat(fd).st_mode & 0o777
            files.set_mode(fd, mode | 0o600)  # until it is checked: SQLite writes it (a read-only source's too)
        finally:
            # Before SQLite opens it: closing another descriptor of a file drops SQLite's locks on it.
            os.close(fd)
        out = sqlite3.connect(partial)
        try:
            src.backup(out)  # pages=-1: every page in one step, one snapshot
            (check,) = out.execute("PRAGMA integrity_check").fetchone()
            (pages,) = out.execute("PRAGMA page_count").fetchone()
        finally:
            out.close()
        if check != "ok":
            raise StorageError(f"the copy of {source!r} fails integrity_check: {check}")
        files.sync(partial)  # while this process may still read it (set_mode may take that away)
        files.set_mode(partial, mode)
        try:
            files.move_new(partial, dest)  # the file just checked, and never over a DEST made meanwhile
        except FileExistsError:
            raise StorageError(
                f"{os.fspath(destination)!r} exists (made while this backup ran); choose a new file"
            ) from None
        fsync_folder(dest.parent)  # its name on disk too
    except (sqlite3.Error, OSError) as exc:
        error = _error(exc, source, destination, dest.parent)  # before the removal frees what was lacking
        _remove(partial)
        raise error from exc
    except BaseException:
        _remove(partial)
        raise
    finally:
        src.close()
    return BackupSummary(source=source, destination=str(dest), bytes=dest.stat().st_size, pages=int(pages))


def _error(
    exc: sqlite3.Error | OSError, source: str, destination: str | os.PathLike[str], folder: Path
) -> StorageError:
    """The typed error for what stopped a backup: a hot journal, a lock held too long, a full disk, else a
    StorageError naming both files."""
    failed = f"backup of {source!r} to {os.fspath(destination)!r} failed"
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(f"{failed}: no room for it in {os.fspath(folder)!r}: {exc}")
    if isinstance(exc, sqlite3.Error) and no_inode_left(folder):
        # SQLite cannot make the journal beside the copy ("unable to open database file"): no inode is left.
        return DiskFullError(f"{failed}: no room for another file in {os.fspath(folder)!r} (no inode left): {exc}")
    if isinstance(exc, sqlite3.Error):
        hot = hot_journal_error(source, exc)
        if hot is not None:
            return hot
        typed = translate(exc)
        if isinstance(typed, BusyError):
            return BusyError(f"backup of {source!r}: the file is locked by another connection ({exc})")
        if isinstance(typed, DiskFullError):
            return DiskFullError(f"{failed}: {typed.message}")
    return StorageError(f"{failed}: {exc}")


def _remove(partial: Path | None) -> None:
    """Remove this backup's temporary file and the files SQLite made beside it, and no other (on the way out of
    an error, which is the one reported)."""
    if partial is None:
        return
    for suffix in ("", *SIDE_SUFFIXES):  # the files SQLite made beside this backup's are its own too
        try:
            Path(f"{partial}{suffix}").unlink(missing_ok=True)
        except OSError:
            pass


__all__ = ["BackupSummary", "backup"]
