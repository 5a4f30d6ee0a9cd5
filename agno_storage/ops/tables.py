"""``tables``: every sessions table of a file or schema, with its mode, layout, version and size."""

from __future__ import annotations

import contextlib
import enum

import attrs

from agno_storage import agent_runs, schema
from agno_storage.agent_runs import TABLE as RUNS_TABLE
from agno_storage.errors import SchemaMismatchError, StorageError, TableNotFoundError
from agno_storage.models import Mode
from agno_storage.modes import SPECS, TEXT_KINDS
from agno_storage.ops.db import Database

#: PostgreSQL's SQLSTATE for a statement the role has no privilege for.
_NO_PRIVILEGE = "42501"


class Layout(enum.Enum):
    """Who made a sessions table, and for which engine."""

    AGNO_GOLANG = "agno-golang"  # the Go port's DDL (also agno_storage's on SQLite)
    AGNO_SQLITE = "agno-1.x-sqlite"  # agno 1.x's SQLAlchemy DDL on SQLite
    AGNO_POSTGRES = "agno-1.x-postgres"  # agno 1.x's PostgreSQL layout (also agno_storage's)
    UNKNOWN = "unknown"


@attrs.frozen
class TableInfo:
    """One sessions table."""

    name: str
    mode: Mode
    layout: Layout
    version: int
    #: Columns the pending migrations would add (``agno-storage upgrade``).
    missing: tuple[str, ...]
    #: Columns that are not the mode's (other writers' or older agno's), left alone.
    extra: tuple[str, ...]
    #: None where the rows were not counted (``count_rows=False``).
    rows: int | None


@attrs.frozen
class RunsInfo:
    """A Go Agent's ``agent_runs`` table."""

    name: str
    rows: int
    #: Runs whose session has no row in any sessions table of the file/schema.
    orphaned: int


@attrs.frozen
class UnfitRuns:
    """An ``agent_runs`` table that is not agno-golang's runs table (:func:`go_runs`), which nothing reads."""

    name: str
    #: What it is and the SQL that renames it (:func:`agno_storage.agent_runs.not_go_runs`).
    reason: str


@attrs.frozen
class TablesReport:
    sessions: tuple[TableInfo, ...]
    runs: RunsInfo | None
    #: Tables that are neither sessions tables nor ``agent_runs`` (an ``unfit_runs`` among them).
    others: tuple[str, ...]
    #: An ``agent_runs`` that is not agno-golang's runs table (then ``runs`` is None).
    unfit_runs: UnfitRuns | None = None


def runs_table_name(db: Database, names: list[str]) -> str | None:
    """Which of ``names`` (the tables of ``db``) is ``agent_runs``, as the engine compares names
    (``schema.table_key``): in SQLite in any case, as a Go Agent's statements find it; in PostgreSQL as spelt
    (the store quotes names there)."""
    for name in names:
        if schema.table_key(name, db.engine) == RUNS_TABLE:
            return name
    return None


def go_runs(db: Database) -> bool:
    """Whether ``db`` (file or schema) has agno-golang's ``agent_runs`` table, which callers read as Go Agent runs.

    False if it has no ``agent_runs``. SchemaMismatchError
    (:func:`agno_storage.agent_runs.not_go_runs`, saying how to rename it) if
    it has one without the Go runs table's columns: a sessions table an
    earlier agno-storage let be named so, whose rows read as runs would fail
    in SQL or be taken for Go runs. One catalogue query.
    """
    layout = db.layout(RUNS_TABLE)
    if layout is None:
        return False
    if not agent_runs.is_go_layout(layout[0]):
        raise _not_go_runs(db, layout[0])
    return True


def _not_go_runs(db: Database, columns: list[str]) -> SchemaMismatchError:
    name = runs_table_name(db, db.table_names()) or RUNS_TABLE
    return agent_runs.not_go_runs(name, columns, None if db.is_sqlite else db.name(name))


def layout_of(db: Database, table: str, index_names: list[str], table_sql: str) -> Layout:
    flavor = schema.flavor_of(table, index_names, table_sql)
    if not db.is_sqlite:
        return Layout.AGNO_POSTGRES if flavor is not schema.Flavor.UNKNOWN else Layout.UNKNOWN
    return {schema.Flavor.GO: Layout.AGNO_GOLANG, schema.Flavor.AGNO: Layout.AGNO_SQLITE}.get(flavor, Layout.UNKNOWN)


