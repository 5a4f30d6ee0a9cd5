"""to-agno3's shortcut for a plain agno 1.x agent run gives what the general path gives, byte for byte.

A run agno 1.x writes for an agent (its usual keys, messages of text and
tool calls, tools, metrics) is converted and checked in one step
(:func:`agno_storage.agno3.plain.plain_agent_run`); any other run goes the
general way (``convert_run``, then ``unfit_fields``). Whichever way a run
goes, agno 3 must be given the same run dict, the same row and the same
problems; and real agno 1.8.4 agent runs must take the shortcut.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from agno_storage.agno3 import mapping
from agno_storage.agno3.checks import member_kind, unfit_fields
from agno_storage.agno3.chunks import Source, SourceSpec
from agno_storage.agno3.plain import plain_agent_run
from agno_storage.agno3.runs import RunBuilder, convert_run
from agno_storage.models import Mode

_TEXT = st.text(max_size=6)
_NUMBER = st.one_of(st.integers(-3, 10**6), st.floats(allow_nan=False, allow_infinity=False), st.booleans())
_METRIC_NAMES = st.sampled_from(
    [
        "input_tokens",
        "output_tokens",
        "total_tokens",
        "prompt_tokens",
        "completion_tokens",
        "audio_tokens",
        "cached_tokens",
        "time",
        "time_to_first_token",
        "additional_metrics",
        "duration",
        "other",
    ]
)
#: Three names in any order: the conversion made for each order is met again, and must be that order's.
_SOME_METRICS = st.fixed_dictionaries(
    {name: st.lists(st.integers(0, 500), min_size=1, max_size=1) for name in ("input_tokens", "prompt_tokens", "time")}
).flatmap(lambda v: st.permutations(list(v.items())).map(dict))
#: A run's metrics as agno 1.x writes them (per-call lists) and as it does not (scalars, nothing, not an object).
_RUN_METRICS = st.one_of(
    _SOME_METRICS,
    st.dictionaries(_METRIC_NAMES, st.one_of(st.lists(_NUMBER, max_size=2), _NUMBER, st.none()), max_size=5),
    st.dictionaries(_METRIC_NAMES, st.lists(st.integers(0, 500), min_size=1, max_size=1), max_size=7),
    st.none(),
    st.just([1]),
    _TEXT,
)
#: A message's metrics (one call's numbers, a tool message's time).
_MESSAGE_METRICS = st.one_of(
    _SOME_METRICS.map(lambda m: {k: v[0] for k, v in m.items()}),
    st.dictionaries(_METRIC_NAMES, st.one_of(_NUMBER, st.none(), st.dictionaries(_TEXT, _NUMBER)), max_size=4),
    st.none(),
    st.just({}),
    st.just("fast"),
)
#: A tool call's id: often one another message or call of the run has too (a call and its result).
_CALL_ID = st.one_of(st.sampled_from(["call-1", "call-2"]), _TEXT)
#: A time as agno 1.x writes it (whole seconds) and as it does not.
_TIME = st.one_of(st.integers(0, 2**40), st.floats(0, 2**40), st.none(), _TEXT, st.booleans())
_TOOL_CALLS = st.lists(
    st.fixed_dictionaries(
        {
            "id": _CALL_ID,
            "type": st.just("function"),
            "function": st.fixed_dictionaries({"name": _TEXT, "arguments": _TEXT}),
        }
    ),
    max_size=2,
)
_CONTENT = st.one_of(
    _TEXT, st.just(""), st.none(), st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": _TEXT}), max_size=2)
)


def _shuffled(d: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """``d``'s dicts with their keys in any order (the key order is part of the bytes written)."""
    return d.flatmap(lambda v: st.permutations(list(v.items())).map(dict))


def _message() -> st.SearchStrategy[dict[str, Any]]:
    return _shuffled(
        st.fixed_dictionaries(
            {"role": st.sampled_from(["system", "user", "assistant", "tool"]), "content": _CONTENT},
            optional={
                "from_history": st.one_of(st.booleans(), st.none()),
                "stop_after_tool_call": st.booleans(),
                "created_at": st.integers(0, 2**40),
                "metrics": _MESSAGE_METRICS,
                "tool_calls": st.one_of(st.none(), _TOOL_CALLS),
                "tool_call_id": _CALL_ID,
                "tool_name": _TEXT,
                "tool_args": st.dictionaries(_TEXT, _TEXT, max_size=2),
                "tool_call_error": st.booleans(),
                "name": _TEXT,
                "reasoning_content": _TEXT,
            },
        )
    )


