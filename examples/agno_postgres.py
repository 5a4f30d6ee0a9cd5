"""An agno Agent whose storage is one URL: SQLite or PostgreSQL, nothing else changes.

Uses the fake model from ``devkit/fake_model.py`` (no API key, no network)::

    python examples/agno_postgres.py        # a SQLite file in the temp dir
    python examples/agno_postgres.py        # again: the Agent resumes its history
    AGNO_STORAGE_URL=postgresql://app@db/app python examples/agno_postgres.py
    python examples/agno_postgres.py --local-postgres   # throwaway server, two turns

``--local-postgres`` starts a server through ``devkit/pgserver.py`` (PostgreSQL's
server binaries must be installed) and removes it at the end. The storage is
scoped to the Agent's user with ``user_id=``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # devkit/, from a checkout

from agno.agent import Agent

from agno_storage.agno import SqliteStorage
from devkit.fake_model import FakeModel

USER_ID = "example-user"


def ask(url: str, question: str) -> None:
    """One turn of a fresh Agent; the URL alone says where its session lives."""
    model = FakeModel()
    # sqlite:///... or postgresql://...; user_id= scopes every read and write to this user.
    storage = SqliteStorage(table_name="agent_sessions", db_url=url, user_id=USER_ID)
    agent = Agent(
        model=model,
        storage=storage,
        session_id="example-session",
        user_id=USER_ID,
        add_history_to_messages=True,
        telemetry=False,
        monitoring=False,
    )
    reply = agent.run(question).content
    storage.close()
    earlier = [m["content"] for m in model.calls[-1] if m["role"] == "user"][:-1]
    print(f"> {question}\n{reply}\n  (history loaded: {earlier})")


def main() -> None:
    if "--local-postgres" in sys.argv[1:]:
        from devkit.pgserver import running_server

        with running_server() as server:
            print(f"storage: {server.dsn}")
            ask(server.dsn, "Hello from PostgreSQL")
            ask(server.dsn, "What did I say before?")
        return
    default = f"sqlite:///{tempfile.gettempdir()}/agno_storage_example/agno.db"
    url = os.environ.get("AGNO_STORAGE_URL", default)
    print(f"storage: {url}")
    ask(url, f"Hello, pid {os.getpid()}")


if __name__ == "__main__":
    main()
