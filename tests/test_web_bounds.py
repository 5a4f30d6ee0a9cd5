"""What one client's requests may cost everyone else: expensive reads at once, a request's time, failed tokens."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import ANY
from urllib.parse import urlencode

import pytest

from agno_storage import Mode, PostgresStorage, SqliteStorage, urls
from agno_storage.backends.core import StoreCore
from agno_storage.errors import StorageError
from agno_storage.models import Session
from agno_storage.ops.db import Database, connect_readonly, open_database
from agno_storage.web.app import TABLES_TTL, create_app
from agno_storage.web.auth import parse_tokens
from agno_storage.web.limits import BoundedSqlite, Limits, Refused, check_deadline, interrupt_at_deadline
from agno_storage.web.run import serving
from agno_storage.web.source import PostgresSource, open_source
from tests.conftest import StoreFactory
from tests.sessions import make_session
from tests.support import HANG_S, finishes
from tests.test_web_api import location
from tests.test_web_hardening import fetch
from tests.test_web_limits import PATIENCE, serve_command
from tests.web_client import get, get_page

ALL = "all-users-token-0123456789"
ALICE = "alice-only-token-0123456789"
TOKENS = f"{ALL} *\n{ALICE} alice\n"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "bounds.db"
    with SqliteStorage("agent_sessions", db_file=path) as store:
        for i in range(5):
            store.upsert(make_session(Mode.AGENT, f"s-{i}", user_id="alice"))
    return path


def served(db: Path, limits: Limits, *, tokens: bool = False) -> Any:
    source = open_source(str(db))
    app = create_app(source, parse_tokens(TOKENS) if tokens else None, limits=limits)
    return serving(app), source


def slow_walks(monkeypatch: pytest.MonkeyPatch, wait: Callable[[], object]) -> None:
    """Every session a walk over the table (a search's scan, a usage report) reaches comes after ``wait()``."""
    real = StoreCore.iter_sessions

    def slow(self: StoreCore, *args: Any, **kwargs: Any) -> Iterator[Session]:
        for session in real(self, *args, **kwargs):
            wait()
            yield session

    monkeypatch.setattr(StoreCore, "iter_sessions", slow)


class HeldWalks:
    """Walks over the table wait, session after session, until :meth:`release` (at most HANG_S each)."""

    def __init__(self) -> None:
        self.walking = threading.Event()
        self._released = threading.Event()

    def wait(self) -> None:
        self.walking.set()
        self._released.wait(HANG_S)

    def release(self) -> None:
        self._released.set()


@pytest.fixture
def held_walks(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldWalks]:
    held = HeldWalks()
    slow_walks(monkeypatch, held.wait)
    yield held
    held.release()


def test_a_search_past_the_time_limit_is_503_and_the_server_goes_on(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store(Mode.AGENT)
    for i in range(5):
        store.upsert(make_session(Mode.AGENT, f"s-{i}"))
    walked: list[int] = []
    slow_walks(monkeypatch, lambda: (walked.append(1), time.sleep(1)))
    source = open_source(location(store))
    with serving(create_app(source, limits=Limits(request_timeout=0.3))) as base:
        table = {"table": store.table_name}
        for path in ("/api/v1/search?q=hello&", "/api/v1/usage?", "/usage?"):
            walked.clear()
            status, _, body = fetch(base, path + urlencode(table))
            assert status == 503, body
            assert "more than 0.3 seconds" in body
            # Each session reached takes a second, past the deadline: the walk stops there, not at its end.
            assert len(walked) < 5, path
        assert get(base, "/api/v1/search", q="hello", **table) == (503, ANY)
        assert get(base, "/api/v1/search", q="hello", **table)[1]["error"]["code"] == "too_slow"
        assert get(base, "/api/v1/sessions", **table)[0] == 200
        assert get(base, "/healthz")[0] == 200
    source.close()


def test_a_sqlite_statement_past_the_deadline_is_stopped(db: Path) -> None:
    store = BoundedSqlite("agent_sessions", db_file=db, read_only=True, tracer=check_deadline)
    endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"

    def query_past_the_deadline() -> tuple[str, int]:  # on one thread: its deadline, its connection
        with pytest.raises(Refused) as refused, Limits(request_timeout=0.2).request(expensive=False):
            store._query(endless, [])
        return refused.value.code, store.count()

    # The statement never ends by itself: only the deadline ends it; the connection goes on serving.
    assert finishes(query_past_the_deadline) == ("too_slow", 5)
    store.close()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_postgres_statement_stops_at_the_request_timeout(make_store: StoreFactory) -> None:
    store = make_store(Mode.AGENT)
    store.upsert(make_session(Mode.AGENT, "s-1"))
    source = open_source(location(store), statement_timeout=0.25)
    assert isinstance(source, PostgresSource)
    with open_database(source.url, None) as pg:
        assert pg.query("SHOW statement_timeout") == [("250ms",)]
        with pytest.raises(StorageError, match="statement timeout"):
            pg.query("SELECT pg_sleep(5)")
    source.close()


def test_expensive_reads_past_the_limit_at_once_are_503_and_others_are_served(db: Path, held_walks: HeldWalks) -> None:
    context, source = served(db, Limits(expensive_at_once=1, request_timeout=30))
    with context as base:
        first: dict[str, Any] = {}
        running = threading.Thread(target=lambda: first.update(answer=get(base, "/api/v1/search", q="hello")))
        running.start()
        assert held_walks.walking.wait(HANG_S)  # the first search holds the one slot, waiting in its scan
        status, headers, body = fetch(base, "/api/v1/usage")
        assert status == 503, body
        assert '"code":"busy"' in body.replace(" ", "")
        assert int(headers["retry-after"]) >= 1
        assert fetch(base, "/search?q=hello")[0] == 503  # the page's search shares the bound
        assert get(base, "/api/v1/sessions")[0] == 200
        held_walks.release()
        running.join(10)
        assert first["answer"][0] == 200
        assert get(base, "/api/v1/usage")[0] == 200  # the slot is free again
    source.close()


def test_a_request_without_a_valid_token_never_takes_an_expensive_slot(db: Path, held_walks: HeldWalks) -> None:
    # Who is asking is settled before a slot is taken: a flood of requests with no token or a wrong one
    # would otherwise hold the slots, however briefly each, and real searches would be told "busy".
    context, source = served(db, Limits(expensive_at_once=1, request_timeout=30), tokens=True)
    with context as base:
        first: dict[str, Any] = {}
        running = threading.Thread(target=lambda: first.update(answer=get(base, "/api/v1/search", ALL, q="hello")))
        running.start()
        assert held_walks.walking.wait(HANG_S)  # the first search holds the one slot, waiting in its scan
        assert fetch(base, "/api/v1/search?q=hello")[0] == 401
        assert get(base, "/api/v1/usage", f"wrong-token-{0:020d}")[0] == 401
        assert fetch(base, "/search?q=hello")[0] == 303  # the page sends it to the sign-in form
        assert get(base, "/api/v1/usage", ALICE)[0] == 503  # a valid token finds the slot taken
        held_walks.release()
        running.join(10)
        assert first["answer"][0] == 200
    source.close()


def test_headers_sent_behind_a_request_still_running_are_bounded_too(db: Path, held_walks: HeldWalks) -> None:
    """httptools keeps every header line it is sent, and the next request's were counted only once the answer
    before them was sent: behind a search still running on its connection, a client sent hundreds of megabytes
    of them in seconds, every byte kept. Past the header limit, the connection is closed there too."""
    source = open_source(str(db))
    try:
        with serving(create_app(source), header_timeout=3600, header_limit=4096) as base:
            host, port = base.removeprefix("http://").rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=PATIENCE) as conn:
                conn.sendall(b"GET /api/v1/search?q=hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                assert held_walks.walking.wait(HANG_S)  # the search runs, waiting in its scan
                conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 8192)
                assert ended_within(conn, PATIENCE)
            held_walks.release()
            # A request sent behind a running one, its headers within the limit, is answered in its turn.
            with socket.create_connection((host, int(port)), timeout=PATIENCE) as conn:
                conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 2)
                answers = b""
                while answers.count(b"HTTP/1.1 200") < 2:
                    chunk = conn.recv(65536)
                    assert chunk, answers
                    answers += chunk
    finally:
        source.close()


