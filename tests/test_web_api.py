"""The HTTP API of ``agno-storage serve``, through a real server on a loopback port, on both engines."""

from __future__ import annotations

import importlib.util
import json
import re
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agno_storage import BaseStorage, InvalidInputError, Mode, SqliteStorage
from agno_storage.web.app import create_app
from agno_storage.web.auth import Tokens, parse_tokens
from agno_storage.web.bodies import ErrorBody, SessionBody, SessionsPage, TablesBody, make_converter
from agno_storage.web.run import serving
from agno_storage.web.source import SqliteSource, open_source
from agno_storage.web.table_reader import Cursor, decode_cursor, encode_cursor
from tests.conftest import StoreFactory
from tests.sessions import make_session
from tests.support import sessions_table_named_agent_runs
from tests.web_client import get, get_page, wait_until_up

#: Whether agno_storage.usage is installed: until it is, /api/v1/usage answers 501.
HAS_USAGE = importlib.util.find_spec("agno_storage.usage") is not None
ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
BASE_TIME = 1_700_000_000
USERS = ("user-1", "user-2", "user-3")

Serve = Callable[..., AbstractContextManager[str]]


def conversation(session_id: str) -> dict[str, Any]:
    """An agno 1.x memory with one run: a user question, a tool call, its result and the answer."""
    return {
        "runs": [
            {
                "run_id": f"run-{session_id}",
                "created_at": BASE_TIME,
                "messages": [
                    {"role": "user", "content": f"question about zebras in {session_id}"},
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {"id": "call-1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
                        ],
                    },
                    {"role": "tool", "content": "zebras have stripes", "tool_call_id": "call-1", "tool_name": "lookup"},
                    {"role": "assistant", "content": f"answer for {session_id}"},
                ],
            }
        ]
    }


