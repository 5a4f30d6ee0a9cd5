"""store.search(): full-text search over every writer's messages, scanned or through the opt-in index."""

from __future__ import annotations

import contextlib
import itertools
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from agno_storage import (
    AgentSession,
    CorruptRowError,
    DatabaseReplacedError,
    InvalidInputError,
    Message,
    SearchHit,
    SqliteStorage,
    StorageError,
    TeamSession,
    search_index,
    search_sqlite,
    search_sqlite_worker,
)
from agno_storage import search as search_module
from agno_storage.backends.base import BaseStorage
from agno_storage.conversation import make_converter
from tests.agno_runner import TABLES, close_storages, run_turn
from tests.support import finishes, refuse_checkpoint_thread, write_run_as_another_program
from tests.test_go_upstream import USER, go_agent, go_cmds, go_team  # noqa: F401

CONVERTER = make_converter()
_ids = itertools.count()


def agno_memory(*turns: tuple[str, str], run: str = "r") -> dict[str, Any]:
    """agno 1.8.4's memory of an agent that ran ``turns`` (history replayed, as agno does)."""
    runs, history = [], []
    for i, (question, answer) in enumerate(turns):
        now = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        runs.append({"run_id": f"{run}{i}", "messages": [*history, *now]})
        history = [{**m, "from_history": True} for m in [*history, *now]]
    return {"runs": runs}


def seed(store: Any) -> None:
    store.upsert(
        AgentSession(
            session_id="alice-1",
            user_id="alice",
            agent_id="birder",
            memory=agno_memory(("Where do kestrels nest?", "Kestrels nest on ledges."), ("And owls?", "In hollows.")),
        )
    )
    store.upsert(
        AgentSession(
            session_id="bob-1",
            user_id="bob",
            agent_id="cook",
            memory=agno_memory(("A kestrel recipe?", "No: kestrels are protected. Try Käsespätzle 🧀.")),
        )
    )
    store.upsert(AgentSession(session_id="empty", user_id="bob", agent_id="cook"))


def index_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on a search that falls back to the scan fails the test: the index must answer."""

    def scanned(*args: Any) -> Any:
        raise AssertionError("the search scanned: the index did not answer")

    monkeypatch.setattr(search_module, "scan", scanned)


def found(hits: list[SearchHit]) -> list[tuple[str, str | None]]:
    return [(h.session_id, h.message.content) for h in hits]


@pytest.mark.parametrize("indexed", [False, True], ids=["scan", "index"])
def test_search_finds_words_scoped_to_owner(make_store: Any, indexed: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    store = make_store("agent")
    seed(store)
    if indexed:
        store.enable_search()
        index_only(monkeypatch)
    hits = store.search("kestrels")
    assert sorted(found(hits)) == [
        ("alice-1", "Kestrels nest on ledges."),
        ("alice-1", "Where do kestrels nest?"),
        ("bob-1", "No: kestrels are protected. Try Käsespätzle 🧀."),
    ]
    assert all(h.message.content and "[" in h.snippet for h in hits)
    # Every word, whole words, case-insensitively; each message once although agno replayed it.
    assert found(store.search("KESTRELS nest")) != []
    assert {c for _, c in found(store.search("kestrels nest"))} == {
        "Kestrels nest on ledges.",
        "Where do kestrels nest?",
    }
    assert found(store.search("kestrel")) == [("bob-1", "A kestrel recipe?")]
    # Owner and entity scoping.
    assert {h.session_id for h in store.search("kestrels", user_id="bob")} == {"bob-1"}
    assert {h.user_id for h in store.search("kestrels", user_id="alice")} == {"alice"}
    assert store.search("kestrels", user_id="carol") == []
    assert {h.entity_id for h in store.search("kestrels", entity_id="cook")} == {"cook"}
    assert store.search("owls", user_id="bob") == []
    assert found(store.search("owls", user_id="alice")) == [("alice-1", "And owls?")]
    # Unicode, and query syntax that is only ever text.
    assert found(store.search("käsespätzle")) == [("bob-1", "No: kestrels are protected. Try Käsespätzle 🧀.")]
    for query in ['"kestrels', "kestrels*", "NEAR(kestrels", "kestrels AND", "^kestrels:", "'; DROP TABLE x; --"]:
        assert {h.session_id for h in store.search(query)} <= {"alice-1", "bob-1"}
    # An emoji newer than FTS5's Unicode 6.1 tables is a word, to the index and the scan alike.
    assert found(store.search("🧀")) == [("bob-1", "No: kestrels are protected. Try Käsespätzle 🧀.")]
    assert store.search("   ") == [] and store.search("\"'()*:^") == []
    assert len(store.search("kestrels", limit=1)) == 1
    with pytest.raises(InvalidInputError):
        store.search("kestrels", limit=0)
    with pytest.raises(InvalidInputError):
        store.search(b"kestrels")


@pytest.mark.parametrize("indexed", [False, True], ids=["scan", "index"])
def test_a_session_only_agent_runs_holds_is_each_runs_own_users(
    tmp_path: Path, indexed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Go Agents of two users ran under one session id and no session row: each finds only their own runs, as
    history() gives them, and an unscoped search names each message's own user; usage() scopes the same way."""
    store = SqliteStorage("agent_sessions", db_file=tmp_path / "s.db")
    store.create()
    store.append_run("go-shared", "Kestrels at dawn?", "Alice: at dawn.", user_id="alice")
    store.append_run("go-shared", "Kestrels and my secret plan", "Bob: noted.", user_id="bob")
    if indexed:
        store.enable_search()
        index_only(monkeypatch)
    assert found(store.search("secret", user_id="alice")) == []
    assert found(store.search("kestrels", user_id="alice")) == [("go-shared", "Kestrels at dawn?")]
    assert found(store.search("kestrels", user_id="bob")) == [("go-shared", "Kestrels and my secret plan")]
    assert [m.content for m in store.history("go-shared", user_id="bob")] == [
        "Kestrels and my secret plan",
        "Bob: noted.",
    ]
    assert sorted((h.user_id, h.message.content) for h in store.search("kestrels")) == [
        ("alice", "Kestrels at dawn?"),
        ("bob", "Kestrels and my secret plan"),
    ]
    assert [(u.user_id, u.runs) for u in store.usage(user_id="alice")] == [("alice", 1)]
    assert sorted((u.user_id, u.runs) for u in store.usage()) == [("alice", 1), ("bob", 1)]
    store.close()


