"""prune of the sessions a Go Agent keeps only in agent_runs; doctor's findings and exit codes; both on PostgreSQL."""

from __future__ import annotations

import io
import itertools
import json
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from agno_storage import AgentSession, Mode, TeamSession
from agno_storage.cli import main
from agno_storage.errors import InvalidInputError
from agno_storage.ops.db import open_database, open_store
from agno_storage.ops.doctor import NOTE, PROBLEM, diagnose
from agno_storage.ops.export import export_table
from agno_storage.ops.prune import prune
from agno_storage.ops.select import Filters
from agno_storage.ops.tables import Layout, list_tables
from tests.support import BoundedProgress, sessions_table_named_agent_runs

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DAY = 86400
NOW = 1_800_000_000
_schemas = itertools.count()


def add_runs(conn: Any, table: str, runs: list[tuple[str, str, str | None, int | None, int | None]]) -> None:
    """Rows of agent_runs (id, session_id, user_id, created_at, updated_at) through a DB-API connection."""
    ph = "?" if isinstance(conn, sqlite3.Connection) else "%s"
    for run in runs:
        conn.execute(
            f"INSERT INTO {table} (id, session_id, user_id, created_at, updated_at) VALUES ({ph}, {ph}, {ph}, {ph}, {ph})",
            run,
        )


