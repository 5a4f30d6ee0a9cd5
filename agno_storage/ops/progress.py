"""How long-running operations report how far they got, without knowing who draws it."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Told the total once (``None`` if unknown), then each step's count of sessions done."""

    def start(self, total: int | None) -> None: ...

    def advance(self, count: int) -> None: ...


class NoProgress:
    """Reports nowhere."""

    def start(self, total: int | None) -> None:
        pass

    def advance(self, count: int) -> None:
        pass


__all__ = ["NoProgress", "Progress"]
