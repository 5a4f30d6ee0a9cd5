"""PostgreSQL store: roles granted only what they need, and bulk writes fed by a failing iterable."""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from agno_storage import ConnectionLostError, InvalidInputError, Mode, SchemaMismatchError, Session, open_storage
from agno_storage.agno3 import to_agno3
from agno_storage.backends import pg_conn
from agno_storage.backends.postgres import PostgresStorage
from tests.pgserver import login_role
from tests.sessions import make_session
from tests.support import forked_while_held

_roles = itertools.count()


@pytest.fixture
def app_role(pg_server: Any) -> Iterator[tuple[str, str]]:
    """A login role of its own (name, DSN), given only what a test grants it."""
    with login_role(pg_server.dsn, "app") as role:
        yield role


@contextmanager
def granted_schema(pg_server: Any, role: str, name: str) -> Iterator[str]:
    """A schema the DBA made, on which ``role`` is granted USAGE and CREATE (the usual grant); dropped after."""
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA {} TO {}").format(*map(sql.Identifier, (name, role))))
    try:
        yield name
    finally:
        with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def test_a_role_that_may_create_tables_in_an_existing_schema_creates_its_table(
    pg_server: Any, app_role: tuple[str, str]
) -> None:
    """The usual grant: the schema is the DBA's, the role may make tables in it but not schemas in the database."""
    role, dsn = app_role
    with granted_schema(pg_server, role, f"granted_{role}") as schema:
        with PostgresStorage("sessions", db_url=dsn, schema=schema) as store:
            store.create()
            store.upsert(make_session(Mode.AGENT, "s1"))
            assert store.get_all_session_ids() == ["s1"]


def _failing_after(count: int, error: BaseException) -> Iterator[Session]:
    for i in range(count):
        yield make_session(Mode.AGENT, f"s{i}")
    raise error


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@pytest.mark.parametrize("count", [3, 700])  # within the first batch of 500, and after it
@pytest.mark.parametrize(
    "error",
    [psycopg.OperationalError("the source's server closed the connection"), psycopg.errors.SerializationFailure()],
    ids=["lost", "serialization"],
)
def test_an_iterable_that_fails_fails_upsert_many_with_its_own_error_and_writes_nothing(
    make_store: Any, count: int, error: BaseException
) -> None:
    """An error of the caller's iterable (here one a PostgreSQL source raises) is not the store's: never rerun as
    if the store's connection had failed, which wrote the sessions taken so far and returned as if all were."""
    store = make_store()
    store.create()
    with pytest.raises(type(error)) as info:
        store.upsert_many(_failing_after(count, error))
    assert info.value is error
    assert store.count() == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("backend", ["postgres"])
def test_a_child_forked_while_another_thread_opened_the_pool_is_not_held_by_its_lock(make_store: Any) -> None:
    """The child makes a pool of its own under a lock; held at the fork by a thread the child does not have, the
    child's copy of that lock stayed held for ever, and the child's first call hung."""
    store = make_store()
    store.upsert(make_session(Mode.AGENT, "s1"))
    assert forked_while_held(store._conns._pool_lock, lambda: store.get_all_session_ids() == ["s1"]) == 0


def _with_options(store: Any, options: str) -> PostgresStorage:
    """Another store of ``store``'s table, its connections made with the server settings ``options``."""
    return PostgresStorage(store.table_name, db_url=make_conninfo(store.db_url, options=options))


