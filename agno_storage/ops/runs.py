"""agno-golang's ``agent_runs`` rows in ``export``, ``import`` and ``copy``: carried with the agent sessions.

A Go Agent keeps its conversation in ``agent_runs`` beside the sessions
table (one row per run, some sessions with no session row at all), so an
agent table moved without them loses its Go conversations. The runs that
go with an agent table are those of the sessions selected, and those of
sessions only ``agent_runs`` holds (no row in any sessions table of the
file or schema, as ``prune`` counts them) that the same filters select by
the run's own user and time. They move as stored, every column.

Only an agent table in SQLite holds them on the other side (agno-golang
keeps ``agent_runs`` in SQLite only): into any other table they are counted
as left behind, never dropped without saying so, but for a copy into a table
that has the source's ``agent_runs`` beside it already (another table of the
same file or PostgreSQL schema), where they stay as they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from agno_storage import agent_runs
from agno_storage.agent_runs import belongs_sql
from agno_storage.backends.base import BaseStorage
from agno_storage.errors import CorruptRowError, SchemaMismatchError
from agno_storage.models import Mode
from agno_storage.ops.db import Database
from agno_storage.ops.errors import RowsKeptError
from agno_storage.ops.select import Filters, where
from agno_storage.ops.tables import TableInfo, go_runs, list_tables
from agno_storage.ops.values import INT64, json_problem
from agno_storage.schema import quote

#: The columns of ``agent_runs``, in agno-golang's order.
COLUMNS = agent_runs.ALL_COLUMNS
#: Runs per write transaction.
BATCH_SIZE = 1000
_TEXT = frozenset(COLUMNS[:-2])
#: The JSON columns and what their text decodes to: what agno-golang writes and ``history`` reads.
_JSON: dict[str, tuple[type, ...]] = {"run_data": (dict,), "messages": (list,), "metrics": (dict,)}
#: One ``agent_runs`` row in an export file (``{"agent_run": {...}}``), every column as stored.
RunLine = agent_runs.StoredRun


def carried(db: Database, info: TableInfo) -> bool:
    """Whether ``info``'s table has runs to carry: an agent table beside an ``agent_runs`` table.

    SchemaMismatchError if that ``agent_runs`` is not agno-golang's runs table (:func:`~agno_storage.ops.tables.go_runs`).
    """
    return info.mode is Mode.AGENT and go_runs(db)


def statement(db: Database, info: TableInfo, filters: Filters) -> tuple[str, list[Any]]:
    """The SELECT of the ``agent_runs`` rows that go with the sessions of ``info`` that ``filters`` selects.

    All the runs of a selected session; with a user filter, only those of
    its conversation (:func:`agno_storage.conversation.belongs`: no user,
    the owner's, or any of a session with no owner), never another user's
    that sit under its id.
    """
    # A session's time counts its runs (select.where): one a Go Agent went on with is selected by its runs.
    session_clause, session_params = where(db, filters, runs_of="s")
    clause, params = where(db, filters)
    condition = clause.removeprefix(" WHERE ")
    also = f" AND {condition}" if condition else ""
    session_condition = session_clause.removeprefix(" WHERE ")
    session_also = f" AND {session_condition}" if session_condition else ""
    theirs = ""
    if filters.user is not None:
        theirs = " AND " + belongs_sql("r", "s")
    runs = db.qualified(agent_runs.TABLE)
    no_row = " AND ".join(
        f"NOT EXISTS (SELECT 1 FROM {db.qualified(t.name)} s WHERE s.session_id = r.session_id)"  # noqa: S608
        for t in list_tables(db).sessions
    )
    text = (
        f"SELECT {', '.join('r.' + quote(c) for c in COLUMNS)} FROM {runs} r "  # noqa: S608
        f"WHERE EXISTS (SELECT 1 FROM {db.qualified(info.name)} s WHERE s.session_id = r.session_id"
        f"{session_also}{theirs}) OR ({no_row or '1 = 1'}{also}) ORDER BY r.session_id, r.created_at, r.id"
    )
    return text, [*session_params, *params]


def any_rows(db: Database, info: TableInfo, filters: Filters) -> bool:
    """Whether :func:`rows` gives any (an export without them stays a version 1 file)."""
    text, params = statement(db, info, filters)
    return bool(db.query(f"SELECT 1 FROM ({text}) AS runs LIMIT 1", params, table=agent_runs.TABLE))  # noqa: S608


def check_ids(db: Database, info: TableInfo, filters: Filters) -> None:
    """Raise CorruptRowError if two of the rows :func:`rows` gives share a run id.

    agno-golang declares ``id`` the primary key; an ``agent_runs`` another
    program made without it can hold one id twice, and written by id (into
    ``agent_runs`` or from an export by ``import``) one run would replace the
    other, a conversation losing a run with the count saying it went. One
    query, which reads every run selected.
    """
    text, params = statement(db, info, filters)
    found = db.query(
        f"SELECT id, MIN(session_id), MAX(session_id) FROM ({text}) AS runs "  # noqa: S608
        "WHERE id IS NOT NULL GROUP BY id HAVING COUNT(*) > 1 LIMIT 1",
        params,
        table=agent_runs.TABLE,
    )
    if found:
        run_id, first, last = found[0]
        raise CorruptRowError(
            f"agent_runs.id {run_id!r} is held by two runs (of sessions {first!r} and {last!r}): written by id, "
            "one would replace the other; give one of them another id",
            table=agent_runs.TABLE,
            session_id=first if isinstance(first, str) else None,
            column="id",
        )


def rows(db: Database, info: TableInfo, filters: Filters) -> Iterator[list[tuple[Any, ...]]]:
    """Batches of the rows :func:`statement` selects, in session order, each session's in the order written.

    Raises CorruptRowError for a value no line or row can hold (a BLOB, a
    float time).
    """
    text, params = statement(db, info, filters)
    for batch in db.stream(text, params, table=agent_runs.TABLE):
        for row in batch:
            check(row)
        yield batch


def check(row: tuple[Any, ...]) -> None:
    """Raise CorruptRowError for a value of an ``agent_runs`` row (:data:`COLUMNS`) agno-golang does not write.

    That is a value of the wrong type, a run without an id or a session
    (``''`` included, which no session line may have either), a time beyond
    64 bits, and JSON text that is not JSON of its column's type (``messages``
    an array, ``run_data`` and ``metrics`` objects), which ``history`` stops at.
    """
    for name, value in zip(COLUMNS, row, strict=True):
        ok = value is None or (type(value) is str if name in _TEXT else type(value) is int)
        why: str | None
        if not ok or (name in ("id", "session_id") and value is None):
            why = f"holds a {type(value).__name__} {value!r:.60}, which agno-golang does not write there"
        elif name == "session_id" and value == "":
            why = "is empty, which agno-golang does not write there"
        elif name in _JSON:
            why = json_problem(name, value, _JSON[name])
        else:
            why = None if type(value) is not int or value in INT64 else f"{value} is beyond a 64-bit integer"
        if why is not None:
            raise CorruptRowError(
                f"agent_runs.{name} of run {row[0]!r} {why.removeprefix(name + ' ')}",
                table=agent_runs.TABLE,
                session_id=row[1] if isinstance(row[1], str) else None,
                column=name,
            )


def holds_runs(store: BaseStorage) -> bool:
    """Whether ``store``'s table can have runs beside it: an agent table in SQLite."""
    return agent_runs.applies(store)


