# ruff: noqa: S608 - every identifier here comes through schema.quote; every value is bound.
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

Objects made on a SQLite file:
``<table>_search_text`` (the map: one row per indexed message, its
session, owner, entity, position, JSON, text and fingerprint),
``<table>_search`` (FTS5 over the map's text, an external-content table:
the text is stored once, in the map), ``<table>_search_marks`` (one fingerprint per session),
``<table>_search_queue``, triggers ``<table>_search_ins/upd/del`` and, once
``agent_runs`` exists, ``<table>_search_runs_ins/upd/del``; :meth:`disable`
drops them all. The PostgreSQL index is :mod:`agno_storage.search_pg`.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from agno_storage import agent_runs, codec, conversation, fingerprint
from agno_storage.conversation import Message
from agno_storage.errors import CorruptRowError, StorageError
from agno_storage.schema import quote, unquote
from agno_storage.search import MARK_END, MARK_START, SearchHit, marked, spelled_terms

_log = logging.getLogger("agno_storage")

if TYPE_CHECKING:
    from agno_storage.backends.base import BaseStorage
    from agno_storage.backends.sqlite import SqliteStorage
    from agno_storage.models import Session

#: Messages per executemany / COPY batch when (re)indexing.
BATCH = 5_000
#: Sessions read per statement when catching up.
CHUNK = 500
#: Sessions per batch a build hands to its worker (or extracts itself), and the most stored text a batch
#: holds beyond its first session: a batch's docs (each message's JSON and text) are about twice its text,
#: well under a worker's largest frame (agno_storage.workers.MAX_FRAME).
EXTRACT_BATCH = 200
EXTRACT_BYTES = 64 << 20
#: A build starts a worker process by default from this many sessions on.
WORKERS_FROM = 5_000
#: The columns a session row's conversation is read from (conversation.session_messages).
CONVERSATION_COLUMNS = ("memory", "team_data", "runs")
#: Changes every mark: bump it when what a session's messages are made of changes.
_MARK_VERSION = b"agno_storage.search mark 1\x00"
#: Characters either side of a match in an index snippet (FTS5 counts tokens: this many).
SNIPPET_TOKENS = 16


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
        return SqliteIndex(store)
    from agno_storage.search_pg import PostgresIndex  # psycopg: only for a PostgreSQL store

    return PostgresIndex(store)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- shared


Doc = tuple[str, str, str, int, str, str, int]
"""(session_id, user_id or '', entity_id or '', position, Message JSON, content, fingerprint) of one indexed message."""

_CONVERTER = conversation.make_converter()
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
                message = conversation.json_text(unstructure(m), "a message").encode()
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
    session_id: str, session: Session | None, runs: Sequence[conversation.RunRow], table: str
) -> builtins.list[Doc]:
    """The indexed messages of a session row (or ``None``) and its ``agent_runs`` rows.

    A session row's messages are its owner's; runs with no row, and other
    users' runs under an owned session's id (:func:`conversation.strays`),
    are the user's each names (:func:`conversation.runs_by_user`), with no
    entity, as ``history`` scopes them.
    """
    try:
        out: builtins.list[Doc] = []
        if session is not None:
            messages = conversation.combined(session, runs, table)
            out += _docs(session_id, session.user_id, session.entity_id, messages)
            groups = conversation.strays(session.user_id, runs)
        else:
            groups = conversation.runs_by_user(runs)
        for user, rows in groups:
            messages = conversation.combined(None, rows, table)
            out += _docs(session_id, user, None, messages, start=len(out))
        return out
    except conversation.Unwritable as exc:
        raise CorruptRowError(f"{table} session {session_id!r}: {exc}", table=table, session_id=session_id) from None


def _message_value(message: str) -> Any:
    """An indexed message's JSON decoded: by the codec (wide integers exact), or the standard library where it
    holds what orjson does not read (a lone surrogate's escape: the index wrote it so, see
    :func:`conversation.json_text`)."""
    try:
        return codec.loads(message)
    except ValueError:
        return json.loads(message)


