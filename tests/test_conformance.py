"""Behaviour every backend must show; runs once per backend (PostgreSQL twice: statements prepared or not)."""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agno_storage import (
    AgentSession,
    BaseStorage,
    InvalidInputError,
    Mode,
    OwnershipError,
    RowsKeptError,
    SchemaMismatchError,
    SchemaVersionError,
    SessionSummary,
    SqliteStorage,
    StorageError,
    TableNotFoundError,
    TeamSession,
    open_storage,
    schema,
)
from agno_storage.backends.batches import BATCH_SIZE, REPLAY_LIMIT
from agno_storage.modes import JSON_KINDS, spec
from tests.conftest import StoreFactory
from tests.sessions import make_session

ALL_MODES = list(Mode)


@pytest.fixture(params=["sqlite", "postgres", "postgres-prepared"])
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend, and PostgreSQL again with ``prepared_statements=True``: the same behaviour on both."""
    return str(request.param)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_upsert_then_read_returns_the_same_session(make_store: StoreFactory, mode: Mode) -> None:
    store = make_store(mode)
    session = make_session(mode, "s1")
    stored = store.upsert(session)
    assert stored.created_at is not None and stored.updated_at is not None
    got = store.read("s1")
    assert got == stored
    assert attrs.evolve(got, created_at=None, updated_at=None) == session


@pytest.mark.parametrize("mode", ALL_MODES)
def test_created_at_is_kept_and_updated_at_moves_on_update(make_store: StoreFactory, mode: Mode) -> None:
    store = make_store(mode)
    first = store.upsert(make_session(mode, "s1", created_at=1_000))
    assert first.created_at == 1_000
    assert first.updated_at is not None and first.updated_at >= int(time.time()) - 5
    changed = make_session(mode, "s1", memory={"v": 2}, created_at=2_000)
    second = store.upsert(changed)
    assert second.created_at == 1_000, "an update must keep the original created_at"
    got = store.read("s1")
    assert got is not None
    assert got.memory == {"v": 2}
    assert got.created_at == 1_000


def test_created_at_defaults_to_now(make_store: StoreFactory) -> None:
    store = make_store()
    before = int(time.time())
    stored = store.upsert(make_session(Mode.AGENT, "s1"))
    assert stored.created_at is not None and before <= stored.created_at <= int(time.time())


def test_none_user_id_reads_back_as_none(make_store: StoreFactory) -> None:
    store = make_store()
    store.upsert(make_session(Mode.AGENT, "s1", user_id=None))
    got = store.read("s1")
    assert got is not None and got.user_id is None


@pytest.mark.parametrize("mode", ALL_MODES)
def test_list_is_newest_first_then_by_session_id(make_store: StoreFactory, mode: Mode) -> None:
    store = make_store(mode)
    store.upsert_many(
        [
            make_session(mode, "b", created_at=100),
            make_session(mode, "a", created_at=100),
            make_session(mode, "c", created_at=300),
            make_session(mode, "d", created_at=200),
        ]
    )
    assert [s.session_id for s in store.list()] == ["c", "d", "a", "b"]
    assert [s.session_id for s in store.list(limit=2)] == ["c", "d"]
    assert store.get_all_session_ids() == ["c", "d", "a", "b"]
    assert [s.session_id for s in store.get_recent_sessions()] == ["c", "d"]
    assert [s.session_id for s in store.get_all_sessions()] == ["c", "d", "a", "b"]


@pytest.mark.parametrize("mode", ALL_MODES)
def test_filters_by_user_and_entity(make_store: StoreFactory, mode: Mode) -> None:
    store = make_store(mode)
    entity_field = spec(mode).entity_column
    store.upsert_many(
        [
            make_session(mode, "a1", user_id="alice", **{entity_field: "e1"}, created_at=1),
            make_session(mode, "a2", user_id="alice", **{entity_field: "e2"}, created_at=2),
            make_session(mode, "b1", user_id="bob", **{entity_field: "e1"}, created_at=3),
        ]
    )
    assert [s.session_id for s in store.list(user_id="alice")] == ["a2", "a1"]
    assert [s.session_id for s in store.list(entity_id="e1")] == ["b1", "a1"]
    assert [s.session_id for s in store.list(user_id="alice", entity_id="e1")] == ["a1"]
    assert store.get_all_session_ids(user_id="bob") == ["b1"]
    assert [s.session_id for s in store.get_recent_sessions(entity_id="e1", limit=1)] == ["b1"]


@pytest.mark.parametrize("mode", ALL_MODES)
def test_count_agrees_with_list_under_every_filter(make_store: StoreFactory, mode: Mode) -> None:
    store = make_store(mode, allow_owner_change=True)
    entity_field = spec(mode).entity_column
    store.upsert_many(
        make_session(mode, f"s{i}", user_id=("alice", "bob", None)[i % 3], **{entity_field: f"e{i % 2}"})
        for i in range(9)
    )
    for user in (None, "alice", "bob", "", "nobody-here"):
        for entity in (None, "e0", "e1", ""):
            expected = len(store.list(user_id=user, entity_id=entity))
            assert store.count(user_id=user, entity_id=entity) == expected, (user, entity)
    assert store.count() == 9 and store.count(user_id="") == 3
    store.delete("s0")
    assert store.count(user_id="alice") == 2
    with pytest.raises(InvalidInputError):
        store.count(user_id=7)  # type: ignore[arg-type]


def test_owner_scoping_on_read_list_and_delete(make_store: StoreFactory) -> None:
    store = make_store()
    store.upsert(make_session(Mode.AGENT, "s1", user_id="alice"))
    assert store.read("s1", user_id="bob") is None
    assert store.read("s1", user_id="alice") is not None
    assert store.list(user_id="bob") == []
    assert store.delete("s1", user_id="bob") is False
    assert store.read("s1") is not None, "another user's delete must not remove the row"
    assert store.delete("s1", user_id="alice") is True
    assert store.read("s1") is None


def test_upsert_of_another_users_session_is_refused(make_store: StoreFactory) -> None:
    store = make_store()
    store.upsert(make_session(Mode.AGENT, "s1", user_id="alice", memory={"secret": 1}))
    with pytest.raises(OwnershipError) as info:
        store.upsert(make_session(Mode.AGENT, "s1", user_id="bob", memory={"stolen": 1}))
    assert info.value.session_id == "s1"
    assert info.value.table == store.table_name
    assert info.value.user_id == "bob"
    got = store.read("s1")
    assert got is not None and got.user_id == "alice" and got.memory == {"secret": 1}
    # A user-less write may not take a user's session either.
    with pytest.raises(OwnershipError):
        store.upsert(make_session(Mode.AGENT, "s1", user_id=None))


def test_unowned_session_can_be_claimed(make_store: StoreFactory) -> None:
    store = make_store()
    store.upsert(make_session(Mode.AGENT, "s1", user_id=None))
    store.upsert(make_session(Mode.AGENT, "s1", user_id="alice"))
    got = store.read("s1")
    assert got is not None and got.user_id == "alice"


def _keep_out(store: BaseStorage, session_id: str) -> None:
    """Another program's trigger that skips every insert and update of ``session_id`` without an error."""
    if isinstance(store, SqliteStorage):
        import sqlite3

        assert store.db_path is not None
        with sqlite3.connect(store.db_path) as conn:
            for op in ("INSERT", "UPDATE"):
                conn.execute(
                    f'CREATE TRIGGER keep_{op.lower()} BEFORE {op} ON "{store.table_name}"'
                    f" WHEN NEW.session_id = '{session_id}' BEGIN SELECT RAISE(IGNORE); END"
                )
        return
    import psycopg
    from psycopg import sql

    with psycopg.connect(store.db_url, autocommit=True) as conn:  # type: ignore[attr-defined]
        keep = sql.Identifier(store.schema or "public", f"{store.table_name}_keep")  # type: ignore[attr-defined]
        conn.execute(
            sql.SQL(
                "CREATE FUNCTION {} () RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                " IF NEW.session_id = {} THEN RETURN NULL; END IF; RETURN NEW; END $$"
            ).format(keep, sql.Literal(session_id))
        )
        conn.execute(
            sql.SQL("CREATE TRIGGER keep BEFORE INSERT OR UPDATE ON {} FOR EACH ROW EXECUTE FUNCTION {} ()").format(
                sql.SQL(store.qualified_table),
                keep,  # type: ignore[attr-defined]
            )
        )


