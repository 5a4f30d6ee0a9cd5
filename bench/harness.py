"""What the SQLite and PostgreSQL workloads share: the contenders' interface and the timing.

A contender owns one store (a SQLite file, a PostgreSQL table). ``prepare``
turns the suite's session dicts into whatever it takes, outside any timer;
``upsert`` / ``read`` run a slice of a prepared set and return
``(seconds, errors)`` measured around the store calls only.

Timed workloads run every contender in the same process, interleaved: round
r runs each contender once, in forward order on even rounds and reverse order
on odd ones, so drift in the machine's speed (page cache, CPU frequency,
other tenants) lands on everyone alike. Per-op medians are over rounds; each
row's ratio is to the first contender, this project's default.

bench/contenders.py and bench/pg_contenders.py hold what differs per engine:
how a store is opened and closed, and the floor's SQL.
"""

from __future__ import annotations

import contextlib
import statistics
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import attrs
import orjson

from agno_storage import AgentSession, BaseStorage
from agno_storage.modes import spec
from bench import sessions

Row = dict[str, Any]
#: What one contender's batch in one round gives: (seconds, operations, errors).
Batch = tuple[float, int, int]
#: Per contender label: {"median_s", "samples" (per-op seconds of each round), "errors"}.
Results = dict[str, dict[str, Any]]

#: Our session fields, taken from the suite's agno-shaped dicts; both stores bind them in this order.
FIELDS = spec(AgentSession.MODE).names
JSON_POSITIONS = (2, 3, 4, 8)  # memory, session_data, extra_data, agent_data


def _decoded(row: Sequence[Any], loads: Callable[[Any], Any] = orjson.loads) -> tuple[Any, ...]:
    """A fetched agent row with its JSON columns (JSON_POSITIONS) decoded: the least a caller does."""
    memory, session_data, extra_data, agent_data = row[2], row[3], row[4], row[8]
    return (
        row[0],
        row[1],
        memory if memory is None else loads(memory),
        session_data if session_data is None else loads(session_data),
        extra_data if extra_data is None else loads(extra_data),
        row[5],
        row[6],
        row[7],
        agent_data if agent_data is None else loads(agent_data),
        row[9],
    )


#: The set "upsert existing" writes: the small sessions, changed (a name the Go contender knows too).
CHANGED_SMALL = "small_changed"

#: The "newest 20" queries, as (user_id, agent_id): each contender cycles through them.
RECENT_QUERIES: dict[str, list[tuple[str | None, str | None]]] = {
    "user": [(f"user-{(k * 7) % 100:04d}", None) for k in range(50)],
    "agent": [(None, f"agent-{k % 10:02d}") for k in range(50)],
    "all": [(None, None)] * 50,
}


def ours_session(d: dict[str, Any], **over: Any) -> AgentSession:
    """A suite session dict as this project's AgentSession (``updated_at`` left to the store)."""
    fields: dict[str, Any] = {k: d.get(k) for k in FIELDS if k != "updated_at"}
    fields.update(over)
    return AgentSession(**fields)


def agno_session(d: dict[str, Any]) -> Any:
    """A suite session dict as agno 1.8.4's AgentSession (``updated_at`` left to the store)."""
    from agno.storage.session.agent import AgentSession as AgnoAgentSession

    return AgnoAgentSession(**{k: v for k, v in d.items() if k != "updated_at"})


class Named(Protocol):
    """What a result row needs of whatever was timed."""

    @property
    def label(self) -> str: ...

    @property
    def kind(self) -> str: ...


N = TypeVar("N", bound=Named)
T = TypeVar("T")


@attrs.frozen
class Entry:
    """Something timed that is not a Contender: a child process or a bulk call.

    ``key`` names its files or tables; ``count`` is how many sessions one run
    should store (fewer count as errors).
    """

    key: str
    label: str
    kind: str
    count: int