def _tool() -> st.SearchStrategy[dict[str, Any]]:
    return _shuffled(
        st.fixed_dictionaries(
            {"tool_name": _TEXT},
            optional={
                "tool_call_id": _CALL_ID,
                "tool_args": st.dictionaries(_TEXT, _TEXT, max_size=2),
                "tool_call_error": st.booleans(),
                "result": st.one_of(_TEXT, st.none()),
                "metrics": st.one_of(
                    st.fixed_dictionaries({"time": _NUMBER}),
                    st.fixed_dictionaries({"time": _NUMBER, "duration": _NUMBER}),
                    st.dictionaries(_TEXT, _NUMBER, max_size=2),
                    st.none(),
                ),
                "created_at": _TIME,
                "stop_after_tool_call": st.booleans(),
            },
        )
    )


#: Runs of the keys agno 1.8.4 writes for an agent, with values of every shape the shortcut must take.
PLAIN_RUNS = _shuffled(
    st.fixed_dictionaries(
        {},
        optional={
            "run_id": st.one_of(st.sampled_from(["r1", "r2"]), st.just(""), st.none(), st.integers()),
            "agent_id": st.one_of(_TEXT, st.none()),
            "agent_name": _TEXT,
            "session_id": st.one_of(_TEXT, st.none()),
            "user_id": st.one_of(_TEXT, st.none()),
            "workflow_id": st.one_of(_TEXT, st.none()),
            "content": st.one_of(_CONTENT, st.dictionaries(_TEXT, _TEXT, max_size=1)),
            "content_type": st.just("str"),
            "model": _TEXT,
            "model_provider": _TEXT,
            "reasoning_content": st.one_of(_TEXT, st.none()),
            "created_at": _TIME,
            "status": st.one_of(
                st.sampled_from(["RUNNING", "running", "COMPLETED", "PENDING", "ERROR", "paused", "DONE"]),
                st.none(),
                st.integers(),
            ),
            "metrics": _RUN_METRICS,
            "messages": st.one_of(st.lists(_message(), max_size=5), st.none()),
            "tools": st.one_of(st.lists(_tool(), max_size=3), st.none()),
            "formatted_tool_calls": st.lists(_TEXT, max_size=2),
        },
    )
)

#: What makes a run not plain: a key of another kind of value, or a value of a shape the general path
#: looks at closer (media, a message that is none, fields agno 3 does not take).
_OTHER_KEYS = st.sampled_from(
    "extra_data thinking input metadata images audio videos files response_audio citations references events "
    "reasoning_steps reasoning_messages additional_input member_responses team_id team_name formatted_tool_calls "
    "step_responses step_results requirements compaction session_state followups unknown workflow_metrics "
    "redacted_thinking _memory_message".split()
)
_ANY = st.one_of(
    st.none(),
    _TEXT,
    st.integers(),
    st.lists(st.one_of(_TEXT, st.dictionaries(_TEXT, _TEXT, max_size=2)), max_size=2),
    st.dictionaries(st.sampled_from(["add_messages", "references", "x"]), st.lists(_message(), max_size=1)),
)
_MESSAGE_SPOILERS = st.one_of(
    st.tuples(st.sampled_from(["images", "audio", "videos", "files", "audio_output", "image_output"]), _ANY),
    st.tuples(st.sampled_from(["thinking", "redacted_thinking", "unknown"]), _ANY),
    st.tuples(st.just("role"), st.one_of(st.none(), st.integers())),
    st.tuples(st.just("content"), st.one_of(st.integers(), st.dictionaries(_TEXT, _TEXT, max_size=1))),
    st.tuples(st.just("tool_calls"), st.one_of(_TEXT, st.lists(_TEXT, min_size=1, max_size=2))),
    # A time that is not agno 1.x's whole seconds: agno 3 refuses some (a fraction, text, none), takes others.
    st.tuples(
        st.just("created_at"),
        st.one_of(st.floats(), st.sampled_from(["12", " -3 ", "yesterday"]), st.none(), st.booleans(), st.just(2**70)),
    ),
)