def test_a_write_a_trigger_keeps_out_is_said_so_not_called_another_users(make_store: StoreFactory) -> None:
    """A session another program's trigger skips without an error (``RAISE(IGNORE)``, one returning NULL) is
    written by nobody: the store said it belonged to another user ("allow_owner_change=True permits this"), also
    for a new session and for a store that allows owner changes. Another user's session is still refused as
    such."""
    store = make_store()
    store.upsert(make_session(Mode.AGENT, "kept", user_id="alice", memory={"before": 1}))
    _keep_out(store, "kept")
    free = make_store(table_name=store.table_name, allow_owner_change=True)
    for writer, user in ((store, "alice"), (store, None), (free, "bob")):
        if user is None:
            store.delete("kept")  # a new session, kept out too
        with pytest.raises(RowsKeptError, match="trigger") as info:
            writer.upsert(make_session(Mode.AGENT, "kept", user_id=user, memory={"after": 1}))
        assert (info.value.session_id, info.value.table) == ("kept", store.table_name)
    with pytest.raises(RowsKeptError) as info:
        store.upsert_many([make_session(Mode.AGENT, "s0"), make_session(Mode.AGENT, "kept", user_id="carol")])
    assert info.value.session_id == "kept"
    assert store.get_all_session_ids() == []  # the batch rolled back whole
    store.upsert(make_session(Mode.AGENT, "s1", user_id="alice"))
    with pytest.raises(OwnershipError):
        store.upsert(make_session(Mode.AGENT, "s1", user_id="bob"))