@pytest.mark.parametrize("indexed", [False, True], ids=["scan", "index"])
def test_another_users_runs_under_a_session_row_are_that_users_not_the_owners(
    tmp_path: Path, indexed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bob's Go Agent wrote runs under the id of alice's session: alice's history, search and usage never
    show them (nor let bob put words in her history); they are bob's, with no entity, in his history, search
    and usage alike; a run with no user continues her conversation."""
    store = SqliteStorage("agent_sessions", db_file=tmp_path / "s.db")
    store.upsert(
        AgentSession(
            session_id="shared", user_id="alice", agent_id="a1", memory=agno_memory(("Kestrels, alice here", "Hi."))
        )
    )
    store.append_run(
        "shared", "Kestrels and bob's payroll", "Bob: noted.", user_id="bob", metrics={"input_tokens": 1234}
    )
    store.append_run("shared", "Kestrels from a Go service", "Go: ok.", user_id="")
    if indexed:
        store.enable_search()
        index_only(monkeypatch)
    history = [m.content for m in store.history("shared")]
    assert "Kestrels and bob's payroll" not in history and "Bob: noted." not in history
    assert history[-2:] == ["Kestrels from a Go service", "Go: ok."]
    assert [m.content for m in store.history("shared", user_id="alice")] == history
    # To bob, alice's row is an id the table does not have: his history there is his own runs, nothing of hers.
    assert [m.content for m in store.history("shared", user_id="bob")] == ["Kestrels and bob's payroll", "Bob: noted."]
    assert sorted((h.user_id, h.entity_id, h.message.content) for h in store.search("kestrels")) == [
        ("alice", "a1", "Kestrels from a Go service"),
        ("alice", "a1", "Kestrels, alice here"),
        ("bob", None, "Kestrels and bob's payroll"),
    ]
    assert found(store.search("payroll", user_id="alice")) == []
    assert found(store.search("payroll", user_id="bob")) == [("shared", "Kestrels and bob's payroll")]
    assert found(store.search("payroll", user_id="bob", entity_id="")) == [("shared", "Kestrels and bob's payroll")]
    assert found(store.search("payroll", entity_id="a1")) == []
    assert all(u.input_tokens is None for u in store.usage(user_id="alice"))
    assert sum(u.runs for u in store.usage(user_id="alice")) == 2  # her row's run and the user-less Go run
    assert [(u.entity_id, u.user_id, u.runs, u.input_tokens) for u in store.usage(user_id="bob")] == [
        (None, "bob", 1, 1234)
    ]
    assert [(u.user_id, u.input_tokens) for u in store.usage() if u.input_tokens is not None] == [("bob", 1234)]
    assert store.usage(entity_id="a1") == store.usage(user_id="alice")
    # "No entity" takes bob's runs only, never alice's own or her user-less ones (her session has an entity).
    assert [(u.entity_id, u.user_id, u.runs) for u in store.usage(entity_id="")] == [(None, "bob", 1)]
    # A run bob adds later (to the index: logged by its trigger, taken in on the next search) is his as well.
    store.append_run("shared", "And bob's budget", "Bob: filed.", user_id="bob")
    assert found(store.search("budget", user_id="bob")) == [("shared", "And bob's budget")]
    assert found(store.search("budget", user_id="alice")) == []
    # A third user's runs under the same id are neither alice's nor bob's.
    store.append_run("shared", "And carol's diary", "Carol: kept.", user_id="carol")
    assert found(store.search("diary", user_id="bob")) == []
    assert found(store.search("diary", user_id="alice")) == []
    assert found(store.search("diary", user_id="carol")) == [("shared", "And carol's diary")]
    assert [(u.user_id, u.runs) for u in store.usage(user_id="bob")] == [("bob", 2)]
    # A session with no owner takes every run under its id: nobody's session is shown to another.
    store.upsert(AgentSession(session_id="open", memory=agno_memory(("Kestrels, anyone", "Hi."))))
    store.append_run("open", "Kestrels from u1", "Go: ok.", user_id="u1")
    assert [m.content for m in store.history("open")][-2:] == ["Kestrels from u1", "Go: ok."]
    assert ("open", "Kestrels from u1") in found(store.search("kestrels"))
    # ... and none of them is its user's alone: history, search and usage of u1 agree.
    assert found(store.search("kestrels", user_id="u1")) == []
    assert store.history("open", user_id="u1") == [] and store.usage(user_id="u1") == []
    # bob's history under alice's id never decodes her row: a corrupt one does not fail it.
    conn = sqlite3.connect(tmp_path / "s.db")
    conn.execute("UPDATE agent_sessions SET memory = '{\"runs\": 3' WHERE session_id = 'shared'")
    conn.commit()
    conn.close()
    assert [m.content for m in store.history("shared", user_id="bob")][:2] == [
        "Kestrels and bob's payroll",
        "Bob: noted.",
    ]
    store.close()


@pytest.mark.parametrize("indexed", [False, True], ids=["scan", "index"])
def test_no_user_and_no_entity_mean_the_same_runs_to_the_scan_and_the_index(
    tmp_path: Path, indexed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``user_id=''`` is "no user": runs whose user_id is NULL or '' (one group, as history() reads them), never
    another user's; ``entity_id=''`` takes sessions only ``agent_runs`` holds (they have no entity). The scan and
    the index answer alike, and history() and usage() scope the same way."""
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.create()
    store.upsert(AgentSession(session_id="row-anon", memory=agno_memory(("Kestrels without an agent", "Yes."))))
    store.append_run("go-anon", "Kestrels from nobody", "First.", user_id="")
    store.append_run("go-anon", "Kestrels from a NULL user", "Second.", user_id="null-me")
    store.append_run("go-anon", "Kestrels from bob", "Third.", user_id="bob")
    conn = sqlite3.connect(db)
    conn.execute("UPDATE agent_runs SET user_id = NULL WHERE user_id = 'null-me'")
    conn.commit()
    conn.close()
    if indexed:
        store.enable_search()
        index_only(monkeypatch)
    anonymous = [
        ("go-anon", "Kestrels from a NULL user"),
        ("go-anon", "Kestrels from nobody"),
        ("row-anon", "Kestrels without an agent"),
    ]
    assert sorted(found(store.search("kestrels", user_id=""))) == anonymous
    assert sorted(found(store.search("kestrels", user_id="", entity_id=""))) == anonymous
    assert sorted(found(store.search("kestrels", entity_id=""))) == sorted(
        [*anonymous, ("go-anon", "Kestrels from bob")]
    )
    assert found(store.search("kestrels", user_id="bob", entity_id="")) == [("go-anon", "Kestrels from bob")]
    assert [m.content for m in store.history("go-anon", user_id="")] == [
        "Kestrels from nobody",
        "First.",
        "Kestrels from a NULL user",
        "Second.",
    ]
    # The row's one run (no time, no day) and the two runs of nobody; bob's third is not there.
    assert sorted((u.user_id, u.day is None, u.runs) for u in store.usage(user_id="")) == [
        (None, False, 2),
        (None, True, 1),
    ]
    store.close()


def behind(store: Any, statement: str) -> None:
    """Run ``statement`` (``{table}``: the store's table) as another program would (the store is not told)."""
    if isinstance(store, SqliteStorage):
        conn = sqlite3.connect(str(store.db_path))
        conn.execute(statement.format(table=f'"{store.table_name}"'))
        conn.commit()
        conn.close()
    else:
        with store.transaction() as conn:
            conn.execute(statement.format(table=store.qualified_table))


def update_behind(store: Any, clauses: str) -> None:
    """UPDATE the store's table with ``clauses`` as another program would."""
    behind(store, "UPDATE {table} " + clauses.replace("{", "{{").replace("}", "}}"))


def drop_behind(store: Any) -> None:
    """DROP TABLE the store's table as another program would."""
    behind(store, "DROP TABLE {table}")


@pytest.mark.parametrize("indexed", [False, True], ids=["scan", "index"])
def test_marks_locate_the_matched_words_apart_from_brackets_the_text_holds(make_store: Any, indexed: bool) -> None:
    """Chat text is full of ``[`` ``]`` (Markdown links, lists in code): the snippet's brackets alone cannot
    say which words matched; ``marks`` can."""
    store = make_store("agent")
    text = "see [not a match] and [zebras](https://example.org/zebras) about zebras [x]"
    store.upsert(AgentSession(session_id="s1", user_id="u", memory=agno_memory((text, "noted"))))
    if indexed:
        store.enable_search()
    (hit,) = store.search("zebras")
    assert hit.marks and all(hit.snippet[a:b].lower() == "zebras" for a, b in hit.marks)
    assert all(hit.snippet[a - 1] == "[" and hit.snippet[b] == "]" for a, b in hit.marks)
    # Without the marks' brackets the snippet is the message's own text (or a stretch of it).
    plain, at = [], 0
    for a, b in hit.marks:
        plain += [hit.snippet[at : a - 1], hit.snippet[a:b]]
        at = b + 1
    plain.append(hit.snippet[at:])
    assert "".join(plain).strip("…") in text
    # Brackets of the text stay in it, unmarked ("[x]" ends the text; PostgreSQL may start the snippet later).
    assert hit.snippet.rstrip("…").endswith("[x]") and not any(hit.snippet[a:b] == "x" for a, b in hit.marks)


def test_a_table_dropped_behind_the_index_is_scanned_then_indexed_anew(make_store: Any) -> None:
    """Another program drops the table (its triggers go with it) and makes it again: the index never answers
    for a table that is gone, and once the table is back it is indexed anew and watched again."""
    store = make_store("agent")
    store.upsert(AgentSession(session_id="a", user_id="alice", agent_id="x", memory=agno_memory(("kestrel one", "ok"))))
    store.enable_search()
    assert found(store.search("kestrel")) == [("a", "kestrel one")]
    drop_behind(store)
    assert store.search("kestrel") == []  # scanned: nothing is there
    store.upsert(AgentSession(session_id="b", user_id="bob", agent_id="x", memory=agno_memory(("kestrel two", "ok"))))
    assert found(store.search("kestrel")) == [("b", "kestrel two")]
    index = search_index.index_for(store)
    assert index.enabled() and index.catch_up() == 0  # watched again: nothing more to do
    store.upsert(AgentSession(session_id="c", user_id="bob", agent_id="x", memory=agno_memory(("kestrel three", "ok"))))
    assert index.catch_up() == 1  # the write was logged by the triggers made again
    assert sorted(found(store.search("kestrel"))) == [("b", "kestrel two"), ("c", "kestrel three")]


def test_a_table_dropped_while_a_search_catches_up_is_scanned(make_store: Any) -> None:
    """Another program drops the table after the search found the index stale and before its catch-up read the
    rows: the search answers as the scan does now (nothing is there), not with TableNotFoundError."""
    store = make_store("agent")
    other = make_store("agent", table_name=store.table_name)
    store.upsert(AgentSession(session_id="a", user_id="alice", agent_id="x", memory=agno_memory(("kestrel one", "ok"))))
    store.enable_search()
    other.upsert(AgentSession(session_id="b", user_id="bob", agent_id="x", memory=agno_memory(("kestrel two", "ok"))))
    # The moment: SQLite looks at the log before its write transaction, PostgreSQL reads the rows inside its own.
    moment = '_search_queue" LIMIT 1' if isinstance(store, SqliteStorage) else 'WHERE "session_id" = ANY(%s)'
    dropped: list[str] = []

    def drop_then(statement: str, params: Any) -> None:
        if not dropped and moment in statement:
            dropped.append(statement)
            if isinstance(store, SqliteStorage):
                drop_behind(store)
            else:
                with other.transaction() as conn:
                    conn.execute(f"DROP TABLE {other.qualified_table}")

    store.tracer = drop_then
    assert store.search("kestrel") == []
    assert dropped
    store.tracer = None
    store.upsert(AgentSession(session_id="c", user_id="carol", agent_id="x", memory=agno_memory(("kestrel new", "ok"))))
    assert found(store.search("kestrel")) == [("c", "kestrel new")]


def test_agent_runs_made_again_by_go_is_indexed_anew(tmp_path: Path) -> None:
    """A Go program drops agent_runs and makes it again (upstream DDL): the runs that went with the old table
    leave the index, the new table's are indexed and watched."""
    from agno_storage import agent_runs

    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.create()
    store.append_run("go-1", "kestrel alpha", "ok", user_id="dave")
    store.enable_search()
    assert found(store.search("kestrel")) == [("go-1", "kestrel alpha")]
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DROP TABLE agent_runs")
    for statement in agent_runs.create_statements("agent_sessions"):
        conn.execute(statement)
    conn.close()
    store.append_run("go-2", "kestrel beta", "ok", user_id="dave")
    assert found(store.search("kestrel")) == [("go-2", "kestrel beta")]
    store.append_run("go-2", "kestrel gamma", "ok", user_id="dave")
    assert sorted(found(store.search("kestrel"))) == [("go-2", "kestrel beta"), ("go-2", "kestrel gamma")]
    store.close()


@pytest.mark.parametrize("made_by", ["this build", "an earlier build"])
def test_agent_runs_another_program_drops_leaves_the_index_with_its_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, made_by: str
) -> None:
    """agent_runs dropped and not made again: its runs leave the index at the next search, as they leave the
    scan at once: those of a session with a row (its memory stays) and those of sessions only agent_runs held.
    A read-only store scans meanwhile; then the search that can write takes them out. An index an earlier
    build made (which kept no note that it watched agent_runs) notes it at its first catch-up."""
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.upsert(AgentSession(session_id="a", user_id="alice", agent_id="x", memory=agno_memory(("kestrel row", "ok"))))
    store.append_run("a", "kestrel under a row", "ok", user_id="alice")
    store.append_run("go-1", "kestrel alone", "ok", user_id="dave")
    store.enable_search()
    conn = sqlite3.connect(db, isolation_level=None)
    if made_by == "an earlier build":
        conn.execute("DELETE FROM agent_sessions_search_config WHERE k = 'agno_storage_runs_watched'")
        store.append_run("go-2", "owl", "ok", user_id="dave")
    assert sorted(found(store.search("kestrel"))) == [
        ("a", "kestrel row"),
        ("a", "kestrel under a row"),
        ("go-1", "kestrel alone"),
    ]
    conn.execute("DROP TABLE agent_runs")
    conn.close()
    reader = SqliteStorage("agent_sessions", db_file=db, read_only=True)
    assert found(reader.search("kestrel")) == [("a", "kestrel row")]
    assert found(store.search("kestrel")) == [("a", "kestrel row")]
    index_only(monkeypatch)
    assert found(store.search("kestrel")) == [("a", "kestrel row")]
    assert found(reader.search("kestrel")) == [("a", "kestrel row")]
    assert store.search("kestrel", user_id="dave") == []
    reader.close()
    store.close()


def test_drop_takes_the_search_index_and_the_change_feed_with_the_table(make_store: Any) -> None:
    store = make_store("agent")
    store.upsert(AgentSession(session_id="a", agent_id="x", memory=agno_memory(("kestrel one", "ok"))))
    store.enable_search()
    store.enable_changes()
    store.drop()
    assert not search_index.index_for(store).enabled()
    with pytest.raises(StorageError, match="not enabled"):
        store.changes()
    store.upsert(AgentSession(session_id="b", agent_id="x", memory=agno_memory(("kestrel two", "ok"))))
    assert found(store.search("kestrel")) == [("b", "kestrel two")]


def test_index_sees_every_write_and_goes_away(make_store: Any) -> None:
    """Writes after enable_search, by this store or anyone, are searchable; disable_search leaves the table alone."""
    store = make_store("team")
    store.upsert(TeamSession(session_id="t1", team_id="pair", memory=agno_memory(("alpha question", "alpha answer"))))
    store.enable_search()
    assert found(store.search("alpha question")) == [("t1", "alpha question")]
    store.upsert(TeamSession(session_id="t1", team_id="pair", memory=agno_memory(("beta question", "beta answer"))))
    store.upsert(
        TeamSession(session_id="t2", team_id="pair", team_data={"messages": [{"role": "user", "content": "gamma"}]})
    )
    assert store.search("alpha") == []
    assert found(store.search("beta answer")) == [("t1", "beta answer")]
    assert found(store.search("gamma")) == [("t2", "gamma")]
    # Another program gives a session a new id and owner: it is found under those only.
    update_behind(store, "SET session_id = 't3', user_id = 'zoe' WHERE session_id = 't2'")
    assert found(store.search("gamma")) == [("t3", "gamma")]
    assert found(store.search("gamma", user_id="zoe")) == [("t3", "gamma")]
    store.delete("t3")
    assert store.search("gamma") == []
    store.enable_search()  # idempotent
    assert len(store.search("beta")) == 2
    store.disable_search()
    store.disable_search()
    assert found(store.search("beta answer")) == [("t1", "beta answer")]  # scanning again
    assert store.read("t1") is not None


def test_sqlite_other_writers_and_their_replace(tmp_path: Path) -> None:
    """Another process's INSERT OR REPLACE, UPDATE and DELETE reach the index; the triggers only touch a plain log."""
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    seed(store)
    before = sqlite3.connect(db).execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall()
    store.enable_search()
    conn = sqlite3.connect(db)
    for (sql,) in conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger'"):
        assert "_search_queue" in sql and '_search"' not in sql and "_search_map" not in sql
    row = conn.execute("SELECT * FROM agent_sessions WHERE session_id = 'bob-1'").fetchone()
    memory = '{"runs": [{"run_id": "x", "messages": [{"role": "user", "content": "replaced by go"}]}]}'
    # The Go port's upsert: INSERT OR REPLACE of the whole row (a new rowid).
    conn.execute(
        "INSERT OR REPLACE INTO agent_sessions (session_id, user_id, memory, agent_id) VALUES (?, ?, ?, ?)",
        (row[0], row[1], memory, "cook"),
    )
    conn.execute("UPDATE agent_sessions SET session_id = 'alice-2' WHERE session_id = 'alice-1'")
    conn.commit()
    assert store.search("kestrel") == []
    assert found(store.search("replaced go")) == [("bob-1", "replaced by go")]
    assert {h.session_id for h in store.search("owls")} == {"alice-2"}
    # Another writer hands a session to another user: the unchanged messages follow the new owner.
    conn.execute("UPDATE agent_sessions SET user_id = 'carol' WHERE session_id = 'alice-2'")
    conn.commit()
    assert store.search("owls", user_id="alice") == []
    assert {(h.session_id, h.user_id) for h in store.search("owls", user_id="carol")} == {("alice-2", "carol")}
    conn.execute("DELETE FROM agent_sessions WHERE session_id = 'alice-2'")
    conn.commit()
    assert store.search("owls") == []
    store.disable_search()
    assert conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall() == before
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'").fetchone() == (0,)
    conn.close()
    store.close()


def test_every_writer_is_found(go_cmds: Path, tmp_path: Path) -> None:  # noqa: F811
    """A word said in each conversation, by agno's Agent, Team and v2 Workflow and by Go's Agent and Team, is found.

    The index is enabled before the Go Agent made agent_runs: the next search watches it.
    """
    db = tmp_path / "all.db"
    words = {"agent": "aardvark", "team": "bandicoot", "workflow_v2": "capybara"}
    for kind, word in words.items():
        run_turn(kind, "ours", str(db), f"py-{kind}", USER, f"tell me about the {word}")
    close_storages()
    stores = {kind: SqliteStorage(TABLES[kind], db_file=db, mode=kind) for kind in ("agent", "team", "workflow_v2")}
    for st in stores.values():
        st.enable_search()
    go_agent(go_cmds, db, "go-agent", ["what of the dugong?"], tmp_path / "a.json")
    go_team(go_cmds, db, "go-team", ["what of the echidna?"], tmp_path / "t.json")
    for kind, word in words.items():
        hits = stores[kind].search(word)
        assert f"py-{kind}" in {h.session_id for h in hits}
        assert stores[kind].search(word, user_id="someone-else") == []
    agent_hits = stores["agent"].search("dugong")
    assert {(h.session_id, h.message.role, h.user_id, h.entity_id) for h in agent_hits} == {
        ("go-agent", "user", USER, None),
        ("go-agent", "assistant", USER, None),
    }
    assert {h.message.source for h in agent_hits} == {"go-agent"}
    assert {h.session_id for h in stores["team"].search("echidna")} == {"go-team"}
    # The same answers without the index.
    for st in stores.values():
        st.disable_search()
    assert {h.session_id for h in stores["agent"].search("dugong")} == {"go-agent"}
    assert {h.session_id for h in stores["team"].search("echidna")} == {"go-team"}
    for st in stores.values():
        st.close()


