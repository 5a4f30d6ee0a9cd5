"""The shortcut for a plain agno 1.x agent run: converted and checked in one step.

Most runs agno 1.x writes are an agent's with the same few keys (content,
metrics, model, messages, tools, ...), messages of text and tool calls, no
media. :func:`plain_agent_run` gives for such a run what
:func:`~agno_storage.agno3.runs.convert_run` gives, which
:func:`~agno_storage.agno3.checks.unfit_fields` then finds nothing to move in,
without the general path's tests of every field agno 3 reads otherwise; for
any other run it gives None and the general path is taken.
``tests/test_agno3_plain.py`` checks both give the same, byte for byte.
"""

from __future__ import annotations

from typing import Any

from agno_storage.agno3.checks import CONTENT_TYPES, KEEP_KEY, MEDIA_KEYS, SHAPES, is_object_list
from agno_storage.agno3.fields import AGENT_RUN_FIELDS, MESSAGE_FIELDS, TOOL_FIELDS
from agno_storage.agno3.runs import convert_held_metrics, convert_status, time_as_duration
from agno_storage.agno3.times import LIMIT, UNCHANGED, result_times, stamp_run, stamp_tool, whole_seconds

#: The keys of a plain agent run that are agno 3's: the run fields that convert_run copies as they are, and the
#: three it converts here. Not among them: ``input`` and ``metadata`` (merged with what is made of them), and
#: every field agno 3 reads as a list or object but these three.
PLAIN_RUN_KEYS = (AGENT_RUN_FIELDS - SHAPES.keys() - {"input", "metadata"}) | {"messages", "metrics", "tools"}
#: Keys agno 3 has no field for that convert_run does more with than keep them in metadata as they are (lifted
#: into fields of agno 3's, or telling a team's run): a run with one is not plain.
NOT_KEPT_AS_THEY_ARE = frozenset({"extra_data", "thinking", "workflow_metrics", "team_id"})
#: The keys of a plain message: agno 3's message fields but the media ones.
PLAIN_MESSAGE_KEYS = MESSAGE_FIELDS - MEDIA_KEYS

#: Per key order of a run dict: None when it is not a plain run's, else its keys agno 3 has no field for (agno
#: 1.8.4's ``formatted_tool_calls``), in order. A run's keys come in the same order, run after run.
_PLAIN_ORDERS: dict[tuple[Any, ...], tuple[Any, ...] | None] = {}
#: Distinct key orders kept; past it the keys are looked at on every call.
_PLAIN_ORDERS_KEPT = 256
_UNSEEN: Any = object()
#: No message time yet: below every time a message's is counted at (stamp_run's range).
_NO_TIME = -LIMIT


def _plain_order(raw: dict[Any, Any]) -> tuple[Any, ...] | None:
    """None if ``raw``'s keys are not a plain run's, else those agno 3 has no field for."""
    keys = tuple(raw)
    plan: tuple[Any, ...] | None = _PLAIN_ORDERS.get(keys, _UNSEEN)
    if plan is _UNSEEN:
        rest = tuple(k for k in keys if k not in AGENT_RUN_FIELDS)
        plain = PLAIN_RUN_KEYS.issuperset(k for k in keys if k in AGENT_RUN_FIELDS)
        plan = rest if plain and NOT_KEPT_AS_THEY_ARE.isdisjoint(rest) else None
        # Kept only for plain text keys (what JSON gives), as the metrics' conversions are.
        if len(_PLAIN_ORDERS) < _PLAIN_ORDERS_KEPT and all(type(k) is str for k in keys):
            _PLAIN_ORDERS[keys] = plan
    return plan


