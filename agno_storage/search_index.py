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
``<table>_search`` (FTS5), ``<table>_search_map`` (FTS rowid -> session),
``<table>_search_queue``, triggers ``<table>_search_ins/upd/del`` and, once
``agent_runs`` exists, ``<table>_search_runs_ins/upd/del``. On PostgreSQL:
``<table>_search`` (one row per message, ``tsv`` generated, GIN index),
``<table>_search_queue``, a function ``<table>_search_log()`` and the
trigger ``<table>_search_log``. :meth:`disable` drops them all.
"""

from __future__ import annotations

import builtins
import hashlib
import sqlite3
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from agno_storage import agent_runs, conversation
from agno_storage.conversation import Message
from agno_storage.errors import StorageError
from agno_storage.schema import quote
from agno_storage.search import SearchHit

if TYPE_CHECKING:
    import psycopg

    from agno_storage.backends.base import BaseStorage
    from agno_storage.backends.postgres import PostgresStorage
    from agno_storage.backends.sqlite import SqliteStorage

#: Messages per executemany / COPY batch when (re)indexing.
BATCH = 5_000
#: Characters either side of a match in an index snippet (FTS5 counts tokens: this many).
SNIPPET_TOKENS = 16


class Index(Protocol):
    def enabled(self) -> bool: ...
    def enable(self) -> None: ...
    def disable(self) -> None: ...
    def catch_up(self) -> int: ...
    def search(
        self, words: builtins.list[str], user_id: str | None, entity_id: str | None, limit: int
    ) -> builtins.list[SearchHit]: ...


def index_for(store: BaseStorage) -> Index:
    """The index object of ``store``'s engine."""
    from agno_storage.backends.sqlite import SqliteStorage

    if isinstance(store, SqliteStorage):
        return SqliteIndex(store)
    return PostgresIndex(store)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- shared


Doc = tuple[str, str, str, int, str, str]
"""(session_id, user_id or '', entity_id or '', position, Message JSON, content) of one indexed message."""


def _docs(session_id: str, user_id: str | None, entity_id: str | None, messages: Iterable[Message]) -> Iterator[Doc]:
    converter = _CONVERTER
    for pos, m in enumerate(messages):
        if m.content:
            yield (
                session_id,
                user_id or "",
                entity_id or "",
                pos,
                orjson.dumps(converter.unstructure(m)).decode(),
                m.content,
            )


_CONVERTER = conversation.make_converter()


def digest(doc: Doc) -> int:
    """A stable 63-bit fingerprint of what a doc indexes (owner, entity, message), position left out."""
    key = "\x00".join((doc[1], doc[2], doc[4])).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") >> 1


def session_docs(store: BaseStorage, session_id: str) -> builtins.list[Doc]:
    """The indexed messages of one session as it is now (none if it is gone)."""
    session = store.read(session_id)
    rows = agent_runs.read_runs(store, session_id)
    if session is not None:
        messages = conversation.session_messages(session, store.table_name)
        if rows:
            messages = conversation.merge(messages, conversation.runs_messages(rows, store.table_name))
        return builtins.list(_docs(session_id, session.user_id, session.entity_id, messages))
    owner = next((r.user_id for r in rows if r.user_id), None)
    return builtins.list(_docs(session_id, owner, None, conversation.runs_messages(rows, store.table_name)))


def _hit(session_id: str, user_id: str, entity_id: str, message: str, snippet: str, score: float) -> SearchHit:
    return SearchHit(
        session_id=session_id,
        user_id=user_id or None,
        entity_id=entity_id or None,
        message=_CONVERTER.structure(orjson.loads(message), Message),
        snippet=snippet,
        score=float(score),
    )


def _filters(user_id: str | None, entity_id: str | None, mark: str) -> tuple[str, builtins.list[Any]]:
    sql, params = "", []
    for column, value in (("user_id", user_id), ("entity_id", entity_id)):
        if value is not None:
            sql += f" AND {column} = {mark}"
            params.append(value)
    return sql, params


def _chunks(items: Iterable[Any], size: int = BATCH) -> Iterator[builtins.list[Any]]:
    batch: builtins.list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# --------------------------------------------------------------------------- SQLite


