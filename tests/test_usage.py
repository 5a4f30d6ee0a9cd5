"""store.usage(): token and run figures from what agno 1.x and agno-golang kept, None where nothing was kept."""

from __future__ import annotations

import datetime
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from agno.agent import Agent
from agno.models.response import ModelResponse
from agno.team import Team

from agno_storage import AgentSession, CorruptRowError, InvalidInputError, SqliteStorage
from agno_storage.usage import Usage
from devkit.fake_model import FakeModel
from tests.agno_runner import close_storages, make_agent, make_storage
from tests.test_conversation import agno_db, open_store  # noqa: F401
from tests.test_go_upstream import USER, go_agent, go_cmds  # noqa: F401


@dataclass
class TokenModel(FakeModel):
    """The fake model, reporting token usage: input = words sent, output = words answered (its provider's figures)."""

    reported: list[tuple[int, int]] | None = None

    def parse_provider_response(self, response: Any, **kwargs: Any) -> ModelResponse:
        sent = sum(len((m["content"] or "").split()) for m in self.calls[-1])
        out = len(response.content.split())
        if self.reported is not None:
            self.reported.append((sent, out))
        return ModelResponse(
            role="assistant", content=response.content, response_usage={"input_tokens": sent, "output_tokens": out}
        )


def today(ts: int | None = None) -> str:
    return datetime.datetime.fromtimestamp(ts or 0, datetime.UTC).date().isoformat()


def test_agno_agent_and_team_usage_matches_their_metrics(agno_db: tuple[str, str], request: Any) -> None:  # noqa: F811
    store_name, db = agno_db
    tag = request.node.callspec.id
    reported: list[tuple[int, int]] = []
    model = TokenModel(prefix="agent", reported=reported)
    agent_id = f"counter-{tag}"  # the PostgreSQL server is shared by the whole run: an entity of this test's own
    # The UTC days the runs may fall on (the clock may pass midnight while they run).
    days = {datetime.datetime.now(datetime.UTC).date().isoformat()}
    for q in ("how many tokens is this", "and this one too"):
        agent = make_agent(make_storage(store_name, db, "agent_sessions"), f"u-agent-{tag}", USER, model)
        agent.agent_id = agent_id
        agent.run(q)
    days.add(datetime.datetime.now(datetime.UTC).date().isoformat())
    close_storages()
    agents = open_store(agno_db, "agent")
    try:
        got = agents.usage(entity_id=agent_id, user_id=USER)
        rows = [u for u in got if u.model == "fake-model"]  # one per day the runs fell on
        assert sum(r.runs for r in rows) == sum(r.runs_with_tokens for r in rows) == 2
        assert (sum(r.input_tokens or 0 for r in rows), sum(r.output_tokens or 0 for r in rows)) == (
            sum(r[0] for r in reported),
            sum(r[1] for r in reported),
        )
        assert all(r.total_tokens == (r.input_tokens or 0) + (r.output_tokens or 0) for r in rows)
        assert all(r.entity_id == agent_id and r.user_id == USER for r in rows)
        assert {r.day for r in rows} <= days
        assert agents.usage(user_id="someone-else", entity_id=agent_id) == []
        assert agents.usage(entity_id=agent_id, since=2**40) == []
    finally:
        agents.close()

    leader: list[tuple[int, int]] = []
    team = Team(
        name="Pair",
        team_id=f"pair-{tag}",
        mode="coordinate",
        members=[Agent(name="Alpha", model=TokenModel(prefix="alpha"), telemetry=False, monitoring=False)],
        model=TokenModel(prefix="team", reported=leader),
        storage=make_storage(store_name, db, "team_sessions"),
        session_id=f"u-team-{tag}",
        user_id=USER,
        add_history_to_messages=True,  # agno's Team then counts the replayed answers' figures in each run again
        num_history_runs=10,
        telemetry=False,
        monitoring=False,
    )
    for q in ("one question for the team", "a second one", "and a third"):
        team.run(q)
    close_storages()
    teams = open_store(agno_db, "team")
    try:
        rows = teams.usage(entity_id=f"pair-{tag}")
        assert sum(r.runs for r in rows) == 3 and len(leader) == 3
        assert (sum(r.input_tokens or 0 for r in rows), sum(r.output_tokens or 0 for r in rows)) == (
            sum(r[0] for r in leader),
            sum(r[1] for r in leader),
        )
    finally:
        teams.close()


