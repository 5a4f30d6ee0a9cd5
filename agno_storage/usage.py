"""Token and run figures per entity, user, day and model, from what each writer kept.

agno 1.x keeps a ``metrics`` object in every run it stores (agent, team
leader and member runs, a v2 workflow's step runs): token counts as lists,
one figure per model call, and the run's ``model``. A Go Agent keeps one
``agent_runs`` row per run whose ``metrics`` is ``{}`` (agno-golang v0.1.6
records no tokens), and a Go Team keeps no runs at all. A figure nobody
kept is ``None``, never ``0``: :attr:`Usage.runs` counts every run seen,
:attr:`Usage.runs_with_tokens` those that carried token figures.
"""

from __future__ import annotations

import builtins
import datetime
import itertools
import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from agno_storage import agent_runs, codec
from agno_storage.conversation import belongs
from agno_storage.conversation_go import RunRow
from agno_storage.errors import CorruptRowError, InvalidInputError
from agno_storage.models import Session, WorkflowSessionV2
from agno_storage.stored_json import StoredJson

if TYPE_CHECKING:
    from agno_storage.backends.base import BaseStorage

#: The token figures read from a run's metrics, and the names agno also uses for them.
TOKEN_KEYS: dict[str, tuple[str, ...]] = {
    "input_tokens": ("input_tokens", "prompt_tokens"),
    "output_tokens": ("output_tokens", "completion_tokens"),
    "total_tokens": ("total_tokens",),
}


@attrs.frozen(kw_only=True)
class Usage:
    """What the runs of one (entity, user, day, model) used.

    ``day`` is the run's UTC date (``YYYY-MM-DD``), ``None`` for a run with no
    time (an agno run's time is the latest of its ``created_at`` and its
    messages'; see ``_Reader.agno_run_time``); ``model`` is the model id the writer recorded, or ``None``. Token
    sums cover only the runs that carried them; each is ``None`` when none did.
    """

    entity_id: str | None
    user_id: str | None
    day: str | None
    model: str | None
    runs: int
    runs_with_tokens: int
    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None


@attrs.frozen
class _Run:
    created_at: int | None
    model: str | None
    tokens: dict[str, int | None]
    #: The UTC day of ``created_at`` (ISO), None without one.
    day: str | None = None


def usage(
    store: BaseStorage,
    user_id: str | None = None,
    entity_id: str | None = None,
    since: int | None = None,
    until: int | None = None,
) -> builtins.list[Usage]:
    """Figures grouped by (entity_id, user_id, day, model), sorted by those keys (``None`` first).

    ``since`` / ``until`` (Unix seconds) keep runs with ``since <= time
    < until`` (the run's time, as its ``day``); a run with no time is kept only without them. Reads every
    session the filters allow: cost grows with the table.
    """
    for name, value in (("since", since), ("until", until)):
        if value is not None and type(value) is not int:
            raise InvalidInputError(f"{name} must be Unix seconds (int) or None, got {value!r}", table=store.table_name)
    # Summed as the runs come (a run count, a count of runs with figures, and each token sum): memory grows
    # with the groups, not with the runs.
    groups: dict[tuple[str | None, str | None, str | None, str | None], list[Any]] = {}
    for entity, owner, run in _runs(store, user_id, entity_id):
        if since is not None or until is not None:
            if run.created_at is None:
                continue
            if (since is not None and run.created_at < since) or (until is not None and run.created_at >= until):
                continue
        acc = groups.get((entity, owner, run.day, run.model))
        if acc is None:
            acc = groups[entity, owner, run.day, run.model] = [0, 0, *(None for _ in TOKEN_KEYS)]
        acc[0] += 1
        if any(v is not None for v in run.tokens.values()):
            acc[1] += 1
        for i, key in enumerate(TOKEN_KEYS, start=2):
            value = run.tokens[key]
            if value is not None:
                acc[i] = value if acc[i] is None else acc[i] + value
    out = []
    for (entity, owner, day, model), (runs, with_tokens, *sums) in groups.items():
        totals = dict(zip(TOKEN_KEYS, sums, strict=True))
        out.append(
            Usage(
                entity_id=entity,
                user_id=owner,
                day=day,
                model=model,
                runs=runs,
                runs_with_tokens=with_tokens,
                input_tokens=totals["input_tokens"],
                output_tokens=totals["output_tokens"],
                total_tokens=totals["total_tokens"],
            )
        )
    out.sort(key=lambda u: tuple((v is not None, v or "") for v in (u.entity_id, u.user_id, u.day, u.model)))
    return out