def message_of(message: str) -> Message:
    """The :class:`Message` an index row holds as JSON (:func:`docs_of` wrote it)."""
    return _CONVERTER.structure(_message_value(message), Message)


def _hit(session_id: str, user_id: str, entity_id: str, message: str, raw_snippet: str, score: float) -> SearchHit:
    snippet, marks = marked(raw_snippet)
    return SearchHit(
        session_id=session_id,
        user_id=user_id or None,
        entity_id=entity_id or None,
        message=message_of(message),
        snippet=snippet,
        score=float(score),
        marks=marks,
    )


def owner_filters(
    user_id: str | None, entity_id: str | None, mark: str, prefix: str = ""
) -> tuple[str, builtins.list[Any]]:
    sql, params = "", []
    for column, value in (("user_id", user_id), ("entity_id", entity_id)):
        if value is not None:
            sql += f" AND {prefix}{column} = {mark}"
            params.append(value)
    return sql, params


def _stored_size(item: _Item) -> int:
    """The bytes of stored text in one session an index build reads (its row's and its runs')."""
    _, raw, runs = item
    size = sum(len(v) for v in raw if isinstance(v, (str, bytes))) if raw is not None else 0
    for run in runs:
        size += sum(len(v) for v in (run.user_message, run.agent_message, run.messages) if v)
    return size


def _batches(items: Iterable[_Item]) -> Iterator[builtins.list[_Item]]:
    """``items`` in batches of :data:`EXTRACT_BATCH` sessions, cut early past :data:`EXTRACT_BYTES` of text."""
    batch: builtins.list[_Item] = []
    size = 0
    for item in items:
        batch.append(item)
        size += _stored_size(item)
        if len(batch) >= EXTRACT_BATCH or size >= EXTRACT_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def in_chunks(items: Iterable[Any], size: int = BATCH) -> Iterator[builtins.list[Any]]:
    batch: builtins.list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# --------------------------------------------------------------------------- SQLite


def _is_fts5(sql: str | None) -> bool:
    text = (sql or "").upper()
    return text.startswith("CREATE VIRTUAL TABLE") and "FTS5" in text


#: What a SQLite index holds (its FTS5 table's definition says it; see ``SqliteIndex._fts_sql``): 3 since other
#: users' runs under an owned session's id are indexed as theirs, a team's member runs sit where they ran, and
#: each speaker's system prompt shows once. An index of an earlier version is made anew on first use.
INDEX_VERSION = 3

#: The earlier layout's FTS5 table, which kept each message's text and ids itself (as build 3ccb4d3 wrote it).
_OLD_FTS_SQL = (
    'CREATE VIRTUAL TABLE "t" USING fts5(content, session_id UNINDEXED, user_id UNINDEXED, '
    "entity_id UNINDEXED, pos UNINDEXED, message UNINDEXED, tokenize = 'unicode61 remove_diacritics 0')"
)


def _fts_body(sql: str) -> str:
    """What an FTS5 table's definition says after ``USING``, spaces left out and in lower case."""
    return "".join(sql.partition(" USING ")[2].split()).lower()


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def mark(marked: Sequence[int], raw: Sequence[Any] | None, runs: Sequence[conversation.RunRow]) -> int:
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


_Item = tuple[Any, "Sequence[Any] | None", "builtins.list[conversation.RunRow]"]
"""(session_id, stored row or None, agent_runs rows) of one session an index build reads."""


