"""The search index against the scan: random writes by every kind of writer, each search answered alike.

The index's one promise (docs/search.md): with it, ``search()`` gives the
hits the scan gives, for every user and entity scope, whenever a caller
asks, on both engines. Hypothesis draws a run of operations: this store's
upserts (owner changes allowed), ``upsert_many`` and deletes; a second
store on the same table; plain SQL by another program (owner, entity and
conversation rewritten, rows deleted, a session renamed onto another, the
table dropped); a Go Agent's runs (``append_run``), their rows rewritten by
plain SQL and their table dropped (and made again), after the index is
enabled on a few sessions. Interleaved are searches by
a user of every kind (``None``, ``""``, owners, a stranger) for words
with punctuation, letters that fold (``ß``, ``İ``, final sigma), accents
composed and not, CJK and FTS syntax; each is compared, hit for hit
(session, owner, entity, message, snippet, marks; not the score, which
each engine makes its own way), with the scan of the same moment; at the
end each word written is searched for by every user.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import random
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as hs

from agno_storage import AgentSession, SearchHit, SqliteStorage, agent_runs
from agno_storage import search as search_module
from agno_storage.backends.base import BaseStorage
from agno_storage.conversation import make_converter
from agno_storage.errors import StorageError

CONVERTER = make_converter()
TABLES = itertools.count()
WORDS = [
    "kestrel",
    "Kestrel,",
    "owl's",
    "ÉCOLE",
    "école",
    "e\u0301cole",
    "straße",
    "STRASSE",
    "İstanbul",
    "istanbul",
    "ΣΟΦΟΣ",
    "σοφος",
    "日本語",
    "東京タワー",
    "AND",
    "NEAR(x",
    '"quoted"',
    "star*",
    "col:on",
    "^caret",
    "thanks🤗",
    "ﬁne",
    "x-y",
    "user@example.com",
]
QUERY_WORDS = ["KESTREL", "école", "strasse", "istanbul", "σοφοσ", "日本語", "and", "quoted", "x", "fine"]
SESSIONS = ["s0", "s1", "s2", "s3"]
USERS = ["alice", "bob", "", None]
ENTITIES = ["a1", "a2", "", None]

texts = hs.lists(hs.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join)
sessions = hs.sampled_from(SESSIONS)
users = hs.sampled_from(USERS)
entities = hs.sampled_from(ENTITIES)
conversations = hs.lists(hs.tuples(texts, texts), min_size=1, max_size=2)
upserts = hs.tuples(sessions, users, entities, conversations)
# Words as a user types them: other letter case, accents composed or not, punctuation, syntax.
queries = hs.lists(hs.sampled_from(WORDS + QUERY_WORDS), min_size=1, max_size=2).map(" ".join)
search_ops = hs.tuples(hs.just("search"), queries, hs.sampled_from([*USERS, "carol"]), entities)
operations = hs.one_of(
    hs.tuples(hs.just("upsert"), upserts),
    hs.tuples(hs.just("other_store"), upserts),
    hs.tuples(hs.just("upsert_many"), hs.lists(upserts, min_size=1, max_size=3)),
    hs.tuples(hs.just("delete"), sessions, hs.sampled_from(["alice", "bob", None])),
    hs.tuples(hs.just("raw_owner"), sessions, users),
    hs.tuples(hs.just("raw_entity"), sessions, entities),
    hs.tuples(hs.just("raw_memory"), sessions, conversations),
    hs.tuples(hs.just("raw_delete"), sessions),
    hs.tuples(hs.just("raw_rename"), sessions, sessions),
    hs.just(("drop",)),
    hs.tuples(hs.just("go"), sessions, users, texts, texts),
    hs.tuples(hs.just("drop_runs"), hs.booleans()),
    hs.tuples(hs.just("go_raw"), hs.integers(0, 9), hs.sampled_from(["user_id", "session_id", "delete"]), users),
    search_ops,
    search_ops,
)


def memory(turns: list[tuple[str, str]]) -> dict[str, Any]:
    """agno 1.8.4's memory of an agent that ran ``turns`` (history replayed, as agno does)."""
    runs: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    for i, (question, answer) in enumerate(turns):
        now = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        runs.append({"run_id": f"r{i}", "messages": [*history, *now]})
        history = [{**m, "from_history": True} for m in [*history, *now]]
    return {"runs": runs}


