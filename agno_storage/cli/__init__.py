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
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

import agno_storage
from agno_storage import SchemaVersionError, StorageError, urls
from agno_storage.cli.common import BROKEN_PIPE, FAILED, INTERRUPTED, PROG, Exit, printable, table_parents, upgrade_line

#: The modules that add subcommands, in the order ``--help`` lists them. Each
#: has ``register(sub, parents)``; a new feature adds its own module here.
COMMAND_MODULES: tuple[str, ...] = (
    "agno_storage.cli.sessions",
    "agno_storage.cli.conversations",
    "agno_storage.cli.ops",
    "agno_storage.cli.serve",
    "agno_storage.cli.agno3",
)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors show a PostgreSQL URL's password as ``***``.

    argparse repeats what it refuses (``unrecognized arguments: URL``, ``invalid choice: 'URL'``); each
    subcommand's parser is one of these too, as argparse makes them of the top parser's class.
    """

    _given: Sequence[str] = ()

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        given = list(sys.argv[1:] if args is None else args)
        # --option=VALUE: argparse repeats the VALUE alone.
        self._given = given + [a.partition("=")[2] for a in given if a.startswith("-") and "=" in a]
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        # Longest first: a URL given whole is masked before a shorter argument inside it could be.
        for given in sorted(self._given, key=len, reverse=True):
            masked = urls.without_password(given)
            if masked != given:
                message = message.replace(repr(given), repr(masked)).replace(given, masked)
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``agno-storage``; one subcommand per operation."""
    parser = _Parser(
        prog=PROG,
        description="Inspect and maintain an agno / agno-golang sessions table (SQLite or PostgreSQL).",
        epilog=(
            "Exit codes: 0 done, 1 database file, table or session not found, 2 bad arguments or storage error, "
            "3 doctor found a problem."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {agno_storage.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    parents = table_parents()
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub, parents)
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
        if sys.stdout is not None:  # None when the caller closed it (``>&-``)
            sys.stdout.flush()
    except Exit as exc:
        kind = "error: " if exc.code == FAILED else ""
        print(f"{PROG}: {kind}{printable(exc.message)}", file=sys.stderr)
        return exc.code
    except SchemaVersionError as exc:
        # copy reads an old source table as it is: an old table it stops at is the destination's.
        if args.command == "copy":
            where, table = args.destination, args.to_table or args.table
            schema = args.to_schema if args.to_schema is not None else args.schema
        else:
            where, table, schema = args.url, args.table, getattr(args, "schema", None)
        hint = upgrade_line(where, table, schema)
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
    except OSError as exc:
        # A file the command writes or reads beside the database (an export's output, a backup's
        # destination): a folder that is not there, a read-only or full disk.
        print(f"{PROG}: error: {_one_line(str(exc))}", file=sys.stderr)
        return FAILED
    except KeyboardInterrupt:
        # Ctrl-C: what the command wrote is whole (each write is a transaction) and a rerun goes on; a
        # traceback would only hide that. 130 is what a shell reports for a process SIGINT ended.
        print(f"{PROG}: interrupted", file=sys.stderr)
        return INTERRUPTED
    return code


def _one_line(message: str) -> str:
    """``message`` on one line, with what a terminal would act on (a table name's ESC, say) escaped."""
    return printable(" ".join(message.split()))


__all__ = ["build_parser", "main"]
