"""``history()`` reads a session's JSON without the codec's scan for wide integers, and gives what the exact read gives.

orjson reads an integer past 64 bits as a float; ``read()`` scans every JSON
text for integers of 19 or more digits and reads a text holding one with the
standard library. ``history()`` skips that scan (``RowCodec.decode_lax``) and
asks for it only before it uses a value such an integer could change. Each
test here stores such integers where the conversation reader uses them and
checks ``history()`` against the values stored and against
``conversation.history(..., read=store.read)``, which reads the row exactly.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agno_storage import AgentSession, CorruptRowError, Message, TeamSession, WorkflowSession, WorkflowSessionV2
from agno_storage.backends.base import BaseStorage
from agno_storage.codec import RowCodec
from agno_storage.conversation import history
from tests.conftest import StoreFactory

#: Two integers past 64 bits that orjson reads as the same float.
WIDE = 2**70
WIDER = 2**70 + 1


def said(role: str, content: Any, at: Any = 1_700_000_000, **more: Any) -> dict[str, Any]:
    return {"role": role, "content": content, "created_at": at, "from_history": False, **more}


def memory(*runs: list[dict[str, Any]], **run_fields: Any) -> dict[str, Any]:
    return {"runs": [{"run_id": f"r{i}", "messages": m, **run_fields} for i, m in enumerate(runs)]}


def exact_and_lax(store: BaseStorage, session_id: str) -> list[Message]:
    """``history()`` (lax), after checking it equals the exact read's."""
    exact = history(store, session_id, read=store.read)
    got = store.history(session_id)
    assert got == exact
    return got


def test_a_created_at_past_64_bits_is_the_integer_stored(make_store: StoreFactory) -> None:
    store = make_store()
    store.upsert(AgentSession(session_id="s", memory=memory([said("user", "hi", 2**64 + 1)])))
    assert [m.created_at for m in exact_and_lax(store, "s")] == [2**64 + 1]


def test_a_run_answer_dated_past_64_bits_is_the_integer_stored(make_store: StoreFactory) -> None:
    # A run that kept no messages (an agno v1 workflow's): its answer alone, at the run's time.
    store = make_store("workflow")
    stored = {"runs": [{"run_id": "r0", "content": "done", "created_at": 2**64 + 3}]}
    store.upsert(WorkflowSession(session_id="s", memory=stored))
    assert [(m.content, m.created_at) for m in exact_and_lax(store, "s")] == [("done", 2**64 + 3)]


def test_a_run_answer_holding_wide_integers_shows_them_as_written(make_store: StoreFactory) -> None:
    store = make_store("workflow")
    store.upsert(WorkflowSession(session_id="s", memory={"runs": [{"run_id": "r0", "content": {"n": WIDER}}]}))
    assert [m.content for m in exact_and_lax(store, "s")] == [f'{{"n":{WIDER}}}']


def test_structured_content_shows_its_wide_integers_as_written(make_store: StoreFactory) -> None:
    store = make_store()
    content = [{"n": WIDER}]
    store.upsert(AgentSession(session_id="s", memory=memory([said("user", content)])))
    assert [m.content for m in exact_and_lax(store, "s")] == [f'[{{"n":{WIDER}}}]']


def test_tool_calls_keep_their_wide_integers(make_store: StoreFactory) -> None:
    store = make_store()
    calls = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}, "n": WIDER}]
    store.upsert(AgentSession(session_id="s", memory=memory([said("assistant", None, tool_calls=calls)])))
    assert [m.tool_calls for m in exact_and_lax(store, "s")] == [calls]


def test_two_system_prompts_that_differ_past_64_bits_both_show(make_store: StoreFactory) -> None:
    # Read as floats the two prompts' contents are equal, and the second would be left out as sent again.
    store = make_store()
    first, second = {"n": WIDE}, {"n": WIDER}
    store.upsert(AgentSession(session_id="s", memory=memory([said("system", first)], [said("system", second)])))
    assert [m.content for m in exact_and_lax(store, "s")] == [f'{{"n":{WIDE}}}', f'{{"n":{WIDER}}}']


