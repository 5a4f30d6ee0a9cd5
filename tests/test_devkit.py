"""The examples, the benchmarks and devkit/ need neither pytest nor tests/: a plain install runs them."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pgserver import require_pg

ROOT = Path(__file__).resolve().parent.parent

#: Modules only the test suite may import.
TEST_ONLY = {"pytest", "_pytest", "tests", "hypothesis", "support", "pgserver", "fake_model"}


def imported_roots(path: Path) -> set[str]:
    """The top-level names of every module ``path`` imports, at any depth of its code."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize(
    "path",
    sorted(p for folder in ("examples", "bench", "devkit") for p in (ROOT / folder).glob("*.py")),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_module_imports_no_test_code(path: Path) -> None:
    assert imported_roots(path) & TEST_ONLY == set()


def test_bench_finds_the_postgres_server_helper_without_pytest(tmp_path: Path) -> None:
    require_pg()
    for name in ("pytest", "_pytest"):
        (tmp_path / f"{name}.py").write_text(f"raise ModuleNotFoundError('No module named {name!r}', name={name!r})\n")
    proc = subprocess.run(
        [sys.executable, "-c", "from bench import pg; print(pg.missing())"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "None"