def _runs(
    store: BaseStorage, user_id: str | None, entity_id: str | None
) -> Iterator[tuple[str | None, str | None, _Run]]:
    entities: dict[str, tuple[str | None, str | None]] = {}
    for session in store.iter_sessions(user_id=user_id, entity_id=entity_id):
        # '' and NULL are both "no user" (as list(user_id='') finds them): one group, None.
        owner = session.user_id or None
        entities[session.session_id] = (session.entity_id, owner)
        yield from ((session.entity_id, owner, r) for r in session_runs(session, store.table_name))
    if not agent_runs.exists(store):
        return
    # Runs with no session row, and other users' runs under an owned session's id (conversation.strays), are
    # each their own user's, as history() scopes them, with no entity: entity_id None or '' takes them.
    runs_only = set(store.runs_only_session_ids(user_id)) if not entity_id else set()
    strays = dict(agent_runs.stray_sessions(store, user_id)) if not entity_id else {}
    if user_id is None:
        rows: Iterator[RunRow] = _runs_of(store, entities.keys() | runs_only | strays.keys())
    else:
        # Only rows the call may count are read (each is checked as it is read): another user's corrupt run
        # cannot fail this user's figures. Under the user's own sessions, runs with no user are theirs too (an
        # ownerless session's runs are all its own); elsewhere only the user's.
        rows = itertools.chain(
            _runs_of(store, set(entities), user_id or None, with_no_user=True, of_unowned_row=user_id == ""),
            _runs_of(store, runs_only | strays.keys(), user_id),
        )
    for row in rows:
        sid = row.session_id
        if sid in entities and belongs(entities[sid][1], row):
            entity, owner = entities[sid]
        elif (
            sid in runs_only
            or (sid in entities and not entity_id)  # another user's run under a listed session's id
            or (sid in strays and not belongs(strays[sid], row))  # one under a session out of the filters
        ) and (user_id is None or (row.user_id or "") == user_id):
            entity, owner = None, row.user_id or None
        else:
            continue
        yield entity, owner, stored_run(row)


def session_runs(session: Session, table: str) -> Iterator[_Run]:
    """The figures of each run ``session``'s own JSON holds (``memory.runs``; a v2 workflow's ``runs``), in order.

    Raises CorruptRowError naming the place in the JSON where they cannot be
    read (what :func:`usage` raises; ``doctor`` asks it of every row).
    """
    reader = _Reader(table, session.session_id)
    if session.memory is not None:
        runs = session.memory.get("runs")
        if isinstance(runs, dict):
            runs = runs.get(session.session_id)  # this session's only, as history() reads them
        for run in reader.as_list(runs or [], "memory.runs"):
            yield from reader.agno_run(run, "memory")
    if isinstance(session, WorkflowSessionV2) and session.runs is not None:
        listed = builtins.list(session.runs.values()) if isinstance(session.runs, dict) else session.runs
        for run in listed:
            yield from reader.workflow_v2_run(run)


def stored_run(row: RunRow) -> _Run:
    """The figures of one ``agent_runs`` row (a Go Agent's run); CorruptRowError naming the column otherwise."""
    try:
        metrics = codec.loads(row.metrics) if row.metrics else None  # integers of any width, exactly
    except ValueError as exc:
        raise CorruptRowError(
            f"agent_runs.metrics of run {row.id!r} of session {row.session_id!r} is not valid JSON: {exc}",
            table=agent_runs.TABLE,
            session_id=row.session_id,
            column="metrics",
        ) from exc
    reader = _Reader(agent_runs.TABLE, row.session_id, "metrics")
    model = metrics.get("model") if isinstance(metrics, dict) and isinstance(metrics.get("model"), str) else None
    where = f"run {row.id!r}"
    tokens = reader.tokens(metrics, where)
    return _Reader(agent_runs.TABLE, row.session_id, "created_at").run(row.created_at, model, tokens, where)


def _runs_of(
    store: BaseStorage,
    session_ids: set[str],
    user_id: str | None = None,
    *,
    with_no_user: bool = False,
    of_unowned_row: bool = False,
) -> Iterator[RunRow]:
    """The ``agent_runs`` rows of ``session_ids`` only (with ``user_id``, that user's only, and with
    ``with_no_user`` those with no user too; ``of_unowned_row``: as ``agent_runs.read_runs`` takes it), by
    session and in the order written.

    Runs out of the caller's scope are never read, so another user's
    corrupt run cannot fail the call, nor name that user's session.
    """
    ordered = sorted(session_ids)
    for start in range(0, len(ordered), agent_runs.MAX_IDS):
        chunk = ordered[start : start + agent_runs.MAX_IDS]
        by_session = agent_runs.runs_of(store, chunk, user_id, with_no_user=with_no_user, of_unowned_row=of_unowned_row)
        for runs in by_session.values():
            yield from runs