def test_a_read_only_store_finds_what_a_stale_index_has_not_seen_yet(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    writer = SqliteStorage("agent_sessions", db_file=path)
    seed(writer)
    writer.enable_search()
    # Another writer adds a session: the index learns of it only at the next catch-up, a write.
    writer.upsert(
        AgentSession(
            session_id="carol-1",
            user_id="carol",
            agent_id="birder",
            memory=agno_memory(("Do kestrels hover?", "Yes, kestrels hover.")),
        )
    )
    writer.close()
    reader = SqliteStorage("agent_sessions", db_file=path, read_only=True)
    before = path.read_bytes()
    assert ("carol-1", "Do kestrels hover?") in found(reader.search("kestrels hover"))
    assert path.read_bytes() == before, "a read-only search writes nothing"
    reader.close()


def indexed_messages(db: Path, table: str = "agent_sessions") -> list[tuple[Any, ...]]:
    """What the index holds, as (session, owner, entity, message JSON), whatever rowids it was given.

    Checks first that the FTS5 index is exactly the index of the map's texts (FTS5's own integrity check).
    """
    conn = sqlite3.connect(db)
    try:
        conn.execute(f'INSERT INTO "{table}_search" ("{table}_search", rank) VALUES (\'integrity-check\', 1)')
        return sorted(
            conn.execute(f'SELECT session_id, user_id, entity_id, message FROM "{table}_search_text"').fetchall()
        )
    finally:
        conn.close()


def test_catching_up_gives_what_a_fresh_index_holds(tmp_path: Path) -> None:
    """Whatever other writers did (same bytes again, new owner, new words, new runs, deletes), the caught-up
    index holds exactly the messages an index built now would; rewrites that change no conversation are free."""
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    seed(store)
    store.append_run("alice-1", "Do kestrels migrate?", "Some kestrels migrate.", user_id="alice")
    store.append_run("go-only", "Any kestrels here?", "Two kestrels.", user_id="dave")
    store.enable_search()
    conn = sqlite3.connect(db, isolation_level=None)

    def same_as_fresh() -> None:
        store.search("kestrels")  # catches up
        caught_up = indexed_messages(db)
        fresh = tmp_path / "fresh.db"
        fresh.unlink(missing_ok=True)
        conn.execute("VACUUM INTO ?", (str(fresh),))
        other = SqliteStorage("agent_sessions", db_file=fresh)
        other.disable_search()
        other.enable_search()
        other.close()
        assert caught_up == indexed_messages(fresh)

    # Go's INSERT OR REPLACE of the same conversation, with new timestamps and state: nothing to reindex.
    conn.execute(
        "INSERT OR REPLACE INTO agent_sessions (session_id, user_id, memory, agent_id, session_data, updated_at) "
        "SELECT session_id, user_id, memory, agent_id, '{\"state\": 1}', 5 FROM agent_sessions"
    )
    same_as_fresh()
    # A new owner, then new words, then a Go run appended, then the row deleted (its runs stay).
    conn.execute("UPDATE agent_sessions SET user_id = 'carol' WHERE session_id = 'alice-1'")
    same_as_fresh()
    assert {h.user_id for h in store.search("owls")} == {"carol"}
    conn.execute("UPDATE agent_sessions SET memory = replace(memory, 'hollows', 'kestrel boxes')")
    same_as_fresh()
    assert found(store.search("kestrel boxes")) == [("alice-1", "In kestrel boxes.")]
    store.append_run("go-only", "And falcons?", "No falcons.", user_id="dave")
    same_as_fresh()
    assert found(store.search("falcons")) == [("go-only", "And falcons?"), ("go-only", "No falcons.")]
    conn.execute("DELETE FROM agent_sessions WHERE session_id = 'alice-1'")
    same_as_fresh()
    assert {h.session_id for h in store.search("migrate")} == {"alice-1"}
    conn.execute("DELETE FROM agent_runs")
    same_as_fresh()
    assert store.search("kestrels migrate") == [] and store.search("falcons") == []
    # A conversation changes and changes back; the change was indexed by a program that keeps no session
    # fingerprints (it deletes them as messages no longer there): the next catch-up reads the session again.
    before = indexed_messages(db)
    conn.execute("UPDATE agent_sessions SET memory = replace(memory, 'recipe', 'stew') WHERE session_id = 'bob-1'")
    same_as_fresh()
    assert indexed_messages(db) != before
    conn.execute("DELETE FROM agent_sessions_search_marks")
    conn.execute("UPDATE agent_sessions SET memory = replace(memory, 'stew', 'recipe') WHERE session_id = 'bob-1'")
    same_as_fresh()
    assert indexed_messages(db) == before
    conn.close()
    store.close()


def _with_a_worker(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Builds from here on start their worker (two cores, any table size); returns the pids of those started."""
    from agno_storage import workers

    monkeypatch.setattr(search_sqlite, "WORKERS_FROM", 1)
    monkeypatch.setattr(workers.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(workers.os, "cpu_count", lambda: 2)
    started: list[int] = []
    real = workers.Pool.__init__

    def record(self: Any, *args: Any) -> None:
        real(self, *args)
        started.extend(self.pids)

    monkeypatch.setattr(workers.Pool, "__init__", record)
    return started


def test_a_build_in_memory_is_made_here_without_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """A build's worker reads the rows from the file itself: a database in memory has none to read, so the
    build is done in this process, and indexes every session."""
    started = _with_a_worker(monkeypatch)
    store = SqliteStorage("agent_sessions")
    for i in range(7):
        store.upsert(AgentSession(session_id=f"s{i}", user_id="u", memory=agno_memory((f"kestrel {i}", "ok"))))
    store.enable_search()
    assert started == []
    assert {h.session_id for h in store.search("kestrel", limit=100)} == {f"s{i}" for i in range(7)}
    store.close()


def test_a_build_worker_refuses_a_file_that_is_not_the_builders(tmp_path: Path) -> None:
    """The worker opens the store's file by its path: if the path names another file by then (replaced), it
    refuses to start (the build is then done in the building process, on the file it has open)."""
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    seed(store)
    opened = store._thread_handle().file_id
    assert opened is not None
    index = search_sqlite.SqliteIndex(store)
    args = ("agent", "agent_sessions", index._marked, str(db))
    task = search_sqlite_worker.ReadTask(*args, opened)
    assert {doc[0] for doc in task(["alice-1"])[0]} == {"alice-1"}
    task.close()
    other = tmp_path / "other.db"
    made = SqliteStorage("agent_sessions", db_file=other)
    made.create()
    made.close()
    other.replace(db)
    with pytest.raises(StorageError, match="replaced"):
        search_sqlite_worker.ReadTask(*args, opened)
    store.close()


def _scanned(store: SqliteStorage, query: str) -> set[str]:
    from agno_storage import search

    return {h.session_id for h in search.scan(store, search.terms(query), None, None, 100)}


@pytest.mark.parametrize("worker", [False, True], ids=["here", "worker"])
def test_an_index_built_inside_a_transaction_holds_what_the_transaction_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, worker: bool
) -> None:
    """enable_search() inside the caller's transaction (an import, say): a worker would read the file as last
    committed, without what the transaction wrote, and no other connection's commit would show it; so the
    build reads here, and the index holds what the transaction wrote, as the scan does."""
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.upsert(AgentSession(session_id="old", user_id="u", memory=agno_memory(("kestrel before", "ok"))))
    store.upsert(AgentSession(session_id="changed", user_id="u", memory=agno_memory(("osprey before", "ok"))))
    started = _with_a_worker(monkeypatch) if worker else []
    with store.transaction():
        store.upsert(AgentSession(session_id="new", user_id="u", memory=agno_memory(("kestrel inside", "ok"))))
        store.upsert(AgentSession(session_id="changed", user_id="u", memory=agno_memory(("kestrel again", "ok"))))
        store.enable_search()
    assert started == []
    assert {h.session_id for h in store.search("kestrel", limit=100)} == _scanned(store, "kestrel")
    assert _scanned(store, "kestrel") == {"old", "new", "changed"}
    store.close()
    fresh = SqliteStorage("agent_sessions", db_file=tmp_path / "fresh.db")
    with fresh.transaction():  # a table made, filled and indexed in one transaction
        fresh.upsert_many(
            AgentSession(session_id=f"s{i}", user_id="u", memory=agno_memory((f"kestrel {i}", "ok"))) for i in range(3)
        )
        fresh.enable_search()
    assert {h.session_id for h in fresh.search("kestrel", limit=100)} == {"s0", "s1", "s2"}
    fresh.close()


def test_a_file_whose_name_is_not_utf8_is_read_only_and_indexed_with_a_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file name of bytes that are not UTF-8 (os.fsdecode gives it surrogate escapes): a read-only store opens
    it, and an index build's worker (which opens it read-only) reads it."""
    import os

    db = Path(os.fsdecode(bytes(tmp_path) + b"/s\xff.db"))
    store = SqliteStorage("agent_sessions", db_file=db)
    seed(store)
    reader = SqliteStorage("agent_sessions", db_file=db, read_only=True)
    assert reader.read("alice-1", user_id="alice") is not None
    reader.close()
    started = _with_a_worker(monkeypatch)
    store.enable_search()
    assert len(started) == 1
    assert {h.session_id for h in store.search("kestrels")} == {"alice-1", "bob-1"}
    store.close()


def test_a_table_renamed_before_a_build_reads_its_log_is_a_typed_error_and_scanned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another program renames the sessions table between enable_search()'s first transaction and the build's
    first read of the log: enable_search() raises a StorageError (nothing of the index is left), and search()
    scans; no raw sqlite3 error."""
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    seed(store)
    _with_a_worker(monkeypatch)
    real = search_sqlite.SqliteIndex._entries

    def renamed_first(self: Any, *args: Any, **kwargs: Any) -> Any:
        other = sqlite3.connect(db, timeout=10)
        other.execute("ALTER TABLE agent_sessions RENAME TO agent_sessions_archive")
        other.commit()
        other.close()
        monkeypatch.setattr(search_sqlite.SqliteIndex, "_entries", real)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(search_sqlite.SqliteIndex, "_entries", renamed_first)
    with pytest.raises(StorageError):
        store.enable_search()
    assert not {n for n in _table_names(db) if n.startswith("agent_sessions_search")}
    assert store.search("kestrels") == []  # the table is gone: nothing to find, and no error
    store.close()


def test_an_earlier_layouts_index_that_enable_search_cannot_remake_is_taken_back(tmp_path: Path) -> None:
    """enable_search() on an index an earlier build made, with a corrupt row: CorruptRowError, and no index is
    left (as for a new one), so search() scans instead of answering from a part-filled index."""
    db = _earlier_index_then(
        tmp_path, "UPDATE agent_sessions SET memory = '{not json' WHERE rowid = (SELECT MAX(rowid) FROM agent_sessions)"
    )
    store = SqliteStorage("agent_sessions", db_file=db)
    with pytest.raises(CorruptRowError):
        store.enable_search()
    assert not {n for n in _table_names(db) if n.startswith("agent_sessions_search")}
    assert store.search("squared", user_id="nobody") == []
    store.close()


def _indexed_copy(db: Path, copy: Path) -> Path:
    """A copy of ``db`` whose index this process built anew (any index it had is dropped first), with no worker:
    what a build with one, or a catch-up, must equal."""
    copy.write_bytes(db.read_bytes())
    store = SqliteStorage("agent_sessions", db_file=copy)
    store.disable_search()
    store.enable_search()
    store.close()
    return copy


def test_a_build_in_a_worker_process_indexes_what_one_in_this_process_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same map, marks and FTS5 index (integrity-checked), for session rows and runs-only Go sessions."""
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    seed(store)
    for i in range(2 * search_index.EXTRACT_BATCH + 3):  # batches, and a last one part full
        store.upsert(
            AgentSession(session_id=f"more-{i}", user_id=f"u{i % 7}", memory=agno_memory((f"kestrel {i}", "ok")))
        )
    store.append_run("go-only", "Any kestrels here?", "Two kestrels.", user_id="dave")
    store.append_run("alice-1", "Do kestrels migrate?", "Some do.", user_id="alice")
    store.close()
    alone = _indexed_copy(db, tmp_path / "alone.db")

    started = _with_a_worker(monkeypatch)
    store = SqliteStorage("agent_sessions", db_file=db)
    store.enable_search()
    assert len(started) == 1
    assert indexed_messages(db) == indexed_messages(alone)
    marks = "SELECT session_id, digest FROM agent_sessions_search_marks ORDER BY session_id"
    assert sqlite3.connect(db).execute(marks).fetchall() == sqlite3.connect(alone).execute(marks).fetchall()
    assert found(store.search("kestrel 402")) == [("more-402", "kestrel 402")]
    assert sorted(found(store.search("kestrels", user_id="dave"))) == [
        ("go-only", "Any kestrels here?"),
        ("go-only", "Two kestrels."),
    ]
    store.close()


def test_a_build_whose_worker_fails_starts_over_in_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker's reply over a frame's limit (a batch whose messages repeat a long run id, say): the build is
    logged and goes on in this process, with nothing of the failed batch left in the index."""
    from agno_storage import workers

    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    seed(store)
    store.close()
    alone = _indexed_copy(db, tmp_path / "alone.db")
    started = _with_a_worker(monkeypatch)
    monkeypatch.setattr(workers, "MAX_FRAME", 200)  # this process refuses every reply as too large
    store = SqliteStorage("agent_sessions", db_file=db)
    with caplog.at_level("WARNING", logger="agno_storage"):
        store.enable_search()
    assert len(started) == 1
    assert "catching up in this process instead" in caplog.text
    assert indexed_messages(db) == indexed_messages(alone)
    assert {h.session_id for h in store.search("kestrels")} == {"alice-1", "bob-1"}
    store.close()


def test_a_corrupt_row_a_build_worker_reads_is_raised_by_enable_search_and_nothing_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    seed(store)
    store.close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE agent_sessions SET memory = '{\"runs\": 3' WHERE session_id = 'bob-1'")
    conn.commit()
    conn.close()
    started = _with_a_worker(monkeypatch)
    store = SqliteStorage("agent_sessions", db_file=db)
    with pytest.raises(CorruptRowError) as info:
        store.enable_search()
    assert (info.value.session_id, info.value.column) == ("bob-1", "memory")
    assert len(started) == 1
    names = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master")}
    assert not {n for n in names if "_search" in n}, "the enabling transaction rolled back"
    conn = sqlite3.connect(db)
    conn.execute("UPDATE agent_sessions SET memory = NULL WHERE session_id = 'bob-1'")
    conn.commit()
    conn.close()
    store.enable_search()  # mended: built, by a new worker
    assert len(started) == 2
    assert {h.session_id for h in store.search("kestrels")} == {"alice-1"}
    store.close()


def _record_build_writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """From here on: ("insert", the connection's PRAGMA synchronous) for each batch the index takes in, and
    ("fsync", the WAL) for each fsync of a WAL the bulk load makes, in the order they happen."""
    from agno_storage.backends import sqlite_bulk

    events: list[tuple[str, Any]] = []
    real_insert = search_sqlite.SqliteIndex._insert
    real_fsync = sqlite_bulk.fsync_wal

    def insert(self: search_sqlite.SqliteIndex, conn: sqlite3.Connection, docs: Any) -> None:
        events.append(("insert", conn.execute("PRAGMA synchronous").fetchone()[0]))
        real_insert(self, conn, docs)

    def fsync(wal: str) -> None:
        events.append(("fsync", wal))
        real_fsync(wal)

    monkeypatch.setattr(search_sqlite.SqliteIndex, "_insert", insert)
    monkeypatch.setattr(sqlite_bulk, "fsync_wal", fsync)
    return events


def _five_sessions(tmp_path: Path) -> tuple[Path, SqliteStorage]:
    """A file of five agent sessions s0..s4 (each saying ``kestrel <i>``) and its store."""
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    for i in range(5):
        store.upsert(AgentSession(session_id=f"s{i}", user_id="u", memory=agno_memory((f"kestrel {i}", "ok"))))
    return db, store


def _connection_settings(store: SqliteStorage) -> tuple[int, int]:
    conn = store._thread_handle().conn
    return conn.execute("PRAGMA synchronous").fetchone()[0], conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]


@pytest.mark.parametrize("worker", [False, True], ids=["here", "worker"])
def test_a_build_commits_as_a_bulk_load_and_is_durable_when_enable_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, worker: bool
) -> None:
    """A build's batches commit at NORMAL, and the WAL is fsynced once after the last of them (and the merge):
    when enable_search() returns the index is as durable as FULL commits make it, and the store's own writes
    (a later catch-up of one batch among them) commit at FULL again, with SQLite's own checkpoint interval."""
    from agno_storage.backends import sqlite_bulk

    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    for i in range(7):
        store.upsert(AgentSession(session_id=f"s{i}", user_id="u", memory=agno_memory((f"kestrel {i}", "ok"))))
    before = _connection_settings(store)
    assert before == (2, 1000)
    started = _with_a_worker(monkeypatch) if worker else []
    monkeypatch.setattr(search_sqlite_worker, "EXTRACT_BATCH", 3)
    events = _record_build_writes(monkeypatch)
    store.enable_search()
    assert len(started) == int(worker)
    inserts = [e for e in events if e[0] == "insert"]
    assert len(inserts) == (3 if worker else 1)
    assert events == [*inserts, ("fsync", sqlite_bulk.wal_path(db))]
    assert {synchronous for _, synchronous in inserts} == {1}
    assert _connection_settings(store) == before
    assert {h.session_id for h in store.search("kestrel", limit=100)} == {f"s{i}" for i in range(7)}
    # Another program's write, caught up by the next search: an ordinary write, at FULL, no fsync of its own.
    events.clear()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE agent_sessions SET memory = replace(memory, 'kestrel 3', 'osprey 3')")
    conn.commit()
    conn.close()
    assert [h.session_id for h in store.search("osprey")] == ["s3"]
    assert events == [("insert", 2)]
    # A backlog of more than one batch (seven sessions logged, three to a batch here) is caught up as a build
    # is: the batches after the first at NORMAL, then one fsync.
    monkeypatch.setattr(search_sqlite, "CHUNK", 3)
    events.clear()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE agent_sessions SET memory = replace(memory, 'kestrel', 'merlin')")
    conn.commit()
    conn.close()
    assert len(store.search("merlin", limit=100)) == 6
    assert events == [("insert", 2), ("insert", 1), ("insert", 1), ("fsync", sqlite_bulk.wal_path(db))]
    assert _connection_settings(store) == before
    store.close()


def test_a_build_at_normal_stays_at_normal_and_syncs_nothing(tmp_path: Path) -> None:
    """A store opened with synchronous=NORMAL asked for no fsync per commit: its build makes none either."""
    store = SqliteStorage("agent_sessions", db_file=tmp_path / "s.db", synchronous="NORMAL")
    seed(store)
    monkeypatch = pytest.MonkeyPatch()
    try:
        events = _record_build_writes(monkeypatch)
        store.enable_search()
    finally:
        monkeypatch.undo()
    assert events == [("insert", 1)]
    assert _connection_settings(store) == (1, 1000)
    store.close()


def test_a_build_that_stops_on_a_corrupt_row_leaves_its_batches_durable_and_the_store_at_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build a worker stops midway (a corrupt row): the batches committed before it are fsynced, and the
    store's connection commits at FULL again."""
    from agno_storage.backends import sqlite_bulk

    db, store = _five_sessions(tmp_path)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE agent_sessions SET memory = '{\"runs\": 3' WHERE session_id = 's3'")
    conn.commit()
    conn.close()
    started = _with_a_worker(monkeypatch)
    monkeypatch.setattr(search_sqlite_worker, "EXTRACT_BATCH", 1)
    events = _record_build_writes(monkeypatch)
    with pytest.raises(CorruptRowError) as info:
        store.enable_search()
    assert info.value.session_id == "s3"
    assert len(started) == 1
    assert events == [("insert", 1)] * 3 + [("fsync", sqlite_bulk.wal_path(db))]
    assert _connection_settings(store) == (2, 1000)
    store.close()


def test_a_build_interrupted_as_its_checkpoint_thread_stops_leaves_the_store_at_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A KeyboardInterrupt as the build's checkpoint thread is stopped (Ctrl-C during its join): it reaches the
    caller, the WAL is fsynced, and the store's connection commits at FULL with SQLite's checkpoint interval
    again (it stayed at NORMAL, with no fsync at all)."""
    from agno_storage.backends import sqlite_bulk

    db, store = _five_sessions(tmp_path)
    events = _record_build_writes(monkeypatch)
    real_stop = sqlite_bulk.Checkpointer.stop

    def stop(self: sqlite_bulk.Checkpointer) -> None:
        real_stop(self)
        raise KeyboardInterrupt  # as Ctrl-C during the join raises it, once the thread ended

    monkeypatch.setattr(sqlite_bulk.Checkpointer, "stop", stop)
    with pytest.raises(KeyboardInterrupt):
        store.enable_search()
    assert events == [("insert", 1), ("fsync", sqlite_bulk.wal_path(db))]
    assert _connection_settings(store) == (2, 1000)
    assert all(t.name != "agno-storage-checkpointer" for t in threading.enumerate())
    store.close()


def test_a_build_where_no_thread_can_start_is_made_without_its_checkpoint_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A process at its thread limit: the build goes on without the thread that checkpoints beside it (a
    warning says so), still synced once at its end, and the store's connection is back at FULL."""
    from agno_storage.backends import sqlite_bulk

    db, store = _five_sessions(tmp_path)
    events = _record_build_writes(monkeypatch)
    refuse_checkpoint_thread(monkeypatch)
    with caplog.at_level("WARNING", logger="agno_storage"):
        store.enable_search()
    assert "can't start new thread" in caplog.text
    assert events == [("insert", 1), ("fsync", sqlite_bulk.wal_path(db))]
    assert _connection_settings(store) == (2, 1000)
    assert {h.session_id for h in store.search("kestrel", limit=100)} == {f"s{i}" for i in range(5)}
    store.close()


@pytest.mark.parametrize("interrupted", [False, True], ids=["", "interrupted"])
@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_build_whose_file_goes_midway_leaves_what_the_path_names_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str, interrupted: bool
) -> None:
    """The file deleted, or replaced by another with its own search index, between two batches of a build:
    DatabaseReplacedError, and the build takes nothing back through the path (that made an empty database
    where the file was deleted, and took the other file's index and triggers away). So too where a
    KeyboardInterrupt comes as the build stops its checkpoint thread after that error."""
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    for i in range(6):
        store.upsert(AgentSession(session_id=f"s{i}", user_id="u", memory=agno_memory((f"kestrel {i}", "ok"))))
    other = SqliteStorage("agent_sessions", db_file=tmp_path / "other.db")
    other.upsert(AgentSession(session_id="x", user_id="u", memory=agno_memory(("osprey", "ok"))))
    other.enable_search()
    other.close()
    monkeypatch.setattr(search_sqlite, "CHUNK", 2)
    real_insert = search_sqlite.SqliteIndex._insert

    def insert(self: search_sqlite.SqliteIndex, conn: sqlite3.Connection, docs: Any) -> None:
        real_insert(self, conn, docs)
        if db.exists():  # after the first batch
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            if how == "replaced":  # its WAL gone too: another file's WAL would be read as the new file's
                (tmp_path / "other.db").replace(db)

    monkeypatch.setattr(search_sqlite.SqliteIndex, "_insert", insert)
    if interrupted:
        from agno_storage.backends import sqlite_bulk

        real_stop = sqlite_bulk.Checkpointer.stop

        def stop(self: sqlite_bulk.Checkpointer) -> None:
            real_stop(self)
            raise KeyboardInterrupt

        monkeypatch.setattr(sqlite_bulk.Checkpointer, "stop", stop)
    with pytest.raises(KeyboardInterrupt if interrupted else DatabaseReplacedError):
        store.enable_search()
    store.close()
    if how == "deleted":
        assert not db.exists()
    else:
        monkeypatch.undo()
        replaced = SqliteStorage("agent_sessions", db_file=db)
        assert search_sqlite.SqliteIndex(replaced).enabled()
        assert [h.session_id for h in replaced.search("osprey")] == ["x"]
        replaced.close()


def test_catching_up_reports_a_corrupt_row_though_its_conversation_is_unchanged(tmp_path: Path) -> None:
    """A session skipped because its conversation is as indexed still has its other columns checked, as read() does."""
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    seed(store)
    store.enable_search()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE agent_sessions SET session_data = '{not json' WHERE session_id = 'bob-1'")
    conn.commit()
    with pytest.raises(CorruptRowError) as info:
        store.search("kestrels")
    assert (info.value.session_id, info.value.column) == ("bob-1", "session_data")
    conn.execute("UPDATE agent_sessions SET session_data = NULL WHERE session_id = 'bob-1'")
    conn.commit()
    assert {h.session_id for h in store.search("kestrels")} == {"alice-1", "bob-1"}
    conn.close()
    store.close()


def _backlog(store: Any, n: int, word: str = "kestrel") -> None:
    for i in range(n):
        store.upsert(
            AgentSession(
                session_id=f"s{i}", user_id="u", agent_id="a", memory=agno_memory((f"{word} number {i}?", "Noted."))
            )
        )


def _a_writer_before_each_transaction(
    monkeypatch: pytest.MonkeyPatch, store: SqliteStorage, writer: SqliteStorage
) -> list[str]:
    """Before each write transaction ``store`` begins, ``writer`` (given no busy timeout: a BusyError if the lock
    is held) upserts a session of its own; the ids it wrote."""
    written: list[str] = []
    real = store.transaction

    @contextlib.contextmanager
    def after_a_writer(*args: Any, **kwargs: Any) -> Iterator[Any]:
        sid = f"between-{len(written)}"
        writer.upsert(
            AgentSession(session_id=sid, user_id="u", agent_id="a", memory=agno_memory((f"{sid} kestrel", "ok")))
        )
        written.append(sid)
        with real(*args, **kwargs) as conn:
            yield conn

    monkeypatch.setattr(store, "transaction", after_a_writer)
    return written


def test_writers_get_the_lock_between_the_batches_of_a_long_catch_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backlog is reindexed a batch (CHUNK sessions) to a write transaction: a writer that waits for no lock at
    all commits between two batches, and what it wrote is indexed by the next search. (One transaction for a
    backlog of 40,000 sessions held the lock for 10.6 s, and agno 1.8.4's upsert gave up after its 5 s.)"""
    monkeypatch.setattr(search_sqlite, "CHUNK", 3)
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.enable_search()
    _backlog(store, 10)
    impatient = SqliteStorage("agent_sessions", db_file=db, busy_timeout=0)
    written = _a_writer_before_each_transaction(monkeypatch, store, impatient)
    assert {h.session_id for h in store.search("kestrel", limit=100)} >= {f"s{i}" for i in range(10)}
    assert len(written) == 4  # before each of the four batches of 10 sessions at 3 a batch, the lock was free
    monkeypatch.undo()
    assert {h.session_id for h in store.search("kestrel", limit=100)} == {f"s{i}" for i in range(10)} | set(written)
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM agent_sessions_search_queue").fetchone() == (0,)
    impatient.close()
    store.close()


@pytest.mark.parametrize("worker", [False, True], ids=["here", "worker"])
def test_writers_get_the_lock_between_the_batches_of_an_index_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, worker: bool
) -> None:
    """enable_search() logs every session and catches up with them a batch to a write transaction (extracted in a
    worker process beside this one on a large table): a writer that waits for no lock at all commits between two
    batches, and the index then holds what a build in one go holds, plus what that writer wrote. (One
    transaction for the whole build held the lock for all of it: agno 1.8.4 loses its session after 5 s.)"""
    monkeypatch.setattr(search_sqlite, "CHUNK", 3)
    monkeypatch.setattr(search_index, "EXTRACT_BATCH", 3)
    monkeypatch.setattr(search_sqlite_worker, "EXTRACT_BATCH", 3)
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    _backlog(store, 10)
    store.close()
    alone = _indexed_copy(db, tmp_path / "alone.db")
    started = _with_a_worker(monkeypatch) if worker else []
    store = SqliteStorage("agent_sessions", db_file=db)
    impatient = SqliteStorage("agent_sessions", db_file=db, busy_timeout=0)
    written = _a_writer_before_each_transaction(monkeypatch, store, impatient)
    store.enable_search()
    assert len(started) == (1 if worker else 0)
    assert len(written) >= 5  # before making the index, and before each of its four batches of 10 sessions
    monkeypatch.undo()
    assert {h.session_id for h in store.search("kestrel", limit=100)} == {f"s{i}" for i in range(10)} | set(written)
    impatient.close()
    store.close()
    expected = _indexed_copy(db, tmp_path / "again.db")  # the file as it is now, indexed with no writer between
    assert indexed_messages(db) == indexed_messages(expected)
    assert {m[0] for m in indexed_messages(alone)} == {f"s{i}" for i in range(10)}


def test_writers_get_the_lock_between_the_batches_of_an_earlier_layouts_remake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first search on an index an earlier build made (fixtures/MANIFEST.md) remakes it in this layout as
    enable_search() makes one: every session logged, then indexed a batch to a write transaction, so a writer
    that waits for no lock at all commits between two batches; the index then holds what a fresh one does."""
    monkeypatch.setattr(search_sqlite, "CHUNK", 3)
    db = tmp_path / "s.db"
    db.write_bytes((FIXTURES / "search_index_3ccb4d3_agno_agent.db").read_bytes())
    conn = sqlite3.connect(db)
    (sessions,) = conn.execute("SELECT COUNT(*) FROM agent_sessions").fetchone()
    conn.close()
    store = SqliteStorage("agent_sessions", db_file=db)
    impatient = SqliteStorage("agent_sessions", db_file=db, busy_timeout=0)
    written = _a_writer_before_each_transaction(monkeypatch, store, impatient)
    store.search("squared")
    # Before the remake, and before each batch of 3 of the file's sessions (and of those written between).
    assert len(written) >= 1 + sessions // 3
    monkeypatch.undo()
    assert set(written) <= {h.session_id for h in store.search("kestrel", limit=100)}
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM agent_sessions_search_queue").fetchone() == (0,)
    conn.close()
    impatient.close()
    store.close()
    expected = _indexed_copy(db, tmp_path / "again.db")  # the file as it is now, indexed with no writer between
    assert indexed_messages(db) == indexed_messages(expected)


def _before_transaction(monkeypatch: pytest.MonkeyPatch, store: SqliteStorage, nth: int, act: Any) -> None:
    """Run ``act()`` before the ``nth`` write transaction ``store`` begins (1 is the first)."""
    begun = [0]
    real = store.transaction

    @contextlib.contextmanager
    def hooked(*args: Any, **kwargs: Any) -> Iterator[Any]:
        begun[0] += 1
        if begun[0] == nth:
            act()
        with real(*args, **kwargs) as conn:
            yield conn

    monkeypatch.setattr(store, "transaction", hooked)


def test_a_table_dropped_and_made_again_between_two_batches_is_searched_as_it_is_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another program drops the sessions table between two batches of a catch-up and makes it again: the
    search answers from the table as it is now (it scans), not from an index of the table that is gone."""
    monkeypatch.setattr(search_sqlite, "CHUNK", 3)
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.enable_search()
    _backlog(store, 10, word="kestrel")

    def drop_and_make_again() -> None:
        raw = sqlite3.connect(db)
        raw.execute("DROP TABLE agent_sessions")  # as agno's own drop() does: the index's triggers go with it
        raw.commit()
        raw.close()
        other = SqliteStorage("agent_sessions", db_file=db)
        other.upsert(AgentSession(session_id="new", user_id="u", agent_id="a", memory=agno_memory(("kestrel?", "ok"))))
        other.close()

    _before_transaction(monkeypatch, store, 2, drop_and_make_again)
    assert {h.session_id for h in store.search("kestrel", limit=100)} == {"new"}
    monkeypatch.undo()
    assert {h.session_id for h in store.search("kestrel", limit=100)} == {"new"}  # indexed anew meanwhile
    store.close()


@pytest.mark.parametrize("meanwhile", ["rewritten and caught up", "log emptied and written"])
def test_what_a_worker_read_before_another_store_caught_up_is_not_indexed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, meanwhile: str
) -> None:
    """A build's worker reads a batch ahead of the transaction that indexes it. Between the two, another store
    rewrote a session and caught up with it (the worker's copy is stale), or caught up with the whole log and a
    new session took an id of the batch's range (ids start over once the log empties): the batch is read again
    under the lock, so the index holds each session as it is now and no entry goes unread."""
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    _backlog(store, 12, word="kestrel")
    store.close()
    _with_a_worker(monkeypatch)
    store = SqliteStorage("agent_sessions", db_file=db)

    def another_store() -> None:
        other = SqliteStorage("agent_sessions", db_file=db)
        if meanwhile == "rewritten and caught up":
            other.upsert(
                AgentSession(session_id="s0", user_id="u", agent_id="a", memory=agno_memory(("osprey?", "ok")))
            )
            other.search("osprey")
        else:
            other.search("kestrel")
            other.upsert(AgentSession(session_id="z", user_id="u", agent_id="a", memory=agno_memory(("osprey?", "ok"))))
        other.close()

    # 1: enable_search() makes the index; 2: its catch-up sizes the log; 3: the worker's first batch.
    _before_transaction(monkeypatch, store, 3, another_store)
    store.enable_search()
    monkeypatch.undo()
    want = {"s0"} if meanwhile == "rewritten and caught up" else {"z"}
    assert {h.session_id for h in store.search("osprey", limit=100)} == want
    kestrels = {f"s{i}" for i in range(12)} - ({"s0"} if meanwhile == "rewritten and caught up" else set())
    assert {h.session_id for h in store.search("kestrel", limit=100)} == kestrels
    store.close()
    assert indexed_messages(db) == indexed_messages(_indexed_copy(db, tmp_path / "fresh.db"))


@pytest.mark.parametrize("worker", [False, True], ids=["here", "worker"])
@pytest.mark.parametrize("session_id", [None, b"\xffodd"], ids=["null", "not-utf8"])
def test_a_session_id_no_read_takes_leaves_no_index_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session_id: Any, worker: bool
) -> None:
    """A row whose session_id is NULL or bytes that are not UTF-8 (another program's): enable_search() raises
    CorruptRowError and makes nothing (the open cursor of the log kept the tables locked, so the index it could
    not take back made every later search fail); the scan still answers a search its filters keep away."""
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    seed(store)
    conn = sqlite3.connect(db)
    conn.execute(
        "INSERT INTO agent_sessions (session_id, user_id, agent_id, created_at) VALUES (CAST(? AS TEXT), 'eve', 'x', 1)",
        (session_id,),
    )
    conn.commit()
    conn.close()
    started = _with_a_worker(monkeypatch) if worker else []
    with pytest.raises(CorruptRowError):
        store.enable_search()
    assert started == []  # the log is read before a worker starts: none is left behind holding the file
    names = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master")}
    assert not {n for n in names if "_search" in n}
    assert {h.session_id for h in store.search("kestrels", user_id="alice")} == {"alice-1"}
    store.close()


