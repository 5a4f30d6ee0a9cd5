"""The PostgreSQL backend: agno 1.8.4's layout, interop, concurrency and lost servers.

Behaviour both backends share is in test_conformance.py; this file covers
what only PostgreSQL has. The ``pg_server`` fixture (conftest.py) starts one
throwaway server for the run (tests/pgserver.py).
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from agno_storage import (
    AgentSession,
    ConnectionLostError,
    InvalidInputError,
    Mode,
    OwnershipError,
    SchemaMismatchError,
    SchemaVersionError,
    StorageError,
    TeamSession,
    WorkflowSession,
    WorkflowSessionV2,
    codec,
)
from agno_storage.backends.batches import BATCH_SIZE
from agno_storage.modes import ColumnKind, spec
from agno_storage.urls import open_storage, postgres_conninfo
from tests.pgserver import PgServer, require_pg
from tests.sessions import make_session
from tests.support import finishes, run_together

try:
    import psycopg

    from agno_storage.backends.postgres import PostgresStorage
    from agno_storage.backends.postgres_ddl import recency_index_name
except ImportError:  # require_pg() below skips, or fails under AGNO_STORAGE_REQUIRE_PG=1
    pass

MODES = [m.value for m in Mode]
CLASSES: dict[str, Any] = {
    "agent": AgentSession,
    "team": TeamSession,
    "workflow": WorkflowSession,
    "workflow_v2": WorkflowSessionV2,
}
CORPUS: dict[str, list[dict[str, Any]]] = json.loads(
    (Path(__file__).resolve().parent.parent / "fixtures" / "corpus.json").read_text(encoding="utf-8")
)
_names = itertools.count()


@pytest.fixture(autouse=True)
def _needs_postgres() -> None:
    require_pg()


def fresh_name(prefix: str = "pg") -> str:
    return f"{prefix}{next(_names)}_{int(time.time() * 1000) % 100000}"


@pytest.fixture
def dsn(pg_server: PgServer) -> str:
    return pg_server.dsn


@pytest.fixture
def stores(dsn: str) -> Iterator[list[PostgresStorage]]:
    """Stores a test opens; each is dropped and closed afterwards."""
    made: list[PostgresStorage] = []
    yield made
    for store in made:
        try:
            store.drop()
        finally:
            store.close()


def open_store(stores: list[PostgresStorage], dsn: str, mode: str = "agent", **kwargs: Any) -> PostgresStorage:
    kwargs.setdefault("table_name", fresh_name(f"t_{mode}_"))
    store = PostgresStorage(db_url=dsn, mode=mode, **kwargs)
    stores.append(store)
    return store


def fetch(dsn: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description is not None else []


def index_names(dsn: str, table: str) -> list[str]:
    return [n for (n,) in fetch(dsn, "SELECT indexname FROM pg_indexes WHERE tablename = %s", (table,))]


def table_catalog(dsn: str, schema: str, table: str) -> dict[str, Any]:
    """Columns (name, type, nullable, default) and index definitions, with the table name masked."""
    columns = fetch(
        dsn,
        "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (schema, table),
    )
    indexes = fetch(
        dsn,
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = %s ORDER BY indexname",
        (schema, table),
    )
    return {
        "columns": columns,
        "indexes": sorted((n.replace(table, "<t>"), d.replace(table, "<t>")) for n, d in indexes),
    }


# --- agno 1.8.4 itself -------------------------------------------------------


@pytest.fixture
def agno_pg() -> Any:
    pytest.importorskip("sqlalchemy")
    return pytest.importorskip("agno.storage.postgres")


def agno_store(server: PgServer, table: str, mode: str) -> Any:
    from agno.storage.postgres import PostgresStorage as AgnoStorage

    return AgnoStorage(table_name=table, schema="ai", db_url=server.sqlalchemy_url(), mode=mode)  # type: ignore[arg-type]


def agno_fields(session: Any, names: list[str]) -> dict[str, Any]:
    return {n: getattr(session, n) for n in names}


def data_fields(mode: str) -> list[str]:
    names = [a.name for a in attrs.fields(CLASSES[mode]) if a.name not in ("created_at", "updated_at")]
    if mode == "workflow_v2":
        # agno's workflow_v2 session has no memory, and turns runs into objects.
        names = [n for n in names if n not in ("memory", "runs")]
    return names


def storable(raw: dict[str, Any]) -> bool:
    # JSONB cannot hold U+0000 (see test_nul_in_json_is_refused_and_writes_nothing).
    return "\\u0000" not in json.dumps(raw)


@pytest.mark.parametrize("mode", MODES)
def test_create_makes_the_table_agno_makes(
    pg_server: PgServer, stores: list[PostgresStorage], mode: str, agno_pg: Any
) -> None:
    ours = open_store(stores, pg_server.dsn, mode)
    ours.create()
    theirs_name = fresh_name(f"agno_{mode}_")
    theirs = agno_store(pg_server, theirs_name, mode)
    theirs.create()
    try:
        mine = table_catalog(pg_server.dsn, "ai", ours.table_name)
        recency = [(n, d) for n, d in mine["indexes"] if n.startswith("rx_")]
        mine["indexes"] = [i for i in mine["indexes"] if i not in recency]
        assert mine == table_catalog(pg_server.dsn, "ai", theirs_name)
        entity = {"agent": "agent_id", "team": "team_id"}.get(mode, "workflow_id")
        key = 'created_at DESC NULLS LAST, session_id COLLATE "C"'
        assert sorted(recency) == sorted(
            (f"rx_ai_<t>_{lead}_recent", f"CREATE INDEX rx_ai_<t>_{lead}_recent ON ai.<t> USING btree ({cols}{key})")
            for lead, cols in (("user_id", "user_id, "), (entity, f"{entity}, "), ("all", ""))
        )
    finally:
        theirs.drop()
        theirs.db_engine.dispose()


def _plan(dsn: str, store: PostgresStorage, **filters: Any) -> str:
    """EXPLAIN of the statement ``store.list(**filters, limit=20)`` runs, with sorting priced out."""
    seen: list[tuple[str, Any]] = []
    store.tracer = lambda statement, params: seen.append((statement, params))
    try:
        store.list(**filters, limit=20)
    finally:
        store.tracer = None
    statement, params = seen[-1]
    assert statement.startswith("SELECT") and statement.endswith("LIMIT %s")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET enable_sort = off")
        conn.execute("SET enable_seqscan = off")
        rows = conn.execute("EXPLAIN (COSTS OFF) " + statement, params).fetchall()
    return "; ".join(r[0].strip() for r in rows)


def test_recency_indexes_give_newest_first_without_a_sort(dsn: str, stores: list[PostgresStorage]) -> None:
    store = open_store(stores, dsn)
    plain = open_store(stores, dsn, recency_indexes=False)
    for st in (store, plain):
        st.upsert_many(
            make_session(Mode.AGENT, f"s{i:03}", user_id=f"u{i % 3}", agent_id=f"a{i % 2}", created_at=1000 + i // 7)
            for i in range(60)
        )
    for filters in ({"user_id": "u1"}, {"entity_id": "a0"}, {}):
        with_index, without = _plan(dsn, store, **filters), _plan(dsn, plain, **filters)
        assert "Sort" not in with_index and "_recent" in with_index, with_index
        assert "Sort" in without, without
        # Same rows in the same order either way.
        assert [s.session_id for s in store.list(limit=20, **filters)] == [
            s.session_id for s in plain.list(limit=20, **filters)
        ]
    assert not [n for n in index_names(dsn, plain.table_name) if n.startswith("rx_")]


def test_create_recency_indexes_on_agnos_table_keeps_agno_working(pg_server: PgServer, agno_pg: Any) -> None:
    from agno.storage.session.agent import AgentSession as AgnoAgentSession

    name = fresh_name("agno_rx_")
    theirs = agno_store(pg_server, name, "agent")
    theirs.create()
    ours = PostgresStorage(name, db_url=pg_server.dsn)
    try:
        before = table_catalog(pg_server.dsn, "ai", name)
        ours.create_recency_indexes()
        ours.create_recency_indexes()  # idempotent
        after = table_catalog(pg_server.dsn, "ai", name)
        assert after["columns"] == before["columns"]
        added = [n for n, _ in after["indexes"] if (n, _) not in before["indexes"]]
        assert added == ["rx_ai_<t>_agent_id_recent", "rx_ai_<t>_all_recent", "rx_ai_<t>_user_id_recent"]
        theirs.upsert(AgnoAgentSession(session_id="a1", user_id="u", agent_id="x", memory={"runs": []}))
        ours.upsert(make_session(Mode.AGENT, "o1", user_id="u"))
        got = theirs.read("o1")
        assert got is not None and got.user_id == "u"
        assert sorted(s.session_id for s in ours.list(user_id="u")) == ["a1", "o1"]
    finally:
        ours.drop()
        ours.close()
        theirs.db_engine.dispose()


def test_a_table_made_again_after_a_rename_is_refused_naming_the_indexes_the_renamed_table_holds(
    dsn: str, stores: list[PostgresStorage]
) -> None:
    """A renamed table keeps its indexes' names: without the check the new table got no index at all or a bare error."""
    first = open_store(stores, dsn)
    first.upsert(make_session(Mode.AGENT, "kept", user_id="u"))
    renamed = fresh_name("renamed_")
    fetch(dsn, f'ALTER TABLE ai."{first.table_name}" RENAME TO "{renamed}"')
    again = open_store(stores, dsn, table_name=first.table_name)  # the fixture drops it (and `first`, the same)
    with pytest.raises(StorageError) as info:
        again.create()
    message = str(info.value)
    assert f"ix_ai_{again.table_name}_user_id" in message and f"an index of table ai.{renamed}" in message
    assert "ALTER INDEX" in message
    assert fetch(dsn, "SELECT to_regclass(%s)::text", (f"ai.{again.table_name}",)) == [(None,)]  # nothing made
    # The indexes renamed (the key may stay: PostgreSQL names the new one's), the table is made with every
    # index of its own; the renamed one keeps its rows.
    for name in index_names(dsn, renamed):
        if not name.endswith("_pkey"):
            fetch(dsn, f'ALTER INDEX ai."{name}" RENAME TO "{name.replace(again.table_name, renamed)}"')
    again.create()
    # agno's three and the three recency indexes as named for the table; its key is PostgreSQL's to name (the
    # renamed table's key kept <table>_pkey, so this one's is <table>_pkey1, as agno's own table would get).
    made = sorted(index_names(dsn, again.table_name))
    assert len(made) == 7 and f"{again.table_name}_pkey1" in made
    assert [n for n in made if not n.endswith("_pkey1")] == sorted(
        n.replace(renamed, again.table_name) for n in index_names(dsn, renamed) if not n.endswith("_pkey")
    )
    assert f"{again.table_name}_pkey" in index_names(dsn, renamed)
    assert fetch(dsn, f'SELECT session_id FROM ai."{renamed}"') == [("kept",)]
    fetch(dsn, f'DROP TABLE ai."{renamed}"')


