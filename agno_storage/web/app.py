"""The ASGI application: the JSON API under ``/api/v1``, ``/healthz`` and the web page.

:func:`create_app` builds a Starlette application over a
:class:`~agno_storage.web.source.Source`. Handlers are plain functions:
Starlette runs them in its thread pool, where the store's blocking reads
belong. Every error is JSON of one shape (:class:`ErrorBody`) with its
status: 400 bad parameters, 401 no valid token, 403 another user's filter,
404 unknown table, session or path, 503 database busy, unreachable or
missing; a page's errors are pages (:mod:`agno_storage.web.errors`). A
handler whose table changed shape under it (dropped and made again,
upgraded) runs once more on the table as it is now (:func:`retried`).
"""

from __future__ import annotations

import functools
import math
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import attrs
import cattrs
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from agno_storage import conversation_message, schema, times
from agno_storage.errors import (
    InvalidInputError,
    SchemaMismatchError,
    SchemaVersionError,
    StorageError,
    TableNotFoundError,
)
from agno_storage.models import Session, SessionSummary
from agno_storage.modes import SPECS
from agno_storage.ops.tables import TableInfo
from agno_storage.web import bodies, limits, middleware
from agno_storage.web.auth import COOKIE, EVERYONE, Principal, Tokens, bearer
from agno_storage.web.errors import (
    API,
    HttpError,
    TableChanged,
    not_found_session,
    on_http_error,
    on_starlette_error,
    on_storage_error,
    on_unexpected,
    status_of,
)
from agno_storage.web.limits import Limits
from agno_storage.web.source import FRESH_AFTER, Source, Tables
from agno_storage.web.table_reader import MAX_LIMIT, Cursor, Filters, TableReader, decode_cursor, encode_cursor

#: Rows a page holds when ``limit`` is not given.
DEFAULT_LIMIT = 20
#: How long the list of tables is kept before the database is asked again (seconds).
TABLES_TTL = 2.0
#: The time a list of tables never read (or forgotten) was read at.
_NEVER_READ = -1e9

T = TypeVar("T")


@attrs.define
class _Listing:
    """One list of tables (with row counts or without), the time it was read, and the file (SQLite) it was read
    from: another one there now is read at once."""

    count_rows: bool
    tables: Tables = attrs.field(factory=lambda: Tables(()))
    at: float = _NEVER_READ
    file: tuple[int, int] | None = None
    #: One thread reads the list at a time; the others wait for what it reads.
    lock: threading.Lock = attrs.field(factory=threading.Lock)

    def read(self, source: Source, wait: float) -> Tables:
        """The list, read now unless it was less than ``wait`` seconds ago (see :meth:`Server.listing`)."""
        file = source.file()
        if time.monotonic() - self.at <= wait and file == self.file:
            return self.tables
        left = limits.remaining()
        if not self.lock.acquire(timeout=-1 if left is None else left):
            raise limits.TooSlow("the list of tables")
        try:
            # Not read meanwhile by the thread this one waited for?
            if time.monotonic() - self.at > wait or file != self.file:
                self.tables = source.tables(count_rows=self.count_rows)
                self.at = time.monotonic()
                self.file = file
            return self.tables
        finally:
            self.lock.release()


