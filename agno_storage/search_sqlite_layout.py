# ruff: noqa: S608 - every identifier here comes through schema.quote; every value is bound.
"""The SQLite search index's names and definitions: its tables, its FTS5 table's definition (which tells the
index's version and layout, this build's or an earlier one's) and the triggers that log other writers' writes.

:class:`~agno_storage.search_sqlite.SqliteIndex` builds on :class:`IndexLayout`; nothing here reads or writes
a file but :meth:`IndexLayout._fts_layout`, which reads the catalogue through the query it is given.
"""

from __future__ import annotations

import builtins
from typing import Any

from agno_storage.schema import literal, quote


def _is_fts5(sql: str | None) -> bool:
    text = (sql or "").upper()
    return text.startswith("CREATE VIRTUAL TABLE") and "FTS5" in text


#: What a SQLite index holds (its FTS5 table's definition says it; see ``IndexLayout._fts_sql``): 4 since an
#: ``AgentMemory`` or ``TeamMemory`` run is read from its ``response`` (its question, answer and member runs) and
#: an Agent's ``add_messages`` show once until they change; 3 since other users' runs under an owned session's id
#: are indexed as theirs, a team's member runs sit where they ran, and each speaker's system prompt shows once.
#: An index of an earlier version is made anew on first use.
INDEX_VERSION = 4

#: The earlier layout's FTS5 table, which kept each message's text and ids itself (as build 3ccb4d3 wrote it).
_OLD_FTS_SQL = (
    'CREATE VIRTUAL TABLE "t" USING fts5(content, session_id UNINDEXED, user_id UNINDEXED, '
    "entity_id UNINDEXED, pos UNINDEXED, message UNINDEXED, tokenize = 'unicode61 remove_diacritics 0')"
)


def _fts_body(sql: str) -> str:
    """What an FTS5 table's definition says after ``USING``, spaces left out and in lower case."""
    return "".join(sql.partition(" USING ")[2].split()).lower()


