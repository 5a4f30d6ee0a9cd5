"""One agno 1.x run (agent, team or workflow) as agno 3.1.10's run dict: metrics, messages, tools, status.

What agno 3 has no field for stays in the run's ``metadata["agno_v1"]``, verbatim.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
import zlib
from collections.abc import Mapping
from typing import Any

import attrs

from agno_storage.agno3.checks import (
    CONTENT_TYPES,
    KEEP_KEY,
    MEDIA,
    MEDIA_KEYS,
    MEDIA_OUTPUTS,
    MESSAGE_OBJECT_LISTS,
    is_object_list,
    keep_in_run,
    member_kind,
)
from agno_storage.agno3.fields import (
    AGENT_RUN_FIELDS,
    MESSAGE_FIELDS,
    STATUSES,
    TEAM_RUN_FIELDS,
    TOOL_FIELDS,
    WORKFLOW_RUN_FIELDS,
)
from agno_storage.agno3.metrics import RUN_CONVERTERS, convert_metrics
from agno_storage.agno3.metrics import is_mapping as _is_mapping
from agno_storage.agno3.records import Agno3Run
from agno_storage.agno3.times import (
    LIMIT,
    UNCHANGED,
    reads_as_seconds,
    result_times,
    stamp_run,
    stamp_tool,
    whole_seconds,
)

#: Namespace of the run and memory ids made for records that had none (uuid5: the same on every run).
ID_NAMESPACE = uuid.UUID("6f1d2f0e-5a43-4c8e-9d38-3b7c0a9e2f11")


# --- helpers ----------------------------------------------------------------


_NAMESPACE_BYTES = ID_NAMESPACE.bytes


def make_id(*parts: object) -> str:
    """``str(uuid.uuid5(ID_NAMESPACE, "\\x1f".join(map(str, parts))))``, spelled out: the same text at a third of
    the cost (no UUID object; two ids a session). ``tests/test_agno3_records.py`` checks it against ``uuid5``."""
    name = "\x1f".join([str(p) for p in parts]).encode()
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _split(data: Mapping[str, Any], fields: frozenset[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    if fields.issuperset(data):  # the common case: every key is a field
        return dict(data), {}
    kept = {k: v for k, v in data.items() if k in fields}
    rest = {k: v for k, v in data.items() if k not in fields}
    return kept, rest


#: 1.x Message fields agno 3's Message holds under another name (a Claude reply's thinking, which agno 3 sends
#: back with the signature in ``provider_data`` as 1.x did).
_MESSAGE_RENAMES = {"thinking": "reasoning_content", "redacted_thinking": "redacted_reasoning_content"}


def convert_message(message: Any) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """A 1.x message as agno 3's Message dict, and the fields it has no place for."""
    if not _is_mapping(message) or not isinstance(message.get("role"), str):
        return None, {"message": message}
    kept, rest = _split(message, MESSAGE_FIELDS)
    for name, new_name in _MESSAGE_RENAMES.items():
        if isinstance(rest.get(name), str) and kept.get(new_name) is None:
            kept[new_name] = rest.pop(name)
    # What agno 3's Message (pydantic) refuses would fail the whole session: kept aside, as it is.
    if not isinstance(kept.get("content"), CONTENT_TYPES):
        rest["content"] = kept.pop("content")
    for name in MESSAGE_OBJECT_LISTS:
        if kept.get(name) is not None and not is_object_list(kept[name]):
            rest[name] = kept.pop(name)
        elif name in MEDIA and kept.get(name):
            media = [_media_item(name, item) for item in kept[name]]
            if None in media:  # items agno 3's Image / Audio / Video / File refuses: kept as they were, by index
                rest[name] = {
                    str(i): item for i, (item, made) in enumerate(zip(kept[name], media, strict=True)) if made is None
                }
            kept[name] = [item for item in media if item is not None]
            if not kept[name]:
                del kept[name]
    for name, kind in MEDIA_OUTPUTS.items():
        if kept.get(name) is not None and not _makes_media(kind, kept[name]):
            rest[name] = kept.pop(name)
    if "metrics" in kept and (lost := convert_held_metrics(kept)) is not None:
        rest["metrics"] = lost
    if "created_at" in kept and not reads_as_seconds(stamp := kept["created_at"]):
        # agno 3's Message refuses it, failing the whole session: kept aside, as it is; seconds with a fraction
        # stay the message's as their whole seconds, as a run's do.
        rest["created_at"] = stamp
        seconds = whole_seconds(stamp)
        if seconds is None:
            del kept["created_at"]
        else:
            kept["created_at"] = seconds
    return kept, rest