def test_nothing_kept_is_none_not_zero(make_store: Any) -> None:
    """Runs with no metrics (a v1 workflow's, hand-written rows) count as runs, with None tokens."""
    store = make_store("agent")
    memory = {
        "runs": [
            {
                "run_id": "a",
                "created_at": 86400,
                "model": "m1",
                "metrics": {"input_tokens": [3, 4], "output_tokens": [5, 0]},
            },
            {"run_id": "b", "created_at": 86401, "model": "m1"},
            {"run_id": "c", "created_at": 86402, "model": "m2", "metrics": {"time": [0.1]}},
            {"run_id": "d"},
        ]
    }
    store.upsert(AgentSession(session_id="s", user_id="u", agent_id="a", memory=memory))
    assert store.usage() == [
        Usage(entity_id="a", user_id="u", day=None, model=None, runs=1, runs_with_tokens=0, input_tokens=None, output_tokens=None, total_tokens=None),
        Usage(entity_id="a", user_id="u", day=today(86400), model="m1", runs=2, runs_with_tokens=1, input_tokens=7, output_tokens=5, total_tokens=None),
        Usage(entity_id="a", user_id="u", day=today(86400), model="m2", runs=1, runs_with_tokens=0, input_tokens=None, output_tokens=None, total_tokens=None),
    ]  # fmt: skip
    assert [u.runs for u in store.usage(since=86401, until=86402)] == [1]
    with pytest.raises(InvalidInputError):
        store.usage(since="yesterday")


def test_a_model_that_reports_no_usage_gives_none_not_the_zeros_agno_fills_in(tmp_path: Path) -> None:
    """agno 1.8.4 keeps a run's token figures as one entry per model call, 0 where the model reported none,
    while the call's own message keeps only what was reported. A real Agent whose model reports no usage: its
    run counts, with None tokens; one whose model reports them still sums them."""
    db = str(tmp_path / "a.db")
    quiet = make_agent(make_storage("ours", db, "agent_sessions"), "quiet", USER, FakeModel(prefix="q"))
    quiet.agent_id = "quiet"
    quiet.run("hello there")
    # An example answer the app adds to every run (agno's add_messages) is no model call and carries no figures.
    shown = make_agent(make_storage("ours", db, "agent_sessions"), "examples", USER, FakeModel(prefix="e"))
    shown.agent_id = "examples"
    shown.add_messages = [{"role": "user", "content": "an example"}, {"role": "assistant", "content": "its answer"}]
    shown.run("hello there")
    reported: list[tuple[int, int]] = []
    counted = make_agent(
        make_storage("ours", db, "agent_sessions"), "counted", USER, TokenModel(prefix="c", reported=reported)
    )
    counted.agent_id = "counted"
    counted.run("hello again")
    close_storages()
    store = SqliteStorage("agent_sessions", db_file=db)
    session = store.read("quiet")
    assert session is not None and session.memory is not None
    assert session.memory["runs"][0]["metrics"]["input_tokens"] == [0]  # what agno wrote
    for quiet_one in ("quiet", "examples"):
        assert [
            (u.runs, u.runs_with_tokens, u.input_tokens, u.output_tokens, u.total_tokens)
            for u in store.usage(entity_id=quiet_one)
        ] == [(1, 0, None, None, None)], quiet_one
    examples = store.read("examples")
    assert examples is not None and examples.memory is not None
    example = next(m for m in examples.memory["runs"][0]["messages"] if m["content"] == "its answer")
    assert example["role"] == "assistant" and "metrics" not in example  # what agno wrote: no model call's
    (got,) = store.usage(entity_id="counted")
    assert (got.runs, got.runs_with_tokens, got.input_tokens, got.output_tokens) == (
        1,
        1,
        sum(i for i, _ in reported),
        sum(o for _, o in reported),
    )
    store.close()


