"""Write a session of every mode into one SQLite file, list them, read them back, print a table.

Run: python examples/demo.py [path/to/file.db]

With a path the file is kept (``make demo`` writes data/agno.db, for the
``agno-storage`` command to read next); running it again rewrites the same
five sessions. Without one it works in a temporary directory removed at the end.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from agno_storage import (
    AgentSession,
    Mode,
    Session,
    SqliteStorage,
    TeamSession,
    WorkflowSession,
    WorkflowSessionV2,
)


def sample_sessions() -> dict[Mode, list[Session]]:
    # One run as agno 1.x keeps it (a RunResponse's run_id and messages), so history and search read it.
    said = [{"role": "user", "content": "What is WAL?"}, {"role": "assistant", "content": "A journal mode."}]
    memory = {"runs": [{"run_id": "r1", "session_id": "agent-s1", "messages": said}], "summary": None}
    return {
        Mode.AGENT: [
            AgentSession(session_id="agent-s1", user_id="ada", agent_id="helper", memory=memory),
            AgentSession(session_id="agent-s2", user_id="bob", agent_id="helper", team_session_id="team-s1"),
        ],
        Mode.TEAM: [TeamSession(session_id="team-s1", user_id="bob", team_id="research", team_data={"members": 2})],
        Mode.WORKFLOW: [WorkflowSession(session_id="wf-s1", user_id="ada", workflow_id="nightly")],
        Mode.WORKFLOW_V2: [
            WorkflowSessionV2(
                session_id="wf2-s1",
                user_id="ada",
                workflow_id="pipeline",
                workflow_name="Blog pipeline",
                runs=[{"run_id": "r1", "status": "COMPLETED"}],
            )
        ],
    }


def main(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, ...]] = []
    for mode, sessions in sample_sessions().items():
        with SqliteStorage(table_name=f"{mode.value}_sessions", db_file=path, mode=mode) as store:
            store.upsert_many(sessions)
            for listed in store.list():
                back = store.read(listed.session_id, user_id=listed.user_id)
                assert back == listed
                rows.append(
                    (
                        mode.value,
                        back.session_id,
                        back.user_id or "",
                        back.entity_id or "",
                        str(back.created_at),
                        str(len(str(back.memory or ""))),
                    )
                )
    header = ("mode", "session_id", "user_id", "entity_id", "created_at", "memory chars")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    print(f"\n{len(rows)} sessions in {path}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp) / "demo.db")
