"""The search index beside other programs: their tables, their roles, their TRUNCATE and RENAME, their disable."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from agno_storage import AgentSession, InvalidInputError, SqliteStorage, StorageError, search, search_index, search_pg
from agno_storage.search import terms
from tests.test_search import index_only

_ids = itertools.count()


def memory(*texts: str) -> dict[str, Any]:
    """agno 1.8.4's memory of one run whose user messages are ``texts``."""
    return {"runs": [{"run_id": "r0", "messages": [{"role": "user", "content": t, "created_at": 1} for t in texts]}]}


def found(hits: Any) -> list[tuple[str, str | None]]:
    return sorted((h.session_id, h.message.content) for h in hits)


def pg_triggers(store: Any) -> list[tuple[str, str]]:
    """(table, trigger) of every trigger in the database named as the store's index names its own."""
    with store.transaction() as conn:
        rows = conn.execute(
            "SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE %s "
            "ORDER BY 1, 2",
            (store.table_name + "_search%",),
        ).fetchall()
    return [(str(a), str(b)) for a, b in rows]


@pytest.fixture
def writer_role(pg_server: Any) -> Iterator[tuple[str, str]]:
    """A login role of its own (name, URL): another program's, given only what a test grants it."""
    role = f"search_writer_{next(_ids)}_{os.getpid()}"
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    yield role, pg_server.dsn.replace("://postgres@", f"://{role}@")
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def agno_storage_for(url: str, table: str, schema: str | None = "ai", **connect_args: Any) -> Any:
    """agno 1.8.4's own PostgresStorage on ``url`` (through SQLAlchemy and psycopg, as agno connects)."""
    import sqlalchemy
    from agno.storage.postgres import PostgresStorage as AgnoPostgresStorage

    engine = sqlalchemy.create_engine("postgresql+psycopg://" + url.partition("://")[2], connect_args=connect_args)
    return AgnoPostgresStorage(table_name=table, schema=schema, db_engine=engine, mode="agent")


def agno_session(session_id: str, text: str) -> Any:
    from agno.storage.session.agent import AgentSession as AgnoAgentSession

    return AgnoAgentSession(session_id=session_id, agent_id="a", user_id="u", memory=memory(text))


# --------------------------------------------------------------------------- tables of another's


@pytest.mark.parametrize("suffix", ["_search", "_search_queue"])
def test_disable_and_drop_never_take_a_table_of_anothers_by_an_index_name(make_store: Any, suffix: str) -> None:
    """A sessions table named "<t>_search" or "<t>_search_queue" is another table's business: t's
    disable_search() and drop() leave it and its rows, and t's enable_search() refuses to take it."""
    store = make_store("agent")
    other = make_store("agent", table_name=store.table_name + suffix)
    other.upsert(AgentSession(session_id="keep-me", user_id="u", agent_id="a", memory=memory("kestrels")))
    store.upsert(AgentSession(session_id="s1", user_id="u", agent_id="a", memory=memory("kestrels")))
    store.disable_search()
    with pytest.raises(StorageError, match=store.table_name + suffix):
        store.enable_search()
    assert not search_index.index_for(store).enabled()
    assert found(store.search("kestrels")) == [("s1", "kestrels")]  # scanned
    store.drop()
    assert other.read("keep-me") is not None
    assert [s.session_id for s in other.list()] == ["keep-me"]


@pytest.mark.parametrize("backend", ["postgres"])
def test_disable_leaves_a_function_of_anothers_by_the_index_functions_name(make_store: Any) -> None:
    """A trigger function named "<t>_search_log" that is not the index's (another program's, on its own
    table): enable_search() refuses it, and disable_search() drops neither it nor the trigger calling it."""
    store = make_store("agent")
    store.create()
    name = store.table_name
    mine = make_store("agent", table_name=name + "_mine")
    mine.create()
    with store.transaction() as conn:
        conn.execute(
            f'CREATE FUNCTION "ai"."{name}_search_log"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN '
            "NEW.agent_id := 'stamped'; RETURN NEW; END $$"
        )
        conn.execute(
            f'CREATE TRIGGER stamp BEFORE INSERT ON {mine.qualified_table} FOR EACH ROW EXECUTE FUNCTION "ai"."{name}_search_log"()'
        )
    with pytest.raises(StorageError, match="function"):
        store.enable_search()
    store.disable_search()
    store.drop()
    mine.upsert(AgentSession(session_id="m", agent_id="x"))
    stored = mine.read("m")
    assert stored is not None and stored.agent_id == "stamped"
    with mine.transaction() as conn:
        conn.execute(f"DROP TRIGGER stamp ON {mine.qualified_table}")
        conn.execute(f'DROP FUNCTION "ai"."{name}_search_log"()')


# --------------------------------------------------------------------------- writers of other roles


@pytest.mark.parametrize("backend", ["postgres"])
def test_an_agno_writer_granted_only_the_sessions_table_writes_and_is_indexed(
    make_store: Any, writer_role: tuple[str, str]
) -> None:
    """agno 1.8.4's PostgresStorage as a role given only the sessions table (as the change feed asks): with the
    index on, its upserts and deletes go on (agno logs a failed upsert and returns None: that session would be
    lost) and are logged, since the trigger function runs as the role that enabled the index."""
    role, url = writer_role
    store = make_store("agent")
    store.upsert(AgentSession(session_id="before", user_id="u", agent_id="a", memory=memory("kestrels before")))
    with store.transaction() as conn:
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA ai TO {}").format(sql.Identifier(role)))
        conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {store.qualified_table} TO {role}")
    store.enable_changes()
    store.enable_search()
    agno = agno_storage_for(url, store.table_name)
    try:
        assert agno.upsert(agno_session("app-1", "kestrels from agno")) is not None
        assert agno.upsert(agno_session("app-2", "owls from agno")) is not None
        assert found(store.search("kestrels")) == [("app-1", "kestrels from agno"), ("before", "kestrels before")]
        agno.delete_session("app-1")
        assert found(store.search("agno")) == [("app-2", "owls from agno")]
        with psycopg.connect(url) as conn:  # a plain INSERT of that role's
            conn.execute(
                f"INSERT INTO {store.qualified_table} (session_id, user_id, agent_id, memory, created_at) "
                "VALUES ('plain', 'u', 'a', %s, 1)",
                (json.dumps(memory("kestrels plainly")),),
            )
        assert [h.session_id for h in store.search("plainly")] == ["plain"]
        assert [c.session_id for c in store.changes()][-1] == "plain"
    finally:
        agno.db_engine.dispose()