def test_go_agent_runs_count_with_no_tokens(go_cmds: Path, tmp_path: Path) -> None:  # noqa: F811
    """agno-golang v0.1.6 writes metrics {} for each run: runs are counted, tokens are None."""
    db = tmp_path / "go.db"
    go_agent(go_cmds, db, "go-1", ["one", "two"], tmp_path / "c.json")
    store = SqliteStorage("agent_sessions", db_file=db)
    (row,) = store.usage()
    assert (row.entity_id, row.user_id, row.model, row.runs, row.runs_with_tokens) == (None, USER, None, 2, 0)
    assert (row.input_tokens, row.output_tokens, row.total_tokens) == (None, None, None)
    assert store.usage(user_id="someone-else") == []
    store.close()


def test_a_time_no_calendar_holds_is_a_corrupt_row_naming_its_place(tmp_path: Path) -> None:
    """A created_at past year 9999 (or past what the platform's time functions take) is stored data
    of the wrong shape: CorruptRowError naming the session and column, as history() would."""
    import sqlite3

    from agno_storage import CorruptRowError

    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    run = {"run_id": "r1", "created_at": 10**15, "model": "m", "metrics": {"input_tokens": [1]}, "messages": []}
    store.upsert(AgentSession(session_id="a", user_id="alice", agent_id="x", memory={"runs": [run]}))
    with pytest.raises(CorruptRowError) as info:
        store.usage()
    assert (info.value.session_id, info.value.column) == ("a", "memory")
    # A message's time stands for its run's (agno 1.8.4's own is its import time): one no calendar holds is
    # named where it is; a replayed message's is not the run's, and is not read.
    run["created_at"] = 1_700_000_000
    run["messages"] = [
        {"role": "user", "content": "old", "created_at": 10**15, "from_history": True},
        {"role": "user", "content": "hi", "created_at": 1_700_000_001},
        {"role": "assistant", "content": "hello", "created_at": 10**15},
    ]
    store.upsert(AgentSession(session_id="a", user_id="alice", agent_id="x", memory={"runs": [run]}))
    with pytest.raises(CorruptRowError, match=r"memory\.messages\[2\]\.created_at"):
        store.usage()
    run["messages"].pop()
    store.upsert(AgentSession(session_id="a", user_id="alice", agent_id="x", memory={"runs": [run]}))
    assert [(u.day, u.runs) for u in store.usage()] == [(today(1_700_000_001), 1)]
    store.delete("a")
    store.append_run("go-1", "hi", "hello", user_id="u")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE agent_runs SET created_at = 9223372036854775807")
    with pytest.raises(CorruptRowError) as info:
        store.usage()
    assert (info.value.session_id, info.value.column) == ("go-1", "created_at")
    store.close()


def test_a_v2_workflow_run_of_the_wrong_shape_names_the_runs_column(tmp_path: Path) -> None:
    import sqlite3

    from agno_storage import CorruptRowError

    db = tmp_path / "s.db"
    store = SqliteStorage("wf", db_file=db, mode="workflow_v2")
    store.create()
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO wf (session_id, user_id, workflow_id, workflow_name, runs, created_at)"
            " VALUES ('s', '', 'w', 'n', '[5]', 1)"
        )
    with pytest.raises(CorruptRowError) as info:
        store.usage()
    assert (info.value.session_id, info.value.column) == ("s", "runs")
    store.close()