def test_a_catch_up_batch_is_cut_by_the_text_it_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Long conversations make a batch of fewer sessions: 500 agno chats of 1.9 MB each held the lock 3.75 s in
    one batch. Past CATCH_UP_BYTES of text (after its first session) a batch stops, and the rest of the log,
    from the first session it did not take, goes on in the next transaction, every session indexed once."""
    monkeypatch.setattr(search_sqlite, "CATCH_UP_BYTES", 1)  # every batch: one session
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.enable_search()
    _backlog(store, 6, word="kestrel")
    store.upsert(AgentSession(session_id="s0", user_id="u", agent_id="a", memory=agno_memory(("kestrel again?", "ok"))))
    begun = [0]
    real = store.transaction

    @contextlib.contextmanager
    def counted(*args: Any, **kwargs: Any) -> Iterator[Any]:
        begun[0] += 1
        with real(*args, **kwargs) as conn:
            yield conn

    monkeypatch.setattr(store, "transaction", counted)
    assert {h.session_id for h in store.search("kestrel", limit=100)} == {f"s{i}" for i in range(6)}
    # One session a transaction: s0 to s5, then s0's second entry (written last) in a batch of its own.
    assert begun[0] == 7
    monkeypatch.undo()
    store.close()
    assert indexed_messages(db) == indexed_messages(_indexed_copy(db, tmp_path / "fresh.db"))


def test_enable_search_while_another_store_builds_the_index_meets_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second enable_search() during a build (the index is there, not yet full) finishes the build itself: it
    returns once the index holds what is logged, or raises the error the build meets (it returned at once, and
    the first build's failure then took the index away without the second caller knowing)."""
    monkeypatch.setattr(search_sqlite, "CHUNK", 3)
    db = tmp_path / "s.db"
    first = SqliteStorage("agent_sessions", db_file=db)
    _backlog(first, 9, word="kestrel")
    conn = sqlite3.connect(db)
    conn.execute("UPDATE agent_sessions SET session_data = '{not json' WHERE session_id = 's7'")
    conn.commit()
    conn.close()
    second = SqliteStorage("agent_sessions", db_file=db)
    raised: list[BaseException] = []

    def second_enables() -> None:
        try:
            second.enable_search()
        except CorruptRowError as exc:
            raised.append(exc)

    # 1: the first makes the index and logs every session; 2: its first batch. Before that, the second enables.
    _before_transaction(monkeypatch, first, 2, second_enables)
    with pytest.raises(CorruptRowError):
        first.enable_search()
    assert [exc.session_id for exc in raised] == ["s7"]
    first.close()
    second.close()


