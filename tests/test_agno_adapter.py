"""The agno 1.x adapter: construction, modes, dataclasses and agno's quirks."""

from __future__ import annotations

import copy
import json
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("agno")
sqlalchemy = pytest.importorskip("sqlalchemy")
pytest.importorskip("agno_storage.agno")

from agno.run.v2.workflow import WorkflowRunResponse  # noqa: E402
from agno.storage.session.agent import AgentSession as AgnoAgentSession  # noqa: E402
from agno.storage.session.team import TeamSession as AgnoTeamSession  # noqa: E402
from agno.storage.session.v2.workflow import WorkflowSession as AgnoWorkflowSessionV2  # noqa: E402

from agno_storage import SqliteStorage as CoreStorage  # noqa: E402
from agno_storage import WorkflowSessionV2  # noqa: E402
from agno_storage.agno import PostgresStorage, SqliteStorage  # noqa: E402
from agno_storage.errors import (  # noqa: E402
    CorruptRowError,
    InvalidInputError,
    OwnershipError,
    SchemaMismatchError,
    SchemaVersionError,
)
from devkit.fake_model import FakeModel  # noqa: E402
from tests.agno_runner import make_agent  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"

BLOCK_AGNO = textwrap.dedent(
    """
    import sys
    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name == "agno" or name.startswith("agno."):
                raise ImportError("agno is not installed")
            return None
    sys.meta_path.insert(0, _Block())
    """
)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_agno_storage_imports_without_agno() -> None:
    done = run_python(BLOCK_AGNO + "import agno_storage; agno_storage.SqliteStorage; print('ok')")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_adapter_without_agno_says_what_to_install() -> None:
    done = run_python(BLOCK_AGNO + "import agno_storage.agno")
    assert done.returncode != 0
    assert "ImportError" in done.stderr
    assert "pip install 'agno-session-storage[agno]'" in done.stderr


def test_mode_set_after_construction_picks_the_table_shape(tmp_path: Path) -> None:
    db = tmp_path / "agno.db"
    storage = SqliteStorage(table_name="team_sessions", db_file=str(db))
    assert not db.exists(), "construction opens nothing"
    storage.mode = "team"  # what Team does
    stored = storage.upsert(AgnoTeamSession(session_id="t1", team_id="pair", user_id="u", memory={"runs": []}))
    assert isinstance(stored, AgnoTeamSession)
    assert stored.team_id == "pair" and stored.created_at is not None
    columns = [r[1] for r in sqlite3.connect(db).execute("PRAGMA table_info(team_sessions)")]
    assert "team_id" in columns and "agent_id" not in columns
    with pytest.raises(InvalidInputError):
        storage.mode = "bogus"  # type: ignore[assignment]


def test_agent_session_round_trips_as_agnos_dataclass(tmp_path: Path) -> None:
    storage = SqliteStorage(table_name="agent_sessions", db_file=str(tmp_path / "a.db"))
    session = AgnoAgentSession(
        session_id="a1",
        user_id=None,
        team_session_id="team-7",
        workflow_session_id="wf-9",
        memory={"runs": [{"content": "hi"}]},
        agent_id="agent-x",
        agent_data={"name": "X"},
        session_data={"session_state": {"n": 1}},
        extra_data={"k": [1, 2]},
    )
    stored = storage.upsert(session)
    got = storage.read("a1")
    assert isinstance(got, AgnoAgentSession) and got == stored
    assert got.user_id is None  # stored as '' for Go's NOT NULL column
    assert got.team_session_id == "team-7"
    assert got.workflow_session_id is None  # no column for it, as in agno's own store
    assert got.memory == {"runs": [{"content": "hi"}]}
    assert storage.get_all_session_ids() == ["a1"]
    assert [s.session_id for s in storage.get_recent_sessions(limit=1)] == ["a1"]


def test_a_session_of_another_modes_class_is_refused(tmp_path: Path) -> None:
    storage = SqliteStorage(table_name="agent_sessions", db_file=str(tmp_path / "a.db"))
    team_session = AgnoTeamSession(session_id="t1", user_id="u", team_id="team-1")
    with pytest.raises(InvalidInputError, match=r"agent storage stores .*AgentSession, got .*TeamSession") as info:
        storage.upsert(team_session)
    assert info.value.session_id == "t1" and info.value.table == "agent_sessions"
    assert storage.get_all_session_ids() == []


