"""to-agno3 and what real agno 1.8.4 runs hold beyond a reply, each where agno 3 reads it: stored events, a
run's extra data (references, reasoning steps, added messages), thinking, a reply's audio, a tool call's time,
a v2 workflow's step metrics; and a session summary's stamp.

Sources are written by real agno 1.8.4 on canned models; agno 3.1.10 reads the target in its own venv
(devkit/agno3_env.py).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from agno_storage.agno3 import to_agno3
from devkit import agno3_env

_AGNO3_RUNS = (
    "import json, sys\n"
    "from agno.db.sqlite import SqliteDb\n"
    "from agno.db.base import SessionType\n"
    "db = SqliteDb(db_file=sys.argv[1])\n"
    "out = {}\n"
    "for t in (SessionType.AGENT, SessionType.TEAM):\n"
    "    for s in db.get_sessions(session_type=t):\n"
    "        again = db.get_session(session_id=s.session_id, session_type=t)\n"
    "        out[s.session_id] = [{'content': r.content, 'events': [e.event for e in r.events or []],\n"
    "            'kept': sorted(((r.metadata or {}).get('agno_v1') or {}).get('unfit') or {})} for r in again.runs]\n"
    "print(json.dumps(out))\n"
)


def _agno3_runs(db: Path) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(agno3_env.run_code(_AGNO3_RUNS, str(db)).strip().splitlines()[-1])
    return out


def _agno3_shows(db: Path, code: str, *args: str) -> Any:
    """What ``code`` prints last (one JSON line), run by agno 3.1.10 with ``json`` and ``sys`` imported,
    ``DB`` agno 3's ``SqliteDb`` of ``db`` and ``args`` in ``sys.argv[2:]``."""
    prelude = "import json, sys\nfrom agno.db.sqlite import SqliteDb\nDB = SqliteDb(db_file=sys.argv[1])\n"
    return json.loads(agno3_env.run_code(prelude + code, str(db), *args).strip().splitlines()[-1])


def test_events_agno3_has_no_class_for_are_kept_in_metadata_and_the_session_loads(tmp_path: Path) -> None:
    """agno 1.8.4 stores a streamed run's events when asked (``store_events``); with ``events_to_skip=[]``
    they include ``RunResponseContent`` / ``TeamRunResponseContent``, names agno 3 has no event class for,
    and agno 3 failed to load the session and every listing that held it."""
    from agno.agent import Agent
    from agno.storage.sqlite import SqliteStorage as AgnoSqliteStorage
    from agno.team import Team

    from devkit.fake_model import FakeModel

    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    agents = AgnoSqliteStorage(table_name="agent_sessions", db_file=str(src), mode="agent")
    teams = AgnoSqliteStorage(table_name="team_sessions", db_file=str(src), mode="team")
    common: dict[str, Any] = {"user_id": "u", "store_events": True, "telemetry": False, "monitoring": False}
    try:
        for sid, skip in (("all-events", []), ("default-events", None)):
            agent = Agent(agent_id="a", model=FakeModel(prefix="a"), storage=agents, session_id=sid, **common)
            agent.events_to_skip = skip if skip is not None else agent.events_to_skip
            for _ in agent.run("hello", stream=True, stream_intermediate_steps=True):
                pass
        member = Agent(agent_id="m", model=FakeModel(prefix="m"), telemetry=False, monitoring=False)
        team = Team(team_id="t", mode="route", model=FakeModel(prefix="t"), members=[member], storage=teams, **common)
        team.session_id, team.events_to_skip = "team-events", []
        for _ in team.run("hello", stream=True):
            pass
    finally:
        agents.db_engine.dispose()
        teams.db_engine.dispose()
    report = to_agno3(str(src), str(dst))
    runs = _agno3_runs(dst)
    assert runs == {
        "all-events": [{"content": "a #1: hello", "events": [], "kept": ["events"]}],
        "default-events": [{"content": "a #1: hello", "events": ["RunStarted", "RunCompleted"], "kept": []}],
        "team-events": [{"content": "t #1: hello", "events": [], "kept": ["events"]}],
    }
    for sid, name in (("all-events", "RunResponseContent"), ("team-events", "TeamRunResponseContent")):
        assert [p for p in report.problems if f"'{sid}'" in p and "events" in p and name in p], (sid, report.problems)


