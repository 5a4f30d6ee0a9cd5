"""doctor's ``bad_conversation``: rows whose conversation ``history``, ``search`` and ``usage`` cannot read.

Each row is planted in a file a real writer made (agno 1.8.4 through its
own store or this package's adapter, agno-golang v0.1.6's Agent and Team:
the fixtures, or a run on the fake model here), damaged in one place with
SQL, and checked to break ``history`` before doctor is asked about it.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agno_storage import CorruptRowError, InvalidInputError, Mode
from agno_storage.cli import main
from agno_storage.ops.db import open_database, open_store
from agno_storage.ops.doctor import PROBLEM, DoctorReport, diagnose
from agno_storage.ops.tables import Layout, list_tables
from tests.agno_runner import TABLES, close_storages, run_turn
from tests.team_runs import run_team, run_workflow_v2
from tests.test_compat_go import FIXTURES
from tests.test_ops_prune_doctor import RUNS_DDL, pg  # noqa: F401

KIND = "bad_conversation"
#: Files agno 1.8.4 and agno-golang v0.1.6 wrote (fixtures/MANIFEST.md), each with conversations in it.
WRITTEN = [
    "agno_agent.db",
    "agno_team.db",
    "agno_workflow.db",
    "agno_workflow_v2.db",
    "agno_team_default_mode.db",
    "agno_workflow_default_mode.db",
    "agno_workflow_v2_default_mode.db",
    "go_agent.db",
    "go_team.db",
    "go_workflow.db",
    "go_workflow_v2.db",
    "go_agent_conversation.db",
    "go_team_conversation.db",
]


def copied(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    shutil.copy(FIXTURES / name, path)
    return path


def damage(path: Path, statement: str, params: tuple[Any, ...] = ()) -> None:
    conn = sqlite3.connect(path)
    assert conn.execute(statement, params).rowcount == 1
    conn.commit()
    conn.close()


def doctor(path: Path) -> DoctorReport:
    with open_database(str(path), lenient_text=True) as db:
        return diagnose(db, str(path))


def problems(report: DoctorReport) -> set[tuple[str, str | None, str | None, str | None]]:
    return {(f.kind, f.table, f.session_id, f.column) for f in report.findings if f.severity == PROBLEM}


def delegation(member_id: str) -> list[tuple[str, dict[str, Any]]]:
    """A leader's turn that hands the task to ``member_id`` (coordinate mode)."""
    return [
        ("transfer_task_to_member", {"member_id": member_id, "task_description": "a task", "expected_output": "a line"})
    ]


def history_fails(path: Path, table: str, mode: Mode, session_id: str) -> CorruptRowError:
    store = open_store(str(path), table, mode)
    try:
        with pytest.raises(CorruptRowError) as info:
            store.history(session_id)
    finally:
        store.close()
    return info.value


SET = "UPDATE {table} SET {column} = json_set({column}, ?, json(?)) WHERE session_id = ?"


@pytest.mark.parametrize(
    ("fixture", "table", "mode", "statement", "params", "column"),
    [
        pytest.param(
            "agno_agent.db",
            "agent_sessions",
            Mode.AGENT,
            SET.format(table="agent_sessions", column="memory"),
            ("$.runs", "42", "agent-02"),
            "memory",
            id="agno-memory-runs-a-number",
        ),
        pytest.param(
            "agno_agent.db",
            "agent_sessions",
            Mode.AGENT,
            SET.format(table="agent_sessions", column="memory"),
            ("$.runs[1].response.messages[1]", '"not a message"', "agent-02"),
            "memory",
            id="agno-message-not-an-object",
        ),
        pytest.param(
            "agno_team.db",
            "team_sessions",
            Mode.TEAM,
            SET.format(table="team_sessions", column="memory"),
            ("$.runs[0].response.messages[0].role", "5", "team-02"),
            "memory",
            id="agno-team-role-a-number",
        ),
        pytest.param(
            "agno_workflow.db",
            "workflow_sessions",
            Mode.WORKFLOW,
            SET.format(table="workflow_sessions", column="memory"),
            ("$.runs[0]", "[1, 2]", "workflow-08"),
            "memory",
            id="agno-v1-workflow-run-a-list",
        ),
        pytest.param(
            "agno_workflow_v2.db",
            "workflow_v2_sessions",
            Mode.WORKFLOW_V2,
            SET.format(table="workflow_v2_sessions", column="runs"),
            ("$[0].step_responses", "7", "workflow_v2-00"),
            "runs",
            id="agno-v2-workflow-steps-a-number",
        ),
        pytest.param(
            "go_team_conversation.db",
            "team_sessions",
            Mode.TEAM,
            "UPDATE team_sessions SET team_data = json_remove(team_data, '$.messages[2].role') WHERE session_id = ?",
            ("team-1",),
            "team_data",
            id="go-team-message-without-role",
        ),
        pytest.param(
            "agno_agent.db",
            "agent_sessions",
            Mode.AGENT,
            "UPDATE agent_sessions SET memory = json_set(memory, '$.runs[0].response.messages[1].content', "
            "json(?)) WHERE session_id = ?",
            ("[" * 1000 + "]" * 1000, "agent-02"),
            None,
            id="agno-content-nested-past-any-json-writer",
        ),
    ],
)
def test_doctor_finds_a_session_row_whose_conversation_history_cannot_read(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fixture: str,
    table: str,
    mode: Mode,
    statement: str,
    params: tuple[Any, ...],
    column: str | None,
) -> None:
    """One row of a real writer's file damaged inside its JSON (the JSON still decodes, of the column's type):
    the one problem doctor finds, named by table, session and column, with the message history's error has."""
    path = copied(tmp_path, fixture)
    session_id = params[-1]
    damage(path, statement, params)
    error = history_fails(path, table, mode, session_id)
    assert (error.table, error.session_id, error.column) == (table, session_id, column)

    report = doctor(path)
    assert problems(report) == {(KIND, table, session_id, column)}
    assert [f.message for f in report.findings if f.kind == KIND] == [str(error)]
    assert main(["doctor", str(path), "--json"]) == 3
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False
    assert [f for f in data["findings"] if f["kind"] == KIND] == [
        {"severity": "problem", "kind": KIND, "message": str(error), "table": table, "session_id": session_id}
        | {"column": column}
    ]
    assert main(["doctor", str(path)]) == 3
    shown = capsys.readouterr().out
    where = f"{table}.{column}" if column else table
    assert f"problem: {where} session {session_id!r}: {error}" in shown
    assert shown.rstrip().endswith("problems found")


