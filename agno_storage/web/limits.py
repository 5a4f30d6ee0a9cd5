"""What one client's requests may cost everyone else: expensive reads at once, a request's time, failed tokens.

Starlette runs every handler in one thread pool (40 threads): without a
bound, 40 searches scanning a big table held every thread, and every other
request waited for them. :class:`Limits` holds the bounds a server keeps:

- at most ``expensive_at_once`` searches and usage reports (each may read a
  whole table) run at once; one more is answered 503 ``busy`` at once, with
  ``Retry-After``, holding no thread while it waits;
- a request's reads stop ``request_timeout`` seconds after it started
  (503 ``too_slow``): the reader's stores check the deadline before each
  statement (:func:`check_deadline`, their tracer), a SQLite statement
  checks it as it runs (:func:`past_deadline`, its progress handler), a
  PostgreSQL server cancels a statement at its ``statement_timeout``, and
  the raw connections of the list of tables (whose SQLite row counts are
  one step no progress handler sees, and which runs several PostgreSQL
  statements a table) are interrupted (:func:`interrupt_at_deadline`);
- a client address (an IPv6 client's /64) that sent ``failures_allowed``
  wrong tokens within ``failure_window`` seconds is answered 429 for any
  token it has not used successfully before, until the oldest of those
  failures is that old. At most ``clients_kept`` addresses are remembered.

A token that worked from an address before its failures goes on working:
someone sharing the address (a NAT, a proxy) cannot lock its holder out.
A right guess after the failures is refused like a wrong one, so the bound
holds for every token not in use from that address.
"""

from __future__ import annotations

import collections
import ipaddress
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import attrs

from agno_storage.backends.sqlite import SqliteStorage
from agno_storage.errors import InvalidInputError
from agno_storage.web.auth import Principal, Tokens

#: Searches and usage reports (which may read a whole table) that run at once; more are 503 busy.
EXPENSIVE_AT_ONCE = 8
#: Seconds a request's reads may take; past them it is 503 too_slow.
REQUEST_TIMEOUT = 30.0
#: Wrong tokens a client address may send within FAILURE_WINDOW seconds before it is answered 429.
FAILURES_ALLOWED = 20
#: Seconds a wrong token counts against its address.
FAILURE_WINDOW = 60.0
#: Client addresses whose failures (and tokens that worked) are remembered; the least recent are forgotten.
CLIENTS_KEPT = 4096
#: Seconds a client is told to wait before asking again when the expensive reads are all taken.
BUSY_RETRY_AFTER = 1
#: SQLite virtual machine steps between two looks at the deadline while a statement runs (well under a millisecond).
PROGRESS_STEPS = 10_000
#: Seconds between two interrupts of a connection past its deadline (one that came between two statements is lost).
INTERRUPT_EVERY = 0.05


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


def remaining() -> float | None:
    """Seconds left before this thread's request's deadline (0 past it); None outside a request."""
    at: float | None = getattr(_request, "deadline", None)
    return None if at is None else max(0.0, at - time.monotonic())


def interrupt_at_deadline(interrupt: Callable[[], object]) -> Callable[[], None]:
    """Call ``interrupt`` (a connection's, stopping its statement) from this thread's request's deadline on; call
    what it returns to stop.

    A SQLite progress handler is called between the steps of a statement,
    and ``SELECT COUNT(*) FROM t`` counts the whole table in one step; a
    PostgreSQL ``statement_timeout`` bounds one statement, not the many of
    the list of tables. ``interrupt`` is called again every
    :data:`INTERRUPT_EVERY` seconds, since one that comes while no
    statement runs is forgotten, until the connection is closed.
    Outside a request it does nothing. Costs a thread while armed.
    """
    left = remaining()
    if left is None:
        return lambda: None
    stopped = threading.Event()

    def watch() -> None:
        if stopped.wait(left):
            return
        while True:
            try:
                interrupt()
            except sqlite3.ProgrammingError:  # closed (psycopg's cancel does nothing then): nothing left to stop
                return
            if stopped.wait(INTERRUPT_EVERY):
                return

    threading.Thread(target=watch, name="agno-storage-deadline", daemon=True).start()
    return stopped.set


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


def client_key(address: str | None) -> str:
    """The client an address counts as: the address, an IPv6 address's /64 (one host's usual share)."""
    if address is None:
        return ""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@attrs.define
class _Client:
    """One address's recent failures (monotonic times, oldest first) and the tokens that worked from it."""

    failures: collections.deque[float]
    known: set[str] = attrs.field(factory=set)


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
        failures_allowed: int = FAILURES_ALLOWED,
        failure_window: float = FAILURE_WINDOW,
        clients_kept: int = CLIENTS_KEPT,
    ) -> None:
        for name, value in (
            ("expensive_at_once", expensive_at_once),
            ("request_timeout", request_timeout),
            ("failures_allowed", failures_allowed),
            ("failure_window", failure_window),
            ("clients_kept", clients_kept),
        ):
            _positive(name, value)
        self.expensive_at_once = expensive_at_once
        self.request_timeout = request_timeout
        self.failures_allowed = failures_allowed
        self.failure_window = failure_window
        self.clients_kept = clients_kept
        self._slots = threading.BoundedSemaphore(expensive_at_once)
        self._clients: collections.OrderedDict[str, _Client] = collections.OrderedDict()
        self._lock = threading.Lock()

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

    def check(self, tokens: Tokens, address: str | None, token: str | None) -> Principal | None:
        """Who ``token`` is, sent from ``address``; None for no token or a wrong one (a failure of ``address``).

        Refused 429 while ``address`` is past its failures, unless ``token``
        worked from it before: no token is checked then, a right one included.
        """
        if not token:
            return None  # no guess
        who = tokens.principal(token)
        key = client_key(address)
        now = time.monotonic()
        with self._lock:
            client = self._clients.get(key)
            if client is not None:
                self._clients.move_to_end(key)
                while client.failures and now - client.failures[0] > self.failure_window:
                    client.failures.popleft()
            blocked = client is not None and len(client.failures) >= self.failures_allowed
            if who is not None and (client is None or not blocked or token in client.known):
                self._client(key, client).known.add(token)
                return who
            if client is not None and blocked:
                wait = math.ceil(client.failures[0] + self.failure_window - now)
                raise Refused(
                    429,
                    "too_many_failures",
                    f"too many wrong tokens from this address: ask again in {max(wait, 1)} seconds",
                    max(wait, 1),
                )
            self._client(key, client).failures.append(now)
            return None

    def _client(self, key: str, client: _Client | None) -> _Client:
        """``client``, or a new one kept under ``key`` (the least recent forgotten past :attr:`clients_kept`)."""
        if client is not None:
            return client
        made = _Client(collections.deque(maxlen=self.failures_allowed))
        self._clients[key] = made
        while len(self._clients) > self.clients_kept:
            self._clients.popitem(last=False)
        return made

    def clients(self) -> int:
        """How many client addresses are remembered now."""
        return len(self._clients)


__all__ = [
    "CLIENTS_KEPT",
    "EXPENSIVE_AT_ONCE",
    "FAILURES_ALLOWED",
    "FAILURE_WINDOW",
    "REQUEST_TIMEOUT",
    "BoundedSqlite",
    "Limits",
    "Refused",
    "TooSlow",
    "check_deadline",
    "client_key",
    "interrupt_at_deadline",
    "past_deadline",
    "remaining",
]
