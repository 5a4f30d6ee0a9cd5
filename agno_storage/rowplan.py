"""Straight-line decoders of one mode's rows: the read path's common case, one column after another.

:meth:`agno_storage.codec.RowCodec.decode_reference` checks a row in a loop
over the mode's columns, testing each column's kind as it goes, and names
the column at fault. That loop is the reference. :func:`row_decoder`
builds, once per codec, a function doing the same checks with each column's
kind decided in advance: no loop, no per-column kind test, the values bound
to locals.

It handles only the common case, which is every row this store or the Go
port writes: JSON as UTF-8 bytes or text with no integer of 19 or more
digits, the right type in every column. For anything else (corrupt text, a
wide integer, a value of the wrong type, a text that is not UTF-8) it gives
``None``, and :meth:`~agno_storage.codec.RowCodec.decode` has the reference
decode the row, so a read returns what the reference returns and raises
what it raises. Such a row costs the JSON columns decoded before the one at
fault twice. ``tests/test_rowplan.py`` holds the two to the same results
over generated rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import orjson

from agno_storage.models import Session
from agno_storage.modes import ColumnKind, ModeSpec

#: Texts shorter than this cannot hold an integer of 19 digits: no scan.
_SHORTEST_WIDE = 19


def row_decoder(spec: ModeSpec, has_wide_integer: Callable[[bytes], bool]) -> Callable[[Sequence[Any]], Session | None]:
    """A function giving the session of a row of ``spec``'s table in the common case, and ``None`` otherwise.

    ``has_wide_integer`` is the codec's test for text the stdlib must read
    (orjson reads integers past 64 bits as floats). The source is built only
    from the mode's column names and kinds, which are constants of
    :mod:`agno_storage.modes`; it holds no reference to a codec or a store.
    """
    fields = {a.name: a.alias for a in attrs.fields(spec.session_class)}
    lines = []
    for i, column in enumerate(spec.columns):
        lines.extend(_check(f"c{i}", column.kind, first=i == 0))
    arguments = ", ".join(f"{fields[c.name]}=c{i}" for i, c in enumerate(spec.columns))
    variables = ", ".join(f"c{i}" for i in range(len(spec.columns)))
    for name in (*fields.values(), *(c.name for c in spec.columns)):
        if not name.isidentifier():
            raise AssertionError(f"column {name!r} of {spec.mode.value} is no identifier")
    if set(fields) != {c.name for c in spec.columns}:
        raise AssertionError(f"{spec.session_class.__name__}'s fields are not the columns of {spec.mode.value}")
    source = "\n".join(
        [
            "def decode_common(row):",
            "    try:",
            f"        {variables}, = row",
            *("    " + line for line in lines),
            f"        return session_class({arguments})",
            "    except Exception:",
            "        # Whatever it was (a wrong type, corrupt JSON, a wide integer), the reference decides.",
            "        return None",
        ]
    )
    namespace: dict[str, Any] = {
        "wide": has_wide_integer,
        "loads": orjson.loads,
        "session_class": spec.session_class,
        "bytes": bytes,
        "dict": dict,
        "int": int,
        "len": len,
        "list": list,
        "str": str,
        "type": type,
    }
    exec(compile(source, f"<row decoder of {spec.mode.value} sessions>", "exec"), namespace)
    decode: Callable[[Sequence[Any]], Session | None] = namespace["decode_common"]
    return decode


def _check(v: str, kind: ColumnKind, *, first: bool) -> list[str]:
    """The lines that check local ``v`` of ``kind`` and leave it decoded; ``return None`` for a row the reference must decode."""
    if first:  # the session_id: text, never NULL
        return [f"    if type({v}) is not str: return None"]
    if kind is ColumnKind.TIMESTAMP:
        return [f"    if {v} is not None and type({v}) is not int: return None"]
    if kind is ColumnKind.REQUIRED_TEXT:
        # '' is how a NOT NULL column spells "no value".
        return [
            f"    if {v} is not None:",
            f"        if type({v}) is not str: return None",
            f"        {v} = {v} or None",
        ]
    if kind in (ColumnKind.OPTIONAL_TEXT, ColumnKind.KEY):
        return [f"    if {v} is not None and type({v}) is not str: return None"]
    wanted = f"type({v}) is not dict" if kind is ColumnKind.JSON else f"type({v}) is not dict and type({v}) is not list"
    return [
        f"    if {v} is not None:",
        # PostgreSQL hands JSON over as text; SQLite's reads select it as bytes.
        f"        if type({v}) is str: {v} = {v}.encode()",
        f"        elif type({v}) is not bytes: return None",
        f"        if not {v} or (len({v}) >= {_SHORTEST_WIDE} and wide({v})): return None",
        f"        {v} = loads({v})",
        f"        if {wanted} and {v} is not None: return None",
    ]