_AGNO3_SUMMARIES = (
    "import json, sys\n"
    "from agno.db.sqlite import SqliteDb\n"
    "from agno.db.base import SessionType\n"
    "db = SqliteDb(db_file=sys.argv[1])\n"
    "out = {}\n"
    "for s in db.get_sessions(session_type=SessionType.AGENT):\n"
    "    again = db.get_session(session_id=s.session_id, session_type=SessionType.AGENT)\n"
    "    when = again.summary.updated_at\n"
    "    out[s.session_id] = [again.summary.summary, when.isoformat() if when else None,\n"
    "                         (again.metadata['agno_v1'] or {}).get('summary_updated_at')]\n"
    "print(json.dumps(out))\n"
)


def test_a_summary_stamped_in_what_agno3_cannot_read_loads_with_its_stamp_kept_in_metadata(tmp_path: Path) -> None:
    """agno 3 reads a summary's ``updated_at`` with ``datetime.fromisoformat``: a stamp in milliseconds or
    text that is no ISO time made agno 3 fail to load the session and every listing holding it."""
    from agno.storage.session.agent import AgentSession
    from agno.storage.sqlite import SqliteStorage as AgnoSqliteStorage

    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    storage = AgnoSqliteStorage(table_name="agent_sessions", db_file=str(src), mode="agent")
    stamps: dict[str, Any] = {
        "seconds": 1733000000,
        "iso": "2025-01-02T03:04:05",
        "milliseconds": 1733000000000,
        "words": "yesterday",
    }
    try:
        storage.create()
        for sid, stamp in stamps.items():
            memory: dict[str, Any] = {"summary": {"summary": f"talked {sid}", "last_updated": stamp}}
            if sid == "words":  # Memory v2's form
                memory = {"summaries": {"u": {sid: {"summary": f"talked {sid}", "last_updated": stamp}}}}
            storage.upsert(AgentSession(session_id=sid, agent_id="a", user_id="u", memory=memory))
    finally:
        storage.db_engine.dispose()
    to_agno3(str(src), str(dst))
    out = json.loads(agno3_env.run_code(_AGNO3_SUMMARIES, str(dst)).strip().splitlines()[-1])
    assert out == {
        "seconds": ["talked seconds", "2024-11-30T20:53:20", None],
        "iso": ["talked iso", "2025-01-02T03:04:05", None],
        "milliseconds": ["talked milliseconds", None, 1733000000000],
        "words": ["talked words", None, "yesterday"],
    }


_AGNO3_EXTRA = (
    "import json, sys\n"
    "from agno.db.sqlite import SqliteDb\n"
    "db = SqliteDb(db_file=sys.argv[1])\n"
    "(r,) = db.get_session(session_id=sys.argv[2]).runs\n"
    "print(json.dumps({'references': [x.model_dump() for x in r.references or []],\n"
    "    'reasoning_steps': [[x.title, x.result] for x in r.reasoning_steps or []],\n"
    "    'reasoning_messages': [m.role for m in r.reasoning_messages or []],\n"
    "    'additional_input': [m.content for m in r.additional_input or []],\n"
    "    'reasoning_content': r.reasoning_content,\n"
    "    'reply': [[m.reasoning_content, m.redacted_reasoning_content, m.provider_data] for m in r.messages][-1],\n"
    "    'kept': sorted((r.metadata or {}).get('agno_v1', {}).get('fields', {}))}))\n"
)


