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

import os
from pathlib import Path

#: WAL pages a bulk load's connection lets pile up before it checkpoints them
#: into the file (64 MiB at 4 KiB a page; SQLite's default is 1,000). Each
#: checkpoint fsyncs the WAL and the file: fewer, larger syncs are most of a
#: bulk write's speed. Other connections keep their own setting.
CHECKPOINT_PAGES = 16384


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
    try:
        fd = os.open(os.path.dirname(wal), os.O_RDONLY)
    except OSError:  # a folder cannot be opened on Windows: NTFS journals its entries
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["CHECKPOINT_PAGES", "fsync_wal", "wal_path"]
