"""The Go port's SQLite DDL: the tables, indexes and added columns agno-golang makes.

The text is the Go port's, character for character, so a table created here
has the same ``sqlite_master.sql`` as one made by agno-golang's ``Create()``.
Table names are checked plain identifiers (:func:`schema.check_table_name`),
which is why they appear unquoted, as the Go port writes them.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agno_storage.errors import SchemaMismatchError
from agno_storage.modes import TEXT_KINDS, ColumnKind, ModeSpec
from agno_storage.schema import Flavor, TableShape, not_a_table, pending_columns, unfit_table


def table_layout(
    query: Callable[[str, Sequence[Any]], Sequence[Sequence[Any]]], table: str
) -> tuple[list[str], list[str], str] | None:
    """(column names, index names, CREATE TABLE text) of ``table``, or None if it is not there.

    ``query`` runs one statement with its parameters and returns its rows:
    the store's connection or the operations' read-only one.
    """
    columns = [r[0] for r in query("SELECT name FROM pragma_table_info(?)", (table,))]
    if not columns:
        return None
    indexes: list[str] = []
    table_sql = ""
    for kind, name, sql in query(
        "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = ? COLLATE NOCASE", (table,)
    ):
        if kind == "index":
            indexes.append(name)
        elif kind == "table":
            table_sql = sql or ""
    return columns, indexes, table_sql


_VIRTUAL = re.compile(r"\s*CREATE\s+VIRTUAL\s+TABLE\b", re.IGNORECASE)


def check_is_table(
    query: Callable[[str, Sequence[Any]], Sequence[Sequence[Any]]], table: str, spec: ModeSpec, table_sql: str
) -> None:
    """SchemaMismatchError if ``table`` (one :func:`table_layout` found; ``table_sql`` its text) is a view or a
    virtual table: it reads like the table, but an upsert cannot write it. Asks the file only when the text does
    not tell (a view has no table text)."""
    if table_sql:
        if _VIRTUAL.match(table_sql):
            raise not_a_table(table, spec.mode, "a virtual table")
        return
    if query("SELECT 1 FROM sqlite_master WHERE type = 'view' AND name = ? COLLATE NOCASE", (table,)):
        raise not_a_table(table, spec.mode, "a view")


def affinity(declared: str) -> str:
    """The type affinity SQLite gives a column declared ``declared`` (its rules, in their order)."""
    upper = declared.upper()
    if "INT" in upper:
        return "INTEGER"
    if "CHAR" in upper or "CLOB" in upper or "TEXT" in upper:
        return "TEXT"
    if "BLOB" in upper or not upper.strip():
        return "BLOB"
    if "REAL" in upper or "FLOA" in upper or "DOUB" in upper:
        return "REAL"
    return "NUMERIC"


#: The affinities that convert what the codec writes to a column of each kind: a timestamp to text or a
#: float, a text that reads as a number to a number. JSON text (an object, a list, null) is never converted.
_CONVERTING = {
    ColumnKind.TIMESTAMP: frozenset({"TEXT", "REAL"}),
    **dict.fromkeys(
        (ColumnKind.KEY, ColumnKind.REQUIRED_TEXT, ColumnKind.OPTIONAL_TEXT), frozenset({"INTEGER", "REAL", "NUMERIC"})
    ),
}


def check_declared_types(table: str, spec: ModeSpec, declared: Mapping[str, str]) -> None:
    """SchemaMismatchError if a column of ``spec`` is declared (``declared``: name to type, as
    ``pragma_table_info`` gives them) with a type that makes SQLite store the codec's values as another type."""
    for column in spec.columns:
        decl = declared.get(column.name)
        if decl is not None and affinity(decl) in _CONVERTING.get(column.kind, frozenset()):
            raise unfit_table(
                table,
                spec.mode,
                f"as written: {column.name} is declared {decl!r}, and SQLite converts what is written to a column "
                f"of {affinity(decl)} affinity",
            )


def check_collations(
    query: Callable[[str, Sequence[Any]], Sequence[Sequence[Any]]], table: str, spec: ModeSpec, table_sql: str | None
) -> None:
    """SchemaMismatchError if a text column of ``spec`` in ``table`` compares by a collation other than BINARY.

    ``query`` runs one statement on the store's file, as for :func:`table_layout`.
    ``user_id TEXT COLLATE NOCASE`` (or RTRIM) would make ``'ALICE'`` (or
    ``'alice '``) the owner of alice's sessions in every comparison the
    store makes, and a session id match another's. See :func:`inexact_collation`.
    """
    why = inexact_collation(query, table, [c.name for c in spec.columns if c.kind in TEXT_KINDS], table_sql)
    if why is not None:
        raise _uncomparable(table, spec, why)


