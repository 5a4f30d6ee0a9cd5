"""Move agno 1.x and agno-golang sessions into agno 3.1.10's tables: :func:`to_agno3`.

Reads the four 1.x sessions tables through the package's stores
(``SqliteStorage`` / ``PostgresStorage``: read only, nothing is created) and a
Go Agent's ``agent_runs`` table with a read-only connection; maps each
session with :mod:`agno_storage.agno3.mapping`; writes with a
:mod:`agno_storage.agno3.writer` (a dry run reads DST with
:class:`~agno_storage.agno3.target_reader.TargetReader`). See docs/agno3.md.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import attrs

from agno_storage import urls
from agno_storage.agent_runs import TABLE as GO_RUNS_TABLE
from agno_storage.agno3.chunks import ChunkResult, ModeCount, PlanItem, Source, SourceSpec, map_chunk, stale_runs
from agno_storage.agno3.ddl import MEMORIES, RUNS
from agno_storage.agno3.mapping import GO_AGENT_RUNS, own_run_id
from agno_storage.agno3.memory_table import DEFAULT_MEMORY_TABLE, MemoryTable, map_memory_row, memory_copy_id
from agno_storage.agno3.records import Agno3Memory, Encoded, Previous, make_converter
from agno_storage.agno3.rows import rows_for
from agno_storage.agno3.target_reader import TargetReader
from agno_storage.agno3.workers import WorkerPool
from agno_storage.agno3.writer import PostgresWriter, SqliteWriter, Writer, driver_error, non_finite_error
from agno_storage.backends.sqlite_files import refuse_non_file
from agno_storage.errors import ConnectionLostError, InvalidInputError, StorageError
from agno_storage.models import Mode
from agno_storage.ops.db import check_conninfo, scrubbed
from agno_storage.schema import PG_NAME_BYTES
from agno_storage.workers import default_count

#: The 1.x table of each mode when none is named: agno's own defaults in its examples.
DEFAULT_TABLES: dict[Mode, str] = {
    Mode.AGENT: "agent_sessions",
    Mode.TEAM: "team_sessions",
    Mode.WORKFLOW: "workflow_sessions",
    Mode.WORKFLOW_V2: "workflow_v2_sessions",
}
#: The report's label for agno 1.x's separate memory table.
MEMORY_TABLE = "memory_table"
BATCH = 200
#: With ``workers=None``: plans of fewer sessions than this are mapped in the calling process (starting
#: workers costs about a third of a second each).
WORKERS_FROM = 2_000
#: With ``workers=None``: at most this many worker processes.
MAX_WORKERS = 4
#: The most worker processes ``workers`` may ask for. Each is an interpreter of its own with its own
#: connection to the source, and the one writing process is the bottleneck long before (docs/agno3.md
#: "Worker processes"); tens of thousands asked for would exhaust memory.
WORKERS_LIMIT = 32

Progress = Callable[[int, int], None]


@attrs.define
class Agno3Report:
    """The summary of one :func:`to_agno3`: counts per source mode, what was skipped and why."""

    dry_run: bool
    #: Keyed by the mode of the table that names each session (or ``go_agent_runs``).
    modes: dict[str, ModeCount] = attrs.field(factory=dict)
    #: Source tables read, and those not there.
    tables: dict[str, str] = attrs.field(factory=dict)
    missing: list[str] = attrs.field(factory=list)
    #: What could not be mapped as it was (kept in metadata, or written under an id of its own), the sessions
    #: not written (``ModeCount.skipped``) and the Go runs left out (``ModeCount.users_left_out``), each named here.
    problems: list[str] = attrs.field(factory=list)
    seconds: float = 0.0

    def total(self, what: str) -> int:
        """The sum of one ModeCount field over the modes."""
        return sum(int(getattr(c, what)) for c in self.modes.values())

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data (the CLI's ``--json``)."""
        return dict(make_converter().unstructure(self))


