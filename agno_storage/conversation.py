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
"""

from __future__ import annotations

import builtins
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs
import cattrs
import orjson
from cattrs.fns import identity

from agno_storage.errors import CorruptRowError
from agno_storage.models import Session, TeamSession, WorkflowSessionV2
from agno_storage.schema import AGENT_RUNS_TABLE

if TYPE_CHECKING:
    from agno_storage.backends.base import BaseStorage

#: ``Message.source``: the conversation came from an agno 1.x ``memory`` / ``runs`` column.
SOURCE_AGNO: Final = "agno"
#: ``Message.source``: from a Go Team's ``team_data.messages``.
SOURCE_GO_TEAM: Final = "go-team"
#: ``Message.source``: from a row of the ``agent_runs`` table (a Go Agent's format, whoever appended it).
SOURCE_GO_AGENT: Final = "go-agent"


@attrs.define
class Message:
    """One message of a conversation, whichever writer stored it.

    ``role`` is what the writer stored (``"system"``, ``"user"``,
    ``"assistant"``, ``"tool"``; agno's ``"developer"`` and other roles are
    kept as written). ``content`` is the text (multi-part content joined, a
    structured value as its JSON), or ``None``. ``created_at`` is Unix
    seconds where the writer kept a time. ``run_id`` names the run (agno's
    run_id, the ``agent_runs`` row id). ``tool_calls`` is the assistant's
    tool calls as stored; ``tool_call_id`` and ``name`` (the tool's name)
    describe a tool result. ``member`` names the team member (agent id or
    name) whose run the message belongs to, ``None`` for the session's own
    agent, team or workflow. ``source`` names where it was read:
    :data:`SOURCE_AGNO`, :data:`SOURCE_GO_TEAM` or :data:`SOURCE_GO_AGENT`.

    Fields may be given by keyword or, in this order, by position (history
    builds one per stored message; a call by position costs a third of one
    by keyword).
    """

    role: str
    content: str | None
    created_at: int | None = None
    run_id: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    name: str | None = None
    member: str | None = None
    source: str = SOURCE_AGNO


def make_converter() -> cattrs.Converter:
    """The one definition of the JSON form of :class:`Message` (and of :class:`~agno_storage.search.SearchHit`).

    Strict: unknown keys are refused and nothing is coerced (a number where a
    str belongs raises instead of becoming ``"1"``).
    """
    converter = cattrs.Converter(forbid_extra_keys=True)

    def exact(kind: type[Any]) -> Callable[[Any, Any], Any]:
        def structure(value: Any, _: Any) -> Any:
            if type(value) is not kind:
                raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}: {value!r}")
            return value

        return structure

    for kind in (str, int, bool):
        converter.register_structure_hook(kind, exact(kind))

    def structure_float(value: Any, _: Any) -> float:
        if type(value) not in (int, float):
            raise TypeError(f"expected a number, got {type(value).__name__}: {value!r}")
        return float(value)

    converter.register_structure_hook(float, structure_float)

    def structure_object(value: Any, _: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise TypeError(f"expected an object, got {type(value).__name__}")
        return value

    converter.register_structure_hook_func(lambda t: t == dict[str, Any], structure_object)
    # An optional text or number unstructures to itself: with cattrs' own identity as its hook, the
    # generated unstructure reads the attribute inline instead of calling a handler per field (the index
    # fingerprints every message with it).
    converter.register_unstructure_hook_func(lambda t: t in _OPTIONAL_SCALARS or t in _JSON_VALUES, identity)
    return converter


_OPTIONAL_SCALARS = frozenset({str | None, int | None, float | None, bool | None})
#: ``Message.tool_calls``: JSON values already (read from a store), unstructured as they are; walked by cattrs,
#: one nested ~330 levels deep (which the store reads) was a RecursionError.
_JSON_VALUES = frozenset({list[dict[str, Any]] | None})


# --------------------------------------------------------------------------- the entry point


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
    from agno_storage import agent_runs

    read = read or store.read
    session = read(session_id, user_id)
    runs = agent_runs.read_runs(store, session_id, None if session is not None else user_id)
    if session is None and runs:
        # The owner of the row the caller may not read, looked up without decoding it (a corrupt row of
        # another user's must not fail this call).
        found = agent_runs.row_owner(store, session_id)
        if found is not None:
            runs = [r for r in runs if not belongs(found[0], r)]
        elif agent_runs.held_elsewhere(store, [session_id]):
            runs = []  # an archive copy's conversation: not this table's
    return combined(session, runs, store.table_name)


def combined(session: Session | None, runs: Sequence[RunRow], table: str) -> builtins.list[Message]:
    """One session's whole conversation: its row's (if it has one), and its ``agent_runs`` rows' merged in by time.

    The one place a Go Agent's runs meet a session row (history, search,
    the index). Raises CorruptRowError as :func:`session_messages` and
    :func:`runs_messages` do.
    """
    messages: builtins.list[Message] = []
    if session is not None:
        try:
            messages = session_messages(session, table)
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


def session_messages(session: Session, table: str) -> builtins.list[Message]:
    """The conversation a session row holds (its memory, team_data or runs column)."""
    sid = session.session_id
    out: builtins.list[Message] = []
    if session.memory is not None:
        out += memory_messages(session.memory, sid, table)
    if isinstance(session, TeamSession) and session.team_data is not None:
        out += go_team_messages(session.team_data, sid, table)
    if isinstance(session, WorkflowSessionV2) and session.runs is not None:
        runs = session.runs
        listed = builtins.list(runs.values()) if isinstance(runs, dict) else runs
        out += _Reader(sid, table, "runs").workflow_v2_runs(listed)
    return out


# --------------------------------------------------------------------------- agno 1.x


def memory_messages(memory: Mapping[str, Any], session_id: str, table: str) -> builtins.list[Message]:
    """The conversation in an agno 1.x ``memory`` object (Memory v2 runs, or AgentMemory / TeamMemory)."""
    reader = _Reader(session_id, table, "memory")
    runs = memory.get("runs")
    if isinstance(runs, dict):
        # Memory.to_dict() keys runs by session. A row may hold another session's too (an agno Agent or
        # Team moved to this session saves the runs of the one it left): like agno, read this one's only.
        runs = runs.get(session_id)
    if runs is not None:
        listed = reader.as_list(runs, "memory.runs")
        if listed:
            return reader.agno_runs(listed)
    # AgentMemory / TeamMemory without runs: memory.messages is the conversation, each message once.
    messages = memory.get("messages")
    if messages is None:
        return []
    return reader.agno_messages(reader.as_list(messages, "memory.messages"), run_id=None, member=None, speaker=None)


class StoredJson:
    """Checks on the shape of one stored JSON column; every error names the table, session and column.

    Shared by the readers that walk what agno and agno-golang store
    (conversations here, usage figures in :mod:`agno_storage.usage`).
    """

    def __init__(self, table: str, session_id: str, column: str) -> None:
        self.table = table
        self.session_id = session_id
        self.column = column

    def corrupt(self, where: str, what: str) -> CorruptRowError:
        return CorruptRowError(
            f"{self.table}.{self.column} of session {self.session_id!r}: {where} {what}",
            table=self.table,
            session_id=self.session_id,
            column=self.column,
        )

    def as_list(self, value: Any, where: str) -> builtins.list[Any]:
        if not isinstance(value, list):
            raise self.corrupt(where, f"is a JSON {type(value).__name__}, not a list")
        return value

    def as_dict(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.corrupt(where, f"is a JSON {type(value).__name__}, not an object")
        return value


class _Reader(StoredJson):
    """Turns one session's stored JSON into messages."""

    def __init__(self, session_id: str, table: str, column: str) -> None:
        super().__init__(table, session_id, column)
        # Each speaker's last system prompt (None: the session's own agent, team or workflow; else the member
        # or step): a leader and its members each send their own on every run, one after the other.
        self.last_system: dict[str | None, str | None] = {}

    def opt_str(self, item: Mapping[str, Any], key: str, where: str) -> str | None:
        value = item.get(key)
        if value is not None and not isinstance(value, str):
            raise self.corrupt(f"{where}.{key}", f"is a JSON {type(value).__name__}, not a string")
        return value

    def opt_time(self, item: Mapping[str, Any], where: str) -> int | None:
        value = item.get("created_at")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.corrupt(f"{where}.created_at", f"is a JSON {type(value).__name__}, not a number")
        return int(value)

    def agno_runs(self, runs: builtins.list[Any], member: str | None = None) -> builtins.list[Message]:
        out: builtins.list[Message] = []
        for i, run in enumerate(runs):
            if type(run) is dict:
                messages = run.get("messages")
                run_id = run.get("run_id")
                if type(run_id) is str and type(messages) is list and not run.get("member_responses"):
                    self.append_messages(out, messages, run_id, member, member)  # the common case, as agno_run
                    continue
            where = f"memory.runs[{i}]"
            run = self.as_dict(run, where)
            if "response" in run and "run_id" not in run:  # AgentMemory / TeamMemory: {message, messages, response}
                response = self.as_dict(run["response"] or {}, f"{where}.response")
                messages = run.get("messages") or response.get("messages")
                run_id = self.opt_str(response, "run_id", f"{where}.response")
                if messages is None:
                    first = [m for m in (run.get("message"),) if m]
                    out += self.agno_messages(first, run_id=run_id, member=member, speaker=member)
                    out += self.content_only(response, run_id, member, f"{where}.response")
                    continue
                listed = self.as_list(messages, f"{where}.messages")
                out += self.agno_messages(listed, run_id=run_id, member=member, speaker=member)
                continue
            out += self.agno_run(run, where, member, member)
        return out

    def agno_run(
        self, run: dict[str, Any], where: str, member: str | None, speaker: str | None
    ) -> builtins.list[Message]:
        """One RunResponse / TeamRunResponse dict: its messages, its member runs where they ran.

        ``member`` names its messages (:attr:`Message.member`); ``speaker`` is whose system prompts they are
        (the key of :attr:`last_system`), the member again but for a v2 workflow's step.
        """
        run_id = run.get("run_id")
        if run_id is not None and type(run_id) is not str:
            run_id = self.opt_str(run, "run_id", where)
        messages = run.get("messages")
        responses = run.get("member_responses")
        if not responses and type(messages) is list:  # the common case: no member ran
            return self.agno_messages(messages, run_id=run_id, member=member, speaker=speaker)
        members: builtins.list[builtins.list[Message]] = []
        for j, raw in enumerate(self.as_list(responses or [], f"{where}.member_responses")):
            member_run = self.as_dict(raw, f"{where}.member_responses[{j}]")
            who = self.runner(member_run, where)
            members.append(self.agno_run(member_run, f"{where}.member_responses[{j}]", who, who))
        if messages is None:
            return self.content_only(run, run_id, member, where) + [m for ran in members for m in ran]
        listed = self.as_list(messages, f"{where}.messages")
        own = self.agno_messages(listed, run_id=run_id, member=member, speaker=speaker)
        return placed(own, members)

    def runner(self, run: Mapping[str, Any], where: str) -> str | None:
        """The agent or team a run is of: its id, or its name."""
        return (
            self.opt_str(run, "agent_id", where)
            or self.opt_str(run, "team_id", where)
            or self.opt_str(run, "agent_name", where)
        )

    def content_only(self, run: Mapping[str, Any], run_id: str | None, member: str | None, where: str) -> list[Message]:
        """A run that kept no messages (an agno v1 workflow's run): its answer alone."""
        content = _text(run.get("content"))
        if content is None:
            return []
        return [
            Message(
                role="assistant",
                content=content,
                created_at=self.opt_time(run, where),
                run_id=run_id,
                member=member,
                source=SOURCE_AGNO,
            )
        ]

    def agno_messages(
        self, messages: builtins.list[Any], *, run_id: str | None, member: str | None, speaker: str | None
    ) -> builtins.list[Message]:
        """The stored messages of one run, but for those agno replayed and a system prompt ``speaker`` sent
        last time too."""
        out: builtins.list[Message] = []
        self.append_messages(out, messages, run_id, member, speaker)
        return out

    def append_messages(
        self,
        out: builtins.list[Message],
        messages: builtins.list[Any],
        run_id: str | None,
        member: str | None,
        speaker: str | None,
    ) -> None:
        """Append to ``out`` what :meth:`agno_messages` returns (no list made per run, none copied)."""
        append = out.append
        # This runs for every stored message (replayed ones included): the common case is checked inline,
        # and a message's place is worked out only for an error.
        for m in messages:
            if type(m) is not dict:
                self.as_dict(m, self._where(messages, m, run_id))
            if m.get("from_history") is True:
                continue  # agno replayed it from an earlier run, where it is already counted
            role = m.get("role")
            if type(role) is not str:
                where = self._where(messages, m, run_id)
                raise (
                    self.corrupt(where, "has no role")
                    if role is None
                    else self.corrupt(f"{where}.role", "is not a string")
                )
            content = m.get("content")
            if content is not None and type(content) is not str:
                content = _text(content)
            if role == "system":
                if content == self.last_system.get(speaker):
                    continue  # the same system prompt, sent again on every run
                self.last_system[speaker] = content
            created = m.get("created_at")
            if (
                (created is None or type(created) is int)
                and m.get("tool_calls") is None
                and "tool_call_id" not in m
                and "tool_name" not in m
                and "name" not in m
            ):
                append(Message(role, content, created, run_id, None, None, None, member))
                continue
            where = self._where(messages, m, run_id)
            tool_calls = m.get("tool_calls")
            if tool_calls is not None:
                tool_calls = [self.as_dict(c, f"{where}.tool_calls[*]") for c in self.as_list(tool_calls, where)]
            append(
                Message(
                    role=role,
                    content=content,
                    created_at=self.opt_time(m, where),
                    run_id=run_id,
                    tool_calls=tool_calls or None,
                    tool_call_id=self.opt_str(m, "tool_call_id", where),
                    name=self.opt_str(m, "tool_name", where) or self.opt_str(m, "name", where),
                    member=member,
                    source=SOURCE_AGNO,
                )
            )

    @staticmethod
    def _where(messages: builtins.list[Any], m: Any, run_id: str | None) -> str:
        k = next(k for k, item in enumerate(messages) if item is m)
        return f"message[{k}] of run {run_id!r}"

    def workflow_v2_runs(self, runs: builtins.list[Any]) -> builtins.list[Message]:
        out: builtins.list[Message] = []
        for i, raw in enumerate(runs):
            where = f"runs[{i}]"
            run = self.as_dict(raw, where)
            run_id = self.opt_str(run, "run_id", where)
            steps = run.get("step_responses")
            got = self.steps(self.as_list(steps, f"{where}.step_responses"), where) if steps else []
            # The workflow's run names its messages, not the step agent's own run inside it.
            got = [attrs.evolve(m, run_id=run_id) for m in got]
            out += got if got else self.content_only(run, run_id, None, where)
        return out

    def steps(self, steps: builtins.list[Any], where: str) -> builtins.list[Message]:
        out: builtins.list[Message] = []
        for j, raw in enumerate(steps):
            step_where = f"{where}.step_responses[{j}]"
            step = self.as_dict(raw, step_where)
            response = step.get("response")
            nested = step.get("steps") or step.get("step_responses")
            if isinstance(response, dict) and response.get("messages") is not None:
                member = self.opt_str(step, "step_name", step_where)
                # agno 1.8.4 keeps no step name: the step's agent tells its system prompts from the other steps'.
                speaker = member or self.runner(response, f"{step_where}.response")
                out += self.agno_run(response, f"{step_where}.response", member, speaker)
            elif nested:
                out += self.steps(self.as_list(nested, f"{step_where}.steps"), step_where)
            else:
                content = _text(step.get("content"))
                if content is not None:
                    out.append(
                        Message(
                            role="assistant",
                            content=content,
                            member=self.opt_str(step, "step_name", step_where),
                            source=SOURCE_AGNO,
                        )
                    )
        return out


