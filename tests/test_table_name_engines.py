"""No sessions table is named agent_runs, where a Go Agent keeps its runs: every entry point that takes a sessions
table's name refuses each spelling the engine takes as that table (SQLite: any ASCII case), and takes another
spelling where the engine keeps it apart (PostgreSQL, whose quoted names are exact).

The stores themselves, ``open_storage`` on SQLite, prune and history, copy and import are held to it in
``test_conformance.py``, ``test_ops_prune_doctor.py`` and ``test_ops_runs.py``.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agno_storage import InvalidInputError, Mode, SqliteStorage, open_storage
from agno_storage.ops.db import open_database, open_store
from agno_storage.ops.prune import prune
from agno_storage.web.source import open_source
from tests.sessions import make_session
from tests.test_web_api import Serve
from tests.web_client import get

REFUSED = "where a Go Agent keeps its runs"
DAY = 86400
_schemas = itertools.count()


@pytest.mark.parametrize("name", ["AGENT_RUNS", "Agent_Runs"])
def test_the_agno_adapter_and_the_server_refuse_agent_runs_in_any_case_on_sqlite(
    tmp_path: Path, serve: Serve, name: str
) -> None:
    """A sessions table an earlier build let a store make under another case of agent_runs is agent_runs in
    SQLite: the agno adapter refuses the name when it is built, and the server lists the table apart, with why,
    and refuses to read it."""
    from agno_storage.agno import SqliteStorage as AgnoSqliteStorage

    path = tmp_path / "f.db"
    with SqliteStorage("old", db_file=path) as store:
        store.upsert(make_session(Mode.AGENT, "s"))
    with sqlite3.connect(path) as conn:
        conn.execute(f"ALTER TABLE old RENAME TO {name}")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(InvalidInputError, match=REFUSED):
        AgnoSqliteStorage(table_name=name, db_file=str(path))
    source = open_source(str(path))
    try:
        listing = source.tables(count_rows=False)
        assert listing.readable == ()
        [(listed, why)] = listing.unreadable
        assert listed == name and REFUSED in why
        with pytest.raises(InvalidInputError, match=REFUSED):
            source.reader(name)
    finally:
        source.close()
    with serve(str(path)) as base:
        status, body = get(base, "/api/v1/sessions", table=name)
        assert status == 400 and REFUSED in body["error"]["message"]
    assert path.read_bytes() == before


@pytest.fixture
def pg(pg_server: Any) -> Iterator[tuple[str, str]]:
    """(dsn, a fresh schema); the schema is dropped afterwards."""
    import psycopg

    schema = f"names_{next(_schemas)}_{int(time.time() * 1000) % 10**8}"
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield str(pg_server.dsn), schema
    finally:
        with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def test_every_entry_point_takes_agent_runs_in_another_case_on_postgres(pg: tuple[str, str], serve: Serve) -> None:
    """PostgreSQL keeps "AGENT_RUNS" apart from agent_runs (the store quotes every name): a sessions table of
    that name is opened by open_storage and the agno adapter, pruned, and served; agent_runs itself is refused
    by each of them."""
    from agno_storage.agno import PostgresStorage as AgnoPostgresStorage

    url, schema = pg
    with open_storage(url, "AGENT_RUNS", Mode.AGENT, schema=schema) as store:
        store.upsert(make_session(Mode.AGENT, "s"))
        assert store.get_all_session_ids() == ["s"]
    adapter = AgnoPostgresStorage(table_name="AGENT_RUNS", db_url=url, schema=schema)
    try:
        found = adapter.read("s")
        assert found is not None and found.session_id == "s"
    finally:
        adapter.close()
    with open_database(url, schema) as db:
        summary = prune(db, url, "AGENT_RUNS", DAY, dry_run=True, schema=schema, now=int(time.time()) + 2 * DAY)
        assert summary.session_ids == ("s",)
    source = open_source(url, schema_name=schema)
    try:
        assert [t.name for t in source.tables(count_rows=False).readable] == ["AGENT_RUNS"]
        assert source.reader("AGENT_RUNS") is not None
    finally:
        source.close()
    with serve(url, schema_name=schema) as base:
        status, body = get(base, "/api/v1/sessions", table="AGENT_RUNS")
        assert status == 200 and [s["session_id"] for s in body["sessions"]] == ["s"], body
        status, body = get(base, "/api/v1/sessions", table="agent_runs")
        assert status == 400 and REFUSED in body["error"]["message"]
    with pytest.raises(InvalidInputError, match=REFUSED):
        open_storage(url, "agent_runs", Mode.AGENT, schema=schema)
    with pytest.raises(InvalidInputError, match=REFUSED):
        AgnoPostgresStorage(table_name="agent_runs", db_url=url, schema=schema)
    with open_database(url, schema) as db, pytest.raises(InvalidInputError, match=REFUSED):
        prune(db, url, "agent_runs", DAY, dry_run=True, schema=schema)
    with open_store(url, "AGENT_RUNS", Mode.AGENT, schema) as store:
        assert store.get_all_session_ids() == ["s"]  # the dry runs removed nothing
