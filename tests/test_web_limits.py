"""What ``agno-storage serve`` bounds and whom it believes: slow clients, proxies' headers, unknown tables."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest

from agno_storage import Mode, SqliteStorage
from agno_storage.cli import main
from agno_storage.web.app import create_app
from agno_storage.web.auth import COOKIE, parse_tokens
from agno_storage.web.run import server_config, serving
from agno_storage.web.source import FRESH_AFTER, open_source
from tests.conftest import StoreFactory
from tests.sessions import make_session
from tests.test_web_api import location
from tests.test_web_hardening import fetch
from tests.web_client import get, wait_until_up

TOKEN = "all-users-token-0123456789"
#: What a client waits for the server to close a connection; far past the limits the servers here are given.
PATIENCE = 30.0


@contextmanager
def serve_command(db: Path, *options: str) -> Iterator[str]:
    """``agno-storage serve DB --port 0 OPTIONS`` in a process of its own; yields its base URL once it answers."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "agno_storage", "serve", str(db), "--port", "0", *options],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    try:
        banner = proc.stderr.readline()
        found = re.search(r"on (http://127\.0\.0\.1:\d+)/", banner)
        assert found is not None, banner
        base = found.group(1)
        wait_until_up(base, proc, PATIENCE)
        yield base
    finally:
        proc.terminate()
        proc.wait(PATIENCE)


