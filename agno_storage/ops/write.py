"""Writing stored rows into a sessions table: checked, in batches, one transaction per batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agno_storage import codec
from agno_storage.backends.base import BaseStorage
from agno_storage.backends.sqlite import SqliteStorage
from agno_storage.models import Mode
from agno_storage.modes import SPECS, ColumnKind
from agno_storage.ops.db import open_store

#: Sessions per write transaction: short enough never to hold the write lock for long.
BATCH_SIZE = 1000

_JSON_TYPES: dict[ColumnKind, tuple[type, ...]] = {ColumnKind.JSON: (dict,), ColumnKind.JSON_ANY: (dict, list)}


class BadValue(ValueError):
    """A value of a row that cannot be written; ``column`` names it."""

    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column


class RowWriter:
    """Upserts rows (every column of the mode, in table order, JSON as text) into one table.

    Creates the table (the engine's layout) if it is not there; refuses a
    table of another mode (SchemaMismatchError) or an old version
    (SchemaVersionError: upgrade it first). An existing session is
    overwritten whoever owns it, and keeps its ``created_at``; ``updated_at``
    is the row's own, not now. Close it (or use ``with``).
    """

    def __init__(self, url: str, table: str, mode: Mode, schema: str | None = "ai") -> None:
        self.store: BaseStorage = open_store(url, table, mode, schema)
        try:
            self.store.create()
        except BaseException:
            self.store.close()
            raise
        spec = SPECS[mode]
        self._json = [(i, c.name, _JSON_TYPES[c.kind]) for i, c in enumerate(spec.columns) if c.kind in _JSON_TYPES]
        # The Go port's NOT NULL text columns spell "no value" as ''.
        self._required = (
            [i for i, c in enumerate(spec.columns) if c.kind is ColumnKind.REQUIRED_TEXT]
            if isinstance(self.store, SqliteStorage)
            else []
        )
        self._upsert = self.store.statements.upsert

    def check(self, row: Sequence[Any]) -> list[Any]:
        """``row`` ready to write; BadValue if a JSON column's text is not JSON of its column's type."""
        out = list(row)
        for i, name, kinds in self._json:
            text = out[i]
            if text is None:
                continue
            try:
                value = codec.loads(text)
            except ValueError as exc:
                raise BadValue(name, f"{name} is not valid JSON: {exc}") from None
            if value is not None and not isinstance(value, kinds):
                raise BadValue(
                    name, f"{name} holds a JSON {type(value).__name__}, not {' or '.join(k.__name__ for k in kinds)}"
                )
        for i in self._required:
            if out[i] is None:
                out[i] = ""
        return out

    def write(self, rows: list[list[Any]]) -> None:
        """Upsert ``rows`` (already checked) in one transaction: all of them or none."""
        if not rows:
            return
        with self.store.transaction() as conn:
            cursor = conn.cursor()
            try:
                cursor.executemany(self._upsert, rows)
            finally:
                cursor.close()

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["BATCH_SIZE", "BadValue", "RowWriter"]