class ExtractTask:
    """One batch of an index build's sessions to their docs and marks; in a worker process, or in this one.

    Built in a worker from (mode, table, marked) alone: it decodes the
    rows it is handed with a codec of its own and reads no database.
    """

    def __init__(self, mode: str, table: str, marked: Sequence[int]) -> None:
        from agno_storage.codec import RowCodec
        from agno_storage.modes import parse_mode, spec

        self._decode = RowCodec(spec(parse_mode(mode)), table).decode
        self._table = table
        self._marked = builtins.list(marked)

    @classmethod
    def of(cls, codec: Any, table: str, marked: Sequence[int]) -> ExtractTask:
        """The task with a store's own codec (in this process)."""
        task = cls.__new__(cls)
        task._decode, task._table, task._marked = codec.decode, table, builtins.list(marked)
        return task

    def __call__(self, batch: builtins.list[_Item]) -> tuple[builtins.list[Doc], builtins.list[tuple[str, int | None]]]:
        docs: builtins.list[Doc] = []
        marks: builtins.list[tuple[str, int | None]] = []
        decode, table = self._decode, self._table
        for sid, raw, runs in batch:
            session = decode(raw) if raw is not None else None
            marks.append((sid, mark(self._marked, raw, runs)))
            docs += docs_of(sid, session, runs, table)
        return docs, marks