def test_odd_figures_are_none_exact_or_a_corrupt_row(tmp_path: Path) -> None:
    """An empty list of figures is no figure (None); a Go run's integer past 64 bits stays exact; a run time
    that is text is a CorruptRowError naming the place, not a run without a day."""
    store = SqliteStorage("agent_sessions", db_file=tmp_path / "s.db")
    store.upsert(
        AgentSession(
            session_id="s",
            user_id="u",
            agent_id="a",
            memory={"runs": [{"run_id": "r", "metrics": {"input_tokens": []}}]},
        )
    )
    [row] = store.usage()
    assert (row.runs, row.runs_with_tokens, row.input_tokens) == (1, 0, None)
    store.append_run("go", "hi", "hello", user_id="u", metrics={"input_tokens": 2**70 + 1})
    [go] = [u for u in store.usage() if u.entity_id is None]
    assert go.input_tokens == 2**70 + 1
    store.upsert(
        AgentSession(
            session_id="s", user_id="u", agent_id="a", memory={"runs": [{"run_id": "r", "created_at": "2024-01-01"}]}
        )
    )
    with pytest.raises(CorruptRowError, match="created_at"):
        store.usage()
    store.close()


def test_another_users_corrupt_run_neither_fails_nor_shows_in_a_users_usage(tmp_path: Path) -> None:
    """Runs of sessions out of the caller's scope are not read: a corrupt run of alice's cannot fail bob's
    usage, nor show him the id of her session in an error."""
    from tests.support import write_run_as_another_program

    store = SqliteStorage("agent_sessions", db_file=tmp_path / "s.db")
    store.upsert(AgentSession(session_id="bob-s", user_id="bob", agent_id="a", memory={"runs": [{"run_id": "r"}]}))
    store.append_run("bob-go", "hi", "hello", user_id="bob", metrics={"input_tokens": 3})
    alices_run = store.append_run("alice-private", "hi", "hello", user_id="alice")
    with sqlite3.connect(tmp_path / "s.db") as conn:
        write_run_as_another_program(conn, alices_run.id, user_message=b"\xde\xad\xbe\xef")

    got = {(u.entity_id, u.runs, u.input_tokens) for u in store.usage(user_id="bob")}
    assert got == {("a", 1, None), (None, 1, 3)}
    with pytest.raises(CorruptRowError) as alices:
        store.usage(user_id="alice")
    assert alices.value.session_id == "alice-private"
    store.close()


def test_an_agno_run_counts_at_the_time_it_ran_not_when_its_process_imported_agno(
    agno_db: tuple[str, str],  # noqa: F811
    request: Any,
) -> None:
    """agno 1.8.4 stamps each run with its model response's created_at, a class default evaluated when the
    process imported agno: a run made later carries that earlier second. Its messages carry the run's own."""
    import agno.models.response

    store_name, db = agno_db
    tag = request.node.callspec.id
    imported = agno.models.response.ModelResponse.created_at
    while int(time.time()) <= imported:  # the run must come at least a second after agno's import
        time.sleep(0.05)
    start = int(time.time())
    agent = make_agent(make_storage(store_name, db, "agent_sessions"), f"late-{tag}", USER, TokenModel(prefix="x"))
    agent.agent_id = f"late-{tag}"
    agent.run("what time is it")
    end = int(time.time())
    close_storages()
    agents = open_store(agno_db, "agent")
    try:
        session = agents.read(f"late-{tag}", user_id=USER)
        assert session is not None and session.memory is not None
        (run,) = session.memory["runs"]
        assert run["created_at"] == imported < start  # what agno 1.8.4 wrote
        ran = max(m["created_at"] for m in run["messages"])
        assert start <= ran <= end
        (row,) = agents.usage(entity_id=f"late-{tag}", since=start)
        assert (row.runs, row.day) == (1, today(ran))
        assert agents.usage(entity_id=f"late-{tag}", until=start) == []
    finally:
        agents.close()


