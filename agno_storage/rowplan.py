"""Straight-line code for one mode's rows: the read and write paths' common cases, one column after another.

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

:func:`row_encoder` does the same for writes: the common case of
:meth:`~agno_storage.codec.RowCodec.encode_reference` (ASCII ids, plain
``str``, ``int``, ``dict`` and ``list`` values), and ``None`` for a session
the reference must encode or refuse, naming the column at fault.
:func:`session_copier` gives the copy of a session an upsert returns.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from types import CodeType
from typing import Any

import attrs
import orjson

from agno_storage.models import Session
from agno_storage.modes import ColumnKind, ModeSpec


def _define(source: str, filename: str, namespace: dict[str, Any], name: str) -> Any:
    """The function ``name`` that ``source`` defines, made anew in ``namespace``; the compiled source is kept.

    Compiling takes about a millisecond per function, and every store builds
    a codec; running the compiled code again to make the function takes microseconds.
    """
    exec(_compiled(source, filename), namespace)
    return namespace[name]


@functools.cache
def _compiled(source: str, filename: str) -> CodeType:
    return compile(source, filename, "exec")


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
    decode: Callable[[Sequence[Any]], Session | None] = _define(
        source, f"<row decoder of {spec.mode.value} sessions>", namespace, "decode_common"
    )
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


def row_encoder(spec: ModeSpec, dumps: Callable[[Any], str], empty: str | None) -> Callable[[object], list[Any] | None]:
    """A function giving the row of a session of ``spec`` in the common case, and ``None`` otherwise.

    ``dumps`` is the codec's JSON encoder; ``empty`` what a NOT NULL text
    column stores for "no value" (``''``, or ``None`` where the layout's id
    columns are nullable). The row is what the reference encoder returns;
    any session it does not cover (another class, a ``str`` subclass, text
    that is not ASCII, a value of the wrong type, JSON ``dumps`` refuses)
    gives ``None``, and the reference encodes it or raises naming the column.
    Like :func:`row_decoder`'s, the source is built only from the mode's
    column names and kinds.
    """
    fields = {a.name for a in attrs.fields(spec.session_class)}
    if fields != {c.name for c in spec.columns}:
        raise AssertionError(f"{spec.session_class.__name__}'s fields are not the columns of {spec.mode.value}")
    lines = []
    for i, column in enumerate(spec.columns):
        if not column.name.isidentifier():
            raise AssertionError(f"column {column.name!r} of {spec.mode.value} is no identifier")
        lines.append(f"    c{i} = s.{column.name}")
        lines.extend(_encode(f"c{i}", column.kind, first=i == 0))
    source = "\n".join(
        [
            "def encode_common(s):",
            "    if type(s) is not session_class: return None",
            "    try:",
            *("    " + line for line in lines),
            "    except Exception:",
            "        # A value dumps refuses: the reference raises naming the column.",
            "        return None",
            f"    return [{', '.join(f'c{i}' for i in range(len(spec.columns)))}]",
        ]
    )
    namespace: dict[str, Any] = {
        "dumps": dumps,
        "empty": empty,
        "session_class": spec.session_class,
        "dict": dict,
        "int": int,
        "list": list,
        "str": str,
        "type": type,
    }
    encode: Callable[[object], list[Any] | None] = _define(
        source, f"<row encoder of {spec.mode.value} sessions>", namespace, "encode_common"
    )
    return encode


#: The range of a 64-bit signed integer, which every engine's timestamp columns hold.
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _encode(v: str, kind: ColumnKind, *, first: bool) -> list[str]:
    """The lines that check local ``v`` of ``kind`` and leave it encoded; ``return None`` for the reference."""
    if first:  # the session_id: a non-empty str
        return [f"    if type({v}) is not str or not {v} or not {v}.isascii(): return None"]
    if kind is ColumnKind.TIMESTAMP:
        return [
            f"    if {v} is not None and (type({v}) is not int or not {_INT64_MIN} <= {v} <= {_INT64_MAX}): return None"
        ]
    if kind is ColumnKind.REQUIRED_TEXT:
        return [
            f"    if {v} is None: {v} = empty",
            f"    elif type({v}) is not str or not {v}.isascii(): return None",
            f"    elif not {v}: {v} = empty",
        ]
    if kind in (ColumnKind.OPTIONAL_TEXT, ColumnKind.KEY):
        return [f"    if {v} is not None and (type({v}) is not str or not {v}.isascii()): return None"]
    wanted = f"type({v}) is dict" if kind is ColumnKind.JSON else f"type({v}) is dict or type({v}) is list"
    return [
        # What Go's encoding/json writes for a nil map.
        f"    if {v} is None: {v} = 'null'",
        f"    elif {wanted}: {v} = dumps({v})",
        "    else: return None",
    ]


def session_copier(spec: ModeSpec) -> Callable[[Session, int, int], Session]:
    """A function giving a copy of a session of ``spec`` with other timestamps: ``attrs.evolve``, straight-line.

    Called as ``copy(session, created_at, updated_at)``; the copy is made
    through the class's ``__init__``, as ``evolve`` makes it.
    """
    names = {a.name: a.alias for a in attrs.fields(spec.session_class)}
    for name, alias in names.items():
        if not (name.isidentifier() and alias.isidentifier()):
            raise AssertionError(f"field {name!r} of {spec.session_class.__name__} is no identifier")
    stamps = {"created_at": "created_at", "updated_at": "updated_at"}
    arguments = ", ".join(f"{alias}={stamps.get(name, f's.{name}')}" for name, alias in names.items())
    source = f"def copy(s, created_at, updated_at):\n    return session_class({arguments})"
    namespace: dict[str, Any] = {"session_class": spec.session_class}
    copy: Callable[[Session, int, int], Session] = _define(
        source, f"<copier of {spec.mode.value} sessions>", namespace, "copy"
    )
    return copy
