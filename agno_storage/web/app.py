"""The ASGI application: the JSON API under ``/api/v1``, ``/healthz`` and the web page.

:func:`create_app` builds a Starlette application over a
:class:`~agno_storage.web.source.Source`. Handlers are plain functions:
Starlette runs them in its thread pool, where the store's blocking reads
belong. Every error is JSON of one shape (:class:`ErrorBody`) with its
status: 400 bad parameters, 401 no valid token, 403 another user's filter,
404 unknown table, session or path, 503 database busy or unreachable.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
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

from agno_storage import conversation
from agno_storage.errors import (
    BusyError,
    ConnectionLostError,
    InvalidInputError,
    StorageError,
    TableNotFoundError,
)
from agno_storage.models import Session, SessionSummary
from agno_storage.modes import SPECS
from agno_storage.ops.tables import TableInfo
from agno_storage.web import bodies
from agno_storage.web.auth import COOKIE, EVERYONE, Principal, Tokens, bearer, is_loopback
from agno_storage.web.source import (
    MAX_LIMIT,
    Cursor,
    Filters,
    Source,
    TableReader,
    decode_cursor,
    encode_cursor,
)

API = "/api/v1"
#: Rows a page holds when ``limit`` is not given.
DEFAULT_LIMIT = 20
#: How long the list of tables is kept before the database is asked again (seconds).
TABLES_TTL = 2.0

T = TypeVar("T")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class HttpError(Exception):
    """An error response: ``status`` and a stable ``code``."""

    def __init__(
        self, status: int, code: str, message: str, *, table: str | None = None, session_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.table = table
        self.session_id = session_id


def not_found_session(session_id: str, table: str) -> HttpError:
    return HttpError(
        404, "not_found", f"no session {session_id!r} in table {table!r}", table=table, session_id=session_id
    )


@attrs.define
class Server:
    """What every handler shares: the source, the tokens (None: no token needed) and the converter."""

    source: Source
    tokens: Tokens | None
    converter: cattrs.Converter = attrs.field(factory=bodies.make_converter)
    #: Messages and search hits as JSON: built once, not per request (building one costs about a millisecond).
    conversation_converter: cattrs.Converter = attrs.field(factory=conversation.make_converter)
    _tables: list[TableInfo] = attrs.field(factory=list)
    _tables_at: float = -1e9

    # --- who is asking -----------------------------------------------------

    def principal(self, request: Request, *, page: bool = False) -> Principal:
        """The caller; HttpError 401 without a valid token when tokens are configured.

        The API takes ``Authorization: Bearer TOKEN`` only; the web page also
        takes the cookie its sign-in form sets.
        """
        if self.tokens is None:
            return EVERYONE
        token = bearer(request.headers.get("authorization"))
        if token is None and page:
            token = request.cookies.get(COOKIE)
        who = self.tokens.principal(token)
        if who is None:
            raise HttpError(401, "unauthorized", "a valid 'Authorization: Bearer TOKEN' header is required")
        return who

    # --- tables ------------------------------------------------------------

    def tables(self, *, fresh: bool = False) -> list[TableInfo]:
        now = time.monotonic()
        if fresh or now - self._tables_at > TABLES_TTL:
            self._tables = self.source.tables()
            self._tables_at = now
        return self._tables

    def reader(self, table: str | None) -> TableReader:
        """The reader of ``table``, or of the only sessions table when it is None."""
        if table is None:
            tables = self.tables()
            if len(tables) == 1:
                table = tables[0].name
            elif not tables:
                raise HttpError(404, "not_found", f"there is no sessions table in {self.source.describe()}")
            else:
                names = ", ".join(t.name for t in tables)
                raise HttpError(400, "bad_request", f"this database has several sessions tables ({names}): add table=")
        try:
            return self.source.reader(table)
        except TableNotFoundError:
            raise HttpError(404, "not_found", f"no sessions table {table!r}", table=table) from None

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
        try:
            return call()
        except TableNotFoundError:
            self.source.forget(reader.name)
            self._tables_at = -1e9
            raise HttpError(404, "not_found", f"no sessions table {reader.name!r}", table=reader.name) from None

    # --- output ------------------------------------------------------------

    def json(self, body: Any, status: int = 200) -> Response:
        return Response(bodies.dumps(self.converter.unstructure(body)), status, media_type="application/json")

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
#: Unix seconds: at most 18 digits, so every one fits the 64-bit columns both engines keep times in.
_UNIX_SECONDS = re.compile(r"-?[0-9]{1,18}")


def limit_param(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not _WHOLE.fullmatch(text) or not 1 <= int(text) <= MAX_LIMIT:
        raise HttpError(400, "bad_request", f"limit must be a whole number from 1 to {MAX_LIMIT}, got {text!r}")
    return int(text)


def time_param(name: str, text: str | None) -> int | None:
    """Unix seconds, or an ISO 8601 date or time (UTC unless it says otherwise)."""
    if text is None or text == "":
        return None
    if _UNIX_SECONDS.fullmatch(text):
        return int(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise HttpError(
            400, "bad_request", f"{name} must be Unix seconds or an ISO 8601 date or time, got {text!r}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())


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


def healthz(request: Request) -> Response:
    server = _server(request)
    params(request, ())
    server.source.ping()  # the database answers, or 503
    return server.json(bodies.Health(status="ok"))


def api_tables(request: Request) -> Response:
    server = _server(request)
    who = server.principal(request)
    params(request, ())
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
                for t in server.tables(fresh=True)
            ]
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


# --- errors -----------------------------------------------------------------


def _error_response(server: Server | None, status: int, detail: bodies.ErrorDetail) -> Response:
    body = bodies.ErrorBody(error=detail)
    converter = server.converter if server is not None else bodies.make_converter()
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(bodies.dumps(converter.unstructure(body)), status, headers=headers, media_type="application/json")


def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HttpError)
    if exc.status == 401 and not request.url.path.startswith(API) and request.url.path != "/healthz":
        from agno_storage.web import pages

        return pages.sign_in_redirect(request)
    if not request.url.path.startswith(API) and request.url.path != "/healthz":
        from agno_storage.web import pages

        return pages.error_page(exc.status, exc.message)
    detail = bodies.ErrorDetail(code=exc.code, message=exc.message, table=exc.table, session_id=exc.session_id)
    return _error_response(getattr(request.app.state, "server", None), exc.status, detail)


def _on_storage_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StorageError)
    status, code = _status_of(exc)
    detail = bodies.ErrorDetail(
        code=code, message=" ".join(str(exc).split()), table=exc.table, session_id=exc.session_id
    )
    return _error_response(getattr(request.app.state, "server", None), status, detail)


def _status_of(exc: StorageError) -> tuple[int, str]:
    if isinstance(exc, TableNotFoundError):
        return 404, "not_found"
    if isinstance(exc, InvalidInputError):
        return 400, "bad_request"
    if isinstance(exc, BusyError):
        return 503, "busy"
    if isinstance(exc, ConnectionLostError):
        return 503, "unavailable"
    return 500, "error"


def _on_unexpected(request: Request, exc: Exception) -> Response:
    detail = bodies.ErrorDetail(code="error", message=f"internal error: {type(exc).__name__}")
    return _error_response(getattr(request.app.state, "server", None), 500, detail)


def _on_starlette_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
    message = "no such path" if exc.status_code == 404 else str(exc.detail)
    return _error_response(
        getattr(request.app.state, "server", None), exc.status_code, bodies.ErrorDetail(code=code, message=message)
    )


# --- timing -----------------------------------------------------------------


class ServerTiming:
    """ASGI middleware: a ``Server-Timing: app;dur=MS`` header on every response (for benchmarks)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                ms = (time.perf_counter() - start) * 1000
                message["headers"] = [*message.get("headers", []), (b"server-timing", f"app;dur={ms:.3f}".encode())]
            await send(message)

        await self.app(scope, receive, timed)


