"""Running the application: in this thread (the CLI) or in a background thread (tests, benchmarks).

:func:`server_config` is the one place uvicorn is configured, for both: a
connection has :data:`HEADER_TIMEOUT` seconds to send a request's headers
(uvicorn has no such limit: a client sending a byte now and then held its
connection for ever), an answer the client stops reading is given up
:data:`SEND_TIMEOUT` seconds on (uvicorn kept it, and the connection, for
ever), and a proxy's ``X-Forwarded-*`` headers are believed only from the
addresses named (uvicorn believes loopback's by default).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from agno_storage.errors import StorageError

if TYPE_CHECKING:  # the web extra: imported where used, so the CLI reads HEADER_TIMEOUT without it
    import uvicorn
    from starlette.applications import Starlette

#: Seconds a connection has to send a request's headers, from when it opens or its last answer was sent.
HEADER_TIMEOUT = 10.0
#: Bytes a request's headers may take (h11 refuses more with a 400; httptools has no limit of its own).
HEADER_LIMIT = 16 * 1024
#: Seconds an answer may wait for its client to read any of it before the connection is dropped.
SEND_TIMEOUT = 30.0


def header_deadline_protocol(
    seconds: float, limit: int = HEADER_LIMIT, send_timeout: float = SEND_TIMEOUT
) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (httptools' where installed, else h11's), closing a connection that has not sent
    a request's whole headers ``seconds`` after it opened or after its last answer, or has sent more than
    ``limit`` bytes without ending them, and dropping one whose client has read nothing of an answer for
    ``send_timeout`` seconds while the answer waits for it.

    uvicorn's own keep-alive timeout stops at the first byte received, and
    nothing bounds a connection that has sent nothing yet; httptools keeps
    every header line it is sent, the next request's included while the
    answer before them is being made, so ``limit`` bounds those too. An
    answer is written whole into the connection's buffer, where it waits for
    the client however long it takes (closing the connection waits for it
    too): it is dropped once the buffer stays full (writing paused) that
    long, that is once the client has read less than asyncio's high minus
    low water mark (48 KiB) in it, or, the connection closing with less than
    that left, once the client has read nothing of what is left that long.
    """
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    base: Any = AutoHTTPProtocol

    class HeaderDeadline(base):  # type: ignore[misc]
        _deadline: asyncio.TimerHandle | None = None
        #: Bytes received since the deadline was set or the last request's message was all in (headers awaited).
        _waiting: int = 0
        #: Set while an answer waits for the client to read (writing paused).
        _stalled: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            before = self.cycle
            # Once a request's message is all in, what follows is the next request's headers, counted even
            # while the answer is still being made (a data chunk that ends one and starts the other is not).
            if self._deadline is not None or before is None or not before.more_body:
                self._waiting += len(data)
            super().data_received(data)
            if self.cycle is not before:  # a request's headers are in
                self._disarm()
            elif self._waiting > limit and not self.transport.is_closing():
                self._disarm()
                self.transport.close()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.cycle is None or self.cycle.response_complete:  # no request sent behind it started
                self._arm()
            self._watch_closing()

        def pause_writing(self) -> None:
            super().pause_writing()
            if self._stalled is None:
                self._stalled = self.loop.call_later(send_timeout, self._not_reading)

        def resume_writing(self) -> None:
            self._unstall()
            super().resume_writing()
            self._watch_closing()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            self._unstall()
            super().connection_lost(exc)

        def _unstall(self) -> None:
            if self._stalled is not None:
                self._stalled.cancel()
                self._stalled = None

        def _not_reading(self) -> None:
            self._stalled = None
            self.transport.abort()  # close() would wait for the client to read what is buffered

        def _watch_closing(self) -> None:
            """Once closing, with less buffered than pauses writing: abort unless the client reads some of it
            every ``send_timeout`` seconds (closing, nothing more is written: the buffer only shrinks)."""
            left = self.transport.get_write_buffer_size()
            if self._stalled is None and left and self.transport.is_closing():
                self._stalled = self.loop.call_later(send_timeout, self._read_since, left)

        def _read_since(self, left: int) -> None:
            self._stalled = None
            if self.transport.get_write_buffer_size() >= left:
                self._not_reading()
            else:
                self._watch_closing()

        def _arm(self) -> None:
            self._disarm()
            if not self.transport.is_closing():
                self._deadline = self.loop.call_later(seconds, self._too_slow)

        def _disarm(self) -> None:
            self._waiting = 0
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            if (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
                self.transport.close()
                self._watch_closing()

    return HeaderDeadline


def server_config(
    app: Starlette,
    *,
    header_timeout: float = HEADER_TIMEOUT,
    header_limit: int = HEADER_LIMIT,
    send_timeout: float = SEND_TIMEOUT,
    forwarded_allow_ips: str | None = None,
    **options: Any,
) -> uvicorn.Config:
    """uvicorn's configuration of ``app``: ``options`` as ``uvicorn.Config`` takes them, and the limits above.

    ``forwarded_allow_ips``: the addresses (comma-separated, ``*`` for any)
    of the reverse proxies whose ``X-Forwarded-Proto`` and
    ``X-Forwarded-For`` are believed; None believes no one's.
    """
    import uvicorn

    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        http=header_deadline_protocol(header_timeout, header_limit, send_timeout),
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips,
        **options,
    )


@contextmanager
def serving(
    app: Starlette,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    timeout: float = 20.0,
    header_timeout: float = HEADER_TIMEOUT,
    header_limit: int = HEADER_LIMIT,
    send_timeout: float = SEND_TIMEOUT,
    forwarded_allow_ips: str | None = None,
) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a background thread; yields its base URL (``http://host:port``).

    ``port=0`` takes a free port. Stops the server on exit. Raises
    StorageError if it has not started within ``timeout`` seconds.
    ``header_timeout``, ``header_limit``, ``send_timeout`` and ``forwarded_allow_ips``: see :func:`server_config`.
    """
    import uvicorn

    config = server_config(
        app,
        host=host,
        port=port,
        lifespan="off",
        header_timeout=header_timeout,
        header_limit=header_limit,
        send_timeout=send_timeout,
        forwarded_allow_ips=forwarded_allow_ips,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="agno-storage-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise StorageError(f"the web server did not start on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    try:
        yield f"http://{shown}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout)


__all__ = ["HEADER_LIMIT", "HEADER_TIMEOUT", "SEND_TIMEOUT", "header_deadline_protocol", "server_config", "serving"]