def test_a_runs_references_reasoning_and_added_messages_are_where_agno3_reads_them(tmp_path: Path) -> None:
    """agno 1.8.4 keeps a run's knowledge references, reasoning steps and messages, and ``add_messages`` in
    its ``extra_data``, and a model's thinking in ``thinking``; agno 3 has fields of their own for them
    (``references``, ``reasoning_steps``, ``reasoning_messages``, ``additional_input``, ``reasoning_content``),
    where agno's own v1-to-v2 migration puts them; a message's ``thinking`` and ``redacted_thinking`` are
    agno 3's ``reasoning_content`` and ``redacted_reasoning_content``."""
    from agno.agent import Agent
    from agno.models.message import Message
    from agno.models.response import ModelResponse
    from agno.storage.sqlite import SqliteStorage as AgnoSqliteStorage

    from devkit.fake_model import FakeModel, FakeReply

    class Reasoning(FakeModel):
        """Answers the reasoning agent with one step, and thinks aloud."""

        def _answer(self, messages: list[Message]) -> FakeReply:
            reply = super()._answer(messages)
            if any("reasoning_steps" in m.get_content_string() for m in messages if m.role == "system"):
                step = {"title": "recall", "action": "I will", "result": "kestrels", "next_action": "final_answer"}
                reply.content = json.dumps({"reasoning_steps": [step]})
            return reply

        def parse_provider_response(self, response: Any, **kwargs: Any) -> ModelResponse:
            return ModelResponse(
                role="assistant",
                content=response.content,
                thinking="pondering",
                redacted_thinking="sealed",
                provider_data={"signature": "signed"},
            )

    def retriever(query: str, **kwargs: Any) -> list[dict[str, Any]]:
        return [{"name": "birds", "content": "kestrels hover"}]

    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    storage = AgnoSqliteStorage(table_name="agent_sessions", db_file=str(src), mode="agent")
    try:
        for sid, reasoning in (("reasoned", True), ("thought", False)):
            Agent(
                agent_id="a",
                model=Reasoning(prefix="a"),
                storage=storage,
                session_id=sid,
                user_id="u",
                add_references=True,
                retriever=retriever,
                add_messages=[Message(role="user", content="added before")],
                reasoning=reasoning,
                telemetry=False,
                monitoring=False,
            ).run("what hovers?")
    finally:
        storage.db_engine.dispose()
    to_agno3(str(src), str(dst))
    reasoned = json.loads(agno3_env.run_code(_AGNO3_EXTRA, str(dst), "reasoned").strip().splitlines()[-1])
    (reference,) = reasoned["references"]
    assert reference["query"] == "what hovers?"
    assert reference["references"] == [{"name": "birds", "content": "kestrels hover"}]
    assert reasoned["reasoning_steps"] == [["recall", "kestrels"]]
    assert reasoned["reasoning_messages"][0] == "system" and reasoned["reasoning_messages"][-1] == "assistant"
    assert reasoned["additional_input"] == ["added before"]
    assert "recall" in reasoned["reasoning_content"]
    assert "extra_data" not in reasoned["kept"]
    thought = json.loads(agno3_env.run_code(_AGNO3_EXTRA, str(dst), "thought").strip().splitlines()[-1])
    assert thought["reasoning_content"] == "ponderingsealed"  # 1.8.4 appends the redacted thinking to the run's
    assert "thinking" not in thought["kept"]
    # The reply's thinking, which agno 3's Claude sends back with its signature as 1.8.4's did.
    assert thought["reply"] == ["pondering", "sealed", {"signature": "signed"}]


def test_a_reply_audio_agno3_cannot_make_is_kept_in_metadata_and_the_session_loads(tmp_path: Path) -> None:
    """agno 1.8.4 stores a reply's ``audio_output`` (an ``AudioResponse``) with the fields it has: one with no
    content (a transcript only) is an ``Audio`` agno 3 refuses to make, and agno 3 failed to load the session;
    it is kept in metadata and named, and one with its content is agno 3's."""
    from agno.media import AudioResponse
    from agno.storage.session.agent import AgentSession
    from agno.storage.sqlite import SqliteStorage as AgnoSqliteStorage

    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    spoken = AudioResponse(id="a1", content=b"RIFF spoken", transcript="hello").to_dict()
    transcript_only = AudioResponse(id="a2", transcript="hello again").to_dict()
    runs = [
        {
            "run_id": f"r{i}",
            "agent_id": "a",
            "content": text,
            "messages": [
                {"role": "user", "content": "say it"},
                {"role": "assistant", "content": text, "audio_output": audio},
            ],
        }
        for i, (text, audio) in enumerate((("hello", spoken), ("hello again", transcript_only)))
    ]
    storage = AgnoSqliteStorage(table_name="agent_sessions", db_file=str(src), mode="agent")
    try:
        storage.create()
        storage.upsert(AgentSession(session_id="spoken", agent_id="a", user_id="u", memory={"runs": runs}))
    finally:
        storage.db_engine.dispose()
    report = to_agno3(str(src), str(dst))
    shown = _agno3_shows(
        dst,
        "s = DB.get_session(session_id='spoken')\n"
        "out = [[m.content, m.audio_output.transcript if m.audio_output else None,\n"
        "        m.audio_output.content.decode() if m.audio_output else None] for r in s.runs for m in r.messages[1:]]\n"
        "print(json.dumps(out))\n",
    )
    assert shown == [["hello", "hello", "RIFF spoken"], ["hello again", None, None]]
    assert [p for p in report.problems if "'r1'" in p and "message 1: audio_output" in p], report.problems


