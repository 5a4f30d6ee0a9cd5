"""The times of agno 1.x runs, messages and tool calls as agno 3 reads them: whole seconds, a run's the latest
of its own and its messages', a tool call's its result message's.

agno 1.8.4 stamps an agent or team run with its ``ModelResponse.created_at``
and a tool call with its ``ToolExecution.created_at``, class attributes
evaluated once, when agno is imported: every run and call a process writes
carries the time the process imported agno. Its messages carry their own
times (pydantic's ``default_factory``, per message), and it records a tool
call right after the message holding its result.
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


#: What :func:`stamp_tool` gives when a tool call had no time to keep (none, or the one it is given).
UNCHANGED: Any = object()


def result_times(messages: Any) -> dict[str, int | None]:
    """Per ``tool_call_id``, the time (:func:`whole_seconds`; None: none) of the last message of role ``tool``
    with that id in ``messages`` (a run's, converted) that the run did not replay from history: the result of
    this run's call. A replayed result is an earlier call's, whatever its id (a model may give every turn's call
    the same one). Empty when ``messages`` is not a list."""
    times: dict[str, int | None] = {}
    if type(messages) is list:
        for message in messages:
            if (
                type(message) is dict
                and message.get("role") == "tool"
                and not message.get("from_history")
                and type(call_id := message.get("tool_call_id")) is str
            ):
                times[call_id] = whole_seconds(message.get("created_at"))
    return times


def stamp_tool(tool: dict[str, Any], results: dict[str, int | None], run_time: int | None) -> Any:
    """Make the time of the tool call ``tool`` (agno 3's dict, changed in place) its result message's
    (``results``, of :func:`result_times`), or ``run_time`` (its run's, once :func:`stamp_run` made it; None:
    none that is a number) where no message with a time holds its result; return the value it had, to keep,
    or :data:`UNCHANGED` (it had none, or had that one; or no time is known, and it is left as it is)."""
    call_id = tool.get("tool_call_id")
    seconds = results.get(call_id) if type(call_id) is str else None
    if seconds is None:
        if run_time is None:
            return UNCHANGED
        seconds = run_time
    own = tool.get("created_at", UNCHANGED)
    tool["created_at"] = seconds
    if type(own) is int and own == seconds:
        return UNCHANGED
    return own


__all__ = ["LIMIT", "UNCHANGED", "reads_as_seconds", "result_times", "stamp_run", "stamp_tool", "whole_seconds"]