#: What each agno 3 media class needs to be made: exactly one of these (Image, Audio, Video) or at least one
#: (File); a ``media_reference`` does for any.
_MEDIA_SOURCES = {
    "images": ("url", "filepath", "content"),
    "audio": ("url", "filepath", "content"),
    "videos": ("url", "filepath", "content"),
    "files": ("id", "url", "filepath", "content", "external"),
}


def _makes_media(name: str, item: Any) -> bool:
    """Whether agno 3 can make its media object of ``item`` (a ``name`` item): what :func:`_media_item` asks,
    the content left as it is."""
    if not isinstance(item, dict) or item.get("media_reference") is not None:
        return isinstance(item, dict)
    given = [key for key in _MEDIA_SOURCES[name] if item.get(key) is not None]
    return bool(given) and (name == "files" or len(given) == 1)


def _media_item(name: str, item: dict[str, Any]) -> dict[str, Any] | None:
    """One stored media item of a message as agno 3 reads it; None if agno 3 cannot make one of it.

    agno 1.8.4 stores ``Image`` / ``Audio`` / ``Video`` content as base64 of
    its zlib-compressed bytes, agno 3 as base64 of the bytes: it is
    decompressed (content that is not zlib's, text agno 1.x encoded as it
    was, stays). agno 1.8.4 keeps no ``url`` of an ``Audio`` or ``Video``
    (``[{}]`` is what it stores for one given by URL): agno 3 can make
    nothing of that.
    """
    if not _makes_media(name, item):
        return None
    if item.get("media_reference") is not None:
        return item
    content = item.get("content")
    if name != "files" and isinstance(content, str):
        try:
            raw = zlib.decompress(base64.b64decode(content, validate=True))
        except (ValueError, zlib.error):
            return item
        return {**item, "content": base64.b64encode(raw).decode("ascii")}
    return item


def finished(run: Mapping[str, Any]) -> bool:
    """Whether a run 1.x left RUNNING (or without a status) in fact finished: it has its reply."""
    if run.get("content") not in (None, ""):
        return True
    messages = run.get("messages")
    if isinstance(messages, list) and messages:
        last = messages[-1]
        return isinstance(last, Mapping) and last.get("role") == "assistant" and bool(last.get("content"))
    return bool(run.get("step_responses") or run.get("step_results"))


def convert_status(run: Mapping[str, Any]) -> str:
    """agno 3's status for a 1.x run: its own when final; COMPLETED for a finished RUNNING or unset one."""
    status = run.get("status")
    text = str(status).upper() if isinstance(status, str) else None
    if text in STATUSES and text not in ("RUNNING", "PENDING"):
        return text
    if finished(run):
        return "COMPLETED"
    return text if text in STATUSES else "RUNNING"


def _first_user_text(messages: Any) -> str | None:
    for message in messages if isinstance(messages, list) else []:
        if _is_mapping(message) and message.get("role") == "user" and not message.get("from_history"):
            content = message.get("content")
            if isinstance(content, str):
                return content
    return None


# --- runs -------------------------------------------------------------------