def test_recency_indexes_are_refused_where_another_table_holds_their_names(
    dsn: str, stores: list[PostgresStorage]
) -> None:
    """``CREATE INDEX IF NOT EXISTS`` would see the other table's index and make none."""
    store = open_store(stores, dsn, recency_indexes=False)
    store.create()
    other = open_store(stores, dsn, table_name=fresh_name("other_"))
    other.create()
    taken = recency_index_name(store.table_name, None, "ai")
    fetch(dsn, f'ALTER INDEX ai."{recency_index_name(other.table_name, None, "ai")}" RENAME TO "{taken}"')
    with pytest.raises(StorageError, match=f"an index of table ai.{other.table_name}"):
        store.create_recency_indexes()
    assert not [n for n in index_names(dsn, store.table_name) if n.startswith("rx_")]


def test_recency_index_names_stay_within_63_bytes_and_apart() -> None:
    base = "t" * 62
    names = {recency_index_name(base + end, lead, "ai") for end in "ab" for lead in ("user_id", "agent_id", None)}
    assert len(names) == 6
    assert all(len(n.encode()) <= 63 for n in names)
    assert all(n.endswith(("_user_id_recent", "_agent_id_recent", "_all_recent")) for n in names)
    assert recency_index_name("short", None, None) == "rx_short_all_recent"
    assert recency_index_name("short", "user_id", "ai") == "rx_ai_short_user_id_recent"


