"""to-agno3 on PostgreSQL: the tables it makes are the ones agno 3.1.10's own PostgresDb makes.

agno 3.1.10 (its own venv, devkit/agno3_env.py) creates its sessions, runs and
memories tables in one schema of the test server; ``to_agno3`` creates its
own in another; the two layouts are read back from the catalog and compared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agno_storage.agno3 import to_agno3
from agno_storage.errors import InvalidInputError
from devkit import agno3_env

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

_COLUMNS = (
    "SELECT table_name, ordinal_position, column_name, data_type, character_maximum_length, is_nullable,"
    " column_default FROM information_schema.columns WHERE table_schema = %s ORDER BY table_name, ordinal_position"
)
_CONSTRAINTS = (
    "SELECT tc.table_name, tc.constraint_type, tc.constraint_name, kcu.column_name, kcu.ordinal_position,"
    " ccu.table_schema = tc.table_schema, ccu.table_name, ccu.column_name, rc.delete_rule"
    " FROM information_schema.table_constraints tc"
    " JOIN information_schema.key_column_usage kcu"
    "   ON kcu.constraint_schema = tc.constraint_schema AND kcu.constraint_name = tc.constraint_name"
    " LEFT JOIN information_schema.referential_constraints rc"
    "   ON rc.constraint_schema = tc.constraint_schema AND rc.constraint_name = tc.constraint_name"
    " LEFT JOIN information_schema.constraint_column_usage ccu"
    "   ON tc.constraint_type = 'FOREIGN KEY' AND ccu.constraint_schema = tc.constraint_schema"
    "   AND ccu.constraint_name = tc.constraint_name"
    " WHERE tc.table_schema = %s ORDER BY 1, 2, 3, 5"
)
_INDEXES = "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = %s ORDER BY 1, 2"
_VERSIONS = "SELECT table_name, version FROM {schema}.agno_schema_versions ORDER BY 1"


def _layout(dsn: str, schema: str) -> dict[str, Any]:
    """Columns, keys, foreign keys, indexes and version stamps of ``schema``, with the schema name taken out."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        layout: dict[str, Any] = {
            "tables": sorted(
                r[0]
                for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
                )
            ),
            "columns": conn.execute(_COLUMNS, (schema,)).fetchall(),
            "constraints": conn.execute(_CONSTRAINTS, (schema,)).fetchall(),
            "indexes": [
                (t, name, d.replace(f"{schema}.", "SCHEMA.")) for t, name, d in conn.execute(_INDEXES, (schema,))
            ],
            "versions": conn.execute(_VERSIONS.format(schema=schema)).fetchall(),
        }
    return layout


def test_postgres_tables_are_the_ones_agno3_creates(pg_server: Any) -> None:
    dsn = pg_server.dsn
    code = (
        "import sys\nfrom agno.db.postgres import PostgresDb\n"
        "db = PostgresDb(db_url='postgresql+psycopg://' + sys.argv[1].partition('://')[2], db_schema='theirs')\n"
        "for t in ('sessions', 'runs', 'memories'):\n"
        "    db._get_table(table_type=t, create_table_if_not_found=True)\n"
        "db.db_engine.dispose()\n"
    )
    agno3_env.run_code(code, dsn)
    to_agno3(str(FIXTURES / "go_team_conversation.db"), dsn, dst_schema="ours")
    theirs = _layout(dsn, "theirs")
    ours = _layout(dsn, "ours")
    assert theirs["tables"] == ["agno_memories", "agno_runs", "agno_schema_versions", "agno_sessions"]
    for part in ("tables", "columns", "constraints", "indexes", "versions"):
        assert ours[part] == theirs[part], part


def test_agno_golangs_postgres_table_of_the_same_name_is_refused(pg_server: Any) -> None:
    """agno-golang's PostgresStorage names its one table agno_sessions too (its DDL, schema chosen by the app)."""
    import psycopg

    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS gostore")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS gostore.agno_sessions (session_id TEXT PRIMARY KEY, user_id TEXT,"
            " entity_id TEXT, session_data JSONB, created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,"
            " updated_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP)"
        )
    with pytest.raises(InvalidInputError, match=r"agno_sessions in DST is not agno 3's"):
        to_agno3(str(FIXTURES / "go_team_conversation.db"), pg_server.dsn, dst_schema="gostore")
    with psycopg.connect(pg_server.dsn) as conn:
        columns = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'gostore'"
                " AND table_name = 'agno_sessions'"
            )
        ]
        assert "entity_id" in columns and "session_type" not in columns  # left as it was


