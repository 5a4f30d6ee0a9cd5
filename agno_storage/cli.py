"""The ``agno-storage`` command: inspect and maintain a sessions table from a shell.

A thin layer over the public API (``open_storage``, ``SqliteStorage`` and the
store's methods). It adds two things of its own: it finds the mode of an
existing table when ``--mode`` is not given, and it refuses to open a SQLite
file that does not exist (opening one through the store would create it).

Exit codes: 0 done; 1 the database file, table or session named is not
there; 2 bad arguments (argparse) or a :class:`StorageError`, reported as one
line on stderr. See docs/cli.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

import agno_storage
from agno_storage import (
    BaseStorage,
    InvalidInputError,
    Mode,
    SchemaMismatchError,
    SchemaVersionError,
    SqliteStorage,
    StorageError,
    urls,
)

PROG = "agno-storage"

OK, NOT_FOUND, FAILED = 0, 1, 2
#: 128 + SIGPIPE, what a shell reports for a reader that went away (``| head``).
BROKEN_PIPE = 141

_LAYOUTS = {
    "go": "go (the Go port's DDL, as agno-golang and agno_storage create it)",
    "agno": "agno (agno 1.x's SQLAlchemy DDL)",
    "unknown": "unknown (neither the Go port's nor agno's index names)",
}


class _Exit(Exception):
    """Stop the command with ``code`` and ``message`` on stderr."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- opening a store ------------------------------------------------------


def _target(url: str) -> urls.Target:
    """What the URL argument names; a bare path is a SQLite file. Bad URLs are bad arguments."""
    try:
        target = urls.parse_location(url)
    except InvalidInputError as exc:
        raise _Exit(FAILED, str(exc)) from None
    if isinstance(target, urls.SqliteTarget) and target.path is None:
        raise _Exit(FAILED, f"{url!r} is an in-memory database, which starts empty; give a file")
    return target


def _make_store(url: str, target: urls.Target, table: str, mode: Mode | str, schema: str | None) -> BaseStorage:
    if isinstance(target, urls.SqliteTarget):
        if schema is not None:
            raise _Exit(FAILED, "--schema applies to PostgreSQL URLs only")
        return SqliteStorage(table, db_file=target.path, mode=mode)
    if schema is None:
        return urls.open_storage(url, table_name=table, mode=mode)
    # '' means "no schema": the server's search path decides, as agno's schema=None does.
    return urls.open_storage(url, table_name=table, mode=mode, schema=schema or None)


@contextmanager
def _opened(args: argparse.Namespace) -> Iterator[tuple[BaseStorage, bool]]:
    """The store of ``args.url`` / ``args.table`` and whether its mode was detected; closed on exit.

    Without ``--mode`` the table is opened as an agent table first: the store
    refuses another mode's table with a SchemaMismatchError naming the mode it
    found, and the table is opened again in that one. Raises _Exit(NOT_FOUND)
    for a missing SQLite file or table (nothing is created).
    """
    target = _target(args.url)
    if isinstance(target, urls.SqliteTarget) and target.path and not Path(target.path).expanduser().exists():
        raise _Exit(NOT_FOUND, f"no database file {target.path!r}")
    if args.mode is not None:
        store = _make_store(args.url, target, args.table, args.mode, args.schema)
        detected = False
    else:
        try:
            store = _make_store(args.url, target, args.table, Mode.AGENT, args.schema)
        except SchemaMismatchError as exc:
            if exc.found_mode is None:
                raise
            store = _make_store(args.url, target, args.table, exc.found_mode, args.schema)
        detected = True
    with store:
        if not store.table_exists():
            raise _Exit(NOT_FOUND, f"no table {args.table!r} in {_shown(args.url)}")
        yield store, detected


def _shown(url: str) -> str:
    """``url`` fit for a message: a password in it becomes ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    return url.replace(f":{password}@", ":***@", 1)


# --- output ---------------------------------------------------------------


def _out(text: str) -> None:
    """Print ``text``; characters the terminal's encoding lacks come out as escapes."""
    try:
        print(text)
    except UnicodeEncodeError:
        encoding = sys.stdout.encoding or "utf-8"
        print(text.encode(encoding, "backslashreplace").decode(encoding))


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _cell(value: str | None) -> str:
    """A table cell on one line: '-' for none, control characters escaped."""
    if value is None or value == "":
        return "-"
    if value.isprintable():
        return value
    return value.encode("unicode_escape").decode("ascii")


