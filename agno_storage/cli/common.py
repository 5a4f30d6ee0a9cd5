"""What every ``agno-storage`` command shares: opening a store from its arguments, output, exit codes.

Command modules (``agno_storage.cli.<name>``) import from here and call only
the package's public API.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agno_storage import (
    BaseStorage,
    InvalidInputError,
    Mode,
    SchemaMismatchError,
    SqliteStorage,
    StorageError,
    agent_runs,
    urls,
)

PROG = "agno-storage"

OK, NOT_FOUND, FAILED = 0, 1, 2
#: 128 + SIGPIPE, what a shell reports for a reader that went away (``| head``).
BROKEN_PIPE = 141
#: 128 + SIGINT: Ctrl-C.
INTERRUPTED = 130


class Exit(Exception):
    """Stop the command with ``code`` and ``message`` on stderr."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def table_parents() -> dict[str, argparse.ArgumentParser]:
    """Argument groups commands share: ``table`` (URL, --table, --mode, --schema) and ``session`` (SESSION_ID)."""
    table = argparse.ArgumentParser(add_help=False)
    table.add_argument(
        "url", metavar="URL", help="a SQLite file path, sqlite:///relative.db, sqlite:////abs.db or postgresql://..."
    )
    table.add_argument("--table", required=True, help="the sessions table, e.g. agent_sessions")
    table.add_argument(
        "--mode",
        choices=[m.value for m in Mode],
        help="the table's mode; detected from its columns when omitted",
    )
    table.add_argument(
        "--schema", help="PostgreSQL only: the schema holding the table (default ai; '' for the search path)"
    )
    session = argparse.ArgumentParser(add_help=False)
    session.add_argument("session_id", metavar="SESSION_ID")
    return {"table": table, "session": session}


