"""Times as callers give them (Unix seconds or ISO 8601) turned into the whole Unix seconds the tables keep."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

#: The Unix seconds of the years 1 to 9999, the times ISO 8601 text can spell.
TIMES = range(-62135596800, 253402300800)
#: Unix seconds as digits: at most 18, so every one fits the 64-bit columns both engines keep times in.
_UNIX_SECONDS = re.compile(r"-?[0-9]{1,18}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


def bound(text: str) -> int:
    """A time bound as whole Unix seconds: Unix seconds, or an ISO 8601 date or time (UTC unless it says otherwise).

    A time within a second is rounded up: the tables keep whole seconds, so
    ``t >= bound`` and ``t < bound`` then select the sessions at or after
    and before the time given, exactly. Raises ValueError, saying what was
    expected, for other text or a time outside the years 1 to 9999.
    """
    if _UNIX_SECONDS.fullmatch(text):
        if int(text) not in TIMES:
            raise ValueError(f"expected a time in the years 1 to 9999, got {text!r}")
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expected Unix seconds or an ISO 8601 date or time, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    whole, part = divmod(moment - _EPOCH, _SECOND)  # exact: a float's timestamp() can round across a second
    return whole + (part > timedelta(0))


__all__ = ["TIMES", "bound"]
