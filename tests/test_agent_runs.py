"""agno-golang's agent_runs table: appended from Python in upstream's format, read by Go, deleted with the session."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agno_storage import AgentSession, InvalidInputError, SchemaMismatchError, SqliteStorage, agent_runs
from agno_storage.cli import main
from tests.support import sessions_table_named_agent_runs
from tests.test_compat_go import FIXTURES
from tests.test_go_upstream import USER, canned, go_agent, go_cmds, go_read  # noqa: F401


def schema_sql(db: Path) -> dict[str, str]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE tbl_name = 'agent_runs'").fetchall()
    finally:
        conn.close()
    return dict(rows)


def runs(db: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM agent_runs ORDER BY rowid")]
    finally:
        conn.close()


def test_append_writes_upstreams_format(tmp_path: Path) -> None:
    """A run appended here is laid out, encoded and indexed exactly as the Go Agent's run in the fixture."""
    db = tmp_path / "py.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.create()
    go_row = next(r for r in runs(FIXTURES / "go_agent_conversation.db") if r["id"].endswith("1"))
    sent = [{"content": m["content"], "role": m["role"]} for m in json.loads(go_row["messages"])]
    row = store.append_run(
        go_row["session_id"], go_row["user_message"], go_row["agent_message"], user_id=USER, messages=sent
    )
    assert schema_sql(db) == schema_sql(FIXTURES / "go_agent_conversation.db")
    (mine,) = runs(db)
    assert mine["messages"] == go_row["messages"]  # the same bytes: Go's json.Marshal spelling
    for column in ("session_id", "user_id", "run_data", "user_message", "agent_message", "metrics"):
        assert mine[column] == go_row[column], column
    assert mine["run_name"] == f"run_{mine['created_at']}" and mine["created_at"] == mine["updated_at"]
    assert mine["id"] == row.id and len(row.id) == 36
    # Alone in this file, the run's replayed turns are new here: everything its model was sent, then the reply.
    assert [m.content for m in store.history(go_row["session_id"])] == [
        *(m["content"] for m in sent),
        go_row["agent_message"],
    ]
    with pytest.raises(InvalidInputError):
        SqliteStorage("team_sessions", db_file=db, mode="team").append_run("s", "q", "a")
    with pytest.raises(InvalidInputError):
        store.append_run("s", "q", None)  # type: ignore[arg-type]
    store.close()


def test_python_and_go_agent_share_one_conversation(go_cmds: Path, tmp_path: Path) -> None:  # noqa: F811
    """Go runs, then a Python-appended run, then Go again: one history, and Go reads the Python run back."""
    db = tmp_path / "shared.db"
    go_agent(go_cmds, db, "conv", ["from go first"], tmp_path / "a.json")
    store = SqliteStorage("agent_sessions", db_file=db)
    store.append_run("conv", "from python <&>", "python's answer", user_id=USER, metrics={"input_tokens": 7})
    go_agent(go_cmds, db, "conv", ["from go again"], tmp_path / "b.json")
    assert [(m.role, m.content) for m in store.history("conv")] == [
        ("user", "from go first"),
        ("assistant", canned("from go first")),
        ("user", "from python <&>"),
        ("assistant", "python's answer"),
        ("user", "from go again"),
        ("assistant", canned("from go again")),
    ]
    (usage,) = store.usage()
    assert (usage.runs, usage.runs_with_tokens, usage.input_tokens) == (3, 1, 7)
    store.upsert(AgentSession(session_id="conv-row", user_id=USER, agent_id="py"))
    out = go_read(go_cmds, db, "agent", "-session", "conv")
    assert sorted(r["user_message"] for r in out["runs"]["conv"]["runs"]) == [
        "from go again",
        "from go first",
        "from python <&>",
    ]
    store.close()