def describe(db: Database, table: str, mode: Mode | None = None, *, count_rows: bool = True) -> TableInfo:
    """What ``table`` is: its mode (detected unless given), layout, version and row count.

    ``count_rows=False``: ``rows`` is None, and no row is read (a count reads the whole table or an index).

    Raises TableNotFoundError (naming the tables that are there) or
    SchemaMismatchError for a table that is not a sessions table of ``mode``.
    """
    layout = db.layout(table)
    if layout is None:
        raise missing_table(db, table)
    columns, indexes, table_sql = layout
    if mode is None:
        mode = schema.identify_mode(columns)
        if mode is None:
            raise SchemaMismatchError(
                f"table {table!r} is not a sessions table (columns: {sorted(columns)})", table=table
            )
    shape = schema.inspect_shape(table, mode, columns, indexes, table_sql, engine=db.engine)
    names = set(SPECS[mode].names)
    rows = None
    if count_rows:
        (rows,) = db.query(f"SELECT COUNT(*) FROM {db.qualified(table)}", table=table)[0]  # noqa: S608 - quoted identifier
    return TableInfo(
        name=table,
        mode=mode,
        layout=layout_of(db, table, indexes, table_sql),
        version=shape.version,
        missing=tuple(sorted(shape.missing)),
        extra=tuple(c for c in columns if c not in names),
        rows=None if rows is None else int(rows),
    )


def list_tables(
    db: Database, unreadable: list[tuple[str, str]] | None = None, *, count_rows: bool = True, runs: bool = True
) -> TablesReport:
    """Every sessions table of ``db`` (file or schema), its ``agent_runs`` table if any, and the rest by name.

    ``count_rows=False``: no row is read; each table's ``rows`` is None, and so is ``runs`` (its counts).
    ``runs=False``: ``runs`` is None and no row of ``agent_runs`` is read (its orphan count reads every run).

    A table the connection's role may not read (PostgreSQL) is a StorageError saying "permission denied";
    with ``unreadable`` given, it is added there (name, why) instead and the others are listed.
    """
    sessions: list[TableInfo] = []
    others: list[str] = []
    names = db.table_names()
    runs_name = runs_table_name(db, names)
    unfit: UnfitRuns | None = None
    if runs_name is not None:
        try:
            go_runs(db)
        except SchemaMismatchError as exc:
            # Listed as what it is, with how to rename it: neither runs nor a sessions table read by this name.
            unfit, runs_name = UnfitRuns(name=exc.table or runs_name, reason=str(exc)), None
    for name in names:
        if name == runs_name:
            continue
        if unfit is not None and name == unfit.name:
            others.append(name)
            continue
        try:
            # With unreadable given, a table that fails is passed over: the transaction must go on after it.
            with db.savepoint() if unreadable is not None else contextlib.nullcontext():
                layout = db.layout(name)
                if layout is None or schema.identify_mode(layout[0]) is None:
                    others.append(name)
                    continue
                sessions.append(describe(db, name, count_rows=count_rows))
        except SchemaMismatchError:
            others.append(name)
        except StorageError as exc:
            if unreadable is None or getattr(exc.__cause__, "sqlstate", None) != _NO_PRIVILEGE:
                raise
            unreadable.append((name, str(exc)))
    found = runs_info(db, [t.name for t in sessions]) if runs and count_rows and runs_name is not None else None
    return TablesReport(sessions=tuple(sessions), runs=found, others=tuple(others), unfit_runs=unfit)


def runs_info(db: Database, session_tables: list[str]) -> RunsInfo:
    """Row and orphan counts of ``agent_runs``; orphans have no row in any of ``session_tables``."""
    runs = db.qualified(RUNS_TABLE)
    (total,) = db.query(f"SELECT COUNT(*) FROM {runs}", table=RUNS_TABLE)[0]  # noqa: S608 - quoted identifier
    conditions = " AND ".join(
        f"NOT EXISTS (SELECT 1 FROM {db.qualified(t)} s WHERE s.session_id = r.session_id)"  # noqa: S608
        for t in session_tables
    )
    where = f" WHERE {conditions}" if conditions else ""
    (orphaned,) = db.query(f"SELECT COUNT(*) FROM {runs} r{where}", table=RUNS_TABLE)[0]  # noqa: S608 - quoted identifiers
    return RunsInfo(name=RUNS_TABLE, rows=int(total), orphaned=int(orphaned))


