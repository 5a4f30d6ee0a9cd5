"""Every test the docs name is there: a guarantee's reference leads to the test that checks it."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# ``tests/f.py::test_x``, ``::test_x`` (in the file named last before it), or a file alone.
REFERENCE = re.compile(r"(tests/[\w/]+\.py)?::(test_\w+)|(tests/[\w/]+\.py)")
# A test named alone, in backquotes (the reliability page's table, compat.md's Go items).
BARE = re.compile(r"(?<![:\w])`(test_\w+)`")


@cache
def functions_in(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return frozenset(n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))


def references(text: str) -> Iterator[tuple[str | None, str | None]]:
    """(file, test) for each reference; test is None for a file named alone, file None for ``::test`` with none."""
    last: str | None = None
    for match in REFERENCE.finditer(text):
        if match.group(3):
            last = match.group(3)
            yield last, None
            continue
        last = match.group(1) or last
        yield last, match.group(2)


def missing_references(text: str) -> list[str]:
    every_test = {n for path in (ROOT / "tests").glob("test_*.py") for n in functions_in(path)}
    missing = []
    for file, test in references(text):
        if file is None or not (ROOT / file).is_file():
            missing.append(f"{file}::{test}")
        elif test is not None and test not in functions_in(ROOT / file):
            missing.append(f"{file}::{test}")
    missing += [f"`{name}`" for name in BARE.findall(text) if name not in every_test]
    return missing


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_every_test_a_doc_names_is_in_the_file_it_names(doc: Path) -> None:
    assert missing_references(doc.read_text(encoding="utf-8")) == [], f"{doc.name} names tests that are not there"


def test_a_shorthand_reference_is_looked_up_in_the_file_named_last() -> None:
    text = "(`tests/test_errors.py::test_errors_pickle_with_their_attributes`, `::test_wide_integer_scan`)"
    assert missing_references(text) == ["tests/test_errors.py::test_wide_integer_scan"]
    assert missing_references("`tests/test_codec.py`; `::test_wide_integer_scan`, `test_no_such_test`") == [
        "`test_no_such_test`"
    ]
