"""Workload 4b: the 20 newest sessions as a projection (``list_summaries``), against a floor selecting the same.

Runs only where the store has ``list_summaries()`` (session_id, user_id,
entity id and timestamps, no JSON decoded); elsewhere it gives no rows and a
note. The floor runs the statement the store runs, recorded off the store
through its public ``tracer`` with probe values, bound with the same values
in the same places, and fetches the raw rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agno_storage import SqliteStorage
from bench import harness
from bench.config import Config
from bench.contenders import TABLE, Ours
from bench.harness import PROBE_AGENT, PROBE_LIMIT, PROBE_USER, RECENT_QUERIES, Contender, Row

#: Workload name and labels (bench.report reads the same constants' values).
WORKLOAD = "4. newest 20 projected"
OURS = "agno_storage list_summaries"
FLOOR = "floor, same columns"


def available() -> bool:
    """Whether the store has a projection to measure."""
    return callable(getattr(SqliteStorage, "list_summaries", None))


def _summaries(store: Any, user_id: str | None, agent_id: str | None, limit: int) -> int:
    return len(store.list_summaries(user_id=user_id, entity_id=agent_id, limit=limit))


def recorded(store: SqliteStorage, user_id: str | None, agent_id: str | None) -> tuple[str, list[Any]]:
    """The one SELECT of the sessions table that ``list_summaries`` runs for this filter, with probe values.

    A first call outside the recording lets the store check the table's
    shape (its catalogue queries are not the read). Raises RuntimeError
    unless the recorded call reads the table with exactly one SELECT.
    """
    _summaries(store, user_id, agent_id, PROBE_LIMIT)
    log: list[tuple[str, list[Any]]] = []
    previous = store.tracer
    store.tracer = lambda statement, params: log.append((statement, list(params or [])))
    try:
        _summaries(store, user_id, agent_id, PROBE_LIMIT)
    finally:
        store.tracer = previous
    source = f'FROM "{TABLE}"'
    selects = [(s, p) for s, p in log if s.lstrip().upper().startswith("SELECT") and source in s]
    if len(selects) != 1:
        raise RuntimeError(f"expected list_summaries to read {TABLE} with one SELECT, it ran {log!r}")
    return selects[0]


class Projected(Ours):
    """The store's ``list_summaries``, on a file that already holds the rows."""

    def recent(self, user_id: str | None, agent_id: str | None, limit: int) -> int:
        return _summaries(self.st, user_id, agent_id, limit)


class ProjectedFloor(Contender):
    """Plain sqlite3 running ``list_summaries``' own statement and fetching the raw rows."""

    kind = "floor"
    label = FLOOR

    def __init__(self) -> None:
        super().__init__()
        self.conn: sqlite3.Connection | None = None
        self.statements: dict[str, tuple[str, list[Any]]] = {}

    def open(self, path: str) -> None:
        store = SqliteStorage(table_name=TABLE, db_file=path, synchronous="FULL")
        try:
            self.statements = {
                "user": recorded(store, PROBE_USER, None),
                "agent": recorded(store, None, PROBE_AGENT),
                "all": recorded(store, None, None),
            }
        finally:
            store.close()
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode = WAL")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def recent(self, user_id: str | None, agent_id: str | None, limit: int) -> int:
        assert self.conn is not None
        which = "user" if user_id is not None else "agent" if agent_id is not None else "all"
        sql, probe = self.statements[which]
        values = {PROBE_USER: user_id, PROBE_AGENT: agent_id, PROBE_LIMIT: limit}
        params = [values.get(p, p) if isinstance(p, (str, int)) else p for p in probe]
        return len(self.conn.execute(sql, params).fetchall())


def newest_20_projected(cfg: Config, ours_path: Path, floor_path: Path) -> list[Row]:
    """Workload 4b on the files workload 4 filled: the store's projection against the floor's same SELECT."""
    if not available():
        return []
    floor = ProjectedFloor()
    contenders: Sequence[Contender] = [Projected(OURS), floor]
    paths = (ours_path, floor_path)
    out: list[Row] = []
    with harness.closing(contenders):
        for c, p in zip(contenders, paths, strict=True):
            harness.open_at(c, str(p))
        for name, args in RECENT_QUERIES.items():
            rows = harness.timed(
                f"{WORKLOAD} of {name} ({cfg.recent_rows:,} rows)",
                contenders,
                cfg.rounds,
                harness.recent_batches(args, cfg.recent_ops, cfg.recent_budget_s),
            )
            # The statement is the store's on both files: the plans show which index each file offers it.
            for row, path in zip(rows, paths, strict=True):
                row["plan"] = _plan(path, *floor.statements[name])
            out += rows
    return out


def _plan(path: Path, sql: str, params: list[Any]) -> str:
    conn = sqlite3.connect(path)
    try:
        return "; ".join(str(p[-1]) for p in conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall())
    finally:
        conn.close()