@pytest.mark.parametrize(
    ("item", "session_id"),
    [
        pytest.param('"first question"', "agent-new", id="a-string-of-a-session-only-agent-runs-holds"),
        pytest.param("[1]", "agent-existing", id="a-list-of-a-session-with-a-row"),
    ],
)
def test_doctor_finds_a_go_agent_run_whose_messages_history_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], item: str, session_id: str
) -> None:
    """A Go Agent's ``agent_runs`` row whose ``messages`` is a JSON array (what export, copy and the old check
    ask of it) holding an item that is not an object."""
    path = copied(tmp_path, "go_agent_conversation.db")
    damage(
        path,
        "UPDATE agent_runs SET messages = json_set(messages, '$[0]', json(?)) WHERE id = "
        "(SELECT id FROM agent_runs WHERE session_id = ? ORDER BY created_at DESC, rowid DESC LIMIT 1)",
        (item, session_id),
    )
    error = history_fails(path, "agent_sessions", Mode.AGENT, session_id)
    assert (error.table, error.session_id, error.column) == ("agent_runs", session_id, "messages")

    report = doctor(path)
    assert problems(report) == {(KIND, "agent_runs", session_id, "messages")}
    assert [f.message for f in report.findings if f.kind == KIND] == [str(error)]
    assert main(["doctor", str(path)]) == 3
    assert f"problem: agent_runs.messages session {session_id!r}: {error}" in capsys.readouterr().out


def test_doctor_reports_every_broken_row_of_a_table_once(tmp_path: Path) -> None:
    """Several rows broken in one table: each is one finding; a row whose JSON does not decode is a
    ``bad_value`` only, and the healthy rows are no finding."""
    path = copied(tmp_path, "agno_agent.db")
    memory_set = SET.format(table="agent_sessions", column="memory")
    damage(path, memory_set, ("$.runs", '"runs"', "agent-00"))
    damage(path, memory_set, ("$.runs[0].response.messages[0]", "null", "agent-07"))
    damage(path, memory_set, ("$.messages", "{}", "agent-04"))
    damage(path, "UPDATE agent_sessions SET memory = '{\"runs\": [' WHERE session_id = ?", ("agent-08",))
    damage(
        path,
        "UPDATE agent_sessions SET memory = json_set(memory, '$.runs[0].response.messages', json('[1]')), "
        "agent_data = '[]' WHERE session_id = ?",
        ("agent-13",),
    )
    report = doctor(path)
    assert problems(report) == {
        (KIND, "agent_sessions", "agent-00", "memory"),
        (KIND, "agent_sessions", "agent-07", "memory"),
        (KIND, "agent_sessions", "agent-04", "memory"),
        ("bad_value", "agent_sessions", "agent-08", "memory"),
        ("bad_value", "agent_sessions", "agent-13", "agent_data"),
    }
    assert len(report.findings) == 5
    for sid in ("agent-00", "agent-07", "agent-04"):
        history_fails(path, "agent_sessions", Mode.AGENT, sid)