@pytest.mark.parametrize("stored_memory", [None, "null", '{"memories": {}}'])
def test_agent_loads_a_session_whose_memory_agno_would_reject(stored_memory: str | None, tmp_path: Path) -> None:
    db = tmp_path / "agno.db"
    with CoreStorage(table_name="agent_sessions", db_file=str(db), mode="agent") as core:
        core.create()
    con = sqlite3.connect(db)
    with con:
        con.execute(
            "INSERT INTO agent_sessions (session_id, user_id, memory, agent_id, created_at, updated_at)"
            " VALUES ('s', 'u', ?, 'historian', 1, 1)",
            (stored_memory,),
        )
    con.close()
    storage = SqliteStorage(table_name="agent_sessions", db_file=str(db))
    agent = make_agent(storage, "s", "u", FakeModel())
    agent.load_session()  # agno raises TypeError (None) or KeyError ("runs") here on its own
    assert agent.run("go on").content == "reply #1: go on"


def test_v2_runs_come_back_as_agno_run_objects(tmp_path: Path) -> None:
    storage = SqliteStorage(table_name="wf", db_file=str(tmp_path / "w.db"), mode="workflow_v2")
    run = WorkflowRunResponse(run_id="r1", content="done", workflow_name="pipe")
    storage.upsert(AgnoWorkflowSessionV2(session_id="w1", workflow_id="wf", workflow_name="pipe", runs=[run]))
    got = storage.read("w1")
    assert isinstance(got, AgnoWorkflowSessionV2)
    assert got.runs is not None and len(got.runs) == 1
    assert isinstance(got.runs[0], WorkflowRunResponse)
    assert (got.runs[0].run_id, got.runs[0].content) == ("r1", "done")


def test_v2_runs_agno_cannot_rebuild_raise_a_typed_error(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    with CoreStorage(table_name="wf", db_file=str(db), mode="workflow_v2") as core:
        core.upsert(WorkflowSessionV2(session_id="w1", workflow_id="wf", workflow_name="p", runs={"r": {"x": 1}}))
    storage = SqliteStorage(table_name="wf", db_file=str(db), mode="workflow_v2")
    with pytest.raises(CorruptRowError) as refused:
        storage.read("w1")
    assert (refused.value.session_id, refused.value.column) == ("w1", "runs")


def test_db_engine_for_a_sqlite_file_is_used(tmp_path: Path) -> None:
    db = tmp_path / "engine.db"
    engine = sqlalchemy.create_engine(f"sqlite:///{db}")
    storage = SqliteStorage(table_name="agent_sessions", db_engine=engine)
    storage.upsert(AgnoAgentSession(session_id="e1", agent_id="a"))
    assert json.loads(json.dumps(sqlite3.connect(db).execute("SELECT session_id FROM agent_sessions").fetchall())) == [
        ["e1"]
    ]


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "postgresql+psycopg://u@localhost/db"])
def test_db_engine_we_cannot_share_is_refused(url: str) -> None:
    engine = sqlalchemy.create_engine(url)
    with pytest.raises(InvalidInputError, match="db_engine"):
        SqliteStorage(table_name="agent_sessions", db_engine=engine)


def test_deep_copies_share_the_database(tmp_path: Path) -> None:
    storage = SqliteStorage(table_name="agent_sessions")  # in memory: only sharing can work
    clone = copy.deepcopy(storage)
    storage.upsert(AgnoAgentSession(session_id="m1", agent_id="a"))
    found = clone.read("m1")
    assert found is not None and found.session_id == "m1"


@pytest.mark.parametrize("storage_class", [SqliteStorage, PostgresStorage])
@pytest.mark.parametrize(
    ("args", "match"),
    [
        # agno 1.x only ever had version 1; a caller asking for another gets no silent downgrade.
        ({"db_url": "sqlite:///x.db", "schema_version": 2}, "schema_version 1, got 2"),
        # A pathlib.Path is the likely slip: it is not a URL, so no engine is guessed from it.
        ({"db_url": Path("x.db")}, "db_url must be a str"),
    ],
)
def test_arguments_agno_would_misread_are_refused(
    storage_class: type[SqliteStorage] | type[PostgresStorage], args: dict[str, object], match: str
) -> None:
    with pytest.raises(InvalidInputError, match=match):
        storage_class(table_name="agent_sessions", **args)  # type: ignore[arg-type]


