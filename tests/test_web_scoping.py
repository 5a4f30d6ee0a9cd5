"""Owner scoping of ``agno-storage serve`` against a file another program laid out: a user's token reads that
user's sessions and runs only, whatever the file's columns compare by."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agno_storage.web.auth import parse_tokens
from tests.test_web_api import FIXTURES, Serve, location
from tests.web_client import get

ALICE = "alice-token-0123456789"


@pytest.mark.parametrize(("collation", "other_user"), [("NOCASE", "ALICE"), ("RTRIM", "alice ")])
def test_a_user_token_never_reads_another_users_go_runs_through_a_case_blind_column(
    tmp_path: Path, serve: Serve, collation: str, other_user: str
) -> None:
    db = tmp_path / "go.db"
    shutil.copy(FIXTURES / "go_agent_conversation.db", db)
    with sqlite3.connect(db) as conn:
        # Another user's Go run, in a session of its own (no session row), in an agent_runs table whose
        # user_id compares without case (or trailing spaces), as another program may declare it.
        names = [r[1] for r in conn.execute("PRAGMA table_info(agent_runs)")]
        row = dict(zip(names, conn.execute("SELECT * FROM agent_runs LIMIT 1").fetchone(), strict=True))
        row.update(id="their-run", session_id="their-session", user_id=other_user)
        conn.execute(f"INSERT INTO agent_runs VALUES ({', '.join('?' for _ in names)})", list(row.values()))
        ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'agent_runs'").fetchone()[0]
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute(
            "UPDATE sqlite_master SET sql = ? WHERE name = 'agent_runs'",
            (ddl.replace("user_id TEXT,", f"user_id TEXT COLLATE {collation},", 1),),
        )
    with serve(str(db), parse_tokens(f"{ALICE} alice\n")) as base:
        status, body = get(base, "/api/v1/sessions/their-session/history", ALICE, table="agent_sessions")
        assert status != 200 and "their-run" not in str(body), body
        assert "agent_runs" in body["error"]["message"] and collation in body["error"]["message"], body
        # Not taken for the sessions table made again: no reader is made anew (and kept open) per request.
        before = len(os.listdir("/proc/self/fd"))
        for _ in range(30):
            assert get(base, "/api/v1/sessions/their-session/history", ALICE, table="agent_sessions")[0] == 500
        assert len(os.listdir("/proc/self/fd")) < before + 10


def test_another_users_damaged_go_run_under_a_users_session_id_never_fails_that_users_reads(
    tmp_path: Path, serve: Serve
) -> None:
    """Bob's Go run under alice's session id is his, not part of her conversation: damaged (a time stored as
    text by another program), it must not make her history or search an error, as his damaged row would not."""
    from agno_storage import Mode, SqliteStorage
    from tests.sessions import make_session

    db = tmp_path / "go.db"
    shutil.copy(FIXTURES / "go_agent_conversation.db", db)
    with SqliteStorage("agent_sessions", db_file=db) as store:
        memory = {"runs": [{"run_id": "r", "messages": [{"role": "user", "content": "zebras of alice"}]}]}
        store.upsert(make_session(Mode.AGENT, "alice-1", "alice", memory=memory))
    with sqlite3.connect(db) as conn:
        names = [r[1] for r in conn.execute("PRAGMA table_info(agent_runs)")]
        row = dict(zip(names, conn.execute("SELECT * FROM agent_runs LIMIT 1").fetchone(), strict=True))
        row.update(id="bobs-run", session_id="alice-1", user_id="bob", created_at="yesterday")
        conn.execute(f"INSERT INTO agent_runs VALUES ({', '.join('?' for _ in names)})", list(row.values()))
    with serve(str(db), parse_tokens(f"{ALICE} alice\n")) as base:
        status, body = get(base, "/api/v1/sessions/alice-1/history", ALICE, table="agent_sessions")
        assert status == 200, body
        assert [m["content"] for m in body["messages"]] == ["zebras of alice"]
        status, body = get(base, "/api/v1/search", ALICE, table="agent_sessions", q="zebras")
        assert status == 200, body
        assert [(h["session_id"], h["user_id"]) for h in body["hits"]] == [("alice-1", "alice")]


def test_a_table_whose_owners_compare_case_blind_is_listed_apart_and_the_others_are_served(
    tmp_path: Path, serve: Serve
) -> None:
    """No store opens a table whose user_id compares without case: the server lists it under unreadable,
    with why, and its page opens on a table it can read instead of failing."""
    from agno_storage import Mode, SqliteStorage
    from tests.sessions import make_session
    from tests.web_client import get_page

    db = tmp_path / "two.db"
    with SqliteStorage("agent_sessions", db_file=db) as store:
        store.upsert(make_session(Mode.AGENT, "a-1", "alice"))
    with SqliteStorage("team_sessions", db_file=db, mode=Mode.TEAM) as store:
        store.upsert(make_session(Mode.TEAM, "t-1", "alice"))
    with sqlite3.connect(db) as conn:
        ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'agent_sessions'").fetchone()[0]
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute(
            "UPDATE sqlite_master SET sql = ? WHERE name = 'agent_sessions'",
            (ddl.replace("user_id TEXT", "user_id TEXT COLLATE NOCASE", 1),),
        )
    with serve(str(db)) as base:
        status, body = get(base, "/api/v1/tables")
        assert status == 200 and [t["name"] for t in body["tables"]] == ["team_sessions"], body
        [(name, reason)] = [(u["name"], u["reason"]) for u in body["unreadable"]]
        assert name == "agent_sessions" and "NOCASE" in reason
        status, _, page = get_page(base, "/")
        assert status == 200 and "t-1" in page and "NOCASE" in page
        status, body = get(base, "/api/v1/sessions")
        assert status == 200 and [s["session_id"] for s in body["sessions"]] == ["t-1"], body


@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.parametrize(
    ("declared", "reason_says"),
    [("character varying COLLATE case_blind", "case_blind"), ("character(8)", "ignores trailing spaces")],
)
def test_a_postgres_table_whose_owners_compare_case_blind_is_listed_apart(
    make_store: Any, pg_server: Any, declared: str, reason_says: str
) -> None:
    """The same on PostgreSQL, for a user_id of a nondeterministic ICU collation, or of character(n), which
    ignores trailing spaces ('alice ' would read alice's sessions)."""
    import psycopg
    from psycopg import sql

    from agno_storage import Mode
    from agno_storage.web.source import open_source
    from tests.sessions import make_session

    blind, fine = make_store(Mode.AGENT), make_store(Mode.TEAM)
    blind.upsert(make_session(Mode.AGENT, "a-1", "alice"))
    fine.upsert(make_session(Mode.TEAM, "t-1", "alice"))
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE COLLATION IF NOT EXISTS case_blind (provider = icu, locale = 'und-u-ks-level2', deterministic = false)"
        )
        conn.execute(
            sql.SQL("ALTER TABLE {} ALTER COLUMN user_id TYPE {}").format(
                sql.SQL(blind.qualified_table), sql.SQL(declared)
            )
        )
    source = open_source(location(blind), schema_name=blind.schema)
    try:
        tables = source.tables()
    finally:
        source.close()
    assert fine.table_name in [t.name for t in tables.readable]
    assert blind.table_name not in [t.name for t in tables.readable]
    [reason] = [why for name, why in tables.unreadable if name == blind.table_name]
    assert reason_says in reason


def test_a_sqlite_table_of_a_type_the_store_refuses_is_listed_apart(tmp_path: Path) -> None:
    """A sessions table with created_at declared TEXT, which no store opens, was offered as readable."""
    from agno_storage import Mode
    from agno_storage.modes import SPECS
    from agno_storage.web.source import open_source

    db = tmp_path / "s.db"
    columns = ", ".join(f"{c.name} {'TEXT' if c.name == 'created_at' else c.decl}" for c in SPECS[Mode.AGENT].columns)
    with sqlite3.connect(db) as conn:
        conn.execute(f"CREATE TABLE agent_sessions ({columns})")
    conn.close()
    source = open_source(str(db))
    try:
        tables = source.tables()
    finally:
        source.close()
    assert tables.readable == ()
    [(name, reason)] = tables.unreadable
    assert name == "agent_sessions" and "created_at is declared 'TEXT'" in reason
