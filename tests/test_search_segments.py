"""How the SQLite search index lays out FTS5's segments: a catch-up writes them in one pass whatever order its
log holds, and a build (finished, or taken over from a builder that died) leaves them merged with FTS5's own
merging on for the writes after it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agno_storage import AgentSession, SqliteStorage, search_sqlite
from tests.test_search import _a_writer_before_each_transaction, _with_a_worker, indexed_messages

ROOT = Path(__file__).resolve().parent.parent
SESSIONS = 300


def memory(word: str) -> dict[str, Any]:
    return {
        "runs": [
            {
                "run_id": f"r{r}",
                "messages": [
                    {"role": "user", "content": f"tell me about {word} number {r}"},
                    {"role": "assistant", "content": f"here is answer {r}"},
                ],
            }
            for r in range(5)
        ]
    }


def seeded(path: Path) -> SqliteStorage:
    store = SqliteStorage("agent_sessions", db_file=path)
    store.upsert_many(
        AgentSession(session_id=f"s{i:03d}", user_id="u", agent_id="a", memory=memory("alpha")) for i in range(SESSIONS)
    )
    return store


def pages_written(store: SqliteStorage, call: Any) -> int:
    """FTS5 pages (segment leaves and its structure record) that ``call()`` writes through this thread's
    connection: each statement that writes FTS5's ``_data`` table writes one."""
    conn = store._thread_handle().conn
    count = [0]

    def traced(sql: str) -> None:
        upper = sql.upper()
        if "_SEARCH_DATA" in upper and ("INSERT" in upper or "REPLACE" in upper):
            count[0] += 1

    conn.set_trace_callback(traced)
    try:
        call()
    finally:
        conn.set_trace_callback(None)
    return count[0]


def merged(path: Path) -> bool:
    """Whether FTS5's ``merge`` (down to one segment a level) finds nothing left to do; tried and rolled back."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO agent_sessions_search (agent_sessions_search, rank) VALUES ('usermerge', 2)")
        before = conn.total_changes
        conn.execute("INSERT INTO agent_sessions_search (agent_sessions_search, rank) VALUES ('merge', 100000)")
        return conn.total_changes - before < 2  # FTS5's own test of a merge that did nothing
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def automerge(path: Path) -> Any:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT v FROM agent_sessions_search_config WHERE k = 'automerge'").fetchone()
        return None if row is None else row[0]
    finally:
        conn.close()


def rewrite(path: Path, order: list[int]) -> None:
    """Another program changes one message of each session, in this order."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    for i in order:
        conn.execute(
            "UPDATE agent_sessions SET memory = replace(memory, 'alpha', 'beta') WHERE session_id = ?", (f"s{i:03d}",)
        )
    conn.execute("COMMIT")
    conn.close()


def test_a_catch_up_writes_the_index_in_one_pass_whatever_order_its_log_holds(tmp_path: Path) -> None:
    # FTS5 writes what it holds to a new segment whenever a rowid comes before the last it saw: deletes in the
    # log's order (here the reverse of the index's) wrote 634 pages where the same catch-up in order wrote 10.
    written = {}
    for name, order in (("in order", list(range(SESSIONS))), ("reversed", list(reversed(range(SESSIONS))))):
        path = tmp_path / f"{name}.db"
        store = seeded(path)
        store.enable_search()
        rewrite(path, order)
        written[name] = pages_written(store, lambda s=store: s.search("beta"))
        assert len(store.search("beta", limit=SESSIONS)) == SESSIONS
        assert not store.search("alpha")
        store.close()
    assert written["reversed"] <= written["in order"] + 2, written


@pytest.mark.parametrize("worker", [False, True])
def test_a_build_leaves_the_index_merged_and_fts5_merging_the_writes_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, worker: bool
) -> None:
    started = _with_a_worker(monkeypatch) if worker else []
    monkeypatch.setattr(search_sqlite, "CHUNK", 50)  # the build in several batches: several segments to merge
    path = tmp_path / "built.db"
    store = seeded(path)
    store.enable_search()
    assert bool(started) == worker
    assert merged(path)
    # FTS5's merging is off while a build fills the index, and back on (its default) once the build ends.
    assert automerge(path) not in (0, "0")
    store.close()


_KILLED_BUILDER = """
import os, sys
from agno_storage import SqliteStorage, search_sqlite
search_sqlite.CHUNK = 50
real = search_sqlite.SqliteIndex._catch_up_batch
batches = [0]
def batch(self, conn, after, top):
    batches[0] += 1
    if batches[0] == 3:
        os._exit(9)  # killed in its third batch: two are committed, the rest is on the log
    return real(self, conn, after, top)
search_sqlite.SqliteIndex._catch_up_batch = batch
SqliteStorage("agent_sessions", db_file=sys.argv[1]).enable_search()
"""