def test_agents_delete_session_forgets_the_history(tmp_path: Path) -> None:
    db = str(tmp_path / "agno.db")
    make_agent(SqliteStorage(table_name="agent_sessions", db_file=db), "s1", "u", FakeModel()).run("my number is 7")
    storage = SqliteStorage(table_name="agent_sessions", db_file=db)
    storage.delete_session(None)  # agno's own store logs and returns here too
    assert storage.get_all_session_ids() == ["s1"]
    make_agent(storage, "s1", "u", FakeModel()).delete_session("s1")
    assert storage.read("s1") is None
    model = FakeModel()
    make_agent(SqliteStorage(table_name="agent_sessions", db_file=db), "s1", "u", model).run("what is my number?")
    assert all("my number is 7" not in text for text in model.seen_texts())


def test_an_agent_on_a_team_table_is_refused_and_the_table_kept(tmp_path: Path) -> None:
    db = str(tmp_path / "agno.db")
    team_storage = SqliteStorage(table_name="sessions", db_file=db, mode="team")
    team_storage.upsert(AgnoTeamSession(session_id="t1", team_id="pair", memory={"runs": []}))
    storage = SqliteStorage(table_name="sessions", db_file=db)
    with pytest.raises(SchemaMismatchError):
        storage.create()
    with pytest.raises(SchemaMismatchError):
        make_agent(storage, "a1", "u", FakeModel()).run("hello")
    assert [s.session_id for s in team_storage.get_all_sessions()] == ["t1"]


def test_upgrade_schema_brings_a_pre_1_2_agno_file_up_to_date(tmp_path: Path) -> None:
    db = tmp_path / "agno.db"
    shutil.copyfile(FIXTURES / "agno_agent_pre12.db", db)
    corpus = json.loads((FIXTURES / "corpus.json").read_text(encoding="utf-8"))["agent"]
    storage = SqliteStorage(table_name="agent_sessions", db_file=str(db))  # auto_upgrade_schema off
    with pytest.raises(SchemaVersionError):
        storage.get_all_sessions()
    storage.upgrade_schema()
    sessions = storage.get_all_sessions()
    assert {s.session_id for s in sessions} == {raw["session_id"] for raw in corpus}
    assert all(isinstance(s, AgnoAgentSession) and s.team_session_id is None for s in sessions)
    assert make_agent(storage, "after-upgrade", "u", FakeModel()).run("hello").content == "reply #1: hello"
    columns = [r[1] for r in sqlite3.connect(db).execute("PRAGMA table_info(agent_sessions)")]
    assert "team_session_id" in columns


def test_threads_that_first_use_an_in_memory_adapter_together_share_one_database() -> None:
    """Each mode's store is opened once, under a lock: two opened at once would be two private databases."""
    import threading

    for trial in range(20):
        storage = SqliteStorage(table_name="agent_sessions")  # no db_file: one in-memory database
        barrier = threading.Barrier(8)

        def write(i: int, storage: SqliteStorage = storage, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            storage.upsert(AgnoAgentSession(session_id=f"s{i}", user_id="u", memory={"runs": []}))

        threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(storage.get_all_session_ids()) == [f"s{i}" for i in range(8)], trial
        storage.close()


def test_a_v2_run_agno_cannot_rebuild_is_a_corrupt_row_not_a_type_error(tmp_path: Path) -> None:
    """agno's own to_dict writes {"run_id", "status", "error"} for a run it could not serialise; its
    WorkflowRunResponse has no "error" field."""
    db = tmp_path / "w.db"
    core = CoreStorage("wf2", db_file=db, mode="workflow_v2")
    core.upsert(
        WorkflowSessionV2(
            session_id="w1", workflow_id="w", runs=[{"run_id": "r1", "status": "pending", "error": "failed"}]
        )
    )
    core.close()
    storage = SqliteStorage(table_name="wf2", db_file=str(db), mode="workflow_v2")
    with pytest.raises(CorruptRowError) as caught:
        storage.read("w1")
    assert (caught.value.session_id, caught.value.column) == ("w1", "runs")
    with pytest.raises(CorruptRowError):
        storage.get_all_sessions()
    storage.close()


@pytest.mark.parametrize(
    "make",
    [
        lambda db: SqliteStorage(table_name="t", db_file=db, mode=["agent"]),  # type: ignore[arg-type]
        lambda db: SqliteStorage(table_name="t", db_file=db, mode="bogus"),  # type: ignore[arg-type]
        lambda db: CoreStorage("t", db_file=db).append_run("\ud800", "hi", "yo"),
        lambda db: CoreStorage("t", db_file=db).append_run("s", "hi", "yo", user_id="\ud800"),
        lambda db: CoreStorage("t", db_file=db).append_run("s", "hi", "yo", messages="x"),  # type: ignore[arg-type]
        lambda db: CoreStorage("t", db_file=db).append_run("s", "hi", "yo", metrics=5),  # type: ignore[arg-type]
    ],
)
def test_bad_arguments_are_invalid_input_not_a_raw_error(tmp_path: Path, make: Any) -> None:
    with pytest.raises(InvalidInputError):
        make(str(tmp_path / "x.db"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"connect_timeout": float("nan")},
        {"connect_timeout": 1e300},
        {"db_url": "postgresql://u\ud800@127.0.0.1:1/x"},
        {"schema": "\ud800"},
    ],
)
def test_postgres_arguments_no_driver_takes_are_invalid_input(kwargs: dict[str, Any]) -> None:
    from agno_storage.backends.postgres import PostgresStorage as CorePostgres

    with pytest.raises(InvalidInputError):
        CorePostgres("t", **{"db_url": "postgresql://u@127.0.0.1:1/x", **kwargs})


