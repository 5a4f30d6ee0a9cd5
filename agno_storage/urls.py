"""Database URLs: the one parser, and ``open_storage``, which picks the engine from a URL.

Every entry point (the core stores, ``open_storage``, the agno adapter, the
CLI) reads a URL through :func:`parse`, so they accept and refuse the same
spellings: the scheme is case-insensitive and a SQLAlchemy driver suffix
(``+pysqlite``, ``+psycopg``) is ignored.
"""

from __future__ import annotations

import math
import os
import re
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import parse_qsl, quote, unquote

import attrs

from agno_storage.errors import InvalidInputError, StorageError
from agno_storage.models import Mode

if TYPE_CHECKING:
    from agno_storage.backends.base import BaseStorage


@attrs.frozen
class SqliteTarget:
    """A SQLite database: the file's path as written in the URL, or ``None`` for a private in-memory one.

    ``timeout`` is the URL's ``?timeout=`` (seconds to wait for a lock, as sqlite3 and SQLAlchemy read it), or
    ``None`` where it has none.
    """

    path: str | None
    timeout: float | None = None


@attrs.frozen
class PostgresTarget:
    """A PostgreSQL database; ``conninfo`` is what libpq takes (driver suffix dropped)."""

    conninfo: str


Target: TypeAlias = SqliteTarget | PostgresTarget

_POSTGRES_SCHEMES = ("postgresql", "postgres")
# What makes a string a URL rather than a path or a libpq key=value string: a scheme before "://".
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# A URL's user:password@. libpq reads "?" and "#" in the user and the password as part of them; the password
# runs to the last "@" before the path (masking to it hides at least as much as any reader takes).
_USERINFO_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/@:]*:)[^/]*@")
# The libpq settings that hold a secret (libpq shows each with its "*" display flag).
_SECRET_KEYS = frozenset({"password", "sslpassword", "oauth_client_secret", "scram_client_key", "scram_server_key"})
# One setting of a libpq key=value string: its key, and its value bare (a backslash escapes the next
# character) or quoted. Read pair by pair, so "password=" inside another setting's quoted value is no key.
# A key starts the string or follows whitespace or a closing quote (libpq needs no space after one): never
# the middle of a word (a file name such as "backup.password=1.db"), and each place is tried once, so the
# scan stays linear.
_SETTING = re.compile(r"(?:^|(?<=[\s']))([A-Za-z_][A-Za-z0-9_]*)(\s*=\s*)('(?:[^'\\]|\\.)*'?|(?:\\.|[^\s\\])*)")
_EXPECTED = "sqlite:///path.db, sqlite:////absolute/path.db or postgresql://user@host/db"
# SQLAlchemy's spellings of a bool in a URL (sqlalchemy.util.asbool).
_TRUE_FALSE = frozenset({"true", "yes", "on", "y", "t", "1", "false", "no", "off", "n", "f", "0"})
# libpq's connection settings (up to libpq 18's): a string made of these alone, or of settings one of which
# holds a secret, is a key=value connection string, not a file's name.
_LIBPQ_KEYS = frozenset(
    {
        "host", "hostaddr", "port", "dbname", "user", "password", "passfile", "channel_binding",
        "connect_timeout", "client_encoding", "options", "application_name", "fallback_application_name",
        "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout",
        "replication", "gssencmode", "sslmode", "requiressl", "sslcompression", "sslcert", "sslkey",
        "sslpassword", "sslrootcert", "sslcrl", "sslcrldir", "sslsni", "requirepeer", "ssl_min_protocol_version",
        "ssl_max_protocol_version", "krbsrvname", "gsslib", "service", "target_session_attrs", "load_balance_hosts",
        "require_auth", "sslnegotiation", "sslcertmode", "gssdelegation", "min_protocol_version",
        "max_protocol_version", "sslkeylogfile", "scram_client_key", "scram_server_key", "oauth_issuer",
        "oauth_client_id", "oauth_client_secret", "oauth_scope",
    }
)  # fmt: skip


