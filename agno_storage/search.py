"""Full-text search over every message of every session: :class:`SearchHit` and :func:`search`.

A query is split into words (runs of letters and digits, lower-cased);
a message matches when it holds every word as a whole word. Quotes,
operators and any other characters in a query are separators, never
syntax, so no query raises a full-text syntax error.

Without an index, :func:`search` scans: it reads every session's history
(slow on a large table, no setup). :func:`enable_search` builds an index
(SQLite FTS5, PostgreSQL ``tsvector`` with a GIN index) that every later
search first brings up to date from a log the table's triggers fill; see
docs/search.md for the design and its cost to other writers, and
:mod:`agno_storage.search_index`.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

import attrs

from agno_storage import agent_runs, conversation
from agno_storage.conversation import Message
from agno_storage.errors import CorruptRowError, InvalidInputError, ReadOnlyDatabaseError

if TYPE_CHECKING:
    from agno_storage.backends.base import BaseStorage

# A word: letters and digits, as FTS5's unicode61 takes them, with two more of its token characters that
# Python's \w leaves out: the combining accents it counts as diacritics (those of decomposed Latin text,
# "e" + U+0301; the other marks of U+0300-U+036F split words in FTS5 too) and the private-use areas.
# Otherwise a decomposed "résumé" is one token to FTS5 and two words here.
# An accent only goes on a word: FTS5 drops one that leads it.
_PRIVATE_USE = r"\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd"
_ACCENTS = r"\u0300-\u0304\u0306-\u030c\u030f\u0311\u031b\u0323-\u0328\u032d\u032e\u0330\u0331"
_WORD = re.compile(rf"(?:[^\W_]|[{_PRIVATE_USE}])(?:[^\W_]|[{_PRIVATE_USE}{_ACCENTS}])*")
#: Words either side of the first match in a snippet the scan makes.
SNIPPET_WORDS = 8


@attrs.frozen(kw_only=True)
class SearchHit:
    """One message that matched a query, with the session it belongs to.

    ``entity_id`` is the agent, team or workflow id (``None`` for a session
    only ``agent_runs`` holds). ``snippet`` is the message text around the
    match with each matched word in ``[`` ``]``. ``score`` orders the hits
    (higher is better); it is comparable within one result list only.
    """

    session_id: str
    user_id: str | None
    entity_id: str | None
    message: Message
    snippet: str
    score: float


def terms(query: str) -> builtins.list[str]:
    """The words of ``query``, lower-cased, each once, in order."""
    return builtins.list(dict.fromkeys(w.lower() for w in _WORD.findall(query)))


def spelled_terms(query: str) -> builtins.list[str]:
    """The words of ``query`` as spelled, each once (whatever its case), in order: for a full-text engine.

    The engine folds the case of the query as it folded the indexed text;
    Python's ``lower()`` folds some letters otherwise (``"İ"`` becomes ``"i"``
    and a combining dot, which FTS5 never sees in the text).
    """
    first: dict[str, str] = {}
    for w in _WORD.findall(query):
        first.setdefault(w.lower(), w)
    return builtins.list(first.values())


def check_args(store: BaseStorage, query: object, limit: object) -> str:
    if not isinstance(query, str):
        raise InvalidInputError(f"query must be a str, got {query!r}", table=store.table_name)
    if type(limit) is not int or not 1 <= limit <= 10_000:
        raise InvalidInputError(f"limit must be an int from 1 to 10000, got {limit!r}", table=store.table_name)
    return query


def search(
    store: BaseStorage,
    query: str,
    user_id: str | None = None,
    entity_id: str | None = None,
    limit: int = 20,
) -> builtins.list[SearchHit]:
    """Messages holding every word of ``query``, best first; with ``user_id`` / ``entity_id``, only those sessions.

    Uses the index if :func:`enable_search` made one (after bringing it up to
    date, a write transaction when other writers changed the table since),
    else scans every session. A store that cannot write (opened read-only, or
    a read-only file) scans instead of bringing a stale index up to date, so
    the answer is current either way; so does a search while a corrupt row
    keeps the index from coming up to date. ``[]`` for a query with no words.
    """
    from agno_storage import search_index

    text = check_args(store, query, limit)
    words = terms(text)
    if not words:
        return []
    index = search_index.index_for(store)
    if index.enabled():
        try:
            index.catch_up()
        except (ReadOnlyDatabaseError, search_index.Unwatched, CorruptRowError):
            # A corrupt row logged for the index stops its catch-up (nothing of it is kept), for every user:
            # the scan answers as if there were no index, raising only where the filters reach that row.
            return scan(store, words, user_id, entity_id, limit)
        return index.search(spelled_terms(text), user_id, entity_id, limit)
    return scan(store, words, user_id, entity_id, limit)


def scan(
    store: BaseStorage, words: builtins.list[str], user_id: str | None, entity_id: str | None, limit: int
) -> builtins.list[SearchHit]:
    """:func:`search` without an index: every session's history, read and matched here."""
    hits: builtins.list[tuple[float, int, SearchHit]] = []
    order = 0
    for session_id, owner, entity, messages in sessions_messages(store, user_id, entity_id):
        for message in messages:
            score = match(words, message.content)
            if score:
                hit = SearchHit(
                    session_id=session_id,
                    user_id=owner,
                    entity_id=entity,
                    message=message,
                    snippet=snippet(words, message.content or ""),
                    score=score,
                )
                hits.append((-score, order, hit))
                order += 1
    hits.sort(key=lambda h: (h[0], h[1]))
    return [h[2] for h in hits[:limit]]