def test_a_corrupt_row_in_a_later_batch_keeps_the_batches_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch holding a corrupt row keeps nothing of it and stops the catch-up; the batches before it are
    indexed, the rest stays logged, and search() scans until the row is mended."""
    monkeypatch.setattr(search_sqlite, "CHUNK", 3)
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.enable_search()
    _backlog(store, 7)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE agent_sessions SET session_data = '{not json' WHERE session_id = 's4'")
    conn.commit()
    with pytest.raises(CorruptRowError):
        store.search("kestrel")  # the scan reaches s4 too
    assert {m[0] for m in indexed_messages(db)} == {"s0", "s1", "s2"}
    queued = {r[0] for r in conn.execute("SELECT session_id FROM agent_sessions_search_queue")}
    assert queued == {"s3", "s4", "s5", "s6"}
    assert [h.session_id for h in store.search("kestrel", user_id="nobody")] == []  # s4 out of the filter's reach
    conn.execute("UPDATE agent_sessions SET session_data = NULL WHERE session_id = 's4'")
    conn.commit()
    assert {h.session_id for h in store.search("kestrel", limit=100)} == {f"s{i}" for i in range(7)}
    assert {m[0] for m in indexed_messages(db)} == {f"s{i}" for i in range(7)}
    conn.close()
    store.close()


FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.mark.parametrize("source", ["agno_agent", "go_agent_conversation"])
def test_an_index_an_earlier_build_made_is_rebuilt_in_this_layout_on_first_use(tmp_path: Path, source: str) -> None:
    """A file indexed by build 3ccb4d3 (FTS5 holding the text; fixtures/MANIFEST.md): the first search indexes it
    anew in this layout, with what another writer did since, and finds what a fresh index finds; a read-only
    store scans it without writing; ``enable_search()`` on it upgrades it too."""
    old = tmp_path / "old.db"
    old.write_bytes((FIXTURES / f"search_index_3ccb4d3_{source}.db").read_bytes())
    conn = sqlite3.connect(old)
    # Written after the index was made, by a writer that knows nothing of it (logged by the old triggers).
    if source == "go_agent_conversation":
        conn.execute("UPDATE agent_runs SET agent_message = agent_message || ' kestrels'")
    else:
        conn.execute(
            "UPDATE agent_sessions SET memory = replace(memory, 'squared', 'kestrels') "
            "WHERE rowid = (SELECT MIN(rowid) FROM agent_sessions)"
        )
    conn.commit()
    conn.close()
    fresh = tmp_path / "fresh.db"
    fresh.write_bytes(old.read_bytes())
    other = SqliteStorage("agent_sessions", db_file=fresh)
    other.disable_search()
    other.enable_search()
    expected = found(other.search("kestrels"))
    other.close()
    assert expected, "the word written since is found"

    reader = SqliteStorage("agent_sessions", db_file=old, read_only=True)
    before = old.read_bytes()
    assert sorted(found(reader.search("kestrels"))) == sorted(expected)  # the scan ranks by its own score
    assert old.read_bytes() == before, "a read-only search scans an old index, writing nothing"
    reader.close()

    store = SqliteStorage("agent_sessions", db_file=old)
    assert found(store.search("kestrels")) == expected
    assert indexed_messages(old) == indexed_messages(fresh)
    sql = sqlite3.connect(old).execute("SELECT sql FROM sqlite_master WHERE name = 'agent_sessions_search'").fetchone()
    assert "content='agent_sessions_search_text'" in sql[0]
    store.close()

    again = tmp_path / "again.db"
    again.write_bytes((FIXTURES / f"search_index_3ccb4d3_{source}.db").read_bytes())
    store = SqliteStorage("agent_sessions", db_file=again)
    store.enable_search()
    assert indexed_messages(again) == indexed_messages(tmp_path / "again.db")  # integrity-checked, new layout
    assert (
        "content="
        in sqlite3.connect(again)
        .execute("SELECT sql FROM sqlite_master WHERE name = 'agent_sessions_search'")
        .fetchone()[0]
    )
    store.close()


def _table_names(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


@pytest.mark.parametrize("taken", ["agent_sessions_search_marks", "agent_sessions_search_text"])
def test_a_table_of_anothers_by_an_index_tables_name_is_refused_and_left_alone(tmp_path: Path, taken: str) -> None:
    """Another sessions store named like one of the index's tables: enabling (or upgrading an earlier build's
    index) raises StorageError naming it and drops nothing; disable_search() removes the index and leaves it."""
    for fresh in (True, False):
        db = tmp_path / f"{fresh}.db"
        if fresh:
            store = SqliteStorage("agent_sessions", db_file=db)
            seed(store)
        else:
            db.write_bytes((FIXTURES / "search_index_3ccb4d3_agno_agent.db").read_bytes())
            store = SqliteStorage("agent_sessions", db_file=db)
        neighbour = SqliteStorage(taken, db_file=db)
        neighbour.upsert(AgentSession(session_id="precious", memory=agno_memory(("mine", "ok"))))
        with pytest.raises(StorageError, match=taken):
            store.enable_search() if fresh else store.search("squared")
        assert neighbour.read("precious") is not None
        store.disable_search()
        assert neighbour.read("precious") is not None
        assert not {n for n in _table_names(db) if n.startswith("agent_sessions_search") and n != taken}
        store.close()
        neighbour.close()


def test_what_an_earlier_builds_disable_left_behind_is_taken_back(tmp_path: Path) -> None:
    """Build 3ccb4d3's disable_search() dropped its triggers, ``<t>_search``, ``<t>_search_map`` and the queue
    (the statements it ran, below): this layout's map and marks stay behind, and enable_search() takes them back."""
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    seed(store)
    store.enable_search()
    conn = sqlite3.connect(db)
    for op in ("ins", "upd", "del", "runs_ins", "runs_upd", "runs_del"):
        conn.execute(f'DROP TRIGGER IF EXISTS "agent_sessions_search_{op}"')
    for table in ("agent_sessions_search", "agent_sessions_search_map", "agent_sessions_search_queue"):
        conn.execute(f'DROP TABLE IF EXISTS "{table}"')
    conn.commit()
    conn.close()
    assert {"agent_sessions_search_text", "agent_sessions_search_marks"} <= _table_names(db)
    store.enable_search()
    assert {h.session_id for h in store.search("kestrels")} == {"alice-1", "bob-1"}
    assert indexed_messages(db)
    store.close()