def test_a_tool_calls_time_is_agno3s_duration(tmp_path: Path) -> None:
    """agno 1.8.4 keeps how long a tool call took as its metrics' ``time``; agno 3's ``ToolCallMetrics`` has
    it as ``duration`` and reads nothing else of it."""
    from tests.agno3_sources import run_tool_call_turn

    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    (tool,) = run_tool_call_turn(str(src), "tools", "u", "what hovers?").tools or []
    assert tool.metrics is not None and tool.metrics.time
    to_agno3(str(src), str(dst))
    shown = _agno3_shows(
        dst,
        "(r,) = DB.get_session(session_id='tools').runs\n"
        "print(json.dumps([[t.tool_name, t.result, t.metrics.duration if t.metrics else None] for t in r.tools]))\n",
    )
    assert shown == [["transfer_task_to_member", "found kestrel task 1: what hovers?", tool.metrics.time]]


def test_a_v2_workflow_runs_step_metrics_are_agno3s_workflow_metrics(tmp_path: Path) -> None:
    """agno 1.8.4 keeps a v2 Workflow run's metrics per step in ``workflow_metrics``; agno 3's
    ``WorkflowRunOutput.metrics`` is the same per-step record (its RunMetrics totals for the lists)."""
    from agno.agent import Agent
    from agno.storage.sqlite import SqliteStorage as AgnoSqliteStorage
    from agno.workflow.v2 import Step
    from agno.workflow.v2 import Workflow as WorkflowV2

    from devkit.fake_model import FakeModel

    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    storage = AgnoSqliteStorage(table_name="workflow_v2_sessions", db_file=str(src), mode="workflow_v2")
    try:
        agent = Agent(agent_id="w", model=FakeModel(prefix="w"), telemetry=False, monitoring=False)
        flow = WorkflowV2(
            name="p", workflow_id="p", storage=storage, steps=[Step(name="chat", agent=agent)], session_id="flow"
        )
        response = flow.run(message="go")
    finally:
        storage.db_engine.dispose()
    assert response.workflow_metrics is not None
    step = response.workflow_metrics.steps["chat"]
    to_agno3(str(src), str(dst))
    shown = _agno3_shows(
        dst,
        "(r,) = DB.get_session(session_id='flow').runs\n"
        "s = r.metrics.steps['chat'] if r.metrics else None\n"
        "print(json.dumps(s and [s.step_name, s.executor_type, s.executor_name, s.metrics.duration]))\n",
    )
    assert shown == ["chat", "agent", step.executor_name, sum(step.metrics["time"])]


def _write_then_edit(src: Path, *asks: str) -> list[Any]:
    """Run a real agno 1.8.4 v2 Workflow of two agent steps (``write``, then ``edit``) once per ask, in one
    session (``flow``) of ``src``; its responses."""
    from agno.agent import Agent
    from agno.storage.sqlite import SqliteStorage as AgnoSqliteStorage
    from agno.workflow.v2 import Step
    from agno.workflow.v2 import Workflow as WorkflowV2

    from devkit.fake_model import FakeModel

    storage = AgnoSqliteStorage(table_name="workflow_v2_sessions", db_file=str(src), mode="workflow_v2")
    try:
        writer = Agent(agent_id="writer", name="Writer", model=FakeModel(prefix="draft"), telemetry=False)
        editor = Agent(agent_id="editor", name="Editor", model=FakeModel(prefix="edit"), telemetry=False)
        flow = WorkflowV2(
            name="p",
            workflow_id="p",
            storage=storage,
            steps=[Step(name="write", agent=writer), Step(name="edit", agent=editor)],
            session_id="flow",
        )
        return [flow.run(message=ask) for ask in asks]
    finally:
        storage.db_engine.dispose()


