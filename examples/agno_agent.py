"""Run an agno Agent on agno_storage and print the session it stored.

Uses the deterministic fake model from ``devkit/fake_model.py`` so it runs
with no API key and no network::

    python examples/agno_agent.py [DB_FILE]
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # devkit/, from a checkout

from agno.agent import Agent

from agno_storage.agno import SqliteStorage
from devkit.fake_model import FakeModel


def main() -> None:
    db_file = sys.argv[1] if len(sys.argv) > 1 else str(Path(tempfile.mkdtemp()) / "agno.db")
    agent = Agent(
        model=FakeModel(),
        storage=SqliteStorage(table_name="agent_sessions", db_file=db_file),
        session_id="example-session",
        user_id="example-user",
        add_history_to_messages=True,
        telemetry=False,
        monitoring=False,
    )
    for question in ("What is SQLite?", "And what did I just ask?"):
        print(f"> {question}\n{agent.run(question).content}")

    stored = SqliteStorage(table_name="agent_sessions", db_file=db_file).read("example-session")
    assert stored is not None
    runs = (stored.memory or {}).get("runs", [])
    # The whole row is long (every run keeps its messages and metrics); show
    # its ids, timestamps and the conversation each stored run holds.
    shown = {
        "session_id": stored.session_id,
        "user_id": stored.user_id,
        "agent_id": stored.agent_id,
        "created_at": stored.created_at,
        "updated_at": stored.updated_at,
        "runs": len(runs),
        "messages": [
            f"{m['role']}: {m['content']}"
            for run in runs
            for m in run.get("messages") or []
            if m.get("role") in ("user", "assistant") and not m.get("from_history")
        ],
    }
    print(f"\nstored in {db_file}:")
    print(json.dumps(shown, indent=2))


if __name__ == "__main__":
    main()
