"""The agno 3.1.10 interpreter: a venv of its own, made once and kept in .venv-agno3/ (for tests and benchmarks).

agno 3.1.10 and agno 1.8.4 are both the ``agno`` package, so they cannot
share a venv: the tests run agno 3 code in a subprocess with this one.
``AGNO3_VENV=DIR`` puts it elsewhere. The first call downloads the packages.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("AGNO3_VENV", ROOT / ".venv-agno3"))
PACKAGES = ("agno==3.1.10", "sqlalchemy==2.1.9", "greenlet", "psycopg[binary]")
RUNNER = Path(__file__).resolve().parent / "agno3_runner.py"


def python() -> Path:
    """The venv's interpreter, the venv made first if it is not there (or lacks agno 3.1.10)."""
    exe = VENV / "bin" / "python"
    stamp = VENV / ".agno3-packages"
    if exe.exists() and stamp.exists() and stamp.read_text() == " ".join(PACKAGES):
        return exe
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(exe), "-m", "pip", "install", "--quiet", *PACKAGES], check=True)
    stamp.write_text(" ".join(PACKAGES))
    return exe


def run_code(code: str, *args: str) -> str:
    """Run ``code`` under agno 3.1.10; its stdout. AssertionError with stderr if it fails."""
    done = subprocess.run([str(python()), "-c", code, *args], capture_output=True, text=True, timeout=300, env=_env())
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def resume(kind: str, db: str, session_id: str, user_id: str, entity_id: str, message: str) -> dict[str, Any]:
    """One agno 3 turn on a migrated session (devkit/agno3_runner.py); what its model saw and what agno 3 read."""
    done = subprocess.run(
        [str(python()), str(RUNNER), kind, db, session_id, user_id, entity_id, message],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _env() -> dict[str, str]:
    return {**os.environ, "AGNO_TELEMETRY": "false", "PYTHONPATH": ""}
