"""``agno-storage serve`` when the SQLite file itself is replaced, moved away or overwritten, and what
``/healthz`` then says, and to whom."""

from __future__ import annotations

import os
import time
from pathlib import Path

from agno_storage import Mode, SqliteStorage
from agno_storage.web.auth import parse_tokens
from agno_storage.web.source import FRESH_AFTER
from tests.sessions import make_session
from tests.test_web_api import Serve
from tests.web_client import get, get_page

TOKEN = "all-users-token-0123456789"


def a_file(path: Path, *session_ids: str) -> Path:
    """A SQLite file at ``path`` with one agent sessions table holding ``session_ids``."""
    with SqliteStorage("agent_sessions", db_file=path) as store:
        store.upsert_many(make_session(Mode.AGENT, sid, "user-1") for sid in session_ids)
    return path


def listed(base: str) -> set[str]:
    status, body = get(base, "/api/v1/sessions", table="agent_sessions", limit=50)
    assert status == 200, body
    return {s["session_id"] for s in body["sessions"]}


def test_a_file_replaced_by_another_is_read_as_it_is_now(tmp_path: Path, serve: Serve) -> None:
    db = a_file(tmp_path / "live.db", "old-1", "old-2")
    restored = a_file(tmp_path / "restored.db", "new-1")
    # Never looked at again on a timer: the same table layout in the new file must not keep the old reader.
    with serve(str(db), recheck_after=3600) as base:
        for _ in range(3):  # readers and connections made, on several worker threads
            assert listed(base) == {"old-1", "old-2"}
            assert get(base, "/api/v1/sessions/old-1", table="agent_sessions")[0] == 200
            assert get(base, "/healthz")[0] == 200
        os.replace(restored, db)  # a restore moved into place, as backup tools do it

        assert listed(base) == {"new-1"}
        assert get(base, "/api/v1/sessions/old-1", table="agent_sessions")[0] == 404
        assert get(base, "/api/v1/sessions/new-1", table="agent_sessions")[0] == 200
        status, _, html = get_page(base, "/?table=agent_sessions")
        assert status == 200 and "new-1" in html and "old-1" not in html
        assert get(base, "/healthz")[0] == 200


def test_a_file_moved_away_is_503_until_one_is_back(tmp_path: Path, serve: Serve) -> None:
    db = a_file(tmp_path / "live.db", "s-1")
    with serve(str(db)) as base:
        assert listed(base) == {"s-1"}
        assert get(base, "/healthz")[0] == 200
        db.rename(tmp_path / "moved.db")

        for path, query in (
            ("/healthz", {}),
            ("/api/v1/tables", {}),
            ("/api/v1/sessions", {"table": "agent_sessions"}),
            ("/api/v1/sessions/s-1", {"table": "agent_sessions"}),
            ("/api/v1/search", {"table": "agent_sessions", "q": "hello"}),
        ):
            status, body = get(base, path, **query)
            assert (status, body["error"]["code"]) == (503, "unavailable"), (path, body)
        status, _, html = get_page(base, "/?table=agent_sessions")
        assert status == 503 and "<html" in html.lower()

        (tmp_path / "moved.db").rename(db)  # put back: served again
        assert listed(base) == {"s-1"}
        assert get(base, "/healthz")[0] == 200


def test_the_health_check_reads_the_file_the_path_names_now(tmp_path: Path, serve: Serve) -> None:
    db = a_file(tmp_path / "live.db", "s-1")
    with serve(str(db)) as base:
        assert get(base, "/healthz") == (200, {"status": "ok"})
        db.rename(tmp_path / "moved.db")
        db.write_bytes(b"not a database " * 1000)  # another file, which is no database
        status, body = get(base, "/healthz")
        assert (status, body["error"]["code"]) == (503, "unavailable"), body
        db.unlink()
        assert get(base, "/healthz")[0] == 503
        a_file(db, "s-2")
        assert get(base, "/healthz") == (200, {"status": "ok"})


def test_the_health_check_tells_where_the_database_is_only_to_a_token_holder(tmp_path: Path, serve: Serve) -> None:
    db = a_file(tmp_path / "live.db", "s-1")
    with serve(str(db), parse_tokens(f"{TOKEN} *\n")) as base:
        assert get(base, "/healthz") == (200, {"status": "ok"})
        db.unlink()
        status, body = get(base, "/healthz")
        assert (status, body["error"]["code"]) == (503, "unavailable")
        assert str(tmp_path) not in str(body) and db.name not in str(body)
        status, body = get(base, "/healthz", TOKEN)  # a token holder is told why
        assert status == 503 and str(db) in body["error"]["message"]


def test_the_health_check_of_a_postgres_server_gone_away_does_not_name_it_to_anyone(tmp_path: Path) -> None:
    from agno_storage import PostgresStorage
    from agno_storage.web.app import create_app
    from agno_storage.web.run import serving
    from agno_storage.web.source import PostgresSource
    from tests.pgserver import SUPERUSER, require_pg, running_server

    require_pg()
    with running_server() as own:
        with PostgresStorage("agent_sessions", db_url=own.dsn) as store:
            store.upsert(make_session(Mode.AGENT, "s-1"))
        source = PostgresSource(own.dsn, connect_timeout=1.0)
        try:
            with serving(create_app(source, parse_tokens(f"{TOKEN} *\n"))) as base:
                assert get(base, "/healthz") == (200, {"status": "ok"})
                own.stop()
                time.sleep(FRESH_AFTER)  # an answer is taken for FRESH_AFTER seconds
                status, body = get(base, "/healthz")
                assert (status, body["error"]["code"]) == (503, "unavailable"), body
                shown = str(body)
                assert str(own.port) not in shown and "127.0.0.1" not in shown and SUPERUSER not in shown, shown
                status, body = get(base, "/healthz", TOKEN)
                assert status == 503 and str(own.port) in body["error"]["message"]
        finally:
            source.close()
