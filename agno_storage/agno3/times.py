"""The times of agno 1.x runs and messages as agno 3 reads them: whole seconds, and a run's the latest of its
own and its messages'.

agno 1.8.4 stamps an agent or team run with its ``ModelResponse.created_at``,
a class attribute evaluated once, when agno is imported: every run a
process writes carries the time the process imported agno. Its messages
carry their own times (pydantic's ``default_factory``, per message).
"""

from __future__ import annotations

import math
import re
from typing import Any

#: Text agno 3's Message (pydantic, lax) reads as a message's ``created_at``: whole seconds in decimal digits, with ASCII
#: spaces around (it refuses the other characters Python counts as spaces, \x1c to \x1f).
_SECONDS_TEXT = re.compile(r"[ \t\n\r\f\v]*[+-]?[0-9]+[ \t\n\r\f\v]*")
#: What agno 3's ``BIGINT`` columns hold.
LIMIT = 2**63


def reads_as_seconds(value: Any) -> bool:
    """Whether agno 3's Message takes ``value`` as its ``created_at`` (an ``int``)."""
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return math.isfinite(value) and value.is_integer() and abs(value) < LIMIT
    return isinstance(value, str) and _SECONDS_TEXT.fullmatch(value) is not None


def whole_seconds(value: Any) -> int | None:
    """A time in seconds (an ``int`` or a finite ``float``, a fraction dropped) as the whole seconds agno 3's
    columns hold; None for anything else (text, a bool, none, out of range)."""
    if type(value) is int or (isinstance(value, int) and not isinstance(value, bool)):
        return int(value) if -LIMIT < value < LIMIT else None
    if isinstance(value, float) and math.isfinite(value) and abs(value) < LIMIT:
        return int(value)
    return None


def stamp_run(data: dict[str, Any], latest: int | None, keep: dict[str, Any]) -> None:
    """Make the time of an agent or team run ``data`` ``latest`` (its messages' latest time) where that is later
    than its own or it has none that is a number; its own, when it had one, kept in ``keep`` (what becomes its
    ``metadata["agno_v1"]``). Messages replayed from history are older than the run: they change nothing."""
    if latest is None:
        return
    own = data.get("created_at")
    if type(own) is int and -LIMIT < own < LIMIT:  # the common case: agno 1.x's whole seconds
        if own >= latest:
            return
    elif (seconds := whole_seconds(own)) is not None and seconds >= latest:
        return
    if own is not None:
        keep["created_at"] = own
    data["created_at"] = latest


__all__ = ["LIMIT", "reads_as_seconds", "stamp_run", "whole_seconds"]