def to_agno3(
    src: str,
    dst: str,
    *,
    tables: dict[Mode, str] | None = None,
    schema: str | None = "ai",
    dst_schema: str | None = "ai",
    dry_run: bool = False,
    progress: Progress | None = None,
    batch_size: int = BATCH,
    memory_table: str | None = DEFAULT_MEMORY_TABLE,
    workers: int | None = None,
    rewrite: bool = False,
) -> Agno3Report:
    """Copy every session of ``src``'s 1.x tables into agno 3.1.10's tables in ``dst``; the summary.

    ``src`` and ``dst`` are SQLite paths or ``sqlite:///`` / ``postgresql://``
    URLs, possibly the same database. ``tables`` names the 1.x table of each
    mode (default :data:`DEFAULT_TABLES`; a table not there is skipped and
    reported). ``schema`` is the PostgreSQL schema of the source tables,
    ``dst_schema`` that of agno 3's (both ``ai``, as agno's). ``memory_table``
    names agno 1.x's separate user-memory table (``SqliteMemoryDb`` /
    ``PostgresMemoryDb``, in ``schema``); its memories go to
    ``agno_memories`` too. None: not read.

    Safe to run again: a session whose source has not changed since it was
    written is left alone (also if agno 3 went on with it since); one that
    changed is written again. ``rewrite`` writes every session a migration
    wrote again, changed or not: how a target an earlier build migrated
    gets this build's mapping (what agno 3 changed in such a session's row
    since is replaced; runs agno 3 added stay; its own sessions are still
    left alone). Sessions are written ``batch_size`` to a
    transaction, so an interrupted run resumes where it stopped. The source
    is only read. ``dry_run`` writes nothing and reports what would be
    written. ``progress(done, total)`` is called after each batch.

    ``workers`` processes map the batches while this one writes
    (:mod:`agno_storage.agno3.workers`), at most :data:`WORKERS_LIMIT` and
    never more than there are batches; 0 maps them here. None: one per
    core up to :data:`MAX_WORKERS`, none on one core, for a plan under
    :data:`WORKERS_FROM` sessions, or where ``sys.executable`` is not a
    Python interpreter (a frozen program, an embedding server) or none can
    start; a number asked for that cannot start is a StorageError. The
    result is the same either way.

    The source is read (its tables found, its sessions listed) before
    ``dst`` is opened: a source that cannot be read (an old schema version's
    table, say) leaves ``dst`` as it was, not even created.

    Raises InvalidInputError for a bad URL, a bad ``workers`` or
    ``batch_size``, or a table of the wrong mode; SchemaVersionError for a
    source table of an older schema version (its ``table`` names it);
    StorageError for a database error. No message shows a password of
    ``src`` or ``dst``: URLs are masked, and the driver's messages
    scrubbed.
    """
    started = time.perf_counter()
    report = Agno3Report(dry_run=dry_run)
    src_target = urls.parse_location(src)
    dst_target = urls.parse_location(dst)
    for target, what in ((src_target, "SRC"), (dst_target, "DST")):
        if isinstance(target, urls.SqliteTarget):
            if target.path is None:
                raise InvalidInputError(f"{what} is an in-memory database; give a file")
            refuse_non_file(Path(target.path).expanduser(), f"{what} ")
    if isinstance(src_target, urls.SqliteTarget) and not Path(str(src_target.path)).expanduser().exists():
        raise InvalidInputError(f"no database file {urls.shown(src_target.path)}")
    if workers is not None and (type(workers) is not int or not 0 <= workers <= WORKERS_LIMIT):
        raise InvalidInputError(f"workers must be an int from 0 to {WORKERS_LIMIT}, not {workers!r}")
    if type(batch_size) is not int or batch_size < 1:
        raise InvalidInputError(f"batch_size must be an int, 1 or more, not {batch_size!r}")
    for name, value in (("schema", schema), ("dst_schema", dst_schema)):
        # PostgreSQL would cut a longer one to another's (counted as UTF-8, a lone surrogate of argv included).
        if isinstance(value, str) and len(value.encode("utf-8", "surrogatepass")) > PG_NAME_BYTES:
            raise InvalidInputError(f"{name} {value!r} is longer than PostgreSQL's {PG_NAME_BYTES} bytes")
    for location in (src, dst):
        check_conninfo(location)  # at once, and its password never shown (libpq's own message quotes it)
    chosen = {**DEFAULT_TABLES, **(tables or {})}
    with ExitStack() as stack:
        stack.enter_context(_scrubbed(src, dst))  # outermost: it sees each error the run raises
        # The source first, up to its list of sessions: a source that cannot be read leaves DST untouched.
        try:
            source = Source(SourceSpec(src=src, tables=chosen, schema=schema))
        except ConnectionLostError as exc:  # the server's address alone would not say which of the two it is
            raise ConnectionLostError(f"reading SRC {urls.shown(src)}: {exc.message}", table=exc.table) from exc
        stack.callback(source.close)
        for mode in source.missing:
            report.missing.append(chosen[mode])
        for mode in source.stores:
            report.tables[mode.value] = chosen[mode]
        if source.go is not None and source.go.present:
            report.tables[GO_AGENT_RUNS] = GO_RUNS_TABLE
        plan = source.plan()
        memories: MemoryTable | None = None
        if memory_table:
            try:
                memories = MemoryTable(src_target, memory_table, schema)
            except Exception as exc:  # the driver's, or the file system's
                what = f"reading SRC {urls.shown(src)} for the memory table {memory_table!r}"
                raise driver_error(exc, what, table=memory_table) from exc
            stack.callback(memories.close)
            if memories.present:
                report.tables[MEMORY_TABLE] = memory_table
        writer: Writer | None = None
        #: What earlier migrations left in DST: the writer's reads, or a dry run's read-only look.
        lookup: Writer | TargetReader | None = None
        if dry_run:
            try:
                lookup = TargetReader(dst_target, dst_schema)
            except Exception as exc:  # the driver's, or the file system's
                raise driver_error(exc, f"reading DST {urls.shown(dst)}") from exc
            stack.callback(lookup.close)
        else:
            what = f"opening DST {urls.shown(dst)} for agno 3's tables"
            try:
                writer = _open_writer(dst_target, dst_schema)
            except Exception as exc:  # the driver's, or the file system's
                raise driver_error(exc, what) from exc
            stack.callback(writer.close)
        chunks = [plan[i : i + batch_size] for i in range(0, len(plan), batch_size)]
        n = min(_worker_count(workers, len(plan)), len(chunks))  # a worker with no batch would only cost
        pool: WorkerPool | None = None
        if n:
            found = SourceSpec(src=src, tables={m: chosen[m] for m in source.stores}, schema=schema)
            try:
                # Started before DST's tables are made, and waited for after: they import and open the source
                # meanwhile (a SQLite commit that starts a WAL syncs it; the workers' start-up took as long).
                pool = WorkerPool(n, found, writer.engine if writer is not None else None, rewrite, wait=False)
            except StorageError:
                if workers is not None:
                    raise
                pool = None  # chosen by default, and none can start here: map in this process
            else:
                stack.callback(pool.close)
        if writer is not None:
            try:
                writer.prepare()
            except Exception as exc:  # the driver's, or the file system's
                raise driver_error(exc, what, path=writer.path) from exc
            lookup = writer
        if pool is not None:
            try:
                pool.wait()
            except StorageError:
                if workers is not None:
                    raise
                pool = None  # as above (wait closed it)
        if pool is not None:
            results = pool.map(chunks, lambda chunk: _previous(lookup, chunk))
        else:
            rows = rows_for(writer.engine) if writer is not None else None
            results = (map_chunk(source, chunk, _previous(lookup, chunk), rows, rewrite=rewrite) for chunk in chunks)
        done = 0
        tally = _Tally()
        for chunk, result in zip(chunks, results, strict=True):
            failed: StorageError | None = None
            with writer.batch() if writer is not None else nullcontext():
                if writer is not None and (now := _previous(lookup, chunk)) != result.seen:
                    # agno 3 (or another migration) wrote some of these sessions since the batch was mapped (a
                    # worker maps batches ahead of the writes): mapped again, under the lock, from what DST holds.
                    result = map_chunk(source, chunk, now, rows_for(writer.engine), rewrite=rewrite)
                _settle_runs(result, chunk, source, lookup, writer, tally, rewrite)
                _count_memories(result, lookup, report, tally, dry_run)
                failed = _write(result, writer, report)
            if failed is not None:  # raised once the sessions written before it are committed
                raise failed
            done += len(chunk)
            if progress is not None:
                progress(done, len(plan))
        if memories is not None and memories.present:
            _migrate_memory_table(memories, writer, lookup, report, batch_size, tally)
    report.seconds = time.perf_counter() - started
    return report


