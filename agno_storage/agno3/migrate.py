"""Move agno 1.x and agno-golang sessions into agno 3.1.10's tables: :func:`to_agno3`.

Reads the four 1.x sessions tables through the package's stores
(``SqliteStorage`` / ``PostgresStorage``: read only, nothing is created) and a
Go Agent's ``agent_runs`` table with a read-only connection; maps each
session with :mod:`agno_storage.agno3.mapping`; writes with a
:mod:`agno_storage.agno3.writer`. See docs/agno3.md.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import attrs

from agno_storage import codec, urls
from agno_storage.agent_runs import TABLE as GO_RUNS_TABLE
from agno_storage.agno3.mapping import (
    GO_AGENT_RUNS,
    KEEP_KEY,
    SOURCE_ORDER,
    GoAgentRun,
    make_converter,
    map_session,
)
from agno_storage.agno3.memory_table import DEFAULT_MEMORY_TABLE, MemoryTable, map_memory_row
from agno_storage.agno3.records import Agno3Memory, Encoded
from agno_storage.agno3.writer import PostgresWriter, SqliteWriter, Writer
from agno_storage.backends.base import BaseStorage
from agno_storage.errors import InvalidInputError, SchemaMismatchError, StorageError
from agno_storage.models import Mode, Session

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
_GO_RUNS_SELECT = (
    "SELECT id, session_id, user_id, run_name, run_data, user_message, agent_message, messages, metrics,"
    " created_at, updated_at FROM agent_runs WHERE session_id = ? ORDER BY created_at, rowid"
)

Progress = Callable[[int, int], None]


@attrs.define
class ModeCount:
    """What one source mode gave (or would give) agno 3."""

    sessions: int = 0
    runs: int = 0
    memories: int = 0
    summaries: int = 0
    unchanged: int = 0
    #: Runs an earlier migration wrote that the source no longer holds (deleted from ``agno_runs``).
    runs_removed: int = 0


@attrs.define
class Agno3Report:
    """The summary of one :func:`to_agno3`: counts per source mode, what was skipped and why."""

    dry_run: bool
    #: Keyed by the mode of the table that names each session (or ``go_agent_runs``).
    modes: dict[str, ModeCount] = attrs.field(factory=dict)
    #: Source tables read, and those not there.
    tables: dict[str, str] = attrs.field(factory=dict)
    missing: list[str] = attrs.field(factory=list)
    #: What could not be mapped to an agno 3 field; each is kept in metadata and named here.
    problems: list[str] = attrs.field(factory=list)
    seconds: float = 0.0

    def total(self, what: str) -> int:
        """The sum of one ModeCount field over the modes."""
        return sum(int(getattr(c, what)) for c in self.modes.values())

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data (the CLI's ``--json``)."""
        return dict(make_converter().unstructure(self))


def _stamp(sources: Sequence[Session], go_runs: Sequence[GoAgentRun]) -> str:
    """What a session looked like in the source, to the value: unchanged stamp, unchanged session (a rerun skips it).

    Every field counts, not only ``updated_at``: timestamps are whole
    seconds, and a session written again within the second it was migrated
    would otherwise be skipped with its change.
    """
    digest = hashlib.sha256()
    for session in sources:
        digest.update(_canonical([session.MODE.value, attrs.asdict(session, recurse=False)]))
    for run in go_runs:
        digest.update(_canonical(attrs.astuple(run, recurse=False)))
    return digest.hexdigest()[:32]


def _canonical(value: Any) -> bytes:
    """``value``'s JSON with sorted keys; the stdlib's spelling for what the codec refuses (a NaN agno 1.x stored)."""
    try:
        return codec.dumps(value).encode()
    except InvalidInputError:
        return json.dumps(value, sort_keys=True, default=repr).encode()


