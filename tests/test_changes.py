"""store.changes(): every write of every writer, in commit order, resumable from a cursor."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agno_storage import AgentSession, InvalidInputError, SqliteStorage, StorageError
from agno_storage.changes import Change
from tests.agno_runner import close_storages, run_in_new_process, run_turn
from tests.support import write_run_as_another_program
from tests.test_go_upstream import USER, go_agent, go_cmds, go_team  # noqa: F401

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def ops(changes: list[Change]) -> list[tuple[str, str, str]]:
    return [(c.table, c.session_id, c.op) for c in changes]


def test_feed_resumes_from_a_cursor(make_store: Any) -> None:
    store = make_store("agent")
    with pytest.raises(StorageError):
        store.changes()
    store.enable_changes()
    table = store.table_name
    store.upsert(AgentSession(session_id="a", user_id="u1", agent_id="x"))
    store.upsert(AgentSession(session_id="b", user_id="u2", agent_id="x"))
    store.upsert(AgentSession(session_id="a", user_id="u1", agent_id="y"))
    store.delete("b")
    first = store.changes(limit=2)
    assert ops(first) == [(table, "a", "insert"), (table, "b", "insert")]
    cursor = first[-1].cursor
    store.close()

    # A new consumer, after a restart, goes on from the last cursor it processed.
    again = make_store("agent", table_name=table)
    rest = again.changes(since=cursor)
    assert ops(rest) == [(table, "a", "update"), (table, "b", "delete")]
    assert [c.cursor for c in first + rest] == sorted({c.cursor for c in first + rest})
    assert again.changes(since=rest[-1].cursor) == []
    assert [c.session_id for c in again.changes(user_id="u2")] == ["b", "b"]
    assert {c.user_id for c in again.changes(user_id="u1")} == {"u1"}
    again.upsert(AgentSession(session_id="c", user_id="u1", agent_id="x"))
    assert ops(again.changes(since=rest[-1].cursor)) == [(table, "c", "insert")]
    assert all(c.at > 1_600_000_000 for c in again.changes())
    with pytest.raises(InvalidInputError):
        again.changes(since=-1)
    with pytest.raises(InvalidInputError):
        again.enable_changes(retention=1)
    again.enable_changes()  # idempotent: the log and its cursors stay
    assert len(again.changes()) == 5
    again.disable_changes()
    with pytest.raises(StorageError):
        again.changes()
    again.upsert(AgentSession(session_id="d", agent_id="x"))  # writes go on without the feed


def test_a_table_dropped_behind_the_feed_is_an_error_not_a_silent_gap(make_store: Any) -> None:
    """Another program drops the table and makes it again: its triggers are gone, and later writes would go
    unlogged; changes() says so until the feed is started again."""
    from tests.test_search import drop_behind

    store = make_store("agent")
    store.enable_changes()
    store.upsert(AgentSession(session_id="a", agent_id="x"))
    cursor = store.changes()[-1].cursor
    drop_behind(store)
    store.upsert(AgentSession(session_id="b", agent_id="x"))  # makes the table again
    with pytest.raises(StorageError, match="stopped logging"):
        store.changes(since=cursor)
    store.disable_changes()
    store.enable_changes()
    store.upsert(AgentSession(session_id="c", agent_id="x"))
    assert [c.session_id for c in store.changes()] == ["c"]


@pytest.mark.parametrize(
    ("table", "trigger"),
    [
        ("agent_sessions", f"agent_sessions_changes_{op}")
        for op in ("insert", "update", "delete", "replace", "reid", "rename")
    ]
    + [("agent_runs", f"agent_sessions_runs_changes_{op}") for op in ("insert", "update", "delete", "replace", "reid")],
)
def test_a_trigger_of_the_feed_another_program_dropped_is_an_error_not_a_silent_gap(
    tmp_path: Path, table: str, trigger: str
) -> None:
    """Each of the feed's triggers logs one kind of write: without it, that kind would go unlogged while the
    others are still logged. A consumer is told, and enable_changes() starts the feed again."""
    db = tmp_path / "f.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.upsert(AgentSession(session_id="a", agent_id="x"))
    store.append_run("a", "kestrels", "ok")
    store.enable_changes()
    store.upsert(AgentSession(session_id="z", agent_id="x"))
    cursor = store.changes()[-1].cursor
    with sqlite3.connect(db) as conn:
        conn.execute(f'DROP TRIGGER "{trigger.upper()}"')  # SQLite's names know no case
    conn.close()
    store.upsert(AgentSession(session_id="a", agent_id="y"))
    with pytest.raises(StorageError, match=f"dropped the trigger '{trigger}' on {table}"):
        store.changes(since=cursor)
    store.enable_changes()
    with pytest.raises(StorageError, match="read the sessions again"):
        store.changes(since=cursor)
    store.upsert(AgentSession(session_id="b", agent_id="x"))
    assert [c.session_id for c in store.changes()] == ["b"]
    store.close()


@pytest.mark.parametrize("table", ["agent_sessions", "agent_runs"])
def test_a_table_renamed_behind_the_feed_is_an_error_not_a_silent_gap(tmp_path: Path, table: str) -> None:
    """ALTER TABLE ... RENAME takes the feed's triggers along: a table made again under the name would be
    written unlogged."""
    db = tmp_path / "f.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.enable_changes()
    store.upsert(AgentSession(session_id="a", agent_id="x"))
    with sqlite3.connect(db) as conn:
        conn.execute(f'ALTER TABLE "{table}" RENAME TO "{table}_old"')
    conn.close()
    with pytest.raises(StorageError, match="renamed"):
        store.changes()
    store.close()


def test_a_go_run_moved_to_another_session_by_replace_is_a_change_of_both(tmp_path: Path) -> None:
    """agent_runs is keyed by run id: a REPLACE taking an id another session holds deletes that row with no
    delete trigger fired; the session that lost it is logged all the same, as one to re-read."""
    db = tmp_path / "f.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    first = store.append_run("go-a", "kestrels", "ok", user_id="u")
    store.enable_changes()
    with sqlite3.connect(db) as conn:
        write_run_as_another_program(conn, first.id, session_id="go-b")
    conn.close()
    assert ops(store.changes()) == [("agent_runs", "go-a", "update"), ("agent_runs", "go-b", "insert")]
    assert [c.session_id for c in store.changes(user_id="u")] == ["go-a", "go-b"]
    with sqlite3.connect(db) as conn:  # the run's id again, for go-c, and ignored: go-b loses nothing
        write_run_as_another_program(conn, first.id, "INSERT OR IGNORE", session_id="go-c")
    conn.close()
    assert ops(store.changes())[2:] == [("agent_runs", "go-b", "update")]  # to re-read, not gone
    assert store.history("go-b") and store.history("go-c") == []
    before = len(store.changes(user_id="u"))
    with sqlite3.connect(db) as conn:  # the run handed to another user within its session: both owners told
        write_run_as_another_program(conn, first.id, user_id="v")
    conn.close()
    assert [(c.session_id, c.op) for c in store.changes(user_id="u")][before:] == [("go-b", "update")]
    assert [c.session_id for c in store.changes(user_id="v")] == ["go-b"]
    store.close()


def test_agent_runs_dropped_behind_the_feed_is_an_error(tmp_path: Path) -> None:
    store = SqliteStorage("agent_sessions", db_file=tmp_path / "s.db")
    store.enable_changes()
    store.append_run("go-1", "hi", "hello", user_id="u")
    conn = sqlite3.connect(tmp_path / "s.db")
    conn.execute("DROP TABLE agent_runs")  # as a Go program resetting its runs would
    conn.commit()
    conn.close()
    store.append_run("go-1", "again", "hello again", user_id="u")  # agent_runs made again, unwatched
    with pytest.raises(StorageError, match="agent_runs was dropped"):
        store.changes()
    store.close()


def test_pruned_changes_are_not_skipped_silently(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.enable_changes(retention=60)
    store.upsert(AgentSession(session_id="old", agent_id="x"))
    store.upsert(AgentSession(session_id="new", agent_id="x"))
    before, old, new = store.changes()[0].cursor - 1, *[c.cursor for c in store.changes()]
    conn = sqlite3.connect(db)
    conn.execute("UPDATE agent_sessions_changes SET at = at - 3600 WHERE session_id = 'old'")
    conn.commit()
    conn.close()
    # A consumer that held a cursor before the pruned change is told; one at the pruned change goes on;
    # a new consumer (since=0) starts from the oldest change still kept.
    with pytest.raises(StorageError, match="pruned"):
        store.changes(since=before)
    assert [c.session_id for c in store.changes(since=old)] == ["new"]
    assert [c.cursor for c in store.changes()] == [new]
    store.close()


def test_a_prune_by_another_process_is_seen_in_the_same_read(tmp_path: Path) -> None:
    """Another consumer prunes just as this one reads: what was pruned and what is left come from one
    snapshot, so the reader is told rather than handed the changes after the gap."""
    db = tmp_path / "p.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.enable_changes(retention=60)
    for i in range(6):
        store.upsert(AgentSession(session_id=f"s{i}", agent_id="x"))
    cursors = [c.cursor for c in store.changes()]
    conn = sqlite3.connect(db, isolation_level=None)
    fired: list[str] = []

    def prune_first(sql: str, params: Any) -> None:
        if "LEFT JOIN" in sql and not fired:  # the read of the log: another process prunes right before it
            fired.append(sql)
            conn.execute("UPDATE agent_sessions_changes SET at = at - 3600 WHERE cursor <= ?", (cursors[3],))
            SqliteStorage("agent_sessions", db_file=db).changes(since=cursors[3])

    consumer = SqliteStorage("agent_sessions", db_file=db, tracer=prune_first)
    with pytest.raises(StorageError, match="pruned"):
        consumer.changes(since=cursors[0])
    assert fired
    consumer.close()
    conn.close()
    store.close()


def test_a_feed_enabled_again_never_reuses_a_cursor(tmp_path: Path) -> None:
    store = SqliteStorage("agent_sessions", db_file=tmp_path / "s.db")
    store.enable_changes()
    store.upsert(AgentSession(session_id="a", agent_id="x"))
    store.upsert(AgentSession(session_id="b", agent_id="x"))
    held = store.changes()[-1].cursor
    store.disable_changes()
    store.upsert(AgentSession(session_id="unlogged", agent_id="x"))
    store.enable_changes()
    store.upsert(AgentSession(session_id="c", agent_id="x"))
    [change] = store.changes()
    assert change.session_id == "c" and change.cursor > held
    # A consumer of the old feed is told that changes after its cursor were not all kept.
    with pytest.raises(StorageError, match="pruned"):
        store.changes(since=held)
    store.close()


def test_a_session_renamed_or_handed_to_another_owner_shows_where_it_went(make_store: Any) -> None:
    """UPDATE of session_id: the old id is deleted and the new one inserted. UPDATE of user_id: the old
    owner's feed sees the session change (reading it as that owner then gives None)."""
    store = make_store("agent")
    store.upsert(AgentSession(session_id="a", user_id="alice", agent_id="x"))
    store.enable_changes()
    table = store.table_name
    mark = "?" if isinstance(store, SqliteStorage) else "%s"
    name = f'"{table}"' if isinstance(store, SqliteStorage) else store.qualified_table
    with store.transaction() as conn:
        conn.execute(f"UPDATE {name} SET session_id = {mark} WHERE session_id = {mark}", ("b", "a"))
    assert [(c.session_id, c.user_id, c.op) for c in store.changes()] == [
        ("a", "alice", "delete"),
        ("b", "alice", "insert"),
    ]
    cursor = store.changes()[-1].cursor
    with store.transaction() as conn:
        conn.execute(f"UPDATE {name} SET user_id = {mark} WHERE session_id = {mark}", ("mallory", "b"))
    assert [(c.session_id, c.op) for c in store.changes(since=cursor, user_id="alice")] == [("b", "update")]
    assert [(c.session_id, c.op) for c in store.changes(since=cursor, user_id="mallory")] == [("b", "update")]
    assert store.read("b", user_id="alice") is None


