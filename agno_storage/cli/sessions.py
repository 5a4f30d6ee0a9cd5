"""The commands on one sessions table: info, list, show, upgrade, delete."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import attrs

from agno_storage import BaseStorage, SchemaVersionError, SqliteStorage
from agno_storage.cli.common import (
    NOT_FOUND,
    OK,
    PROG,
    Exit,
    cell,
    columns,
    count_arg,
    missing_session,
    opened,
    out,
    shown,
    time_text,
    to_json,
)

_LAYOUTS = {
    "go": "go (the Go port's DDL, as agno-golang and agno_storage create it)",
    "agno": "agno (agno 1.x's SQLAlchemy DDL)",
    "unknown": "unknown (neither the Go port's nor agno's index names)",
}


# --- commands -------------------------------------------------------------


def _info(args: argparse.Namespace) -> int:
    with opened(args, read_only=True) as (store, detected):
        shape = store.schema_shape()
        if shape is None:  # a Go Agent's file (agent_runs alone), or dropped since it was opened
            runs = len(store.runs_only_session_ids())
            also = (
                f"; agent_runs holds {runs} sessions a Go Agent ran, which list, history, search and usage read"
                if runs
                else ""
            )
            raise Exit(NOT_FOUND, f"no table {args.table!r} in {shown(args.url)}{also}")
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
                f"{_journal(store)}, synchronous={store.synchronous.value}, "
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
            out(f"{key + ':':<{width}} {value}")
    return OK


def _journal(store: SqliteStorage) -> str:
    """The file's journal mode as ``info`` shows it, read without changing it."""
    from agno_storage.ops.db import connect_readonly

    assert store.db_path is not None
    conn = connect_readonly(store.db_path)
    try:
        mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    finally:
        conn.close()
    return "journal_mode=WAL" if mode == "wal" else f"journal_mode={mode} (WAL from the first write)"


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
    with opened(args, read_only=True) as (store, _):
        sessions = store.list_summaries(user_id=args.user, entity_id=args.entity, limit=args.limit)
        entity = store.spec.entity_column
        if args.json:
            out(
                to_json(
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
            [cell(s.session_id), cell(s.user_id), cell(s.entity_id), time_text(s.created_at), time_text(s.updated_at)]
            for s in sessions
        ]
        for line in columns(rows):
            out(line)
    return OK


def _show(args: argparse.Namespace) -> int:
    with opened(args, read_only=True) as (store, _):
        session = store.read(args.session_id, user_id=args.user)
        if session is None:
            raise missing_session(args)
        out(to_json(attrs.asdict(session)))
    return OK


def _upgrade(args: argparse.Namespace) -> int:
    with opened(args) as (store, _):
        before = store.schema_shape()
        if before is None:
            raise Exit(NOT_FOUND, f"no table {args.table!r} in {shown(args.url)}")
        if not before.missing:
            out(f"table {store.table_name!r} is at schema version {before.version}; nothing to upgrade")
            return OK
        store.upgrade_schema()
        after = store.schema_shape()
        assert after is not None
        added = sorted(before.missing - after.missing)
        out(
            f"upgraded table {store.table_name!r} from schema version {before.version} to {after.version}: "
            f"added {', '.join(added)}"
        )
    return OK


def _delete(args: argparse.Namespace) -> int:
    with opened(args) as (store, _):
        if not store.delete(args.session_id, user_id=args.user):
            raise missing_session(args)
        out(f"deleted session {args.session_id!r} from table {store.table_name!r}")
    return OK


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: dict[str, argparse.ArgumentParser]
) -> None:
    """Add this module's subcommands to ``sub``."""
    commands: list[tuple[str, str, list[argparse.ArgumentParser], Callable[[argparse.Namespace], int]]] = [
        ("info", "mode, layout, schema version, session count, durability", [parents["table"]], _info),
        ("list", "sessions newest first, one line each", [parents["table"]], _list),
        ("show", "one session as JSON", [parents["table"], parents["session"]], _show),
        ("upgrade", "bring an old table to the current schema version", [parents["table"]], _upgrade),
        ("delete", "delete one session", [parents["table"], parents["session"]], _delete),
    ]
    for name, summary, command_parents, run in commands:
        command = sub.add_parser(name, parents=command_parents, help=summary, description=summary)
        if name in ("list", "show", "delete"):
            command.add_argument("--user", help="only sessions of this user_id ('' for sessions with no owner)")
        if name == "list":
            command.add_argument("--entity", help="only sessions of this agent_id / team_id / workflow_id")
            command.add_argument("--limit", type=count_arg, help="at most this many sessions")
            command.add_argument("--json", action="store_true", help="a JSON array instead of a table")
        command.set_defaults(run=run)