def closed_by_the_server(base: str, sent: bytes, *, trickle: bytes = b"") -> bool:
    """Whether the server closes a connection that sent ``sent`` and then ``trickle`` a byte at a time, before
    :data:`PATIENCE` seconds; no answer is read but the close."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=PATIENCE) as conn:
        conn.sendall(sent)
        conn.settimeout(0.2)
        deadline = time.monotonic() + PATIENCE
        pending = list(trickle)
        while time.monotonic() < deadline:
            try:
                if conn.recv(65536) == b"":
                    return True
            except TimeoutError:
                pass
            except OSError:  # reset
                return True
            if pending:
                try:
                    conn.sendall(bytes([pending.pop(0)]))
                except OSError:
                    return True
        return False


SLOW_HEADERS = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
#: Header lines sent a byte every 0.2 seconds: more than the PATIENCE seconds a client waits.
TRICKLE = b"X-Slow: " + b"a" * int(PATIENCE / 0.2) + b"\r\n\r\n"


def test_a_connection_that_never_finishes_its_headers_is_closed(one_session: Path) -> None:
    """Slowloris: each connection that sent no request yet, or half of one, was held for ever."""
    source = open_source(str(one_session))
    try:
        with serving(create_app(source), header_timeout=1.0) as base:
            assert closed_by_the_server(base, b"")
            assert closed_by_the_server(base, SLOW_HEADERS, trickle=TRICKLE)
            # After an answer, the next request's headers are bounded as the first's.
            answered = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            assert closed_by_the_server(base, answered + SLOW_HEADERS, trickle=TRICKLE)
            assert get(base, "/healthz")[0] == 200  # a client that sends its request at once is answered
    finally:
        source.close()


def test_headers_past_their_limit_close_the_connection(one_session: Path) -> None:
    """httptools (the web extra's parser) keeps every header line: a client sending them for the whole timeout
    held all it sent in memory. Past HEADER_LIMIT bytes without their end, the connection is closed."""
    source = open_source(str(one_session))
    try:
        # Far longer than a client waits: only the limit can close the connection.
        with serving(create_app(source), header_timeout=3600, header_limit=4096) as base:
            assert closed_by_the_server(base, SLOW_HEADERS + b"X-Big: " + b"a" * 8192, trickle=TRICKLE)
            status, _ = get(base, "/healthz")
            assert status == 200  # headers within the limit are answered
    finally:
        source.close()


def test_the_serve_command_closes_a_connection_slow_to_send_its_headers(one_session: Path) -> None:
    with serve_command(one_session, "--header-timeout", "1") as base:
        assert closed_by_the_server(base, SLOW_HEADERS, trickle=TRICKLE)
        assert get(base, "/healthz")[0] == 200


def secure_cookie(base: str, headers: dict[str, str]) -> bool:
    status, answer, _ = fetch(
        base,
        "/login",
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
        data=f"token={TOKEN}",
    )
    assert status == 303
    jar: SimpleCookie = SimpleCookie()
    jar.load(answer["set-cookie"])
    return bool(jar[COOKIE]["secure"])


def test_a_proxys_scheme_is_believed_only_from_the_addresses_named(one_session: Path, tmp_path: Path) -> None:
    """Any local process could say X-Forwarded-Proto; behind a TLS proxy the cookie must still be Secure."""
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{TOKEN} *\n", encoding="utf-8")
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    with serve_command(one_session, "--token-file", str(tokens)) as base:
        assert not secure_cookie(base, https)
    with serve_command(one_session, "--token-file", str(tokens), "--forwarded-allow-ips", "127.0.0.1") as base:
        assert secure_cookie(base, https)
        assert not secure_cookie(base, {})  # the proxy said nothing: plain HTTP
    with serve_command(one_session, "--token-file", str(tokens), "--forwarded-allow-ips", "192.0.2.1") as base:
        assert not secure_cookie(base, https)  # not from the proxy named


def test_requests_for_many_table_names_make_the_server_read_its_tables_a_bounded_number_of_times(
    make_store: StoreFactory,
) -> None:
    """Each request for the list counted every table's rows, and each unknown table name opened a connection (on
    PostgreSQL, a new server process) to look for it: a client asking for name after name had the database do
    so as fast as it asked."""
    store = make_store(Mode.AGENT)
    store.upsert(make_session(Mode.AGENT, "a-1"))
    source = open_source(location(store))
    listings: list[bool] = []
    looks: list[str] = []
    tables, look = source.tables, source._look

    def counted_tables(*, count_rows: bool = True) -> Any:
        listings.append(count_rows)
        return tables(count_rows=count_rows)

    def counted_look(table: str, known: Any) -> Any:
        looks.append(table)
        return look(table, known)

    source.tables = counted_tables  # type: ignore[method-assign]
    source._look = counted_look  # type: ignore[method-assign]
    try:
        with serving(create_app(source)) as base:
            start = time.monotonic()
            for i in range(40):
                assert get(base, "/api/v1/tables")[0] == 200
                assert get(base, "/api/v1/sessions", table=f"no_such_table_{i}")[0] == 404
                assert fetch(base, f"/search?table=no_such_table_{i}")[0] == 200
                assert fetch(base, f"/usage?table=no_such_table_{i}")[0] == 404
            elapsed = time.monotonic() - start
            # The table asked for by its name is still read (and a table made meanwhile is found).
            status, body = get(base, "/api/v1/sessions", table=store.table_name)
            assert status == 200 and [s["session_id"] for s in body["sessions"]] == ["a-1"]
    finally:
        source.close()
    assert not [t for t in looks if t.startswith("no_such_table")]  # refused before a connection is opened
    # At most one read of each list (with row counts, and without) per FRESH_AFTER seconds (and the first).
    for counted in (True, False):
        assert listings.count(counted) <= elapsed / FRESH_AFTER + 2, (listings.count(counted), elapsed)


def test_a_sign_in_form_sent_a_byte_at_a_time_is_answered_408(
    one_session: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one request answered without a token read its body for as long as the client took to send it."""
    from agno_storage.web import pages

    monkeypatch.setattr(pages, "LOGIN_BODY_TIMEOUT", 1.0)
    source = open_source(str(one_session))
    try:
        with serving(create_app(source, parse_tokens(f"{TOKEN} *\n"))) as base:
            host, port = base.removeprefix("http://").rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=PATIENCE) as conn:
                conn.sendall(
                    b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                    b"Content-Length: 1000\r\n\r\ntoken="
                )
                conn.settimeout(0.2)
                answer = b""
                deadline = time.monotonic() + PATIENCE
                while not answer and time.monotonic() < deadline:
                    try:
                        answer = conn.recv(65536)
                        break
                    except TimeoutError:
                        conn.sendall(b"a")
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]
            status, _, _ = fetch(
                base,
                "/login",
                method="POST",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                data=f"token={TOKEN}",
            )
            assert status == 303  # a form sent at once signs in
    finally:
        source.close()