def test_an_adapter_pickles_and_a_forked_child_is_not_held_by_the_parents_lock(tmp_path: Path) -> None:
    import os
    import pickle
    import signal

    used = SqliteStorage(table_name="agent_sessions", db_file=str(tmp_path / "s.db"))
    assert used.read("nobody") is None  # a store opened: the pickle must not take it along
    copy_of = pickle.loads(pickle.dumps(used))  # an Agent handed to a spawned worker, say
    assert copy_of.read("nobody") is None and copy_of.mode == "agent"
    used.close()
    # In memory, copies must share the one database: a shallow copy, and deep copies pickled together.
    memory = SqliteStorage(table_name="agent_sessions")
    shallow = copy.copy(memory)
    memory.upsert(AgnoAgentSession(session_id="s1", user_id="u", memory={"runs": []}))
    assert shallow.read("s1") is not None
    a, b = pickle.loads(pickle.dumps([memory, copy.deepcopy(memory)]))
    a.upsert(AgnoAgentSession(session_id="s2", user_id="u", memory={"runs": []}))
    assert b.read("s2") is not None
    memory.close()
    a.close()
    storage = SqliteStorage(table_name="agent_sessions", db_file=str(tmp_path / "s.db"))  # nothing opened yet
    clone = copy.deepcopy(storage)  # agno deep-copies agents: the copy shares the stores and their lock
    storage._shared.lock.__enter__()  # another thread was opening a store as the process forked
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            signal.alarm(10)
            try:
                shared = clone._lock() is storage._lock()
                os._exit(0 if shared and clone.read("nobody") is None and storage.read("x") is None else 1)
            except BaseException:
                os._exit(2)
        _, status = os.waitpid(pid, 0)
    finally:
        storage._shared.lock.__exit__(None, None, None)
    assert os.waitstatus_to_exitcode(status) == 0
    storage.close()
    copy_of.close()


@pytest.mark.parametrize("name", ["my-sessions", "order", "t" * 64, "sqlite_sessions"])
def test_a_table_name_the_store_cannot_take_is_refused_where_agno_builds_the_storage(tmp_path: Path, name: str) -> None:
    """agno's own store takes such names (SQLAlchemy quotes them); this one refuses them, and says so when the
    storage is built, not at the Agent's first run, with nothing written."""
    with pytest.raises(InvalidInputError, match="table name"):
        SqliteStorage(table_name=name, db_file=str(tmp_path / "a.db"))
    with pytest.raises(InvalidInputError, match="table name"):
        PostgresStorage(table_name=name, db_url="postgresql://u@localhost/db")
    assert not (tmp_path / "a.db").exists()