def session(sid: str, user: str | None, entity: str | None, turns: list[tuple[str, str]]) -> AgentSession:
    return AgentSession(session_id=sid, user_id=user, agent_id=entity, memory=memory(turns))


def hits(call: Any) -> list[str] | str:
    """The hits of ``call()`` as comparable text, in no order; or the error it raised."""
    try:
        found = call()
    except StorageError as exc:
        return f"{type(exc).__name__}: {exc}"
    return sorted(
        json.dumps(
            [h.session_id, h.user_id, h.entity_id, CONVERTER.unstructure(h.message), h.snippet, list(h.marks)],
            sort_keys=True,
        )
        for h in found
    )


def strings(value: Any) -> Iterator[str]:
    """Every str in ``value``, an operation's nested tuples and lists."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from strings(item)


class Writers:
    """This store, a second store on its table, and another program's plain SQL, on one engine."""

    def __init__(self, store: BaseStorage, other: BaseStorage, raw: Any) -> None:
        self.store, self.other, self.raw = store, other, raw
        self.go = isinstance(store, SqliteStorage)
        #: Every word written so far, in the order first written.
        self.written: dict[str, None] = {}

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> None:
        """``statement`` by another program; one the table refuses (not there, dropped; a NULL owner where the
        column is NOT NULL) is no write."""
        try:
            self.raw(statement, params)
        except Exception as exc:
            if not any(refusal in str(exc) for refusal in ("no such table", "does not exist", "NOT NULL")):
                raise

    def apply(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        self.written.update(dict.fromkeys(w for text in strings(op) for w in text.split() if w in WORDS))
        if kind == "upsert":
            self.store.upsert(session(*op[1]))
        elif kind == "other_store":
            try:
                self.other.upsert(session(*op[1]))
            except StorageError:
                pass  # another user's session: refused, nothing written
        elif kind == "upsert_many":
            self.store.upsert_many(list({s[0]: session(*s) for s in op[1]}.values()))
        elif kind == "delete":
            self.store.delete(op[1], op[2])
        elif kind == "raw_owner":
            self.sql("UPDATE {t} SET user_id = ? WHERE session_id = ?", (op[2], op[1]))
        elif kind == "raw_entity":
            self.sql("UPDATE {t} SET agent_id = ? WHERE session_id = ?", (op[2], op[1]))
        elif kind == "raw_memory":
            self.sql("UPDATE {t} SET memory = ? WHERE session_id = ?", (json.dumps(memory(op[2])), op[1]))
        elif kind == "raw_delete":
            self.sql("DELETE FROM {t} WHERE session_id = ?", (op[1],))
        elif kind == "raw_rename" and op[1] != op[2]:
            self.sql("DELETE FROM {t} WHERE session_id = ?", (op[2],))
            self.sql("UPDATE {t} SET session_id = ? WHERE session_id = ?", (op[2], op[1]))
        elif kind == "drop":
            self.sql("DROP TABLE {t}")
        elif kind == "go" and self.go:
            self.store.append_run(op[1], op[3], op[4], user_id=op[2])
        elif kind == "go_raw" and self.go:
            self.go_raw(*op[1:])
        elif kind == "drop_runs" and self.go:
            # A Go program drops agent_runs, and maybe makes it again (upstream's DDL).
            self.sql("DROP TABLE agent_runs")
            for statement in agent_runs.create_statements("agent_sessions") if op[1] else []:
                self.sql(statement)

    def go_raw(self, k: int, column: str, user: str | None) -> None:
        """Another program rewrites (or deletes) the ``k``-th run Go wrote, if there is one."""
        ids = [r[0] for r in self.store._query("SELECT id FROM agent_runs ORDER BY rowid", ())] if self.runs() else []
        if not ids:
            return
        run = ids[k % len(ids)]
        if column == "delete":
            self.sql("DELETE FROM agent_runs WHERE id = ?", (run,))
        elif column == "user_id":
            self.sql("UPDATE agent_runs SET user_id = ? WHERE id = ?", (user, run))
        else:
            self.sql("UPDATE agent_runs SET session_id = ? WHERE id = ?", (SESSIONS[k % len(SESSIONS)], run))

    def close(self) -> None:
        self.store.close()
        self.other.close()

    def runs(self) -> bool:
        return bool(self.store._query("SELECT 1 FROM sqlite_master WHERE name = 'agent_runs'", ()))


def open_writers(backend: str, target: str, table: str) -> Writers:
    """The writers of ``table`` in the SQLite file or on the PostgreSQL server ``target``: this store (owner
    changes allowed), a second store, and another program's plain SQL."""
    if backend == "sqlite":
        store = SqliteStorage(table, db_file=target, allow_owner_change=True)
        # Another store on the table, spelled in other letters as SQLite allows.
        other = SqliteStorage(table.upper(), db_file=target)

        def raw(statement: str, params: tuple[Any, ...]) -> None:
            with sqlite3.connect(target, timeout=30) as conn:
                conn.execute(statement.format(t=f'"{table}"'), params)
            conn.close()

        return Writers(store, other, raw)
    from agno_storage.backends.postgres import PostgresStorage

    pg = PostgresStorage(table, db_url=target, allow_owner_change=True)
    pg_other = PostgresStorage(table, db_url=target)

    def pg_raw(statement: str, params: tuple[Any, ...]) -> None:
        with pg_other.transaction() as conn:
            conn.execute(statement.format(t=pg.qualified_table).replace("?", "%s"), params)

    return Writers(pg, pg_other, pg_raw)


@contextmanager
def engine_stores(backend: str, request: pytest.FixtureRequest) -> Iterator[tuple[Writers, str, str]]:
    """A fresh table (and on SQLite a fresh file, ``agent_runs`` with it) with its writers; and where it is
    (a file's path or a server's DSN) and its name."""
    with tempfile.TemporaryDirectory() as folder:
        if backend == "sqlite":
            target, table = str(Path(folder) / "s.db"), "agent_sessions"
        else:
            target, table = request.getfixturevalue("pg_server").dsn, f"diff_{next(TABLES)}"
        writers = open_writers(backend, target, table)
        try:
            yield writers, target, table
        finally:
            if backend != "sqlite":
                writers.store.drop()
            writers.close()


def compare(writers: Writers, query: str, user: str | None, entity: str | None) -> None:
    """``search()`` and the scan give the same hits; the index answers while the table is there."""
    store = writers.store
    scans: list[int] = []

    def counted_scan(
        store: BaseStorage, words: list[str], user_id: str | None, entity_id: str | None, limit: int
    ) -> list[SearchHit]:
        scans.append(1)
        return scan(store, words, user_id, entity_id, limit)

    scan = search_module.scan
    search_module.scan = counted_scan
    try:
        indexed = hits(lambda: store.search(query, user_id=user, entity_id=entity, limit=10_000))
    finally:
        search_module.scan = scan
    scanned = hits(lambda: scan(store, search_module.terms(query), user, entity, 10_000))
    assert indexed == scanned, (query, user, entity)
    assert not scans or not store.table_exists(), "the index did not answer"


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
# agent_runs dropped for good: its runs left the scan, not the index (the index keeps a note now).
@example(
    before=[("upsert", ("s0", "alice", "a1", [("kestrel", "ok")]))],
    after=[
        ("go", "s1", "bob", "kestrel owl's", "ok"),
        ("go", "s0", "", "straße", "ok"),
        ("search", "kestrel", None, None),
        ("drop_runs", False),
    ],
    final=["kestrel"],
)
@given(
    before=hs.lists(hs.tuples(hs.just("upsert"), upserts), min_size=1, max_size=4),
    after=hs.lists(operations, min_size=6, max_size=24),
    final=hs.lists(queries, min_size=1, max_size=3),
)
def test_the_index_answers_as_the_scan_whoever_writes_and_whoever_asks(
    backend: str,
    request: pytest.FixtureRequest,
    before: list[tuple[Any, ...]],
    after: list[tuple[Any, ...]],
    final: list[str],
) -> None:
    with engine_stores(backend, request) as (writers, _, _):
        for op in before:
            writers.apply(op)
        writers.store.enable_search()
        for op in after:
            if op[0] == "search":
                compare(writers, op[1], op[2], op[3])
            else:
                writers.apply(op)
        for query in final:
            for user in [*USERS, "carol"]:
                for entity in ENTITIES:
                    compare(writers, query, user, entity)
        for query in writers.written:
            for user in [*USERS, "carol"]:
                compare(writers, query, user, None)


def random_write(rng: random.Random) -> tuple[Any, ...]:
    """A write of a row or a run as :data:`operations` draws one, from ``rng`` (for a process of its own); no
    table dropped and no session renamed (two statements, which another writer may come between)."""

    def text() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4)))

    # Twice the sessions of the test above: two processes deleting at random leave some.
    sessions = [*SESSIONS, *(f"t{i}" for i in range(len(SESSIONS)))]

    def upsert() -> tuple[Any, ...]:
        turns = [(text(), text()) for _ in range(rng.randint(1, 2))]
        return (rng.choice(sessions), rng.choice(USERS), rng.choice(ENTITIES), turns)

    sid, user = rng.choice(sessions), rng.choice(USERS)
    return rng.choice(
        [
            ("upsert", upsert()),
            ("other_store", upsert()),
            ("upsert_many", [upsert(), upsert()]),
            ("delete", sid, rng.choice(["alice", "bob", None])),
            ("raw_owner", sid, user),
            ("raw_entity", sid, rng.choice(ENTITIES)),
            ("raw_memory", sid, [(text(), text())]),
            ("raw_delete", sid),
            ("go", sid, user, text(), text()),
            ("go", sid, user, text(), text()),
            ("go_raw", rng.randint(0, 9), rng.choice(["user_id", "session_id", "delete"]), user),
        ]
    )