@pytest.mark.parametrize("table", ["t" * 40, "agent_sessions"])  # past 63 characters; within them, past 63 bytes
def test_long_non_ascii_names_get_every_index(dsn: str, stores: list[PostgresStorage], table: str) -> None:
    # Two-byte characters: the cut at 63 bytes lands inside one.
    from agno_storage.schema import Flavor

    store = open_store(stores, dsn, schema="é" * 25, table_name=fresh_name(table))
    store.create()
    store.upsert(make_session(Mode.AGENT, "s1", user_id="u"))
    recency = sorted(n for n in index_names(dsn, store.table_name) if n.startswith("rx_"))
    assert len(recency) == 3 and all(len(n.encode()) <= 63 for n in recency), recency
    for end in ("_user_id_recent", "_agent_id_recent", "_all_recent"):
        assert sum(n.endswith(end) for n in recency) == 1, (end, recency)
    agno = [n for n in index_names(dsn, store.table_name) if n.startswith("ix_")]
    assert len(agno) == len(store.spec.agno_indexed) and all(len(n.encode()) <= 63 for n in agno), agno
    shape = store.schema_shape()
    assert shape is not None and shape.flavor is Flavor.AGNO
    assert store.count(user_id="u") == 1


def test_long_names_get_every_index_agno_declares_named_as_agno_names_them(
    pg_server: PgServer, dsn: str, stores: list[PostgresStorage], agno_pg: Any
) -> None:
    """Past 63 characters SQLAlchemy shortens agno's index names (55 characters, '_', 4 hex digits of an MD5);
    cut by PostgreSQL instead, they all became one name and every index after the first was skipped. A table
    agno made so reads as agno's, and this store makes the same names."""
    from agno_storage.schema import Flavor

    table = fresh_name("b" * 40)
    from agno.storage.postgres import PostgresStorage as AgnoPostgres

    theirs = AgnoPostgres(table_name=table, schema="y" * 30, db_url=pg_server.sqlalchemy_url(), mode="agent")
    theirs.create()
    agno_names = sorted(n for n in index_names(dsn, table) if n.startswith("ix_"))
    ours = open_store(stores, dsn, schema="y" * 30, table_name=table)
    shape = ours.schema_shape()
    assert shape is not None and shape.flavor is Flavor.AGNO
    ours.drop()
    ours.create()
    made = sorted(n for n in index_names(dsn, table) if n.startswith("ix_"))
    assert made == agno_names and len(made) == len(ours.spec.agno_indexed), made
    assert all(len(n) <= 63 for n in made)


@pytest.mark.parametrize("schema", ["sch%s", "100%"])
def test_a_percent_sign_in_a_schema_name_is_refused_by_name(schema: str) -> None:
    """Every write would fail on it (psycopg takes the % for a placeholder): refused when the store is made."""
    with pytest.raises(InvalidInputError, match="'%'"):
        PostgresStorage("t", db_url="postgresql://u@localhost/db", schema=schema)


@pytest.mark.parametrize("mode", MODES)
def test_we_read_and_update_what_agno_wrote(
    pg_server: PgServer, stores: list[PostgresStorage], mode: str, agno_pg: Any
) -> None:
    table = fresh_name(f"agno_{mode}_")
    theirs = agno_store(pg_server, table, mode)
    theirs.create()
    agno_classes = {
        "agent": "agno.storage.session.agent.AgentSession",
        "team": "agno.storage.session.team.TeamSession",
        "workflow": "agno.storage.session.workflow.WorkflowSession",
        "workflow_v2": "agno.storage.session.v2.workflow.WorkflowSession",
    }
    module, _, cls_name = agno_classes[mode].rpartition(".")
    agno_cls = getattr(__import__(module, fromlist=[cls_name]), cls_name)
    ours_session = make_session(mode, "s1", user_id="alice")
    fields = data_fields(mode)
    written = theirs.upsert(agno_cls(**{n: getattr(ours_session, n) for n in fields}))
    assert written is not None
    theirs.upsert(agno_cls(session_id="s-none"))  # every JSON column None: JSON null or SQL NULL

    ours = open_store(stores, pg_server.dsn, mode, table_name=table)
    got = ours.read("s1")
    assert got is not None
    assert agno_fields(got, fields) == agno_fields(ours_session, fields)
    assert got.created_at == written.created_at
    assert got.updated_at is None  # agno leaves it NULL on insert
    empty = ours.read("s-none")
    assert empty is not None and empty.memory is None and empty.session_data is None and empty.user_id is None

    time.sleep(1.1)
    updated = ours.upsert(attrs.evolve(got, session_data={"session_name": "renamed"}))
    assert updated.created_at == written.created_at
    # The column default rounds to the nearest second; time.time() is truncated.
    assert updated.updated_at is not None and updated.updated_at >= written.created_at
    again = theirs.read("s1")
    assert again is not None
    assert again.session_data == {"session_name": "renamed"}
    assert again.created_at == written.created_at
    assert again.updated_at == updated.updated_at
    assert sorted(ours.get_all_session_ids()) == ["s-none", "s1"]
    theirs.db_engine.dispose()


@pytest.mark.parametrize("mode", MODES)
def test_agno_reads_the_corpus_we_wrote(
    pg_server: PgServer, stores: list[PostgresStorage], mode: str, agno_pg: Any
) -> None:
    ours = open_store(stores, pg_server.dsn, mode)
    raws = [r for r in CORPUS[mode] if storable(r)]
    assert ours.upsert_many(CLASSES[mode](**r) for r in raws) == len(raws)
    theirs = agno_store(pg_server, ours.table_name, mode)
    fields = [n for n in data_fields(mode) if n != "user_id"]  # '' reads back as None here
    checked = 0
    for raw in raws:
        if mode == "workflow_v2" and raw.get("runs") and not isinstance(raw["runs"], list):
            continue  # agno 1.8.4 cannot rebuild a JSON-object `runs`
        got = theirs.read(raw["session_id"])
        assert got is not None, raw["session_id"]
        # What JSONB makes of the numbers (see the test below), computed by the server itself.
        json_fields = [n for n in fields if not isinstance(raw[n], str)]
        expected = codec.loads(
            fetch(pg_server.dsn, "SELECT %s::jsonb::text", (codec.dumps({n: raw[n] for n in json_fields}),))[0][0]
        )
        # The core spells "no id" as ''; agno's layout spells it NULL.
        required = {c.name for c in spec(Mode(mode)).columns if c.kind is ColumnKind.REQUIRED_TEXT}
        expected.update({n: (raw[n] or None) if n in required else raw[n] for n in fields if n not in json_fields})
        assert agno_fields(got, fields) == expected
        assert got.created_at == raw["created_at"]
        assert got.user_id == (raw["user_id"] or None)
        checked += 1
    assert checked > 0
    theirs.db_engine.dispose()


