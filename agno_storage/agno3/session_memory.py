"""A 1.x session's ``memory``: its user memories as agno 3.1.10 rows, its summary as agno 3's, with no I/O.

agno 1.x keeps a session's user memories (AgentMemory's list, or Memory
v2's map per user) and its summaries inside the session row's ``memory``:
:func:`memories_of` makes the memories :class:`Agno3Memory` rows (an id-less
one gets the id of its user's other copies,
:func:`~agno_storage.agno3.memory_table.memory_copy_id`), :func:`summary_of`
makes the summary agno 3's ``summary`` column. What does not fit is returned
for :func:`~agno_storage.agno3.mapping.map_session` to keep in the session's
``metadata["agno_v1"]``; docs/agno3.md ("Memory") lists the fields.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from agno_storage.agno3.memory_table import local_epoch, memory_copy_id
from agno_storage.agno3.records import Agno3Memory
from agno_storage.agno3.runs import make_id
from agno_storage.models import Session


def summary_of(memory: Any, user_id: str | None, session_id: str) -> tuple[Any, Any, Any]:
    """agno 3's SessionSummary dict from 1.x memory, the 1.x summaries it did not use, and the summary's stamp
    when agno 3 could not read it (None otherwise).

    A ``memory.summary`` or ``memory.summaries[user][session]`` with no
    text, or that is not an object, is not one: the caller keeps it with the
    rest of ``memory`` (``summaries`` is kept whole). agno 3 reads
    ``updated_at`` with ``datetime.fromisoformat`` and fails the session on
    anything else: a stamp that is neither Unix seconds nor ISO text is left
    out of the summary and returned, for the caller to keep.
    """
    if not isinstance(memory, Mapping):
        return None, None, None
    found: Any = None
    summary = memory.get("summary")
    if is_summary(summary):
        found = summary
    summaries = memory.get("summaries")
    other = None
    if isinstance(summaries, Mapping) and summaries:
        per_user = summaries.get(user_id or "") if user_id is not None else None
        if per_user is None and len(summaries) == 1:
            per_user = next(iter(summaries.values()))
        if isinstance(per_user, Mapping) and is_summary(per_user.get(session_id)):
            found = found or per_user[session_id]
        other = summaries
    if found is None:
        return None, other, None
    out: dict[str, Any] = {"summary": found.get("summary")}
    if found.get("topics") is not None:
        out["topics"] = found.get("topics")
    stamp = found.get("updated_at", found.get("last_updated"))
    when = _summary_time(stamp)
    if when is not None:
        out["updated_at"] = when
    return out, other, (stamp if when is None else None)


def _summary_time(stamp: Any) -> str | None:
    """A 1.x summary's stamp as the ISO text agno 3 reads; None for none, or one that is neither Unix seconds
    nor ISO text (milliseconds, say)."""
    if isinstance(stamp, int | float) and not isinstance(stamp, bool):
        try:
            return datetime.fromtimestamp(stamp, tz=UTC).replace(tzinfo=None).isoformat()
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(stamp, str):
        try:
            datetime.fromisoformat(stamp)
        except ValueError:
            return None
        return stamp
    return None


def is_summary(summary: Any) -> bool:
    """Whether a 1.x ``memory.summary`` is one agno 3 can take: an object with its text."""
    return isinstance(summary, Mapping) and bool(summary.get("summary"))


def _memory_time(value: Any) -> int | None:
    """A 1.x memory's ``updated_at`` / ``last_updated``: Unix seconds, or ``datetime.now().isoformat()`` text.

    Seconds with a fraction are their whole seconds (the column is an integer).
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and abs(value) < 2**63 else None
    return local_epoch(value)


def memories_of(
    memory: Any, session: Session, entity: tuple[str | None, str | None]
) -> tuple[list[Agno3Memory], Any, list[str], dict[str, Any]]:
    """1.x user memories as agno 3 rows, what did not fit, the ids earlier builds gave the id-less ones, and
    the times not stored as they were (per memory id).

    A memory's time is its own ``updated_at`` / ``last_updated``; without
    one, the session row's: its ``updated_at`` for when the copy was taken.
    A time that is neither whole seconds nor ISO text (seconds with a
    fraction, say) is returned as it was, to be kept in the session's metadata.
    The writer keeps the newest of several copies of one memory.
    """
    if not isinstance(memory, Mapping):
        return [], None, [], {}
    raw = memory.get("memories")
    items: list[tuple[str | None, Any]] = []
    unfit: list[Any] = []
    if isinstance(raw, list):
        items = [(session.user_id, m) for m in raw]
    elif isinstance(raw, Mapping):
        for user, per_user in raw.items():
            if isinstance(per_user, Mapping):
                items += [(user, m) for m in per_user.values()]
            elif isinstance(per_user, list):
                items += [(user, m) for m in per_user]
            elif per_user is not None:
                unfit.append({str(user): per_user})  # Memory v2 keeps a map or list per user: kept as it is
    out: list[Agno3Memory] = []
    seen: set[str] = set()
    legacy: list[str] = []
    times: dict[str, Any] = {}
    created_base = session.created_at or 0
    updated_base = session.updated_at or created_base
    for i, (user, item) in enumerate(items):
        if isinstance(item, str):
            item = {"memory": item}
        if not isinstance(item, Mapping) or not isinstance(item.get("memory"), str):
            unfit.append(item)
            continue
        raw_time = item.get("updated_at", item.get("last_updated"))
        stamp = _memory_time(raw_time)
        memory_id = item.get("memory_id") or item.get("id")
        if memory_id:
            memory_id = str(memory_id)
        else:
            memory_id = memory_copy_id(user, item["memory"])
            legacy.append(make_id("memory", session.session_id, user, i))  # what builds before gave it
        if memory_id in seen:
            continue
        seen.add(memory_id)
        # Whole seconds and readable ISO text are the columns' value; anything else is kept as it was.
        if raw_time is not None and type(raw_time) is not int and not (isinstance(raw_time, str) and stamp is not None):
            times[memory_id] = raw_time
        out.append(
            Agno3Memory(
                memory_id=memory_id,
                memory=item["memory"],
                input=item.get("input") if isinstance(item.get("input"), str) else None,
                agent_id=entity[0],
                team_id=entity[1],
                user_id=user or None,
                topics=item.get("topics"),
                feedback=item.get("feedback") if isinstance(item.get("feedback"), str) else None,
                created_at=stamp if stamp is not None else created_base,
                updated_at=stamp if stamp is not None else updated_base,
            )
        )
    return out, (unfit or None), legacy, times


__all__ = ["is_summary", "memories_of", "summary_of"]