def fill(store: BaseStorage, count: int = 30) -> None:
    """``count`` sessions: three users in turn, two agents, created_at shared by each three (ties)."""
    store.upsert_many(
        make_session(
            Mode.AGENT,
            f"s-{i:03d}",
            USERS[i % 3],
            agent_id=f"agent-{i % 2}",
            created_at=BASE_TIME + (i // 3) * 100,
            memory=conversation(f"s-{i:03d}"),
        )
        for i in range(count)
    )


def location(store: BaseStorage) -> str:
    if isinstance(store, SqliteStorage):
        assert store.db_path is not None
        return str(store.db_path)
    from agno_storage import PostgresStorage

    assert isinstance(store, PostgresStorage)
    return store.db_url


@pytest.fixture
def filled(make_store: StoreFactory) -> BaseStorage:
    store = make_store(Mode.AGENT)
    fill(store)
    return store


def all_pages(base: str, table: str, token: str | None = None, **query: Any) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        status, body = get(base, "/api/v1/sessions", token, table=table, cursor=cursor, **query)
        assert status == 200, body
        page = make_converter().structure(body, SessionsPage)
        pages.append(
            [{"session_id": s.session_id, "user_id": s.user_id, "entity_id": s.entity_id} for s in page.sessions]
        )
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


# --- cursors ------------------------------------------------------------------


@given(
    created_at=st.none() | st.integers(-(2**63), 2**63 - 1),
    session_id=st.text(st.characters(exclude_categories=("Cs",)), min_size=1),
)
def test_a_cursor_round_trips(created_at: int | None, session_id: str) -> None:
    cursor = Cursor(created_at=created_at, session_id=session_id)
    text = encode_cursor(cursor)
    assert text.isascii() and text == quote(text, safe="")  # fits in a URL as it is
    assert decode_cursor(text) == cursor


@given(st.text())
def test_any_other_cursor_text_is_a_bad_request_never_a_crash(text: str) -> None:
    try:
        decode_cursor(text)
    except InvalidInputError:
        pass


# --- tables ------------------------------------------------------------------


def test_tables_lists_every_sessions_table_with_its_mode(tmp_path: Path, serve: Serve) -> None:
    db = tmp_path / "two.db"
    with (
        SqliteStorage("agent_sessions", db_file=db) as agents,
        SqliteStorage("team_sessions", db_file=db, mode="team") as teams,
    ):
        agents.upsert(make_session(Mode.AGENT, "a"))
        teams.upsert(make_session(Mode.TEAM, "t"))
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    with serve(str(db)) as base:
        status, body = get(base, "/api/v1/tables")
        assert status == 200
        tables = make_converter().structure(body, TablesBody).tables
        assert [(t.name, t.mode, t.rows, t.entity_column) for t in tables] == [
            ("agent_sessions", "agent", 1, "agent_id"),
            ("team_sessions", "team", 1, "team_id"),
        ]
        # Two tables: which one is not guessed.
        status, body = get(base, "/api/v1/sessions")
        assert status == 400 and body["error"]["code"] == "bad_request" and "table=" in body["error"]["message"]
        assert get(base, "/api/v1/sessions", table="team_sessions")[1]["sessions"][0]["session_id"] == "t"


@pytest.mark.parametrize("name", ["agent_runs", "AGENT_RUNS"])
def test_a_sessions_table_named_agent_runs_is_listed_as_unreadable_with_how_to_rename_it(
    tmp_path: Path, serve: Serve, name: str
) -> None:
    """A sessions table an earlier build let be named agent_runs: the list left it out without a word (or, in
    upper case, said only that the name is refused), and a history, search or usage of agent_sessions beside it
    failed with "no such column: id" as though agent_sessions had changed. Now the list says what it is and
    how to rename it, and those reads say so too."""
    db = tmp_path / "old.db"
    sessions_table_named_agent_runs(db, name, beside=True)
    with serve(str(db)) as base:
        status, body = get(base, "/api/v1/tables")
        assert status == 200 and [t["name"] for t in body["tables"]] == ["agent_sessions"]
        [(unreadable, reason)] = [(u["name"], u["reason"]) for u in body["unreadable"]]
        assert unreadable == name and f"ALTER TABLE {name} RENAME TO agent_sessions_renamed" in reason
        assert get(base, "/api/v1/sessions", table="agent_sessions")[1]["sessions"][0]["session_id"] == "s1"
        for path, query in [
            ("/api/v1/sessions/s1/history", {}),
            ("/api/v1/search", {"q": "zebras"}),
            ("/api/v1/usage", {}),
        ]:
            status, body = get(base, path, table="agent_sessions", **query)
            if path.endswith("usage") and not HAS_USAGE:
                continue
            assert status == 500 and body["error"]["table"] == name, (path, body)
            assert f"ALTER TABLE {name} RENAME TO agent_sessions_renamed" in body["error"]["message"], (path, body)


def test_a_go_written_file_is_served_as_written(serve: Serve) -> None:
    with serve(str(FIXTURES / "go_team.db")) as base:
        (table,) = get(base, "/api/v1/tables")[1]["tables"]
        assert (table["name"], table["mode"], table["layout"]) == ("team_sessions", "team", "agno-golang")
        with sqlite3.connect(FIXTURES / "go_team.db") as conn:
            expected = [
                r[0] for r in conn.execute("SELECT session_id FROM team_sessions ORDER BY created_at DESC, session_id")
            ]
        got = [s["session_id"] for page in all_pages(base, "team_sessions", limit=4) for s in page]
        assert got == expected
        status, body = get(base, f"/api/v1/sessions/{expected[0]}", table="team_sessions")
        assert status == 200 and body["session"]["session_id"] == expected[0] and "team_data" in body["session"]


# --- sessions and pagination, both engines ----------------------------------------


def test_pages_walk_every_session_newest_first(filled: BaseStorage, serve: Serve) -> None:
    with serve(location(filled)) as base:
        pages = all_pages(base, filled.table_name, limit=7)
    assert [len(p) for p in pages] == [7, 7, 7, 7, 2]
    assert [s["session_id"] for p in pages for s in p] == [s.session_id for s in filled.list()]


def test_sessions_without_created_at_come_last_and_page_too(filled: BaseStorage, serve: Serve) -> None:
    table_sql = filled.statements.delete[len("DELETE FROM ") :]
    with filled.transaction() as conn:
        conn.execute(
            f"UPDATE {table_sql} SET created_at = NULL WHERE session_id IN ('s-003', 's-011', 's-012', 's-020', 's-029')"
        )
    expected = [s.session_id for s in filled.list()]
    assert expected[-5:] == ["s-003", "s-011", "s-012", "s-020", "s-029"]
    with serve(location(filled)) as base:
        for limit in (1, 4, 25, 27, 30, 31, 100):  # 30 and more: all on the first page, each once
            pages = all_pages(base, filled.table_name, limit=limit)
            assert [s["session_id"] for p in pages for s in p] == expected, limit
            assert all(len(p) == limit for p in pages[:-1])


def test_filters_narrow_the_list(filled: BaseStorage, serve: Serve) -> None:
    table = filled.table_name
    with serve(location(filled)) as base:
        for query, expected in [
            ({"user_id": "user-2"}, filled.list(user_id="user-2")),
            ({"entity_id": "agent-1"}, filled.list(entity_id="agent-1")),
            ({"user_id": "user-1", "entity_id": "agent-0"}, filled.list(user_id="user-1", entity_id="agent-0")),
        ]:
            got = [s["session_id"] for p in all_pages(base, table, limit=4, **query) for s in p]
            assert got == [s.session_id for s in expected], query
        # since is inclusive, until exclusive; ISO 8601 or Unix seconds.
        since, until = BASE_TIME + 300, BASE_TIME + 600
        expected_ids = [
            s.session_id for s in filled.list() if s.created_at is not None and since <= s.created_at < until
        ]
        assert len(expected_ids) == 9
        got = [s["session_id"] for p in all_pages(base, table, since=since, until=until) for s in p]
        assert got == expected_ids
        got = [
            s["session_id"]
            for p in all_pages(base, table, since="2023-11-14T22:18:20Z", until="2023-11-14T22:23:20+00:00")
            for s in p
        ]
        assert got == expected_ids
        # A time within a second bounds exactly: the sessions at or after it, before it (times are whole seconds).
        for first, last in ((299.5, 599.5), (300.000001, 600.25), (299.999999, 599.999999)):
            since_text, until_text = (
                datetime.fromtimestamp(BASE_TIME + t, tz=UTC).isoformat(timespec="microseconds") for t in (first, last)
            )
            expected_ids = [
                s.session_id
                for s in filled.list()
                if s.created_at is not None and BASE_TIME + first <= s.created_at < BASE_TIME + last
            ]
            got = [s["session_id"] for p in all_pages(base, table, since=since_text, until=until_text) for s in p]
            assert got == expected_ids, (since_text, until_text)


def test_pagination_is_stable_while_a_writer_adds_sessions(filled: BaseStorage, serve: Serve) -> None:
    before = [s.session_id for s in filled.list()]
    table = filled.table_name
    seen: list[str] = []
    with serve(location(filled)) as base:
        cursor = None
        written = 0
        while True:
            status, body = get(base, "/api/v1/sessions", table=table, limit=6, cursor=cursor)
            assert status == 200
            seen += [s["session_id"] for s in body["sessions"]]
            # A writer adds sessions between pages, some at the cursor's very time.
            filled.upsert(make_session(Mode.AGENT, f"new-{written}", "user-1"))
            filled.upsert(make_session(Mode.AGENT, f"tie-{written}", "user-1", created_at=BASE_TIME + 500))
            written += 1
            cursor = body["next_cursor"]
            if cursor is None:
                break
    assert len(seen) == len(set(seen))
    assert [s for s in seen if s.startswith("s-")] == before
    assert not any(s.startswith("new-") for s in seen)


def test_one_session_has_all_its_columns(filled: BaseStorage, serve: Serve) -> None:
    with serve(location(filled)) as base:
        status, body = get(base, "/api/v1/sessions/s-004", table=filled.table_name)
    assert status == 200
    got = make_converter().structure(body, SessionBody)
    stored = filled.read("s-004")
    assert stored is not None
    assert got.session == make_converter().unstructure(stored)
    assert (got.table, got.mode, got.entity_id) == (filled.table_name, "agent", "agent-0")


def test_errors_have_one_shape_and_the_right_status(filled: BaseStorage, serve: Serve) -> None:
    table = filled.table_name
    conv = make_converter()
    with serve(location(filled)) as base:
        cases = [
            ("/api/v1/sessions/nope", {"table": table}, 404, "not_found"),
            ("/api/v1/sessions/s-001", {"table": "no_such_table"}, 404, "not_found"),
            ("/api/v1/sessions", {"table": "no_such_table"}, 404, "not_found"),
            ("/api/v1/sessions", {"table": table, "limit": "0"}, 400, "bad_request"),
            ("/api/v1/sessions", {"table": table, "limit": "many"}, 400, "bad_request"),
            ("/api/v1/sessions", {"table": table, "cursor": "not-a-cursor"}, 400, "bad_request"),
            ("/api/v1/sessions", {"table": table, "since": "yesterday"}, 400, "bad_request"),
            ("/api/v1/sessions", {"table": table, "sort": "asc"}, 400, "bad_request"),
            ("/api/v1/nothing", {}, 404, "not_found"),
        ]
        for path, query, status, code in cases:
            got_status, body = get(base, path, **query)
            assert (got_status, body["error"]["code"]) == (status, code), (path, query, body)
            conv.structure(body, ErrorBody)  # exactly the documented keys
        assert get(base, "/api/v1/sessions/nope", table=table)[1]["error"]["session_id"] == "nope"


def test_a_locked_database_is_503_busy(tmp_path: Path) -> None:
    db = tmp_path / "locked.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
    with SqliteStorage("agent_sessions", db_file=db) as store:
        store.upsert(make_session(Mode.AGENT, "a"))
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
    source = SqliteSource(db, busy_timeout=0.05)
    try:
        with serving(create_app(source)) as base:
            assert get(base, "/api/v1/sessions", table="agent_sessions")[0] == 200
            holder = sqlite3.connect(db, isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
            try:
                status, body = get(base, "/api/v1/sessions", table="agent_sessions")
                assert (status, body["error"]["code"]) == (503, "busy")
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            assert get(base, "/api/v1/sessions", table="agent_sessions")[0] == 200
    finally:
        source.close()


def test_the_server_cannot_write(filled: BaseStorage) -> None:
    from agno_storage import StorageError

    source = open_source(location(filled))
    try:
        store = source.reader(filled.table_name).store
        assert store.read("s-001") is not None
        with pytest.raises(StorageError):
            store.upsert(make_session(Mode.AGENT, "written-by-the-server"))
        with pytest.raises(StorageError):
            store.delete("s-001")
    finally:
        source.close()
    assert filled.read("written-by-the-server") is None
    assert filled.read("s-001") is not None


def test_worker_threads_that_end_leave_no_open_connections(tmp_path: Path) -> None:
    import os
    import threading

    db = tmp_path / "threads.db"
    with SqliteStorage("agent_sessions", db_file=db) as store:
        fill(store, 3)
    source = SqliteSource(db)

    def open_files() -> int:
        fds = Path("/proc/self/fd")
        return sum(1 for fd in fds.iterdir() if os.path.realpath(fd) == str(db.resolve()))

    try:
        for _ in range(30):
            # A server's worker thread: it reads once and ends.
            worker = threading.Thread(target=lambda: source.reader("agent_sessions").get("s-001", None))
            worker.start()
            worker.join()
        source.reader("agent_sessions").get("s-001", None)
        assert open_files() <= 3
    finally:
        source.close()
    assert open_files() == 0


def test_a_postgres_server_that_goes_away_is_503(tmp_path: Path) -> None:
    from agno_storage import PostgresStorage
    from agno_storage.web.source import PostgresSource
    from tests.pgserver import require_pg, running_server

    require_pg()
    with running_server() as own:
        with PostgresStorage("agent_sessions", db_url=own.dsn) as store:
            fill(store, 3)
        source = PostgresSource(own.dsn, connect_timeout=1.0)
        try:
            with serving(create_app(source)) as base:
                assert get(base, "/api/v1/sessions", table="agent_sessions")[0] == 200
                own.stop()
                for path in ("/api/v1/sessions", "/api/v1/sessions/s-001", "/api/v1/tables", "/healthz"):
                    status, body = get(base, path, table="agent_sessions" if "sessions" in path else None)
                    assert (status, body["error"]["code"]) == (503, "unavailable"), (path, body)
        finally:
            source.close()


def test_the_file_is_not_written(tmp_path: Path, serve: Serve) -> None:
    db = tmp_path / "ro.db"
    with SqliteStorage("agent_sessions", db_file=db) as store:
        fill(store, 5)
    for extra in ("-wal", "-shm"):
        Path(str(db) + extra).unlink(missing_ok=True)
    before = db.read_bytes()
    db.chmod(0o444)
    with serve(str(db)) as base:
        assert len(get(base, "/api/v1/sessions", table="agent_sessions")[1]["sessions"]) == 5
        assert get(base, "/api/v1/sessions/s-001", table="agent_sessions")[0] == 200
    assert db.read_bytes() == before


# --- tokens -----------------------------------------------------------------

ALL = "all-users-token-0123456789"
ONE = "user-one-token-0123456789"


def scoped_tokens() -> Tokens:
    return parse_tokens(f"# who may read\n{ALL} *\n{ONE} user-1  # one user\n")


def test_without_a_valid_token_every_endpoint_is_401(filled: BaseStorage, serve: Serve) -> None:
    table = filled.table_name
    with serve(location(filled), scoped_tokens()) as base:
        for path, query in [
            ("/api/v1/tables", {}),
            ("/api/v1/sessions", {"table": table}),
            ("/api/v1/sessions/s-001", {"table": table}),
            ("/api/v1/sessions/s-001/history", {"table": table}),
            ("/api/v1/search", {"table": table, "q": "zebras"}),
            ("/api/v1/usage", {"table": table}),
        ]:
            for token in (None, "wrong-token-0123456789", ALL[:-1]):
                status, body = get(base, path, token, **query)
                assert (status, body["error"]["code"]) == (401, "unauthorized"), (path, token)
            expected = 501 if path.endswith("/usage") and not HAS_USAGE else 200
            assert get(base, path, ALL, **query)[0] == expected, path
        assert get(base, "/healthz") == (200, {"status": "ok"})


def test_a_user_token_never_sees_another_users_session(filled: BaseStorage, serve: Serve) -> None:
    table = filled.table_name
    mine = {s.session_id for s in filled.list(user_id="user-1")}
    theirs = [s.session_id for s in filled.list() if s.session_id not in mine]
    with serve(location(filled), scoped_tokens()) as base:
        listed = [s for p in all_pages(base, table, ONE, limit=4) for s in p]
        assert {s["session_id"] for s in listed} == mine
        assert {s["user_id"] for s in listed} == {"user-1"}
        status, body = get(base, "/api/v1/sessions", ONE, table=table, user_id="user-2")
        assert (status, body["error"]["code"]) == (403, "forbidden")
        for sid in theirs:
            assert get(base, f"/api/v1/sessions/{sid}", ONE, table=table)[0] == 404
            assert get(base, f"/api/v1/sessions/{sid}/history", ONE, table=table)[0] == 404
        some = sorted(mine)[0]
        assert get(base, f"/api/v1/sessions/{some}", ONE, table=table)[0] == 200
        assert get(base, f"/api/v1/sessions/{some}/history", ONE, table=table)[0] == 200
        status, body = get(base, "/api/v1/search", ONE, table=table, q="zebras")
        assert status == 200 and body["hits"]
        assert {h["session_id"] for h in body["hits"]} <= mine
        status, body = get(base, "/api/v1/search", ONE, table=table, q="zebras", user_id="user-2")
        assert status == 403
        status, body = get(base, "/api/v1/usage", ONE, table=table)
        if HAS_USAGE:
            assert status == 200
            assert sum(d["runs"] for d in body["by_day"]) == len(mine)
            assert {g["user_id"] for g in body["groups"]} == {"user-1"}
            assert sum(d["runs"] for d in get(base, "/api/v1/usage", ALL, table=table)[1]["by_entity"]) == 30
        else:
            assert (status, body["error"]["code"]) == (501, "not_implemented")
        # The all-users token sees everyone.
        assert len([s for p in all_pages(base, table, ALL, limit=50) for s in p]) == 30
        status, body = get(base, "/api/v1/search", ALL, table=table, q="zebras", limit=50)
        assert {h["session_id"] for h in body["hits"]} - mine


def test_the_pages_show_a_user_token_only_its_users_sessions(filled: BaseStorage, serve: Serve) -> None:
    table = filled.table_name
    mine = {s.session_id for s in filled.list(user_id="user-1")}
    theirs = sorted({s.session_id for s in filled.list()} - mine)
    with serve(location(filled), scoped_tokens()) as base:
        # No token: the sign-in form.
        status, url, _ = get_page(base, f"/?table={table}")
        assert status == 200 and "/login" in url
        status, _, page = get_page(base, f"/?table={table}&limit=50", ONE)
        assert status == 200
        assert set(re.findall(r'class="session-link"[^>]*>([^<]+)<', page)) == mine
        status, _, page = get_page(base, f"/sessions/{theirs[0]}?table={table}", ONE)
        assert f"in {theirs[0]}" not in page and "answer for" not in page
        status, _, page = get_page(base, f"/search?table={table}&q=zebras&limit=50", ONE)
        assert set(re.findall(r'class="hit-link"[^>]*>([^<]+)<', page)) == mine
        status, _, page = get_page(base, f"/?table={table}&user_id=user-2", ONE)
        assert status == 403 and "s-0" not in page
        if HAS_USAGE:  # the usage page charts user-1's runs (one a session), not everyone's
            status, _, page = get_page(base, f"/usage?table={table}", ONE)
            by_day = re.search(r'<svg id="usage-by-day".*?</svg>', page, re.S)
            assert status == 200 and by_day is not None, page
            runs = re.findall(r"<title>[^<]*: ([\d,]+) runs</title>", by_day[0])
            assert sum(int(n.replace(",", "")) for n in runs) == len(mine), runs
            assert get_page(base, f"/usage?table={table}&user_id=user-2", ONE)[0] == 403


def test_the_pages_escape_what_the_sessions_hold(make_store: StoreFactory, serve: Serve) -> None:
    store = make_store(Mode.AGENT)
    evil = '<img src=x onerror="alert(1)">'
    store.upsert(
        make_session(
            Mode.AGENT,
            f"id-{evil}",
            f"user-{evil}",
            agent_id=f"agent-{evil}",
            memory={"runs": [{"run_id": "r", "messages": [{"role": "user", "content": f"zebra {evil}"}]}]},
        )
    )
    with serve(location(store)) as base:
        pages = [
            get_page(base, f"/?table={store.table_name}")[2],
            get_page(base, f"/sessions/{quote('id-' + evil, safe='')}?table={store.table_name}")[2],
            get_page(base, f"/search?table={store.table_name}&q=zebra")[2],
        ]
    for page in pages:
        assert "<img" not in page
    assert "zebra &lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in pages[1]


def test_without_tokens_only_loopback_host_names_are_answered(filled: BaseStorage, serve: Serve) -> None:
    import http.client

    with serve(location(filled)) as base:
        port = int(base.rsplit(":", 1)[1])
        for host, status in [
            (f"127.0.0.1:{port}", 200),
            (f"localhost:{port}", 200),
            (f"[::1]:{port}", 200),
            (f"attacker.example:{port}", 400),
            ("attacker.example", 400),
        ]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", f"/api/v1/sessions?table={filled.table_name}", headers={"Host": host})
            response = conn.getresponse()
            body = json.loads(response.read())
            conn.close()
            assert response.status == status, host
            if status == 400:
                assert body["error"]["code"] == "bad_request"


def test_token_files_are_checked() -> None:
    from agno_storage import InvalidInputError

    assert scoped_tokens().principal(ONE) is not None
    assert scoped_tokens().principal("nope") is None
    for bad in ["", "# only a comment\n", "short user-1\n", f"{ALL}\n", f"{ALL} a b\n", f"{ALL} a\n{ALL} b\n"]:
        with pytest.raises(InvalidInputError):
            parse_tokens(bad)


# --- the command ----------------------------------------------------------------


def test_serve_refuses_a_public_address_without_tokens(tmp_path: Path) -> None:
    from agno_storage.cli import main

    assert main(["serve", str(FIXTURES / "go_agent.db"), "--host", "0.0.0.0"]) == 2
    assert main(["serve", str(tmp_path / "missing.db")]) == 1


def test_serve_on_a_port_in_use_is_one_error_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    from agno_storage.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", str(FIXTURES / "go_agent.db"), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("agno-storage: error: cannot listen on '127.0.0.1' port") and err.count("\n") == 1


def test_serve_command_serves_with_tokens(tmp_path: Path) -> None:
    """With --port 0 the system picks the port, and the banner names the one it picked."""
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{ONE} user-1\n", encoding="utf-8")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agno_storage",
            "serve",
            str(FIXTURES / "go_agent.db"),
            "--port",
            "0",
            "--token-file",
            str(tokens),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    banner = proc.stderr.readline()
    found = re.search(r"read-only on http://127\.0\.0\.1:(\d+)/", banner)
    assert found is not None and found.group(1) != "0", banner
    base = f"http://127.0.0.1:{found.group(1)}"
    try:
        wait_until_up(base, proc)
        assert get(base, "/api/v1/tables")[0] == 401
        status, body = get(base, "/api/v1/sessions", ONE)
        assert status == 200 and body["sessions"] and {s["user_id"] for s in body["sessions"]} == {"user-1"}
    finally:
        proc.terminate()
        proc.wait(30)


def test_an_old_table_is_listed_and_read_with_its_missing_columns_as_null(tmp_path: Path, serve: Serve) -> None:
    db = tmp_path / "pre12.db"
    db.write_bytes((FIXTURES / "agno_agent_pre12.db").read_bytes())
    with sqlite3.connect(db) as conn:
        expected = [r[0] for r in conn.execute("SELECT session_id FROM agent_sessions ORDER BY created_at DESC")]
    with serve(str(db)) as base:
        got = [s["session_id"] for page in all_pages(base, "agent_sessions", limit=2) for s in page]
        assert got == expected
        status, body = get(base, f"/api/v1/sessions/{expected[0]}", table="agent_sessions")
        assert status == 200 and body["session"]["session_id"] == expected[0]
        assert body["session"]["team_session_id"] is None
        # Its conversation too, as the store shows it once the table is upgraded; search and usage, which
        # read it through the store, say it needs the upgrade (409), never a 500.
        status, body = get(base, f"/api/v1/sessions/{expected[0]}/history", table="agent_sessions")
        assert status == 200 and body["messages"], body
        upgraded = tmp_path / "upgraded.db"
        upgraded.write_bytes(db.read_bytes())
        with SqliteStorage("agent_sessions", db_file=upgraded) as store:
            store.upgrade_schema()
            want = make_converter().unstructure(store.history(expected[0]))
        assert [(m["role"], m["content"]) for m in body["messages"]] == [(m["role"], m["content"]) for m in want]
        for path, query in (("/api/v1/search", {"q": "the"}), ("/api/v1/usage", {})):
            status, body = get(base, path, table="agent_sessions", **query)
            assert (status, body["error"]["code"]) == (409, "old_schema"), body
        page_status = get_page(base, f"/sessions/{expected[0]}?table=agent_sessions")[0]
        assert page_status == 200


def a_row_of_the_wrong_type(tmp_path: Path) -> Path:
    """A file whose one session, ``bad``, has text for a time (as another program may write it)."""
    db = tmp_path / "corrupt.db"
    with SqliteStorage("agent_sessions", db_file=db) as store:
        store.upsert(make_session(Mode.AGENT, "bad"))
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE agent_sessions SET created_at = 'yesterday'")
    return db


def test_a_listed_row_of_the_wrong_type_is_an_error_naming_it(tmp_path: Path, serve: Serve) -> None:
    db = a_row_of_the_wrong_type(tmp_path)
    with serve(str(db)) as base:
        status, body = get(base, "/api/v1/sessions", table="agent_sessions")
    assert status == 500 and body["error"]["code"] == "error"
    assert (body["error"]["table"], body["error"]["session_id"]) == ("agent_sessions", "bad")
    assert "created_at" in body["error"]["message"]


# --- edges found by trying to break it -------------------------------------------


def base64_json(value: Any) -> str:
    """A cursor's text made by hand: URL-safe base64 of ``value`` as JSON."""
    import base64

    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def test_search_with_the_index_on_and_writes_it_has_not_seen_answers_from_a_scan(
    make_store: StoreFactory, serve: Serve
) -> None:
    """The server's connections cannot write, so the index cannot catch up: the search scans instead (on
    PostgreSQL the read-only transaction's refusal is a ReadOnlyDatabaseError, as on SQLite)."""
    store = make_store(Mode.AGENT)
    store.upsert(make_session(Mode.AGENT, "before", "user-1", memory=conversation("before")))
    store.enable_search()
    store.upsert(make_session(Mode.AGENT, "after", "user-1", memory=conversation("after")))
    with serve(location(store)) as base:
        status, body = get(base, "/api/v1/search", table=store.table_name, q="zebras")
        assert status == 200, body
        assert {h["session_id"] for h in body["hits"]} == {"before", "after"}
        status, html = get_page(base, f"/search?table={store.table_name}&q=zebras")[::2]
        assert status == 200 and "after" in html


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "²"},
        {"limit": "1" * 5000},
        {"since": "²"},
        {"until": "--5"},
        {"since": "9" * 5000},
        {"since": "99999999999999999999"},
        {"cursor": base64_json([2**63, "x"])},
    ],
)
def test_numbers_no_column_holds_are_a_bad_request(filled: BaseStorage, serve: Serve, query: dict[str, str]) -> None:
    with serve(location(filled)) as base:
        status, body = get(base, "/api/v1/sessions", table=filled.table_name, **query)
        assert (status, body["error"]["code"]) == (400, "bad_request"), body
        if "limit" in query:
            status, body = get(base, "/api/v1/search", table=filled.table_name, q="zebras", **query)
            assert (status, body["error"]["code"]) == (400, "bad_request"), body