def test_a_value_postgresql_refuses_is_named_by_its_session_and_the_sessions_before_it_are_kept(
    pg_server: Any, tmp_path: Path
) -> None:
    """PostgreSQL's jsonb holds no U+0000: the error names the session that has one (not the first of its batch),
    as InvalidInputError; the batch's other sessions before it are written, a rerun goes as far again, and a
    backslash followed by ``u0000`` (text, not the character) is stored as it is."""
    import shutil
    import sqlite3

    import psycopg

    src = tmp_path / "src.db"
    shutil.copyfile(FIXTURES / "agno_agent.db", src)
    conn = sqlite3.connect(src)
    # agno 1.8.4 wrote U+0000 into three sessions of this fixture (values of control characters): taken out first.
    for column in ("memory", "extra_data", "agent_data"):
        conn.execute(f"UPDATE agent_sessions SET {column} = replace({column}, 'nul\\u0000', 'nul')")
    ids = [
        r[0]
        for r in conn.execute(
            'SELECT session_id FROM agent_sessions WHERE instr(memory, \'"content": "\') > 0 '
            "ORDER BY created_at, session_id"
        )
    ]
    bad, literal = ids[4], ids[1]
    # In the JSON text: the escape of the character U+0000, and an escaped backslash followed by "u0000".
    before = '"content": "'
    for sid, inserted in ((bad, "\\u0000"), (literal, "\\\\u0000")):
        changed = conn.execute(
            "UPDATE agent_sessions SET memory = replace(memory, ?, ?) WHERE session_id = ? AND instr(memory, ?) > 0",
            (before, before + "x" + inserted, sid, before),
        ).rowcount
        assert changed == 1
    conn.commit()
    conn.close()
    # Oldest first: the sessions older than the bad one are written, the bad one and the rest are not.
    with sqlite3.connect(src) as conn:
        older = conn.execute(
            "SELECT session_id FROM agent_sessions WHERE created_at < "
            "(SELECT created_at FROM agent_sessions WHERE session_id = ?)",
            (bad,),
        ).fetchall()
    assert older

    def written() -> set[str]:
        with psycopg.connect(pg_server.dsn) as pg:
            return {r[0] for r in pg.execute("SELECT session_id FROM nul.agno_sessions")}

    for _ in range(2):
        with pytest.raises(InvalidInputError, match=r"U\+0000|\\u0000|unsupported Unicode") as info:
            to_agno3(str(src), pg_server.dsn, dst_schema="nul", workers=0)
        assert info.value.session_id == bad, str(info.value)
        assert repr(bad) in str(info.value)
        assert written() == {sid for (sid,) in older}  # all in the one batch with the bad one
    with pytest.raises(InvalidInputError) as info:  # alone in its batch: named as well
        to_agno3(str(src), pg_server.dsn, dst_schema="nul", workers=0, batch_size=1)
    assert info.value.session_id == bad
    assert written() == {sid for (sid,) in older}
    # Its U+0000 taken out of the source, a rerun moves the rest.
    conn = sqlite3.connect(src)
    conn.execute("UPDATE agent_sessions SET memory = replace(memory, 'x\\u0000', 'x') WHERE session_id = ?", (bad,))
    conn.commit()
    conn.close()
    report = to_agno3(str(src), pg_server.dsn, dst_schema="nul", workers=0)
    assert sum(c.sessions for c in report.modes.values()) == 16 - len(older)
    with psycopg.connect(pg_server.dsn) as pg:
        assert pg.execute("SELECT count(*) FROM nul.agno_sessions").fetchone() == (16,)
        stored = pg.execute(
            "SELECT string_agg(run_data::text, ' ') FROM nul.agno_runs WHERE session_id = %s", (literal,)
        ).fetchone()
    assert stored is not None and "x\\\\u0000" in stored[0]


