"""``copy`` never upserts a PostgreSQL table's rows back into that same table: it would undo concurrent writes."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agno_storage.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
_schemas = itertools.count()


@pytest.fixture
def source(pg_server: Any, capsys: pytest.CaptureFixture[str]) -> Iterator[tuple[Any, str]]:
    """(the server, a fresh schema holding agent_sessions, copied from a Go fixture); dropped afterwards."""
    import psycopg

    schema = f"self_{next(_schemas)}"
    code = main(
        [
            "copy",
            str(FIXTURES / "go_agent_conversation.db"),
            "--table",
            "agent_sessions",
            pg_server.dsn,
            "--to-schema",
            schema,
        ]
    )
    assert code == 0
    capsys.readouterr()
    try:
        yield pg_server, schema
    finally:
        with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def stamps(dsn: str, schema: str, table: str = "agent_sessions") -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        return conn.execute(
            f"SELECT session_id, memory::text, updated_at FROM {schema}.{table} ORDER BY session_id"
        ).fetchall()


@pytest.mark.parametrize("spelling", ["the same URL", "the unix socket", "the search path"])
def test_copy_refuses_a_postgres_table_onto_itself_however_the_url_spells_it(
    source: tuple[Any, str], capsys: pytest.CaptureFixture[str], spelling: str
) -> None:
    server, schema = source
    before = stamps(server.dsn, schema)
    destination, to_schema = {
        "the same URL": (server.dsn, []),  # --to-schema defaults to --schema
        "the unix socket": (server.socket_dsn, ["--to-schema", schema]),
        "the search path": (f"{server.dsn}?options=-csearch_path%3D{schema}", ["--to-schema", ""]),
    }[spelling]
    code = main(["copy", server.dsn, "--schema", schema, "--table", "agent_sessions", destination, *to_schema])
    assert code == 2
    assert "the source table 'agent_sessions' itself" in capsys.readouterr().err
    assert stamps(server.dsn, schema) == before


def test_copy_into_another_table_or_schema_of_the_same_database_is_a_copy(
    source: tuple[Any, str], capsys: pytest.CaptureFixture[str]
) -> None:
    server, schema = source
    base = ["copy", server.dsn, "--schema", schema, "--table", "agent_sessions", server.dsn]
    assert main([*base, "--to-table", "archive_sessions"]) == 0
    assert main([*base, "--to-table", "Agent_Sessions"]) == 0  # quoted: another table on PostgreSQL
    assert main([*base, "--to-schema", f"{schema}_other"]) == 0
    capsys.readouterr()
    import psycopg

    try:
        assert stamps(server.dsn, schema, "archive_sessions") == stamps(server.dsn, schema)
        assert stamps(server.dsn, schema, '"Agent_Sessions"') == stamps(server.dsn, schema)  # a table of its own
        assert stamps(server.dsn, f"{schema}_other") == stamps(server.dsn, schema)
    finally:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema}_other CASCADE")


def test_copy_is_refused_for_a_role_that_may_not_read_the_system_identifier(
    pg_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Where pg_control_system() is revoked, the role's lookup still tells the table: the same URL, and a
    superuser's URL of the same table, are refused."""
    import psycopg

    from tests.pgserver import create_database

    name, role = "copy_self_revoked", "copy_self_no_control"
    url = create_database(pg_server, name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC")  # in this database only
        conn.execute(f"DROP ROLE IF EXISTS {role}")
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT CREATE ON DATABASE {name} TO {role}")  # the store makes its schema if missing
        conn.execute(f"CREATE SCHEMA ai AUTHORIZATION {role}")
    limited = url.replace("postgres@", f"{role}@", 1)
    try:
        assert main(["copy", str(FIXTURES / "go_agent_conversation.db"), "--table", "agent_sessions", limited]) == 0
        before = stamps(url, "ai")
        for source, destination in ((limited, limited), (url, limited), (limited, url)):
            assert main(["copy", source, "--table", "agent_sessions", destination]) == 2
            assert "the source table 'agent_sessions' itself" in capsys.readouterr().err
        assert stamps(url, "ai") == before
    finally:
        with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
            conn.execute(f"DROP ROLE {role}")