def test_health_checks_asked_for_again_and_again_open_a_bounded_number_of_connections(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/healthz answers without a token, and on PostgreSQL each opened a connection (a server process) as fast
    as anyone asked, several at once."""
    from agno_storage.web import source as source_module

    store = make_store(Mode.AGENT)
    store.upsert(make_session(Mode.AGENT, "a-1"))
    source = open_source(location(store))
    opened: list[float] = []
    open_database = source_module.open_database

    def counted(*args: Any, **kwargs: Any) -> Any:
        opened.append(time.monotonic())
        return open_database(*args, **kwargs)

    monkeypatch.setattr(source_module, "open_database", counted)
    try:
        with serving(create_app(source, parse_tokens(f"{TOKEN} *\n"))) as base:
            start = time.monotonic()
            with ThreadPoolExecutor(8) as pool:
                statuses = list(pool.map(lambda _: get(base, "/healthz")[0], range(200)))
            elapsed = time.monotonic() - start
    finally:
        source.close()
    assert statuses == [200] * 200
    assert len(opened) <= elapsed / FRESH_AFTER + 2, (len(opened), elapsed)


#: Bytes of the session a client asks for and never reads: far past the socket buffers of both ends.
BIG = 12_000_000


@pytest.fixture
def big_session(tmp_path: Path) -> Path:
    """A SQLite file holding one session, ``big``, of :data:`BIG` bytes."""
    db = tmp_path / "big.db"
    with SqliteStorage("agent_sessions", db_file=db) as store:
        store.upsert(make_session(Mode.AGENT, "big", session_data={"blob": "x" * BIG}))
    return db


def received_when_not_reading(base: str, pause: float) -> int:
    """Bytes of session ``big`` a client receives when it reads nothing for ``pause`` seconds and then all it can."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    with socket.socket() as conn:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        conn.settimeout(PATIENCE)
        conn.connect((host, int(port)))
        conn.sendall(b"GET /api/v1/sessions/big HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        time.sleep(pause)
        received = 0
        try:
            while chunk := conn.recv(1 << 20):
                received += len(chunk)
        except OSError:  # reset
            pass
    return received


def test_a_client_that_never_reads_a_large_answer_is_disconnected(big_session: Path) -> None:
    """An answer the client did not read stayed in the server's memory, its connection open, for ever: a client
    asking again and again for a big session could hold as many of them as it liked."""
    source = open_source(str(big_session))
    try:
        with serving(create_app(source), send_timeout=1.0) as base:
            assert received_when_not_reading(base, 4) < BIG  # reads nothing for longer than the server waits
            status, body = get(base, "/api/v1/sessions/big")  # a client that reads it gets it all
            assert status == 200 and len(body["session"]["session_data"]["blob"]) == BIG
    finally:
        source.close()


def test_the_serve_command_takes_the_send_timeout(big_session: Path) -> None:
    with serve_command(big_session, "--send-timeout", "1") as base:
        assert received_when_not_reading(base, 4) < BIG
        status, body = get(base, "/api/v1/sessions/big")
        assert status == 200 and len(body["session"]["session_data"]["blob"]) == BIG
    with serve_command(big_session, "--send-timeout", "60") as base:
        assert received_when_not_reading(base, 4) > BIG  # the answer waits as long as it is told to
    for wrong in ("0", "-1", "inf", "soon"):
        with pytest.raises(SystemExit) as exited:
            main(["serve", str(big_session), "--send-timeout", wrong])
        assert exited.value.code == 2


@contextmanager
def served_on_small_buffers(app: Any, **limits: float) -> Iterator[int]:
    """``app`` served as ``agno-storage serve`` serves it (``server_config``, on a socket of its own), its
    sockets' send buffers 4 KiB: an answer of tens of KiB overflows what the kernel holds of it. Yields the port."""
    import uvicorn

    listening = socket.socket()
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # the accepted sockets' too
    listening.bind(("127.0.0.1", 0))
    listening.listen(16)
    server = uvicorn.Server(server_config(app, **limits))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + PATIENCE
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        yield listening.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(PATIENCE)
        listening.close()


def read_answer(port: int, session_id: str, *, pause: float, step: int = 1 << 20, every: float = 0.0) -> int:
    """Bytes of the answer for ``session_id`` a client gets that reads nothing for ``pause`` seconds, then
    ``step`` bytes at a time, ``every`` seconds, until the connection ends."""
    with socket.socket() as conn:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        conn.settimeout(PATIENCE)
        conn.connect(("127.0.0.1", port))
        conn.sendall(f"GET /api/v1/sessions/{session_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        time.sleep(pause)
        received = 0
        try:
            while chunk := conn.recv(step):
                received += len(chunk)
                time.sleep(every)
        except OSError:  # reset
            pass
    return received


def test_a_client_that_never_reads_the_end_of_an_answer_is_disconnected(tmp_path: Path) -> None:
    """Writing stops and waits for the client only while more than 64 KiB wait for it: an answer whose last tens
    of KiB did not fit in the sockets' buffers waited for ever, and so did the closing connection, its file
    descriptor held, however long its client read nothing."""
    db = tmp_path / "mid.db"
    size = 50_000
    with SqliteStorage("agent_sessions", db_file=db) as store:
        store.upsert(make_session(Mode.AGENT, "mid", session_data={"blob": "x" * size}))
    source = open_source(str(db))
    try:
        with served_on_small_buffers(create_app(source), send_timeout=1.0, header_timeout=1.0) as port:
            assert read_answer(port, "mid", pause=4) < size  # the client read nothing past both timeouts
            # A client that goes on reading, if slowly, gets the whole answer.
            assert read_answer(port, "mid", pause=0.5, step=2048, every=0.1) > size
    finally:
        source.close()