def test_a_v2_run_agno_cannot_serialise_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """agno's to_dict writes {"run_id", "status", "error"} for a run it cannot serialise, which agno cannot
    read back: stored, it would make every later read of the session, and every listing of the table,
    fail. The write is refused instead, and the table keeps what it held."""
    import threading

    storage = SqliteStorage(table_name="wf", db_file=str(tmp_path / "w.db"), mode="workflow_v2")
    good = WorkflowRunResponse(run_id="r0", content="done", workflow_name="pipe")
    storage.upsert(AgnoWorkflowSessionV2(session_id="w0", workflow_id="wf", runs=[good]))
    bad = WorkflowRunResponse(run_id="r1", content={"lock": threading.Lock()}, workflow_name="pipe")
    with pytest.raises(InvalidInputError, match="run 'r1' of session 'w1' cannot be stored") as refused:
        storage.upsert(AgnoWorkflowSessionV2(session_id="w1", workflow_id="wf", runs=[good, bad]))
    assert (refused.value.session_id, refused.value.column) == ("w1", "runs")
    assert storage.read("w1") is None
    assert [s.session_id for s in storage.get_all_sessions()] == ["w0"]
    storage.close()


def test_an_agent_with_no_session_id_loads_a_new_session(tmp_path: Path) -> None:
    """Agent.load_session() reads with session_id None before it makes a new id; agno's own read gives None."""
    from agno.agent import Agent

    storage = SqliteStorage(table_name="agent_sessions", db_file=str(tmp_path / "a.db"))
    assert storage.read(None) is None and storage.read("") is None  # type: ignore[arg-type]
    agent = Agent(model=FakeModel(), storage=storage, telemetry=False, monitoring=False)
    session_id = agent.load_session()
    assert session_id and agent.run("hello").content == "reply #1: hello"
    assert storage.get_all_session_ids() == [session_id]
    storage.close()


def test_a_run_with_no_user_on_a_session_that_has_one_keeps_its_owner(tmp_path: Path) -> None:
    """agno's Agent.run writes with the user it was called with (None) after loading an owned session: the
    turn is kept and so is the owner (agno's own store would clear it); another user is still refused."""
    storage = SqliteStorage(table_name="agent_sessions", db_file=str(tmp_path / "a.db"))
    make_agent(storage, "s", "alice", FakeModel()).run("first")
    assert make_agent(storage, "s", None, FakeModel()).run("second").content
    stored = storage.read("s")
    assert stored is not None and stored.user_id == "alice" and len(stored.memory["runs"]) == 2
    with pytest.raises(OwnershipError):
        storage.upsert(AgnoAgentSession(session_id="s", user_id="bob", agent_id="historian"))
    assert storage.get_all_session_ids(user_id="alice") == ["s"]
    storage.close()


def test_state_agnos_json_would_store_is_stored_as_agnos_json_stores_it(tmp_path: Path) -> None:
    """agno's own store writes json.dumps's text: a key that is no str (1, None) becomes a string key, a str
    subclass a str. The turn is kept, and the state reads back as agno's store gives it back; what json.dumps
    cannot write either (a datetime) is still InvalidInputError."""
    import datetime

    class Label(str):
        pass

    storage = SqliteStorage(table_name="agent_sessions", db_file=str(tmp_path / "a.db"))
    agent = make_agent(storage, "s", "u", FakeModel())
    agent.session_state = {"scores": {1: 10, None: "none"}, "label": Label("x")}
    assert agent.run("hi").content == "reply #1: hi"
    stored = storage.read("s")
    assert stored is not None
    state = stored.session_data["session_state"]
    assert state["scores"] == {"1": 10, "null": "none"} and type(state["label"]) is str
    with pytest.raises(InvalidInputError):
        storage.upsert(AgnoAgentSession(session_id="t", user_id="u", extra_data={"at": datetime.datetime.now()}))
    storage.close()


@pytest.mark.parametrize("given", [str, Path])
def test_a_db_file_names_the_file_agnos_own_store_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: Any
) -> None:
    """agno resolves db_file (a str or a Path) against the working directory at construction and does not
    expand ``~``: the swapped store opens the file agno's own store wrote, whatever the working directory is
    at first use."""
    from agno.storage.sqlite import SqliteStorage as AgnoSqliteStorage

    monkeypatch.chdir(tmp_path)
    theirs = AgnoSqliteStorage(table_name="agent_sessions", db_file=given("~/chats.db"))
    theirs.create()
    theirs.upsert(AgnoAgentSession(session_id="s", user_id="u", agent_id="a", memory={"runs": []}))
    theirs.db_engine.dispose()
    assert (tmp_path / "~" / "chats.db").exists()
    ours = SqliteStorage(table_name="agent_sessions", db_file=given("~/chats.db"))
    monkeypatch.chdir(tmp_path / "~")  # a later chdir changes nothing for either
    got = ours.read("s")
    assert got is not None and got.user_id == "u"
    ours.close()


