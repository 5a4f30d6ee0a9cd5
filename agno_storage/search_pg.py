# ruff: noqa: S608 - every identifier here comes through schema.quote; every value is bound.
"""The search index of a PostgreSQL sessions table: a GIN-indexed tsvector of each message's words.

:mod:`agno_storage.search_index` holds the design (docs/search.md), what
both engines share and the SQLite index. On PostgreSQL: ``<table>_search``
(one row per message, a ``tsv`` of its words as the scan finds them, GIN
index; its comment says the index's version), ``<table>_search_queue``, a
function ``<table>_search_log()`` (``SECURITY DEFINER``) and the triggers
``<table>_search_log`` (each row) and ``<table>_search_truncate``.
:meth:`PostgresIndex.disable` drops them all.
"""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from agno_storage.errors import StorageError
from agno_storage.schema import PG_NAME_BYTES, check_derived_names, literal, quote, unquote
from agno_storage.search import SearchHit, terms, words_of
from agno_storage.search_index import (
    CHUNK,
    Disabled,
    Doc,
    RemakeRefused,
    Unwatched,
    denied,
    docs_of,
    hits_of,
    in_chunks,
    owner_filters,
)

if TYPE_CHECKING:
    import psycopg

    from agno_storage.backends.postgres import PostgresStorage

#: Bytes of lexemes and positions a PostgreSQL index's tsvector holds at most (PostgreSQL's limit is 1 MiB): a
#: message's words past them are found by a scan only.
TSVECTOR_BYTES = 1_000_000
#: The longest lexeme PostgreSQL keeps, in UTF-8 bytes; a longer word is indexed, and looked up, by its hash.
LEXEME_BYTES = 2046
#: The highest position PostgreSQL keeps in a tsvector, and how many positions a lexeme keeps at most.
MAX_POSITION, MAX_POSITIONS = 16383, 256


#: What a PostgreSQL index is, kept as its table's comment (:data:`_PG_COMMENT` and the number); an index of
#: another version is made anew on first use. 1 (no comment): each message's text and a tsvector PostgreSQL's
#: ``simple`` parser made of it; its trigger function ran with the writer's rights and search path, and a
#: TRUNCATE of the sessions table went unlogged. 2: the tsvector holds the words the scan finds (:func:`_tsvector`,
#: no text kept); the function runs as the role that enabled the index, names the queue with its schema, and
#: logs a TRUNCATE. 3: the same tables, function and triggers; an ``AgentMemory`` or ``TeamMemory`` run is read
#: from its ``response`` (its question, answer and member runs) and an Agent's ``add_messages`` show once until
#: they change (``conversation_agno``).
PG_INDEX_VERSION = 3
_PG_COMMENT = "agno_storage search index "
#: The columns of the index's tables, each layout it has had (versions 2 and 3's first): a table by one of their names
#: with other columns is another program's, never taken for the index nor dropped.
_PG_DOC_COLUMNS = (
    ("id", "session_id", "user_id", "entity_id", "pos", "message", "digest", "tsv"),
    ("id", "session_id", "user_id", "entity_id", "pos", "message", "digest", "content", "tsv"),
)
_PG_QUEUE_COLUMNS = ("id", "session_id")


def _pg_name(name: str) -> str:
    """``name`` as PostgreSQL keeps it: cut at :data:`PG_NAME_BYTES` of UTF-8, never inside a character."""
    return name.encode()[:PG_NAME_BYTES].decode(errors="ignore")


def _kept(word: str) -> str:
    """A word, as :func:`~agno_storage.search.words_of` gives it, as the index keeps it: itself, or one longer
    than PostgreSQL keeps in a lexeme (:data:`LEXEME_BYTES`) as its hash after a space (no word holds a space,
    so no word is spelled so)."""
    if len(word) * 4 > LEXEME_BYTES:  # else its UTF-8 is short enough, unmeasured
        data = word.encode()
        if len(data) > LEXEME_BYTES:
            return " " + hashlib.blake2b(data, digest_size=16).hexdigest()
    return word