class SqliteIndex:
    """FTS5 index beside a sessions table in the same SQLite file."""

    def __init__(self, store: SqliteStorage) -> None:
        self.store = store
        t = store.table_name
        self.fts_name = t + "_search"
        self.fts, self.map, self.queue = quote(self.fts_name), quote(t + "_search_map"), quote(t + "_search_queue")
        self.table = quote(t)
        self.triggers = {op: quote(f"{t}_search_{op}") for op in ("ins", "upd", "del")}
        self.run_triggers = {op: quote(f"{t}_search_runs_{op}") for op in ("ins", "upd", "del")}

    def enabled(self) -> bool:
        return bool(self.store._query("SELECT 1 FROM sqlite_master WHERE name = ?", (self.fts_name,)))

    def _trigger_sql(self, names: dict[str, str], table: str) -> builtins.list[str]:
        q = self.queue
        return [
            f"CREATE TRIGGER IF NOT EXISTS {names['ins']} AFTER INSERT ON {table} "
            f"BEGIN INSERT INTO {q} (session_id) VALUES (new.session_id); END",
            f"CREATE TRIGGER IF NOT EXISTS {names['upd']} AFTER UPDATE ON {table} "
            f"BEGIN INSERT INTO {q} (session_id) VALUES (new.session_id); "
            f"INSERT INTO {q} (session_id) SELECT old.session_id WHERE old.session_id IS NOT new.session_id; END",
            f"CREATE TRIGGER IF NOT EXISTS {names['del']} AFTER DELETE ON {table} "
            f"BEGIN INSERT INTO {q} (session_id) VALUES (old.session_id); END",
        ]

    def enable(self) -> None:
        store = self.store
        store.create()
        with store.transaction() as conn:
            if self.enabled():
                return
            try:
                conn.execute(
                    f"CREATE VIRTUAL TABLE {self.fts} USING fts5(content, session_id UNINDEXED, user_id UNINDEXED, "
                    "entity_id UNINDEXED, pos UNINDEXED, message UNINDEXED, "
                    "tokenize = 'unicode61 remove_diacritics 0')"
                )
            except sqlite3.OperationalError as exc:
                if "no such module" in str(exc):
                    raise StorageError(
                        "this SQLite build has no FTS5: search() still works, by scanning", table=store.table_name
                    ) from exc
                raise
            conn.execute(
                f"CREATE TABLE {self.map} (rowid INTEGER PRIMARY KEY, session_id TEXT NOT NULL, digest INTEGER NOT NULL)"
            )
            conn.execute(f"CREATE INDEX {quote(store.table_name + '_search_map_session')} ON {self.map} (session_id)")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self.queue} (id INTEGER PRIMARY KEY, session_id TEXT)")
            for statement in self._trigger_sql(self.triggers, self.table):
                conn.execute(statement)
            if agent_runs.exists(store):
                for statement in self._trigger_sql(self.run_triggers, agent_runs.TABLE):
                    conn.execute(statement)
            self._build(conn)

    def _build(self, conn: sqlite3.Connection) -> None:
        """Index every session now in the table (inside the enabling transaction)."""
        store = self.store
        runs: dict[str, builtins.list[conversation.RunRow]] = {}
        if agent_runs.exists(store):
            for row in agent_runs.all_runs(store):
                runs.setdefault(row.session_id, []).append(row)

        def docs() -> Iterator[Doc]:
            decode = store.row_codec.decode
            for raw in conn.execute(store.statements.select):
                session = decode(raw)
                messages = conversation.session_messages(session, store.table_name)
                mine = runs.pop(session.session_id, None)
                if mine:
                    messages = conversation.merge(messages, conversation.runs_messages(mine, store.table_name))
                yield from _docs(session.session_id, session.user_id, session.entity_id, messages)
            for session_id, rows in runs.items():
                owner = next((r.user_id for r in rows if r.user_id), None)
                yield from _docs(session_id, owner, None, conversation.runs_messages(rows, store.table_name))

        self._insert(conn, docs())

    def _insert(self, conn: sqlite3.Connection, docs: Iterable[Doc]) -> None:
        (top,) = conn.execute(f"SELECT COALESCE(MAX(rowid), 0) FROM {self.map}").fetchone()
        for batch in _chunks(docs):
            ids = range(top + 1, top + 1 + len(batch))
            top += len(batch)
            conn.executemany(
                f"INSERT INTO {self.fts} (rowid, session_id, user_id, entity_id, pos, message, content) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(i, *d) for i, d in zip(ids, batch, strict=True)],
            )
            conn.executemany(
                f"INSERT INTO {self.map} (rowid, session_id, digest) VALUES (?, ?, ?)",
                [(i, d[0], digest(d)) for i, d in zip(ids, batch, strict=True)],
            )

    def disable(self) -> None:
        with self.store.transaction() as conn:
            for name in [*self.triggers.values(), *self.run_triggers.values()]:
                conn.execute(f"DROP TRIGGER IF EXISTS {name}")
            for table in (self.fts, self.map, self.queue):
                conn.execute(f"DROP TABLE IF EXISTS {table}")

    def _runs_unwatched(self) -> bool:
        if not agent_runs.exists(self.store):
            return False
        name = self.run_triggers["ins"][1:-1].replace('""', '"')
        return not self.store._query("SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?", (name,))

    def catch_up(self) -> int:
        """Reindex every session the log names; return how many. A no-op read when the log is empty."""
        store = self.store
        pending = store._query(f"SELECT 1 FROM {self.queue} LIMIT 1", ())
        unwatched = self._runs_unwatched()
        if not pending and not unwatched:
            return 0
        with store.transaction() as conn:
            if self._runs_unwatched():
                # A Go Agent made agent_runs after the index: watch it, and index what it holds.
                for statement in self._trigger_sql(self.run_triggers, agent_runs.TABLE):
                    conn.execute(statement)
                conn.execute(
                    f"INSERT INTO {self.queue} (session_id) SELECT DISTINCT session_id FROM {agent_runs.TABLE}"
                )
            (top,) = conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {self.queue}").fetchone()
            ids = [
                r[0]
                for r in conn.execute(
                    f"SELECT DISTINCT session_id FROM {self.queue} WHERE id <= ?",
                    (top,),
                )
            ]
            # Only what changed is reindexed: agno rewrites a whole memory to append one run, Go a whole
            # team_data to append two messages; the messages kept are matched by fingerprint.
            gone: builtins.list[tuple[int]] = []
            new: builtins.list[Doc] = []
            for sid in ids:
                kept: dict[int, builtins.list[int]] = {}
                for rowid, fingerprint in conn.execute(
                    f"SELECT rowid, digest FROM {self.map} WHERE session_id = ?", (sid,)
                ):
                    kept.setdefault(fingerprint, []).append(rowid)
                for doc in session_docs(store, sid):
                    same = kept.get(digest(doc))
                    if same:
                        same.pop()
                    else:
                        new.append(doc)
                gone += [(rowid,) for rowids in kept.values() for rowid in rowids]
            conn.executemany(f"DELETE FROM {self.fts} WHERE rowid = ?", gone)
            conn.executemany(f"DELETE FROM {self.map} WHERE rowid = ?", gone)
            self._insert(conn, new)
            conn.execute(f"DELETE FROM {self.queue} WHERE id <= ?", (top,))
        return len(ids)

    def search(
        self, words: builtins.list[str], user_id: str | None, entity_id: str | None, limit: int
    ) -> builtins.list[SearchHit]:
        # Each word quoted: FTS5 reads it as a string, never as syntax (AND, NEAR, *, ^, :, ...).
        expression = " ".join('"' + w.replace('"', '""') + '"' for w in words)
        where, params = _filters(user_id, entity_id, "?")
        rows = self.store._query(
            f"SELECT session_id, user_id, entity_id, message, "
            f"snippet({self.fts}, 0, '[', ']', '…', {SNIPPET_TOKENS}), -bm25({self.fts}) "
            f"FROM {self.fts} WHERE {self.fts} MATCH ?{where} ORDER BY rank, rowid LIMIT ?",
            [expression, *params, limit],
        )
        return [_hit(*r) for r in rows]


