"""``agno-storage serve`` pointed at PgBouncer, which cannot pass on the read-only setting serve starts with."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agno_storage import Mode
from tests.pgbouncer import require_pgbouncer, running_pgbouncer
from tests.pgserver import PgServer, create_database, require_pg
from tests.sessions import make_session

DATABASE = "agno_web_pooler"


@pytest.mark.parametrize("settings", [{}, {"ignore_startup_parameters": "options"}], ids=["refused", "ignored"])
def test_serve_through_a_pooler_that_drops_read_only_refuses_to_start_saying_why(
    pg_server: PgServer, settings: dict[str, str]
) -> None:
    """PgBouncer refuses the startup parameter ``options`` (or, told to ignore it, drops it silently): serve
    would not be read-only through it, and says so, naming the setting, instead of "cannot reach"."""
    require_pg()
    require_pgbouncer()
    from agno_storage.backends.postgres import PostgresStorage

    create_database(pg_server, DATABASE)
    with running_pgbouncer(pg_server, settings) as bouncer:
        url = bouncer.dsn(DATABASE)
        with PostgresStorage("agent_sessions", db_url=url, schema="ai", mode=Mode.AGENT) as store:
            store.upsert(make_session(Mode.AGENT, "s-1", "alice"))
        proc = subprocess.run(
            [sys.executable, "-m", "agno_storage", "serve", url, "--port", "0"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert proc.returncode == 2, proc.stderr
    assert "default_transaction_read_only" in proc.stderr and "pooler" in proc.stderr, proc.stderr
    assert "cannot reach" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
