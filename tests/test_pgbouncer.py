"""The PostgreSQL store behind PgBouncer in transaction mode, with many threads.

PgBouncer (tests/pgbouncer.py) keeps ``POOL_SIZE`` (2) server connections
for the test database and hands one to each client transaction in turn, so
the threads below, with more client connections between them than that,
share server connections the way an application behind a pooler does.
Whatever a client left on a server connection outside a transaction
(a prepared statement, a session advisory lock, a SET) would meet another
client here: with psycopg's ``prepare_threshold=0`` every test fails.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from agno_storage import AgentSession, ConnectionLostError, Mode, OwnershipError
from tests.pgbouncer import POOL_SIZE, PgBouncer, require_pgbouncer, running_pgbouncer
from tests.pgserver import PgServer, create_database, require_pg, running_server
from tests.sessions import make_session
from tests.support import finishes

try:
    import psycopg

    from agno_storage.backends.postgres import PostgresStorage
except ImportError:  # require_pg() below skips, or fails under AGNO_STORAGE_REQUIRE_PG=1
    pass

T = TypeVar("T")

DATABASE = "agno_pgbouncer"
THREADS = 8
_names = itertools.count()


@pytest.fixture(autouse=True)
def _needs_pgbouncer() -> None:
    require_pg()
    require_pgbouncer()


@pytest.fixture(scope="module")
def database(pg_server: PgServer) -> PgServer:
    """The run's server, with a fresh test database for this module."""
    require_pg()
    require_pgbouncer()
    create_database(pg_server, DATABASE)
    return pg_server


@pytest.fixture(scope="module")
def bouncer(database: PgServer) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode in front of the run's server, for this module."""
    with running_pgbouncer(database) as bouncer:
        yield bouncer


@pytest.fixture
def url(bouncer: PgBouncer) -> str:
    """The test database, through the pooler."""
    return bouncer.dsn(DATABASE)


@pytest.fixture
def direct_url(pg_server: PgServer) -> str:
    """The test database, straight to the server (for checks that must not go through the pooler)."""
    return pg_server.dsn.rsplit("/", 1)[0] + "/" + DATABASE


@pytest.fixture
def stores() -> Iterator[list[PostgresStorage]]:
    """Stores a test opens; each is closed afterwards and its table dropped."""
    made: list[PostgresStorage] = []
    yield made
    for store in made:
        try:
            store.drop()
        finally:
            store.close()


def fresh_name(prefix: str) -> str:
    return f"{prefix}{next(_names)}_{int(time.time() * 1000) % 100000}"


def open_store(stores: list[PostgresStorage], url: str, table: str, **kwargs: Any) -> PostgresStorage:
    store = PostgresStorage(table, db_url=url, **kwargs)
    stores.append(store)
    return store


def in_threads(count: int, work: Callable[[int], T]) -> list[T]:
    """Run ``work(0..count-1)`` in threads released together; every result, or the first error raised."""
    start = threading.Barrier(count)
    results: dict[int, T] = {}
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            start.wait(30)
            results[n] = work(n)
        except BaseException as exc:  # re-raised in the caller
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not any(th.is_alive() for th in threads), "a thread hung"
    if errors:
        raise errors[0]
    return [results[n] for n in range(count)]