def test_jsonb_keeps_integers_exact_and_normalises_exponent_floats(dsn: str, stores: list[PostgresStorage]) -> None:
    store = open_store(stores, dsn)
    memory = {"big": 2**70, "neg": -(2**63), "one": 1.0, "half": 0.5, "tiny": 1e-7, "huge": 1e20, "negzero": -0.0}
    store.upsert(AgentSession(session_id="n", memory=memory))
    got = store.read("n")
    assert got is not None and got.memory is not None
    assert got.memory["big"] == 2**70 and got.memory["neg"] == -(2**63)
    assert type(got.memory["one"]) is float and type(got.memory["half"]) is float and got.memory["tiny"] == 1e-7
    # numeric has no exponent: 1e20 comes back as an int; nor negative zero: -0.0 comes back as 0.0.
    assert got.memory["huge"] == 10**20 and type(got.memory["huge"]) is int
    assert got.memory["negzero"] == 0 and type(got.memory["negzero"]) is float
    assert str(got.memory["negzero"]) == "0.0"


def test_nul_in_json_is_refused_and_writes_nothing(dsn: str, stores: list[PostgresStorage]) -> None:
    store = open_store(stores, dsn)
    with pytest.raises(InvalidInputError) as info:
        store.upsert(AgentSession(session_id="z", memory={"x": "nul\x00byte"}))
    assert info.value.session_id == "z"
    with pytest.raises(InvalidInputError):
        store.upsert_many([AgentSession(session_id="ok"), AgentSession(session_id="z", extra_data={"k": "\x00"})])
    with pytest.raises(InvalidInputError):
        store.upsert(AgentSession(session_id="nul\x00id"))
    assert store.get_all_session_ids() == []


def test_pre_1_2_agent_table_is_upgraded_in_place(
    pg_server: PgServer, stores: list[PostgresStorage], agno_pg: Any
) -> None:
    table = fresh_name("old_agent_")
    theirs = agno_store(pg_server, table, "agent")
    theirs.create()
    theirs.upsert(agno_pg.AgentSession(session_id="old", user_id="u", agent_id="a", memory={"m": 1}))
    theirs.db_engine.dispose()
    fetch(pg_server.dsn, f'ALTER TABLE ai."{table}" DROP COLUMN team_session_id')

    ours = open_store(stores, pg_server.dsn, "agent", table_name=table)
    with pytest.raises(SchemaVersionError):
        ours.read("old")
    ours.upgrade_schema()
    got = ours.read("old")
    assert got is not None and got.memory == {"m": 1} and got.team_session_id is None
    ours.upsert(attrs.evolve(got, team_session_id="ts"))
    assert fetch(pg_server.dsn, f'SELECT team_session_id FROM ai."{table}"') == [("ts",)]
    assert fetch(
        pg_server.dsn, "SELECT 1 FROM pg_indexes WHERE indexname = %s", (f"ix_ai_{table}_team_session_id",)
    ) == [(1,)]


def agno_catalog(pg_server: PgServer, mode: str) -> dict[str, Any]:
    """The columns and indexes of a table agno 1.8.4 makes now for ``mode``, in any order."""
    table = fresh_name(f"agno_{mode}_")
    theirs = agno_store(pg_server, table, mode)
    theirs.create()
    try:
        return unordered(table_catalog(pg_server.dsn, "ai", table))
    finally:
        theirs.drop()
        theirs.db_engine.dispose()


def unordered(catalog: dict[str, Any]) -> dict[str, Any]:
    # An added column comes last, where agno's CREATE TABLE puts it in between.
    return {"columns": sorted(catalog["columns"]), "indexes": catalog["indexes"]}


def make_old_table(pg_server: PgServer, mode: str, session: Any, missing: list[str]) -> str:
    """agno's ``mode`` table holding ``session``, then without the columns ``missing``; its name."""
    table = fresh_name(f"old_{mode}_")
    theirs = agno_store(pg_server, table, mode)
    theirs.create()
    theirs.upsert(session)
    theirs.db_engine.dispose()
    drops = ", ".join(f"DROP COLUMN {name}" for name in missing)
    fetch(pg_server.dsn, f'ALTER TABLE ai."{table}" {drops}')
    assert not {c[0] for c in table_catalog(pg_server.dsn, "ai", table)["columns"]} & set(missing)
    return table


def assert_refused_until_upgraded(store: PostgresStorage, missing: list[str]) -> None:
    """Reads and writes raise SchemaVersionError naming upgrade_schema() and the missing columns."""
    for call in (lambda: store.read("old"), lambda: store.upsert(CLASSES[store.mode.value](session_id="new"))):
        with pytest.raises(SchemaVersionError, match=r"upgrade_schema\(\)") as info:
            call()
        assert info.value.table == store.table_name
        assert (info.value.found_version, info.value.current_version) == (1, 2)
        assert all(name in str(info.value) for name in missing)


def test_workflow_v2_table_without_name_and_runs_is_upgraded_in_place(
    pg_server: PgServer, stores: list[PostgresStorage], agno_pg: Any
) -> None:
    from agno.storage.session.v2.workflow import WorkflowSession as AgnoWorkflowSessionV2

    missing = ["workflow_name", "runs"]
    old = AgnoWorkflowSessionV2(
        session_id="old", user_id="u", workflow_id="w", workflow_data={"steps": 1}, session_data={"n": 2}
    )
    table = make_old_table(pg_server, "workflow_v2", old, missing)
    before = table_catalog(pg_server.dsn, "ai", table)

    ours = open_store(stores, pg_server.dsn, "workflow_v2", table_name=table)
    assert_refused_until_upgraded(ours, missing)
    assert table_catalog(pg_server.dsn, "ai", table) == before  # refusing changed nothing

    ours.upgrade_schema()
    shape = ours.schema_shape()
    assert shape is not None and shape.version == 2 and shape.missing == frozenset()
    assert unordered(table_catalog(pg_server.dsn, "ai", table)) == agno_catalog(pg_server, "workflow_v2")
    got = ours.read("old")
    assert got is not None and got.created_at is not None
    assert got == WorkflowSessionV2(
        session_id="old",
        user_id="u",
        workflow_id="w",
        workflow_data={"steps": 1},
        session_data={"n": 2},
        created_at=got.created_at,
    )

    runs = [{"run_id": "r1", "status": "COMPLETED"}, {"run_id": "r2", "status": "RUNNING"}]
    new = WorkflowSessionV2(session_id="new", user_id="u", workflow_id="w", workflow_name="pipeline", runs=runs)
    ours.upsert(new)
    reopened = open_store(stores, pg_server.dsn, "workflow_v2", table_name=table)
    back = reopened.read("new")
    assert back is not None and (back.workflow_name, back.runs) == ("pipeline", runs)
    assert fetch(pg_server.dsn, f'SELECT workflow_name, runs FROM ai."{table}" WHERE session_id = %s', ("new",)) == [
        ("pipeline", runs)
    ]


