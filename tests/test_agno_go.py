"""An agno Agent on this store and a Go process see the same session."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("agno")

from tests.agno_runner import close_storages, run_turn


def test_an_agent_session_reads_the_same_through_the_go_reader(go_bin: Path, tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    run_turn("agent", "ours", str(db), "sess-go", "user-1", "first question <&>")
    run_turn("agent", "ours", str(db), "sess-go", "user-1", "second question")
    close_storages()

    from agno_storage import SqliteStorage

    ours = SqliteStorage("agent_sessions", db_file=db).read("sess-go")
    assert ours is not None and ours.memory is not None

    proc = subprocess.run(
        [str(go_bin / "reader"), "-db", str(db), "-mode", "agent", "-table", "agent_sessions", "-session", "sess-go"],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    theirs = json.loads(proc.stdout)["read"]["sess-go"]
    assert theirs is not None
    assert (theirs["session_id"], theirs["user_id"], theirs["agent_id"]) == ("sess-go", "user-1", ours.agent_id)
    # The agent's whole memory, runs and messages included, decodes to the same value in Go.
    assert theirs["memory"] == ours.memory
    assert theirs["session_data"] == ours.session_data
    assert theirs["agent_data"] == ours.agent_data
    runs = theirs["memory"]["runs"]
    asked = [m["content"] for run in runs for m in run.get("messages", []) if m.get("role") == "user"]
    assert len(runs) == 2
    assert asked[0] == "first question <&>" and asked[-1] == "second question"
