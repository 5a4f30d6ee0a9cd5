"""Time bounds as the CLI and the HTTP API take them: whole seconds that select exactly what the time given does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agno_storage.times import TIMES, bound

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _exact(moment: datetime) -> Fraction:
    delta = moment - _EPOCH
    return Fraction(delta.days * 86400 + delta.seconds) + Fraction(delta.microseconds, 1_000_000)


@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)),
    st.integers(-18 * 60, 18 * 60),
)
def test_a_bound_selects_the_whole_seconds_at_or_after_the_time_given(moment: datetime, offset_minutes: int) -> None:
    """``t >= bound`` is ``t >= time`` and ``t < bound`` is ``t < time`` for every whole second t, any offset."""
    shown = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    whole = bound(shown.isoformat())
    exact = _exact(moment)
    for t in (whole - 2, whole - 1, whole, whole + 1):
        assert (t >= whole) == (t >= exact)
        assert (t < whole) == (t < exact)


def test_text_without_an_offset_is_utc_and_unix_seconds_are_taken_as_they_are() -> None:
    assert bound("1970-01-02") == 86400 == bound("86400") == bound("1970-01-02T01:00:00+01:00")
    assert bound("-5") == -5
    assert bound(str(TIMES[-1])) == TIMES[-1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("yesterday", "expected Unix seconds or an ISO 8601 date or time"),
        ("", "expected Unix seconds or an ISO 8601 date or time"),
        ("1e9", "expected Unix seconds or an ISO 8601 date or time"),
        ("99999999999999999", "years 1 to 9999"),  # fits 64 bits, past year 9999
        ("9" * 19, "expected Unix seconds or an ISO 8601 date or time"),  # past 64 bits
    ],
)
def test_other_text_is_a_value_error_saying_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bound(text)
