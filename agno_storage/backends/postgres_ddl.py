"""agno 1.x's PostgreSQL DDL: the tables, indexes and added columns its ``PostgresStorage`` makes.

Statements are ``psycopg.sql`` compositions, so every identifier is quoted.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
from psycopg import sql

from agno_storage.modes import COMMON_COLUMNS, JSON_KINDS, TEXT_KINDS, ColumnKind, ModeSpec
from agno_storage.schema import unfit_table

#: The declaration after the column name, as SQLAlchemy emits it for agno's columns.
_PG_TYPES: dict[ColumnKind, str] = {
    ColumnKind.KEY: "VARCHAR NOT NULL",
    ColumnKind.REQUIRED_TEXT: "VARCHAR",
    ColumnKind.OPTIONAL_TEXT: "VARCHAR",
    ColumnKind.JSON: "JSONB",
    ColumnKind.JSON_ANY: "JSONB",
    ColumnKind.TIMESTAMP: "BIGINT",
}
_CREATED_AT_DEFAULT = " DEFAULT (extract(epoch from now()))::bigint"


def create_statements(table: str, spec: ModeSpec, db_schema: str | None) -> list[sql.Composed]:
    """agno 1.x's CREATE TABLE and CREATE INDEX statements for ``spec``'s mode.

    Column order, types, the unnamed primary key (PostgreSQL names it, as
    for agno's: ``<table>_pkey``, the table part cut to fit 63 bytes, and
    another free name when that one is taken: a renamed table's, or a
    long name's that shares its first 58 bytes) and the index names match
    what agno 1.8.4 creates through SQLAlchemy.
    """
    order = [c.name for c in COMMON_COLUMNS] + list(spec.agno_pg_order)
    decls: list[sql.Composable] = []
    for name in order:
        decl = _PG_TYPES[spec.column(name).kind] + (_CREATED_AT_DEFAULT if name == "created_at" else "")
        decls.append(sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(decl)))
    decls.append(sql.SQL("PRIMARY KEY ({})").format(sql.Identifier("session_id")))
    out = [sql.SQL("CREATE TABLE {} ({})").format(qualified(table, db_schema), sql.SQL(", ").join(decls))]
    out.extend(create_index(table, column, db_schema) for column in spec.agno_indexed)
    return out


def agno_index_name(table: str, column: str, db_schema: str | None) -> str:
    """SQLAlchemy's name for agno's index on ``column``, shortened past 63 characters as SQLAlchemy does.

    ``ix_<schema>_<table>_<column>``; a longer one is its first 55
    characters, ``_`` and the last 4 hex digits of its MD5. (Cut by
    PostgreSQL at 63 bytes instead, long names all became one, and
    ``CREATE INDEX IF NOT EXISTS`` skipped every index after the first.)
    A name still over 63 bytes (non-ASCII) is shortened by bytes.
    """
    name = f"ix_{db_schema}_{table}_{column}" if db_schema else f"ix_{table}_{column}"
    if len(name) > _MAX_IDENTIFIER:
        name = name[: _MAX_IDENTIFIER - 8] + "_" + hashlib.md5(name.encode(), usedforsecurity=False).hexdigest()[-4:]
    if len(name.encode()) > _MAX_IDENTIFIER:
        # Within 63 characters but not 63 bytes (SQLAlchemy counts characters; agno fails on such a table):
        # shortened by bytes, as the recency indexes are, or PostgreSQL would cut them all to one name.
        return _within_limit("ix", f"{db_schema}_{table}" if db_schema else table, f"_{column}")
    return name


def create_index(table: str, column: str, db_schema: str | None) -> sql.Composed:
    return sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
        sql.Identifier(agno_index_name(table, column, db_schema)),
        qualified(table, db_schema),
        sql.Identifier(column),
    )


#: PostgreSQL keeps the first 63 bytes of a longer identifier.
_MAX_IDENTIFIER = 63
#: The key of the store's newest-first order; the recency indexes end with it.
_RECENCY_KEY = sql.SQL('"created_at" DESC NULLS LAST, "session_id" COLLATE "C"')


def recency_index_name(table: str, lead: str | None, db_schema: str | None) -> str:
    """The name of the recency index led by ``lead`` (``None``: the one for all sessions).

    ``rx_<schema>_<table>_<lead>_recent``. Past 63 bytes, the schema and table
    part is cut (on a character boundary) and followed by a hash of the whole
    name, so two long names cannot shorten to the same one and the end still
    says which index it is.
    """
    return _within_limit("rx", f"{db_schema}_{table}" if db_schema else table, f"_{lead or 'all'}_recent")


def _within_limit(kind: str, owner: str, tail: str) -> str:
    """``<kind>_<owner><tail>``; past 63 bytes, ``owner`` cut (on a character boundary) and followed by a
    hash of the whole name, so two long names cannot shorten to one and the end still says what it is."""
    name = f"{kind}_{owner}{tail}"
    if len(name.encode()) > _MAX_IDENTIFIER:
        digest = hashlib.sha1(name.encode()).hexdigest()[:10]
        room = _MAX_IDENTIFIER - len(f"{kind}__{digest}{tail}".encode())
        owner = owner.encode()[:room].decode(errors="ignore")  # drops a cut character
        name = f"{kind}_{owner}_{digest}{tail}"
    return name


def create_recency_indexes(table: str, spec: ModeSpec, db_schema: str | None) -> list[sql.Composed]:
    """Indexes that serve "newest sessions" of one user, of one entity and of all without a sort.

    Each ends in the store's exact order, ``created_at DESC NULLS LAST,
    session_id COLLATE "C"``, so a LIMIT reads only the rows it returns. Not
    part of agno's DDL: agno reads and writes the table all the same.
    """
    return [
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({}{})").format(
            sql.Identifier(recency_index_name(table, lead, db_schema)),
            qualified(table, db_schema),
            sql.SQL("{}, ").format(sql.Identifier(lead)) if lead else sql.SQL(""),
            _RECENCY_KEY,
        )
        for lead in _recency_leads(spec)
    ]


def _recency_leads(spec: ModeSpec) -> list[str | None]:
    """The first column of each recency index: the owner, the entity, none (all sessions)."""
    return ["user_id", spec.entity_column, None]


def index_names(table: str, spec: ModeSpec, db_schema: str | None, *, agno: bool, recency: bool) -> list[str]:
    """The names of the indexes that creating the table (``agno``) and its recency indexes (``recency``) make.

    As PostgreSQL stores them, each within 63 bytes. Names are unique per
    schema across tables and indexes, and a table renamed keeps its indexes'
    names. Not the primary key's: PostgreSQL picks a free one for it.
    """
    names: list[str] = []
    if agno:
        names += [agno_index_name(table, column, db_schema) for column in spec.agno_indexed]
    if recency:
        names += [recency_index_name(table, lead, db_schema) for lead in _recency_leads(spec)]
    return names


#: Which of the names (%s, a list) are taken in the schema (%s; None: the one CREATE would use), and by what:
#: (name, relkind, the table of an index or None, whether that table is the one named by %s).
TAKEN_NAMES = """
SELECT c.relname::text, c.relkind::text, i.indrelid::regclass::text, COALESCE(i.indrelid = to_regclass(%s), false)
FROM pg_class c LEFT JOIN pg_index i ON i.indexrelid = c.oid
WHERE c.relname = ANY(%s)
  AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = COALESCE(%s, current_schema()))
