"""The rows agno 3.1.10's tables hold, and the converter that is the one definition of their dict form."""

from __future__ import annotations

from typing import Any, cast

import attrs
import cattrs

from agno_storage.agent_runs import StoredRun


class ByFields:
    """Pickled as its class and its field values, in order: what a migration worker sends back of each session.

    attrs pickles a slotted class through a dict of its fields, object by
    object; a worker's batch of 200 benchmark sessions (an :class:`Encoded`
    and a ``SessionRuns`` each) took 6.6-9.3 ms to pickle that way, 2.7 ms
    this way. A subclass's fields must all be ``__init__`` arguments, in order.
    """

    __slots__ = ()

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        return type(self), attrs.astuple(cast(attrs.AttrsInstance, self), recurse=False)


@attrs.frozen
class Agno3Session:
    """One ``agno_sessions`` row; JSON columns hold Python values."""

    session_id: str
    session_type: str
    agent_id: str | None
    team_id: str | None
    workflow_id: str | None
    user_id: str | None
    session_data: Any
    agent_data: Any
    team_data: Any
    workflow_data: Any
    metadata: Any
    summary: Any
    created_at: int
    updated_at: int | None


@attrs.frozen
class Agno3Run:
    """One ``agno_runs`` row; ``run_data`` is what agno 3's ``RunOutput.from_dict`` (or Team/Workflow) reads."""

    run_id: str
    session_id: str
    run_type: str
    agent_id: str | None
    team_id: str | None
    workflow_id: str | None
    user_id: str | None
    parent_run_id: str | None
    status: str | None
    run_index: int
    run_data: dict[str, Any]
    created_at: int
    updated_at: int | None


@attrs.frozen
class Agno3Memory:
    """One ``agno_memories`` row (agno 3's ``UserMemory``)."""

    memory_id: str
    memory: Any
    input: str | None
    agent_id: str | None
    team_id: str | None
    user_id: str | None
    topics: Any
    feedback: str | None
    created_at: int
    updated_at: int | None


@attrs.frozen
class Mapped:
    """Everything one source session becomes, and what could not be mapped (kept, and said)."""

    session: Agno3Session
    runs: tuple[Agno3Run, ...]
    memories: tuple[Agno3Memory, ...]
    #: Per source mode: (mode label, number of top-level runs, number of member runs).
    sources: tuple[str, ...]
    summaries: int
    problems: tuple[str, ...]
    #: Runs an earlier migration wrote for this session that its source no longer holds: deleted.
    stale_runs: tuple[str, ...] = ()
    #: Whether an earlier migration wrote this session (its other runs, agno 3's own, are renumbered after).
    rewrite: bool = False
    #: The ids builds before 2026-12 gave this session's id-less memories (one row per session and place).
    legacy_memories: tuple[str, ...] = ()
    #: Source records under this id that were not merged into it (another user's 1.x session, or Go runs,
    #: one per user): (source label, why).
    left_out: tuple[tuple[str, str], ...] = ()
    #: The ids a build that merged owners gave the runs of ``left_out`` (deleted where DST holds them here).
    left_out_runs: tuple[str, ...] = ()


@attrs.frozen
class Encoded(ByFields):
    """One mapped session as its writer's parameter rows (JSON encoded), and what the writer needs besides.

    A batch holds these rather than :class:`Mapped`: the mapped dicts are
    freed as soon as each session is encoded, so a batch is a few strings
    per row instead of thousands of live containers.
    """

    session_id: str
    session: tuple[Any, ...]
    runs: tuple[tuple[Any, ...], ...]
    memories: tuple[tuple[Any, ...], ...]
    #: The ids of ``runs``, in order.
    run_ids: tuple[str, ...]
    stale_runs: tuple[str, ...]
    rewrite: bool
    #: Memory rows an earlier build wrote under ids no longer used (deleted with the batch).
    stale_memories: tuple[str, ...] = ()


@attrs.frozen
class Previous(ByFields):
    """What ``agno_sessions`` holds of one session: what an earlier migration left in its ``metadata["agno_v1"]``."""

    stamp: str | None
    run_ids: tuple[str, ...]
    #: Whether a migration wrote the session (its metadata has a stamp); False: agno 3's own, never written over.
    migrated: bool = True
    #: Of ``run_ids``, those another session holds now (a build before 2026-12 moved them there): written again.
    elsewhere: tuple[str, ...] = ()
    #: The session's ``user_id`` there; when it is not the owner mapped now, the session is written again.
    user_id: str | None = None
    #: Of a session with no stamp (``migrated`` False): its runs in ``agno_runs`` that carry a migration's
    #: ``metadata["agno_v1"]``. agno 3 replaces the metadata of a session it gives to the user who resumes
    #: it; the runs a migration wrote stay, with that mark.
    marked: tuple[str, ...] = ()


#: One row of a Go Agent's ``agent_runs`` table, as it is stored (JSON columns as text).
GoAgentRun = StoredRun


def make_converter() -> cattrs.Converter:
    """The converter that defines the records' dict form (their columns, in order), strict both ways.

    The writer builds its rows without it, field by field (measured: the
    converter's walk over every nested JSON value was the largest cost of a
    migration); ``tests/test_agno3_records.py`` checks those rows are this
    converter's dicts.

    Unknown keys are refused on structure and nothing is coerced (a number
    where a str belongs raises instead of becoming ``"5"``): a row that does
    not fit is an error, not a guess. The strict hooks are the conversation
    records' (:func:`agno_storage.conversation_message.make_converter`).
    """
    from agno_storage.conversation_message import make_converter as strict_converter

    return strict_converter()