def test_pre_1_2_team_table_is_upgraded_in_place(
    pg_server: PgServer, stores: list[PostgresStorage], agno_pg: Any
) -> None:
    from agno.storage.session.team import TeamSession as AgnoTeamSession

    old = AgnoTeamSession(session_id="old", user_id="u", team_id="t", memory={"m": 1})
    table = make_old_table(pg_server, "team", old, ["team_session_id"])

    ours = open_store(stores, pg_server.dsn, "team", table_name=table)
    assert_refused_until_upgraded(ours, ["team_session_id"])
    ours.upgrade_schema()
    assert unordered(table_catalog(pg_server.dsn, "ai", table)) == agno_catalog(pg_server, "team")
    got = ours.read("old")
    assert got is not None and (got.team_id, got.memory, got.team_session_id) == ("t", {"m": 1}, None)
    ours.upsert(attrs.evolve(got, team_session_id="ts"))
    assert fetch(pg_server.dsn, f'SELECT team_session_id FROM ai."{table}"') == [("ts",)]


def test_another_modes_table_raises(dsn: str, stores: list[PostgresStorage]) -> None:
    team = open_store(stores, dsn, "team")
    team.create()
    with pytest.raises(SchemaMismatchError) as info:
        PostgresStorage(team.table_name, db_url=dsn, mode="workflow")
    assert info.value.found_mode == "team"


@pytest.mark.parametrize("mode", MODES)
def test_agno_golangs_own_postgres_table_is_refused(dsn: str, mode: str) -> None:
    # agno-golang's agno/storage/postgres DDL: every mode in one table, the session in one JSONB.
    table = fresh_name("agno_sessions_")
    fetch(
        dsn,
        f'CREATE TABLE public."{table}" (session_id TEXT PRIMARY KEY, user_id TEXT, entity_id TEXT,'
        " session_data JSONB, created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,"
        " updated_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP)",
    )
    fetch(
        dsn,
        f'INSERT INTO public."{table}" (session_id, user_id, entity_id, session_data) VALUES (%s, %s, %s, %s)',
        ("s1", "u", "a", '{"session_id": "s1"}'),
    )
    try:
        with pytest.raises(SchemaMismatchError, match="not a sessions table this code knows") as info:
            PostgresStorage(table, db_url=dsn, schema="public", mode=mode)
        assert info.value.found_mode is None and info.value.table == table
        assert fetch(dsn, f'SELECT session_id, session_data FROM public."{table}"') == [("s1", {"session_id": "s1"})]
    finally:
        fetch(dsn, f'DROP TABLE public."{table}"')


# --- identifiers, URLs, poolers ---------------------------------------------------


def test_odd_schema_names_are_quoted(dsn: str, stores: list[PostgresStorage]) -> None:
    store = open_store(stores, dsn, schema='Odd "Schema"; --', table_name="MixedCase")
    store.upsert(make_session(Mode.AGENT, "s1"))
    assert fetch(dsn, 'SELECT session_id FROM "Odd ""Schema""; --"."MixedCase"') == [("s1",)]
    assert store.read("s1") is not None


def test_schema_none_uses_the_search_path(dsn: str, stores: list[PostgresStorage]) -> None:
    store = open_store(stores, dsn, schema=None)
    store.upsert(make_session(Mode.AGENT, "s1"))
    assert fetch(dsn, "SELECT schemaname FROM pg_tables WHERE tablename = %s", (store.table_name,)) == [("public",)]
    assert fetch(
        dsn, "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexname LIKE 'ix_%%'", (store.table_name,)
    )


def test_a_url_asking_for_another_client_encoding_still_reads_and_writes_any_text(
    pg_server: PgServer, stores: list[PostgresStorage]
) -> None:
    """The codec's text is UTF-8; a client_encoding in the URL would make the driver fail (raw
    UnicodeEncodeError) on text that encoding lacks."""
    store = open_store(stores, pg_server.dsn + "?client_encoding=LATIN1")
    store.upsert(make_session(Mode.AGENT, "sid-漢字", user_id="ユーザー", memory={"text": "😀 € ñ"}))
    got = store.read("sid-漢字", user_id="ユーザー")
    assert got is not None and got.memory == {"text": "😀 € ñ"}
    assert store.count(user_id="ユーザー") == 1
    assert [s.session_id for s in store.list(user_id="ユーザー")] == ["sid-漢字"]
    assert store.read("сессия") is None
    assert store.delete("сессия") is False


def test_sqlalchemy_urls_are_accepted(pg_server: PgServer, stores: list[PostgresStorage]) -> None:
    store = open_store(stores, pg_server.sqlalchemy_url())
    store.upsert(make_session(Mode.AGENT, "s1"))
    assert store.read("s1") is not None
    assert postgres_conninfo("postgresql+psycopg://u@h/db") == "postgresql://u@h/db"
    with pytest.raises(InvalidInputError):
        PostgresStorage("t", db_url="mysql://u@h/db")
    # The scheme is case-insensitive for open_storage and the store alike.
    shouted = "PostgreSQL://" + pg_server.dsn.partition("://")[2]
    other = open_storage(shouted, store.table_name, schema=store.schema)
    try:
        assert other.read("s1") is not None
    finally:
        other.close()


def test_no_statement_is_prepared(dsn: str, stores: list[PostgresStorage]) -> None:
    # A transaction-mode pooler hands each transaction to any server connection.
    store = open_store(stores, dsn)
    store.create()
    with store.transaction() as conn:
        for i in range(10):
            store.upsert(make_session(Mode.AGENT, f"s{i}"))
            store.read(f"s{i}")
        assert conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() == (0,)


def test_ownership_is_checked_inside_the_upsert(dsn: str, stores: list[PostgresStorage]) -> None:
    store = open_store(stores, dsn)
    store.upsert(make_session(Mode.AGENT, "s1", user_id="alice", memory={"by": "alice"}))
    with pytest.raises(OwnershipError), store.transaction():
        store.upsert(make_session(Mode.AGENT, "s2", user_id="bob"))
        store.upsert(make_session(Mode.AGENT, "s1", user_id="bob"))
    assert store.get_all_session_ids() == ["s1"]
    # Outside a transaction too: refused, and nothing of it written.
    with pytest.raises(OwnershipError):
        store.upsert(make_session(Mode.AGENT, "s1", user_id="bob", memory={"by": "bob"}))
    stored = store.read("s1")
    assert stored is not None and stored.user_id == "alice" and stored.memory == {"by": "alice"}


