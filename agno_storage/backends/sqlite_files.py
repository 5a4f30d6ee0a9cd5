"""The file a SQLite store opens: its path from ``db_url`` / ``db_file``, its identity, its read-only URI.

Path rules shared by the store and by the tools that open its files
themselves (the ops commands, ``serve``, ``to_agno3``): an in-memory
database is ``None``; a file is known by (device, inode), so that a file
replaced behind an open connection is noticed. A path that names
something other than a regular file (a directory, a named pipe, a device,
a socket) is refused before SQLite opens it: see :func:`refuse_non_file`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from urllib.parse import quote as quote_uri_path

from agno_storage import urls
from agno_storage.errors import InvalidInputError, StorageError


def resolve_path(db_url: object, db_file: object, *, make_folder: bool = True) -> str | None:
    """The database file for ``db_url`` / ``db_file``, or None for memory.

    ``make_folder``: create the file's folder if it is missing (a store that
    only reads leaves the file system as it was).
    """
    if db_url is not None:
        target = urls.parse(db_url, "db_url")
        if not isinstance(target, urls.SqliteTarget):
            raise InvalidInputError(f"db_url must look like sqlite:///path.db, got {urls.shown(db_url)}")
        if target.path is None:
            return None
        db_file = target.path
    if db_file is None:
        return None
    if not isinstance(db_file, (str, os.PathLike)) or not isinstance(os.fspath(db_file), str):
        raise InvalidInputError(f"db_file must be a str or a path-like object naming a file, got {db_file!r}")
    if os.fspath(db_file) == ":memory:":
        return None  # sqlite3's (and agno's) name for an in-memory database, not a file's
    if not os.fspath(db_file):
        raise InvalidInputError("db_file must name a file, got '' (None or ':memory:' is a database in memory)")
    refuse_non_file(Path(db_file).expanduser())
    try:
        path = Path(db_file).expanduser().resolve()
        if make_folder:
            path.parent.mkdir(parents=True, exist_ok=True)
    except ValueError as exc:  # an embedded NUL byte
        raise InvalidInputError(f"db_file is not a usable path: {db_file!r} ({exc})") from exc
    except OSError as exc:
        raise StorageError(f"cannot make the folder of {db_file!r}: {exc}") from exc
    return str(path)


#: What a path that is not a regular file is, by the test of its mode.
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def refuse_non_file(path: str | os.PathLike[str], what: str = "") -> None:
    """Raise InvalidInputError if ``path`` names (through links) something other than a regular file;
    ``what`` (``"DST "``) comes before the path in the message.

    SQLite opens whatever a path names: a device takes the writes and gets a
    ``-journal`` beside it, a named pipe blocks a read-only open until a
    writer comes (for ever, if none does), a directory fails with "unable to
    open". Nothing there, or a path that cannot be looked at, passes: the
    open that follows makes the file or says what is wrong. One ``stat``.
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    raise InvalidInputError(f"{what}{os.fspath(path)!r} is {kind}, not a database file")


def lock_wait(db_url: object, busy_timeout: float | None, default: float) -> float:
    """The seconds to wait for a lock: ``busy_timeout``, or ``db_url``'s ``?timeout=`` (SQLAlchemy's and
    sqlite3's name for it), or ``default``; InvalidInputError when both are given. Not checked here."""
    timeout = None
    if db_url is not None:
        target = urls.parse(db_url, "db_url")
        timeout = target.timeout if isinstance(target, urls.SqliteTarget) else None
    if timeout is not None and busy_timeout is not None:
        raise InvalidInputError(
            f"db_url {urls.shown(db_url)} sets timeout= and busy_timeout={busy_timeout!r} is given too; give one"
        )
    if timeout is not None:
        return timeout
    return default if busy_timeout is None else busy_timeout


def read_only_uri(path: str | os.PathLike[str]) -> str:
    """The ``file:...?mode=ro`` URI of the file at ``path`` (absolute), for ``sqlite3.connect(..., uri=True)``."""
    return file_uri(path, "ro")


def file_uri(path: str | os.PathLike[str], mode: str) -> str:
    """The ``file:...?mode=...`` URI of the file at ``path`` (absolute): ``"ro"`` read only, ``"rw"`` read and
    written but never made, for ``sqlite3.connect(..., uri=True)``.

    Quoted from the name's bytes, as open() takes them: a name that is not
    UTF-8 (surrogate escapes in the str) has no quote as text. Raises
    InvalidInputError for a path that is not a regular file (:func:`refuse_non_file`).
    """
    refuse_non_file(path)
    quoted = quote_uri_path(os.fsencode(os.path.abspath(os.fspath(path))))
    if quoted.startswith("//"):  # POSIX keeps two leading slashes, which a URI reads as a host: an empty one first
        quoted = "//" + quoted
    return "file:" + quoted + f"?mode={mode}"


def file_id(path: str) -> tuple[int, int]:
    """(device, inode) of the file at ``path``; raises OSError if there is none."""
    st = os.stat(path)
    return st.st_dev, st.st_ino


def writable(path: str | None) -> bool:
    """True if this process may write ``path`` and make files beside it (journals, WAL)."""
    if path is None:
        return True
    folder = os.path.dirname(path) or "."
    if not (os.access(path, os.W_OK) and os.access(folder, os.W_OK)):
        return False
    try:
        return not os.statvfs(folder).f_flag & os.ST_RDONLY
    except OSError:
        return True