class IndexLayout:
    """The names and definitions of the index of sessions table ``t``."""

    def __init__(self, t: str) -> None:
        self.fts_name, self.map_name = t + "_search", t + "_search_text"
        self.fts, self.map, self.queue = quote(self.fts_name), quote(self.map_name), quote(t + "_search_queue")
        self.marks = quote(t + "_search_marks")
        #: FTS5's own table of its settings (``automerge``, ...), made and dropped with the FTS5 table.
        self.config = quote(t + "_search_config")
        #: The index's plain tables by name, with their columns: how a table of that name is known to be
        #: the index's (made by this build, by an earlier one, or left behind by one) and not someone else's.
        #: ``<table>_search_map`` is the earlier layout's map (its rowids, sessions, and marks).
        self.own_tables = {
            t + "_search_text": ("rowid", "session_id", "user_id", "entity_id", "pos", "message", "content", "digest"),
            t + "_search_marks": ("session_id", "digest"),
            t + "_search_map": ("rowid", "session_id", "digest"),
            t + "_search_queue": ("id", "session_id"),
        }
        self.table = quote(t)
        self.triggers = {op: quote(f"{t}_search_{op}") for op in ("ins", "upd", "del")}
        # agent_runs has two more: a run moved to another session by REPLACE leaves its old session unlogged.
        self.run_triggers = {op: quote(f"{t}_search_runs_{op}") for op in ("ins", "upd", "del", "replace", "reid")}

    def _fts_layout(self, query: Any) -> str | None:
        """``"new"`` or ``"old"``: the index's FTS5 table of this layout or an earlier one; ``"orphan"``: this
        layout's, or an earlier version's that read its text from the map, without its map (an earlier build
        disabled the index); None: not the index's.

        Known by its definition, as this build and the earlier one write it
        (the columns, and in this layout the table it reads its text from),
        read from the catalogue without opening the table: another's FTS5
        table by that name may use a tokenizer or option this SQLite lacks.
        ``query(sql, params)`` runs a statement and returns its rows.
        """
        rows = query(
            "SELECT sql, EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE) "
            "FROM sqlite_master WHERE name = ? COLLATE NOCASE",
            (self.map_name, self.fts_name),
        )
        if not rows or not _is_fts5(rows[0][0]):
            return None
        body = _fts_body(rows[0][0])
        if body == _fts_body(self._fts_sql()):
            # Without its map (an earlier build's disable_search() drops the map of an index it does not know,
            # and leaves this table): what is left of a disabled index. Not enabled; enable_search() replaces it.
            return "new" if rows[0][1] else "orphan"
        if body in (_fts_body(self._fts_sql(version=v)) for v in range(1, INDEX_VERSION)):
            # An earlier version's reads its text from the map too: without it, a build a version older than
            # that index disabled it (as above), and a search here must not make it anew.
            return "old" if rows[0][1] else "orphan"
        if body == _fts_body(_OLD_FTS_SQL):  # kept its text itself: it had no such map
            return "old"
        return None

    def _fts_sql(self, version: int = INDEX_VERSION) -> str:
        """The FTS5 table's definition, which is how an index tells its version; one of an earlier version
        is made anew. Each version spells out one more of FTS5's defaults, so every version splits text
        alike. Version 1 gave an owned session's conversation the Go runs of other users under its id;
        version 2 (``detail=full``) left those runs out; version 3 (``columnsize=1``) indexes them as their
        own users' (``conversation.strays``); version 4 (the tokenizer's ``categories 'L* N* Co'``) reads an
        ``AgentMemory`` or ``TeamMemory`` run from its ``response`` and shows an Agent's ``add_messages`` once
        until they change (``conversation_agno``)."""
        options = ("detail=full, " if version >= 2 else "") + ("columnsize=1, " if version >= 3 else "")
        categories = " categories ''L* N* Co''" if version >= 4 else ""
        return (
            f"CREATE VIRTUAL TABLE {self.fts} USING fts5(content, content={literal(self.map_name)}, "
            f"content_rowid='rowid', {options}tokenize = 'unicode61 remove_diacritics 0{categories}')"
        )

    def _trigger_sql(self, names: dict[str, str], table: str) -> builtins.list[str]:
        q = self.queue
        statements = [
            f"CREATE TRIGGER IF NOT EXISTS {names['ins']} AFTER INSERT ON {table} "
            f"BEGIN INSERT INTO {q} (session_id) VALUES (new.session_id); END",
            f"CREATE TRIGGER IF NOT EXISTS {names['upd']} AFTER UPDATE ON {table} "
            f"BEGIN INSERT INTO {q} (session_id) VALUES (new.session_id); "
            f"INSERT INTO {q} (session_id) SELECT old.session_id WHERE old.session_id IS NOT new.session_id; END",
            f"CREATE TRIGGER IF NOT EXISTS {names['del']} AFTER DELETE ON {table} "
            f"BEGIN INSERT INTO {q} (session_id) VALUES (old.session_id); END",
        ]
        if "replace" in names:
            # A run is keyed by its id, not its session: INSERT OR REPLACE (or UPDATE OR REPLACE of the id)
            # of a run another session holds deletes that row without a delete trigger (SQLite fires none for
            # REPLACE unless recursive_triggers is on), so the session that loses it is logged beforehand.
            statements += [
                f"CREATE TRIGGER IF NOT EXISTS {names['replace']} BEFORE INSERT ON {table} "
                f"BEGIN INSERT INTO {q} (session_id) SELECT session_id FROM {table} "
                "WHERE id = new.id AND session_id IS NOT new.session_id; END",
                f"CREATE TRIGGER IF NOT EXISTS {names['reid']} BEFORE UPDATE OF id ON {table} "
                f"BEGIN INSERT INTO {q} (session_id) SELECT session_id FROM {table} "
                "WHERE id = new.id AND new.id IS NOT old.id; END",
            ]
        return statements


__all__ = ["INDEX_VERSION", "IndexLayout"]