def test_a_v2_workflows_parallel_steps_count_as_their_runs(tmp_path: Path) -> None:
    """agno 1.8.4 keeps a Parallel step of several agent steps with no run of its own: only the figures of each
    in the step's metrics.parallel_steps (a nested Parallel's in its entry's metrics). Each is a run, its figures
    exact, with the workflow run's day and no model (none is recorded); they were left out."""
    from agno.workflow.v2 import Parallel, Step
    from agno.workflow.v2 import Workflow as WorkflowV2

    db = str(tmp_path / "wf.db")
    models = {name: TokenModel(prefix=name, reported=[]) for name in ("plain", "left", "right", "inner")}

    def step(name: str) -> Any:
        agent = Agent(name=name, agent_id=name, model=models[name], telemetry=False, monitoring=False)
        return Step(name=name, agent=agent)

    workflow = WorkflowV2(
        name="wf",
        workflow_id="wf",
        storage=make_storage("ours", db, "workflow_v2_sessions"),
        session_id="w1",
        user_id=USER,
        # A Parallel in a Parallel keeps its steps' figures in its own entry's metrics.
        steps=[
            step("plain"),
            Parallel(step("left"), Parallel(step("right"), step("inner"), name="nested"), name="fanout"),
        ],
    )
    days = {datetime.datetime.now(datetime.UTC).date().isoformat()}
    workflow.run("count the words of this question")
    days.add(datetime.datetime.now(datetime.UTC).date().isoformat())
    close_storages()
    sent = {name: m.reported for name, m in models.items()}
    assert all(len(calls) == 1 for calls in sent.values())  # each agent called its model once
    store = SqliteStorage("workflow_v2_sessions", db_file=db, mode="workflow_v2")
    got = {u.model: u for u in store.usage(user_id=USER)}
    assert set(got) == {"fake-model", None}  # the plain step's run records its model; the parallel steps none
    plain, parallel = got["fake-model"], got[None]
    assert (plain.runs, plain.input_tokens, plain.output_tokens) == (1, *sent["plain"][0])
    assert (parallel.runs, parallel.runs_with_tokens) == (3, 3)
    assert parallel.input_tokens == sum(sent[name][0][0] for name in ("left", "right", "inner"))
    assert parallel.output_tokens == sum(sent[name][0][1] for name in ("left", "right", "inner"))
    assert {parallel.day, plain.day} <= days  # the workflow run's day; the plain step's, its messages'
    store.close()


@pytest.mark.parametrize("shared", ["runs-only session", "owned session"])
def test_another_users_corrupt_run_under_a_shared_session_id_does_not_fail_a_users_usage(
    tmp_path: Path, shared: str
) -> None:
    """bob's and alice's Go runs under one session id (one with no session row, or alice's session): alice's
    corrupt run fails only alice's figures, as history() reads bob's runs without hers."""
    from tests.support import write_run_as_another_program

    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db)
    if shared == "owned session":
        store.upsert(AgentSession(session_id="S", user_id="alice", agent_id="a", memory={"runs": []}))
    store.append_run("S", "hi", "hello", user_id="bob", metrics={"input_tokens": 3})
    alices = store.append_run("S", "hi", "hello", user_id="alice", metrics={"input_tokens": 5})
    with sqlite3.connect(db) as conn:
        write_run_as_another_program(conn, alices.id, metrics=b"\x00")
    assert [(u.user_id, u.runs, u.input_tokens) for u in store.usage(user_id="bob")] == [("bob", 1, 3)]
    assert [m.content for m in store.history("S", user_id="bob")] == ["hi", "hello"]
    with pytest.raises(CorruptRowError):
        store.usage(user_id="alice")
    with pytest.raises(CorruptRowError):
        store.usage()
    store.close()


