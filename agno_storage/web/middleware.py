"""ASGI middleware of the application: response headers, timing, and the loopback-only host check."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.responses import Response

from agno_storage.web import bodies
from agno_storage.web.auth import is_loopback

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


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


#: Headers every response carries: no content sniffing, never shown inside another site's frame, and only the
#: server's own script and style run (the pages have no inline ones): stored text that ever slipped past the
#: escaping still could not run as a script.
SAFETY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; "
        b"base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
)
#: Headers of every response but the static files: sessions are private to whoever may read them (their
#: token or cookie), so no cache keeps them, and a cache that ignores no-store keys them on both.
PRIVATE_HEADERS = (
    (b"cache-control", b"no-store"),
    (b"vary", b"Authorization, Cookie"),
)


class ResponseHeaders:
    """ASGI middleware: :data:`SAFETY_HEADERS` on every response, :data:`PRIVATE_HEADERS` on all but ``/static``.

    A header the response sets itself is kept as it is.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        added = SAFETY_HEADERS if path.startswith("/static/") else SAFETY_HEADERS + PRIVATE_HEADERS

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {bytes(name).lower() for name, _ in headers}
                message["headers"] = headers + [(k, v) for k, v in added if k not in present]
            await send(message)

        await self.app(scope, receive, with_headers)


class LoopbackHostsOnly:
    """ASGI middleware: refuse (400) a request whose ``Host`` is not a loopback name or address, or that has
    several ``Host`` headers.

    Without tokens the server trusts whoever can reach it, which is only
    this machine; a web page elsewhere that points its own host name at
    127.0.0.1 (DNS rebinding) still sends that name as ``Host``, and is refused.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            # Exactly one Host (RFC 9112 refuses more): the application reads the first, and must see this one.
            hosts = [value.decode("latin-1") for name, value in scope["headers"] if name == b"host"]
            host = hosts[0] if len(hosts) == 1 else ", ".join(hosts)
            name = host[1 : host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
            if len(hosts) != 1 or not is_loopback(name):
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


__all__ = ["PRIVATE_HEADERS", "SAFETY_HEADERS", "LoopbackHostsOnly", "ResponseHeaders", "ServerTiming"]