class _Reader(StoredJson):
    """Reads the figures of one session's runs out of its stored JSON."""

    def __init__(self, table: str, session_id: str, column: str = "memory") -> None:
        super().__init__(table, session_id, column)

    def run(self, created_at: int | None, model: str | None, tokens: dict[str, int | None], where: str) -> _Run:
        """A run's figures, with the UTC day of ``created_at`` (a time no calendar holds is a CorruptRowError)."""
        day = None
        if created_at is not None:
            try:
                day = datetime.datetime.fromtimestamp(created_at, datetime.UTC).date().isoformat()
            except (OverflowError, OSError, ValueError) as exc:
                raise self.corrupt(
                    f"{where}.created_at", f"is {created_at}, not a time in Unix seconds ({exc})"
                ) from exc
        return _Run(created_at, model, tokens, day)

    def tokens(self, metrics: Any, where: str) -> dict[str, int | None]:
        """The run's token figures: a list (one per model call) is summed; an absent key is None."""
        out: dict[str, int | None] = dict.fromkeys(TOKEN_KEYS)
        if metrics is None:
            return out
        if not isinstance(metrics, Mapping):
            raise self.corrupt(f"{where}.metrics", f"is a JSON {type(metrics).__name__}, not an object")
        for key, names in TOKEN_KEYS.items():
            # An empty list is no model call's figure, as an absent key: the other name's, if any, stands.
            value = next((metrics[n] for n in names if metrics.get(n) not in (None, [])), None)
            if value is None:
                continue
            values = value if isinstance(value, list) else [value]
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
                raise self.corrupt(f"{where}.metrics.{key}", "holds something other than numbers")
            try:
                out[key] = int(sum(values))
            except OverflowError:  # floats whose sum no number holds (1e308 twice): not a count of tokens
                raise self.corrupt(f"{where}.metrics.{key}", "sums past the largest number a float holds") from None
            except ValueError:  # NaN, as a store with read_non_finite reads agno's own
                raise self.corrupt(f"{where}.metrics.{key}", "holds NaN, which is no count") from None
        return out

    def run_tokens(self, run: dict[str, Any], where: str) -> dict[str, int | None]:
        """The figures of the model calls one agno run made.

        agno 1.8.4's Agent sums its run's ``metrics`` over the messages it did
        not replay from history; its Team sums every assistant message's,
        replayed ones included, so each later run of a team session counts
        the earlier ones' calls again. Where a stored message replayed from
        history carries figures, the run's own are summed from the messages
        that were not replayed; otherwise the run's ``metrics`` are its own.
        """
        tokens = self.tokens(run.get("metrics"), where)
        messages = run.get("messages")
        if type(messages) is not list:
            return tokens
        if not any(_replayed_figures(m) for m in messages):
            return _reported(tokens, messages)
        own: dict[str, int | None] = dict.fromkeys(TOKEN_KEYS)
        for k, m in enumerate(messages):
            if type(m) is not dict or m.get("from_history") is True:
                continue
            for key, value in self.tokens(m.get("metrics"), f"{where}.messages[{k}]").items():
                if value is not None:
                    own[key] = (own[key] or 0) + value
        return own

    def agno_run(self, run: Any, where: str) -> Iterator[_Run]:
        """One agno run and, for a team, its member runs."""
        if not isinstance(run, dict):
            raise self.corrupt(where, "holds a run that is not an object")
        if "response" in run and "run_id" not in run and isinstance(run["response"], dict):
            run = run["response"]  # AgentMemory / TeamMemory: {message, response}
        model = run.get("model")
        created, at = self.agno_run_time(run, where)
        yield self.run(created, model if isinstance(model, str) else None, self.run_tokens(run, where), at)
        for member in self.as_list(run.get("member_responses") or [], f"{where}.member_responses"):
            yield from self.agno_run(member, f"{where}.member_responses")

    def run_time(self, run: dict[str, Any], where: str) -> int | None:
        """A run's ``created_at`` as the second it falls in (agno may keep a fraction), or None if it has none."""
        created = self.opt_seconds(run, where)
        return None if created is None else math.floor(created)

    def agno_run_time(self, run: dict[str, Any], where: str) -> tuple[int | None, str]:
        """An agno run's time: the latest of its ``created_at`` and its messages' (None if none has one), and
        the place in the JSON it was read from.

        agno 1.8.4 copies a run's ``created_at`` from its model response,
        whose ``created_at`` is a class default evaluated once, when the
        writing process imported agno: a service that ran for a week stamps
        every run with the second it started. Its messages are stamped as
        they are made, the last one when the run ended: the latest of those
        it did not replay from history (as :meth:`history` reads them)
        stands for the run.
        """
        created, source = self.opt_seconds(run, where), where
        messages = run.get("messages")
        if type(messages) is list:
            for k, m in enumerate(messages):
                if type(m) is dict and m.get("created_at") is not None and m.get("from_history") is not True:
                    at = self.opt_seconds(m, f"{where}.messages[{k}]")
                    if at is not None and (created is None or at > created):
                        created, source = at, f"{where}.messages[{k}]"
        return (None if created is None else math.floor(created)), source

    def workflow_v2_run(self, run: Any) -> Iterator[_Run]:
        """A v2 workflow run: the runs of its agent and team steps (a step with no run of its own is not a model
        run), those of a ``Parallel`` step included."""
        self.column = "runs"
        if not isinstance(run, dict):
            raise self.corrupt("runs", "holds a run that is not an object")
        for step in self.as_list(run.get("step_responses") or [], "runs.step_responses"):
            response = step.get("response") if isinstance(step, dict) else None
            if isinstance(response, dict):
                yield from self.agno_run(response, "runs.step_responses.response")
            elif isinstance(step, dict):
                yield from self.parallel_steps(step.get("metrics"), run, "runs.step_responses.metrics")

    def parallel_steps(self, metrics: Any, run: dict[str, Any], where: str) -> Iterator[_Run]:
        """The agent and team runs of a ``Parallel`` step, which agno 1.8.4 keeps as figures only: no run of
        their own, their metrics in the step's ``metrics.parallel_steps`` by step name (a ``Parallel`` inside one
        keeps its own in its entry's ``metrics.parallel_steps``). Each is a run of the workflow run's time, with
        no model (none is recorded)."""
        steps = metrics.get("parallel_steps") if isinstance(metrics, dict) else None
        if steps is None:
            return
        if not isinstance(steps, dict):
            raise self.corrupt(f"{where}.parallel_steps", f"is a JSON {type(steps).__name__}, not an object")
        time = self.run_time(run, "runs")
        for name, step in steps.items():
            at = f"{where}.parallel_steps.{name}"
            if not isinstance(step, dict):
                raise self.corrupt(at, f"is a JSON {type(step).__name__}, not an object")
            if step.get("executor_type") in ("agent", "team"):
                yield self.run(time, None, self.tokens(step.get("metrics"), at), at)
            else:
                # A Parallel inside one: its steps are in its entry's metrics (agno 1.8.4), or on the entry.
                inner = step.get("metrics")
                nested = inner if isinstance(inner, dict) and "parallel_steps" in inner else step
                yield from self.parallel_steps(nested, run, f"{at}.metrics" if nested is inner else at)


