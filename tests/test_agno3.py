"""to-agno3: agno 1.8.4 and agno-golang sessions moved into agno 3.1.10's tables, and agno 3 resuming them.

The sources are written by real agno 1.8.4 (canned model, tests/agno_runner.py)
and by agno-golang v0.1.6 (fixtures/go_*_conversation.db); the targets are read
and resumed by real agno 3.1.10 in its own venv (devkit/agno3_env.py).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agno_storage.agno3 import ddl, to_agno3
from agno_storage.agno3.fields import (
    AGENT_EVENTS,
    AGENT_RUN_FIELDS,
    MESSAGE_FIELDS,
    TEAM_EVENTS,
    TEAM_RUN_FIELDS,
    TOOL_FIELDS,
    WORKFLOW_EVENTS,
    WORKFLOW_RUN_FIELDS,
)
from agno_storage.cli import main
from devkit import agno3_env

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

#: kind in agno 1.8.4 -> (session id, agno 3 kind, entity id)
KINDS = {
    "agent": ("s-agent", "agent", "historian"),
    "team": ("s-team", "team", "pair"),
    "workflow": ("s-workflow", "workflow", "history-wf"),
    "workflow_v2": ("s-workflow_v2", "workflow", "pipeline-wf"),
}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_source(db: str) -> None:
    from tests.agno_runner import close_storages, run_turn

    try:
        for kind, (session_id, _, _) in KINDS.items():
            for message in ("first question", "second question"):
                run_turn(kind, "agno", db, session_id, "user-1", message)
    finally:
        close_storages()


@pytest.fixture(scope="session")
def agno1_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file agno 1.8.4 wrote: two turns of an Agent, a Team and both Workflow kinds."""
    path = tmp_path_factory.mktemp("agno1") / "agno1.db"
    _write_source(str(path))
    return path


@pytest.fixture(scope="session")
def migrated(agno1_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, str]]:
    """agno1_db moved by the CLI into a fresh file; (target, source digest before, after)."""
    before = _digest(agno1_db)
    target = tmp_path_factory.mktemp("agno3") / "agno3.db"
    assert main(["to-agno3", str(agno1_db), str(target)]) == 0
    yield target, before, _digest(agno1_db)


def _source_runs(db: Path) -> dict[str, int]:
    """Runs per session as agno 1.8.4 stored them (memory.runs, or the v2 runs column, step agent runs too)."""
    counts: dict[str, int] = {}
    with sqlite3.connect(db) as conn:
        for table in ("agent_sessions", "team_sessions", "workflow_sessions"):
            for sid, memory in conn.execute(f"SELECT session_id, memory FROM {table}"):
                runs = json.loads(memory or "null") or {}
                counts[sid] = counts.get(sid, 0) + len(runs.get("runs") or [])
        for sid, runs in conn.execute("SELECT session_id, runs FROM workflow_v2_sessions"):
            counts[sid] = counts.get(sid, 0) + len(json.loads(runs or "[]"))
    return counts


@pytest.mark.parametrize("kind", list(KINDS))
def test_agno3_resumes_each_migrated_session_with_its_history(
    kind: str, migrated: tuple[Path, str, str], agno1_db: Path, tmp_path: Path
) -> None:
    target, before, after = migrated
    assert before == after  # the source is never written
    db = tmp_path / "copy.db"
    db.write_bytes(target.read_bytes())
    session_id, kind3, entity = KINDS[kind]
    result = agno3_env.resume(kind3, str(db), session_id, "user-1", entity, "third question")
    sent = [(m["role"], m["content"]) for m in result["calls"][-1] if m["role"] != "system"]
    # The earlier conversation reached agno 3's model whole and in order: each question and the reply 1.x
    # stored for it (the canned model answers "<kind> #<its call>: <message>").
    if kind3 != "workflow":
        earlier = [(role, text) for q in ("first", "second") for role, text in _turn(kind, f"{q} question")]
        assert sent == [*earlier, ("user", "third question")]
        assert result["history"][:4] == [list(pair) for pair in earlier]
    else:  # agno 3 sends a Workflow's history as one block ahead of the message
        ((role, text),) = sent
        assert role == "user" and text.startswith(_WORKFLOW_HISTORY[kind]), text
    # get_session returns every run 1.x had (a v2 Workflow's step agent runs included), and the new one.
    assert result["runs_before"] == _source_runs(agno1_db)[session_id]
    assert result["runs_after"] == result["runs_before"] + 1
    assert "agno_v1" in result["metadata_keys"]


