"""One agent session, written to SQLite and then to PostgreSQL by changing one URL.

Run ``python examples/postgres_agent.py``. With ``AGNO_STORAGE_PG_URL`` set
(``postgresql://user@host/db``) it uses that server: it writes session
``demo-1`` into ``ai.agent_sessions`` and removes it at the end (the table
too, if it made it). Otherwise it starts a throwaway local one through
devkit/pgserver.py (PostgreSQL's server binaries must be installed) and
removes it at the end.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # devkit/, from a checkout

from agno_storage import AgentSession
from agno_storage.urls import open_storage


@contextlib.contextmanager
def postgres_url() -> Iterator[str]:
    url = os.environ.get("AGNO_STORAGE_PG_URL")
    if url:
        yield url
        return
    from devkit.pgserver import running_server

    with running_server() as server:
        yield server.dsn


def save_and_load(url: str) -> AgentSession:
    """The same code for either engine: only the URL differs."""
    with open_storage(url, "agent_sessions", mode="agent") as store:
        store.upsert(
            AgentSession(
                session_id="demo-1",
                user_id="alice",
                agent_id="helper",
                memory={"runs": [{"input": "hi", "content": "hello"}]},
                session_data={"session_name": "demo"},
            )
        )
        got = store.read("demo-1", user_id="alice")
        assert isinstance(got, AgentSession)
        return got


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        lite = save_and_load(f"sqlite:///{tmp}/sessions.db")
        print("sqlite:    ", lite.session_id, lite.memory, lite.created_at)
    with postgres_url() as url:
        with open_storage(url, "agent_sessions") as store:
            existed = store.table_exists()
        pg = save_and_load(url)
        print("postgresql:", pg.session_id, pg.memory, pg.created_at)
        with open_storage(url, "agent_sessions") as store:
            # On a server of your own, the table may hold your sessions: remove only what this wrote.
            if existed:
                store.delete("demo-1", user_id="alice")
            else:
                store.drop()
    assert (lite.memory, lite.session_data) == (pg.memory, pg.session_data)


if __name__ == "__main__":
    main()