def inexact_collation(
    query: Callable[[str, Sequence[Any]], Sequence[Sequence[Any]]],
    table: str,
    columns: Sequence[str],
    table_sql: str | None = None,
) -> str | None:
    """Why one of ``columns`` of ``table`` does not compare exactly (a collation other than BINARY), or None.

    SQLite reports no column's collation, so the table is made again in
    memory from its text (``table_sql``, its ``sqlite_master.sql``; read
    with ``query`` when None), and an index on each column there reads it
    back. Costs nothing more where the text names no collation, as agno's
    and the Go port's never do.
    """
    if table_sql is None:
        rows = query("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE", (table,))
        table_sql = (rows[0][0] or "") if rows else ""
    if "collate" not in table_sql.lower():
        return None
    probe = sqlite3.connect(":memory:")
    try:
        try:
            probe.execute(table_sql)
        except sqlite3.Error as exc:  # a collation of another program's, say: this store cannot compare by it
            return f"its definition does not load here ({exc})"
        for i, column in enumerate(columns):
            probe.execute(f'CREATE INDEX "probe_{i}" ON "{table}" ("{column}")')
            collation = next(row[4] for row in probe.execute(f'PRAGMA index_xinfo("probe_{i}")') if row[5])
            if str(collation).upper() != "BINARY":
                return f"{column} compares by collation {collation}"
    finally:
        probe.close()
    return None


def _uncomparable(table: str, spec: ModeSpec, why: str) -> SchemaMismatchError:
    return unfit_table(
        table, spec.mode, f"apart: {why}; the store compares ids and owners exactly (declare them without COLLATE)"
    )


def create_table(table: str, spec: ModeSpec) -> str:
    """The Go port's CREATE TABLE statement for ``spec``'s mode, byte for byte."""
    cols = ", ".join(f"{c.name} {c.decl}" for c in spec.columns)
    return f"CREATE TABLE IF NOT EXISTS {table} ({cols})"


def go_index_name(table: str, column: str) -> str:
    return f"idx_{table}_{column}"


def create_index(table: str, column: str) -> str:
    return f"CREATE INDEX IF NOT EXISTS {go_index_name(table, column)} ON {table} ({column})"


def create_indexes(table: str, spec: ModeSpec) -> list[str]:
    """The Go port's CREATE INDEX statements for ``spec``'s mode, in its order."""
    return [create_index(table, column) for column in spec.go_indexed]


def recency_index_name(table: str, column: str | None) -> str:
    """The name of the recency index led by ``column`` (``None``: the one for all sessions)."""
    return f"rx_{table}_{column or 'all'}_recent"


def create_recency_indexes(table: str, spec: ModeSpec) -> list[str]:
    """Indexes that serve "newest sessions" of one user, of one entity and of all without a sort.

    They match ``ORDER BY created_at DESC, session_id`` exactly. Not part of the
    Go port's DDL; its table and index statements are untouched by them.
    """
    leads: list[str | None] = ["user_id", spec.entity_column, None]
    return [
        f"CREATE INDEX IF NOT EXISTS {recency_index_name(table, lead)} "
        f"ON {table} ({f'{lead}, ' if lead else ''}created_at DESC, session_id)"
        for lead in leads
    ]


def upgrade_statements(table: str, spec: ModeSpec, shape: TableShape) -> list[str]:
    """The statements that bring a table of ``shape`` to the current version; ``[]`` if current.

    Each missing column is added as the Go port declares it (NOT NULL text
    with a default, for the rows already there) and, on a Go-made table, gets
    the Go port's index if the Go port indexes it; agno's own upgrade adds the
    column only, and so does this on its tables.
    """
    out: list[str] = []
    for name in pending_columns(shape):
        column = spec.column(name)
        default = " DEFAULT ''" if column.kind is ColumnKind.REQUIRED_TEXT else ""
        out.append(f"ALTER TABLE {table} ADD COLUMN {column.name} {column.decl}{default}")
        if shape.flavor is Flavor.GO and name in spec.go_indexed:
            out.append(create_index(table, name))
    return out


__all__ = [
    "affinity",
    "check_collations",
    "check_declared_types",
    "check_is_table",
    "create_index",
    "create_indexes",
    "create_recency_indexes",
    "create_table",
    "go_index_name",
    "inexact_collation",
    "recency_index_name",
    "table_layout",
    "upgrade_statements",
]