def _turn(kind: str, question: str) -> list[tuple[str, str]]:
    return [("user", question), ("assistant", f"{kind} #1: {question}")]


#: How agno 3 lists the two 1.x runs of each Workflow to its model: a v1 run has no input, and the
#: second reply of tests/agno_runner.py's HistoryWorkflow quotes the first run agno 1.8.4 loaded.
_WORKFLOW_HISTORY = {
    "workflow": "<workflow_history_context>\n[Workflow Run-1]\nWorkflow output: workflow #1: first question\n\n"
    "[Workflow Run-2]\nWorkflow output: workflow #1: earlier: workflow #1: first question\nsecond question\n\n",
    "workflow_v2": "<workflow_history_context>\n[Workflow Run-1]\nUser input: first question\n"
    "Workflow output: workflow_v2 #1: first question\n\n[Workflow Run-2]\nUser input: second question\n"
    "Workflow output: workflow_v2 #1: second question\n\n",
}


_LOADS_EVERY_RUN = (
    "import json, sys\n"
    "from agno.db.sqlite import SqliteDb\n"
    "from agno.db.base import SessionType\n"
    "db = SqliteDb(db_file=sys.argv[1])\n"
    "out = {}\n"
    "for t in SessionType:\n"
    "    raw = db.get_sessions(session_type=t, deserialize=False)\n"
    "    stored = {s['session_id']: len(s.get('runs') or []) for s in (raw[0] if isinstance(raw, tuple) else raw)}\n"
    "    for s in db.get_sessions(session_type=t):\n"
    "        out[s.session_id] = [stored[s.session_id], len(s.runs or [])]\n"
    "print(json.dumps(out))\n"
)


def test_get_sessions_lists_every_migrated_session(migrated: tuple[Path, str, str], agno1_db: Path) -> None:
    target, _, _ = migrated
    loaded = json.loads(agno3_env.run_code(_LOADS_EVERY_RUN, str(target)).strip().splitlines()[-1])
    assert {sid: stored for sid, (stored, _) in loaded.items()} == _source_runs(agno1_db)