#: The tools an agno 1.x team leader runs its members with (agno 1.8.4's ``Team``): ``transfer_task_to_member``
#: (coordinate mode) and ``forward_task_to_member`` (route) run the one member they name, ``run_member_agents``
#: (collaborate) every member in the one call.
_RUNS_ONE: Final = frozenset({"transfer_task_to_member", "forward_task_to_member"})
_RUNS_ALL: Final = "run_member_agents"


def placed(own: builtins.list[Message], members: builtins.list[builtins.list[Message]]) -> builtins.list[Message]:
    """A team run's messages with each member run (in ``member_responses`` order) where it ran.

    A member runs inside the leader's tool call that delegated to it: its
    messages go right before that call's tool result. agno appends a
    member's run when it ends, so ``members`` are in the order of those
    results. Where the stored runs do not match the delegations (an older
    agno, a member that failed, hand-written data), every member run goes
    before the leader's first tool message, as one block.
    """
    slots = _delegations(own, len(members))
    if slots is None:
        at = next((k for k, m in enumerate(own) if m.role == "tool"), len(own))
        return own[:at] + [m for ran in members for m in ran] + own[at:]
    out: builtins.list[Message] = []
    done = taken = 0
    for at, count in slots:
        out += own[done:at]
        for ran in members[taken : taken + count]:
            out += ran
        done, taken = at, taken + count
    return out + own[done:]