def _earlier_index_then(tmp_path: Path, statement: str) -> Path:
    """A file indexed by build 3ccb4d3 (fixtures/MANIFEST.md), with ``statement`` run on it since by another program."""
    db = tmp_path / "s.db"
    db.write_bytes((FIXTURES / "search_index_3ccb4d3_agno_agent.db").read_bytes())
    conn = sqlite3.connect(db)
    conn.execute(statement)
    conn.commit()
    conn.close()
    return db


def test_an_earlier_builds_index_of_a_table_dropped_since_is_scanned(tmp_path: Path) -> None:
    db = _earlier_index_then(tmp_path, "DROP TABLE agent_sessions")
    store = SqliteStorage("agent_sessions", db_file=db)
    assert store.search("squared") == []
    assert "agent_sessions_search_text" not in _table_names(db)
    store.close()


def test_a_table_without_rowid_is_indexed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another program made the sessions table WITHOUT ROWID: the store reads it, and the index is built."""
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.create()
    store.close()
    conn = sqlite3.connect(db)
    (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'agent_sessions'").fetchone()
    conn.execute("DROP TABLE agent_sessions")
    conn.execute(sql + " WITHOUT ROWID")
    conn.commit()
    conn.close()
    store = SqliteStorage("agent_sessions", db_file=db)
    seed(store)
    _with_a_worker(monkeypatch)
    store.enable_search()
    assert {h.session_id for h in store.search("kestrels")} == {"alice-1", "bob-1"}
    store.close()


def test_a_backlog_a_worker_reads_is_cut_by_the_text_it_holds_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batches a worker reads of a backlog (an index being built among them) stop at EXTRACT_BYTES of
    conversation too, and each covers the log's entries of its sessions, in order, once."""
    store = SqliteStorage("agent_sessions", db_file=tmp_path / "s.db")
    big, small = agno_memory(("x" * 5000, "ok")), agno_memory(("y", "ok"))  # about 5,150 and 150 characters
    for sid, memory in (("a", big), ("b", big), ("c", big), ("d", small), ("e", big), ("f", small), ("a", small)):
        store.upsert(AgentSession(session_id=sid, user_id="u", agent_id="a", memory=memory))
    index = search_sqlite.SqliteIndex(store)
    index.enable()
    conn = sqlite3.connect(tmp_path / "s.db")
    conn.execute("UPDATE agent_sessions SET user_id = 'v'")  # every session logged again, in table order
    conn.commit()
    (top,) = conn.execute("SELECT MAX(id) FROM agent_sessions_search_queue").fetchone()
    conn.close()
    monkeypatch.setattr(search_sqlite_worker, "EXTRACT_BYTES", 6000)
    plan = search_sqlite_worker.plan(index, top)
    # a (small by now), b and c (big): over 6,000 with c, so d starts the next batch: d, e (big), f.
    assert [sessions for _, _, sessions in plan] == [["a", "b", "c"], ["d", "e", "f"]]
    assert plan[0][0] == 0 and plan[0][1] == plan[1][0] and plan[1][1] == top  # every entry, once, in order
    monkeypatch.setattr(search_sqlite_worker, "EXTRACT_BATCH", 4)
    monkeypatch.setattr(search_sqlite_worker, "EXTRACT_BYTES", 1 << 30)
    assert [len(sessions) for _, _, sessions in search_sqlite_worker.plan(index, top)] == [4, 2]
    store.close()


def test_two_processes_finding_an_earlier_builds_index_make_it_anew_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both saw the earlier layout before either took the write lock: the second finds it made and remakes nothing."""
    db = tmp_path / "s.db"
    db.write_bytes((FIXTURES / "search_index_3ccb4d3_agno_agent.db").read_bytes())
    builds: list[int] = []
    real = search_sqlite.SqliteIndex._make

    def counted(self: Any, conn: Any) -> None:
        builds.append(1)
        real(self, conn)

    monkeypatch.setattr(search_sqlite.SqliteIndex, "_make", counted)
    first, second = SqliteStorage("agent_sessions", db_file=db), SqliteStorage("agent_sessions", db_file=db)
    a, b = search_sqlite.SqliteIndex(first), search_sqlite.SqliteIndex(second)
    assert a.enabled() and b.enabled() and a.old_layout and b.old_layout
    assert a.catch_up() == -1 and b.catch_up() == 0
    assert builds == [1]
    assert indexed_messages(db)
    first.close()
    second.close()


def test_an_fts5_table_of_anothers_by_the_index_name_is_never_taken_for_the_index(tmp_path: Path) -> None:
    """A program's own FTS5 table named ``<t>_search``: search() scans, enable_search() refuses the name, and
    neither they, disable_search() nor drop() touch its rows."""
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    seed(store)
    conn = sqlite3.connect(db)
    conn.execute("CREATE VIRTUAL TABLE agent_sessions_search USING fts5(title, body)")
    conn.execute("INSERT INTO agent_sessions_search VALUES ('mine', 'kestrels of my own')")
    conn.commit()

    def theirs() -> list[tuple[str, str]]:
        return conn.execute("SELECT title, body FROM agent_sessions_search").fetchall()

    assert {h.session_id for h in store.search("kestrels")} == {"alice-1", "bob-1"}  # scanned
    with pytest.raises(StorageError, match="agent_sessions_search"):
        store.enable_search()
    store.disable_search()
    store.drop()
    assert theirs() == [("mine", "kestrels of my own")]
    conn.close()
    store.close()


def test_owners_that_spell_alike_joined_by_nul_are_told_apart(tmp_path: Path) -> None:
    """A session handed from user "a\\0b" of agent "x" to user "a" of agent "b\\0x" (ids may hold NUL): the
    index finds it under its new owner only, as the scan and history() do."""
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.upsert(
        AgentSession(session_id="S", user_id="a\x00b", agent_id="x", memory=agno_memory(("kestrel secret", "ok")))
    )
    store.enable_search()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE agent_sessions SET user_id = 'a', agent_id = 'b' || char(0) || 'x' WHERE session_id = 'S'")
    conn.commit()
    conn.close()
    assert store.search("kestrel", user_id="a\x00b") == []
    assert found(store.search("kestrel", user_id="a")) == [("S", "kestrel secret")]
    assert indexed_messages(db) == [("S", "a", "b\x00x", r) for (_, _, _, r) in indexed_messages(db)]
    store.close()


@pytest.mark.parametrize(
    "arguments",
    ['{"n": 18446744073709551616}', "[" * 300 + "]" * 300],
    ids=["an integer past 64 bits", "nested 300 levels"],
)
def test_messages_orjson_cannot_write_are_indexed_as_history_reads_them(tmp_path: Path, arguments: str) -> None:
    """Tool calls holding what orjson does not write (a wide integer sends the row to the standard library's
    decoder): the index finds each message, and its hit is the Message history() gives."""
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.upsert(AgentSession(session_id="a", user_id="alice", memory=agno_memory(("kestrels here", "yes"))))
    store.enable_search()
    conn = sqlite3.connect(db)
    memory = (
        '{"runs":[{"run_id":"r","messages":[{"role":"user","content":"kestrels here"},'
        '{"role":"assistant","content":"kestrels","tool_calls":[{"id":"x","function":{"name":"f","arguments":'
        + arguments
        + "}}]}]}]}"
    )
    conn.execute("UPDATE agent_sessions SET memory = ? WHERE session_id = 'a'", (memory,))
    conn.commit()
    conn.close()
    for _ in range(2):  # caught up, then built anew
        hits = store.search("kestrels")
        assert sorted((h.message.role, h.message.content, h.message.tool_calls) for h in hits) == sorted(
            (m.role, m.content, m.tool_calls) for m in store.history("a")
        )
        assert indexed_messages(db)
        store.disable_search()
        store.enable_search()
    store.close()


def test_a_message_no_json_writer_can_spell_is_a_corrupt_row_for_the_index(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.upsert(AgentSession(session_id="a", user_id="alice", memory=agno_memory(("kestrels here", "yes"))))
    conn = sqlite3.connect(db)
    deep = "[" * 1000 + "]" * 1000
    conn.execute(
        "UPDATE agent_sessions SET memory = ? WHERE session_id = 'a'",
        ('{"runs":[{"run_id":"r","messages":[{"role":"assistant","content":"kestrels","tool_calls":' + deep + "}]}]}",),
    )
    conn.commit()
    conn.close()
    with pytest.raises(CorruptRowError) as info:
        store.enable_search()
    assert info.value.session_id == "a"
    store.close()


def test_an_fts5_table_of_anothers_this_sqlite_cannot_open_is_not_the_index(tmp_path: Path) -> None:
    """Another program's ``<t>_search`` with a tokenizer this SQLite lacks (ICU): search() scans, no error."""
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    seed(store)
    conn = sqlite3.connect(db)
    conn.execute("CREATE VIRTUAL TABLE agent_sessions_search USING fts5(body)")
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute(
        "UPDATE sqlite_master SET sql = 'CREATE VIRTUAL TABLE agent_sessions_search USING fts5(body, tokenize=''icu'')'"
        " WHERE name = 'agent_sessions_search'"
    )
    conn.commit()
    conn.close()
    store.close()
    store = SqliteStorage("agent_sessions", db_file=db)
    assert {h.session_id for h in store.search("kestrels")} == {"alice-1", "bob-1"}
    store.disable_search()
    assert "agent_sessions_search" in _table_names(db)
    store.close()


def test_index_fingerprints_are_the_documented_digest() -> None:
    """The fingerprint each indexed message carries is digest() of it: an index made by any version matches."""
    messages = [
        Message(role="user", content="kestrels", created_at=1, run_id="r"),
        Message(role="assistant", content="Käsespätzle 🧀", tool_calls=[{"id": "c", "n": [1, None]}], member="m"),
        Message(role="tool", content=None),
    ]
    docs = search_index.docs_of("s", AgentSession(session_id="s", user_id="u"), [], "t")
    assert docs == []
    got = list(search_index._docs("s", "u", None, messages))
    assert [d[4] for d in got] == [orjson.dumps(CONVERTER.unstructure(m)).decode() for m in messages[:2]]
    assert [d[6] for d in got] == [search_index.digest(d) for d in got]


def test_a_table_named_like_the_index_is_not_taken_for_it(make_store: Any) -> None:
    """Sessions tables "t" and "t_search" (or "t_changes") in one database: t's search and feed are off until
    enabled, and enabling them where the name is taken is a clear error, not a write into the other table."""
    store = make_store("agent")
    neighbour = make_store("agent", table_name=store.table_name + "_search")
    changes_neighbour = make_store("agent", table_name=store.table_name + "_changes")
    neighbour.create()
    changes_neighbour.create()
    store.upsert(AgentSession(session_id="a", agent_id="x", memory=agno_memory(("kestrel one", "ok"))))
    assert found(store.search("kestrel")) == [("a", "kestrel one")]  # scanned
    assert not search_index.index_for(store).enabled()
    with pytest.raises(StorageError, match="already"):
        store.enable_search()
    with pytest.raises(StorageError, match="not enabled"):
        store.changes()
    with pytest.raises(StorageError, match="already"):
        store.enable_changes()
    changes_neighbour.upsert(AgentSession(session_id="n", agent_id="x"))  # its own writes go on
    assert changes_neighbour.read("n") is not None


