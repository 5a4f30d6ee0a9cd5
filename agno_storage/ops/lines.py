"""The export file format: JSON Lines, a header line, then one session per line (and, version 2, one line
per ``agent_runs`` row of an agent table: ``{"agent_run": {...}}``, see :mod:`agno_storage.ops.runs`).

The one place the format is defined is :func:`make_converter` with the
attrs classes below: structuring is strict (unknown keys are refused, no
value is coerced: ``"5"`` is not an int, ``1`` is not a str).

A session line holds every column of its mode by name, as stored: text
columns and the JSON columns as strings (the JSON column's exact stored
text, never decoded and re-encoded, so agno's spacing, Go's escapes and
integers of any width survive), timestamps as integers, SQL NULL as null.
"""

from __future__ import annotations

import functools
import operator
import typing
from collections.abc import Callable
from typing import Any

import attrs
import cattrs
import cattrs.gen

from agno_storage.models import Mode
from agno_storage.modes import SPECS, ColumnKind

#: What the header's ``format`` says.
FORMAT = "agno-storage-sessions"
#: The newest version of the line format: 2 adds ``agent_runs`` lines. It reads this one and older, and writes
#: version 1 where a file has no run lines, so that an earlier build reads it.
FORMAT_VERSION = 2


@attrs.frozen
class Header:
    """The first line of an export file."""

    format: str
    version: int
    mode: Mode
    #: Who made the source table (see ``ops.tables.Layout``) and on which engine.
    layout: str
    engine: str
    table: str
    #: The columns of every session line, in table order.
    columns: list[str]
    #: Version 2: whether ``agent_runs`` lines follow the session lines (left out of the line when False).
    agent_runs: bool = False


def _exact(kind: type) -> Any:
    def structure(value: Any, _: Any) -> Any:
        if type(value) is not kind:
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__} {value!r}")
        return value

    return structure


def _mode(value: Any, _: Any) -> Mode:
    if type(value) is not str:
        raise TypeError(f"expected a mode name, got {value!r}")
    return Mode(value)


def make_converter() -> cattrs.Converter:
    """The converter of the export format: strict (no extra keys, no coercion)."""
    converter = cattrs.Converter(forbid_extra_keys=True)
    for kind in (str, int, bool, float):
        converter.register_structure_hook(kind, _exact(kind))
    converter.register_structure_hook(Mode, _mode)
    converter.register_unstructure_hook(Mode, lambda mode: mode.value)
    converter.register_unstructure_hook(
        Header,
        cattrs.gen.make_dict_unstructure_fn(Header, converter, agent_runs=cattrs.gen.override(omit_if_default=True)),
    )
    return converter


_LINE_TYPES: dict[ColumnKind, Any] = {
    ColumnKind.KEY: str,
    ColumnKind.REQUIRED_TEXT: str | None,
    ColumnKind.OPTIONAL_TEXT: str | None,
    ColumnKind.JSON: str | None,
    ColumnKind.JSON_ANY: str | None,
    ColumnKind.TIMESTAMP: int | None,
}


#: The exact types a line's value may have, per column kind: what _LINE_TYPES lets the converter take.
_ALLOWED: dict[ColumnKind, frozenset[type]] = {
    kind: frozenset(typing.get_args(tp) or (tp,)) for kind, tp in _LINE_TYPES.items()
}


@functools.cache
def line_class(mode: Mode) -> type[Any]:
    """The attrs class of one session line of ``mode``: a field per column, in table order."""
    fields = {c.name: attrs.field(type=_LINE_TYPES[c.kind]) for c in SPECS[mode].columns}
    return attrs.make_class(f"{mode.name.title().replace('_', '')}Line", fields, frozen=True, slots=True)


def row_reader(mode: Mode, converter: cattrs.Converter) -> Callable[[Any], list[Any]]:
    """A function from one decoded session line to its row (every column, in table order), as the converter reads it.

    It raises what ``converter.structure(line, line_class(mode))`` raises,
    and TypeError for a line that is not a JSON object.
    A line that is plainly right (a dict of exactly the columns, each value
    of its column's exact type or null where that is allowed) is taken
    as it is; any other goes through the converter, which accepts or refuses
    it and words the error. Measured on small sessions: 3 µs a line instead
    of 8.5 µs (see docs/architecture.md).
    """
    cls = line_class(mode)
    names = SPECS[mode].names
    keys = frozenset(names)
    allowed = [_ALLOWED[c.kind] for c in SPECS[mode].columns]
    values = operator.attrgetter(*names)

    def read(line: Any) -> list[Any]:
        if type(line) is not dict:
            # The converter would fail on it with an AttributeError.
            raise TypeError(f"a session line is a JSON object, not a JSON {type(line).__name__}")
        if line.keys() == keys:
            row = [line[name] for name in names]
            if all([type(value) in ok for value, ok in zip(row, allowed, strict=True)]):
                return row
        return list(values(converter.structure(line, cls)))

    return read


def header_for(mode: Mode, *, layout: str, engine: str, table: str, agent_runs: bool = False) -> Header:
    return Header(
        format=FORMAT,
        version=2 if agent_runs else 1,
        mode=mode,
        layout=layout,
        engine=engine,
        table=table,
        columns=list(SPECS[mode].names),
        agent_runs=agent_runs,
    )


__all__ = ["FORMAT", "FORMAT_VERSION", "Header", "header_for", "line_class", "make_converter", "row_reader"]
