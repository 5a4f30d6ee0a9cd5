"""agno 3.1.10's rows as parameter tuples: the mapped records a writer upserts, JSON columns encoded once.

:class:`Rows` turns a :class:`~agno_storage.agno3.records.Mapped` session
into an :class:`~agno_storage.agno3.records.Encoded` one, with no I/O: it
runs where a batch is mapped (the migrating process or a worker,
:mod:`agno_storage.agno3.chunks`), and :func:`rows_for` gives the encoder of
the target engine's writer (:mod:`agno_storage.agno3.writer`). JSON columns
are orjson's text, or ``json.dumps``'s where orjson would differ.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from agno_storage.agno3 import ddl
from agno_storage.agno3.mapping import Mapped
from agno_storage.agno3.records import Encoded

_INF = float("inf")
#: Types json.dumps refuses (datetimes, dataclasses) or spells its own way (str/int/dict/list subclasses) are
#: not encoded by orjson either: they go to json.dumps, which refuses or spells them as before.
_ORJSON_STRICT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


def _dumps(value: Any) -> str:
    """A JSON column's text: orjson's compact UTF-8, or ``json.dumps`` where orjson would differ or refuses.

    agno 3 reads its JSON columns with ``json.loads``, which gives the same
    values from either spelling; orjson encodes a run about six times faster
    than ``json.dumps`` (docs/architecture.md, "Choices written down").
    orjson writes NaN and infinities as ``null`` and refuses integers past
    64 bits, keys that are not strings, lone surrogates and deep nesting:
    those values get ``json.dumps``'s text, as agno 3 would write them, so
    nothing is lost or changed.
    """
    try:
        raw = orjson.dumps(value, option=_ORJSON_STRICT)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value)
    if b"null" in raw and value is not None and _has_non_finite(value):
        return json.dumps(value)
    return raw.decode()


def _has_non_finite(value: Any) -> bool:
    """Whether a NaN or infinite float sits anywhere in ``value`` (JSON data: dicts, lists, tuples, scalars)."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is float:
            if item != item or item in (_INF, -_INF):
                return True
        elif kind is dict:
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif isinstance(item, float):
            if item != item or item in (_INF, -_INF):
                return True
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


class Rows:
    """Records to parameter tuples in column order: each field read as it is, JSON columns encoded once.

    The records' fields are the table's columns in order
    (``tests/test_agno3_records.py`` checks that each tuple equals what the
    strict converter unstructures), and their values are plain JSON data
    already, so the converter's walk over every nested value is skipped:
    it was the largest cost of a migration (docs/architecture.md, "Choices
    written down").
    """

    def __init__(self, jsonb: Any = None) -> None:
        wrap = jsonb if jsonb is not None else _dumps
        self._wrap = wrap
        #: Per table: the record's fields in column order, and the positions of its JSON columns.
        self._plans: dict[str, tuple[Callable[[object], tuple[Any, ...]], tuple[int, ...]]] = {}
        for table, columns in ddl.COLUMNS.items():
            json_columns = ddl.JSON_COLUMNS[table]
            self._plans[table] = (
                operator.attrgetter(*columns),
                tuple(i for i, c in enumerate(columns) if c in json_columns),
            )

    def of(self, table: str, record: object) -> tuple[Any, ...]:
        get, json_at = self._plans[table]
        values = list(get(record))
        wrap = self._wrap
        for i in json_at:
            values[i] = wrap(values[i])
        return tuple(values)

    def encode(self, mapped: Mapped) -> Encoded:
        return Encoded(
            session_id=mapped.session.session_id,
            session=self.of(ddl.SESSIONS, mapped.session),
            runs=tuple(self.of(ddl.RUNS, r) for r in mapped.runs),
            memories=tuple(self.of(ddl.MEMORIES, x) for x in mapped.memories),
            run_ids=tuple(r.run_id for r in mapped.runs),
            stale_runs=mapped.stale_runs,
            rewrite=mapped.rewrite,
            stale_memories=mapped.legacy_memories if mapped.rewrite else (),
        )


def rows_for(engine: str) -> Rows:
    """The row encoder of the target engine's writer: ``"sqlite"`` (JSON text) or ``"postgres"`` (``Jsonb``)."""
    if engine == "sqlite":
        return Rows()
    if engine == "postgres":
        from psycopg.types.json import Jsonb

        return Rows(jsonb=lambda v: Jsonb(v, dumps=_dumps))
    raise ValueError(f"unknown engine {engine!r}")


__all__ = ["Rows", "rows_for"]