@pytest.mark.parametrize("backend", ["postgres"])
def test_connections_the_server_closed_for_idling_are_replaced_and_the_call_goes_on(make_store: Any) -> None:
    """A server (or a hosted one's role) with ``idle_session_timeout`` closes a pooled connection left idle
    (SQLSTATE 57P05): the next call on it is run again on a fresh connection, as after any lost connection."""
    store = make_store()
    with _with_options(store, "-c idle_session_timeout=200") as idle:
        idle.upsert(make_session(Mode.AGENT, "s1"))
        calls = [
            lambda: idle.read("s1") is not None,
            lambda: idle.upsert(make_session(Mode.AGENT, "s2")).session_id == "s2",
            lambda: idle.upsert_many([make_session(Mode.AGENT, "s3")]) == 1,
            lambda: idle.delete("s3"),
        ]
        for call in calls:
            time.sleep(0.6)  # every pooled connection idles past the timeout
            assert call()
        time.sleep(0.6)
        with idle.transaction():
            idle.upsert(make_session(Mode.AGENT, "s4"))
        assert sorted(idle.get_all_session_ids()) == ["s1", "s2", "s4"]


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_transaction_the_server_ended_for_idling_is_a_lost_connection(make_store: Any) -> None:
    """``idle_in_transaction_session_timeout`` closes the connection of a block that waited too long (SQLSTATE
    25P03): ConnectionLostError, nothing of the block committed, and the store goes on."""
    store = make_store()
    with _with_options(store, "-c idle_in_transaction_session_timeout=200") as idle:
        with pytest.raises(ConnectionLostError), idle.transaction():
            idle.upsert(make_session(Mode.AGENT, "s1"))
            time.sleep(0.6)
            idle.upsert(make_session(Mode.AGENT, "s2"))
        assert idle.get_all_session_ids() == []
        idle.upsert(make_session(Mode.AGENT, "s3"))
        assert idle.get_all_session_ids() == ["s3"]


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:s3cret\x00x@127.0.0.1/db",
        "postgresql+psycopg://app:s3cret\x00@127.0.0.1/db",
        "host=127.0.0.1 password=s3cret\x00 dbname=db",
    ],
)
def test_a_url_holding_nul_is_refused_without_showing_its_password(url: str) -> None:
    """libpq reads a connection string only up to a NUL: the rest of a URL cut in its password was read as the
    host and the port, and the connection error showed the password as the server it could not reach."""
    with pytest.raises(InvalidInputError) as info:
        PostgresStorage("sessions", db_url=url, connect_timeout=1)
    assert "NUL" in str(info.value)
    assert "s3cret" not in str(info.value)
    with pytest.raises(InvalidInputError) as info:
        open_storage(url, "sessions")
    assert "s3cret" not in str(info.value)


def test_reruns_wait_longer_each_time_and_never_more_than_two_seconds() -> None:
    """``retries=10`` after a server restart must not mean waits of minutes (three times longer each rerun
    came to 25 minutes in all): the waits grow from 0.05 s and stop at 2 s."""
    waits = [pg_conn.retry_wait(attempt) for attempt in range(10)]
    assert waits[:4] == pytest.approx([0.05, 0.15, 0.45, 1.35])
    assert waits == sorted(waits)
    assert waits[4:] == [2.0] * 6
    assert pg_conn.retry_wait(10_000) == 2.0


def test_to_agno3_into_a_schema_the_role_may_create_tables_in_makes_agno3s_tables(
    pg_server: Any, app_role: tuple[str, str], tmp_path: Path
) -> None:
    """The same grant for the migration to agno 3: its tables made in the DBA's schema, the sessions in them."""
    role, dsn = app_role
    with granted_schema(pg_server, role, f"granted3_{role}") as schema:
        params = conninfo_to_dict(dsn)
        url = f"postgresql://{role}@{params['host']}:{params['port']}/{params['dbname']}"
        src = tmp_path / "src.db"
        with open_storage(f"sqlite:///{src}", "agent_sessions", Mode.AGENT) as source:
            source.upsert_many(make_session(Mode.AGENT, f"s{i}") for i in range(3))
        to_agno3(str(src), url, dst_schema=schema, workers=0)
        with psycopg.connect(dsn) as conn:
            count = conn.execute(sql.SQL("SELECT count(*) FROM {}.agno_sessions").format(sql.Identifier(schema)))
            assert count.fetchone() == (3,)


@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.parametrize("column", ["user_id", "session_id", "agent_id"])
def test_a_text_column_of_a_case_blind_collation_is_refused(make_store: Any, pg_server: Any, column: str) -> None:
    """An ICU collation made with ``deterministic = false`` compares ``'ALICE'`` equal to ``'alice'``: on
    user_id, every read, list and write of the store would take one for the other."""
    store = make_store()
    store.upsert(make_session(Mode.AGENT, "s1", user_id="alice"))
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE COLLATION IF NOT EXISTS case_blind (provider = icu, locale = 'und-u-ks-level2', deterministic = false)"
        )
        conn.execute(
            sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE character varying COLLATE case_blind").format(
                sql.SQL(store.qualified_table), sql.Identifier(column)
            )
        )
        assert conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE user_id = 'ALICE'").format(sql.SQL(store.qualified_table))
        ).fetchone() == ((1,) if column == "user_id" else (0,))
    with pytest.raises(SchemaMismatchError, match=f"{column} compares by the nondeterministic collation"):
        PostgresStorage(store.table_name, db_url=store.db_url)


@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.parametrize(("column", "value"), [("memory", {"runs": [], "note": "nul\x00here"}), ("agent_id", "a\x00b")])
def test_upsert_many_names_the_session_and_column_postgresql_cannot_store(
    make_store: Any, column: str, value: Any
) -> None:
    """PostgreSQL refuses U+0000 in text and jsonb without saying which row of a batch held it: the error named
    no session. It names the session and column now; nothing of the call is written."""
    store = make_store()
    sessions = [make_session(Mode.AGENT, f"s{i}") for i in range(20)]
    sessions[7] = attrs.evolve(sessions[7], **{column: value})
    with pytest.raises(InvalidInputError, match="session 's7'") as refused:
        store.upsert_many(sessions)
    assert (refused.value.session_id, refused.value.column) == ("s7", column)
    assert store.get_all_session_ids() == []