@attrs.define
class RunBuilder:
    """Collects the runs of one agno 3 session in order, with their member runs."""

    session_id: str
    user_id: str | None
    created_at: int
    runs: list[Agno3Run] = attrs.field(factory=list)
    ids: set[str] = attrs.field(factory=set)
    problems: list[str] = attrs.field(factory=list)

    def add(self, run_data: dict[str, Any], run_type: str, parent: str | None) -> Agno3Run:
        created = run_data.get("created_at")
        if type(created) is not int or not -LIMIT < created < LIMIT:
            # agno 3's column (a BIGINT) and RunOutput.created_at are whole seconds: seconds with a fraction are
            # their whole seconds; anything else (ISO text, none, past what a BIGINT holds) is the session's time,
            # unless its messages had one (convert_run's stamp_run). The value is kept as it was.
            if created is not None:
                keep_in_run(run_data, "created_at", created)
            seconds = whole_seconds(created)
            run_data["created_at"] = created = self.created_at if seconds is None else seconds
        # Positional, in Agno3Run's field order: matching 13 keyword arguments was a twentieth of a run's mapping.
        run = Agno3Run(
            run_data["run_id"],  # run_id
            self.session_id,  # session_id
            run_type,  # run_type
            run_data.get("agent_id") if run_type == "agent" else None,  # agent_id
            run_data.get("team_id") if run_type == "team" else None,  # team_id
            run_data.get("workflow_id"),  # workflow_id
            self.user_id,  # user_id
            parent,  # parent_run_id
            run_data.get("status"),  # status
            len(self.runs),  # run_index
            run_data,  # run_data
            created,  # created_at
            created,  # updated_at
        )
        self.runs.append(run)
        self.ids.add(run.run_id)
        return run


_RUN_FIELDS = {"agent": AGENT_RUN_FIELDS, "team": TEAM_RUN_FIELDS, "workflow": WORKFLOW_RUN_FIELDS}
#: The key by which agno 3 tells a stored run's kind (``deserialize_history_run``, ``AgentSession.from_dict``).
_ENTITY_KEYS = {"agent": "agent_id", "team": "team_id"}