def ended_within(conn: socket.socket, seconds: float) -> bool:
    """Whether the server ends ``conn`` (closes or resets it) within ``seconds``; what it sends is read and dropped."""
    conn.settimeout(0.2)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if conn.recv(65536) == b"":
                return True
        except TimeoutError:
            pass
        except OSError:  # reset
            return True
    return False


def test_failed_tokens_from_one_address_are_429_past_the_limit(db: Path) -> None:
    context, source = served(db, Limits(failures_allowed=3, failure_window=60), tokens=True)
    with context as base:
        assert get(base, "/api/v1/sessions", ALICE)[0] == 200  # alice's token, used from here before
        for i in range(3):
            assert get(base, "/api/v1/sessions", f"wrong-token-{i:020d}")[0] == 401
        status, headers, body = fetch(base, "/api/v1/sessions", headers={"Authorization": f"Bearer wrong-{'x' * 20}"})
        assert status == 429, body
        assert 1 <= int(headers["retry-after"]) <= 60
        # No guess is checked now, a right one included: ALL was never used from this address.
        assert get(base, "/api/v1/sessions", ALL)[0] == 429
        # The sign-in form is bounded alike.
        form = fetch(base, "/login", method="POST", data=f"token={ALL}")
        assert form[0] == 429
        # A token used from this address before the failures goes on working: a stranger's guesses from a
        # shared address (a NAT, a proxy) do not lock its holder out.
        assert get(base, "/api/v1/sessions", ALICE)[0] == 200
        # A request with no token is no guess: the page still sends it to the sign-in form.
        assert fetch(base, "/")[0] == 303
    source.close()


