"""agno 1.x run and message metrics as agno 3's: renamed, totalled, zeros left out, nothing dropped silently."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agno_storage.agno3.fields import METRIC_RENAMES, METRICS_FIELDS, SESSION_METRICS_FIELDS
from agno_storage.agno3.metrics import _compile, _convert_by_plan, _metric_plan, convert_metrics

RUN_1X = {
    "input_tokens": [400, 33],
    "output_tokens": [100, 36],
    "total_tokens": [500, 69],
    "time": [1.0, 0.25],
    "time_to_first_token": [None, 0.5, 0.75],
    "prompt_tokens": [433],
    "cached_tokens": [0],
}


def test_a_run_s_per_call_lists_become_agno3_totals_under_agno3_names() -> None:
    out, lossy = convert_metrics(RUN_1X)
    assert out == {
        "input_tokens": 433,
        "output_tokens": 136,
        "total_tokens": 569,
        "duration": 1.25,
        "time_to_first_token": 0.5,  # the first call that had one
        "additional_metrics": {"prompt_tokens": 433},  # no agno 3 field: kept, not dropped
    }
    assert lossy  # lists were totalled: the caller keeps the original too


def test_scalar_metrics_with_known_names_carry_over_exactly() -> None:
    out, lossy = convert_metrics({"input_tokens": 3, "output_tokens": 0, "time": 0.5, "cost": None})
    assert out == {"input_tokens": 3, "duration": 0.5}
    assert not lossy


def test_a_list_that_is_not_all_numbers_has_no_total() -> None:
    out, lossy = convert_metrics({"input_tokens": [1, True], "output_tokens": [2, None], "total_tokens": []})
    assert out == {} and lossy


def test_additional_metrics_merge_with_names_agno3_does_not_know() -> None:
    out, lossy = convert_metrics({"additional_metrics": {"a": 1}, "weird": "x", "unused": 0})
    assert out == {"additional_metrics": {"a": 1, "weird": "x"}}
    assert lossy  # "weird" and "unused" have no agno 3 field


def test_session_metrics_have_no_time_to_first_token_field() -> None:
    out, _ = convert_metrics({"time_to_first_token": 0.5, "input_tokens": 2}, SESSION_METRICS_FIELDS)
    assert out == {"input_tokens": 2, "additional_metrics": {"time_to_first_token": 0.5}}


@pytest.mark.parametrize("value", [None, [], "text", 3])
def test_metrics_that_are_not_an_object_are_none_and_lossy_unless_absent(value: Any) -> None:
    out, lossy = convert_metrics(value)
    assert out is None and lossy is (value is not None)


def test_the_same_names_in_another_order_or_again_give_the_same_metrics() -> None:
    """The per-key-order plan is kept between calls: a second call, or another order, must not change a value."""
    first = convert_metrics(dict(RUN_1X))
    again = convert_metrics(dict(RUN_1X))
    reordered = convert_metrics(dict(reversed(list(RUN_1X.items()))))
    assert first == again
    assert reordered[0] is not None and first[0] is not None
    assert reordered[0] == first[0] and reordered[1] == first[1]


def test_a_key_that_is_not_text_is_kept_aside_and_changes_nothing_else() -> None:
    out, lossy = convert_metrics({"input_tokens": 3, 1: "x"})
    assert out == {"input_tokens": 3, "additional_metrics": {1: "x"}} and lossy


def test_a_text_subclass_key_gives_what_plain_text_gives_whatever_was_seen_before() -> None:
    import enum

    class Name(enum.StrEnum):
        INPUT = "input_tokens"
        NEW = "brand_new_metric_name"

    fresh = convert_metrics({Name.NEW: 5})  # never seen as plain text: planned as it is
    assert fresh == ({"additional_metrics": {Name.NEW: 5}}, True)
    assert convert_metrics({"brand_new_metric_name": 5}) == fresh
    assert convert_metrics({Name.NEW: 5}) == fresh  # a plain-text plan is kept now; same answer
    assert convert_metrics({Name.INPUT: 7}) == ({"input_tokens": 7}, False)


def test_the_field_set_may_be_any_set() -> None:
    assert convert_metrics({"input_tokens": 2, "time": 1.5}, set(SESSION_METRICS_FIELDS)) == (
        {"input_tokens": 2, "additional_metrics": {"time": 1.5}},
        True,
    )


@pytest.mark.parametrize(
    "metrics",
    [
        {"input_tokens": 412, "output_tokens": 118, "time": 1.25},
        {"input_tokens": [412], "time": [1.25, 0.5], "time_to_first_token": [0.3]},
        {"prompt_tokens": 3, "total_tokens": 0},
        {"input_tokens": 0},
        {},
        None,
        "fast",
        [1, 2],
    ],
)
def test_a_message_s_metrics_in_a_run_are_what_convert_message_gives(metrics: Any) -> None:
    """Messages of a run's list are converted as :func:`convert_message` converts each one, metrics and all
    (what agno 3 cannot take kept in the run's metadata under the message's index)."""
    from agno_storage.agno3.checks import KEEP_KEY
    from agno_storage.agno3.runs import convert_message, convert_run

    message = {"role": "assistant", "content": "Sure.", "created_at": 5, "metrics": metrics}
    messages = [{"role": "user", "content": "Hi"}, message]
    data, _ = convert_run({"run_id": "r", "messages": messages}, "agent", "s", "r", None, "a")
    converted, extra = convert_message(message)
    assert data["messages"] == [{"role": "user", "content": "Hi"}, converted]
    kept = (data.get("metadata") or {}).get(KEEP_KEY, {}).get("messages", {})
    assert kept == ({"1": extra} if extra else {})


_METRIC_NAMES = st.sampled_from(
    sorted(METRICS_FIELDS | set(METRIC_RENAMES) | {"prompt_tokens", "completion_tokens", "additional_metrics"})
)
_NUMBER = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True, allow_infinity=True), st.booleans()
)
_METRIC_VALUE = st.one_of(
    st.none(),
    _NUMBER,
    st.text(max_size=3),
    st.lists(st.one_of(st.none(), _NUMBER), max_size=3),
    st.lists(_NUMBER, min_size=1, max_size=1),
    st.dictionaries(st.text(max_size=3), _NUMBER, max_size=2),
)


@settings(max_examples=400, deadline=None)
@given(
    metrics=st.dictionaries(st.one_of(_METRIC_NAMES, st.text(max_size=4)), _METRIC_VALUE, max_size=9),
    session=st.booleans(),
)
def test_the_compiled_conversion_of_a_key_order_gives_what_the_general_loop_gives(
    metrics: dict[str, Any], session: bool
) -> None:
    """A key order seen before is converted by code made for it; it must give what the loop over its plan gives.

    Compared by ``repr``: a total of ``1`` is not one of ``True`` or ``1.0``, and a NaN is the same NaN.
    """
    fields = SESSION_METRICS_FIELDS if session else METRICS_FIELDS
    plan = _metric_plan(tuple(metrics), fields)
    assert repr(_compile(plan)(metrics.values())) == repr(_convert_by_plan(plan, metrics.values()))
    assert repr(convert_metrics(metrics, fields)) == repr(_convert_by_plan(plan, metrics.values()))