def _open_source(src: str, target: urls.Target, table: str, mode: Mode, schema: str | None) -> BaseStorage | None:
    """The store of ``table`` in ``src`` in ``mode``, or None when the table is not there."""
    from agno_storage.backends.sqlite import SqliteStorage

    try:
        if isinstance(target, urls.SqliteTarget):
            store: BaseStorage = SqliteStorage(table, db_file=target.path, mode=mode)
        else:
            store = urls.open_storage(src, table_name=table, mode=mode, schema=schema)
    except SchemaMismatchError as exc:
        raise InvalidInputError(
            f"table {table!r} is not a {mode.value} sessions table ({exc}); name the right table for each mode"
        ) from exc
    if not store.table_exists():
        store.close()
        return None
    return store


class _GoRuns:
    """A Go Agent's ``agent_runs`` table, read with a read-only connection (SQLite only)."""

    def __init__(self, path: str) -> None:
        uri = Path(path).expanduser().resolve().as_uri() + "?mode=ro"
        self._conn = sqlite3.connect(uri, uri=True)
        found = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (GO_RUNS_TABLE,)
        ).fetchone()
        self.present = found is not None

    def session_ids(self) -> list[str]:
        if not self.present:
            return []
        sql = f"SELECT session_id FROM {GO_RUNS_TABLE} GROUP BY session_id ORDER BY MIN(created_at), session_id"  # noqa: S608
        return [r[0] for r in self._conn.execute(sql)]

    def runs(self, session_id: str) -> list[GoAgentRun]:
        if not self.present:
            return []
        return [GoAgentRun(*row) for row in self._conn.execute(_GO_RUNS_SELECT, (session_id,))]

    def close(self) -> None:
        self._conn.close()


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
    changed is written again. Sessions are written ``batch_size`` to a
    transaction, so an interrupted run resumes where it stopped. The source
    is only read. ``dry_run`` writes nothing and reports what would be
    written. ``progress(done, total)`` is called after each batch.

    Raises InvalidInputError for a bad URL or a table of the wrong mode,
    StorageError for a database error.
    """
    started = time.perf_counter()
    report = Agno3Report(dry_run=dry_run)
    src_target = urls.parse_location(src)
    dst_target = urls.parse_location(dst)
    for target, what in ((src_target, "SRC"), (dst_target, "DST")):
        if isinstance(target, urls.SqliteTarget) and target.path is None:
            raise InvalidInputError(f"{what} is an in-memory database; give a file")
    if isinstance(src_target, urls.SqliteTarget) and not Path(str(src_target.path)).expanduser().exists():
        raise InvalidInputError(f"no database file {src_target.path!r}")
    chosen = {**DEFAULT_TABLES, **(tables or {})}
    with ExitStack() as stack:
        stores: dict[Mode, BaseStorage] = {}
        for mode in SOURCE_ORDER:
            store = _open_source(src, src_target, chosen[mode], mode, schema)
            if store is None:
                report.missing.append(chosen[mode])
                continue
            stack.callback(store.close)
            stores[mode] = store
            report.tables[mode.value] = chosen[mode]
        go: _GoRuns | None = None
        if isinstance(src_target, urls.SqliteTarget):
            go = _GoRuns(str(src_target.path))
            stack.callback(go.close)
            if go.present:
                report.tables[GO_AGENT_RUNS] = GO_RUNS_TABLE
        writer: Writer | None = None
        if not dry_run:
            writer = _open_writer(dst_target, dst_schema)
            stack.callback(writer.close)
            writer.prepare()
        memories: MemoryTable | None = None
        if memory_table:
            memories = MemoryTable(src_target, memory_table, schema)
            stack.callback(memories.close)
            if memories.present:
                report.tables[MEMORY_TABLE] = memory_table
        plan = _plan(stores, go)
        done = 0
        for chunk in _chunks(plan, batch_size):
            _migrate_batch(chunk, stores, go, writer, report)
            done += len(chunk)
            if progress is not None:
                progress(done, len(plan))
        if memories is not None and memories.present:
            _migrate_memory_table(memories, writer, report, batch_size)
    report.seconds = time.perf_counter() - started
    return report


def _open_writer(target: urls.Target, schema: str | None) -> Writer:
    if isinstance(target, urls.SqliteTarget):
        return SqliteWriter(str(target.path))
    return PostgresWriter(target.conninfo, schema)


def _plan(stores: dict[Mode, BaseStorage], go: _GoRuns | None) -> list[tuple[str, tuple[Mode, ...], bool]]:
    """Every session_id once, oldest table first: (id, the modes holding it, whether Go runs hold it)."""
    where: dict[str, list[Mode]] = {}
    for mode, store in stores.items():
        for sid in reversed(store.get_all_session_ids()):  # oldest first
            where.setdefault(sid, []).append(mode)
    go_ids = set(go.session_ids()) if go is not None else set()
    plan = [(sid, tuple(modes), sid in go_ids) for sid, modes in where.items()]
    plan += [(sid, (), True) for sid in (go.session_ids() if go is not None else []) if sid not in where]
    return plan


def _chunks(plan: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(plan), size):
        yield plan[start : start + size]


def _migrate_memory_table(table: MemoryTable, writer: Writer | None, report: Agno3Report, size: int) -> None:
    """agno 1.x's memory table into ``agno_memories``, ``size`` rows to a transaction.

    A memory already in ``agno_memories`` with an ``updated_at`` at or after
    the source row's is left alone: written by an earlier run, or changed by
    agno 3 since.
    """
    count = report.modes.setdefault(MEMORY_TABLE, ModeCount())
    pending: list[Agno3Memory] = []

    def flush() -> None:
        stamps = writer.memory_stamps([m.memory_id for m in pending]) if writer is not None else {}
        fresh = []
        for memory in pending:
            if memory.memory_id in stamps:
                there = stamps[memory.memory_id]
                if there is None or memory.updated_at is None or there >= memory.updated_at:
                    count.unchanged += 1
                    continue
            fresh.append(memory)
        count.memories += len(fresh)
        if writer is not None and fresh:
            try:
                writer.write_memories(fresh)
            except StorageError:
                raise
            except Exception as exc:
                raise StorageError(f"writing agno 3 memories {fresh[0].memory_id!r}...: {exc}") from exc
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


def _migrate_batch(
    chunk: list[tuple[str, tuple[Mode, ...], bool]],
    stores: dict[Mode, BaseStorage],
    go: _GoRuns | None,
    writer: Writer | None,
    report: Agno3Report,
) -> None:
    previous = writer.previous([sid for sid, _, _ in chunk]) if writer is not None else {}
    batch: list[Encoded] = []
    for sid, modes, in_go in chunk:
        sources = [s for s in (stores[m].read(sid) for m in modes) if s is not None]
        go_runs = go.runs(sid) if (go is not None and in_go) else []
        if not sources and not go_runs:
            continue
        stamp = _stamp(sources, go_runs)
        mapped = map_session(sid, sources, go_runs)
        run_ids = [r.run_id for r in mapped.runs]
        keep = mapped.session.metadata[KEEP_KEY]
        keep["stamp"] = stamp
        keep["run_ids"] = run_ids
        label = mapped.sources[0]
        count = report.modes.setdefault(label, ModeCount())
        before = previous.get(sid)
        if before is not None and before.stamp == stamp:
            count.unchanged += 1
            continue
        if before is not None:
            ours = set(run_ids)
            stale = tuple(r for r in before.run_ids if r not in ours)
            mapped = attrs.evolve(mapped, stale_runs=stale, rewrite=True)
            count.runs_removed += len(stale)
        count.sessions += 1
        count.runs += len(mapped.runs)
        count.memories += len(mapped.memories)
        count.summaries += mapped.summaries
        report.problems.extend(mapped.problems)
        if writer is not None:
            # Encoded now, one session at a time: the batch then holds rows, not the mapped dicts.
            try:
                batch.append(writer.encode(mapped))
            except Exception as exc:
                raise StorageError(f"encoding agno 3 session {sid!r}: {exc}") from exc
    if writer is not None and batch:
        try:
            writer.write(batch)
        except StorageError:
            raise
        except Exception as exc:
            raise StorageError(f"writing agno 3 sessions {batch[0].session_id!r}...: {exc}") from exc


__all__ = ["DEFAULT_TABLES", "GO_RUNS_TABLE", "MEMORY_TABLE", "Agno3Report", "ModeCount", "to_agno3"]