def write(store: BaseStorage, batch: list[tuple[Any, ...]]) -> None:
    """Write ``batch`` (rows of :data:`COLUMNS`) into ``agent_runs`` beside ``store``'s table, in one transaction.

    The table is made in agno-golang's DDL if missing; a run already there
    (by id) is replaced by the one given, so a rerun gives the same table.
    SchemaMismatchError, nothing written, if its ids compare case-blind or it is not keyed by id (a unique
    index on ``id``, which agno-golang's primary key makes); RowsKeptError, nothing written, if
    a trigger keeps a row out without an error.
    """
    statement = (
        f"INSERT OR REPLACE INTO {agent_runs.TABLE} ({', '.join(COLUMNS)}) "  # noqa: S608
        f"VALUES ({', '.join('?' for _ in COLUMNS)})"
    )
    # Another program's agent_runs whose ids compare case-blind: run 'r1' would replace its run 'R1'.
    agent_runs.check_store_table(store)
    with store.transaction() as conn:
        agent_runs.make_table(conn, store.table_name)
        if not _keyed_by_id(conn):  # INSERT OR REPLACE would add each run again on a rerun, not replace it
            raise SchemaMismatchError(
                f"{agent_runs.TABLE!r} has no primary key (or unique index) on id, as agno-golang's has: a rerun "
                "would add every run again; rename it, or give it agno-golang's DDL, before writing runs into it",
                table=agent_runs.TABLE,
            )
        written = conn.executemany(statement, batch).rowcount
        if 0 <= written < len(batch):  # another program's trigger skipped some: they are not there
            raise RowsKeptError(
                f"the database kept {len(batch) - written} of the {len(batch)} agent_runs rows of a batch out of "
                f"{agent_runs.TABLE!r} without an error (a trigger of another program); the batch was rolled back",
                table=agent_runs.TABLE,
            )


def _keyed_by_id(conn: Any) -> bool:
    """Whether ``agent_runs`` has a unique index on ``id`` alone (agno-golang's ``id TEXT PRIMARY KEY`` makes one)."""
    for _, name, unique, _, partial in conn.execute(f"PRAGMA index_list({agent_runs.TABLE})").fetchall():
        columns = [str(row[2]).lower() for row in conn.execute(f"PRAGMA index_info({quote(name)})").fetchall()]
        if unique and not partial and columns == ["id"]:
            return True
    return False


__all__ = [
    "BATCH_SIZE",
    "COLUMNS",
    "RunLine",
    "any_rows",
    "carried",
    "check",
    "check_ids",
    "holds_runs",
    "rows",
    "statement",
    "write",
]