def plain_agent_run(
    raw: Any, session_id: str, fallback_id: str, user_id: str | None, entity_id: str | None
) -> dict[str, Any] | None:
    """``convert_run(raw, "agent", session_id, fallback_id, user_id, entity_id)``'s run dict when ``raw`` is a
    plain agent run (no member runs; nothing for :func:`~agno_storage.agno3.checks.unfit_fields` to move or
    say); None for any other ``raw`` (nothing of it changed).

    Plain: a dict of :data:`PLAIN_RUN_KEYS` and of keys agno 3 has no field
    for but those of :data:`NOT_KEPT_AS_THEY_ARE`, whose ``messages`` and ``tools``
    (when given) are lists of dicts of agno 3's message (no media) and tool
    fields, each message with a text role, content agno 3 takes and whole
    seconds or no ``created_at``.
    """
    if type(raw) is not dict:
        return None
    rest = _plain_order(raw)
    if rest is None:
        return None
    keep: dict[str, Any] = {}
    if rest:  # kept in metadata as they are
        data = {k: v for k, v in raw.items() if k not in rest}
        keep["fields"] = {k: raw[k] for k in rest}
    else:
        data = raw.copy()
    # In convert_run's order: the keys a run lacks are added in this order, and kept ones in this order too.
    run_id = raw.get("run_id")
    data["run_id"] = run_id if isinstance(run_id, str) and run_id else fallback_id
    data["session_id"] = session_id
    if user_id is not None and data.get("user_id") is None:
        data["user_id"] = user_id
    status = raw.get("status")
    # agno 1.x leaves every run RUNNING: one with its reply is COMPLETED (what convert_status gives, its tests
    # in order).
    if type(status) is str and status == "RUNNING" and (reply := raw.get("content")) is not None and reply != "":
        status = "COMPLETED"
    else:
        status = convert_status(raw)
    if raw.get("status") != status:
        keep["status"] = raw.get("status")
    data["status"] = status
    if "agent_id" not in data:
        data["agent_id"] = entity_id
    messages = data.get("messages")
    text: str | None = None
    latest = _NO_TIME  # the latest message's time (stamp_run)
    if messages is not None:
        if type(messages) is not list:
            return None
        converted: list[dict[str, Any]] = []
        extras: dict[str, Any] = {}
        for i, message in enumerate(messages):
            if type(message) is not dict:
                return None
            role = message.get("role")
            content = message.get("content")
            if (
                type(role) is not str
                or not PLAIN_MESSAGE_KEYS.issuperset(message)
                or not isinstance(content, CONTENT_TYPES)
                or ((calls := message.get("tool_calls")) is not None and not is_object_list(calls))
            ):
                return None
            stamp = message.get("created_at")
            if type(stamp) is int:  # agno 1.x's whole seconds
                if stamp > latest:
                    latest = stamp
            elif stamp is not None or "created_at" in message:
                return None
            copied = message.copy()
            converted.append(copied)
            if "metrics" in copied and (lost := convert_held_metrics(copied)) is not None:
                extras[str(i)] = {"metrics": lost}
            # The run's input is its first user message of this turn (convert_run's _first_user_text).
            if text is None and role == "user" and not message.get("from_history") and isinstance(content, str):
                text = content
    tools = data.get("tools")
    if tools is not None:
        if type(tools) is not list:
            return None
        kept_tools: list[dict[str, Any]] = []
        for tool in tools:
            if type(tool) is not dict or not TOOL_FIELDS.issuperset(tool):
                return None
            kept = tool.copy()
            time_as_duration(kept)
            kept_tools.append(kept)
        data["tools"] = kept_tools
    if latest >= LIMIT:  # a message time agno 3's columns cannot hold: the general path leaves it out
        return None
    # Every check is passed: from here on the run is converted as convert_run does, in its order.
    if "metrics" in data and (lost := convert_held_metrics(data)) is not None:
        keep["metrics"] = lost
    if messages is not None:
        data["messages"] = converted
        if extras:
            keep["messages"] = extras
    own = data.get("created_at")
    if (type(own) is not int or own < latest or own >= LIMIT) and latest != _NO_TIME:
        stamp_run(data, latest, keep)
    if tools:  # each call's time its result message's, or the run's (convert_run's stamp_tool)
        results = result_times(converted if messages is not None else None)
        run_time = whole_seconds(data.get("created_at"))
        tool_times: dict[str, Any] = {}
        for i, kept in enumerate(kept_tools):
            if (stamp := stamp_tool(kept, results, run_time)) is not UNCHANGED:
                tool_times[str(i)] = {"created_at": stamp}
        if tool_times:
            keep["tools"] = tool_times
    if text is not None:
        data["input"] = {"input_content": text}
    if keep:
        data["metadata"] = {KEEP_KEY: keep}
    return data


__all__ = ["NOT_KEPT_AS_THEY_ARE", "PLAIN_MESSAGE_KEYS", "PLAIN_RUN_KEYS", "plain_agent_run"]
