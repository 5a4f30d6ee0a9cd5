"""agno 1.x messages read the same whichever way the reader takes them.

The history reader takes a stored message that has every key agno 1.x
writes (``from_history``, ``role``, ``content``, ``created_at``) through a
short inline path, and any other through a general one. A message with
``from_history`` false means what the same message without the key means,
so reading a conversation with that key left out of every message that is
not replayed must give the same messages, or the same error, as reading it
as stored.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agno_storage import CorruptRowError
from agno_storage.conversation import memory_messages

_TEXT = st.text(max_size=8)


def _messages(*, malformed: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Stored messages of the shape agno 1.x writes; ``malformed``: with values of the wrong type too."""
    wrong: list[st.SearchStrategy[Any]] = [st.none(), st.integers(), _TEXT, st.booleans()] if malformed else []
    tool_field = st.one_of(st.none(), _TEXT, *([st.integers()] if malformed else []))
    stored = st.fixed_dictionaries(
        {
            "from_history": st.one_of(st.booleans(), *([st.none(), st.just(1)] if malformed else [])),
            "role": st.one_of(st.sampled_from(["user", "assistant", "system", "tool"]), *wrong[:2]),
            "content": st.one_of(
                st.sampled_from(["the same prompt", "another prompt"]),
                _TEXT,
                st.none(),
                st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": _TEXT}), max_size=2),
                st.integers(),
            ),
            "created_at": st.one_of(
                st.integers(min_value=0, max_value=2**40),
                st.floats(allow_nan=False, allow_infinity=False, min_value=0, max_value=2**40),
                st.none(),
                *wrong[2:],
            ),
        }
    )
    extras = {
        "tool_calls": st.one_of(
            st.none(),
            st.just([]),
            st.lists(st.dictionaries(_TEXT, _TEXT, max_size=2), max_size=2),
            *([_TEXT] if malformed else []),
        ),
        "tool_call_id": tool_field,
        "tool_name": tool_field,
        "name": tool_field,
        "metrics": st.dictionaries(_TEXT, st.integers(), max_size=2),
    }
    # A third with no more keys, a third with one of them, a third with any of them.
    one = st.sampled_from(sorted(extras)).flatmap(lambda k: st.fixed_dictionaries({k: extras[k]}))
    more = st.one_of(st.just({}), one, st.fixed_dictionaries({}, optional=extras))
    return st.builds(lambda base, extra: {**base, **extra}, stored, more)


def _runs(stored: st.SearchStrategy[Any]) -> st.SearchStrategy[list[dict[str, Any]]]:
    run = st.fixed_dictionaries({"run_id": st.sampled_from(["r1", "r2"]), "messages": st.lists(stored, max_size=6)})
    return st.lists(run, min_size=1, max_size=4)


def _read(memory: dict[str, Any]) -> Any:
    try:
        return memory_messages(memory, "s1", "agent_sessions")
    except CorruptRowError as exc:
        return ("CorruptRowError", str(exc), exc.table, exc.session_id, exc.column)


def _without_from_history_false(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            **run,
            "messages": [
                {k: v for k, v in m.items() if not (k == "from_history" and v is not True)}
                if isinstance(m, dict)
                else m
                for m in run["messages"]
            ],
        }
        for run in runs
    ]


@settings(max_examples=500, deadline=None)
@given(runs=_runs(_messages(malformed=False)))
def test_a_message_reads_the_same_with_or_without_from_history_false(runs: list[dict[str, Any]]) -> None:
    assert _read({"runs": runs}) == _read({"runs": _without_from_history_false(runs)})


@settings(max_examples=300, deadline=None)
@given(runs=_runs(st.one_of(_messages(malformed=True), st.none(), st.integers(), _TEXT, st.lists(st.integers()))))
def test_a_malformed_message_fails_the_same_with_or_without_from_history_false(runs: list[dict[str, Any]]) -> None:
    assert _read({"runs": runs}) == _read({"runs": _without_from_history_false(runs)})


def test_a_message_missing_a_key_agno_writes_is_read_as_one_that_has_it() -> None:
    # No from_history, no content, no created_at: the general path reads it as agno's own shape.
    stored = [{"role": "user", "content": "hi", "created_at": 5, "from_history": False}, {"role": "assistant"}]
    got = memory_messages({"runs": [{"run_id": "r1", "messages": stored}]}, "s1", "agent_sessions")
    assert [(m.role, m.content, m.created_at, m.run_id) for m in got] == [
        ("user", "hi", 5, "r1"),
        ("assistant", None, None, "r1"),
    ]