def test_a_replayed_system_prompt_past_64_bits_is_the_one_the_next_run_is_compared_with(
    make_store: StoreFactory,
) -> None:
    # A run with extra_data: its first message is the speaker's last system prompt even when agno replayed it
    # (from_history), so it is not read as a message; the next run's prompt, the same as text, is left out.
    # Read as a float, the replayed prompt would be other text, and the next one would show.
    store = make_store()
    runs = [
        {
            "run_id": "r0",
            "messages": [said("system", {"n": WIDE}, from_history=True), said("user", "question 0")],
            "extra_data": {"note": "x"},
        },
        {"run_id": "r1", "messages": [said("system", f'{{"n":{WIDE}}}'), said("user", "question 1")]},
    ]
    store.upsert(AgentSession(session_id="s", memory={"runs": runs}))
    assert [m.content for m in exact_and_lax(store, "s")] == ["question 0", "question 1"]


def test_added_messages_that_differ_past_64_bits_are_not_taken_for_the_same(make_store: StoreFactory) -> None:
    # agno's add_messages: sent again on every run, left out when the same as last time. These are not.
    # The first run's are not among its messages (so nothing else in the row is a number history uses).
    store = make_store()
    runs = [
        {
            "run_id": "r0",
            "messages": [said("user", "question 0")],
            "extra_data": {"add_messages": [said("user", WIDE)]},
        },
        {
            "run_id": "r1",
            "messages": [said("user", WIDER), said("user", "question 1")],
            "extra_data": {"add_messages": [said("user", WIDER)]},
        },
    ]
    store.upsert(AgentSession(session_id="s", memory={"runs": runs}))
    got = exact_and_lax(store, "s")
    assert [m.content for m in got] == ["question 0", str(WIDER), "question 1"]


def test_an_error_names_the_type_stored_not_the_floats(make_store: StoreFactory) -> None:
    store = make_store()
    store.upsert(AgentSession(session_id="s", memory=memory([said("tool", "42", tool_call_id=WIDE)])))
    with pytest.raises(CorruptRowError) as exact:
        history(store, "s", read=store.read)
    with pytest.raises(CorruptRowError) as lax:
        store.history("s")
    assert "is a JSON int, not a string" in str(lax.value)
    assert str(lax.value) == str(exact.value)


def test_a_go_teams_structured_content_shows_its_wide_integers(make_store: StoreFactory) -> None:
    store = make_store("team")
    team_data = {"messages": [{"role": "user", "content": {"n": WIDER}}]}
    store.upsert(TeamSession(session_id="s", team_data=team_data))
    assert [m.content for m in exact_and_lax(store, "s")] == [f'{{"n":{WIDER}}}']


def test_a_v2_workflow_steps_content_shows_its_wide_integers(make_store: StoreFactory) -> None:
    store = make_store("workflow_v2")
    runs = [{"run_id": "w0", "step_responses": [{"step_name": "s1", "content": {"n": WIDER}}]}]
    store.upsert(WorkflowSessionV2(session_id="s", runs=runs))
    assert [m.content for m in exact_and_lax(store, "s")] == [f'{{"n":{WIDER}}}']


def test_a_row_nested_as_deep_as_orjson_reads_with_a_wide_integer_reads_as_read_reads_it(tmp_path: Path) -> None:
    # orjson reads 1,024 levels; a text holding an integer past 64 bits is read again exactly, and that read
    # must go as deep, or read() refuses the row while history(), which never looks at session_data, reads it.
    from agno_storage import SqliteStorage

    db = tmp_path / "s.db"
    store = SqliteStorage("t", db_file=db)
    store.upsert(AgentSession(session_id="s", memory=memory([said("user", "hi")])))
    for depth in (995, 1023):
        deep = "[" * depth + str(WIDER) + "]" * depth
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE t SET session_data = ?", ('{"d":' + deep + "}",))
        assert [m.content for m in exact_and_lax(store, "s")] == ["hi"]
        session = store.read("s")
        assert session is not None and session.session_data is not None
        value = session.session_data["d"]
        for _ in range(depth):
            (value,) = value
        assert value == WIDER and type(value) is int
    store.close()