@st.composite
def near_misses(draw: st.DrawFn) -> dict[str, Any]:
    """A plain run changed in one way that may take it off the shortcut."""
    run = draw(PLAIN_RUNS)
    how = draw(
        st.sampled_from(["key", "input", "team", "messages", "message", "message item", "tools", "tool", "time"])
    )
    if how == "time":  # whole seconds past what agno 3's BIGINT holds
        run["created_at"] = draw(st.sampled_from([2**63, 2**64, -(2**63), -(2**64)]))
    elif how == "key":
        run[draw(_OTHER_KEYS)] = draw(_ANY)
    elif how == "input":  # agno 1.x keeps none; the general path derives one, or checks the one given
        run[draw(st.sampled_from(["input", "metadata"]))] = draw(st.one_of(_ANY, st.just(""), st.just({})))
    elif how == "team":  # a team's run in an agent table
        run["team_id"] = draw(st.one_of(_TEXT, st.none()))
        if draw(st.booleans()):
            run.pop("agent_id", None)
    elif how == "messages":
        run["messages"] = draw(st.one_of(_TEXT, st.dictionaries(_TEXT, _TEXT, max_size=1), st.integers()))
    elif how == "message":
        messages = run.setdefault("messages", None) or []
        key, value = draw(_MESSAGE_SPOILERS)
        message = draw(_message())
        message[key] = value
        messages.insert(draw(st.integers(0, len(messages))), message)
        run["messages"] = messages
    elif how == "message item":
        messages = run.get("messages") or []
        messages.insert(draw(st.integers(0, len(messages))), draw(st.one_of(_TEXT, st.none(), st.integers())))
        run["messages"] = messages
    elif how == "tools":
        run["tools"] = draw(st.one_of(_TEXT, st.dictionaries(_TEXT, _TEXT, max_size=1)))
    else:
        tools = run.get("tools") or []
        tool = draw(_tool())
        tool[draw(st.sampled_from(["unknown", "function"]))] = draw(_ANY)
        item = draw(st.one_of(st.just(tool), _TEXT, st.none()))
        tools.insert(draw(st.integers(0, len(tools))), item)
        run["tools"] = tools
    return run


_SESSION = "s1"
_CREATED = 1_700_000_000


def _general(raw: dict[str, Any], user_id: str | None, entity: str | None, parent: str | None) -> Any:
    """What mapping's ``_add_runs`` does with a run of an agent table the general way: the run, members, rows, problems."""
    kind = "team" if member_kind(raw) == "team" else "agent"
    builder = RunBuilder(session_id=_SESSION, user_id=user_id, created_at=_CREATED)
    data, members = convert_run(raw, kind, _SESSION, "fallback-id", user_id, entity if kind == "agent" else None)
    problems = [p for m in members for p in unfit_fields(m, member_kind(m))] + unfit_fields(data, kind)
    for member in members:
        builder.add(member, member_kind(member), member.get("parent_run_id"))
    builder.add(data, kind, parent)
    return repr(data), repr(members), problems, repr(builder.runs)


def _shortcut(raw: dict[str, Any], user_id: str | None, entity: str | None, parent: str | None) -> Any:
    """The same through the shortcut; None when it does not take the run."""
    builder = RunBuilder(session_id=_SESSION, user_id=user_id, created_at=_CREATED)
    data = plain_agent_run(raw, _SESSION, "fallback-id", user_id, entity)
    if data is None:
        return None
    builder.add(data, "agent", parent)
    return repr(data), repr([]), [], repr(builder.runs)


_OWNERS = st.tuples(st.one_of(st.none(), st.just("u1")), st.one_of(st.none(), st.just("agent-1")))
_PARENTS = st.one_of(st.none(), st.just("workflow-run"))