def test_claim_unowned_false_refuses_giving_an_unowned_session_an_owner(make_store: StoreFactory) -> None:
    """With claim_unowned=False a write with an owner may not take a session that has none (the agno adapter's
    setting: a read with that user did not see it); writes with no owner, and the owner's own, go on as before."""
    store = make_store(claim_unowned=False)
    store.upsert(make_session(Mode.AGENT, "s1", user_id=None, memory={"kept": 1}))
    store.upsert(make_session(Mode.AGENT, "s2", user_id="", memory={"kept": 2}))
    for sid in ("s1", "s2"):
        with pytest.raises(OwnershipError, match="has no owner") as info:
            store.upsert(make_session(Mode.AGENT, sid, user_id="alice", memory={"lost": 1}))
        assert (info.value.session_id, info.value.user_id) == (sid, "alice")
    with pytest.raises(OwnershipError, match="has no owner"):
        store.upsert_many(
            [make_session(Mode.AGENT, "new", user_id="alice"), make_session(Mode.AGENT, "s1", user_id="a")]
        )
    assert sorted(store.get_all_session_ids()) == ["s1", "s2"]  # "new" went with the refused batch
    assert [(s.session_id, s.user_id, s.memory) for s in sorted(store.list(), key=lambda s: s.session_id)] == [
        ("s1", None, {"kept": 1}),
        ("s2", None, {"kept": 2}),
    ]
    store.upsert(make_session(Mode.AGENT, "s1", user_id=None, memory={"kept": 3}))  # still no owner: fine
    store.upsert(make_session(Mode.AGENT, "s3", user_id="alice"))  # a new session takes its owner
    store.upsert(make_session(Mode.AGENT, "s3", user_id="alice", memory={"again": 1}))
    with pytest.raises(OwnershipError, match="belongs to another user"):
        store.upsert(make_session(Mode.AGENT, "s3", user_id="bob"))
    got = store.read("s3")
    assert got is not None and got.memory == {"again": 1}
    with pytest.raises(InvalidInputError):
        make_store(claim_unowned="no")


def test_allow_owner_change_permits_the_overwrite(make_store: StoreFactory) -> None:
    store = make_store(allow_owner_change=True)
    store.upsert(make_session(Mode.AGENT, "s1", user_id="alice"))
    store.upsert(make_session(Mode.AGENT, "s1", user_id="bob"))
    got = store.read("s1")
    assert got is not None and got.user_id == "bob"


def test_upsert_many_is_all_or_nothing(make_store: StoreFactory) -> None:
    store = make_store()
    store.upsert(make_session(Mode.AGENT, "taken", user_id="alice"))
    batch = [make_session(Mode.AGENT, f"n{i}", user_id="bob") for i in range(1200)]
    batch.insert(700, make_session(Mode.AGENT, "taken", user_id="bob"))
    with pytest.raises(OwnershipError) as info:
        store.upsert_many(batch)
    assert info.value.session_id == "taken"
    assert store.get_all_session_ids() == ["taken"], "a refused batch must leave nothing behind"


def test_upsert_many_counts_and_accepts_a_generator(make_store: StoreFactory) -> None:
    store = make_store()
    written = store.upsert_many(make_session(Mode.AGENT, f"s{i}") for i in range(1234))
    assert written == 1234
    assert len(store.get_all_session_ids()) == 1234


@pytest.mark.parametrize(
    ("session", "column"),
    [
        (AgentSession(session_id=""), "session_id"),
        (AgentSession(session_id=5), "session_id"),  # type: ignore[arg-type]
        (AgentSession(session_id="s", memory={"x": float("nan")}), "memory"),
        (AgentSession(session_id="s", memory={"x": float("inf")}), "memory"),
        (AgentSession(session_id="s", session_data={1: "int key"}), "session_data"),  # type: ignore[dict-item]
        (AgentSession(session_id="s", extra_data={"x": object()}), "extra_data"),
        (AgentSession(session_id="s", agent_data=["not", "a", "dict"]), "agent_data"),  # type: ignore[arg-type]
        (AgentSession(session_id="s", user_id=7), "user_id"),  # type: ignore[arg-type]
        (AgentSession(session_id="s", created_at="yesterday"), "created_at"),  # type: ignore[arg-type]
        (AgentSession(session_id="s", created_at=2**63), "created_at"),
        (AgentSession(session_id="s", created_at=True), "created_at"),
        (AgentSession(session_id="\ud800"), "session_id"),
        (AgentSession(session_id="s", agent_id="\udfff"), "agent_id"),
        (AgentSession(session_id="s", memory={"x": "\ud800"}), "memory"),
        (AgentSession(session_id="s", memory=collections.OrderedDict(x=1)), "memory"),  # a dict subclass
        (AgentSession(session_id="s", extra_data={"x": collections.OrderedDict(y=1)}), "extra_data"),
    ],
)
def test_bad_input_raises_and_writes_nothing(make_store: StoreFactory, session: AgentSession, column: str) -> None:
    store = make_store()
    with pytest.raises(InvalidInputError) as info:
        store.upsert(session)
    assert info.value.column == column
    with pytest.raises(InvalidInputError):
        store.upsert_many([make_session(Mode.AGENT, "ok"), session])
    assert store.get_all_session_ids() == []