ORDER BY 1
"""


#: Whether schema %s is there.
SCHEMA_EXISTS = "SELECT 1 FROM pg_namespace WHERE nspname = %s"


def qualified(table: str, db_schema: str | None) -> sql.Identifier:
    return sql.Identifier(db_schema, table) if db_schema else sql.Identifier(table)


_LAYOUT = (
    "SELECT ARRAY(SELECT attname::text FROM pg_attribute WHERE attrelid = r.oid"
    " AND attnum > 0 AND NOT attisdropped ORDER BY attnum),"
    " ARRAY(SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
    " WHERE i.indrelid = r.oid),"
    " (SELECT relkind::text FROM pg_class WHERE oid = r.oid)"
    " FROM (SELECT to_regclass(%s) AS oid) r WHERE r.oid IS NOT NULL"
)
#: What a relation of each pg_class.relkind is, for those no upsert writes (an ordinary or partitioned table does).
_NOT_TABLES = {
    "v": "a view",
    "m": "a materialized view",
    "f": "a foreign table",
    "S": "a sequence",
    "c": "a composite type",
    "i": "an index",
    "I": "a partitioned index",
    "t": "a TOAST table",
}


def table_layout(
    query: Callable[[str, Sequence[Any]], Sequence[Sequence[Any]]], table: str, db_schema: str | None
) -> tuple[list[str], list[str], str] | None:
    """(column names, index names, ``''``) of ``table``, or None if it is not there.

    ``query`` runs one statement with its parameters and returns its rows:
    the store's connection or the operations' read-only one. PostgreSQL
    keeps no CREATE TABLE text; the index names tell who made the table, and
    lose the schema SQLAlchemy puts in them (the core tells agno's tables by
    ``ix_<table>_``).
    """
    found = layout_and_kind(query, table, db_schema)
    return None if found is None else found[0]


def layout_and_kind(
    query: Callable[[str, Sequence[Any]], Sequence[Sequence[Any]]], table: str, db_schema: str | None
) -> tuple[tuple[list[str], list[str], str], str] | None:
    """What :func:`table_layout` gives, and what the relation is when no upsert writes it (``"a view"``; ``""``
    for a table), in one statement; None if there is none."""
    rows = query(_LAYOUT, (qualified(table, db_schema).as_string(None),))
    if not rows:
        return None
    columns, indexes, relkind = rows[0]
    layout = _layout(table, db_schema, columns, indexes)
    return layout, _NOT_TABLES.get(relkind, "")


def _layout(
    table: str, db_schema: str | None, columns: list[str], indexes: list[str]
) -> tuple[list[str], list[str], str]:
    prefix = f"ix_{db_schema}_{table}_"
    # agno's index names as the core knows them: ix_<table>_<column> (shortened ones included).
    agno_names = {agno_index_name(table, c, db_schema): f"ix_{table}_{c}" for c in columns}
    return (
        list(columns),
        [
            agno_names.get(n) or (f"ix_{table}_" + n[len(prefix) :] if db_schema and n.startswith(prefix) else n)
            for n in indexes
        ],
        "",
    )


#: What each type whose ``=`` is not exact whatever the collation does.
INEXACT_TYPES = {
    "citext": "compares case-blind",  # 'ALICE' = 'alice'
    "bpchar": "ignores trailing spaces",  # character(n): 'alice' = 'alice ', as SQLite's RTRIM collation
}
#: The types (a domain's: its base type) each kind of column keeps the store's values in exactly, or refuses one
#: with InvalidInputError (varchar(n): a longer value; integer: a time past 2038). citext and character(n)
#: keep text but compare inexactly (:data:`INEXACT_TYPES`).
_FIT_TYPES: dict[ColumnKind, frozenset[str]] = {
    **dict.fromkeys(TEXT_KINDS, frozenset({"text", "varchar", *INEXACT_TYPES})),
    **dict.fromkeys(JSON_KINDS, frozenset({"jsonb", "json", "text", "varchar"})),
    ColumnKind.TIMESTAMP: frozenset({"int8", "int4"}),
}
#: What the store writes to each kind of column, for the refusal of a type not in :data:`_FIT_TYPES`.
_WRITTEN = {
    **dict.fromkeys(TEXT_KINDS, "text"),
    **dict.fromkeys(JSON_KINDS, "JSON"),
    ColumnKind.TIMESTAMP: "a timestamp",
}
#: What the unfit types that change a value silently do to it.
_CHANGING_TYPES = {
    "name": "keeps only the first 63 bytes of a value: two long ids could become one",
    "char": "keeps only the first byte of a value",  # "char", not char(n) (bpchar)
    "float4": "keeps only 24 bits of a number: 1700000001 becomes 1700000000",
}
#: Each column of a table (by its quoted name, as ``to_regclass`` takes it): its name, its type as declared,
#: the type (a domain's base type), its nondeterministic collation or NULL (before PostgreSQL 12: NULL), and
#: the base type as declared (a domain over varchar(5): ``character varying(5)``).
_COLUMN_TYPES = (
    "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), b.name, {collation}, b.declared"
    " FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation"
    # A domain's base type may be a domain too: followed down to the type that is none. A domain keeps its base
    # type's modifier (varchar(5)'s 5) in typtypmod, as a column keeps its type's in atttypmod.
    " CROSS JOIN LATERAL (WITH RECURSIVE d(oid, name, base, kind, mod, basemod) AS (SELECT oid, typname,"
    " typbasetype, typtype, a.atttypmod, typtypmod FROM pg_type WHERE oid = a.atttypid UNION ALL SELECT t.oid,"
    " t.typname, t.typbasetype, t.typtype, d.basemod, t.typtypmod FROM pg_type t JOIN d ON t.oid = d.base"
    " WHERE d.kind = 'd') SELECT name::text, format_type(oid, mod) AS declared FROM d WHERE kind <> 'd') b"
    " WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
)
#: The length of a declared ``character varying(n)``.
_VARCHAR_LENGTH = re.compile(r"^character varying\((\d+)\)$")
_NONDETERMINISTIC = "CASE WHEN c.collisdeterministic THEN NULL ELSE c.collname::text END"


@attrs.frozen
class ColumnType:
    """A column's type, as :func:`column_types` reads it."""

    name: str
    declared: str
    #: The type's name (a domain's: its base type's, through domains over domains), as pg_type spells it:
    #: ``int8``, ``varchar``.
    base: str
    #: Its nondeterministic collation, if it has one.
    nondeterministic: str | None
    #: The base type as declared, its modifier included: a domain over ``varchar(5)``'s is
    #: ``character varying(5)``; a type that is no domain's, :attr:`declared`.
    base_declared: str

    def shown(self) -> str:
        """Its type as a message names it: ``t_user_id (a domain over character varying(5))``."""
        over = f" (a domain over {self.base_declared})" if self.base_declared != self.declared else ""
        return self.declared + over


