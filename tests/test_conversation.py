"""store.history(): one conversation per session, whichever writer stored it.

The writers are real: agno 1.8.4's Agent, Team and both Workflow kinds on
the fake model (tests/agno_runner.py), agno-golang v0.1.6's Agent and Team
(compat/cmd, and the fixtures they wrote). Each history is compared with
what the model was sent and answered, turn by turn.
"""

from __future__ import annotations

import pickle
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import attrs
import cattrs
import pytest

from agno_storage import AgentSession, CorruptRowError, Message, SqliteStorage, TeamSession
from agno_storage.conversation import SOURCE_AGNO, SOURCE_GO_AGENT, SOURCE_GO_TEAM, make_converter, memory_messages
from tests.agno_runner import TABLES, close_storages, run_in_new_process, run_turn
from tests.team_runs import Turn, run_team, run_workflow_v2
from tests.test_compat_go import FIXTURES
from tests.test_go_upstream import CONV_PROMPTS, USER, canned, go_agent, go_cmds, go_team, model_calls  # noqa: F401

QUESTIONS = ["first question about kestrels", "zweite Frage: ünïcode 😀 <&>", 'third question, quoted "so"']


def pairs(messages: list[Message]) -> list[tuple[str, str | None]]:
    return [(m.role, m.content) for m in messages]