@attrs.define
class Server:
    """What every handler shares: the source, the tokens (None: no token needed) and the converter."""

    source: Source
    tokens: Tokens | None
    #: What one client's requests may cost everyone else (expensive reads at once, time, failed tokens).
    limits: Limits = attrs.field(factory=Limits)
    converter: cattrs.Converter = attrs.field(factory=bodies.make_converter)
    #: Messages and search hits as JSON: built once, not per request (building one costs about a millisecond).
    conversation_converter: cattrs.Converter = attrs.field(factory=conversation_message.make_converter)
    #: The list of tables without row counts (what a request naming a table needs), and with them.
    _names: _Listing = attrs.field(factory=lambda: _Listing(count_rows=False))
    _counted: _Listing = attrs.field(factory=lambda: _Listing(count_rows=True))

    # --- who is asking -----------------------------------------------------

    def principal(self, request: Request, *, page: bool = False) -> Principal:
        """The caller; HttpError 401 without a valid token when tokens are configured.

        The API takes ``Authorization: Bearer TOKEN`` only; the web page also
        takes the cookie its sign-in form sets.
        """
        if self.tokens is None:
            return EVERYONE
        settled: Principal | None = getattr(request.state, "principal", None)
        if settled is not None:
            return settled  # retried() asked already, before it took an expensive slot
        token = bearer(request.headers.get("authorization"))
        if token is None and page:
            token = request.cookies.get(COOKIE)
        who = self.check(request, self.tokens, token)
        if who is None:
            raise HttpError(401, "unauthorized", "a valid 'Authorization: Bearer TOKEN' header is required")
        return who

    def check(self, request: Request, tokens: Tokens, token: str | None) -> Principal | None:
        """Who ``token`` is (None: no token or a wrong one, counted against the client's address); HttpError 429
        while that address is past its failures (see :class:`~agno_storage.web.limits.Limits`)."""
        try:
            return self.limits.check(tokens, request.client.host if request.client else None, token)
        except limits.Refused as exc:
            raise HttpError.refused(exc) from None

    # --- tables ------------------------------------------------------------

    def listing(self, *, fresh: bool = False, count_rows: bool = False, as_read: bool = False) -> Tables:
        """The sessions tables, readable and not, as read at most :data:`TABLES_TTL` seconds ago.

        ``fresh``: read at most :data:`FRESH_AFTER` seconds ago. ``count_rows``:
        with each table's row count (else ``rows`` is None), which reads every
        table whole; a request that only names a table never waits for one.
        Each list is never read more often than that, whatever the requests
        ask, and by one thread at a time; but a SQLite file replaced or moved
        away since is looked at now (one ``stat``). Reading it, or waiting for
        the thread that does, stops at the request's deadline (TooSlow): a slow
        count holds no thread longer than that. ``as_read``: the list as last
        read, however long ago, if it was read and the file is the same (what a
        page past its deadline shows, when no statement may run).
        """
        listing = self._counted if count_rows else self._names
        wait = FRESH_AFTER if fresh else TABLES_TTL
        if as_read and listing.at > _NEVER_READ:
            wait = math.inf
        return listing.read(self.source, wait)

    def _forget_listing(self) -> None:
        """Read the list of tables again at the next request (a table changed or vanished)."""
        self._names.at = self._counted.at = _NEVER_READ

    def tables(self, *, fresh: bool = False) -> list[TableInfo]:
        """The sessions tables a reader is made for: the only ones offered or picked by default."""
        return list(self.listing(fresh=fresh).readable)

    def reader(self, table: str | None) -> TableReader:
        """The reader of ``table``, or of the only sessions table it can read when it is None."""
        if table is None:
            tables = self.tables()
            if len(tables) == 1:
                table = tables[0].name
            elif not tables:
                raise HttpError(404, "not_found", f"there is no sessions table in {self.source.describe()}")
            else:
                names = ", ".join(t.name for t in tables)
                raise HttpError(400, "bad_request", f"this database has several sessions tables ({names}): add table=")
        else:
            # InvalidInputError (400) for a name no store takes, before the list.
            schema.check_table_name(table, engine=self.source.ENGINE)
            if not (self.source.lists(self.listing(), table) or self.source.lists(self.listing(fresh=True), table)):
                # Refused before the database is looked at: each look opens a connection, and a client asking
                # for name after name would have it open them as fast as it asks.
                raise self._gone(table)
        try:
            return self.source.reader(table)
        except TableNotFoundError:
            raise self._gone(table) from None

    @staticmethod
    def _gone(table: str) -> HttpError:
        """The 404 for ``table``, which is not (or no longer) a sessions table."""
        return HttpError(404, "not_found", f"no sessions table {table!r}", table=table)

    # --- reads, scoped -----------------------------------------------------

    def page(
        self, reader: TableReader, who: Principal, filters: Filters, cursor: Cursor | None, limit: int
    ) -> tuple[list[SessionSummary], Cursor | None]:
        if who.user_id is not None:
            if filters.user_id is not None and filters.user_id != who.user_id:
                raise HttpError(403, "forbidden", "this token may only read its own user's sessions")
            filters = attrs.evolve(filters, user_id=who.user_id)
        if cursor is not None and reader.store._unmatchable(cursor.session_id):
            # No session of this engine has such an id (PostgreSQL text holds no U+0000): no page ended there.
            raise HttpError(400, "bad_request", "the cursor is not one this server handed out", table=reader.name)
        return self.read(reader, lambda: reader.page(filters, cursor, limit))

    def session(self, reader: TableReader, who: Principal, session_id: str) -> Session:
        found = self.read(reader, lambda: reader.get(session_id, who.user_id))
        if found is None:
            raise not_found_session(session_id, reader.name)
        return found

    def read(self, reader: TableReader, call: Callable[[], T]) -> T:
        """``call()``, a read through ``reader``; TableChanged if its table changed shape under it."""
        try:
            return call()
        except TableNotFoundError:
            self.source.forget(reader.name)
            self._forget_listing()
            raise self._gone(reader.name) from None
        except (SchemaMismatchError, SchemaVersionError) as exc:
            if exc.table is not None and exc.table != reader.name:
                raise  # another table's (agent_runs'): this one was not made again, and its reader stays
            # A column the reader names is gone, or the store finds another mode: the table was made again.
            self.source.forget(reader.name)
            self._forget_listing()
            raise TableChanged(reader.name, exc) from exc

    def recheck(self, reader: TableReader) -> None:
        """TableChanged if ``reader``'s table is no longer the one it was made for (looked at now)."""
        try:
            now = self.source.reader(reader.name, fresh=True)
        except TableNotFoundError:
            self._forget_listing()
            raise self._gone(reader.name) from None
        if now is not reader:
            self._forget_listing()
            raise TableChanged(reader.name, None)

    # --- output ------------------------------------------------------------

    def json(self, body: Any, status: int = 200) -> Response:
        try:
            data = bodies.dumps(self.converter.unstructure(body))
        except RecursionError:  # past what json writes even at the bottom of a stack of its own (~990 levels)
            raise HttpError(500, "too_deep", "the answer holds JSON nested too deeply to write") from None
        return Response(data, status, media_type="application/json")

    def summary(self, reader: TableReader, session: SessionSummary) -> bodies.SessionSummary:
        return bodies.SessionSummary(
            table=reader.name,
            mode=reader.mode.value,
            session_id=session.session_id,
            user_id=session.user_id,
            entity_id=session.entity_id,
            created_at=session.created_at,
            updated_at=session.updated_at,
        )


