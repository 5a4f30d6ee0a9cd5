"""Who owns a session id in agno 3, and which source records of it are left out: the rule, with no I/O.

agno 3 keys a session by its id alone and gives it one ``user_id``; agno
1.x tables and a Go Agent's ``agent_runs`` may hold records of several users
under one id. Owners are never merged: :func:`split_owners` keeps the
records of one user (and of none) and names the others, which are not
migrated.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from agno_storage.agno3.records import GoAgentRun
from agno_storage.models import Session

#: A Go Agent's runs, read from its ``agent_runs`` table (not a 1.x mode).
GO_AGENT_RUNS = "go_agent_runs"


@attrs.frozen
class Owners:
    """The records of one session id split by owner: those merged into the agno 3 session, and the rest."""

    #: The agno 3 session's user (None: no one's).
    user_id: str | None
    #: The 1.x sessions merged, in the order given.
    sources: tuple[Session, ...]
    #: The Go runs merged, in the order given.
    go_runs: tuple[GoAgentRun, ...]
    #: The 1.x sessions of another user, left out.
    dropped: tuple[Session, ...]
    #: The Go runs of another user, left out.
    go_dropped: tuple[GoAgentRun, ...]
    #: Per record left out (one per 1.x session, one per user of Go runs): (source label, why).
    left_out: tuple[tuple[str, str], ...]


def split_owners(session_id: str, ordered: Sequence[Session], go_runs: Sequence[GoAgentRun]) -> Owners:
    """Split the records of ``session_id`` by owner: ``ordered`` 1.x sessions (the first names the session) and Go runs.

    The owner is the first 1.x session's user that has one; a 1.x session of
    another user is left out. Under an owned session row the Go runs follow
    :func:`agno_storage.conversation.belongs`: the runs with no user and the
    owner's are the session's. With no owned row (an ownerless row, or none)
    they are grouped by user as :func:`agno_storage.conversation_go.runs_by_user`
    groups them: the user the first of them names owns the session, with the
    ownerless rows and the runs that name no user. Any other user's runs are
    left out: agno 3 gives an ownerless session to whoever resumes it first,
    who would then be shown every user's runs.
    """
    owned = next((s for s in ordered if s.user_id), None)
    owner = owned.user_id if owned is not None else None
    kept = tuple(s for s in ordered if not s.user_id or s.user_id == owner)
    dropped = tuple(s for s in ordered if s.user_id and s.user_id != owner)
    left_out = [
        (
            s.MODE.value,
            f"{s.MODE.value} session {session_id!r} belongs to user {s.user_id!r}, the"
            f" {owned.MODE.value if owned else ''} session under the same id to user {owner!r}:"
            " owners are not merged, so it was left out (not migrated)",
        )
        for s in dropped
    ]
    runs_owner = owner if owner is not None else next((r.user_id for r in go_runs if r.user_id), None)
    go_kept: tuple[GoAgentRun, ...] = tuple(go_runs)
    go_dropped: tuple[GoAgentRun, ...] = ()
    if runs_owner is not None:
        go_kept = tuple(r for r in go_runs if not r.user_id or r.user_id == runs_owner)
        go_dropped = tuple(r for r in go_runs if r.user_id and r.user_id != runs_owner)
    if owned is not None:
        whose = f"the {owned.MODE.value} session under the same id belongs to user {owner!r}"
    elif kept:
        whose = (
            f"the {kept[0].MODE.value} session under the same id has no owner and its first Go runs name"
            f" user {runs_owner!r}, who owns it"
        )
    else:
        whose = f"the session's first Go runs name user {runs_owner!r}, who owns it"
    by_user: dict[str, list[str]] = {}
    for run in go_dropped:
        by_user.setdefault(str(run.user_id), []).append(run.id)
    left_out += [
        (
            GO_AGENT_RUNS,
            f"{GO_AGENT_RUNS} of session {session_id!r}: {len(ids)} runs of user {user!r}"
            f" ({', '.join(map(repr, ids))}); {whose}: owners are not merged, so they were left out (not migrated)",
        )
        for user, ids in by_user.items()
    ]
    return Owners(
        user_id=runs_owner,
        sources=kept,
        go_runs=go_kept,
        dropped=dropped,
        go_dropped=go_dropped,
        left_out=tuple(left_out),
    )


__all__ = ["GO_AGENT_RUNS", "Owners", "split_owners"]