@pytest.mark.parametrize("backend", ["postgres"])
def test_an_index_of_a_table_found_by_search_path_ignores_the_writers_search_path(
    make_store: Any, pg_server: Any
) -> None:
    """A store with schema=None (its table where the search path finds it, public here) and agno 1.8.4
    writing that table by its schema from a connection whose search path leaves public out."""
    store = make_store("agent", schema=None)
    store.upsert(AgentSession(session_id="before", user_id="u", agent_id="a", memory=memory("kestrels before")))
    store.enable_search()
    agno = agno_storage_for(pg_server.dsn, store.table_name, schema="public", options="-c search_path=pg_catalog")
    try:
        assert agno.upsert(agno_session("app", "kestrels from agno")) is not None
        assert found(store.search("kestrels")) == [("app", "kestrels from agno"), ("before", "kestrels before")]
    finally:
        agno.db_engine.dispose()


@pytest.mark.parametrize("backend", ["postgres"])
def test_an_index_an_earlier_build_made_is_made_anew_and_its_writers_need_no_grant(
    make_store: Any, writer_role: tuple[str, str]
) -> None:
    """An index of the earlier build (the text and a tsvector of PostgreSQL's parser, no version comment, its
    function run with the writer's rights, no TRUNCATE trigger): the first search makes it anew, after which
    it holds the scan's words, a writer granted only the sessions table writes, and a TRUNCATE is seen."""
    role, url = writer_role
    store = make_store("agent")
    store.upsert(AgentSession(session_id="s1", user_id="u", agent_id="a", memory=memory("kestrels one@example.com")))
    store.enable_search()
    index = search_pg.PostgresIndex(store)
    with store.transaction() as conn:  # what the earlier build made (DDL of build d5ed449)
        conn.execute(f"DROP TABLE {index.docs}")
        conn.execute(
            f"CREATE TABLE {index.docs} (id bigserial PRIMARY KEY, session_id text NOT NULL, "
            "user_id text NOT NULL, entity_id text NOT NULL, pos integer NOT NULL, message text NOT NULL, "
            "digest bigint NOT NULL, content text NOT NULL, "
            "tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED)"
        )
        conn.execute(
            f"INSERT INTO {index.docs} (session_id, user_id, entity_id, pos, message, digest, content) "
            "VALUES ('s1', 'u', 'a', 0, %s, 1, 'kestrels one@example.com')",
            (json.dumps({"role": "user", "content": "kestrels one@example.com"}),),
        )
        conn.execute(f"DROP TRIGGER {index.truncate_trigger} ON {store.qualified_table}")
        conn.execute(
            f"CREATE OR REPLACE FUNCTION {index.function}() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN "
            f"IF TG_OP <> 'INSERT' THEN INSERT INTO {index.queue} (session_id) VALUES (OLD.session_id); END IF; "
            f"IF TG_OP <> 'DELETE' THEN INSERT INTO {index.queue} (session_id) VALUES (NEW.session_id); END IF; "
            "RETURN NULL; END $fn$"
        )
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA ai TO {}").format(sql.Identifier(role)))
        conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {store.qualified_table} TO {role}")
    assert index.enabled()
    assert index.catch_up() == -1  # made anew
    assert index.catch_up() == 0
    assert found(store.search("one")) == [("s1", "kestrels one@example.com")]  # a word PostgreSQL's parser kept in
    agno = agno_storage_for(url, store.table_name)
    try:
        assert agno.upsert(agno_session("app", "kestrels from agno")) is not None
    finally:
        agno.db_engine.dispose()
    assert found(store.search("kestrels")) == [("app", "kestrels from agno"), ("s1", "kestrels one@example.com")]
    with store.transaction() as conn:
        conn.execute(f"TRUNCATE {store.qualified_table}")
    assert store.search("kestrels") == []


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_role_that_may_not_make_an_earlier_index_anew_scans(make_store: Any, writer_role: tuple[str, str]) -> None:
    """A role that may read the index but does not own it finds an index of an earlier version: it cannot make
    it anew (only its owner can), so its search scans, and answers."""
    from agno_storage.backends.postgres import PostgresStorage

    role, url = writer_role
    store = make_store("agent")
    store.upsert(AgentSession(session_id="s1", user_id="u", agent_id="a", memory=memory("kestrels one")))
    store.enable_search()
    index = search_pg.PostgresIndex(store)
    with store.transaction() as conn:
        conn.execute(f"COMMENT ON TABLE {index.docs} IS NULL")  # as an earlier build left it
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA ai TO {}").format(sql.Identifier(role)))
        for table in (store.qualified_table, index.docs, index.queue):
            conn.execute(f"GRANT SELECT ON {table} TO {role}")
    reader = PostgresStorage(store.table_name, db_url=url)
    try:
        store.upsert(AgentSession(session_id="s2", user_id="u", agent_id="a", memory=memory("kestrels two")))
        assert found(reader.search("kestrels")) == [("s1", "kestrels one"), ("s2", "kestrels two")]
    finally:
        reader.close()
    assert found(store.search("kestrels")) == [("s1", "kestrels one"), ("s2", "kestrels two")]  # its owner's remakes it
    assert index.catch_up() == 0