def test_the_failures_kept_are_bounded_however_many_addresses_send_them() -> None:
    limits = Limits(failures_allowed=2, clients_kept=16)
    tokens = parse_tokens(TOKENS)
    for i in range(5000):
        limits.check(tokens, f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", "wrong-token-0000000000")
    assert limits.clients() <= 16
    # An IPv6 client's /64 is one client: cycling through its own addresses does not evade the bound.
    for i in range(2):
        limits.check(tokens, f"2001:db8::{i:x}", "wrong-token-0000000000")
    with pytest.raises(Refused) as refused:
        limits.check(tokens, "2001:db8::ffff", ALL)
    assert refused.value.status == 429


def test_the_serve_command_takes_the_request_timeout(tmp_path: Path) -> None:
    db = tmp_path / "many.db"
    with SqliteStorage("agent_sessions", db_file=db) as store:
        store.upsert_many(make_session(Mode.AGENT, f"s-{i}") for i in range(2000))
    # A scan of 2,000 sessions reads each of them: far more than a millisecond.
    with serve_command(db, "--request-timeout", "0.001") as base:
        status, body = get(base, "/api/v1/search", q="hello")
        assert status == 503, body
        assert body["error"]["code"] == "too_slow"


@pytest.fixture
def many_rows(tmp_path: Path) -> Path:
    """A SQLite file whose one sessions table holds 400,000 rows: counting them takes far more than a millisecond."""
    path = tmp_path / "many_rows.db"
    with SqliteStorage("agent_sessions", db_file=path) as store:
        store.upsert(make_session(Mode.AGENT, "s-0"))
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO agent_sessions (session_id, agent_id, user_id, created_at, updated_at) "
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400000) "
            "SELECT 'r-' || i, 'agent', 'bob', i, i FROM n"
        )
    return path


def test_the_list_of_tables_stops_at_the_request_timeout(many_rows: Path) -> None:
    """The list counts every table's rows, in one step of SQLite's that its progress handler never sees: it
    ran outside any deadline, as long as the count took."""
    context, source = served(many_rows, Limits(request_timeout=0.001))
    with context as base:
        status, body = get(base, "/api/v1/tables")
        assert status == 503, body
        assert body["error"]["code"] == "too_slow"
    source.close()
    with Limits(request_timeout=0.001).request(expensive=False), pytest.raises(StorageError):
        open_source(str(many_rows)).tables()
    context, source = served(many_rows, Limits(request_timeout=30))
    with context as base:
        status, body = get(base, "/api/v1/tables")
        assert status == 200 and body["tables"][0]["rows"] == 400_001  # given the time, it is counted
    source.close()