def _delegations(own: builtins.list[Message], runs: int) -> builtins.list[tuple[int, int]] | None:
    """(index in ``own``, member runs it ran) of each delegating tool result, or ``None`` when they do not
    account for exactly ``runs`` member runs.

    A delegation to a member id the team does not have ran none (agno
    answers "Member with ID ... not found"); each ``run_member_agents``
    call ran the same members, so the runs the others leave are shared out
    evenly among those calls.
    """
    ones: builtins.list[tuple[int, int]] = []
    alls: builtins.list[int] = []
    for k, m in enumerate(own):
        if m.role != "tool":
            continue
        if m.name in _RUNS_ONE:
            missing = m.content is not None and m.content.startswith("Member with ID ") and " not found " in m.content
            ones.append((k, 0 if missing else 1))
        elif m.name == _RUNS_ALL:
            alls.append(k)
    left = runs - sum(count for _, count in ones)
    if left < 0 or (left and not alls) or (alls and left % len(alls)):
        return None
    share = left // len(alls) if alls else 0
    return sorted(ones + [(k, share) for k in alls])


# --------------------------------------------------------------------------- agno-golang


def go_team_messages(team_data: Mapping[str, Any], session_id: str, table: str) -> builtins.list[Message]:
    """A Go Team's ``team_data.messages`` (``[{role, content}]``); ``[]`` when the key is absent."""
    raw = team_data.get("messages")
    if raw is None:
        return []
    reader = _Reader(session_id, table, "team_data")
    out: builtins.list[Message] = []
    for k, item in enumerate(reader.as_list(raw, "team_data.messages")):
        m = reader.as_dict(item, f"team_data.messages[{k}]")
        role = reader.opt_str(m, "role", f"team_data.messages[{k}]")
        if role is None:
            raise reader.corrupt(f"team_data.messages[{k}]", "has no role")
        out.append(Message(role=role, content=_text(m.get("content")), source=SOURCE_GO_TEAM))
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
        reader = _Reader(row.session_id, AGENT_RUNS_TABLE, "messages")
        try:
            sent = orjson.loads(row.messages) if row.messages else []
        except orjson.JSONDecodeError as exc:
            raise reader.corrupt(f"run {row.id!r}", f"is not valid JSON: {exc}") from exc
        sent = reader.as_list(sent if sent is not None else [], f"run {row.id!r}")
        items = [reader.as_dict(m, f"run {row.id!r} message") for m in sent]
        last_user = max((k for k, m in enumerate(items) if m.get("role") == "user"), default=None)
        available = given.copy()
        new: builtins.list[Message] = []
        for k, m in enumerate(items):
            role = reader.opt_str(m, "role", f"run {row.id!r} message[{k}]") or "user"
            message = Message(
                role=role,
                content=_text(m.get("content")),
                created_at=row.created_at,
                run_id=row.id,
                source=SOURCE_GO_AGENT,
            )
            key = (message.role, message.content)
            if k != last_user and available[key] > 0:
                available[key] -= 1
                continue
            new.append(message)
        if last_user is None and row.user_message is not None:
            new.append(
                Message(
                    role="user",
                    content=row.user_message,
                    created_at=row.created_at,
                    run_id=row.id,
                    source=SOURCE_GO_AGENT,
                )
            )
        if row.agent_message is not None:
            new.append(
                Message(
                    role="assistant",
                    content=row.agent_message,
                    created_at=row.created_at,
                    run_id=row.id,
                    source=SOURCE_GO_AGENT,
                )
            )
        given.update((m.role, m.content) for m in new)
        out += new
    return out


# --------------------------------------------------------------------------- helpers


def _text(content: Any) -> str | None:
    """Message content as text: a str as is, multi-part content's text parts joined, anything else as JSON."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        parts = [p.get("text") for p in content if isinstance(p.get("text"), str)]
        if parts:
            return "\n".join(parts)
    return json_text(content, "a message's content")


def json_text(value: Any, what: str) -> str:
    """``value`` as compact JSON text: orjson's, or the standard library's (non-ASCII escaped) where orjson
    stops: integers past 64 bits, nesting past 254 levels (it reads 1,024), lone surrogates.

    Raises :class:`Unwritable`, naming ``what``, past both.
    """
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        try:
            return json.dumps(value, separators=(",", ":"))
        except (RecursionError, ValueError, TypeError) as exc:
            raise Unwritable(f"{what} cannot be written as JSON text ({exc})") from None


class Unwritable(CorruptRowError):
    """A stored message (or its structured content) that has no JSON text; :func:`combined` names its session."""


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
