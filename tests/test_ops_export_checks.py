"""export never writes a line its import would refuse, and copy never writes a row export would refuse: a backup's
problem shows when it is made, naming the session and column, not on the day it is restored."""

from __future__ import annotations

import io
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agno_storage.cli import main
from agno_storage.errors import CorruptRowError
from agno_storage.ops.copy import copy_table
from agno_storage.ops.db import open_database
from agno_storage.ops.export import export_table
from agno_storage.ops.load import import_lines

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TABLE = "agent_sessions"

#: Values doctor reports, each a column's stored value as SQL; the JSON ones a JSON parser of some language reads.
PLANTED = {
    "a text time": ("created_at", "'yesterday'"),
    "a text that is no number as a time": ("updated_at", "'17e'"),  # INTEGER affinity keeps digits as a number
    "NaN": ("memory", """'{"a": NaN}'"""),
    "Infinity": ("memory", """'{"a": -Infinity}'"""),
    "a float beyond a double": ("memory", """'{"a": 1.0E+400}'"""),
    "a lone surrogate": ("memory", """'{"a": "\\ud800"}'"""),
    "a raw control character": ("memory", "'{\"a\": \"x' || char(1) || 'y\"}'"),
    "an integer of 5000 digits": ("memory", "'{\"a\": ' || replace(hex(zeroblob(2500)), '0', '7') || '}'"),
    "nesting of 1100 levels": (
        "memory",
        "'{\"a\": ' || replace(hex(zeroblob(550)), '00', '[[') || replace(hex(zeroblob(550)), '00', ']]') || '}'",
    ),
    "an array in an object column": ("agent_data", "'[1]'"),
    "an empty session_id": ("session_id", "''"),
}


@pytest.fixture
def planted(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Path, str, str]]:
    """(a copy of go_agent.db with one session's value replaced, that session_id, the column)."""
    column, value = PLANTED[request.param]
    path = tmp_path / "src.db"
    shutil.copy(FIXTURES / "go_agent.db", path)
    with sqlite3.connect(path) as conn:
        (sid,) = conn.execute(f"SELECT session_id FROM {TABLE} ORDER BY session_id LIMIT 1").fetchone()
        conn.execute(f"UPDATE {TABLE} SET {column} = {value} WHERE session_id = ?", (sid,))
        if column == "session_id":
            sid = ""
    yield path, sid, column