class SqliteIndex:
    """FTS5 index beside a sessions table in the same SQLite file."""

    def __init__(self, store: SqliteStorage) -> None:
        self.store = store
        t = store.table_name
        self.fts_name, self.map_name = t + "_search", t + "_search_text"
        self.fts, self.map, self.queue = quote(self.fts_name), quote(self.map_name), quote(t + "_search_queue")
        self.marks = quote(t + "_search_marks")
        #: The index's plain tables by name, with their columns: how a table of that name is known to be
        #: the index's (made by this build, by an earlier one, or left behind by one) and not someone else's.
        #: ``<table>_search_map`` is the earlier layout's map (its rowids, sessions, and marks).
        self.own_tables = {
            t + "_search_text": ("rowid", "session_id", "user_id", "entity_id", "pos", "message", "content", "digest"),
            t + "_search_marks": ("session_id", "digest"),
            t + "_search_map": ("rowid", "session_id", "digest"),
            t + "_search_queue": ("id", "session_id"),
        }
        #: Set by :meth:`enabled`: the index found is of the layout before the map held the text (rebuilt on use).
        self.old_layout = False
        self.table = quote(t)
        self.triggers = {op: quote(f"{t}_search_{op}") for op in ("ins", "upd", "del")}
        # agent_runs has two more: a run moved to another session by REPLACE leaves its old session unlogged.
        self.run_triggers = {op: quote(f"{t}_search_runs_{op}") for op in ("ins", "upd", "del", "replace", "reid")}
        names = store.spec.names
        #: Where a row holds its conversation, and what else a mark covers (ids, owner, entity).
        self._conversation = [i for i, name in enumerate(names) if name in CONVERSATION_COLUMNS]
        ids = ("session_id", "user_id", store.spec.entity_column)
        self._marked = [i for i, name in enumerate(names) if name in ids] + self._conversation

    def enabled(self) -> bool:
        # The FTS5 table itself: a sessions table (or FTS5 table of another's) named <table>_search is not it.
        layout = self._fts_layout(self.store._query)
        if layout is None or layout == "orphan":
            return False
        # An index made before the FTS5 table read its text from the map keeps the text itself.
        self.old_layout = layout == "old"
        return True

    def _fts_layout(self, query: Any) -> str | None:
        """``"new"`` or ``"old"``: the index's FTS5 table of this layout or an earlier one; ``"orphan"``: this
        layout's without its map (an earlier build disabled the index); None: not the index's.

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
        if body in (_fts_body(_OLD_FTS_SQL), *(_fts_body(self._fts_sql(version=v)) for v in range(1, INDEX_VERSION))):
            return "old"
        return None

    def _fts_sql(self, version: int = INDEX_VERSION) -> str:
        """The FTS5 table's definition, which is how an index tells its version; one of an earlier version
        is made anew. Each version spells out one more of FTS5's defaults. Version 1 gave an owned session's
        conversation the Go runs of other users under its id; version 2 (``detail=full``) left those runs
        out; version 3 (``columnsize=1``) indexes them as their own users' (``conversation.strays``)."""
        options = ("detail=full, " if version >= 2 else "") + ("columnsize=1, " if version >= 3 else "")
        return (
            f"CREATE VIRTUAL TABLE {self.fts} USING fts5(content, content={sql_literal(self.map_name)}, "
            f"content_rowid='rowid', {options}tokenize = 'unicode61 remove_diacritics 0')"
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

    def enable(self) -> None:
        store = self.store
        store.create()
        with store.transaction() as conn:
            if self.enabled():
                if self.old_layout:
                    self._relayout(conn)
                return
            taken = conn.execute(
                "SELECT type FROM sqlite_master WHERE name = ? COLLATE NOCASE", (self.fts_name,)
            ).fetchone()
            orphan = self._fts_layout(lambda sql, params: conn.execute(sql, params).fetchall()) == "orphan"
            if taken is not None and not orphan:  # _drop_own drops what is left of a disabled index
                raise StorageError(
                    f"cannot make the search index of table {store.table_name!r}: the file has a {taken[0]}"
                    f" named {self.fts_name!r} already",
                    table=store.table_name,
                )
            self._drop_own(conn, strict=True)  # left behind by an earlier build's disable(), say
            self._create(conn)
            conn.execute(f"CREATE TABLE {self.queue} (id INTEGER PRIMARY KEY, session_id TEXT)")
            self._watch(conn)
            self._build(conn)

    def _drop_own(self, conn: sqlite3.Connection, *, strict: bool) -> None:
        """Drop the index's plain tables that are there (the queue's rows stay: see below) and its FTS5 table.

        A table by one of their names with other columns is not the index's:
        ``strict``, that is a StorageError naming it (nothing is dropped);
        else it is left alone. The queue is kept only where ``strict`` is
        False and it is the index's (disable() drops it).
        """
        found: dict[str, tuple[str, ...]] = {}
        for name, columns in self.own_tables.items():
            kind = conn.execute("SELECT type FROM sqlite_master WHERE name = ? COLLATE NOCASE", (name,)).fetchone()
            if kind is None:
                continue
            have = tuple(r[1] for r in conn.execute(f"PRAGMA table_info({quote(name)})")) if kind[0] == "table" else ()
            if have != columns:
                if strict:
                    raise StorageError(
                        f"cannot make the search index of table {self.store.table_name!r}: the file has a {kind[0]}"
                        f" named {name!r} that is not the index's (disable_search() removes the index and leaves"
                        " it)",
                        table=self.store.table_name,
                    )
                continue
            found[name] = columns
        if self._fts_layout(lambda sql, params: conn.execute(sql, params).fetchall()) is not None:
            conn.execute(f"DROP TABLE {self.fts}")
        for name in found:
            conn.execute(f"DROP TABLE {quote(name)}")

    def _create(self, conn: sqlite3.Connection) -> None:
        """Make the map and the FTS5 table over its text (both empty)."""
        conn.execute(
            f"CREATE TABLE {self.map} (rowid INTEGER PRIMARY KEY, session_id TEXT NOT NULL, user_id TEXT, "
            "entity_id TEXT, pos INTEGER, message TEXT, content TEXT, digest INTEGER NOT NULL)"
        )
        conn.execute(f"CREATE INDEX {quote(self.map_name + '_session')} ON {self.map} (session_id)")
        conn.execute(f"CREATE TABLE {self.marks} (session_id TEXT PRIMARY KEY, digest INTEGER NOT NULL) WITHOUT ROWID")
        try:
            # External content: FTS5 indexes the map's text and reads it back from there for snippets, so
            # the text is stored once (measured: a build takes about a quarter less CPU than with FTS5's own copy).
            conn.execute(self._fts_sql())
        except sqlite3.OperationalError as exc:
            if "no such module" in str(exc):
                raise StorageError(
                    "this SQLite build has no FTS5: search() still works, by scanning", table=self.store.table_name
                ) from exc
            raise

    def _relayout(self, conn: sqlite3.Connection) -> None:
        """Replace an index of the layout before the map held the text with one of this layout, built anew.

        The new tables have names the earlier layout's code does not know, so
        a process still running it fails on this index before it writes.
        """
        self._drop_own(conn, strict=True)
        self._create(conn)
        conn.execute(f"CREATE TABLE {self.queue} (id INTEGER PRIMARY KEY, session_id TEXT)")
        self._watch(conn)
        self._build(conn)
        self.old_layout = False

    def _build(self, conn: sqlite3.Connection) -> None:
        """Index every session now in the table (inside the enabling transaction).

        Reading the conversations (decoding, extracting, fingerprinting) is
        Python work that a worker process does beside this one's FTS5
        inserts, on a table of :data:`WORKERS_FROM` sessions or more where a
        worker can start (:func:`agno_storage.workers.default_count`); else
        this process does both, a batch at a time. A worker that fails (it
        died, or a reply came over a frame's limit) is logged as a warning
        and the build starts over in this process; an error of the data (a
        corrupt row) is raised as it is.
        """
        from agno_storage import workers

        store, table = self.store, self.store.table_name
        (estimate,) = conn.execute(f"SELECT count(*) FROM {self.table}").fetchone()
        pool = None
        if workers.default_count(estimate, start_from=WORKERS_FROM, most=1):
            try:
                args = (store.spec.mode.value, table, self._marked)
                pool = workers.Pool(1, f"{__name__}:ExtractTask", args, "a search index worker")
            except StorageError:
                pool = None  # none can start here (no interpreter, a path without this package): do it here
        extract = ExtractTask.of(store.row_codec, table, self._marked)
        conn.execute("SAVEPOINT agno_storage_search_build")
        try:
            if pool is not None:
                try:
                    self._fill(conn, pool.map(_batches(self._items(conn))))
                except workers.WorkerError as exc:
                    _log.warning("search index of %r: %s; building it in this process instead", table, exc)
                    conn.execute("ROLLBACK TO agno_storage_search_build")
                    pool.close()
                    pool = None
            if pool is None:
                self._fill(conn, map(extract, _batches(self._items(conn))))
        finally:
            if pool is not None:
                pool.close()
        conn.execute("RELEASE agno_storage_search_build")

    def _fill(
        self,
        conn: sqlite3.Connection,
        results: Iterable[tuple[builtins.list[Doc], builtins.list[tuple[str, int | None]]]],
    ) -> None:
        """Insert each batch's docs as it comes, then every session's mark."""
        marks: builtins.list[tuple[str, int | None]] = []
        for docs, got in results:
            self._insert(conn, docs)
            marks += got
        self._put_marks(conn, marks)

    def _items(self, conn: sqlite3.Connection) -> Iterator[_Item]:
        """(session_id, stored row or None, its agent_runs rows) of every session: the table's, then runs-only ones."""
        store = self.store
        runs: dict[str, builtins.list[conversation.RunRow]] = {}
        if agent_runs.exists(store):
            for row in agent_runs.all_runs(store):
                runs.setdefault(row.session_id, []).append(row)
        session_id = store.row_codec.session_id
        for raw in conn.execute(store.statements.select):
            sid = session_id(raw)
            yield sid, raw, runs.pop(sid, []) if isinstance(sid, str) else []
        elsewhere = agent_runs.held_elsewhere(store, builtins.list(runs))  # another agent table's sessions
        for sid, rows in runs.items():
            if sid not in elsewhere:
                yield sid, None, rows

    def mark(self, raw: Sequence[Any] | None, runs: Sequence[conversation.RunRow]) -> int:
        """A session's own fingerprint: see :func:`mark`."""
        return mark(self._marked, raw, runs)

    def _insert(self, conn: sqlite3.Connection, docs: Iterable[Doc]) -> None:
        (top,) = conn.execute(f"SELECT COALESCE(MAX(rowid), 0) FROM {self.map}").fetchone()
        for batch in in_chunks(docs):
            ids = range(top + 1, top + 1 + len(batch))
            top += len(batch)
            conn.executemany(
                f"INSERT INTO {self.map} (rowid, session_id, user_id, entity_id, pos, message, content, digest) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(i, *d) for i, d in zip(ids, batch, strict=True)],
            )
            conn.executemany(
                f"INSERT INTO {self.fts} (rowid, content) VALUES (?, ?)",
                [(i, d[5]) for i, d in zip(ids, batch, strict=True)],
            )

    def _put_marks(self, conn: sqlite3.Connection, marks: builtins.list[tuple[str, int | None]]) -> None:
        """Each session's new mark; ``None``: the session is gone (no row, no runs), and its mark with it."""
        conn.executemany(f"DELETE FROM {self.marks} WHERE session_id = ?", [(s,) for s, m in marks if m is None])
        conn.executemany(
            f"INSERT OR REPLACE INTO {self.marks} (session_id, digest) VALUES (?, ?)",
            [(s, m) for s, m in marks if m is not None],
        )

    def disable(self) -> None:
        with self.store.transaction() as conn:
            self._drop_triggers(conn, [*self.triggers.values(), *self.run_triggers.values()])
            self._drop_own(conn, strict=False)  # of either layout; a table of another's by these names stays

    def _has_trigger(self, quoted: str, table: str) -> bool:
        return self.store.trigger_exists(unquote(quoted), table)

    def _drop_triggers(self, conn: sqlite3.Connection, names: Iterable[str]) -> None:
        """Drop these triggers wherever they are: on a table renamed since, they log its writes into the queue."""
        for name in names:
            conn.execute(f"DROP TRIGGER IF EXISTS {name}")

    def _watch(self, conn: sqlite3.Connection) -> None:
        """Make the triggers that log writes: on the sessions table, and on ``agent_runs`` if it is there."""
        for statement in self._trigger_sql(self.triggers, self.table):
            conn.execute(statement)
        if agent_runs.exists(self.store):
            for statement in self._trigger_sql(self.run_triggers, agent_runs.TABLE):
                conn.execute(statement)

    def _unwatched(self) -> bool:
        """Whether the sessions table has lost its triggers: it was dropped or renamed (and maybe made again)
        since enable()."""
        return not self._has_trigger(self.triggers["ins"], self.store.table_name)

    def _rebuild(self, conn: sqlite3.Connection) -> None:
        """Index the table as it is now, from nothing, and watch it again (after :meth:`_unwatched`)."""
        conn.execute(f"INSERT INTO {self.fts} ({self.fts}) VALUES ('delete-all')")
        for table in (self.map, self.marks, self.queue):
            conn.execute(f"DELETE FROM {table}")
        self._drop_triggers(conn, [*self.triggers.values(), *self.run_triggers.values()])
        self._watch(conn)
        self._build(conn)

    def _require_enabled(self) -> None:
        """:class:`Disabled` if the index is not there now (another process disabled it since it was found)."""
        if not self.enabled():
            raise Disabled(self.store.table_name)

    def _runs_unwatched(self) -> bool:
        """Whether ``agent_runs`` is there without every trigger of the index on it (made after the index, or
        by an earlier build), or those triggers are on a table it was renamed to. One catalogue read."""
        names = [unquote(n) for n in self.run_triggers.values()]
        rows = self.store._query(
            "SELECT tbl_name FROM sqlite_master WHERE type = 'trigger' AND name COLLATE NOCASE IN "
            f"({', '.join('?' for _ in names)})",
            names,
        )
        if agent_runs.exists(self.store):
            return sum(str(table).lower() == agent_runs.TABLE for (table,) in rows) < len(names)
        return bool(rows)

    def catch_up(self) -> int:
        """Reindex every session the log names; return how many (-1: all of them). A no-op read when the log is empty.

        A table dropped since :meth:`enable` (its triggers went with it) is
        indexed anew once it is there again; while it is gone, raises
        :class:`Unwatched`, and :class:`Disabled` if another process removed
        the index since it was found.
        """
        store = self.store
        if self.old_layout:
            if not store.table_exists():
                raise Unwatched(store.table_name)
            with store.transaction() as conn:
                self._require_enabled()
                if self.old_layout:  # not done meanwhile by another process
                    self._relayout(conn)
            return -1
        if self._unwatched():
            # Dropped since enable(), by this store or another program: what the index holds is of a table
            # that is gone, and writes since went unlogged. Gone still: scan. Made again: index it anew.
            # (Or the index was disabled meanwhile, its triggers first.)
            if not store.table_exists():
                raise Unwatched(store.table_name)
            with store.transaction() as conn:
                self._require_enabled()
                if self._unwatched():
                    self._rebuild(conn)
            return -1
        pending = store._query(f"SELECT 1 FROM {self.queue} LIMIT 1", ())
        unwatched = self._runs_unwatched()
        if not pending and not unwatched:
            return 0
        with store.transaction() as conn:
            # Under the write lock: triggers made for an index disabled meanwhile would fail every write.
            self._require_enabled()
            if self._runs_unwatched():
                # A Go Agent made agent_runs after the index (or made it again after it was dropped or renamed;
                # or an earlier build watched it with fewer triggers): watch it, index what it holds, and
                # reindex the sessions whose indexed messages came from the old one.
                self._drop_triggers(conn, self.run_triggers.values())
                if agent_runs.exists(store):
                    for statement in self._trigger_sql(self.run_triggers, agent_runs.TABLE):
                        conn.execute(statement)
                    conn.execute(
                        f"INSERT INTO {self.queue} (session_id) SELECT DISTINCT session_id FROM {agent_runs.TABLE}"
                    )
                conn.execute(
                    f"INSERT INTO {self.queue} (session_id) SELECT DISTINCT session_id FROM {self.map} "
                    "WHERE instr(message, ?) > 0",
                    (f'"source":"{conversation.SOURCE_GO_AGENT}"',),
                )
            (top,) = conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {self.queue}").fetchone()
            ids = [
                r[0]
                for r in conn.execute(
                    f"SELECT DISTINCT session_id FROM {self.queue} WHERE id <= ?",
                    (top,),
                )
            ]
            gone, new, marks = self._changes(conn, ids)
            # Out of the FTS5 table first: it reads the text to forget from the map row, still there.
            # (A 'delete' command given the text by INSERT ... SELECT measured five times slower.)
            conn.executemany(f"DELETE FROM {self.fts} WHERE rowid = ?", gone)
            conn.executemany(f"DELETE FROM {self.map} WHERE rowid = ?", gone)
            self._insert(conn, new)
            self._put_marks(conn, marks)
            conn.execute(f"DELETE FROM {self.queue} WHERE id <= ?", (top,))
        return len(ids)

    def _changes(
        self, conn: sqlite3.Connection, ids: builtins.list[str]
    ) -> tuple[builtins.list[tuple[int]], builtins.list[Doc], builtins.list[tuple[str, int | None]]]:
        """(map rowids to delete, messages to add, new marks) that bring the sessions ``ids`` up to date.

        Only what changed is reindexed: agno rewrites a whole memory to
        append one run, Go a whole team_data to append two messages; the
        messages kept are matched by fingerprint, and a session whose mark
        is unchanged is not decoded at all (only its other columns are
        checked, as a read would). Sessions are read :data:`CHUNK` at a time.
        """
        store, table = self.store, self.store.table_name
        decode = store.row_codec.decode
        with_runs = agent_runs.exists(store)
        select = f"{store.statements.select} WHERE {store.statements.id_column} IN "
        gone: builtins.list[tuple[int]] = []
        new: builtins.list[Doc] = []
        marks: builtins.list[tuple[str, int | None]] = []
        for chunk in in_chunks(ids, CHUNK):
            places = "(" + ", ".join("?" for _ in chunk) + ")"
            rows = {raw[0]: raw for raw in store._query(select + places, chunk)}
            runs = agent_runs.runs_of(store, chunk) if with_runs else {}
            for sid in agent_runs.held_elsewhere(store, [s for s in runs if s not in rows]):
                del runs[sid]  # another agent table's session (an archive copy): not this table's to index
            marked = set(
                conn.execute(f"SELECT session_id, digest FROM {self.marks} WHERE session_id IN {places}", chunk)
            )
            changed: dict[str, tuple[Sequence[Any] | None, builtins.list[conversation.RunRow], int | None]] = {}
            for sid in chunk:
                raw, mine = rows.get(sid), runs.get(sid, [])
                mark = self.mark(raw, mine) if raw is not None or mine else None
                if mark is not None and (sid, mark) in marked:
                    if raw is not None:
                        decode(self._without_conversation(raw))
                    continue
                changed[sid] = (raw, mine, mark)
            if not changed:
                continue
            places = "(" + ", ".join("?" for _ in changed) + ")"
            indexed: dict[str, dict[int, builtins.list[int]]] = {}
            for rowid, sid, stored_digest in conn.execute(
                f"SELECT rowid, session_id, digest FROM {self.map} WHERE session_id IN {places}", builtins.list(changed)
            ):
                indexed.setdefault(sid, {}).setdefault(stored_digest, []).append(rowid)
            for sid, (raw, mine, mark) in changed.items():
                kept = indexed.get(sid, {})
                for doc in docs_of(sid, decode(raw) if raw is not None else None, mine, table):
                    same = kept.get(doc[6])
                    if same:
                        same.pop()
                    else:
                        new.append(doc)
                gone += [(rowid,) for rowids in kept.values() for rowid in rowids]
                marks.append((sid, mark))
        return gone, new, marks

    def _without_conversation(self, raw: Sequence[Any]) -> builtins.list[Any]:
        row = builtins.list(raw)
        for i in self._conversation:
            row[i] = None
        return row

    def search(self, query: str, user_id: str | None, entity_id: str | None, limit: int) -> builtins.list[SearchHit]:
        # Each word as typed (FTS5 folds its case as it folded the text), quoted: FTS5 reads it as a string,
        # never as syntax (AND, NEAR, *, ^, :, ...).
        expression = " ".join('"' + w.replace('"', '""') + '"' for w in spelled_terms(query))
        where, params = owner_filters(user_id, entity_id, "?", "m.")
        rows = self.store._query(
            f"SELECT m.session_id, m.user_id, m.entity_id, m.message, "
            f"snippet({self.fts}, 0, ?, ?, '…', {SNIPPET_TOKENS}), -bm25({self.fts}) "
            f"FROM {self.fts} JOIN {self.map} AS m ON m.rowid = {self.fts}.rowid "
            f"WHERE {self.fts} MATCH ?{where} ORDER BY rank, {self.fts}.rowid LIMIT ?",
            [MARK_START, MARK_END, expression, *params, limit],
        )
        return [_hit(*r) for r in rows]


__all__ = [
    "BATCH",
    "CHUNK",
    "Disabled",
    "Index",
    "RemakeRefused",
    "SqliteIndex",
    "Unwatched",
    "denied",
    "digest",
    "docs_of",
    "in_chunks",
    "index_for",
    "message_of",
    "owner_filters",
    "sql_literal",
]
