"""compat/setup-go-work.sh, which ``make test`` and the benchmarks run first."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_without_go_it_says_so_and_lets_make_test_go_on(tmp_path: Path) -> None:
    """README: without Go the Go tests skip; `make test` must not stop at its go-work step first."""
    compat = tmp_path / "compat"
    compat.mkdir()
    shutil.copy(ROOT / "compat" / "setup-go-work.sh", compat)
    tools = tmp_path / "bin"  # a PATH with the shell's tools and no go
    tools.mkdir()
    for tool in ("bash", "sed", "head", "rm", "dirname", "cat"):
        found = shutil.which(tool)
        assert found is not None, tool
        (tools / tool).symlink_to(found)
    env = {k: v for k, v in os.environ.items() if k != "AGNO_GOLANG_SRC"} | {"PATH": str(tools)}
    proc = subprocess.run(
        ["bash", str(compat / "setup-go-work.sh")], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "go is not on PATH" in proc.stderr
    assert sorted(p.name for p in compat.iterdir()) == ["setup-go-work.sh"]
