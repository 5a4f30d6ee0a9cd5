"""Every install line a user can copy names this project's distribution, not the unrelated ``agno_storage``."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DIST = PYPROJECT["project"]["name"]
EXTRAS = set(PYPROJECT["project"]["optional-dependencies"])

#: ``pip install [options] 'NAME[extras]'``: NAME and the extras, quoted or not.
_INSTALL = re.compile(r"pip install(?: -[-\w]+)* '?([\w.-]+)(?:\[([\w,]+)\])?")

#: Where users read install lines. agno_storage/ joins once its messages name the distribution.
PLACES = ["README.md", "docs/*.md", "examples/*.py", "bench/*.py", "devkit/*.py", "agno_storage/**/*.py"]


def install_lines() -> list[Any]:
    found = []
    for pattern in PLACES:
        for path in sorted(ROOT.glob(pattern)):
            for match in _INSTALL.finditer(path.read_text()):
                extras = set(match[2].split(",")) if match[2] else set()
                where = f"{path.relative_to(ROOT)}: {match[0]}"
                found.append(pytest.param(where, match[1], extras, id=where))
    return found


def test_the_distribution_name_is_not_the_taken_one() -> None:
    assert DIST.replace("-", "_").lower() != "agno_storage"
    assert PYPROJECT["project"]["scripts"] == {"agno-storage": "agno_storage.cli:main"}


@pytest.mark.parametrize(("where", "name", "extras"), install_lines())
def test_install_line_names_the_distribution(where: str, name: str, extras: set[str]) -> None:
    assert name.replace("_", "-").lower() != "agno-storage" or name == DIST, where
    if extras & EXTRAS:  # our extras: from PyPI by our name, or from the clone
        assert name in (DIST, "."), where
        assert extras <= EXTRAS, where
