"""agno 1.8.4's own SqliteStorage and ours read and update each other's files."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import attrs
import pytest

pytest.importorskip("agno")
pytest.importorskip("sqlalchemy")

from agno.storage.sqlite import SqliteStorage as AgnoStorage

from agno_storage import AgentSession, SqliteStorage, TeamSession, WorkflowSession, WorkflowSessionV2

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CORPUS: dict[str, list[dict[str, Any]]] = json.loads((FIXTURES / "corpus.json").read_text(encoding="utf-8"))
MODES = ["agent", "team", "workflow", "workflow_v2"]
CLASSES: dict[str, Any] = {
    "agent": AgentSession,
    "team": TeamSession,
    "workflow": WorkflowSession,
    "workflow_v2": WorkflowSessionV2,
}
# Fields agno's dataclass for each mode carries besides the timestamps.
AGNO_FIELDS = {
    "agent": [
        "session_id",
        "user_id",
        "memory",
        "session_data",
        "extra_data",
        "agent_id",
        "agent_data",
        "team_session_id",
    ],
    "team": [
        "session_id",
        "user_id",
        "memory",
        "session_data",
        "extra_data",
        "team_id",
        "team_data",
        "team_session_id",
    ],
    "workflow": ["session_id", "user_id", "memory", "session_data", "extra_data", "workflow_id", "workflow_data"],
    "workflow_v2": [
        "session_id",
        "user_id",
        "session_data",
        "extra_data",
        "workflow_id",
        "workflow_name",
        "workflow_data",
    ],
}


def table(mode: str) -> str:
    return f"{mode}_sessions"


def schema(db: Path) -> list[tuple[str, str, str]]:
    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").fetchall()
    finally:
        con.close()
    return [tuple(r) for r in rows]


def copy_fixture(name: str, tmp_path: Path) -> Path:
    target = tmp_path / f"{name}.db"
    shutil.copyfile(FIXTURES / f"{name}.db", target)
    return target


def agno_store(db: Path, mode: str) -> AgnoStorage:
    return AgnoStorage(table_name=table(mode), db_file=str(db), mode=mode)  # type: ignore[arg-type]


def runs_are_a_list(raw: dict[str, Any]) -> bool:
    # agno iterates `runs`: an empty object passes as no runs, a full one does not.
    return not raw.get("runs") or isinstance(raw["runs"], list)


@pytest.mark.parametrize("mode", MODES)
def test_agno_reads_every_corpus_session_we_wrote(mode: str, tmp_path: Path) -> None:
    db = tmp_path / "ours.db"
    with SqliteStorage(table_name=table(mode), db_file=str(db), mode=mode) as ours:
        ours.create()
        ours.upsert_many([CLASSES[mode](**raw) for raw in CORPUS[mode]])
    agno = agno_store(db, mode)
    for raw in CORPUS[mode]:
        got = agno.read(raw["session_id"])
        if not runs_are_a_list(raw):
            # agno 1.8.4 cannot rebuild a JSON-object `runs` and returns None.
            assert got is None
            continue
        assert got is not None, raw["session_id"]
        assert {f: getattr(got, f) for f in AGNO_FIELDS[mode]} == {f: raw[f] for f in AGNO_FIELDS[mode]}
        assert got.created_at == raw["created_at"]
        if mode == "workflow_v2":
            assert [r.run_id for r in got.runs] == [r["run_id"] for r in raw["runs"] or []]
            assert [r.content for r in got.runs] == [r.get("content") for r in raw["runs"] or []]
    agno.db_engine.dispose()


@pytest.mark.parametrize("mode", MODES)
def test_we_read_and_update_agno_written_files_in_place(mode: str, tmp_path: Path) -> None:
    db = copy_fixture(f"agno_{mode}", tmp_path)
    before = schema(db)
    with SqliteStorage(table_name=table(mode), db_file=str(db), mode=mode) as ours:
        stored = {s.session_id: s for s in ours.get_all_sessions()}
        assert set(stored) == {raw["session_id"] for raw in CORPUS[mode]}
        for raw in CORPUS[mode]:
            got = stored[raw["session_id"]]
            assert got.user_id == (raw["user_id"] or None)  # '' reads back as None
            assert got.session_data == raw["session_data"]
            assert got.extra_data == raw["extra_data"]
            assert (got.created_at, got.updated_at) == (raw["created_at"], raw["updated_at"])
            if mode == "workflow_v2":
                assert got.runs == raw["runs"]
                assert got.memory is None  # agno's v2 upsert never writes memory
            else:
                assert got.memory == raw["memory"]
        first = stored[CORPUS[mode][0]["session_id"]]
        first.session_data = {"updated": "by agno_storage", "emoji": "\U0001f600"}
        ours.upsert(first)
    assert schema(db) == before, "no new index, no DDL change"
    agno = agno_store(db, mode)
    again = agno.read(first.session_id)
    assert again is not None and again.session_data == {"updated": "by agno_storage", "emoji": "\U0001f600"}
    assert again.created_at == CORPUS[mode][0]["created_at"]
    agno.db_engine.dispose()


@pytest.mark.parametrize("mode", MODES[1:])
def test_we_read_tables_agno_made_for_a_team_or_workflow_built_without_mode(mode: str, tmp_path: Path) -> None:
    # agno's store leaves the agent columns in team/workflow tables when a Team
    # or Workflow switches its mode (see fixtures/MANIFEST.md).
    db = copy_fixture(f"agno_{mode}_default_mode", tmp_path)
    before = schema(db)
    with SqliteStorage(table_name=table(mode), db_file=str(db), mode=mode) as ours:
        sessions = ours.get_all_sessions()
        assert len(sessions) == len(CORPUS[mode])
        sid = CORPUS[mode][0]["session_id"]
        assert {s.session_id for s in sessions} == {raw["session_id"] for raw in CORPUS[mode]}
        first = ours.read(sid)
        assert first is not None and first.extra_data == CORPUS[mode][0]["extra_data"]
        first.extra_data = {"touched": True}
        ours.upsert(first)
    assert schema(db) == before
    # Read back, by a store opened anew and by agno itself: the update is there, the rest as it was.
    with SqliteStorage(table_name=table(mode), db_file=str(db), mode=mode) as ours:
        again = ours.read(sid)
    assert again is not None and again.extra_data == {"touched": True}
    assert attrs.evolve(again, extra_data=first.extra_data, updated_at=first.updated_at) == first
    agno = agno_store(db, mode)
    try:
        theirs = agno.read(sid)
        assert theirs is not None and theirs.extra_data == {"touched": True}
    finally:
        agno.db_engine.dispose()


@pytest.mark.parametrize("fixture", ["agno_agent_pre12", "agno_agent_v110"])
def test_pre_1_2_agent_tables_upgrade_like_agno_does(fixture: str, tmp_path: Path) -> None:
    ours_db = copy_fixture(fixture, tmp_path)
    (tmp_path / "agno").mkdir()
    agno_db = copy_fixture(fixture, tmp_path / "agno")
    agno = AgnoStorage(table_name="agent_sessions", db_file=str(agno_db), auto_upgrade_schema=True)
    agno.upgrade_schema()
    agno.db_engine.dispose()
    with SqliteStorage(
        table_name="agent_sessions", db_file=str(ours_db), mode="agent", auto_upgrade_schema=True
    ) as ours:
        sessions = {s.session_id: s for s in ours.get_all_sessions()}
        assert set(sessions) == {raw["session_id"] for raw in CORPUS["agent"]}
        for raw in CORPUS["agent"]:
            assert sessions[raw["session_id"]].memory == raw["memory"]
            assert sessions[raw["session_id"]].team_session_id is None
    assert schema(ours_db) == schema(agno_db)
