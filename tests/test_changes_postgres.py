"""The change feed on PostgreSQL, where transactions commit in any order: no change is skipped behind a cursor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from agno_storage import AgentSession, StorageError
from tests.pgserver import login_role


@pytest.mark.parametrize("backend", ["postgres"])
def test_changes_wait_for_older_open_transactions_and_none_is_skipped(make_store: Any) -> None:
    store = make_store("agent")
    store.enable_changes()
    slow_writer = make_store("agent", table_name=store.table_name)  # another program: its own connection
    cursor = 0
    seen: list[str] = []

    def poll() -> None:
        nonlocal cursor
        for change in store.changes(since=cursor):
            assert change.cursor > cursor, "cursors only grow"
            cursor = change.cursor
            seen.append(change.session_id)

    with slow_writer.transaction():
        slow_writer.upsert(AgentSession(session_id="slow", user_id="u"))  # began first, commits last
        store.upsert(AgentSession(session_id="fast", user_id="u"))  # begins later, commits first
        # The consumer polls while "slow" is still open. A cursor is handed out
        # only once no transaction that began before the change can still
        # commit, so "fast" waits for "slow": cursors follow the order the
        # writers' transactions began, and nothing can land behind a cursor
        # a consumer already holds.
        poll()
        assert seen == []
    poll()
    poll()
    assert seen == ["slow", "fast"], "every change once, in the order their transactions began"
    store.upsert(AgentSession(session_id="later", user_id="u"))
    poll()
    assert seen[-1] == "later" and len(seen) == 3


@pytest.mark.parametrize("backend", ["postgres"])
def test_cursors_go_on_above_the_pruned_ones_when_every_change_was_pruned(make_store: Any) -> None:
    """Once the retention took every change in the log, new changes still get cursors above the pruned ones:
    a consumer at the last cursor it processed sees them (they were numbered from 1 again before)."""
    store = make_store("agent")
    store.enable_changes(retention=60)
    store.upsert(AgentSession(session_id="a", user_id="u"))
    store.upsert(AgentSession(session_id="b", user_id="u"))
    cursor = store.changes()[-1].cursor
    log = store.qualified_table[:-1] + '_changes"'
    with store.transaction() as conn:
        conn.execute(f"UPDATE {log} SET at = at - 3600")
    assert store.changes(since=cursor) == []  # prunes them all
    store.upsert(AgentSession(session_id="c", user_id="u"))
    [change] = store.changes(since=cursor)
    assert change.session_id == "c" and change.cursor > cursor


@pytest.fixture
def writer_role(pg_server: Any) -> Iterator[tuple[str, str]]:
    """A login role of its own (name, DSN): another program's, given only what a test grants it."""
    with login_role(pg_server.dsn, "writer") as role:
        yield role


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_writer_granted_nothing_on_the_log_is_logged(make_store: Any, writer_role: tuple[str, str]) -> None:
    """A role that may write the sessions table (as agno 1.x does) but was given nothing on the feed's tables: the
    trigger function runs as the role that enabled the feed, so the writer's statements go on and are logged.
    A feed whose function ran as the writer (an earlier build's) is made so by enable_changes()."""
    from agno_storage.backends.postgres import PostgresStorage

    store = make_store("agent")
    store.upsert(AgentSession(session_id="before", agent_id="x"))
    role, dsn = writer_role
    with store.transaction() as conn:
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA ai TO {}").format(sql.Identifier(role)))
        conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {store.qualified_table} TO {role}")
    store.enable_changes()
    app = PostgresStorage(store.table_name, db_url=dsn)
    app.upsert(AgentSession(session_id="app", agent_id="x"))
    with psycopg.connect(dsn) as conn:  # a plain statement, as agno 1.x writes
        conn.execute(f"UPDATE {store.qualified_table} SET user_id = 'u' WHERE session_id = 'before'")
    logged = [(c.session_id, c.user_id, c.op) for c in store.changes()]
    assert logged == [("app", None, "insert"), ("before", None, "update"), ("before", "u", "update")]

    function = store.qualified_table[:-1] + '_changes_log"()'
    with store.transaction() as conn:
        conn.execute(f"ALTER FUNCTION {function} SECURITY INVOKER")  # as an earlier build made it
    with pytest.raises(StorageError, match="permission denied"):
        app.upsert(AgentSession(session_id="app", agent_id="y"))
    store.enable_changes()
    app.upsert(AgentSession(session_id="app", agent_id="y"))
    assert [(c.session_id, c.op) for c in store.changes()][3:] == [("app", "update")]
    app.close()


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_log_another_role_made_on_the_search_path_is_refused(make_store: Any, writer_role: tuple[str, str]) -> None:
    """The trigger function runs as the role that enables the feed. A role that may create tables where that
    role's search path looks first makes "<table>_changes" (with a trigger of its own) before the feed is
    enabled: enable_changes() refuses that log, naming its owner, and installs nothing that would run the other
    role's trigger with the enabling role's rights."""
    store = make_store("agent", schema=None)
    role, dsn = writer_role
    log = f"{store.table_name}_changes"
    with store.transaction() as conn:
        conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(role)))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE TABLE public.{} (id bigserial, cursor bigint, tbl text, session_id text, user_id text, "
                "op text, at bigint DEFAULT 0, xid xid8 DEFAULT pg_current_xact_id())"
            ).format(sql.Identifier(log))
        )
    with pytest.raises(StorageError, match=f"owned by role {role!r}"):
        store.enable_changes()
    with store.transaction() as conn:
        installed = conn.execute(
            "SELECT count(*) FROM pg_proc WHERE proname = %s", (f"{store.table_name}_changes_log",)
        ).fetchone()
    assert installed == (0,)
    store.upsert(AgentSession(session_id="after", agent_id="x"))  # writes go on, unlogged
    with psycopg.connect(dsn) as conn:
        assert conn.execute(sql.SQL("SELECT count(*) FROM public.{}").format(sql.Identifier(log))).fetchone() == (0,)


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_meta_table_another_role_made_is_refused_before_its_trigger_can_run(
    make_store: Any, writer_role: tuple[str, str]
) -> None:
    """The other role made "<table>_changes_meta" with a trigger of its own: enable_changes() refuses it before
    writing into it, so that trigger never runs with the enabling role's rights (a sequence's value, which no
    rollback takes back, would show it)."""
    store = make_store("agent", schema=None)
    role, dsn = writer_role
    meta = f"{store.table_name}_changes_meta"
    with store.transaction() as conn:
        conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(role)))
    seen = sql.Identifier(f"seen_{role}")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE TABLE public.{} (key text PRIMARY KEY, value bigint NOT NULL)").format(sql.Identifier(meta))
        )
        conn.execute(sql.SQL("GRANT ALL ON public.{} TO PUBLIC").format(sql.Identifier(meta)))
        conn.execute(sql.SQL("CREATE SEQUENCE public.{}").format(seen))
        conn.execute(sql.SQL("GRANT ALL ON SEQUENCE public.{} TO PUBLIC").format(seen))
        conn.execute(
            sql.SQL(
                "CREATE FUNCTION public.{f}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "PERFORM setval('public.{s}', 42); RETURN NEW; END $$"
            ).format(f=sql.Identifier(f"spy_{role}"), s=sql.SQL(f"seen_{role}"))
        )
        conn.execute(
            sql.SQL(
                "CREATE TRIGGER spy BEFORE INSERT OR UPDATE ON public.{} FOR EACH ROW EXECUTE FUNCTION public.{}()"
            ).format(sql.Identifier(meta), sql.Identifier(f"spy_{role}"))
        )
    with pytest.raises(StorageError, match=f"owned by role {role!r}"):
        store.enable_changes()
    with psycopg.connect(dsn) as conn:
        assert conn.execute(sql.SQL("SELECT last_value, is_called FROM public.{}").format(seen)).fetchone() == (
            1,
            False,
        )


