"""Reading a sessions table's rows as stored, in session_id order, with the export filters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs

from agno_storage.modes import JSON_KINDS, SPECS
from agno_storage.ops.db import Database
from agno_storage.ops.tables import TableInfo
from agno_storage.schema import quote


@attrs.frozen
class Filters:
    """Which sessions: of one user (``''``: no owner), last updated in [since, until) (Unix seconds).

    A session with no ``updated_at`` counts from its ``created_at``.
    """

    user: str | None = None
    since: int | None = None
    until: int | None = None


def where(db: Database, filters: Filters) -> tuple[str, list[Any]]:
    """The WHERE clause (``''`` for none) and its parameters."""
    ph = db.placeholder
    clauses: list[str] = []
    params: list[Any] = []
    if filters.user == "":
        clauses.append('("user_id" IS NULL OR "user_id" = \'\')')
    elif filters.user is not None:
        clauses.append(f'"user_id" = {ph}')
        params.append(filters.user)
    stamp = 'COALESCE("updated_at", "created_at")'
    if filters.since is not None:
        clauses.append(f"{stamp} >= {ph}")
        params.append(filters.since)
    if filters.until is not None:
        clauses.append(f"{stamp} < {ph}")
        params.append(filters.until)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def count(db: Database, info: TableInfo, filters: Filters) -> int:
    clause, params = where(db, filters)
    (n,) = db.query(f"SELECT COUNT(*) FROM {db.qualified(info.name)}{clause}", params)[0]  # noqa: S608
    return int(n)


def rows(db: Database, info: TableInfo, filters: Filters) -> Iterator[list[tuple[Any, ...]]]:
    """Batches of rows: every column of the mode in table order (SQL NULL for one an old table lacks).

    JSON columns come as their stored text. Ordered by session_id in byte
    order on both engines, so two exports of equal tables are equal.
    """
    items = []
    for column in SPECS[info.mode].columns:
        if column.name in info.missing:
            items.append(f"NULL AS {quote(column.name)}")
        elif column.kind in JSON_KINDS:
            items.append(db.as_text(column.name))
        else:
            items.append(quote(column.name))
    clause, params = where(db, filters)
    order = ' ORDER BY "session_id"' if db.is_sqlite else ' ORDER BY "session_id" COLLATE "C"'
    statement = f"SELECT {', '.join(items)} FROM {db.qualified(info.name)}{clause}{order}"  # noqa: S608
    return db.stream(statement, params)


__all__ = ["Filters", "count", "rows", "where"]