def test_a_build_whose_process_died_is_finished_and_merged_by_the_next_search(tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    seeded(path).close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", _KILLED_BUILDER, str(path)], env=env, capture_output=True, check=False)
    assert done.returncode == 9, done.stderr.decode()
    assert automerge(path) in (0, "0")  # the build had started, and not ended

    store = SqliteStorage("agent_sessions", db_file=path)
    assert len(store.search("alpha", limit=SESSIONS)) == SESSIONS
    assert merged(path)
    assert automerge(path) not in (0, "0")
    store.close()

    fresh = tmp_path / "fresh.db"
    other = seeded(fresh)
    other.enable_search()
    other.close()
    assert indexed_messages(path) == indexed_messages(fresh)


def test_a_search_that_leaves_sessions_on_the_log_of_a_build_does_not_merge_it_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # While a build runs, its sessions are on the log: a search taking its share of them must not start merging
    # (a merge meanwhile would chase the segments the build goes on adding). Here another program writes before
    # each of the search's transactions, so the log is never empty when its catch-up ends.
    path = tmp_path / "shared.db"
    seeded(path).close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", _KILLED_BUILDER, str(path)], env=env, capture_output=True, check=False)
    assert done.returncode == 9, done.stderr.decode()

    monkeypatch.setattr(search_sqlite, "CHUNK", 50)  # the rest of the build in several batches
    store = SqliteStorage("agent_sessions", db_file=path)
    writer = SqliteStorage("agent_sessions", db_file=path)
    written = _a_writer_before_each_transaction(monkeypatch, store, writer)
    assert len(store.search("alpha", limit=SESSIONS)) == SESSIONS
    assert written
    assert automerge(path) in (0, "0")  # something was left on the log: not ended yet
    monkeypatch.undo()
    assert len(store.search("kestrel", limit=SESSIONS)) == len(written)  # the log taken to its end
    assert merged(path)
    assert automerge(path) not in (0, "0")
    writer.close()
    store.close()


def set_automerge(path: Path, value: int) -> None:
    """Somebody tunes FTS5's merging of the index by hand (FTS5's own command)."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "INSERT INTO agent_sessions_search (agent_sessions_search, rank) VALUES ('automerge', ?)", (value,)
        )
    conn.close()


@pytest.mark.parametrize("tuned", [0, 8])
def test_fts5_merging_set_by_hand_outlives_the_index_being_filled_again(tmp_path: Path, tuned: int) -> None:
    # Another program drops the sessions table and makes it again: the index (the same FTS5 table) is filled
    # anew by the next search, which must put back the automerge set on it by hand, not FTS5's default.
    path = tmp_path / "tuned.db"
    store = seeded(path)
    store.enable_search()
    set_automerge(path, tuned)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("ALTER TABLE agent_sessions RENAME TO old_sessions")
    conn.close()
    store.close()
    store = seeded(path)
    assert len(store.search("alpha", limit=SESSIONS)) == SESSIONS
    assert merged(path)
    assert automerge(path) == tuned
    rewrite(path, [1, 2])  # then another program's writes, caught up by a search
    assert {hit.session_id for hit in store.search("beta")} == {"s001", "s002"}
    assert automerge(path) == tuned
    store.close()


def test_fts5_usermerge_set_by_hand_outlives_a_build(tmp_path: Path) -> None:
    """A build merges with ``usermerge`` 2; one set by hand (for the `merge` commands someone runs) is put back."""
    path = tmp_path / "usermerge.db"
    store = seeded(path)
    store.enable_search()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT INTO agent_sessions_search (agent_sessions_search, rank) VALUES ('usermerge', 8)")
        conn.execute("ALTER TABLE agent_sessions RENAME TO old_sessions")  # the next search fills the index anew
    conn.close()
    store.close()
    store = seeded(path)
    assert len(store.search("alpha", limit=SESSIONS)) == SESSIONS
    assert merged(path)
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT k, v FROM agent_sessions_search_config WHERE k LIKE '%merge%'").fetchall()
    finally:
        conn.close()
    assert ("usermerge", 8) in rows
    assert not [k for k, _ in rows if k.startswith("agno_storage")]
    store.close()


def test_fts5_merging_turned_off_by_hand_stays_off_through_catch_ups(tmp_path: Path) -> None:
    # Off by hand (to merge at quiet hours, say) is not a build that died: a catch-up leaves it off.
    path = tmp_path / "off.db"
    store = seeded(path)
    store.enable_search()
    set_automerge(path, 0)
    rewrite(path, [3])
    assert {hit.session_id for hit in store.search("beta")} == {"s003"}
    assert automerge(path) == 0
    store.close()


_KILLED_IN_THE_MERGE = """
import os, sys
from agno_storage import SqliteStorage, search_sqlite
search_sqlite.CHUNK = 50
store = SqliteStorage("agent_sessions", db_file=sys.argv[1])

def traced(sql):
    if "'merge'" in sql:
        os._exit(9)  # killed as the build's final merge begins: the index is filled, not merged

store._thread_handle().conn.set_trace_callback(traced)
store.enable_search()
"""


def killed_in_the_merge(tmp_path: Path) -> Path:
    """A file whose index build's process was killed as its final merge began: filled, not merged."""
    path = tmp_path / "killed.db"
    seeded(path).close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_IN_THE_MERGE, str(path)], env=env, capture_output=True, check=False
    )
    assert done.returncode == 9, done.stderr.decode()
    assert not merged(path) and automerge(path) in (0, "0")
    return path


def test_a_build_killed_in_its_final_merge_is_merged_by_the_next_catch_up(tmp_path: Path) -> None:
    path = killed_in_the_merge(tmp_path)

    store = SqliteStorage("agent_sessions", db_file=path)
    assert len(store.search("alpha", limit=SESSIONS)) == SESSIONS  # the index answers meanwhile
    rewrite(path, [7])
    assert {hit.session_id for hit in store.search("beta")} == {"s007"}
    assert merged(path)
    assert automerge(path) not in (0, "0")
    store.close()


def test_enabling_again_after_a_build_killed_in_its_final_merge_merges_it_with_no_write_since(tmp_path: Path) -> None:
    """`search-index enable` run again ends the build it interrupted, as a search does once a write is logged."""
    path = killed_in_the_merge(tmp_path)

    store = SqliteStorage("agent_sessions", db_file=path)
    store.enable_search()
    assert merged(path)
    assert automerge(path) not in (0, "0")
    assert len(store.search("alpha", limit=SESSIONS)) == SESSIONS
    store.close()