def test_wrong_mode_session_is_refused(make_store: StoreFactory) -> None:
    store = make_store(Mode.AGENT)
    with pytest.raises(InvalidInputError):
        store.upsert(TeamSession(session_id="s1", team_id="t"))
    assert store.get_all_session_ids() == []


@pytest.mark.parametrize("name", ["", "1abc", "a-b", "a b", 'x"; DROP TABLE y; --', "é", None, "a" * 64])
def test_table_name_must_be_a_plain_identifier(make_store: StoreFactory, name: object) -> None:
    with pytest.raises(InvalidInputError):
        make_store(table_name=name)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_a_sessions_table_named_agent_runs_is_refused_before_anything_is_made(
    make_store: StoreFactory, backend: str, tmp_path: Path, mode: Mode
) -> None:
    """agent_runs is where a Go Agent keeps its runs, and where tables, doctor, export and prune read runs (in a
    SQLite file or a PostgreSQL schema): sessions kept there would be read as broken runs. SQLite takes a name in
    any case as one table; PostgreSQL's quoted names are exact, so another spelling is another table there."""
    sqlite = backend == "sqlite"
    for name in ["agent_runs", "AGENT_RUNS", "Agent_Runs"] if sqlite else ["agent_runs"]:
        with pytest.raises(InvalidInputError, match="agent_runs, where a Go Agent keeps its runs") as refused:
            make_store(mode, table_name=name)
        assert refused.value.table == name
        url = f"sqlite:///{tmp_path / 'sessions.db'}" if sqlite else None
        if url is not None:
            with pytest.raises(InvalidInputError, match="where a Go Agent keeps its runs"):
                open_storage(url, name, mode)
    if sqlite:
        assert os.listdir(tmp_path) == []
    else:
        other = make_store(mode, table_name="AGENT_RUNS")
        other.upsert(make_session(mode, "s1"))
        assert other.get_all_session_ids() == ["s1"]


def test_unknown_mode_is_refused(make_store: StoreFactory) -> None:
    with pytest.raises(InvalidInputError):
        make_store(mode="robot")


@pytest.mark.parametrize("mode", ALL_MODES)
def test_opening_another_modes_table_raises_and_writes_nothing(make_store: StoreFactory, mode: Mode) -> None:
    other = Mode.TEAM if mode is Mode.AGENT else Mode.AGENT
    first = make_store(other)
    first.upsert(make_session(other, "s1"))
    with pytest.raises(SchemaMismatchError) as info:
        make_store(mode, table_name=first.table_name)
    assert info.value.table == first.table_name
    assert info.value.expected_mode == mode.value
    assert info.value.found_mode == other.value
    assert first.get_all_session_ids() == ["s1"]
    assert first.read("s1") is not None


def test_reads_of_a_missing_table_are_empty_and_create_nothing(make_store: StoreFactory) -> None:
    store = make_store()
    assert store.read("nope") is None
    assert store.list() == []
    assert store.get_all_session_ids() == []
    assert store.count() == 0
    assert store.delete("nope") is False
    assert store.table_exists() is False


def test_create_drop_and_table_exists(make_store: StoreFactory) -> None:
    store = make_store()
    store.create()
    assert store.table_exists()
    store.create()  # idempotent
    store.upsert(make_session(Mode.AGENT, "s1"))
    store.drop()
    assert not store.table_exists()
    store.upsert(make_session(Mode.AGENT, "s2"))
    assert store.get_all_session_ids() == ["s2"]


def test_delete_session_deletes_whatever_the_owner(make_store: StoreFactory) -> None:
    store = make_store()
    store.upsert(make_session(Mode.AGENT, "s1", user_id="alice"))
    assert store.delete_session("s1") is True
    assert store.delete_session("s1") is False
    with pytest.raises(InvalidInputError):
        store.delete_session(None)


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_bad_limit_is_refused(make_store: StoreFactory, bad: object) -> None:
    store = make_store()
    with pytest.raises(InvalidInputError):
        store.list(limit=bad)  # type: ignore[arg-type]


def test_transaction_rolls_back_every_upsert_on_error(make_store: StoreFactory) -> None:
    store = make_store()
    store.create()
    with pytest.raises(RuntimeError), store.transaction():
        store.upsert(make_session(Mode.AGENT, "s1"))
        store.upsert(make_session(Mode.AGENT, "s2"))
        raise RuntimeError("boom")
    assert store.get_all_session_ids() == []
    with store.transaction():
        store.upsert(make_session(Mode.AGENT, "s1"))
        store.upsert(make_session(Mode.AGENT, "s2"))
    assert sorted(store.get_all_session_ids()) == ["s1", "s2"]