def test_doctor_finds_a_broken_member_run_of_a_real_agno_team(tmp_path: Path) -> None:
    """An agno 1.8.4 Team whose leader delegated to a member: healthy as written; a message of the member's run
    (``member_responses``) that is not an object is found."""
    path = tmp_path / "team.db"
    try:
        run_team(str(path), "s", "coordinate", [delegation("alpha")], ["hello"])
    finally:
        close_storages()
    assert not [f for f in doctor(path).findings if f.kind == KIND]
    damage(
        path,
        SET.format(table="team_sessions", column="memory"),
        ("$.runs[0].member_responses[0].messages[1]", "3", "s"),
    )
    error = history_fails(path, "team_sessions", Mode.TEAM, "s")
    with sqlite3.connect(path) as conn:
        (member_run,) = conn.execute(
            "SELECT memory ->> '$.runs[0].member_responses[0].run_id' FROM team_sessions"
        ).fetchone()
    assert f"message[1] of run {member_run!r}" in str(error)
    assert problems(doctor(path)) == {(KIND, "team_sessions", "s", "memory")}


@pytest.mark.parametrize("fixture", WRITTEN)
def test_no_bad_conversation_in_what_agno_and_agno_golang_wrote(fixture: str, tmp_path: Path) -> None:
    """Every file agno 1.8.4 and agno-golang v0.1.6 wrote for the fixtures: history reads each session, and
    doctor finds no conversation it cannot read."""
    report = doctor(copied(tmp_path, fixture))
    assert report.tables
    assert not [f for f in report.findings if f.kind in (KIND, "bad_usage")]


def test_no_bad_conversation_in_real_agno_runs(tmp_path: Path) -> None:
    """agno 1.8.4's Agent, Team and both Workflows on the fake model, two turns each through agno's own
    SqliteStorage; a Team whose leader delegates and a two-step v2 Workflow through this package's adapter."""
    agno_db, ours_team, ours_flow = tmp_path / "agno.db", tmp_path / "team.db", tmp_path / "flow.db"
    try:
        for kind in TABLES:
            for question in ("first", "second"):
                run_turn(kind, "agno", str(agno_db), f"{kind}-1", "user-1", question)
        run_team(str(ours_team), "t", "coordinate", [delegation("beta")], ["a", "b"])
        run_workflow_v2(str(ours_flow), "w", ["a", "b"])
    finally:
        close_storages()
    for path in (agno_db, ours_team, ours_flow):
        report = doctor(path)
        assert report.tables and report.ok, report.findings
        assert not [f for f in report.findings if f.kind == KIND]


# --- PostgreSQL ------------------------------------------------------------------