class Contender:
    """One store under test. Subclasses fill in the operations they support.

    ``twin``, when set, is another contender whose store this one opens after
    the writes, to read it a second way.
    """

    label = ""
    kind = ""

    def __init__(self) -> None:
        self.sets: dict[str, list[Any]] = {}
        self.path = ""
        self.twin: Contender | None = None

    def open(self, path: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def prepare(self, name: str, dicts: Sequence[dict[str, Any]]) -> None:
        self.sets[name] = [self.convert(d) for d in dicts]

    def convert(self, d: dict[str, Any]) -> Any:
        return d

    def upsert_one(self, item: Any) -> bool:
        raise NotImplementedError

    def read_one(self, item: Any) -> bool:
        raise NotImplementedError

    def recent(self, user_id: str | None, agent_id: str | None, limit: int) -> int:
        """Run one "newest sessions" query; return the number of sessions it gave."""
        raise NotImplementedError

    def time_each(self, fn: Callable[[Any], bool], items: Sequence[Any]) -> tuple[float, int]:
        """Run ``fn`` on every item; return (seconds, items it returned False for)."""
        errors = 0
        start = time.perf_counter()
        for item in items:
            if not fn(item):
                errors += 1
        return time.perf_counter() - start, errors

    def upsert(self, name: str, start: int, count: int) -> tuple[float, int]:
        return self.time_each(self.upsert_one, self.sets[name][start : start + count])

    def read(self, name: str, start: int, count: int) -> tuple[float, int]:
        return self.time_each(self.read_one, self.sets[name][start : start + count])


class SessionApi(Contender):
    """A store with agno's session API (upsert, read, get_recent_sessions), opened into ``self.st``."""

    def __init__(self) -> None:
        super().__init__()
        self.st: Any = None

    def release(self) -> None:
        """Free ``self.st``'s connections."""
        self.st.close()

    def close(self) -> None:
        if self.st is not None:
            self.release()
            self.st = None

    def read_one(self, item: Any) -> bool:
        return self.st.read(item.session_id) is not None

    def recent(self, user_id: str | None, agent_id: str | None, limit: int) -> int:
        return len(self.st.get_recent_sessions(user_id=user_id, entity_id=agent_id, limit=limit))


class OursApi(SessionApi):
    """This project's store, on whichever engine the subclass opens."""

    kind = "ours"

    def convert(self, d: dict[str, Any]) -> Any:
        return ours_session(d)

    def upsert_one(self, item: Any) -> bool:
        self.st.upsert(item)
        return True


class AgnoApi(SessionApi):
    """agno 1.8.4's store, on whichever engine the subclass opens."""

    kind = "agno"
    label = "agno 1.8.4"

    def convert(self, d: dict[str, Any]) -> Any:
        return agno_session(d)

    def upsert_one(self, item: Any) -> bool:
        # agno logs and returns None instead of raising.
        return self.st.upsert(item) is not None


class RawFloor(Contender):
    """A plain driver connection (``self.conn``) running SQL on pre-encoded rows.

    Subclasses open the connection, have the project's store make the table
    and call ``use_statements_of(store)``, and write ``upsert_one``. With
    ``decode`` every row read also goes through ``orjson.loads`` on its JSON
    columns (str or bytes), and the decoded rows are what a read returns.
    ``store`` is closed with the floor.
    """

    kind = "floor"
    #: read() asks the store for at most one row; the floor binds the same limit.
    READ_LIMIT = 1

    def __init__(self, label: str, decode: bool) -> None:
        super().__init__()
        self.label = label
        self.decode = decode
        self.conn: Any = None
        self.store: Any = None
        self.sql_upsert = ""
        self.sql_read = ""
        self.sql_recent: dict[str, str] = {}

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.store is not None:
            self.store.close()
            self.store = None

    def _rows(self, query: str, params: Sequence[Any]) -> list[Any]:
        rows: list[Any] = self.conn.execute(query, params).fetchall()
        if self.decode:
            # The decoded rows are returned, as a caller keeps the sessions it asked
            # for: decoding each value and dropping it at once would time a
            # cache-hot allocator rather than a read.
            rows = [_decoded(row) for row in rows]
        return rows

    def use_statements_of(self, store: BaseStorage) -> None:
        """Run ``store``'s own statements: its upsert, and the SELECTs its reads run, as recorded.

        ``sql_read`` is what ``read()`` runs, bound with ``read_params``;
        ``sql_recent`` ("user", "agent", "all") what ``get_recent_sessions``
        runs, bound with the user or agent, then the limit. Raises
        RuntimeError if the store binds them otherwise.
        """
        self.store = store
        self.sql_upsert = store.statements.upsert_returning
        reads = ours_reads(store, PROBE_ID, PROBE_USER, PROBE_AGENT, PROBE_LIMIT)
        expected: dict[str, list[Any]] = {
            "read": list(self.read_params(PROBE_ID)),
            "user": [PROBE_USER, PROBE_LIMIT],
            "agent": [PROBE_AGENT, PROBE_LIMIT],
            "all": [PROBE_LIMIT],
        }
        for read, binds in expected.items():
            got = reads[read][1]
            if got != binds:
                raise RuntimeError(f"the store binds {got!r} for its {read!r} statement, the floor {binds!r}")
        self.sql_read = reads["read"][0]
        self.sql_recent = {name: reads[name][0] for name in ("user", "agent", "all")}

    def read_params(self, session_id: str) -> Sequence[Any]:
        """What ``sql_read`` (the store's read-by-id SELECT) binds to read one session."""
        return (session_id, self.READ_LIMIT)

    def read_one(self, item: Any) -> bool:
        return bool(self._rows(self.sql_read, self.read_params(item[0])))

    def recent(self, user_id: str | None, agent_id: str | None, limit: int) -> int:
        if user_id is not None:
            return len(self._rows(self.sql_recent["user"], (user_id, limit)))
        if agent_id is not None:
            return len(self._rows(self.sql_recent["agent"], (agent_id, limit)))
        return len(self._rows(self.sql_recent["all"], (limit,)))


# --- the store's statements, watched through its tracer ---------------------

#: A read the harness makes through the store's API: "read" by session_id, or "newest" of a "user", an "agent" or "all".
READS = ("read", "user", "agent", "all")
#: Values statements are recorded with; their places in the parameters show how the store binds.
PROBE_ID, PROBE_USER, PROBE_AGENT, PROBE_LIMIT = "probe-session", "probe-user", "probe-agent", 20


def recorded_read(store: BaseStorage, call: Callable[[], object]) -> tuple[str, list[Any]]:
    """The one SELECT of the sessions table that ``call`` makes ``store`` run, with its parameters.

    Watches the store through its public ``tracer``, put back afterwards.
    Raises RuntimeError if the table is absent or the call does not make
    exactly one read of it.
    """
    if not store.table_exists():
        raise RuntimeError(f"no table {store.table_name!r} to record reads on")
    log: list[tuple[str, list[Any]]] = []
    previous = store.tracer
    store.tracer = lambda statement, params: log.append((statement, list(params or [])))
    try:
        call()
    finally:
        store.tracer = previous
    select = store.statements.select
    reads = [(s, p) for s, p in log if s.startswith(select)]
    if len(reads) != 1:
        raise RuntimeError(f"expected one read statement, the store ran {len(reads)}: {log!r}")
    return reads[0]


def ours_reads(
    store: BaseStorage, session_id: str, user_id: str, agent_id: str, limit: int
) -> dict[str, tuple[str, list[Any]]]:
    """For each of READS, the statement and parameters the project's contender makes ``store`` run.

    The calls are the contender's own (``read_one``, ``recent``), so they ask
    the store exactly what the timed ones do.
    """
    api = OursApi()
    api.st = store
    item = types.SimpleNamespace(session_id=session_id)
    return {
        "read": recorded_read(store, lambda: api.read_one(item)),
        "user": recorded_read(store, lambda: api.recent(user_id, None, limit)),
        "agent": recorded_read(store, lambda: api.recent(None, agent_id, limit)),
        "all": recorded_read(store, lambda: api.recent(None, None, limit)),
    }


# --- setup and teardown ------------------------------------------------------


def open_at(c: Contender, path: str) -> None:
    c.path = path
    c.open(path)


def open_all(
    contenders: Sequence[Contender], place: Callable[[int, Contender], str], name: str, dicts: Sequence[dict[str, Any]]
) -> None:
    """Open each contender on a store of its own (``place(index, contender)``) and prepare set ``name``."""
    for i, c in enumerate(contenders):
        open_at(c, place(i, c))
        c.prepare(name, dicts)


@contextlib.contextmanager
def closing(contenders: Iterable[Contender]) -> Iterator[None]:
    """Close every contender on the way out, in order."""
    try:
        yield
    finally:
        for c in contenders:
            c.close()


# --- timing ------------------------------------------------------------------


def alternating(items: Sequence[T], r: int) -> Sequence[T]:
    """``items`` in round ``r``'s order: as given on even rounds, reversed on odd ones."""
    return items if r % 2 == 0 else list(reversed(items))


def interleave(contenders: Sequence[N], rounds: int, run: Callable[[N, int], Batch]) -> Results:
    """Run ``run(contender, round) -> (seconds, ops, errors)`` round by round, alternating order."""
    per_op: dict[str, list[float]] = {c.label: [] for c in contenders}
    errors: dict[str, int] = {c.label: 0 for c in contenders}
    for r in range(rounds):
        for c in alternating(contenders, r):
            seconds, ops, errs = run(c, r)
            per_op[c.label].append(seconds / max(ops, 1))
            errors[c.label] += errs
    return {
        label: {"median_s": statistics.median(v), "samples": v, "errors": errors[label]} for label, v in per_op.items()
    }


def spread(ratios: Sequence[float]) -> dict[str, float]:
    """Min, quartiles and max of per-round ratios (all equal to the one value when there is one round)."""
    if not ratios:
        return {}
    if len(ratios) == 1:
        q1 = q3 = ratios[0]
    else:
        q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    return {"min": min(ratios), "q1": q1, "q3": q3, "max": max(ratios)}


def round_ratios(theirs: Sequence[float], ours: Sequence[float]) -> list[float]:
    """Per round, their time over ours: the rounds are interleaved, so round i of each ran side by side."""
    return [t / o for t, o in zip(theirs, ours, strict=True) if o > 0]


def rows_for(workload: str, results: Results, contenders: Sequence[Named]) -> list[Row]:
    """Result rows in ``contenders``' order, each with its ratio to the first.

    ``speedup`` is the ratio of medians; ``spread`` the min, quartiles and max
    of the per-round ratios (round i of the contender over round i of the
    first); ``samples_us`` each round's time per operation.
    """
    first = results[contenders[0].label]
    base = first["median_s"]
    out = []
    for c in contenders:
        res = results[c.label]
        out.append(
            {
                "workload": workload,
                "contender": c.label,
                "kind": c.kind,
                "median_us": res["median_s"] * 1e6,
                "ops_per_s": 1.0 / res["median_s"] if res["median_s"] else 0.0,
                # How many times faster this project is: their time / ours.
                "speedup": res["median_s"] / base if base else 0.0,
                "spread": spread(round_ratios(res["samples"], first["samples"])),
                "samples_us": [s * 1e6 for s in res["samples"]],
                "errors": res["errors"],
                "rounds": len(res["samples"]),
            }
        )
    return out


def timed(workload: str, contenders: Sequence[N], rounds: int, run: Callable[[N, int], Batch]) -> list[Row]:
    """``interleave`` then ``rows_for``."""
    return rows_for(workload, interleave(contenders, rounds, run), contenders)


def upsert_batches(name: str, n: int) -> Callable[[Contender, int], Batch]:
    """Round r upserts sessions r*n .. r*n+n-1 of set ``name``."""

    def run(c: Contender, r: int) -> Batch:
        s, e = c.upsert(name, r * n, n)
        return s, n, e

    return run


def read_batches(name: str, n: int, written: int | None = None) -> Callable[[Contender, int], Batch]:
    """Round r reads n sessions of set ``name`` from r*n on.

    With ``written`` (at least n) the reads stay within the first ``written``
    sessions, wrapping around to the first: every session is read as often
    as any other, give or take one, whatever the sizes. (Windows that stopped
    short of the end left the last sessions written unread.)
    """
    if written is not None and not 0 < n <= written:
        raise ValueError(f"cannot read {n} sessions a round out of {written}")

    def run(c: Contender, r: int) -> Batch:
        if written is None:
            s, e = c.read(name, r * n, n)
            return s, n, e
        start = (r * n) % written
        head = min(n, written - start)
        s, e = c.read(name, start, head)
        if head < n:
            s2, e2 = c.read(name, 0, n - head)
            s, e = s + s2, e + e2
        return s, n, e

    return run


def recent_batches(
    args: Sequence[tuple[str | None, str | None]], max_ops: int, budget_s: float
) -> Callable[[Contender, int], Batch]:
    """Round r runs "newest 20" queries, cycling through ``args`` from r*7, up to ``max_ops`` or ``budget_s``."""

    def run(c: Contender, r: int) -> Batch:
        # Fixed time budget per batch: the slow contenders run fewer queries.
        ops, errors = 0, 0
        start = time.perf_counter()
        while True:
            user, agent = args[(r * 7 + ops) % len(args)]
            if c.recent(user, agent, 20) == 0:
                errors += 1
            ops += 1
            elapsed = time.perf_counter() - start
            if ops >= max_ops or elapsed >= budget_s:
                return elapsed, ops, errors

    return run


# --- the workloads both engines run --------------------------------------------


def small_writes_and_reads(
    writers: Sequence[Contender],
    readers: Sequence[Contender],
    place: Callable[[int, Contender], str],
    small: Sequence[dict[str, Any]],
    rounds: int,
    batch: int,
    read_batch: int,
) -> list[Row]:
    """Upsert new, upsert existing and read small sessions, one transaction each.

    Each writer gets a store of its own and upserts ``batch`` new sessions a
    round, then the same sessions again with changed content (set
    CHANGED_SMALL, ``sessions.changed``: the same change for everyone).
    Readers then read back what was written; a reader with a twin opens the
    twin's store first.
    """
    open_all(writers, place, "small", small)
    out = timed("1. upsert new small", writers, rounds, upsert_batches("small", batch))
    # Prepared only now, so the first pass runs as it did before this set existed.
    changed = [sessions.changed(d) for d in small]
    for c in writers:
        c.prepare(CHANGED_SMALL, changed)
    out += timed("1. upsert existing small", writers, rounds, upsert_batches(CHANGED_SMALL, batch))
    for c in readers:
        if c.twin is not None:
            open_at(c, c.twin.path)
            c.prepare("small", small)
    written = rounds * batch
    out += timed("2. read small", readers, rounds, read_batches("small", min(read_batch, written), written))
    return out


def newest_20(
    number: int,
    total_rows: int,
    contenders: Sequence[Contender],
    rounds: int,
    max_ops: int,
    budget_s: float,
    plans: Mapping[tuple[str, str], str],
) -> list[Row]:
    """The 20 newest sessions of one user, of one agent and of all, on opened contenders.

    Each row carries ``plan``: ``plans[(label, query)]``, or "" for a contender without one.
    """
    out: list[Row] = []
    for name, args in RECENT_QUERIES.items():
        rows = timed(
            f"{number}. newest 20 of {name} ({total_rows:,} rows)",
            contenders,
            rounds,
            recent_batches(args, max_ops, budget_s),
        )
        for row in rows:
            row["plan"] = plans.get((row["contender"], name), "")
        out += rows
    return out


def bulk_import(
    workload: str,
    entries: Sequence[Entry],
    rounds: int,
    run: Callable[[Entry, int], tuple[float, int]],
    *,
    order: Sequence[Entry] | None = None,
    extrapolate_to: int,
    extra: Callable[[Entry], Row] | None = None,
) -> list[Row]:
    """Time ``run(entry, round) -> (seconds, sessions stored)`` per entry, interleaved.

    Per-op is per session; an entry storing fewer than its ``count`` has the
    difference as errors. Rows come in ``order`` (default: ``entries``), with
    ``extra(entry)``'s keys, and ``extrapolated_s``: agno has no bulk API, so
    its loop over a sample is scaled to ``extrapolate_to`` sessions.
    """

    def batch(e: Entry, r: int) -> Batch:
        seconds, count = run(e, r)
        return seconds, count, e.count - count

    results = interleave(entries, rounds, batch)
    order = order or entries
    rows = rows_for(workload, results, order)
    for row, e in zip(rows, order, strict=True):
        if extra is not None:
            row.update(extra(e))
        row["extrapolated_s"] = results[e.label]["median_s"] * extrapolate_to if e.kind == "agno" else None
    return rows
