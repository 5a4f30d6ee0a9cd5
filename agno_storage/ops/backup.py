"""``backup``: an online, consistent snapshot of a SQLite file, checked before it is kept."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import attrs

from agno_storage import urls
from agno_storage.backends.sqlite_errors import translate
from agno_storage.errors import BusyError, StorageError
from agno_storage.ops.db import connect_readonly, hot_journal_error, refuse_source, sqlite_path


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
    makes them wait for the copy). The copy is written beside ``destination``
    and renamed into place only after ``PRAGMA integrity_check`` says ``ok``.
    Refuses an existing destination, and (OutputIsSourceError) a destination
    whose file or ``DEST.partial`` is the source or one of its files. A file
    with a hot journal raises HotJournalError: the source is never written,
    and only a read-write connection may roll the journal back. PostgreSQL: use ``pg_dump`` (docs/ops.md).
    """
    target = urls.parse_location(url)
    if not isinstance(target, urls.SqliteTarget):
        raise StorageError("backup copies SQLite files; for PostgreSQL use pg_dump (see docs/ops.md)")
    source = sqlite_path(target)
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
    partial = dest.with_name(dest.name + ".partial")
    leftovers = (partial, partial.with_name(partial.name + "-journal"))
    # Before anything is removed or written: DEST.partial's clean-up must never take the source or its journal.
    refuse_source(destination, source, "the destination")
    for path in leftovers:
        refuse_source(path, source, "the backup's temporary file")
    src = connect_readonly(source)
    try:
        _remove(leftovers)  # of a backup to this destination that was killed
        # A read transaction first: a file another connection holds locked (EXCLUSIVE, a rollback journal's
        # writer) fails after the busy timeout, as every other command does, where backup() retries forever.
        src.execute("BEGIN")
        src.execute("SELECT count(*) FROM sqlite_master").fetchall()
        out = sqlite3.connect(partial)
        try:
            src.backup(out)  # pages=-1: every page in one step, one snapshot
            (check,) = out.execute("PRAGMA integrity_check").fetchone()
            (pages,) = out.execute("PRAGMA page_count").fetchone()
        finally:
            out.close()
        if check != "ok":
            raise StorageError(f"the copy of {source!r} fails integrity_check: {check}")
        os.replace(partial, dest)
    except (sqlite3.Error, OSError) as exc:
        _remove(leftovers, quiet=True)
        hot = hot_journal_error(source, exc) if isinstance(exc, sqlite3.Error) else None
        if hot is not None:
            raise hot from exc
        if isinstance(exc, sqlite3.OperationalError) and isinstance(translate(exc), BusyError):
            raise BusyError(f"backup of {source!r}: the file is locked by another connection ({exc})") from exc
        raise StorageError(f"backup of {source!r} to {os.fspath(destination)!r} failed: {exc}") from exc
    except BaseException:
        _remove(leftovers, quiet=True)
        raise
    finally:
        src.close()
    return BackupSummary(source=source, destination=str(dest), bytes=dest.stat().st_size, pages=int(pages))


def _remove(paths: tuple[Path, ...], *, quiet: bool = False) -> None:
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            if not quiet:
                raise


__all__ = ["BackupSummary", "backup"]
