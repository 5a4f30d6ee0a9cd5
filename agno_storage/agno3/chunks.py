"""One batch of sessions from the 1.x source to agno 3's rows: read, stamp, map, encode.

:func:`map_chunk` is what a migration does to each batch before writing it.
It runs in the migrating process or in a worker process of its own
(:mod:`agno_storage.agno3.workers`); either way it reads the source through a
:class:`Source` opened where it runs, and returns plain data.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import attrs

from agno_storage import codec, fingerprint, urls
from agno_storage.agent_runs import ALL_COLUMNS as GO_RUN_COLUMNS
from agno_storage.agent_runs import TABLE as GO_RUNS_TABLE
from agno_storage.agent_runs import check_layout
from agno_storage.agno3.mapping import KEEP_KEY, SOURCE_ORDER, GoAgentRun, map_session
from agno_storage.agno3.owners import GO_AGENT_RUNS
from agno_storage.agno3.records import ByFields, Encoded, Previous
from agno_storage.agno3.rows import Rows
from agno_storage.backends.base import BaseStorage
from agno_storage.backends.sqlite_errors import translate
from agno_storage.errors import CorruptRowError, InvalidInputError, SchemaMismatchError, StorageError
from agno_storage.models import Mode, Session

_GO_RUNS_SELECT = f"SELECT {', '.join(GO_RUN_COLUMNS)} FROM agent_runs WHERE session_id = ? ORDER BY created_at, rowid"  # noqa: S608

#: One session of a migration's plan: its id, the modes whose tables hold it, whether Go runs hold it.
PlanItem = tuple[str, tuple[Mode, ...], bool]


@attrs.define
class ModeCount(ByFields):
    """What one source mode gave (or would give) agno 3."""

    sessions: int = 0
    runs: int = 0
    #: Memory rows added or made newer, each once (the copies several sessions hold of one memory are one).
    memories: int = 0
    summaries: int = 0
    unchanged: int = 0
    #: Runs an earlier migration wrote with a session that it no longer holds in the source, or that are
    #: another user's (deleted from ``agno_runs``).
    runs_removed: int = 0
    #: Sessions not written, each named in the report's problems: DST holds agno 3's own session under the
    #: id, or the session is another user's than the one of the same id in another 1.x table.
    skipped: int = 0
    #: Under ``go_agent_runs``: the users whose Go runs were left out (not migrated) of a session another user
    #: owns, once per session and user, each named with the runs' ids in the report's problems.
    users_left_out: int = 0
    #: Of ``unchanged``: the sessions an earlier build wrote, with its mapping (``rewrite=True`` gives them
    #: this build's).
    earlier_mapping: int = 0

    def add(self, other: ModeCount) -> None:
        for field in attrs.fields(ModeCount):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


@attrs.frozen
class SessionRuns(ByFields):
    """Of one session a batch writes: what the migrating process needs to settle its runs' ids and deletions."""

    #: The source mode label the session is counted under.
    label: str
    #: Its run ids as mapped, in order (before a run another session holds gets an id of its own).
    run_ids: tuple[str, ...]
    #: The runs an earlier migration wrote with it that it may delete once it no longer holds them (those no
    #: other session holds now); empty for a session DST does not hold.
    before: tuple[str, ...] = ()


def stale_runs(before: Sequence[str], run_ids: Sequence[str]) -> tuple[str, ...]:
    """Of ``before`` (:attr:`SessionRuns.before`), the runs a session written with ``run_ids`` deletes."""
    ours = set(run_ids)
    return tuple(r for r in before if r not in ours)


@attrs.define
class ChunkResult:
    """A mapped batch: the rows to write (none on a dry run), the counts per source mode, the problems.

    ``memories`` are not counted here: the copies several sessions hold of one
    memory are one row, so the migrating process counts them
    (``memory_rows``) across the batches. Nor is ``runs_removed``: which
    runs a session keeps depends on which ids other sessions hold, which
    the migrating process settles (``sessions``).
    """

    encoded: list[Encoded] = attrs.field(factory=list)
    counts: dict[str, ModeCount] = attrs.field(factory=dict)
    problems: list[str] = attrs.field(factory=list)
    #: Of each session to write, in order: its runs (also on a dry run).
    sessions: dict[str, SessionRuns] = attrs.field(factory=dict)
    #: Of each memory to write: (source mode label, memory_id, updated_at).
    memory_rows: list[tuple[str, str, int | None]] = attrs.field(factory=list)
    #: What DST held of the batch's sessions when it was mapped (``previous``): it is written only while DST
    #: still holds that (``to_agno3`` looks again under the write lock).
    seen: dict[str, Previous] = attrs.field(factory=dict)


