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
import heapq
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import attrs

from agno_storage import agent_runs, codec, conversation, conversation_go, fts5_chars
from agno_storage.conversation_message import Message
from agno_storage.errors import (
    CorruptRowError,
    InvalidInputError,
    ReadOnlyDatabaseError,
    StorageError,
    TableNotFoundError,
)

if TYPE_CHECKING:
    from agno_storage.backends.base import BaseStorage


def _ranges(ranges: Iterable[tuple[int, int]]) -> str:
    """A regular expression character class's body holding ``ranges`` (inclusive code point pairs)."""
    return "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges)


# A word is what FTS5's unicode61 tokenizer (as the index makes it) takes as one: a run of characters
# none of which separates words (fts5_chars.SEPARATORS, made from SQLite's own tokenizer), never
# starting with one of the accents it drops there (fts5_chars.NOT_FIRST). One class with ranges past
# U+FFFF makes Python's re test each character against every range; a class of the Basic Multilingual
# Plane's alone is a table lookup. So words are found with the BMP's separators only, and the rare word
# holding a character past U+FFFF is split again by the exact expression (:func:`_word_spans`).
_BMP = [(a, b) for a, b in fts5_chars.SEPARATORS if b <= 0xFFFF]
_PAST_BMP = [(max(a, 0x10000), b) for a, b in fts5_chars.SEPARATORS if b > 0xFFFF]
_NOT_FIRST = _ranges((c, c) for c in fts5_chars.NOT_FIRST)
_BMP_WORD = re.compile(f"[^{_ranges(_BMP)}{_NOT_FIRST}][^{_ranges(_BMP)}]*")
_EXACT_WORD = re.compile(f"[^{_ranges(fts5_chars.SEPARATORS)}{_NOT_FIRST}][^{_ranges(fts5_chars.SEPARATORS)}]*")
_FIRST_PAST_BMP = "\U00010000"


def _word_spans(text: str) -> Iterator[tuple[int, int]]:
    """Where the words of ``text`` are, as FTS5 splits it (see :data:`_BMP_WORD`)."""
    for m in _BMP_WORD.finditer(text):
        word = m.group()
        if word.isascii() or max(word) < _FIRST_PAST_BMP:
            yield m.span()
        else:
            for part in _EXACT_WORD.finditer(text, m.start(), m.end()):
                yield part.span()


def _words(text: str) -> builtins.list[str]:
    if text.isascii() or max(text, default="") < _FIRST_PAST_BMP:
        return _BMP_WORD.findall(text)  # the common case, in one call
    return [text[a:b] for a, b in _word_spans(text)]


# Case is folded as FTS5's unicode61 folds it (Unicode's simple case folding, of Unicode 6.1) where Python's
# lower() gives another letter: FTS5 folds these further (final sigma and the Greek symbol forms, the micro
# sign, long s), and leaves U+0130 (capital I with dot) as it is where lower() makes it two characters. The rest
# of lower() is FTS5's fold but for letters cased since Unicode 6.1, which FTS5 leaves as they are.
_FOLD = str.maketrans(
    {
        "\u00b5": "\u03bc",  # micro sign: Greek small mu
        "\u017f": "s",  # Latin small long s
        "\u03c2": "\u03c3",  # Greek small final sigma: sigma (lower() gives it for a capital sigma ending a word)
        "\u03d0": "\u03b2",  # Greek beta symbol: beta
        "\u03d1": "\u03b8",  # Greek theta symbol: theta
        "\u03d5": "\u03c6",  # Greek phi symbol: phi
        "\u03d6": "\u03c0",  # Greek pi symbol: pi
        "\u03f0": "\u03ba",  # Greek kappa symbol: kappa
        "\u03f1": "\u03c1",  # Greek rho symbol: rho
        "\u03f5": "\u03b5",  # Greek lunate epsilon symbol: epsilon
        "\u1e9b": "\u1e61",  # Latin small long s with dot above: s with dot above
        "\u1fbe": "\u03b9",  # Greek prosgegrammeni: iota
    }
)
_FOLD_PAIRS = tuple((chr(a), str(b)) for a, b in _FOLD.items())
_DOTTED_I = "\u0130"
#: Any character after whose lower() the fold differs (a capital sigma may lower to a final one).
_FOLD_DIFFERS = re.compile("[" + "".join(map(chr, _FOLD)) + "\u03a3" + _DOTTED_I + "]")