def test_a_v2_workflow_runs_steps_are_agno3s_step_results(tmp_path: Path) -> None:
    """agno 1.8.4 keeps a v2 Workflow run's steps in ``step_responses`` (a StepOutput each, its name and
    executor in its ``metrics``); agno 3 shows a run's steps from ``step_results``: each step's name, executor,
    content, the run of its agent and its time, in order."""
    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    (response,) = _write_then_edit(src, "a haiku on tides")
    assert response.workflow_metrics is not None and len(response.step_responses) == 2
    expected = []
    for name, output in zip(("write", "edit"), response.step_responses, strict=True):
        step = response.workflow_metrics.steps[name]
        assert output.response is not None
        expected.append(
            [name, "agent", step.executor_name, output.content, output.response.run_id, True, sum(step.metrics["time"])]
        )
    assert expected[0][3] != expected[1][3]  # two steps that said different things
    to_agno3(str(src), str(dst))
    shown = _agno3_shows(
        dst,
        "(r,) = DB.get_session(session_id='flow').runs\n"
        "print(json.dumps([[s.step_name, s.executor_type, s.executor_name, s.content, s.step_run_id, s.success,\n"
        "                   s.metrics and s.metrics.duration] for s in r.step_results]))\n",
    )
    assert shown == expected


def test_a_v2_workflow_steps_agent_runs_are_agno3s_step_executor_runs(tmp_path: Path) -> None:
    """agno 3 keeps the run of a workflow step's agent inside the workflow run, in ``step_executor_runs``
    (``Step`` puts it there), and reads a step agent's conversation from there
    (``WorkflowSession.get_messages(agent_id=...)``); agno 1.8.4 keeps it as the step's ``response``. Each
    step's run is there after to-agno3: its id (the step's ``step_run_id``), agent, parent and messages, run
    after run."""
    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    responses = _write_then_edit(src, "a haiku on tides", "now one on stars")
    expected_runs = [
        [
            [s.response.run_id, s.response.agent_id, r.run_id, [[m.role, m.content] for m in s.response.messages]]
            for s in r.step_responses
        ]
        for r in responses
    ]
    writer_said = [m for runs in expected_runs for run in runs if run[1] == "writer" for m in run[3]]
    assert len(writer_said) == 4 and writer_said[0] == ["user", "a haiku on tides"]  # two runs, two steps each
    to_agno3(str(src), str(dst))
    runs, step_ids, writer = _agno3_shows(
        dst,
        "session = DB.get_session(session_id='flow')\n"
        "runs = [[[e.run_id, e.agent_id, e.parent_run_id, [[m.role, m.content] for m in e.messages]]\n"
        "         for e in r.step_executor_runs] for r in session.runs]\n"
        "step_ids = [[s.step_run_id for s in r.step_results] for r in session.runs]\n"
        "writer = [[m.role, m.content] for m in session.get_messages(agent_id='writer')]\n"
        "print(json.dumps([runs, step_ids, writer]))\n",
    )
    assert runs == expected_runs
    assert step_ids == [[run[0] for run in run_steps] for run_steps in expected_runs]
    assert writer == writer_said


def test_a_step_run_agno3_cannot_load_is_named_and_its_values_kept_and_the_session_loads(tmp_path: Path) -> None:
    """A step's run goes into the workflow run agno 3 loads: a value of a shape agno 3 fails on there would fail
    the session. It is moved to the step run's metadata and named in the report, as in any run."""
    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    (response,) = _write_then_edit(src, "a haiku on tides")
    conn = sqlite3.connect(src)
    with conn:
        conn.execute(
            "UPDATE workflow_v2_sessions SET runs = json_set(runs, '$[0].step_responses[1].response.tools', 'a tool')"
        )
    conn.close()
    report = to_agno3(str(src), str(dst))
    edit_run = response.step_responses[1].response.run_id
    assert [p for p in report.problems if edit_run in p and "tools is not a list" in p]
    shown = _agno3_shows(
        dst,
        "(r,) = DB.get_session(session_id='flow').runs\n"
        "print(json.dumps([[e.run_id, e.content, e.tools, e.metadata['agno_v1'].get('unfit')] for e in r.step_executor_runs]))\n",
    )
    assert [s[:3] for s in shown] == [[s.response.run_id, s.response.content, None] for s in response.step_responses]
    assert shown[1][3] == {"tools": "a tool"}


