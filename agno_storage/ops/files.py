"""The files ``export -o`` and ``backup`` write: a temporary file of their own beside the output, moved in place."""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path
from typing import IO

#: How a temporary file is made: anew (an existing name is an error, never a target), never through a link.
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)

#: What link(2) says on a file system that has no hard links (FAT, some network shares).
_NO_HARD_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP})


def new_file(output: Path, mode: int = 0o666, *, beside: tuple[str, ...] = ()) -> tuple[int, Path]:
    """A new empty file beside ``output`` (``.NAME.XXXXXXXX.partial``): its descriptor, open for writing, and path.

    Its name is one no other file has (made exclusively, with a random part,
    never through a link), so two commands writing one output never write
    into or remove each other's temporary file. Nor is any of the names
    ``NAME + suffix`` for a suffix in ``beside`` taken (a SQLite file's
    ``-journal`` or ``-wal``, which SQLite would read with it). ``mode`` is
    open(2)'s: the kernel takes the umask from it. Raises OSError.
    """
    # The name cut short enough for the temporary one to fit a file name's 255 bytes too (as the file system
    # spells it: a name that is not UTF-8 is bytes).
    short = os.fsdecode(os.fsencode(output.name)[:200])
    for _ in range(100):
        path = output.parent / f".{short}.{secrets.token_hex(4)}.partial"
        if any(os.path.lexists(f"{path}{suffix}") for suffix in beside):
            continue
        try:
            return os.open(path, _NEW_FILE, mode), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {os.fspath(output)!r}")


def set_mode(file: int | Path, mode: int) -> None:
    """Give ``file`` (a descriptor or a path) the permission bits ``mode`` (the umask does not apply).

    Only when they differ: a file system whose modes are fixed (FAT, a share
    mounted with a mode) gives every file the same ones and refuses a change.
    """
    if os.stat(file).st_mode & 0o777 != mode:
        os.chmod(file, mode)


def keep_owner_and_mode(fd: int, replaced: os.stat_result) -> None:
    """Give the file open as ``fd`` the permission bits of the file it is to replace, and its owner and group as
    far as this process may change them (root: both; anyone else: the group, if they are in it), as writing
    into that file would have kept them: its readers are the new file's, and no one else."""
    for owner in (replaced.st_uid, -1):
        try:
            os.fchown(fd, owner, replaced.st_gid)
            break
        except OSError:
            continue
    set_mode(fd, replaced.st_mode & 0o777)


def sync(file: IO[bytes] | Path) -> None:
    """Put what was written to ``file`` (open, or a closed file's path) on disk before it takes its name: a
    power cut after a move whose name reached the disk before the bytes would leave an empty or short file
    where the one it replaced was whole."""
    if isinstance(file, Path):
        fd = os.open(file, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return
    file.flush()
    os.fsync(file.fileno())


def move_new(path: Path, dest: Path) -> None:
    """Move the file at ``path`` to ``dest``, a name no file has: FileExistsError when one appeared there since.

    A hard link, then the temporary name removed: unlike rename(2), link(2)
    never replaces what is there. A file system without hard links falls
    back to a rename after a last look.
    """
    try:
        os.link(path, dest)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        if os.path.lexists(dest):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fspath(dest)) from None
        os.replace(path, dest)
        return
    os.unlink(path)


__all__ = ["keep_owner_and_mode", "move_new", "new_file", "set_mode", "sync"]