@contextmanager
def _scrubbed(*locations: str) -> Iterator[None]:
    """Take the secrets of ``locations`` (URLs, paths) out of the message of a StorageError raised inside.

    libpq quotes a URL it cannot read whole, password and all, and the
    source's stores and the workers pass on what it says. The error is
    changed in place: its type and attributes stay the caller's to catch.
    """
    try:
        yield
    except StorageError as exc:
        message = exc.message
        for location in locations:
            message = scrubbed(message, location)
        if message != exc.message:
            exc.message = message
            exc.args = (message, *exc.args[1:])
        raise


def _worker_count(workers: int | None, sessions: int) -> int:
    if workers is not None:
        return workers
    return default_count(sessions, start_from=WORKERS_FROM, most=MAX_WORKERS)


def _previous(lookup: Writer | TargetReader | None, chunk: Sequence[PlanItem]) -> dict[str, Previous]:
    if lookup is None:
        return {}
    try:
        return lookup.previous([sid for sid, _, _ in chunk])
    except Exception as exc:  # the driver's own error
        raise driver_error(exc, "reading what an earlier migration left in agno_sessions") from exc


@attrs.define
class _Tally:
    """What the migrating process remembers across batches.

    A real run's writes are in DST when the next batch is looked at; a dry
    run writes nothing, so it remembers what it would have written (``runs``,
    ``written``, ``gone``) and the next batches look there first: both then
    decide the same way.
    """

    #: Memory id -> the source mode label that counted it: each memory row is counted once.
    memories: dict[str, str] = attrs.field(factory=dict)
    #: Run id -> session, of the runs a dry run would have written so far (a real run's are in DST).
    runs: dict[str, str] = attrs.field(factory=dict)
    #: Run id -> session, of the runs sessions written so far deleted (the source lost them). Another
    #: session written later may take such an id: in DST it is free by then.
    released: dict[str, str] = attrs.field(factory=dict)
    #: Memory id -> updated_at, of the memory rows a dry run would have written so far.
    written: dict[str, int | None] = attrs.field(factory=dict)
    #: Memory ids whose rows a dry run would have deleted so far.
    gone: set[str] = attrs.field(factory=set)


