"""Table names, schema version detection and migrations, for every engine.

Neither agno nor the Go port records a schema version, so the version is read
from the table's shape (its column names). Migrations are engine-neutral: each
names the columns it adds, and each engine's DDL module renders the step
(``backends/sqlite_ddl.py``, ``backends/postgres_ddl.py``).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Collection, Mapping
from typing import Final, Literal, TypeAlias

import attrs

from agno_storage.errors import InvalidInputError, SchemaMismatchError, SchemaVersionError
from agno_storage.models import Mode
from agno_storage.modes import SPECS

#: The newest schema version; versions before it are upgraded by MIGRATIONS.
CURRENT_VERSION = 2

#: The table where a Go Agent (agno-golang) keeps its runs, beside an agent sessions table.
AGENT_RUNS_TABLE: Final = "agent_runs"

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

#: An engine a sessions table lives on, by the name :class:`~agno_storage.ops.db.Database` (and so
#: ``export``'s header) gives it; each store and web source says its own (``ENGINE``).
Engine: TypeAlias = Literal["sqlite", "postgres"]

#: Whether each engine takes a table name in any ASCII case as one table: SQLite does; PostgreSQL compares the
#: quoted names this library uses exactly ("AGENT_RUNS" and agent_runs are two tables there). Every check and
#: comparison of table names asks it, through :func:`table_key`.
CASE_BLIND_NAMES: Final[Mapping[Engine, bool]] = {"sqlite": True, "postgres": False}
#: Whether each engine's text can hold U+0000 (SQLite's can, PostgreSQL's cannot): where it cannot, a filter
#: holding one matches nothing, as it would on an engine that can but holds no such value.
HOLDS_NUL: Final[Mapping[Engine, bool]] = {"sqlite": True, "postgres": False}
#: Whether agno made workflow_v2 tables on each engine shaped as v1 workflow tables (agno 1.7.4's
#: PostgresStorage did: no ``workflow_name``, no ``runs``; its SqliteStorage never did); see :func:`inspect_shape`.
OLD_WORKFLOW_V2: Final[Mapping[Engine, bool]] = {"sqlite": False, "postgres": True}


def table_key(name: str, engine: Engine) -> str:
    """``name`` as ``engine`` compares table names: two names with one key are one table there.

    Where the engine takes a name in any case (:data:`CASE_BLIND_NAMES`), the key is ``name`` with its
    ASCII letters in lower case (only those: SQLite folds no other letter). Raises UnicodeEncodeError
    there for a name that is no UTF-8 text (a lone surrogate), which no engine holds.
    """
    # bytes.lower() folds ASCII letters only, as SQLite does.
    return name.encode().lower().decode() if CASE_BLIND_NAMES[engine] else name


def check_table_name(name: object, *, engine: Engine) -> str:
    """Return ``name`` if a sessions table can have it, else raise :class:`InvalidInputError`.

    It must be a plain SQL identifier: ASCII letters, digits and
    underscores, not starting with a digit, at most 63 characters
    (PostgreSQL's limit), so it needs no quoting in the Go port's unquoted
    DDL. And it must not be :data:`AGENT_RUNS_TABLE`, where a Go Agent keeps
    its runs and where ``tables``, ``doctor``, ``export`` and ``prune`` read
    runs (in a SQLite file or a PostgreSQL schema): sessions there would be
    read as broken runs. ``engine`` says which other spellings name that
    table too (:func:`table_key`: on SQLite, any ASCII case).
    """
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise InvalidInputError(f"table name must be a plain SQL identifier, got {name!r}", table=str(name))
    if name.upper() in SQL_KEYWORDS or name.lower().startswith(("sqlite_", "pg_")):
        raise InvalidInputError(f"table name {name!r} is a reserved word or prefix of SQL", table=name)
    if table_key(name, engine) == AGENT_RUNS_TABLE:
        raise InvalidInputError(
            f"table name {name!r} is {AGENT_RUNS_TABLE}, where a Go Agent keeps its runs (and tables, doctor, export "
            "and prune read them): no sessions are kept there; give another table name (a sessions table made so "
            "before can be renamed: ALTER TABLE ... RENAME TO ...)",
            table=name,
        )
    return name


#: The longest name PostgreSQL keeps: it cuts a longer one to this many bytes (so two names may become one).
PG_NAME_BYTES: Final = 63


def check_derived_names(table: str, suffixes: tuple[str, ...], what: str) -> None:
    """Raise InvalidInputError if PostgreSQL, cutting names at :data:`PG_NAME_BYTES`, would make two of
    ``table`` and ``table`` + each suffix one name (a name cut but still its own works, as it always did).

    ``what`` names the feature that makes those tables ("the change feed").
    """
    names = [table, *(table + suffix for suffix in suffixes)]
    cut = {name.encode()[:PG_NAME_BYTES] for name in names}
    if len(cut) < len(names):
        raise InvalidInputError(
            f"{what} of table {table!r} needs tables and triggers named {', '.join(map(repr, names[1:]))}: "
            f"PostgreSQL cuts a name at {PG_NAME_BYTES} bytes, and two of them would become one; "
            "use a shorter table name",
            table=table,
        )


#: Words SQLite or PostgreSQL reserve: the Go port's unquoted DDL breaks on them.
SQL_KEYWORDS = frozenset(
    """
    ABORT ACTION ADD AFTER ALL ALTER ALWAYS ANALYZE AND AS ASC ATTACH AUTOINCREMENT BEFORE BEGIN BETWEEN BOTH BY
    CASCADE CASE CAST CHECK COLLATE COLUMN COMMIT CONFLICT CONSTRAINT CREATE CROSS CURRENT CURRENT_DATE
    CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER DATABASE DEFAULT DEFERRABLE DEFERRED DELETE DESC DETACH DISTINCT DO
    DROP EACH ELSE END ESCAPE EXCEPT EXCLUDE EXCLUSIVE EXISTS EXPLAIN FAIL FETCH FILTER FIRST FOLLOWING FOR
    FOREIGN FROM FULL GENERATED GLOB GRANT GROUP GROUPS HAVING IF IGNORE IMMEDIATE IN INDEX INDEXED INITIALLY
    INNER INSERT INSTEAD INTERSECT INTO IS ISNULL JOIN KEY LAST LATERAL LEADING LEFT LIKE LIMIT MATCH MATERIALIZED
    NATURAL NO NOT NOTHING NOTNULL NULL NULLS OF OFFSET ON ONLY OR ORDER OTHERS OUTER OVER PARTITION PLAN PRAGMA
    PRECEDING PRIMARY QUERY RAISE RANGE RECURSIVE REFERENCES REGEXP REINDEX RELEASE RENAME REPLACE RESTRICT
    RETURNING RIGHT ROLLBACK ROW ROWS SAVEPOINT SELECT SESSION_USER SET SOME SYMMETRIC TABLE TEMP TEMPORARY THEN
    TIES TO TRAILING TRANSACTION TRIGGER UNBOUNDED UNION UNIQUE UPDATE USER USING VACUUM VALUES VARIADIC VIEW
    VIRTUAL WHEN WHERE WINDOW WITH WITHOUT
    """.split()
)


def quote(identifier: str) -> str:
    """Quote an identifier for SQL; the one place identifiers enter statements."""
    return '"' + identifier.replace('"', '""') + '"'


def literal(text: str) -> str:
    """``text`` as an SQL string literal, for the statements that take no bound values (DDL, a trigger's body)."""
    return "'" + text.replace("'", "''") + "'"


def unquote(quoted: str) -> str:
    """The identifier :func:`quote` quoted, as the catalogue (``sqlite_master``) names it."""
    return quoted[1:-1].replace('""', '"')


# --- version detection ----------------------------------------------------


class Flavor(enum.Enum):
    """Who created a table, told apart by its index names."""

    GO = "go"  # agno-golang or this project: idx_<t>_<col>
    AGNO = "agno"  # Python agno 1.x through SQLAlchemy: ix_<t>_<col>
    UNKNOWN = "unknown"


@attrs.frozen
class TableShape:
    """What a table's columns say about it."""

    mode: Mode
    version: int
    flavor: Flavor
    #: Columns that migrations will add.
    missing: frozenset[str]


def unfit_table(table: str, mode: Mode, why: str) -> SchemaMismatchError:
    """The error for a table of ``mode`` whose columns cannot keep its sessions as the store writes and compares
    them; ``why`` names the column and what it would do ("as written: ...", "apart: ...")."""
    return SchemaMismatchError(
        f"table {table!r} cannot keep {mode.value} sessions {why}",
        table=table,
        expected_mode=mode.value,
        found_mode=mode.value,
    )


def not_a_table(table: str, mode: Mode, what: str) -> SchemaMismatchError:
    """The error for a relation of the table's name that is no table (``what``: "a view"): it reads like one,
    but no upsert reaches it."""
    return unfit_table(table, mode, f"as written: it is {what}, not a table, and no upsert reaches its rows")


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _fits(mode: Mode, cols: set[str]) -> bool:
    needed = set(SPECS[mode].names) - _UPGRADABLE[mode]
    if not needed <= cols:
        return False
    # A workflow_v2 table has every v1 workflow column; its own columns tell it apart.
    return not (mode is Mode.WORKFLOW and cols & _UPGRADABLE[Mode.WORKFLOW_V2])


def identify_mode(columns: Collection[str]) -> Mode | None:
    """A mode whose table ``columns`` can be, or ``None`` if none fits.

    agno 1.x tables made by a store whose mode was switched after creation
    carry the agent columns too, so a table may fit more than one mode; the
    most specific one is named.
    """
    cols = set(columns)
    for mode in (Mode.WORKFLOW_V2, Mode.WORKFLOW, Mode.TEAM, Mode.AGENT):
        if _fits(mode, cols) and (mode is not Mode.WORKFLOW_V2 or cols & _UPGRADABLE[Mode.WORKFLOW_V2]):
            return mode
    return None


def flavor_of(table: str, index_names: Collection[str], table_sql: str = "") -> Flavor:
    """Who made the table: SQLAlchemy's DDL (agno) spells types VARCHAR and JSON."""
    if "VARCHAR" in table_sql or " JSON" in table_sql or any(n.startswith(f"ix_{table}_") for n in index_names):
        return Flavor.AGNO
    if "TEXT NOT NULL" in table_sql or any(n.startswith(f"idx_{table}_") for n in index_names):
        return Flavor.GO
    return Flavor.UNKNOWN


def inspect_shape(
    table: str,
    mode: Mode,
    columns: Collection[str],
    index_names: Collection[str] = (),
    table_sql: str = "",
    *,
    engine: Engine,
) -> TableShape:
    """Check that a table with ``columns`` can hold ``mode`` sessions and say which version it is.

    Extra columns other writers added are allowed and left alone. Raises
    :class:`SchemaMismatchError` for another mode's table or a shape this code
    does not know; it never raises for an old version (see :func:`require_current`).
    ``engine``: where its agno made workflow_v2 tables shaped as v1 workflow
    tables (:data:`OLD_WORKFLOW_V2`: agno 1.7.4's PostgreSQL storage), such a
    table asked for as workflow_v2 is taken for an old one; elsewhere it is a
    v1 workflow table, refused, and never upgraded into a v2 table (its rows'
    ``memory`` would be lost to v2 writes).
    """
    cols = set(columns)
    found = identify_mode(cols)
    # A table that fits a more specific mode is that mode's (agno's team and
    # workflow tables may carry agent columns too).
    old_v2 = OLD_WORKFLOW_V2[engine] and mode is Mode.WORKFLOW_V2 and found is Mode.WORKFLOW
    other = found is not None and found is not mode and not old_v2
    if other or not _fits(mode, cols):
        what = f"{_article(found.value)} {found.value} table" if found else "not a sessions table this code knows"
        raise SchemaMismatchError(
            f"table {table!r} is {what}, not {_article(mode.value)} {mode.value} table (columns: {sorted(cols)})",
            table=table,
            expected_mode=mode.value,
            found_mode=found.value if found else None,
        )
    missing = set(SPECS[mode].names) - cols
    version = CURRENT_VERSION if not missing else 1
    return TableShape(
        mode=mode, version=version, flavor=flavor_of(table, index_names, table_sql), missing=frozenset(missing)
    )


def require_current(table: str, shape: TableShape) -> None:
    """Raise :class:`SchemaVersionError` if ``shape`` needs an upgrade."""
    if shape.version < CURRENT_VERSION:
        raise SchemaVersionError(
            f"table {table!r} has schema version {shape.version} (missing {sorted(shape.missing)}); "
            f"call upgrade_schema() or open the store with auto_upgrade_schema=True",
            table=table,
            found_version=shape.version,
            current_version=CURRENT_VERSION,
        )


# --- migrations -----------------------------------------------------------


@attrs.frozen
class Migration:
    """One upgrade step: the columns it adds. Append-only: never edit or reorder an entry.

    Engine-neutral: a column is declared as its mode's
    :class:`~agno_storage.modes.Column` says, and each engine's DDL module
    renders the step in its own dialect. A column's declaration is therefore
    frozen too: changing it would change what old migrations write.
    """

    to_version: int
    modes: frozenset[Mode]
    description: str
    #: Names of the columns it adds, in the order they are added.
    adds: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        to_version=2,
        modes=frozenset({Mode.AGENT, Mode.TEAM}),
        description="add team_session_id (tables written by agno before 1.2)",
        adds=("team_session_id",),
    ),
    Migration(
        to_version=2,
        modes=frozenset({Mode.WORKFLOW_V2}),
        description="add workflow_name and runs to workflow_v2 tables",
        adds=("workflow_name", "runs"),
    ),
)


def _upgradable() -> dict[Mode, frozenset[str]]:
    """The columns migrations add to each mode's tables (checked to be that mode's columns)."""
    out: dict[Mode, frozenset[str]] = {}
    for mode in Mode:
        names = set(SPECS[mode].names)
        adds = frozenset(name for m in MIGRATIONS if mode in m.modes for name in m.adds)
        if not adds <= names:
            raise AssertionError(f"a migration adds {sorted(adds - names)}, not {mode.value} columns")
        out[mode] = adds
    return out


#: Columns a table may lack and still be upgraded to its mode.
_UPGRADABLE: dict[Mode, frozenset[str]] = _upgradable()


def pending_migrations(shape: TableShape) -> list[Migration]:
    """The migrations that apply to a table of ``shape``, in order."""
    return [m for m in MIGRATIONS if shape.mode in m.modes and m.to_version > shape.version]


def pending_columns(shape: TableShape) -> list[str]:
    """The columns the pending migrations add to a table of ``shape``, in the order they add them.

    Only those the table lacks: a migration is idempotent.
    """
    return [name for m in pending_migrations(shape) for name in m.adds if name in shape.missing]
