"""What one client's requests may cost everyone else: expensive reads at once, a request's time.

Starlette runs every handler in one thread pool (40 threads): without a
bound, 40 searches scanning a big table held every thread, and every other
request waited for them. :class:`Limits` holds the bounds a server keeps:

- at most ``expensive_at_once`` searches and usage reports (each may read a
  whole table) run at once; one more is answered 503 ``busy`` at once, with
  ``Retry-After``, holding no thread while it waits;
- a request's reads stop ``request_timeout`` seconds after it started
  (503 ``too_slow``): the reader's stores check the deadline before each
  statement (:func:`check_deadline`, their tracer), a SQLite statement
  checks it as it runs (:func:`past_deadline`, its progress handler), and
  a PostgreSQL server cancels a statement at its ``statement_timeout``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from agno_storage.backends.sqlite import SqliteStorage
from agno_storage.errors import InvalidInputError

#: Searches and usage reports (which may read a whole table) that run at once; more are 503 busy.
EXPENSIVE_AT_ONCE = 8
#: Seconds a request's reads may take; past them it is 503 too_slow.
REQUEST_TIMEOUT = 30.0
#: Seconds a client is told to wait before asking again when the expensive reads are all taken.
BUSY_RETRY_AFTER = 1
#: SQLite virtual machine steps between two looks at the deadline while a statement runs (well under a millisecond).
PROGRESS_STEPS = 10_000


class Refused(Exception):
    """A request the bounds refuse: ``status``, ``code``, ``message`` and the seconds of its ``Retry-After``."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


class TooSlow(Exception):
    """This thread's request is past its deadline (raised before its next statement)."""


_request = threading.local()


def past_deadline() -> bool:
    """Whether this thread's request is past its deadline (False outside a request)."""
    at: float | None = getattr(_request, "deadline", None)
    return at is not None and time.monotonic() > at


def check_deadline(statement: str, params: Sequence[Any] | None) -> None:
    """A store's tracer: TooSlow before a statement of a request past its deadline."""
    if past_deadline():
        raise TooSlow(statement)


class BoundedSqlite(SqliteStorage):
    """A SQLite store whose statements stop (``interrupted``) once their thread's request is past its deadline."""

    def _open(self) -> Any:
        handle = super()._open()
        handle.conn.set_progress_handler(past_deadline, PROGRESS_STEPS)
        return handle


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise InvalidInputError(f"{name} must be positive, got {value!r}")


class Limits:
    """The bounds of one server (see the module's text). Thread-safe."""

    def __init__(
        self,
        *,
        expensive_at_once: int = EXPENSIVE_AT_ONCE,
        request_timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        for name, value in (("expensive_at_once", expensive_at_once), ("request_timeout", request_timeout)):
            _positive(name, value)
        self.expensive_at_once = expensive_at_once
        self.request_timeout = request_timeout
        self._slots = threading.BoundedSemaphore(expensive_at_once)

    @contextmanager
    def request(self, *, expensive: bool) -> Iterator[None]:
        """Run a request's reads on this thread under its deadline; ``expensive`` takes one of the slots.

        Refused 503 ``busy`` when ``expensive`` and every slot is taken;
        Refused 503 ``too_slow`` for a read stopped at the deadline.
        """
        if expensive and not self._slots.acquire(blocking=False):
            raise Refused(
                503,
                "busy",
                f"{self.expensive_at_once} searches or usage reports are running: ask again shortly",
                BUSY_RETRY_AFTER,
            )
        _request.deadline = time.monotonic() + self.request_timeout
        try:
            yield
        except TooSlow:
            raise self._too_slow() from None
        except Exception as exc:
            # The database stopped the statement (SQLite: interrupted; PostgreSQL: its statement_timeout).
            if past_deadline() and not isinstance(exc, Refused):
                raise self._too_slow() from exc
            raise
        finally:
            _request.deadline = None
            if expensive:
                self._slots.release()

    def _too_slow(self) -> Refused:
        return Refused(
            503,
            "too_slow",
            f"the request took more than {self.request_timeout:g} seconds and was stopped; narrow it "
            "(user_id=, entity_id=, since=) or ask again later",
        )


__all__ = [
    "EXPENSIVE_AT_ONCE",
    "REQUEST_TIMEOUT",
    "BoundedSqlite",
    "Limits",
    "Refused",
    "TooSlow",
    "check_deadline",
    "past_deadline",
]