def _fold(word: str) -> str:
    """``word`` in lower case as FTS5 folds it (see :data:`_FOLD`)."""
    if _DOTTED_I in word:
        return _DOTTED_I.join(_fold(part) for part in word.split(_DOTTED_I))
    return word.lower().translate(_FOLD)


def _fold_text(text: str) -> str | None:
    """``text`` folded as FTS5 folds it (see :data:`_FOLD`), or None if it holds U+0130.

    Every other character folds to one character of the same kind (a
    separator to a separator, a letter to a letter, an accent FTS5 drops
    first in a word to one such), so the folded text has the same words at
    the same places: split it, or slice it where the text's words are.
    ``tests/test_search_index_hardening.py`` checks this over every code point.
    """
    if text.isascii():
        return text.lower()
    if _DOTTED_I in text:
        return None
    low = text.lower()
    if _FOLD_DIFFERS.search(text):
        # str.replace of the few letters the text holds: translate() looks up every character.
        for a, b in _FOLD_PAIRS:
            if a in low:
                low = low.replace(a, b)
    return low


def _folded(words: builtins.list[str], text: str) -> builtins.list[str]:
    """``words`` (of ``text``) each in lower case, as FTS5 folds it."""
    if text.isascii() or not _FOLD_DIFFERS.search(text):
        return [w.lower() for w in words]  # the common case: lower() is the fold
    return [_fold(w) for w in words]


#: Words either side of the first match in a snippet the scan makes.
SNIPPET_WORDS = 8
#: What the engines put around each matched word of a snippet before :func:`marked` reads it: two Unicode
#: noncharacters, which text meant for people does not hold (``[`` and ``]`` are common in it).
MARK_START, MARK_END = "\ufdd0", "\ufdd1"


