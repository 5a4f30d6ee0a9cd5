"""PostgreSQL transactions: a failed statement aborts them, and a forked child never joins its parent's.

On PostgreSQL any failed statement aborts the whole transaction, and the
server answers a later COMMIT with a ROLLBACK and no error: these tests
hold the store to "commits only if the block finishes" all the same.
"""

from __future__ import annotations

import os
from typing import Any

import psycopg
import pytest

from agno_storage import BusyError, Mode, StorageError
from agno_storage.backends.postgres import PostgresStorage
from tests.sessions import make_session
from tests.support import finishes

pytestmark = pytest.mark.parametrize("backend", ["postgres"])


def test_a_store_read_refused_inside_a_transaction_leaves_it_usable(make_store: Any) -> None:
    store = make_store()
    store.create()
    with psycopg.connect(store.db_url, autocommit=True) as locker:
        # Another program holds the table: a read waiting for it gives up after lock_timeout.
        locker.execute("BEGIN")
        locker.execute(f"LOCK TABLE {store.qualified_table} IN ACCESS EXCLUSIVE MODE")
        with store.transaction() as conn:
            conn.execute("SET LOCAL lock_timeout = '100ms'")
            with pytest.raises(BusyError):
                store.read("s1")
            locker.execute("COMMIT")
            store.upsert(make_session(Mode.AGENT, "s1"))  # the caller goes on after the typed error
    assert store.read("s1") is not None, "the block finished, so its write is committed"


def test_a_block_that_caught_a_failed_statement_raises_and_commits_nothing(make_store: Any) -> None:
    store = make_store()
    store.create()
    with pytest.raises(StorageError, match="nothing of the block was committed"), store.transaction() as conn:
        store.upsert(make_session(Mode.AGENT, "s1"))
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute("SELECT 1/0")  # aborts the transaction; the caller catches it and goes on
    assert store.get_all_session_ids() == []
    # The connection went back to the pool clean: the next transaction commits.
    with store.transaction():
        store.upsert(make_session(Mode.AGENT, "s2"))
    assert store.get_all_session_ids() == ["s2"]


def test_a_nested_block_that_caught_a_failed_statement_is_undone_and_the_outer_one_goes_on(
    make_store: Any,
) -> None:
    store = make_store()
    store.create()
    with store.transaction():
        store.upsert(make_session(Mode.AGENT, "outer"))
        with pytest.raises(StorageError, match="nothing of the block was committed"), store.transaction() as conn:
            store.upsert(make_session(Mode.AGENT, "inner"))
            with pytest.raises(psycopg.errors.DivisionByZero):
                conn.execute("SELECT 1/0")
        store.upsert(make_session(Mode.AGENT, "after"))
    assert sorted(store.get_all_session_ids()) == ["after", "outer"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_inside_a_transaction_writes_on_its_own_connection(make_store: Any) -> None:
    store = make_store()
    store.create()
    with pytest.raises(RuntimeError, match="the parent aborts"), store.transaction():
        store.upsert(make_session(Mode.AGENT, "parent"))
        pid = os.fork()
        if pid == 0:  # a worker started from inside the block
            code = 1
            try:
                store.upsert(make_session(Mode.AGENT, "child"))
                code = 0
            finally:
                os._exit(code)
        _, status = finishes(lambda: os.waitpid(pid, 0))
        assert os.waitstatus_to_exitcode(status) == 0
        raise RuntimeError("the parent aborts its own block")
    # The child's upsert returned, so it is saved: it was never part of the parent's transaction.
    assert store.get_all_session_ids() == ["child"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_inside_a_transaction_cannot_end_it(make_store: Any) -> None:
    store = make_store()
    store.create()
    pid = -1
    try:
        with store.transaction():
            store.upsert(make_session(Mode.AGENT, "parent"))
            pid = os.fork()
            if pid != 0:
                _, status = finishes(lambda: os.waitpid(pid, 0))
                # 0: the child was told it cannot end the block; 1: it left as if it had committed.
                assert os.waitstatus_to_exitcode(status) == 0
                raise RuntimeError("the parent aborts its own block")
    except BaseException as exc:
        if pid == 0:
            os._exit(0 if isinstance(exc, StorageError) else 2)
        if not isinstance(exc, RuntimeError):
            raise
    if pid == 0:
        os._exit(1)
    # Neither a COMMIT nor a ROLLBACK came from the child: the parent's ROLLBACK is what counted.
    assert store.get_all_session_ids() == []


def test_a_second_store_writing_a_session_the_first_holds_gives_busy_error_under_a_lock_timeout(
    make_store: Any,
) -> None:
    # Two store objects are two connections: in one thread the second waits for the first's row lock, which
    # the first never lets go while the thread waits. PostgreSQL waits for ever unless told otherwise; a
    # lock_timeout in the URL's options makes the wait a BusyError, as SQLite's busy_timeout does.
    first = make_store()
    first.create()
    first.upsert(make_session(Mode.AGENT, "s1"))
    url = first.db_url + ("&" if "?" in first.db_url else "?") + "options=-c%20lock_timeout%3D300"
    second = PostgresStorage(table_name=first.table_name, db_url=url)

    def write_while_held() -> None:
        with first.transaction():
            first.upsert(make_session(Mode.AGENT, "s1", session_data={"by": "first"}))
            with pytest.raises(BusyError):
                second.upsert(make_session(Mode.AGENT, "s1", session_data={"by": "second"}))

    try:
        finishes(write_while_held)
    finally:
        second.close()
    stored = first.read("s1")
    assert stored is not None and stored.session_data == {"by": "first"}
