"""What a stored value must be for ``import`` to take it: one rule for import's lines and export's and copy's rows.

An export that writes a line its import would refuse leaves a backup that
fails only on the day it is restored; export, copy and doctor ask the same
questions import does, here, and export, copy and import check a whole row
with the one :func:`row_check`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from agno_storage import codec
from agno_storage.codec_exact import loads_exact
from agno_storage.errors import CorruptRowError
from agno_storage.models import Mode
from agno_storage.modes import SPECS, ColumnKind

#: The integers a timestamp column holds: SQLite's INTEGER and PostgreSQL's BIGINT alike.
INT64 = range(-(2**63), 2**63)
#: The JSON types a JSON column's text may decode to (or null).
JSON_TYPES: dict[ColumnKind, tuple[type, ...]] = {ColumnKind.JSON: (dict,), ColumnKind.JSON_ANY: (dict, list)}


class BadValue(ValueError):
    """A value of a row that cannot be written; ``column`` names it."""

    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column

    def corrupt(self, table: str, session_id: object, then: str) -> CorruptRowError:
        """The CorruptRowError of the row of ``session_id`` in ``table``, ``then`` saying what that means."""
        return CorruptRowError(
            f"{table}.{self.column} of session {session_id!r}: {self}; {then}",
            table=table,
            session_id=str(session_id),
            column=self.column,
        )


def row_check(mode: Mode) -> Callable[[Sequence[object]], None]:
    """A function that raises BadValue for the first value of a row (every column of ``mode``, in table order)
    that no export line can hold as import takes it back.

    That is a session_id that is no non-empty text; a value of a text column
    that is not text (a BLOB, a number: PostgreSQL would keep a BLOB as the
    text of its hex); a time that is no integer of 64 bits (a text, a REAL:
    SQLite keeps 1.5 as it is, PostgreSQL's BIGINT would round it); and in a
    JSON column, anything but JSON text of the column's type
    (:func:`json_problem`), a BLOB included. The row is as the ops readers
    select it (:func:`agno_storage.ops.select.rows`): on SQLite a JSON column
    as stored, not cast to a BLOB as the store's own reads cast it, so bytes
    there are a stored BLOB, never text.
    """
    columns = SPECS[mode].columns
    texts = [
        (i, c.name) for i, c in enumerate(columns) if c.kind in (ColumnKind.REQUIRED_TEXT, ColumnKind.OPTIONAL_TEXT)
    ]
    times = [(i, c.name) for i, c in enumerate(columns) if c.kind is ColumnKind.TIMESTAMP]
    json = [(i, c.name, JSON_TYPES[c.kind]) for i, c in enumerate(columns) if c.kind in JSON_TYPES]

    def check(row: Sequence[object]) -> None:
        why = key_problem(row[0])
        if why is not None:
            raise BadValue("session_id", why)
        for i, name in texts:
            value = row[i]
            if value is not None and type(value) is not str:
                raise BadValue(name, f"holds a {type(value).__name__} {value!r:.40}, not text")
        for i, name in times:
            value = row[i]
            if value is not None and (type(value) is not int or value not in INT64):
                raise BadValue(name, time_problem(name, value) or "")
        for i, name, kinds in json:
            why = json_problem(name, row[i], kinds)
            if why is not None:
                raise BadValue(name, why)

    return check


def key_problem(value: object) -> str | None:
    """Why ``value`` is no session_id (not a non-empty text), or None."""
    return None if type(value) is str and value else f"session_id {value!r} is not a non-empty text"


def time_problem(name: str, value: object) -> str | None:
    """Why ``value`` is no timestamp of column ``name`` (an integer of 64 bits, or null), or None."""
    if value is None or (type(value) is int and value in INT64):
        return None
    if type(value) is int:
        return f"{name} {value} is beyond a 64-bit integer"
    return f"{name} holds a {type(value).__name__} {value!r:.40}, not a Unix timestamp (an integer)"


#: What a JSON column holding NaN or an infinity is, and how its session is repaired.
NON_FINITE_HINT = (
    "(Python's json.dumps spells them so; agno 1.x's own store writes them), which JSON has no form for: replace it"
    " in the source (the agno adapter reads such a session: set the value to None and upsert it) or delete the"
    " session, then run again"
)


def _non_finite(text: str) -> bool:
    """Whether ``text``, which the codec refuses, reads as JSON once NaN, Infinity and -Infinity are numbers."""
    try:
        loads_exact(text.encode(), strict=True, non_finite=True)
    except (ValueError, RecursionError):
        return False
    return True


def json_problem(name: str, text: Any, kinds: tuple[type, ...]) -> str | None:
    """Why ``text`` is not what JSON column ``name`` holds (JSON text of one of ``kinds``, or null), or None.

    ``''`` is no value (what the Go port writes when its encoding fails). A value
    that is not text is refused whatever it holds: a BLOB (Go's ``database/sql``
    stores a ``[]byte`` as one), which no line can hold as text, or a number
    (agno's SQLite JSON columns have numeric affinity).
    """
    if text is None:
        return None
    if type(text) is not str:
        return f"{name} holds a {type(text).__name__} {text!r:.40}, not JSON text"
    try:
        # A text orjson reads is JSON; only one it refuses goes through the codec, which decides (it reads
        # integers wider than 64 bits, which orjson reads as floats or refuses) and words the error.
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            value = codec.loads(text)
        except ValueError as exc:
            if _non_finite(text):
                return f"{name} holds NaN or an infinity {NON_FINITE_HINT}"
            return f"{name} is not valid JSON: {exc}"
    if value is not None and not isinstance(value, kinds):
        if type(value) is float:
            value = codec.loads(text)  # orjson reads an integer beyond 64 bits as a float
        return f"{name} holds a JSON {type(value).__name__}, not {' or '.join(k.__name__ for k in kinds)}"
    return None


__all__ = ["INT64", "JSON_TYPES", "BadValue", "json_problem", "key_problem", "row_check", "time_problem"]