def test_no_owner_means_null_or_empty_in_the_feed_too(make_store: Any) -> None:
    """``user_id=""`` is "no owner", as in list(): rows whose owner is NULL (agno writes that) or ''."""
    store = make_store("agent")
    if isinstance(store, SqliteStorage):
        # agno 1.x's own SQLite table, whose user_id may be NULL (the Go layout this store makes says NOT NULL).
        assert store.db_path is not None
        ddl = (FIXTURES / "agno_ddl.sql").read_text().split("-- agno_team.db")[0]
        with sqlite3.connect(store.db_path) as conn:
            conn.executescript(ddl.replace("agent_sessions", store.table_name))
    store.enable_changes()
    table = store.table_name
    store.upsert(AgentSession(session_id="ours", agent_id="x"))
    mark = "?" if isinstance(store, SqliteStorage) else "%s"
    name = f'"{table}"' if isinstance(store, SqliteStorage) else store.qualified_table
    with store.transaction() as conn:
        conn.execute(f"INSERT INTO {name} (session_id, user_id, agent_id) VALUES ({mark}, NULL, 'x')", ("null",))
        conn.execute(f"INSERT INTO {name} (session_id, user_id, agent_id) VALUES ({mark}, '', 'x')", ("empty",))
    store.upsert(AgentSession(session_id="owned", user_id="u", agent_id="x"))
    assert sorted(s.session_id for s in store.list(user_id="")) == ["empty", "null", "ours"]
    assert sorted(c.session_id for c in store.changes(user_id="")) == ["empty", "null", "ours"]
    assert [c.session_id for c in store.changes(user_id="u")] == ["owned"]