def test_a_v2_workflow_team_steps_run_is_an_agno3_team_run_in_step_executor_runs(tmp_path: Path) -> None:
    """A step run by a team: 1.8.4 keeps the team's response as the step's; agno 3 loads it from
    ``step_executor_runs`` as a team run (by its ``team_id``) and returns its messages for the team."""
    from agno.agent import Agent
    from agno.storage.sqlite import SqliteStorage as AgnoSqliteStorage
    from agno.team import Team
    from agno.workflow.v2 import Step
    from agno.workflow.v2 import Workflow as WorkflowV2

    from devkit.fake_model import FakeModel

    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    storage = AgnoSqliteStorage(table_name="workflow_v2_sessions", db_file=str(src), mode="workflow_v2")
    try:
        member = Agent(agent_id="m", name="M", model=FakeModel(prefix="m"), telemetry=False)
        crew = Team(team_id="crew", name="Crew", mode="route", model=FakeModel(prefix="t"), members=[member])
        flow = WorkflowV2(name="p", workflow_id="p", storage=storage, steps=[Step(name="ask", team=crew)])
        flow.session_id = "flow"
        team_run = flow.run(message="who sails?").step_responses[0].response
    finally:
        storage.db_engine.dispose()
    said = [[m.role, m.content] for m in team_run.messages]
    assert ["user", "who sails?"] in said
    to_agno3(str(src), str(dst))
    shown = _agno3_shows(
        dst,
        "s = DB.get_session(session_id='flow')\n"
        "(e,) = s.runs[0].step_executor_runs\n"
        "print(json.dumps([type(e).__name__, e.run_id, e.team_id, [[m.role, m.content] for m in e.messages],\n"
        "                  [[m.role, m.content] for m in s.get_messages(team_id='crew')]]))\n",
    )
    assert shown == ["TeamRunOutput", team_run.run_id, "crew", said, said]


_AGNO3_RUN_TIMES = (
    "from agno.db.base import SessionType\n"
    "import sqlite3\n"
    "out = {}\n"
    "def show(r):\n"
    "    out.setdefault(r.run_id, [r.created_at, [m.created_at for m in getattr(r, 'messages', None) or []],\n"
    "                              ((r.metadata or {}).get('agno_v1') or {}).get('created_at')])\n"
    "    for inner in (getattr(r, 'member_responses', None) or []) + (getattr(r, 'step_executor_runs', None) or []):\n"
    "        show(inner)\n"
    "for t in (SessionType.AGENT, SessionType.TEAM, SessionType.WORKFLOW):\n"
    "    for s in DB.get_sessions(session_type=t):\n"
    "        for r in DB.get_session(session_id=s.session_id, session_type=t).runs:\n"
    "            show(r)\n"
    "rows = sqlite3.connect(sys.argv[1]).execute('SELECT run_id, created_at, updated_at FROM agno_runs').fetchall()\n"
    "print(json.dumps([out, {r[0]: r[1:] for r in rows}]))\n"
)


def test_an_agno_1_8_4_runs_time_is_its_latest_messages_not_the_time_agno_was_imported(tmp_path: Path) -> None:
    """agno 1.8.4 stamps every agent and team run (member and step runs too) with ``ModelResponse.created_at``,
    a class attribute set once, when agno is imported: a process running for a week stamps every run with
    its start. Its messages carry their own times. agno 3 shows a run at the latest of its own time and its
    messages'; the stamp agno 1.8.4 gave it is kept in its ``metadata["agno_v1"]``. A v2 workflow run's own
    time (agno 1.8.4 takes it per run) is left as it is."""
    from agno.models.response import ModelResponse

    from tests.agno3_sources import run_delegating_team_turn
    from tests.agno_runner import close_storages, run_turn

    stale = ModelResponse.created_at
    while int(time.time()) <= stale:  # runs well after agno was imported
        time.sleep(0.05)
    start = int(time.time())
    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    try:
        run_turn("agent", "agno", str(src), "agent", "u", "first question")
    finally:
        close_storages()
    team = run_delegating_team_turn(str(src), "team", "u", "who sails?")
    (flow,) = _write_then_edit(src, "a haiku on tides")
    step_runs = [s.response.run_id for s in flow.step_responses]
    to_agno3(str(src), str(dst))
    runs, rows = _agno3_shows(dst, _AGNO3_RUN_TIMES)
    stamped = {run_id: shown for run_id, shown in runs.items() if run_id != flow.run_id}
    # The agent's run, the team's, its two members', the workflow's two steps'.
    assert {team["run_id"], *team["member_run_ids"], *step_runs} < stamped.keys() and len(stamped) == 6
    for run_id, (created, message_times, kept) in stamped.items():
        assert created >= start and created == max(message_times), run_id
        assert kept == stale, run_id
        if run_id not in step_runs:  # agno 3 writes no row of a step's run
            assert rows[run_id] == [created, created], run_id
    assert runs[flow.run_id][0] == flow.created_at and runs[flow.run_id][2] is None