def column_types(
    query: Callable[[str, Sequence[Any]], Sequence[Sequence[Any]]], regclass: str, server_version: int
) -> list[ColumnType]:
    """The columns of the table ``regclass`` (its quoted name), in one catalogue query.

    ``query`` runs one statement with its parameters. Before PostgreSQL 12
    (``server_version``, as libpq gives it) every collation is deterministic.
    """
    collation = _NONDETERMINISTIC if server_version >= 120000 else "NULL::text"
    return [ColumnType(*row) for row in query(_COLUMN_TYPES.format(collation=collation), [regclass])]


def check_columns(conn: Any, table: str, regclass: str, spec: ModeSpec) -> list[ColumnType]:
    """SchemaMismatchError if a column of ``spec`` in ``table`` (``regclass``: its quoted name, as
    ``to_regclass`` takes it) compares other than exactly (:func:`inexact_ids`): ``'ALICE'`` or ``'alice '``
    could then read alice's sessions; or is of a type that changes or refuses what the store writes
    (:func:`unfit_type`).

    ``conn`` is a psycopg connection. One catalogue query; returns its columns.
    """
    columns = column_types(lambda q, p: conn.execute(q, p).fetchall(), regclass, conn.info.server_version)
    why = inexact_ids(columns, [c.name for c in spec.columns if c.kind in TEXT_KINDS])
    if why is not None:
        raise unfit_table(table, spec.mode, f"apart: {why}; the store compares ids and owners exactly")
    check_types(table, spec, columns)
    return columns