def test_a_go_run_with_no_user_is_a_change_of_the_session_owners_feed(tmp_path: Path) -> None:
    """A Go Agent given no user continues an owned session: its run is the owner's conversation (as history()
    shows it), so the owner's scoped feed sees it and the feed of "no owner" does not; another user's run
    under the same id stays that user's own."""
    db = tmp_path / "runs.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.enable_changes()
    store.upsert(AgentSession(session_id="owned", user_id="ada", agent_id="x"))
    store.upsert(AgentSession(session_id="loose", agent_id="x"))
    with sqlite3.connect(db) as conn:  # as the Go Agent writes them: plain statements, no store in between
        conn.executemany(
            "INSERT INTO agent_runs (id, session_id, user_id, created_at, updated_at) VALUES (?, ?, ?, 1, 1)",
            [("r1", "owned", ""), ("r2", "owned", None), ("r3", "owned", "eve"), ("r4", "loose", ""), ("r5", "go", "")],
        )
    ada = [(c.table, c.session_id) for c in store.changes(user_id="ada")]
    assert ada == [("agent_sessions", "owned"), ("agent_runs", "owned"), ("agent_runs", "owned")]
    assert [(c.table, c.session_id) for c in store.changes(user_id="eve")] == [("agent_runs", "owned")]
    nobody = [(c.table, c.session_id) for c in store.changes(user_id="")]
    assert nobody == [("agent_sessions", "loose"), ("agent_runs", "loose"), ("agent_runs", "go")]
    assert len(store.changes()) == 7
    store.close()


