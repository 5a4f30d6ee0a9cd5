"""Write agno_storage/fts5_chars.py: which characters FTS5's unicode61 tokenizer takes into a word.

    python devkit/fts5_chars.py [--check]

Asks the SQLite that Python's ``sqlite3`` links: every code point but the
surrogates goes into an FTS5 table (``unicode61 remove_diacritics 0``, as
the search index makes it) twice, inside a word (``q<c>z``) and at its start
(``<c>z``), and ``fts5vocab`` tells which came back as one word. The module
written holds the ranges of code points that separate words and those that
are part of a word but never start one. ``--check`` exits 1 if the module
differs from what this SQLite gives. Takes about half a minute.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "agno_storage" / "fts5_chars.py"


def classify() -> tuple[list[tuple[int, int]], list[int]]:
    """(separator ranges, code points that are part of a word but never start one), as this SQLite's FTS5 has them."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize = 'unicode61 remove_diacritics 0')")
    conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    points = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    rows = ((c * 2 + k, text) for c in points for k, text in enumerate((f"q{chr(c)}z", f"{chr(c)}z")))
    conn.executemany("INSERT INTO t (rowid, x) VALUES (?, ?)", rows)
    terms: dict[int, list[str]] = {}
    for doc, term in conn.execute("SELECT doc, term FROM v ORDER BY doc, offset"):
        terms.setdefault(doc, []).append(term)
    separators: list[tuple[int, int]] = []
    not_first: list[int] = []
    for c in points:
        inside = terms.get(c * 2, [])
        if inside == ["q", "z"]:
            if separators and separators[-1][1] == c - 1:
                separators[-1] = (separators[-1][0], c)
            else:
                separators.append((c, c))
        elif len(inside) != 1:
            raise AssertionError(f"U+{c:04X} inside a word gave {inside!r}")
        elif terms.get(c * 2 + 1, []) == ["z"]:
            not_first.append(c)
    return separators, not_first


def render(separators: list[tuple[int, int]], not_first: list[int]) -> str:
    lines = [
        '"""Which characters FTS5\'s unicode61 tokenizer (``remove_diacritics 0``) takes into a word, as data.',
        "",
        f"Written by ``python devkit/fts5_chars.py`` from SQLite {sqlite3.sqlite_version}'s FTS5; do not edit.",
        "Every code point not in :data:`SEPARATORS` is part of a word (unassigned ones",
        "and those of scripts newer than the tokenizer's tables included), which",
        "is how FTS5 splits text; :mod:`agno_storage.search` splits it the same way.",
        '"""',
        "",
        "#: Inclusive (first, last) code point ranges that separate words.",
        "SEPARATORS: tuple[tuple[int, int], ...] = (",
        *(f"    (0x{a:04X}, 0x{b:04X})," for a, b in separators),
        ")",
        "#: Code points that are part of a word but never start one (FTS5 drops them there).",
        "NOT_FIRST: tuple[int, ...] = (",
        *(f"    0x{c:04X}," for c in not_first),
        ")",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python devkit/fts5_chars.py", description=__doc__)
    p.add_argument("--check", action="store_true", help="exit 1 if the module differs from this SQLite's FTS5")
    args = p.parse_args(argv)
    text = render(*classify())
    if args.check:
        # The data must agree; the version line and the layout ruff gives the file may differ.
        def data(source: str) -> tuple[object, object]:
            namespace: dict[str, object] = {}
            exec(source, namespace)  # this repository's own generated module
            return namespace["SEPARATORS"], namespace["NOT_FIRST"]

        same = data(OUT.read_text()) == data(text)
        print(
            "agno_storage/fts5_chars.py agrees with this SQLite's FTS5" if same else "it differs: run without --check"
        )
        return 0 if same else 1
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