def test_the_index_finds_what_the_scan_finds_whatever_the_letters(tmp_path: Path) -> None:
    """Words whose lower case Python and FTS5 spell differently (Turkish dotted İ) are found by the index
    as by the scan: the engine gets the query as typed and folds it as it folded the text."""
    store = SqliteStorage("agent_sessions", db_file=tmp_path / "s.db")
    texts = ["İstanbul trip", "ΣΟΦΟΣ άνθρωπος", "straße", "日本語のテキスト", "CAFÉ au lait"]
    for i, text in enumerate(texts):
        store.upsert(AgentSession(session_id=f"s{i}", user_id="u", agent_id="x", memory=agno_memory((text, "ok"))))
    queries = ["İstanbul", "istanbul", "σοφος", "ΣΟΦΟΣ", "straße", "日本語のテキスト", "café", "Café CAFÉ"]
    scanned = {q: sorted(h.message.content for h in store.search(q)) for q in queries}
    store.enable_search()
    indexed = {q: sorted(h.message.content for h in store.search(q)) for q in queries}
    assert indexed == scanned
    assert scanned["İstanbul"] == ["İstanbul trip"] and scanned["café"] == ["CAFÉ au lait"]
    store.close()


def test_a_store_naming_the_table_in_other_letter_case_uses_its_index_and_feed(tmp_path: Path) -> None:
    """SQLite names are one table whatever the ASCII letter case: a store opened as "AGENT_SESSIONS" on
    "agent_sessions" finds the index and the change feed the other made, enabling them again is a no-op,
    and disabling removes the one index both use."""
    db = tmp_path / "s.db"
    lower = SqliteStorage("agent_sessions", db_file=db)
    lower.upsert(AgentSession(session_id="a", user_id="u", agent_id="x", memory=agno_memory(("kestrel one", "ok"))))
    lower.enable_search()
    lower.enable_changes()
    upper = SqliteStorage("AGENT_SESSIONS", db_file=db)
    assert search_index.index_for(upper).enabled()
    upper.enable_search()
    upper.enable_changes()
    upper.upsert(AgentSession(session_id="b", user_id="u", agent_id="x", memory=agno_memory(("kestrel two", "ok"))))
    assert found(upper.search("kestrel")) == found(lower.search("kestrel"))
    assert sorted(found(upper.search("kestrel"))) == [("a", "kestrel one"), ("b", "kestrel two")]
    assert [(c.session_id, c.op) for c in upper.changes()] == [("b", "insert")]
    assert [c.cursor for c in upper.changes()] == [c.cursor for c in lower.changes()]
    upper.disable_search()
    assert not search_index.index_for(lower).enabled()
    names = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master")}
    assert not {n for n in names if n.lower().startswith("agent_sessions_search")}
    lower.close()
    upper.close()


@pytest.mark.parametrize("source", ["agno_agent", "go_agent_conversation"])
@pytest.mark.parametrize("build", ["f6d9f54", "d065eea"], ids=["version-1", "version-2"])
def test_an_index_of_an_earlier_version_is_made_anew_and_gives_another_users_runs_to_that_user(
    tmp_path: Path, build: str, source: str
) -> None:
    """A file indexed by an earlier build (fixtures/MANIFEST.md) with a Go run of "intruder" under the id of
    user-1's session: version 1 gave user-1 its words, version 2 gave them to nobody. The first search makes
    the index anew, as a fresh one is: the words are the intruder's, as history() shows them to the intruder,
    and never user-1's."""
    db = tmp_path / "old.db"
    db.write_bytes((FIXTURES / f"search_index_{build}_{source}.db").read_bytes())
    if source == "go_agent_conversation":
        old = (
            sqlite3.connect(db)
            .execute("SELECT user_id FROM agent_sessions_search_text WHERE content LIKE '%payroll%'")
            .fetchall()
        )
        assert old == ([("user-1",)] if build == "f6d9f54" else [])  # what that version held
    fresh = _indexed_copy(db, tmp_path / "fresh.db")
    store = SqliteStorage("agent_sessions", db_file=db)
    assert found(store.search("payroll", user_id="user-1")) == []
    theirs = [("agent-existing", "intruder payroll question")] if source == "go_agent_conversation" else []
    assert found(store.search("payroll", user_id="intruder")) == theirs
    assert [(h.user_id, h.entity_id) for h in store.search("payroll")] == [("intruder", None)] * len(theirs)
    if theirs:
        assert store.history("agent-existing", user_id="intruder")[0].content == theirs[0][1]
    assert indexed_messages(db) == indexed_messages(fresh)
    sql = sqlite3.connect(db).execute("SELECT sql FROM sqlite_master WHERE name = 'agent_sessions_search'").fetchone()
    assert "columnsize=1" in sql[0]
    store.close()


def test_a_version_3_index_is_made_anew_and_finds_an_agent_memory_runs_question_and_answer(tmp_path: Path) -> None:
    """A file build 8f17b67 indexed (version 3; fixtures/MANIFEST.md): an agno 1.8.4 Agent given
    ``AgentMemory`` and ``add_messages`` ran two questions, and that build read each run's added messages
    alone. The first search makes the index anew with this build's reading: the questions and answers
    history() shows are found, the examples once."""
    db = tmp_path / "old.db"
    db.write_bytes((FIXTURES / "search_index_8f17b67_agno_agent_memory.db").read_bytes())
    conn = sqlite3.connect(db)
    old = [r[0] for r in conn.execute("SELECT content FROM agent_sessions_search_text ORDER BY session_id, pos")]
    conn.close()
    assert old == ["what eats voles", "kestrels do"] * 2  # what that build held: no question, no answer
    fresh = _indexed_copy(db, tmp_path / "fresh.db")
    store = SqliteStorage("agent_sessions", db_file=db)
    try:
        _shows_and_finds_the_agent_memory_conversation(store)
        assert indexed_messages(db) == indexed_messages(fresh)
    finally:
        store.close()


def _shows_and_finds_the_agent_memory_conversation(store: BaseStorage) -> None:
    """history() of fixtures/agno_agent_memory.db's session shows each run's question and answer after the
    examples shown once, and search() finds each of them."""
    shown = [m.content for m in store.history("memory-1")]
    assert shown == [
        "what eats voles",
        "kestrels do",
        "which merlin hunts over heather",
        "birder #1: which merlin hunts over heather",
        "where do merlins nest",
        "birder #2: where do merlins nest",
    ]
    assert sorted(found(store.search("merlin"))) == [("memory-1", t) for t in sorted(shown[2:4])]
    assert sorted(found(store.search("nest"))) == [("memory-1", t) for t in sorted(shown[4:])]
    assert found(store.search("kestrels")) == [("memory-1", "kestrels do")]


def test_a_postgres_index_of_version_2_is_made_anew_and_finds_an_agent_memory_runs_question_and_answer(
    pg_server: Any,
) -> None:
    """Schema ``ai`` as build 8f17b67 left it (index version 2; fixtures/MANIFEST.md), loaded into a database
    of its own: agno 1.8.4 wrote the same Agent's two runs and that build indexed each run's added messages
    alone. The first search makes the index anew and finds the questions and answers history() shows."""
    import psycopg

    from agno_storage.backends.postgres import PostgresStorage
    from tests.pgserver import create_database

    url = create_database(pg_server, "search_index_8f17b67")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute((FIXTURES / "search_index_8f17b67_agno_agent_memory.pg.sql").read_text(encoding="utf-8"))
    with psycopg.connect(url) as conn:
        comment, texts = conn.execute(
            "SELECT obj_description('ai.agent_sessions_search'::regclass, 'pg_class'), "
            "array_agg(message::json ->> 'content' ORDER BY pos) FROM ai.agent_sessions_search"
        ).fetchone() or (None, None)
    assert comment == "agno_storage search index 2"
    assert texts == ["what eats voles", "kestrels do"] * 2  # what that build held: no question, no answer
    store = PostgresStorage("agent_sessions", db_url=url)
    try:
        _shows_and_finds_the_agent_memory_conversation(store)
    finally:
        store.close()


def disabled_by_an_older_build(db: Path) -> None:
    """What ``disable_search()`` of a build one version older does to an index it does not know: its map,
    marks, queue and triggers dropped, its FTS5 table left."""
    conn = sqlite3.connect(db)
    with conn:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            conn.execute(f'DROP TRIGGER "{name}"')
        for suffix in ("_search_text", "_search_marks", "_search_queue"):
            conn.execute(f'DROP TABLE "agent_sessions{suffix}"')
    conn.close()


def test_what_an_earlier_builds_disable_leaves_of_a_version_2_index_is_no_index(tmp_path: Path) -> None:
    """Build f6d9f54's disable_search() does not know a version-2 FTS5 table: it drops the map, marks, queue and
    triggers and leaves the FTS5 table. That is a disabled index here: search scans, enable_search() makes a
    new one in its place, disable_search() removes it."""
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.upsert(AgentSession(session_id="a", user_id="u", agent_id="x", memory=agno_memory(("kestrel one", "ok"))))
    store.enable_search()
    disabled_by_an_older_build(db)
    store.close()
    store = SqliteStorage("agent_sessions", db_file=db)
    assert not search_index.index_for(store).enabled()
    store.upsert(AgentSession(session_id="b", user_id="u", agent_id="x", memory=agno_memory(("kestrel two", "ok"))))
    assert sorted(found(store.search("kestrel"))) == [("a", "kestrel one"), ("b", "kestrel two")]  # scanned
    store.enable_search()
    assert search_index.index_for(store).enabled()
    assert sorted(found(store.search("kestrel"))) == [("a", "kestrel one"), ("b", "kestrel two")]
    assert indexed_messages(db)
    store.disable_search()
    assert not {n for n in _table_names(db) if n.startswith("agent_sessions_search")}
    store.close()


@pytest.mark.parametrize(
    ("build", "query", "hits"),
    [("d065eea_agno_agent", "squared", 40), ("8f17b67_agno_agent_memory", "merlin", 2)],
)
def test_what_an_earlier_builds_disable_leaves_of_an_earlier_version_index_is_no_index(
    tmp_path: Path, build: str, query: str, hits: int
) -> None:
    """An index of version 2 (build d065eea's) or 3 (build 8f17b67's, fixtures/MANIFEST.md) disabled by a build
    one version older, which does not know its FTS5 table and leaves it (the map, marks, queue and triggers
    dropped): disabled here too. A search scans and makes no index; enable_search() makes one in its place and
    disable_search() removes it."""
    db = tmp_path / "s.db"
    db.write_bytes((FIXTURES / f"search_index_{build}.db").read_bytes())
    disabled_by_an_older_build(db)
    left = _table_names(db)
    store = SqliteStorage("agent_sessions", db_file=db)
    try:
        assert not search_index.index_for(store).enabled()
        scanned = sorted(found(store.search(query, limit=1000)))
        assert len(scanned) == hits
        assert _table_names(db) == left  # no index made by a search
        store.enable_search()
        assert sorted(found(store.search(query, limit=1000))) == scanned
        assert indexed_messages(db)
        store.disable_search()
        assert not {n for n in _table_names(db) if n.startswith("agent_sessions_search")}
    finally:
        store.close()


@pytest.mark.parametrize("how", ["insert or replace", "update or replace"])
def test_a_go_run_moved_to_another_session_by_replace_leaves_the_index(tmp_path: Path, how: str) -> None:
    """agent_runs is keyed by run id: another program's REPLACE of a run id another session holds deletes
    that row with no delete trigger fired. The session that lost the run is reindexed all the same."""
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    first = store.append_run("go-a", "kestrels at dawn", "ok")
    store.append_run("go-b", "owls at night", "ok")
    store.enable_search()
    conn = sqlite3.connect(db)
    if how == "insert or replace":
        write_run_as_another_program(conn, first.id, session_id="go-b")
    else:
        other = conn.execute("SELECT id FROM agent_runs WHERE session_id = 'go-b'").fetchone()[0]
        conn.execute("UPDATE OR REPLACE agent_runs SET id = ? WHERE id = ?", (first.id, other))
    conn.commit()
    conn.close()
    assert store.history("go-a") == []
    assert [h.session_id for h in store.search("kestrels")] == (["go-b"] if how == "insert or replace" else [])
    assert all(sid != "go-a" for sid, *_ in indexed_messages(db))
    store.close()


def test_a_go_run_another_program_moves_to_another_session_leaves_the_index(tmp_path: Path) -> None:
    """An UPDATE of a run's session_id by another program: the session that lost the run is reindexed too."""
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.append_run("go-a", "kestrels at dawn", "ok")
    store.append_run("go-a", "owls at night", "ok")
    store.enable_search()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE agent_runs SET session_id = 'go-b' WHERE user_message = 'kestrels at dawn'")
    conn.commit()
    conn.close()
    assert found(store.search("kestrels")) == [("go-b", "kestrels at dawn")]
    assert found(store.search("owls")) == [("go-a", "owls at night")]
    assert sorted(sid for sid, *_ in indexed_messages(db)) == ["go-a", "go-a", "go-b", "go-b"]
    store.close()


