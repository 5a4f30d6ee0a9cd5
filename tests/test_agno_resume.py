"""Real agno runs resume their history from the file in a new process."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("agno")
pytest.importorskip("agno_storage.agno")

from tests.agno_runner import KINDS, assert_whole_history_reached, continue_elsewhere, seen_by_model


@pytest.mark.parametrize("kind", KINDS)
def test_history_written_by_us_reaches_the_model_in_a_new_process(kind: str, tmp_path: Path) -> None:
    assert_whole_history_reached(kind, continue_elsewhere(kind, "ours", "ours", str(tmp_path / "agno.db")))


@pytest.mark.parametrize("kind", KINDS)
def test_session_written_by_agno_resumes_on_our_storage(kind: str, tmp_path: Path) -> None:
    result = continue_elsewhere(kind, "agno", "ours", str(tmp_path / "agno.db"))
    seen = seen_by_model(result)
    assert "first question" in seen and "second question" in seen
    # The v2 workflow's own runs came from the workflow_v2 table, not only the step agent's.
    assert result["loaded_runs"] == (2 if kind == "workflow_v2" else None)


@pytest.mark.parametrize("kind", KINDS)
def test_session_written_by_us_resumes_on_agnos_storage(kind: str, tmp_path: Path) -> None:
    result = continue_elsewhere(kind, "ours", "agno", str(tmp_path / "agno.db"))
    seen = seen_by_model(result)
    assert "first question" in seen and "second question" in seen
    # The v2 workflow's own runs came from the workflow_v2 table, not only the step agent's.
    assert result["loaded_runs"] == (2 if kind == "workflow_v2" else None)