# --- query parameters -----------------------------------------------------


def params(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query parameters, each at most once and each one of ``allowed``; HttpError 400 otherwise."""
    out: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key not in allowed:
            takes = f"takes {', '.join(allowed)}" if allowed else "takes no parameter"
            raise HttpError(400, "bad_request", f"unknown parameter {key!r} (this endpoint {takes})")
        if key in out:
            raise HttpError(400, "bad_request", f"parameter {key!r} is given more than once")
        out[key] = value
    return out


#: A limit as digits (ASCII only: str.isdigit() takes "²", which int() refuses), at most a few of them.
_WHOLE = re.compile(r"[0-9]{1,9}")


def limit_param(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not _WHOLE.fullmatch(text) or not 1 <= int(text) <= MAX_LIMIT:
        raise HttpError(400, "bad_request", f"limit must be a whole number from 1 to {MAX_LIMIT}, got {text!r}")
    return int(text)


def time_param(name: str, text: str | None) -> int | None:
    """Unix seconds, or an ISO 8601 date or time (UTC unless it says otherwise); see :func:`times.bound`."""
    if text is None or text == "":
        return None
    try:
        return times.bound(text)
    except ValueError as exc:
        raise HttpError(400, "bad_request", f"{name}: {exc}") from None


def filters_from(query: dict[str, str]) -> Filters:
    since = time_param("since", query.get("since"))
    until = time_param("until", query.get("until"))
    return Filters(user_id=query.get("user_id"), entity_id=query.get("entity_id"), since=since, until=until)


def cursor_param(text: str | None) -> Cursor | None:
    if text is None or text == "":
        return None
    try:
        return decode_cursor(text)
    except InvalidInputError as exc:
        raise HttpError(400, "bad_request", str(exc)) from None


# --- API handlers -----------------------------------------------------------

SESSIONS_PARAMS = ("table", "user_id", "entity_id", "since", "until", "cursor", "limit")


def _server(request: Request) -> Server:
    server: Server = request.app.state.server
    return server


def retried(
    handler: Callable[[Request], Response], *, expensive: bool = False, page: bool = False
) -> Callable[[Request], Response]:
    """``handler``, run once more when the table it read changed shape under it (it only reads: safe to repeat),
    within the server's bounds: its reads stop at the request's deadline, and an ``expensive`` one (that may
    read a whole table) takes one of the few slots, 503 ``busy`` when they are all taken (:mod:`limits`),
    once its caller is known (``page``: a web page's, which may sign in with the cookie): a request with no
    valid token never holds a slot.

    The second run reads the table as it is now. If it fails the same way,
    its error is the answer (the table as it is now cannot be read so).
    """

    def twice(request: Request) -> Response:
        try:
            return handler(request)
        except TableChanged:
            pass
        try:
            return handler(request)
        except TableChanged as exc:
            if exc.error is not None:
                raise exc.error from None
            raise

    @functools.wraps(handler)
    def run(request: Request) -> Response:
        server = _server(request)
        if expensive:
            request.state.principal = server.principal(request, page=page)
        try:
            with server.limits.request(expensive=expensive):
                return twice(request)
        except limits.Refused as exc:
            raise HttpError.refused(exc) from exc.__cause__

    return run


def healthz(request: Request) -> Response:
    """200 once the database answers a trivial query; 503 whatever keeps it from answering.

    It answers without a token, so the reason (which names the file's path
    or the server's user, host and database) goes only to a caller whose
    token is valid, or to anyone where no token is needed (loopback only).
    """
    server = _server(request)
    params(request, ())
    try:
        server.source.ping()
    except StorageError as exc:
        exc = server.source.explain(exc)
        status, code = status_of(exc)
        try:
            server.principal(request)
            message = " ".join(str(exc).split())
        except HttpError:
            message = "the database does not answer"
        # A file that is not a database (500 elsewhere) does not answer either.
        raise HttpError(503, code if status == 503 else "unavailable", message) from exc
    return server.json(bodies.Health(status="ok"))


def api_tables(request: Request) -> Response:
    server = _server(request)
    who = server.principal(request)
    params(request, ())
    listing = server.listing(fresh=True, count_rows=who.user_id is None)  # one user sees no count of everyone's
    return server.json(
        bodies.TablesBody(
            tables=[
                bodies.TableBody(
                    name=t.name,
                    mode=t.mode.value,
                    version=t.version,
                    layout=t.layout.value,
                    entity_column=SPECS[t.mode].entity_column,
                    rows=t.rows if who.user_id is None else None,
                )
                for t in listing.readable
            ],
            unreadable=[bodies.UnreadableTable(name=name, reason=why) for name, why in listing.unreadable],
        )
    )


def api_sessions(request: Request) -> Response:
    server = _server(request)
    who = server.principal(request)
    query = params(request, SESSIONS_PARAMS)
    reader = server.reader(query.get("table"))
    limit = limit_param(query.get("limit"))
    sessions, after = server.page(reader, who, filters_from(query), cursor_param(query.get("cursor")), limit)
    return server.json(
        bodies.SessionsPage(
            sessions=[server.summary(reader, s) for s in sessions],
            next_cursor=None if after is None else encode_cursor(after),
        )
    )


#: The end of a history path. Only a literal "/" makes it one: "%2Fhistory" is part of a session id.
HISTORY_SUFFIX = "/history"


def api_session_or_history(request: Request) -> Response:
    """``/sessions/{id}`` or ``/sessions/{id}/history``, told apart on the path as sent.

    The server decodes ``%2F`` before routing, so the decoded path cannot
    tell a session ``x/history`` (sent as ``x%2Fhistory``) from the history
    of ``x``; the raw path can.
    """
    from agno_storage.web import extras

    decoded: str = request.path_params["session_id"]
    raw = request.scope.get("raw_path")
    sent = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
    if sent.endswith(HISTORY_SUFFIX) and decoded.endswith(HISTORY_SUFFIX):
        return extras.api_history(request, decoded[: -len(HISTORY_SUFFIX)])
    return api_session(request, decoded)


def api_session(request: Request, session_id: str) -> Response:
    server = _server(request)
    who = server.principal(request)
    query = params(request, ("table",))
    reader = server.reader(query.get("table"))
    session = server.session(reader, who, session_id)
    return server.json(
        bodies.SessionBody(
            table=reader.name,
            mode=reader.mode.value,
            entity_id=session.entity_id,
            session=bodies.session_columns(server.converter, session),
        )
    )


# --- the application --------------------------------------------------------


def create_app(source: Source, tokens: Tokens | None = None, *, limits: Limits | None = None) -> Starlette:
    """The application over ``source``; with ``tokens``, every request but ``/healthz`` needs one.

    ``limits``: the server's bounds (default :class:`~agno_storage.web.limits.Limits` ()).

    Without ``tokens`` it answers only requests addressed to a loopback host
    name or address (see :class:`~agno_storage.web.middleware.LoopbackHostsOnly`).

    Read-only: no route writes to the database. The caller keeps ``source``
    and closes it.
    """
    from agno_storage.web import extras, pages

    routes = [
        Route("/healthz", healthz),
        Route(f"{API}/tables", retried(api_tables)),
        Route(f"{API}/sessions", retried(api_sessions)),
        Route(f"{API}/sessions/{{session_id:path}}", retried(api_session_or_history)),
        Route(f"{API}/search", retried(extras.api_search, expensive=True)),
        Route(f"{API}/usage", retried(extras.api_usage, expensive=True)),
        *pages.routes(),
        Mount("/static", app=StaticFiles(directory=str(Path(__file__).parent / "static")), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            HttpError: on_http_error,
            StorageError: on_storage_error,
            HTTPException: on_starlette_error,
            Exception: on_unexpected,
        },
    )
    app.state.server = Server(source=source, tokens=tokens, limits=limits or Limits())
    if tokens is None:
        app.add_middleware(middleware.LoopbackHostsOnly)
    app.add_middleware(middleware.ResponseHeaders)
    app.add_middleware(middleware.ServerTiming)
    return app


__all__ = ["API", "DEFAULT_LIMIT", "HttpError", "Server", "create_app"]
