"""One message of a conversation, whichever writer stored it: :class:`Message`, its JSON form and its text.

:func:`make_converter` is the one definition of the JSON form of
:class:`Message` (and of search hits). :func:`content_text` is how every
extractor turns a stored message's content into ``Message.content``;
:func:`json_text` writes a value as JSON text where orjson cannot, and
:class:`Unwritable` is what neither writer can spell. Nothing here reads a
store.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

import attrs
import cattrs
import orjson
from cattrs.fns import identity

from agno_storage.codec_exact import has_non_finite
from agno_storage.errors import CorruptRowError

#: ``Message.source``: the conversation came from an agno 1.x ``memory`` / ``runs`` column.
SOURCE_AGNO: Final = "agno"
#: ``Message.source``: from a Go Team's ``team_data.messages``.
SOURCE_GO_TEAM: Final = "go-team"
#: ``Message.source``: from a row of the ``agent_runs`` table (a Go Agent's format, whoever appended it).
SOURCE_GO_AGENT: Final = "go-agent"


@attrs.define
class Message:
    """One message of a conversation, whichever writer stored it.

    ``role`` is what the writer stored (``"system"``, ``"user"``,
    ``"assistant"``, ``"tool"``; agno's ``"developer"`` and other roles are
    kept as written). ``content`` is the text (multi-part content joined, a
    structured value as its JSON), or ``None``. ``created_at`` is Unix
    seconds where the writer kept a time. ``run_id`` names the run (agno's
    run_id, the ``agent_runs`` row id). ``tool_calls`` is the assistant's
    tool calls as stored; ``tool_call_id`` and ``name`` (the tool's name)
    describe a tool result. ``member`` names the team member (agent id or
    name) whose run the message belongs to, ``None`` for the session's own
    agent, team or workflow. ``source`` names where it was read:
    :data:`SOURCE_AGNO`, :data:`SOURCE_GO_TEAM` or :data:`SOURCE_GO_AGENT`.

    Fields may be given by keyword or, in this order, by position (history
    builds one per stored message; a call by position costs a third of one
    by keyword).
    """

    role: str
    content: str | None
    created_at: int | None = None
    run_id: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    name: str | None = None
    member: str | None = None
    source: str = SOURCE_AGNO


def make_converter() -> cattrs.Converter:
    """The one definition of the JSON form of :class:`Message` (and of :class:`~agno_storage.search.SearchHit`).

    Strict: unknown keys are refused and nothing is coerced (a number where a
    str belongs raises instead of becoming ``"1"``).
    """
    converter = cattrs.Converter(forbid_extra_keys=True)

    def exact(kind: type[Any]) -> Callable[[Any, Any], Any]:
        def structure(value: Any, _: Any) -> Any:
            if type(value) is not kind:
                raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}: {value!r}")
            return value

        return structure

    for kind in (str, int, bool):
        converter.register_structure_hook(kind, exact(kind))

    def structure_float(value: Any, _: Any) -> float:
        if type(value) not in (int, float):
            raise TypeError(f"expected a number, got {type(value).__name__}: {value!r}")
        return float(value)

    converter.register_structure_hook(float, structure_float)

    def structure_object(value: Any, _: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise TypeError(f"expected an object, got {type(value).__name__}")
        return value

    converter.register_structure_hook_func(lambda t: t == dict[str, Any], structure_object)
    # An optional text or number unstructures to itself: with cattrs' own identity as its hook, the
    # generated unstructure reads the attribute inline instead of calling a handler per field (the index
    # fingerprints every message with it).
    converter.register_unstructure_hook_func(lambda t: t in _OPTIONAL_SCALARS or t in _JSON_VALUES, identity)
    return converter


_OPTIONAL_SCALARS = frozenset({str | None, int | None, float | None, bool | None})
#: ``Message.tool_calls``: JSON values already (read from a store), unstructured as they are; walked by cattrs,
#: one nested ~330 levels deep (which the store reads) was a RecursionError.
_JSON_VALUES = frozenset({list[dict[str, Any]] | None})


def content_text(content: Any) -> str | None:
    """Message content as text: a str as is, multi-part content's text parts joined, anything else as JSON."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        parts = [p.get("text") for p in content if isinstance(p.get("text"), str)]
        if parts:
            return "\n".join(parts)
    return json_text(content, "a message's content")


def json_text(value: Any, what: str) -> str:
    """``value`` as compact JSON text: orjson's, or the standard library's (non-ASCII escaped) where orjson
    stops: integers past 64 bits, nesting past 254 levels (it reads 1,024), lone surrogates.

    Raises :class:`Unwritable`, naming ``what``, past both, and for NaN or an infinity (which a store with
    ``read_non_finite`` reads), which JSON has no text for (orjson would write null).
    """
    try:
        text = orjson.dumps(value)
        if b"null" in text and has_non_finite(value):
            raise Unwritable(f"{what} holds NaN or an infinity, which JSON text cannot hold")
        return text.decode()
    except TypeError:
        try:
            return json.dumps(value, separators=(",", ":"), allow_nan=False)
        except (RecursionError, ValueError, TypeError) as exc:
            raise Unwritable(f"{what} cannot be written as JSON text ({exc})") from None


class Unwritable(CorruptRowError):
    """A stored message (or its structured content) with no JSON text; ``conversation.combined()`` names its session."""


__all__ = [
    "SOURCE_AGNO",
    "SOURCE_GO_AGENT",
    "SOURCE_GO_TEAM",
    "Message",
    "Unwritable",
    "content_text",
    "json_text",
    "make_converter",
]
