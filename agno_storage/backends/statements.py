"""The engine contract's statements: the SQL a store runs on its table, as one record.

Each engine builds one :class:`Statements` for a table (its dialect: bind
placeholder, identifier quoting, sort order); everything that combines them
(filters, limits, the newest-first order) is written here once, so the two
engines cannot disagree on which rows a call returns.
"""

from __future__ import annotations

import re
from typing import TypeAlias

import attrs

from agno_storage.schema import quote

#: How a user_id / entity_id argument filters rows: not at all (None), by value, or
#: "nobody" for '' (which agno spells NULL and the Go port '').
ANY, EQUALS, NOBODY = 0, 1, 2

#: What a SELECT returns: every column, the session ids only, or a summary (ids, entity, timestamps).
FULL, IDS, SUMMARY = 0, 1, 2

#: What a SELECT filters on and returns: (by session_id, user_id filter kind, entity_id filter kind,
#: limited, FULL / IDS / SUMMARY).
SelectKey: TypeAlias = tuple[bool, int, int, bool, int]


#: How :attr:`Statements.order` sorts: created_at descending (NULLs last), then session_id.
_ORDER = re.compile(r" ORDER BY (?P<created>.+?) DESC(?: NULLS LAST)?, (?P<session_id>.+)")


def filter_kind(value: str | None) -> int:
    """:data:`ANY` for None, :data:`NOBODY` for '', else :data:`EQUALS`."""
    if value is None:
        return ANY
    return NOBODY if value == "" else EQUALS


@attrs.frozen
class Statements:
    """The statements of one table, with every identifier quoted and every value bound.

    Rows bind and come back in the mode's column order
    (:attr:`~agno_storage.modes.ModeSpec.names`).
    """

    #: The bind placeholder: ``?`` or ``%s``.
    placeholder: str
    #: Insert a row or update it (keeping ``created_at``); an owner check makes a
    #: refused row change and return nothing.
    upsert: str
    #: :attr:`upsert` followed by ``RETURNING created_at, updated_at``.
    upsert_returning: str
    #: ``SELECT <every column> FROM <table>`` (JSON columns as text or bytes).
    select: str
    #: ``SELECT session_id FROM <table>``.
    select_ids: str
    #: ``SELECT session_id, user_id, <entity column>, created_at, updated_at FROM <table>``.
    select_summaries: str
    #: ``SELECT COUNT(*) FROM <table>``.
    count: str
    #: ``DELETE FROM <table>``.
    delete: str
    #: `` ORDER BY`` newest first: created_at descending (NULL last), then session_id bytewise.
    order: str
    #: The quoted session_id, user_id and entity columns, as filters name them.
    id_column: str
    user_column: str
    entity_column: str

    def __attrs_post_init__(self) -> None:
        # Fail when the engine builds its statements, not in a reader that composes them.
        self.sort_keys()
        self.column("session_id")

    def sort_keys(self) -> tuple[str, str]:
        """The created_at and session_id terms :attr:`order` sorts by, spelled (and collated) as it spells them.

        For a keyset condition ("after this row, newest first") that must
        compare exactly as the ORDER BY sorts. Raises ValueError for an
        order of another shape.
        """
        match = _ORDER.fullmatch(self.order)
        if match is None:
            raise ValueError(f"order {self.order!r} is not created_at descending, then session_id")
        return match["created"], match["session_id"]

    def column(self, name: str) -> str:
        """Column ``name`` as these statements read it: quoted, and qualified as :attr:`id_column` is.

        Raises ValueError if :attr:`id_column` is not the quoted session_id (qualified or not).
        """
        qualifier, found, rest = self.id_column.rpartition(quote("session_id"))
        if not found or rest:
            raise ValueError(f"id_column {self.id_column!r} is not the quoted session_id column")
        return qualifier + quote(name)

    def where(self, by_id: bool, by_user: int, by_entity: int) -> str:
        """The WHERE clause of these filters, '' for none.

        Binds, in order: session_id if ``by_id``, then user_id and entity_id
        where their filter is :data:`EQUALS`.
        """
        mark = self.placeholder
        terms = [f"{self.id_column} = {mark}"] if by_id else []
        for column, how in ((self.user_column, by_user), (self.entity_column, by_entity)):
            if how == EQUALS:
                terms.append(f"{column} = {mark}")
            elif how == NOBODY:
                terms.append(f"({column} IS NULL OR {column} = '')")
        return " WHERE " + " AND ".join(terms) if terms else ""

    def select_for(self, key: SelectKey) -> str:
        """The SELECT for ``key``; binds as :meth:`where` says, then the limit if ``limited``.

        Rows come newest first unless ``by_id``.
        """
        by_id, by_user, by_entity, limited, projection = key
        head = (self.select, self.select_ids, self.select_summaries)[projection]
        text = head + self.where(by_id, by_user, by_entity)
        if not by_id:
            text += self.order
        if limited:
            text += f" LIMIT {self.placeholder}"
        return text

    def count_for(self, by_user: int, by_entity: int) -> str:
        """The COUNT(*) of the rows ``select_for((False, by_user, by_entity, ...))`` returns; binds as it does."""
        return self.count + self.where(False, by_user, by_entity)

    def delete_for(self, by_user: int) -> str:
        """Delete by session_id, and by owner when ``by_user`` filters; binds as :meth:`where` says."""
        return self.delete + self.where(True, by_user, ANY)


__all__ = ["ANY", "EQUALS", "FULL", "IDS", "NOBODY", "SUMMARY", "SelectKey", "Statements", "filter_kind"]