def _reported(tokens: dict[str, int | None], messages: builtins.list[Any]) -> dict[str, int | None]:
    """``tokens`` with a figure no model call of the run reported as None.

    agno 1.8.4 keeps a run's figures as one entry per model call, 0 where
    the model reported nothing, while each call's own message keeps only
    the figures it had (at least the call's ``time``). Where the run's
    model messages (not replayed) carry their metrics, a figure none of them
    holds was never reported: it is None, not the 0 agno filled in. An
    assistant message with no metrics at all is no model call (an example
    answer the app adds to every run, agno's ``add_messages``). Without
    message metrics (an older layout) the run's figures stand.
    """
    calls: builtins.list[Mapping[str, Any]] = []
    for m in messages:
        if type(m) is dict and m.get("role") == "assistant" and m.get("from_history") is not True and "metrics" in m:
            metrics = m["metrics"]
            if not isinstance(metrics, Mapping):
                return tokens
            calls.append(metrics)
    if not calls:
        return tokens
    return {
        key: None
        if value is not None and not any(c.get(n) is not None for c in calls for n in TOKEN_KEYS[key])
        else value
        for key, value in tokens.items()
    }


def _replayed_figures(message: Any) -> bool:
    """Whether ``message`` was replayed from history and carries token figures."""
    if type(message) is not dict or message.get("from_history") is not True:
        return False
    metrics = message.get("metrics")
    return isinstance(metrics, Mapping) and any(
        metrics.get(n) is not None for names in TOKEN_KEYS.values() for n in names
    )


__all__ = ["TOKEN_KEYS", "Usage", "session_runs", "stored_run", "usage"]