@attrs.frozen
class Narrow:
    """A column of a type narrower than the store's (``varchar(n)``, ``integer``), as :func:`narrow_columns` finds it."""

    #: Its place in a row (:attr:`ModeSpec.names` order).
    index: int
    column: ColumnType
    #: ``varchar(n)``'s n; None for ``integer``.
    length: int | None
    #: The type the store declares it with (the one to widen it to).
    wide: str
    #: Whether n counts bytes (a ``SQL_ASCII`` database's), not characters.
    in_bytes: bool = False


def narrow_columns(spec: ModeSpec, columns: Sequence[ColumnType], server_encoding: str | None) -> list[Narrow]:
    """The columns of ``spec`` among ``columns`` whose type keeps fewer values than the store writes: a longer
    ``varchar(n)`` value, or a time past 2038 in an ``integer``. Usually none.

    ``server_encoding`` is the database's: in a ``SQL_ASCII`` one, n counts
    bytes (the server knows no characters there), elsewhere characters."""
    in_bytes = server_encoding == "SQL_ASCII"
    at = {name: i for i, name in enumerate(spec.names)}
    out = []
    for column in columns:
        i = at.get(column.name)
        wide = _PG_TYPES[spec.column(column.name).kind].split()[0].lower() if i is not None else ""
        if i is not None and column.base == "int4":
            out.append(Narrow(i, column, None, wide))
        elif i is not None and column.base == "varchar" and (n := _VARCHAR_LENGTH.search(column.base_declared)):
            out.append(Narrow(i, column, int(n.group(1)), wide, in_bytes))
    return out


