"""One sessions table as the HTTP server reads it: a page of sessions after a cursor, and one session.

A :class:`TableReader` holds the table's store (read-only; the
:class:`~agno_storage.web.source.Source` of its database makes it), so
``store.read``, ``history``, ``search`` and ``usage`` work on it as on any
store; what the reader adds is a page of sessions after a cursor, with the
time filters (:class:`Filters`), in the store's own newest-first order. A
page's :class:`Cursor` goes out to clients as opaque text
(:func:`encode_cursor`) and comes back through :func:`decode_cursor`, which
refuses any text it did not make.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import attrs
import orjson

from agno_storage.backends.base import BaseStorage
from agno_storage.backends.statements import ANY, filter_kind
from agno_storage.errors import InvalidInputError
from agno_storage.models import Mode, Session, SessionSummary
from agno_storage.ops.tables import TableInfo

#: Rows a page may hold; ``limit`` above it is a bad parameter.
MAX_LIMIT = 500


@attrs.frozen
class Cursor:
    """Where a page ended: the last row's (created_at, session_id) in newest-first order."""

    created_at: int | None
    session_id: str


@attrs.frozen
class Filters:
    """What a list of sessions is narrowed to; ``None`` is no filter. Times are Unix seconds."""

    user_id: str | None = None
    entity_id: str | None = None
    #: created_at >= since
    since: int | None = None
    #: created_at < until
    until: int | None = None


def encode_cursor(cursor: Cursor) -> str:
    """The opaque text of ``cursor``: URL-safe base64 of a JSON pair."""
    raw = orjson.dumps([cursor.created_at, cursor.session_id])
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(text: str) -> Cursor:
    """The cursor ``text`` names; InvalidInputError for anything :func:`encode_cursor` did not make."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        value = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise InvalidInputError(f"cursor {text!r} is not one this server handed out") from None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not (value[0] is None or (type(value[0]) is int and -(2**63) <= value[0] < 2**63))
        or not isinstance(value[1], str)
    ):
        raise InvalidInputError(f"cursor {text!r} is not one this server handed out")
    return Cursor(created_at=value[0], session_id=value[1])


class TableReader:
    """Reads one sessions table with its store's statements and codec. Thread-safe."""

    def __init__(self, info: TableInfo, store: BaseStorage) -> None:
        self.info = info
        #: The table's store, reading through this source's read-only connections.
        self.store = store
        st = store.statements
        select = st.select
        if info.missing:
            # An old table still reads: the columns a migration would add read as NULL.
            # Only the select list changes: a table may be named like one of them.
            head, sep, table = select.partition(" FROM ")
            for name in info.missing:
                head = head.replace(st.column(name), "NULL")
            select = head + sep + table
        self._select = select
        # The two sort keys exactly as the store's newest-first order spells them,
        # so the cursor's comparison uses the same collation as the ORDER BY.
        self._created, self._id_sort = st.sort_keys()
        self._mark = st.placeholder

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def mode(self) -> Mode:
        return self.info.mode

    def page(self, filters: Filters, after: Cursor | None, limit: int) -> tuple[list[SessionSummary], Cursor | None]:
        """Up to ``limit`` sessions newest first after ``after``, and the cursor of the next page (or None).

        Stable while writers add sessions: a page starts strictly after the
        previous page's last (created_at, session_id), so rows inserted
        meanwhile with a newer created_at never shift what comes next. Only
        the summary columns are read (no JSON is decoded). Each condition is an
        index range on created_at; rows without a created_at come last, in a
        second statement. CorruptRowError for a row of the wrong types, as
        ``store.list_summaries`` raises it.
        """
        mark = self._mark
        created, sid = self._created, self._id_sort
        rows: list[SessionSummary] = []
        if after is None or after.created_at is not None:
            terms, params = self._times(filters)
            if after is not None:
                terms.append(f"{created} <= {mark} AND ({created} < {mark} OR {sid} > {mark})")
                params.extend([after.created_at, after.created_at, after.session_id])
            else:
                terms.append(f"{created} IS NOT NULL")  # those come from the second statement
            rows = self._rows(filters, terms, params, limit + 1)
        if len(rows) <= limit and filters.since is None and filters.until is None:
            terms, params = [f"{created} IS NULL"], []
            if after is not None and after.created_at is None:
                terms.append(f"{sid} > {mark}")
                params.append(after.session_id)
            rows += self._rows(filters, terms, params, limit + 1 - len(rows))
        listed = rows[:limit]
        next_cursor = None
        if len(rows) > limit and listed:
            last = listed[-1]
            next_cursor = Cursor(created_at=last.created_at, session_id=last.session_id)
        return listed, next_cursor

    def _rows(self, filters: Filters, terms: list[str], params: list[Any], limit: int) -> list[SessionSummary]:
        """Up to ``limit`` summaries newest first: the store's user and entity filters, then ``terms`` (ANDed)."""
        if self.store._unmatchable(filters.user_id, filters.entity_id):
            return []
        st = self.store.statements
        where = st.where(False, filter_kind(filters.user_id), filter_kind(filters.entity_id))
        if terms:
            where += (" AND " if where else " WHERE ") + " AND ".join(terms)
        text = f"{st.select_summaries}{where}{st.order} LIMIT {self._mark}"
        # Only a filter by value binds one ('' is "nobody", None no filter).
        bound = [v for v in (filters.user_id, filters.entity_id) if v]
        return self.store.row_codec.decode_summaries(self.store._query(text, [*bound, *params, limit]))

    def get(self, session_id: str, user_id: str | None) -> Session | None:
        """The session with ``session_id`` (owned by ``user_id`` unless None), or None."""
        if self.store._unmatchable(session_id, user_id):
            return None
        text = self._select + self.store.statements.where(True, filter_kind(user_id), ANY)
        rows = self.store._query(text, [session_id, user_id] if user_id else [session_id])
        return self.store.row_codec.decode(rows[0]) if rows else None

    def _times(self, filters: Filters) -> tuple[list[str], list[Any]]:
        """The terms (ANDed) and parameters of ``filters``' time range."""
        terms: list[str] = []
        params: list[Any] = []
        if filters.since is not None:
            terms.append(f"{self._created} >= {self._mark}")
            params.append(filters.since)
        if filters.until is not None:
            terms.append(f"{self._created} < {self._mark}")
            params.append(filters.until)
        return terms, params


__all__ = ["MAX_LIMIT", "Cursor", "Filters", "TableReader", "decode_cursor", "encode_cursor"]
