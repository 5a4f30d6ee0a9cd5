"""``copy`` from a streaming standby onto its primary's table is refused: the standby's rows are the primary's own,
as of a moment ago. Promoted, the standby is a database of its own and a copy from it is a copy."""

from __future__ import annotations

import itertools
import os
import pwd
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agno_storage import AgentSession, Mode
from agno_storage.cli import main
from agno_storage.ops.db import open_store
from tests.pgserver import SERVER_USER, SUPERUSER, PgServer, free_port, require_pg, running_server

_schemas = itertools.count()


@pytest.fixture(scope="module")
def primary() -> Iterator[PgServer]:
    """A server of this module's own: a standby is a base backup of all of it."""
    require_pg()
    with running_server() as server:
        yield server


def start_standby(primary: PgServer) -> PgServer:
    """A streaming standby of ``primary`` (pg_basebackup -R: standby.signal and primary_conninfo), started."""
    root = Path(tempfile.mkdtemp(prefix="agno-pg-standby-"))
    standby = PgServer(primary.bindir, root, free_port())
    if os.geteuid() == 0:  # the server runs as SERVER_USER, who must own its directory
        account = pwd.getpwnam(SERVER_USER)
        os.chown(root, account.pw_uid, account.pw_gid)
    try:
        standby._run(
            "pg_basebackup",
            *("-D", str(standby.datadir), "-R", "-X", "stream", "-c", "fast"),
            *("-h", str(primary.socket_dir), "-p", str(primary.port), "-U", SUPERUSER),
        )
        conf = standby.datadir / "postgresql.auto.conf"
        settings = f"port = {standby.port}\nunix_socket_directories = '{standby.socket_dir}'\n"
        standby._run("sh", "-c", f"cat >> '{conf}'", stdin=settings, on_path=False)
        standby.start()
    except BaseException:
        standby.destroy()
        raise
    return standby


def replayed(primary: PgServer, standby: PgServer) -> None:
    """Wait until ``standby`` has replayed everything ``primary`` wrote so far."""
    import psycopg

    with psycopg.connect(primary.dsn, autocommit=True) as conn:
        lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    deadline = time.monotonic() + 15
    with psycopg.connect(standby.dsn, autocommit=True) as conn:
        while not conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0]:
            assert time.monotonic() < deadline, "the standby did not catch up"
            time.sleep(0.05)


@pytest.fixture
def pair(primary: PgServer) -> Iterator[tuple[PgServer, PgServer, str]]:
    """(the primary, a standby of it that has replayed a fresh schema's agent_sessions, the schema)."""
    import psycopg

    schema = f"replica_{next(_schemas)}"
    store = open_store(primary.dsn, "agent_sessions", Mode.AGENT, schema)
    store.upsert_many([AgentSession(session_id=s, user_id="u", agent_id="x", memory={"turn": 1}) for s in ("a", "b")])
    store.close()
    standby = start_standby(primary)
    try:
        replayed(primary, standby)
        yield primary, standby, schema
    finally:
        standby.destroy()
        with psycopg.connect(primary.dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def memories(dsn: str, schema: str, table: str = "agent_sessions") -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        return conn.execute(f"SELECT session_id, memory::text FROM {schema}.{table} ORDER BY session_id").fetchall()


def test_copy_from_a_standby_onto_its_primarys_table_is_refused_and_undoes_nothing(
    pair: tuple[PgServer, PgServer, str], capsys: pytest.CaptureFixture[str]
) -> None:
    import psycopg

    primary, standby, schema = pair
    with psycopg.connect(standby.dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")  # a standby some way behind, as a busy one is
    store = open_store(primary.dsn, "agent_sessions", Mode.AGENT, schema)
    store.upsert(AgentSession(session_id="a", user_id="u", agent_id="x", memory={"turn": 2}))
    store.close()
    before = memories(primary.dsn, schema)
    assert before != memories(standby.dsn, schema)

    copy = ["copy", standby.dsn, "--schema", schema, "--table", "agent_sessions"]
    assert main([*copy, primary.dsn]) == 2
    assert "the source table 'agent_sessions' itself" in capsys.readouterr().err
    assert memories(primary.dsn, schema) == before  # turn 2 stays
    # The other way round too (the standby could not be written anyway).
    assert main(["copy", primary.dsn, "--schema", schema, "--table", "agent_sessions", standby.dsn]) == 2
    assert "the source table 'agent_sessions' itself" in capsys.readouterr().err
    # Into another table of the primary it is a copy like any other.
    assert main([*copy, primary.dsn, "--to-table", "archive_sessions"]) == 0
    assert memories(primary.dsn, schema, "archive_sessions") == memories(standby.dsn, schema)


def test_a_promoted_standby_is_a_database_of_its_own_and_a_copy_from_it_is_a_copy(
    pair: tuple[PgServer, PgServer, str], capsys: pytest.CaptureFixture[str]
) -> None:
    import psycopg

    primary, standby, schema = pair
    with psycopg.connect(standby.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT pg_promote(true, 30)").fetchone()[0]
        conn.execute(f"UPDATE {schema}.agent_sessions SET memory = '{{\"turn\": 9}}' WHERE session_id = 'b'")
    assert main(["copy", standby.dsn, "--schema", schema, "--table", "agent_sessions", primary.dsn]) == 0
    capsys.readouterr()
    assert memories(primary.dsn, schema) == memories(standby.dsn, schema)
