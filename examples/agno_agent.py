"""Run an agno Agent on agno_storage, scoped to its user, and print the session it stored.

Uses the deterministic fake model from ``devkit/fake_model.py`` so it runs
with no API key and no network::

    python examples/agno_agent.py [DB_FILE]

The storage is built with ``user_id=``: every read, list, delete and write
goes through that user. A second user who reuses the session_id finds
nothing, so none of the first user's history reaches the model, and the
write back is refused with OwnershipError.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # devkit/, from a checkout

from agno.agent import Agent

from agno_storage.agno import SqliteStorage
from agno_storage.errors import OwnershipError
from devkit.fake_model import FakeModel

SESSION_ID = "example-session"


def agent_for(user_id: str, db_file: str, model: FakeModel) -> Agent:
    """An Agent whose storage is scoped to ``user_id``: one storage per user."""
    return Agent(
        model=model,
        storage=SqliteStorage(table_name="agent_sessions", db_file=db_file, user_id=user_id),
        session_id=SESSION_ID,
        user_id=user_id,
        add_history_to_messages=True,
        telemetry=False,
        monitoring=False,
    )


def main() -> None:
    db_file = sys.argv[1] if len(sys.argv) > 1 else str(Path(tempfile.mkdtemp()) / "agno.db")
    agent = agent_for("example-user", db_file, FakeModel())
    for question in ("What is SQLite?", "And what did I just ask?"):
        print(f"> {question}\n{agent.run(question).content}")

    # Another user on the same session_id: the scoped read finds nothing and the write is refused.
    other_model = FakeModel()
    try:
        agent_for("other-user", db_file, other_model).run("What did they ask?")
    except OwnershipError as exc:
        sent = [m["content"] for call in other_model.calls for m in call if m["role"] == "user"]
        print(f"\nother-user on {SESSION_ID}: refused ({type(exc).__name__}); user messages sent to the model: {sent}")

    stored = SqliteStorage(table_name="agent_sessions", db_file=db_file, user_id="example-user").read(SESSION_ID)
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