@pytest.mark.parametrize("planted", list(PLANTED), indirect=True)
def test_export_refuses_a_value_import_would_refuse_naming_session_and_column(
    planted: tuple[Path, str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, sid, column = planted
    out = tmp_path / "x.jsonl"
    with open_database(str(path)) as db, out.open("wb") as f, pytest.raises(CorruptRowError) as caught:
        export_table(db, TABLE, f)
    assert (caught.value.session_id, caught.value.column) == (sid, column)
    assert main(["export", str(path), "--table", TABLE, "-o", str(tmp_path / "cli.jsonl")]) == 2
    assert f"{TABLE}.{column} of session {sid!r}" in capsys.readouterr().err
    assert not (tmp_path / "cli.jsonl").exists()


@pytest.mark.parametrize("planted", list(PLANTED), indirect=True)
def test_a_file_export_writes_is_one_import_takes(planted: tuple[Path, str, str], tmp_path: Path) -> None:
    """Whatever export writes before it stops, import takes: the lines of the sessions before the bad one."""
    path, _, _ = planted
    out = tmp_path / "x.jsonl"
    with open_database(str(path)) as db, out.open("wb") as f, pytest.raises(CorruptRowError):
        export_table(db, TABLE, f)
    with out.open("rb") as f:
        import_lines(f, str(tmp_path / "restored.db"), TABLE)


# --- copy --------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def destination(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """(a destination URL, its schema) with no agent_sessions table yet."""
    if request.param == "sqlite":
        yield str(tmp_path / "dst.db"), None
        return
    import psycopg

    server: Any = request.getfixturevalue("pg_server")
    schema = f"real_{tmp_path.name[-12:].replace('-', '_').lower()}"
    try:
        yield str(server.dsn), schema
    finally:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.mark.parametrize("value", ["1.5", "'yesterday'"])
def test_copy_refuses_a_time_that_is_no_integer_as_export_does(
    tmp_path: Path, destination: tuple[str, str | None], value: str
) -> None:
    """SQLite keeps 1.5 in an INTEGER column as a REAL; PostgreSQL's BIGINT would round it to 2."""
    path = tmp_path / "src.db"
    shutil.copy(FIXTURES / "go_agent.db", path)
    with sqlite3.connect(path) as conn:
        (sid,) = conn.execute(f"SELECT session_id FROM {TABLE} ORDER BY session_id LIMIT 1").fetchone()
        conn.execute(f"UPDATE {TABLE} SET created_at = {value} WHERE session_id = ?", (sid,))
    url, schema = destination
    with open_database(str(path)) as db, pytest.raises(CorruptRowError) as caught:
        copy_table(db, TABLE, url, schema=schema)
    assert (caught.value.session_id, caught.value.column) == (sid, "created_at")


def _plant(tmp_path: Path, fixture: str, column: str, value: str) -> tuple[Path, str]:
    """(a copy of ``fixture`` whose first session has ``value`` (SQL) in ``column``, that session's id as it was).

    Sessions whose JSON holds \\u0000, which PostgreSQL's jsonb cannot hold, are left out: they would stop a copy
    there for a reason of their own.
    """
    path = tmp_path / "src.db"
    shutil.copy(FIXTURES / fixture, path)
    with sqlite3.connect(path) as conn:
        json = " || ".join(f"COALESCE({c}, '')" for c in ("memory", "session_data", "extra_data", "agent_data"))
        conn.execute(f"DELETE FROM {TABLE} WHERE {json} LIKE '%\\u0000%'")
        (sid,) = conn.execute(f"SELECT session_id FROM {TABLE} ORDER BY session_id LIMIT 1").fetchone()
        conn.execute(f"UPDATE {TABLE} SET {column} = {value} WHERE session_id = ?", (sid,))
    return path, sid


#: Values of a text column that are not text (another program's BLOB), each as SQL; SQLite's TEXT affinity turns a
#: number into text, but keeps a BLOB as it is.
NOT_TEXT = {
    "a BLOB owner": ("user_id", "CAST('alice' AS BLOB)"),
    "a BLOB session_id": ("session_id", "CAST(session_id AS BLOB)"),
    "a BLOB agent_id": ("agent_id", "x'01ff'"),
}


@pytest.mark.parametrize("plant", list(NOT_TEXT))
def test_copy_refuses_a_blob_where_text_is_as_export_does(
    tmp_path: Path, destination: tuple[str, str | None], plant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """PostgreSQL would keep the BLOB as the text of its hex: alice's session would no longer be hers."""
    column, value = NOT_TEXT[plant]
    path, sid = _plant(tmp_path, "go_agent.db", column, value)
    stored_id = sid.encode() if column == "session_id" else sid
    with open_database(str(path)) as db, pytest.raises(CorruptRowError) as exported:
        export_table(db, TABLE, io.BytesIO())
    url, schema = destination
    with open_database(str(path)) as db, pytest.raises(CorruptRowError) as copied:
        copy_table(db, TABLE, url, schema=schema)
    assert (copied.value.session_id, copied.value.column) == (str(stored_id), column)
    assert (exported.value.session_id, exported.value.column) == (str(stored_id), column)
    to_schema = [] if schema is None else ["--to-schema", schema]
    assert main(["copy", str(path), "--table", TABLE, *to_schema, url]) == 2
    assert f"{TABLE}.{column} of session {stored_id!r}" in capsys.readouterr().err
    with open_database(url, schema) as db:  # the fixture's sessions fit one batch: none of them was written
        assert db.query(f"SELECT COUNT(*) FROM {db.qualified(TABLE)}") == [(0,)]


@pytest.mark.parametrize("fixture", ["go_agent.db", "agno_agent.db"])
def test_a_blob_in_a_json_column_stops_export_and_copy_naming_session_and_column(
    tmp_path: Path, destination: tuple[str, str | None], fixture: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Go's database/sql stores a []byte as a BLOB; agno 1.x's JSON columns (numeric affinity) keep one as it is."""
    path, sid = _plant(tmp_path, fixture, "memory", """CAST('{"runs": []}' AS BLOB)""")
    with open_database(str(path)) as db, pytest.raises(CorruptRowError) as exported:
        export_table(db, TABLE, io.BytesIO())
    assert (exported.value.session_id, exported.value.column) == (sid, "memory")
    out = tmp_path / "x.jsonl"
    assert main(["export", str(path), "--table", TABLE, "-o", str(out)]) == 2
    assert f"{TABLE}.memory of session {sid!r}: memory holds a bytes" in capsys.readouterr().err
    assert not out.exists()
    url, schema = destination
    with open_database(str(path)) as db, pytest.raises(CorruptRowError) as copied:
        copy_table(db, TABLE, url, schema=schema)
    assert (copied.value.session_id, copied.value.column) == (sid, "memory")
    to_schema = [] if schema is None else ["--to-schema", schema]
    assert main(["copy", str(path), "--table", TABLE, *to_schema, url]) == 2
    assert f"{TABLE}.memory of session {sid!r}: memory holds a bytes" in capsys.readouterr().err
    with open_database(url, schema) as db:  # the fixture's sessions fit one batch: none of them was written
        assert db.query(f"SELECT COUNT(*) FROM {db.qualified(TABLE)}") == [(0,)]


@pytest.mark.parametrize(("column", "value"), [("memory", {"runs": [], "note": "nul\x00here"}), ("agent_id", "a\x00b")])
def test_copy_to_postgresql_names_the_session_and_column_that_holds_nul(
    tmp_path: Path, pg_server: Any, column: str, value: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """SQLite keeps U+0000 in text and JSON; PostgreSQL's text and jsonb cannot. The copy stopped on a driver
    error about "this value" that named no session; it now names the session and column, nothing of the batch
    written."""
    import psycopg

    from agno_storage import AgentSession, SqliteStorage

    src = tmp_path / "src.db"
    base: dict[str, Any] = {"user_id": "u", "agent_id": "a", "memory": {"runs": []}}
    with SqliteStorage(TABLE, db_file=src) as store:
        store.upsert_many(
            AgentSession(**{**base, "session_id": f"s{i}", **({column: value} if i == 7 else {})}) for i in range(20)
        )
    schema = f"nul_{column}"
    try:
        with open_database(str(src)) as db, pytest.raises(CorruptRowError) as copied:
            copy_table(db, TABLE, str(pg_server.dsn), schema=schema)
        assert (copied.value.session_id, copied.value.column) == ("s7", column)
        assert main(["copy", str(src), "--table", TABLE, "--to-schema", schema, str(pg_server.dsn)]) == 2
        assert f"{TABLE}.{column} of session 's7': holds U+0000" in capsys.readouterr().err
        with open_database(str(pg_server.dsn), schema) as db:
            assert db.query(f"SELECT COUNT(*) FROM {db.qualified(TABLE)}") == [(0,)]
    finally:
        with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_nan_agnos_own_store_wrote_stops_export_and_copy_saying_what_it_is_and_how_to_repair_it(
    tmp_path: Path, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """agno 1.x's own SQLite store writes NaN and infinities as json.dumps spells them; a JSON line cannot hold them:
    export and copy name the session and column, say what the value is and how to replace it."""
    path, sid = _plant(tmp_path, "go_agent.db", "session_data", f"""'{{"session_state": {{"score": {value}}}}}'""")
    with open_database(str(path)) as db, (tmp_path / "x.jsonl").open("wb") as f, pytest.raises(CorruptRowError) as ex:
        export_table(db, TABLE, f)
    with open_database(str(path)) as db, pytest.raises(CorruptRowError) as cp:
        copy_table(db, TABLE, str(tmp_path / "dst.db"))
    assert main(["export", str(path), "--table", TABLE, "-o", str(tmp_path / "cli.jsonl")]) == 2
    for message in (str(ex.value), str(cp.value), capsys.readouterr().err):
        assert f"{TABLE}.session_data of session {sid!r}" in message
        assert "NaN or an infinity" in message and "upsert" in message
    assert (ex.value.column, cp.value.column) == ("session_data", "session_data")


@pytest.mark.parametrize("value", ["NaN", "-Infinity"])
def test_doctor_says_a_nan_is_nan_and_how_to_repair_it_as_export_does(
    tmp_path: Path, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """doctor reported such a value as "not valid JSON: unexpected character"; it words it as export and copy do."""
    from agno_storage.ops.doctor import diagnose

    path, sid = _plant(tmp_path, "go_agent.db", "session_data", f"""'{{"session_state": {{"score": {value}}}}}'""")
    with open_database(str(path)) as db:
        (finding,) = [f for f in diagnose(db, str(path)).findings if f.session_id == sid]
    assert (finding.kind, finding.table, finding.column) == ("bad_value", TABLE, "session_data")
    assert main(["doctor", str(path)]) == 3
    out = capsys.readouterr().out
    for message in (finding.message, out):
        assert "NaN or an infinity" in message and "upsert" in message
    assert f"{TABLE}.session_data session {sid!r}: holds NaN or an infinity" in out


def test_a_damaged_file_stops_export_and_copy_with_the_stores_typed_error(tmp_path: Path) -> None:
    """export and copy read through their own connection: a damaged file was a plain StorageError
    there, where the store raises DatabaseCorruptError."""
    from agno_storage import AgentSession, SqliteStorage
    from agno_storage.errors import DatabaseCorruptError

    path = tmp_path / "damaged.db"
    store = SqliteStorage("agent_sessions", db_file=path)
    store.upsert_many(AgentSession(session_id=f"s{i}", memory={"pad": "z" * 500}) for i in range(300))
    store.close()  # the last connection checkpoints the WAL into the file
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)
    with open_database(str(path)) as db, pytest.raises(DatabaseCorruptError, match="damaged"):
        export_table(db, "agent_sessions", io.BytesIO())
    with open_database(str(path)) as db, pytest.raises(DatabaseCorruptError, match="damaged"):
        copy_table(db, "agent_sessions", f"sqlite:///{tmp_path / 'copy.db'}")