@settings(max_examples=600, deadline=None)
@given(PLAIN_RUNS, _OWNERS, _PARENTS)
# Cases met only now and then by chance: an empty reply left RUNNING, the turn's input after replayed history.
@example({"status": "RUNNING", "content": "", "messages": [{"role": "user", "content": "q"}]}, (None, None), None)
@example(
    {"messages": [{"role": "user", "content": "old", "from_history": True}, {"role": "user", "content": "new"}]},
    ("u1", "agent-1"),
    None,
)
# agno 1.8.4's tool calls, stamped when agno was imported: one with its result message, one without.
@example(
    {
        "created_at": 100,
        "messages": [
            {"role": "assistant", "tool_calls": [{"id": "call-1", "type": "function"}], "created_at": 150},
            {"role": "tool", "tool_call_id": "call-1", "content": "found", "created_at": 160},
            {"role": "assistant", "content": "done", "created_at": 170},
        ],
        "tools": [{"tool_call_id": "call-1", "created_at": 100}, {"tool_call_id": "call-2", "created_at": 100}],
    },
    (None, None),
    None,
)
def test_a_plain_agent_run_takes_the_shortcut_and_is_mapped_as_the_general_path_maps_it(
    raw: dict[str, Any], owners: tuple[str | None, str | None], parent: str | None
) -> None:
    """Compared by ``repr``: key order (the bytes written) and ``1`` against ``True`` or ``1.0`` count."""
    user_id, entity = owners
    before = repr(raw)
    fast = _shortcut(copy.deepcopy(raw), user_id, entity, parent)
    assert fast is not None, "a plain run went the general way"
    assert fast == _general(copy.deepcopy(raw), user_id, entity, parent)
    shared = _shortcut(raw, user_id, entity, parent)  # on the run itself: it is read, never changed
    assert repr(raw) == before and shared == fast


@settings(max_examples=1500, deadline=None)
@given(near_misses(), _OWNERS, _PARENTS)
# Events agno 3 has no class for (agno 1.x's names), and events that are not a list.
@example({"run_id": "r1", "events": [{"event": "RunResponseContent"}]}, (None, None), None)
@example({"run_id": "r1", "events": "started"}, (None, None), None)
def test_a_run_near_a_plain_one_is_mapped_as_the_general_path_maps_it(
    raw: dict[str, Any], owners: tuple[str | None, str | None], parent: str | None
) -> None:
    """A run the shortcut takes gives what the general path gives; one it does not take is left as it was."""
    user_id, entity = owners
    before = repr(raw)
    fast = _shortcut(raw, user_id, entity, parent)
    assert repr(raw) == before
    if fast is not None:
        assert fast == _general(copy.deepcopy(raw), user_id, entity, parent)


def _agno1_agent_sessions(db: Path) -> None:
    """Agent runs as real agno 1.8.4 writes them: two turns with history, one with a tool call, a v2 Workflow's
    step agent."""
    from tests.agno3_sources import run_tool_call_turn
    from tests.agno_runner import close_storages, run_turn

    try:
        for kind in ("agent", "workflow_v2"):
            for message in ("first question", "second question"):
                run_turn(kind, "agno", str(db), f"s-{kind}", "user-1", message)
    finally:
        close_storages()
    assert run_tool_call_turn(str(db), "tools", "u", "what hovers?").tools


def test_real_agno_1_8_4_agent_runs_take_the_shortcut_and_map_as_the_general_path_maps_them(
    tmp_path: Path, monkeypatch: Any
) -> None:
    db = tmp_path / "agno1.db"
    _agno1_agent_sessions(db)
    tables = {Mode.AGENT: "agent_sessions", Mode.WORKFLOW_V2: "workflow_v2_sessions"}
    source = Source(SourceSpec(src=str(db), tables=tables, schema=None))

    def map_all() -> list[Any]:
        out = []
        for session_id, modes, _ in source.plan():
            read = [source.stores[mode].read_stored(session_id)[0] for mode in modes]
            out.append(mapping.map_session(session_id, [s for s in read if s is not None]))
        return out

    taken: list[str] = []

    def counted(raw: Any, *args: Any) -> Any:
        data = plain_agent_run(raw, *args)
        if data is not None:
            taken.append(raw["run_id"])
        return data

    monkeypatch.setattr(mapping, "plain_agent_run", counted)
    fast = map_all()
    monkeypatch.setattr(mapping, "plain_agent_run", lambda *args: None)
    general = map_all()
    assert repr(fast) == repr(general)
    agent_runs = [r.run_id for m in general for r in m.runs if r.run_type == "agent"]
    # Every agent run took the shortcut: the two turns, the tool call's, the step agent's two.
    assert len(taken) == 5 and sorted(taken) == sorted(agent_runs)
    (tool_run,) = [r for m in general for r in m.runs if r.session_id == "tools"]
    assert tool_run.run_data["tools"] and any(m.get("tool_calls") for m in tool_run.run_data["messages"])