def _fixture_runs(db: Path) -> dict[str, int]:
    """Runs per session of a one-table fixture, read as the file holds them: the run objects of memory.runs,
    or of a v2 table's runs column."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        ((table,),) = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        column = "runs" if table == "workflow_v2_sessions" else "memory"
        counts: dict[str, int] = {}
        for sid, text in conn.execute(f"SELECT session_id, {column} FROM {table}"):
            value = json.loads(text) if text else None
            runs = value if column == "runs" else (value or {}).get("runs")
            counts[sid] = 1 if isinstance(runs, dict) else sum(isinstance(r, dict) for r in runs or [])
    return counts


@pytest.mark.parametrize(
    "fixture",
    [
        "agno_agent.db",
        "agno_team.db",
        "agno_workflow.db",
        "agno_workflow_v2.db",
        "go_agent.db",
        "go_team.db",
        "go_workflow.db",
        "go_workflow_v2.db",
    ],
)
def test_agno3_loads_every_run_of_every_migrated_session(fixture: str, tmp_path: Path) -> None:
    """agno 3 skips a stored run whose dict lacks the key of its kind (``agent_id``, ``team_id``) and fails to
    load a workflow run whose ``metrics`` are not per step: neither may reach its tables."""
    target = tmp_path / "agno3.db"
    report = to_agno3(str(FIXTURES / fixture), str(target))
    loaded = json.loads(agno3_env.run_code(_LOADS_EVERY_RUN, str(target)).strip().splitlines()[-1])
    # Every session, each with every run the file holds (a v2 ``runs`` that is one object is one run).
    source = _fixture_runs(FIXTURES / fixture)
    assert {sid: stored for sid, (stored, _) in loaded.items()} == source and sum(source.values()) > 0
    assert (report.total("sessions"), report.total("runs")) == (len(source), sum(source.values()))
    assert {sid: runs for sid, (_, runs) in loaded.items()} == {sid: runs for sid, (runs, _) in loaded.items()}


def test_tables_are_the_ones_agno3_creates(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs.db"
    code = (
        "import sys\nfrom agno.db.sqlite import SqliteDb\n"
        "db = SqliteDb(db_file=sys.argv[1])\n"
        "for t in ('sessions', 'runs', 'memories'):\n"
        "    db._get_table(table_type=t, create_table_if_not_found=True)\n"
    )
    agno3_env.run_code(code, str(theirs))
    ours = tmp_path / "ours.db"
    to_agno3(str(FIXTURES / "go_team_conversation.db"), str(ours))

    def layout(path: Path) -> tuple[set[tuple[str, str]], list[tuple[str, str]]]:
        with sqlite3.connect(path) as conn:
            sql = set(conn.execute("SELECT name, sql FROM sqlite_master WHERE name LIKE 'agno_%' OR name LIKE 'idx_%'"))
            versions = list(conn.execute("SELECT table_name, version FROM agno_schema_versions ORDER BY 1"))
        return sql, versions

    assert layout(ours) == layout(theirs)


def test_field_names_are_agno3s() -> None:
    code = (
        "import json\nfrom dataclasses import fields\n"
        "from agno.run.agent import RunOutput\nfrom agno.run.team import TeamRunOutput\n"
        "from agno.run.workflow import WorkflowRunOutput\nfrom agno.models.message import Message\n"
        "from agno.models.response import ToolExecution\n"
        "print(json.dumps({c.__name__: list(getattr(c, 'model_fields', None) or [f.name for f in fields(c)]) for c in "
        "(RunOutput, TeamRunOutput, WorkflowRunOutput, Message, ToolExecution)}))\n"
    )
    names = json.loads(agno3_env.run_code(code).strip().splitlines()[-1])
    assert set(names["RunOutput"]) == AGENT_RUN_FIELDS
    assert set(names["TeamRunOutput"]) == TEAM_RUN_FIELDS
    assert set(names["WorkflowRunOutput"]) == WORKFLOW_RUN_FIELDS
    assert set(names["Message"]) == MESSAGE_FIELDS
    assert set(names["ToolExecution"]) == TOOL_FIELDS


def test_event_names_are_agno3s() -> None:
    code = (
        "import json\nfrom agno.run.agent import RUN_EVENT_TYPE_REGISTRY as A\n"
        "from agno.run.team import TEAM_RUN_EVENT_TYPE_REGISTRY as T\n"
        "from agno.run.workflow import WORKFLOW_RUN_EVENT_TYPE_REGISTRY as W\n"
        "print(json.dumps([list(A), list(T), list(W)]))\n"
    )
    agent, team, workflow = json.loads(agno3_env.run_code(code).strip().splitlines()[-1])
    assert (set(agent), set(team), set(workflow)) == (AGENT_EVENTS, TEAM_EVENTS, WORKFLOW_EVENTS)


def _go_conversation(db: Path, kind: str, session_id: str) -> list[tuple[str, str]]:
    """(role, content) of each turn as agno-golang stored it: a Go Agent's agent_runs, a Go Team's team_data."""
    with sqlite3.connect(db) as conn:
        if kind == "agent":
            query = "SELECT user_message, agent_message FROM agent_runs WHERE session_id = ? ORDER BY rowid"
            turns = conn.execute(query, (session_id,)).fetchall()
            return [pair for user, reply in turns for pair in (("user", user), ("assistant", reply))]
        (team_data,) = conn.execute(
            "SELECT team_data FROM team_sessions WHERE session_id = ?", (session_id,)
        ).fetchone()
    return [(m["role"], m["content"]) for m in json.loads(team_data)["messages"]]


@pytest.mark.parametrize(
    ("fixture", "kind", "session_id", "entity", "runs"),
    [
        ("go_agent_conversation.db", "agent", "agent-existing", "agent-1", 2),
        ("go_agent_conversation.db", "agent", "agent-new", "agent-1", 2),
        ("go_team_conversation.db", "team", "team-1", "go-team", 3),
    ],
)
def test_agno3_resumes_go_sessions(
    fixture: str, kind: str, session_id: str, entity: str, runs: int, tmp_path: Path
) -> None:
    source = tmp_path / fixture
    source.write_bytes((FIXTURES / fixture).read_bytes())
    before = _digest(source)
    target = tmp_path / "agno3.db"
    report = to_agno3(str(source), str(target))
    assert _digest(source) == before
    assert report.total("runs") == {"go_agent_conversation.db": 4, "go_team_conversation.db": 3}[fixture]
    result = agno3_env.resume(kind, str(target), session_id, "user-1", entity, "next question")
    # The whole Go conversation reached agno 3's model, in order: a session the Go Agent wrote no row for
    # (agent-new, runs in agent_runs only) as much as one it did.
    sent = [(m["role"], m["content"]) for m in result["calls"][-1] if m["role"] != "system"]
    assert sent == [*_go_conversation(source, kind, session_id), ("user", "next question")]
    assert result["runs_before"] == runs


def test_dry_run_writes_nothing_and_reruns_skip_what_is_there(agno1_db: Path, tmp_path: Path) -> None:
    target = tmp_path / "agno3.db"
    dry = to_agno3(str(agno1_db), str(target), dry_run=True)
    assert not target.exists()
    assert dry.total("sessions") == 4 and dry.total("runs") == sum(_source_runs(agno1_db).values())
    # Interrupted after the first batch: that batch is in, the rest comes on the next run.
    seen: list[int] = []

    def stop(done: int, total: int) -> None:
        seen.append(done)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        to_agno3(str(agno1_db), str(target), batch_size=1, progress=stop)
    resumed = to_agno3(str(agno1_db), str(target))
    assert resumed.total("unchanged") == 1 and resumed.total("sessions") == 3
    again = to_agno3(str(agno1_db), str(target))
    assert again.total("sessions") == 0 and again.total("unchanged") == 4
    with sqlite3.connect(target) as conn:
        assert conn.execute("SELECT COUNT(*) FROM agno_runs").fetchone()[0] == dry.total("runs")


def test_cli_dry_run_report(agno1_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "agno3.db"
    assert main(["to-agno3", str(agno1_db), str(target), "--dry-run", "--json"]) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert report["dry_run"] is True and report["modes"]["team"]["sessions"] == 1
    assert not target.exists()
    assert main(["to-agno3", str(tmp_path / "none.db"), str(target)]) == 2


def test_a_source_that_cannot_be_read_leaves_dst_as_it_was(tmp_path: Path) -> None:
    """agno 1.1's agent table (schema version 1): the error names it, and DST is not even made."""
    from agno_storage.errors import SchemaVersionError

    target = tmp_path / "agno3.db"
    with pytest.raises(SchemaVersionError) as refused:
        to_agno3(str(FIXTURES / "agno_agent_pre12.db"), str(target))
    assert refused.value.table == "agent_sessions"
    assert not target.exists()


