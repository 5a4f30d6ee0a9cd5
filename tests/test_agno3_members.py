"""to-agno3 with what the plain canned model never makes: member runs of a delegating Team, and agno 1.x's
separate memory table.

Sources are written by real agno 1.8.4 (tests/agno3_sources.py); agno 3.1.10
reads and resumes the result in its own venv (devkit/agno3_env.py).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agno_storage.agno3 import to_agno3
from agno_storage.cli import main
from devkit import agno3_env

_RUNS = (
    "import json, sys\n"
    "from agno.db.sqlite import SqliteDb\n"
    "from agno.db.base import SessionType\n"
    "db = SqliteDb(db_file=sys.argv[1])\n"
    "raw = db.get_session(session_id=sys.argv[2], session_type=SessionType.TEAM, deserialize=False)\n"
    "session = db.get_session(session_id=sys.argv[2], session_type=SessionType.TEAM)\n"
    "listed, _ = db.get_runs(session_id=sys.argv[2], deserialize=False, sort_by='run_index', sort_order='asc')\n"
    "print(json.dumps({\n"
    "    'runs': [\n"
    "        {'run_id': r['run_id'], 'agent_id': r.get('agent_id'), 'team_id': r.get('team_id'),\n"
    "         'parent_run_id': r.get('parent_run_id'), 'status': r.get('status'),\n"
    "         'messages': [[m['role'], m.get('content')] for m in r.get('messages') or []]}\n"
    "        for r in raw['runs']\n"
    "    ],\n"
    "    'classes': [type(r).__name__ for r in session.runs],\n"
    "    'listed': [r['run_id'] for r in listed],\n"
    "    'leader_messages': [[m.role, m.content] for m in session.get_messages()],\n"
    "}))\n"
)


@pytest.fixture(scope="module")
def team_source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """Two turns of an agno 1.8.4 Team whose leader hands each to both members; (file, what each turn reported)."""
    from tests.agno3_sources import run_delegating_team_turn

    path = tmp_path_factory.mktemp("members") / "agno1.db"
    turns = [run_delegating_team_turn(str(path), "s-team", "user-1", q) for q in ("first question", "second question")]
    return path, turns


def _source_team_runs(path: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(path) as conn:
        (memory,) = conn.execute("SELECT memory FROM team_sessions WHERE session_id = 's-team'").fetchone()
    runs: list[dict[str, Any]] = json.loads(memory)["runs"]
    return runs


def test_the_source_team_really_delegated(team_source: tuple[Path, list[dict[str, Any]]]) -> None:
    path, turns = team_source
    runs = _source_team_runs(path)
    assert [len(r["member_responses"]) for r in runs] == [2, 2]
    assert [m["agent_id"] for r in runs for m in r["member_responses"]] == ["alpha", "beta", "alpha", "beta"]
    # The members' models ran on the tasks the leader's tool call gave them.
    assert "alpha task 1: first question" in turns[0]["alpha"][0][-1]["content"]
    assert [m["run_id"] for m in runs[1]["member_responses"]] == turns[1]["member_run_ids"]


def test_agno3_sees_member_runs_linked_to_their_team_run_in_order(
    team_source: tuple[Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    path, _ = team_source
    target = tmp_path / "agno3.db"
    report = to_agno3(str(path), str(target))
    assert report.modes["team"].runs == 6
    got = json.loads(agno3_env.run_code(_RUNS, str(target), "s-team").strip().splitlines()[-1])
    source = _source_team_runs(path)
    expected: list[tuple[str, str | None, str | None, str | None]] = []
    for team_run in source:  # as agno 3 writes a delegating team: each member run, then its team run
        expected += [
            (m["run_id"], "alpha" if i == 0 else "beta", None, team_run["run_id"])
            for i, m in enumerate(team_run["member_responses"])
        ]
        expected.append((team_run["run_id"], None, "pair", None))
    runs = got["runs"]
    assert [(r["run_id"], r["agent_id"], r["team_id"], r["parent_run_id"]) for r in runs] == expected
    assert got["listed"] == [e[0] for e in expected]
    assert got["classes"] == ["RunOutput", "RunOutput", "TeamRunOutput"] * 2
    assert {r["status"] for r in runs} == {"COMPLETED"}
    # Each member run keeps its own conversation: the task it was handed and its reply.
    alpha_second = runs[3]
    assert [role for role, _ in alpha_second["messages"]] == ["user", "assistant"]
    assert "alpha task" in alpha_second["messages"][0][1] and "second question" in alpha_second["messages"][0][1]
    assert alpha_second["messages"][1][1].startswith("alpha #1: ")
    # The leader's conversation: questions, its tool calls' results (the members' replies) and its answers.
    leader = got["leader_messages"]
    assert [role for role, _ in leader if role != "system"] == ["user", "assistant", "tool", "tool", "assistant"] * 2
    assert leader[-1] == ["assistant", "team #2: second question"]


def test_agno3_resumes_the_delegating_team_with_its_members_replies(
    team_source: tuple[Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    path, _ = team_source
    target = tmp_path / "agno3.db"
    assert main(["to-agno3", str(path), str(target)]) == 0
    result = agno3_env.resume("team", str(target), "s-team", "user-1", "pair", "third question")
    sent = result["calls"][-1]
    seen = "\n".join(m["content"] or "" for m in sent)
    assert "first question" in seen and "second question" in seen
    assert "team #2: first question" in seen and "team #2: second question" in seen
    assert "beta task 1: second question" in seen  # a member's reply, as the leader's tool result
    assert [m["role"] for m in sent[1:]] == ["user", "assistant", "tool", "tool", "assistant"] * 2 + ["user"]
    assert result["runs_before"] == 6 and result["runs_after"] == 7


# --- agno 1.x's separate memory table -----------------------------------------


def _memory_source(db: str) -> list[str]:
    from tests.agno3_sources import run_memory_v2_agent_turn

    return [run_memory_v2_agent_turn(db, "s-mem", "user-1", q)["memory_id"] for q in ("first fact", "second fact")]


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_memory_table_memories_reach_agno3(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine == "postgres":
        from tests.pgserver import create_database

        src = dst = create_database(request.getfixturevalue("pg_server"), "agno3_memory_table")  # counts of its own
    else:
        src, dst = str(tmp_path / "agno1.db"), str(tmp_path / "agno3.db")
    ids = _memory_source(src)
    report = to_agno3(src, dst)
    assert report.tables["memory_table"] == "memory"
    assert report.modes["memory_table"].memories == 2 and report.modes["agent"].runs == 2
    monkeypatch.setenv("AGNO3_MEMORIES", "1")
    result = agno3_env.resume("agent", dst, "s-mem", "user-1", "rememberer", "third question")
    memories = result["memories"]
    assert sorted(m[0] for m in memories) == sorted(ids)
    assert {(m[1], m[2], tuple(m[3])) for m in memories} == {
        ("remembers: first fact", "first fact", ("facts",)),
        ("remembers: second fact", "second fact", ("facts",)),
    }
    assert all(m[4] for m in memories)  # created_at from the table's own stamp
    # The memories reached agno 3's model, and so did the conversation.
    seen = "\n".join(m["content"] or "" for m in result["calls"][-1])
    assert "remembers: first fact" in seen and "remembers: second fact" in seen
    assert "agent #1: first fact" in seen
    again = to_agno3(src, dst)
    assert again.modes["memory_table"].memories == 0 and again.modes["memory_table"].unchanged == 2


def test_memory_table_rows_that_are_not_memories_are_kept_and_reported(tmp_path: Path) -> None:
    src = tmp_path / "agno1.db"
    _memory_source(str(src))
    with sqlite3.connect(src) as conn:
        conn.execute("INSERT INTO memory (id, user_id, memory) VALUES ('odd', 'user-1', 'not a dict (')")
    target = tmp_path / "agno3.db"
    report = to_agno3(str(src), str(target))
    assert report.modes["memory_table"].memories == 3
    assert any("'odd'" in p for p in report.problems)
    with sqlite3.connect(target) as conn:
        stored = conn.execute("SELECT memory, created_at FROM agno_memories WHERE memory_id = 'odd'").fetchone()
    assert json.loads(stored[0]) == "not a dict (" and stored[1] > 0
    skipped = to_agno3(str(src), str(tmp_path / "other.db"), memory_table=None)
    assert "memory_table" not in skipped.modes


def test_a_team_moved_to_another_users_session_keeps_each_sessions_runs_apart(tmp_path: Path) -> None:
    """agno 1.8.4: a Team answers in session A for alice, then is moved to session B for bob (load_session).
    agno saves A's runs inside B's row too (memory.runs keyed by session). They stay A's: B gets none of
    them, in history() and in agno 3, and a rerun after bob's own turn deletes nothing of alice's."""
    import time

    from agno.agent import Agent
    from agno.storage.sqlite import SqliteStorage as AgnoSqliteStorage
    from agno.team import Team

    from agno_storage import SqliteStorage
    from devkit.fake_model import FakeModel

    db = str(tmp_path / "teams.db")
    storage = AgnoSqliteStorage(table_name="team_sessions", db_file=db, mode="team")
    member = Agent(name="A", agent_id="a", model=FakeModel(prefix="a"), telemetry=False, monitoring=False)
    team = Team(
        name="T",
        team_id="t",
        mode="coordinate",
        members=[member],
        model=FakeModel(prefix="team"),
        storage=storage,
        session_id="A",
        user_id="alice",
        telemetry=False,
        monitoring=False,
    )
    team.run("alice's secret question")
    time.sleep(1.1)  # a later second, as a later request would be
    team.session_id, team.user_id = "B", "bob"
    team.load_session(force=True)
    with sqlite3.connect(db) as conn:
        (memory,) = conn.execute("SELECT memory FROM team_sessions WHERE session_id = 'B'").fetchone()
    assert list(json.loads(memory)["runs"]) == ["A"]  # what agno saved in bob's row

    ours = SqliteStorage("team_sessions", db_file=db, mode="team")
    assert ours.history("B") == []
    assert [m.content for m in ours.history("A") if m.role == "user"] == ["alice's secret question"]
    report = to_agno3(db, db, workers=0)
    assert any("'B'" in p and "'A'" in p for p in report.problems)

    def runs() -> list[tuple[str, str, str]]:
        with sqlite3.connect(db) as conn:
            return conn.execute(
                "SELECT session_id, user_id, json_extract(run_data, '$.input.input_content') FROM agno_runs"
                " ORDER BY session_id, run_index"
            ).fetchall()

    assert runs() == [("A", "alice", "alice's secret question")]
    team.storage = storage = AgnoSqliteStorage(table_name="team_sessions", db_file=db, mode="team")
    team.run("bob's question")
    again = to_agno3(db, db, workers=0)
    assert again.total("runs_removed") == 0
    assert runs() == [("A", "alice", "alice's secret question"), ("B", "bob", "bob's question")]
    ours.close()


def test_a_users_memory_copied_into_each_session_row_is_one_agno3_memory(tmp_path: Path) -> None:
    """agno 1.8.4 AgentMemory with a memory table: every session row of the user holds a copy of the
    user's memories, without ids. agno 3 gets the memory once, under the table's id."""
    from agno.agent import Agent
    from agno.memory.agent import AgentMemory
    from agno.memory.db.sqlite import SqliteMemoryDb
    from agno.memory.memory import Memory as V1Memory
    from agno.memory.row import MemoryRow
    from agno.storage.sqlite import SqliteStorage as AgnoSqliteStorage

    from devkit.fake_model import FakeModel

    db = str(tmp_path / "src.db")
    memories = SqliteMemoryDb(table_name="memory", db_file=db)
    memories.create()
    memories.upsert_memory(
        MemoryRow(memory=V1Memory(memory="alice likes tea", input="I like tea").to_dict(), user_id="alice")
    )
    for sid in ("s1", "s2", "s3"):
        storage = AgnoSqliteStorage(table_name="agent_sessions", db_file=db, mode="agent")
        memory = AgentMemory(db=memories, user_id="alice")
        memory.load_user_memories()
        agent = Agent(
            agent_id="a",
            model=FakeModel(prefix="a"),
            memory=memory,
            storage=storage,
            session_id=sid,
            user_id="alice",
            telemetry=False,
            monitoring=False,
        )
        agent.run(f"hello from {sid}")
        storage.db_engine.dispose()
    with sqlite3.connect(db) as conn:
        copies = [json.loads(m).get("memories") for (m,) in conn.execute("SELECT memory FROM agent_sessions")]
        (table_id,) = conn.execute("SELECT id FROM memory").fetchone()
    assert all(c and c[0]["memory"] == "alice likes tea" for c in copies)  # what agno wrote: three copies
    dst = str(tmp_path / "dst.db")
    for _ in range(2):  # and the same after a rerun
        to_agno3(db, dst, workers=0)
        with sqlite3.connect(dst) as conn:
            rows = conn.execute("SELECT memory_id, memory, user_id FROM agno_memories").fetchall()
        assert rows == [(table_id, '"alice likes tea"', "alice")]


@pytest.mark.parametrize("target", ["sqlite", "postgres"])
def test_a_copy_agno3_changed_is_kept_when_the_memory_table_gains_its_memory(
    tmp_path: Path, target: str, request: pytest.FixtureRequest
) -> None:
    """A session's copy of a memory (AgentMemory's list, no id) is replaced by the memory-table row of the same
    user and text; a copy agno 3 changed since is that memory no more: kept, and said, by a dry run alike."""
    from agno_storage import SqliteStorage
    from agno_storage.models import AgentSession

    src = str(tmp_path / "src.db")
    store = SqliteStorage(table_name="agent_sessions", db_file=src, mode="agent")
    for sid, text in (("s1", "likes tea"), ("s2", "lives in Rome")):
        memories = [{"memory": text, "last_updated": 1700000000}]
        store.upsert(AgentSession(session_id=sid, agent_id="a", user_id="alice", memory={"memories": memories}))
    store.close()
    if target == "sqlite":
        dst, schema, table = str(tmp_path / "dst.db"), None, "agno_memories"

        def run(sql: str) -> list[Any]:
            with sqlite3.connect(dst) as conn:
                return conn.execute(sql).fetchall()

        texts = f"SELECT memory, user_id FROM {table} ORDER BY memory"
        changed, tea = "'\"likes green tea\"'", "memory LIKE '%tea%'"
    else:
        import psycopg

        dst, schema = request.getfixturevalue("pg_server").dsn, "copy_changed"
        table = f"{schema}.agno_memories"

        def run(sql: str) -> list[Any]:
            with psycopg.connect(dst, autocommit=True) as conn:
                cur = conn.execute(sql)
                return cur.fetchall() if cur.description else []

        run(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        texts = f"SELECT memory #>> '{{}}', user_id FROM {table} ORDER BY 1"
        changed, tea = "to_jsonb('likes green tea'::text)", "memory::text LIKE '%tea%'"
    to_agno3(src, dst, workers=0, dst_schema=schema)
    run(f"UPDATE {table} SET memory = {changed}, updated_at = 1800000000 WHERE {tea}")
    with sqlite3.connect(src) as conn:  # agno 1.x's memory table gains both memories, under ids of its own
        conn.execute("CREATE TABLE memory (id TEXT PRIMARY KEY, user_id TEXT, memory TEXT, created_at, updated_at)")
        for mid, text in (("m1", "likes tea"), ("m2", "lives in Rome")):
            conn.execute(
                "INSERT INTO memory VALUES (?, 'alice', ?, 1700000100, 1700000100)", (mid, json.dumps({"memory": text}))
            )
    conn.close()
    dry = to_agno3(src, dst, workers=0, dst_schema=schema, dry_run=True)
    real = to_agno3(src, dst, workers=0, dst_schema=schema)
    assert [r[0].strip('"') for r in run(texts)] == ["likes green tea", "likes tea", "lives in Rome"]
    assert {r[1] for r in run(texts)} == {"alice"}
    kept = [p for p in real.problems if "agno 3 changed it" in p]
    assert len(kept) == 1 and "memory-table row 'm1'" in kept[0], real.problems
    assert dry.problems == real.problems and dry.modes == real.modes
    assert real.modes["memory_table"].memories == 2


@pytest.mark.parametrize("target", ["sqlite", "postgres"])
def test_the_newest_copy_of_a_memory_wins_and_agno3s_own_change_is_kept(
    tmp_path: Path, target: str, request: pytest.FixtureRequest
) -> None:
    """Memory v2 rows hold every user's memories as they were when each session was saved: the copy with the
    latest time wins whatever order the sessions are read in, and a rerun never puts back an older text over
    one agno 3 changed since."""
    from agno_storage import SqliteStorage
    from bench import harness, sessions

    src = str(tmp_path / "src.db")
    store = SqliteStorage(table_name="agent_sessions", db_file=src, mode="agent")

    def memory(text: str, when: str) -> dict[str, Any]:
        return {"memories": {"alice": {"m1": {"memory_id": "m1", "memory": text, "topics": [], "last_updated": when}}}}

    for i, (sid, created, text, when) in enumerate(
        (
            ("A", 100, "alice lives in Paris", "2024-01-10T00:00:00"),
            ("B", 500, "alice lives in Rome", "2024-01-05T00:00:00"),
        )
    ):
        d = sessions.agno_session(i, n_runs=1)
        d["memory"] = {**d["memory"], **memory(text, when)}
        store.upsert(harness.ours_session(d, session_id=sid, user_id="alice", created_at=created))
    store.close()

    if target == "sqlite":
        dst, schema = str(tmp_path / "dst.db"), None

        def run(sql: str) -> list[Any]:
            with sqlite3.connect(dst) as conn:
                return conn.execute(sql).fetchall()

        texts = "SELECT memory FROM agno_memories"
    else:
        import psycopg

        dst, schema = request.getfixturevalue("pg_server").dsn, "newest_copy"

        def run(sql: str) -> list[Any]:
            with psycopg.connect(dst, autocommit=True) as conn:
                cur = conn.execute(sql)
                return cur.fetchall() if cur.description else []

        texts = "SELECT memory #>> '{}' FROM newest_copy.agno_memories"
        run("DROP SCHEMA IF EXISTS newest_copy CASCADE")
    to_agno3(src, dst, workers=0, dst_schema=schema)
    assert [r[0].strip('"') for r in run(texts)] == ["alice lives in Paris"]
    table = "agno_memories" if schema is None else f"{schema}.agno_memories"
    changed = "'\"alice lives in Berlin\"'" if schema is None else "to_jsonb('alice lives in Berlin'::text)"
    run(f"UPDATE {table} SET memory = {changed}, updated_at = 2000000000")
    with sqlite3.connect(src) as conn:  # the 1.x app saves session B again
        conn.execute(
            "UPDATE agent_sessions SET session_data = '{\"session_name\": \"renamed\"}' WHERE session_id = 'B'"
        )
    assert to_agno3(src, dst, workers=0, dst_schema=schema).total("sessions") == 1
    assert [r[0].strip('"') for r in run(texts)] == ["alice lives in Berlin"]