def _write_at_random(backend: str, target: str, table: str, seed: int, start: Any, errors: Any) -> None:
    writers = open_writers(backend, target, table)
    rng = random.Random(seed)
    start.wait()
    try:
        for _ in range(40):
            writers.apply(random_write(rng))
    except BaseException as exc:  # reported to the parent
        errors.put(f"writer {seed}: {type(exc).__name__}: {exc}")
    finally:
        writers.close()


def _search_at_random(backend: str, target: str, table: str, seed: int, start: Any, errors: Any) -> None:
    writers = open_writers(backend, target, table)
    rng = random.Random(seed)
    start.wait()
    try:
        for _ in range(30):
            writers.store.search(rng.choice(WORDS), user_id=rng.choice(USERS))
    except BaseException as exc:  # reported to the parent
        errors.put(f"searcher {seed}: {type(exc).__name__}: {exc}")
    finally:
        writers.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@pytest.mark.parametrize("seed", [1, 2])
def test_the_index_answers_as_the_scan_after_processes_write_search_and_build_it_at_once(
    backend: str, request: pytest.FixtureRequest, seed: int
) -> None:
    """Two processes write rows and runs at random (as the test above draws writes), a third searches, bringing
    the index up to date as they write, while this one builds it: once they are done, the index answers as the
    scan, for every word, user and entity."""
    with engine_stores(backend, request) as (writers, target, table):
        rng = random.Random(seed)
        for _ in range(8):
            writers.apply(random_write(rng))
        ctx = multiprocessing.get_context("spawn")
        start, errors = ctx.Barrier(4), ctx.Queue()
        procs = [
            ctx.Process(target=_write_at_random, args=(backend, target, table, seed * 10 + w, start, errors))
            for w in range(2)
        ]
        procs.append(ctx.Process(target=_search_at_random, args=(backend, target, table, seed, start, errors)))
        for p in procs:
            p.start()
        start.wait()
        writers.store.enable_search()
        for p in procs:
            p.join(120)
        assert [p.exitcode for p in procs] == [0, 0, 0]
        reported = []
        while not errors.empty():
            reported.append(errors.get())
        assert reported == []
        for query in WORDS:
            for user in [*USERS, "carol"]:
                for entity in [None, "", "a1"]:
                    compare(writers, query, user, entity)
        assert any(writers.store.search(word) for word in WORDS), "nothing was left to find"