def parse(url: object, what: str = "a database URL") -> Target:
    """What ``url`` names: ``sqlite:///relative.db``, ``sqlite:////abs.db``, ``postgresql://...``.

    ``sqlite://``, ``sqlite:///`` and ``sqlite:///:memory:`` are an in-memory
    database. A SQLite URL's path is percent-decoded, as SQLAlchemy decodes it
    (``sqlite:///my%20chats.db`` is the file ``my chats.db``). Of the query
    parameters SQLAlchemy hands to sqlite3, a SQLite URL takes ``timeout``
    (seconds, the store's ``busy_timeout``) and ``check_same_thread`` (each
    thread has its own connection here, so it changes nothing). Raises
    :class:`InvalidInputError` for anything else, including a SQLite URL with
    a host or another query parameter (which would be silently ignored
    otherwise). ``what`` names the argument in the messages.
    """
    if not isinstance(url, str):
        raise InvalidInputError(f"{what} must be a str, got {shown(url)}")
    scheme, sep, rest = url.partition("://")
    engine = scheme.split("+", 1)[0].lower() if sep else ""
    if engine == "sqlite":
        rest, question, query = rest.partition("?")
        timeout = _sqlite_timeout(query, url, what) if question else None
        if not rest.startswith("/") and rest:
            raise InvalidInputError(f"{what}: a SQLite URL has no host: expected {_EXPECTED}, got {shown(url)}")
        # Percent-decoded, as SQLAlchemy (and so agno's store) reads the path: sqlite:///my%20chats.db is "my chats.db".
        path = unquote(rest[1:])
        return SqliteTarget(path=None if path in ("", ":memory:") else path, timeout=timeout)
    if engine in _POSTGRES_SCHEMES:
        _refuse_nul(url, what)
        return PostgresTarget(conninfo=f"postgresql://{rest}")
    raise InvalidInputError(f"{what} must look like {_EXPECTED}, got {shown(url)}")


def _sqlite_timeout(query: str, url: str, what: str) -> float | None:
    """The ``timeout`` of a SQLite URL's query; InvalidInputError for a parameter it does not honour."""
    settings: dict[str, str] = {}
    # As SQLAlchemy reads it (an empty field, such as a trailing "&", is no setting), a blank value kept.
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in ("timeout", "check_same_thread"):
            raise InvalidInputError(
                f"{what}: SQLite URL query parameters other than timeout=SECONDS and check_same_thread=BOOL are "
                f"not supported, got {key!r}: {shown(url)}"
            )
        if key in settings:
            raise InvalidInputError(f"{what}: SQLite URL query parameter {key!r} is given twice: {shown(url)}")
        settings[key] = value
    if settings.get("check_same_thread", "true").strip().lower() not in _TRUE_FALSE:
        raise InvalidInputError(f"{what}: check_same_thread must be true or false: {shown(url)}")
    if "timeout" not in settings:
        return None
    try:
        timeout = float(settings["timeout"])
    except ValueError:
        timeout = math.nan
    if not 0 <= timeout < math.inf:
        raise InvalidInputError(
            f"{what}: timeout must be seconds (>= 0) to wait for a lock, got {settings['timeout']!r}: {shown(url)}"
        )
    return timeout


def parse_location(text: object) -> Target:
    """Like :func:`parse`, but a string without ``://`` is the path of a SQLite file (as the CLI takes it)."""
    if isinstance(text, str) and not is_url(text):
        if is_url(text.strip()):
            raise InvalidInputError(f"a database URL has spaces around it: {shown(text)}")
        if not text:
            raise InvalidInputError("a database path must not be empty")
        if is_conninfo(text) and not os.path.lexists(os.path.expanduser(text)):
            raise InvalidInputError(
                f"a libpq key=value connection string is not taken here (it would be a file's name): {shown(text)}; "
                "use a URL: postgresql://user@host/db (a new SQLite file of such a name: ./NAME)"
            )
        return SqliteTarget(path=text)
    return parse(text)


