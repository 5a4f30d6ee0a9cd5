"""The conversation agno 1.x keeps: its agents', teams' and workflows' runs, each message once.

agno 1.x agents, teams and v1 workflows keep ``memory.runs``, each run
with the messages its model was sent and answered (``from_history``
marks what agno replayed from earlier runs; those are left out); a team
run's member runs in ``member_responses``, placed where the leader ran
them (:func:`placed`); older agno (``AgentMemory``, ``TeamMemory``)
keeps ``memory.messages`` and runs of ``{message, messages, response}``,
whose ``response`` is the run as the others keep it (``messages`` holds
only the messages an app added to the run). agno v2
workflows keep the ``runs`` column, each run's steps holding the step
agent's run. A system prompt its speaker (the agent, team or workflow, a
member, a step) sends again unchanged is left out, and so are the
messages an agno Agent's ``add_messages`` sends again unchanged after it
(listed in the run's ``extra_data.add_messages``).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from agno_storage.conversation_message import SOURCE_AGNO, Message, content_text
from agno_storage.stored_json import StoredJson


def memory_messages(
    memory: Mapping[str, Any], session_id: str, table: str, *, is_exact: Callable[[], bool] | None = None
) -> builtins.list[Message]:
    """The conversation in an agno 1.x ``memory`` object (Memory v2 runs, or AgentMemory / TeamMemory).

    ``is_exact`` is given where ``memory`` was decoded laxly (an integer past
    64 bits may be a float; :meth:`agno_storage.codec.RowCodec.decode_lax`):
    whether it holds no such integer, asked before any value it could change
    is used, and :class:`~agno_storage.stored_json.Inexact` raised if it does.
    """
    reader = _Reader(session_id, table, "memory", is_exact=is_exact)
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


def workflow_v2_messages(
    runs: builtins.list[Any], session_id: str, table: str, *, is_exact: Callable[[], bool] | None = None
) -> builtins.list[Message]:
    """The conversation in an agno v2 workflow's ``runs`` column: each run's steps' messages, named by the run.

    ``is_exact`` as for :func:`memory_messages`.
    """
    return _Reader(session_id, table, "runs", is_exact=is_exact).workflow_v2_runs(runs)


class _Reader(StoredJson):
    """Turns one session's stored JSON into messages.

    Of the values a lax decode (orjson alone) may read otherwise than the
    exact one, a float in place of an integer past 64 bits, it uses none
    without :meth:`~agno_storage.stored_json.StoredJson.confirm_exact`:
    every number a message takes is an ``int`` (a float ``created_at`` is
    confirmed first), a structured value (content, tool calls, added
    messages) is confirmed before it is read or compared, and so is every
    error (:meth:`corrupt`). Control flow reads types and truths that the
    two readings share (a float and its integer are neither str, list nor
    dict, and both are true).
    """

    def __init__(self, session_id: str, table: str, column: str, *, is_exact: Callable[[], bool] | None) -> None:
        super().__init__(table, session_id, column, is_exact=is_exact)
        # Each speaker's last system prompt (None: the session's own agent, team or workflow; else the member
        # or step): a leader and its members each send their own on every run, one after the other.
        self.last_system: dict[str | None, str | None] = {}
        # Each speaker's last added messages (agno's ``Agent.add_messages``), as (role, content) pairs.
        self.last_added: dict[str | None, builtins.list[tuple[Any, Any]]] = {}

    def text(self, content: Any) -> str | None:
        """:func:`content_text` of a stored content; a structured one is confirmed exact first (numbers in it
        are written out)."""
        if content is None or type(content) is str:
            return content
        self.confirm_exact()
        return content_text(content)

    def agno_runs(self, runs: builtins.list[Any], member: str | None = None) -> builtins.list[Message]:
        out: builtins.list[Message] = []
        # The common case, as agno_run reads it: runs of messages with no member runs, read in one call.
        plain: builtins.list[builtins.list[Any]] = []
        plain_ids: builtins.list[str | None] = []
        for i, run in enumerate(runs):
            if type(run) is dict:
                messages = run.get("messages")
                run_id = run.get("run_id")
                if (
                    type(run_id) is str
                    and type(messages) is list
                    and not run.get("member_responses")
                    and not run.get("extra_data")
                ):
                    plain.append(messages)
                    plain_ids.append(run_id)
                    continue
            if plain:
                self.append_runs(out, plain, plain_ids, member, member)
                plain, plain_ids = [], []
            where = f"memory.runs[{i}]"
            run = self.as_dict(run, where)
            if "response" in run and "run_id" not in run:  # AgentMemory / TeamMemory: {message, messages, response}
                response = self.as_dict(run["response"] or {}, f"{where}.response")
                if response.get("messages") is not None:
                    # The response is the whole run (the messages an app added, the question, the answers, a
                    # team's member runs); the pair's own ``messages`` are only the added ones (agno 1.8.4).
                    out += self.agno_run(response, f"{where}.response", member, member)
                    continue
                messages = run.get("messages")
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
        if plain:
            self.append_runs(out, plain, plain_ids, member, member)
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
        if type(messages) is list and run.get("extra_data"):
            messages = self.without_added(run, messages, speaker)
            out = self.run_messages(run, run_id, messages, where, member, speaker)
            first = messages[0] if messages else None
            if type(first) is dict and first.get("role") == "system":
                # The speaker's last system prompt is the run's first message, not a system message among those
                # the app added after it: the next run's prompt is compared with it.
                self.last_system[speaker] = self.text(first.get("content"))
            return out
        return self.run_messages(run, run_id, messages, where, member, speaker)

    def run_messages(
        self,
        run: dict[str, Any],
        run_id: str | None,
        messages: Any,
        where: str,
        member: str | None,
        speaker: str | None,
    ) -> builtins.list[Message]:
        """:meth:`agno_run` of ``run`` whose messages are ``messages``."""
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

    def without_added(
        self, run: dict[str, Any], messages: builtins.list[Any], speaker: str | None
    ) -> builtins.list[Any]:
        """``messages`` but for those agno's ``Agent.add_messages`` added (the run's ``extra_data.add_messages``)
        when ``speaker`` added the same last time too: agno sends them again on every run, right after the
        system prompt, as it does the prompt. Anything else (no such messages, or not where agno puts them) is
        ``messages`` as they are."""
        extra = run["extra_data"]
        added = extra.get("add_messages") if type(extra) is dict else None
        if type(added) is not list or not added or not all(type(a) is dict for a in added):
            return messages
        pairs = [(a.get("role"), a.get("content")) for a in added]
        if not all((r is None or type(r) is str) and (c is None or type(c) is str) for r, c in pairs):
            self.confirm_exact()  # compared as they are: two wide integers, read as floats, may compare equal
        if self.last_added.get(speaker) != pairs:
            self.last_added[speaker] = pairs
            return messages
        # First in the run, or right after its one system prompt: not after every system message, since the
        # added ones may begin with a system message of their own.
        for start in (0, 1):
            sent = messages[start : start + len(pairs)]
            if [
                (m.get("role"), m.get("content")) if type(m) is dict and m.get("from_history") is not True else None
                for m in sent
            ] == pairs:
                return messages[:start] + messages[start + len(pairs) :]
        return messages

    def runner(self, run: Mapping[str, Any], where: str) -> str | None:
        """The agent or team a run is of: its id, or its name."""
        return (
            self.opt_str(run, "agent_id", where)
            or self.opt_str(run, "team_id", where)
            or self.opt_str(run, "agent_name", where)
        )

    def content_only(self, run: Mapping[str, Any], run_id: str | None, member: str | None, where: str) -> list[Message]:
        """A run that kept no messages (an agno v1 workflow's run): its answer alone."""
        content = self.text(run.get("content"))
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
        self.append_runs(out, [messages], [run_id], member, speaker)
        return out

    def append_runs(
        self,
        out: builtins.list[Message],
        runs: builtins.list[builtins.list[Any]],
        run_ids: builtins.list[str | None],
        member: str | None,
        speaker: str | None,
    ) -> None:
        """Append to ``out`` what :meth:`agno_messages` returns for each run's messages in ``runs``, with the run
        id in ``run_ids`` at the same place, in order (one call for many runs, no list made per run)."""
        append = out.append
        # This runs for every stored message (replayed ones included). The common case is checked inline with
        # the fewest lookups: a message that has every key agno 1.x writes (a missing one, or a message that is
        # not an object, raises here and goes to append_any), is plain (a text, an integer time, no tool fields)
        # and not a system prompt. Anything else goes to append_message. A message's place is worked out only
        # for an error.
        for messages, run_id in zip(runs, run_ids, strict=True):
            for m in messages:
                try:
                    if m["from_history"] is True:
                        continue  # agno replayed it from an earlier run, where it is already counted
                    role = m["role"]
                    content = m["content"]
                    created = m["created_at"]
                except (KeyError, TypeError):
                    self.append_any(out, messages, m, run_id, member, speaker)
                    continue
                if (
                    type(role) is str
                    and (type(content) is str or content is None)
                    and (type(created) is int or created is None)
                    and role != "system"
                    and "tool_calls" not in m
                    and "tool_call_id" not in m
                    and "tool_name" not in m
                    and "name" not in m
                ):
                    append(Message(role, content, created, run_id, None, None, None, member))
                else:
                    self.append_message(out, messages, m, run_id, member, speaker)

    def append_any(
        self,
        out: builtins.list[Message],
        messages: builtins.list[Any],
        m: Any,
        run_id: str | None,
        member: str | None,
        speaker: str | None,
    ) -> None:
        """:meth:`append_message` for a stored message of any shape: one agno replayed is left out, and one that
        is not an object raises CorruptRowError."""
        if type(m) is not dict:
            self.as_dict(m, self._where(messages, m, run_id))
        if m.get("from_history") is not True:
            self.append_message(out, messages, m, run_id, member, speaker)

    def append_message(
        self,
        out: builtins.list[Message],
        messages: builtins.list[Any],
        m: dict[str, Any],
        run_id: str | None,
        member: str | None,
        speaker: str | None,
    ) -> None:
        """Append stored message ``m`` of ``messages`` to ``out``, unless it is a system prompt ``speaker`` sent
        last time too; any shape (raises CorruptRowError for a wrong one)."""
        role = m.get("role")
        if type(role) is not str:
            where = self._where(messages, m, run_id)
            raise (
                self.corrupt(where, "has no role") if role is None else self.corrupt(f"{where}.role", "is not a string")
            )
        content = self.text(m.get("content"))
        if role == "system":
            if content == self.last_system.get(speaker):
                return  # the same system prompt, sent again on every run
            self.last_system[speaker] = content
        where = self._where(messages, m, run_id)
        tool_calls = m.get("tool_calls")
        if tool_calls is not None:
            self.confirm_exact()  # kept as stored, numbers and all
            tool_calls = [self.as_dict(c, f"{where}.tool_calls[*]") for c in self.as_list(tool_calls, where)]
        out.append(
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
                content = self.text(step.get("content"))
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


__all__ = ["memory_messages", "workflow_v2_messages"]
