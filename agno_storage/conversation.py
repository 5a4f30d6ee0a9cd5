"""One conversation history for every writer: :class:`Message` and the per-writer extractors.

Each writer keeps a session's conversation somewhere else:

- agno 1.x agents, teams and v1 workflows: ``memory.runs``, each run with the
  messages its model was sent and answered (``from_history`` marks what agno
  replayed from earlier runs; those are left out, so each message shows
  once); a team run's member runs in ``member_responses``; older agno
  (``AgentMemory``) keeps ``memory.messages`` and runs of ``{message,
  response}``.
- agno v2 workflows: the ``runs`` column, each run's steps holding the step
  agent's run.
- a Go ``team.Team`` (agno-golang v0.1.6): ``team_data.messages`` as
  ``[{role, content}]``.
- a Go ``agent.Agent``: one row per run in the ``agent_runs`` table (SQLite),
  often with no session row at all (see :mod:`agno_storage.agent_runs`).

:func:`history` reads them all through the store's public API and engine
interface and returns one ordered list of :class:`Message`.

:class:`Message` and its JSON form are defined in
:mod:`agno_storage.conversation_message`; the extractors in
:mod:`agno_storage.conversation_agno` (agno 1.x) and
:mod:`agno_storage.conversation_go` (agno-golang), over the shape checks
of :mod:`agno_storage.stored_json`. This module exports their public names
as well.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from agno_storage import agent_runs
from agno_storage.codec_exact import with_stack
from agno_storage.conversation_agno import memory_messages, workflow_v2_messages
from agno_storage.conversation_go import RunRow, go_team_messages, runs_by_user, runs_messages
from agno_storage.conversation_message import (
    SOURCE_AGNO,
    SOURCE_GO_AGENT,
    SOURCE_GO_TEAM,
    Message,
    Unwritable,
    json_text,
    make_converter,
)
from agno_storage.errors import CorruptRowError
from agno_storage.models import Session, TeamSession, WorkflowSessionV2
from agno_storage.schema import AGENT_RUNS_TABLE
from agno_storage.stored_json import Inexact

if TYPE_CHECKING:
    from agno_storage.backends.base import BaseStorage
    from agno_storage.codec import RowCodec


def history(
    store: BaseStorage,
    session_id: str,
    user_id: str | None = None,
    *,
    read: Callable[[str, str | None], Session | None] | None = None,
) -> builtins.list[Message]:
    """The conversation of ``session_id`` in order, each message once, whoever wrote it.

    With ``user_id``, a session row owned by someone else is read as no row,
    as ``read`` reads it: not decoded, and not told apart from an id the
    table does not have. Only ``user_id``'s own ``agent_runs`` rows under
    that id that are not part of that row's conversation (:func:`strays`)
    are its conversation then: none under a row with no owner, which takes
    every run, and none for ``user_id=''`` ("no owner") under an owned row,
    whose runs with no user are its owner's. Runs whose id another agent
    table of the file holds are that table's session's: ``[]``. A session
    the store does not have, or whose columns hold no conversation, gives
    ``[]``. Raises
    CorruptRowError, naming the session and column, for a conversation of
    the wrong shape. Cost: one read of the row, plus one indexed read of
    ``agent_runs`` on an agent table in SQLite. ``read(session_id,
    user_id)`` reads the row instead of ``store.read`` (the HTTP server's
    reader of a table of an older schema version).
    """
    lax: LaxRow | None = None
    if read is None:
        read_laxly = store.read_lax(session_id, user_id)  # decoded exactly only if a number it holds is used
        session = None if read_laxly is None else read_laxly[0]
        lax = None if read_laxly is None else LaxRow(store.row_codec, read_laxly[1])
    else:
        session = read(session_id, user_id)
    if session is not None:
        # Only the runs of its conversation: another user's under this id are not decoded (nor shown).
        owner = session.user_id or None
        runs = agent_runs.read_runs(store, session_id, owner, with_no_user=True, of_unowned_row=owner is None)
    else:
        runs = agent_runs.read_runs(store, session_id, user_id)
    if session is None and runs:
        # The owner of the row the caller may not read, looked up without decoding it (a corrupt row of
        # another user's must not fail this call).
        found = agent_runs.row_owner(store, session_id)
        if found is not None:
            runs = [r for r in runs if not belongs(found[0], r)]
        elif agent_runs.held_elsewhere(store, [session_id]):
            runs = []  # an archive copy's conversation: not this table's
    return combined(session, runs, store.table_name, lax=lax)


@attrs.frozen
class LaxRow:
    """The stored row a session was decoded from by :meth:`~agno_storage.codec.RowCodec.decode_lax`."""

    codec: RowCodec
    row: Sequence[Any]

    def is_exact(self) -> bool:
        """Whether the lax decode is certainly the exact one (:meth:`~agno_storage.codec.RowCodec.reads_exactly`)."""
        return self.codec.reads_exactly(self.row)

    def exact(self) -> Session:
        """The session as ``read()`` decodes the row; raises what it raises."""
        return self.codec.decode(self.row)


def combined(
    session: Session | None, runs: Sequence[RunRow], table: str, *, lax: LaxRow | None = None
) -> builtins.list[Message]:
    """One session's whole conversation: its row's (if it has one), and its ``agent_runs`` rows' merged in by time.

    The one place a Go Agent's runs meet a session row (history, search,
    the index). Raises CorruptRowError as :func:`session_messages` and
    :func:`runs_messages` do. ``lax``: ``session`` was decoded laxly from
    that row; its conversation is what the exact decode's would be (read
    again exactly where a value it uses may differ, or past the
    interpreter's recursion limit: :func:`_row_messages`).
    """
    messages: builtins.list[Message] = []
    if session is not None:
        try:
            messages = _row_messages(session, table, lax)
        except Unwritable as exc:
            sid = session.session_id
            raise CorruptRowError(f"{table} session {sid!r}: {exc}", table=table, session_id=sid) from None
        runs = [r for r in runs if belongs(session.user_id, r)]
    if not runs:
        return messages
    try:
        theirs = runs_messages(runs, table)
    except Unwritable as exc:
        sid = runs[0].session_id
        raise CorruptRowError(
            f"{AGENT_RUNS_TABLE} of session {sid!r}: {exc}", table=AGENT_RUNS_TABLE, session_id=sid, column="messages"
        ) from None
    return merge(messages, theirs)


def _row_messages(session: Session, table: str, lax: LaxRow | None) -> builtins.list[Message]:
    """:func:`session_messages` of ``session`` (read laxly from ``lax`` if given: read again exactly where a value
    it uses may differ), the same from any depth of the caller's stack.

    The reader recurses once per member run, so its depth limit is the
    interpreter's less the frames the caller uses. A RecursionError is read
    again, exactly, at the bottom of a new thread's stack
    (:func:`~agno_storage.codec_exact.with_stack`): the same limit for every
    caller. A conversation nested past even that (member runs within member
    runs, about 490 deep) is :class:`Unwritable`, never a RecursionError.
    """
    try:
        if lax is None:
            return session_messages(session, table)
        try:
            return session_messages(session, table, is_exact=lax.is_exact)
        except Inexact:
            return session_messages(lax.exact(), table)
    except RecursionError:
        pass
    exact = session if lax is None else lax.exact()
    try:
        return with_stack(lambda s: session_messages(s, table), exact)
    except RecursionError:
        raise Unwritable("its conversation is nested too deeply to read (member runs within member runs)") from None


def belongs(owner: str | None, run: RunRow) -> bool:
    """Whether ``run`` is part of the conversation of a session owned by ``owner``: a run with no user (a Go
    Agent given none), the owner's, or any run of a session that has no owner. One that another user's Go
    Agent wrote under the id of an owned session is not: the owner is never shown it (nor counted its tokens),
    and that user cannot read the owner's session; it is that user's (:func:`strays`)."""
    return not run.user_id or not owner or run.user_id == owner


def strays(owner: str | None, runs: Iterable[RunRow]) -> builtins.list[tuple[str | None, builtins.list[RunRow]]]:
    """The runs under the id of a session owned by ``owner`` that are not part of its conversation, by user.

    Each group is the conversation its user has under that id, as
    ``history(session_id, user_id)`` reads it for that user; ``search`` and
    ``usage`` count it as that user's, with no entity.
    """
    return runs_by_user(r for r in runs if not belongs(owner, r))


def session_messages(
    session: Session, table: str, *, is_exact: Callable[[], bool] | None = None
) -> builtins.list[Message]:
    """The conversation a session row holds (its memory, team_data or runs column).

    ``is_exact`` is given where ``session`` was decoded laxly
    (:meth:`~agno_storage.codec.RowCodec.decode_lax`): whether the row holds
    no integer past 64 bits. It is asked before a value such an integer
    could change is used; :class:`~agno_storage.stored_json.Inexact` is
    raised if it says no.
    """
    sid = session.session_id
    out: builtins.list[Message] = []
    if is_exact is not None:
        asked = is_exact
        # Asked once for the whole row, whichever column's reader asks first.
        answer: builtins.list[bool] = []

        def is_exact() -> bool:
            if not answer:
                answer.append(asked())
            return answer[0]

    if session.memory is not None:
        out += memory_messages(session.memory, sid, table, is_exact=is_exact)
    if isinstance(session, TeamSession) and session.team_data is not None:
        out += go_team_messages(session.team_data, sid, table, is_exact=is_exact)
    if isinstance(session, WorkflowSessionV2) and session.runs is not None:
        runs = session.runs
        listed = builtins.list(runs.values()) if isinstance(runs, dict) else runs
        out += workflow_v2_messages(listed, sid, table, is_exact=is_exact)
    return out


def merge(first: builtins.list[Message], second: builtins.list[Message]) -> builtins.list[Message]:
    """Two ordered conversations of one session as one, by time; at equal times ``first`` goes first."""

    def times(messages: builtins.list[Message]) -> builtins.list[int]:
        out, last = [], -(2**63)
        for m in messages:
            if m.created_at is not None:
                last = m.created_at
            out.append(last)
        return out

    if not first:
        return second
    a, b = times(first), times(second)
    merged: builtins.list[Message] = []
    i = j = 0
    while i < len(first) and j < len(second):
        if a[i] <= b[j]:
            merged.append(first[i])
            i += 1
        else:
            merged.append(second[j])
            j += 1
    return merged + first[i:] + second[j:]


__all__ = [
    "SOURCE_AGNO",
    "SOURCE_GO_AGENT",
    "SOURCE_GO_TEAM",
    "Message",
    "RunRow",
    "Unwritable",
    "belongs",
    "combined",
    "go_team_messages",
    "history",
    "json_text",
    "make_converter",
    "memory_messages",
    "merge",
    "runs_by_user",
    "runs_messages",
    "session_messages",
    "strays",
]