def test_doctor_finds_bad_conversations_on_postgres(pg: Any, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    """agno 1.8.4's agent sessions (the fixture's) and a Go Agent's runs moved to PostgreSQL: healthy; one
    session's jsonb damaged is found. A run's messages damaged too are not: on PostgreSQL history, search and
    usage do not read agent_runs (agno-golang keeps it in SQLite), so it would be a false alarm."""
    url, schema, conn = pg
    source = open_store(str(FIXTURES / "agno_agent.db"), "agent_sessions", Mode.AGENT)
    target = open_store(url, "agent_sessions", Mode.AGENT, schema)
    for session in source.list():
        try:
            target.upsert(session)
        except InvalidInputError:
            assert session.session_id in ("agent-01", "agent-03", "agent-15")  # JSON with a NUL: not for jsonb
    source.close()
    conn.execute(RUNS_DDL.format(schema=schema))
    with sqlite3.connect(FIXTURES / "go_agent_conversation.db") as go:
        columns = "id, session_id, user_id, run_name, run_data, user_message, agent_message, messages, metrics"
        for row in go.execute(f"SELECT {columns}, created_at, updated_at FROM agent_runs"):
            conn.execute(f"INSERT INTO {schema}.agent_runs VALUES ({', '.join(['%s'] * 11)})", row)
    with open_database(url, schema) as db:
        assert not [f for f in diagnose(db).findings if f.severity == PROBLEM]

    conn.execute(
        f'UPDATE {schema}.agent_runs SET messages = \'["hello"]\', metrics = \'{{"input_tokens": "many"}}\' '
        "WHERE id = '00000000-0000-4000-8000-000000000002'"
    )
    target.search("hello")  # the damaged run is not read there: nothing raises
    target.usage()
    with open_database(url, schema) as db:
        assert not [f for f in diagnose(db).findings if f.severity == PROBLEM]

    conn.execute(
        f"UPDATE {schema}.agent_sessions SET memory = jsonb_set(memory, '{{runs,0,response,messages,1}}', '7') "
        "WHERE session_id = 'agent-02'"
    )
    with pytest.raises(CorruptRowError):
        target.history("agent-02")
    target.close()
    with open_database(url, schema) as db:
        report = diagnose(db)
    assert problems(report) == {(KIND, "agent_sessions", "agent-02", "memory")}
    assert main(["doctor", url, "--schema", schema, "--json"]) == 3
    data = json.loads(capsys.readouterr().out)
    assert {(f["kind"], f["session_id"]) for f in data["findings"] if f["severity"] == PROBLEM} == {(KIND, "agent-02")}


def test_doctor_notes_each_agno_index_a_postgres_table_lacks(pg: Any, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    """A table agno 1.8.4's own PostgresStorage made: each of its indexes dropped is a ``missing_index`` note
    (exit 0) saying how to make it again; with none left ``tables`` shows the layout as unknown; a renamed
    table's indexes, under their old names, are named for renaming."""
    pytest.importorskip("sqlalchemy")
    from agno.storage.postgres import PostgresStorage as AgnoStorage

    url, schema, conn = pg
    agno = AgnoStorage(
        table_name="agent_sessions",
        schema=schema,
        db_url="postgresql+psycopg://" + url.partition("://")[2],
        mode="agent",  # type: ignore[arg-type]
    )
    agno.create()
    agno.db_engine.dispose()

    def notes() -> dict[str, str]:
        with open_database(url, schema) as db:
            report = diagnose(db)
        assert report.ok
        return {f.column or "": f.message for f in report.findings if f.kind == "missing_index"}

    assert notes() == {}
    conn.execute(f"DROP INDEX {schema}.ix_{schema}_agent_sessions_user_id")
    (message,) = notes().values()
    assert f"agno's index 'ix_{schema}_agent_sessions_user_id' on user_id is not there" in message
    conn.execute(message[message.index("CREATE INDEX") :])
    assert notes() == {}

    for column in ("user_id", "agent_id", "team_session_id"):
        conn.execute(f"DROP INDEX {schema}.ix_{schema}_agent_sessions_{column}")
    with open_database(url, schema) as db:
        assert [t.layout for t in list_tables(db).sessions] == [Layout.UNKNOWN]
    assert set(notes()) == {"user_id", "agent_id", "team_session_id"}
    assert main(["doctor", url, "--schema", schema]) == 0
    shown = capsys.readouterr().out
    assert f"note: agent_sessions.agent_id: agno's index 'ix_{schema}_agent_sessions_agent_id'" in shown
    for message in notes().values():
        conn.execute(message[message.index("CREATE INDEX") :])
    with open_database(url, schema) as db:
        assert [t.layout for t in list_tables(db).sessions] == [Layout.AGNO_POSTGRES]

    conn.execute(f"ALTER TABLE {schema}.agent_sessions RENAME TO kept_sessions")
    renames = notes()
    assert set(renames) == {"user_id", "agent_id", "team_session_id"}
    for message in renames.values():
        conn.execute(message[message.index("ALTER INDEX") :])
    assert notes() == {}


def usage_fails(path: Path, table: str, mode: Mode) -> CorruptRowError:
    store = open_store(str(path), table, mode)
    try:
        with pytest.raises(CorruptRowError) as info:
            store.usage()
    finally:
        store.close()
    return info.value


@pytest.mark.parametrize(
    ("fixture", "statement", "params", "where"),
    [
        pytest.param(
            "agno_agent.db",
            SET.format(table="agent_sessions", column="memory"),
            ("$.runs[0].response.metrics.input_tokens", '"many"', "agent-02"),
            ("agent_sessions", "agent-02", "memory"),
            id="agno-run-tokens-a-string",
        ),
        pytest.param(
            "go_agent_conversation.db",
            'UPDATE agent_runs SET metrics = \'{"input_tokens": [1, "two"]}\' WHERE id = '
            "(SELECT id FROM agent_runs WHERE session_id = ? ORDER BY created_at, rowid LIMIT 1)",
            ("agent-existing",),
            ("agent_runs", "agent-existing", "metrics"),
            id="go-run-tokens-not-numbers",
        ),
    ],
)
def test_doctor_finds_a_row_whose_run_figures_usage_cannot_read(
    tmp_path: Path, fixture: str, statement: str, params: tuple[str, ...], where: tuple[str, str, str]
) -> None:
    """A row whose conversation history reads but whose run figures usage() stops at is a ``bad_usage``."""
    path = copied(tmp_path, fixture)
    damage(path, statement, params)
    store = open_store(str(path), "agent_sessions", Mode.AGENT)
    try:
        assert store.history(where[1])  # the conversation is still read
    finally:
        store.close()
    error = usage_fails(path, "agent_sessions", Mode.AGENT)
    assert (error.table, error.session_id, error.column) == where
    report = doctor(path)
    assert problems(report) == {("bad_usage", *where)}
    assert [f.message for f in report.findings if f.kind == "bad_usage"] == [str(error)]