def first_past(rows: Iterable[Sequence[Any]], narrow: Sequence[Narrow]) -> tuple[Any, str, str] | None:
    """The session id, column and message of the first value of ``rows`` (stored rows, JSON as text) past its
    column's narrower type (:func:`narrow_columns`), or None.

    A text longer than ``varchar(n)`` is past it even when what is past is
    spaces, which PostgreSQL cuts without a word instead of refusing:
    ``'alice '`` would be stored as the owner ``'alice'``.
    """
    for row in rows:
        for n in narrow:
            value = row[n.index]
            if n.length is None:
                past = type(value) is int and not -(2**31) <= value < 2**31
            else:
                past = type(value) is str and len(value.encode() if n.in_bytes else value) > n.length
            if past:
                c = n.column
                shown = c.shown() + (" (in bytes: the database is SQL_ASCII)" if n.in_bytes else "")
                why = f"{c.name} is of the type {shown}, too narrow for it: widen it to {n.wide} to store it"
                return row[0], c.name, why
    return None


def check_types(table: str, spec: ModeSpec, columns: Sequence[ColumnType]) -> None:
    """SchemaMismatchError naming the first column of ``spec`` of a type :func:`unfit_type` refuses."""
    why = unfit_type(spec, columns)
    if why is not None:
        raise unfit_table(table, spec.mode, f"as written: {why}")


def unfit_type(spec: ModeSpec, columns: Sequence[ColumnType]) -> str | None:
    """Why a column of ``spec`` among ``columns`` cannot keep what the store writes, or None.

    ``name`` cuts a session id or an owner to 63 bytes (two become one, and
    one user's session is read by another's id), ``"char"`` keeps one byte,
    ``real`` rounds a timestamp; ``double precision`` and ``numeric`` read
    back as no integer, an enum, ``bytea``, ``xml`` or ``timestamp`` refuse
    every write.
    """
    kinds = {c.name: c.kind for c in spec.columns}
    for column in columns:
        kind = kinds.get(column.name)
        if kind is None or column.base in _FIT_TYPES[kind]:
            continue
        does = _CHANGING_TYPES.get(column.base) or f"is not one the store writes {_WRITTEN[kind]} to"
        return f"{column.name} is of the type {column.declared}, which {does}"
    return None


def inexact_ids(columns: Sequence[ColumnType], names: Sequence[str]) -> str | None:
    """Why one of the columns ``names`` among ``columns`` compares other than exactly (a nondeterministic
    collation, the type ``citext`` or ``character(n)``), or None."""
    for column in columns:
        if column.name not in names:
            continue
        if column.base in INEXACT_TYPES:
            return f"{column.name} is of the type {column.declared}, which {INEXACT_TYPES[column.base]}"
        if column.nondeterministic is not None:
            return f"{column.name} compares by the nondeterministic collation {column.nondeterministic!r}"
    return None


def inexact_collation(
    query: Callable[[str, Sequence[Any]], Sequence[Sequence[Any]]],
    regclass: str,
    columns: Sequence[str],
    server_version: int,
) -> str | None:
    """Why one of ``columns`` of the table ``regclass`` compares other than exactly (:func:`inexact_ids`), or
    None."""
    return inexact_ids(column_types(query, regclass, server_version), columns)


def add_columns(table: str, spec: ModeSpec, db_schema: str | None, names: Iterable[str]) -> list[sql.Composed]:
    """The statements a migration runs to add the columns ``names``, as agno declares them.

    Each column is followed by agno's index on it, if agno indexes it.
    ``IF NOT EXISTS`` keeps them idempotent.
    """
    out: list[sql.Composed] = []
    for name in names:
        out.append(
            sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                qualified(table, db_schema), sql.Identifier(name), sql.SQL(_PG_TYPES[spec.column(name).kind])
            )
        )
        if name in spec.agno_indexed:
            out.append(create_index(table, name, db_schema))
    return out