# --------------------------------------------------------------------------- PostgreSQL


class PostgresIndex:
    """One row per message in ``<table>_search`` with a generated ``tsvector`` and a GIN index."""

    def __init__(self, store: PostgresStorage) -> None:
        self.store = store
        t = store.table_name

        def name(suffix: str) -> str:
            return ".".join(quote(p) for p in ((store.schema, t + suffix) if store.schema else (t + suffix,)))

        self.docs_name = name("_search")
        self.docs, self.queue, self.function = self.docs_name, name("_search_queue"), name("_search_log")
        self.trigger = quote(t + "_search_log")
        self.table = store._regclass_name
        self.lock_key = f"agno_storage.search:{self.docs_name}"

    def enabled(self) -> bool:
        rows = self.store._query("SELECT to_regclass(%s) IS NOT NULL", (self.docs_name,))
        return bool(rows and rows[0][0])

    def enable(self) -> None:
        store = self.store
        store.create()
        with store.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.lock_key,))
            if self.enabled():
                return
            conn.execute(
                f"CREATE TABLE {self.docs} (id bigserial PRIMARY KEY, session_id text NOT NULL, "
                "user_id text NOT NULL, entity_id text NOT NULL, pos integer NOT NULL, message text NOT NULL, digest bigint NOT NULL, "
                "content text NOT NULL, tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED)"
            )
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self.queue} (id bigserial PRIMARY KEY, session_id text)")
            # The function only appends to the queue: a write to the sessions table never waits on the GIN index.
            conn.execute(
                f"CREATE OR REPLACE FUNCTION {self.function}() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN "
                f"IF TG_OP <> 'INSERT' THEN INSERT INTO {self.queue} (session_id) VALUES (OLD.session_id); END IF; "
                f"IF TG_OP <> 'DELETE' THEN INSERT INTO {self.queue} (session_id) VALUES (NEW.session_id); END IF; "
                "RETURN NULL; END $fn$"
            )
            conn.execute(f"DROP TRIGGER IF EXISTS {self.trigger} ON {self.table}")
            conn.execute(
                f"CREATE TRIGGER {self.trigger} AFTER INSERT OR UPDATE OR DELETE ON {self.table} "
                f"FOR EACH ROW EXECUTE FUNCTION {self.function}()"
            )
            self._build(conn)
            conn.execute(f"CREATE INDEX ON {self.docs} USING gin (tsv)")
            conn.execute(f"CREATE INDEX ON {self.docs} (session_id)")

    def _build(self, conn: psycopg.Connection[Any]) -> None:
        """Index every session now in the table, a batch of sessions read, then copied, at a time."""
        store = self.store
        decode = store.row_codec.decode
        with conn.cursor(name="agno_storage_search_build") as cur:
            cur.execute(store.statements.select)
            while rows := cur.fetchmany(1000):
                docs: builtins.list[Doc] = []
                for raw in rows:
                    session = decode(raw)
                    messages = conversation.session_messages(session, store.table_name)
                    docs += _docs(session.session_id, session.user_id, session.entity_id, messages)
                self._copy(conn, docs)

    def _copy(self, conn: psycopg.Connection[Any], docs: Iterable[Doc]) -> None:
        with (
            conn.cursor() as cur,
            cur.copy(
                f"COPY {self.docs} (session_id, user_id, entity_id, pos, message, content, digest) FROM STDIN"
            ) as copy,
        ):
            for d in docs:
                # PostgreSQL text cannot hold NUL.
                copy.write_row([*(v.replace("\x00", "") if isinstance(v, str) else v for v in d), digest(d)])

    def disable(self) -> None:
        with self.store.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.lock_key,))
            if self.store.table_exists():
                conn.execute(f"DROP TRIGGER IF EXISTS {self.trigger} ON {self.table}")
            conn.execute(f"DROP FUNCTION IF EXISTS {self.function}()")
            conn.execute(f"DROP TABLE IF EXISTS {self.docs}, {self.queue}")

    def catch_up(self) -> int:
        store = self.store
        if not store._query(f"SELECT 1 FROM {self.queue} LIMIT 1", ()):
            return 0
        with store.transaction() as conn:
            # One catch-up at a time; writers only append to the queue and never wait on this lock.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.lock_key,))
            row = conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {self.queue}").fetchone()
            top = row[0] if row else 0
            ids = [
                r[0]
                for r in conn.execute(
                    f"SELECT DISTINCT session_id FROM {self.queue} WHERE id <= %s",
                    (top,),
                ).fetchall()
            ]
            if ids:
                # As on SQLite, only the messages that changed go out and in.
                kept: dict[tuple[str, int], builtins.list[int]] = {}
                for row_id, sid, fingerprint in conn.execute(
                    f"SELECT id, session_id, digest FROM {self.docs} WHERE session_id = ANY(%s)", (ids,)
                ).fetchall():
                    kept.setdefault((sid, fingerprint), []).append(row_id)
                new: builtins.list[Doc] = []
                for sid in ids:
                    for doc in session_docs(store, sid):
                        same = kept.get((sid, digest(doc)))
                        if same:
                            same.pop()
                        else:
                            new.append(doc)
                gone = [row_id for row_ids in kept.values() for row_id in row_ids]
                if gone:
                    conn.execute(f"DELETE FROM {self.docs} WHERE id = ANY(%s)", (gone,))
                self._copy(conn, new)
            conn.execute(f"DELETE FROM {self.queue} WHERE id <= %s", (top,))
        return len(ids)

    def search(
        self, words: builtins.list[str], user_id: str | None, entity_id: str | None, limit: int
    ) -> builtins.list[SearchHit]:
        where, params = _filters(user_id, entity_id, "%s")
        rows = self.store._query(
            "SELECT session_id, user_id, entity_id, message, "
            "ts_headline('simple', content, q, 'StartSel=[, StopSel=], MaxWords=24, MinWords=8'), "
            f"ts_rank(tsv, q) AS score FROM {self.docs}, plainto_tsquery('simple', %s) AS q "
            f"WHERE tsv @@ q{where} ORDER BY score DESC, id LIMIT %s",
            [" ".join(words), *params, limit],
        )
        return [_hit(*r) for r in rows]


__all__ = ["BATCH", "Index", "PostgresIndex", "SqliteIndex", "index_for", "session_docs"]