def marked(raw: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """A snippet an engine marked with :data:`MARK_START` / :data:`MARK_END`: its text with each matched word
    in ``[`` ``]``, and where those words are in that text (start, end), brackets left out."""
    if MARK_START not in raw:
        return raw, ()
    out: list[str] = []
    marks: list[tuple[int, int]] = []
    at = 0  # length of the text made so far
    for i, part in enumerate(raw.split(MARK_START)):
        word, end, rest = part.partition(MARK_END)
        if i == 0 or not end:  # text before the first mark, or a start with no end: plain text
            text = part.replace(MARK_END, "")
            out.append(text)
            at += len(text)
            continue
        rest = rest.replace(MARK_END, "")
        marks.append((at + 1, at + 1 + len(word)))
        out += ["[", word, "]", rest]
        at += len(word) + 2 + len(rest)
    return "".join(out), tuple(marks)


@attrs.frozen(kw_only=True)
class SearchHit:
    """One message that matched a query, with the session it belongs to.

    ``entity_id`` is the agent, team or workflow id (``None`` for a session
    only ``agent_runs`` holds). ``snippet`` is the message text around the
    match with each matched word in ``[`` ``]``; ``marks`` are where those
    words are in ``snippet`` (start, end; the brackets left out), which
    tells them from brackets the text itself holds. ``score`` orders the
    hits (higher is better); it is comparable within one result list only.
    """

    session_id: str
    user_id: str | None
    entity_id: str | None
    message: Message
    snippet: str
    score: float
    marks: tuple[tuple[int, int], ...] = ()


def terms(query: str) -> builtins.list[str]:
    """The words of ``query``, lower-cased (as FTS5 folds case), each once, in order."""
    return builtins.list(dict.fromkeys(words_of(query)))


def spelled_terms(query: str) -> builtins.list[str]:
    """The words of ``query`` as spelled, each once (whatever its case), in order: for a full-text engine.

    The engine folds the case of the query as it folded the indexed text;
    Python's ``lower()`` folds some letters otherwise (``"İ"`` becomes ``"i"``
    and a combining dot, which FTS5 never sees in the text).
    """
    first: dict[str, str] = {}
    words = _words(query)
    for w, folded in zip(words, _folded(words, query), strict=True):
        first.setdefault(folded, w)
    return builtins.list(first.values())


def check_args(store: BaseStorage, query: object, limit: object) -> str:
    """``query`` if it and ``limit`` are valid search arguments; InvalidInputError otherwise.

    A query must be a str of valid Unicode: one holding a lone surrogate
    (no character, with no UTF-8 form) is refused, as a ``user_id`` is.
    """
    if not isinstance(query, str) or not (query.isascii() or codec.is_utf8(query)):
        raise InvalidInputError(
            f"query must be a str of valid Unicode, got {query!r}", table=store.table_name, column="query"
        )
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
    keeps the index from coming up to date, and a role the server refuses
    the index (no SELECT on it, or no write on it when it is stale) while
    it may read the sessions table. ``[]`` for a query with no words.
    """
    from agno_storage import search_index

    text = check_args(store, query, limit)
    words = terms(text)
    if not words:
        return []
    index = search_index.index_for(store)
    if not index.enabled():
        return scan(store, words, user_id, entity_id, limit)
    try:
        index.catch_up()
        return index.search(text, user_id, entity_id, limit)
    except (ReadOnlyDatabaseError, search_index.Unwatched, CorruptRowError):
        # A corrupt row logged for the index stops its catch-up (nothing of it is kept), for every user:
        # the scan answers as if there were no index, raising only where the filters reach that row.
        return scan(store, words, user_id, entity_id, limit)
    except TableNotFoundError:
        if index.enabled() and store.table_exists():
            raise
        # Another process disabled the index since it was found here (its tables went first), or another program
        # dropped the sessions table while the index caught up: the scan answers for what is there now.
        return scan(store, words, user_id, entity_id, limit)
    except StorageError as exc:
        if not search_index.denied(exc):
            raise
        # A role granted the sessions table but not the index (or not its queue): the scan needs only the former.
        return scan(store, words, user_id, entity_id, limit)


def scan(
    store: BaseStorage, words: builtins.list[str], user_id: str | None, entity_id: str | None, limit: int
) -> builtins.list[SearchHit]:
    """:func:`search` without an index: every session's history, read and matched here.

    Sessions are read one at a time and only the best ``limit`` hits are
    kept (a heap; the first found wins a tie), so memory does not grow with
    the table or with how many messages match.
    """
    best: builtins.list[tuple[float, int, SearchHit]] = []  # (score, -order, hit): the worst kept on top
    order = 0
    for session_id, owner, entity, messages in sessions_messages(store, user_id, entity_id):
        for message in messages:
            score = match(words, message.content)
            if not score:
                continue
            order += 1
            if len(best) == limit and (score, -order) <= best[0][:2]:
                continue  # no better than the worst kept: its snippet is never made
            hit = make_hit(words, session_id, owner, entity, message, score)
            if len(best) < limit:
                heapq.heappush(best, (score, -order, hit))
            else:
                heapq.heapreplace(best, (score, -order, hit))
    return [hit for _, _, hit in sorted(best, key=lambda h: (-h[0], -h[1]))]


def sessions_messages(
    store: BaseStorage, user_id: str | None, entity_id: str | None
) -> Iterable[tuple[str, str | None, str | None, builtins.list[Message]]]:
    """(session_id, user_id, entity_id, history) of every session the filters allow, newest first.

    Runs with no session row come last, and other users' runs under an
    owned session's id (:func:`conversation.strays`) before them: they have
    no entity (they come for ``entity_id`` None or ``''``), and come once
    per user whose runs they are (:func:`conversation_go.runs_by_user`), as
    ``history`` scopes them. ``user_id=''`` is "no user", a NULL or empty
    ``user_id``, in the sessions table and ``agent_runs`` alike.
    """
    table = store.table_name
    with_runs = agent_runs.exists(store)  # once, not for every session
    for session in store.iter_sessions(user_id=user_id, entity_id=entity_id):
        owner = session.user_id or None
        runs = (
            agent_runs.read_runs(
                store, session.session_id, owner, checked=True, with_no_user=True, of_unowned_row=owner is None
            )
            if with_runs
            else []
        )
        yield session.session_id, session.user_id, session.entity_id, conversation.combined(session, runs, table)
    if entity_id or not with_runs:  # such runs have no entity: '' (no entity) takes them, as the index does
        return
    for session_id, owner in agent_runs.stray_sessions(store, user_id):
        for user, rows in conversation.strays(owner, agent_runs.read_runs(store, session_id, user_id, checked=True)):
            yield session_id, user, None, conversation.combined(None, rows, table)
    for session_id in store.runs_only_session_ids(user_id):
        for user, rows in conversation_go.runs_by_user(agent_runs.read_runs(store, session_id, user_id)):
            yield session_id, user, None, conversation.combined(None, rows, table)


def words_of(text: str | None) -> builtins.list[str]:
    """The words of ``text`` in order, each lower-cased as FTS5 folds case."""
    text = text or ""
    folded = _fold_text(text)
    return _words(folded) if folded is not None else _folded(_words(text), text)


#: Up to this many query words, :func:`match` counts each over a message's words (cheaper than a Counter).
_COUNTED_ONE_BY_ONE = 4


def match(words: builtins.list[str], text: str | None) -> float:
    """How often the words occur in ``text`` if it holds all of them, else 0."""
    if not text:
        return 0.0
    found = words_of(text)
    if len(words) > _COUNTED_ONE_BY_ONE:
        # A query of many words (a pasted text) counted one by one cost its length times the message's, for
        # every message scanned: 20,000 words took minutes to scan what two words scan in a second.
        have = Counter(found)
        total = 0
        for w in words:
            if not have[w]:
                return 0.0
            total += have[w]
        return float(total)
    total = 0
    for w in words:
        n = found.count(w)
        if not n:
            return 0.0
        total += n
    return float(total)


def make_hit(
    words: builtins.list[str],
    session_id: str,
    user_id: str | None,
    entity_id: str | None,
    message: Message,
    score: float,
) -> SearchHit:
    """The hit of ``message`` for the query's ``words``: its snippet and marks made here, on every path (the scan,
    either engine's index), in time proportional to the message."""
    shown, marks = marked(snippet(words, message.content or ""))
    return SearchHit(
        session_id=session_id,
        user_id=user_id,
        entity_id=entity_id,
        message=message,
        snippet=shown,
        score=float(score),
        marks=marks,
    )


def snippet(words: builtins.list[str], text: str) -> str:
    """``text`` around the first matched word, each matched word between :data:`MARK_START` and :data:`MARK_END`."""
    tokens = builtins.list(_word_spans(text))
    whole = _fold_text(text)
    folded = [whole[a:b] for a, b in tokens] if whole is not None else _folded([text[a:b] for a, b in tokens], text)
    wanted = set(words)
    first = next((i for i, w in enumerate(folded) if w in wanted), 0)
    lo, hi = max(0, first - SNIPPET_WORDS), min(len(tokens), first + SNIPPET_WORDS + 1)
    if not tokens:
        return text
    start = tokens[lo][0] if lo else 0
    end = tokens[hi - 1][1] if hi < len(tokens) else len(text)
    out, at = [], start
    for (a, b), w in zip(tokens[lo:hi], folded[lo:hi], strict=True):
        if w in wanted:
            out += [text[at:a], MARK_START, text[a:b], MARK_END]
            at = b
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


__all__ = [
    "MARK_END",
    "MARK_START",
    "SearchHit",
    "disable_search",
    "enable_search",
    "make_hit",
    "marked",
    "search",
    "terms",
]