def _settle_runs(
    result: ChunkResult,
    chunk: Sequence[PlanItem],
    source: Source,
    lookup: Writer | TargetReader | None,
    writer: Writer | None,
    tally: _Tally,
    rewrite: bool = False,
) -> None:
    """Give a run whose id another session holds an id of its own; count the runs each session deletes.

    ``agno_runs`` holds a run id once, so writing it would move the run out
    of the session that has it: in DST, or written earlier in this run (an
    earlier batch, earlier in this one). A run DST holds in a session
    written earlier in this run that no longer holds it is deleted by then,
    so its id is free. Sessions are settled in the plan's order, whatever
    the batches: a dry run and a real run, of any batch size, decide alike.
    A session with such a run is mapped again here with those ids taken
    (:func:`map_session`): the run keeps its id in its
    ``metadata["agno_v1"]["run_id"]``, and the report names it. The runs it
    deletes (``runs_removed``) are those it wrote before and holds under
    none of its final ids.
    """
    wanted = [r for runs in result.sessions.values() for r in runs.run_ids]
    try:
        owners = lookup.run_owners(wanted) if (lookup is not None and wanted) else {}
    except Exception as exc:  # the driver's own error
        raise driver_error(exc, "reading which sessions hold the runs of a batch in agno_runs", table=RUNS) from exc
    claimed: dict[str, str] = {}
    items = {item[0]: item for item in chunk}
    for sid, runs in result.sessions.items():
        clashes = {}
        for run_id in runs.run_ids:
            holder = claimed.get(run_id) or tally.runs.get(run_id)
            if holder is None:
                holder = owners.get(run_id)
                if holder is not None and tally.released.get(run_id) == holder:
                    holder = None  # that session deleted it, earlier in this run
            if holder is not None and holder != sid:
                clashes[run_id] = holder
        for run_id, holder in clashes.items():
            result.problems.append(
                f"run {run_id!r} of session {sid!r} is also session {holder!r}'s; written as run"
                f" {own_run_id(sid, run_id)!r} (its id kept in its metadata)"
            )
        if clashes and writer is not None:
            redone = map_chunk(
                source, [items[sid]], _previous(lookup, [items[sid]]), rows_for(writer.engine), clashes, rewrite
            )
            at = next(i for i, e in enumerate(result.encoded) if e.session_id == sid)
            result.encoded[at] = redone.encoded[0]
        ids = tuple(own_run_id(sid, r) if r in clashes else r for r in runs.run_ids)
        stale = stale_runs(runs.before, ids)
        result.counts.setdefault(runs.label, ModeCount()).runs_removed += len(stale)
        for run_id in ids:
            claimed[run_id] = sid
            tally.released.pop(run_id, None)
        tally.released.update(dict.fromkeys(stale, sid))
    if writer is None:
        tally.runs.update(claimed)