def test_a_cursor_past_64_bits_is_not_one_this_server_made() -> None:
    for created_at in (2**63, -(2**63) - 1):
        text = base64_json([created_at, "x"])
        with pytest.raises(InvalidInputError):
            decode_cursor(text)


def test_a_session_id_ending_in_history_is_a_session_not_a_history(make_store: StoreFactory, serve: Serve) -> None:
    store = make_store(Mode.AGENT)
    store.upsert(make_session(Mode.AGENT, "x", "user-1", memory=conversation("x")))
    store.upsert(make_session(Mode.AGENT, "x/history", "user-1", memory=conversation("x/history")))
    table = store.table_name
    with serve(location(store)) as base:
        status, body = get(base, "/api/v1/sessions/x%2Fhistory", table=table)
        assert status == 200 and body["session"]["session_id"] == "x/history", body
        status, body = get(base, "/api/v1/sessions/x/history", table=table)
        assert status == 200 and body["session_id"] == "x" and body["messages"], body
        status, body = get(base, "/api/v1/sessions/x%2Fhistory/history", table=table)
        assert status == 200 and body["session_id"] == "x/history", body
        assert "question about zebras in x/history" in [m["content"] for m in body["messages"]]
        assert get(base, "/healthz", x="1")[0] == 400


def test_a_user_token_is_not_told_how_many_sessions_other_users_have(filled: BaseStorage, serve: Serve) -> None:
    with serve(location(filled), scoped_tokens()) as base:
        status, body = get(base, "/api/v1/tables", ONE)
        assert status == 200 and body["tables"] and all(t["rows"] is None for t in body["tables"])
        everyone = {t["name"]: t["rows"] for t in get(base, "/api/v1/tables", ALL)[1]["tables"]}
        assert everyone[filled.table_name] == 30  # (a PostgreSQL schema holds other tests' tables too)
        html = get_page(base, f"/?table={filled.table_name}", ONE)[2]
        assert "30 rows" not in html and filled.table_name in html
        assert "30 rows" in get_page(base, f"/?table={filled.table_name}", ALL)[2]