def test_many_threads_share_one_store(make_store: StoreFactory) -> None:
    store = make_store()
    store.create()
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(50):
                sid = f"t{t}-{i}"
                store.upsert(make_session(Mode.AGENT, sid, user_id=f"u{t}"))
                got = store.read(sid, user_id=f"u{t}")
                assert got is not None and got.session_id == sid
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert len(store.get_all_session_ids()) == 400


def test_context_manager_closes(make_store: StoreFactory) -> None:
    store = make_store()
    with store as same:
        same.upsert(make_session(Mode.AGENT, "s1"))
    assert store.read("s1") is not None, "a closed file store reopens on the next call"


# JSONB stores no \u0000 and re-spells exponent floats, so the cross-backend
# round trip keeps to text without NUL and floats that print without an
# exponent; tests/test_roundtrip.py covers everything else on SQLite.
_texts = st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=20)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.integers(min_value=-(10**6), max_value=10**6).map(lambda i: i / 8)
    | _texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_texts, children, max_size=4),
    max_leaves=20,
)


@pytest.mark.parametrize("mode", [Mode.AGENT, Mode.WORKFLOW_V2])
def test_json_round_trips_on_every_backend(make_store: StoreFactory, mode: Mode) -> None:
    store = make_store(mode, allow_owner_change=True)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(memory=st.dictionaries(_texts, _json, max_size=5), extra=st.none() | st.dictionaries(_texts, _json))
    def check(memory: dict[str, object], extra: dict[str, object] | None) -> None:
        session = make_session(mode, "rt", memory=memory, extra_data=extra)
        store.upsert(session)
        got = store.read("rt")
        assert got is not None
        assert (got.memory, got.extra_data) == (memory, extra)

    check()


def test_deep_nesting_and_wide_integers_round_trip_through_the_store(make_store: StoreFactory) -> None:
    # Past orjson's 255 levels and 64-bit integers: the codec's slower, exact
    # paths, through the engine and back.
    deep: Any = {"leaf": 2**70}
    for i in range(300):
        deep = {f"k{i}": [deep]}
    memory = {"deep": deep, "wide": [2**64, -(2**63) - 1, 10**30], "fraction": 0.0012345678901234567}
    store = make_store(Mode.AGENT)
    store.upsert(make_session(Mode.AGENT, "deep", memory=memory))
    got = store.read("deep")
    assert got is not None and got.memory == memory
    assert type(got.memory["wide"][2]) is int


# --- the engine contract: guarantees each engine must keep, checked on both ---


def _qualified(store: BaseStorage) -> str:
    """The table's quoted name as a statement on the store's own connection names it."""
    db_schema = getattr(store, "schema", None)
    prefix = f'"{db_schema}".' if db_schema else ""
    return f'{prefix}"{store.table_name}"'


def _open_connections(store: BaseStorage) -> int:
    """Connections to the store's database that this process (SQLite) or any store (PostgreSQL) holds."""
    if isinstance(store, SqliteStorage):
        fds = Path("/proc/self/fd")
        target = str(store.db_path)
        return sum(1 for fd in fds.iterdir() if fd.is_symlink() and str(fd.readlink()) == target)
    import psycopg

    with psycopg.connect(store.db_url, autocommit=True) as conn:  # type: ignore[attr-defined]
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'agno_storage'").fetchone()
    assert row is not None
    return int(row[0])


def test_a_table_dropped_inside_a_transaction_raises_table_not_found(make_store: StoreFactory) -> None:
    store = make_store()
    store.upsert(make_session(Mode.AGENT, "s1"))
    make_store(table_name=store.table_name).drop()  # another program drops it
    with pytest.raises(StorageError) as info, store.transaction():
        store.read("s1")
    assert type(info.value) is TableNotFoundError
    assert info.value.table == store.table_name
    # Outside a transaction the store reads it as absent and makes it again on the next write.
    assert store.read("s1") is None
    store.upsert(make_session(Mode.AGENT, "s2"))
    assert store.get_all_session_ids() == ["s2"]


@pytest.mark.parametrize(("drop_at", "replayable"), [(BATCH_SIZE + 10, True), (REPLAY_LIMIT + BATCH_SIZE + 10, False)])
def test_upsert_many_replays_a_write_whose_table_vanished_only_while_it_kept_every_row(
    make_store: StoreFactory, drop_at: int, replayable: bool
) -> None:
    store = make_store()
    store.upsert(make_session(Mode.AGENT, "before"))
    total = REPLAY_LIMIT + 2 * BATCH_SIZE

    def sessions() -> Iterator[AgentSession]:
        for i in range(total):
            if i == drop_at:
                # The table vanishes under the write, inside its transaction: the statement
                # after it fails, the rollback brings the table back, and the call decides.
                store.drop()
            yield AgentSession(session_id=f"s{i:05d}", user_id="u")

    if replayable:
        # The rows taken so far are replayed, then the rest: each written once.
        assert store.upsert_many(sessions()) == total
        assert store.count() == total + 1
    else:
        with pytest.raises(StorageError, match="vanished"):
            store.upsert_many(sessions())
        assert store.get_all_session_ids() == ["before"], "nothing of the refused write is kept"