def test_figures_no_number_holds_and_times_before_1970(tmp_path: Path) -> None:
    """Figures whose sum no float holds are a CorruptRowError naming the figure (was a raw OverflowError, a
    traceback from the CLI); a run half a second before 1970 is of 1969-12-31; an empty figure list leaves the
    other name agno keeps the figure under."""
    store = SqliteStorage("agent_sessions", db_file=tmp_path / "s.db")
    runs = [{"run_id": "r", "created_at": -0.5, "metrics": {"input_tokens": [], "prompt_tokens": [7]}}]
    store.upsert(AgentSession(session_id="s", user_id="u", agent_id="a", memory={"runs": runs}))
    [row] = store.usage()
    assert (row.day, row.input_tokens) == ("1969-12-31", 7)
    assert store.usage(since=0) == []
    runs[0]["metrics"] = {"input_tokens": [1e308, 1e308]}
    store.upsert(AgentSession(session_id="s", user_id="u", agent_id="a", memory={"runs": runs}))
    with pytest.raises(CorruptRowError, match=r"metrics\.input_tokens") as info:
        store.usage()
    assert (info.value.session_id, info.value.column) == ("s", "memory")
    store.close()


@pytest.mark.parametrize("figure", ["NaN", "Infinity", "-Infinity"])
def test_nan_or_infinity_read_by_read_non_finite_is_a_corrupt_row_naming_its_place(tmp_path: Path, figure: str) -> None:
    """A store that reads agno's NaN and infinities (read_non_finite) still cannot count or date by them: usage(),
    history() and search() raise CorruptRowError naming the figure (they raised a raw ValueError or OverflowError)."""
    db = tmp_path / "s.db"
    store = SqliteStorage("agent_sessions", db_file=db, read_non_finite=True)
    store.upsert(AgentSession(session_id="s", user_id="u", agent_id="a", memory={}))
    usage, history, search = store.usage, lambda: store.history("s"), lambda: store.search("hi")
    cases = [
        ('{"runs": [{"content": "hi", "metrics": {"input_tokens": [%s]}}]}', r"metrics\.input_tokens", [usage]),
        ('{"runs": [{"content": "hi", "created_at": %s}]}', r"created_at", [usage, history, search]),
        ('{"messages": [{"role": "user", "content": "hi", "created_at": %s}]}', r"created_at", [history, search]),
    ]
    for memory, where, calls in cases:
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE agent_sessions SET memory = ?", (memory % figure,))
        for call in calls:
            with pytest.raises(CorruptRowError, match=where) as info:
                call()
            assert (info.value.session_id, info.value.column) == ("s", "memory")
    store.close()


@pytest.mark.parametrize("first", ["alice", ""], ids=["owned", "no_owner"])
def test_a_session_handed_to_another_owner_while_usage_reads_never_counts_the_new_owners_runs(
    tmp_path: Path, first: str
) -> None:
    """alice's sessions are read, then another writer gives one to bob and bob's Go service (run with no user)
    adds a run to it, before the runs are read: its tokens are bob's, never in alice's figures.
    So too for a caller scoped to no owner (``first`` '') and a session with none, whose runs are all its own
    only while it has none."""
    db = tmp_path / "s.db"
    with SqliteStorage("agent_sessions", db_file=db) as setup:
        setup.upsert(AgentSession(session_id="shared", user_id=first, agent_id="a1", memory={"runs": []}))
        setup.append_run("shared", "alice's Go question", "Go: ok.", user_id="", metrics={"input_tokens": 3})
    other = SqliteStorage("agent_sessions", db_file=db, allow_owner_change=True)
    handed: list[bool] = []

    def between(statement: str, params: Any) -> None:
        if "FROM agent_runs WHERE session_id IN" in statement and not handed:
            handed.append(True)
            other.upsert(AgentSession(session_id="shared", user_id="bob", agent_id="a1", memory={"runs": []}))
            other.append_run("shared", "bob's payroll", "Go: filed.", user_id="", metrics={"input_tokens": 5000})

    store = SqliteStorage("agent_sessions", db_file=db, tracer=between)
    try:
        figures = store.usage(user_id=first)
    finally:
        store.close()
        other.close()
    assert handed
    assert all((u.input_tokens or 0) < 5000 for u in figures), figures