def missing_table(db: Database, table: str) -> TableNotFoundError:
    """The error for a table that is not there, naming the tables that are."""
    return TableNotFoundError(f"no table {table!r} in {db.location}; {there_are(db.table_names())}", table=table)


def there_are(names: list[str]) -> str:
    return f"tables there: {', '.join(names)}" if names else "it has no tables"


def inexact_ids(db: Database, table: str, columns: list[str]) -> str | None:
    """Why one of ``columns`` of ``table`` compares other than exactly, or None: the store's own check, for
    which it refuses the table (SQLite: a collation other than BINARY; PostgreSQL: a nondeterministic one, or
    the type ``citext`` or ``character(n)``)."""
    if db.is_sqlite:
        from agno_storage.backends.sqlite_ddl import inexact_collation

        return inexact_collation(db.query, table, columns)
    from agno_storage.backends.postgres_ddl import inexact_collation as pg_inexact_collation

    return pg_inexact_collation(db.query, db.name(table), columns, db.conn.info.server_version)


def check_exact_ids(db: Database, info: TableInfo, *, runs: bool = False) -> None:
    """SchemaMismatchError, as the store raises it, if the ids or owners of ``info``'s table compare other than
    exactly (:func:`inexact_ids`), and with ``runs`` those of ``agent_runs`` (:func:`inexact_run_ids`): a filter
    by user, or a delete by session_id, would take another's too (``'ALICE'`` with alice, the runs of session
    ``'A'`` with ``'a'``)."""
    why = inexact_ids(db, info.name, [c.name for c in SPECS[info.mode].columns if c.kind in TEXT_KINDS])
    if why is not None:
        raise schema.unfit_table(info.name, info.mode, f"apart: {why}; the store compares ids and owners exactly")
    if runs and db.is_sqlite:
        agent_runs.check_collations(db.query)
    elif runs:
        why = inexact_run_ids(db)
        if why is not None:
            raise SchemaMismatchError(
                f"table {RUNS_TABLE!r} cannot keep runs apart: {why}; the store compares ids and owners exactly",
                table=RUNS_TABLE,
            )


def check_types(db: Database, info: TableInfo) -> None:
    """SchemaMismatchError, as the store raises it, if a column of ``info``'s table is of a type that changes or
    refuses what the store writes (SQLite: ``sqlite_ddl.check_declared_types``; PostgreSQL:
    ``postgres_ddl.check_types``, a ``name`` session id cut to 63 bytes, say). One catalogue query."""
    spec = SPECS[info.mode]
    if db.is_sqlite:
        from agno_storage.backends.sqlite_ddl import check_declared_types

        declared = dict(db.query("SELECT name, type FROM pragma_table_info(?)", [info.name], table=info.name))
        check_declared_types(info.name, spec, declared)
        return
    from agno_storage.backends import postgres_ddl

    columns = postgres_ddl.column_types(db.query, db.name(info.name), db.conn.info.server_version)
    postgres_ddl.check_types(info.name, spec, columns)


def inexact_run_ids(db: Database) -> str | None:
    """Why one of the id and owner columns of ``agent_runs`` compares other than exactly (:func:`inexact_ids`),
    or None; on PostgreSQL too, where agno-golang keeps none but ``prune`` and ``export`` read one there."""
    return inexact_ids(db, RUNS_TABLE, ["id", "session_id", "user_id"])


__all__ = [
    "Layout",
    "RunsInfo",
    "TableInfo",
    "TablesReport",
    "UnfitRuns",
    "check_exact_ids",
    "check_types",
    "describe",
    "go_runs",
    "inexact_ids",
    "inexact_run_ids",
    "layout_of",
    "list_tables",
    "missing_table",
    "runs_info",
    "runs_table_name",
    "there_are",
]