def convert_run(
    raw: Mapping[str, Any],
    kind: str,
    session_id: str,
    fallback_id: str,
    user_id: str | None,
    entity_id: str | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One 1.x run (agent, team or workflow) as agno 3's run dict, and its member runs (converted).

    Every field of ``raw`` agno 3 cannot hold as it is stays in
    ``metadata["agno_v1"]`` of the result, verbatim. An agent or team run
    without ``agent_id`` / ``team_id`` gets ``entity_id`` (the session's;
    a member run, None): agno 3 loads a session's run only if its dict has
    the key of its kind, and skips it unseen otherwise.
    """
    data, rest = _split(raw, _RUN_FIELDS[kind])
    keep: dict[str, Any] = {}
    if kind == "workflow" and "metrics" in data:
        # agno 3's workflow metrics are per step ({"steps": ..., "duration": ...}, WorkflowMetrics.from_dict
        # reads data["steps"]); a 1.x workflow run's are an agent's totals, which agno 3 would fail to load.
        keep["metrics"] = data.pop("metrics")
    if rest:  # what _lift_fields moves comes from ``rest``: a run whose every key is a field has none of it
        _lift_fields(data, rest, kind)
    run_id = raw.get("run_id")
    data["run_id"] = run_id if isinstance(run_id, str) and run_id else fallback_id
    if kind == "workflow" and "step_results" not in data and type(rest.get("step_responses")) is list:
        _convert_steps(data, rest, session_id, user_id)
    if rest:
        keep["fields"] = rest
    data["session_id"] = session_id
    if user_id is not None and data.get("user_id") is None:
        data["user_id"] = user_id
    status = convert_status(raw)
    if raw.get("status") != status:
        keep["status"] = raw.get("status")
    data["status"] = status
    entity_key = _ENTITY_KEYS.get(kind)
    if entity_key is not None and entity_key not in data:
        data[entity_key] = entity_id
    if "metrics" in data and kind != "workflow" and (lost := convert_held_metrics(data)) is not None:
        keep["metrics"] = lost
    latest: int | None = None
    for name in ("messages", "reasoning_messages", "additional_input"):
        if isinstance(data.get(name), list):
            data[name], extras, times = _convert_messages(data[name])
            if name == "messages":
                latest = times
            if extras:
                keep[name] = extras
    if kind != "workflow":  # a workflow run's time is its own (agno 1.x's Workflow stamps each run itself)
        stamp_run(data, latest, keep)
    if isinstance(data.get("tools"), list):
        tools: list[dict[str, Any]] = []
        tool_extras: dict[str, Any] = {}
        # The calls' times (stamp_tool), looked up only for a run that made calls.
        calls = bool(data["tools"])
        results = result_times(data.get("messages")) if calls else {}
        run_time = whole_seconds(data.get("created_at")) if calls else None
        for i, tool in enumerate(data["tools"]):
            if isinstance(tool, Mapping):
                kept, extra = _split(tool, TOOL_FIELDS)
                time_as_duration(kept)
                if (stamp := stamp_tool(kept, results, run_time)) is not UNCHANGED:
                    extra["created_at"] = stamp
                tools.append(kept)
                if extra:
                    tool_extras[str(i)] = extra
            else:
                tool_extras[str(i)] = tool
        data["tools"] = tools
        if tool_extras:
            keep["tools"] = tool_extras
    if kind in ("agent", "team") and not data.get("input"):
        text = _first_user_text(raw.get("messages"))
        if text is not None:
            data["input"] = {"input_content": text}
    if kind == "workflow" and not data.get("input"):
        for step in raw.get("step_responses") or []:
            response = step.get("response") if isinstance(step, Mapping) else None
            text = _first_user_text(response.get("messages")) if isinstance(response, Mapping) else None
            if text is not None:
                data["input"] = text
                break
    members: list[dict[str, Any]] = []
    if kind == "team" and isinstance(data.get("member_responses"), list):
        converted_members = []
        for i, member in enumerate(data["member_responses"]):
            if not isinstance(member, Mapping):
                keep.setdefault("member_responses", {})[str(i)] = member
                continue
            member_data, nested = convert_run(member, member_kind(member), session_id, f"{data['run_id']}:{i}", user_id)
            member_data["parent_run_id"] = data["run_id"]
            converted_members.append(member_data)
            members.extend(nested)
            members.append(member_data)
        data["member_responses"] = converted_members
    if keep:
        held = data.get("metadata")
        metadata: dict[str, Any] = {}
        if held is not None:
            if _is_mapping(held):
                metadata = dict(held)
            else:
                keep["metadata"] = held
        metadata[KEEP_KEY] = keep
        data["metadata"] = metadata
    return data, members


def time_as_duration(tool: dict[str, Any]) -> None:
    """1.x times a tool call as its metrics' ``time``; agno 3's ToolCallMetrics reads ``duration`` only: renamed in
    ``tool`` (a copy), in place, unless it has a ``duration`` already."""
    timed = tool.get("metrics")
    if isinstance(timed, Mapping) and "time" in timed and "duration" not in timed:
        tool["metrics"] = {("duration" if k == "time" else k): v for k, v in timed.items()}


def convert_held_metrics(holder: dict[str, Any]) -> Any:
    """Make ``holder["metrics"]`` (1.x metrics, in a dict of agno 3's making) agno 3's, or drop them when nothing
    is left; the 1.x value when it was not carried over exactly (lists, unknown names), else None."""
    held = holder["metrics"]
    convert = RUN_CONVERTERS.get(tuple(held)) if type(held) is dict else None  # convert_metrics' plan, found here
    metrics, lossy = convert(held.values()) if convert is not None else convert_metrics(held)
    if metrics:
        holder["metrics"] = metrics
    else:
        del holder["metrics"]
    return held if lossy else None


def _convert_messages(items: list[Any]) -> tuple[list[dict[str, Any]], dict[str, Any], int | None]:
    """1.x messages as agno 3's, per index the fields each has no place for (a message that is none, whole), and
    the latest of their times (:func:`whole_seconds`; None: none has one)."""
    messages: list[dict[str, Any]] = []
    extras: dict[str, Any] = {}
    latest: int | None = None
    for i, message in enumerate(items):
        if type(message) is dict and type(message.get("role")) is str:
            # What convert_message gives such a message, inline: every key one of agno 3's, the content
            # and tool calls of the shape it reads, whole seconds or no time, no media (those are looked at
            # there); its metrics (an assistant's turn has them) converted as there.
            if (
                MESSAGE_FIELDS.issuperset(message)
                and MEDIA_KEYS.isdisjoint(message)
                and isinstance(message.get("content"), CONTENT_TYPES)
                and ((calls := message.get("tool_calls")) is None or is_object_list(calls))
                and type(stamp := message.get("created_at", 0)) is int
            ):
                copied = message.copy()
                messages.append(copied)
                if "metrics" in copied and (lost := convert_held_metrics(copied)) is not None:
                    extras[str(i)] = {"metrics": lost}
                if "created_at" in message and -LIMIT < stamp < LIMIT and (latest is None or stamp > latest):
                    latest = stamp
                continue
        converted, extra = convert_message(message)
        if converted is not None:
            messages.append(converted)
            seconds = whole_seconds(converted.get("created_at"))
            if seconds is not None and (latest is None or seconds > latest):
                latest = seconds
        if extra:
            extras[str(i)] = extra
    return messages, extras, latest


#: What agno 1.x keeps in a run's ``extra_data`` (RunResponseExtraData) and agno 3 in a field of the run.
_EXTRA_DATA_FIELDS = {
    "references": "references",
    "reasoning_steps": "reasoning_steps",
    "reasoning_messages": "reasoning_messages",
    "add_messages": "additional_input",
}


def _lift_fields(data: dict[str, Any], rest: dict[str, Any], kind: str) -> None:
    """Move what a 1.x run keeps in ``extra_data``, ``thinking`` and a v2 workflow's ``workflow_metrics``
    (``rest``) to agno 3's fields of ``data``.

    As agno's own v1-to-v2 migration does, where agno 3's run has the field and does not hold it already;
    what is left of ``extra_data`` stays in ``rest``, and ``workflow_metrics`` when its metrics were lists.
    """
    fields = _RUN_FIELDS[kind]
    if kind == "workflow" and "metrics" not in data and "workflow_metrics" in rest:
        metrics, lossy = _workflow_metrics(rest["workflow_metrics"])
        if metrics is not None:
            data["metrics"] = metrics
            if not lossy:
                del rest["workflow_metrics"]
    extra = rest.get("extra_data")
    if isinstance(extra, Mapping):
        left = dict(extra)
        for key, name in _EXTRA_DATA_FIELDS.items():
            if left.get(key) is not None and name in fields and data.get(name) is None:
                data[name] = left.pop(key)
        if left:
            rest["extra_data"] = left
        else:
            del rest["extra_data"]
    thinking = rest.get("thinking")
    if isinstance(thinking, str) and "reasoning_content" in fields and not data.get("reasoning_content"):
        data["reasoning_content"] = rest.pop("thinking")


_STEP_NAMES = ("step_name", "executor_type", "executor_name")


def _convert_steps(data: dict[str, Any], rest: dict[str, Any], session_id: str, user_id: str | None) -> None:
    """A v2 workflow run's ``step_responses`` (in ``rest``) as agno 3 keeps a workflow run's steps: the steps in
    ``step_results``, each step's agent or team run in ``step_executor_runs`` (as agno 3's ``Step`` stores it:
    converted as any run, ``parent_run_id`` the workflow run). Where a step's response became such a run, the
    step is kept in ``rest`` without it (the run holds what agno 3 has no place for itself); the rest of the
    1.x list stays as it was (its media, which agno 3's ``StepOutput`` cannot take)."""
    run_id = data["run_id"]
    results: list[dict[str, Any]] = []
    executor_runs: list[dict[str, Any]] = []
    kept: list[Any] = []
    for i, step in enumerate(rest["step_responses"]):
        if type(step) is not dict:
            kept.append(step)
            continue
        result = _step_result(step)
        response = step.get("response")
        if isinstance(response, Mapping):
            # agno 1.8.4's StepOutput.from_dict tells a team's response by these keys.
            step_kind = "team" if "team_id" in response or "team_name" in response else "agent"
            step_run, _ = convert_run(response, step_kind, session_id, make_id("step-run", run_id, i), user_id)
            step_run["parent_run_id"] = run_id
            executor_runs.append(step_run)
            result["step_run_id"] = step_run["run_id"]
            step = {k: v for k, v in step.items() if k != "response"}
        results.append(result)
        kept.append(step)
    if results:
        data["step_results"] = results
    if executor_runs:
        data["step_executor_runs"] = executor_runs
    rest["step_responses"] = kept


def step_runs(run_data: Mapping[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """The runs a converted workflow run holds in ``step_executor_runs`` and their member runs, with their kinds
    (each to be checked as a run: agno 3 loads them with the workflow run)."""
    # As agno 3 reads them: WorkflowRunOutput.from_dict tells a step's team run by its keys, a team its members
    # as member_kind does.
    pending = [
        (r, "team" if "team_id" in r or "team_name" in r else "agent") for r in _dicts(run_data, "step_executor_runs")
    ]
    out: list[tuple[dict[str, Any], str]] = []
    while pending:
        run, kind = pending.pop(0)
        out.append((run, kind))
        pending += [(m, member_kind(m)) for m in _dicts(run, "member_responses")]
    return out


def _dicts(run_data: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    value = run_data.get(name)
    return [item for item in value if type(item) is dict] if type(value) is list else []


def _step_result(step: dict[str, Any]) -> dict[str, Any]:
    """A v2 workflow step's output as agno 1.8.4 stores it (``StepOutput.to_dict()``) as agno 3's ``StepOutput``
    dict: its content and outcome; its name, executor and metrics from the ``StepMetrics`` 1.8.4 keeps in
    ``metrics``. Media are left out: 1.x's artifacts are not
    agno 3's media, and agno 3 fails the whole run on one it cannot make."""
    out: dict[str, Any] = {}
    step_metrics = step.get("metrics")
    if isinstance(step_metrics, Mapping):
        for name in _STEP_NAMES:
            if isinstance(step_metrics.get(name), str):
                out[name] = step_metrics[name]
        metrics, _ = convert_metrics(step_metrics.get("metrics"))
        if metrics:
            out["metrics"] = metrics
    if step.get("content") is not None:
        out["content"] = step["content"]
    for name in ("success", "stop"):
        if type(step.get(name)) is bool:
            out[name] = step[name]
    if isinstance(step.get("error"), str):
        out["error"] = step["error"]
    return out


def _workflow_metrics(value: Any) -> tuple[dict[str, Any] | None, bool]:
    """A 1.x v2 workflow run's ``workflow_metrics`` as agno 3's WorkflowMetrics dict (None: not of that shape),
    and whether anything was not carried over exactly (per-call lists, other keys)."""
    steps = value.get("steps") if isinstance(value, Mapping) else None
    if not isinstance(steps, Mapping):
        return None, True
    out: dict[str, Any] = {}
    lossy = not {"steps", "total_steps"}.issuperset(value)
    for name, step in steps.items():
        if not (isinstance(step, Mapping) and all(isinstance(step.get(k), str) for k in _STEP_NAMES)):
            return None, True
        metrics, step_lossy = convert_metrics(step.get("metrics"))
        lossy = lossy or step_lossy or not {*_STEP_NAMES, "metrics"}.issuperset(step)
        out[str(name)] = {**{k: step[k] for k in _STEP_NAMES}, "metrics": metrics}
    return {"steps": out}, lossy


def memory_runs(memory: Any, session_id: str) -> tuple[list[Any], str]:
    """The runs of ``session_id`` a 1.x ``memory`` column holds, and which memory class wrote them.

    Memory v2 keys runs by session. An agno Team or Agent moved to another
    session (``load_session`` after changing ``session_id``) saves the
    runs of the session it came from in the new one's row too: those are
    the other session's, not this one's (agno reads only this session's
    key), and are left out (:func:`foreign_run_sessions` names them).
    """
    if not isinstance(memory, Mapping):
        return [], "none"
    runs = memory.get("runs")
    if isinstance(runs, Mapping):  # Memory v2 keyed by session
        own = runs.get(session_id)
        return (list(own) if isinstance(own, list) else []), "memory_v2"
    return (list(runs) if isinstance(runs, list) else []), "list"


def foreign_run_sessions(memory: Any, session_id: str) -> list[str]:
    """The other sessions whose runs a Memory v2 ``memory`` column holds (see :func:`memory_runs`)."""
    runs = memory.get("runs") if isinstance(memory, Mapping) else None
    if not isinstance(runs, Mapping):
        return []
    return [str(key) for key, value in runs.items() if key != session_id and value]


def unwrap(run: Any, kind: str) -> Any:
    """A run of AgentMemory / TeamMemory / WorkflowMemory ({message, response}) as the response dict."""
    if _is_mapping(run) and "response" in run and "run_id" not in run:
        response = dict(run["response"]) if isinstance(run["response"], Mapping) else {}
        message = run.get("message") or run.get("input")
        if isinstance(message, Mapping) and not response.get("messages") and kind != "workflow":
            reply = {"role": "assistant", "content": response.get("content")}
            response["messages"] = [dict(message), reply]
        if message is not None:
            response.setdefault("_memory_message", message)
        return response
    return run