def run_ids(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {run[0] for run in conn.execute("SELECT id FROM agent_runs")}
    finally:
        conn.close()


def go_conversation(tmp_path: Path) -> Path:
    path = tmp_path / "conv.db"
    shutil.copy(FIXTURES / "go_agent_conversation.db", path)  # runs of agent-new, which has no session row
    return path


# --- prune: sessions kept only in agent_runs --------------------------------------


def test_prune_removes_run_only_sessions_by_the_age_of_their_newest_run(tmp_path: Path) -> None:
    path = go_conversation(tmp_path)
    conn = sqlite3.connect(path)
    add_runs(
        conn,
        "agent_runs",
        [
            ("live-1", "live", "user-1", NOW - 90 * DAY, None),  # an old first run ...
            ("live-2", "live", "user-1", NOW - 90 * DAY, NOW - DAY),  # ... of a conversation still going on
            ("ada-1", "ada-old", "ada", NOW - 60 * DAY, None),
            ("mixed-1", "mixed", "ada", NOW - 60 * DAY, None),
            ("mixed-2", "mixed", "bob", NOW - 60 * DAY, None),
            ("undated", "undated", "ada", None, None),  # no time at all: kept, as a session with none
        ],
    )
    conn.commit()
    conn.close()
    url = str(path)
    with open_database(url) as db:
        assert prune(db, url, "agent_sessions", 30 * DAY, user="ada", dry_run=True, now=NOW).run_sessions == (
            "ada-old",
        )
        dry = prune(db, url, "agent_sessions", 30 * DAY, dry_run=True, now=NOW)
        assert dry.run_sessions == ("ada-old", "agent-new", "mixed")
        assert dry.session_ids == ("agent-existing",)
        assert dry.runs == 2 + 1 + 2 + 2  # agent-existing's, ada-old's, agent-new's, mixed's
        done = prune(db, url, "agent_sessions", 30 * DAY, now=NOW)
    assert (done.session_ids, done.run_sessions, done.runs) == (dry.session_ids, dry.run_sessions, dry.runs)
    conn = sqlite3.connect(path)
    left = sorted(r[0] for r in conn.execute("SELECT id FROM agent_runs"))
    conn.close()
    assert left == ["live-1", "live-2", "undated"]


def test_a_run_with_no_time_keeps_its_session_so_an_export_of_the_old_ones_then_a_prune_loses_nothing(
    tmp_path: Path,
) -> None:
    """Its age unknown, a run with no time went with its session's old runs, and ``export --until`` with the
    same cutoff never held it: "export the old sessions, then prune" lost it. Such a session is kept now, as a
    session row with no time is."""
    path = go_conversation(tmp_path)
    conn = sqlite3.connect(path)
    add_runs(
        conn,
        "agent_runs",
        [
            ("half-1", "half-dated", "ada", NOW - 60 * DAY, None),
            ("half-2", "half-dated", "ada", None, None),  # another program's run, no time
            ("old-1", "old", "ada", NOW - 60 * DAY, None),
        ],
    )
    conn.commit()
    conn.close()
    url, cutoff = str(path), NOW - 30 * DAY
    before = run_ids(path)
    out = io.BytesIO()
    with open_database(url) as db:
        export_table(db, "agent_sessions", out, filters=Filters(until=cutoff))
        dry = prune(db, url, "agent_sessions", 30 * DAY, dry_run=True, now=NOW)
        done = prune(db, url, "agent_sessions", 30 * DAY, now=NOW)
    exported = {line["agent_run"]["id"] for line in map(json.loads, out.getvalue().splitlines()) if "agent_run" in line}
    after = run_ids(path)
    assert before - after <= exported
    assert {"half-1", "half-2"} <= after and "old-1" not in after
    assert dry.run_sessions == done.run_sessions == ("agent-new", "old")


def test_prune_of_another_modes_table_leaves_the_go_agents_runs(tmp_path: Path) -> None:
    path = go_conversation(tmp_path)
    url = str(path)
    team = open_store(url, "team_sessions", Mode.TEAM)
    team.upsert(TeamSession(session_id="t", team_id="x"))
    team.close()
    with open_database(url) as db:
        summary = prune(db, url, "team_sessions", 0, now=int(time.time()) + DAY)
    assert summary.session_ids == ("t",) and summary.run_sessions == () and summary.runs == 0
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM agent_runs").fetchone()[0] == 4
    conn.close()


def test_a_session_a_go_agent_goes_on_with_is_kept_however_old_its_row(tmp_path: Path) -> None:
    """A Go Agent never updates the session row of a conversation it continues: it adds runs. A run newer
    than the cutoff keeps the session and every run of it."""
    path = go_conversation(tmp_path)
    conn = sqlite3.connect(path)
    (row_age,) = conn.execute(
        "SELECT COALESCE(updated_at, created_at) FROM agent_sessions WHERE session_id = 'agent-existing'"
    ).fetchone()
    add_runs(conn, "agent_runs", [("today", "agent-existing", None, NOW, None)])
    conn.commit()
    runs_before = conn.execute("SELECT COUNT(*) FROM agent_runs WHERE session_id = 'agent-existing'").fetchone()[0]
    conn.close()
    assert row_age < NOW - 30 * DAY
    url = str(path)
    with open_database(url) as db:
        dry = prune(db, url, "agent_sessions", 30 * DAY, dry_run=True, now=NOW)
        done = prune(db, url, "agent_sessions", 30 * DAY, now=NOW)
    assert dry.session_ids == done.session_ids == ()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM agent_sessions WHERE session_id = 'agent-existing'").fetchone()[0] == 1
    assert (
        conn.execute("SELECT COUNT(*) FROM agent_runs WHERE session_id = 'agent-existing'").fetchone()[0] == runs_before
    )
    conn.close()


def test_pruning_a_team_table_never_takes_agent_runs_of_the_same_id(tmp_path: Path) -> None:
    path = go_conversation(tmp_path)
    url = str(path)
    team = open_store(url, "team_sessions", Mode.TEAM)
    team.upsert(TeamSession(session_id="agent-new", team_id="x"))  # the id of a Go Agent's live conversation
    team.close()
    conn = sqlite3.connect(path)
    before = conn.execute("SELECT COUNT(*) FROM agent_runs").fetchone()[0]
    conn.close()
    with open_database(url) as db:
        summary = prune(db, url, "team_sessions", 0, now=int(time.time()) + DAY)
    assert summary.session_ids == ("agent-new",) and summary.runs == 0
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM agent_runs").fetchone()[0] == before
    conn.close()


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_negative_age_is_refused_before_anything_is_removed(tmp_path: Path, dry_run: bool) -> None:
    """An age of -1 day has no meaning: the cutoff would be tomorrow, and every session (one written a
    moment ago included) would go."""
    url = str(tmp_path / "s.db")
    store = open_store(url, "agent_sessions", Mode.AGENT)
    store.upsert(AgentSession(session_id="just-written", agent_id="x"))
    store.close()
    with open_database(url) as db, pytest.raises(InvalidInputError, match="older_than"):
        prune(db, url, "agent_sessions", -DAY, dry_run=dry_run)
    store = open_store(url, "agent_sessions", Mode.AGENT)
    assert [s.session_id for s in store.list()] == ["just-written"]
    store.close()


def test_a_row_without_a_session_id_is_left_and_prune_ends(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    url = str(path)
    store = open_store(url, "agent_sessions", Mode.AGENT)
    store.upsert_many([AgentSession(session_id=f"s{i}", agent_id="x") for i in range(3)])
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE agent_sessions SET session_id = NULL WHERE session_id = 's1'")  # Go's DDL lets SQLite hold it
    conn.commit()
    conn.close()
    with open_database(url) as db:
        summary = prune(db, url, "agent_sessions", 0, now=int(time.time()) + DAY)
    assert summary.session_ids == ("s0", "s2")
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT session_id FROM agent_sessions").fetchall() == [(None,)]
    conn.close()


def test_a_run_without_a_session_id_is_left_and_prune_ends(tmp_path: Path) -> None:
    """Another program's agent_runs that lets session_id be NULL: the dry run listed a session 'None', and the
    prune deleted nothing of it (``IN (NULL)`` matches no row) and chose it again for ever."""
    path = go_conversation(tmp_path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute(
        "UPDATE sqlite_master SET sql = replace(sql, 'session_id TEXT NOT NULL', 'session_id TEXT')"
        " WHERE name = 'agent_runs'"
    )
    conn.commit()
    conn.close()
    conn = sqlite3.connect(path)
    add_runs(conn, "agent_runs", [("no-session", None, "ada", NOW - 60 * DAY, None)])  # type: ignore[list-item]
    conn.commit()
    conn.close()
    url = str(path)
    with open_database(url) as db:
        dry = prune(db, url, "agent_sessions", 30 * DAY, dry_run=True, now=NOW)
        done = prune(db, url, "agent_sessions", 30 * DAY, now=NOW, progress=BoundedProgress())
    assert dry.run_sessions == done.run_sessions == ("agent-new",)
    assert dry.runs == done.runs == 4
    assert run_ids(path) == {"no-session"}


def test_the_prune_command_lists_the_run_only_sessions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = go_conversation(tmp_path)
    assert main(["prune", str(path), "--table", "agent_sessions", "--older-than", "30d", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["session_ids"], data["run_sessions"], data["runs"]) == (["agent-existing"], ["agent-new"], 4)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM agent_runs").fetchone()[0] == 0
    conn.close()


@pytest.mark.parametrize("dry_run", [["--dry-run"], []], ids=["dry run", "prune"])
def test_a_table_another_program_named_outside_plain_sql_is_refused_by_the_dry_run_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dry_run: list[str]
) -> None:
    """Deletes go through the store, which takes plain SQL names only: the dry run says so as the prune does,
    instead of listing sessions the prune would then refuse to delete."""
    path = go_conversation(tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute('CREATE TABLE "old sessions" AS SELECT * FROM agent_sessions')
    conn.close()
    assert main(["prune", str(path), "--table", "old sessions", "--older-than", "30d", *dry_run]) == 2
    assert "plain SQL identifier" in capsys.readouterr().err
    with sqlite3.connect(path) as conn:
        assert conn.execute('SELECT COUNT(*) FROM "old sessions"').fetchone()[0] > 0
    conn.close()


@pytest.mark.parametrize("name", ["agent_runs", "AGENT_RUNS"])
def test_prune_and_history_refuse_a_sessions_table_named_agent_runs_and_change_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """agent_runs (one table in SQLite, whatever the case) is where a Go Agent keeps its runs: a sessions table
    an earlier build let a store make there is refused by name, as the store refuses it, before its sessions are
    read as runs (the prune went on and exited 0)."""
    path = tmp_path / "f.db"
    store = open_store(str(path), "old", Mode.AGENT, None)
    store.upsert(AgentSession(session_id="s", agent_id="a", created_at=1, updated_at=1))
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"ALTER TABLE old RENAME TO {name}")
    conn.close()
    before = path.read_bytes()
    for argv in (["prune", "--older-than", "1d"], ["prune", "--older-than", "1d", "--dry-run"], ["history"]):
        command, *rest = argv
        tail = ["s"] if command == "history" else rest
        assert main([command, str(path), "--table", name, *tail]) == 2
        assert "where a Go Agent keeps its runs" in capsys.readouterr().err
    assert path.read_bytes() == before


def file_bytes(path: Path) -> dict[str, bytes]:
    """The file and its -wal, as they are on disk."""
    return {p.name: p.read_bytes() for p in path.parent.glob(path.name + "*")}


@pytest.mark.parametrize("beside", [True, False], ids=["beside_an_agent_table", "alone"])
@pytest.mark.parametrize("name", ["agent_runs", "AGENT_RUNS"])
def test_every_command_reading_runs_says_a_sessions_table_named_agent_runs_is_not_runs_and_how_to_rename_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, beside: bool
) -> None:
    """A sessions table an earlier build let be named agent_runs is not read as a Go Agent's runs (export stopped
    on "no such column: r.id", to-agno3 on "no such column: id"; prune of agent_sessions deleted its sessions too,
    as runs and as sessions a Go Agent kept there alone, exit 0; to-agno3 skipped an upper-case one): each
    command that would read runs says what the table is and the SQL that renames it, exit 2, the file unchanged."""
    path = tmp_path / "old.db"
    sessions_table_named_agent_runs(path, name, beside=beside)
    before = file_bytes(path)
    commands = [
        ["export", str(path), "--table", name, "-o", str(tmp_path / "out.jsonl")],
        ["copy", str(path), str(tmp_path / "copy.db"), "--table", name],
        ["history", str(path), "--table", "agent_sessions", "s1"],
        ["search", str(path), "--table", "agent_sessions", "zebras"],
        ["usage", str(path), "--table", "agent_sessions"],
        ["to-agno3", str(path), str(tmp_path / "agno3.db")],
    ]
    if beside:
        commands += [
            ["export", str(path), "--table", "agent_sessions", "-o", str(tmp_path / "out.jsonl")],
            ["copy", str(path), str(tmp_path / "copy.db"), "--table", "agent_sessions"],
            ["prune", str(path), "--table", "agent_sessions", "--older-than", "1d", "--dry-run"],
            ["prune", str(path), "--table", "agent_sessions", "--older-than", "1d"],
        ]
    for argv in commands:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert f"table {name!r} is not agno-golang's runs table" in err, (argv, err)
        assert f"ALTER TABLE {name} RENAME TO agent_sessions_renamed" in err, (argv, err)
    assert file_bytes(path) == before
    assert not (tmp_path / "copy.db").exists() and not (tmp_path / "agno3.db").exists()


def test_tables_counts_a_go_agents_runs_table_spelt_in_upper_case_as_its_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SQLite takes ``AGENT_RUNS`` for ``agent_runs``, as a Go Agent and history() do: tables listed it as another
    program's table, and doctor checked none of its runs."""
    path = go_conversation(tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE agent_runs RENAME TO runs_moved")  # SQLite takes no rename to another case
        conn.execute("ALTER TABLE runs_moved RENAME TO AGENT_RUNS")
    conn.close()
    assert main(["tables", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["others"] == [] and report["unfit_runs"] is None
    assert report["runs"] is not None and report["runs"]["rows"] > 0


@pytest.mark.parametrize("name", ["agent_runs", "AGENT_RUNS"])
def test_tables_and_doctor_show_a_sessions_table_named_agent_runs_as_what_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """tables listed it as "agent_runs: 2 runs, 2 of them with no session row" (or, upper-case, as a sessions
    table no command opens), and doctor reported its sessions as runs whose run_data is not JSON: both now say
    it is not the Go runs table, and how to rename it; doctor counts that a problem."""
    path = tmp_path / "old.db"
    sessions_table_named_agent_runs(path, name, beside=True)
    assert main(["tables", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in report["sessions"]] == ["agent_sessions"]
    assert report["runs"] is None and report["others"] == [name]
    assert report["unfit_runs"]["name"] == name
    assert f"ALTER TABLE {name} RENAME TO agent_sessions_renamed" in report["unfit_runs"]["reason"]
    assert main(["tables", str(path)]) == 0
    out = capsys.readouterr().out
    assert "with no session row" not in out and f"{name}: table {name!r} is not agno-golang's runs table" in out
    assert main(["doctor", str(path), "--json"]) == 3
    findings = json.loads(capsys.readouterr().out)["findings"]
    assert [(f["severity"], f["kind"], f["table"]) for f in findings] == [(PROBLEM, "unfit_runs", name)]


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
def test_a_table_the_store_refuses_is_refused_by_the_dry_run_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dry_run: list[str]
) -> None:
    """A time declared TEXT (SQLite would convert what is written there): the store refuses the table, so the
    prune stops with exit 2, and its dry run listed the sessions it "would remove" and exited 0."""
    path = tmp_path / "f.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE agent_sessions (session_id TEXT PRIMARY KEY, user_id TEXT, memory TEXT, session_data TEXT,"
        " extra_data TEXT, created_at TEXT, updated_at INTEGER, agent_id TEXT, agent_data TEXT, team_session_id TEXT)"
    )
    conn.execute("INSERT INTO agent_sessions VALUES ('a', 'u', '{}', '{}', '{}', 1000, 1000, 'ag', '{}', NULL)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    assert main(["prune", str(path), "--table", "agent_sessions", "--older-than", "30d", *dry_run]) == 2
    out, err = capsys.readouterr()
    assert "remove" not in out and "created_at is declared 'TEXT'" in err
    assert path.read_bytes() == before


# --- doctor --------------------------------------------------------------------


def test_doctor_exits_0_with_only_notes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = go_conversation(tmp_path)
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE agent_sessions ADD COLUMN other_writer TEXT")
    conn.commit()
    conn.close()
    assert main(["doctor", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "note: agent_runs: 2 of 4 agent_runs rows have no session row" in shown
    assert "note: agent_sessions: columns of other writers, left alone: other_writer" in shown
    assert shown.rstrip().endswith("all is well")


def test_doctor_finds_a_failed_integrity_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = go_conversation(tmp_path)
    conn = sqlite3.connect(path)
    # The index on user_id is said to be on agent_id: its entries no longer match the rows.
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute(
        "UPDATE sqlite_master SET sql = replace(sql, '(user_id)', '(agent_id)') WHERE name = 'idx_agent_sessions_user_id'"
    )
    conn.commit()
    conn.close()
    with open_database(str(path)) as db:
        report = diagnose(db, str(path))
    assert report.integrity != "ok"
    assert [f.kind for f in report.findings if f.severity == PROBLEM] == ["integrity"]
    assert main(["doctor", str(path)]) == 3
    assert "problems found" in capsys.readouterr().out


def test_doctor_calls_a_file_it_cannot_read_a_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "notadb.db"
    path.write_bytes(b"SQLite format 2 -- not this one " * 64)
    assert main(["doctor", str(path), "--json"]) == 3
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and [f["kind"] for f in data["findings"]] == ["unreadable"]


def test_doctor_finds_every_kind_of_bad_value(tmp_path: Path) -> None:
    """One planted per kind of value a column must not hold; each found by session_id and column."""
    path = tmp_path / "agent.db"
    store = open_store(str(path), "agent_sessions", Mode.AGENT)
    store.upsert(AgentSession(session_id="good", user_id="u", agent_id="a", memory={"ok": True}))
    store.close()
    conn = sqlite3.connect(path)
    insert = "INSERT INTO agent_sessions (session_id, user_id, agent_id, {}) VALUES ({})"
    planted = {
        ("blob", "memory"): insert.format("memory", "'blob', 'u', 'a', x'7b7d'"),
        ("number", "session_data"): insert.format("session_data", "'number', 'u', 'a', 42"),
        ("string", "agent_data"): insert.format("agent_data", """'string', 'u', 'a', '"text"'"""),
        ("float-time", "updated_at"): insert.format("updated_at", "'float-time', 'u', 'a', 1.5"),
        ("blob-user", "user_id"): insert.format("created_at", "'blob-user', x'6162', 'a', 1"),
        ("", "session_id"): insert.format("created_at", "'', 'u', 'a', 1"),
    }
    for statement in planted.values():
        conn.execute(statement)
    conn.commit()
    conn.close()
    with open_database(str(path), lenient_text=True) as db:
        report = diagnose(db, str(path))
    assert {(f.session_id, f.column) for f in report.findings if f.severity == PROBLEM} == set(planted)
    assert all(f.kind == "bad_value" and f.table == "agent_sessions" for f in report.findings)
    assert main(["doctor", str(path)]) == 3


# --- PostgreSQL ------------------------------------------------------------------

RUNS_DDL = (
    "CREATE TABLE {schema}.agent_runs (id TEXT PRIMARY KEY, session_id TEXT NOT NULL, user_id TEXT, run_name TEXT,"
    " run_data TEXT, user_message TEXT, agent_message TEXT, messages TEXT, metrics TEXT, created_at BIGINT,"
    " updated_at BIGINT)"
)


@pytest.fixture
def pg(pg_server: Any) -> Any:
    """(dsn, a fresh schema, an autocommit psycopg connection); the schema is dropped afterwards."""
    import psycopg

    schema = f"ops_{next(_schemas)}_{int(time.time() * 1000) % 10**8}"
    conn = psycopg.connect(pg_server.dsn, autocommit=True)
    conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield str(pg_server.dsn), schema, conn
    finally:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.close()


def test_tables_and_doctor_on_postgres(pg: Any, capsys: pytest.CaptureFixture[str]) -> None:
    url, schema, conn = pg
    agents = open_store(url, "agent_sessions", Mode.AGENT, schema)
    # Every JSON column holding a value: jsonb comes back from the driver decoded, and doctor reads its text.
    agents.upsert_many(
        [
            AgentSession(
                session_id=f"a{i}",
                user_id="u",
                agent_id="x",
                memory={"runs": [{"run_id": "r", "messages": [{"role": "user", "content": "hi"}]}]},
                agent_data={"name": "n"},
                session_data={"state": [1, 2**70]},
                extra_data={"k": None},
            )
            for i in range(3)
        ]
    )
    agents.close()
    teams = open_store(url, "team_sessions", Mode.TEAM, schema)
    teams.upsert(TeamSession(session_id="t", team_id="x", team_data={"messages": []}, memory={"runs": []}))
    teams.close()
    conn.execute(RUNS_DDL.format(schema=schema))
    add_runs(conn, f"{schema}.agent_runs", [("r1", "a0", "u", 1, 1), ("r2", "nobody", "u", 1, 1)])
    conn.execute(f"CREATE TABLE {schema}.notes (id INT)")

    with open_database(url, schema) as db:
        report = list_tables(db)
        assert [(t.name, t.mode, t.layout, t.version, t.rows) for t in report.sessions] == [
            ("agent_sessions", Mode.AGENT, Layout.AGNO_POSTGRES, 2, 3),
            ("team_sessions", Mode.TEAM, Layout.AGNO_POSTGRES, 2, 1),
        ]
        assert report.runs is not None and (report.runs.rows, report.runs.orphaned) == (2, 1)
        assert report.others == ("notes",)
        healthy = diagnose(db)
    assert healthy.ok and [f.kind for f in healthy.findings] == ["orphaned_runs"]
    assert healthy.findings[0].severity == NOTE and healthy.integrity is None
    assert main(["tables", url, "--schema", schema, "--json"]) == 0
    assert main(["doctor", url, "--schema", schema]) == 0
    capsys.readouterr()
    # A mistyped schema is no healthy database without tables.
    assert main(["doctor", url, "--schema", schema + "_typo"]) == 3
    assert f"the database has no schema {schema + '_typo'!r}" in capsys.readouterr().out
    assert main(["tables", url, "--schema", schema + "_typo"]) == 1  # not "no sessions table", exit 0
    assert f"no schema {schema + '_typo'!r}" in capsys.readouterr().err

    # jsonb keeps any JSON value: an array where agent_data holds an object is found.
    conn.execute(f"""UPDATE {schema}.agent_sessions SET agent_data = '[1, 2]' WHERE session_id = 'a1'""")
    conn.execute(f"ALTER TABLE {schema}.team_sessions DROP COLUMN team_session_id")
    with open_database(url, schema) as db:
        sick = diagnose(db)
    assert {(f.kind, f.table, f.session_id, f.column) for f in sick.findings if f.severity == PROBLEM} == {
        ("bad_value", "agent_sessions", "a1", "agent_data"),
        ("old_schema", "team_sessions", None, None),
    }
    assert main(["doctor", url, "--schema", schema, "--json"]) == 3
    assert json.loads(capsys.readouterr().out)["ok"] is False


def test_a_session_a_writer_updates_while_prune_waits_for_it_stays_on_postgres(pg: Any) -> None:
    """prune's batch locks the rows it chose (FOR UPDATE): one a writer holds is waited for and, updated by
    then, checked again and left."""
    import threading

    import psycopg

    url, schema, conn = pg
    store = open_store(url, "agent_sessions", Mode.AGENT, schema)
    store.upsert_many([AgentSession(session_id=s, user_id="u", agent_id="x") for s in ("chat", "stale")])
    store.close()
    conn.execute(f"UPDATE {schema}.agent_sessions SET created_at = 1, updated_at = 1")
    writer = psycopg.connect(url)
    writer.execute(f"UPDATE {schema}.agent_sessions SET updated_at = %s WHERE session_id = 'chat'", (NOW,))
    result: dict[str, Any] = {}

    def run() -> None:
        with open_database(url, schema) as db:
            result["summary"] = prune(db, url, "agent_sessions", 30 * DAY, schema=schema, now=NOW)

    pruner = threading.Thread(target=run)
    pruner.start()
    deadline = time.monotonic() + 20
    while True:  # until prune waits on the writer's row lock
        waiting = conn.execute(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%FOR UPDATE%'"
        ).fetchone()[0]
        if waiting:
            break
        if not pruner.is_alive() or time.monotonic() > deadline:
            writer.rollback()
            writer.close()
            pruner.join(30)
            pytest.fail("prune never waited for the writer's row lock")
        time.sleep(0.05)
    writer.commit()
    writer.close()
    pruner.join(30)
    assert result["summary"].session_ids == ("stale",)
    assert [r[0] for r in conn.execute(f"SELECT session_id FROM {schema}.agent_sessions")] == ["chat"]


def test_a_user_holding_nul_prunes_nothing_on_postgres_beside_agent_runs(pg: Any) -> None:
    """PostgreSQL text cannot hold U+0000: no session, and no session only agent_runs holds, is such a user's;
    prune finds none, as it does where there is no agent_runs and as export does."""
    url, schema, conn = pg
    store = open_store(url, "agent_sessions", Mode.AGENT, schema)
    store.upsert(AgentSession(session_id="old", user_id="u", agent_id="x"))
    store.close()
    conn.execute(f"UPDATE {schema}.agent_sessions SET created_at = 1, updated_at = 1")
    conn.execute(RUNS_DDL.format(schema=schema))
    add_runs(conn, f"{schema}.agent_runs", [("r-go-old", "go-old", "u", 1, 1)])
    with open_database(url, schema) as db:
        for dry_run in (True, False):
            summary = prune(db, url, "agent_sessions", DAY, user="u\x00", dry_run=dry_run, schema=schema, now=NOW)
            assert (summary.session_ids, summary.run_sessions, summary.runs) == ((), (), 0)
    assert [r[0] for r in conn.execute(f"SELECT id FROM {schema}.agent_runs")] == ["r-go-old"]


def test_an_age_that_is_no_number_is_refused_on_postgres(pg: Any) -> None:
    """An age of NaN seconds (``float('nan')``, an age computed from a missing value) passed ``older_than < 0``;
    on PostgreSQL every time is below NaN, and prune removed every session, one written a moment ago included."""
    url, schema, conn = pg
    store = open_store(url, "agent_sessions", Mode.AGENT, schema)
    store.upsert(AgentSession(session_id="just-written", agent_id="x"))
    store.close()
    with open_database(url, schema) as db:
        for dry_run in (True, False):
            with pytest.raises(InvalidInputError, match="older_than"):
                prune(db, url, "agent_sessions", float("nan"), dry_run=dry_run, schema=schema)  # type: ignore[arg-type]
    assert [r[0] for r in conn.execute(f"SELECT session_id FROM {schema}.agent_sessions")] == ["just-written"]


def test_prune_on_postgres_with_agent_runs_then_vacuum(pg: Any, capsys: pytest.CaptureFixture[str]) -> None:
    url, schema, conn = pg
    store = open_store(url, "agent_sessions", Mode.AGENT, schema)
    store.upsert_many([AgentSession(session_id=s, user_id="u", agent_id="x") for s in ("old", "new", "no-update")])
    store.close()
    for sid, created, updated in (
        ("old", 1, NOW - 40 * DAY),
        ("new", 1, NOW - DAY),
        ("no-update", NOW - 50 * DAY, None),
    ):
        conn.execute(
            f"UPDATE {schema}.agent_sessions SET created_at = %s, updated_at = %s WHERE session_id = %s",
            (created, updated, sid),
        )
    conn.execute(RUNS_DDL.format(schema=schema))
    add_runs(
        conn,
        f"{schema}.agent_runs",
        [
            ("r-old", "old", "u", 1, 1),
            ("r-new", "new", "u", 1, 1),  # an old run of a session updated yesterday: stays with it
            ("r-go-old", "go-old", "u", NOW - 40 * DAY, None),
            ("r-go-live", "go-live", "u", NOW - 40 * DAY, NOW - DAY),
        ],
    )
    with open_database(url, schema) as db:
        dry = prune(db, url, "agent_sessions", 30 * DAY, dry_run=True, schema=schema, now=NOW)
        assert (dry.session_ids, dry.run_sessions, dry.runs) == (("no-update", "old"), ("go-old",), 2)
        done = prune(db, url, "agent_sessions", 30 * DAY, schema=schema, now=NOW)
    assert (done.session_ids, done.run_sessions, done.runs) == (dry.session_ids, dry.run_sessions, dry.runs)
    assert [r[0] for r in conn.execute(f"SELECT session_id FROM {schema}.agent_sessions")] == ["new"]
    assert sorted(r[0] for r in conn.execute(f"SELECT id FROM {schema}.agent_runs")) == ["r-go-live", "r-new"]

    # --vacuum runs VACUUM on the table (PostgreSQL reports it in pg_stat_user_tables).
    conn.execute(f"UPDATE {schema}.agent_sessions SET updated_at = 1 WHERE session_id = 'new'")
    assert main(["prune", url, "--schema", schema, "--table", "agent_sessions", "--older-than", "1d", "--vacuum"]) == 0
    assert "removed 1 sessions" in capsys.readouterr().out
    vacuumed = None
    deadline = time.monotonic() + 10
    while vacuumed is None and time.monotonic() < deadline:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        vacuumed = conn.execute(
            "SELECT last_vacuum FROM pg_stat_user_tables WHERE schemaname = %s AND relname = 'agent_sessions'",
            (schema,),
        ).fetchone()[0]
        time.sleep(0.1 if vacuumed is None else 0)
    assert vacuumed is not None


@pytest.mark.parametrize("table", ["agent_sessions", "agent_runs"])
def test_doctor_calls_a_table_whose_owners_compare_case_blind_a_problem(
    tmp_path: Path, table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The store refuses such a table ('ALICE' would read alice's sessions); doctor said "all is well"."""
    path = go_conversation(tmp_path)
    with sqlite3.connect(path) as conn:
        ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
        assert "user_id TEXT" in ddl
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute(
            "UPDATE sqlite_master SET sql = ? WHERE name = ?",
            (ddl.replace("user_id TEXT", "user_id TEXT COLLATE NOCASE", 1), table),
        )
    assert main(["doctor", str(path)]) == 3
    assert f"problem: {table}: user_id compares by collation NOCASE" in capsys.readouterr().out


@pytest.mark.parametrize("declared", ["NUMERIC", "INTEGER"])
def test_doctor_calls_an_agent_runs_whose_owners_turn_into_numbers_a_problem(
    tmp_path: Path, declared: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """history, search and usage refuse such a table ('1.0' would read the runs of the user '1'); doctor said
    "all is well" of it."""
    path = go_conversation(tmp_path)
    with sqlite3.connect(path) as conn:
        ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'agent_runs'").fetchone()[0]
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute(
            "UPDATE sqlite_master SET sql = ? WHERE name = 'agent_runs'",
            (ddl.replace("user_id TEXT", f"user_id {declared}", 1),),
        )
    assert main(["doctor", str(path)]) == 3
    assert f"problem: agent_runs: user_id is declared '{declared}'" in capsys.readouterr().out


def test_doctor_calls_a_table_whose_declared_types_the_store_refuses_a_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A time declared TEXT (SQLite would store 1000 as '1000'): every command that opens the store refuses the
    table, and doctor said "all is well" of it while it was empty."""
    path = tmp_path / "f.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE agent_sessions (session_id TEXT PRIMARY KEY, user_id TEXT, memory TEXT, session_data TEXT,"
        " extra_data TEXT, created_at TEXT, updated_at INTEGER, agent_id TEXT, agent_data TEXT, team_session_id TEXT)"
    )
    conn.close()
    assert main(["doctor", str(path)]) == 3
    out = capsys.readouterr().out
    assert "problem: agent_sessions: " in out and "created_at is declared 'TEXT'" in out
    with open_database(str(path)) as db:
        assert [f.kind for f in diagnose(db, str(path)).findings] == ["unfit_type"]


def test_doctor_calls_a_postgres_table_whose_owners_compare_case_blind_a_problem(
    pg: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    url, schema, conn = pg
    store = open_store(url, "agent_sessions", Mode.AGENT, schema)
    store.upsert(AgentSession(session_id="s1", user_id="alice", agent_id="a"))
    store.close()
    conn.execute(
        "CREATE COLLATION IF NOT EXISTS case_blind (provider = icu, locale = 'und-u-ks-level2', deterministic = false)"
    )
    conn.execute(f"ALTER TABLE {schema}.agent_sessions ALTER COLUMN user_id TYPE character varying COLLATE case_blind")
    assert main(["doctor", url, "--schema", schema]) == 3
    assert "user_id compares by the nondeterministic collation 'case_blind'" in capsys.readouterr().out


def test_prune_and_doctor_refuse_a_postgres_agent_runs_whose_session_ids_compare_case_blind(
    pg: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """agent_runs.session_id of type citext: pruning the old session 'a' deleted the runs of the live session
    'A', and doctor said "all is well". Both refuse it, as on SQLite (COLLATE NOCASE)."""
    url, schema, conn = pg
    store = open_store(url, "agent_sessions", Mode.AGENT, schema)
    store.upsert_many([AgentSession(session_id=s, user_id="u", agent_id="x") for s in ("a", "A")])
    store.close()
    conn.execute(f"UPDATE {schema}.agent_sessions SET updated_at = 1 WHERE session_id = 'a'")
    conn.execute("CREATE EXTENSION IF NOT EXISTS citext")
    conn.execute(RUNS_DDL.format(schema=schema).replace("session_id TEXT", "session_id public.citext"))
    add_runs(conn, f"{schema}.agent_runs", [("r-A", "A", "u", NOW, NOW)])
    for dry in (["--dry-run"], []):
        command = ["prune", url, "--schema", schema, "--table", "agent_sessions", "--older-than", "1d", *dry]
        assert main(command) == 2
        out, err = capsys.readouterr()
        assert "remove" not in out and "session_id is of the type" in err and "agent_runs" in err
    assert [r[0] for r in conn.execute(f"SELECT id FROM {schema}.agent_runs")] == ["r-A"]
    assert main(["doctor", url, "--schema", schema]) == 3
    assert "problem: agent_runs: session_id is of the type" in capsys.readouterr().out


def test_a_postgres_sessions_table_named_agent_runs_is_read_as_runs_by_no_command(
    pg: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sessions table an earlier build let be made as agent_runs in a PostgreSQL schema, beside agent_sessions:
    no command reads its sessions as a Go Agent's runs; each says what it is and the SQL, schema-qualified, that
    renames it; prune deletes nothing, and tables and doctor show it."""
    from agno_storage.backends.postgres_ddl import create_statements
    from agno_storage.modes import SPECS

    url, schema, conn = pg
    store = open_store(url, "agent_sessions", Mode.AGENT, schema)
    store.upsert(AgentSession(session_id="s1", user_id="alice", agent_id="a"))
    store.close()
    for statement in create_statements("agent_runs", SPECS[Mode.AGENT], schema):
        conn.execute(statement)
    conn.execute(
        f"INSERT INTO {schema}.agent_runs (session_id, user_id, agent_id, created_at, updated_at)"
        " VALUES ('s1', 'alice', 'a', 1, 1), ('s2', NULL, 'a', 1, 1)"
    )
    conn.execute(f"UPDATE {schema}.agent_sessions SET updated_at = 1")
    rename = f'ALTER TABLE "{schema}"."agent_runs" RENAME TO agent_sessions_renamed'
    for argv in (
        ["export", url, "--schema", schema, "--table", "agent_sessions", "-o", "-"],
        ["prune", url, "--schema", schema, "--table", "agent_sessions", "--older-than", "1d", "--dry-run"],
        ["prune", url, "--schema", schema, "--table", "agent_sessions", "--older-than", "1d"],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "table 'agent_runs' is not agno-golang's runs table" in err and rename in err, (argv, err)
    assert conn.execute(f"SELECT count(*) FROM {schema}.agent_sessions").fetchone() == (1,)
    assert conn.execute(f"SELECT count(*) FROM {schema}.agent_runs").fetchone() == (2,)
    assert main(["tables", url, "--schema", schema, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["runs"] is None and rename in report["unfit_runs"]["reason"], report
    assert main(["doctor", url, "--schema", schema]) == 3
    assert rename in capsys.readouterr().out


def test_a_postgres_table_whose_owners_are_character_n_is_refused_by_every_command(
    pg: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """character(n) ignores trailing spaces ('alice' = 'alice '), as SQLite's RTRIM collation: doctor said "all
    is well", export --user handed over another owner's sessions and prune's dry run listed them."""
    url, schema, conn = pg
    store = open_store(url, "agent_sessions", Mode.AGENT, schema)
    store.upsert_many([AgentSession(session_id=s, user_id=u, agent_id="a") for s, u in (("a", "alice"), ("b", "x"))])
    store.close()
    conn.execute(f"ALTER TABLE {schema}.agent_sessions ALTER COLUMN user_id TYPE character(8)")
    conn.execute(f"UPDATE {schema}.agent_sessions SET updated_at = 1")
    assert main(["doctor", url, "--schema", schema]) == 3
    out = capsys.readouterr().out
    assert "user_id is of the type character(8), which ignores trailing spaces" in out
    assert main(["export", url, "--schema", schema, "--table", "agent_sessions", "--user", "alice "]) == 2
    out, err = capsys.readouterr()
    assert '"a"' not in out and "ignores trailing spaces" in err
    for dry in (["--dry-run"], []):
        command = ["prune", url, "--schema", schema, "--table", "agent_sessions", "--older-than", "1d", *dry]
        assert main([*command, "--user", "alice "]) == 2
        out, err = capsys.readouterr()
        assert "remove" not in out and "ignores trailing spaces" in err
    assert [r[0] for r in conn.execute(f"SELECT session_id FROM {schema}.agent_sessions ORDER BY 1")] == ["a", "b"]
