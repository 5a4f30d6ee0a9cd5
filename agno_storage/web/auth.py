"""Bearer tokens: the token file, and who a request is.

A token file holds one ``TOKEN USER_ID`` pair per line; ``*`` as the user
id means every user; ``#`` at the start of a line or after whitespace starts
a comment (``alice#bob`` is one user id). Tokens are ASCII: a browser sends
an ``Authorization`` header's bytes as they are, which no server can read
back as the same text. A token mapped to a user sees only that user's
sessions, on every endpoint.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from pathlib import Path

import attrs

from agno_storage.errors import InvalidInputError

#: The user id that means "every user".
ALL_USERS = "*"
#: The cookie the web page keeps a token in after the sign-in form.
COOKIE = "agno_storage_token"
#: Seconds a browser keeps that cookie (12 hours): a browser left signed in forgets the token by the next day.
COOKIE_MAX_AGE = 12 * 3600

#: A comment: ``#`` at the start of a line or after whitespace, to the end of the line. A ``#`` inside a
#: word (``alice#bob``) is part of it, so a user id holding one is never cut short silently.
_COMMENT = re.compile(r"(?:^|\s)#.*")


@attrs.frozen
class Principal:
    """Who is asking: ``user_id`` None means every user (no tokens configured, or a ``*`` token)."""

    user_id: str | None


EVERYONE = Principal(user_id=None)


@attrs.frozen
class Tokens:
    """The tokens of a token file, each with the user it may see (None: all users)."""

    by_token: dict[str, str | None]

    def principal(self, token: str | None) -> Principal | None:
        """Who ``token`` is, or None if it is none of these. Compared in constant time."""
        if not token:
            return None
        found: Principal | None = None
        encoded = token.encode("utf-8", "surrogateescape")
        for known, user in self.by_token.items():
            if hmac.compare_digest(known.encode("utf-8", "surrogateescape"), encoded):
                found = Principal(user_id=user)
        return found


def parse_tokens(text: str, source: str = "token file") -> Tokens:
    """The tokens of a token file's ``text``; InvalidInputError naming the line of a bad one.

    A byte order mark before the first line (as some editors save) is not
    part of the first token. A token holding anything but printable ASCII is
    refused: ``Authorization`` headers carry bytes, not text, so such a token
    could sign in through the page's form but never as ``Bearer``.
    """
    by_token: dict[str, str | None] = {}
    for number, raw in enumerate(text.removeprefix("\ufeff").splitlines(), 1):
        line = _COMMENT.sub("", raw).strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise InvalidInputError(f"{source}, line {number}: expected 'TOKEN USER_ID', got {len(parts)} fields")
        token, user = parts
        if len(token) < 16:
            raise InvalidInputError(f"{source}, line {number}: a token must be at least 16 characters")
        if not (token.isascii() and token.isprintable()):
            raise InvalidInputError(
                f"{source}, line {number}: a token must be printable ASCII (an Authorization header cannot carry "
                "other characters as text)"
            )
        if token in by_token:
            raise InvalidInputError(f"{source}, line {number}: the token is listed twice")
        by_token[token] = None if user == ALL_USERS else user
    if not by_token:
        raise InvalidInputError(f"{source} lists no token")
    return Tokens(by_token=by_token)


def read_tokens(path: str | Path) -> Tokens:
    """The tokens in the file at ``path``; InvalidInputError if it cannot be read or is malformed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read token file {str(path)!r}: {exc}") from None
    return parse_tokens(text, f"token file {str(path)!r}")


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header, or None."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def is_loopback(host: str) -> bool:
    """True for a host name or address that only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


__all__ = [
    "ALL_USERS",
    "COOKIE",
    "COOKIE_MAX_AGE",
    "EVERYONE",
    "Principal",
    "Tokens",
    "bearer",
    "is_loopback",
    "parse_tokens",
    "read_tokens",
]
