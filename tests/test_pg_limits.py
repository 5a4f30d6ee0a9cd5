"""PostgreSQL's limits: 63-byte names, values too big for it, and refused batches that leave no noise."""

from __future__ import annotations

import logging
import os
import random
import string
from typing import Any

import psycopg
import pytest
from psycopg import sql

from agno_storage import AgentSession, InvalidInputError, Mode
from tests.sessions import make_session

pytestmark = pytest.mark.parametrize("backend", ["postgres"])


@pytest.mark.parametrize("length", [58, 59, 63])
def test_a_long_table_name_gets_the_primary_key_postgres_names_for_agnos_table(make_store: Any, length: int) -> None:
    name = f"t{os.getpid()}_".ljust(length, "k")
    store = make_store(table_name=name)
    store.create()
    reference = f"pk_ref_{os.getpid()}_{length}"
    with psycopg.connect(store.db_url, autocommit=True) as conn:
        try:
            # agno declares Column("session_id", String, primary_key=True): SQLAlchemy emits an unnamed
            # PRIMARY KEY and PostgreSQL picks the name.
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(reference)))
            conn.execute(
                sql.SQL("CREATE TABLE {} (session_id VARCHAR NOT NULL, PRIMARY KEY (session_id))").format(
                    sql.Identifier(reference, name)
                )
            )
            names = dict(
                conn.execute(
                    "SELECT n.nspname::text, c.conname::text FROM pg_constraint c"
                    " JOIN pg_namespace n ON n.oid = c.connamespace"
                    " WHERE c.contype = 'p' AND c.conrelid IN (to_regclass(%s), to_regclass(%s))",
                    (store.qualified_table, sql.Identifier(reference, name).as_string(conn)),
                ).fetchall()
            )
        finally:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(reference)))
    assert names["ai"] == names[reference]
    store.upsert(make_session(Mode.AGENT, "s1"))
    assert store.get_all_session_ids() == ["s1"]


def test_two_long_table_names_sharing_their_first_58_bytes_are_both_made(make_store: Any) -> None:
    """PostgreSQL names the key of each (the second ``..._pkey1``), as it does for agno's tables."""
    base = f"t{os.getpid()}_".ljust(58, "k")
    stores = [make_store(table_name=base + end) for end in ("_eu", "_us")]
    for i, store in enumerate(stores):
        store.create()
        store.upsert(make_session(Mode.AGENT, f"s{i}"))
    assert [s.get_all_session_ids() for s in stores] == [["s0"], ["s1"]]


@pytest.mark.parametrize("schema", ["tenant_" + "x" * 56 + "_alpha", "é" * 32])
def test_a_schema_name_past_63_bytes_is_refused_when_the_store_is_made(make_store: Any, schema: str) -> None:
    # PostgreSQL would cut it to 63 bytes: two long names would be one schema, and one store read another's.
    with pytest.raises(InvalidInputError, match="63 bytes"):
        make_store(schema=schema)


def test_a_schema_name_holding_nul_is_refused_naming_the_schema(make_store: Any) -> None:
    # It was refused as a value: "PostgreSQL cannot store this value", naming no schema.
    with pytest.raises(InvalidInputError, match=r"schema 'ai\\x00b'.*U\+0000"):
        make_store(schema="ai\x00b")


def test_a_schema_name_of_63_bytes_is_taken(make_store: Any) -> None:
    store = make_store(schema=f"s{os.getpid()}_".ljust(63, "x"))
    try:
        store.upsert(make_session(Mode.AGENT, "s1"))
        assert store.get_all_session_ids() == ["s1"]
    finally:
        store.drop()
        with psycopg.connect(store.db_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {}").format(sql.Identifier(store.schema)))


def _incompressible(n: int) -> str:
    rng = random.Random(1)
    return "".join(rng.choice(string.ascii_letters) for _ in range(n))


def test_a_value_too_big_for_an_index_is_invalid_input_and_nothing_is_written(make_store: Any) -> None:
    store = make_store()
    big = _incompressible(10_000)  # past the 2,704 bytes a btree index row may take
    with pytest.raises(InvalidInputError) as info:
        store.upsert(AgentSession(session_id="s1", user_id=big))
    assert info.value.session_id == "s1"
    with pytest.raises(InvalidInputError):
        store.upsert_many(
            [make_session(Mode.AGENT, "ok1"), AgentSession(session_id=big), make_session(Mode.AGENT, "ok2")]
        )
    assert store.get_all_session_ids() == [], "nothing half-written"
    with store.transaction():
        store.upsert(make_session(Mode.AGENT, "kept"))
        with pytest.raises(InvalidInputError):
            store.upsert(AgentSession(session_id="s2", agent_id=big))
    assert store.get_all_session_ids() == ["kept"]


def test_refused_batches_close_their_pipeline_without_a_warning(
    make_store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store()
    store.create()
    refused = [AgentSession(session_id="n", memory={"a": "\x00"})] * 3
    with caplog.at_level(logging.WARNING, logger="psycopg"):
        for _ in range(30):
            with pytest.raises(InvalidInputError):
                store.upsert_many(refused)
    # Printed to stderr for every refused batch in a program that configured no logging.
    assert [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")] == []
    assert store.get_all_session_ids() == []
