"""Reading a sessions table's rows as stored, in session_id order, with the export filters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs

from agno_storage import schema
from agno_storage.agent_runs import TABLE as RUNS_TABLE
from agno_storage.agent_runs import belongs_sql
from agno_storage.models import Mode
from agno_storage.modes import JSON_KINDS, SPECS
from agno_storage.ops.db import Database
from agno_storage.ops.tables import TableInfo, go_runs
from agno_storage.schema import quote


@attrs.frozen
class Filters:
    """Which sessions: of one user (``''``: no owner), last updated in [since, until) (Unix seconds).

    A session with no ``updated_at`` counts from its ``created_at``.
    """

    user: str | None = None
    since: int | None = None
    until: int | None = None


#: The alias of agent_runs in a subquery: quoted with a dot, which no plain table name holds.
RUN_ALIAS = '"agno_storage.run"'


def where(db: Database, filters: Filters, runs_of: str | None = None) -> tuple[str, list[Any]]:
    """The WHERE clause (``''`` for none) and its parameters.

    ``runs_of`` (an agent table's name, quoted for ``db``, beside an
    ``agent_runs`` table) makes a session's time the newest of its row's and
    its runs': a Go Agent continues a session by adding runs, never by
    updating the row, so such a session was updated when its newest run was.
    """
    ph = db.placeholder
    clauses: list[str] = []
    params: list[Any] = []
    if filters.user == "":
        clauses.append('("user_id" IS NULL OR "user_id" = \'\')')
    elif no_owner_is(db, filters.user):
        clauses.append("1 = 0")
    elif filters.user is not None:
        clauses.append(f'"user_id" = {ph}')
        params.append(filters.user)
    stamp = 'COALESCE("updated_at", "created_at")'
    run = ""
    if runs_of is not None:
        # Only runs of the session's own conversation (conversation.belongs: no user, the owner's, or any of
        # a session with no owner). The alias is one no table's name can be: a table named like it would
        # hide the outer table.
        r = RUN_ALIAS
        run = (
            f"EXISTS (SELECT 1 FROM {db.qualified(RUNS_TABLE)} AS {r} WHERE {r}.session_id = {runs_of}.session_id "  # noqa: S608
            f"AND {belongs_sql(r, runs_of)} "
            f'AND COALESCE({r}."updated_at", {r}."created_at") >= {ph})'
        )
    if filters.since is not None:
        clauses.append(f"({stamp} >= {ph} OR {run})" if run else f"{stamp} >= {ph}")
        params += [filters.since, filters.since] if run else [filters.since]
    if filters.until is not None:
        clauses.append(f"{stamp} < {ph} AND NOT {run}" if run else f"{stamp} < {ph}")
        params += [filters.until, filters.until] if run else [filters.until]
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def no_owner_is(db: Database, user: str | None) -> bool:
    """Whether no row of ``db`` can be ``user``'s: PostgreSQL text cannot hold U+0000 (the server would refuse
    the parameter), so no session there is such a user's."""
    return user is not None and "\x00" in user and not schema.HOLDS_NUL[db.engine]


def _runs_of(db: Database, info: TableInfo) -> str | None:
    """``info``'s table quoted, where a session's time counts its runs (:func:`where`), else None."""
    if info.mode is Mode.AGENT and go_runs(db):
        return db.qualified(info.name)
    return None


def count(db: Database, info: TableInfo, filters: Filters) -> int:
    clause, params = where(db, filters, _runs_of(db, info))
    (n,) = db.query(f"SELECT COUNT(*) FROM {db.qualified(info.name)}{clause}", params, table=info.name)[0]  # noqa: S608
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
    clause, params = where(db, filters, _runs_of(db, info))
    order = ' ORDER BY "session_id"' if db.is_sqlite else ' ORDER BY "session_id" COLLATE "C"'
    statement = f"SELECT {', '.join(items)} FROM {db.qualified(info.name)}{clause}{order}"  # noqa: S608
    return db.stream(statement, params, table=info.name)


__all__ = ["Filters", "count", "no_owner_is", "rows", "where"]