# --------------------------------------------------------------------------- TRUNCATE and RENAME


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_truncate_by_another_program_takes_its_sessions_out_of_the_index(make_store: Any, pg_server: Any) -> None:
    """TRUNCATE fires no row trigger: the index learns of it from a statement trigger and is made again from
    the table, so no deleted message is found, then or after later writes."""
    store = make_store("agent")
    store.upsert(AgentSession(session_id="s1", user_id="alice", agent_id="a", memory=memory("my secret diagnosis")))
    store.enable_search()
    with psycopg.connect(pg_server.dsn) as conn:
        conn.execute(f"TRUNCATE {store.qualified_table}")
    assert store.count() == 0
    assert store.search("secret", user_id="alice") == []
    store.upsert(AgentSession(session_id="s2", user_id="bob", agent_id="a", memory=memory("another secret")))
    assert found(store.search("secret")) == [("s2", "another secret")]
    with psycopg.connect(pg_server.dsn) as conn:  # emptied and written again in one transaction
        conn.execute(f"TRUNCATE {store.qualified_table}")
        conn.execute(
            f"INSERT INTO {store.qualified_table} (session_id, user_id, agent_id, memory, created_at) "
            "VALUES ('s3', 'carol', 'a', %s, 1)",
            (json.dumps(memory("a third secret")),),
        )
    assert found(store.search("secret")) == [("s3", "a third secret")]
    assert search_index.index_for(store).catch_up() == 0


@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.parametrize("made_again", [False, True], ids=["renamed", "renamed-and-made-again"])
def test_the_trigger_comes_off_a_table_renamed_behind_the_index(make_store: Any, made_again: bool) -> None:
    """ALTER TABLE t RENAME TO t_old (an archive) takes the trigger along. disable_search() and drop() take
    it off wherever it is (they failed on the function it calls), and an index of t made again watches t
    alone: the archive's writes are not logged."""
    store = make_store("agent")
    t = store.table_name
    store.upsert(AgentSession(session_id="s1", user_id="u", agent_id="a", memory=memory("hello kestrels")))
    store.enable_search()
    with store.transaction() as conn:
        conn.execute(f"ALTER TABLE {store.qualified_table} RENAME TO {t}_old")
        if made_again:
            conn.execute(f'CREATE TABLE {store.qualified_table} (LIKE "ai"."{t}_old" INCLUDING ALL)')
    store._forget_shape()
    archive = f'"ai"."{t}_old"'
    index = search_index.index_for(store)
    if made_again:
        store.upsert(AgentSession(session_id="s2", user_id="u", agent_id="a", memory=memory("hello owls")))
        assert found(store.search("hello")) == [("s2", "hello owls")]
        assert pg_triggers(store) == [(f"ai.{t}", f"{t}_search_log"), (f"ai.{t}", f"{t}_search_truncate")]
        with store.transaction() as conn:
            conn.execute(f"INSERT INTO {archive} (session_id, user_id, agent_id, created_at) VALUES ('z', 'u', 'a', 1)")
        assert index.catch_up() == 0  # the archive's write was not logged
        store.drop()  # the index with the table
    else:
        assert store.search("hello") == []  # scanned: no table t
        store.disable_search()
        store.disable_search()  # idempotent
    assert pg_triggers(store) == [] and not index.enabled()
    with store.transaction() as conn:  # the archive's writes go on, unlogged
        conn.execute(f"INSERT INTO {archive} (session_id, user_id, agent_id, created_at) VALUES ('y', 'u', 'a', 1)")
    store.drop()
    assert not store.table_exists()
    with store.transaction() as conn:
        conn.execute(f"DROP TABLE {archive}")


# --------------------------------------------------------------------------- queries, races, case


@pytest.mark.parametrize("indexed", [False, True], ids=["scan", "index"])
def test_a_query_that_is_not_valid_unicode_is_refused(make_store: Any, indexed: bool) -> None:
    """A lone surrogate is no character (no UTF-8 form): the query is refused as a user_id is, whether the
    search scans or asks an engine (which raised UnicodeEncodeError)."""
    store = make_store("agent")
    store.upsert(AgentSession(session_id="s1", user_id="u", agent_id="a", memory=memory("hello there")))
    if indexed:
        store.enable_search()
    with pytest.raises(InvalidInputError, match="valid Unicode") as info:
        store.search("hello \ud800")
    assert info.value.column == "query" and info.value.table == store.table_name
    assert found(store.search("hello")) == [("s1", "hello there")]