def _lexeme(word: str) -> str:
    """A word, as :func:`~agno_storage.search.words_of` gives it, as a lexeme of a tsvector or tsquery, quoted
    (:func:`_kept`)."""
    word = _kept(word)
    if "'" in word or "\\" in word:  # separators, in no word of the scan's; the quoting stays exact regardless
        word = word.replace("\\", "\\\\").replace("'", "''")
    return "'" + word + "'"


#: Each position a tsvector keeps, spelled (building a tsvector spells many).
_POSITIONS = [str(i) for i in range(MAX_POSITION + 1)]


def _tsvector(text: str) -> str:
    """The tsvector, as PostgreSQL reads it, of the words of ``text`` the scan finds, each with its positions.

    The words are the scan's (split as FTS5 splits, folded as it folds):
    PostgreSQL's parser would keep ``alice@example.com`` or ``v1.2.3`` as
    one word, and by the server's locale a word and the quote or dash
    beside it. As many words as :data:`TSVECTOR_BYTES` hold, in the order
    they first occur (a tsvector may not pass 1 MiB).
    """
    words = words_of(text)
    if len(words) <= MAX_POSITIONS and 4 * len(text) + 5 * len(words) <= TSVECTOR_BYTES:
        # The common case, a message of a few hundred words: every position kept, the size bound by the text's.
        spelled: dict[str, builtins.list[str]] = {}
        for at, word in enumerate(words, 1):
            spelled.setdefault(word, []).append(_POSITIONS[at])
        return " ".join([f"{_lexeme(word)}:{','.join(spelling)}" for word, spelling in spelled.items()])
    places: dict[str, builtins.list[int]] = {}
    for at, word in enumerate(words, 1):
        places.setdefault(word, []).append(at)
    out: builtins.list[str] = []
    size = 0
    for word, where in places.items():
        kept = [_POSITIONS[a] for a in where[:MAX_POSITIONS] if a <= MAX_POSITION] or [_POSITIONS[MAX_POSITION]]
        # The lexeme as kept (a long word's hash: counted at its own length, a word of over a megabyte left
        # out every word after it), its alignment and count of positions, two bytes a position.
        word = _kept(word)
        size += (len(word) if word.isascii() else len(word.encode())) + 3 + 2 * len(kept)
        if size > TSVECTOR_BYTES:
            break
        out.append(f"{_lexeme(word)}:{','.join(kept)}")
    return " ".join(out)


def _tsquery(query: str) -> str:
    """A tsquery, as PostgreSQL reads it, matching a tsvector of :func:`_tsvector` that holds every word of
    ``query``: each lexeme quoted (never syntax), ANDed.

    ANDed as a balanced tree: ``a & b & c ...`` nests one level a word, and
    PostgreSQL parses and evaluates a tsquery recursively, so a query of
    some 20,000 words ran past the server's stack ("stack depth limit
    exceeded"); balanced, it nests about 15 levels.
    """
    lexemes = [_lexeme(w) for w in terms(query)]
    while len(lexemes) > 2:
        pairs = [f"({a} & {b})" for a, b in zip(lexemes[::2], lexemes[1::2], strict=False)]
        lexemes = pairs + lexemes[len(pairs) * 2 :]
    return " & ".join(lexemes)