def count_arg(text: str) -> int:
    """An argparse type: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


# --- opening a store ------------------------------------------------------


def parse_target(url: str) -> urls.Target:
    """What the URL argument names; a bare path is a SQLite file. Bad URLs are bad arguments."""
    try:
        target = urls.parse_location(url)
    except InvalidInputError as exc:
        raise Exit(FAILED, str(exc)) from None
    if isinstance(target, urls.SqliteTarget) and target.path is None:
        raise Exit(FAILED, f"{urls.shown(url)} is an in-memory database, which starts empty; give a file")
    from agno_storage.ops.db import check_conninfo

    try:
        check_conninfo(url)  # at once: a store would try to connect for seconds first
    except StorageError as exc:
        raise Exit(FAILED, str(exc)) from None
    return target


def schema_option(url: str, value: str | None, option: str = "--schema") -> str | None:
    """``--schema`` as the API takes it: default ``ai``; ``''`` is the search path (None). A SQLite ``url``
    refuses it (exit 2): a file has no schemas, and the option would do nothing."""
    if value is None:
        return "ai"
    if isinstance(parse_target(url), urls.SqliteTarget):
        raise Exit(FAILED, f"{option} applies to PostgreSQL URLs only")
    return value or None


def make_store(
    url: str, target: urls.Target, table: str, mode: Mode | str, schema: str | None, *, read_only: bool = False
) -> BaseStorage:
    """The store of ``table``; ``read_only`` opens a SQLite file with ``mode=ro`` (PostgreSQL: no change)."""
    if isinstance(target, urls.SqliteTarget):
        if schema is not None:
            raise Exit(FAILED, "--schema applies to PostgreSQL URLs only")
        return SqliteStorage(table, db_file=target.path, mode=mode, read_only=read_only, busy_timeout=target.timeout)
    if schema is None:
        return urls.open_storage(url, table_name=table, mode=mode)
    # '' means "no schema": the server's search path decides, as agno's schema=None does.
    return urls.open_storage(url, table_name=table, mode=mode, schema=schema or None)


@contextmanager
def opened(args: argparse.Namespace, *, read_only: bool = False) -> Iterator[tuple[BaseStorage, bool]]:
    """The store of ``args.url`` / ``args.table`` and whether its mode was detected; closed on exit.

    ``read_only`` (the inspecting commands) opens a SQLite file with
    ``mode=ro``: the file's bytes, its journal mode and its -wal stay as they were;
    a hot journal it may not roll back is a HotJournalError saying how to recover.

    Without ``--mode`` the table is opened as an agent table first: the store
    refuses another mode's table with a SchemaMismatchError naming the mode it
    found, and the table is opened again in that one. Raises Exit(NOT_FOUND)
    for a missing SQLite file or table (nothing is created).
    """
    target = parse_target(args.url)
    if isinstance(target, urls.SqliteTarget) and target.path and not Path(target.path).expanduser().exists():
        raise Exit(NOT_FOUND, f"no database file {target.path!r}")
    try:
        with _opened(args, target, read_only) as found:
            yield found
    except StorageError as exc:
        from agno_storage.ops.db import hot_journal_error

        path = target.path if isinstance(target, urls.SqliteTarget) else None
        hot = hot_journal_error(path, exc, args.table) if path else None
        if hot is None:
            raise
        raise hot from exc


@contextmanager
def _opened(args: argparse.Namespace, target: urls.Target, read_only: bool) -> Iterator[tuple[BaseStorage, bool]]:
    if args.mode is not None:
        store = make_store(args.url, target, args.table, args.mode, args.schema, read_only=read_only)
        detected = False
    else:
        try:
            store = make_store(args.url, target, args.table, Mode.AGENT, args.schema, read_only=read_only)
        except SchemaMismatchError as exc:
            if exc.found_mode is None:
                raise
            store = make_store(args.url, target, args.table, exc.found_mode, args.schema, read_only=read_only)
        detected = True
    with store:
        # A Go Agent writes agent_runs and no agent table: with none beside them, its sessions are there.
        if not store.table_exists() and not agent_runs.alone(store):
            raise Exit(NOT_FOUND, f"no table {args.table!r} in {shown(args.url)}; {_tables_there(args)}")
        yield store, detected


def _tables_there(args: argparse.Namespace) -> str:
    """Which tables the database has, for a "no table" message (read-only)."""
    from agno_storage.ops.db import open_database
    from agno_storage.ops.tables import there_are

    schema = "ai" if args.schema is None else args.schema or None
    try:
        with open_database(args.url, schema) as db:
            return there_are(db.table_names())
    except StorageError:
        return "its tables could not be listed"


#: ``url`` fit for a message: a password in it becomes ``***`` (as the HTTP server shows it).
shown = urls.without_password


def as_argument(location: str) -> str:
    """``location`` as a command line may give it again, shell-quoted: a URL with its password masked; a
    file named like a libpq setting (``password=old.db``) as ``./password=old.db``, which no command takes
    for a connection string, and not masked (it is a file's name)."""
    if not urls.is_url(location) and urls.is_conninfo(location):
        return shlex.quote(location if location.startswith(("/", "./", "~")) else "./" + location)
    return shlex.quote(shown(location))


def upgrade_line(location: str, table: str | None, schema: str | None) -> str:
    """The ``agno-storage upgrade`` line that brings ``table`` of ``location`` to the current schema version.

    ``schema`` as the command took it (None: its default, ``ai``); named for a PostgreSQL location only.
    """
    line = f"{PROG} upgrade {as_argument(location)} --table {shlex.quote(table or 'TABLE')}"
    if schema not in (None, "ai") and isinstance(urls.parse_location(location), urls.PostgresTarget):
        line += f" --schema {shlex.quote(schema)}"
    return line


# --- output ---------------------------------------------------------------


def out(text: str) -> None:
    """Print ``text``; characters the terminal's encoding lacks come out as escapes."""
    try:
        print(text)
    except UnicodeEncodeError:
        encoding = sys.stdout.encoding or "utf-8"
        print(text.encode(encoding, "backslashreplace").decode(encoding))


def to_json(value: Any) -> str:
    """``value`` as indented JSON; characters the output's encoding lacks as ``\\u`` escapes (still JSON)."""
    encoding = (getattr(sys.stdout, "encoding", None) or "utf-8").lower().replace("-", "").replace("_", "")
    return json.dumps(value, indent=2, ensure_ascii=encoding != "utf8")


def printable(text: str) -> str:
    """``text`` with each character a terminal would act on (ESC, other controls) escaped; the rest kept."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def cell(value: str | None) -> str:
    """A table cell on one line: '-' for none, control characters escaped."""
    if value is None or value == "":
        return "-"
    if value.isprintable():
        return value
    return value.encode("unicode_escape").decode("ascii")


def time_text(ts: int | None) -> str:
    """Unix seconds as ISO 8601 UTC; the number itself if no calendar date fits."""
    if ts is None:
        return "-"
    try:
        return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(ts)


def columns(rows: list[list[str]]) -> list[str]:
    """``rows`` as lines of aligned columns, each cell padded to its column's width on a terminal."""
    widths = [max(width(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell + " " * (w - width(cell)) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def width(text: str) -> int:
    """The cells ``text`` takes on a terminal: 2 for a wide character (CJK, most emoji), 0 for a combining
    mark or a zero-width one, 1 for the rest. An emoji sequence counts once: a character joined on with
    U+200D or a skin tone adds nothing, and U+FE0F makes the character before it an emoji (2)."""
    if text.isascii():
        return len(text)
    total, last, joined = 0, 0, False
    for c in text:
        if c == "\ufe0f":
            total += 1 if last == 1 else 0  # the emoji presentation of the character before: two cells
            last = 2
            continue
        if joined or "\U0001f3fb" <= c <= "\U0001f3ff":  # joined on, or a skin tone: part of the one emoji
            joined = False
            continue
        joined = c == "\u200d" and last == 2  # an emoji joined to the one before
        if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf"):
            continue
        last = 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
        total += last
    return total


def missing_session(args: argparse.Namespace) -> Exit:
    owner = "" if args.user is None else f" for user {args.user!r}"
    return Exit(NOT_FOUND, f"no session {args.session_id!r}{owner} in table {args.table!r}")