def test_ownership_is_checked_on_the_row_the_upsert_locks(dsn: str, stores: list[PostgresStorage]) -> None:
    """Another connection changes the owner while holding the row: the upsert that waited for it is checked
    against the new owner, not against the one it could have read before waiting."""
    store = open_store(stores, dsn)
    store.upsert(make_session(Mode.AGENT, "s1", user_id="alice", memory={"by": "alice"}))
    table = f'"{store.table_name}"' if not store.schema else f'"{store.schema}"."{store.table_name}"'
    with psycopg.connect(dsn) as holder, psycopg.connect(dsn, autocommit=True) as watcher:
        holder.execute(f"UPDATE {table} SET user_id = 'carol' WHERE session_id = 's1'")
        outcome: dict[str, BaseException | None] = {}

        def write() -> None:
            try:
                store.upsert(make_session(Mode.AGENT, "s1", user_id="alice", memory={"by": "alice again"}))
                outcome["error"] = None
            except BaseException as exc:  # handed to the test below
                outcome["error"] = exc

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        blocked = "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s"
        deadline = time.monotonic() + 20
        while not watcher.execute(blocked, (f"%{store.table_name}%",)).fetchone()[0]:  # type: ignore[index]
            assert writer.is_alive(), f"the upsert never waited for the row: {outcome}"
            assert time.monotonic() < deadline, "the upsert never waited for the row"
            time.sleep(0.02)
        holder.commit()
        writer.join(20)
        assert not writer.is_alive(), "the upsert hung"
    assert isinstance(outcome["error"], OwnershipError)
    stored = store.read("s1")
    assert stored is not None and stored.user_id == "carol" and stored.memory == {"by": "alice"}


@pytest.mark.parametrize("then", ["deleted", "given to the writer"])
def test_an_upsert_refused_by_an_owner_who_lets_go_meanwhile_is_not_blamed_on_a_trigger(
    dsn: str, stores: list[PostgresStorage], then: str
) -> None:
    """A single upsert commits on its own, so the row that refused it may change before the store reads it to
    say why: deleted by its owner, or given to the writer. The check then passed, and the error blamed "a
    trigger or rule of another program" (RowsKeptError) for a refusal no trigger made."""
    store = open_store(stores, dsn)
    store.upsert(make_session(Mode.AGENT, "s1", user_id="alice", memory={"by": "alice"}))
    change = {
        "deleted": f"DELETE FROM {store.qualified_table} WHERE session_id = 's1'",
        "given to the writer": f"UPDATE {store.qualified_table} SET user_id = 'bob' WHERE session_id = 's1'",
    }[then]
    refused = threading.Event()

    def between(statement: str, params: Any) -> None:
        if statement.startswith("INSERT"):
            refused.set()
        elif refused.is_set() and statement.startswith("SELECT"):
            refused.clear()  # the refused upsert's owner is being looked up: the owner lets go first
            fetch(dsn, change)

    store.tracer = between
    stored = store.upsert(make_session(Mode.AGENT, "s1", user_id="bob", memory={"by": "bob"}))
    store.tracer = None
    assert stored.user_id == "bob"
    got = store.read("s1")
    assert got is not None and got.user_id == "bob" and got.memory == {"by": "bob"}


# --- concurrency ---------------------------------------------------------------

PER_WORKER = 60
SHARED_IDS = 20


def _upsert_overlapping(dsn: str, table: str, worker: str, start: Any, middle: Any) -> list[str]:
    """Upsert private and shared sessions; return the errors met.

    Every worker, thread or process, begins at ``start`` and waits at ``middle`` halfway: each one's second
    half runs while every other one has begun and not finished.
    """
    errors: list[str] = []
    store = PostgresStorage(table, db_url=dsn)
    try:
        start.wait(120)
        for i in range(PER_WORKER):
            if i == PER_WORKER // 2:
                middle.wait(120)
            try:
                store.upsert(AgentSession(session_id=f"{worker}-{i}", user_id="u", memory={"by": worker, "i": i}))
                store.upsert(AgentSession(session_id=f"shared-{i % SHARED_IDS}", user_id="u", memory={"by": worker}))
            except Exception as exc:  # collected for the parent
                errors.append(f"{worker}: {type(exc).__name__}: {exc}")
        store.upsert_many(AgentSession(session_id=f"shared-{i}", user_id="u") for i in range(SHARED_IDS))
    finally:
        store.close()
    return errors


def _process_worker(dsn: str, table: str, worker: str, start: Any, middle: Any, out: Any) -> None:
    try:
        out.put(_upsert_overlapping(dsn, table, worker, start, middle))
    except BaseException as exc:  # a broken barrier, say: reported to the parent
        out.put([f"{worker}: {type(exc).__name__}: {exc}"])