def test_a_go_run_of_a_deleted_session_is_never_a_change_of_the_next_owner_of_its_id(tmp_path: Path) -> None:
    """A run with no user was the conversation of the session row it was written under: once that row is
    deleted, a session another user makes under the same id does not take the run's changes into its feed
    (nor does the feed of "no owner"): changes logged before the session was deleted are no user's since."""
    db = tmp_path / "runs.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.enable_changes()
    store.upsert(AgentSession(session_id="s", user_id="ada", agent_id="x"))
    store.append_run("s", "ada's question", "an answer")  # a Go Agent given no user continues ada's session
    assert store.delete("s", user_id="ada")
    store.upsert(AgentSession(session_id="s", user_id="bob", agent_id="x"))
    assert [(c.table, c.user_id, c.op) for c in store.changes(user_id="bob")] == [("agent_sessions", "bob", "insert")]
    assert [(c.table, c.op) for c in store.changes(user_id="ada")] == [
        ("agent_sessions", "insert"),
        ("agent_sessions", "delete"),
    ]
    assert [(c.table, c.op) for c in store.changes()][1:4] == [
        ("agent_runs", "insert"),
        ("agent_runs", "delete"),
        ("agent_sessions", "delete"),
    ]
    assert store.changes(user_id="") == []
    store.append_run("s", "bob's question", "an answer")  # bob's session now: bob's change
    assert [(c.table, c.op) for c in store.changes(user_id="bob")][1:] == [("agent_runs", "insert")]
    store.close()