def test_a_query_of_many_words_is_answered_by_the_index(make_store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long text pasted as the query (20,000 words): the index finds the message holding every word, and
    none when one word is missing. PostgreSQL's tsquery of the words ANDed one after another nested 20,000
    deep, past the server's stack ("stack depth limit exceeded", a StorageError)."""
    store = make_store("agent")
    words = " ".join(f"w{i}" for i in range(20_000))
    store.upsert(AgentSession(session_id="s1", user_id="u", agent_id="a", memory=memory(words)))
    store.upsert(AgentSession(session_id="s2", user_id="u", agent_id="a", memory=memory("w1 w2 w3")))
    store.enable_search()
    index_only(monkeypatch)
    assert [h.session_id for h in store.search(words)] == ["s1"]
    assert store.search(words + " missing") == []
    assert sorted(h.session_id for h in store.search("w3 w2 w1")) == ["s1", "s2"]


def test_the_words_after_a_word_of_over_a_megabyte_are_indexed(
    make_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message holding one very long word (an image pasted as base64, 1.1 MB) and words after it: every
    word is found, as the scan finds it. PostgreSQL keeps such a word as a hash of it (33 bytes), but the
    tsvector's size was counted with the word's own length: past the 1,000,000 bytes a tsvector holds, it
    and every word after it were left out."""
    store = make_store("agent")
    blob = "iVBORw0KGgo" + "A" * 1_100_000
    store.upsert(AgentSession(session_id="s1", user_id="u", agent_id="a", memory=memory(f"look {blob} kestrel")))
    store.enable_search()
    index_only(monkeypatch)
    assert found(store.search("kestrel")) == found(store.search("look")) == [("s1", f"look {blob} kestrel")]
    assert [h.session_id for h in store.search(blob)] == ["s1"]


def test_a_message_holding_a_word_many_times_is_found_as_fast_as_another(make_store: Any) -> None:
    """A long message holding the searched word 20,000 times (a log, a tool's output) is found as a short one
    is. FTS5's snippet() costs the square of the matches in a message: 16,000 took 2.8 s, 300,000 took 14
    minutes. The index's snippet and marks are made as the scan makes them, in time proportional to the
    message: no statement the search runs asks the engine for a snippet or highlight."""
    statements: list[str] = []
    store = make_store("agent", tracer=lambda statement, params: statements.append(str(statement)))
    store.upsert(AgentSession(session_id="s1", user_id="u", agent_id="a", memory=memory("error " * 20_000)))
    store.upsert(AgentSession(session_id="s2", user_id="u", agent_id="a", memory=memory("one error [here]")))
    store.enable_search()
    statements.clear()
    hits = store.search("error")
    assert statements and not [s for s in statements if any(f in s for f in ("snippet(", "highlight(", "ts_headline("))]
    assert sorted(h.session_id for h in hits) == ["s1", "s2"]
    for hit in hits:
        assert hit.marks and all(hit.snippet[a:b] == "error" for a, b in hit.marks)
    short = next(h for h in hits if h.session_id == "s2")
    assert (short.snippet, short.marks) == ("one [error] [here]", ((5, 10),))


def test_a_scan_for_a_query_of_many_words_goes_through_each_message_once(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an index (or from a read-only store, as the web server's), a query of 20,000 words (a pasted
    text, a URL's worth) went through each message's words once per query word: 500 sessions took 6 s of
    CPU (2,000 took 25 s) where two words took 0.01 s. Each message's words are now gone through a few
    times whatever the query's length (counted on the list of them the scan makes)."""
    store = SqliteStorage("agent_sessions", db_file=tmp_path / "s.db")
    text = " ".join(f"w{i}" for i in range(40))  # the query's first 40 words: every message holds them
    with store.transaction():
        for i in range(500):
            store.upsert(AgentSession(session_id=f"s{i}", user_id="u", agent_id="a", memory=memory(text, "more")))
    passes = 0

    class Counted(list[str]):
        """A message's words: each count() or iteration is one pass through them."""

        def count(self, value: Any) -> int:
            nonlocal passes
            passes += 1
            return super().count(value)

        def __iter__(self) -> Iterator[str]:
            nonlocal passes
            passes += 1
            return super().__iter__()

    words_of = search.words_of
    monkeypatch.setattr(search, "words_of", lambda text: Counted(words_of(text)))
    hits = store.search(" ".join(f"w{i}" for i in range(20_000)))
    assert hits == []  # no message holds all 20,000 words
    assert 0 < passes <= 5 * 2 * 500, passes  # two messages a session; before: 20,000 passes for each
    assert {h.session_id for h in store.search(text, limit=1000)} == {f"s{i}" for i in range(500)}
    store.close()


@pytest.mark.parametrize("when", ["before-catch-up", "before-the-query"])
def test_an_index_another_process_disables_meanwhile_is_scanned(
    make_store: Any, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """Another process disables the index between this one finding it and using it: the search scans (it
    raised TableNotFoundError naming the sessions table, which is there), and nothing of the index is made
    again (on SQLite the missing triggers sent it into a rebuild)."""
    store = make_store("agent")
    other = make_store("agent", table_name=store.table_name)
    store.upsert(AgentSession(session_id="s1", user_id="u", agent_id="a", memory=memory("hello world")))
    store.enable_search()
    store.upsert(AgentSession(session_id="s2", user_id="u", agent_id="a", memory=memory("hello there")))  # queued
    cls = type(search_index.index_for(store))
    real_enabled, real_catch_up = cls.enabled, cls.catch_up
    done: list[bool] = []

    def disable_once() -> None:
        if not done:
            done.append(True)
            other.disable_search()

    def enabled(self: Any) -> bool:
        answer = real_enabled(self)
        if when == "before-catch-up" and self.store is store:
            disable_once()
        return answer

    def catch_up(self: Any) -> int:
        answer = real_catch_up(self)
        if when == "before-the-query":
            disable_once()
        return answer

    monkeypatch.setattr(cls, "enabled", enabled)
    monkeypatch.setattr(cls, "catch_up", catch_up)
    assert found(store.search("hello")) == [("s1", "hello world"), ("s2", "hello there")]
    monkeypatch.undo()
    assert done and not search_index.index_for(store).enabled()
    if isinstance(store, SqliteStorage):
        conn = sqlite3.connect(store.db_path)
        left = conn.execute("SELECT name FROM sqlite_master WHERE name LIKE ?", (store.table_name + "_search%",))
        assert left.fetchall() == []
        conn.close()
    else:
        assert pg_triggers(store) == []
    store.upsert(AgentSession(session_id="s3", user_id="u", agent_id="a", memory=memory("hello again")))
    assert len(store.search("hello")) == 3


def _fts5_folds(points: list[int]) -> dict[int, str]:
    """What FTS5 (unicode61, remove_diacritics 0, as the index makes it) folds "a" + each character to."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize = 'unicode61 remove_diacritics 0')")
    conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    conn.executemany("INSERT INTO t (rowid, x) VALUES (?, ?)", [(c, "a" + chr(c)) for c in points])
    folds = {int(doc): str(term) for doc, term in conn.execute("SELECT doc, term FROM v")}
    conn.close()
    return folds


def test_the_scan_folds_case_as_fts5_does() -> None:
    """Every letter FTS5 folds (final sigma, the Greek symbol forms, the micro sign, long s: lower() leaves
    these), the scan folds alike; the only letters the two fold apart are those FTS5 leaves as they are,
    letters cased since Unicode 6.1 (Cherokee, Georgian Mtavruli, ...)."""
    from agno_storage.search import words_of

    points = [c for c in range(0x20, 0x20000) if not 0xD800 <= c <= 0xDFFF and len(words_of("a" + chr(c))) == 1]
    fts5 = _fts5_folds(points)
    differ = {c for c in points if words_of("a" + chr(c)) != [fts5[c]]}
    assert all(fts5[c] == "a" + chr(c) for c in differ), sorted(hex(c) for c in differ if fts5[c] != "a" + chr(c))
    assert 0x13A0 in differ and 0x1C90 in differ and 0x130 not in differ
    assert terms("\u039b\u038c\u0393\u039f\u03a3 \u03c2 \u03d0 \u00b5 \u017f \u0130") == [
        "\u03bb\u03cc\u03b3\u03bf\u03c3",  # the capital sigma ending a word: a sigma, as all the others
        "\u03c3",
        "\u03b2",
        "\u03bc",
        "s",
        "\u0130",  # FTS5 leaves U+0130 as it is, where lower() makes it two characters
    ]


def test_the_scan_folds_a_whole_text_as_it_folds_each_word() -> None:
    """Folded as a whole (no U+0130 in it), every character but U+0130 stays one character of its kind: a
    separator, a letter, an accent FTS5 drops first in a word. So the whole text folded has the same words at
    the same places as the text, each folded as on its own, and a snippet marks the same words."""
    from agno_storage import search

    points = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and c != 0x130]
    text = "".join(f" {c}a{c}\u03a3" for c in points)  # each first in a word, inside one, before a capital sigma
    whole = search._fold_text(text)
    assert whole is not None and len(whole) == len(text)
    spans = list(search._word_spans(text))
    assert list(search._word_spans(whole)) == spans
    assert search.words_of(text) == [search._fold(text[a:b]) for a, b in spans]
    upper, final = "\u039b\u038c\u0393\u039f\u03a3", "\u03bb\u03cc\u03b3\u03bf\u03c2"  # a word ending in a sigma
    sample = f"{upper} caf\u00e9 \u03a3\u0391\u03a3 \u00b5 \u017f \u03d0, {final}"
    marked = f"\ufdd0{upper}\ufdd1 caf\u00e9 \u03a3\u0391\u03a3 \u00b5 \u017f \u03d0, \ufdd0{final}\ufdd1"
    assert search.snippet(terms(final), sample) == marked
    assert search._fold_text("\u0130stanbul") is None


@pytest.mark.parametrize("indexed", [False, True], ids=["scan", "index"])
def test_a_final_sigma_is_a_sigma_to_the_scan_as_to_the_index(tmp_path: Any, indexed: bool) -> None:
    """Greek words typed with a sigma where the text has a final sigma (or the reverse) are found, by the scan as
    by FTS5."""
    store = SqliteStorage("agent_sessions", db_file=tmp_path / "s.db")
    texts = [
        "\u03bf \u03bb\u03cc\u03b3\u03bf\u03c2 \u03b5\u03af\u03bd\u03b1\u03b9",
        "ΛΌΓΟΣ ΕΊΝΑΙ",
        "5 \u00b5s",
        "\u03d0eta",
    ]
    store.upsert(AgentSession(session_id="s1", user_id="u", agent_id="a", memory=memory(*texts)))
    if indexed:
        store.enable_search()
    for query in ("λόγοσ", "λόγος", "ΛΌΓΟΣ", "λόγοσ είναι"):
        assert sorted(h.message.content or "" for h in store.search(query)) == sorted(texts[:2])
    assert [h.message.content for h in store.search("\u03bcs")] == [texts[2]]  # a mu finds a micro sign
    assert [h.message.content for h in store.search("\u03b2eta")] == [texts[3]]  # a beta its symbol form
    for hit in store.search("λόγοσ"):
        assert [hit.snippet[a:b] for a, b in hit.marks] in (["ΛΌΓΟΣ"], ["λόγος"])
    store.close()


# --------------------------------------------------------------------------- the PostgreSQL index's words


#: Texts where PostgreSQL's own parser splits otherwise than FTS5 and the scan (one word of an address, a host, a
#: file or a version; a quote, dash or ellipsis kept in a word under the C locale; a newer emoji or a private-use
#: character dropped by it), letters whose case Python folds otherwise than FTS5, and words past 2 KB.
TRICKY_TEXTS = [
    "write to alice@example.com",
    "see api.openai.com docs",
    "open report.pdf now",
    "run ./build.sh and upgrade to v1.2.3",
    "https://github.com/agno-agi/agno/issues",
    "pi is 3.14, snake_case name, C:\\Users\\bob\\file.txt, call foo.bar()",
    "He said \u201ckestrel\u201d twice",
    "kestrel\u2014falcon",
    "wait for the kestrel\u2026",
    "the kestrel\u2019s nest, \u00abkestrel\u00bb en fran\u00e7ais",
    "thanks \U0001f917 friend",
    "thanks friend",
    "code \ue000 here",
    "code here",
    "\u039b\u038c\u0393\u039f\u03a3 and \u00b5s, Stra\u00dfe, \u0130stanbul, \u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "alpha " + "x" * 3000,
    "beta " + "\u00e9" * 1100,
    "it's O'Brien's back\\slash",
]
TRICKY_QUERIES = [
    "alice",
    "alice@example.com",
    "example",
    "openai",
    "api.openai.com",
    "report",
    "report.pdf",
    "build",
    "v1",
    "v1.2.3",
    "issues",
    "14",
    "case",
    "bob",
    "foo",
    "foo.bar",
    "kestrel",
    "falcon",
    "kestrel\u2019s",
    "thanks \U0001f917",
    "\U0001f917",
    "code \ue000",
    "\u03bb\u03cc\u03b3\u03bf\u03c3",
    "\u03bcs",
    "stra\u00dfe",
    "\u0130stanbul",
    "istanbul",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "x" * 3000,
    "alpha " + "x" * 3000,
    "beta " + "x" * 3000,
    "\u00e9" * 1100,
    "\u00c9" * 1100,
    "beta " + "z" * 2100,
    "o'brien's",
    "s",
    "back\\slash",
]


def _answers(store: Any) -> dict[str, list[tuple[str, str | None, str, tuple[tuple[int, int], ...]]]]:
    return {
        q: sorted((h.session_id, h.message.content, h.snippet, h.marks) for h in store.search(q, limit=100))
        for q in TRICKY_QUERIES
    }


@pytest.mark.parametrize("backend", ["postgres"])
def test_the_postgres_index_finds_what_the_scan_finds_in_ordinary_text(
    make_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PostgreSQL index holds each message's words as the scan makes them, so it finds the same messages
    (with the same snippets): PostgreSQL's parser kept "alice@example.com" one word, a quote or dash in the
    word beside it, and dropped query words it could not hold (past 2 KB, an emoji), finding messages
    without them."""
    store = make_store("agent")
    for i, text in enumerate(TRICKY_TEXTS):
        store.upsert(AgentSession(session_id=f"s{i}", user_id="u", agent_id="a", memory=memory(text)))
    scanned = _answers(store)
    store.enable_search()
    index_only(monkeypatch)
    assert _answers(store) == scanned
    assert [sid for sid, *_ in scanned["alice"]] == ["s0"]
    assert [sid for sid, *_ in scanned["thanks \U0001f917"]] == ["s10"]
    assert [sid for sid, *_ in scanned["alpha " + "x" * 3000]] == ["s15"]
    assert scanned["beta " + "x" * 3000] == []


@pytest.mark.parametrize("backend", ["postgres"])
def test_the_postgres_index_finds_what_the_scan_finds_in_random_text(
    make_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Texts of letters, digits, punctuation, accents, emoji and symbols of every age, and every word of them
    as a query, with a word of another text: the index and the scan give the same messages."""
    import random

    rng = random.Random(7)
    alphabet = list("abcXYZ019 .-'@/_\\\u2019\u2014\u2026\u00e9\u00c9\u0301\u03a3\u03c2\u03c3\u0130\u4e2d\ue000")
    alphabet += ["\U0001f600", "\U0001f917", "\u00b5", "\u017f", "\u13a0", "\uab70", " ", " "]
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))) for _ in range(60)]
    store = make_store("agent")
    for i, text in enumerate(texts):
        store.upsert(AgentSession(session_id=f"r{i}", user_id="u", agent_id="a", memory=memory(text)))
    words = sorted({w for text in texts for w in text.split()})
    queries = [*words, *(f"{a} {b}" for a, b in zip(words, reversed(words), strict=True))]
    scanned = {q: sorted(h.session_id for h in store.search(q, limit=100)) for q in queries}
    store.enable_search()
    index_only(monkeypatch)
    indexed = {q: sorted(h.session_id for h in store.search(q, limit=100)) for q in queries}
    assert {q: v for q, v in indexed.items() if v != scanned[q]} == {}
    assert sum(map(bool, scanned.values())) > len(words) // 2


@pytest.mark.parametrize("backend", ["postgres"])
def test_the_postgres_index_holds_every_word_of_a_long_message(
    make_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message of more words than a tsvector keeps positions for (16,383), a word more often than it keeps
    positions of one (256): each word is indexed, whatever its positions, and found as the scan finds it."""
    filler = " ".join(f"w{i % 5000}" for i in range(20_000))
    text = "kestrel " * 300 + filler + " owl"
    store = make_store("agent")
    store.upsert(AgentSession(session_id="long", user_id="u", agent_id="a", memory=memory(text, "kestrel and owl")))
    store.enable_search()
    index_only(monkeypatch)
    assert found(store.search("kestrel owl")) == [("long", "kestrel and owl"), ("long", text)]
    assert [h.message.content for h in store.search("w4999 owl")] == [text]
    assert store.search("w5000") == []


@pytest.mark.parametrize("backend", ["postgres"])
def test_the_index_of_a_table_whose_derived_names_postgres_cuts_is_found_and_removed(make_store: Any) -> None:
    """A table name of 54 bytes: PostgreSQL cuts "<t>_search_truncate" and "<t>_search_queue" (in the function)
    at 63 bytes. The index still knows its triggers and function: it is not made anew on every search, a
    TRUNCATE is seen, and disable_search() removes it all."""
    store = make_store("agent", table_name="k" * 54)
    store.upsert(AgentSession(session_id="s1", user_id="u", agent_id="a", memory=memory("kestrels one")))
    store.enable_search()
    index = search_index.index_for(store)
    assert index.catch_up() == 0
    store.upsert(AgentSession(session_id="s2", user_id="u", agent_id="a", memory=memory("kestrels two")))
    assert index.catch_up() == 1
    with store.transaction() as conn:
        conn.execute(f"TRUNCATE {store.qualified_table}")
    assert store.search("kestrels") == []
    store.disable_search()
    assert pg_triggers(store) == [] and not index.enabled()
    store.enable_search()
    store.drop()


def make_version_1_index(store: Any, *texts: tuple[str, str]) -> Any:
    """The index build 1fba516 made (version 1: its statements, as it ran them), holding ``texts`` as
    (session_id, text) of user "u" and agent "a"; its PostgresIndex."""
    index = search_pg.PostgresIndex(store)
    store.create()
    with store.transaction() as conn:
        conn.execute(
            f"CREATE TABLE {index.docs} (id bigserial PRIMARY KEY, session_id text NOT NULL, "
            "user_id text NOT NULL, entity_id text NOT NULL, pos integer NOT NULL, message text NOT NULL, "
            "digest bigint NOT NULL, content text NOT NULL, "
            "tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED)"
        )
        conn.execute(f"CREATE TABLE IF NOT EXISTS {index.queue} (id bigserial PRIMARY KEY, session_id text)")
        # The queue named in full: PostgreSQL cuts a name past 63 bytes only when the function runs.
        conn.execute(
            f"CREATE OR REPLACE FUNCTION {index.function}() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN "
            f"IF TG_OP <> 'INSERT' THEN INSERT INTO {index.queue} (session_id) VALUES (OLD.session_id); END IF; "
            f"IF TG_OP <> 'DELETE' THEN INSERT INTO {index.queue} (session_id) VALUES (NEW.session_id); END IF; "
            "RETURN NULL; END $fn$"
        )
        trigger = sql.Identifier(store.table_name + "_search_log").as_string(conn)
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {store.qualified_table}")
        conn.execute(
            f"CREATE TRIGGER {trigger} AFTER INSERT OR UPDATE OR DELETE ON {store.qualified_table} "
            f"FOR EACH ROW EXECUTE FUNCTION {index.function}()"
        )
        for session_id, text in texts:
            conn.execute(
                f"INSERT INTO {index.docs} (session_id, user_id, entity_id, pos, message, digest, content) "
                "VALUES (%s, 'u', 'a', 0, %s, 1, %s)",
                (session_id, json.dumps({"role": "user", "content": text}), text),
            )
        conn.execute(f"CREATE INDEX ON {index.docs} USING gin (tsv)")
        conn.execute(f"CREATE INDEX ON {index.docs} (session_id)")
    return index


@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.parametrize("length", [51, 54])
def test_a_version_1_index_of_a_long_table_name_is_disabled_whole(make_store: Any, length: int) -> None:
    """Version 1's trigger function names the queue in full, where this build's names it as PostgreSQL cut it
    (past 63 bytes, a table name of 51 bytes or more): it is still the index's. disable_search() takes it and
    its trigger with the tables, so later writes succeed, and enable_search() makes the index again."""
    store = make_store("agent", table_name="v" * length)
    store.upsert(AgentSession(session_id="s1", user_id="u", agent_id="a", memory=memory("kestrels one")))
    index = make_version_1_index(store, ("s1", "kestrels one"))
    store.disable_search()
    assert pg_triggers(store) == [] and not index.enabled()
    store.upsert(AgentSession(session_id="s2", user_id="u", agent_id="a", memory=memory("kestrels two")))
    store.enable_search()
    assert found(store.search("kestrels")) == [("s1", "kestrels one"), ("s2", "kestrels two")]


@pytest.mark.parametrize("backend", ["postgres"])
def test_drop_takes_a_version_1_index_of_a_long_table_name_whole(make_store: Any) -> None:
    """drop() takes version 1's trigger function of a 52-byte table name, which would otherwise be left
    behind and refuse every later enable_search() on a table of that name."""
    store = make_store("agent", table_name="w" * 52)
    store.upsert(AgentSession(session_id="s1", user_id="u", agent_id="a", memory=memory("kestrels one")))
    make_version_1_index(store, ("s1", "kestrels one"))
    store.drop()
    store.create()
    store.upsert(AgentSession(session_id="s2", user_id="u", agent_id="a", memory=memory("kestrels two")))
    store.enable_search()
    assert found(store.search("kestrels")) == [("s2", "kestrels two")]


def grant_reader(store: Any, role: str, *tables: str) -> None:
    """Let ``role`` use schema ai and SELECT from ``tables`` (quoted names)."""
    with store.transaction() as conn:
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA ai TO {}").format(sql.Identifier(role)))
        for table in tables:
            conn.execute(f"GRANT SELECT ON {table} TO {role}")


def may_read(store: Any, role: str, table: str) -> bool:
    with store.transaction() as conn:
        row = conn.execute("SELECT has_table_privilege(%s, %s, 'SELECT')", (role, table)).fetchone()
    return bool(row and row[0])


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_readers_grant_on_the_index_outlives_the_sessions_table_made_again(
    make_store: Any, writer_role: tuple[str, str]
) -> None:
    """Another program makes the sessions table again (copy, drop, rename): the index is made anew, and a
    role granted SELECT on it keeps that grant and searches as before."""
    from agno_storage.backends.postgres import PostgresStorage

    role, url = writer_role
    store = make_store("agent")
    store.upsert(AgentSession(session_id="s1", user_id="u", agent_id="a", memory=memory("kestrels one")))
    store.enable_search()
    index = search_pg.PostgresIndex(store)
    grant_reader(store, role, store.qualified_table, index.docs, index.queue)
    t = store.table_name
    with store.transaction() as conn:
        conn.execute(f'CREATE TABLE "ai"."{t}_new" (LIKE {store.qualified_table} INCLUDING ALL)')
        conn.execute(f'INSERT INTO "ai"."{t}_new" SELECT * FROM {store.qualified_table}')
        conn.execute(f"DROP TABLE {store.qualified_table}")
        conn.execute(f'ALTER TABLE "ai"."{t}_new" RENAME TO "{t}"')
        conn.execute(f"GRANT SELECT ON {store.qualified_table} TO {role}")
    assert index.catch_up() == -1  # made anew
    assert may_read(store, role, index.docs)
    reader = PostgresStorage(t, db_url=url)
    try:
        assert found(reader.search("kestrels")) == [("s1", "kestrels one")]
    finally:
        reader.close()


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_readers_grant_on_a_version_1_index_outlives_its_upgrade(
    make_store: Any, writer_role: tuple[str, str]
) -> None:
    """A version 1 index is brought to this version in place: a role granted SELECT on it keeps that grant,
    and the index answers with the scan's words."""
    from agno_storage.backends.postgres import PostgresStorage

    role, url = writer_role
    store = make_store("agent")
    store.upsert(AgentSession(session_id="s1", user_id="u", agent_id="a", memory=memory("kestrels one@example.com")))
    index = make_version_1_index(store, ("s1", "kestrels one@example.com"))
    grant_reader(store, role, store.qualified_table, index.docs, index.queue)
    assert index.catch_up() == -1  # made anew
    assert index.catch_up() == 0
    assert may_read(store, role, index.docs)
    reader = PostgresStorage(store.table_name, db_url=url)
    try:
        assert found(reader.search("one")) == [("s1", "kestrels one@example.com")]
    finally:
        reader.close()
    store.upsert(AgentSession(session_id="s2", user_id="u", agent_id="a", memory=memory("kestrels two")))
    assert found(store.search("kestrels")) == [("s1", "kestrels one@example.com"), ("s2", "kestrels two")]


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_role_the_server_refuses_the_index_scans(make_store: Any, writer_role: tuple[str, str]) -> None:
    """A role granted the sessions table and not the index's tables: its search scans, and answers."""
    from agno_storage.backends.postgres import PostgresStorage

    role, url = writer_role
    store = make_store("agent")
    store.upsert(AgentSession(session_id="s1", user_id="u", agent_id="a", memory=memory("kestrels one")))
    store.enable_search()
    grant_reader(store, role, store.qualified_table)
    reader = PostgresStorage(store.table_name, db_url=url)
    try:
        assert found(reader.search("kestrels")) == [("s1", "kestrels one")]
        store.upsert(AgentSession(session_id="s2", user_id="u", agent_id="a", memory=memory("kestrels two")))
        assert found(reader.search("kestrels")) == [("s1", "kestrels one"), ("s2", "kestrels two")]
    finally:
        reader.close()


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_remake_the_server_refuses_is_an_error_not_a_quiet_scan(
    make_store: Any, writer_role: tuple[str, str]
) -> None:
    """A role that enabled the index on a table another role owns (granted ALL, TRIGGER included): when the
    owner renames the table to an archive and makes it again, the index must take its trigger off the archive,
    which only the archive's owner may. That refusal is the caller's error (RemakeRefused), not a reason to scan
    quietly: the index would stay out of date, its trigger feeding the queue from the archive."""
    from agno_storage.backends.postgres import PostgresStorage
    from agno_storage.search_index import RemakeRefused

    role, url = writer_role
    owner = make_store("agent")
    owner.upsert(AgentSession(session_id="s1", user_id="u", agent_id="a", memory=memory("kestrels one")))
    t = owner.table_name
    with owner.transaction() as conn:
        conn.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA ai TO {}").format(sql.Identifier(role)))
        conn.execute(f"GRANT ALL ON {owner.qualified_table} TO {role}")
    enabler = PostgresStorage(t, db_url=url, allow_owner_change=True)
    try:
        enabler.enable_search()
        assert found(enabler.search("kestrels")) == [("s1", "kestrels one")]
        with owner.transaction() as conn:
            conn.execute(f'CREATE TABLE "ai"."{t}_new" (LIKE {owner.qualified_table} INCLUDING ALL)')
            conn.execute(f'INSERT INTO "ai"."{t}_new" SELECT * FROM {owner.qualified_table}')
            conn.execute(f'ALTER TABLE {owner.qualified_table} RENAME TO "{t}_archive"')
            conn.execute(f'ALTER TABLE "ai"."{t}_new" RENAME TO "{t}"')
            conn.execute(f"GRANT ALL ON {owner.qualified_table} TO {role}")
        with pytest.raises(RemakeRefused, match="anew was refused"):
            enabler.search("kestrels")
    finally:
        enabler.close()
        with owner.transaction() as conn:
            conn.execute(f'DROP TABLE IF EXISTS "ai"."{t}_archive"')


@pytest.mark.parametrize("backend", ["postgres"])
def test_an_index_made_anew_gets_back_the_indexes_somebody_dropped(make_store: Any) -> None:
    """The index's table is emptied, not dropped, when the index is made anew (the sessions table made again):
    its GIN and session_id indexes, dropped meanwhile by somebody, are made again with it."""
    store = make_store("agent")
    store.upsert(AgentSession(session_id="s1", user_id="u", agent_id="a", memory=memory("kestrels one")))
    store.enable_search()
    index = search_pg.PostgresIndex(store)

    def indexes() -> list[str]:
        with store.transaction() as conn:
            rows = conn.execute(
                "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = to_regclass(%s)", (index.docs,)
            ).fetchall()
        return sorted(r[0].rpartition(" USING ")[2] for r in rows)

    assert indexes() == ["btree (id)", "btree (session_id)", "gin (tsv)"]
    t = store.table_name
    with store.transaction() as conn:
        for (name,) in conn.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = to_regclass(%s) AND NOT indisprimary",
            (index.docs,),
        ).fetchall():
            conn.execute(f"DROP INDEX {name}")
        conn.execute(f'CREATE TABLE "ai"."{t}_new" (LIKE {store.qualified_table} INCLUDING ALL)')
        conn.execute(f'INSERT INTO "ai"."{t}_new" SELECT * FROM {store.qualified_table}')
        conn.execute(f"DROP TABLE {store.qualified_table}")
        conn.execute(f'ALTER TABLE "ai"."{t}_new" RENAME TO "{t}"')
    assert indexes() == ["btree (id)"]
    assert index.catch_up() == -1  # made anew
    assert indexes() == ["btree (id)", "btree (session_id)", "gin (tsv)"]
    assert found(store.search("kestrels")) == [("s1", "kestrels one")]
