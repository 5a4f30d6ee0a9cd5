"""The endpoints over the conversation modules: a session's history, search and usage.

Each calls its module with the table's read-only store and the caller's user
scope.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from agno_storage import conversation, search, usage
from agno_storage.web import bodies
from agno_storage.web.app import Server, _server, params
from agno_storage.web.auth import Principal
from agno_storage.web.errors import HttpError, not_found_session
from agno_storage.web.table_reader import TableReader


def history_of(server: Server, reader: TableReader, user: str | None, session_id: str) -> list[Any]:
    """The session's messages (as ``conversation.Message``) as ``user`` sees them (None: every user's runs but
    strays, see :func:`conversation.history`); HttpError 404 if there are none.

    ``user`` is already scoped (:func:`scoped_user`). A Go Agent's session
    may exist only as ``agent_runs`` rows: such a session has a history
    without a session row.
    """
    # The reader reads a table of an older version too (NULL for what it lacks); the store would refuse it.
    messages: list[Any] = server.read(
        reader,
        lambda: conversation.history(reader.store, session_id, user, read=reader.get),
    )
    if not messages and server.read(reader, lambda: reader.get(session_id, user)) is None:
        raise not_found_session(session_id, reader.name)
    return messages


def api_history(request: Request, session_id: str) -> Response:
    server = _server(request)
    who = server.principal(request)
    query = params(request, ("table", "user_id"))
    reader = server.reader(query.get("table"))
    # user_id= shows what that user has under the id: a search hit in another user's run under an owned
    # session (a stray, which the owner's history leaves out) is found so.
    messages = history_of(server, reader, scoped_user(who, query.get("user_id")), session_id)
    converter = server.conversation_converter
    return server.json(
        bodies.HistoryBody(table=reader.name, session_id=session_id, messages=converter.unstructure(messages))
    )


def scoped_user(who: Principal, asked: str | None) -> str | None:
    """The user a read is narrowed to: ``asked`` for an all-users token; a user's token its own (403 for another)."""
    if who.user_id is None:
        return asked
    if asked is not None and asked != who.user_id:
        raise HttpError(403, "forbidden", "this token may only read its own user's sessions")
    return who.user_id


def needs_current(server: Server, reader: TableReader, what: str) -> None:
    """HttpError 409 if ``reader``'s table is of an older schema version, which ``what`` does not read.

    The table is looked at again first: upgraded since the reader was made,
    it raises TableChanged, and the handler runs again on the table as it is.
    """
    if reader.info.missing:
        server.recheck(reader)
        raise HttpError(
            409,
            "old_schema",
            f"{what} reads table {reader.name!r} once it is upgraded: it is at schema version "
            f"{reader.info.version}, without {', '.join(reader.info.missing)} (agno-storage upgrade; this "
            "server only reads)",
            table=reader.name,
        )


def search_hits(server: Server, reader: TableReader, who: Principal, query: dict[str, str]) -> list[Any]:
    """The hits of ``query["q"]``, scoped to the caller's user."""
    from agno_storage.web.app import limit_param

    needs_current(server, reader, "search")
    text = query.get("q", "").strip()
    if not text:
        raise HttpError(400, "bad_request", "q= must name what to search for")
    user = scoped_user(who, query.get("user_id"))
    limit = limit_param(query.get("limit"))
    entity = query.get("entity_id")

    def run() -> list[Any]:
        # A read-only store scans where an index would first need bringing up to date (a write).
        found: list[Any] = search.search(reader.store, text, user_id=user, entity_id=entity, limit=limit)
        return found

    hits = server.read(reader, run)
    if who.user_id is not None:
        # Belt and braces: a hit is a session, and a scoped token sees only its user's.
        hits = [h for h in hits if getattr(h, "user_id", who.user_id) == who.user_id]
    return hits


def api_search(request: Request) -> Response:
    server = _server(request)
    who = server.principal(request)
    query = params(request, ("table", "q", "user_id", "entity_id", "limit"))
    reader = server.reader(query.get("table"))
    hits = search_hits(server, reader, who, query)
    converter = server.conversation_converter
    return server.json(bodies.SearchBody(table=reader.name, query=query["q"], hits=converter.unstructure(hits)))


def usage_report(server: Server, reader: TableReader, who: Principal, query: dict[str, str]) -> Any:
    """What ``usage`` reports for the table, scoped to the caller's user."""
    from agno_storage.web.app import time_param

    needs_current(server, reader, "usage")
    user = scoped_user(who, query.get("user_id"))
    since = time_param("since", query.get("since"))
    until = time_param("until", query.get("until"))
    return server.read(
        reader,
        lambda: usage.usage(reader.store, user_id=user, entity_id=query.get("entity_id"), since=since, until=until),
    )


def totals(groups: list[Any], key: str) -> list[bodies.UsageTotal]:
    """``groups`` (``usage.Usage`` rows) summed by ``key`` (``day`` or ``entity_id``), in key order."""
    sums: dict[str | None, dict[str, int | None]] = {}
    for group in groups:
        into = sums.setdefault(getattr(group, key), {"runs": 0})
        into["runs"] = (into["runs"] or 0) + group.runs
        for name in ("input_tokens", "output_tokens", "total_tokens"):
            value = getattr(group, name)
            if value is not None:
                into[name] = (into.get(name) or 0) + value
            else:
                into.setdefault(name, None)
    return [
        bodies.UsageTotal(
            key=k,
            runs=v["runs"] or 0,
            input_tokens=v.get("input_tokens"),
            output_tokens=v.get("output_tokens"),
            total_tokens=v.get("total_tokens"),
        )
        for k, v in sorted(sums.items(), key=lambda kv: (kv[0] is not None, kv[0] or ""))
    ]


def usage_body(server: Server, reader: TableReader, who: Principal, query: dict[str, str]) -> bodies.UsageBody:
    groups = usage_report(server, reader, who, query)
    return bodies.UsageBody(
        table=reader.name,
        groups=[server.converter.unstructure(g) for g in groups],
        by_day=totals(groups, "day"),
        by_entity=totals(groups, "entity_id"),
    )


def api_usage(request: Request) -> Response:
    server = _server(request)
    who = server.principal(request)
    query = params(request, ("table", "user_id", "entity_id", "since", "until"))
    reader = server.reader(query.get("table"))
    return server.json(usage_body(server, reader, who, query))