def is_conninfo(text: str) -> bool:
    """Whether ``text`` is made of libpq ``key=value`` settings alone (``host=db dbname=app``), not a path.

    Each key is one libpq knows, or one of them holds a secret (``password=``): a setting of a newer libpq
    beside a password is still a connection string.
    """
    rest, keys = text, []
    for setting in _SETTING.finditer(text):
        keys.append(setting.group(1).lower())
        rest = rest.replace(setting.group(0), " ", 1)
    if not keys or rest.strip():
        return False
    return all(k in _LIBPQ_KEYS for k in keys) or any(k in _SECRET_KEYS for k in keys)


def postgres_conninfo(db_url: object, what: str = "db_url") -> str:
    """What libpq takes for ``db_url``: a PostgreSQL URL, or a libpq ``key=value`` string as it is.

    Raises InvalidInputError for a URL of another engine.
    """
    if isinstance(db_url, str) and db_url != db_url.strip() and is_url(db_url.strip()):
        raise InvalidInputError(f"{what} has spaces around it: {shown(db_url)}")
    if isinstance(db_url, str) and db_url and not is_url(db_url):
        _refuse_nul(db_url, what)
        return db_url
    target = parse(db_url, what)
    if not isinstance(target, PostgresTarget):
        raise InvalidInputError(f"{what} must be a PostgreSQL URL (postgresql://user@host/db), got {shown(db_url)}")
    return target.conninfo


def _refuse_nul(conninfo: str, what: str) -> None:
    """InvalidInputError for a PostgreSQL URL or connection string holding NUL.

    libpq reads it only up to the NUL: the rest of one cut in its password
    was read as a host and a port, which a connection error then showed.
    """
    if "\x00" in conninfo:
        raise InvalidInputError(f"{what} holds a NUL character, which libpq cannot read: {shown(conninfo)}")


def is_url(text: str) -> bool:
    """Whether ``text`` starts with a URL scheme and ``://`` (a path or a ``key=value`` string does not)."""
    return _SCHEME.match(text) is not None


def without_password(url: str) -> str:
    """``url`` fit for a message or a log: a password in it becomes ``***``; anything else is left as it is.

    Covers a URL's ``user:password@`` and libpq's ``password`` and
    ``sslpassword`` settings, in a URL's query (keys percent-decoded) or a
    ``key=value`` connection string.
    """
    stripped = url.lstrip()
    if stripped is not url and stripped != url:  # " postgresql://..." is a URL to whoever reads the message
        return url[: len(url) - len(stripped)] + without_password(stripped)
    if not is_url(url):
        if "=" not in url or "/" in url.split("=", 1)[0]:
            return url  # a path, with "password=" in a file name perhaps: no settings
        return _SETTING.sub(_masked_setting, url)  # a libpq key=value string
    text = _USERINFO_PASSWORD.sub(r"\1***@", url, count=1)
    # Settings are in the query, which starts at the first "?" after the userinfo (a user may hold "?", as
    # libpq reads it); a path may hold "password=" too.
    start = text.index("://") + 3
    at = text.find("@", start, _end_of(text.find("/", start), len(text)))
    question = text.find("?", at + 1 if at != -1 else start)
    if question == -1:
        return text
    base, mark, query = text[:question], "?", text[question + 1 :]
    pairs = []
    for pair in query.split("&"):  # libpq reads no fragment: a "#" is part of the value
        key, equals, _ = pair.partition("=")
        pairs.append(f"{key}=***" if equals and unquote(key).strip().lower() in _SECRET_KEYS else pair)
    return base + mark + "&".join(pairs)