@pytest.mark.parametrize("call", ["read", "upsert", "upsert_many"])
def test_a_table_replaced_by_another_shape_raises_schema_mismatch(make_store: StoreFactory, call: str) -> None:
    store = make_store()
    store.upsert(make_session(Mode.AGENT, "s1"))
    other = make_store(table_name=store.table_name)
    other.drop()
    with other.transaction() as conn:
        conn.execute(f"CREATE TABLE {_qualified(store)} (session_id TEXT PRIMARY KEY, other TEXT)")
    with pytest.raises(StorageError) as info:
        if call == "read":
            store.read("s1")
        elif call == "upsert":
            store.upsert(make_session(Mode.AGENT, "s1"))
        else:
            store.upsert_many([make_session(Mode.AGENT, "s1")])
    assert type(info.value) is SchemaMismatchError


def test_nested_transactions_roll_back_only_the_inner_block(make_store: StoreFactory) -> None:
    store = make_store()
    store.create()
    with store.transaction():
        store.upsert(make_session(Mode.AGENT, "outer"))
        with pytest.raises(RuntimeError), store.transaction():
            store.upsert(make_session(Mode.AGENT, "inner"))
            raise RuntimeError("inner fails")
        store.upsert(make_session(Mode.AGENT, "after"))
    assert sorted(store.get_all_session_ids()) == ["after", "outer"]


def test_an_error_after_the_transaction_was_rolled_back_underneath_is_the_one_raised(
    make_store: StoreFactory,
) -> None:
    # The engine may roll the whole transaction back by itself (SQLite does on a
    # full disk); undoing the savepoint then must not hide the error that did it.
    store = make_store()
    store.create()
    with pytest.raises(RuntimeError, match="the real error"), store.transaction():
        store.upsert(make_session(Mode.AGENT, "outer"))
        with store.transaction() as conn:
            conn.execute("ROLLBACK")
            raise RuntimeError("the real error")
    assert store.get_all_session_ids() == []


@pytest.mark.parametrize("mode", [Mode.AGENT, Mode.TEAM, Mode.WORKFLOW_V2])
def test_an_old_table_is_refused_then_upgraded_in_place_keeping_every_row(make_store: StoreFactory, mode: Mode) -> None:
    store = make_store(mode)
    store.upsert_many(make_session(mode, f"s{i}", user_id=f"u{i % 2}") for i in range(5))
    added = [c for m in schema.MIGRATIONS if mode in m.modes for c in m.adds]
    with store.transaction() as conn:
        for column in added:
            if isinstance(store, SqliteStorage):  # SQLite drops no indexed column
                conn.execute(f'DROP INDEX IF EXISTS "idx_{store.table_name}_{column}"')
            conn.execute(f'ALTER TABLE {_qualified(store)} DROP COLUMN "{column}"')
    if mode is Mode.WORKFLOW_V2 and not schema.OLD_WORKFLOW_V2[store.ENGINE]:
        # Only agno's PostgreSQL storage (1.7.4) made such a table; on SQLite it is a v1 workflow table.
        with pytest.raises(SchemaMismatchError, match="is a workflow table, not a workflow_v2 table"):
            make_store(mode, table_name=store.table_name)
        return
    with pytest.raises(SchemaVersionError) as info:
        make_store(mode, table_name=store.table_name).read("s1")
    assert (info.value.found_version, info.value.current_version) == (1, schema.CURRENT_VERSION)
    old = make_store(mode, table_name=store.table_name)
    assert old.schema_shape() is not None and old.schema_shape().missing == frozenset(added)  # type: ignore[union-attr]
    old.upgrade_schema()
    old.upgrade_schema()  # idempotent
    assert old.count() == 5
    assert sorted(old.get_all_session_ids(user_id="u0")) == ["s0", "s2", "s4"]
    got = old.read("s1")
    assert got is not None and got.memory == make_session(mode, "s1").memory
    assert all(getattr(got, column) is None for column in added), "added columns start empty"
    stored = old.upsert(make_session(mode, "s1", user_id="u1"))
    assert stored.created_at == got.created_at, "created_at survives the upgrade and the update"
    assert old.read("s1") == stored


def test_a_refused_store_keeps_no_connection_open(make_store: StoreFactory) -> None:
    team = make_store(Mode.TEAM)
    team.create()
    team.close()
    # The closed store's PostgreSQL backends leave pg_stat_activity as they exit: counted once they are gone.
    before = _open_connections(team)
    settle = time.monotonic() + 10
    while time.monotonic() < settle:
        time.sleep(0.2)
        now = _open_connections(team)
        if now >= before:
            break
        before = now
    refusals = []
    for _ in range(3):
        with pytest.raises(SchemaMismatchError) as info:
            make_store(Mode.AGENT, table_name=team.table_name)
        refusals.append(info)  # kept alive: nothing may depend on garbage collection
    deadline = time.monotonic() + 10
    while _open_connections(team) > before and time.monotonic() < deadline:
        time.sleep(0.1)  # a PostgreSQL backend leaves pg_stat_activity when it exits
    assert _open_connections(team) <= before


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_uses_its_own_connections_and_leaves_the_parents(make_store: StoreFactory) -> None:
    store = make_store()
    store.upsert(make_session(Mode.AGENT, "parent"))
    pid = os.fork()
    if pid == 0:  # child: write through the inherited object, then close it
        code = 1
        try:
            store.upsert(make_session(Mode.AGENT, "child"))
            store.close()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's connections are untouched by the child's close: no error, no rerun needed.
    with store.transaction():
        store.upsert(make_session(Mode.AGENT, "after"))
    assert sorted(store.get_all_session_ids()) == ["after", "child", "parent"]


