"""The server's errors: the error an HTTP handler raises, the status of each StorageError, and the handlers
that turn every exception into an answer.

Every error is JSON of one shape (:class:`~agno_storage.web.bodies.ErrorBody`)
with its status, except a page's, which is a page (a missing token there
sends the browser to the sign-in form).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from agno_storage.errors import BusyError, ConnectionLostError, InvalidInputError, StorageError, TableNotFoundError
from agno_storage.ops.errors import DatabaseMissingError
from agno_storage.web import bodies, limits, middleware
from agno_storage.web.source import HotJournalError

if TYPE_CHECKING:
    from agno_storage.web.app import Server

#: The JSON API's path prefix: its errors, and the health check's, are JSON; every other path's are pages.
API = "/api/v1"


class HttpError(Exception):
    """An error response: ``status`` and a stable ``code``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        table: str | None = None,
        session_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.table = table
        self.session_id = session_id
        self.headers = dict(headers or {})

    @classmethod
    def refused(cls, exc: limits.Refused) -> HttpError:
        """The answer to a request the server's bounds refuse (with its ``Retry-After``)."""
        after = {} if exc.retry_after is None else {"Retry-After": str(exc.retry_after)}
        return cls(exc.status, exc.code, exc.message, headers=after)


class TableChanged(HttpError):
    """The table a reader was made for changed shape (made again in another mode or layout, upgraded).

    The reader is forgotten by then: :func:`~agno_storage.web.app.retried` runs the handler once
    more, on a reader of the table as it is now. ``error`` is what the read
    raised, if it raised (None: the table was seen to have changed).
    """

    def __init__(self, table: str, error: StorageError | None) -> None:
        super().__init__(503, "unavailable", f"table {table!r} changed shape while it was read; ask again", table=table)
        self.error = error


def not_found_session(session_id: str, table: str) -> HttpError:
    return HttpError(
        404, "not_found", f"no session {session_id!r} in table {table!r}", table=table, session_id=session_id
    )


def error_response(
    request: Request, status: int, detail: bodies.ErrorDetail, headers: Mapping[str, str] | None = None
) -> Response:
    """The error as JSON (:class:`bodies.ErrorBody`), or as a page for a request of a page."""
    headers = dict(headers or {})
    if is_page(request):
        from agno_storage.web import pages

        response = pages.error_page(status, detail.message)
        response.headers.update(headers)
        return response
    server: Server | None = getattr(request.app.state, "server", None)
    body = bodies.ErrorBody(error=detail)
    converter = server.converter if server is not None else bodies.make_converter()
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return Response(bodies.dumps(converter.unstructure(body)), status, headers=headers, media_type="application/json")


def is_page(request: Request) -> bool:
    """Whether ``request`` asks for a web page (its errors are pages), not the API or the health check."""
    path = request.url.path
    return not (path == API or path.startswith(API + "/") or path == "/healthz")


def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HttpError)
    if exc.status == 401 and is_page(request):
        from agno_storage.web import pages

        return pages.sign_in_redirect(request)
    detail = bodies.ErrorDetail(code=exc.code, message=exc.message, table=exc.table, session_id=exc.session_id)
    return error_response(request, exc.status, detail, exc.headers)


def on_storage_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StorageError)
    server: Server | None = getattr(request.app.state, "server", None)
    if server is not None:
        exc = server.source.explain(exc)
    status, code = status_of(exc)
    detail = bodies.ErrorDetail(
        code=code, message=" ".join(str(exc).split()), table=exc.table, session_id=exc.session_id
    )
    return error_response(request, status, detail)


def status_of(exc: StorageError) -> tuple[int, str]:
    """The status and ``code`` a StorageError is answered with."""
    if isinstance(exc, TableNotFoundError):
        return 404, "not_found"
    if isinstance(exc, InvalidInputError):
        return 400, "bad_request"
    if isinstance(exc, BusyError):
        return 503, "busy"
    if isinstance(exc, (ConnectionLostError, HotJournalError, DatabaseMissingError)):
        # A file moved or deleted under the server may come back (a restore); nothing of it is wrong.
        return 503, "unavailable"
    return 500, "error"


def on_unexpected(request: Request, exc: Exception) -> Response:
    detail = bodies.ErrorDetail(code="error", message=f"internal error: {type(exc).__name__}")
    response = error_response(request, 500, detail)
    # Starlette answers this one outside every middleware (ResponseHeaders included): the headers go on here.
    for name, value in middleware.SAFETY_HEADERS + middleware.PRIVATE_HEADERS:
        response.headers.setdefault(name.decode(), value.decode())
    return response


def on_starlette_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
    message = "no such path" if exc.status_code == 404 else str(exc.detail)
    # The exception's headers are part of the answer: a 405's Allow names the methods the path takes.
    return error_response(request, exc.status_code, bodies.ErrorDetail(code=code, message=message), exc.headers)