def _time(ts: int | None) -> str:
    """Unix seconds as ISO 8601 UTC; the number itself if no calendar date fits."""
    if ts is None:
        return "-"
    try:
        return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(ts)


def _columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def _missing_session(args: argparse.Namespace) -> _Exit:
    owner = "" if args.user is None else f" for user {args.user!r}"
    return _Exit(NOT_FOUND, f"no session {args.session_id!r}{owner} in table {args.table!r}")


# --- commands -------------------------------------------------------------


def _info(args: argparse.Namespace) -> int:
    with _opened(args) as (store, detected):
        shape = store.schema_shape()
        if shape is None:  # dropped since it was opened
            raise _Exit(NOT_FOUND, f"no table {args.table!r} in {_shown(args.url)}")
        if shape.missing:
            upgrade = f"yes: adds {', '.join(sorted(shape.missing))} ({PROG} upgrade)"
            try:
                count = str(store.count())
            except SchemaVersionError:
                count = "unknown until the table is upgraded (reads need the current schema)"
        else:
            upgrade = "no"
            count = str(store.count())
        if isinstance(store, SqliteStorage):
            engine = "sqlite"
            durability = (
                f"journal_mode=WAL, synchronous={store.synchronous.value}, "
                f"busy_timeout={store.busy_timeout:g}s (agno_storage's connection settings)"
            )
        else:
            engine, durability = _postgres_facts(store)
        rows = [
            ("table", store.table_name),
            ("engine", engine),
            ("mode", f"{store.mode.value} ({'detected' if detected else 'given'})"),
            ("layout", _LAYOUTS.get(shape.flavor.value, shape.flavor.value)),
            ("schema version", str(shape.version)),
            ("needs upgrade", upgrade),
            ("sessions", count),
            ("durability", durability),
        ]
        width = max(len(key) for key, _ in rows) + 1
        for key, value in rows:
            _out(f"{key + ':':<{width}} {value}")
    return OK


def _postgres_facts(store: BaseStorage) -> tuple[str, str]:
    """(engine, durability) lines of a PostgreSQL store; durability is the server's to decide."""
    from agno_storage import PostgresStorage

    assert isinstance(store, PostgresStorage)
    engine = f"postgresql (schema {store.schema})" if store.schema else "postgresql (search path)"
    settings = ("synchronous_commit", "fsync")
    # The store's transaction yields its connection (documented); SHOW writes nothing.
    with store.transaction() as conn:
        rows = [conn.execute(f"SHOW {name}").fetchone() for name in settings]
    durability = "the server's: " + ", ".join(f"{k}={r[0] if r else '?'}" for k, r in zip(settings, rows, strict=True))
    return engine, durability


def _list(args: argparse.Namespace) -> int:
    with _opened(args) as (store, _):
        sessions = store.list(user_id=args.user, entity_id=args.entity, limit=args.limit)
        entity = store.spec.entity_column
        if args.json:
            _out(
                _json(
                    [
                        {
                            "session_id": s.session_id,
                            "user_id": s.user_id,
                            entity: s.entity_id,
                            "created_at": s.created_at,
                            "updated_at": s.updated_at,
                        }
                        for s in sessions
                    ]
                )
            )
            return OK
        rows = [["session_id", "user_id", entity, "created_at", "updated_at"]]
        rows += [
            [_cell(s.session_id), _cell(s.user_id), _cell(s.entity_id), _time(s.created_at), _time(s.updated_at)]
            for s in sessions
        ]
        for line in _columns(rows):
            _out(line)
    return OK


def _show(args: argparse.Namespace) -> int:
    with _opened(args) as (store, _):
        session = store.read(args.session_id, user_id=args.user)
        if session is None:
            raise _missing_session(args)
        _out(_json(attrs.asdict(session)))
    return OK