def test_delete_removes_the_sessions_runs_in_one_transaction(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    shutil.copyfile(FIXTURES / "go_agent_conversation.db", db)
    store = SqliteStorage("agent_sessions", db_file=db)
    store.append_run("py-only", "q", "a", user_id="other")
    assert store.delete("agent-existing", user_id="someone-else") is False
    assert {r["session_id"] for r in runs(db)} == {"agent-existing", "agent-new", "py-only"}
    assert store.delete("agent-existing") is True
    assert store.read("agent-existing") is None and store.history("agent-existing") == []
    # A session only agent_runs holds: deleted by its runs' owner, or by anyone without user_id.
    assert store.delete("py-only", user_id=USER) is False
    assert store.delete("agent-new", user_id=USER) is True
    assert store.delete("py-only") is True
    assert runs(db) == [] and store.runs_only_session_ids() == []
    # All or nothing: a failure after the session row went keeps both.
    store.upsert(AgentSession(session_id="s", agent_id="a"))
    store.append_run("s", "q", "a")
    with pytest.raises(RuntimeError), store.transaction():
        store.delete("s")
        raise RuntimeError("rolled back")
    assert store.read("s") is not None and len(runs(db)) == 1
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA foreign_keys").fetchone() == (0,)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()
    store.close()


def test_deleting_a_runs_only_session_keeps_to_its_owner(tmp_path: Path) -> None:
    # A session only agent_runs holds is deleted under the same owner rule as a row:
    # '' means "only if it has no owner", another user means nothing goes.
    store = SqliteStorage("agent_sessions", db_file=tmp_path / "s.db")
    store.create()
    store.append_run("g1", "hello", "hi", user_id="alice")
    assert store.delete("g1", user_id="") is False
    assert store.delete("g1", user_id="bob") is False
    assert [m.content for m in store.history("g1", user_id="alice")] == ["hello", "hi"]
    store.append_run("g2", "hello", "hi")
    assert store.delete("g2", user_id="") is True
    assert store.history("g2") == []
    assert store.delete("g1", user_id="alice") is True
    assert store.history("g1") == []


def test_deleting_a_session_takes_its_own_conversations_runs_never_another_users(tmp_path: Path) -> None:
    """eve's Go Agent ran under the id of alice's session: those runs are eve's (history gives them to her).
    alice's delete takes her row and its conversation's runs (hers, and those with no user) and leaves eve's;
    eve's delete takes only her own runs under that id and leaves alice's session whole."""
    db = tmp_path / "d.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.upsert(AgentSession(session_id="shared", user_id="alice", agent_id="x"))
    store.append_run("shared", "alice's question", "answer", user_id="")
    store.append_run("shared", "alice again", "answer", user_id="alice")
    store.append_run("shared", "eve's private question", "answer", user_id="eve")
    store.append_run("shared", "eve's second", "answer", user_id="eve")
    assert store.delete("shared", user_id="") is False  # no-user runs under an owned id are alice's
    assert store.delete("shared", user_id="eve") is True
    assert store.history("shared", user_id="eve") == []
    assert [m.content for m in store.history("shared", user_id="alice")] == [
        "alice's question",
        "answer",
        "alice again",
        "answer",
    ]
    assert store.delete("shared", user_id="eve") is False  # nothing of hers is left
    store.append_run("shared", "eve's third", "answer", user_id="eve")
    assert store.delete("shared", user_id="alice") is True
    assert store.read("shared") is None
    assert [(r["user_id"], r["user_message"]) for r in runs(db)] == [("eve", "eve's third")]
    assert [m.content for m in store.history("shared", user_id="eve")] == ["eve's third", "answer"]
    # Under a row with no owner every run is that session's conversation: eve's delete takes nothing of it.
    store.upsert(AgentSession(session_id="open", agent_id="x"))
    store.append_run("open", "eve in an open session", "answer", user_id="eve")
    assert store.delete("open", user_id="eve") is False
    assert [m.content for m in store.history("open")] == ["eve in an open session", "answer"]
    store.close()


@pytest.mark.parametrize("indexed", [False, True], ids=["scan", "index"])
def test_deleting_a_session_keeps_the_runs_of_its_copy_in_another_agent_table(tmp_path: Path, indexed: bool) -> None:
    """An archive table in the same file holds a row with the same id: its conversation (the runs under that
    id) lives on when the live table's row is deleted, as prune keeps it, and is the archive's alone: the live
    table does not take it for a session only agent_runs holds (no history, search hit, usage or delete)."""
    db = tmp_path / "d.db"
    live = SqliteStorage("agent_sessions", db_file=db)
    archive = SqliteStorage("archive_sessions", db_file=db)
    for store in (live, archive):
        store.upsert(AgentSession(session_id="s1", user_id="u", agent_id="x"))
    live.append_run("s1", "zebra kept in the archive", "answer", user_id="u")
    live.upsert(AgentSession(session_id="s2", user_id="u", agent_id="x"))
    live.append_run("s2", "only live", "answer", user_id="u")
    archive.upsert(AgentSession(session_id="s3", user_id="u", agent_id="x"))
    archive.append_run("s3", "zebra only ever archived", "answer", user_id="u")
    if indexed:
        live.enable_search()
        archive.enable_search()
    assert live.delete("s1") is True and live.delete("s2") is True
    assert [m.content for m in archive.history("s1")] == ["zebra kept in the archive", "answer"]
    assert sorted(h.session_id for h in archive.search("zebra")) == ["s1", "s3"]
    assert sorted(r["session_id"] for r in runs(db)) == ["s1", "s3"]
    assert live.runs_only_session_ids() == [] and live.search("zebra") == [] and live.usage() == []
    assert live.history("s1") == [] and live.history("s3", user_id="u") == []
    assert live.delete("s1") is False and live.delete("s3") is False
    assert archive.delete("s1") is True and archive.delete("s3") is True
    assert runs(db) == []
    live.close()
    archive.close()


def test_runs_of_many_sessions_reads_as_each_sessions_runs(tmp_path: Path) -> None:
    """runs_of (one statement for many sessions) gives each session's runs as read_runs does, in the order written."""
    store = SqliteStorage("agent_sessions", db_file=tmp_path / "r.db")
    assert agent_runs.runs_of(store, ["a"]) == {}
    for i in range(3):
        for sid in ("a", "b"):
            store.append_run(sid, f"q{i}", f"a{i}", user_id="u")
    assert agent_runs.runs_of(store, ["a", "b", "none"]) == {
        sid: agent_runs.read_runs(store, sid) for sid in ("a", "b")
    }
    assert [r.user_message for r in agent_runs.runs_of(store, ["b"])["b"]] == ["q0", "q1", "q2"]
    assert agent_runs.runs_of(store, []) == {}
    store.close()


def test_a_file_a_go_agent_alone_wrote_has_sessions_to_read_and_delete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Go Agent makes agent_runs and no sessions table for a new session: the store and the CLI read its
    sessions, and delete() removes their runs (only the given user's)."""
    db = tmp_path / "go.db"
    conn = sqlite3.connect(db)
    for statement in agent_runs.create_statements("agent_sessions"):
        conn.execute(statement)
    for run, session, user in (("r1", "go-1", "u"), ("r2", "go-1", "other"), ("r3", "go-2", "u")):
        conn.execute(
            "INSERT INTO agent_runs (id, session_id, user_id, user_message, agent_message, messages, metrics, "
            "created_at) VALUES (?, ?, ?, 'hi', 'hello', '[{\"content\":\"hi\",\"role\":\"user\"}]', '{}', 1700000000)",
            (run, session, user),
        )
    conn.commit()
    conn.close()
    store = SqliteStorage("agent_sessions", db_file=db)
    assert not store.table_exists()
    assert [m.content for m in store.history("go-1", user_id="u")] == ["hi", "hello"]
    assert main(["history", str(db), "go-2", "--table", "agent_sessions"]) == 0
    assert "hello" in capsys.readouterr().out
    # info has no table to describe, and says where the sessions are.
    assert main(["info", str(db), "--table", "agent_sessions"]) == 1
    assert "agent_runs holds 2 sessions a Go Agent ran" in capsys.readouterr().err
    assert store.delete("go-1", user_id="u") is True
    assert store.history("go-1", user_id="u") == [] and store.history("go-1", user_id="other") != []
    assert store.delete("go-2") is True and store.delete("go-2") is False
    with sqlite3.connect(db) as conn:
        assert [r[0] for r in conn.execute("SELECT id FROM agent_runs")] == ["r2"]
    store.close()


def test_deleting_a_go_only_session_never_takes_another_users_runs_through_a_case_blind_column(tmp_path: Path) -> None:
    """On an agent_runs table whose user_id another program declared COLLATE NOCASE, alice's delete of a session
    a Go Agent ran would have taken ALICE's runs too: it is refused, as the reads are, and nothing goes."""
    db = tmp_path / "go.db"
    with sqlite3.connect(db) as conn:
        for statement in agent_runs.create_statements("agent_sessions"):
            conn.execute(statement.replace("user_id TEXT,", "user_id TEXT COLLATE NOCASE,", 1))
        for run, user in (("r1", "alice"), ("r2", "ALICE")):
            conn.execute(
                "INSERT INTO agent_runs (id, session_id, user_id, messages, created_at) VALUES (?, 'go-1', ?, '[]', 1)",
                (run, user),
            )
        assert "COLLATE NOCASE" in conn.execute("SELECT sql FROM sqlite_master WHERE name = 'agent_runs'").fetchone()[0]
    with SqliteStorage("agent_sessions", db_file=db) as store, pytest.raises(SchemaMismatchError, match="NOCASE"):
        store.delete("go-1", user_id="alice")
    with sqlite3.connect(db) as conn:
        assert sorted(r[0] for r in conn.execute("SELECT id FROM agent_runs")) == ["r1", "r2"]


def test_a_mistyped_table_beside_a_go_agents_file_is_not_found_and_deletes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """agent_runs stands for a missing sessions table only in a file that has no other table."""
    db = tmp_path / "conv.db"
    shutil.copy(FIXTURES / "go_agent_conversation.db", db)
    with sqlite3.connect(db) as conn:
        before = conn.execute("SELECT COUNT(*) FROM agent_runs").fetchone()[0]
    assert main(["delete", str(db), "agent-existing", "--table", "agent_sesions"]) == 1
    assert main(["list", str(db), "--table", "agent_sesions"]) == 1
    assert "no table 'agent_sesions'" in capsys.readouterr().err
    typo = SqliteStorage("agent_sesions", db_file=db)
    assert typo.delete("agent-existing") is False
    assert typo.runs_only_session_ids() == [] and typo.history("agent-existing") == []
    typo.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM agent_runs").fetchone()[0] == before


def test_a_go_agents_runs_beside_another_modes_table_are_its_sessions(tmp_path: Path) -> None:
    """A Go Agent writes agent_runs and no agent table, also in a file a Go Team's table shares: the agent store
    reads those sessions (only an agent table beside it makes a missing name a mistyped one)."""
    db = tmp_path / "shared.db"
    SqliteStorage("team_sessions", db_file=db, mode="team").create()
    agents = SqliteStorage("agent_sessions", db_file=db)
    agents.append_run("go-s1", "hello needle", "answer", user_id="u1")
    assert not agents.table_exists()
    assert agents.runs_only_session_ids() == ["go-s1"]
    assert [m.content for m in agents.history("go-s1")] == ["hello needle", "answer"]
    assert [h.session_id for h in agents.search("needle")] == ["go-s1"]
    assert agents.delete("go-s1", user_id="u1") is True and agents.history("go-s1") == []
    agents.close()


def test_which_tables_count_as_an_agent_table_beside_a_go_agents_runs(tmp_path: Path) -> None:
    """An agno 1.8.4 team table made without mode= has agent_id among its columns, yet is a team table; a
    virtual table whose module this SQLite lacks is never opened to find out."""
    db = tmp_path / "mixed.db"
    conn = sqlite3.connect(db)
    conn.execute(
        "CREATE TABLE team_sessions (session_id VARCHAR PRIMARY KEY, user_id VARCHAR, memory JSON, session_data JSON, "
        "extra_data JSON, created_at INTEGER, updated_at INTEGER, agent_id VARCHAR, agent_data JSON, "
        "team_session_id VARCHAR, team_id VARCHAR, team_data JSON)"
    )
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute(
        "INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) "
        "VALUES ('table', 'vectors', 'vectors', 0, 'CREATE VIRTUAL TABLE vectors USING vec0(agent_id, embedding)')"
    )
    conn.commit()
    conn.close()
    agents = SqliteStorage("agent_sessions", db_file=db)
    agents.append_run("go-s1", "hello needle", "answer", user_id="u1")
    assert agent_runs.alone(agents)
    assert [m.content for m in agents.history("go-s1")] == ["hello needle", "answer"]
    assert agents.runs_only_session_ids() == ["go-s1"]
    agents.close()


def test_a_run_whose_messages_hold_no_role_shows_its_user_message_once(tmp_path: Path) -> None:
    """A message with no role is the user's; the run's user_message repeats it, and is not shown a second time."""
    store = SqliteStorage("agent_sessions", db_file=tmp_path / "f.db")
    store.append_run("g", "kestrels?", "ok", messages=[{"content": "kestrels?"}])
    assert [(m.role, m.content) for m in store.history("g")] == [("user", "kestrels?"), ("assistant", "ok")]
    store.close()


@pytest.mark.parametrize("declared", ["NUMERIC", "INTEGER", "REAL"])
def test_another_users_go_runs_are_never_found_through_a_column_that_converts_numbers(
    tmp_path: Path, declared: str
) -> None:
    """On an agent_runs table whose user_id another program declared NUMERIC (or INTEGER, REAL), SQLite keeps
    the user "1" as the number 1 and converts "1.0" asked for to it too: user "1.0" was told the session ids of
    user "1"'s runs. Such a table is refused, as one that compares case-blind is, naming the column."""
    db = tmp_path / "go.db"
    with sqlite3.connect(db) as conn:
        for statement in agent_runs.create_statements("agent_sessions"):
            conn.execute(statement.replace("user_id TEXT,", f"user_id {declared},", 1))
        conn.execute(
            "INSERT INTO agent_runs (id, session_id, user_id, messages, created_at) VALUES ('r1', 'go-1', '1', '[]', 1)"
        )
    conn.close()
    with SqliteStorage("agent_sessions", db_file=db) as store:
        for read in (
            lambda: store.runs_only_session_ids("1.0"),
            lambda: store.history("go-1", "1.0"),
            lambda: store.search("anything", user_id="1.0"),
            lambda: store.usage(user_id="1.0"),
        ):
            with pytest.raises(SchemaMismatchError, match=f"user_id is declared '{declared}'"):
                read()


def test_a_store_beside_a_sessions_table_named_agent_runs_reads_none_of_it_as_runs_and_changes_nothing(
    tmp_path: Path,
) -> None:
    """A sessions table an earlier build let be named agent_runs holds no Go Agent's runs: deleting
    agent_sessions' s1 deleted its s1 too, and history, search and usage stopped on "no such column: id" (named
    an error of agent_sessions); enable_changes put the runs' indexes and triggers on it. Each use of runs is now
    SchemaMismatchError naming agent_runs and how to rename it, the file unchanged; the sessions table's own
    rows still read."""
    db = tmp_path / "old.db"
    sessions_table_named_agent_runs(db, beside=True)

    def contents() -> list[Any]:
        conn = sqlite3.connect(db)
        try:
            tables = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
            return [
                tables,
                *(
                    conn.execute(f"SELECT * FROM {t} ORDER BY session_id").fetchall()
                    for t in ("agent_runs", "agent_sessions")
                ),
            ]
        finally:
            conn.close()

    before = contents()
    with SqliteStorage("agent_sessions", db_file=db) as store:
        assert [s.session_id for s in store.list()] == ["s1"]
        uses = {
            "delete": lambda: store.delete("s1"),
            "history": lambda: store.history("s1"),
            "search": lambda: store.search("zebras"),
            "usage": lambda: store.usage(),
            "runs_only_session_ids": lambda: store.runs_only_session_ids(),
            "append_run": lambda: store.append_run("s1", "hi", "hello"),
            "enable_changes": lambda: store.enable_changes(),
            "enable_search": lambda: store.enable_search(),
        }
        for what, use in uses.items():
            with pytest.raises(SchemaMismatchError) as caught:
                use()
            assert caught.value.table == "agent_runs", what
            assert "is not agno-golang's runs table" in str(caught.value), what
            assert "ALTER TABLE agent_runs RENAME TO agent_sessions_renamed" in str(caught.value), what
    assert contents() == before