def test_a_session_agnos_own_store_wrote_with_nan_reads_and_is_not_written_back(tmp_path: Path) -> None:
    """agno's own store writes NaN and infinities as json.dumps spells them (NaN, Infinity) and reads them back:
    the adapter reads such a session too (floats kept), lists it, and still refuses to write NaN, naming the
    column."""
    import math

    from agno.storage.sqlite import SqliteStorage as AgnoSqliteStorage

    db = tmp_path / "a.db"
    theirs = AgnoSqliteStorage(table_name="agent_sessions", db_file=str(db), mode="agent")
    agent = make_agent(theirs, "s", "u", FakeModel())
    agent.session_state = {"score": float("nan"), "best": float("inf"), "worst": float("-inf")}
    assert agent.run("hi").content == "reply #1: hi"
    theirs.db_engine.dispose()
    stored = sqlite3.connect(db).execute("SELECT session_data FROM agent_sessions").fetchone()[0]
    assert "NaN" in stored and "-Infinity" in stored

    ours = SqliteStorage(table_name="agent_sessions", db_file=str(db))
    got = ours.read("s")
    assert got is not None and got.memory is not None and len(got.memory["runs"]) == 1
    state = got.session_data["session_state"]
    assert math.isnan(state["score"]) and state["best"] == math.inf and state["worst"] == -math.inf
    assert [s.session_id for s in ours.get_all_sessions()] == ["s"]
    assert [s.session_id for s in ours.get_recent_sessions(user_id="u")] == ["s"]
    with pytest.raises(InvalidInputError) as refused:
        ours.upsert(got)
    assert refused.value.column == "session_data" and refused.value.session_id == "s"
    assert sqlite3.connect(db).execute("SELECT session_data FROM agent_sessions").fetchone()[0] == stored
    # agno merges the stored state over the Agent's, so the stored session is what to repair.
    got.session_data["session_state"].update(score=None, best=None, worst=None)
    ours.upsert(got)
    model = FakeModel()
    assert make_agent(ours, "s", "u", model).run("again").content == "reply #1: again"
    assert model.seen_texts() == ["hi", "reply #1: hi", "again"]
    ours.close()


def test_the_core_store_still_refuses_a_row_holding_nan(tmp_path: Path) -> None:
    """Only the adapter (or read_non_finite=True) reads agno's NaN; the core store names the row as corrupt."""
    db = tmp_path / "a.db"
    with SqliteStorage(table_name="agent_sessions", db_file=str(db)) as ours:
        ours.upsert(AgnoAgentSession(session_id="s", user_id="u", memory={"runs": []}))
    with sqlite3.connect(db) as conn:
        conn.execute("""UPDATE agent_sessions SET session_data = '{"x": NaN}'""")
    core = CoreStorage("agent_sessions", db_file=str(db))
    with pytest.raises(CorruptRowError) as corrupt:
        core.read("s")
    assert corrupt.value.column == "session_data"
    core.close()
    lenient = CoreStorage("agent_sessions", db_file=str(db), read_non_finite=True)
    got = lenient.read("s")
    assert got is not None and got.session_data is not None and got.session_data["x"] != got.session_data["x"]
    lenient.close()


