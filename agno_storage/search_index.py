"""The opt-in search index of one sessions table: SQLite FTS5 or a PostgreSQL GIN-indexed tsvector.

Design (docs/search.md): other writers (agno 1.x, agno-golang) write the
sessions table without knowing about any index, so :meth:`enable` adds
triggers to it (and to ``agent_runs``) that only append the changed
session id to a plain log table, ``<table>_search_queue``. The full-text
index, which only this store reads, is brought up to date from that log at
the start of each search: each logged session is read again and its
messages replace the ones indexed before. A trigger never touches the
full-text index itself, so a writer whose SQLite has no FTS5 still writes
the sessions table; deleting, updating and Go's ``INSERT OR REPLACE`` all
log the session id, and reindexing a session is idempotent.

The SQLite index (FTS5) is :mod:`agno_storage.search_sqlite`, the
PostgreSQL one (a GIN-indexed tsvector) :mod:`agno_storage.search_pg`; this
module holds what both share: turning a session into indexed messages
(:func:`docs_of`), the fingerprints, the hits' messages, the errors that
make a search scan instead.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from agno_storage import codec, conversation, conversation_go, conversation_message, fingerprint
from agno_storage.conversation_message import Message
from agno_storage.errors import CorruptRowError, StorageError
from agno_storage.search import SearchHit, make_hit

if TYPE_CHECKING:
    from agno_storage.backends.base import BaseStorage
    from agno_storage.models import Session

#: Messages per executemany / COPY batch when (re)indexing.
BATCH = 5_000
#: Sessions read per statement when catching up.
CHUNK = 500
#: Sessions per batch an index build hands to its worker (one write transaction each), and the most stored
#: text a batch holds beyond its first session: a batch's docs (each message's JSON and text) are about twice its text,
#: well under a worker's largest frame (agno_storage.workers.MAX_FRAME).
EXTRACT_BATCH = 200
EXTRACT_BYTES = 64 << 20
#: Changes every mark: bump it when what a session's messages are made of changes.
_MARK_VERSION = b"agno_storage.search mark 1\x00"


class Unwatched(StorageError):
    """The index cannot answer now (the sessions table was dropped since the index was enabled and is not there,
    say): scan instead."""


class Disabled(Unwatched):
    """The index was removed (by another process) since it was found: scan instead."""


class RemakeRefused(StorageError):
    """The server refused this role something that making the index anew needs (taking the index's trigger off a
    renamed table another role owns, say). Not a reason to scan quietly: the index would stay out of date for
    every role, so the error is the caller's."""


def denied(exc: BaseException) -> bool:
    """Whether ``exc`` is, or was raised from, the server refusing this role a privilege (SQLSTATE 42501) to the
    index's tables; False for :class:`RemakeRefused`."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, RemakeRefused):
            return False
        if getattr(cause, "sqlstate", None) == "42501":
            return True
        cause = cause.__cause__
    return False


class Index(Protocol):
    def enabled(self) -> bool: ...
    def enable(self) -> None: ...
    def disable(self) -> None: ...
    def catch_up(self) -> int: ...
    def search(self, query: str, user_id: str | None, entity_id: str | None, limit: int) -> builtins.list[SearchHit]:
        """The hits of ``query`` (which has words) the index holds, best first."""
        ...


def index_for(store: BaseStorage) -> Index:
    """The index object of ``store``'s engine."""
    from agno_storage.backends.sqlite import SqliteStorage

    if isinstance(store, SqliteStorage):
        from agno_storage.search_sqlite import SqliteIndex

        return SqliteIndex(store)
    from agno_storage.search_pg import PostgresIndex  # psycopg: only for a PostgreSQL store

    return PostgresIndex(store)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- shared


Doc = tuple[str, str, str, int, str, str, int]
"""(session_id, user_id or '', entity_id or '', position, Message JSON, content, fingerprint) of one indexed message."""

_CONVERTER = conversation_message.make_converter()
_UNSTRUCTURE_MESSAGE = _CONVERTER.get_unstructure_hook(Message)


def _docs(
    session_id: str, user_id: str | None, entity_id: str | None, messages: Iterable[Message], start: int = 0
) -> Iterator[Doc]:
    """The indexed form of each message with content, positions from ``start``; see :func:`digest` for the fingerprint."""
    user, entity = user_id or "", entity_id or ""
    owner = _owner_key(user, entity).encode("utf-8", "surrogatepass")
    unstructure, dumps, blake2b = _UNSTRUCTURE_MESSAGE, orjson.dumps, hashlib.blake2b
    for pos, m in enumerate(messages, start):
        if m.content:
            try:
                message = dumps(unstructure(m))
            except TypeError:  # past what orjson writes (64-bit integers, 254 levels, valid UTF-8)
                message = conversation_message.json_text(unstructure(m), "a message").encode()
            fingerprint = int.from_bytes(blake2b(owner + message, digest_size=8).digest(), "big") >> 1
            content = m.content
            if not content.isascii():
                content = _utf8_text(content)
            yield (session_id, user, entity, pos, message.decode(), content, fingerprint)