def test_a_nul_in_a_text_column_is_named_by_its_session_as_in_a_json_one(pg_server: Any, tmp_path: Path) -> None:
    """psycopg refuses U+0000 in text before it sends anything (a DataError without SQLSTATE): the batch is
    written a session at a time as for the server's own refusals, and the error names the session."""
    import sqlite3

    import psycopg

    from agno_storage import AgentSession, SqliteStorage

    src = tmp_path / "src.db"
    store = SqliteStorage("agent_sessions", db_file=src)
    for i in range(5):
        memory = {"runs": [{"run_id": f"r{i}", "messages": [{"role": "user", "content": "hi"}]}]}
        store.upsert(AgentSession(session_id=f"s{i}", user_id="u", memory=memory))
    store.close()
    conn = sqlite3.connect(src)
    conn.execute("UPDATE agent_sessions SET user_id = 'u' || char(0) || 'x' WHERE session_id = 's3'")
    conn.commit()
    conn.close()
    with pytest.raises(InvalidInputError) as info:
        to_agno3(str(src), pg_server.dsn, dst_schema="nultext", workers=0, memory_table=None)
    assert info.value.session_id == "s3"
    with psycopg.connect(pg_server.dsn) as pg:
        written = {r[0] for r in pg.execute("SELECT session_id FROM nultext.agno_sessions")}
    assert "s3" not in written


_AGNO3_PG_WRITES = (
    "import sys\n"
    "from agno.db.postgres import PostgresDb\n"
    "from agno.session.agent import AgentSession\n"
    "db = PostgresDb(db_url='postgresql+psycopg://' + sys.argv[1].partition('://')[2], db_schema=sys.argv[2])\n"
    "db.upsert_session(AgentSession(session_id=sys.argv[3], agent_id='agno3-agent', user_id='carol',\n"
    "    session_data={'session_state': {'cart': ['agno 3 item']}}, metadata={'tenant': 'carol-co'},\n"
    "    created_at=1700000000, updated_at=1700000000))\n"
    "db.db_engine.dispose()\n"
)


def test_a_session_agno3_makes_while_workers_map_ahead_is_never_written_over(pg_server: Any, tmp_path: Path) -> None:
    """What DST held when a batch was mapped is looked at again under the batch's table lock (SHARE ROW
    EXCLUSIVE on agno_sessions), so agno 3's session made meanwhile is left as it is and reported."""
    import sqlite3

    import psycopg

    from bench.agno3 import build_source

    dsn, schema, src = pg_server.dsn, "raced", tmp_path / "src.db"
    build_source(src, 10, 2)  # agno 1.8.4-shaped agent sessions
    made: list[str] = []

    def progress(done: int, total: int) -> None:
        if not made:  # after the first batch: agno 3 starts a session under an id not written yet
            with psycopg.connect(dsn) as conn:
                written = {r[0] for r in conn.execute(f"SELECT session_id FROM {schema}.agno_sessions")}
            with sqlite3.connect(src) as source:
                src_ids = {r[0] for r in source.execute("SELECT session_id FROM agent_sessions")}
            made.append(min(src_ids - written))
            agno3_env.run_code(_AGNO3_PG_WRITES, dsn, schema, made[0])

    report = to_agno3(str(src), dsn, dst_schema=schema, batch_size=2, workers=2, progress=progress)
    (theirs,) = made
    assert report.modes["agent"].skipped == 1
    assert [p for p in report.problems if f"{theirs!r}" in p and "agno 3's own session" in p]
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            f"SELECT user_id, metadata FROM {schema}.agno_sessions WHERE session_id = %s",
            (theirs,),
        ).fetchone()
        runs = conn.execute(f"SELECT count(*) FROM {schema}.agno_runs WHERE session_id = %s", (theirs,)).fetchone()
    assert row == ("carol", {"tenant": "carol-co"}) and runs == (0,)