def test_a_db_url_with_sqlalchemys_timeout_opens_the_file_agno_opens_and_waits_that_long(tmp_path: Path) -> None:
    """agno users pass SQLAlchemy URLs such as sqlite:///file.db?timeout=30 (sqlite3's lock wait, in seconds):
    the swapped store opens the same file and waits as long; a setting it would not honour is refused where
    the storage is built."""
    from agno.storage.sqlite import SqliteStorage as AgnoSqliteStorage

    url = f"sqlite:///{tmp_path / 'a.db'}?timeout=30"
    theirs = AgnoSqliteStorage(table_name="agent_sessions", db_url=url, mode="agent")
    theirs.create()
    theirs.upsert(AgnoAgentSession(session_id="s", user_id="u", agent_id="a", memory={"runs": []}))
    theirs.db_engine.dispose()
    ours = SqliteStorage(table_name="agent_sessions", db_url=url)
    got = ours.read("s")
    assert got is not None and got.user_id == "u"
    assert ours.core.busy_timeout == 30.0
    ours.close()
    with pytest.raises(InvalidInputError, match="'mode'"):
        SqliteStorage(table_name="agent_sessions", db_url=f"sqlite:///{tmp_path / 'a.db'}?mode=ro")


@pytest.mark.parametrize("limit", [-1, -5, 0, None, 2])
def test_get_recent_sessions_takes_the_limits_agnos_own_store_takes(tmp_path: Path, limit: int | None) -> None:
    """agno's own SqliteStorage passes the limit to SQLite, where a negative one is no limit and 0 is none:
    the adapter answers the same sessions in the same order."""
    from agno.storage.sqlite import SqliteStorage as AgnoSqliteStorage

    db = tmp_path / "a.db"
    theirs = AgnoSqliteStorage(table_name="agent_sessions", db_file=str(db), mode="agent")
    theirs.create()
    for i, created in enumerate((100, 300, 200)):
        theirs.upsert(AgnoAgentSession(session_id=f"s{i}", user_id="u", agent_id="a", memory={"runs": []}))
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE agent_sessions SET created_at = ? WHERE session_id = ?", (created, f"s{i}"))
    expected = [s.session_id for s in theirs.get_recent_sessions(user_id="u", limit=limit)]
    theirs.db_engine.dispose()
    assert len(expected) == {-1: 3, -5: 3, 0: 0, None: 3, 2: 2}[limit]
    ours = SqliteStorage(table_name="agent_sessions", db_file=str(db))
    assert [s.session_id for s in ours.get_recent_sessions(user_id="u", limit=limit)] == expected
    ours.close()


def test_a_session_stored_with_an_empty_id_is_listed_and_delete_session_removes_it(tmp_path: Path) -> None:
    """agno's own store (and agno-golang's) write a session_id of '': the adapter lists it, and delete_session('')
    removes it, as agno's own delete_session does; read('') stays None, as agno's Agent expects of no id."""
    from agno.storage.sqlite import SqliteStorage as AgnoSqliteStorage

    db = tmp_path / "a.db"
    theirs = AgnoSqliteStorage(table_name="agent_sessions", db_file=str(db), mode="agent")
    theirs.create()
    for sid in ("", "kept"):
        theirs.upsert(AgnoAgentSession(session_id=sid, user_id="u", agent_id="a", memory={"runs": []}))
    theirs.db_engine.dispose()
    ours = SqliteStorage(table_name="agent_sessions", db_file=str(db))
    assert sorted(ours.get_all_session_ids()) == ["", "kept"]
    assert ours.read("") is None
    ours.delete_session("")
    assert ours.get_all_session_ids() == ["kept"]
    ours.close()


@pytest.mark.parametrize("given", [str, Path])
def test_a_db_file_named_memory_is_the_file_agnos_own_store_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: Any
) -> None:
    """agno's SqliteStorage resolves db_file=":memory:" (a str or a Path) as any name: its sessions are in a
    file of that name in the working directory. The swapped store reads them there, and what it writes
    outlives it."""
    from agno.storage.sqlite import SqliteStorage as AgnoSqliteStorage

    monkeypatch.chdir(tmp_path)
    theirs = AgnoSqliteStorage(table_name="agent_sessions", db_file=given(":memory:"))
    theirs.create()
    theirs.upsert(AgnoAgentSession(session_id="theirs", user_id="u", agent_id="a", memory={"runs": []}))
    theirs.db_engine.dispose()
    assert (tmp_path / ":memory:").is_file()
    ours = SqliteStorage(table_name="agent_sessions", db_file=given(":memory:"))
    assert ours.get_all_session_ids() == ["theirs"]
    make_agent(ours, "ours", "u", FakeModel()).run("hello")
    ours.close()
    again = SqliteStorage(table_name="agent_sessions", db_file=given(":memory:"))
    assert sorted(again.get_all_session_ids()) == ["ours", "theirs"]
    again.close()
