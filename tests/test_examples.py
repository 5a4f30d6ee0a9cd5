"""The examples run as a newcomer would run them, and print what they promise."""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agno_storage import AgentSession, SqliteStorage, open_storage
from agno_storage.cli import main as cli_main
from tests.pgserver import PgServer, create_database, require_pg

ROOT = Path(__file__).resolve().parent.parent


#: Put first on PYTHONPATH, it makes ``import pytest`` fail as in an install without the test extra.
NO_PYTEST = "raise ModuleNotFoundError(\"No module named 'pytest'\", name='pytest')\n"


@pytest.fixture
def without_pytest(tmp_path: Path) -> dict[str, str]:
    """Environment in which a child process cannot import pytest (or tests/, which needs it)."""
    shadow = tmp_path / "no_pytest"
    shadow.mkdir()
    for name in ("pytest", "_pytest"):
        (shadow / f"{name}.py").write_text(NO_PYTEST.replace("pytest", name))
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(shadow), os.environ.get("PYTHONPATH")]))}


def run(script: str, *args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_demo_writes_lists_and_reads_back_all_four_modes(tmp_path: Path) -> None:
    out = run("demo.py", str(tmp_path / "demo.db"))
    for mode in ("agent", "team", "workflow", "workflow_v2"):
        assert any(line.split()[:1] == [mode] for line in out.splitlines()), out
    assert "5 sessions in" in out


def test_the_demo_database_reads_back_as_a_conversation_and_is_healthy(tmp_path: Path) -> None:
    """The README's next steps on the demo's file: history, search and doctor find an agno conversation there."""
    db = tmp_path / "demo.db"
    run("demo.py", str(db))
    with SqliteStorage(table_name="agent_sessions", db_file=db, read_only=True) as store:
        said = [(m.role, m.content) for m in store.history("agent-s1", user_id="ada")]
        assert said == [("user", "What is WAL?"), ("assistant", "A journal mode.")]
        assert [hit.session_id for hit in store.search("WAL")] == ["agent-s1"]
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert cli_main(["doctor", str(db)]) == 0, printed.getvalue()


def test_an_agno_agent_resumes_the_demos_agent_session(tmp_path: Path) -> None:
    """The README's agno snippet on the demo's file: agno loads agent-s1's run and sends it to the model."""
    pytest.importorskip("agno")
    from agno.agent import Agent

    from agno_storage.agno import SqliteStorage as AgnoSqliteStorage
    from devkit.fake_model import FakeModel

    db = tmp_path / "demo.db"
    run("demo.py", str(db))
    model = FakeModel()
    storage = AgnoSqliteStorage(table_name="agent_sessions", db_file=str(db), user_id="ada")
    agent = Agent(
        model=model,
        storage=storage,
        user_id="ada",
        session_id="agent-s1",
        add_history_to_messages=True,
        telemetry=False,
        monitoring=False,
    )
    agent.run("And then?")
    sent = [(m["role"], m["content"]) for m in model.calls[-1]]
    assert sent == [("user", "What is WAL?"), ("assistant", "A journal mode."), ("user", "And then?")]


def test_agno_agent_example_prints_the_stored_session(tmp_path: Path, without_pytest: dict[str, str]) -> None:
    pytest.importorskip("agno")
    out = run("agno_agent.py", env={"TMPDIR": str(tmp_path), **without_pytest})
    replies, _, stored = out.partition("\nstored in ")
    # One Agent, two runs: the second reply is the model's second call.
    assert "reply #1: What is SQLite?" in replies and "reply #2: And what did I just ask?" in replies
    db_file, _, summary = stored.partition(":\n")
    assert Path(db_file).is_relative_to(tmp_path) and Path(db_file).is_file(), out
    printed = json.loads(summary)
    ids = (printed["session_id"], printed["user_id"], printed["agent_id"])
    assert ids[:2] == ("example-session", "example-user") and printed["runs"] == 2
    # Another user on the same session_id: refused, and only their own message reached the model.
    assert (
        "other-user on example-session: refused (OwnershipError); user messages sent to the model: ['What did they ask?']"
        in replies
    )
    assert printed["messages"] == [
        "user: What is SQLite?",
        "assistant: reply #1: What is SQLite?",
        "user: And what did I just ask?",
        "assistant: reply #2: And what did I just ask?",
    ]
    # What it printed is what the file holds.
    with contextlib.closing(sqlite3.connect(db_file)) as conn:
        rows = conn.execute(
            "SELECT session_id, user_id, agent_id, created_at, updated_at, json_array_length(memory, '$.runs')"
            " FROM agent_sessions"
        ).fetchall()
    assert rows == [(*ids, printed["created_at"], printed["updated_at"], printed["runs"])]


#: One line of examples/postgres_agent.py: engine, session_id, memory, created_at.
_STORED = re.compile(r"^(sqlite|postgresql):\s+(\S+) (\{.*\}) (\d+)$", re.MULTILINE)


def test_postgres_example_moves_a_session_by_url(pg_server: PgServer) -> None:
    before = int(time.time())
    out = run("postgres_agent.py", env={"AGNO_STORAGE_PG_URL": pg_server.dsn})
    after = int(time.time())
    printed = {m[1]: (m[2], ast.literal_eval(m[3]), int(m[4])) for m in _STORED.finditer(out)}
    assert sorted(printed) == ["postgresql", "sqlite"], out
    for session_id, memory, created_at in printed.values():
        assert session_id == "demo-1"
        assert memory == {"runs": [{"input": "hi", "content": "hello"}]}
        assert before <= created_at <= after


def test_postgres_example_leaves_the_servers_own_sessions_alone(pg_server: PgServer) -> None:
    """Pointed at a database that already keeps agent_sessions, the example removes only what it wrote."""
    url = create_database(pg_server, "example_existing_sessions")
    with open_storage(url, "agent_sessions", mode="agent") as store:
        store.upsert(AgentSession(session_id="kept", user_id="bob", agent_id="helper"))
    run("postgres_agent.py", env={"AGNO_STORAGE_PG_URL": url})
    with open_storage(url, "agent_sessions", mode="agent") as store:
        assert [s.session_id for s in store.list()] == ["kept"]


#: One turn of examples/agno_postgres.py: the question, the reply, the earlier questions loaded.
_TURN = re.compile(r"^> (.*)\n(.*)\n  \(history loaded: (.*)\)$", re.MULTILINE)


def turns(out: str) -> list[tuple[str, str, list[str]]]:
    return [(m[1], m[2], ast.literal_eval(m[3])) for m in _TURN.finditer(out)]


def test_agno_postgres_example_moves_the_agent_to_postgresql_by_its_url(pg_server: PgServer, tmp_path: Path) -> None:
    pytest.importorskip("agno")
    import psycopg

    sqlite_url = f"sqlite:///{tmp_path}/agno.db"
    pg_url = create_database(pg_server, "example_agno_postgres")
    urls = [sqlite_url, pg_url, pg_url]
    # TMPDIR: the script's default SQLite file, were the URL ignored, is the test's own.
    outs = [run("agno_postgres.py", env={"AGNO_STORAGE_URL": url, "TMPDIR": str(tmp_path)}) for url in urls]
    assert [out.splitlines()[0] for out in outs] == [f"storage: {url}" for url in urls]
    (on_sqlite,), (first, second) = turns(outs[0]), turns(outs[1]) + turns(outs[2])
    for question, reply, _ in (on_sqlite, first, second):
        assert re.fullmatch(r"Hello, pid \d+", question) and reply == f"reply #1: {question}"
    # PostgreSQL starts empty (the URL moves the agent, not its data); the next run resumes there.
    assert (on_sqlite[2], first[2], second[2]) == ([], [], [first[0]])
    assert (tmp_path / "agno.db").is_file()
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT session_id, user_id, jsonb_array_length(memory->'runs') FROM ai.agent_sessions")
        assert rows.fetchall() == [("example-session", "example-user", 2)]


def test_postgres_example_starts_its_own_server_without_pytest(without_pytest: dict[str, str]) -> None:
    require_pg()
    env = {**without_pytest, "AGNO_STORAGE_PG_URL": ""}
    out = run("postgres_agent.py", env=env)
    assert sorted(m[1] for m in _STORED.finditer(out)) == ["postgresql", "sqlite"], out


def test_agno_postgres_example_runs_two_turns_on_a_local_server(without_pytest: dict[str, str]) -> None:
    pytest.importorskip("agno")
    require_pg()
    out = run("agno_postgres.py", "--local-postgres", env=without_pytest)
    assert re.fullmatch(r"storage: postgresql://\S+", out.splitlines()[0]), out
    assert turns(out) == [
        ("Hello from PostgreSQL", "reply #1: Hello from PostgreSQL", []),
        ("What did I say before?", "reply #1: What did I say before?", ["Hello from PostgreSQL"]),
    ]
