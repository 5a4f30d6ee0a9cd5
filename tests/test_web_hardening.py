"""``agno-storage serve`` when the database changes under it, and what every response says about itself.

Tables dropped and made again or upgraded while the server runs, a SQLite
file left with a hot journal, the token file's comments and characters, and
the headers and error pages a browser relies on.
"""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from agno_storage import InvalidInputError, Mode, SqliteStorage
from agno_storage.web.app import create_app
from agno_storage.web.auth import parse_tokens, read_tokens
from agno_storage.web.run import serving
from agno_storage.web.source import FRESH_AFTER, HotJournalError, open_source
from tests.conftest import StoreFactory
from tests.sessions import make_session
from tests.test_web_api import Serve, a_row_of_the_wrong_type, location
from tests.web_client import get, get_page

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TOKEN = "all-users-token-0123456789"


def fetch(
    base: str, path: str, *, method: str = "GET", headers: dict[str, str] | None = None, data: str | None = None
) -> tuple[int, dict[str, str], str]:
    """(status, headers with lower-case names, body) of one request; redirects are not followed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    body = data.encode() if data is not None else None
    request = urllib.request.Request(base + path, data=body, method=method, headers=headers or {})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read().decode()


# --- the token file -----------------------------------------------------------------


def test_a_hash_inside_a_user_id_is_part_of_it_and_a_comment_starts_after_whitespace() -> None:
    tokens = parse_tokens(
        "# who may read\n"
        "token-of-alice-bob-01 alice#bob\n"
        "token-of-carol-0000001 carol # a comment\n"
        "token-of-dave-00000001 dave\t#tab before it\n"
        "   # an indented comment\n"
    )
    assert tokens.by_token == {
        "token-of-alice-bob-01": "alice#bob",
        "token-of-carol-0000001": "carol",
        "token-of-dave-00000001": "dave",
    }
    # A token that holds '#' is one too (it is not a comment but where whitespace comes before it).
    assert parse_tokens("token#with-a-hash-01 erin\n").by_token == {"token#with-a-hash-01": "erin"}


def test_a_token_file_saved_with_a_byte_order_mark_keeps_its_first_token(tmp_path: Path) -> None:
    path = tmp_path / "tokens.txt"
    path.write_text(f"{TOKEN} *\nuser-one-token-0123456789 user-1\n", encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    tokens = read_tokens(path)
    assert tokens.principal(TOKEN) is not None
    assert parse_tokens(f"\ufeff{TOKEN} *\n").principal(TOKEN) is not None


def test_a_token_that_is_not_printable_ascii_is_refused_naming_its_line() -> None:
    # A browser or client sends an Authorization header's bytes as they are; the server cannot read
    # them back as the same text, so such a token would sign in through the form but never as Bearer.
    for token in ("tökentokentoken-02", "token\x7ftokentoken-02"):
        with pytest.raises(InvalidInputError, match="line 2: a token must be printable ASCII"):
            parse_tokens(f"{TOKEN} *\n{token} bob\n")
    # A user id may be any text.
    assert parse_tokens(f"{TOKEN} jörg\n").by_token == {TOKEN: "jörg"}


# --- the table changes under the server -------------------------------------------------


def test_a_table_made_again_in_another_mode_is_read_as_it_is_now(make_store: StoreFactory, serve: Serve) -> None:
    agents = make_store(Mode.AGENT)
    agents.upsert(make_session(Mode.AGENT, "a-1"))
    name = agents.table_name
    # Never looked at again on a timer: what the server sees is the read failing on the old shape.
    with serve(location(agents), recheck_after=3600) as base:
        for _ in range(8):  # past the point where PostgreSQL's driver prepares the statements it repeats
            status, body = get(base, "/api/v1/sessions", table=name)
            assert status == 200 and body["sessions"][0]["mode"] == "agent"
            assert get(base, "/api/v1/sessions/a-1", table=name)[0] == 200
            assert get(base, "/api/v1/search", table=name, q="hello")[0] == 200
        agents.drop()
        teams = make_store(Mode.TEAM, table_name=name)
        teams.upsert(make_session(Mode.TEAM, "t-1"))

        status, body = get(base, "/api/v1/sessions", table=name)
        assert status == 200, body
        assert [(s["session_id"], s["mode"], s["entity_id"]) for s in body["sessions"]] == [("t-1", "team", "team-1")]
        status, body = get(base, "/api/v1/sessions/t-1", table=name)
        assert status == 200 and body["mode"] == "team" and body["session"]["team_id"] == "team-1", body
        assert get(base, "/api/v1/sessions/t-1/history", table=name)[0] == 200
        assert get(base, "/api/v1/search", table=name, q="hello")[0] == 200
        assert get(base, "/api/v1/usage", table=name)[0] == 200
        status, _, html = get_page(base, f"/?table={name}")
        assert status == 200 and "t-1" in html


def test_a_table_made_again_is_seen_by_the_pages_first(make_store: StoreFactory, serve: Serve) -> None:
    agents = make_store(Mode.AGENT)
    agents.upsert(make_session(Mode.AGENT, "a-1"))
    name = agents.table_name
    with serve(location(agents), recheck_after=3600) as base:
        assert get_page(base, f"/sessions/a-1?table={name}")[0] == 200
        agents.drop()
        teams = make_store(Mode.TEAM, table_name=name)
        teams.upsert(make_session(Mode.TEAM, "t-1"))
        status, _, html = get_page(base, f"/sessions/t-1?table={name}")
        assert status == 200 and "team-1" in html


def old_table(tmp_path: Path) -> Path:
    """A copy of a table of schema version 1 (without team_session_id), made by agno before 1.2."""
    db = tmp_path / "pre12.db"
    db.write_bytes((FIXTURES / "agno_agent_pre12.db").read_bytes())
    return db


def test_search_and_usage_read_a_table_upgraded_while_the_server_runs(tmp_path: Path, serve: Serve) -> None:
    db = old_table(tmp_path)
    with serve(str(db), recheck_after=3600) as base:
        for path, query in (("/api/v1/search", {"q": "squared"}), ("/api/v1/usage", {})):
            status, body = get(base, path, table="agent_sessions", **query)
            assert (status, body["error"]["code"]) == (409, "old_schema"), body
        with SqliteStorage("agent_sessions", db_file=db) as store:
            store.upgrade_schema()
        time.sleep(FRESH_AFTER)  # a 409 looks at the table again, at most once in FRESH_AFTER seconds
        status, body = get(base, "/api/v1/search", table="agent_sessions", q="squared")
        assert status == 200 and body["hits"], body
        status, body = get(base, "/api/v1/usage", table="agent_sessions")
        assert status == 200 and body["groups"], body
        (table,) = get(base, "/api/v1/tables")[1]["tables"]
        assert table["version"] == 2


def test_a_column_an_upgrade_added_is_read_once_the_table_is_looked_at_again(tmp_path: Path, serve: Serve) -> None:
    db = old_table(tmp_path)
    with sqlite3.connect(db) as conn:
        (session_id,) = conn.execute("SELECT session_id FROM agent_sessions LIMIT 1").fetchone()
    with serve(str(db), recheck_after=0) as base:
        status, body = get(base, f"/api/v1/sessions/{session_id}", table="agent_sessions")
        assert status == 200 and body["session"]["team_session_id"] is None
        with SqliteStorage("agent_sessions", db_file=db) as store:
            store.upgrade_schema()
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE agent_sessions SET team_session_id = 'ts-9' WHERE session_id = ?", (session_id,))
        status, body = get(base, f"/api/v1/sessions/{session_id}", table="agent_sessions")
        assert status == 200 and body["session"]["team_session_id"] == "ts-9", body


# --- a hot journal --------------------------------------------------------------------

#: A writer that stops in the middle of a transaction on a rollback-journal file, leaving a hot journal.
CRASHING_WRITER = textwrap.dedent(
    """
    import os, sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("PRAGMA cache_size = 1")  # changed pages reach the file before COMMIT, the journal holds the old
    conn.execute("BEGIN")
    for i in range(300):
        conn.execute(
            "INSERT INTO agent_sessions (session_id, user_id, agent_id, memory, created_at, updated_at) "
            "VALUES (?, 'x', 'a', ?, 1, 1)",
            (f"z{i}", "y" * 5000),
        )
    os._exit(9)
    """
)


def leave_a_hot_journal(db: Path) -> None:
    subprocess.run([sys.executable, "-c", CRASHING_WRITER, str(db)], check=False)
    assert Path(f"{db}-journal").stat().st_size > 0


@pytest.fixture
def rollback_journal_file(tmp_path: Path) -> Path:
    db = tmp_path / "journal.db"
    with SqliteStorage("agent_sessions", db_file=db) as store:
        store.upsert(make_session(Mode.AGENT, "a-1"))
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
    return db


def test_a_hot_journal_is_503_saying_how_to_recover(rollback_journal_file: Path, serve: Serve) -> None:
    db = rollback_journal_file
    with serve(str(db)) as base:
        assert get(base, "/healthz")[0] == 200
        leave_a_hot_journal(db)
        for path, query in (
            ("/healthz", {}),
            ("/api/v1/tables", {}),
            ("/api/v1/sessions", {"table": "agent_sessions"}),
            ("/api/v1/sessions", {}),
            ("/api/v1/sessions/a-1", {"table": "agent_sessions"}),
        ):
            status, body = get(base, path, **query)
            assert (status, body["error"]["code"]) == (503, "unavailable"), (path, body)
            assert "hot journal" in body["error"]["message"] and "PRAGMA quick_check" in body["error"]["message"]
        status, headers, html = fetch(base, "/?table=agent_sessions")
        assert status == 503 and headers["content-type"].startswith("text/html") and "hot journal" in html
        # What the message says to do recovers the file (as the sqlite3 shell would do it).
        sqlite3.connect(db).execute("PRAGMA quick_check").fetchall()
        assert not Path(f"{db}-journal").exists()
        assert get(base, "/healthz")[0] == 200
        assert get(base, "/api/v1/sessions/a-1", table="agent_sessions")[0] == 200


def test_a_server_refusing_to_start_on_a_hot_journal_says_how_to_recover(rollback_journal_file: Path) -> None:
    db = rollback_journal_file
    leave_a_hot_journal(db)
    with pytest.raises(HotJournalError, match="hot journal") as caught:
        open_source(str(db))
    assert "PRAGMA quick_check" in str(caught.value)
    command = [sys.executable, "-m", "agno_storage", "serve", str(db), "--port", "0"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0 and "hot journal" in done.stderr and "PRAGMA quick_check" in done.stderr
    assert Path(f"{db}-journal").exists()  # the server never writes, not even to recover


# --- HTTP ---------------------------------------------------------------------------------


def test_a_method_a_path_does_not_take_is_405_naming_those_it_takes(one_session: Path, serve: Serve) -> None:
    with serve(str(one_session)) as base:
        for path in ("/api/v1/sessions", "/"):
            status, headers, _ = fetch(base, path, method="POST")
            assert status == 405 and "GET" in headers["allow"], (path, headers)
        status, headers, body = fetch(base, "/api/v1/sessions", method="DELETE")
        assert status == 405 and "GET" in headers["allow"] and "method_not_allowed" in body


def test_without_tokens_a_request_naming_another_host_besides_a_loopback_one_is_refused(
    one_session: Path, serve: Serve
) -> None:
    """The loopback check read the last Host header and the application the first: a request naming
    attacker.example first and 127.0.0.1 after was answered, its URL's host attacker.example."""
    with serve(str(one_session)) as base:
        host, port = base.removeprefix("http://").rsplit(":", 1)
        for hosts in (["attacker.example", host], [host, "attacker.example"], [host, host]):
            lines = "".join(f"Host: {name}\r\n" for name in hosts)
            with socket.create_connection((host, int(port)), timeout=30) as conn:
                conn.sendall(f"GET /api/v1/sessions HTTP/1.1\r\n{lines}Connection: close\r\n\r\n".encode())
                answer = b""
                while chunk := conn.recv(65536):
                    answer += chunk
            assert answer.startswith(b"HTTP/1.1 400 "), (hosts, answer[:200])
        assert get(base, "/api/v1/sessions")[0] == 200  # one Host, a loopback one