@pytest.mark.parametrize("backend", ["postgres"])
def test_the_feed_of_a_table_found_by_search_path_ignores_the_writers_search_path(make_store: Any) -> None:
    """schema=None: the feed's tables are where the search path found them at enable_changes(). A writer with
    another search path is logged there: never refused, never logged in the feed of a table of the same name in
    a schema of its search path."""
    public = make_store("agent", schema=None)
    ai = make_store("agent", table_name=public.table_name)
    public.enable_changes()
    ai.enable_changes()
    with public.transaction() as conn:
        for path in ("ai, public", "pg_catalog"):
            conn.execute(f"SET LOCAL search_path = {path}")
            conn.execute(
                f'INSERT INTO public."{public.table_name}" (session_id, user_id, agent_id, created_at) '
                "VALUES (%s, 'alice', 'x', 1)",
                (path,),
            )
    assert [(c.table, c.session_id) for c in public.changes()] == [
        (public.table_name, "ai, public"),
        (public.table_name, "pg_catalog"),
    ]
    assert ai.changes() == []


@pytest.mark.parametrize("backend", ["postgres"])
def test_disable_changes_takes_the_trigger_off_a_renamed_table(make_store: Any) -> None:
    """ALTER TABLE ... RENAME takes the feed's trigger along: enable_changes() says what to do, and
    disable_changes() removes it from the renamed table, so that a new feed starts."""
    store = make_store("agent")
    store.enable_changes()
    store.upsert(AgentSession(session_id="a", agent_id="x"))
    old = store.qualified_table[:-1] + '_old"'
    with store.transaction() as conn:
        conn.execute(f'ALTER TABLE {store.qualified_table} RENAME TO "{store.table_name}_old"')
        conn.execute(
            f"CREATE TABLE {store.qualified_table} (LIKE {old} INCLUDING ALL)"
        )  # made again by another program
    store._forget_shape()
    with pytest.raises(StorageError, match="renamed"):
        store.changes()
    with pytest.raises(StorageError, match=r"renamed.*disable_changes\(\)"):
        store.enable_changes()
    store.disable_changes()
    store.enable_changes()
    with store.transaction() as conn:
        conn.execute(f"INSERT INTO {old} (session_id, agent_id, created_at) VALUES ('archived', 'x', 1)")
        conn.execute(f"DROP TABLE {old}")
    store.upsert(AgentSession(session_id="b", agent_id="x"))
    assert [c.session_id for c in store.changes()] == ["b"]


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_truncate_by_another_program_is_a_gap_not_silence(make_store: Any) -> None:
    """TRUNCATE fires no row trigger: its deletes cannot be logged, so changes() says the feed has a gap, as for a
    table dropped behind it, until enable_changes() starts it again; a cursor from before the gap stays an error."""
    store = make_store("agent")
    store.enable_changes()
    store.upsert(AgentSession(session_id="a", agent_id="x"))
    cursor = store.changes()[-1].cursor
    with store.transaction() as conn:
        conn.execute(f"TRUNCATE {store.qualified_table}")
    with pytest.raises(StorageError, match="TRUNCATE"):
        store.changes(since=cursor)
    store.enable_changes()
    with pytest.raises(StorageError, match="not all logged"):
        store.changes(since=cursor)
    store.upsert(AgentSession(session_id="b", agent_id="x"))
    assert [c.session_id for c in store.changes()] == ["b"]
    store.disable_changes()
    store.enable_changes()
    store.upsert(AgentSession(session_id="c", agent_id="x"))
    assert [c.session_id for c in store.changes()] == ["c"]


@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.parametrize("suffix", ["_changes_log", "_changes_truncate"])
def test_a_trigger_of_the_feed_another_program_dropped_is_a_gap_not_silence(make_store: Any, suffix: str) -> None:
    """The row trigger logs every insert, update and delete; the statement trigger marks a TRUNCATE. Either one
    dropped behind the feed would leave its writes unlogged while the other goes on: changes() says so."""
    store = make_store("agent")
    store.enable_changes()
    store.upsert(AgentSession(session_id="a", agent_id="x"))
    cursor = store.changes()[-1].cursor
    trigger = sql.Identifier(store.table_name + suffix)
    with store.transaction() as conn:
        conn.execute(sql.SQL("DROP TRIGGER {} ON {}").format(trigger, sql.SQL(store.qualified_table)))
    with pytest.raises(StorageError, match=f"dropped the trigger '{store.table_name}{suffix}'"):
        store.changes(since=cursor)
    store.enable_changes()
    with pytest.raises(StorageError, match="not all logged"):
        store.changes(since=cursor)
    with store.transaction() as conn:
        conn.execute(f"TRUNCATE {store.qualified_table}")
    with pytest.raises(StorageError, match="TRUNCATE"):
        store.changes()