class LoopbackHostsOnly:
    """ASGI middleware: refuse (400) a request whose ``Host`` is not a loopback name or address.

    Without tokens the server trusts whoever can reach it, which is only
    this machine; a web page elsewhere that points its own host name at
    127.0.0.1 (DNS rebinding) still sends that name as ``Host``, and is refused.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            name = host[1 : host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
            if not is_loopback(name):
                body = bodies.ErrorBody(
                    error=bodies.ErrorDetail(
                        code="bad_request", message=f"this server answers loopback host names only, not {host!r}"
                    )
                )
                response = Response(
                    bodies.dumps(bodies.make_converter().unstructure(body)), 400, media_type="application/json"
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


# --- the application --------------------------------------------------------


def create_app(source: Source, tokens: Tokens | None = None) -> Starlette:
    """The application over ``source``; with ``tokens``, every request but ``/healthz`` needs one.

    Without ``tokens`` it answers only requests addressed to a loopback host
    name or address (see :class:`LoopbackHostsOnly`).

    Read-only: no route writes to the database. The caller keeps ``source``
    and closes it.
    """
    from agno_storage.web import extras, pages

    routes = [
        Route("/healthz", healthz),
        Route(f"{API}/tables", api_tables),
        Route(f"{API}/sessions", api_sessions),
        Route(f"{API}/sessions/{{session_id:path}}", api_session_or_history),
        Route(f"{API}/search", extras.api_search),
        Route(f"{API}/usage", extras.api_usage),
        *pages.routes(),
        Mount("/static", app=StaticFiles(directory=str(Path(__file__).parent / "static")), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            HttpError: _on_http_error,
            StorageError: _on_storage_error,
            HTTPException: _on_starlette_error,
            Exception: _on_unexpected,
        },
    )
    app.state.server = Server(source=source, tokens=tokens)
    if tokens is None:
        app.add_middleware(LoopbackHostsOnly)
    app.add_middleware(ServerTiming)
    return app


__all__ = ["API", "DEFAULT_LIMIT", "HttpError", "Server", "create_app"]
