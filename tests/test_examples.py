"""The examples run as a newcomer would run them, and print what they promise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(script: str, *args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_demo_writes_lists_and_reads_back_all_four_modes(tmp_path: Path) -> None:
    out = run("demo.py", str(tmp_path / "demo.db"))
    for mode in ("agent", "team", "workflow", "workflow_v2"):
        assert any(line.split()[:1] == [mode] for line in out.splitlines()), out
    assert "5 sessions in" in out


def test_agno_agent_example_prints_the_stored_session(tmp_path: Path) -> None:
    pytest.importorskip("agno")
    out = run("agno_agent.py", env={"TMPDIR": str(tmp_path)})
    assert "session_id" in out


def test_postgres_example_moves_a_session_by_url(pg_server: object) -> None:
    out = run("postgres_agent.py", env={"AGNO_STORAGE_PG_URL": pg_server.dsn})  # type: ignore[attr-defined]
    assert "sqlite:" in out and "postgresql:" in out