@pytest.mark.slow
def test_threads_and_processes_upsert_overlapping_sessions(dsn: str, stores: list[PostgresStorage]) -> None:
    store = open_store(stores, dsn)
    store.create()
    ctx = multiprocessing.get_context("spawn")
    # One barrier for the 2 processes and the 8 threads: the threads wait for the processes to start.
    start, middle = ctx.Barrier(10), ctx.Barrier(10)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_process_worker, args=(dsn, store.table_name, f"p{n}", start, middle, out)) for n in range(2)
    ]
    for proc in procs:
        proc.start()
    thread_errors: list[str] = []

    def thread_worker(n: int) -> None:
        try:
            thread_errors.extend(_upsert_overlapping(dsn, store.table_name, f"t{n}", start, middle))
        except BaseException as exc:  # a broken barrier, say
            thread_errors.append(f"t{n}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=thread_worker, args=(n,)) for n in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    reported = [out.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert thread_errors == [] and reported == [[], []]
    expected = {f"{w}-{i}" for w in [*(f"t{n}" for n in range(8)), "p0", "p1"] for i in range(PER_WORKER)}
    expected |= {f"shared-{i}" for i in range(SHARED_IDS)}
    assert set(store.get_all_session_ids()) == expected
    got = store.read("p1-7")
    assert got is not None and got.memory == {"by": "p1", "i": 7}


def _create_at_once(dsn: str, schema: str, start: Any, out: Any) -> None:
    start.wait()
    try:
        with PostgresStorage("sessions", db_url=dsn, schema=schema, auto_upgrade_schema=True) as store:
            store.create()
            store.upgrade_schema()
            store.upsert(AgentSession(session_id=multiprocessing.current_process().name, team_session_id="ts"))
        out.put("ok")
    except BaseException as exc:  # reported to the parent
        out.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.slow
@pytest.mark.parametrize("start_from", ["nothing", "nothing again", "a pre-1.2 table"])
def test_two_processes_create_and_upgrade_at_once(dsn: str, start_from: str) -> None:
    schema = fresh_name("race_")  # a new schema each time: CREATE SCHEMA races too
    if start_from == "a pre-1.2 table":
        with PostgresStorage("sessions", db_url=dsn, schema=schema) as old:
            old.create()
        fetch(dsn, f'ALTER TABLE "{schema}".sessions DROP COLUMN team_session_id')
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2)
    out = ctx.Queue()
    procs = [ctx.Process(target=_create_at_once, args=(dsn, schema, start, out), name=f"p{n}") for n in range(2)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(60)
    try:
        assert results == ["ok", "ok"]
        assert fetch(dsn, f'SELECT session_id, team_session_id FROM "{schema}".sessions ORDER BY 1') == [
            ("p0", "ts"),
            ("p1", "ts"),
        ]
    finally:
        fetch(dsn, f'DROP SCHEMA "{schema}" CASCADE')


def test_bulk_writes_of_the_same_sessions_in_other_orders_do_not_deadlock(
    pg_server: PgServer, stores: list[PostgresStorage]
) -> None:
    """Each upsert_many holds the rows it wrote until it commits: two taking the same sessions in different
    orders would wait for each other. They take turns instead, as on SQLite, and every call succeeds."""
    import random

    store = open_store(stores, pg_server.dsn)
    store.create()
    ids = [f"k{j:04d}" for j in range(2 * BATCH_SIZE + 200)]  # three batches: each batch sorts only its own rows
    failures: list[BaseException] = []

    def bulk(n: int) -> None:
        order = list(ids)
        rng = random.Random(n)
        for _ in range(3):
            rng.shuffle(order)
            try:
                store.upsert_many(make_session(Mode.AGENT, sid) for sid in order)
            except BaseException as exc:
                failures.append(exc)

    run_together([lambda n=n: bulk(n) for n in range(4)], within=120)
    assert failures == []
    assert store.count() == len(ids)


def test_bulk_writes_through_stores_naming_one_table_two_ways_take_turns(
    pg_server: PgServer, stores: list[PostgresStorage]
) -> None:
    """One table named by its schema and by the search path (``schema="public"`` and ``schema=None``) is one
    table: bulk writes through the two stores took turns under two names, so not at all, and deadlocked."""
    import random

    name = fresh_name("t_named_")
    by_schema = open_store(stores, pg_server.dsn, schema="public", table_name=name)
    by_path = open_store(stores, pg_server.dsn, schema=None, table_name=name)
    by_schema.create()
    ids = [f"k{j:04d}" for j in range(2 * BATCH_SIZE + 200)]  # three batches: too many to be rerun
    failures: list[BaseException] = []

    def bulk(n: int) -> None:
        order = list(ids)
        rng = random.Random(n)
        for _ in range(3):
            rng.shuffle(order)
            try:
                (by_schema, by_path)[n % 2].upsert_many(make_session(Mode.AGENT, sid) for sid in order)
            except BaseException as exc:
                failures.append(exc)

    run_together([lambda n=n: bulk(n) for n in range(4)], within=120)
    assert failures == []
    assert by_path.count() == len(ids)


def test_a_bulk_write_inside_a_transaction_takes_no_turn(pg_server: PgServer, stores: list[PostgresStorage]) -> None:
    """A transaction() holding a row, then bulk-writing, must not wait for a turn that a bulk write waiting
    on its row holds (a deadlock no row order made): inside a caller's transaction no turn is taken. No rerun:
    the server's deadlock check would end the cycle and a rerun hide it."""
    store = open_store(stores, pg_server.dsn, retries=0)
    store.upsert(make_session(Mode.AGENT, "B"))
    holds_b = threading.Event()
    out: dict[str, str] = {}

    def caller() -> None:
        try:
            with store.transaction():
                store.upsert(make_session(Mode.AGENT, "B"))
                holds_b.set()
                time.sleep(1.0)  # the other bulk write now waits for row B
                store.upsert_many([make_session(Mode.AGENT, "C")])
            out["caller"] = "ok"
        except Exception as exc:
            out["caller"] = repr(exc)

    def bulk() -> None:
        holds_b.wait(30)
        try:
            store.upsert_many([make_session(Mode.AGENT, "B")])
            out["bulk"] = "ok"
        except Exception as exc:
            out["bulk"] = repr(exc)

    threads = [threading.Thread(target=caller), threading.Thread(target=bulk)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert out == {"caller": "ok", "bulk": "ok"}


def test_bulk_writes_inside_transactions_lock_each_batch_in_one_order(
    pg_server: PgServer, stores: list[PostgresStorage]
) -> None:
    """Two transactions bulk-writing the same sessions (one batch each) in opposite orders: each batch locks
    its rows in session_id order, so neither waits for the other in a cycle."""
    store = open_store(stores, pg_server.dsn)
    store.create()
    ids = [f"k{j:03d}" for j in range(300)]
    together = threading.Barrier(2)
    failures: list[BaseException] = []

    def bulk(order: list[str]) -> None:
        try:
            with store.transaction():
                together.wait(30)
                store.upsert_many(make_session(Mode.AGENT, sid) for sid in order)
        except BaseException as exc:
            failures.append(exc)

    for _ in range(3):
        run_together([lambda: bulk(ids), lambda: bulk(ids[::-1])], within=120)
    assert failures == []
    assert store.count() == len(ids)


def _child_upserts(store: PostgresStorage) -> None:
    store.upsert(make_session(Mode.AGENT, "child"))
    store.close()


# --- losing the server ---------------------------------------------------------------


def test_a_stopped_server_gives_typed_errors_then_the_store_recovers(
    pg_server: PgServer, stores: list[PostgresStorage]
) -> None:
    store = open_store(stores, pg_server.dsn, connect_timeout=2.0)
    store.upsert(make_session(Mode.AGENT, "before"))
    pg_server.stop()
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
        pg_server.start()
    # Pooled connections died with the server; the store notices and reconnects.
    assert store.read("before") is not None
    store.upsert(make_session(Mode.AGENT, "after"))
    assert sorted(store.get_all_session_ids()) == ["after", "before"]


def test_a_transaction_after_a_server_restart_begins_on_a_live_connection(
    pg_server: PgServer, stores: list[PostgresStorage]
) -> None:
    """The pool's idle connections die with the server: a transaction() block and drop() get a live one
    instead of failing once for each dead one."""
    store = open_store(stores, pg_server.dsn, connect_timeout=2.0)
    store.upsert(make_session(Mode.AGENT, "before"))
    together = threading.Barrier(3)

    def hold() -> None:  # three transactions at once leave three connections idle in the pool
        with store.transaction():
            together.wait(30)

    threads = [threading.Thread(target=hold) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    pg_server.stop()
    pg_server.start()
    for i in range(3):
        with store.transaction() as conn:
            conn.execute("SELECT 1")
        assert store.read("before") is not None, i
    store.drop()
    assert not store.table_exists()


def test_a_server_killed_mid_run_fails_writers_fast_and_loses_no_commit(
    pg_server: PgServer, stores: list[PostgresStorage]
) -> None:
    store = open_store(stores, pg_server.dsn, connect_timeout=2.0)
    store.create()
    acknowledged: list[str] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def writer(n: int) -> None:
        for i in itertools.count():
            if stop.is_set():
                return
            sid = f"w{n}-{i}"
            try:
                store.upsert(make_session(Mode.AGENT, sid))
                acknowledged.append(sid)
            except StorageError as exc:
                failures.append(exc)
                time.sleep(0.05)
            except BaseException as exc:  # anything untyped fails the test
                failures.append(exc)
                return

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for th in threads:
        th.start()
    time.sleep(0.5)
    pg_server.stop()
    time.sleep(2.5)
    pg_server.start()
    resumed_from = len(acknowledged)
    time.sleep(2.0)
    stop.set()
    for th in threads:
        th.join(30)
    assert not any(th.is_alive() for th in threads), "a writer hung"
    assert failures, "stopping the server went unnoticed"
    assert all(isinstance(f, ConnectionLostError) for f in failures), {type(f).__name__ for f in failures}
    stored = set(store.get_all_session_ids())
    assert set(acknowledged) <= stored, "an acknowledged upsert was lost"
    assert len(acknowledged) > resumed_from, "writers did not resume after the restart"


def _prepared_on_the_server(store: PostgresStorage) -> list[str]:
    """The statements the server keeps prepared on the store's one pooled connection."""
    with store.transaction() as conn:
        return [str(r[0]) for r in conn.execute("SELECT statement FROM pg_prepared_statements").fetchall()]


@pytest.mark.parametrize("prepared", [False, True], ids=["default", "prepared_statements"])
def test_statements_are_prepared_on_the_server_only_when_asked(
    dsn: str, stores: list[PostgresStorage], prepared: bool
) -> None:
    """By default nothing is prepared (a pooler in transaction mode would hand a statement to a server
    connection that never saw it prepared); with ``prepared_statements=True`` the reads and upserts this store
    repeats are, and give the same results."""
    store = open_store(stores, dsn, pool_size=1, prepared_statements=prepared)
    assert store.prepared_statements is prepared
    for i in range(6):
        store.upsert(AgentSession(session_id="s", user_id="u", agent_id="a", session_data={"n": i}))
        got = store.read("s", user_id="u")
        assert got is not None and got.session_data == {"n": i}
    kept = _prepared_on_the_server(store)
    if not prepared:
        assert kept == []
    else:
        table = f'"ai"."{store.table_name}"'
        assert any(s.startswith("SELECT") and table in s for s in kept), kept
        assert any(s.startswith("INSERT INTO") and table in s for s in kept), kept


def test_prepared_statements_go_on_working_after_another_program_remakes_the_table(
    dsn: str, stores: list[PostgresStorage]
) -> None:
    """The server replans a prepared statement whose table was dropped and made again, or given a new column,
    by another program: the store's later reads and writes work on the table as it is then."""
    store = open_store(stores, dsn, pool_size=1, prepared_statements=True)
    for i in range(6):
        store.upsert(AgentSession(session_id=f"s{i}", user_id="u", agent_id="a"))
        assert store.read(f"s{i}") is not None
    other = PostgresStorage(store.table_name, db_url=dsn, mode="agent")
    other.drop()
    other.create()
    other.upsert(AgentSession(session_id="after", user_id="u", agent_id="a", session_data={"x": 1}))
    other.close()
    fetch(dsn, f'ALTER TABLE "ai"."{store.table_name}" ADD COLUMN another_programs TEXT')
    assert store.read("s0") is None  # the table made again holds only what was written since
    after = store.read("after")
    assert after is not None and after.session_data == {"x": 1}
    store.upsert(AgentSession(session_id="s0", user_id="u", agent_id="a"))
    assert {s.session_id for s in store.list()} == {"after", "s0"}


def test_a_column_type_another_program_changes_costs_prepared_statements_one_connection(
    dsn: str, stores: list[PostgresStorage]
) -> None:
    """A statement prepared before another program changed a column's type fails on its connection for good
    ("cached plan must not change result type"): the store closes that connection and reruns the call on a
    fresh one; inside a transaction() the call raises StorageError, and the calls after it work."""
    store = open_store(stores, dsn, pool_size=1, prepared_statements=True)
    for i in range(6):
        store.upsert(AgentSession(session_id=f"s{i}", user_id="u", agent_id="a"))
        assert store.read(f"s{i}") is not None
        store.get_recent_sessions(user_id="u", limit=2)
    fetch(dsn, f'ALTER TABLE "ai"."{store.table_name}" ALTER COLUMN user_id TYPE text')
    for _ in range(2):
        assert store.read("s0") is not None
        assert len(store.get_recent_sessions(user_id="u", limit=2)) == 2
        store.upsert(AgentSession(session_id="s0", user_id="u", agent_id="a"))
    for i in range(6):
        assert store.read(f"s{i}") is not None  # prepared again, on the fresh connection
    fetch(dsn, f'ALTER TABLE "ai"."{store.table_name}" ALTER COLUMN user_id TYPE varchar')
    with pytest.raises(StorageError), store.transaction():
        store.read("s1")
    assert store.read("s1") is not None
    assert len(store.get_recent_sessions(user_id="u", limit=2)) == 2