def test_a_sign_in_form_past_its_limit_is_refused_unread(filled: BaseStorage, serve: Serve) -> None:
    import urllib.error
    import urllib.request

    from agno_storage.web.pages import LOGIN_BODY_LIMIT

    with serve(location(filled), scoped_tokens()) as base:
        for body in (b"token=" + b"x" * LOGIN_BODY_LIMIT, f"token={ONE}".encode()):
            request = urllib.request.Request(base + "/login", data=body, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            assert status == (413 if len(body) > LOGIN_BODY_LIMIT else 200)


def test_a_sign_in_posted_by_another_sites_page_is_refused(filled: BaseStorage, serve: Serve) -> None:
    """Login CSRF: another site's page posting its own token would sign the browser in as that user."""
    import urllib.error
    import urllib.request

    class Stay(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None  # see the sign-in's own answer, not the page it redirects to

    opener = urllib.request.build_opener(Stay)
    with serve(location(filled), scoped_tokens()) as base:
        own = base.split("://", 1)[1].split("/", 1)[0]
        cases: dict[str, dict[str, str]] = {
            "cross-site": {"Sec-Fetch-Site": "cross-site"},
            "same-site": {"Sec-Fetch-Site": "same-site"},
            "another origin": {"Origin": "https://evil.example"},  # a browser without Sec-Fetch-Site
            "origin null": {"Origin": "null"},
            "same-origin": {"Sec-Fetch-Site": "same-origin"},
            "own origin": {"Origin": f"http://{own}"},
            "through a proxy": {"Origin": "https://agno.example", "X-Forwarded-Host": "agno.example"},
            "proxy port": {"Origin": "https://agno.example", "X-Forwarded-Host": "agno.example:443"},
            "rfc 7239": {"Origin": "https://agno.example", "Forwarded": 'for=10.0.0.1;host="agno.example";proto=https'},
            "silent client": {},
        }
        answers = {}
        for case, headers in cases.items():
            request = urllib.request.Request(base + "/login", data=f"token={ONE}".encode(), headers=headers)
            try:
                with opener.open(request, timeout=30) as response:
                    answers[case] = (response.status, response.headers.get("set-cookie"))
            except urllib.error.HTTPError as exc:
                answers[case] = (exc.code, exc.headers.get("set-cookie"))
        for case in ("cross-site", "same-site", "another origin", "origin null"):
            assert answers[case] == (403, None), case
        for case in ("same-origin", "own origin", "through a proxy", "proxy port", "rfc 7239", "silent client"):
            status, cookie = answers[case]
            assert status == 303 and cookie is not None and cookie.startswith(f"agno_storage_token={ONE}"), case


def test_a_postgres_urls_own_options_are_kept_beside_read_only() -> None:
    from agno_storage.web.source import READ_ONLY_OPTION, read_only_url

    url = read_only_url("postgresql://u@h/db?options=-c%20search_path%3Dai&sslmode=disable", statement_timeout=2.5)
    assert url == (
        "postgresql://u@h/db?sslmode=disable&options="
        + quote(f"-c search_path=ai {READ_ONLY_OPTION} -c statement_timeout=2500", safe="")
    )
    assert read_only_url("postgresql:///db?host=/tmp/s").startswith("postgresql:///db?host=/tmp/s&options=")
    # libpq percent-decodes only: a '+' in another parameter (a password) stays a '+'.
    assert read_only_url("postgresql://u@h/db?password=s3cr+t&sslmode=require").startswith(
        "postgresql://u@h/db?password=s3cr+t&sslmode=require&options="
    )


def test_a_filter_holding_nul_finds_nothing_on_either_engine(filled: BaseStorage, serve: Serve) -> None:
    """PostgreSQL text cannot hold U+0000: no session has such an id or owner, on SQLite as there."""
    table = filled.table_name
    with serve(location(filled)) as base:
        for key in ("user_id", "entity_id"):
            status, body = get(base, "/api/v1/sessions", table=table, **{key: "a\x00b"})
            assert (status, body["sessions"]) == (200, []), body
        for path in ("/api/v1/sessions/a%00b", "/api/v1/sessions/a%00b/history"):
            status, body = get(base, path, table=table)
            assert status == 404 and body["error"]["code"] == "not_found", body
        cursor = encode_cursor(Cursor(created_at=2**40, session_id="a\x00b"))
        status, body = get(base, "/api/v1/sessions", table=table, cursor=cursor)
        if isinstance(filled, SqliteStorage):  # a session of that id could be there: the page after it
            assert status == 200, body
        else:  # no session of PostgreSQL's has it: no page ended there
            assert status == 400 and "handed out" in body["error"]["message"], body
        status, _, html = get_page(base, f"/?table={table}&cursor={cursor}")  # the page says so as a page
        assert status == (200 if isinstance(filled, SqliteStorage) else 400) and "<html" in html.lower()


def test_a_table_name_no_store_takes_is_a_bad_request_on_either_engine(filled: BaseStorage, serve: Serve) -> None:
    """PostgreSQL refuses a name holding NUL as bad data, never a 500; SQLite answers the same."""
    with serve(location(filled)) as base:
        for path, query in (
            ("/api/v1/sessions", {}),
            ("/api/v1/sessions/s-001", {}),
            ("/api/v1/sessions/s-001/history", {}),
            ("/api/v1/search", {"q": "zebras"}),
            ("/api/v1/usage", {}),
        ):
            for name in ("a\x00b", "public.agent_sessions"):
                status, body = get(base, path, table=name, **query)
                assert (status, body["error"]["code"]) == (400, "bad_request"), (path, name, body)
        for page in ("/?table=%00", "/sessions/s-001?table=%00", "/search?q=zebras&table=%00", "/usage?table=%00"):
            status, _, html = get_page(base, page)
            assert status == 400 and "<html" in html.lower(), page


def test_a_table_whose_name_no_store_takes_is_listed_apart_and_never_picked(tmp_path: Path, serve: Serve) -> None:
    db = tmp_path / "archive.db"
    with SqliteStorage("agent_sessions", db_file=db) as store:
        fill(store, 3)
    with sqlite3.connect(db) as conn:  # another program's copy, under a name that needs quoting
        (ddl,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'agent_sessions'").fetchone()
        conn.execute(ddl.replace("agent_sessions", '"Agent-Archive"', 1))
    with serve(str(db)) as base:
        status, body = get(base, "/api/v1/tables")
        assert status == 200
        listing = make_converter().structure(body, TablesBody)
        assert [t.name for t in listing.tables] == ["agent_sessions"]  # every table listed reads
        assert [u.name for u in listing.unreadable] == ["Agent-Archive"] and listing.unreadable[0].reason
        # One table reads: table= may be left out.
        assert len(get(base, "/api/v1/sessions")[1]["sessions"]) == 3
        status, body = get(base, "/api/v1/sessions", table="Agent-Archive")
        assert status == 400 and body["error"]["message"] == listing.unreadable[0].reason
        status, _, html = get_page(base, "/")
        assert status == 200 and "s-001" in html and "Agent-Archive" in html  # the page says why it is not there
        assert get_page(base, "/search?q=zebras")[0] == 200
        assert get_page(base, "/usage")[0] == (200 if HAS_USAGE else 501)


def test_a_search_hit_in_another_users_run_links_to_a_page_that_shows_it(tmp_path: Path, serve: Serve) -> None:
    from agno_storage import agent_runs

    db = tmp_path / "strays.db"
    with SqliteStorage("agent_sessions", db_file=db) as store:
        fill(store, 3)  # s-000 is user-1's
        # A Go Agent's run of user-2 under user-1's session id: user-2's conversation, not user-1's.
        agent_runs.append_run(store, "s-000", "stray giraffes question", "stray answer", user_id="user-2")
    two = "user-two-token-0123456789"
    tokens = parse_tokens(f"{ALL} *\n{ONE} user-1\n{two} user-2\n")

    def hit_pages(token: str) -> list[str]:
        status, _, html = get_page(base, "/search?table=agent_sessions&q=giraffes", token)
        assert status == 200
        return [
            get_page(base, href.replace("&amp;", "&"), token)[2]
            for href in re.findall(r'class="hit-link" href="([^"]+)"', html)
        ]

    with serve(str(db), tokens) as base:
        status, body = get(base, "/api/v1/search", ALL, table="agent_sessions", q="giraffes")
        assert [(h["session_id"], h["user_id"]) for h in body["hits"]] == [("s-000", "user-2")] * len(body["hits"])
        for token in (ALL, two):  # every token that finds the hit is led to a page that shows it
            shown = hit_pages(token)
            assert shown and all("stray giraffes question" in page for page in shown), token
        status, body = get(base, "/api/v1/sessions/s-000/history", ALL, table="agent_sessions", user_id="user-2")
        assert status == 200 and "stray giraffes question" in json.dumps(body)
        # user-1's token finds nothing of it, and may not ask for user-2's view.
        assert hit_pages(ONE) == []
        status, _, html = get_page(base, "/sessions/s-000?table=agent_sessions", ONE)
        assert status == 200 and "giraffes" not in html
        assert get_page(base, "/sessions/s-000?table=agent_sessions&user_id=user-2", ONE)[0] == 403
        status, body = get(base, "/api/v1/sessions/s-000/history", ONE, table="agent_sessions", user_id="user-2")
        assert (status, body["error"]["code"]) == (403, "forbidden")


def test_the_search_page_marks_the_matched_words_not_the_brackets_the_text_holds(tmp_path: Path, serve: Serve) -> None:
    db = tmp_path / "brackets.db"
    text = "see [not a match] and [a list] about zebras"
    with SqliteStorage("agent_sessions", db_file=db) as store:
        store.upsert(
            make_session(
                Mode.AGENT,
                "s-1",
                "user-1",
                memory={"runs": [{"run_id": "r", "messages": [{"role": "user", "content": text}]}]},
            )
        )
    with serve(str(db), parse_tokens(f"{ALL} *\n")) as base:
        status, _, html = get_page(base, "/search?table=agent_sessions&q=zebras", ALL)
        assert status == 200
        assert re.findall(r"<mark>(.*?)</mark>", html) == ["zebras"]
        assert "[not a match]" in html and "[a list]" in html  # the text's own brackets, as text
        status, body = get(base, "/api/v1/search", ALL, table="agent_sessions", q="zebras")
        ((start, end),) = body["hits"][0]["marks"]
        assert body["hits"][0]["snippet"][start:end] == "zebras"


@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.parametrize("prepared", [False, True], ids=["default", "prepared_statements"])
def test_serve_prepares_its_reads_on_the_server_only_when_asked(filled: BaseStorage, prepared: bool) -> None:
    """``serve --prepared-statements``: each table's reader prepares what it repeats (PostgresStorage's
    option); by default nothing is prepared, so that the server can sit behind a pooler in transaction mode."""
    from agno_storage.web.app import create_app
    from agno_storage.web.run import serving

    source = open_source(location(filled), prepared_statements=prepared)
    try:
        with serving(create_app(source, None)) as base:
            for _ in range(30):
                status, body = get(base, "/api/v1/sessions/s-004", table=filled.table_name)
                assert status == 200 and body["session"]["session_id"] == "s-004"
        store = source.reader(filled.table_name).store
        with store.transaction() as conn:
            kept = [str(r[0]) for r in conn.execute("SELECT statement FROM pg_prepared_statements").fetchall()]
    finally:
        source.close()
    assert bool(kept) is prepared, kept


@pytest.mark.parametrize("backend", ["sqlite"])
def test_prepared_statements_are_refused_for_sqlite(filled: BaseStorage, capsys: pytest.CaptureFixture[str]) -> None:
    """SQLite prepares every statement anyway: the option would do nothing, so it is a clear error."""
    from agno_storage.cli import main

    with pytest.raises(InvalidInputError, match="PostgreSQL only"):
        open_source(location(filled), prepared_statements=True)
    assert main(["serve", location(filled), "--prepared-statements"]) == 2
    assert "--prepared-statements applies to PostgreSQL URLs only" in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_table_the_role_may_not_read_is_listed_apart_and_the_others_are_served(
    filled: BaseStorage, make_store: StoreFactory, serve: Serve
) -> None:
    """A role with SELECT on one sessions table and not on another: the first is served, the second listed
    among the tables the server cannot read, with PostgreSQL's reason (not the whole list refused)."""
    import psycopg

    hidden = [make_store(Mode.TEAM, table_name=name) for name in ("aaaa_hidden_teams", "zzzz_hidden_teams")]
    for store in hidden:  # one before and one after the readable table: the listing goes on past either
        store.upsert(make_session(Mode.TEAM, "t"))
    role = "web_some_select"
    url = location(filled)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {role}")
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT USAGE ON SCHEMA ai TO {role}")
        conn.execute(f'GRANT SELECT ON ai."{filled.table_name}" TO {role}')
    try:
        with serve(url.replace("postgres@", f"{role}@", 1)) as base:
            status, body = get(base, "/api/v1/tables")
            assert status == 200, body
            listing = make_converter().structure(body, TablesBody)
            # The schema may hold other tests' tables too, which the role may not read either.
            reasons = {u.name: u.reason for u in listing.unreadable}
            assert [t.name for t in listing.tables] == [filled.table_name]
            assert all("permission denied" in reasons[store.table_name] for store in hidden)
            status, body = get(base, "/api/v1/sessions/s-004", table=filled.table_name)
            assert status == 200 and body["session"]["session_id"] == "s-004"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")