def test_the_tracer_sees_every_statement_the_store_runs(make_store: StoreFactory) -> None:
    seen: list[tuple[str, Any]] = []
    store = make_store(tracer=lambda statement, params: seen.append((statement, params)))
    store.upsert(make_session(Mode.AGENT, "s1"))
    assert any(s.startswith("CREATE TABLE") for s, _ in seen), "the table's DDL"
    written = [p for s, p in seen if s == store.statements.upsert_returning]
    assert len(written) == 1 and written[0][0] == "s1"
    seen.clear()
    store.read("s1", user_id="alice")
    assert [p for s, p in seen] == [["s1", "alice", 1]]
    assert seen[0][0].startswith("SELECT") and store.table_name in seen[0][0]
    seen.clear()
    store.upsert_many([make_session(Mode.AGENT, "s2"), make_session(Mode.AGENT, "s3")])
    assert [(s, [row[0] for row in p]) for s, p in seen] == [(store.statements.upsert, ["s2", "s3"])]
    store.tracer = None
    seen.clear()
    store.delete("s1")
    assert seen == []
    with pytest.raises(InvalidInputError):
        make_store(tracer="print")


def test_settings_must_be_bools(make_store: StoreFactory) -> None:
    for name in ("allow_owner_change", "auto_upgrade_schema", "recency_indexes"):
        with pytest.raises(InvalidInputError, match=name):
            make_store(**{name: "false"})


def test_the_core_store_refuses_to_be_given_a_mode_and_names_the_adapter(make_store: StoreFactory) -> None:
    store = make_store()
    with pytest.raises(InvalidInputError, match=r"agno_storage\.agno"):
        store.mode = "agent"  # what agno does to its storage=
    assert store.mode is Mode.AGENT


@pytest.mark.parametrize("mode", ALL_MODES)
def test_list_summaries_agree_with_list_under_every_filter(make_store: StoreFactory, mode: Mode) -> None:
    store = make_store(mode)
    entity = spec(mode).entity_column
    store.upsert_many(
        make_session(
            mode, f"s{i}", user_id=[None, "", "u1", "u2"][i % 4], **{entity: ["a", None][i % 2]}, created_at=i % 3
        )
        for i in range(12)
    )
    for user_id in (None, "", "u1", "nobody"):
        for entity_id in (None, "", "a"):
            for limit in (None, 0, 5):
                full = store.list(user_id=user_id, entity_id=entity_id, limit=limit)
                summaries = store.list_summaries(user_id=user_id, entity_id=entity_id, limit=limit)
                assert summaries == [
                    SessionSummary(
                        session_id=s.session_id,
                        user_id=s.user_id,
                        entity_id=s.entity_id,
                        created_at=s.created_at,
                        updated_at=s.updated_at,
                    )
                    for s in full
                ]


@pytest.mark.parametrize("mode", ALL_MODES)
def test_read_summary_agrees_with_read_under_every_owner_and_reads_no_json(
    make_store: StoreFactory, mode: Mode
) -> None:
    seen: list[str] = []
    store = make_store(mode, tracer=lambda statement, params: seen.append(statement))
    entity = spec(mode).entity_column
    store.upsert_many(
        make_session(mode, f"s{i}", user_id=[None, "", "u1", "u2"][i], **{entity: ["a", None][i % 2]}) for i in range(4)
    )
    for session_id in ("s0", "s1", "s2", "s3", "missing"):
        for user_id in (None, "", "u1", "nobody"):
            full = store.read(session_id, user_id=user_id)
            seen.clear()
            summary = store.read_summary(session_id, user_id=user_id)
            assert summary == (
                None
                if full is None
                else SessionSummary(
                    session_id=full.session_id,
                    user_id=full.user_id,
                    entity_id=full.entity_id,
                    created_at=full.created_at,
                    updated_at=full.updated_at,
                )
            )
            json_columns = [c.name for c in spec(mode).columns if c.kind in JSON_KINDS]
            assert json_columns and not any(column in " ".join(seen) for column in json_columns)
    with pytest.raises(InvalidInputError):
        store.read_summary("")


def test_list_summaries_read_no_json_column(make_store: StoreFactory) -> None:
    seen: list[str] = []
    store = make_store(tracer=lambda statement, params: seen.append(statement))
    store.upsert(make_session(Mode.AGENT, "s1"))
    seen.clear()
    assert [s.session_id for s in store.list_summaries(limit=20)] == ["s1"]
    (statement,) = seen
    assert not any(column in statement for column in ("memory", "session_data", "extra_data", "agent_data"))


