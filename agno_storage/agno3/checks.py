"""What agno 3.1.10 can load of a run: the shapes of the fields it reads, the events it has classes for; a run
field that does not fit is moved to the run's ``metadata["agno_v1"]`` (:func:`unfit_fields`).

Shared by the general mapping (:mod:`agno_storage.agno3.runs`) and the plain run shortcut
(:mod:`agno_storage.agno3.plain`), so both check against one definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agno_storage.agno3.fields import AGENT_EVENTS, TEAM_EVENTS, WORKFLOW_EVENTS

#: The key under which whatever agno 3 has no place for is kept, in session and run metadata.
KEEP_KEY = "agno_v1"

#: A message's one media item of a reply (agno 3's ``Audio``, ``Image``, ...), and the kind of media it is.
MEDIA_OUTPUTS = {"audio_output": "audio", "image_output": "images", "video_output": "videos", "file_output": "files"}


#: Run fields agno 3's ``RunOutput`` / ``TeamRunOutput`` / ``WorkflowRunOutput.from_dict`` iterate (a list), or
#: build an object of each item of (a list of objects), or read as an object: a value of another shape fails
#: the load of the whole session (and of every listing that holds it).
_LIST_FIELDS = (
    "messages tools images videos audio files requirements member_responses step_results step_executor_runs".split()
)
_OBJECT_LIST_FIELDS = "additional_input reasoning_steps reasoning_messages references events".split()
_OBJECT_FIELDS = "input citations response_audio compaction metrics".split()
_OBJECT_LISTS = frozenset(_OBJECT_LIST_FIELDS)
#: Message fields agno 3's Message (pydantic) takes only as a list of objects.
MESSAGE_OBJECT_LISTS = ("tool_calls", "images", "videos", "audio", "files")
MEDIA = frozenset(MESSAGE_OBJECT_LISTS[1:])
#: The message fields holding media, each looked at by convert_message.
MEDIA_KEYS = MEDIA | frozenset(MEDIA_OUTPUTS)
#: Message content agno 3 takes: text, a list of parts, or none.
CONTENT_TYPES = (str, list, type(None))


def is_object_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def _fits_citations(value: Any) -> bool:
    """Whether agno 3's ``Citations`` model takes ``value``: lists of objects for urls and documents, of text for
    search queries."""
    if not isinstance(value, dict):
        return False
    lists = [value.get(key) for key in ("urls", "documents")]
    queries = value.get("search_queries")
    return all(v is None or is_object_list(v) for v in lists) and (
        queries is None or (isinstance(queries, list) and all(isinstance(q, str) for q in queries))
    )


def _fits(name: str, value: Any) -> bool:
    """Whether run field ``name`` holds what agno 3 reads there (the common case; see :func:`_unfit_shape`)."""
    if value is None:
        return True
    items: Any = value  # a list when it fits (``type(value) is SHAPES[name]`` tells mypy nothing of it)
    return (
        type(value) is SHAPES[name]
        and (name not in _OBJECT_LISTS or all(type(item) is dict for item in items))
        and (name != "citations" or _fits_citations(value))
    )


def _unfit_shape(name: str, value: Any, kind: str) -> str | None:
    """What is wrong with checked run field ``name`` of a ``kind`` run for agno 3 (None: it loads)."""
    if _fits(name, value) or (name == "input" and kind == "workflow"):  # agno 3 does not read a workflow's input
        return None
    if name == "citations":
        return "is not citations as agno 3 reads them"
    if name in _OBJECT_LIST_FIELDS:
        return "is not a list of objects"
    return "is not a list" if name in _LIST_FIELDS else "is not an object"


#: The JSON type each checked run field has when it fits.
SHAPES: dict[str, type] = {
    **dict.fromkeys((*_LIST_FIELDS, *_OBJECT_LIST_FIELDS), list),
    **dict.fromkeys(_OBJECT_FIELDS, dict),
}


#: Per key order of a run dict: the keys among those :func:`unfit_fields` checks (``SHAPES``). A run's dicts
#: have the same keys, in the same order, run after run.
_CHECKED: dict[tuple[str, ...], tuple[str, ...]] = {}
#: Distinct key orders kept; past it (runs of ever new keys) the keys are looked up on every call.
_CHECKED_KEPT = 256


def _checked_fields(run_data: dict[str, Any]) -> tuple[str, ...]:
    keys = tuple(run_data)
    checked = _CHECKED.get(keys)
    if checked is None:
        checked = tuple(k for k in keys if k in SHAPES)
        # Kept only for plain text keys (what JSON gives), as the metrics' plans are.
        if len(_CHECKED) < _CHECKED_KEPT and all(type(k) is str for k in keys):
            _CHECKED[keys] = checked
    return checked


def unfit_fields(run_data: dict[str, Any], kind: str) -> list[str]:
    """Move the fields of ``run_data`` (a ``kind`` run) agno 3 cannot load to its
    ``metadata["agno_v1"]["unfit"]``, as they are; what was moved, one line each, with the message fields
    :func:`convert_message` moved (none for a run agno 1.x wrote)."""
    moved: dict[str, str] = {}
    # Every run passes through here: the fields it has of those checked (a few, found by its key order),
    # their common shapes first; only a run with one that does not fit is gone through again, in its order.
    fits = True
    for name in _checked_fields(run_data):
        if not _fits(name, run_data[name]):
            fits = False
            break
    if not fits:
        for name, value in run_data.items():
            why = _unfit_shape(name, value, kind) if name in SHAPES else None
            if why is not None:
                moved[name] = why
    events = run_data.get("events")
    if events and "events" not in moved:
        unknown = _unknown_events(events, kind)
        if unknown:
            moved["events"] = f"holds events agno 3 has no class for ({', '.join(unknown)})"
    lines: list[str] = []
    if moved:
        lines = [f"{name} {why}; kept in metadata" for name, why in moved.items()]
        keep_in_run(run_data, "unfit", {name: run_data.pop(name) for name in moved})
    metadata = run_data.get("metadata")
    kept = metadata.get(KEEP_KEY) if type(metadata) is dict else None
    for index, extra in (kept.get("messages") or {}).items() if type(kept) is dict else ():
        for name in ("content", *MESSAGE_OBJECT_LISTS, *MEDIA_OUTPUTS, "created_at"):
            if isinstance(extra, dict) and name in extra:
                lines.append(f"message {index}: {name} is not what agno 3 reads there; kept in metadata")
    return lines


_AGENT_OR_TEAM_EVENTS = AGENT_EVENTS | TEAM_EVENTS
_ANY_EVENTS = _AGENT_OR_TEAM_EVENTS | WORKFLOW_EVENTS


def _unknown_events(events: list[dict[str, Any]], kind: str) -> list[str]:
    """The names of ``events`` (a list of objects) agno 3 fails to load in a ``kind`` run, each once, in order.

    agno 1.x names some events otherwise (``RunResponseContent``, agno 3's ``RunContent``). agno 3 picks the
    class by the event's keys (``RunOutput.from_dict`` and the team's and workflow's): one with ``agent_id``
    is an agent's event; in a workflow run one with ``team_id`` a team's, any other a workflow's.
    """
    unknown: dict[str, None] = {}
    for event in events:
        if "agent_id" in event:
            known = AGENT_EVENTS
        elif kind != "workflow" or "team_id" in event:
            known = _AGENT_OR_TEAM_EVENTS
        else:
            known = _ANY_EVENTS
        name = event.get("event", "")
        if not (isinstance(name, str) and name in known):
            unknown[str(name)] = None
    return list(unknown)


def member_kind(run: Mapping[str, Any]) -> str:
    """The kind of a run that may be a team's in another's place (a team's member run, a team run in an agent
    table): a team's when it names a team and no agent."""
    return "team" if run.get("team_id") and not run.get("agent_id") else "agent"


def keep_in_run(run_data: dict[str, Any], key: str, value: Any) -> None:
    """Keep ``value`` under ``key`` in the run's ``metadata["agno_v1"]`` (a metadata that is not an object too)."""
    held = run_data.get("metadata")
    metadata: dict[str, Any] = {}
    if isinstance(held, Mapping):
        metadata.update(held)
    elif held is not None:
        metadata[KEEP_KEY] = {"metadata": held}
    keep = metadata.get(KEEP_KEY)
    keep = dict(keep) if isinstance(keep, Mapping) else {}
    keep[key] = value
    metadata[KEEP_KEY] = keep
    run_data["metadata"] = metadata
