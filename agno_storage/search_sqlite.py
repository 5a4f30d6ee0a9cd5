# ruff: noqa: S608 - every identifier here comes through schema.quote; every value is bound.
"""The SQLite search index of one sessions table: FTS5 over a map of the table's messages.

:mod:`agno_storage.search_index` holds the design (docs/search.md) and what
this index shares with the PostgreSQL one (:mod:`agno_storage.search_pg`),
the build's extraction among it. Objects made on the file:
``<table>_search_text`` (the map: one row per indexed message, its session,
owner, entity, position, JSON, text and fingerprint), ``<table>_search``
(FTS5 over the map's text, an external-content table: the text is stored
once, in the map), ``<table>_search_marks`` (one fingerprint per session),
``<table>_search_queue``, triggers ``<table>_search_ins/upd/del`` and, once
``agent_runs`` exists, ``<table>_search_runs_ins/upd/del``;
:meth:`SqliteIndex.disable` drops them all. Their names and definitions are
in :mod:`agno_storage.search_sqlite_layout`; filling a new index from a worker
process in :mod:`agno_storage.search_sqlite_worker`.
"""

from __future__ import annotations

import builtins
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from typing import TYPE_CHECKING, Any

from agno_storage import agent_runs, conversation_go, conversation_message, search_sqlite_worker
from agno_storage.backends import sqlite_bulk
from agno_storage.errors import CorruptRowError, DatabaseReplacedError, StorageError
from agno_storage.schema import quote, unquote
from agno_storage.search import SearchHit, spelled_terms, terms
from agno_storage.search_index import (
    CHUNK,
    Disabled,
    Doc,
    Unwatched,
    docs_of,
    hits_of,
    in_chunks,
    mark,
    owner_filters,
)
from agno_storage.search_sqlite_layout import INDEX_VERSION, IndexLayout

if TYPE_CHECKING:
    from agno_storage.backends.sqlite import SqliteStorage

_log = logging.getLogger("agno_storage")

#: A build starts a worker process by default from this many sessions on.
WORKERS_FROM = 5_000
#: The most stored text (characters, past one session) a catch-up reindexes in one write transaction in this
#: process: 500 agno chats of 1.9 MB each held the lock 3.75 s in one batch, near agno's 5 s.
CATCH_UP_BYTES = 16 << 20
#: FTS5 pages a merge after a build writes in one write transaction (see SqliteIndex._merge).
MERGE_PAGES = 1000
#: FTS5's own ``automerge`` (its default), which a build turns off until its end (see SqliteIndex._pause_merging).
AUTOMERGE = 4
#: The key of the row a build adds to FTS5's config table (FTS5 ignores keys it does not know) while it keeps
#: automerge off: the automerge to put back at its end.
PAUSED = "agno_storage_automerge"
#: FTS5's own ``usermerge`` (its default), which a build's merge sets to 2 (see SqliteIndex._merge).
USERMERGE = 4
#: As :data:`PAUSED`, for the usermerge to put back at the build's end.
PAUSED_USERMERGE = "agno_storage_usermerge"
#: A row of the FTS5 table's config (which FTS5 ignores): the index put its triggers on ``agent_runs`` and may hold
#: its runs. Triggers go with a dropped table: this tells a search that ``agent_runs`` went since (its runs with it).
RUNS_WATCHED = "agno_storage_runs_watched"
#: The columns a session row's conversation is read from (conversation.session_messages).
CONVERSATION_COLUMNS = ("memory", "team_data", "runs")