def test_requests_waiting_for_the_list_of_tables_wait_no_longer_than_their_deadline(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One request reads the list at a time; the others waited for it however long it took, each holding one
    of the server's threads."""
    context, source = served(db, Limits(request_timeout=0.5))
    release = threading.Event()
    reading = threading.Event()
    tables = source.tables

    read = threading.Event()

    def slow_tables(*, count_rows: bool = True) -> Any:
        reading.set()
        release.wait(HANG_S)
        read.set()
        return tables(count_rows=count_rows)

    with context as base:
        monkeypatch.setattr(source, "tables", slow_tables)
        first: dict[str, Any] = {}
        holder = threading.Thread(
            target=lambda: first.update(answer=get(base, "/api/v1/sessions", table="agent_sessions"))
        )
        holder.start()
        assert reading.wait(HANG_S)
        status, body = get(base, "/api/v1/sessions", table="agent_sessions")
        # Answered while the first request still reads the list: it did not wait for the list to be read.
        assert not read.is_set(), "the second request waited for the first's list of tables"
        release.set()
        holder.join(HANG_S)
        assert status == 503 and body["error"]["code"] == "too_slow", body
    source.close()


def test_a_statement_no_progress_handler_sees_is_interrupted_at_the_deadline(db: Path) -> None:
    """A row count is one step of SQLite's: only an interrupt stops it (here, an endless statement with no
    progress handler stands for it)."""
    conn = connect_readonly(db)
    endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"

    def count_past_the_deadline() -> None:  # on one thread: the deadline is the thread's
        with Limits(request_timeout=0.2).request(expensive=False):
            stop = interrupt_at_deadline(conn.interrupt)
            try:
                with pytest.raises(sqlite3.OperationalError, match="interrupted"):
                    conn.execute(endless).fetchall()
            finally:
                stop()

    finishes(count_past_the_deadline)  # the statement never ends by itself: only the interrupt ends it
    assert conn.execute("SELECT count(*) FROM agent_sessions").fetchone() == (5,)  # the connection goes on
    conn.close()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_the_stricter_of_the_urls_statement_timeout_and_the_request_timeout_holds(make_store: StoreFactory) -> None:
    """A ``statement_timeout`` the URL's own ``options`` set was replaced by the server's, however much longer."""
    store = make_store(Mode.AGENT)
    store.upsert(make_session(Mode.AGENT, "s-1"))
    cases = [
        ("-c statement_timeout=200", 30, "200ms"),  # the URL's, stricter
        ("-c statement_timeout=60s", 0.25, "250ms"),  # the server's, stricter
        ("-c statement_timeout=0", 0.25, "250ms"),  # the URL's is none: the server's
    ]
    for options, timeout, shown in cases:
        source = open_source(urls.with_libpq_options(location(store), options), statement_timeout=timeout)
        assert isinstance(source, PostgresSource)
        with open_database(source.url, None) as pg:
            assert pg.query("SHOW statement_timeout") == [(shown,)], options
            assert pg.query("SHOW default_transaction_read_only") == [("on",)]
        source.close()
    source = open_source(urls.with_libpq_options(location(store), "-c statement_timeout=200"), statement_timeout=30)
    with open_database(source.url, None) as pg, pytest.raises(StorageError, match="statement timeout"):
        pg.query("SELECT pg_sleep(5)")
    source.close()


def pg_store_holding_one_session(make_store: StoreFactory) -> PostgresStorage:
    """A PostgreSQL agent table of the throwaway server holding the session ``s-1``."""
    store = make_store(Mode.AGENT)
    store.upsert(make_session(Mode.AGENT, "s-1"))
    assert isinstance(store, PostgresStorage)
    return store


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_the_postgres_list_of_tables_stops_at_the_request_timeout(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each statement of the list had the server's statement_timeout, but the list is several statements a
    table: with many tables it ran far past the request's deadline."""
    import psycopg

    store = pg_store_holding_one_session(make_store)
    with psycopg.connect(store.db_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA many_tables")
        try:
            for i in range(150):
                conn.execute(f'CREATE TABLE many_tables.t{i} (LIKE ai."{store.table_name}" INCLUDING ALL)')
            source = open_source(store.db_url, schema_name="many_tables")
            execute, ran = psycopg.Cursor.execute, []

            def slow(cur: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
                ran.append(query)
                time.sleep(0.01)  # a list of 150 tables, several statements each, takes seconds
                return execute(cur, query, *args, **kwargs)

            monkeypatch.setattr(psycopg.Cursor, "execute", slow)
            try:
                source.tables()
                every = len(ran)  # the statements of the whole list, counted rather than timed
                ran.clear()
                with serving(create_app(source, limits=Limits(request_timeout=0.5))) as base:
                    status, body = get(base, "/api/v1/tables")
                assert status == 503 and body["error"]["code"] == "too_slow", body
                assert len(ran) < every, "the list ran to its end, past the deadline"
            finally:
                monkeypatch.undo()
                source.close()
        finally:
            conn.execute("DROP SCHEMA many_tables CASCADE")


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_pgoptions_holds_where_the_url_gives_no_options(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """libpq reads PGOPTIONS only when a connection's options are not set, and serve always set them (its
    read-only option and statement_timeout): a search_path, or a stricter statement_timeout, PGOPTIONS gave
    was dropped."""
    import psycopg

    store = pg_store_holding_one_session(make_store)
    with psycopg.connect(store.db_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA from_pgoptions")
        try:
            conn.execute(f'CREATE TABLE from_pgoptions.elsewhere (LIKE ai."{store.table_name}" INCLUDING ALL)')
            conn.execute(f'INSERT INTO from_pgoptions.elsewhere SELECT * FROM ai."{store.table_name}"')
            monkeypatch.setenv("PGOPTIONS", "-c search_path=from_pgoptions -c statement_timeout=200")
            source = open_source(store.db_url, schema_name=None, statement_timeout=30)
            try:
                assert [t.name for t in source.tables().readable] == ["elsewhere"]
                assert source.reader("elsewhere").get("s-1", None) is not None
                with open_database(source.url, None) as pg:
                    assert pg.query("SHOW statement_timeout") == [("200ms",)]
                    assert pg.query("SHOW default_transaction_read_only") == [("on",)]
            finally:
                source.close()
            # The URL's own options: libpq reads no PGOPTIONS, nor does serve.
            url = store.db_url + ("&" if "?" in store.db_url else "?") + "options=-c%20application_name%3Down"
            source = open_source(url, schema_name=None, statement_timeout=30)
            try:
                with open_database(source.url, None) as pg:
                    assert pg.query("SHOW statement_timeout") == [("30s",)]
                    assert pg.query("SHOW search_path")[0][0] != "from_pgoptions"
            finally:
                source.close()
        finally:
            conn.execute("DROP SCHEMA from_pgoptions CASCADE")


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_cancel_that_could_not_be_sent_is_sent_again(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The list of tables waiting for a lock (a migration's, say) is stopped at the deadline by a cancel request,
    sent on a connection of its own: one that failed (the server unreachable a moment) ended the watch, with a
    traceback on stderr, and the list ran on to its statement_timeout."""
    import psycopg

    store = pg_store_holding_one_session(make_store)
    source = open_source(store.db_url, statement_timeout=20)
    real = psycopg.Connection.cancel
    calls: list[int] = []

    def flaky(conn: psycopg.Connection[Any]) -> None:
        calls.append(1)
        if len(calls) <= 2:
            raise psycopg.OperationalError("could not send cancel request: connection refused")
        real(conn)

    monkeypatch.setattr(psycopg.Connection, "cancel", flaky)
    crashed: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", crashed.append)
    try:
        with psycopg.connect(store.db_url) as locker:
            locker.execute(f'LOCK TABLE ai."{store.table_name}" IN ACCESS EXCLUSIVE MODE')
            with (
                pytest.raises(Refused, match="seconds") as refused,
                Limits(request_timeout=0.3).request(expensive=False),
            ):
                source.tables()
            # Stopped by the watch's cancel request, not by the statement_timeout it would otherwise run on to.
            assert "canceling statement due to user request" in str(refused.value.__cause__)
        assert len(calls) >= 3 and not crashed
    finally:
        source.close()


def test_a_slow_row_count_stops_only_the_list_of_tables(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every request naming a table checked it against the list of tables, which counted every table's rows:
    with a count slower than the request timeout, a read of one session, however quick, was 503 too_slow."""
    # A timeout longer than the list of tables is kept (TABLES_TTL, 2 s), as the default's 30 s is: once the count
    # has run to the deadline, the list without counts this request read is older than that and may not be read
    # again (the page was a 503 too_slow).
    context, source = served(db, Limits(request_timeout=TABLES_TTL + 1))
    query = Database.query

    def slow_counts(self: Database, statement: str, *args: Any, **kwargs: Any) -> Any:
        if "COUNT(*)" in statement.upper():
            time.sleep(TABLES_TTL + 1.5)  # a table too big to count within the request timeout
        return query(self, statement, *args, **kwargs)

    monkeypatch.setattr(Database, "query", slow_counts)
    with context as base:
        status, body = get(base, "/api/v1/sessions/s-1", table="agent_sessions")
        assert status == 200 and body["session"]["session_id"] == "s-1", body
        status, body = get(base, "/api/v1/sessions", table="agent_sessions")
        assert status == 200 and len(body["sessions"]) == 5, body
        status, _, html = get_page(base, "/?table=agent_sessions")
        assert status == 200 and "s-4" in html and "agent_sessions (agent)</option>" in html  # no count
        status, body = get(base, "/api/v1/tables")
        assert status == 503 and body["error"]["code"] == "too_slow", body
    source.close()
    monkeypatch.undo()
    context, source = served(db, Limits(request_timeout=30))
    with context as base:
        assert get_page(base, "/?table=agent_sessions")[2].count("agent_sessions (agent, 5 rows)</option>") == 1
        assert get(base, "/api/v1/tables")[1]["tables"][0]["rows"] == 5
    source.close()


def test_the_list_of_tables_reads_no_row_of_agent_runs(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """/api/v1/tables counted agent_runs' rows and its orphans (a NOT EXISTS against every sessions table), which
    it never shows: on a big agent_runs that alone could make it 503 too_slow."""
    from agno_storage import agent_runs

    with SqliteStorage("agent_sessions", db_file=db) as store:
        agent_runs.append_run(store, "s-1", "question", "answer", user_id="alice")
    context, source = served(db, Limits(request_timeout=30))
    statements: list[str] = []
    query = Database.query

    def recorded(self: Database, statement: str, *args: Any, **kwargs: Any) -> Any:
        statements.append(statement)
        return query(self, statement, *args, **kwargs)

    monkeypatch.setattr(Database, "query", recorded)
    with context as base:
        status, body = get(base, "/api/v1/tables")
        assert status == 200 and [(t["name"], t["rows"]) for t in body["tables"]] == [("agent_sessions", 5)], body
    source.close()
    counts = [s for s in statements if "COUNT(*)" in s.upper()]
    assert counts and not [s for s in counts if "agent_runs" in s], counts


def test_listings_and_table_rechecks_open_no_new_sqlite_connection(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each list of tables and each table's re-check opened a connection of its own: with a write-ahead log
    another program left behind (hundreds of MB; SQLite rebuilds its index on a connection's first read
    whenever no other connection of the process holds it, and on every new connection where the -shm file
    is not the server's to write), each one read the whole log again, under no deadline."""
    source = open_source(str(db), recheck_after=0)
    try:
        source.tables()
        source.reader("agent_sessions").store.read("s-1")
        opened: list[object] = []
        connect = sqlite3.connect

        def counted(*args: Any, **kwargs: Any) -> sqlite3.Connection:
            opened.append(args[0])
            return connect(*args, **kwargs)

        monkeypatch.setattr(sqlite3, "connect", counted)
        for _ in range(3):
            assert [t.name for t in source.tables().readable] == ["agent_sessions"]
            assert [t.rows for t in source.tables(count_rows=True).readable] == [5]
            assert source.reader("agent_sessions").store.read("s-1") is not None  # looked at again each time
        assert opened == []
    finally:
        source.close()


def test_a_connection_a_deadline_interrupted_is_not_kept_for_the_next_list(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lists of tables reuse idle connections; one whose statement the deadline interrupted is closed, not
    kept: an interrupt that lands as its statement ends could stop the next caller's."""
    source = open_source(str(db))
    try:
        source.tables()
        query = Database.query

        def slow_counts(self: Database, statement: str, *args: Any, **kwargs: Any) -> Any:
            if "COUNT(*)" in statement.upper():
                time.sleep(0.6)  # past the deadline below: the watch interrupts the connection
            return query(self, statement, *args, **kwargs)

        monkeypatch.setattr(Database, "query", slow_counts)
        with Limits(request_timeout=0.2).request(expensive=False), pytest.raises(StorageError):
            source.tables(count_rows=True)
        monkeypatch.setattr(Database, "query", query)
        opened: list[object] = []
        connect = sqlite3.connect

        def counted(*args: Any, **kwargs: Any) -> sqlite3.Connection:
            opened.append(args[0])
            return connect(*args, **kwargs)

        monkeypatch.setattr(sqlite3, "connect", counted)
        assert [t.rows for t in source.tables(count_rows=True).readable] == [5]
        assert len(opened) == 1  # a new one: the interrupted connection was closed
        assert [t.rows for t in source.tables(count_rows=True).readable] == [5]
        assert len(opened) == 1  # and that one kept
    finally:
        source.close()