def fetch(url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description is not None else []


def backend_pid(conn: Any) -> int:
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


# --- the pooler really pools ------------------------------------------------------


def test_many_client_connections_share_few_server_connections(
    bouncer: PgBouncer, url: str, stores: list[PostgresStorage]
) -> None:
    table = fresh_name("shared_")
    open_store(stores, url, table).create()
    # One store (one client pool) per thread: at least THREADS client connections.
    per_thread = [open_store(stores, url, table) for _ in range(THREADS)]

    def work(n: int) -> set[int]:
        pids = set()
        for i in range(10):
            with per_thread[n].transaction() as conn:
                pids.add(backend_pid(conn))
                per_thread[n].upsert(AgentSession(session_id=f"t{n}-{i}"))
        return pids

    pids = set().union(*in_threads(THREADS, work))
    assert 1 <= len(pids) <= POOL_SIZE < THREADS
    clients = [c for c in bouncer.show("CLIENTS") if c["database"] == DATABASE]
    servers = [s for s in bouncer.show("SERVERS") if s["database"] == DATABASE]
    assert len(clients) >= THREADS
    assert len(servers) <= POOL_SIZE
    assert len(per_thread[0].get_all_session_ids()) == THREADS * 10


# --- create and upgrade ------------------------------------------------------------


@pytest.mark.parametrize("start_from", ["nothing", "a pre-1.2 table"])
def test_stores_create_and_upgrade_the_same_table_at_once(url: str, direct_url: str, start_from: str) -> None:
    schema = fresh_name("race_")  # a new schema each time: CREATE SCHEMA races too
    if start_from == "a pre-1.2 table":
        with PostgresStorage("sessions", db_url=url, schema=schema) as old:
            old.create()
            old.upsert(AgentSession(session_id="old", user_id="u", memory={"m": 1}))
        fetch(direct_url, f'ALTER TABLE "{schema}".sessions DROP COLUMN team_session_id')

    def work(n: int) -> str:
        with PostgresStorage("sessions", db_url=url, schema=schema, auto_upgrade_schema=True) as store:
            store.create()
            store.upgrade_schema()
            store.upsert(AgentSession(session_id=f"w{n}", team_session_id="ts"))
            return "ok"

    try:
        assert in_threads(4, work) == ["ok"] * 4
        rows = fetch(direct_url, f'SELECT session_id, team_session_id FROM "{schema}".sessions ORDER BY 1')
        expected = [(f"w{n}", "ts") for n in range(4)]
        assert rows == ([("old", None)] if start_from != "nothing" else []) + expected
        indexes = fetch(direct_url, "SELECT indexname FROM pg_indexes WHERE schemaname = %s ORDER BY 1", (schema,))
        assert [name for (name,) in indexes] == [
            f"ix_{schema}_sessions_agent_id",
            f"ix_{schema}_sessions_team_session_id",
            f"ix_{schema}_sessions_user_id",
            f"rx_{schema}_sessions_agent_id_recent",
            f"rx_{schema}_sessions_all_recent",
            f"rx_{schema}_sessions_user_id_recent",
            "sessions_pkey",
        ]
    finally:
        fetch(direct_url, f'DROP SCHEMA "{schema}" CASCADE')


# --- reads and writes from many threads --------------------------------------------

PER_THREAD = 30
SHARED = 10


def test_threads_upsert_read_list_and_delete_and_lose_nothing(url: str, stores: list[PostgresStorage]) -> None:
    table = fresh_name("rw_")
    shared_store = open_store(stores, url, table, pool_size=THREADS)
    # created_at set once here must survive every later upsert of these sessions.
    for i in range(SHARED):
        shared_store.upsert(AgentSession(session_id=f"shared-{i}", user_id="team", created_at=1_000 + i))
    own_stores = [open_store(stores, url, table) for _ in range(THREADS // 2)]

    def work(n: int) -> None:
        # Half the threads share one store (one client pool), half have their own.
        store = shared_store if n % 2 else own_stores[n // 2]
        user = f"user{n}"
        for i in range(PER_THREAD):
            stored = store.upsert(make_session(Mode.AGENT, f"u{n}-{i}", user_id=user, memory={"n": n, "i": i}))
            assert stored.created_at is not None and stored.updated_at is not None
            again = store.upsert(AgentSession(session_id=f"shared-{i % SHARED}", user_id="team", memory={"by": n}))
            assert again.created_at == 1_000 + i % SHARED
        batch = [AgentSession(session_id=f"b{n}-{i}", user_id=user, memory={"batch": i}) for i in range(50)]
        batch += [AgentSession(session_id=f"shared-{i}", user_id="team") for i in range(SHARED)]
        assert store.upsert_many(batch) == 50 + SHARED
        for i in range(PER_THREAD):
            got = store.read(f"u{n}-{i}", user_id=user)
            assert isinstance(got, AgentSession) and got.memory == {"n": n, "i": i} and got.agent_id == "agent-1"
            assert store.read(f"u{n}-{i}", user_id="someone else") is None
        mine = {s.session_id for s in store.list(user_id=user)}
        assert mine == {f"u{n}-{i}" for i in range(PER_THREAD)} | {f"b{n}-{i}" for i in range(50)}
        assert [s.session_id for s in store.list(user_id=user, limit=5)] == store.get_all_session_ids(user_id=user)[:5]
        for i in range(0, 50, 2):
            assert store.delete(f"b{n}-{i}", user_id=user) is True
            assert store.delete(f"b{n}-{i}") is False
        assert store.delete(f"u{n}-0", user_id="someone else") is False

    in_threads(THREADS, work)

    expected = {f"shared-{i}" for i in range(SHARED)}
    for n in range(THREADS):
        expected |= {f"u{n}-{i}" for i in range(PER_THREAD)} | {f"b{n}-{i}" for i in range(1, 50, 2)}
    assert set(shared_store.get_all_session_ids()) == expected
    assert len(shared_store.get_all_session_ids()) == len(expected)
    for i in range(SHARED):
        got = shared_store.read(f"shared-{i}")
        assert got is not None and got.created_at == 1_000 + i and got.user_id == "team"
    got = shared_store.read("b3-7")
    assert got is not None and got.memory == {"batch": 7} and got.user_id == "user3"


# --- transactions ------------------------------------------------------------------


class Boom(Exception):
    pass


def test_transactions_with_savepoints_and_rollbacks_from_many_threads(
    url: str, direct_url: str, stores: list[PostgresStorage]
) -> None:
    store = open_store(stores, url, fresh_name("tx_"), pool_size=THREADS)
    store.create()

    def work(n: int) -> None:
        for i in range(5):
            with store.transaction() as conn:
                pid = backend_pid(conn)
                store.upsert(AgentSession(session_id=f"kept-{n}-{i}"))
                with pytest.raises(Boom), store.transaction():
                    store.upsert(AgentSession(session_id=f"inner-{n}-{i}"))
                    assert store.read(f"inner-{n}-{i}") is not None
                    raise Boom
                with store.transaction():  # a savepoint released, not rolled back
                    store.upsert(AgentSession(session_id=f"nested-{n}-{i}"))
                assert store.read(f"inner-{n}-{i}") is None
                # The pooler keeps one server connection for the whole transaction...
                assert backend_pid(conn) == pid
                # ...and nothing session-level was left on it.
                assert conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() == (0,)
            with pytest.raises(Boom), store.transaction():
                store.upsert(AgentSession(session_id=f"lost-{n}-{i}"))
                raise Boom

    in_threads(THREADS, work)

    expected = {f"{kind}-{n}-{i}" for kind in ("kept", "nested") for n in range(THREADS) for i in range(5)}
    assert set(store.get_all_session_ids()) == expected
    # Nothing was left open on the server: no transaction, no lock, no advisory lock.
    assert fetch(
        direct_url,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND state LIKE 'idle in transaction%%'",
        (DATABASE,),
    ) == [(0,)]
    assert fetch(direct_url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == [(0,)]


# --- ownership ---------------------------------------------------------------------


def test_ownership_refusals_are_typed_and_roll_back_through_the_pooler(url: str, stores: list[PostgresStorage]) -> None:
    store = open_store(stores, url, fresh_name("own_"), pool_size=THREADS)
    for i in range(THREADS):
        store.upsert(make_session(Mode.AGENT, f"alice-{i}", user_id="alice", created_at=500))

    def work(n: int) -> None:
        taken = f"alice-{n}"
        with pytest.raises(OwnershipError) as info:
            store.upsert(make_session(Mode.AGENT, taken, user_id="bob"))
        assert (info.value.session_id, info.value.user_id, info.value.table) == (taken, "bob", store.table_name)
        with pytest.raises(OwnershipError) as info:
            store.upsert_many(
                [AgentSession(session_id=f"bob-{n}", user_id="bob"), make_session(Mode.AGENT, taken, user_id="bob")]
            )
        assert info.value.session_id == taken
        with pytest.raises(OwnershipError), store.transaction():
            store.upsert(AgentSession(session_id=f"bob-tx-{n}", user_id="bob"))
            store.upsert(make_session(Mode.AGENT, taken, user_id="bob"))
        # The failed transactions left the shared server connections usable.
        assert store.upsert(AgentSession(session_id=f"bob-after-{n}", user_id="bob")).user_id == "bob"

    in_threads(THREADS, work)

    assert sorted(store.get_all_session_ids(user_id="bob")) == sorted(f"bob-after-{n}" for n in range(THREADS))
    for i in range(THREADS):
        got = store.read(f"alice-{i}")
        assert got is not None and got.user_id == "alice" and got.created_at == 500


# --- a pool too small for the open transactions --------------------------------------


def test_a_client_left_waiting_for_a_server_connection_gets_typed_error_without_a_retry(database: PgServer) -> None:
    # Every server connection is held by an open transaction(): a third client
    # waits in PgBouncer until query_wait_timeout, then is disconnected. It has
    # waited already: a rerun would only queue again.
    with running_pgbouncer(database, {"query_wait_timeout": "2"}) as small:
        made: list[PostgresStorage] = []
        try:
            url = small.dsn(DATABASE)
            holders = open_store(made, url, fresh_name("wait_"), pool_size=POOL_SIZE)
            holders.create()
            waiter = open_store(made, url, holders.table_name, retries=2)
            holding = threading.Barrier(POOL_SIZE + 1)
            release = threading.Event()

            def hold() -> None:
                with holders.transaction() as conn:
                    backend_pid(conn)  # the server connection is taken from here on
                    holding.wait(30)
                    release.wait(30)

            threads = [threading.Thread(target=hold) for _ in range(POOL_SIZE)]
            for th in threads:
                th.start()
            try:
                holding.wait(30)
                for call in (lambda: waiter.read("anything"), lambda: waiter.upsert(AgentSession(session_id="s"))):
                    with pytest.raises(ConnectionLostError, match="query_wait_timeout"):
                        call()
            finally:
                release.set()
                for th in threads:
                    th.join(30)
            # One disconnect per call: neither was rerun, nor were idle connections tested.
            dropped = small.log_tail(400).count("query_wait_timeout")
            assert dropped == 2, small.log_tail()
            # Once the transactions end, the same store works again.
            assert waiter.upsert(AgentSession(session_id="later")).session_id == "later"
            holders.drop()
        finally:
            for store in made:
                store.close()


# --- losing the server behind the pooler --------------------------------------------


def test_a_server_lost_behind_the_pooler_gives_typed_errors_then_the_store_recovers() -> None:
    # A private server: stopping the run's one would disturb the module's pooler.
    # PgBouncer holds a client that needs a server for up to query_wait_timeout, and
    # tries the server again only every server_login_retry seconds: both are short here.
    with (
        running_server() as server,
        running_pgbouncer(server, {"query_wait_timeout": "3", "server_login_retry": "1"}) as b,
    ):
        store = PostgresStorage("sessions", db_url=b.dsn(), connect_timeout=2.0)
        try:
            store.upsert(make_session(Mode.AGENT, "before"))
            server.stop()
            try:
                for call in (
                    lambda: store.read("before"),
                    lambda: store.upsert(make_session(Mode.AGENT, "during")),
                    lambda: store.delete("before"),
                    lambda: store.list(),
                ):
                    with pytest.raises(ConnectionLostError):
                        finishes(call)
            finally:
                server.start()
            deadline = time.monotonic() + 15
            while True:
                try:
                    assert store.read("before") is not None
                    break
                except ConnectionLostError:
                    assert time.monotonic() < deadline, "the store did not recover"
                    time.sleep(0.2)
            store.upsert(make_session(Mode.AGENT, "after"))
            assert sorted(store.get_all_session_ids()) == ["after", "before"]
        finally:
            store.close()


# --- agno 1.8.4 through the adapter ----------------------------------------------


def test_agno_agent_keeps_its_history_through_the_pooler(url: str) -> None:
    pytest.importorskip("agno")
    from tests.agno_runner import close_storages, run_turn

    session_id = fresh_name("agno-")
    try:
        for message in ("first question", "second question"):
            run_turn("agent", "ours-pg", url, session_id, "user-1", message)
        result = run_turn("agent", "ours-pg", url, session_id, "user-1", "third question")
    finally:
        close_storages()
    seen = "\n".join(m["content"] for m in result["calls"][-1])
    assert "first question" in seen and "agent #1: first question" in seen and "second question" in seen
    with PostgresStorage("agent_sessions", db_url=url) as store:
        got = store.read(session_id)
        assert isinstance(got, AgentSession) and got.user_id == "user-1" and got.agent_id == "historian"
        store.delete(session_id)