def test_a_cursor_ahead_of_the_log_is_an_error_not_an_empty_feed(make_store: Any) -> None:
    """A consumer whose cursor the feed never handed out (the database restored from an earlier copy) is
    told, instead of waiting on an empty feed while the cursors it holds are handed out again."""
    store = make_store("agent")
    store.enable_changes()
    store.upsert(AgentSession(session_id="a", agent_id="x"))
    top = store.changes()[-1].cursor
    assert store.changes(since=top) == []
    with pytest.raises(StorageError, match="ahead"):
        store.changes(since=top + 1)
    store.upsert(AgentSession(session_id="b", agent_id="x"))
    assert [c.session_id for c in store.changes(since=top)] == ["b"]


def test_every_writer_in_commit_order_across_a_restart(go_cmds: Path, tmp_path: Path) -> None:  # noqa: F811
    """agno 1.8.4 (here and in another process), a Go Agent, a Go Team and this store, in the order they wrote."""
    db = tmp_path / "all.db"
    agents = SqliteStorage("agent_sessions", db_file=db)
    teams = SqliteStorage("team_sessions", db_file=db, mode="team")
    agents.enable_changes()
    teams.enable_changes()
    run_turn("agent", "ours", str(db), "py-agent", USER, "hello")
    close_storages()
    go_agent(go_cmds, db, "go-agent", ["one", "two"], tmp_path / "a.json")
    go_team(go_cmds, db, "go-team", ["one"], tmp_path / "t.json")
    run_in_new_process("agent", "ours", str(db), "py-agent", "again")
    agents.upsert(AgentSession(session_id="store", user_id=USER, agent_id="x"))
    agents.delete("go-agent")
    go_team(go_cmds, db, "go-team", ["two"], tmp_path / "t2.json")

    seen = agents.changes(limit=3)
    agents.close()
    resumed = SqliteStorage("agent_sessions", db_file=db)  # the consumer restarts
    seen += resumed.changes(since=seen[-1].cursor)
    # agno writes its session once per run; each Go Agent turn is one agent_runs row; delete() of the
    # Go Agent's session (it has no session row) removes its runs.
    assert ops(seen) == [
        ("agent_sessions", "py-agent", "insert"),
        ("agent_runs", "go-agent", "insert"),
        ("agent_runs", "go-agent", "insert"),
        ("agent_sessions", "py-agent", "update"),
        ("agent_sessions", "store", "insert"),
        ("agent_runs", "go-agent", "delete"),
        ("agent_runs", "go-agent", "delete"),
    ]
    assert [c.cursor for c in seen] == sorted(c.cursor for c in seen)
    team_changes = teams.changes()
    assert ops(team_changes) == [("team_sessions", "go-team", "insert")] * 2  # Go's INSERT OR REPLACE, each run
    assert {c.user_id for c in team_changes} == {USER}
    resumed.close()
    teams.close()