def test_private_responses_are_never_cached_nor_framed(one_session: Path, serve: Serve) -> None:
    with serve(str(one_session), parse_tokens(f"{TOKEN} *\n")) as base:
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        cookie = {"Cookie": f"agno_storage_token={TOKEN}"}
        for path, headers in (
            ("/api/v1/sessions", bearer),
            ("/api/v1/sessions/a-1", bearer),
            ("/api/v1/tables", {}),  # a 401
            ("/", cookie),
            ("/sessions/a-1", cookie),
            ("/login", {}),
        ):
            status, got, _ = fetch(base, path, headers=headers)
            assert status in (200, 401), (path, status)
            assert "no-store" in got["cache-control"], (path, got)
            assert {"cookie", "authorization"} <= {v.strip().lower() for v in got["vary"].split(",")}, (path, got)
        for path in ("/api/v1/sessions", "/", "/static/app.css", "/healthz"):
            _, got, _ = fetch(base, path, headers=bearer | cookie)
            assert got["x-content-type-options"] == "nosniff", (path, got)
            assert got["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in got["content-security-policy"]
            # Only the server's own script runs: no inline script, whatever stored text slips into a page.
            policy = {d.split()[0]: d.split()[1:] for d in got["content-security-policy"].split(";") if d.strip()}
            assert policy["script-src"] == ["'self'"] and policy["default-src"] == ["'self'"], (path, policy)
            assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'none'"], (path, policy)


def test_a_storage_error_on_a_page_is_a_page(tmp_path: Path, serve: Serve) -> None:
    db = a_row_of_the_wrong_type(tmp_path)
    with serve(str(db)) as base:
        status, headers, html = fetch(base, "/?table=agent_sessions")
        assert status == 500 and headers["content-type"].startswith("text/html"), headers
        assert "<html" in html and "created_at" in html and "bad" in html
        # The API's errors stay JSON.
        status, headers, _ = fetch(base, "/api/v1/sessions?table=agent_sessions")
        assert status == 500 and headers["content-type"] == "application/json"
        status, headers, html = fetch(base, "/no/such/page")
        assert status == 404 and headers["content-type"].startswith("text/html") and "no such path" in html


_SERVE_WHILE_ALTERED = """
import collections, random, sqlite3, sys, threading, time, urllib.error, urllib.request
from agno_storage.web.app import create_app
from agno_storage.web.run import serving
from agno_storage.web.source import open_source

db, seconds = sys.argv[1], float(sys.argv[2])
source = open_source(db, recheck_after=0)
stop = threading.Event()
seen = collections.Counter()

def writer():
    conn = sqlite3.connect(db, timeout=30)
    n = 0
    while not stop.is_set():
        n += 1
        conn.execute(f"ALTER TABLE agent_sessions ADD COLUMN extra_{n} TEXT")
        conn.commit()
        time.sleep(0.02)

def client(base):
    paths = ["/api/v1/sessions?limit=50", "/api/v1/sessions/s-1/history", "/api/v1/usage", "/api/v1/search?q=hello"]
    while not stop.is_set():
        try:
            with urllib.request.urlopen(base + random.choice(paths), timeout=60) as response:
                seen[response.status] += 1
        except urllib.error.HTTPError as exc:
            seen[exc.code] += 1

with serving(create_app(source)) as base:
    threads = [threading.Thread(target=writer)] + [threading.Thread(target=client, args=(base,)) for _ in range(6)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
source.close()
print(dict(seen))
"""


def test_a_table_altered_again_and_again_while_served_never_fails_a_request(tmp_path: Path) -> None:
    """Each change makes the server replace the table's reader while other requests still read through the
    old one: the old store stays open for them (closing it under a running query crashed the process)."""
    db = tmp_path / "altered.db"
    with SqliteStorage("agent_sessions", db_file=db) as store:
        for i in range(50):
            memory = {"runs": [{"run_id": f"r{i}", "messages": [{"role": "user", "content": "hello"}]}]}
            store.upsert(make_session(Mode.AGENT, f"s-{i}", memory=memory))
    run = subprocess.run(
        [sys.executable, "-c", _SERVE_WHILE_ALTERED, str(db), "6"], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    seen = eval(run.stdout.strip().splitlines()[-1])
    assert set(seen) == {200} and sum(seen.values()) > 50, seen


def test_an_unexpected_error_carries_the_headers_of_every_response(one_session: Path) -> None:
    source = open_source(str(one_session))

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    source.reader = broken  # type: ignore[method-assign]
    try:
        with serving(create_app(source)) as base:
            for path in ("/api/v1/sessions?table=agent_sessions", "/?table=agent_sessions"):
                status, got, _ = fetch(base, path)
                assert status == 500, (path, status)
                assert got["x-content-type-options"] == "nosniff" and got["x-frame-options"] == "DENY", got
                assert "no-store" in got["cache-control"] and "frame-ancestors 'none'" in got["content-security-policy"]
    finally:
        source.close()


def test_asking_to_look_again_at_once_looks_at_most_once_in_fresh_after_seconds(one_session: Path) -> None:
    """Every 409 asks for a fresh look at the table, and on PostgreSQL each look is a new connection: a burst
    of them looks once."""
    source = open_source(str(one_session), recheck_after=3600)
    looks = []
    look = source._look

    def counted(*args: Any) -> Any:
        looks.append(args)
        return look(*args)

    source._look = counted  # type: ignore[method-assign]
    try:
        first = source.reader("agent_sessions")
        assert all(source.reader("agent_sessions", fresh=True) is first for _ in range(50))
        assert len(looks) == 1
        time.sleep(FRESH_AFTER)
        assert source.reader("agent_sessions", fresh=True) is first
        assert len(looks) == 2
    finally:
        source.close()


def test_the_page_of_a_session_the_table_does_not_have_is_a_404(one_session: Path, serve: Serve) -> None:
    with serve(str(one_session)) as base:
        status, headers, html = fetch(base, "/sessions/no-such-id?table=agent_sessions")
        assert status == 404 and headers["content-type"].startswith("text/html")
        assert "No session no-such-id in agent_sessions" in html
        assert fetch(base, "/sessions/a-1?table=agent_sessions")[0] == 200


# --- what a caller spells, nests and signs in with --------------------------------------


def test_every_spelling_of_a_sqlite_table_name_shares_one_reader(one_session: Path, serve: Serve) -> None:
    """SQLite finds a table under any ASCII case of its name. A reader per spelling held a file descriptor each,
    kept for ever: a few hundred spellings (any token holder's requests) and every request failed. A view is no
    sessions table."""
    conn = sqlite3.connect(one_session)
    conn.execute("CREATE VIEW agent_view AS SELECT * FROM agent_sessions")
    conn.commit()
    conn.close()
    source = open_source(str(one_session))
    try:
        with serving(create_app(source, None)) as base:
            spellings = ["agent_sessions", "AGENT_SESSIONS", "Agent_Sessions", "aGENT_sESSIONS"]
            answers = [get(base, "/api/v1/sessions", table=t) for t in spellings]
            assert [a[0] for a in answers] == [200] * 4
            assert all(a == answers[0] for a in answers)  # named as the file spells it, whoever asked how
            assert answers[0][1]["sessions"][0]["table"] == "agent_sessions"
            assert len(source._readers) == 1
            assert get(base, "/api/v1/sessions", table="agent_view")[0] == 404
    finally:
        source.close()


def test_json_nested_hundreds_of_levels_deep_is_served_as_the_store_reads_it(tmp_path: Path, serve: Serve) -> None:
    """The store writes and reads JSON nested up to about 1,000 levels; the API walked it with cattrs (several
    frames a level) and answered 500 RecursionError from about 330 levels on: the session, its history, its page,
    and every search whose hits held it."""
    deep: Any = "bottom"
    for _ in range(600):
        deep = [deep]
    memory = {
        "runs": [
            {
                "run_id": "r",
                "messages": [
                    {"role": "user", "content": "kestrels nest on ledges"},
                    {"role": "assistant", "content": "so they do", "tool_calls": [{"id": "t", "arguments": deep}]},
                ],
            }
        ],
        "deep": deep,
    }
    db = tmp_path / "deep.db"
    with SqliteStorage("agent_sessions", db_file=db) as store:
        store.upsert(make_session(Mode.AGENT, "d-1", memory=memory))
        stored = store.read("d-1")
    assert stored is not None
    with serve(str(db)) as base:
        status, body = get(base, "/api/v1/sessions/d-1")
        assert status == 200 and body["session"]["memory"] == stored.memory
        status, body = get(base, "/api/v1/sessions/d-1/history")
        assert status == 200 and body["messages"][1]["tool_calls"] == [{"id": "t", "arguments": deep}]
        status, body = get(base, "/api/v1/search", q="so they do")
        assert status == 200 and [h["session_id"] for h in body["hits"]] == ["d-1"]
        assert get_page(base, "/sessions/d-1")[0] == 200


def test_signing_in_leads_back_to_the_session_asked_for(tmp_path: Path, serve: Serve) -> None:
    """The sign-in redirect kept the path decoded once: the list's link to session '50%41' led, after signing in,
    to session '50A'."""
    db = tmp_path / "s.db"
    with SqliteStorage("agent_sessions", db_file=db) as store:
        for sid in ("50%41", "50A"):
            store.upsert(make_session(Mode.AGENT, sid))
    with serve(str(db), parse_tokens(f"{TOKEN} *\n")) as base:
        status, headers, _ = fetch(base, "/sessions/50%2541")
        assert status == 303
        login = headers["location"]
        status, headers, _ = fetch(
            base,
            login,
            method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            data=f"token={TOKEN}",
        )
        assert status == 303 and headers["location"] == "/sessions/50%2541"


def test_the_store_of_a_replaced_file_is_closed_once_its_grace_is_over(
    one_session: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file replaced while served: its old store was closed only when some later reader was retired, so the
    unlinked file stayed open, its disk space held, for as long as nothing else was replaced."""
    from agno_storage.web import source_base

    monkeypatch.setattr(source_base, "RETIRED_GRACE", 0.2)
    copy = one_session.with_name("copy.db")
    copy.write_bytes(one_session.read_bytes())

    def deleted() -> list[str]:
        fds = Path("/proc/self/fd")
        targets = []
        for fd in fds.iterdir():
            try:
                targets.append(str(fd.readlink()))
            except OSError:
                continue
        return [t for t in targets if t.startswith(str(one_session)) and t.endswith("(deleted)")]

    source = open_source(str(one_session))
    try:
        with serving(create_app(source, None)) as base:
            assert get(base, "/api/v1/sessions")[0] == 200
            copy.replace(one_session)
            assert get(base, "/api/v1/sessions")[0] == 200
            assert deleted()  # the old store's connections still read the old file: the grace has not run out
            time.sleep(0.5)
            assert get(base, "/api/v1/sessions")[0] == 200
            assert deleted() == []
    finally:
        source.close()
