"""The JSON bodies of the HTTP API, and :func:`make_converter`, the one place their form is defined.

Each body is an attrs record; :func:`make_converter` turns them into JSON
values (and back, for clients and tests) with a strict cattrs converter:
unknown keys are refused and no value is coerced into another type.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import cattrs
import orjson
from cattrs.fns import identity
from cattrs.gen import make_dict_structure_fn

from agno_storage import codec_exact
from agno_storage.models import Session

#: The declared types of JSON values (a session's JSON columns, converted messages and hits).
_JSON_VALUES = frozenset(
    {dict[str, Any], dict[str, Any] | None, list[dict[str, Any]], list[Any] | dict[str, Any] | None}
)


@attrs.frozen
class ErrorDetail:
    #: A stable, machine-readable name: not_found, bad_request, unauthorized, forbidden, busy, unavailable, error.
    code: str
    message: str
    table: str | None = None
    session_id: str | None = None


@attrs.frozen
class ErrorBody:
    """Every error response: ``{"error": {"code", "message", "table", "session_id"}}``."""

    error: ErrorDetail


@attrs.frozen
class Health:
    """``{"status": "ok"}`` when the database answers."""

    status: str


@attrs.frozen
class TableBody:
    name: str
    mode: str
    #: The schema version its columns say (a version below the current one reads, with NULL for what is missing).
    version: int
    #: Who made it, as ``agno-storage tables`` says: agno-golang, agno-1.x-sqlite, agno-1.x-postgres, unknown.
    layout: str
    #: The column naming the agent, team or workflow (what ``entity_id`` filters on).
    entity_column: str
    #: Sessions in the table, every user's: None for a user's token, which sees its own only.
    rows: int | None


@attrs.frozen
class UnreadableTable:
    """A sessions table this server cannot read: not in ``tables``, and never picked for a page."""

    name: str
    #: Why: a name the stores refuse (not a plain SQL identifier); ``table=`` naming it is a 400 saying so.
    reason: str


@attrs.frozen
class TablesBody:
    #: The sessions tables ``table=`` may name.
    tables: list[TableBody]
    unreadable: list[UnreadableTable] = attrs.field(factory=list)


@attrs.frozen
class SessionSummary:
    """A session in a list: who, which entity, when."""

    table: str
    mode: str
    session_id: str
    user_id: str | None
    entity_id: str | None
    created_at: int | None
    updated_at: int | None


@attrs.frozen
class SessionsPage:
    """A page of sessions; ``next_cursor`` is ``cursor=`` for the next page, or null on the last."""

    sessions: list[SessionSummary]
    next_cursor: str | None


@attrs.frozen
class SessionBody:
    """One session with all its columns (``session``: column name -> value, as ``store.read`` returns it)."""

    table: str
    mode: str
    entity_id: str | None
    session: dict[str, Any]


@attrs.frozen
class HistoryBody:
    """A session's conversation: ``messages`` in order, each as :func:`agno_storage.conversation_message.make_converter` defines it."""

    table: str
    session_id: str
    messages: list[dict[str, Any]]


@attrs.frozen
class SearchBody:
    """The hits of ``q``, best first, each as :func:`agno_storage.conversation_message.make_converter` defines a hit."""

    table: str
    query: str
    hits: list[dict[str, Any]]


@attrs.frozen
class UsageTotal:
    """Runs and tokens summed over one day or one entity; a token figure nobody kept is null."""

    key: str | None
    runs: int
    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None


@attrs.frozen
class UsageBody:
    """``groups``: :func:`agno_storage.usage.usage`'s rows (entity, user, day, model); ``by_day`` and ``by_entity`` sum them."""

    table: str
    groups: list[dict[str, Any]]
    by_day: list[UsageTotal]
    by_entity: list[UsageTotal]


def _strict(kind: type) -> Any:
    def check(value: Any, _: Any) -> Any:
        # bool is an int in Python; neither stands in for the other here.
        if type(value) is not kind:
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}: {value!r}")
        return value

    return check


def make_converter() -> cattrs.Converter:
    """The converter of every body: records <-> JSON values; strict both ways.

    Structuring refuses unknown keys and values of another type (no
    ``"5"`` for 5); a session's columns are unstructured with the session's
    own attrs fields, so every column appears, null included.
    """
    conv = cattrs.Converter(forbid_extra_keys=True)
    for kind in (str, int, float, bool):
        conv.register_structure_hook(kind, _strict(kind))
    # A session's columns and the converted messages and hits are JSON values already: they go out as they are.
    # Walked by cattrs (several frames a level), one nested ~330 levels deep, which the store reads, was a
    # RecursionError and a 500.
    conv.register_unstructure_hook_func(lambda t: t in _JSON_VALUES, identity)
    for cls in (
        ErrorDetail,
        ErrorBody,
        Health,
        TableBody,
        UnreadableTable,
        TablesBody,
        SessionSummary,
        SessionsPage,
        SessionBody,
        HistoryBody,
        SearchBody,
    ):
        conv.register_structure_hook(cls, make_dict_structure_fn(cls, conv, _cattrs_forbid_extra_keys=True))
    return conv


def session_columns(conv: cattrs.Converter, session: Session) -> dict[str, Any]:
    """Every column of ``session`` by name, as JSON values."""
    value: dict[str, Any] = conv.unstructure(session)
    return value


def dumps(value: Any) -> bytes:
    """JSON bytes of an unstructured body; integers past 64 bits and nesting past 254 levels (which orjson
    refuses) go through json, at the bottom of a stack of their own (:func:`agno_storage.codec_exact.with_stack`)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        text = codec_exact.with_stack(lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":")), value)
        return text.encode("utf-8")


__all__ = [
    "ErrorBody",
    "ErrorDetail",
    "Health",
    "HistoryBody",
    "SearchBody",
    "SessionBody",
    "SessionSummary",
    "SessionsPage",
    "TableBody",
    "TablesBody",
    "UnreadableTable",
    "UsageBody",
    "UsageTotal",
    "dumps",
    "make_converter",
    "session_columns",
]