def test_a_consumer_that_may_not_write_reads_the_feed_when_changes_are_old(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    writer = SqliteStorage("agent_sessions", db_file=db)
    writer.enable_changes(retention=60)
    writer.upsert(AgentSession(session_id="old", agent_id="x"))
    writer.upsert(AgentSession(session_id="new", agent_id="x"))
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE agent_sessions_changes SET at = 1 WHERE session_id = 'old'")  # past the retention
    reader = SqliteStorage("agent_sessions", db_file=db, read_only=True)
    assert [c.session_id for c in reader.changes()] == ["old", "new"]  # nothing pruned: it may not write
    assert [c.session_id for c in writer.changes()] == ["new"]  # a writer's read prunes
    assert [c.session_id for c in reader.changes()] == ["new"]
    reader.close()
    writer.close()


def test_a_table_name_postgres_would_cut_in_the_feeds_names_is_refused(make_store: Any) -> None:
    """PostgreSQL keeps 63 bytes of a name: for a 55-character table, <table>_changes and <table>_changes_meta
    would both be cut to one name."""
    store = make_store("agent", table_name="t" * 55)
    if isinstance(store, SqliteStorage):
        store.enable_changes()  # SQLite takes any length
        store.enable_search()
        return
    with pytest.raises(InvalidInputError, match="63 bytes"):
        store.enable_changes()
    with pytest.raises(InvalidInputError, match="63 bytes"):
        store.enable_search()
    store.upsert(AgentSession(session_id="a", agent_id="x"))  # the table itself works
    # 52 characters: <table>_changes_meta is cut, but to a name of its own, as an earlier version made it.
    fits = make_store("agent", table_name="u" * 52)
    fits.enable_changes()
    fits.upsert(AgentSession(session_id="a", agent_id="x"))
    assert [c.session_id for c in fits.changes()] == ["a"]


@pytest.mark.parametrize("first", ["chat", "chat_runs"])
def test_feeds_of_tables_t_and_t_runs_never_take_each_others_triggers(tmp_path: Path, first: str) -> None:
    """t's feed names its agent_runs triggers t_runs_changes_*, as the feed of a table t_runs names its own:
    the second feed is refused, and disabling one leaves the other logging."""
    db = tmp_path / "s.db"
    chat = SqliteStorage("chat", db_file=db)
    runs_table = SqliteStorage("chat_runs", db_file=db)
    chat.create()
    runs_table.create()
    one, other = (chat, runs_table) if first == "chat" else (runs_table, chat)
    one.enable_changes()
    with pytest.raises(StorageError, match="trigger"):
        other.enable_changes()
    other.disable_changes()  # drops nothing of the first feed
    chat.append_run("go-1", "hi", "hello")
    runs_table.upsert(AgentSession(session_id="r", agent_id="x"))
    got = [(c.table, c.session_id) for c in one.changes()]
    # Both are agent tables: agent_runs, which agent tables of a file share, is logged by either feed.
    assert got == ([("agent_runs", "go-1")] if first == "chat" else [("agent_runs", "go-1"), ("chat_runs", "r")])
    chat.close()
    runs_table.close()


def test_a_cursor_or_retention_beyond_64_bits_is_a_typed_error(make_store: Any) -> None:
    """Neither engine stores an integer of 2**63 or more: such a cursor is ahead of every change (as a cursor
    the feed never handed out is), and such a retention is refused before anything is made."""
    store = make_store("agent")
    for retention in (2**63, 10**30):
        with pytest.raises(InvalidInputError, match="retention"):
            store.enable_changes(retention=retention)
    with pytest.raises(StorageError, match="not enabled"):
        store.changes()
    store.enable_changes(retention=2**63 - 1)
    store.upsert(AgentSession(session_id="a", agent_id="x"))
    for since in (2**63 - 1, 2**63, 10**30):
        with pytest.raises(StorageError, match="ahead"):
            store.changes(since=since)
    assert [c.session_id for c in store.changes()] == ["a"]


def test_a_row_with_no_session_id_can_still_be_deleted_or_repaired(tmp_path: Path) -> None:
    """SQLite lets a TEXT PRIMARY KEY hold NULL (a broken file): no reader can ask for such a row, so the feed
    leaves it out rather than fail another program's statement that deletes or repairs it."""
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.create()
    conn = sqlite3.connect(db, isolation_level=None)
    rows = "INSERT INTO agent_sessions (session_id, user_id, agent_id, created_at) VALUES (NULL, '', 'x', 1), "
    conn.execute(rows + "(NULL, '', 'x', 2)")
    store.enable_changes()
    conn.execute("INSERT INTO agent_sessions (session_id, user_id, agent_id, created_at) VALUES (NULL, '', 'x', 3)")
    conn.execute("DELETE FROM agent_sessions WHERE created_at = 1")
    conn.execute("UPDATE agent_sessions SET session_id = 'repaired' WHERE created_at = 2")
    conn.execute("UPDATE agent_sessions SET user_id = 'u' WHERE session_id IS NULL")
    conn.execute("DELETE FROM agent_sessions WHERE session_id IS NULL")
    conn.close()
    assert ops(store.changes()) == [("agent_sessions", "repaired", "insert")]
    store.close()


@pytest.mark.parametrize("table", ["agent_sessions", "agent_runs"])
def test_disable_changes_takes_the_triggers_off_a_renamed_table(tmp_path: Path, table: str) -> None:
    """A table renamed behind the feed (an archive of agent_runs, say) keeps the feed's triggers: enable_changes()
    says what to do, and disable_changes() removes them, so writes to the renamed table go on and a new feed
    starts."""
    db = tmp_path / "f.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.enable_changes()
    store.append_run("go-1", "hi", "hello")
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute(f'ALTER TABLE "{table}" RENAME TO "{table}_old"')
    with pytest.raises(StorageError, match=r"renamed.*disable_changes\(\)"):
        store.enable_changes()
    store.disable_changes()
    assert conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall() == []
    conn.execute(f'DELETE FROM "{table}_old"')  # another program clears the archive
    store.enable_changes()
    store.upsert(AgentSession(session_id="new", agent_id="x"))
    store.append_run("go-2", "hi", "hello")
    assert ops(store.changes()) == [("agent_sessions", "new", "insert"), ("agent_runs", "go-2", "insert")]
    conn.close()
    store.close()


def test_a_session_replaced_under_another_owner_is_a_change_of_the_old_owners_feed(make_store: Any) -> None:
    """agno-golang's INSERT OR REPLACE (SQLite) of a session under another user_id: the old owner's scoped
    feed sees it deleted, the new owner's inserted, in that order; agno 1.x's ON CONFLICT DO UPDATE (either
    engine) is an update in both; an INSERT OR IGNORE changes nothing and logs nothing."""
    store = make_store("agent")
    store.upsert(AgentSession(session_id="s", user_id="alice", agent_id="x"))
    store.enable_changes()
    sqlite = isinstance(store, SqliteStorage)
    mark = "?" if sqlite else "%s"
    name = f'"{store.table_name}"' if sqlite else store.qualified_table
    insert = f"INSERT INTO {name} (session_id, user_id, agent_id, created_at) VALUES ({mark}, {mark}, 'x', 1)"
    writes = [(f"{insert} ON CONFLICT (session_id) DO UPDATE SET user_id = excluded.user_id", "update", "update")]
    if sqlite:
        writes.append((insert.replace("INSERT", "INSERT OR REPLACE"), "delete", "insert"))
    cursor, owner = 0, "alice"
    for statement, gone, came in writes:
        new = "bob" if owner == "alice" else "alice"
        with store.transaction() as conn:
            conn.execute(statement, ("s", new))
        assert store.read("s", user_id=owner) is None
        assert [(c.session_id, c.user_id, c.op) for c in store.changes(since=cursor)] == [
            ("s", owner, gone),
            ("s", new, came),
        ]
        assert [c.op for c in store.changes(since=cursor, user_id=owner)] == [gone]
        cursor, owner = store.changes()[-1].cursor, new
    if sqlite:
        with store.transaction() as conn:
            conn.execute(insert.replace("INSERT", "INSERT OR IGNORE"), ("s", "carol"))
        assert store.changes(since=cursor) == []
        store.delete("s", user_id=owner)
        assert [(c.user_id, c.op) for c in store.changes(since=cursor)] == [(owner, "delete")]
