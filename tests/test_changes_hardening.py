"""The change feed beside other programs: tables it does not own, gaps it cannot see, a disable while it reads."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from agno_storage import AgentSession, BaseStorage, SqliteStorage, StorageError


def named(store: BaseStorage, suffix: str) -> str:
    """The quoted (and on PostgreSQL schema-qualified) name of the table ``<store's table><suffix>``."""
    if isinstance(store, SqliteStorage):
        return f'"{store.table_name}{suffix}"'
    return str(store.qualified_table)[:-1] + suffix + '"'


def there(store: BaseStorage, table: str) -> bool:
    """Whether the database has a table named ``table`` (quoted, as :func:`named` gives it)."""
    if isinstance(store, SqliteStorage):
        return bool(store._query("SELECT 1 FROM sqlite_master WHERE name = ?", (table.strip('"'),)))
    return bool(store._query("SELECT to_regclass(%s) IS NOT NULL", (table,))[0][0])


def rows(store: BaseStorage, table: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in store._query(f"SELECT * FROM {table} ORDER BY 1", ())]


def test_drop_and_disable_leave_tables_of_anothers_named_like_the_feeds(make_store: Any) -> None:
    """A table named ``<t>_changes`` (here another sessions table) and one named ``<t>_changes_meta`` (a key-value
    table with two common column names) that are not the feed's: drop() and disable_changes() of ``t``, which has
    no feed, leave them with their rows; enable_changes() refuses to write into either."""
    store = make_store("agent")
    other = make_store("agent", table_name=store.table_name + "_changes")
    other.upsert(AgentSession(session_id="keep-me", user_id="u", agent_id="a"))
    store.upsert(AgentSession(session_id="x", user_id="u", agent_id="a"))
    settings = named(store, "_changes_meta")
    with store.transaction() as conn:
        conn.execute(f"CREATE TABLE {settings} (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        conn.execute(f"INSERT INTO {settings} (key, value) VALUES ('retention', 5)")

    store.drop()
    assert [s.session_id for s in other.list()] == ["keep-me"]
    assert rows(store, settings) == [("retention", 5)]
    store.disable_changes()
    assert [s.session_id for s in other.list()] == ["keep-me"]
    assert rows(store, settings) == [("retention", 5)]

    with pytest.raises(StorageError, match='_changes" already'):
        store.enable_changes()
    other.drop()
    with pytest.raises(StorageError, match="_changes_meta"):
        store.enable_changes()
    assert rows(store, settings) == [("retention", 5)]
    with store.transaction() as conn:
        conn.execute(f"DROP TABLE {settings}")

    # The feed's own tables still go with the feed.
    store.enable_changes()
    store.upsert(AgentSession(session_id="y", agent_id="a"))
    assert [c.session_id for c in store.changes()] == ["y"]
    assert there(store, named(store, "_changes")) and there(store, named(store, "_changes_meta"))
    store.drop()
    assert not there(store, named(store, "_changes")) and not there(store, named(store, "_changes_meta"))


def agno_writer(store: BaseStorage) -> Any:
    """agno 1.8.4's own storage of the store's table: another program, which knows nothing of the feed."""
    if isinstance(store, SqliteStorage):
        from agno.storage.sqlite import SqliteStorage as AgnoSqliteStorage

        return AgnoSqliteStorage(table_name=store.table_name, db_file=str(store.db_path), mode="agent")
    from agno.storage.postgres import PostgresStorage as AgnoPostgresStorage

    url = "postgresql+psycopg://" + store.db_url.partition("://")[2]
    return AgnoPostgresStorage(table_name=store.table_name, schema=store.schema, db_url=url, mode="agent")


@pytest.fixture
def agno_writers() -> Iterator[list[Any]]:
    made: list[Any] = []
    yield made
    for writer in made:
        writer.db_engine.dispose()


def test_enable_changes_after_writes_went_unlogged_fails_every_older_cursor(
    make_store: Any, agno_writers: list[Any]
) -> None:
    """agno drops the sessions table and makes it again, then writes: changes() says the feed stopped logging.
    enable_changes() (start-up code, run again) makes the triggers again; a consumer resuming from a cursor of
    before then gets StorageError, also the one that had read every change, rather than the changes after the
    gap as if nothing had been missed (the deleted sessions and the session written in the gap)."""
    from agno.storage.session.agent import AgentSession as AgnoSession

    store = make_store("agent")
    store.enable_changes()
    store.upsert(AgentSession(session_id="old", user_id="u", agent_id="a"))
    store.upsert(AgentSession(session_id="old2", user_id="u", agent_id="a"))
    first, last = store.changes()
    writer = agno_writer(store)
    agno_writers.append(writer)
    writer.drop()
    writer.create()
    writer.upsert(AgnoSession(session_id="lost", user_id="u", agent_id="a", memory={"runs": []}))
    store._forget_shape()
    with pytest.raises(StorageError, match="stopped logging"):
        store.changes(since=last.cursor)

    store.enable_changes()
    store.upsert(AgentSession(session_id="new", user_id="u", agent_id="a"))
    for cursor in (first.cursor, last.cursor):
        with pytest.raises(StorageError, match="not all logged") as raised:
            store.changes(since=cursor)
        assert raised.value.table == store.table_name
    (new,) = store.changes()  # a consumer starting now, from the sessions as they are
    assert (new.session_id, new.op) == ("new", "insert") and new.cursor > last.cursor + 1
    assert store.changes(since=new.cursor - 1) == [new]
    assert store.changes(since=new.cursor) == []
    store.enable_changes()  # nothing missed since: the log and its cursors stay
    assert store.changes() == [new]


def test_enable_changes_after_agent_runs_went_unlogged_fails_older_cursors(tmp_path: Any) -> None:
    """A Go program drops ``agent_runs`` (its triggers with it) and makes it again: as for the sessions table."""
    store = SqliteStorage(table_name="agent_sessions", db_file=tmp_path / "s.db")
    store.enable_changes()
    store.upsert(AgentSession(session_id="a", agent_id="x"))
    (change,) = store.changes()
    conn = sqlite3.connect(str(store.db_path))
    ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'agent_runs'").fetchone()[0]
    conn.execute("DROP TABLE agent_runs")
    conn.execute(ddl)
    conn.commit()
    conn.close()
    with pytest.raises(StorageError, match="stopped logging"):
        store.changes(since=change.cursor)
    store.enable_changes()
    with pytest.raises(StorageError, match="not all logged"):
        store.changes(since=change.cursor)
    assert store.changes() == []
    store.close()


@pytest.mark.parametrize("at", ["after the check", "before the read"])
def test_a_feed_disabled_while_changes_reads_it_is_not_enabled(make_store: Any, at: str) -> None:
    """Another program's disable_changes() between changes()'s check that the feed is enabled and its reads: the
    consumer is told the feed is not enabled, not that the sessions table is missing or was dropped."""
    store = make_store("agent")
    store.enable_changes()
    store.upsert(AgentSession(session_id="s1", agent_id="a"))
    consumer = make_store("agent", table_name=store.table_name)
    statements: list[str] = []
    consumer.tracer = lambda statement, params: statements.append(statement)
    consumer.changes()
    race = 1 if at == "after the check" else len(statements) - 1

    seen = 0

    def disable_on_the_way(statement: str, params: Any) -> None:
        nonlocal seen
        if seen == race:
            store.disable_changes()
        seen += 1

    consumer.tracer = disable_on_the_way
    with pytest.raises(StorageError, match=r"not enabled: disable_changes\(\) dropped it") as raised:
        consumer.changes()
    assert type(raised.value) is StorageError and raised.value.table == store.table_name
    consumer.tracer = None
    with pytest.raises(StorageError, match="not enabled"):
        consumer.changes()


def test_disable_changes_leaves_the_database_as_before_but_for_what_sqlite_keeps(make_store: Any) -> None:
    """After enable_changes() and disable_changes() the database holds what it held before, with on SQLite two
    exceptions: SQLite's own ``sqlite_sequence`` (empty: the log's row goes with the log; SQLite refuses to drop
    the table) and, on an agent table, ``agent_runs`` as enable_changes() made it (a Go Agent may write it)."""
    store = make_store("agent")
    store.upsert(AgentSession(session_id="a", user_id="u", agent_id="x"))
    if isinstance(store, SqliteStorage):
        catalogue, params = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY 1, 2", ()
    else:
        catalogue = (
            "SELECT 'relation', c.relname, c.relkind::text FROM pg_class AS c JOIN pg_namespace AS n "
            "ON n.oid = c.relnamespace WHERE n.nspname = %s UNION ALL SELECT 'function', p.proname, '' "
            "FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace WHERE n.nspname = %s "
            "UNION ALL SELECT 'trigger', t.tgname, '' FROM pg_trigger AS t WHERE NOT t.tgisinternal ORDER BY 1, 2"
        )
        params = (store.schema, store.schema)
    before = {tuple(r) for r in store._query(catalogue, params)}
    store.enable_changes()
    store.upsert(AgentSession(session_id="b", user_id="u", agent_id="x"))
    store.delete("a")
    assert len(store.changes()) == 2
    store.disable_changes()
    after = {tuple(r) for r in store._query(catalogue, params)}
    if isinstance(store, SqliteStorage):
        assert {r[1] for r in after - before} == {
            "sqlite_sequence",
            "agent_runs",
            "sqlite_autoindex_agent_runs_1",
            "idx_runs_session_id",
            "idx_runs_user_id",
            "idx_runs_created_at",
        }
        assert store._query("SELECT * FROM sqlite_sequence", ()) == []
    else:
        assert after == before
    assert before <= after