_AGNO3_TOOL_TIMES = (
    "from agno.db.base import SessionType\n"
    "out = {}\n"
    "for kind in (SessionType.AGENT, SessionType.TEAM):\n"
    "    for s in DB.get_sessions(session_type=kind):\n"
    "        for r in DB.get_session(session_id=s.session_id, session_type=kind).runs:\n"
    "            results = {m.tool_call_id: m.created_at for m in r.messages or [] if m.role == 'tool'}\n"
    "            out[s.session_id] = [r.created_at, [[t.created_at, results.get(t.tool_call_id)] for t in r.tools or []],\n"
    "                                 ((r.metadata or {}).get('agno_v1') or {}).get('tools')]\n"
    "print(json.dumps(out))\n"
)


def test_an_agno_1_8_4_tool_calls_time_is_its_results_not_the_time_agno_was_imported(tmp_path: Path) -> None:
    """agno 1.8.4's ``ToolExecution.created_at`` is a class attribute too, set when agno is imported: every
    tool call a process stores carries its start, and agno 3 shows it in the run's ``tools``. A call's time is
    its result message's (agno 1.8.4 makes the call's record right after that message), or its run's where no
    message holds its result; the stamp agno 1.8.4 gave it is kept in the run's ``metadata["agno_v1"]``."""
    from agno.models.response import ToolExecution

    from tests.agno3_sources import run_delegating_team_turn, run_tool_call_turn

    stale = ToolExecution.created_at
    while int(time.time()) <= stale:  # calls well after agno was imported
        time.sleep(0.05)
    start = int(time.time())
    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    for sid in ("agent", "lost"):
        (tool,) = run_tool_call_turn(str(src), sid, "u", "what hovers?").tools or []
        assert tool.created_at == stale
    run_delegating_team_turn(str(src), "team", "u", "who sails?")
    conn = sqlite3.connect(src)
    with conn:  # a call no message holds the result of
        conn.execute(
            "UPDATE agent_sessions SET memory = json_set(memory, '$.runs[0].tools[0].tool_call_id', 'gone')"
            " WHERE session_id = 'lost'"
        )
    conn.close()
    to_agno3(str(src), str(dst))
    shown = _agno3_shows(dst, _AGNO3_TOOL_TIMES)
    assert sorted(shown) == ["agent", "lost", "team"]
    for sid, (run_time, tools, kept) in shown.items():
        assert len(tools) == (2 if sid == "team" else 1), sid  # the leader hands a task to each member
        for created, result_time in tools:
            assert created >= start, sid
            assert created == (run_time if sid == "lost" else result_time), sid
        assert kept == {str(i): {"created_at": stale} for i in range(len(tools))}, sid


def test_a_paused_call_takes_its_runs_time_not_a_replayed_result_of_the_same_id(tmp_path: Path) -> None:
    """A turn that replays the session's earlier turns (``add_history_to_messages``) holds their tool results
    too, and a model may give its call the id an earlier call had (this model gives every turn's ``call-0-0``).
    A call whose result the run does not hold (paused for a confirmation, say) takes its run's time, never the
    replayed result's of an earlier call; a call whose result it holds takes that result's time."""
    from tests.agno3_sources import run_tool_call_turn

    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    for sid in ("replayed", "paused"):
        run_tool_call_turn(str(src), sid, "u", "what hovers?")
        run_tool_call_turn(str(src), sid, "u", "and now?", history=True)
    conn = sqlite3.connect(src)
    with conn:
        for sid in ("replayed", "paused"):
            (raw,) = conn.execute("SELECT memory FROM agent_sessions WHERE session_id = ?", (sid,)).fetchone()
            memory = json.loads(raw)
            messages = memory["runs"][1]["messages"]
            [old] = [m for m in messages if m["role"] == "tool" and m.get("from_history")]
            [own] = [m for m in messages if m["role"] == "tool" and not m.get("from_history")]
            assert old["tool_call_id"] == own["tool_call_id"] == memory["runs"][1]["tools"][0]["tool_call_id"]
            old["created_at"] -= 1000  # the earlier turn's, well before this one
            if sid == "paused":
                messages.remove(own)
            conn.execute("UPDATE agent_sessions SET memory = ? WHERE session_id = ?", (json.dumps(memory), sid))
    conn.close()
    to_agno3(str(src), str(dst))
    shown = _agno3_shows(dst, _AGNO3_TOOL_TIMES)  # each session's last run
    run_time, [[created, _]], _ = shown["paused"]
    assert created == run_time
    run_time, [[created, result_time]], _ = shown["replayed"]
    assert created == result_time and created > run_time - 1000