def test_a_filter_holding_nul_matches_nothing_on_either_engine(make_store: StoreFactory) -> None:
    """PostgreSQL text cannot hold U+0000, so no row there has it: a filter holding one finds nothing, as on
    SQLite where no such session was written, instead of an error about storing a value."""
    store = make_store("agent")
    store.upsert(make_session(Mode.AGENT, "s1", user_id="u"))
    nul = "u\x00"
    assert store.read("s1\x00") is None
    assert store.read("s1", user_id=nul) is None
    assert store.list(user_id=nul) == [] and store.list(entity_id=nul) == []
    assert store.list_summaries(user_id=nul) == []
    assert store.count(user_id=nul) == 0 and store.count(entity_id=nul) == 0
    assert store.get_all_session_ids(user_id=nul) == []
    assert store.delete("s1\x00") is False and store.delete("s1", user_id=nul) is False
    assert store.history("s1", user_id=nul) == []
    assert store.search("anything", user_id=nul) == [] and store.usage(user_id=nul) == []
    store.enable_changes()
    assert store.changes(user_id=nul) == []
    assert store.read("s1") is not None  # nothing above touched the session


def test_a_bulk_write_refused_for_several_sessions_names_the_first_in_the_callers_order(
    make_store: StoreFactory,
) -> None:
    store = make_store("agent")
    store.upsert(make_session(Mode.AGENT, "k5", user_id="u"))
    store.upsert(make_session(Mode.AGENT, "k4", user_id="w"))
    batch = [make_session(Mode.AGENT, sid, user_id="v") for sid in ("k9", "k5", "k4")]
    with pytest.raises(OwnershipError) as caught:
        store.upsert_many(batch)
    assert caught.value.session_id == "k5"
    assert store.read("k9") is None  # nothing of the batch was written


def test_a_bulk_write_names_the_session_refused_though_another_was_claimed_within_it(
    make_store: StoreFactory,
) -> None:
    """``y`` is new, written with no owner and then claimed by ``b`` within the batch; ``z`` is another's. The
    refusal names ``z``, not ``y`` (whose first row only the batch's own later row overtook)."""
    store = make_store("agent")
    store.upsert(make_session(Mode.AGENT, "z", user_id="w"))
    batch = [
        make_session(Mode.AGENT, "y", user_id=None),
        make_session(Mode.AGENT, "y", user_id="b"),
        make_session(Mode.AGENT, "z", user_id="v"),
    ]
    with pytest.raises(OwnershipError) as caught:
        store.upsert_many(batch)
    assert (caught.value.session_id, caught.value.user_id) == ("z", "v")
    assert store.read("y") is None
    # A session's earlier row refused, its later one let through: that earlier row is named.
    store.upsert(make_session(Mode.AGENT, "x", user_id="w"))
    with pytest.raises(OwnershipError) as caught:
        store.upsert_many([make_session(Mode.AGENT, "x", user_id="a"), make_session(Mode.AGENT, "x", user_id="w")])
    assert (caught.value.session_id, caught.value.user_id) == ("x", "a")


def test_upsert_many_of_nothing_or_of_a_session_it_refuses_makes_no_table(make_store: StoreFactory) -> None:
    """ "Nothing written" holds for the file too: no table made (on SQLite, no switch to WAL either)."""
    store = make_store()
    assert store.upsert_many([]) == 0
    assert store.upsert_many(iter([])) == 0
    with pytest.raises(InvalidInputError):
        store.upsert_many([AgentSession(session_id="s1", memory={"x": float("nan")})])
    assert not store.table_exists()
    store.upsert_many([AgentSession(session_id="s1")])
    assert store.table_exists() and store.get_all_session_ids() == ["s1"]


def test_a_row_another_writer_stored_with_an_empty_session_id_can_be_deleted(make_store: StoreFactory) -> None:
    """agno-golang's Upsert, Read and Delete take session_id '' (its NOT NULL column allows it): such a row is
    listed, and delete('') removes it (scoped to its owner as any delete); writing '' stays refused."""
    store = make_store()
    store.upsert(make_session(Mode.AGENT, "s1", user_id="alice"))
    store.upsert(make_session(Mode.AGENT, "s2", user_id="alice"))
    table = store.statements.count.removeprefix("SELECT COUNT(*) FROM ")
    with store.transaction() as conn:
        conn.execute(f"UPDATE {table} SET session_id = '' WHERE session_id = 's1'")
    assert sorted(store.get_all_session_ids()) == ["", "s2"]
    assert store.delete("", user_id="bob") is False
    assert store.delete("", user_id="alice") is True
    assert store.get_all_session_ids() == ["s2"]
    assert store.delete("") is False
    with pytest.raises(InvalidInputError, match="session_id"):
        store.upsert(make_session(Mode.AGENT, ""))