def test_postgres_source_and_target(pg_server: Any, tmp_path: Path) -> None:
    from tests.agno_runner import close_storages, run_turn
    from tests.pgserver import create_database

    url = create_database(pg_server, "agno3_source_and_target")  # counts of its own: other tests write agno's tables
    try:
        for message in ("first question", "second question"):
            run_turn("agent", "agno", url, "pg-agent", "user-1", message)
            run_turn("team", "agno", url, "pg-team", "user-1", message)
    finally:
        close_storages()
    report = to_agno3(url, url)
    assert report.modes["agent"].runs == 2 and report.modes["team"].runs == 2
    for kind, session_id, entity in (("agent", "pg-agent", "historian"), ("team", "pg-team", "pair")):
        result = agno3_env.resume(kind, url, session_id, "user-1", entity, "third question")
        sent = [(m["role"], m["content"]) for m in result["calls"][-1] if m["role"] != "system"]
        assert sent == [*_turn(kind, "first question"), *_turn(kind, "second question"), ("user", "third question")]
        assert result["runs_before"] == 2
    assert ddl.SCHEMA_VERSION == "3.0.0"


def test_cli_workers_write_what_one_process_writes(agno1_db: Path, tmp_path: Path) -> None:
    """Real agno 1.8.4 sessions of every mode (team member runs, workflow steps): the same rows with two workers."""
    from tests.agno3_sources import run_delegating_team_turn

    source, alone, pooled = tmp_path / "agno1.db", tmp_path / "alone.db", tmp_path / "pooled.db"
    source.write_bytes(agno1_db.read_bytes())
    for question in ("first question", "second question"):  # a leader handing each turn to its two members
        run_delegating_team_turn(str(source), "s-members", "user-1", question)
    to_agno3(str(source), str(alone), batch_size=1, workers=0)
    assert main(["to-agno3", str(source), str(pooled), "--workers", "2"]) == 0
    with sqlite3.connect(alone) as conn:
        query = f"SELECT run_type, COUNT(parent_run_id) FROM {ddl.RUNS} WHERE session_id = 's-members' GROUP BY 1"
        assert dict(conn.execute(query).fetchall()) == {"team": 0, "agent": 4}
    for table in (ddl.SESSIONS, ddl.RUNS, ddl.MEMORIES):
        with sqlite3.connect(alone) as a, sqlite3.connect(pooled) as b:
            query = f"SELECT * FROM {table} ORDER BY 1"
            assert a.execute(query).fetchall() == b.execute(query).fetchall()
    with pytest.raises(SystemExit) as refused:
        main(["to-agno3", str(source), str(pooled), "--workers", "-1"])
    assert refused.value.code == 2
