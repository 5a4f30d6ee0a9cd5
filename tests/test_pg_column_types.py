"""PostgreSQL tables another program made with column types that change or refuse what the store writes."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from agno_storage import InvalidInputError, Mode, SchemaMismatchError, StorageError
from agno_storage.backends.postgres import PostgresStorage
from agno_storage.cli import main
from agno_storage.web.source import open_source
from tests.sessions import make_session

#: (column, the type it is given, what the refusal says): each changes values silently or fails every write.
UNFIT = [
    ("session_id", "name", "keeps only the first 63 bytes"),
    ("user_id", "name", "keeps only the first 63 bytes"),
    ("agent_id", '"char"', "keeps only the first byte"),
    ("user_id", "{enum}", "is not one the store writes text to"),
    ("user_id", "integer", "is not one the store writes text to"),
    ("memory", "bytea", "is not one the store writes JSON to"),
    ("agent_data", "xml", "is not one the store writes JSON to"),
    ("created_at", "real", "keeps only 24 bits"),
    ("created_at", "{nested:real}", "keeps only 24 bits"),
    ("updated_at", "double precision", "is not one the store writes a timestamp to"),
    ("created_at", "numeric", "is not one the store writes a timestamp to"),
    ("created_at", "smallint", "is not one the store writes a timestamp to"),
    ("created_at", "timestamp without time zone", "is not one the store writes a timestamp to"),
]
#: Types that keep every value exactly (or refuse one with InvalidInputError, as varchar(n) and integer do).
FIT = [
    ("session_id", "text"),
    ("session_id", "varchar(200)"),
    ("user_id", "{domain}"),
    ("user_id", "{nested:text}"),
    ("created_at", "{nested:bigint}"),
    ("memory", "json"),
    ("session_data", "text"),
    ("created_at", "integer"),
]


def retype(store: PostgresStorage, column: str, declared: str, using: str = "NULL") -> str:
    """Give ``column`` of the store's table the type ``declared`` (``{enum}``, ``{domain}``: one made for it;
    ``{domain:T}``, ``{nested:T}``: a domain over T, over a domain over T), its values made by ``using``."""
    with psycopg.connect(store.db_url, autocommit=True) as conn:
        own = sql.Identifier(store.schema or "public", f"{store.table_name}_{column}_type").as_string(conn)
        if declared == "{enum}":
            conn.execute(f"CREATE TYPE {own} AS ENUM ('alice')")
        elif declared in ("{domain}", "{nested}"):
            conn.execute(f"CREATE DOMAIN {own} AS text")
        elif declared.startswith("{domain:"):  # a domain over the type named
            conn.execute(f"CREATE DOMAIN {own} AS {declared[8:-1]}")
            declared = "{domain}"
        elif declared.startswith("{nested:"):  # a domain over a domain over the type named
            inner = sql.Identifier(store.schema or "public", f"{store.table_name}_{column}_inner").as_string(conn)
            conn.execute(f"CREATE DOMAIN {inner} AS {declared[8:-1]}")
            conn.execute(f"CREATE DOMAIN {own} AS {inner}")
            declared = "{nested}"
        declared = declared.format(enum=own, domain=own, nested=own)
        table, col = sql.SQL(store.qualified_table), sql.Identifier(column)
        conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP DEFAULT").format(table, col))
        conn.execute(
            sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE {} USING {}").format(
                table, col, sql.SQL(declared), sql.SQL(using)
            )
        )
    return declared


@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.parametrize(("column", "declared", "why"), UNFIT)
def test_a_column_whose_type_changes_or_refuses_the_stores_values_is_refused(
    make_store: Any, column: str, declared: str, why: str
) -> None:
    """A session_id of type name kept 63 bytes: two long ids became one row, and one user's session was read by
    another's id; "char" kept one byte of agent_id; real rounded 1700000001 to 1700000000; double precision,
    numeric made every read CorruptRowError; an enum, bytea, xml or timestamp failed every write."""
    store = make_store()
    store.create()
    shown = retype(store, column, declared)
    with pytest.raises(SchemaMismatchError, match=f"{column} is of the type .*, which {why}") as refused:
        PostgresStorage(store.table_name, db_url=store.db_url, schema=store.schema)
    assert refused.value.table == store.table_name and shown.split(".")[-1].strip('"') in str(refused.value)


@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.parametrize(("column", "declared"), FIT)
def test_a_column_of_a_type_that_keeps_the_stores_values_is_read_exactly(
    make_store: Any, column: str, declared: str
) -> None:
    store = make_store()
    store.create()
    retype(store, column, declared)
    reopened = PostgresStorage(store.table_name, db_url=store.db_url, schema=store.schema)
    session = make_session(Mode.AGENT, "s" * 70, memory={"b": 1, "a": [2**70, 0.5]}, created_at=1_700_000_001)
    reopened.upsert(session)
    back = reopened.read("s" * 70)
    assert back is not None and back.memory == session.memory and back.created_at == 1_700_000_001
    assert (back.session_id, back.user_id, back.session_data) == (session.session_id, "alice", session.session_data)
    reopened.close()


@pytest.mark.parametrize("backend", ["postgres"])
def test_doctor_and_serve_name_a_column_of_an_unfit_type(make_store: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """doctor said all was well of a table with session_id of type name, and serve offered it as readable."""
    store = make_store()
    store.upsert(make_session(Mode.AGENT, "s1"))
    retype(store, "session_id", "name", "session_id::name")
    assert main(["doctor", store.db_url, "--schema", str(store.schema)]) == 3
    assert "session_id is of the type name, which keeps only the first 63 bytes" in capsys.readouterr().out
    source = open_source(store.db_url, schema_name=store.schema)
    try:
        tables = source.tables()
    finally:
        source.close()
    assert store.table_name not in [t.name for t in tables.readable]
    [reason] = [why for name, why in tables.unreadable if name == store.table_name]
    assert "session_id is of the type name" in reason


@pytest.mark.parametrize("backend", ["postgres"])
def test_an_owner_of_a_domain_over_a_domain_over_citext_is_refused(make_store: Any) -> None:
    """Only a domain's immediate base type was looked at: user_id of a domain over a domain over citext opened,
    and 'ALICE' read alice's sessions."""
    store = make_store()
    store.create()
    with psycopg.connect(store.db_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS citext")
    retype(store, "user_id", "{nested:citext}")
    with pytest.raises(SchemaMismatchError, match=r"user_id is of the type .*, which compares case-blind"):
        PostgresStorage(store.table_name, db_url=store.db_url, schema=store.schema)


#: (column, its narrower type, a session field value past it, what the refusal names)
NARROW = [
    ("user_id", "varchar(8)", {"user_id": "alice-of-wonderland"}, "user_id is of the type character varying(8)"),
    ("memory", "varchar(80)", {"memory": {"runs": ["a" * 80]}}, "memory is of the type character varying(80)"),
    ("created_at", "integer", {"created_at": 2**31}, "created_at is of the type integer"),
]


@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.parametrize("many", [False, True])
@pytest.mark.parametrize(("column", "declared", "fields", "named"), NARROW)
def test_a_value_past_a_columns_type_names_the_column_and_its_type(
    make_store: Any, column: str, declared: str, fields: dict[str, Any], named: str, many: bool
) -> None:
    """varchar(8) refused 'alice-of-wonderland' and integer refused a time past 2038 as "session 's2': PostgreSQL
    cannot store this value: value too long for type character varying(8)", naming no column to widen."""
    store = make_store()
    store.create()
    retype(store, column, declared)
    reopened = PostgresStorage(store.table_name, db_url=store.db_url, schema=store.schema)
    fine, bad = make_session(Mode.AGENT, "s1"), make_session(Mode.AGENT, "s2", **fields)
    with pytest.raises(InvalidInputError) as refused:
        if many:
            reopened.upsert_many([fine, bad])
        else:
            reopened.upsert(bad)
    assert named in str(refused.value) and "widen" in str(refused.value)
    assert (refused.value.session_id, refused.value.column) == ("s2", column)
    assert reopened.read("s1") is None and reopened.read("s2") is None
    reopened.close()


@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.parametrize(
    ("column", "declared", "using"), [("created_at", "real", "created_at"), ("user_id", "name", "user_id")]
)
@pytest.mark.parametrize(
    "command",
    [["export"], ["copy", "{copy}"], ["prune", "--older-than", "1d"], ["prune", "--older-than", "1d", "--dry-run"]],
)
def test_export_copy_and_prune_refuse_a_column_of_an_unfit_type_as_the_store_does(
    make_store: Any,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    column: str,
    declared: str,
    using: str,
    command: list[str],
) -> None:
    """export and copy read a table whose created_at is real and stopped at its first row with CorruptRowError
    ("a float 1.0, not a Unix timestamp"), and took a name user_id as if nothing were wrong; the store refuses
    both at open, as prune does."""
    store = make_store()
    store.upsert_many([make_session(Mode.AGENT, f"s{i}") for i in range(3)])
    with psycopg.connect(store.db_url, autocommit=True) as conn:
        conn.execute(sql.SQL("UPDATE {} SET updated_at = 1, created_at = 1").format(sql.SQL(store.qualified_table)))
    retype(store, column, declared, using)
    with pytest.raises(SchemaMismatchError) as refused:
        PostgresStorage(store.table_name, db_url=store.db_url, schema=store.schema)
    name, schema = store.table_name, str(store.schema)
    rest = [a.format(copy=tmp_path / "copy.db") for a in command[1:]]
    assert main([command[0], store.db_url, "--schema", schema, "--table", name, *rest]) == 2
    out, err = capsys.readouterr()
    assert str(refused.value) in err and '"s0"' not in out and "remove" not in out
    assert not (tmp_path / "copy.db").exists()  # refused before its destination was made
    with psycopg.connect(store.db_url, autocommit=True) as conn:
        assert conn.execute(sql.SQL("SELECT COUNT(*) FROM {}").format(sql.SQL(store.qualified_table))).fetchone() == (
            3,
        )


@pytest.mark.parametrize("backend", ["postgres"])
def test_an_owner_past_a_varchar_n_by_trailing_spaces_is_refused_not_cut(make_store: Any) -> None:
    """PostgreSQL cuts a value past varchar(n) without a word when what is past is spaces: 'alice ' was stored as
    the owner 'alice' in a varchar(5) user_id, and alice read the session of 'alice '."""
    store = make_store()
    store.create()
    retype(store, "user_id", "varchar(5)")
    reopened = PostgresStorage(store.table_name, db_url=store.db_url, schema=store.schema)
    with pytest.raises(InvalidInputError) as refused:
        reopened.upsert(make_session(Mode.AGENT, "s1", user_id="alice "))
    assert refused.value.column == "user_id" and "character varying(5)" in str(refused.value)
    assert reopened.read("s1", user_id="alice") is None and reopened.read("s1") is None
    reopened.close()


@pytest.mark.parametrize("backend", ["postgres"])
def test_copy_into_a_narrower_column_is_refused_naming_it_not_cut(make_store: Any, tmp_path: Path) -> None:
    """copy (and import) write through their own statements: 'alice ' went into a varchar(5) user_id as 'alice',
    the owner of alice's sessions, and a longer owner failed naming no column."""
    from agno_storage.backends.sqlite import SqliteStorage
    from agno_storage.ops.copy import copy_table
    from agno_storage.ops.db import open_database

    source = SqliteStorage("agent_sessions", db_file=tmp_path / "src.db")
    source.upsert(make_session(Mode.AGENT, "s1", user_id="alice "))
    source.close()
    # A schema of its own: copy writes to a table named as the source's, which other tests leave in the default one.
    store = make_store(table_name="agent_sessions", schema="copy_narrow")
    store.create()
    retype(store, "user_id", "varchar(5)")
    with open_database(str(tmp_path / "src.db")) as db, pytest.raises(InvalidInputError) as refused:
        copy_table(db, "agent_sessions", store.db_url, schema=store.schema)
    assert (refused.value.session_id, refused.value.column) == ("s1", "user_id")
    assert "character varying(5)" in str(refused.value)
    with psycopg.connect(store.db_url, autocommit=True) as conn:
        assert conn.execute(sql.SQL("SELECT COUNT(*) FROM {}").format(sql.SQL(store.qualified_table))).fetchone() == (
            0,
        )


@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.parametrize("declared", ["{domain:varchar(5)}", "{nested:varchar(5)}"])
@pytest.mark.parametrize("many", [False, True])
def test_an_owner_of_a_domain_over_varchar_n_past_it_is_refused_not_cut(
    make_store: Any, declared: str, many: bool
) -> None:
    """Of a domain over varchar(5) (or over such a domain) only the domain's name was read, not its 5: 'alice '
    was stored as the owner 'alice', who then read the session, and a longer owner named no column."""
    store = make_store()
    store.create()
    retype(store, "user_id", declared)
    reopened = PostgresStorage(store.table_name, db_url=store.db_url, schema=store.schema)
    for owner in ("alice ", "alice-of-wonderland"):
        with pytest.raises(InvalidInputError) as refused:
            if many:
                reopened.upsert_many([make_session(Mode.AGENT, "s0"), make_session(Mode.AGENT, "s1", user_id=owner)])
            else:
                reopened.upsert(make_session(Mode.AGENT, "s1", user_id=owner))
        assert (refused.value.session_id, refused.value.column) == ("s1", "user_id")
        assert "character varying(5)" in str(refused.value)
    assert reopened.read("s1", user_id="alice") is None and reopened.read("s1") is None
    reopened.upsert(make_session(Mode.AGENT, "s2", user_id="\U0001f600" * 5))  # n counts characters, not bytes
    assert reopened.read("s2", user_id="\U0001f600" * 5) is not None
    reopened.close()


@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.parametrize("many", [False, True])
def test_a_column_narrowed_after_open_names_the_session_and_column_it_refused(make_store: Any, many: bool) -> None:
    """Another program made user_id varchar(5) after the store had opened: upsert_many's refusal named no session
    and upsert's no column (the types read at open said text), and the next 'alice ' was stored as 'alice'."""
    store = make_store()
    store.upsert(make_session(Mode.AGENT, "s0"))
    retype(store, "user_id", "varchar(5)", "user_id")
    fine, bad = make_session(Mode.AGENT, "s0"), make_session(Mode.AGENT, "s1", user_id="alice-of-wonderland")
    with pytest.raises(InvalidInputError) as refused:
        if many:
            store.upsert_many([fine, bad])
        else:
            store.upsert(bad)
    assert (refused.value.session_id, refused.value.column) == ("s1", "user_id")
    assert "character varying(5)" in str(refused.value) and "widen" in str(refused.value)
    with pytest.raises(InvalidInputError) as cut:  # the types read again: no longer cut to the owner 'alice'
        store.upsert(make_session(Mode.AGENT, "s2", user_id="alice "))
    assert (cut.value.session_id, cut.value.column) == ("s2", "user_id")
    assert store.read("s2") is None and store.read("s1") is None


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_column_narrowed_after_open_names_the_session_inside_a_transaction(make_store: Any) -> None:
    store = make_store()
    store.upsert(make_session(Mode.AGENT, "s0"))
    retype(store, "user_id", "varchar(5)", "user_id")
    with store.transaction():
        with pytest.raises(InvalidInputError) as refused:
            store.upsert_many([make_session(Mode.AGENT, "s1", user_id="alice-of-wonderland")])
        assert (refused.value.session_id, refused.value.column) == ("s1", "user_id")
        store.upsert(make_session(Mode.AGENT, "s3"))  # the caller's transaction is still usable
    assert store.read("s3") is not None and store.read("s1") is None


@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.parametrize("check", ["table", "domain"])
def test_a_value_a_check_constraint_refuses_is_invalid_input_naming_the_session(make_store: Any, check: str) -> None:
    """A text user_id with CHECK (length(user_id) <= 5), of the table or of a domain, refused 'alice-of-wonderland'
    as a bare StorageError ("PostgreSQL error on table ...") naming no session, unlike a varchar(5)."""
    store = make_store()
    store.create()
    with psycopg.connect(store.db_url, autocommit=True) as conn:
        table = sql.SQL(store.qualified_table)
        if check == "table":
            conn.execute(sql.SQL("ALTER TABLE {} ADD CHECK (length(user_id) <= 5)").format(table))
        else:
            short = sql.Identifier(store.schema or "public", f"{store.table_name}_short")
            conn.execute(sql.SQL("CREATE DOMAIN {} AS text CHECK (length(VALUE) <= 5)").format(short))
            conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN user_id TYPE {}").format(table, short))
    reopened = PostgresStorage(store.table_name, db_url=store.db_url, schema=store.schema)
    with pytest.raises(InvalidInputError, match="check constraint") as refused:
        reopened.upsert(make_session(Mode.AGENT, "s1", user_id="alice-of-wonderland"))
    assert refused.value.session_id == "s1" and refused.value.table == store.table_name
    # The server's own error stays its cause (never the error itself), for a caller to read its SQLSTATE.
    assert isinstance(refused.value.__cause__, psycopg.errors.CheckViolation)
    with pytest.raises(InvalidInputError, match="check constraint") as refused:
        reopened.upsert_many([make_session(Mode.AGENT, "s0"), make_session(Mode.AGENT, "s2", user_id="bob-the-long")])
    assert isinstance(refused.value.__cause__, psycopg.errors.CheckViolation)
    assert reopened.read("s1") is None and reopened.read("s0") is None
    reopened.upsert(make_session(Mode.AGENT, "s3", user_id="bob"))
    reopened.close()


@pytest.mark.parametrize("backend", ["postgres"])
def test_an_owner_past_a_varchar_n_in_bytes_of_a_sql_ascii_database_is_refused_not_cut(make_store: Any) -> None:
    """A SQL_ASCII database's varchar(n) counts bytes, not characters: 'abcé ' (5 characters, 6 bytes) passed
    the store's check of varchar(5), and PostgreSQL cut it to the owner 'abcé', who then read the session."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    store = make_store()
    name = f"{store.table_name}_sql_ascii"
    with psycopg.connect(store.db_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'").format(
                sql.Identifier(name)
            )
        )
    url = make_conninfo(**{**conninfo_to_dict(store.db_url), "dbname": name})
    try:
        made = PostgresStorage(store.table_name, db_url=url, schema=store.schema)
        made.create()
        made.close()
        with psycopg.connect(url, autocommit=True) as conn:
            table = sql.Identifier(store.schema or "public", store.table_name)
            conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN user_id TYPE varchar(5)").format(table))
        reopened = PostgresStorage(store.table_name, db_url=url, schema=store.schema)
        for owner in ("abc\u00e9 ", "\u00e9" * 5):
            with pytest.raises(InvalidInputError) as refused:
                reopened.upsert(make_session(Mode.AGENT, "s1", user_id=owner))
            assert (refused.value.session_id, refused.value.column) == ("s1", "user_id")
        assert reopened.read("s1", user_id="abc\u00e9") is None and reopened.read("s1") is None
        reopened.upsert(make_session(Mode.AGENT, "s2", user_id="abc\u00e9"))  # 5 bytes: fits
        assert reopened.read("s2", user_id="abc\u00e9") is not None
        reopened.close()
    finally:
        with psycopg.connect(store.db_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _narrowed_source(path: Path, n: int, fields: dict[str, Any]) -> None:
    """A SQLite file of ``n`` small agent sessions s00000, ... that fit any column of NARROW, and last, with
    ``fields``, session s99999."""
    from agno_storage import AgentSession
    from agno_storage.backends.sqlite import SqliteStorage

    source = SqliteStorage("agent_sessions", db_file=path)
    source.upsert_many(AgentSession(session_id=f"s{i:05d}", agent_id="a", user_id="u") for i in range(n))
    source.upsert(make_session(Mode.AGENT, "s99999", **fields))
    source.close()


@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.parametrize(("column", "declared", "fields", "named"), NARROW)
def test_import_into_a_column_narrowed_after_it_opened_names_the_session_and_column_refused(
    make_store: Any, tmp_path: Path, column: str, declared: str, fields: dict[str, Any], named: str
) -> None:
    """Another program narrowed a column after import had opened the table: the batch the server refused was
    InvalidInputError "PostgreSQL cannot store this value", naming neither the session nor the column."""
    from agno_storage.ops.db import open_database
    from agno_storage.ops.export import export_table
    from agno_storage.ops.load import import_lines

    _narrowed_source(tmp_path / "src.db", 3, fields)
    out = io.BytesIO()
    with open_database(str(tmp_path / "src.db")) as db:
        export_table(db, "agent_sessions", out)
    lines = out.getvalue().splitlines()
    store = make_store()
    store.create()

    def narrowed_once_open() -> Iterator[bytes]:
        yield lines[0]  # the header: import opens the table after it
        retype(store, column, declared)
        yield from lines[1:]

    with pytest.raises(InvalidInputError) as refused:
        import_lines(narrowed_once_open(), store.db_url, store.table_name, schema=store.schema)
    assert (refused.value.session_id, refused.value.column) == ("s99999", column)
    assert named in str(refused.value) and "widen" in str(refused.value)
    assert "0 sessions were written before the batch that failed" in str(refused.value)
    assert store.count() == 0


@pytest.mark.parametrize("backend", ["postgres"])
def test_an_import_run_again_after_a_column_was_narrowed_refuses_an_owner_past_it_by_spaces(
    make_store: Any, tmp_path: Path
) -> None:
    """What upsert guarantees, import keeps: once a refusal has told of user_id narrowed to varchar(8), the import
    run again refuses 'alice' and four spaces instead of storing the owner 'alice   ', and names its session and
    column, as copy does (the error's session_id and column were None, its message alone named them)."""
    from agno_storage.ops.db import open_database
    from agno_storage.ops.export import export_table
    from agno_storage.ops.load import import_lines

    store = make_store()
    store.create()
    files = []
    for name, owner in (("long", "alice-of-wonderland"), ("spaces", "alice    ")):
        _narrowed_source(tmp_path / f"{name}.db", 0, {"user_id": owner})
        out = io.BytesIO()
        with open_database(str(tmp_path / f"{name}.db")) as db:
            export_table(db, "agent_sessions", out)
        files.append(out.getvalue().splitlines())

    def narrowed_once_open() -> Iterator[bytes]:
        yield files[0][0]
        retype(store, "user_id", "varchar(8)")
        yield from files[0][1:]

    with pytest.raises(InvalidInputError, match="character varying"):
        import_lines(narrowed_once_open(), store.db_url, store.table_name, schema=store.schema)
    with pytest.raises(StorageError) as cut:  # ExportFormatError: line 2 of the file
        import_lines(files[1], store.db_url, store.table_name, schema=store.schema)
    assert (cut.value.session_id, cut.value.column) == ("s99999", "user_id")
    assert store.count() == 0


@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.parametrize(("column", "declared", "fields", "named"), NARROW)
def test_copy_into_a_column_narrowed_after_it_opened_names_the_session_and_column_refused(
    make_store: Any, tmp_path: Path, column: str, declared: str, fields: dict[str, Any], named: str
) -> None:
    """As import: the copy's second batch, refused by a column narrowed after its first, named no session."""
    from agno_storage.ops.copy import copy_table
    from agno_storage.ops.db import FETCH_SIZE, open_database

    _narrowed_source(tmp_path / "src.db", FETCH_SIZE, fields)
    store = make_store(table_name="agent_sessions", schema=f"copy_narrowed_{column}")
    store.create()

    class NarrowedAfterTheFirstBatch:
        def start(self, total: int | None) -> None:
            pass

        def advance(self, count: int) -> None:
            if count == FETCH_SIZE:  # the first batch, written or being written: it fits the narrower type
                retype(store, column, declared, column if column != "memory" else "memory::text")

    with open_database(str(tmp_path / "src.db")) as db, pytest.raises(InvalidInputError) as refused:
        copy_table(db, "agent_sessions", store.db_url, schema=store.schema, progress=NarrowedAfterTheFirstBatch())
    assert (refused.value.session_id, refused.value.column) == ("s99999", column)
    assert named in str(refused.value) and "widen" in str(refused.value)
    assert f"{FETCH_SIZE} sessions were written before the batch that failed" in str(refused.value)
    assert store.count() == FETCH_SIZE
