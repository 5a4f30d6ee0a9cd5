"""The conversation agno-golang v0.1.6 keeps: a Go Team's ``team_data.messages``, a Go Agent's ``agent_runs`` rows.

A Go ``team.Team`` keeps ``team_data.messages`` as ``[{role, content}]``.
A Go ``agent.Agent`` keeps one row per run in the ``agent_runs`` table
(SQLite), often with no session row at all (see
:mod:`agno_storage.agent_runs`, which reads those rows as :class:`RunRow`):
each row holds everything its model was sent, so the messages earlier
runs already gave are left out (:func:`runs_messages`).
"""

from __future__ import annotations

import builtins
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
import orjson

from agno_storage.conversation_message import SOURCE_GO_AGENT, SOURCE_GO_TEAM, Message, content_text
from agno_storage.schema import AGENT_RUNS_TABLE
from agno_storage.stored_json import StoredJson


def go_team_messages(
    team_data: Mapping[str, Any], session_id: str, table: str, *, is_exact: Callable[[], bool] | None = None
) -> builtins.list[Message]:
    """A Go Team's ``team_data.messages`` (``[{role, content}]``); ``[]`` when the key is absent.

    ``is_exact`` as for :func:`agno_storage.conversation_agno.memory_messages`.
    """
    raw = team_data.get("messages")
    if raw is None:
        return []
    reader = StoredJson(table, session_id, "team_data", is_exact=is_exact)
    out: builtins.list[Message] = []
    for k, item in enumerate(reader.as_list(raw, "team_data.messages")):
        m = reader.as_dict(item, f"team_data.messages[{k}]")
        role = reader.opt_str(m, "role", f"team_data.messages[{k}]")
        if role is None:
            raise reader.corrupt(f"team_data.messages[{k}]", "has no role")
        content = m.get("content")
        if content is not None and type(content) is not str:
            reader.confirm_exact()  # structured content is written out as JSON, numbers and all
        out.append(Message(role=role, content=content_text(content), source=SOURCE_GO_TEAM))
    return out


@attrs.frozen
class RunRow:
    """One row of ``agent_runs`` as stored (``messages`` and ``metrics`` still JSON text)."""

    id: str
    session_id: str
    user_id: str | None
    user_message: str | None
    agent_message: str | None
    messages: str | None
    metrics: str | None
    created_at: int | None


def runs_by_user(rows: Iterable[RunRow]) -> builtins.list[tuple[str | None, builtins.list[RunRow]]]:
    """Runs of a session only ``agent_runs`` holds, grouped by their ``user_id``, each group in order.

    Such a session has no owner of its own: each run belongs to the user it
    names (``history(session_id, user_id)`` reads that user's runs only).
    Groups come in the order of their first run; ``''`` and NULL are one
    group, "no user" (``None``).
    """
    groups: dict[str | None, builtins.list[RunRow]] = {}
    for row in rows:
        groups.setdefault(row.user_id or None, []).append(row)
    return builtins.list(groups.items())


def runs_messages(rows: Iterable[RunRow], table: str) -> builtins.list[Message]:
    """A Go Agent's runs as one conversation, each message once.

    Each row's ``messages`` is everything the model was sent: within one Go
    process the earlier turns (non-user messages first), then the run's
    user message; the reply is only in ``agent_message``. Messages that
    earlier runs of the session already gave are consumed, as many times as
    they were given; the rest (a system prompt, say) are new.
    """
    out: builtins.list[Message] = []
    given: Counter[tuple[str, str | None]] = Counter()
    for row in rows:
        reader = StoredJson(AGENT_RUNS_TABLE, row.session_id, "messages")
        try:
            sent = orjson.loads(row.messages) if row.messages else []
        except orjson.JSONDecodeError as exc:
            raise reader.corrupt(f"run {row.id!r}", f"is not valid JSON: {exc}") from exc
        sent = reader.as_list(sent if sent is not None else [], f"run {row.id!r}")
        items = [reader.as_dict(m, f"run {row.id!r} message") for m in sent]
        # A message with no role is read as the user's (below): it counts as the run's user message too.
        last_user = max((k for k, m in enumerate(items) if (m.get("role") or "user") == "user"), default=None)
        available = given.copy()
        new: builtins.list[Message] = []
        for k, m in enumerate(items):
            role = reader.opt_str(m, "role", f"run {row.id!r} message[{k}]") or "user"
            message = Message(
                role=role,
                content=content_text(m.get("content")),
                created_at=row.created_at,
                run_id=row.id,
                source=SOURCE_GO_AGENT,
            )
            key = (message.role, message.content)
            if k != last_user and available[key] > 0:
                available[key] -= 1
                continue
            new.append(message)
        # The run's own columns: its user message where no message held it, and the reply, which only they hold.
        for role, content in (
            ("user", row.user_message if last_user is None else None),
            ("assistant", row.agent_message),
        ):
            if content is not None:
                new.append(
                    Message(
                        role=role, content=content, created_at=row.created_at, run_id=row.id, source=SOURCE_GO_AGENT
                    )
                )
        given.update((m.role, m.content) for m in new)
        out += new
    return out


__all__ = ["RunRow", "go_team_messages", "runs_by_user", "runs_messages"]
