"""The sessions of one ``upsert_many``, taken from the caller's iterable and encoded a batch at a time.

:class:`Batches` bounds memory (one batch in hand) and keeps what it took
while that is little enough to hand out again: an engine that reruns a
write after a lost connection replays the same rows. An error of the
caller's iterable comes out as :class:`IterableError`, never taken for the
engine's own.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

from agno_storage.errors import StorageError

#: Sessions encoded per executemany in upsert_many: bounds memory, not the transaction.
BATCH_SIZE = 500
#: upsert_many keeps the rows it has taken from its iterable while they are at most
#: this many, so a write that failed before its commit can be run again whole.
REPLAY_LIMIT = 4 * BATCH_SIZE


class Batches:
    """The encoded rows of one ``upsert_many``, taken in batches from a lazy iterable.

    Iterating again replays the rows taken so far, then goes on with the
    rest, while they number at most ``keep``; past that, :meth:`replayable`
    is False and a second pass raises StorageError instead of losing rows.
    An error of ``rows`` is raised as :class:`IterableError`.
    """

    def __init__(self, rows: Iterable[list[Any]], *, size: int = BATCH_SIZE, keep: int = REPLAY_LIMIT) -> None:
        self._rows = iter(rows)
        self._size = size
        self._keep = keep
        self._taken: list[list[Any]] = []
        self._kept = True
        self._started = False

    def replayable(self) -> bool:
        """True while every row taken so far can be handed out again."""
        return self._kept

    def __iter__(self) -> Iterator[list[list[Any]]]:
        if self._started and not self._kept:
            raise StorageError("an upsert_many that took more than its replay limit cannot be run again")
        self._started = True
        for start in range(0, len(self._taken), self._size):
            yield self._taken[start : start + self._size]
        while batch := self._take():
            if self._kept:
                if len(self._taken) + len(batch) <= self._keep:
                    self._taken.extend(batch)
                else:
                    self._kept = False
                    self._taken = []
            yield batch

    def take_first(self) -> bool:
        """Take the first batch now (before any pass; the first pass hands it out); False if there is none."""
        if not self._started and not self._taken:
            self._taken = self._take()
        return bool(self._taken)

    def _take(self) -> list[list[Any]]:
        try:
            return list(itertools.islice(self._rows, self._size))
        except Exception as exc:
            # The caller's iterable failed, not the engine: an engine that reruns a write after a driver error of
            # its own must not take this one for it (a psycopg error from a source the iterable reads, say).
            raise IterableError(exc) from None


class IterableError(Exception):
    """An error the sessions given to ``upsert_many`` raised while it took them; :attr:`error` is that error."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


__all__ = ["BATCH_SIZE", "REPLAY_LIMIT", "Batches", "IterableError"]