@pytest.mark.parametrize("table", ["agent_sessions", "agent_runs"])
def test_a_table_another_program_renamed_and_made_again_is_indexed_anew(tmp_path: Path, table: str) -> None:
    """ALTER TABLE ... RENAME takes the index's triggers along: the table made again under the name is
    not watched by them, and the renamed one's writes are not this table's. The index sees that and
    indexes the table by that name as it is now."""
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    store.upsert(AgentSession(session_id="s1", user_id="u", memory=agno_memory(("kestrels at dawn", "ok"))))
    store.append_run("go-1", "kestrels from go", "ok")
    store.enable_search()
    conn = sqlite3.connect(db)
    conn.execute(f'ALTER TABLE "{table}" RENAME TO "{table}_old"')
    conn.commit()
    conn.close()
    renamed_away = store.search("kestrels")
    # As the scan has it: no sessions table, no conversation here (the runs beside the renamed one are its);
    # no agent_runs, no Go run.
    assert {h.session_id for h in renamed_away} == (set() if table == "agent_sessions" else {"s1"})
    fresh = SqliteStorage("agent_sessions", db_file=db)  # makes the sessions table again; a Go Agent agent_runs
    fresh.upsert(AgentSession(session_id="s2", user_id="u", memory=agno_memory(("owls at night", "ok"))))
    fresh.append_run("go-2", "owls from go", "ok")
    assert sorted(h.session_id for h in store.search("owls")) == ["go-2", "s2"]
    assert "s1" not in {h.session_id for h in store.search("kestrels")} or table == "agent_runs"
    assert "go-1" not in {h.session_id for h in store.search("kestrels")} or table == "agent_sessions"
    store.close()
    fresh.close()


def test_a_write_committed_while_postgres_catches_up_is_not_lost(
    pg_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer's queue row gets its id at insert and becomes visible at commit: one with a lower id than
    rows the catch-up read can commit while it runs. Only the rows read are taken off the queue."""
    import psycopg

    from agno_storage.backends.postgres import PostgresStorage
    from agno_storage.search_pg import PostgresIndex

    store = PostgresStorage(f"t_race_{next(_ids)}", db_url=pg_server.dsn)
    try:
        store.upsert(AgentSession(session_id="s0", user_id="u", memory=agno_memory(("seed words", "ok"))))
        store.enable_search()
        late = psycopg.connect(pg_server.dsn)  # another writer, its transaction still open
        late.execute(
            f"INSERT INTO {store.qualified_table} (session_id, user_id, memory) VALUES ('late', 'u', %s)",
            (json.dumps(agno_memory(("kestrels at dawn", "ok"))),),
        )
        store.upsert(AgentSession(session_id="early", user_id="u", memory=agno_memory(("owls at night", "ok"))))
        copy = PostgresIndex._copy

        def copy_then_commit(self: PostgresIndex, conn: Any, docs: Any) -> None:
            copy(self, conn, docs)
            if not late.closed:  # the first writer commits while the catch-up runs
                late.commit()
                late.close()

        monkeypatch.setattr(PostgresIndex, "_copy", copy_then_commit)
        try:
            hits = finishes(
                lambda: store.search("owls"),
                hung="the catch-up waited for the open writer, which commits only from inside it (it took a lock"
                " the writer holds: made the index anew, its triggers dropped, instead of reading the queue?)",
            )
        finally:
            if not late.closed:  # rolled back: a catch-up waiting for it goes on, and the table can be dropped
                late.close()
        assert found(hits) == [("early", "owls at night")]
        monkeypatch.setattr(PostgresIndex, "_copy", copy)
        assert found(store.search("kestrels")) == [("late", "kestrels at dawn")]
    finally:
        store.drop()
        store.close()


def test_a_message_too_large_for_a_postgres_tsvector_is_indexed_by_its_first_words(pg_server: Any) -> None:
    """A tsvector holds at most 1 MB: one large tool result must not stop the index (and every search)."""
    import random
    import string

    from agno_storage.backends.postgres import PostgresStorage

    rng = random.Random(0)
    big = "kestrels " + " ".join("".join(rng.choices(string.ascii_lowercase, k=9)) for _ in range(130_000))
    store = PostgresStorage(f"t_big_{next(_ids)}", db_url=pg_server.dsn)
    try:
        store.upsert(AgentSession(session_id="s0", user_id="u", memory=agno_memory(("kestrels at dawn", "ok"))))
        store.enable_search()
        store.upsert(AgentSession(session_id="big", user_id="other", memory=agno_memory((big, "ok"))))
        assert found(store.search("kestrels", user_id="u")) == [("s0", "kestrels at dawn")]
        assert {h.session_id for h in store.search("kestrels")} == {"s0", "big"}
        store.disable_search()
        store.enable_search()
        assert {h.session_id for h in store.search("kestrels")} == {"s0", "big"}
    finally:
        store.drop()
        store.close()


def test_one_users_corrupt_row_does_not_stop_other_users_searches(make_store: Any) -> None:
    """The index cannot take in a corrupt row another program wrote: searches then answer as without an
    index, raising only where the filters reach that row, until it is mended."""
    store = make_store("agent")
    seed(store)
    store.enable_search()
    store.upsert(AgentSession(session_id="m1", user_id="mallory", memory=agno_memory(("kestrels too", "ok"))))
    name = f'"{store.table_name}"' if isinstance(store, SqliteStorage) else store.qualified_table
    with store.transaction() as conn:  # valid JSON of the wrong type: a list where an object belongs
        conn.execute(f"UPDATE {name} SET session_data = '[1, 2]' WHERE session_id = 'm1'")
    for _ in range(2):
        assert {h.session_id for h in store.search("kestrels", user_id="alice")} == {"alice-1"}
        with pytest.raises(CorruptRowError) as info:
            store.search("kestrels")
        assert info.value.session_id == "m1"
    with store.transaction() as conn:
        conn.execute(f"UPDATE {name} SET session_data = NULL WHERE session_id = 'm1'")
    assert {h.session_id for h in store.search("kestrels")} == {"alice-1", "bob-1", "m1"}


@pytest.mark.parametrize("indexed", [False, True], ids=["scan", "index"])
def test_decomposed_accents_are_part_of_a_word_for_the_scan_as_for_the_index(make_store: Any, indexed: bool) -> None:
    """Text in decomposed form ("e" then U+0301, as some keyboards and file systems write it): FTS5 keeps
    the accent in the word, so the query's words must keep it too, or the index never matches them."""
    import unicodedata

    store = make_store("agent")
    text = unicodedata.normalize("NFD", "Tiếng Việt résumé")
    store.upsert(AgentSession(session_id="vi", user_id="u", memory=agno_memory((text, "ok"))))
    if indexed:
        store.enable_search()
    assert found(store.search(text)) == [("vi", text)]
    assert found(store.search(unicodedata.normalize("NFD", "résumé"))) == [("vi", text)]


@pytest.mark.parametrize("indexed", [False, True], ids=["scan", "index"])
def test_newer_emoji_are_words_for_the_scan_as_for_the_index(make_store: Any, indexed: bool) -> None:
    """FTS5 takes a character its Unicode 6.1 tables do not know (most emoji of later years) into a word,
    and splits at one they list as a symbol (the emoji of 2010): the scan finds what the index finds, and
    the PostgreSQL index holds the scan's words (its parser, under the C locale, took every emoji into a word)."""
    store = make_store("agent")
    text = "thanks\U0001f917 for the help \U0001f914 and the smile\U0001f600"
    store.upsert(AgentSession(session_id="e", user_id="u", memory=agno_memory((text, "ok"))))
    if indexed:
        store.enable_search()
    assert found(store.search("thanks\U0001f917")) == [("e", text)]
    assert found(store.search("\U0001f914")) == [("e", text)]
    assert store.search("thanks") == []
    assert found(store.search("smile")) == [("e", text)]


def _fts5_terms(texts: dict[int, str]) -> dict[int, list[str]]:
    """The terms FTS5 (unicode61, remove_diacritics 0, as the index makes it) makes of each text, in order."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize = 'unicode61 remove_diacritics 0')")
    conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    conn.executemany("INSERT INTO t (rowid, x) VALUES (?, ?)", texts.items())
    terms: dict[int, list[str]] = {k: [] for k in texts}
    for doc, term in conn.execute("SELECT doc, term FROM v ORDER BY doc, offset"):
        terms[doc].append(term)
    conn.close()
    return terms


def _shape(words: list[str]) -> list[int]:
    # FTS5 folds case by its own tables, Python's lower() by newer ones: words compare by their lengths
    # (each fold keeps a character one character; U+0130, whose lower() is two, is left out of the texts).
    return [len(w) for w in words]


def test_the_scans_words_are_fts5s_words_for_characters_of_every_plane() -> None:
    """Code points of every plane (every 61st, both edges of each range FTS5 splits words at, each accent it
    drops at a word's start, emoji old and new), inside a word and leading it: the scan splits the text
    where the index does."""
    from agno_storage import fts5_chars
    from agno_storage.search import words_of

    edges = {e + d for r in fts5_chars.SEPARATORS for e in r for d in (-1, 0, 1)}
    emoji = {0x1F600, 0x1F914, 0x1F917, 0x1F923, 0x1F970, 0x1FAE0, 0x2764, 0x1F44D}
    points = {*range(0, 0x110000, 61), *edges, *fts5_chars.NOT_FIRST, *emoji}
    points = {c for c in points if 0 <= c < 0x110000 and not 0xD800 <= c <= 0xDFFF and c != 0x130}
    texts = {c: "a" + chr(c) + "b" for c in points} | {-c - 1: chr(c) + "ab" for c in points}  # inside; leading
    fts5 = _fts5_terms(texts)
    differ = [(hex(abs(k) - (k < 0)), k < 0) for k, text in texts.items() if _shape(words_of(text)) != _shape(fts5[k])]
    assert differ == []


_mixed_text = hs.text(
    alphabet=hs.one_of(
        hs.sampled_from("ab Z9_.-'\t\n"),
        hs.sampled_from([chr(c) for c in (0x0301, 0x0300, 0x0336, 0x00E9, 0x00D7, 0xE000, 0x3000, 0x4E2D)]),
        hs.sampled_from([chr(c) for c in (0x1F600, 0x1F914, 0x1F917, 0x1FAE0, 0x10400, 0xF0000, 0xE0001)]),
        hs.characters(exclude_categories=("Cs",), exclude_characters="\u0130"),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(hs.lists(_mixed_text, min_size=1, max_size=20))
def test_the_scans_words_are_fts5s_words_in_any_text(texts: list[str]) -> None:
    from agno_storage.search import words_of

    fts5 = _fts5_terms(dict(enumerate(texts, 1)))
    assert [_shape(words_of(text)) for text in texts] == [_shape(fts5[k]) for k in range(1, len(texts) + 1)]


def test_a_search_without_the_index_and_usage_hold_one_session_at_a_time(tmp_path: Path) -> None:
    """Without the index a search reads every session: held all at once (list()), a table four times larger
    took four times the memory, and a few searches on a large table (through ``serve``, say) ran a process out
    of it. Sessions are read one at a time and only the best hits kept: the peak stays where it was."""
    import tracemalloc

    def sessions(n: int) -> Iterator[AgentSession]:
        for i in range(n):
            runs = [
                {
                    "run_id": f"r{i}-{j}",
                    "messages": [
                        {"role": "user", "content": f"hello number {j} " + "filler text " * 40},
                        {"role": "assistant", "content": "reply " * 40},
                    ],
                }
                for j in range(20)
            ]
            yield AgentSession(session_id=f"s{i}", user_id="u", memory={"runs": runs})

    peaks = []
    for n in (100, 400):
        with SqliteStorage("agent_sessions", db_file=tmp_path / f"{n}.db") as store:
            store.upsert_many(sessions(n))
            (
                store.search("hello filler"),
                store.usage(),
            )  # what the first call of each makes once (caches) is not counted
            tracemalloc.start()
            try:
                assert len(store.search("hello filler", limit=20)) == 20
                assert store.usage()[0].runs == 20 * n
                peaks.append(tracemalloc.get_traced_memory()[1])
            finally:
                tracemalloc.stop()
    assert peaks[1] < 1.5 * peaks[0], peaks


@pytest.mark.parametrize("first", ["alice", ""], ids=["owned", "no_owner"])
def test_a_session_handed_to_another_owner_while_a_scan_reads_never_shows_the_new_owners_runs(
    tmp_path: Path, first: str
) -> None:
    """Searched without the index, alice's session is read, then another writer gives it to bob and bob's Go
    service (run with no user) adds a run, before its runs are read: that run is never a hit of alice's.
    So too for a caller scoped to no owner (``first`` '') and a session with none, whose runs are all its own
    only while it has none."""
    db = tmp_path / "s.db"
    with SqliteStorage("agent_sessions", db_file=db) as setup:
        setup.upsert(AgentSession(session_id="shared", user_id=first, agent_id="a1", memory={"runs": []}))
        setup.append_run("shared", "kestrels of alice", "Go: ok.", user_id="")
    other = SqliteStorage("agent_sessions", db_file=db, allow_owner_change=True)
    handed: list[bool] = []

    def between(statement: str, params: Any) -> None:
        if "FROM agent_runs WHERE session_id" in statement and not handed:
            handed.append(True)
            other.upsert(AgentSession(session_id="shared", user_id="bob", agent_id="a1", memory={"runs": []}))
            other.append_run("shared", "kestrels on bob's payroll", "Go: filed.", user_id="")

    store = SqliteStorage("agent_sessions", db_file=db, tracer=between)
    try:
        hits = [h.message.content for h in store.search("kestrels", user_id=first)]
    finally:
        store.close()
        other.close()
    assert handed
    assert "kestrels on bob's payroll" not in hits, hits