def _memory_stamps(lookup: Writer | TargetReader | None, memory_ids: list[str], tally: _Tally) -> dict[str, int | None]:
    """``updated_at`` of each of ``memory_ids`` in ``agno_memories``, as this run left it so far (a dry run's too)."""
    asked = [m for m in memory_ids if m not in tally.written and m not in tally.gone]
    try:
        found = lookup.memory_stamps(asked) if (lookup is not None and asked) else {}
    except Exception as exc:
        raise driver_error(exc, "reading what an earlier migration left in agno_memories", table=MEMORIES) from exc
    found.update({m: tally.written[m] for m in memory_ids if m in tally.written})
    return found


def _changed_copies(lookup: Writer | TargetReader | None, copy_of: dict[str, Agno3Memory], tally: _Tally) -> set[str]:
    """The copies in ``copy_of`` (id -> the memory-table row they are copies of) whose row in ``agno_memories``
    is that memory no more: its user or text changed since a migration wrote it (agno 3 edited it).

    A copy this run wrote (a dry run's, remembered in ``tally``) is the copy.
    """
    asked = [c for c in copy_of if c not in tally.written and c not in tally.gone]
    try:
        held = lookup.memory_contents(asked) if (lookup is not None and asked) else {}
    except Exception as exc:
        raise driver_error(exc, "reading the copies of memory-table memories", table=MEMORIES) from exc
    return {
        c
        for c, (user_id, memory) in held.items()
        if (user_id or "", memory) != (copy_of[c].user_id or "", copy_of[c].memory)
    }


def _would_write(tally: _Tally, memory_id: str, stamp: int | None, there: dict[str, int | None]) -> None:
    """Remember a dry run's write of a memory row as the writer's upsert applies it (the newer one is kept)."""
    if memory_id in there:
        held = there[memory_id]
        if held is not None and (stamp is None or stamp < held):
            return
    tally.written[memory_id] = stamp
    tally.gone.discard(memory_id)
    there[memory_id] = stamp


def _count_memories(
    result: ChunkResult, lookup: Writer | TargetReader | None, report: Agno3Report, tally: _Tally, dry_run: bool
) -> None:
    """Count each memory row the batch adds or makes newer once, under the source mode that first held it.

    Several sessions hold copies of one user memory (one row); a memory DST
    holds with the same or a later ``updated_at`` is not counted (the
    writer keeps the later one).
    """
    if not result.memory_rows:
        return
    newest: dict[str, tuple[str, int | None]] = {}
    for label, mid, stamp in result.memory_rows:
        if mid in newest:
            first, held = newest[mid]
            if stamp is not None and (held is None or stamp > held):
                newest[mid] = (first, stamp)
        else:
            newest[mid] = (label, stamp)
    there = _memory_stamps(lookup, [m for m in newest if dry_run or m not in tally.memories], tally)
    for mid, (label, stamp) in newest.items():
        if mid not in tally.memories:
            held = there.get(mid)
            if mid not in there or (stamp is not None and (held is None or held < stamp)):
                tally.memories[mid] = label
                report.modes.setdefault(label, ModeCount()).memories += 1
        if dry_run:
            _would_write(tally, mid, stamp, there)


def _open_writer(target: urls.Target, schema: str | None) -> Writer:
    if isinstance(target, urls.SqliteTarget):
        if target.timeout is None:
            return SqliteWriter(str(target.path))
        return SqliteWriter(str(target.path), busy_timeout=target.timeout)
    return PostgresWriter(target.conninfo, schema)


def _write(result: ChunkResult, writer: Writer | None, report: Agno3Report) -> StorageError | None:
    """Write one mapped batch and add its counts to the report; the error naming a session it could not write.

    A value the engine will not store (PostgreSQL's jsonb holds no U+0000,
    say) fails the whole batch: it is then written a session at a time, as
    a rerun would, and the error returned names the session; those before
    it are written. Any other error is raised.
    """
    for label, count in result.counts.items():
        report.modes.setdefault(label, ModeCount()).add(count)
    report.problems.extend(result.problems)
    if writer is None or not result.encoded:
        return None
    try:
        writer.write(result.encoded)
        return None
    except Exception as exc:
        if len(result.encoded) == 1:
            return _session_error(exc, result.encoded[0], writer.path)
        if not _refused_value(exc):
            what = f"writing agno 3 sessions {result.encoded[0].session_id!r}..."
            raise driver_error(exc, what, path=writer.path) from exc
    for encoded in result.encoded:
        try:
            writer.write([encoded])
        except Exception as one:
            return _session_error(one, encoded, writer.path)
    return None


