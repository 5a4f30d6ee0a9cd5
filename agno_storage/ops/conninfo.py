"""A PostgreSQL URL in what the operations say: its secrets masked in a driver's message, libpq's reading checked.

A driver's message may quote the URL it was given, or the token of it libpq
could not read (which may be the password): :func:`scrubbed` masks them;
:func:`check_conninfo` refuses at once a URL libpq would misread.
"""

from __future__ import annotations

import difflib
import re
from urllib.parse import unquote as uri_unquote

from agno_storage import urls
from agno_storage.errors import InvalidInputError, StorageError


def scrubbed(text: str, url: str) -> str:
    """``text`` (a driver's message about ``url``) with every secret of ``url`` as ``***``.

    The secrets are what :func:`agno_storage.urls.without_password` masks
    (a URL's password, ``password=`` settings), as written and decoded:
    libpq quotes the token it cannot read, which may be the password. The
    URL itself, where the text quotes it (as given, or as the driver was
    given it), becomes the masked URL whole; elsewhere a secret of
    :data:`_SHORTEST_SCRUBBED` characters or more is masked wherever it
    occurs, and a shorter one only where it stands alone (quoted, or as a
    URL's password): masked wherever its letters occur, it would garble the
    text and show which letters it is.
    """
    masked = urls.without_password(url)
    if masked == url:
        return text
    secrets = {
        url[i1:i2]
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, url, masked, autojunk=False).get_opcodes()
        if tag != "equal" and i2 > i1
    }
    ordered = sorted(secrets | {uri_unquote(s) for s in secrets}, key=len, reverse=True)
    # Where the text quotes the URL whole (as given, or as the driver was given it), the masked URL goes back.
    spellings = [url]
    try:
        target = urls.parse_location(url) if urls.is_url(url) else None
    except InvalidInputError:  # a URL the parser refuses: only as given
        target = None
    if isinstance(target, urls.PostgresTarget) and target.conninfo != url:
        spellings.append(target.conninfo)
    parts = _split_all(text, spellings)
    for secret in ordered:
        if len(secret) >= _SHORTEST_SCRUBBED:
            parts = [part.replace(secret, "***") for part in parts]
        else:  # only where it stands alone: between quotes, or as a URL's password
            for alone in (f'"{secret}"', f"'{secret}'", f":{secret}@"):
                parts = [part.replace(alone, alone.replace(secret, "***")) for part in parts]
    return masked.join(parts)


def _split_all(text: str, spellings: list[str]) -> list[str]:
    """``text`` split at every occurrence of any of ``spellings`` (the longest first where they overlap)."""
    parts = [text]
    for spelling in sorted(spellings, key=len, reverse=True):
        parts = [piece for part in parts for piece in part.split(spelling)]
    return parts


#: The shortest secret :func:`scrubbed` masks outside a URL the text quotes whole.
_SHORTEST_SCRUBBED = 4


def check_conninfo(url: str) -> None:
    """Raise StorageError (its password never shown) at once if libpq cannot read the PostgreSQL ``url``.

    Also for a URL libpq would read with part of its password as the host or
    database name (:func:`agno_storage.urls.misread_userinfo`).
    """
    target = urls.parse_location(url)
    if not isinstance(target, urls.PostgresTarget):
        return
    advice = urls.misread_userinfo(url)
    if advice is not None:
        raise StorageError(
            f"cannot read the PostgreSQL URL {_hidden(url)}: libpq would read its password as host: {advice}"
        )
    try:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        return  # opening it says psycopg is needed
    try:
        conninfo_to_dict(target.conninfo)
    except psycopg.Error as exc:
        # libpq quotes the token it cannot read, which may be (part of) the password: no quoted text is shown.
        said = _QUOTED.sub('"***"', scrubbed(str(exc), url))
        raise StorageError(f"cannot read the PostgreSQL URL {_hidden(url)}: {said}") from None


_QUOTED = re.compile(r'"[^"]*"')


def _hidden(url: str) -> str:
    """``url`` for a message about a URL libpq misreads: nothing before its last ``@`` (the whole user information)."""
    text = url.strip()
    if not urls.is_url(text) or "@" not in text:
        return urls.shown(url)
    scheme = text[: text.index("://") + 3]
    return repr(scheme + "***@" + urls.without_password(scheme + text[text.rindex("@") + 1 :])[len(scheme) :])


__all__ = ["check_conninfo", "scrubbed"]