class SqliteIndex(IndexLayout):
    """FTS5 index beside a sessions table in the same SQLite file (its names and DDL: :class:`IndexLayout`)."""

    def __init__(self, store: SqliteStorage) -> None:
        super().__init__(store.table_name)
        self.store = store
        #: Set by :meth:`enabled`: the index found is of the layout before the map held the text (rebuilt on use).
        self.old_layout = False
        names = store.spec.names
        #: Where a row holds its conversation, and what else a mark covers (ids, owner, entity).
        self._conversation = [i for i, name in enumerate(names) if name in CONVERSATION_COLUMNS]
        self._conversation_names = [name for name in names if name in CONVERSATION_COLUMNS]
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

    def enable(self) -> None:
        store = self.store
        store.create()
        with store.transaction() as conn:
            already = self.enabled()
            relaid = already and self.old_layout
            if relaid:
                self._make(conn)
            elif not already:
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
                self._make(conn)  # drops what an earlier build's disable() left behind, say
        if already and not relaid:
            # Made already (maybe being built by another process): returns once it holds what is logged, or
            # with the error that build meets.
            self.catch_up()
            if self._filling():
                # A build that stopped in its final merge (its process killed), with nothing logged since: ended
                # here as that build would have (a search merges it only once a write is logged).
                self._merge()
            return
        # The index is filled as a backlog is caught up with: a batch to a write transaction, so that other
        # writers get the lock between batches (one transaction for the whole build held it for the whole
        # build: agno 1.8.4 gives up after 5 s and loses the session it was saving). Meanwhile every search,
        # here or in another process, catches up first: none answers from a part-built index.
        try:
            self.catch_up(building=True)
        except BaseException as error:
            if _replaced(error):
                # The path names another file now, or none: what is left to take back is in the file that was
                # built in, and a transaction here would open (or make) the one the path names. So too where
                # another error (a KeyboardInterrupt as the build stopped) came after that one.
                raise
            try:
                # No index is left (of an earlier layout's, remade here, neither): searches scan, and the
                # error is what the caller gets.
                self.disable()
            except StorageError as exc:
                _log.warning("search index of %r: could not take back the part-built index: %s", store.table_name, exc)
            raise

    def _log_every_session(self, conn: sqlite3.Connection) -> None:
        """Put every session on the log: the table's rows (in the order a scan reads them: a table may be
        WITHOUT ROWID), then the sessions only agent_runs holds."""
        store = self.store
        nameless = conn.execute(
            f"{store.statements.select} WHERE {store.statements.id_column} IS NULL LIMIT 1"
        ).fetchone()
        if nameless is not None:
            store.row_codec.decode(nameless)  # a row with no session_id: the CorruptRowError a read gives
        conn.execute(f"INSERT INTO {self.queue} (session_id) SELECT session_id FROM {self.table}")
        if agent_runs.exists(self.store):
            conn.execute(
                f"INSERT INTO {self.queue} (session_id) SELECT DISTINCT session_id FROM {agent_runs.TABLE} "
                f"WHERE session_id NOT IN (SELECT session_id FROM {self.table} WHERE session_id IS NOT NULL)"
            )

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

    def _make(self, conn: sqlite3.Connection) -> None:
        """Make the index of this layout, empty, with every session on the log (which the caller's catch-up
        indexes a batch to a write transaction), in place of what is there of an index: nothing, what an
        earlier build's disable() left, or an index of the layout before the map held the text.

        The new tables have names the earlier layout's code does not know, so
        a process still running it fails on this index before it writes.
        """
        self._drop_own(conn, strict=True)
        self._create(conn)
        conn.execute(f"CREATE TABLE {self.queue} (id INTEGER PRIMARY KEY, session_id TEXT)")
        self._watch_anew(conn)
        self.old_layout = False

    def mark(self, raw: Sequence[Any] | None, runs: Sequence[conversation_go.RunRow]) -> int:
        """A session's own fingerprint: see :func:`mark`."""
        return mark(self._marked, raw, runs)

    def _forget(self, conn: sqlite3.Connection, gone: builtins.list[tuple[int]]) -> None:
        """Take these map rows (and their text) out of the index: out of the FTS5 table first, which reads the
        text to forget from the map row (a 'delete' command given the text measured five times slower), and
        in rowid order: FTS5 writes what it holds to a new segment whenever a rowid comes before the last it
        saw, so deletes in the log's order made a segment each (241 µs a delete, 7 µs an insert)."""
        gone = sorted(gone)
        conn.executemany(f"DELETE FROM {self.fts} WHERE rowid = ?", gone)
        conn.executemany(f"DELETE FROM {self.map} WHERE rowid = ?", gone)

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
        self._watch_runs(conn)

    def _watch_runs(self, conn: sqlite3.Connection) -> None:
        """Make the triggers on ``agent_runs`` if it is there, and note whether it is (:data:`RUNS_WATCHED`)."""
        if agent_runs.exists(self.store):
            for statement in self._trigger_sql(self.run_triggers, agent_runs.TABLE):
                conn.execute(statement)
            conn.execute(f"INSERT OR IGNORE INTO {self.config} (k, v) VALUES (?, 1)", (RUNS_WATCHED,))
        else:
            conn.execute(f"DELETE FROM {self.config} WHERE k = ?", (RUNS_WATCHED,))

    def _unwatched(self) -> bool:
        """Whether the sessions table has lost its triggers: it was dropped or renamed (and maybe made again)
        since enable()."""
        return not self._has_trigger(self.triggers["ins"], self.store.table_name)

    def _rebuild(self, conn: sqlite3.Connection) -> None:
        """Empty the index, watch the table again (after :meth:`_unwatched`) and put every session on the log:
        the catch-up then indexes the table as it is now, a batch at a time."""
        conn.execute(f"INSERT INTO {self.fts} ({self.fts}) VALUES ('delete-all')")
        for table in (self.map, self.marks, self.queue):
            conn.execute(f"DELETE FROM {table}")
        self._watch_anew(conn)

    def _watch_anew(self, conn: sqlite3.Connection) -> None:
        """Make the triggers anew (those there may be an earlier build's, or on a table renamed since) and put
        every session on the log."""
        self._drop_triggers(conn, [*self.triggers.values(), *self.run_triggers.values()])
        self._watch(conn)
        self._log_every_session(conn)

    def _require_enabled(self) -> None:
        """:class:`Disabled` if the index is not there now (another process disabled it since it was found)."""
        if not self.enabled():
            raise Disabled(self.store.table_name)

    def _runs_unwatched(self) -> bool:
        """Whether ``agent_runs`` is there without every trigger of the index on it (made after the index, or
        by an earlier build), or those triggers are on a table it was renamed to, or it was watched and is gone
        (:data:`RUNS_WATCHED`). One catalogue read, and where ``agent_runs`` is not there one of the config."""
        names = [unquote(n) for n in self.run_triggers.values()]
        rows = self.store._query(
            "SELECT tbl_name FROM sqlite_master WHERE type = 'trigger' AND name COLLATE NOCASE IN "
            f"({', '.join('?' for _ in names)})",
            names,
        )
        if agent_runs.exists(self.store):
            return sum(str(table).lower() == agent_runs.TABLE for (table,) in rows) < len(names)
        return bool(rows) or bool(self.store._query(f"SELECT 1 FROM {self.config} WHERE k = ?", (RUNS_WATCHED,)))

    def catch_up(self, *, building: bool = False) -> int:
        """Reindex every session the log names; return how many (-1: all of them). A no-op read when the log is empty.

        Each write transaction reindexes at most :data:`CHUNK` sessions, so
        other writers wait at most one batch for the lock, whatever the
        backlog. ``building``: the log holds every session of an index being
        made (:meth:`enable`), extracted by a worker process where the log
        holds :data:`WORKERS_FROM` sessions or more. A table dropped since :meth:`enable` (its triggers went with it) is
        indexed anew once it is there again; while it is gone, raises
        :class:`Unwatched`, and :class:`Disabled` if another process removed
        the index since it was found.
        """
        store = self.store
        rebuilt = False
        if self.old_layout:
            if not store.table_exists():
                raise Unwatched(store.table_name)
            with store.transaction() as conn:
                self._require_enabled()
                if self.old_layout:  # not done meanwhile by another process (which may be filling it now)
                    self._make(conn)
                    rebuilt = True
        if not rebuilt and self._unwatched():
            # Dropped since enable(), by this store or another program: what the index holds is of a table
            # that is gone, and writes since went unlogged. Gone still: scan. Made again: index it anew, a
            # batch at a time as below. (Or the index was disabled meanwhile, its triggers first.)
            if not store.table_exists():
                raise Unwatched(store.table_name)
            with store.transaction() as conn:
                self._require_enabled()
                if self._unwatched():
                    self._rebuild(conn)
                    rebuilt = True
        pending = store._query(f"SELECT 1 FROM {self.queue} LIMIT 1", ())
        unwatched = self._runs_unwatched()
        if not pending and not unwatched:
            return -1 if rebuilt else 0
        whole = building or rebuilt  # every session goes in: committed as a bulk load, merged at the end
        with ExitStack() as bulk:
            if whole:
                bulk.enter_context(self._bulk())
            with store.transaction() as conn:
                # Under the write lock: triggers made for an index disabled meanwhile would fail every write.
                self._require_enabled()
                if self._runs_unwatched():
                    # A Go Agent made agent_runs after the index (or made it again after it was dropped or renamed;
                    # or an earlier build watched it with fewer triggers), or it is gone: watch it if it is there,
                    # index what it holds, and reindex the sessions whose indexed messages came from the old one.
                    self._drop_triggers(conn, self.run_triggers.values())
                    self._watch_runs(conn)
                    if agent_runs.exists(store):
                        conn.execute(
                            f"INSERT INTO {self.queue} (session_id) SELECT DISTINCT session_id FROM {agent_runs.TABLE}"
                        )
                    conn.execute(
                        f"INSERT INTO {self.queue} (session_id) SELECT DISTINCT session_id FROM {self.map} "
                        "WHERE instr(message, ?) > 0",
                        (f'"source":"{conversation_message.SOURCE_GO_AGENT}"',),
                    )
                elif agent_runs.exists(store):
                    # Watched by an index an earlier build made, which did not note it: noted now.
                    conn.execute(f"INSERT OR IGNORE INTO {self.config} (k, v) VALUES (?, 1)", (RUNS_WATCHED,))
                (top,) = conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {self.queue}").fetchone()
                (backlog,) = conn.execute(f"SELECT COUNT(*) FROM {self.queue}").fetchone()
                # A worker for building the index (enable_search(), a table made again), where extracting every
                # message is most of the work. A catch-up with other writers' changes stays here: a session whose
                # conversation is as indexed is not decoded (a worker extracts every session it is sent), and
                # nothing is shipped to another process.
                worker = whole and backlog >= WORKERS_FROM
                if whole:
                    self._pause_merging(conn)
                last, seen = (0, set()) if worker else self._catch_up_batch(conn, 0, top)
            if last < top and not whole:
                bulk.enter_context(self._bulk())  # a backlog of more than one batch: committed as a build's
            if last < top and worker:
                last, seen = search_sqlite_worker.catch_up(self, top)
            # The rest a batch to a write transaction, so that other writers get the lock between batches: one
            # transaction for a backlog of 40,000 sessions held it for 10.6 s here, and agno 1.8.4's upsert
            # gave up after its 5 s and lost its session.
            while last < top:
                with store.transaction() as conn:
                    self._require_enabled()
                    if self._unwatched():
                        # Dropped (or renamed) between two batches: what the index holds is no longer the
                        # table's. The search scans; the next one indexes the table anew if it is there again.
                        raise Unwatched(store.table_name)
                    last, more = self._catch_up_batch(conn, last, top)
                    seen.update(more)
            if whole or (seen and self._filling()):
                self._merge()
        return -1 if rebuilt else len(seen)

    def _bulk(self) -> AbstractContextManager[None]:
        """For a build, or a backlog of more than one batch, of a file's index outside a caller's transaction: its
        batches and merge commit as a bulk load does (:func:`~agno_storage.backends.sqlite_bulk.bulk`: no fsync
        each, a thread checkpointing the WAL beside them, one fsync at the end). At FULL, a build's commits took
        over a quarter of its time here (docs/search.md). The store's other connections keep their own settings."""
        store = self.store
        if store.db_path is None or store._in_transaction():
            return nullcontext()
        return sqlite_bulk.bulk(store._thread_handle().conn, store.db_path)

    def _pause_merging(self, conn: sqlite3.Connection) -> None:
        """Turn FTS5's automerge off while the index is filled (:meth:`_merge` merges once at the end: a quarter
        less CPU for a build of 200,000 messages), noting what to put back (:data:`PAUSED`): the automerge the
        index has (set by hand, maybe), else FTS5's default; or what a build that died noted already. The
        usermerge :meth:`_merge` changes is noted the same way."""
        config = self.config
        sql = f"INSERT OR IGNORE INTO {config} SELECT ?, COALESCE((SELECT v FROM {config} WHERE k = ?), ?)"
        conn.execute(sql, (PAUSED, "automerge", AUTOMERGE))
        conn.execute(sql, (PAUSED_USERMERGE, "usermerge", USERMERGE))
        conn.execute(f"INSERT INTO {self.fts} ({self.fts}, rank) VALUES ('automerge', 0)")

    def _resume_merging(self, conn: sqlite3.Connection) -> None:
        """Put back the automerge and usermerge :meth:`_pause_merging` noted, if a build paused merging (and none
        put them back since; a build of an earlier version noted the automerge only)."""
        for key, setting in ((PAUSED, "automerge"), (PAUSED_USERMERGE, "usermerge")):
            for noted in conn.execute(f"SELECT v FROM {self.config} WHERE k = ?", (key,)).fetchall():
                conn.execute(f"INSERT INTO {self.fts} ({self.fts}, rank) VALUES (?, ?)", (setting, *noted))
                conn.execute(f"DELETE FROM {self.config} WHERE k = ?", (key,))

    def _filling(self) -> bool:
        """Whether a build paused automerge and the log is empty: a build that stopped before its end (killed),
        which the catch-up that took the rest ends as the build would have. While the build runs its sessions
        are on the log (all go on it first): a search taking a share of it leaves the merge to the build."""
        sql = f"SELECT 1 FROM {self.config} WHERE k = ? AND NOT EXISTS (SELECT 1 FROM {self.queue})"
        return bool(self.store._query(sql, (PAUSED,)))

    def _merge(self) -> None:
        """Merge the FTS5 index's segments a build leaves, :data:`MERGE_PAGES` pages to a write transaction
        (FTS5's ``optimize`` would hold the lock for all of it; unmerged, later searches and catch-ups read
        more segments: docs/search.md), with ``usermerge`` 2, down to one segment a level. The automerge a
        build paused, and the usermerge, are put back with the last, which finds nothing left: a merge cut
        short (its process killed) is ended by the next catch-up."""
        store = self.store
        with store.transaction() as conn:
            self._require_enabled()
            conn.execute(f"INSERT INTO {self.fts} ({self.fts}, rank) VALUES ('usermerge', 2)")
        while True:
            with store.transaction() as conn:
                self._require_enabled()
                before = conn.total_changes
                conn.execute(f"INSERT INTO {self.fts} ({self.fts}, rank) VALUES ('merge', {MERGE_PAGES})")
                if conn.total_changes - before < 2:  # no work done: FTS5's own test
                    self._resume_merging(conn)
                    return

    def _entries(
        self, conn: sqlite3.Connection, after: int, top: int, *, sized: bool = True
    ) -> Iterator[tuple[int, str, int]]:
        """The log's entries after ``after`` up to ``top``, in order, each with the stored text of its session
        (its conversation columns and agent_runs rows, in bytes: what a worker's batch is cut by; 0 unless
        ``sized``: every value is read whole). A session id that is not UTF-8 text (a writer's bytes) is a
        CorruptRowError, as a corrupt row on the log is."""
        # Bytes, not characters: length() of text counts its characters, four times the time of the bytes
        # (0.66 s against 0.17 s for the 600 MB of the benchmark's 50,000 sessions).
        size = " + ".join(f"COALESCE(length(CAST(s.{quote(c)} AS BLOB)), 0)" for c in self._conversation_names)
        size = size or "0"
        if not sized:
            size = "0"
        elif agent_runs.exists(self.store):
            texts = " + ".join(
                f"COALESCE(length(CAST(r.{c} AS BLOB)), 0)" for c in ("user_message", "agent_message", "messages")
            )
            size += f" + COALESCE((SELECT SUM({texts}) FROM {agent_runs.TABLE} r WHERE r.session_id = q.session_id), 0)"
        cursor = conn.execute(
            f"SELECT q.id, q.session_id, {size} FROM {self.queue} q LEFT JOIN {self.table} s "
            "ON s.session_id = q.session_id WHERE q.id > ? AND q.id <= ? ORDER BY q.id",
            (after, top),
        )
        try:
            yield from cursor
        except sqlite3.OperationalError as exc:
            if "decode" not in str(exc):
                raise
            table = self.store.table_name
            raise CorruptRowError(
                f"{table}: a session id on the search log is not UTF-8 text ({exc})", table=table
            ) from None
        finally:
            cursor.close()  # a batch cut short, or an error: an open cursor would keep the tables locked

    def _diff(
        self, conn: sqlite3.Connection, docs: dict[str, builtins.list[Doc]]
    ) -> tuple[builtins.list[tuple[int]], builtins.list[Doc]]:
        """(map rowids to delete, messages to add) that make the index hold exactly ``docs`` of these sessions:
        a message indexed already (same fingerprint) stays where it is."""
        places = "(" + ", ".join("?" for _ in docs) + ")"
        indexed: dict[str, dict[int, builtins.list[int]]] = {}
        for rowid, sid, stored_digest in conn.execute(
            f"SELECT rowid, session_id, digest FROM {self.map} WHERE session_id IN {places}", builtins.list(docs)
        ):
            indexed.setdefault(sid, {}).setdefault(stored_digest, []).append(rowid)
        gone: builtins.list[tuple[int]] = []
        new: builtins.list[Doc] = []
        for sid, wanted in docs.items():
            kept = indexed.get(sid, {})
            for doc in wanted:
                same = kept.get(doc[6])
                if same:
                    same.pop()
                else:
                    new.append(doc)
            gone += [(rowid,) for rowids in kept.values() for rowid in rowids]
        return gone, new

    def _catch_up_batch(self, conn: sqlite3.Connection, after: int, top: int) -> tuple[int, set[str]]:
        """Reindex the sessions the log names after entry ``after`` up to ``top``, at most :data:`CHUNK` of them
        and :data:`CATCH_UP_BYTES` of stored text (past one session), and take their entries off the log; the
        last entry taken, and the sessions.

        An entry another process took off meanwhile is not there: its session is not read again here.
        """
        first: dict[str, int] = {}  # each session's first entry, in the log's order
        last = top
        for entry, sid, _ in self._entries(conn, after, top, sized=False):
            if sid not in first and len(first) >= CHUNK:
                last = entry - 1
                break
            first.setdefault(sid, entry)
        ids = builtins.list(first)
        gone, new, marks, taken = self._changes(conn, ids, budget=CATCH_UP_BYTES)
        if taken < len(ids):  # cut by the text read: the rest from the first session not taken on
            last = first[ids[taken]] - 1
            ids = ids[:taken]
        self._forget(conn, gone)
        self._insert(conn, new)
        self._put_marks(conn, marks)
        conn.execute(f"DELETE FROM {self.queue} WHERE id > ? AND id <= ?", (after, last))
        return last, set(ids)

    def _changes(
        self, conn: sqlite3.Connection, ids: builtins.list[str], budget: int | None = None
    ) -> tuple[builtins.list[tuple[int]], builtins.list[Doc], builtins.list[tuple[str, int | None]], int]:
        """(map rowids to delete, messages to add, new marks, how many of ``ids`` they cover) that bring the
        sessions ``ids`` up to date; with ``budget``, only the first of them whose stored conversation text
        (past the first session's) stays within it, read as they come (:data:`CATCH_UP_BYTES`).

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
        taken = 0
        for chunk in in_chunks(ids, CHUNK):
            places = "(" + ", ".join("?" for _ in chunk) + ")"
            rows = {raw[0]: raw for raw in store._query(select + places, chunk)}
            runs = agent_runs.runs_of(store, chunk) if with_runs else {}
            for sid in agent_runs.held_elsewhere(store, [s for s in runs if s not in rows]):
                del runs[sid]  # another agent table's session (an archive copy): not this table's to index
            if budget is not None:
                held = 0
                for k, sid in enumerate(chunk):
                    if k and held >= budget:
                        chunk = chunk[:k]
                        places = "(" + ", ".join("?" for _ in chunk) + ")"
                        budget = -1  # spent: no later chunk
                        break
                    held += _stored_text(rows.get(sid), self._conversation, runs.get(sid, ()))
            taken += len(chunk)
            marked = set(
                conn.execute(f"SELECT session_id, digest FROM {self.marks} WHERE session_id IN {places}", chunk)
            )
            changed: dict[str, tuple[Sequence[Any] | None, builtins.list[conversation_go.RunRow], int | None]] = {}
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
            wanted = {
                sid: docs_of(sid, decode(raw) if raw is not None else None, mine, table)
                for sid, (raw, mine, _) in changed.items()
            }
            chunk_gone, chunk_new = self._diff(conn, wanted)
            gone += chunk_gone
            new += chunk_new
            marks += [(sid, mark) for sid, (_, _, mark) in changed.items()]
            if budget == -1:
                break
        return gone, new, marks, taken

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
            f"SELECT m.session_id, m.user_id, m.entity_id, m.message, -bm25({self.fts}) "
            f"FROM {self.fts} JOIN {self.map} AS m ON m.rowid = {self.fts}.rowid "
            f"WHERE {self.fts} MATCH ?{where} ORDER BY rank, {self.fts}.rowid LIMIT ?",
            [expression, *params, limit],
        )
        return hits_of(terms(query), rows)


def _replaced(exc: BaseException) -> bool:
    """Whether ``exc``, or an error it was raised while handling, is a DatabaseReplacedError."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, DatabaseReplacedError):
            return True
        seen.add(id(cause))
        cause = cause.__context__
    return False


def _stored_text(raw: Sequence[Any] | None, conversation_at: Sequence[int], runs: Iterable[Any]) -> int:
    """The length of the text one session's conversation is read from: its row's conversation columns, its runs'."""
    size = sum(len(raw[i]) for i in conversation_at if isinstance(raw[i], (str, bytes))) if raw is not None else 0
    for run in runs:
        size += sum(len(v) for v in (run.user_message, run.agent_message, run.messages) if v)
    return size


__all__ = ["CONVERSATION_COLUMNS", "INDEX_VERSION", "WORKERS_FROM", "SqliteIndex"]
