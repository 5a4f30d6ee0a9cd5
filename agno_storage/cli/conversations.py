"""The commands on conversations: history, search, usage, search-index."""

from __future__ import annotations

import argparse
from typing import Any

from agno_storage.cli.common import OK, cell, columns, missing_session, opened, out, time_text, to_json
from agno_storage.conversation_message import make_converter


def _history(args: argparse.Namespace) -> int:
    with opened(args, read_only=True) as (store, _):
        messages = store.history(args.session_id, user_id=args.user)
        if not messages and store.read(args.session_id, user_id=args.user) is None:
            raise missing_session(args)
        if args.json:
            out(to_json(make_converter().unstructure(messages)))
            return OK
        for m in messages:
            who = cell(m.role) if m.member is None else f"{cell(m.role)} ({cell(m.member)})"
            out(f"{time_text(m.created_at)}  {who}: {cell(m.content)}")
    return OK


def _search(args: argparse.Namespace) -> int:
    with opened(args, read_only=True) as (store, _):
        hits = store.search(args.query, user_id=args.user, entity_id=args.entity, limit=args.limit)
        if args.json:
            out(to_json(make_converter().unstructure(hits)))
            return OK
        if not hits:
            return OK
        rows = [["session_id", "user_id", "role", "snippet"]]
        rows += [[cell(h.session_id), cell(h.user_id), cell(h.message.role), cell(h.snippet)] for h in hits]
        for line in columns(rows):
            out(line)
    return OK


def _usage(args: argparse.Namespace) -> int:
    with opened(args, read_only=True) as (store, _):
        figures = store.usage(user_id=args.user, entity_id=args.entity)
        if args.json:
            out(to_json(make_converter().unstructure(figures)))
            return OK
        if not figures:
            return OK

        def number(value: int | None) -> str:
            return "-" if value is None else str(value)

        rows = [["entity_id", "user_id", "day", "model", "runs", "input_tokens", "output_tokens", "total_tokens"]]
        rows += [
            [
                cell(u.entity_id),
                cell(u.user_id),
                cell(u.day),
                cell(u.model),
                str(u.runs),
                number(u.input_tokens),
                number(u.output_tokens),
                number(u.total_tokens),
            ]
            for u in figures
        ]
        for line in columns(rows):
            out(line)
    return OK


def _search_index(args: argparse.Namespace) -> int:
    with opened(args) as (store, _):
        if args.action == "enable":
            store.enable_search()
            out(f"search index on table {store.table_name!r} is enabled and current")
        else:
            store.disable_search()
            out(f"search index on table {store.table_name!r} is removed (search scans the table)")
    return OK


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"must be from 1 to 10000, got {value}")
    return value


def register(sub: argparse._SubParsersAction[Any], parents: dict[str, argparse.ArgumentParser]) -> None:
    """Add history, search, usage and search-index to ``sub``."""
    user_help = "only sessions of this user_id ('' for sessions with no owner)"
    summary = "a session's conversation, each message once, whichever writer stored it"
    history = sub.add_parser(
        "history", parents=[parents["table"], parents["session"]], help=summary, description=summary
    )
    history.add_argument("--user", help=user_help)
    history.add_argument("--json", action="store_true", help="a JSON array of messages instead of lines")
    history.set_defaults(run=_history)

    summary = "messages holding every word of QUERY, best first"
    search = sub.add_parser("search", parents=[parents["table"]], help=summary, description=summary)
    search.add_argument("query", metavar="QUERY")
    search.add_argument("--user", help=user_help)
    search.add_argument("--entity", help="only sessions of this agent_id / team_id / workflow_id")
    search.add_argument("--limit", type=_limit, default=20, help="at most this many hits (default 20)")
    search.add_argument("--json", action="store_true", help="a JSON array of hits instead of a table")
    search.set_defaults(run=_search)

    summary = "runs and tokens per entity, user, day and model"
    usage = sub.add_parser("usage", parents=[parents["table"]], help=summary, description=summary)
    usage.add_argument("--user", help=user_help)
    usage.add_argument("--entity", help="only sessions of this agent_id / team_id / workflow_id")
    usage.add_argument("--json", action="store_true", help="a JSON array instead of a table")
    usage.set_defaults(run=_usage)

    summary = "build (enable) or remove (disable) the full-text search index"
    index = sub.add_parser("search-index", parents=[parents["table"]], help=summary, description=summary)
    index.add_argument("action", choices=["enable", "disable"])
    index.set_defaults(run=_search_index)


__all__ = ["register"]