def misread_userinfo(url: str) -> str | None:
    """What to write otherwise when libpq would read part of ``url``'s user information as host or database.

    libpq looks for a URL's ``user:password@`` only before the first ``/``
    and ends it at the first ``@``: a password holding an unencoded ``@``
    leaves the rest of it in the host; one holding ``/`` puts the user and
    password in the host and port, and the rest in the database name. Either
    would be shown in libpq's messages. ``None`` for a URL libpq reads as
    written (and for a ``key=value`` string).
    """
    text = url.strip()
    if not is_url(text):
        return None
    rest = text[text.index("://") + 3 :]
    slash = rest.find("/")
    authority, path = (rest, "") if slash == -1 else (rest[:slash], rest[slash + 1 :].split("?", 1)[0])
    if authority.count("@") > 1:
        return "write an '@' in a user name or password as %40"
    if "@" not in authority and "@" in path:
        return "write a '/' in a password as %2F (and an '@' in a database name as %40)"
    return None


def _end_of(found: int, default: int) -> int:
    return default if found == -1 else found


def _masked_setting(match: re.Match[str]) -> str:
    key, equals, value = match.groups()
    return f"{key}{equals}***" if key.lower() in _SECRET_KEYS else f"{key}{equals}{value}"


def shown(value: object) -> str:
    """``repr(value)`` for a message, a password in a URL or connection string masked (:func:`without_password`)."""
    return repr(without_password(value)) if isinstance(value, str) else repr(value)


def with_libpq_options(url: str, options: str) -> str:
    """A PostgreSQL ``url`` with ``options`` (``-c name=value ...``) after any libpq ``options`` it gives, or,
    where it gives none, after the environment's ``PGOPTIONS``.

    libpq reads one ``options`` parameter, so a second would replace the
    first: they are joined into one. It reads ``PGOPTIONS`` only for a
    connection whose ``options`` are not set, which the URL returned always
    sets: what they would have given is kept. Every other parameter stays as given
    (libpq only percent-decodes: a ``+`` is a ``+``, not a space as a form
    decoder reads it; and ``urlunsplit`` would drop an empty host's ``//``).
    """
    base, _, text = url.partition("?")
    kept, given = [], []
    for part in text.split("&") if text else []:
        key, _, value = part.partition("=")
        if unquote(key) == "options":
            given.append(unquote(value))
        elif part:
            kept.append(part)
    if not given and os.environ.get("PGOPTIONS"):
        given.append(os.environ["PGOPTIONS"])
    return base + "?" + "&".join([*kept, "options=" + quote(" ".join([*given, options]), safe="")])


def open_storage(url: str, table_name: str, mode: Mode | str | None = Mode.AGENT, **kwargs: Any) -> BaseStorage:
    """A store for ``url``: ``sqlite:///path.db`` or ``postgresql://user@host/db``.

    Extra keyword arguments go to the backend's constructor (for PostgreSQL,
    ``schema``, ``pool_size``, ``connect_timeout``...). The PostgreSQL
    backend is imported only when asked for, so SQLite needs no driver.
    Raises InvalidInputError for any other URL (see :func:`parse`).
    """
    target = parse(url)
    if isinstance(target, SqliteTarget):
        from agno_storage.backends.sqlite import SqliteStorage

        return SqliteStorage(table_name, db_url=url, mode=mode, **kwargs)
    try:
        from agno_storage.backends.postgres import PostgresStorage
    except ImportError as exc:
        raise StorageError(
            f"PostgreSQL needs psycopg: pip install 'agno-session-storage[postgres]' ({exc})", table=table_name
        ) from exc
    return PostgresStorage(table_name, db_url=url, mode=mode, **kwargs)


__all__ = [
    "PostgresTarget",
    "SqliteTarget",
    "Target",
    "is_url",
    "open_storage",
    "parse",
    "parse_location",
    "postgres_conninfo",
    "shown",
    "with_libpq_options",
    "without_password",
]