def test_member_runs_nested_to_the_stack_limit_read_the_same_from_any_caller(tmp_path: Path) -> None:
    # The reader recurses once per member run, lax or exact: as deep as it goes from the top of the stack it goes
    # from deep in a caller's too, and past that it is a CorruptRowError naming the session, never a RecursionError.
    from agno_storage import SqliteStorage

    db = tmp_path / "s.db"
    store = SqliteStorage("t", db_file=db)
    store.upsert(AgentSession(session_id="s", memory={"runs": []}))

    def outcome(call: Any) -> Any:
        try:
            return [m.content for m in call()]
        except CorruptRowError as exc:
            assert exc.session_id == "s" and "nested too deeply" in str(exc)
            return "too deep"

    def deep_in_a_caller(call: Any, frames: int) -> Any:
        return deep_in_a_caller(call, frames - 1) if frames else outcome(call)

    def laxly() -> list[Message]:
        return store.history("s")

    def exactly() -> list[Message]:
        return history(store, "s", read=store.read)

    seen = set()
    for depth in [*range(300, 505, 8), 505]:  # orjson reads up to 1,024 levels: about 509 member runs here
        run = '{"run_id":"m","messages":[{"role":"user","content":{"n":1}}]}'
        for _ in range(depth):
            run = '{"run_id":"r","agent_id":"a","messages":[],"member_responses":[' + run + "]}"
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE t SET memory = ?", ('{"runs":[' + run + "]}",))
        got = outcome(laxly)
        assert got == outcome(exactly) == deep_in_a_caller(laxly, 600) == deep_in_a_caller(exactly, 600), depth
        seen.add(got == "too deep")
    assert seen == {False, True}  # the limit is among the depths tried
    store.close()


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts ``RowCodec.reads_exactly`` calls (the scan history() skips)."""
    calls: list[int] = []
    real = RowCodec.reads_exactly

    def counted(self: RowCodec, row: Any) -> bool:
        calls.append(1)
        return real(self, row)

    monkeypatch.setattr(RowCodec, "reads_exactly", counted)
    yield calls


def test_a_plain_conversation_is_read_without_the_scan(make_store: StoreFactory, scans: list[int]) -> None:
    # A wide integer elsewhere in the row changes nothing history() shows, so it is not looked for.
    store = make_store()
    stored = memory([said("system", "be brief"), said("user", "hi"), said("assistant", "hello")])
    store.upsert(AgentSession(session_id="s", memory=stored, session_data={"n": WIDER}))
    assert [m.content for m in store.history("s")] == ["be brief", "hi", "hello"]
    assert scans == []


def test_the_scan_runs_once_for_a_row_however_many_values_need_it(make_store: StoreFactory, scans: list[int]) -> None:
    store = make_store()
    stored = memory([said("user", {"a": 1}, 1.5), said("assistant", {"b": 2}, 2.5)], [said("user", [1], 3.5)])
    store.upsert(AgentSession(session_id="s", memory=stored))
    assert [m.created_at for m in store.history("s")] == [1, 2, 3]
    assert scans == [1]


# --- any JSON: the lax read gives what the exact one gives ------------------------------------------

#: Numbers where the reader uses them: small and wide integers (some equal as floats), floats.
_NUMBER = st.one_of(
    st.integers(min_value=-5, max_value=5),
    st.sampled_from([WIDE, WIDER, -WIDE, 2**64 - 1, 2**64, -(2**63) - 1, 10**400]),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)
_LEAF = st.one_of(_NUMBER, st.sampled_from(["x", "y", ""]), st.none(), st.booleans())
_VALUE = st.recursive(
    _LEAF, lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.just("n"), inner), max_leaves=4
)
_MESSAGE = st.fixed_dictionaries(
    {"role": st.one_of(st.sampled_from(["user", "assistant", "system", "tool"]), _NUMBER)},
    optional={
        "content": st.one_of(st.sampled_from(["a", "b"]), _VALUE),
        "created_at": st.one_of(st.integers(0, 2**40), _NUMBER),
        "from_history": st.one_of(st.booleans(), _NUMBER),
        "tool_calls": st.one_of(st.lists(st.dictionaries(st.just("n"), _VALUE), max_size=2), _NUMBER),
        "tool_call_id": st.one_of(st.just("c"), _NUMBER),
        "name": st.one_of(st.sampled_from(["transfer_task_to_member", "f"]), _NUMBER),
    },
)


def _run(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    members = st.lists(_run(depth - 1), max_size=2) if depth else st.just([])
    return st.fixed_dictionaries(
        {"run_id": st.one_of(st.sampled_from(["r1", "r2"]), _NUMBER), "messages": st.lists(_MESSAGE, max_size=3)},
        optional={
            "member_responses": st.one_of(members, _NUMBER),
            "agent_id": st.one_of(st.just("m1"), _NUMBER),
            "extra_data": st.fixed_dictionaries({"add_messages": st.lists(_MESSAGE, max_size=2)}),
            "content": _VALUE,
            "created_at": _NUMBER,
        },
    )


#: Fewer, smaller runs than the strategies allow on their own: the text stored stays short.
_RUNS = st.lists(_run(1), min_size=1, max_size=3)


def _outcome(store: BaseStorage, read_exactly: bool) -> Any:
    try:
        return history(store, "s", read=store.read) if read_exactly else store.history("s")
    except CorruptRowError as exc:
        return ("CorruptRowError", str(exc), exc.table, exc.session_id, exc.column)


@pytest.fixture(scope="module")
def one_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaseStorage]:
    from agno_storage import SqliteStorage

    store = SqliteStorage(table_name="agent_sessions", db_file=Path(tmp_path_factory.mktemp("lax")) / "s.db")
    yield store
    store.close()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(runs=_RUNS)
def test_any_conversation_reads_as_the_exact_read_reads_it(one_store: BaseStorage, runs: list[dict[str, Any]]) -> None:
    one_store.upsert(AgentSession(session_id="s", memory={"runs": runs}))
    assert _outcome(one_store, read_exactly=False) == _outcome(one_store, read_exactly=True)


# --- well-formed conversations of every kind, numbers only where a message takes a value ---------------
#
# The test above puts wrong types everywhere, so most rows it makes end in an error early on. These rows are
# well formed (strings, lists and objects where the reader wants them), so each is read to its end, and an
# integer past 64 bits reaches every value a message is made from: content, times, tool calls, added messages,
# system prompts, in each place a conversation is kept.

#: Integers orjson reads as floats (and two it reads exactly), and floats, as a message's values.
_WIDE_OR_NOT = st.sampled_from([WIDE, WIDER, -WIDE, 2**64, -(2**63) - 1, 2**64 - 1, -(2**63), 1.5, 7])
_STRUCTURED = st.recursive(
    _WIDE_OR_NOT,
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.sampled_from(["n", "text"]), inner),
    max_leaves=3,
)
#: Text three times in four: a row whose every content is text still has its times and tool calls to read.
_CONTENT = st.sampled_from([st.sampled_from(["a", "b", str(WIDE)])] * 3 + [_STRUCTURED]).flatmap(lambda kind: kind)
_SAID = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "tool"]), "content": _CONTENT},
    optional={
        "created_at": st.one_of(st.integers(0, 2**40), _WIDE_OR_NOT),
        "from_history": st.booleans(),
        "tool_calls": st.lists(st.fixed_dictionaries({"id": st.just("c"), "n": _CONTENT}), max_size=1),
        "name": st.sampled_from(["transfer_task_to_member", "f"]),
    },
)
_SAID_LIST = st.lists(_SAID, max_size=3)


def _agno_run(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"run_id": st.sampled_from(["r1", "r2"]), "messages": _SAID_LIST},
        optional={
            "member_responses": st.lists(_agno_run(depth - 1), max_size=1) if depth else st.just([]),
            "agent_id": st.just("m1"),
            "extra_data": st.fixed_dictionaries({"add_messages": _SAID_LIST}),
            "content": _CONTENT,
            "created_at": _WIDE_OR_NOT,
        },
    )


_AGNO_RUNS = st.lists(_agno_run(1), min_size=1, max_size=3)
#: Memory v2 runs (keyed by session too), AgentMemory / TeamMemory runs of {message, messages, response},
#: their memory.messages, and an agno v1 workflow's runs that kept their answer alone.
_MEMORIES = st.one_of(
    _AGNO_RUNS.map(lambda runs: {"runs": runs}),
    _AGNO_RUNS.map(lambda runs: {"runs": {"s": runs, "other": runs}}),
    st.lists(
        st.fixed_dictionaries(
            {"response": _agno_run(0) | st.fixed_dictionaries({"run_id": st.just("r"), "content": _CONTENT})},
            optional={"message": _SAID, "messages": _SAID_LIST},
        ),
        min_size=1,
        max_size=2,
    ).map(lambda runs: {"runs": runs}),
    _SAID_LIST.map(lambda messages: {"messages": messages}),
    st.lists(
        st.fixed_dictionaries({"run_id": st.just("r"), "content": _CONTENT, "created_at": _WIDE_OR_NOT}),
        min_size=1,
        max_size=2,
    ).map(lambda runs: {"runs": runs}),
)
_STEPS = st.recursive(
    st.fixed_dictionaries({"content": _CONTENT}, optional={"step_name": st.just("a")}),
    lambda inner: (
        st.fixed_dictionaries({"response": _agno_run(0)}, optional={"step_name": st.just("b")})
        | st.fixed_dictionaries({"steps": st.lists(inner, min_size=1, max_size=2)})
    ),
    max_leaves=3,
)


@st.composite
def _well_formed(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["agent", "team", "workflow", "workflow_v2"]))
    if kind == "agent":
        return AgentSession(session_id="s", memory=draw(_MEMORIES))
    if kind == "team":
        go_team = {"messages": [{"role": m["role"], "content": m["content"]} for m in draw(_SAID_LIST)]}
        return TeamSession(session_id="s", memory=draw(st.none() | _MEMORIES), team_data=go_team)
    if kind == "workflow":
        return WorkflowSession(session_id="s", memory=draw(_MEMORIES))
    runs = st.fixed_dictionaries({"run_id": st.just("w"), "step_responses": st.lists(_STEPS, max_size=2)})
    return WorkflowSessionV2(session_id="s", runs=draw(st.lists(runs, min_size=1, max_size=2)))


@pytest.fixture(scope="module")
def mode_stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[type[Any], BaseStorage]]:
    from agno_storage import SqliteStorage

    db = Path(tmp_path_factory.mktemp("lax_modes")) / "s.db"
    kinds = {AgentSession: "agent", TeamSession: "team", WorkflowSession: "workflow", WorkflowSessionV2: "workflow_v2"}
    stores = {kind: SqliteStorage(table_name=f"t_{mode}", db_file=db, mode=mode) for kind, mode in kinds.items()}
    yield stores
    for store in stores.values():
        store.close()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(session=_well_formed())
def test_any_well_formed_conversation_of_any_kind_reads_as_the_exact_read_reads_it(
    mode_stores: dict[type[Any], BaseStorage], session: Any
) -> None:
    store = mode_stores[type(session)]
    store.upsert(session)
    assert _outcome(store, read_exactly=False) == _outcome(store, read_exactly=True)
