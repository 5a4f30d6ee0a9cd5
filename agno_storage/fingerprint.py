"""Hashing stored values as they are: each with its type and length first, so no two rows feed the same bytes.

The search index's per-session marks (``search_index.mark``)
and ``to_agno3``'s source stamps (``agno3.chunks.stamp``) hash stored rows
with this: the text a column holds, to the byte, not the values decoded and
encoded again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any


def feed(h: hashlib._Hash, value: Any) -> None:
    """Add one stored value (text, bytes, number, NULL) to ``h``."""
    if value is None:
        h.update(b"n")
        return
    if type(value) is bytes:
        data, tag = value, b"b"
    elif type(value) is str:
        data, tag = value.encode("utf-8", "surrogatepass"), b"s"
    else:
        data, tag = repr(value).encode(), type(value).__name__.encode()
    h.update(b"%s%d:" % (tag, len(data)))
    h.update(data)


def feed_all(h: hashlib._Hash, values: Iterable[Any]) -> None:
    """:func:`feed` each of ``values`` in order."""
    for value in values:
        feed(h, value)


__all__ = ["feed", "feed_all"]