def test_a_postgres_memory_table_is_read_after_a_migration_longer_than_the_servers_idle_timeouts(
    pg_server: Any,
) -> None:
    """agno 1.8.4's PostgresMemoryDb table is read last, after every batch: no source connection idles open (in a
    transaction or not) meanwhile, which a server's ``idle_session_timeout`` or
    ``idle_in_transaction_session_timeout`` would end."""
    import time

    import psycopg

    from tests.agno3_sources import run_memory_v2_agent_turn
    from tests.pgserver import create_database

    url = create_database(pg_server, "agno3_idle_source")
    memory_id = run_memory_v2_agent_turn(url, "s-idle", "user-1", "likes tea")["memory_id"]
    timeouts = "-c%20idle_session_timeout%3D500%20-c%20idle_in_transaction_session_timeout%3D500"
    src = url + ("&" if "?" in url else "?") + "options=" + timeouts
    report = to_agno3(src, url, dst_schema="agno3", workers=0, progress=lambda done, total: time.sleep(1.5))
    assert report.modes["memory_table"].memories == 1
    with psycopg.connect(url) as conn:
        held = conn.execute("SELECT user_id FROM agno3.agno_memories WHERE memory_id = %s", (memory_id,)).fetchone()
    assert held == ("user-1",)


def test_a_source_session_stored_with_an_empty_id_stops_the_migration_as_a_corrupt_row_naming_its_table(
    pg_server: Any,
) -> None:
    """agno 1.8.4's PostgresStorage stores a session_id of '' when given one: the run stops before DST is
    opened with the CorruptRowError export raises for it, naming the table and column and how to remove it."""
    import subprocess
    import sys

    import psycopg

    from agno_storage.errors import CorruptRowError
    from agno_storage.models import Mode
    from tests.pgserver import create_database

    url = create_database(pg_server, "agno3_empty_id")
    code = (
        "import sys\nfrom agno.storage.postgres import PostgresStorage\n"
        "from agno.storage.session.agent import AgentSession\n"
        "st = PostgresStorage(table_name='Agent_Sessions', db_url='postgresql+psycopg://'"
        " + sys.argv[1].partition('://')[2], mode='agent')\n"
        "for sid in ('s1', ''):\n"
        "    st.upsert(AgentSession(session_id=sid, user_id='u', agent_id='a', memory={'runs': []}))\n"
        "st.db_engine.dispose()\n"
    )
    subprocess.run([sys.executable, "-c", code, url], check=True)  # agno 1.8.4 writes the source
    with pytest.raises(CorruptRowError) as info:
        to_agno3(url, url, tables={Mode.AGENT: "Agent_Sessions"}, dst_schema="agno3", workers=0)
    error = info.value
    assert (error.table, error.session_id, error.column) == ("Agent_Sessions", "", "session_id")
    assert "delete('')" in str(error)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regnamespace('agno3')").fetchone() == (None,)


def test_the_batch_lock_refused_or_its_connection_lost_is_a_typed_error(pg_server: Any, tmp_path: Path) -> None:
    """Each batch first locks agno_sessions: a role that may only read DST is refused that lock, and a connection
    the server ended between two batches is lost at it; both are the package's errors, not the driver's."""
    import psycopg
    from psycopg import sql

    from agno_storage.errors import ConnectionLostError, StorageError
    from bench.agno3 import build_source
    from tests.pgserver import create_database, login_role

    src = tmp_path / "src.db"
    build_source(src, 6, 1)
    url = create_database(pg_server, "agno3_batch_lock")
    to_agno3(str(src), url, dst_schema="agno3", workers=0)
    with login_role(url, "reader") as (role, _):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA agno3 TO {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA agno3 TO {}").format(sql.Identifier(role)))
        reader = url.replace("postgres@", f"{role}@", 1)
        assert to_agno3(str(src), reader, dst_schema="agno3", dry_run=True).total("unchanged") == 6
        with pytest.raises(StorageError, match="permission denied") as refused:
            to_agno3(str(src), reader, dst_schema="agno3", workers=0)
        assert refused.value.table == "agno_sessions"
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM agno3.agno_sessions").fetchone() == (6,)

    def end_the_writers_connection(done: int, total: int) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )

    with pytest.raises(ConnectionLostError):
        # A worker maps the batches ahead: what DST holds of the next one was read before the connection ended.
        to_agno3(str(src), url, dst_schema="again", workers=1, batch_size=2, progress=end_the_writers_connection)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM again.agno_sessions").fetchone() == (2,)
