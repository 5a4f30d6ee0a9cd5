"""What earlier migrations left in agno 3's tables in DST, read: a writer's look before it writes, and a dry run's.

The queries here tell, for the sessions, runs and memories of a batch, what
DST holds of them already (:class:`~agno_storage.agno3.records.Previous`:
owner, stamp, the runs an earlier migration wrote); each takes a connection
or cursor with its table prefix and bind mark, so the writers of
:mod:`agno_storage.agno3.writer` run them inside their batch's transaction.
:class:`TargetReader` runs the same queries for a dry run, which never
writes DST: a SQLite file is opened so that no file is left behind, and a
DST that is not there, or has no agno 3 tables yet, holds nothing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from agno_storage.agno3 import ddl
from agno_storage.agno3.mapping import KEEP_KEY
from agno_storage.agno3.records import Previous
from agno_storage.schema import quote


def _previous_of(user_id: Any, metadata: Any) -> Previous:
    """The owner a session row holds, and the stamp and run ids an earlier migration kept in its metadata.

    A session with no stamp there (``migrated`` False) is never written
    over: agno 3 made it, or gave it to the user who resumed it and wrote
    its metadata anew, when its runs still carry the migration's mark
    (``Previous.marked``, which only decides what the report says).
    """
    owner = user_id if isinstance(user_id, str) else None
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return Previous(stamp=None, run_ids=(), migrated=False, user_id=owner)
    keep = metadata.get(KEEP_KEY) if isinstance(metadata, dict) else None
    stamp = keep.get("stamp") if isinstance(keep, dict) else None
    if not isinstance(keep, dict) or not isinstance(stamp, str):
        return Previous(stamp=None, run_ids=(), migrated=False, user_id=owner)
    run_ids = keep.get("run_ids")
    ids = tuple(r for r in run_ids if isinstance(r, str)) if isinstance(run_ids, list) else ()
    return Previous(stamp=stamp, run_ids=ids, user_id=owner)


_MEMORY_STAMPS_SQL = f"SELECT memory_id, updated_at FROM {{prefix}}{ddl.MEMORIES} WHERE memory_id IN ({{marks}})"  # noqa: S608
_MEMORY_CONTENTS_SQL = f"SELECT memory_id, user_id, memory FROM {{prefix}}{ddl.MEMORIES} WHERE memory_id IN ({{marks}})"  # noqa: S608
_RUN_OWNERS_SQL = f"SELECT run_id, session_id FROM {{prefix}}{ddl.RUNS} WHERE run_id IN ({{marks}})"  # noqa: S608


def select_run_owners(cur: Any, run_ids: Sequence[str], prefix: str, mark: str) -> dict[str, str]:
    """For each of ``run_ids`` already in ``agno_runs``: the session holding it."""
    out: dict[str, str] = {}
    for start in range(0, len(run_ids), 500):
        chunk = list(run_ids[start : start + 500])
        sql = _RUN_OWNERS_SQL.format(prefix=prefix, marks=", ".join(mark for _ in chunk))
        out.update({rid: sid for rid, sid in cur.execute(sql, chunk).fetchall()})
    return out


def _with_elsewhere(cur: Any, found: dict[str, Previous], prefix: str, mark: str) -> dict[str, Previous]:
    """``found`` with each session's ``elsewhere``: the runs it was written with that another session holds now.

    Builds before 2026-12 moved a run whose id two sessions held into the
    later one; the session that lost it is then written again.
    """
    owners = select_run_owners(cur, [r for p in found.values() for r in p.run_ids], prefix, mark)
    for sid, before in found.items():
        moved = tuple(r for r in before.run_ids if owners.get(r, sid) != sid)
        if moved:
            found[sid] = attrs.evolve(before, elsewhere=moved)
    return found


#: A run carries a migration's mark when its ``run_data`` holds an object at this path (SQLite / PostgreSQL).
_MARK_PATH = f"$.metadata.{KEEP_KEY}"
_MARK_KEYS = ["metadata", KEEP_KEY]
_HELD_SQLITE = (
    f"SELECT session_id, run_id, CASE WHEN json_valid(run_data) THEN json_type(run_data, ?) END = 'object' FROM {ddl.RUNS}"  # noqa: S608
    " WHERE session_id IN ({marks}) ORDER BY run_index, created_at, run_id"
)
_HELD_POSTGRES = (
    f"SELECT session_id, run_id, jsonb_typeof(run_data #> %s) = 'object' FROM {{prefix}}{ddl.RUNS}"  # noqa: S608
    " WHERE session_id = ANY(%s) ORDER BY run_index, created_at, run_id"
)


def _with_held(found: dict[str, Previous], rows: Sequence[tuple[str, str, Any]]) -> dict[str, Previous]:
    """``found`` with the runs carrying a migration's mark (``marked``) that ``rows`` (session_id, run_id,
    marked) give its unstamped sessions."""
    marked: dict[str, list[str]] = {}
    for sid, run_id, is_marked in rows:
        if is_marked:
            marked.setdefault(sid, []).append(run_id)
    for sid, runs in marked.items():
        found[sid] = attrs.evolve(found[sid], marked=tuple(runs))
    return found


def sqlite_previous(conn: sqlite3.Connection, session_ids: Sequence[str], runs: bool = True) -> dict[str, Previous]:
    """What ``agno_sessions`` holds of ``session_ids``; ``runs``: whether there is an ``agno_runs`` to look in."""
    out: dict[str, Previous] = {}
    for start in range(0, len(session_ids), 500):
        chunk = list(session_ids[start : start + 500])
        marks = ", ".join("?" for _ in chunk)
        sql = f"SELECT session_id, user_id, metadata FROM {ddl.SESSIONS} WHERE session_id IN ({marks})"  # noqa: S608
        for sid, user_id, metadata in conn.execute(sql, chunk):
            out[sid] = _previous_of(user_id, metadata)
    if not runs:
        return out
    unstamped = [sid for sid, p in out.items() if not p.migrated]
    for start in range(0, len(unstamped), 500):
        chunk = unstamped[start : start + 500]
        sql = _HELD_SQLITE.format(marks=", ".join("?" for _ in chunk))
        _with_held(out, conn.execute(sql, [_MARK_PATH, *chunk]).fetchall())
    return _with_elsewhere(conn, out, "", "?")


def postgres_previous(conn: Any, prefix: str, session_ids: Sequence[str], runs: bool = True) -> dict[str, Previous]:
    if not session_ids:
        return {}
    sql = f"SELECT session_id, user_id, metadata FROM {prefix}{ddl.SESSIONS} WHERE session_id = ANY(%s)"  # noqa: S608
    rows = conn.execute(sql, (list(session_ids),)).fetchall()
    found = {sid: _previous_of(user_id, metadata) for sid, user_id, metadata in rows}
    if not runs:
        return found
    unstamped = [sid for sid, p in found.items() if not p.migrated]
    if unstamped:
        held = conn.execute(_HELD_POSTGRES.format(prefix=prefix), (_MARK_KEYS, unstamped)).fetchall()
        _with_held(found, held)
    return _with_elsewhere(conn, found, prefix, "%s")


class TargetReader:
    """What a dry run reads of DST, which it never writes: what earlier migrations left there.

    A DST that is not there, or has no agno 3 tables yet, holds nothing:
    every session would be written.
    """

    def __init__(self, target: Any, schema: str | None = "ai") -> None:
        from agno_storage import urls

        self._sqlite: sqlite3.Connection | None = None
        self._pg: Any = None
        self._prefix = ""
        self._tables: set[str] = set()
        if isinstance(target, urls.SqliteTarget):
            path = Path(str(target.path)).expanduser()
            if not path.exists():
                return
            self._sqlite = _read_only(path, 5.0 if target.timeout is None else target.timeout)
            try:
                found = self._sqlite.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
            except BaseException:
                self.close()  # a file that is no database: the caller gets the error, not an open connection
                raise
            self._tables = {r[0] for r in found}
            return
        import psycopg

        self._pg = psycopg.connect(target.conninfo, autocommit=True, prepare_threshold=None)
        self._prefix = f"{quote(schema)}." if schema else ""
        try:
            for table in (ddl.SESSIONS, ddl.RUNS, ddl.MEMORIES):
                row = self._pg.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{self._prefix}{table}",)).fetchone()
                if row and row[0]:
                    self._tables.add(table)
        except BaseException:
            self.close()
            raise

    def previous(self, session_ids: Sequence[str]) -> dict[str, Previous]:
        if ddl.SESSIONS not in self._tables:
            return {}
        runs = ddl.RUNS in self._tables
        if self._sqlite is not None:
            return sqlite_previous(self._sqlite, session_ids, runs)
        return postgres_previous(self._pg, self._prefix, session_ids, runs)

    def run_owners(self, run_ids: Sequence[str]) -> dict[str, str]:
        if ddl.RUNS not in self._tables:
            return {}
        if self._sqlite is not None:
            return select_run_owners(self._sqlite, run_ids, "", "?")
        return select_run_owners(self._pg, run_ids, self._prefix, "%s")

    def memory_stamps(self, memory_ids: Sequence[str]) -> dict[str, int | None]:
        if ddl.MEMORIES not in self._tables:
            return {}
        if self._sqlite is not None:
            return select_memory_stamps(self._sqlite, memory_ids, "", "?")
        return select_memory_stamps(self._pg, memory_ids, self._prefix, "%s")

    def memory_contents(self, memory_ids: Sequence[str]) -> dict[str, tuple[str | None, Any]]:
        if ddl.MEMORIES not in self._tables:
            return {}
        if self._sqlite is not None:
            return select_memory_contents(self._sqlite, memory_ids, "", "?")
        return select_memory_contents(self._pg, memory_ids, self._prefix, "%s")

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            self._pg.close()


def _read_only(path: Path, timeout: float) -> sqlite3.Connection:
    """A connection to ``path`` that reads only and leaves no file behind.

    A WAL-mode file with no ``-wal`` beside it has no other connection open:
    a ``mode=ro`` connection would leave the ``-wal`` and ``-shm`` it makes
    (it may not delete them), so it is opened read-write with ``query_only``,
    and SQLite deletes them when it closes, as the last connection does.
    With a ``-wal`` there (another connection's), ``mode=ro`` changes nothing.
    ``timeout``: seconds to wait for a writer's lock.
    """
    uri = path.resolve().as_uri()
    if Path(f"{path}-wal").exists():
        return sqlite3.connect(uri + "?mode=ro", uri=True, timeout=timeout)
    conn = sqlite3.connect(uri + "?mode=rw", uri=True, timeout=timeout)
    try:
        conn.execute("PRAGMA query_only = 1")
    except BaseException:
        conn.close()
        raise
    return conn


def select_memory_stamps(cur: Any, memory_ids: Sequence[str], prefix: str, mark: str) -> dict[str, int | None]:
    """For each of ``memory_ids`` already in ``agno_memories``: its ``updated_at``."""
    out: dict[str, int | None] = {}
    for start in range(0, len(memory_ids), 500):
        chunk = list(memory_ids[start : start + 500])
        sql = _MEMORY_STAMPS_SQL.format(prefix=prefix, marks=", ".join(mark for _ in chunk))
        out.update({mid: stamp for mid, stamp in cur.execute(sql, chunk).fetchall()})
    return out


def select_memory_contents(
    cur: Any, memory_ids: Sequence[str], prefix: str, mark: str
) -> dict[str, tuple[str | None, Any]]:
    """For each of ``memory_ids`` already in ``agno_memories``: its ``user_id`` and its ``memory``, decoded.

    SQLite's column holds JSON text (agno 3's and this writer's); text that
    is not JSON is given as it is. PostgreSQL's ``jsonb`` comes decoded.
    """
    out: dict[str, tuple[str | None, Any]] = {}
    for start in range(0, len(memory_ids), 500):
        chunk = list(memory_ids[start : start + 500])
        sql = _MEMORY_CONTENTS_SQL.format(prefix=prefix, marks=", ".join(mark for _ in chunk))
        for mid, user_id, memory in cur.execute(sql, chunk).fetchall():
            if isinstance(memory, str) and mark == "?":
                try:
                    memory = json.loads(memory)
                except ValueError:
                    pass
            out[mid] = (user_id, memory)
    return out


__all__ = [
    "TargetReader",
    "postgres_previous",
    "select_memory_contents",
    "select_memory_stamps",
    "select_run_owners",
    "sqlite_previous",
]
