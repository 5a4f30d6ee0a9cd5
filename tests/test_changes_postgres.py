"""The change feed on PostgreSQL, where transactions commit in any order: no change is skipped behind a cursor."""

from __future__ import annotations

from typing import Any

import pytest

from agno_storage import AgentSession


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