class PostgresIndex:
    """One row per message in ``<table>_search`` with a ``tsvector`` of its words and a GIN index."""

    def __init__(self, store: PostgresStorage) -> None:
        self.store = store
        t = store.table_name

        def name(suffix: str) -> str:
            return ".".join(quote(p) for p in ((store.schema, t + suffix) if store.schema else (t + suffix,)))

        self.docs_name = name("_search")
        self.docs, self.queue, self.function = self.docs_name, name("_search_queue"), name("_search_log")
        #: The triggers on the sessions table: one per row written, one per TRUNCATE (which fires no row trigger).
        self.trigger_names = (_pg_name(t + "_search_log"), _pg_name(t + "_search_truncate"))
        self.trigger, self.truncate_trigger = (quote(n) for n in self.trigger_names)
        self.table = store.qualified_table
        self.lock_key = f"agno_storage.search:{self.docs_name}"

    def enabled(self) -> bool:
        # The index's own table (its columns), not a sessions table (or another's table) named <table>_search.
        return self._columns(self.docs_name) in _PG_DOC_COLUMNS

    def _columns(self, name: str) -> tuple[str, ...]:
        """The columns of table ``name`` (quoted, qualified or not) where the search path finds it; () if absent."""
        rows = self.store._query(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped "
            "ORDER BY attnum",
            (name,),
        )
        return tuple(r[0] for r in rows)

    def _relation(self, name: str) -> tuple[str, str, str, bool] | None:
        """(schema, name, owner, whether this role may act as its owner) of table ``name`` as the search path
        finds it now, or None."""
        rows = self.store._query(
            "SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner), pg_has_role(c.relowner, 'USAGE') "
            "FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)",
            (name,),
        )
        return (str(rows[0][0]), str(rows[0][1]), str(rows[0][2]), bool(rows[0][3])) if rows else None

    def _triggers(self) -> builtins.list[tuple[str, str, str]]:
        """(schema, table, trigger) of every trigger that calls the index's function, on whatever table: one
        renamed since keeps it."""
        rows = self.store._query(
            "SELECT n.nspname, c.relname, t.tgname FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid "
            "JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE t.tgfoid = to_regprocedure(%s) ORDER BY 1, 2, 3",
            (self.function + "()",),
        )
        return [(str(a), str(b), str(c)) for a, b, c in rows]

    def _function_state(self) -> str | None:
        """``"ours"``: the function is there and appends to this index's queue; ``"other"``: one of another's
        by its name; None: none.

        The queue is named in the body as PostgreSQL cut it (this build) or in full (version 1's body, which
        PostgreSQL cuts only when it runs): either is this index's.
        """
        rows = self.store._query("SELECT prosrc FROM pg_proc WHERE oid = to_regprocedure(%s)", (self.function + "()",))
        if not rows:
            return None
        queue = self.store.table_name + "_search_queue"
        body = str(rows[0][0])
        return "ours" if quote(_pg_name(queue)) in body or quote(queue) in body else "other"

    def _state(self) -> tuple[bool, int, str | None]:
        """(the queue holds rows, how many of the index's triggers are on the sessions table, the index's comment)."""
        (pending, watched, comment), *_ = self.store._query(
            f"SELECT EXISTS (SELECT 1 FROM {self.queue}), "
            "(SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass(%s) AND tgfoid = to_regprocedure(%s) "
            "AND tgname = ANY(%s)), obj_description(to_regclass(%s), 'pg_class')",
            (self.table, self.function + "()", builtins.list(self.trigger_names), self.docs_name),
        )
        return bool(pending), int(watched), comment

    def _current(self, watched: int, comment: str | None) -> bool:
        """Whether the index is of this version and both its triggers are on the sessions table."""
        return comment == f"{_PG_COMMENT}{PG_INDEX_VERSION}" and watched == len(self.trigger_names)

    def enable(self) -> None:
        store = self.store
        check_derived_names(
            store.table_name, ("_search", "_search_queue", "_search_log", "_search_truncate"), "the search index"
        )
        store.create()
        with store.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.lock_key,))
            if self.enabled():
                _, watched, comment = self._state()
                if not self._current(watched, comment):
                    self._remake(conn)
                return
            self._refuse_taken()
            self._create(conn)
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self.queue} (id bigserial PRIMARY KEY, session_id text)")
            self._watch(conn)
            self._build(conn)
            self._create_indexes(conn)

    def _refuse_taken(self) -> None:
        """StorageError if a table or function by one of the index's names is not the index's (so never written
        into, replaced, or dropped by it), or the queue is another role's (the trigger function, which runs as
        the role enabling the index, would run that role's triggers with this one's rights)."""
        t = self.store.table_name
        found = self._relation(self.docs_name)
        if found is not None:
            raise StorageError(
                f"cannot make the search index of table {t!r}: the database has a table named "
                f"{found[0]}.{found[1]} already, which is not the index's",
                table=t,
            )
        found = self._relation(self.queue)
        if found is not None and self._columns(self.queue) != _PG_QUEUE_COLUMNS:
            raise StorageError(
                f"cannot make the search index of table {t!r}: the database has a table named "
                f"{found[0]}.{found[1]} already, which is not the index's (disable_search() leaves it)",
                table=t,
            )
        if self._function_state() == "other":
            raise StorageError(
                f"cannot make the search index of table {t!r}: the database has a function named "
                f"{unquote(self.function.rpartition('.')[2])!r} already, which is not the index's",
                table=t,
            )

    def _require_own_queue(self) -> str:
        """The queue as schema.name (quoted, as the search path finds it now); StorageError if another role owns it."""
        t = self.store.table_name
        found = self._relation(self.queue)
        assert found is not None  # made (or checked) in this transaction
        schema, name, owner, mine = found
        if not mine:
            raise StorageError(
                f"cannot make the search index of table {t!r}: {schema}.{name} is owned by role {owner!r}; the "
                "index's trigger function runs as the role that enables the index, so its queue must be that "
                "role's (enable the index as that role, or give the table to this one)",
                table=t,
            )
        return f"{quote(schema)}.{quote(name)}"

    def _create(self, conn: psycopg.Connection[Any]) -> None:
        """Make the (empty) table of indexed messages, its comment saying the index's version."""
        conn.execute(
            f"CREATE TABLE {self.docs} (id bigserial PRIMARY KEY, session_id text NOT NULL, user_id text NOT NULL, "
            "entity_id text NOT NULL, pos integer NOT NULL, message text NOT NULL, digest bigint NOT NULL, "
            "tsv tsvector NOT NULL)"
        )
        self._comment(conn)

    def _comment(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(f"COMMENT ON TABLE {self.docs} IS {literal(_PG_COMMENT + str(PG_INDEX_VERSION))}")

    def _create_indexes(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(f"CREATE INDEX ON {self.docs} USING gin (tsv)")
        conn.execute(f"CREATE INDEX ON {self.docs} (session_id)")

    def _ensure_indexes(self, conn: psycopg.Connection[Any]) -> None:
        """Make whichever of :meth:`_create_indexes`' indexes the (emptied) table lacks: version 1's GIN index
        went with its column, and one somebody dropped comes back when the index is made anew."""
        defined = [
            row[0]
            for row in conn.execute(
                "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = to_regclass(%s)", (self.docs,)
            ).fetchall()
        ]
        if not any(d.endswith("USING gin (tsv)") for d in defined):
            conn.execute(f"CREATE INDEX ON {self.docs} USING gin (tsv)")
        if not any(d.endswith("USING btree (session_id)") for d in defined):
            conn.execute(f"CREATE INDEX ON {self.docs} (session_id)")

    def _watch(self, conn: psycopg.Connection[Any]) -> None:
        """(Re)make the trigger function and put its triggers on the sessions table, and on no other table.

        The function only appends to the queue: a write to the sessions
        table never waits on the GIN index. ``SECURITY DEFINER`` with a fixed
        search path: it runs as the role enabling the index, so a writer
        needs no grant on the queue, and the queue is named with its schema,
        so a writer's search path neither breaks its writes nor sends them
        elsewhere. A TRUNCATE, which fires no row trigger, appends a NULL
        session id: the catch-up then indexes the table anew.
        """
        queue = self._require_own_queue()
        body = (
            "BEGIN "
            f"IF TG_OP = 'TRUNCATE' THEN INSERT INTO {queue} (session_id) VALUES (NULL); RETURN NULL; END IF; "
            f"IF TG_OP <> 'INSERT' THEN INSERT INTO {queue} (session_id) VALUES (OLD.session_id); END IF; "
            f"IF TG_OP <> 'DELETE' THEN INSERT INTO {queue} (session_id) VALUES (NEW.session_id); END IF; "
            "RETURN NULL; END"
        )
        tag, n = "$fn$", 0
        while tag in body:  # a schema name holding the quote's tag would end the body early
            n += 1
            tag = f"$fn{n}$"
        conn.execute(
            f"CREATE OR REPLACE FUNCTION {self.function}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER "
            f"SET search_path = pg_catalog, pg_temp AS {tag}{body}{tag}"
        )
        # Only triggers call it: a role that could attach it to a table of its own would write into the queue.
        conn.execute(f"REVOKE ALL ON FUNCTION {self.function}() FROM PUBLIC")
        # Off any table it is on: one renamed since (an archive) is not this table, its writes not this index's.
        for schema, table, trigger in self._triggers():
            conn.execute(f"DROP TRIGGER {quote(trigger)} ON {quote(schema)}.{quote(table)}")
        conn.execute(
            f"CREATE TRIGGER {self.trigger} AFTER INSERT OR UPDATE OR DELETE ON {self.table} "
            f"FOR EACH ROW EXECUTE FUNCTION {self.function}()"
        )
        conn.execute(
            f"CREATE TRIGGER {self.truncate_trigger} AFTER TRUNCATE ON {self.table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {self.function}()"
        )

    def _remake_checked(self, conn: psycopg.Connection[Any]) -> None:
        """:meth:`_remake`, a privilege the server refuses it raised as :class:`RemakeRefused`."""
        try:
            self._remake(conn)
        except Exception as exc:
            if not denied(exc):
                raise
            t = self.store.table_name
            raise RemakeRefused(
                f"making the search index of {t!r} anew was refused ({exc}); run enable_search() as a role that"
                " owns the tables the index's triggers are on, or disable_search() as the table's owner",
                table=t,
            ) from exc

    def _remake(self, conn: psycopg.Connection[Any]) -> None:
        """Make the index anew from the table as it is now, and watch it (inside the caller's locked transaction).

        For an index of an earlier version, or a sessions table dropped or
        renamed since and made again. The index's table is emptied (and a
        version 1 table altered to this version's columns), never dropped:
        its owner and the grants other roles have on it (a reader's SELECT)
        stay. The queue is kept (writers append to it meanwhile); the rows
        this transaction sees go, the rest are reindexed at the next catch-up.
        """
        conn.execute(f"TRUNCATE {self.docs}")
        if self._columns(self.docs_name) != _PG_DOC_COLUMNS[0]:
            # Version 1's text and generated tsvector go (its GIN index with it); the scan's tsvector comes.
            conn.execute(
                f"ALTER TABLE {self.docs} DROP COLUMN tsv, DROP COLUMN content, ADD COLUMN tsv tsvector NOT NULL"
            )
        self._ensure_indexes(conn)
        self._comment(conn)
        conn.execute(f"DELETE FROM {self.queue}")
        self._watch(conn)
        self._build(conn)

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
                    docs += docs_of(session.session_id, session, [], store.table_name)
                self._copy(conn, docs)

    def _copy(self, conn: psycopg.Connection[Any], docs: Iterable[Doc]) -> None:
        with (
            conn.cursor() as cur,
            cur.copy(
                f"COPY {self.docs} (session_id, user_id, entity_id, pos, message, digest, tsv) FROM STDIN"
            ) as copy,
        ):
            for sid, user, entity, pos, message, content, fingerprint in docs:
                # PostgreSQL text cannot hold NUL (the JSON spells one as an escape; an id may hold one).
                ids = [v.replace("\x00", "") for v in (sid, user, entity)]
                copy.write_row([*ids, pos, message, fingerprint, _tsvector(content)])

    def disable(self) -> None:
        """Drop the index's triggers (wherever they are), its function and its tables; what is another's stays."""
        with self.store.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.lock_key,))
            if self._function_state() == "ours":
                for schema, table, trigger in self._triggers():
                    conn.execute(f"DROP TRIGGER {quote(trigger)} ON {quote(schema)}.{quote(table)}")
                conn.execute(f"DROP FUNCTION {self.function}()")
            if self.enabled():
                conn.execute(f"DROP TABLE {self.docs}")
            if self._columns(self.queue) == _PG_QUEUE_COLUMNS:
                conn.execute(f"DROP TABLE {self.queue}")

    def catch_up(self) -> int:
        """As :meth:`SqliteIndex.catch_up`: the log's sessions reindexed (-1: all of them, the index made anew).

        The index is made anew when it is of an earlier version, when the
        sessions table was dropped or renamed and made again since (its
        triggers went with the old one), and after a TRUNCATE of it. Raises
        :class:`Unwatched` while the table is gone or where this role may
        not make an earlier version's index anew, :class:`Disabled` if the
        index was removed meanwhile: the caller scans.
        """
        store = self.store
        pending, watched, comment = self._state()
        if not self._current(watched, comment):
            if not store.table_exists():
                raise Unwatched(store.table_name)
            found = self._relation(self.docs_name)
            if found is not None and not found[3]:
                raise Unwatched(
                    f"{store.table_name}: this role may not make the search index anew", table=store.table_name
                )
            with store.transaction() as conn:
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.lock_key,))
                if not self.enabled():
                    raise Disabled(store.table_name)
                _, watched, comment = self._state()
                if not self._current(watched, comment):  # not done meanwhile by another process
                    self._remake_checked(conn)
            return -1
        if not pending:
            return 0
        with store.transaction() as conn:
            # One catch-up at a time; writers only append to the queue and never wait on this lock.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.lock_key,))
            if not self.enabled():
                raise Disabled(store.table_name)
            # The queue's rows as this statement sees them. Another writer's row with a lower id can commit
            # after it (ids are handed out at insert, not at commit): only the rows read here are deleted.
            queued = conn.execute(f"SELECT id, session_id FROM {self.queue}").fetchall()
            read = [queue_id for queue_id, _ in queued]
            if any(sid is None for _, sid in queued):
                # A TRUNCATE: every session it took is gone unlogged. The index is made again from the table.
                conn.execute(f"TRUNCATE {self.docs}")
                conn.execute(f"DELETE FROM {self.queue} WHERE id = ANY(%s)", (read,))
                self._build(conn)
                return -1
            ids = builtins.list(dict.fromkeys(sid for _, sid in queued))
            if ids:
                # As on SQLite, only the messages that changed go out and in.
                kept: dict[tuple[str, int], builtins.list[int]] = {}
                for row_id, sid, fingerprint in conn.execute(
                    f"SELECT id, session_id, digest FROM {self.docs} WHERE session_id = ANY(%s)", (ids,)
                ).fetchall():
                    kept.setdefault((sid, fingerprint), []).append(row_id)
                new: builtins.list[Doc] = []
                decode, select = store.row_codec.decode, f"{store.statements.select} WHERE {store.statements.id_column}"
                for chunk in in_chunks(ids, CHUNK):
                    rows = {raw[0]: raw for raw in store._query(f"{select} = ANY(%s)", (chunk,))}
                    for sid in chunk:
                        raw = rows.get(sid)
                        for doc in docs_of(sid, decode(raw) if raw is not None else None, [], store.table_name):
                            same = kept.get((sid, doc[6]))
                            if same:
                                same.pop()
                            else:
                                new.append(doc)
                gone = [row_id for row_ids in kept.values() for row_id in row_ids]
                if gone:
                    conn.execute(f"DELETE FROM {self.docs} WHERE id = ANY(%s)", (gone,))
                self._copy(conn, new)
            conn.execute(f"DELETE FROM {self.queue} WHERE id = ANY(%s)", (read,))
        return len(ids)

    def search(self, query: str, user_id: str | None, entity_id: str | None, limit: int) -> builtins.list[SearchHit]:
        """The hits of ``query``: the messages whose tsvector holds each of its words; the snippet made as the
        scan makes it (the words are the scan's)."""
        where, params = owner_filters(user_id, entity_id, "%s")
        rows = self.store._query(
            "SELECT session_id, user_id, entity_id, message, ts_rank(tsv, q) AS score "
            f"FROM {self.docs}, CAST(%s AS tsquery) AS q WHERE tsv @@ q{where} ORDER BY score DESC, id LIMIT %s",
            [_tsquery(query), *params, limit],
        )
        return hits_of(terms(query), rows)


__all__ = ["PG_INDEX_VERSION", "PostgresIndex"]
