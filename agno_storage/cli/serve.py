"""``agno-storage serve``: the read-only HTTP API and web page over a database (the ``[web]`` extra)."""

from __future__ import annotations

import argparse
import socket
import sys

from agno_storage.cli.common import FAILED, NOT_FOUND, Exit, parse_target, schema_option, shown
from agno_storage.urls import SqliteTarget
from agno_storage.web.limits import REQUEST_TIMEOUT
from agno_storage.web.run import HEADER_TIMEOUT, SEND_TIMEOUT

PORT = 8000


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return int(text)


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from agno_storage.ops.errors import DatabaseMissingError
        from agno_storage.web.app import create_app
        from agno_storage.web.auth import is_loopback, read_tokens
        from agno_storage.web.limits import Limits
        from agno_storage.web.run import server_config
        from agno_storage.web.source import open_source
    except ImportError as exc:
        raise Exit(FAILED, f"serve needs the web extra: pip install 'agno-session-storage[web]' ({exc})") from None
    if not is_loopback(args.host) and args.token_file is None:
        raise Exit(
            FAILED,
            f"refusing to serve on {args.host!r} without --token-file: "
            "only loopback addresses (127.0.0.1, ::1, localhost) may be served without tokens",
        )
    tokens = read_tokens(args.token_file) if args.token_file is not None else None
    parse_target(args.url)  # a bad URL, an in-memory database: refused before anything starts
    schema = schema_option(args.url, args.schema)
    if args.prepared_statements and isinstance(parse_target(args.url), SqliteTarget):
        raise Exit(FAILED, "--prepared-statements applies to PostgreSQL URLs only (SQLite prepares every statement)")
    try:
        source = open_source(
            args.url,
            schema_name=schema,
            prepared_statements=args.prepared_statements,
            statement_timeout=args.request_timeout,
        )
    except DatabaseMissingError as exc:
        raise Exit(NOT_FOUND, str(exc)) from None
    try:
        app = create_app(source, tokens, limits=Limits(request_timeout=args.request_timeout))
        listening = _listen(args.host, args.port)
        port = listening.getsockname()[1]  # the one the system gave, for --port 0
        host = f"[{args.host}]" if ":" in args.host else args.host
        access = "bearer tokens" if tokens is not None else "no token"
        print(f"serving {shown(args.url)} read-only on http://{host}:{port}/ ({access})", file=sys.stderr)
        config = server_config(
            app,
            header_timeout=args.header_timeout,
            send_timeout=args.send_timeout,
            forwarded_allow_ips=args.forwarded_allow_ips,
        )
        server = uvicorn.Server(config)
        server.run(sockets=[listening])
    finally:
        source.close()
    return 0


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"not a number of seconds above 0: {text!r}")
    return seconds


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port``; Exit(FAILED) naming why not (a port in use, an unknown host)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        listening = socket.socket(family, kind, proto)
    except OSError as exc:
        raise Exit(FAILED, f"cannot listen on {host!r} port {port}: {exc}") from None
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(address)
        listening.listen(2048)
    except OSError as exc:
        listening.close()
        raise Exit(FAILED, f"cannot listen on {host!r} port {port}: {exc.strerror or exc}") from None
    return listening


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: dict[str, argparse.ArgumentParser]
) -> None:
    """Add ``serve`` to ``sub``."""
    summary = "a read-only HTTP API and web page over every sessions table of a database"
    command = sub.add_parser("serve", help=summary, description=summary)
    command.add_argument(
        "url", metavar="DB", help="a SQLite file path, sqlite:///relative.db, sqlite:////abs.db or postgresql://..."
    )
    command.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    command.add_argument("--port", type=_port, default=PORT, help=f"the port to listen on (default {PORT})")
    command.add_argument(
        "--token-file",
        metavar="FILE",
        help="'TOKEN USER_ID' per line ('*': all users); every request then needs 'Authorization: Bearer TOKEN'. "
        "Required to listen on a non-loopback address",
    )
    command.add_argument(
        "--forwarded-allow-ips",
        metavar="IPS",
        help="the reverse proxies (comma-separated addresses or networks, '*' for any) whose X-Forwarded-Proto "
        "and X-Forwarded-For are believed (so the sign-in cookie is Secure behind a proxy that speaks HTTPS); "
        "by default no one's",
    )
    command.add_argument(
        "--header-timeout",
        metavar="SECONDS",
        type=_seconds,
        default=HEADER_TIMEOUT,
        help=f"close a connection that has not sent a request's headers this long after it opened or after its "
        f"last answer (default {HEADER_TIMEOUT:g})",
    )
    command.add_argument(
        "--send-timeout",
        metavar="SECONDS",
        type=_seconds,
        default=SEND_TIMEOUT,
        help=f"drop a connection whose client has read nothing of an answer waiting for it this long (default "
        f"{SEND_TIMEOUT:g})",
    )
    command.add_argument(
        "--request-timeout",
        metavar="SECONDS",
        type=_seconds,
        default=REQUEST_TIMEOUT,
        help=f"stop a request's reads this long after it started, answering 503 too_slow (default "
        f"{REQUEST_TIMEOUT:g}; a search without its index, or usage, reads the whole table)",
    )
    command.add_argument(
        "--schema", help="PostgreSQL only: the schema holding the tables (default ai; '' for the search path)"
    )
    command.add_argument(
        "--prepared-statements",
        action="store_true",
        help="PostgreSQL only: prepare the statements each table's reader repeats on the server (faster reads; "
        "not behind a pooler in transaction mode, see docs/postgres.md)",
    )
    command.set_defaults(run=_serve)