def _upgrade(args: argparse.Namespace) -> int:
    with _opened(args) as (store, _):
        before = store.schema_shape()
        if before is None:
            raise _Exit(NOT_FOUND, f"no table {args.table!r} in {_shown(args.url)}")
        if not before.missing:
            _out(f"table {store.table_name!r} is at schema version {before.version}; nothing to upgrade")
            return OK
        store.upgrade_schema()
        after = store.schema_shape()
        assert after is not None
        added = sorted(before.missing - after.missing)
        _out(
            f"upgraded table {store.table_name!r} from schema version {before.version} to {after.version}: "
            f"added {', '.join(added)}"
        )
    return OK


def _delete(args: argparse.Namespace) -> int:
    with _opened(args) as (store, _):
        if not store.delete(args.session_id, user_id=args.user):
            raise _missing_session(args)
        _out(f"deleted session {args.session_id!r} from table {store.table_name!r}")
    return OK


# --- arguments ------------------------------------------------------------


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``agno-storage``; one subcommand per operation."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Inspect and maintain an agno / agno-golang sessions table (SQLite or PostgreSQL).",
        epilog="Exit codes: 0 done, 1 database file, table or session not found, 2 bad arguments or storage error.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {agno_storage.__version__}")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "url", metavar="URL", help="a SQLite file path, sqlite:///relative.db, sqlite:////abs.db or postgresql://..."
    )
    common.add_argument("--table", required=True, help="the sessions table, e.g. agent_sessions")
    common.add_argument(
        "--mode",
        choices=[m.value for m in Mode],
        help="the table's mode; detected from its columns when omitted",
    )
    common.add_argument(
        "--schema", help="PostgreSQL only: the schema holding the table (default ai; '' for the search path)"
    )
    session = argparse.ArgumentParser(add_help=False)
    session.add_argument("session_id", metavar="SESSION_ID")

    sub = parser.add_subparsers(dest="command", required=True)
    commands: list[tuple[str, str, list[argparse.ArgumentParser], Callable[[argparse.Namespace], int]]] = [
        ("info", "mode, layout, schema version, session count, durability", [common], _info),
        ("list", "sessions newest first, one line each", [common], _list),
        ("show", "one session as JSON", [common, session], _show),
        ("upgrade", "bring an old table to the current schema version", [common], _upgrade),
        ("delete", "delete one session", [common, session], _delete),
    ]
    for name, summary, parents, run in commands:
        command = sub.add_parser(name, parents=parents, help=summary, description=summary)
        if name in ("list", "show", "delete"):
            command.add_argument("--user", help="only sessions of this user_id ('' for sessions with no owner)")
        if name == "list":
            command.add_argument("--entity", help="only sessions of this agent_id / team_id / workflow_id")
            command.add_argument("--limit", type=_count, help="at most this many sessions")
            command.add_argument("--json", action="store_true", help="a JSON array instead of a table")
        command.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``agno-storage`` with ``argv`` (default: sys.argv[1:]); return the exit code.

    Bad arguments raise SystemExit(2) from argparse, as usual.
    """
    args = build_parser().parse_args(argv)
    # psycopg's pool logs every failed connection attempt as a warning, which
    # Python prints when no logging is set up; the one error line says it all.
    psycopg_log = logging.getLogger("psycopg")
    if not psycopg_log.handlers:
        psycopg_log.addHandler(logging.NullHandler())
    try:
        code: int = args.run(args)
        sys.stdout.flush()
    except _Exit as exc:
        kind = "error: " if exc.code == FAILED else ""
        print(f"{PROG}: {kind}{exc.message}", file=sys.stderr)
        return exc.code
    except SchemaVersionError as exc:
        hint = f"{PROG} upgrade {shlex.quote(_shown(args.url))} --table {args.table}"
        print(f"{PROG}: error: {_one_line(str(exc))} (from a shell: {hint})", file=sys.stderr)
        return FAILED
    except StorageError as exc:
        print(f"{PROG}: error: {_one_line(str(exc))}", file=sys.stderr)
        return FAILED
    except BrokenPipeError:
        # The reader went away (``agno-storage list ... | head``): no traceback, and
        # no second error when Python flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE
    return code


def _one_line(message: str) -> str:
    return " ".join(message.split())


__all__ = ["build_parser", "main"]
