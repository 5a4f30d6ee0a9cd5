"""agno 1.x and agno-golang sessions as agno 3.1.10 rows: the mapping, with no I/O.

:func:`map_session` takes every source record of one ``session_id`` (rows of
the four 1.x tables, a Go Agent's ``agent_runs``) and returns one
:class:`Agno3Session`, its :class:`Agno3Run` rows in order and its
:class:`Agno3Memory` rows. What agno 3 has no place for is kept under
``metadata["agno_v1"]`` (sessions) or the run's ``metadata["agno_v1"]``;
docs/agno3.md lists every field; their dict form is defined once, by
:func:`agno_storage.agno3.records.make_converter`. A session's user memories and summary are read
from its ``memory`` by :mod:`agno_storage.agno3.session_memory`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import attrs

from agno_storage.agno3.checks import KEEP_KEY, keep_in_run, member_kind, unfit_fields
from agno_storage.agno3.fields import SESSION_METRICS_FIELDS
from agno_storage.agno3.metrics import convert_metrics, is_mapping
from agno_storage.agno3.owners import GO_AGENT_RUNS, Owners, split_owners
from agno_storage.agno3.plain import plain_agent_run
from agno_storage.agno3.records import Agno3Memory, Agno3Run, Agno3Session, GoAgentRun, Mapped
from agno_storage.agno3.runs import (
    RunBuilder,
    convert_run,
    convert_status,
    foreign_run_sessions,
    make_id,
    memory_runs,
    step_runs,
    unwrap,
)
from agno_storage.agno3.session_memory import is_summary, memories_of, summary_of
from agno_storage.errors import CorruptRowError
from agno_storage.models import Mode, Session

#: agno 3's ``session_type`` of each 1.x mode's sessions, and the kind of run their runs are.
SESSION_TYPES = {
    Mode.AGENT: "agent",
    Mode.TEAM: "team",
    Mode.WORKFLOW: "workflow",
    Mode.WORKFLOW_V2: "workflow",
}


# --- sessions ---------------------------------------------------------------


def _session_data(data: Any, keep: dict[str, Any]) -> Any:
    if not isinstance(data, Mapping):
        return data
    out = dict(data)
    if isinstance(out.get("session_metrics"), Mapping):
        metrics, lossy = convert_metrics(out["session_metrics"], SESSION_METRICS_FIELDS)
        if lossy:
            keep["session_metrics"] = out["session_metrics"]
        out["session_metrics"] = metrics
    return out


#: The order sources of one session_id are merged in: the first names the session.
SOURCE_ORDER = (Mode.WORKFLOW_V2, Mode.WORKFLOW, Mode.TEAM, Mode.AGENT)


def map_session(
    session_id: str,
    sources: Sequence[Session],
    go_runs: Sequence[GoAgentRun] = (),
    taken: Mapping[str, str] | None = None,
    unowned_user: str | None = None,
) -> Mapped:
    """Every source record of ``session_id`` as one agno 3 session with its runs and memories.

    ``sources`` are 1.x sessions of different modes sharing the id (a v2
    Workflow's step agent keeps its own agent session under the workflow's
    id, with the workflow's user); the first in :data:`SOURCE_ORDER` names
    the session and the others' session fields are kept in
    ``metadata["agno_v1"]["also"]``. Owners are never merged: the session's
    user is the first source's that has one, and a source of another user is
    left out (``Mapped.left_out``). ``go_runs`` are a Go Agent's runs of this
    session, oldest first; those of a user other than the session's are left
    out too (:func:`~agno_storage.agno3.owners.split_owners`). ``taken`` maps
    run ids that other sessions hold to those sessions: such a run is written under an id of its own
    (:func:`own_run_id`), its id kept in its ``metadata["agno_v1"]["run_id"]``.
    ``unowned_user``: the user DST gives the session, its owner (and its runs') when the rule gives it none.
    """
    ordered = sorted(sources, key=lambda s: SOURCE_ORDER.index(s.MODE))
    owners = split_owners(session_id, ordered, go_runs)
    ordered, go_runs, user_id = list(owners.sources), owners.go_runs, owners.user_id or unowned_user
    head = ordered[0] if ordered else None
    created = _created(head, go_runs)
    builder = RunBuilder(session_id=session_id, user_id=user_id or None, created_at=created)
    keep: dict[str, Any] = {}
    labels: list[str] = []
    memories: list[Agno3Memory] = []
    legacy_memories: list[str] = []
    summary: Any = None
    summaries = 0
    step_parents: dict[str, str] = {}
    for index, source in enumerate(ordered):
        label = source.MODE.value
        labels.append(label)
        own_keep: dict[str, Any] = {}
        memory = source.memory
        foreign = foreign_run_sessions(memory, source.session_id)
        if foreign:
            builder.problems.append(
                f"{label} session {session_id!r}: memory.runs also holds runs of sessions {', '.join(map(repr, foreign))}"
                " (agno saved them when the agent or team moved to this session); left out: they are those sessions'"
            )
        own_keep.update(_add_runs(builder, source, step_parents))
        kind = SESSION_TYPES[source.MODE]
        entity = (source.entity_id if kind == "agent" else None, source.entity_id if kind == "team" else None)
        found, other, legacy, times = memories_of(memory, source, entity)
        memories += found
        legacy_memories += legacy
        if other is not None:
            own_keep["memories"] = other
        if times:
            own_keep["memory_times"] = times
        this_summary, all_summaries, unread_stamp = summary_of(memory, source.user_id, session_id)
        if this_summary is not None and summary is None:
            summary = this_summary
            summaries += 1
            if unread_stamp is not None:
                own_keep["summary_updated_at"] = unread_stamp
        elif this_summary is not None:
            own_keep["summary"] = this_summary if unread_stamp is None else {**this_summary, "updated_at": unread_stamp}
        if all_summaries:
            own_keep["summaries"] = all_summaries
        if isinstance(memory, Mapping):
            # A summary agno 3 cannot take (no text, not an object) stays with the rest of memory.
            used: tuple[str, ...] = ("runs", "memories", "summaries", "summary")
            if not is_summary(memory.get("summary")):
                used = ("runs", "memories", "summaries")
                if memory.get("summary") is not None:
                    builder.problems.append(
                        f"{label} session {session_id!r}: memory.summary is not a summary with text; kept in metadata"
                    )
            for key in ("runs", "memories"):
                if memory.get(key) is not None and not isinstance(memory.get(key), list | Mapping):
                    used = tuple(k for k in used if k != key)  # nothing of it was read: kept as it is
                    builder.problems.append(
                        f"{label} session {session_id!r}: memory.{key} is neither a list nor an object; kept in"
                        " metadata"
                    )
            rest = {k: v for k, v in memory.items() if k not in used}
            if rest:
                own_keep["memory"] = rest
        elif memory is not None:
            own_keep["memory"] = memory
        if index == 0:
            keep.update(own_keep)
        else:
            also = _also(source)
            also.update(own_keep)
            keep.setdefault("also", {})[label] = also
    if go_runs:
        labels.append(GO_AGENT_RUNS)
        for go in go_runs:
            if go.id in builder.ids:
                continue
            builder.add(_go_run(go, session_id, user_id, head), "agent", None)
    own_ids = frozenset(builder.ids)
    if taken:
        _rename_taken(builder, taken)
    # Given to the record as it is made, not set on a copy (attrs.evolve): agno's AgentMemory keeps memories
    # without ids, so most sessions have legacy ids. With no source left out, no run was left out either.
    left_out = (owners.left_out, _left_out_run_ids(session_id, owners, own_ids) if owners.left_out else ())
    return _assemble(
        session_id, head, builder, keep, labels, memories, summary, summaries, go_runs, tuple(legacy_memories), left_out
    )


def _add_runs(builder: RunBuilder, source: Session, step_parents: dict[str, str]) -> dict[str, Any]:
    """Add ``source``'s runs (and their member runs) to ``builder``; the run items that are not objects, by index."""
    label = source.MODE.value
    session_id = builder.session_id
    kind = SESSION_TYPES[source.MODE]
    unfit: dict[str, Any] = {}
    seen: dict[str, Any] = {}  # run id -> the run of this source that has it
    own_entity = source.entity_id
    for i, raw in enumerate(_source_runs(source)):
        raw = unwrap(raw, kind)
        if not is_mapping(raw):
            unfit[str(i)] = raw
            builder.problems.append(f"{label} session {session_id!r}: run {i} is not an object; kept in metadata")
            continue
        own_id = raw.get("run_id")
        # The fallback id (a uuid5) only for a run without one: made for every run it was a tenth of the mapping.
        fallback = own_id if isinstance(own_id, str) and own_id else make_id("run", label, session_id, i)
        # Most runs are plain agent runs: converted and checked in one step (no member runs, nothing unfit).
        plain = plain_agent_run(raw, session_id, fallback, builder.user_id, own_entity) if kind == "agent" else None
        run_kind = kind
        members: list[dict[str, Any]] = []
        if plain is not None:
            data = plain
        else:
            if kind == "agent" and member_kind(raw) == "team":
                run_kind = "team"
            entity = own_entity if run_kind == kind else None  # a team's run in an agent table: no team id
            data, members = convert_run(raw, run_kind, session_id, fallback, builder.user_id, entity)
        run_id = data["run_id"]
        if run_id in seen and seen[run_id] != raw:
            # Another run of this same session under an id it used already (agno 1.x never writes one): written
            # under an id of its own, its id kept, as a run whose id another session holds.
            data["run_id"] = make_id("run", label, session_id, i)
            keep_in_run(data, "run_id", run_id)
            builder.problems.append(
                f"{label} session {session_id!r}: run {i} has the id {run_id!r} of an earlier run of it; written"
                f" as run {data['run_id']!r} (its id kept in its metadata)"
            )
        elif run_id in builder.ids:
            continue  # the same run, seen through another table (a v2 step agent's session), or twice in this one
        seen.setdefault(run_id, raw)
        checked = [(m, member_kind(m)) for m in members] if members else []
        if plain is None:
            checked.append((data, run_kind))
        if run_kind == "workflow":
            checked += step_runs(data)  # loaded with the workflow run: one that does not fit fails it
        for run, its_kind in checked:
            for problem in unfit_fields(run, its_kind):
                builder.problems.append(f"{label} session {session_id!r}: run {run['run_id']!r}: {problem}")
        for member in members:
            if member["run_id"] not in builder.ids:
                builder.add(member, member_kind(member), member.get("parent_run_id"))
        parent = step_parents.get(data["run_id"])
        if parent is not None:
            data["parent_run_id"] = parent
        builder.add(data, run_kind, parent)
        if kind == "workflow":
            for step in raw.get("step_responses") or []:
                response = step.get("response") if isinstance(step, Mapping) else None
                if isinstance(response, Mapping) and isinstance(response.get("run_id"), str):
                    step_parents[response["run_id"]] = data["run_id"]
    return {"runs": unfit} if unfit else {}


def _left_out_run_ids(session_id: str, owners: Owners, kept: AbstractSet[str]) -> tuple[str, ...]:
    """The ids a build that merged owners gave the runs left out (with the ids it gave them when renamed).

    A session such a build wrote holds them in DST; they are deleted when it is written again.
    """
    builder = RunBuilder(session_id=session_id, user_id=None, created_at=0)
    for source in owners.dropped:
        _add_runs(builder, source, {})
    out: dict[str, None] = {}
    for run_id in [r.run_id for r in builder.runs] + [r.id for r in owners.go_dropped]:
        if run_id not in kept:  # a run the session holds too is its own
            out.update({run_id: None, own_run_id(session_id, run_id): None})
    return tuple(out)


def own_run_id(session_id: str, run_id: str) -> str:
    """The id a run gets in ``session_id`` when another session holds its own id (a uuid5: the same on every rerun)."""
    return make_id("run-of", session_id, run_id)


def _rename_taken(builder: RunBuilder, taken: Mapping[str, str]) -> None:
    """Give each run of ``builder`` whose id ``taken`` names an id of its own; links to it follow.

    agno_runs holds a run id once: written under its own id, the run would
    move out of the session holding it. The id it had is kept in its
    ``metadata["agno_v1"]["run_id"]``.
    """
    renamed = {r.run_id: own_run_id(builder.session_id, r.run_id) for r in builder.runs if r.run_id in taken}
    if not renamed:
        return
    runs = []
    for run in builder.runs:
        data = run.run_data
        if run.run_id in renamed:
            data["run_id"] = renamed[run.run_id]
            keep_in_run(data, "run_id", run.run_id)
        parent = renamed.get(run.parent_run_id, run.parent_run_id) if run.parent_run_id else run.parent_run_id
        if data.get("parent_run_id") in renamed:
            data["parent_run_id"] = renamed[data["parent_run_id"]]
        for member in data.get("member_responses") or []:
            if isinstance(member, dict):
                for key in ("run_id", "parent_run_id"):
                    if member.get(key) in renamed:
                        member[key] = renamed[member[key]]
        runs.append(attrs.evolve(run, run_id=data["run_id"], parent_run_id=parent))
    builder.runs[:] = runs
    builder.ids = {r.run_id for r in runs}


def _created(head: Session | None, go_runs: Sequence[GoAgentRun]) -> int:
    if head is not None and head.created_at is not None:
        return head.created_at
    stamps = [r.created_at for r in go_runs if r.created_at is not None]
    return min(stamps) if stamps else (head.updated_at if head is not None and head.updated_at else 0)


def _source_runs(source: Session) -> list[Any]:
    if source.MODE is Mode.WORKFLOW_V2:
        runs = getattr(source, "runs", None)
        if isinstance(runs, Mapping):
            return [runs]
        return list(runs) if isinstance(runs, list) else []
    runs, _ = memory_runs(source.memory, source.session_id)
    if source.MODE is Mode.TEAM and not runs and isinstance(getattr(source, "team_data", None), Mapping):
        return _go_team_runs(source)
    return runs


def _go_team_runs(source: Session) -> list[Any]:
    """A Go Team's conversation (``team_data.messages``: role/content pairs) as team runs, one per user turn."""
    team_data = getattr(source, "team_data", None)
    messages = team_data.get("messages") if isinstance(team_data, Mapping) else None
    if not isinstance(messages, list):
        return []
    runs: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            continue
        if message.get("role") == "user" or not runs:
            runs.append(
                {
                    "run_id": make_id("go-team", source.session_id, i),
                    "team_id": source.entity_id,
                    "created_at": source.created_at,
                    "messages": [],
                }
            )
        runs[-1]["messages"].append(dict(message))
        if message.get("role") == "assistant":
            runs[-1]["content"] = message.get("content")
    return runs


def _go_run(go: GoAgentRun, session_id: str, user_id: str | None, head: Session | None) -> dict[str, Any]:
    """A Go Agent's ``agent_runs`` row as an agno 3 agent run; its raw columns are kept in metadata."""
    from agno_storage import codec

    created = go.created_at if go.created_at is not None else (head.created_at if head is not None else 0)
    messages: list[dict[str, Any]] = []
    if go.user_message is not None:
        messages.append({"role": "user", "content": go.user_message, "created_at": created})
    if go.agent_message is not None:
        messages.append({"role": "assistant", "content": go.agent_message, "created_at": created})

    def column(name: str) -> Any:
        text = getattr(go, name)
        if not text:
            return text
        try:
            return codec.loads(text)
        except (ValueError, TypeError) as exc:  # not JSON (orjson's error is a ValueError), or not text
            raise CorruptRowError(
                f"agent_runs.{name} of run {go.id!r} of session {session_id!r} is not valid JSON: {exc}",
                table="agent_runs",
                session_id=session_id,
                column=name,
            ) from exc

    raw = {
        "run_name": go.run_name,
        "run_data": column("run_data"),
        "messages": column("messages"),
        "metrics": column("metrics"),
        "updated_at": go.updated_at,
    }
    return {
        "run_id": go.id,
        "agent_id": head.entity_id if head is not None and head.MODE is Mode.AGENT else None,
        "session_id": session_id,
        "user_id": go.user_id or user_id,
        "input": {"input_content": go.user_message} if go.user_message is not None else None,
        "content": go.agent_message,
        "content_type": "str",
        "messages": messages,
        "created_at": created,
        "status": "COMPLETED" if go.agent_message else "RUNNING",
        "metadata": {KEEP_KEY: {"go_agent_runs": raw}},
    }


def _also(source: Session) -> dict[str, Any]:
    data = attrs.asdict(source, recurse=False)
    data.pop("memory", None)
    data.pop("runs", None)
    data.pop("session_id", None)
    return data


def _assemble(
    session_id: str,
    head: Session | None,
    builder: RunBuilder,
    keep: dict[str, Any],
    labels: list[str],
    memories: list[Agno3Memory],
    summary: Any,
    summaries: int,
    go_runs: Sequence[GoAgentRun],
    legacy_memories: tuple[str, ...],
    left_out: tuple[tuple[tuple[str, str], ...], tuple[str, ...]],
) -> Mapped:
    """The session's record and everything mapped with it; ``left_out``: :attr:`Mapped.left_out` and
    :attr:`Mapped.left_out_runs`."""
    mode = head.MODE if head is not None else Mode.AGENT
    session_type = SESSION_TYPES[mode]
    if head is None:
        keep["source"] = GO_AGENT_RUNS
        data: Any = None
        extra: Any = None
        session_data: Any = None
        updated = max((r.updated_at or 0 for r in go_runs), default=0) or None
    else:
        data = getattr(head, {"agent": "agent_data", "team": "team_data", "workflow": "workflow_data"}[session_type])
        extra = head.extra_data
        session_data = _session_data(head.session_data, keep)
        updated = head.updated_at
        keep["source"] = head.MODE.value
        if head.MODE is Mode.WORKFLOW_V2:
            keep["workflow_name"] = getattr(head, "workflow_name", None)
        if getattr(head, "team_session_id", None) is not None:
            keep["team_session_id"] = getattr(head, "team_session_id", None)
    metadata: Any
    if isinstance(extra, Mapping):
        metadata = dict(extra)
    else:
        metadata = {}
        if extra is not None:
            keep["extra_data"] = extra
    if KEEP_KEY in metadata:
        keep["extra_data_" + KEEP_KEY] = metadata[KEEP_KEY]
    metadata[KEEP_KEY] = keep
    entity = head.entity_id if head is not None else None
    session = Agno3Session(
        session_id=session_id,
        session_type=session_type,
        agent_id=entity if session_type == "agent" else None,
        team_id=entity if session_type == "team" else None,
        workflow_id=entity if session_type == "workflow" else None,
        user_id=builder.user_id,
        session_data=session_data,
        agent_data=data if session_type == "agent" else None,
        team_data=data if session_type == "team" else None,
        workflow_data=data if session_type == "workflow" else None,
        metadata=metadata,
        summary=summary,
        created_at=builder.created_at,
        updated_at=updated if updated is not None else builder.created_at,
    )
    return Mapped(
        session=session,
        runs=tuple(builder.runs),
        memories=tuple(memories),
        sources=tuple(labels),
        summaries=summaries,
        problems=tuple(builder.problems),
        legacy_memories=legacy_memories,
        left_out=left_out[0],
        left_out_runs=left_out[1],
    )


def count_source_runs(sources: Iterable[Session]) -> int:
    """How many runs (member runs included) the sources hold, before any merge."""
    total = 0
    for source in sources:
        kind = SESSION_TYPES[source.MODE]
        for raw in _source_runs(source):
            raw = unwrap(raw, kind)
            total += 1
            if isinstance(raw, Mapping) and isinstance(raw.get("member_responses"), list):
                total += len(raw["member_responses"])
    return total


__all__ = [
    "GO_AGENT_RUNS",
    "KEEP_KEY",
    "SOURCE_ORDER",
    "Agno3Memory",
    "Agno3Run",
    "Agno3Session",
    "GoAgentRun",
    "Mapped",
    "convert_metrics",
    "convert_run",
    "convert_status",
    "map_session",
    "own_run_id",
]