def expected_from_turns(turns: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """The conversation the model saw: per turn, what it was sent beyond the replayed history, then its answer.

    Checks on the way that each turn's model was sent the whole history so
    far (the agents keep 10 runs), so nothing is counted twice.
    """
    expected: list[tuple[str, str | None]] = []
    for turn in turns:
        (call,) = turn["calls"]
        sent = [(m["role"], m["content"]) for m in call]
        history = [x for x in expected if x[0] != "system"]
        body = [x for x in sent if x[0] != "system"]
        assert body[: len(history)] == history
        last_system = next((x for x in reversed(expected) if x[0] == "system"), None)
        expected += [x for x in sent if x[0] == "system" and x != last_system]
        expected += body[len(history) :]
        expected.append(("assistant", turn["content"]))
    return expected


def three_turns(kind: str, store: str, db: str, session_id: str) -> list[dict[str, Any]]:
    """Two turns in this process, the third in a fresh one: each turn rebuilt from storage."""
    turns = [run_turn(kind, store, db, session_id, USER, q) for q in QUESTIONS[:2]]
    close_storages()
    turns.append(run_in_new_process(kind, store, db, session_id, QUESTIONS[2]))
    return turns


@pytest.fixture(params=["sqlite", "postgres"])
def agno_db(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(runner store name, database) for agno's writes through this package's adapter, on each engine."""
    if request.param == "sqlite":
        return "ours", str(tmp_path / "agno.db")
    server = request.getfixturevalue("pg_server")
    return "ours-pg", str(server.dsn)


def open_store(agno_db: tuple[str, str], kind: str) -> Any:
    store_name, db = agno_db
    if store_name == "ours":
        return SqliteStorage(TABLES[kind], db_file=db, mode=kind)
    from agno_storage import PostgresStorage

    return PostgresStorage(TABLES[kind], db_url=db, mode=kind)


@pytest.mark.parametrize("kind", ["agent", "team", "workflow_v2"])
def test_agno_history_is_what_the_model_saw(
    kind: str, agno_db: tuple[str, str], request: pytest.FixtureRequest
) -> None:
    """agno 1.8.4: history is each turn's new messages and answer, in order, replayed history not repeated."""
    session_id = f"conv-{kind}-{request.node.callspec.id}"
    turns = three_turns(kind, agno_db[0], agno_db[1], session_id)
    store = open_store(agno_db, kind)
    try:
        got = store.history(session_id)
        assert pairs(got) == expected_from_turns(turns)
        assert {m.source for m in got} == {SOURCE_AGNO}
        runs = [m.run_id for m in got]
        assert None not in runs and len(set(runs)) == 3  # one run id per turn, in order
        assert runs == sorted(runs, key=runs.index)
        assert store.history(session_id, user_id=USER) == got
        assert store.history(session_id, user_id="someone-else") == []
        assert store.history("no-such-session") == []
    finally:
        store.close()
        close_storages()


def test_agno_v1_workflow_history_is_its_answers(agno_db: tuple[str, str], request: pytest.FixtureRequest) -> None:
    """An agno v1 Workflow keeps only its runs' answers (its helper agents' messages live nowhere): those, in order."""
    session_id = f"conv-wf-{request.node.callspec.id}"
    turns = three_turns("workflow", agno_db[0], agno_db[1], session_id)
    store = open_store(agno_db, "workflow")
    try:
        assert pairs(store.history(session_id)) == [("assistant", t["content"]) for t in turns]
    finally:
        store.close()
        close_storages()


# --------------------------------------------------------------------------- agno-golang


def test_go_fixtures_history(tmp_path: Path) -> None:
    """What agno-golang's Agent (agent_runs, no session row) and Team (team_data.messages) wrote, as one history each."""
    agent_db = tmp_path / "agent.db"
    shutil.copyfile(FIXTURES / "go_agent_conversation.db", agent_db)
    agents = SqliteStorage("agent_sessions", db_file=agent_db)
    expected = [x for p in CONV_PROMPTS[:2] for x in (("user", p), ("assistant", canned(p)))]
    for sid in ("agent-existing", "agent-new"):
        got = agents.history(sid)
        assert pairs(got) == expected
        assert {m.source for m in got} == {SOURCE_GO_AGENT}
        assert [m.created_at for m in got][::2] == sorted(m.created_at for m in got[::2])
    # agent-new has runs and no session row: list() leaves it out, and says so through runs_only_session_ids.
    assert [s.session_id for s in agents.list()] == ["agent-existing"]
    assert agents.runs_only_session_ids() == ["agent-new"]
    assert agents.runs_only_session_ids(user_id=USER) == ["agent-new"]
    assert agents.runs_only_session_ids(user_id="someone-else") == []
    assert agents.history("agent-new", user_id="someone-else") == []
    assert agents.history("agent-new", user_id=USER) == agents.history("agent-new")
    agents.close()

    team_db = tmp_path / "team.db"
    shutil.copyfile(FIXTURES / "go_team_conversation.db", team_db)
    teams = SqliteStorage("team_sessions", db_file=team_db, mode="team")
    team = teams.read("team-1")
    assert team is not None and team.team_data is not None
    got = teams.history("team-1")
    assert pairs(got) == [(m["role"], m["content"]) for m in team.team_data["messages"]]
    assert [c for r, c in pairs(got) if r == "user"] == CONV_PROMPTS
    assert {m.source for m in got} == {SOURCE_GO_TEAM}
    assert teams.history("team-1", user_id="someone-else") == []
    teams.close()


def test_go_agent_and_team_history_is_what_their_model_saw(go_cmds: Path, tmp_path: Path) -> None:  # noqa: F811
    """A live Go Agent (two turns, then one in a new process) and Go Team: history equals the model's calls and replies."""
    db = tmp_path / "shared.db"
    st = SqliteStorage("agent_sessions", db_file=db)
    st.upsert(AgentSession(session_id="shared", user_id=USER, agent_id="py"))
    st.close()
    prompts = ["first <&> kestrel", "zweite Frage 😀", "third"]
    for sid in ("shared", "go-only"):
        go_agent(go_cmds, db, sid, prompts[:2], tmp_path / f"{sid}-1.json")
        go_agent(go_cmds, db, sid, prompts[2:], tmp_path / f"{sid}-2.json")
    go_team(go_cmds, db, "team-1", prompts[:2], tmp_path / "t1.json")
    go_team(go_cmds, db, "team-1", prompts[2:], tmp_path / "t2.json")

    agents = SqliteStorage("agent_sessions", db_file=db)
    for sid in ("shared", "go-only"):
        calls = model_calls(tmp_path / f"{sid}-1.json") + model_calls(tmp_path / f"{sid}-2.json")
        expected = []
        for call in calls:
            expected += [("user", call["messages"][-1]["content"]), ("assistant", call["reply"])]
        assert pairs(agents.history(sid)) == expected
        assert [c for r, c in expected if r == "user"] == prompts
    assert agents.runs_only_session_ids() == ["go-only"]
    agents.close()

    teams = SqliteStorage("team_sessions", db_file=db, mode="team")
    synthesis = (model_calls(tmp_path / "t1.json") + model_calls(tmp_path / "t2.json"))[2::3]
    expected = [x for p, c in zip(prompts, synthesis, strict=True) for x in (("user", p), ("assistant", c["reply"]))]
    assert pairs(teams.history("team-1")) == expected
    teams.close()


# --------------------------------------------------------------------------- shapes, errors, the JSON form


def run(messages: list[dict[str, Any]], run_id: str, **extra: Any) -> dict[str, Any]:
    return {"run_id": run_id, "messages": messages, **extra}


def test_member_runs_are_placed_where_they_ran(make_store: Any) -> None:
    """A team run's member runs go between the leader's tool call and its result; a system prompt shows once."""
    store = make_store("team")
    leader = [
        {"role": "system", "content": "lead"},
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function"}]},
        {"role": "tool", "content": "member said", "tool_call_id": "c1", "tool_name": "transfer_task_to_member"},
        {"role": "assistant", "content": "done"},
    ]
    member = run([{"role": "user", "content": "task"}, {"role": "assistant", "content": "member said"}], "m1")
    member["agent_id"] = "alpha"
    second = [{"role": "system", "content": "lead"}, {"role": "user", "content": "q2"}]
    memory = {"runs": [run(leader, "r1", member_responses=[member]), run(second, "r2")]}
    store.upsert(TeamSession(session_id="s", team_id="t", memory=memory))
    got = store.history("s")
    assert pairs(got) == [
        ("system", "lead"),
        ("user", "q"),
        ("assistant", None),
        ("user", "task"),
        ("assistant", "member said"),
        ("tool", "member said"),
        ("assistant", "done"),
        ("user", "q2"),
    ]
    assert [m.member for m in got][3:5] == ["alpha", "alpha"]
    assert got[2].tool_calls == [{"id": "c1", "type": "function"}]
    assert (got[5].tool_call_id, got[5].name) == ("c1", "transfer_task_to_member")


TRANSFER, FORWARD, RUN_ALL = "transfer_task_to_member", "forward_task_to_member", "run_member_agents"
LOOKUP = ("lookup", {"q": "kestrels"})


def to(tool: str, member_id: str) -> tuple[str, dict[str, Any]]:
    """A delegation to ``member_id`` (forward_task_to_member passes the team's own input on: it takes no task)."""
    task = {} if tool == FORWARD else {"task_description": f"task for {member_id}"}
    return (tool, {"member_id": member_id, **task, "expected_output": "a line"})


def shape(messages: list[Message]) -> list[tuple[str, str | None, str | None]]:
    """(role, member, tool) of each message: the tool a result is of, the tools an assistant message calls."""
    out = []
    for m in messages:
        calls = ",".join(c["function"]["name"] for c in m.tool_calls or [])
        out.append((m.role, m.member, m.name if m.role == "tool" else calls or None))
    return out


def ran(who: str) -> list[tuple[str, str | None, str | None]]:
    """A member run's shape: its system prompt, its task, its answer."""
    return [("system", who, None), ("user", who, None), ("assistant", who, None)]


ASKED = [("system", None, None), ("user", None, None)]
LOOKED_UP = [("assistant", None, "lookup"), ("tool", None, "lookup")]


@pytest.mark.parametrize(
    ("mode", "script", "expected"),
    [
        pytest.param(
            "coordinate",
            [[LOOKUP], [to(TRANSFER, "alpha")], [to(TRANSFER, "beta")]],
            [
                *ASKED,
                *LOOKED_UP,
                ("assistant", None, TRANSFER),
                *ran("alpha"),
                ("tool", None, TRANSFER),
                ("assistant", None, TRANSFER),
                *ran("beta"),
                ("tool", None, TRANSFER),
                ("assistant", None, None),
            ],
            id="coordinate-lookup-then-two-delegations",
        ),
        pytest.param(
            "coordinate",
            [[to(TRANSFER, "nobody")], [to(TRANSFER, "alpha"), to(TRANSFER, "beta")]],
            [
                *ASKED,
                ("assistant", None, TRANSFER),
                ("tool", None, TRANSFER),  # "Member with ID nobody not found": no member ran
                ("assistant", None, f"{TRANSFER},{TRANSFER}"),
                *ran("alpha"),
                ("tool", None, TRANSFER),
                *ran("beta"),
                ("tool", None, TRANSFER),
                ("assistant", None, None),
            ],
            id="coordinate-unknown-member-then-two-calls-in-one-turn",
        ),
        pytest.param(
            "route",
            [[LOOKUP], [to(FORWARD, "beta")]],
            [*ASKED, *LOOKED_UP, ("assistant", None, FORWARD), *ran("beta"), ("tool", None, FORWARD)],
            id="route-lookup-then-forward",
        ),
        pytest.param(
            "collaborate",
            [[LOOKUP], [(RUN_ALL, {"task_description": "all of you", "expected_output": "a line"})]],
            [
                *ASKED,
                *LOOKED_UP,
                ("assistant", None, RUN_ALL),
                *ran("alpha"),
                *ran("beta"),
                ("tool", None, RUN_ALL),
                ("assistant", None, None),
            ],
            id="collaborate-lookup-then-all-members",
        ),
    ],
)
def test_a_member_run_sits_inside_the_leader_call_that_ran_it(
    tmp_path: Path, mode: str, script: list[Turn], expected: list[tuple[str, str | None, str | None]]
) -> None:
    """agno 1.8.4 Teams whose leader calls its own tool first: each member run is between the delegating call
    and that call's result (which holds the member's answer), not before the leader's first tool result."""
    db = str(tmp_path / "team.db")
    try:
        run_team(db, "s", mode, script, ["which kestrel?"])
    finally:
        close_storages()
    store = SqliteStorage("team_sessions", db_file=db, mode="team")
    got = store.history("s")
    store.close()
    assert shape(got) == expected
    for k, m in enumerate(got):
        if m.role == "tool" and m.name != "lookup" and m.member is None:
            # The member runs placed since the leader's previous message are the ones this result reports.
            since = max(i for i in range(k) if got[i].member is None)
            answers = [x.content for x in got[since:k] if x.member is not None and x.role == "assistant"]
            assert all(a is not None and a in (m.content or "") for a in answers), (k, m.content, answers)


def test_a_team_leaders_and_members_system_prompts_show_once(tmp_path: Path) -> None:
    """Three runs of an agno 1.8.4 Team whose leader delegates to alpha each time: the leader's and alpha's
    system prompts, sent on every run one after the other, each show once, in the first run."""
    db = str(tmp_path / "team.db")
    try:
        run_team(db, "s", "coordinate", [[to(TRANSFER, "alpha")]], QUESTIONS)
    finally:
        close_storages()
    store = SqliteStorage("team_sessions", db_file=db, mode="team")
    got = store.history("s")
    store.close()
    runs = list(dict.fromkeys(m.run_id for m in got if m.member is None))
    assert len(runs) == 3
    second = next(k for k, m in enumerate(got) if m.run_id == runs[1])
    assert [(m.member, k < second) for k, m in enumerate(got) if m.role == "system"] == [(None, True), ("alpha", True)]
    assert [m.content for m in got if m.role == "user" and m.member is None] == QUESTIONS
    assert [m.member for m in got if m.role == "user"] == [None, "alpha"] * 3
    assert "<instructions>\nalpha rules\n</instructions>" in [m.content for m in got if m.member == "alpha"]


def test_v2_workflow_steps_system_prompts_show_once(tmp_path: Path) -> None:
    """Three runs of an agno 1.8.4 v2 Workflow of two steps with their own agents (agno keeps no step name):
    each step agent's system prompt shows once, in the first run."""
    db = str(tmp_path / "flow.db")
    try:
        run_workflow_v2(db, "s", QUESTIONS)
    finally:
        close_storages()
    store = SqliteStorage("workflow_v2_sessions", db_file=db, mode="workflow_v2")
    got = store.history("s")
    store.close()
    first = got[0].run_id
    assert [(m.content, m.run_id) for m in got if m.role == "system"] == [
        ("<instructions>\nresearch rules\n</instructions>", first),
        ("<instructions>\nwrite rules\n</instructions>", first),
    ]
    assert [m.content for m in got if m.role == "user"][::2] == QUESTIONS
    assert len({m.run_id for m in got}) == 3


def test_a_changed_system_prompt_shows_again_for_its_speaker_only() -> None:
    """The leader's prompt is the same on each run; the member's changes on the third: it alone shows again."""

    def team_run(n: int, member_prompt: str) -> dict[str, Any]:
        member = run(
            [said("system", member_prompt), said("user", f"task {n}"), said("assistant", f"done {n}")], f"m{n}"
        )
        leader = [
            said("system", "lead"),
            said("user", f"q{n}"),
            call(f"delegate {n}", f"c{n}", TRANSFER),
            result(f"done {n}", f"c{n}", TRANSFER),
        ]
        return run(leader, f"r{n}", member_responses=[{**member, "agent_id": "alpha"}])

    memory = {"runs": [team_run(1, "alpha v1"), team_run(2, "alpha v1"), team_run(3, "alpha v2")]}
    got = memory_messages(memory, "s", "t")
    assert [(m.member, m.content, m.run_id) for m in got if m.role == "system"] == [
        (None, "lead", "r1"),
        ("alpha", "alpha v1", "m1"),
        ("alpha", "alpha v2", "m3"),
    ]


def said(role: str, content: str) -> dict[str, Any]:
    return {"role": role, "content": content}


def call(content: str, call_id: str, tool: str) -> dict[str, Any]:
    function = {"name": tool, "arguments": "{}"}
    return {
        "role": "assistant",
        "content": content,
        "tool_calls": [{"id": call_id, "type": "function", "function": function}],
    }


def result(content: str, call_id: str, tool: str) -> dict[str, Any]:
    return {"role": "tool", "content": content, "tool_call_id": call_id, "tool_name": tool}


def member_runs(*who: str) -> list[dict[str, Any]]:
    """A member run per name: its task and its answer, labelled by the name."""
    return [run([said("user", f"{w} task"), said("assistant", f"{w} answer")], f"m-{w}", agent_id=w) for w in who]


def test_member_runs_the_delegations_do_not_account_for_keep_their_place_before_the_first_tool_result() -> None:
    """Each team run is placed by its own stored data. Member runs match the delegating tool results in order
    where those account for every run (r1; r5, two run_member_agents calls sharing four runs); otherwise (no
    delegation result, more runs than delegations, no tool result at all) they go, as one block in their order,
    before the leader's first tool result or at the end. Every stored message shows once."""
    runs = [
        run(
            [
                said("user", "r1 q"),
                call("r1 lookup", "c1", "lookup"),
                result("r1 looked", "c1", "lookup"),
                call("r1 delegate", "c2", TRANSFER),
                result("r1 alpha said", "c2", TRANSFER),
                said("assistant", "r1 done"),
            ],
            "r1",
            member_responses=member_runs("r1-alpha"),
        ),
        run(
            [said("user", "r2 q"), call("r2 lookup", "c3", "lookup"), result("r2 looked", "c3", "lookup")],
            "r2",
            member_responses=member_runs("r2-beta"),
        ),
        run(
            [
                said("user", "r3 q"),
                call("r3 lookup", "c4", "lookup"),
                result("r3 looked", "c4", "lookup"),
                call("r3 delegate", "c5", TRANSFER),
                result("r3 said", "c5", TRANSFER),
            ],
            "r3",
            member_responses=member_runs("r3-a", "r3-b"),
        ),
        run([said("user", "r4 q"), said("assistant", "r4 direct")], "r4", member_responses=member_runs("r4-c")),
        run(
            [
                said("user", "r5 q"),
                call("r5 all", "c6", RUN_ALL),
                result("r5 all said", "c6", RUN_ALL),
                call("r5 all again", "c7", RUN_ALL),
                result("r5 all said again", "c7", RUN_ALL),
            ],
            "r5",
            member_responses=member_runs("r5-a", "r5-b", "r5-c", "r5-d"),
        ),
    ]
    got = memory_messages({"runs": runs}, "s", "t")
    a, b = "task", "answer"
    assert [m.content for m in got] == [
        *("r1 q", "r1 lookup", "r1 looked", "r1 delegate", f"r1-alpha {a}", f"r1-alpha {b}", "r1 alpha said"),
        "r1 done",
        *("r2 q", "r2 lookup", f"r2-beta {a}", f"r2-beta {b}", "r2 looked"),
        *("r3 q", "r3 lookup", f"r3-a {a}", f"r3-a {b}", f"r3-b {a}", f"r3-b {b}", "r3 looked"),
        *("r3 delegate", "r3 said"),
        *("r4 q", "r4 direct", f"r4-c {a}", f"r4-c {b}"),
        *("r5 q", "r5 all", f"r5-a {a}", f"r5-a {b}", f"r5-b {a}", f"r5-b {b}", "r5 all said"),
        *("r5 all again", f"r5-c {a}", f"r5-c {b}", f"r5-d {a}", f"r5-d {b}", "r5 all said again"),
    ]
    stored = [m["content"] for r in runs for x in (r, *r["member_responses"]) for m in x["messages"]]
    assert sorted(m.content or "" for m in got) == sorted(stored)
    assert {m.member for m in got if m.content and m.content.startswith("r3-")} == {"r3-a", "r3-b"}


@pytest.mark.parametrize(
    ("memory", "column"),
    [
        ({"runs": "not a list"}, "memory"),
        ({"runs": [{"run_id": "r", "messages": [{"content": "no role"}]}]}, "memory"),
        ({"runs": [{"run_id": "r", "messages": [{"role": 5, "content": "x"}]}]}, "memory"),
        ({"runs": [{"run_id": "r", "messages": [{"role": "user", "created_at": "noon"}]}]}, "memory"),
    ],
)
def test_malformed_conversation_raises_corrupt_row(make_store: Any, memory: dict[str, Any], column: str) -> None:
    store = make_store("agent")
    store.upsert(AgentSession(session_id="bad", agent_id="a", memory=memory))
    store.upsert(AgentSession(session_id="empty", agent_id="a", memory={"memories": {}}))
    with pytest.raises(CorruptRowError) as info:
        store.history("bad")
    assert (info.value.session_id, info.value.column) == ("bad", column)
    assert pickle.loads(pickle.dumps(info.value)).session_id == "bad"
    assert store.history("empty") == []


def test_corrupt_agent_runs_row(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    shutil.copyfile(FIXTURES / "go_agent_conversation.db", db)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE agent_runs SET messages = '[{' WHERE session_id = 'agent-new'")
    conn.commit()
    conn.close()
    st = SqliteStorage("agent_sessions", db_file=db)
    with pytest.raises(CorruptRowError) as info:
        st.history("agent-new")
    assert info.value.session_id == "agent-new"
    assert len(st.history("agent-existing")) == 4
    st.close()


def test_message_json_form_is_strict() -> None:
    """make_converter() round-trips a Message and refuses extra keys and coerced types."""
    converter = make_converter()
    message = Message(role="tool", content="x", created_at=1, run_id="r", tool_calls=[{"id": "c"}], name="f")
    data = converter.unstructure(message)
    assert converter.structure(data, Message) == message
    with pytest.raises(cattrs.ClassValidationError):
        converter.structure({**data, "extra": 1}, Message)
    with pytest.raises(cattrs.ClassValidationError):
        converter.structure({**data, "created_at": "1"}, Message)
    with pytest.raises(cattrs.ClassValidationError):
        converter.structure({**data, "content": 5}, Message)
    assert attrs.evolve(message, content=None).content is None


def test_history_is_scoped_as_read_is(make_store: Any) -> None:
    store = make_store("agent")
    memory = {"runs": [{"run_id": "r1", "messages": [{"role": "user", "content": "hi"}]}]}
    store.upsert(AgentSession(session_id="owned", user_id="alice", memory=memory))
    store.upsert(AgentSession(session_id="unowned", user_id=None, memory=memory))
    for sid, user in (("owned", None), ("owned", "alice"), ("unowned", None), ("unowned", "")):
        assert [m.content for m in store.history(sid, user_id=user)] == ["hi"], (sid, user)
        assert store.read(sid, user_id=user) is not None
    for sid, user in (("owned", ""), ("owned", "bob"), ("unowned", "bob")):
        assert store.history(sid, user_id=user) == [], (sid, user)
        assert store.read(sid, user_id=user) is None


@pytest.mark.parametrize(
    ("message", "where"),
    [
        ("a string", "message[2] of run 'r1' is a JSON str, not an object"),
        ({"content": "no role"}, "message[2] of run 'r1' has no role"),
        ({"role": ["user"]}, "message[2] of run 'r1'.role is not a string"),
        ({"role": "user", "created_at": True}, "message[2] of run 'r1'.created_at is a JSON bool"),
        ({"role": "assistant", "tool_calls": {"id": "c"}}, "message[2] of run 'r1' is a JSON dict, not a list"),
        ({"role": "assistant", "tool_calls": [5]}, "message[2] of run 'r1'.tool_calls[*] is a JSON int"),
        ({"role": "tool", "tool_call_id": 7}, "message[2] of run 'r1'.tool_call_id is a JSON int"),
        ({"role": "tool", "tool_name": 7}, "message[2] of run 'r1'.tool_name is a JSON int"),
    ],
)
def test_a_malformed_message_is_named_by_its_place(message: Any, where: str) -> None:
    """The error names the message's index in its run, replayed messages counted, whichever check failed."""
    replayed = {"role": "user", "content": "earlier", "from_history": True}
    memory = {
        "runs": [
            {"run_id": "r0", "messages": [{"role": "user", "content": "fine"}]},
            {"run_id": "r1", "messages": [replayed, {"role": "user", "content": "fine"}, message]},
        ]
    }
    with pytest.raises(CorruptRowError) as info:
        memory_messages(memory, "s", "t")
    assert (info.value.session_id, info.value.column) == ("s", "memory")
    assert where in str(info.value)


def test_a_message_by_position_is_the_message_by_keyword() -> None:
    """history() builds each plain message by position (a third of the cost): the field order is fixed."""
    assert [f.name for f in attrs.fields(Message)] == [
        "role",
        "content",
        "created_at",
        "run_id",
        "tool_calls",
        "tool_call_id",
        "name",
        "member",
        "source",
    ]
    assert Message("user", "hi", 5, "r1", None, None, None, "helper") == Message(
        role="user", content="hi", created_at=5, run_id="r1", member="helper"
    )


def test_content_nested_deeper_than_orjson_writes_is_text_or_a_corrupt_row(tmp_path: Path) -> None:
    """Structured content nested 300 levels (orjson reads 1,024 and writes 254) comes back as its JSON text; at
    1,000 levels, which no JSON writer here can spell, history() raises CorruptRowError naming the session."""
    db = tmp_path / "s.db"
    store = SqliteStorage("t", db_file=db)
    store.upsert(AgentSession(session_id="deep", memory={"runs": []}))
    for depth in (300, 1000):
        nested = "[" * depth + "]" * depth
        conn = sqlite3.connect(db)
        conn.execute(
            "UPDATE t SET memory = ? WHERE session_id = 'deep'",
            ('{"runs":[{"run_id":"r","messages":[{"role":"user","content":' + nested + "}]}]}",),
        )
        conn.commit()
        conn.close()
        if depth == 300:
            assert [m.content for m in store.history("deep")] == [nested]
        else:
            with pytest.raises(CorruptRowError) as info:
                store.history("deep")
            assert info.value.session_id == "deep"
    store.close()


def test_structured_content_holding_nan_is_a_corrupt_row_not_null(tmp_path: Path) -> None:
    """A store reading agno's NaN (read_non_finite) gave structured content holding it as JSON text with null in
    its place; NaN has no JSON text, so history() and search() raise CorruptRowError naming the session."""
    db = tmp_path / "s.db"
    store = SqliteStorage("t", db_file=db, read_non_finite=True)
    store.upsert(AgentSession(session_id="s", memory={"runs": []}))
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE t SET memory = ?",
            ('{"runs": [{"content": "hi", "messages": [{"role": "tool", "content": {"score": NaN}}]}]}',),
        )
    for call in (lambda: store.history("s"), lambda: store.search("score")):
        with pytest.raises(CorruptRowError, match="NaN") as info:
            call()
        assert info.value.session_id == "s"
    store.close()


def test_another_users_session_reads_as_an_id_the_table_does_not_have(tmp_path: Path) -> None:
    """history(user_id=alice) of bob's session is what it is of an unknown id: alice's own runs under it, if any.
    Bob's row is not decoded, so not even a corrupt row of his tells her it exists."""
    store = SqliteStorage("agent_sessions", db_file=tmp_path / "s.db")
    hello = {"runs": [{"run_id": "r", "messages": [{"role": "user", "content": "bob's secret"}]}]}
    store.upsert(AgentSession(session_id="bob-s", user_id="bob", memory=hello))
    store.append_run("bob-s", "alice here", "hi alice", user_id="alice")
    store.append_run("nobody-s", "alice there", "hi again", user_id="alice")
    with sqlite3.connect(tmp_path / "s.db") as conn:
        conn.execute(
            "INSERT INTO agent_sessions (session_id, user_id, agent_id, memory) VALUES ('bob-bad', 'bob', '', '{')"
        )

    assert [m.content for m in store.history("bob-s", user_id="alice")] == ["alice here", "hi alice"]
    assert [m.content for m in store.history("nobody-s", user_id="alice")] == ["alice there", "hi again"]
    assert store.history("bob-bad", user_id="alice") == store.history("unknown", user_id="alice") == []
    assert "bob's secret" in [m.content for m in store.history("bob-s", user_id="bob")]
    assert "alice here" not in [m.content for m in store.history("bob-s", user_id="bob")]
    with pytest.raises(CorruptRowError):
        store.history("bob-bad", user_id="bob")
    store.close()


def test_a_damaged_run_another_user_wrote_under_the_id_never_fails_the_owners_history(tmp_path: Path) -> None:
    """eve's Go Agent wrote a run under the id of alice's session, and it is damaged (a created_at that is
    no time): it is not part of alice's conversation, so it is not decoded and her history reads whole;
    eve's own read of it is the error."""
    store = SqliteStorage("agent_sessions", db_file=tmp_path / "s.db")
    store.upsert(AgentSession(session_id="s1", user_id="alice"))
    store.append_run("s1", "alice asks", "alice is answered", user_id="alice")
    store.append_run("s1", "eve asks", "eve is answered", user_id="eve")
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("UPDATE agent_runs SET created_at = 'noon' WHERE user_id = 'eve'").rowcount == 1
    for user_id in (None, "alice"):
        assert [m.content for m in store.history("s1", user_id=user_id)] == ["alice asks", "alice is answered"]
    with pytest.raises(CorruptRowError):
        store.history("s1", user_id="eve")
    store.close()


def test_no_owner_is_shown_no_owned_sessions_runs_with_no_user(tmp_path: Path) -> None:
    """A Go run with no user under alice's session is alice's conversation: user_id='' ("no owner") is not
    shown it, as search(user_id='') does not find it."""
    store = SqliteStorage("agent_sessions", db_file=tmp_path / "s.db")
    store.upsert(AgentSession(session_id="s1", user_id="alice"))
    store.append_run("s1", "alice secret question", "alice secret answer")
    store.append_run("loose", "a question of no one's", "an answer")
    assert store.history("s1", user_id="") == []
    assert store.search("secret", user_id="") == []
    assert [m.content for m in store.history("s1", user_id="alice")] == ["alice secret question", "alice secret answer"]
    assert [m.content for m in store.history("loose", user_id="")] == ["a question of no one's", "an answer"]
    store.close()


@pytest.mark.parametrize("first", ["alice", ""], ids=["owned", "no_owner"])
def test_a_session_handed_to_another_owner_between_the_row_and_its_runs_never_shows_the_new_owners_runs(
    tmp_path: Path, first: str
) -> None:
    """alice's row is read, then another writer gives the session to bob and bob's Go service (run with no
    user) continues it, before the runs are read: those user-less runs are bob's, never part of her history.
    So too for a caller scoped to no owner (``first`` '') and a session with none, whose runs are all its own
    only while it has none."""
    db = tmp_path / "s.db"
    memory = {"runs": [{"run_id": "r1", "messages": [{"role": "user", "content": "alice's question"}]}]}
    with SqliteStorage("agent_sessions", db_file=db) as setup:
        setup.upsert(AgentSession(session_id="shared", user_id=first, memory=memory))
        setup.append_run("shared", "alice's Go question", "Go: ok.", user_id="")
    other = SqliteStorage("agent_sessions", db_file=db, allow_owner_change=True)
    handed: list[bool] = []

    def between(statement: str, params: Any) -> None:
        if "FROM agent_runs WHERE session_id" in statement and not handed:
            handed.append(True)
            other.upsert(AgentSession(session_id="shared", user_id="bob", memory={"runs": []}))
            other.append_run("shared", "bob's payroll", "Go: filed.", user_id="")

    store = SqliteStorage("agent_sessions", db_file=db, tracer=between)
    try:
        contents = [m.content for m in store.history("shared", user_id=first)]
    finally:
        store.close()
        other.close()
    assert handed
    assert "bob's payroll" not in contents and "Go: filed." not in contents, contents
    assert contents[0] == "alice's question"
