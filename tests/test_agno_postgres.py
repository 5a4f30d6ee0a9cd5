"""agno Agents and Teams on PostgreSQL through the adapter: the URL picks the engine."""

from __future__ import annotations

import hashlib
import importlib.util
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("agno")
pytest.importorskip("agno_storage.agno")

from agno.agent import Agent

from agno_storage.agno import PostgresStorage, SqliteStorage
from agno_storage.errors import InvalidInputError
from tests.agno_runner import (
    KINDS,
    FakeModel,
    assert_whole_history_reached,
    close_storages,
    continue_elsewhere,
    make_agent,
    run_in_new_process,
    seen_by_model,
)
from tests.pgserver import REQUIRE_ENV, PgServer, create_database
from tests.support import require


@pytest.fixture
def pg_url(pg_server: PgServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database for this test, as a libpq URL; storages built meanwhile are closed after."""
    name = "agno_" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:16]
    try:
        yield create_database(pg_server, name)
    finally:
        close_storages()


@pytest.mark.parametrize("kind", KINDS)
def test_history_on_postgresql_reaches_the_model_in_a_new_process(kind: str, pg_url: str) -> None:
    assert_whole_history_reached(kind, continue_elsewhere(kind, "ours", "ours", pg_url))


@pytest.mark.parametrize("kind", KINDS)
def test_session_written_by_agnos_postgres_store_resumes_on_ours(kind: str, pg_url: str) -> None:
    result = continue_elsewhere(kind, "agno", "ours-pg", pg_url)
    seen = seen_by_model(result)
    assert "first question" in seen and "second question" in seen
    # The v2 workflow's own runs came from the workflow_v2 table, not only the step agent's.
    assert result["loaded_runs"] == (2 if kind == "workflow_v2" else None)


@pytest.mark.parametrize("kind", KINDS)
def test_session_written_by_us_resumes_on_agnos_postgres_store(kind: str, pg_url: str) -> None:
    result = continue_elsewhere(kind, "ours-pg", "agno", pg_url)
    seen = seen_by_model(result)
    assert "first question" in seen and "second question" in seen
    # The v2 workflow's own runs came from the workflow_v2 table, not only the step agent's.
    assert result["loaded_runs"] == (2 if kind == "workflow_v2" else None)


def chat(storage_class: type[SqliteStorage] | type[PostgresStorage], url: str, message: str) -> FakeModel:
    """The application code under test: nothing but ``url`` says which engine is used."""
    model = FakeModel(prefix="agent")
    storage = storage_class(table_name="agent_sessions", db_url=url)
    try:
        agent: Agent = make_agent(storage, "switch-1", "user-1", model)
        agent.run(message)
    finally:
        storage.close()
    return model


@pytest.mark.parametrize("storage_class", [SqliteStorage, PostgresStorage])
@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_the_same_agent_code_runs_on_either_url(
    engine: str,
    storage_class: type[SqliteStorage] | type[PostgresStorage],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    url = f"sqlite:///{tmp_path}/agno.db" if engine == "sqlite" else str(request.getfixturevalue("pg_url"))
    chat(storage_class, url, "first question")
    chat(storage_class, url, "second question")
    seen = "\n".join(chat(storage_class, url, "third question").seen_texts())
    assert "first question" in seen and "agent #1: first question" in seen and "second question" in seen
    seen = seen_by_model(run_in_new_process("agent", "ours", url, "switch-1", "fourth question"))
    assert "third question" in seen
    # The URL alone chose where the rows went.
    if engine == "sqlite":
        assert (tmp_path / "agno.db").exists()
    else:
        import psycopg

        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM ai.agent_sessions WHERE session_id = 'switch-1'").fetchone()
        assert row == (1,)


def server_connections(url: str) -> int:
    """Connections to ``url``'s database other than the one asking."""
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_the_storage_interface_agno_and_its_users_call_works_on_either_url(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from agno.storage.session.agent import AgentSession

    url = f"sqlite:///{tmp_path}/agno.db" if engine == "sqlite" else str(request.getfixturevalue("pg_url"))
    with SqliteStorage(table_name="agent_sessions", db_url=url) as storage:
        assert not storage.table_exists()
        storage.create()
        assert storage.table_exists()
        for sid, user, agent, created in [("a", "u1", "x", 1), ("b", "u2", "y", 2), ("c", "u1", "y", 3)]:
            storage.upsert(AgentSession(session_id=sid, user_id=user, agent_id=agent, created_at=created))
        everything = storage.get_all_sessions()
        assert all(isinstance(s, AgentSession) for s in everything)
        assert [s.session_id for s in everything] == ["c", "b", "a"]  # newest first
        assert [s.session_id for s in storage.get_all_sessions(user_id="u1")] == ["c", "a"]
        assert [s.session_id for s in storage.get_all_sessions(entity_id="y")] == ["c", "b"]
        storage.delete_session("b")  # unscoped: whoever owns it
        assert storage.get_all_session_ids() == ["c", "a"]
        storage.drop()
        assert not storage.table_exists()
        assert storage.get_all_sessions() == []
    if engine == "postgresql":
        # Leaving the with block closed the pool the first call opened; a closed
        # connection leaves pg_stat_activity when its backend has exited.
        deadline = time.monotonic() + 10
        while server_connections(url) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server_connections(url) == 0


def test_schema_is_passed_through_and_agno_reads_it(pg_url: str) -> None:
    from agno.storage.postgres import PostgresStorage as AgnoPostgresStorage

    ours = PostgresStorage(table_name="agent_sessions", schema="tenant_a", db_url=pg_url)
    ours.upsert(make_session("s1"))
    theirs = AgnoPostgresStorage(
        table_name="agent_sessions", schema="tenant_a", db_url="postgresql+psycopg://" + pg_url.partition("://")[2]
    )
    try:
        found = theirs.read("s1")
        assert found is not None and found.session_id == "s1"
        assert not AgnoPostgresStorage(table_name="agent_sessions", db_engine=theirs.db_engine).table_exists()
    finally:
        theirs.db_engine.dispose()
        ours.close()


def test_a_postgresql_db_engine_is_used_for_its_url(pg_url: str) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine("postgresql+psycopg://" + pg_url.partition("://")[2])
    try:
        storage = PostgresStorage(table_name="agent_sessions", db_engine=engine)
        storage.upsert(make_session("e1"))
        found = storage.read("e1")
        assert found is not None and found.session_id == "e1"
        storage.close()
    finally:
        engine.dispose()


def test_a_db_engine_given_with_a_db_url_is_the_database_used_as_in_agno(pg_url: str) -> None:
    """agno's PostgresStorage uses db_engine when both are given (its docstring's order: the engine, then the
    URL): the swapped store writes where agno's own store reads, not to the URL beside the engine."""
    import sqlalchemy
    from agno.storage.postgres import PostgresStorage as AgnoPostgresStorage

    engine = sqlalchemy.create_engine("postgresql+psycopg://" + pg_url.partition("://")[2])
    nowhere = "postgresql://nobody@127.0.0.1:1/nothing"  # nothing listens on port 1
    try:
        ours = PostgresStorage(table_name="agent_sessions", db_url=nowhere, db_engine=engine)
        ours.upsert(make_session("both"))
        ours.close()
        theirs = AgnoPostgresStorage(table_name="agent_sessions", db_url=nowhere, db_engine=engine)
        found = theirs.read("both")
        assert found is not None and found.agent_id == "historian"
    finally:
        engine.dispose()


def make_session(session_id: str) -> Any:
    from agno.storage.session.agent import AgentSession

    return AgentSession(session_id=session_id, agent_id="historian", memory={"runs": []})


# -- choices made before any connection (no server needed) ------------------


@pytest.fixture
def pg_driver() -> None:
    """Skip (or fail under AGNO_STORAGE_REQUIRE_PG=1) without psycopg: a PostgreSQL URL imports it."""
    require(
        all(importlib.util.find_spec(name) is not None for name in ("psycopg", "psycopg_pool")),
        "psycopg 3 not installed: pip install 'agno-session-storage[postgres]'",
        REQUIRE_ENV,
    )


@pytest.mark.usefixtures("pg_driver")
def test_the_engine_password_is_kept() -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine("postgresql+psycopg://app:s%40cret@db.invalid:5433/app")
    storage = PostgresStorage(table_name="agent_sessions", db_engine=engine)
    assert storage.backend == "postgresql"
    assert storage.db_url == "postgresql+psycopg://app:s%40cret@db.invalid:5433/app"


@pytest.mark.usefixtures("pg_driver")
def test_the_url_picks_the_engine_without_connecting() -> None:
    # Construction opens nothing: db.invalid is never resolved.
    assert SqliteStorage(table_name="t", db_url="postgresql+psycopg://u@db.invalid/x").backend == "postgresql"
    assert SqliteStorage(table_name="t", db_url="postgres://u@db.invalid/x").backend == "postgresql"
    assert PostgresStorage(table_name="t", db_url="sqlite:///x.db").backend == "sqlite"
    assert SqliteStorage(table_name="t").backend == "sqlite"


@pytest.mark.usefixtures("pg_driver")
@pytest.mark.parametrize(
    ("args", "match"),
    [
        ({"db_url": "mysql://u@h/db"}, "db_url"),
        ({"db_url": "/just/a/path.db"}, "db_url"),
        ({"db_url": "postgresql://u@h/db", "db_file": "x.db"}, "db_file"),
        ({"db_url": "postgresql://u@h/db", "busy_timeout": 3}, "busy_timeout"),
        ({"db_file": "x.db", "pool_size": 3}, "pool_size"),
    ],
)
def test_wrong_arguments_are_refused_at_construction(args: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        SqliteStorage(table_name="t", **args)


def test_postgres_storage_needs_a_url_or_an_engine() -> None:
    with pytest.raises(ValueError, match="db_url or db_engine"):
        PostgresStorage(table_name="t")


def test_a_sqlite_engine_is_refused_by_postgres_storage(tmp_path: Path) -> None:
    import sqlalchemy

    with pytest.raises(InvalidInputError, match="db_engine"):
        PostgresStorage(table_name="t", db_engine=sqlalchemy.create_engine(f"sqlite:///{tmp_path}/x.db"))
