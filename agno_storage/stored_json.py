"""Checks on the shape of the JSON a writer stored: :class:`StoredJson`.

agno and agno-golang keep conversations and run figures as JSON of their
own making, which any program may have written; a value of the wrong
shape raises :class:`~agno_storage.errors.CorruptRowError` naming the
table, session and column, and where in the value it was found.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable, Mapping
from typing import Any

from agno_storage.errors import CorruptRowError


class Inexact(Exception):
    """The JSON was decoded without the exact reading of integers past 64 bits, and holds one: read it exactly.

    Raised by :meth:`StoredJson.confirm_exact`; the reader that decoded the
    JSON laxly (:meth:`agno_storage.codec.RowCodec.decode_lax`) catches it and reads
    the row again with :meth:`~agno_storage.codec.RowCodec.decode`.
    """


class StoredJson:
    """Checks on the shape of one stored JSON column; every error names the table, session and column.

    Shared by the readers that walk what agno and agno-golang store
    (conversations in :mod:`agno_storage.conversation_agno` and
    :mod:`agno_storage.conversation_go`, usage figures in :mod:`agno_storage.usage`).
    """

    def __init__(self, table: str, session_id: str, column: str, *, is_exact: Callable[[], bool] | None = None) -> None:
        self.table = table
        self.session_id = session_id
        self.column = column
        # Given where the JSON was decoded by orjson alone, which reads an integer past 64 bits as a float: whether
        # it holds none. Asked once, by confirm_exact, only when a value such an integer could change is used.
        self._is_exact = is_exact

    def confirm_exact(self) -> None:
        """Called before a value is used that a float read in place of a wide integer would change: a float
        (which may have been such an integer), a structured value (which may hold one), or the type named in an
        error. Raises :class:`Inexact` if the JSON was read laxly and holds such an integer; else returns (and
        from then on at no cost)."""
        is_exact = self._is_exact
        if is_exact is not None:
            self._is_exact = None
            if not is_exact():
                raise Inexact

    def corrupt(self, where: str, what: str) -> CorruptRowError:
        self.confirm_exact()  # the JSON type an error names may be a wide integer's float
        return CorruptRowError(
            f"{self.table}.{self.column} of session {self.session_id!r}: {where} {what}",
            table=self.table,
            session_id=self.session_id,
            column=self.column,
        )

    def as_list(self, value: Any, where: str) -> builtins.list[Any]:
        if not isinstance(value, list):
            raise self.corrupt(where, f"is a JSON {type(value).__name__}, not a list")
        return value

    def as_dict(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.corrupt(where, f"is a JSON {type(value).__name__}, not an object")
        return value

    def opt_str(self, item: Mapping[str, Any], key: str, where: str) -> str | None:
        value = item.get(key)
        if value is not None and not isinstance(value, str):
            raise self.corrupt(f"{where}.{key}", f"is a JSON {type(value).__name__}, not a string")
        return value

    def opt_time(self, item: Mapping[str, Any], where: str) -> int | None:
        value = self.opt_seconds(item, where)
        return None if value is None else int(value)

    def opt_seconds(self, item: Mapping[str, Any], where: str) -> int | float | None:
        """``item``'s created_at as stored, a finite number; None if it has none."""
        value = item.get("created_at")
        if value is None:
            return None
        if type(value) is float:
            self.confirm_exact()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.corrupt(f"{where}.created_at", f"is a JSON {type(value).__name__}, not a number")
        if isinstance(value, float) and not math.isfinite(value):  # NaN as a store with read_non_finite reads it
            raise self.corrupt(f"{where}.created_at", f"is {value}, not a time")
        return value


__all__ = ["Inexact", "StoredJson"]