def _session_error(exc: Exception, encoded: Encoded, path: str | None) -> StorageError:
    session_id = encoded.session_id
    error = non_finite_error(exc, encoded) or driver_error(
        exc, f"writing agno 3 session {session_id!r}", session_id=session_id, path=path
    )
    if error is not exc:
        error.__cause__ = exc
    return error


def _refused_value(exc: BaseException) -> bool:
    """Whether the engine refused a value it was given: SQLite's DataError; on PostgreSQL a DataError (the
    server's SQLSTATE class 22, or psycopg's own before sending, as for U+0000 in text)."""
    if isinstance(exc, (sqlite3.DataError, OverflowError)):  # sqlite3 binds no integer past 64 bits
        return True
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(exc, psycopg.DataError):
        return True
    return (type(exc).__module__ or "").startswith("psycopg") and (getattr(exc, "sqlstate", None) or "").startswith(
        "22"
    )


def _migrate_memory_table(
    table: MemoryTable,
    writer: Writer | None,
    lookup: Writer | TargetReader | None,
    report: Agno3Report,
    size: int,
    tally: _Tally,
) -> None:
    """agno 1.x's memory table into ``agno_memories``, ``size`` rows to a transaction.

    A memory already in ``agno_memories`` with an ``updated_at`` at or after
    the source row's is left alone: written by an earlier run, or changed by
    agno 3 since. The copies sessions held of a row's memory (same user and
    text) are replaced by it; a copy whose user or text agno 3 changed since
    is that memory no more, and is kept (and reported).
    """
    count = report.modes.setdefault(MEMORY_TABLE, ModeCount())
    pending: list[Agno3Memory] = []

    def flush() -> None:
        # The copies sessions held of these memories (AgentMemory's lists, made without ids) are these.
        ids = {m.memory_id for m in pending}
        copy_of: dict[str, Agno3Memory] = {}
        for m in pending:
            if (copy := memory_copy_id(m.user_id, m.memory)) not in ids:
                copy_of.setdefault(copy, m)
        # Read and removed under the writer's lock: agno 3 cannot change a copy in between.
        with writer.batch() if writer is not None else nullcontext():
            changed = _changed_copies(lookup, copy_of, tally)
            copies = [c for c in copy_of if c not in changed]
            if writer is not None:
                try:
                    writer.forget_memories(copies)
                except Exception as exc:
                    raise driver_error(
                        exc, "removing copies of memory-table memories", table=MEMORIES, path=writer.path
                    ) from exc
        for copy in changed:
            m = copy_of[copy]
            report.problems.append(
                f"memory {copy!r} (user {m.user_id!r}): a session's copy of memory-table row {m.memory_id!r}, but"
                " agno 3 changed it since: kept beside that row, not replaced by it"
            )
        for copy in copies:
            # A copy this run counted is no longer a row.
            label = tally.memories.pop(copy, None)
            if label is not None:
                report.modes[label].memories -= 1
            if writer is None:
                tally.written.pop(copy, None)
                tally.gone.add(copy)
        stamps = _memory_stamps(lookup, [m.memory_id for m in pending], tally)
        fresh = []
        for memory in pending:
            if memory.memory_id in stamps:
                there = stamps[memory.memory_id]
                if there is None or memory.updated_at is None or there >= memory.updated_at:
                    count.unchanged += 1
                    continue
            fresh.append(memory)
            if memory.memory_id not in tally.memories:
                tally.memories[memory.memory_id] = MEMORY_TABLE
                count.memories += 1
        if writer is None:
            for memory in fresh:
                _would_write(tally, memory.memory_id, memory.updated_at, stamps)
        if writer is not None and fresh:
            try:
                writer.write_memories(fresh)
            except Exception as exc:  # the driver's, or the file system's
                what = f"writing agno 3 memories {fresh[0].memory_id!r}..."
                raise driver_error(exc, what, table=MEMORIES, path=writer.path) from exc
        pending.clear()

    for row in table.rows():
        memory, problem = map_memory_row(row)
        if problem is not None:
            report.problems.append(problem)
        pending.append(memory)
        if len(pending) >= size:
            flush()
    if pending:
        flush()


__all__ = ["DEFAULT_TABLES", "GO_RUNS_TABLE", "MEMORY_TABLE", "WORKERS_LIMIT", "Agno3Report", "ModeCount", "to_agno3"]