def _owner_key(user: str, entity: str) -> str:
    """Owner and entity as the start of a fingerprinted key: each with its length, so no two pairs spell alike
    (``"a\\0b", "c"`` and ``"a", "b\\0c"`` would, joined by NUL: ids may hold one)."""
    return f"{len(user)}\x00{user}{len(entity)}\x00{entity}"


def _utf8_text(text: str) -> str:
    """``text`` as SQLite can store it: a lone surrogate (JSON's ``\\ud800``, valid JSON, no character) as U+FFFD.

    Only the indexed text: the message's JSON keeps the escape, so a hit's
    ``Message`` is the stored one.
    """
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def digest(doc: Doc) -> int:
    """A stable 63-bit fingerprint of what a doc indexes (owner, entity, message), position left out.

    Never negative (a session's own fingerprint, :meth:`SqliteIndex.mark`, is).
    """
    key = (_owner_key(doc[1], doc[2]) + doc[4]).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") >> 1


def docs_of(
    session_id: str, session: Session | None, runs: Sequence[conversation_go.RunRow], table: str
) -> builtins.list[Doc]:
    """The indexed messages of a session row (or ``None``) and its ``agent_runs`` rows.

    A session row's messages are its owner's; runs with no row, and other
    users' runs under an owned session's id (:func:`conversation.strays`),
    are the user's each names (:func:`conversation_go.runs_by_user`), with no
    entity, as ``history`` scopes them.
    """
    try:
        out: builtins.list[Doc] = []
        if session is not None:
            messages = conversation.combined(session, runs, table)
            out += _docs(session_id, session.user_id, session.entity_id, messages)
            groups = conversation.strays(session.user_id, runs)
        else:
            groups = conversation_go.runs_by_user(runs)
        for user, rows in groups:
            messages = conversation.combined(None, rows, table)
            out += _docs(session_id, user, None, messages, start=len(out))
        return out
    except conversation_message.Unwritable as exc:
        raise CorruptRowError(f"{table} session {session_id!r}: {exc}", table=table, session_id=session_id) from None


def _message_value(message: str) -> Any:
    """An indexed message's JSON decoded: by the codec (wide integers exact), or the standard library where it
    holds what orjson does not read (a lone surrogate's escape: the index wrote it so, see
    :func:`conversation_message.json_text`)."""
    try:
        return codec.loads(message)
    except ValueError:
        return json.loads(message)


def message_of(message: str) -> Message:
    """The :class:`Message` an index row holds as JSON (:func:`docs_of` wrote it)."""
    return _CONVERTER.structure(_message_value(message), Message)


def hits_of(words: builtins.list[str], rows: Iterable[Sequence[Any]]) -> builtins.list[SearchHit]:
    """The hits of the index rows ``(session_id, user_id, entity_id, message JSON, score)``, each snippet and
    its marks made as the scan makes them, around ``words`` (the query's :func:`~agno_storage.search.terms`).

    Not by the engine: FTS5's ``snippet()`` costs the square of the matches
    in a message (a message holding the word 16,000 times took 2.8 s, one
    holding it 300,000 times 14 minutes); this costs the message's length.
    """
    return [
        make_hit(words, session_id, user or None, entity or None, message_of(message), score)
        for session_id, user, entity, message, score in rows
    ]


def owner_filters(
    user_id: str | None, entity_id: str | None, mark: str, prefix: str = ""
) -> tuple[str, builtins.list[Any]]:
    sql, params = "", []
    for column, value in (("user_id", user_id), ("entity_id", entity_id)):
        if value is not None:
            sql += f" AND {prefix}{column} = {mark}"
            params.append(value)
    return sql, params


def in_chunks(items: Iterable[Any], size: int = BATCH) -> Iterator[builtins.list[Any]]:
    batch: builtins.list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def mark(marked: Sequence[int], raw: Sequence[Any] | None, runs: Sequence[conversation_go.RunRow]) -> int:
    """A session's own fingerprint, negative: of its stored row's ids, owner and conversation columns, and runs.

    ``marked`` are the places of those columns in a stored row. Kept in
    ``<table>_search_marks``, it lets :meth:`SqliteIndex.catch_up` skip a
    logged session whose conversation is byte for byte what was indexed (a
    rewrite that changed only timestamps, state or nothing) without
    decoding it.
    """
    h = hashlib.sha256(_MARK_VERSION)
    if raw is None:
        h.update(b"-")
    else:
        for i in marked:
            fingerprint.feed(h, raw[i])
    for run in runs:
        for value in (run.id, run.user_id, run.user_message, run.agent_message, run.messages, run.created_at):
            fingerprint.feed(h, value)
    return -1 - (int.from_bytes(h.digest()[:8], "big") >> 1)


__all__ = [
    "BATCH",
    "CHUNK",
    "EXTRACT_BATCH",
    "EXTRACT_BYTES",
    "Disabled",
    "Index",
    "RemakeRefused",
    "Unwatched",
    "denied",
    "digest",
    "docs_of",
    "hits_of",
    "in_chunks",
    "index_for",
    "mark",
    "message_of",
    "owner_filters",
]