def open_table(src: str, target: urls.Target, table: str, mode: Mode, schema: str | None) -> BaseStorage | None:
    """The store of ``table`` in ``src`` in ``mode``, or None when the table is not there."""
    from agno_storage.backends.sqlite import SqliteStorage

    try:
        if isinstance(target, urls.SqliteTarget):
            # agno 1.x's own SQLite store writes NaN and infinities as json.dumps spells them; agno 3's SqliteDb
            # writes and reads them the same way, so they are read here and moved as they are.
            store: BaseStorage = SqliteStorage(
                table,
                db_file=target.path,
                mode=mode,
                read_only=True,
                read_non_finite=True,
                busy_timeout=target.timeout,
            )
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


class GoRuns:
    """A Go Agent's ``agent_runs`` table, read with a read-only connection (SQLite only)."""

    def __init__(self, path: str, timeout: float | None = None) -> None:
        """``timeout``: seconds to wait for a writer's lock (SRC's ``?timeout=``), or sqlite3's 5."""
        uri = Path(path).expanduser().resolve().as_uri() + "?mode=ro"
        try:
            self._conn = sqlite3.connect(uri, uri=True, timeout=5.0 if timeout is None else timeout)
            # In any case, as a Go Agent's own statements and history() find it.
            found = self._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE", (GO_RUNS_TABLE,)
            ).fetchone()
            if found is not None:  # one of another layout is refused, not read
                check_layout(lambda sql, params: self._conn.execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            raise translate(exc, GO_RUNS_TABLE) from exc
        except SchemaMismatchError:
            self._conn.close()
            raise
        self.present = found is not None

    def session_ids(self) -> list[str]:
        if not self.present:
            return []
        sql = f"SELECT session_id FROM {GO_RUNS_TABLE} GROUP BY session_id ORDER BY MIN(created_at), session_id"  # noqa: S608
        try:
            return [r[0] for r in self._conn.execute(sql)]
        except sqlite3.Error as exc:
            raise translate(exc, GO_RUNS_TABLE) from exc

    def runs(self, session_id: str) -> list[GoAgentRun]:
        if not self.present:
            return []
        try:
            return [GoAgentRun(*row) for row in self._conn.execute(_GO_RUNS_SELECT, (session_id,))]
        except sqlite3.Error as exc:
            raise translate(exc, GO_RUNS_TABLE) from exc

    def close(self) -> None:
        self._conn.close()


@attrs.frozen
class SourceSpec:
    """Where a migration reads: enough to open its :class:`Source` in another process."""

    src: str
    #: The 1.x table of each mode there, as found (modes whose table is missing are left out).
    tables: dict[Mode, str]
    schema: str | None


class Source:
    """The 1.x tables of a migration, opened for reading: one store per mode, and the Go Agent's runs."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        target = urls.parse_location(spec.src)
        self.stores: dict[Mode, BaseStorage] = {}
        self.missing: list[Mode] = []
        self.go: GoRuns | None = None
        with ExitStack() as stack:
            for mode in SOURCE_ORDER:
                if mode not in spec.tables:
                    continue
                store = open_table(spec.src, target, spec.tables[mode], mode, spec.schema)
                if store is None:
                    self.missing.append(mode)
                    continue
                stack.callback(store.close)
                self.stores[mode] = store
            if isinstance(target, urls.SqliteTarget):
                self.go = GoRuns(str(target.path), target.timeout)
            stack.pop_all()

    def plan(self) -> list[PlanItem]:
        """Every session_id once, oldest table first: (id, the modes holding it, whether Go runs hold it)."""
        where: dict[str, list[Mode]] = {}
        for mode, store in self.stores.items():
            for sid in reversed(store.get_all_session_ids()):  # oldest first
                if not sid:  # agno 1.x stores one when given one; the stores read and write no such id
                    raise CorruptRowError(
                        f"{store.table_name}.session_id of a session is '' (empty), which cannot be migrated;"
                        " remove it (this package's store.delete(''), or agno's delete_session('')) or give it an"
                        " id, and run again",
                        table=store.table_name,
                        session_id=sid,
                        column="session_id",
                    )
                where.setdefault(sid, []).append(mode)
        go_ids = self.go.session_ids() if self.go is not None else []
        in_go = set(go_ids)
        plan = [(sid, tuple(modes), sid in in_go) for sid, modes in where.items()]
        plan += [(sid, (), True) for sid in go_ids if sid not in where]
        return plan

    def close(self) -> None:
        for store in self.stores.values():
            store.close()
        if self.go is not None:
            self.go.close()


#: Begins every stamp this version writes; a stored stamp without it was written by an earlier build
#: (:func:`earlier_stamps`). ``r2:`` to ``r6:`` stamps hash the source as ``r7:`` ones do: the builds that
#: wrote them mapped some runs as agno 3 cannot load them (``r2:``: a workflow's metrics, a run without its
#: kind's key, media; ``r3:``: events agno 3 has no class for, a summary stamp it cannot read; ``r4:``: a
#: message time agno 3's Message refuses) or away from the fields agno 3 reads them in (a run's ``extra_data``
#: and ``workflow_metrics``, a message's ``thinking``), or with the time agno 1.8.4 gave a run (``r4:``: its
#: process's agno import time, not its messages') or a tool call (``r5:`` and before: the same stamp, not its
#: result's time; ``r6:``: a call whose result the run does not hold, the time of a result replayed from an
#: earlier turn under the same call id).
STAMP_PREFIX = "r7:"
_EARLIER_PREFIXES = ("r6:", "r5:", "r4:", "r3:", "r2:")


def stamp(rows: Sequence[tuple[Mode, Sequence[Any]]], go_runs: Sequence[GoAgentRun]) -> str:
    """What a session looked like in the source, to the byte: unchanged stamp, unchanged session (a rerun skips it).

    ``rows`` are the session's stored rows (``BaseStorage.read_stored``),
    each with its table's mode. Every column counts, not only
    ``updated_at``: timestamps are whole seconds, and a session written
    again within the second it was migrated would otherwise be skipped with
    its change. The stored text is hashed as it is, not encoded again.
    """
    digest = hashlib.sha256()
    for mode, row in rows:
        fingerprint.feed(digest, mode.value)
        fingerprint.feed_all(digest, row)
    for run in go_runs:
        fingerprint.feed(digest, GO_RUNS_TABLE)
        fingerprint.feed_all(digest, attrs.astuple(run, recurse=False))
    return STAMP_PREFIX + digest.hexdigest()[:32]


def earlier_stamps(sources: Sequence[Session], go_runs: Sequence[GoAgentRun]) -> tuple[str, str]:
    """The stamps earlier builds wrote for this same source state, newest first.

    A target migrated by one of them holds such a stamp: a rerun must leave
    that session alone while its source is unchanged, as it leaves one with
    a current stamp alone, or it would overwrite what agno 3 added to it
    since. The first hashed each source session's values as canonical JSON
    (and each Go run's fields); the one before it, only their ``updated_at``.
    """
    values = hashlib.sha256()
    for session in sources:
        values.update(_canonical([session.MODE.value, attrs.asdict(session, recurse=False)]))
    for run in go_runs:
        values.update(_canonical(attrs.astuple(run, recurse=False)))
    parts: list[tuple[str, int | None]] = [(s.MODE.value, s.updated_at) for s in sources]
    parts += [(r.id, r.updated_at) for r in go_runs]
    updated = hashlib.sha256(json.dumps(parts, sort_keys=True).encode())
    return values.hexdigest()[:32], updated.hexdigest()[:32]


def _canonical(value: Any) -> bytes:
    """``value``'s JSON with sorted keys; the stdlib's spelling for what the codec refuses (a NaN agno 1.x stored)."""
    try:
        return codec.dumps(value).encode()
    except InvalidInputError:
        return json.dumps(value, sort_keys=True, default=repr).encode()


def _unchanged(
    before: Previous | None, current: str, sources: Sequence[Session], go_runs: Sequence[GoAgentRun]
) -> str | None:
    """Whether the target's copy of a session was made from this same source state: ``"this"`` by this build,
    ``"earlier"`` by an earlier one (with its mapping), None if not."""
    if before is None or before.stamp is None:
        return None
    if before.stamp.startswith(STAMP_PREFIX):
        return "this" if before.stamp == current else None
    digest = current[len(STAMP_PREFIX) :]
    if any(before.stamp == prefix + digest for prefix in _EARLIER_PREFIXES):
        return "earlier"
    return "earlier" if before.stamp in earlier_stamps(sources, go_runs) else None


def map_chunk(
    source: Source,
    chunk: Sequence[PlanItem],
    previous: dict[str, Previous],
    rows: Rows | None,
    taken: Mapping[str, str] | None = None,
    rewrite: bool = False,
) -> ChunkResult:
    """Read, map and (with ``rows``) encode the sessions of ``chunk``; those ``previous`` shows unchanged are counted only.

    ``previous`` is what the target holds of these sessions
    (:meth:`Writer.previous`): a session agno 3 made itself is left alone
    and named in the problems. ``taken`` maps run ids other sessions hold to
    them (:func:`~agno_storage.agno3.mapping.map_session`). ``rewrite``:
    a session a migration wrote is written again though its source is
    unchanged (agno 3's own sessions are still left alone). Raises
    StorageError naming the session that cannot be encoded.
    """
    result = ChunkResult(seen=dict(previous))
    for sid, modes, in_go in chunk:
        # A table dropped after the plan was made (a worker opens the source later) holds nothing now.
        stored = [
            (m, found)
            for m in modes
            if (store := source.stores.get(m)) is not None and (found := store.read_stored(sid)) is not None
        ]
        sources = [session for _, (session, _) in stored]
        go_runs = source.go.runs(sid) if (source.go is not None and in_go) else []
        if not sources and not go_runs:
            continue
        session_stamp = stamp([(m, row) for m, (_, row) in stored], go_runs)
        before = previous.get(sid)
        # A session the rules give no owner stays the user DST gives it (agno 3 gave it to whoever resumed it, or
        # its source had that owner when it was migrated), and so do the runs written with it.
        held = before.user_id if before is not None and before.migrated else None
        mapped = map_session(sid, sources, go_runs, taken, held)
        for label, problem in mapped.left_out:
            # Said on every run, not only when the session is written: that source is never migrated.
            left_out = result.counts.setdefault(label, ModeCount())
            if label == GO_AGENT_RUNS:  # one user's runs, not a session: the session itself is migrated
                left_out.users_left_out += 1
            else:
                left_out.skipped += 1
            result.problems.append(problem)
        run_ids = [r.run_id for r in mapped.runs]
        keep = mapped.session.metadata[KEEP_KEY]
        keep["stamp"] = session_stamp
        keep["run_ids"] = run_ids
        count = result.counts.setdefault(mapped.sources[0], ModeCount())
        if before is not None and not before.migrated:
            count.skipped += 1
            if before.marked:
                # agno 3 gives an ownerless session to the user who resumes it and writes its metadata anew,
                # stamp and all; the runs a migration wrote stay, with their mark. Written again, agno 3's own
                # session state and that user's turns would be overwritten or shown to another owner: it is left
                # as agno 3 holds it, and the report says what it holds.
                ruled = mapped.session.user_id
                rules = f"; the owner rules give it to user {ruled!r}" if ruled not in (None, before.user_id) else ""
                result.problems.append(
                    f"{mapped.sources[0]} session {sid!r}: a migration wrote it and agno 3 gave it to user"
                    f" {before.user_id!r}, who resumed it{rules}: left as agno 3 holds it, with the runs a migration"
                    " wrote in it"
                )
            else:
                result.problems.append(
                    f"{mapped.sources[0]} session {sid!r}: DST holds agno 3's own session {sid!r} (no migration wrote"
                    " it); left alone, not migrated"
                )
            continue
        # Written again though its source is unchanged: it lost a run to another session (builds before
        # 2026-12), holds another user's runs that a build merging owners wrote into it, or DST gives it to
        # another user than the owner rule does now (a build with another rule wrote it). A session mapped to
        # no owner is not: agno 3 gives it to the first user who resumes it, and it is that user's now.
        owner = mapped.session.user_id
        redo = before is not None and bool(
            before.elsewhere
            or set(mapped.left_out_runs).intersection(before.run_ids)
            or (owner is not None and before.user_id != owner)
        )
        same = None if rewrite or redo else _unchanged(before, session_stamp, sources, go_runs)
        if same is not None:
            count.unchanged += 1
            count.earlier_mapping += same == "earlier"
            continue
        deletable: tuple[str, ...] = ()
        if before is not None:
            # A run another session holds now is not this session's to delete.
            deletable = tuple(r for r in before.run_ids if r not in before.elsewhere)
            mapped = attrs.evolve(mapped, stale_runs=stale_runs(deletable, run_ids), rewrite=True)
        count.sessions += 1
        count.runs += len(mapped.runs)
        count.summaries += mapped.summaries
        result.problems.extend(mapped.problems)
        label = mapped.sources[0]
        result.sessions[sid] = SessionRuns(label=label, run_ids=tuple(run_ids), before=deletable)
        result.memory_rows.extend((label, m.memory_id, m.updated_at) for m in mapped.memories)
        if rows is not None:
            # Encoded now, one session at a time: the batch then holds rows, not the mapped dicts.
            try:
                result.encoded.append(rows.encode(mapped))
            except Exception as exc:
                raise StorageError(f"encoding agno 3 session {sid!r}: {exc}") from exc
    return result


__all__ = [
    "STAMP_PREFIX",
    "ChunkResult",
    "GoRuns",
    "ModeCount",
    "PlanItem",
    "SessionRuns",
    "Source",
    "SourceSpec",
    "earlier_stamps",
    "map_chunk",
    "open_table",
    "stale_runs",
    "stamp",
]