def sessions_messages(
    store: BaseStorage, user_id: str | None, entity_id: str | None
) -> Iterable[tuple[str, str | None, str | None, builtins.list[Message]]]:
    """(session_id, user_id, entity_id, history) of every session the filters allow, newest first.

    Sessions only ``agent_runs`` holds come last (they have no entity: they
    come for ``entity_id`` None or ``''``), once per user whose runs they
    hold (:func:`conversation.runs_by_user`). ``user_id=''`` is "no user", a
    NULL or empty ``user_id``, in the sessions table and ``agent_runs`` alike.
    """
    table = store.table_name
    with_runs = agent_runs.exists(store)  # once, not for every session
    for session in store.list(user_id=user_id, entity_id=entity_id):
        runs = agent_runs.read_runs(store, session.session_id, checked=True) if with_runs else []
        yield session.session_id, session.user_id, session.entity_id, conversation.combined(session, runs, table)
    if not entity_id:  # such a session has no entity: '' (no entity) takes it, as the index does
        for session_id in store.runs_only_session_ids(user_id):
            for owner, rows in conversation.runs_by_user(agent_runs.read_runs(store, session_id, user_id)):
                yield session_id, owner, None, conversation.combined(None, rows, table)


def words_of(text: str | None) -> builtins.list[str]:
    return [w.lower() for w in _WORD.findall(text or "")]


def match(words: builtins.list[str], text: str | None) -> float:
    """How often the words occur in ``text`` if it holds all of them, else 0."""
    if not text:
        return 0.0
    found = words_of(text)
    counts = [found.count(w) for w in words]
    return float(sum(counts)) if all(counts) else 0.0


def snippet(words: builtins.list[str], text: str) -> str:
    """``text`` around the first matched word, each matched word in brackets."""
    tokens = builtins.list(_WORD.finditer(text))
    wanted = set(words)
    first = next((i for i, t in enumerate(tokens) if t.group().lower() in wanted), 0)
    lo, hi = max(0, first - SNIPPET_WORDS), min(len(tokens), first + SNIPPET_WORDS + 1)
    if not tokens:
        return text
    start = tokens[lo].start() if lo else 0
    end = tokens[hi - 1].end() if hi < len(tokens) else len(text)
    out, at = [], start
    for t in tokens[lo:hi]:
        if t.group().lower() in wanted:
            out += [text[at : t.start()], "[", t.group(), "]"]
            at = t.end()
    out.append(text[at:end])
    return ("…" if start else "") + "".join(out) + ("…" if end < len(text) else "")


def enable_search(store: BaseStorage) -> None:
    """Build the search index and the triggers that keep it current; idempotent. See docs/search.md."""
    from agno_storage import search_index

    search_index.index_for(store).enable()


def disable_search(store: BaseStorage) -> None:
    """Remove the index, its log and its triggers; the table is as before :func:`enable_search`. Idempotent."""
    from agno_storage import search_index

    search_index.index_for(store).disable()


__all__ = ["SearchHit", "disable_search", "enable_search", "search", "terms"]
