"""Real agno runs resume their history from the file in a new process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("agno")
pytest.importorskip("agno_storage.agno")

from tests.agno_runner import run_turn

RUNNER = Path(__file__).resolve().parent / "agno_runner.py"
KINDS = ["agent", "team", "workflow", "workflow_v2"]


def run_in_new_process(kind: str, store: str, db: Path, session_id: str, message: str) -> dict[str, Any]:
    """One turn in a fresh interpreter; what its model saw."""
    env = {**os.environ, "AGNO_TELEMETRY": "false", "AGNO_MONITOR": "false"}
    done = subprocess.run(
        [sys.executable, str(RUNNER), kind, store, str(db), session_id, "user-1", message],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def seen_by_model(result: dict[str, Any]) -> str:
    """Every text the model was sent on its last call, joined."""
    return "\n".join(m["content"] for m in result["calls"][-1])


def continue_elsewhere(kind: str, first: str, second: str, db: Path) -> dict[str, Any]:
    session_id = f"resume-{kind}"
    for message in ("first question", "second question"):
        run_turn(kind, first, str(db), session_id, "user-1", message)
    return run_in_new_process(kind, second, db, session_id, "third question")


@pytest.mark.parametrize("kind", KINDS)
def test_history_written_by_us_reaches_the_model_in_a_new_process(kind: str, tmp_path: Path) -> None:
    result = continue_elsewhere(kind, "ours", "ours", tmp_path / "agno.db")
    seen = seen_by_model(result)
    assert "first question" in seen
    assert "second question" in seen
    assert "third question" in seen
    # The earlier replies (assistant messages) came back from the file too.
    assert f"{kind} #1: first question" in seen
    if kind == "workflow_v2":
        assert result["loaded_runs"] == 2


@pytest.mark.parametrize("kind", KINDS)
def test_session_written_by_agno_resumes_on_our_storage(kind: str, tmp_path: Path) -> None:
    seen = seen_by_model(continue_elsewhere(kind, "agno", "ours", tmp_path / "agno.db"))
    assert "first question" in seen and "second question" in seen


@pytest.mark.parametrize("kind", KINDS)
def test_session_written_by_us_resumes_on_agnos_storage(kind: str, tmp_path: Path) -> None:
    seen = seen_by_model(continue_elsewhere(kind, "ours", "agno", tmp_path / "agno.db"))
    assert "first question" in seen and "second question" in seen