@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.parametrize(("kind", "what"), [("VIEW", "a view"), ("MATERIALIZED VIEW", "a materialized view")])
def test_a_view_of_the_tables_name_is_refused_when_the_store_opens(
    make_store: Any, pg_server: Any, kind: str, what: str
) -> None:
    """A view with the sessions table's name and columns reads like one, but no upsert reaches it: the store
    says so when it opens, naming the table and what it is, not at the first write."""
    store = make_store()
    store.upsert(make_session(Mode.AGENT, "s1"))
    name = f"{store.table_name}_{kind.split()[0].lower()}"
    view = sql.SQL("{}.{}").format(sql.Identifier(store.schema), sql.Identifier(name))
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE {} {} AS SELECT * FROM {}").format(sql.SQL(kind), view, sql.SQL(store.qualified_table))
        )
        try:
            with pytest.raises(SchemaMismatchError, match=what) as refused:
                PostgresStorage(name, db_url=store.db_url)
            assert refused.value.table == name
        finally:
            conn.execute(sql.SQL("DROP {} {}").format(sql.SQL(kind), view))


@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.parametrize("column", ["user_id", "session_id"])
def test_a_text_column_of_type_citext_is_refused(make_store: Any, pg_server: Any, column: str) -> None:
    """citext compares case-blind whatever its collation: on user_id, ``list(user_id="alice")`` (and ``export
    --user alice``) also took ALICE's sessions."""
    store = make_store()
    store.upsert(make_session(Mode.AGENT, "s1", user_id="alice"))
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS citext")
        conn.execute(
            sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE citext").format(
                sql.SQL(store.qualified_table), sql.Identifier(column)
            )
        )
    with pytest.raises(SchemaMismatchError, match=f"{column} is of the type citext, which compares case-blind"):
        PostgresStorage(store.table_name, db_url=store.db_url)


@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.parametrize("column", ["user_id", "session_id"])
@pytest.mark.parametrize("kind", ["character(16)", "padded"])
def test_a_text_column_of_type_character_is_refused(make_store: Any, pg_server: Any, column: str, kind: str) -> None:
    """character(n) (bpchar) ignores trailing spaces when it compares, as SQLite's RTRIM collation does:
    ``list(user_id="alice ")`` took alice's sessions, and the store read back ids padded with spaces. A domain
    over it (``padded``) is refused too."""
    store = make_store()
    store.upsert(make_session(Mode.AGENT, "s1", user_id="alice"))
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        new_type: sql.Composable = sql.SQL(kind)
        if kind == "padded":
            new_type = sql.SQL("{}.{}").format(
                sql.Identifier(store.schema), sql.Identifier(f"{store.table_name}_padded")
            )
            conn.execute(sql.SQL("CREATE DOMAIN {} AS character(16)").format(new_type))
        conn.execute(
            sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE {}").format(
                sql.SQL(store.qualified_table), sql.Identifier(column), new_type
            )
        )
        assert conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE {} = 'alice '").format(
                sql.SQL(store.qualified_table), sql.Identifier(column)
            )
        ).fetchone() == ((1,) if column == "user_id" else (0,))
    with pytest.raises(SchemaMismatchError, match=f"{column} is of the type .*, which ignores trailing spaces"):
        PostgresStorage(store.table_name, db_url=store.db_url)


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_connection_lost_in_upsert_many_is_rerun_without_psycopgs_pipeline_warning(
    make_store: Any, pg_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The server ends the connection while the second batch is in flight: upsert_many runs again on a new one
    and writes every session, the first batch's included, and psycopg's "error ignored terminating <Pipeline
    [BAD]>" (printed to stderr by a program that configured no logging) is not logged: the lost connection is
    the store's to handle."""
    store = make_store()
    store.create()
    ended: list[int] = []
    batches: list[int] = []

    def end_the_connection(statement: str, params: Any) -> None:
        if statement.startswith("INSERT") and params and isinstance(params[0], list):
            batches.append(len(params))
        if len(batches) == 2 and not ended:
            with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
                (n,) = conn.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = 'agno_storage' AND state = 'idle in transaction'"
                ).fetchone()
            ended.append(n)

    store.tracer = end_the_connection
    with caplog.at_level(logging.WARNING, logger="psycopg"):
        assert store.upsert_many(make_session(Mode.AGENT, f"s{i}") for i in range(600)) == 600
    assert ended and ended[0] > 0
    assert store.count() == 600
    assert [r.getMessage() for r in caplog.records if r.name == "psycopg"] == []