def test_a_message_time_agno3_cannot_read_is_kept_in_metadata_and_the_session_loads(tmp_path: Path) -> None:
    """agno 3's Message takes whole seconds only: a message stamped with a fraction, text or none failed the
    load of its whole session. The value is kept in the run's metadata and named; seconds with a fraction stay
    the message's as whole seconds, and count for the run's time as any message's."""
    from tests.agno_runner import close_storages, run_turn

    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    # "\x1c5": Python's str.strip() takes \x1c for a space, agno 3's int parsing does not.
    stamps = {"fraction": 4102444800.5, "text": "yesterday", "none": None, "control": "\x1c5"}
    try:
        for sid in stamps:
            run_turn("agent", "agno", str(src), sid, "u", "hello")
    finally:
        close_storages()
    conn = sqlite3.connect(src)
    with conn:
        for sid, stamp in stamps.items():
            conn.execute(
                "UPDATE agent_sessions SET memory = json_set(memory, '$.runs[0].messages[0].created_at', json(?))"
                " WHERE session_id = ?",
                (json.dumps(stamp), sid),
            )
    conn.close()
    report = to_agno3(str(src), str(dst))
    shown = _agno3_shows(
        dst,
        "out = {}\n"
        "for sid in ('fraction', 'text', 'none', 'control'):\n"
        "    (r,) = DB.get_session(session_id=sid).runs\n"
        "    out[sid] = [r.created_at, r.messages[0].created_at, r.metadata['agno_v1']['messages']]\n"
        "print(json.dumps(out))\n",
    )
    assert shown["fraction"][:2] == [4102444800, 4102444800]
    for sid, stamp in stamps.items():
        assert shown[sid][2] == {"0": {"created_at": stamp}}, sid
        assert [p for p in report.problems if f"'{sid}'" in p and "message 0: created_at" in p], report.problems


def test_a_run_time_past_what_agno3s_bigint_holds_is_kept_in_metadata_and_the_session_migrates(
    tmp_path: Path,
) -> None:
    """A run's created_at of whole seconds wider than 64 bits (this store keeps such integers exactly) failed the
    whole migration (sqlite3 cannot bind it to agno 3's BIGINT column). The run takes its messages' latest time,
    or the session's where it has none, and the value is kept in its metadata."""
    from agno_storage import SqliteStorage
    from tests.agno_runner import close_storages, run_turn

    src, dst = tmp_path / "agno1.db", tmp_path / "agno3.db"
    stamps = {"past": 2**64, "before": -(2**63), "no-messages": 2**64}
    try:
        for sid in stamps:
            run_turn("agent", "agno", str(src), sid, "u", "hello")
    finally:
        close_storages()
    store = SqliteStorage("agent_sessions", db_file=src)
    latest: dict[str, int] = {}
    for sid, stamp in stamps.items():
        session = store.read(sid)
        assert session is not None and session.memory is not None
        (run,) = session.memory["runs"]
        run["created_at"] = stamp
        if sid == "no-messages":
            run["messages"] = []
        latest[sid] = max((m["created_at"] for m in run["messages"]), default=session.created_at)
        store.upsert(session)
    store.close()
    report = to_agno3(str(src), str(dst))
    assert report.total("runs") == 3
    got = _agno3_shows(
        dst,
        "out = {}\n"
        "for sid in sys.argv[2:]:\n"
        "    (r,) = DB.get_session(session_id=sid).runs\n"
        "    out[sid] = [r.created_at, r.metadata['agno_v1']['created_at']]\n"
        "print(json.dumps(out))\n",
        *stamps,
    )
    assert got == {sid: [latest[sid], stamp] for sid, stamp in stamps.items()}
    conn = sqlite3.connect(dst)
    assert dict(conn.execute("SELECT session_id, created_at FROM agno_runs").fetchall()) == latest
    conn.close()
