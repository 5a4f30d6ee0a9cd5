"""The SQLite contenders, behind bench.harness's batch interface.

Each contender owns one database file per workload.
"""

from __future__ import annotations

import sqlite3
import time
import types
from collections.abc import Callable
from typing import Any

from agno_storage import SqliteStorage
from agno_storage.schema import quote
from bench.harness import AgnoApi, OursApi, RawFloor, ours_session

TABLE = "agent_sessions"
#: A read the harness makes through the store's API: "read" by session_id, or "newest" of a "user", an "agent" or "all".
READS = ("read", "user", "agent", "all")
#: Values the floor's statements are recorded with; their places in the parameters show how the store binds.
PROBE_ID, PROBE_USER, PROBE_AGENT, PROBE_LIMIT = "probe-session", "probe-user", "probe-agent", 20


class Ours(OursApi):
    """This project's SqliteStorage."""

    def __init__(self, label: str = "agno_storage", synchronous: str = "FULL", recency_indexes: bool = True) -> None:
        super().__init__()
        self.label = label
        self.synchronous = synchronous
        self.recency_indexes = recency_indexes

    def open(self, path: str) -> None:
        self.st = SqliteStorage(
            table_name=TABLE,
            db_file=path,
            mode="agent",
            synchronous=self.synchronous,
            recency_indexes=self.recency_indexes,
        )
        self.st.create()


class Agno(AgnoApi):
    """Python agno 1.8.4's ``agno.storage.sqlite.SqliteStorage`` at its defaults."""

    def open(self, path: str) -> None:
        from agno.storage.sqlite import SqliteStorage as AgnoSqliteStorage

        self.st = AgnoSqliteStorage(table_name=TABLE, db_file=path, mode="agent")
        self.st.create()

    def release(self) -> None:
        self.st.db_engine.dispose()

    def pragmas(self) -> dict[str, Any]:
        with self.st.db_engine.connect() as conn:
            return {
                "journal_mode": conn.exec_driver_sql("PRAGMA journal_mode").scalar(),
                "synchronous": conn.exec_driver_sql("PRAGMA synchronous").scalar(),
            }


class RecordingStorage(SqliteStorage):
    """This project's SqliteStorage that can also say which SELECT a read runs and what it binds.

    Only for setting up and explaining: it watches the store through its
    public ``tracer``, and the timed contenders use the plain class.
    """

    def statement(self, call: Callable[[], object]) -> tuple[str, list[Any]]:
        """The one SELECT on the sessions table that ``call`` makes the store run, with its parameters.

        Raises RuntimeError if the table is absent or the call does not make
        exactly one read of it.
        """
        if not self.table_exists():
            raise RuntimeError(f"no table {self.table_name!r} in {self.db_path!r} to record reads on")
        log: list[tuple[str, list[Any]]] = []
        self.tracer = lambda statement, params: log.append((statement, list(params or [])))
        try:
            call()
        finally:
            self.tracer = None
        reads = [(s, p) for s, p in log if s.startswith("SELECT") and f"FROM {quote(self.table_name)}" in s]
        if len(reads) != 1:
            raise RuntimeError(f"expected one read statement, the store ran {len(reads)}: {log!r}")
        return reads[0]


def ours_reads(
    st: RecordingStorage, session_id: str, user_id: str, agent_id: str, limit: int
) -> dict[str, tuple[str, list[Any]]]:
    """For each of READS, the statement and parameters the Ours contender's call makes ``st`` run.

    The calls are the contender's own (``read_one``, ``recent``), so they ask
    the store exactly what the timed ones do.
    """
    api = Ours()
    api.st = st
    item = types.SimpleNamespace(session_id=session_id)
    return {
        "read": st.statement(lambda: api.read_one(item)),
        "user": st.statement(lambda: api.recent(user_id, None, limit)),
        "agent": st.statement(lambda: api.recent(None, agent_id, limit)),
        "all": st.statement(lambda: api.recent(None, None, limit)),
    }


def _check_binding(read: str, got: list[Any], floor_binds: list[Any]) -> None:
    if got != floor_binds:
        raise RuntimeError(
            f"the store binds {got!r} for its {read!r} statement, the floor {floor_binds!r}: update Floor._statements"
        )


class Floor(RawFloor):
    """Plain sqlite3 running this project's statements on pre-encoded rows.

    The table is made by this project's store (same DDL and indexes), the
    upsert and the SELECTs are the store's own statement text with the same
    parameters, each write is BEGIN IMMEDIATE + upsert ... RETURNING + COMMIT
    with the same pragmas. Reads fetch the row as the store's SELECT gives it
    (JSON columns as UTF-8 bytes); with ``decode`` they also run
    ``orjson.loads`` on its JSON columns. ``best_indexes`` lets "newest
    first" of all use an index made for it.
    """

    def __init__(
        self, label: str = "floor (sqlite3)", synchronous: str = "FULL", decode: bool = False, best_indexes: bool = True
    ) -> None:
        super().__init__(label, decode)
        self.synchronous = synchronous
        self.best_indexes = best_indexes

    def _statements(self, st: RecordingStorage) -> None:
        # The store's own statement text, so the floor runs the same SQL; the
        # bindings below are checked against what the store binds.
        self.sql_upsert = st.statements.upsert_returning
        reads = ours_reads(st, PROBE_ID, PROBE_USER, PROBE_AGENT, PROBE_LIMIT)
        self.sql_read, got = reads["read"]
        _check_binding("read", got, [PROBE_ID, self.READ_LIMIT])
        expected: dict[str, list[Any]] = {
            "user": [PROBE_USER, PROBE_LIMIT],
            "agent": [PROBE_AGENT, PROBE_LIMIT],
            "all": [PROBE_LIMIT],
        }
        self.sql_recent = {}
        for name, binds in expected.items():
            self.sql_recent[name], got = reads[name]
            _check_binding(name, got, binds)

    def open(self, path: str) -> None:
        st = RecordingStorage(table_name=TABLE, db_file=path, mode="agent", synchronous=self.synchronous)
        st.create()
        self._statements(st)
        self.store = st
        conn = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        if self.best_indexes:
            # The recency indexes serve user and agent; "all" gets its own. The
            # store's "all" statement (ORDER BY "agent_sessions"."created_at"
            # DESC, "agent_sessions"."session_id") can use it: EXPLAIN QUERY
            # PLAN gives "SCAN agent_sessions USING INDEX floor_all_recent",
            # with no temporary B-tree (the report lists the plans).
            conn.execute(f'CREATE INDEX IF NOT EXISTS "floor_all_recent" ON "{TABLE}" (created_at DESC, session_id)')
        self.conn = conn

    def convert(self, d: dict[str, Any]) -> Any:
        # Pre-encoded with this project's codec, timestamps filled in: the
        # floor's clock starts at the SQL.
        return encode_row(d)

    def upsert_one(self, item: Any) -> bool:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        got = conn.execute(self.sql_upsert, item).fetchall()
        conn.execute("COMMIT")
        return bool(got)


_ROW_ENCODER: SqliteStorage | None = None


def encode_row(d: dict[str, Any], now: int | None = None) -> list[Any]:
    """A session dict as the store's upsert parameters (JSON encoded, timestamps set)."""
    global _ROW_ENCODER
    if _ROW_ENCODER is None:
        _ROW_ENCODER = SqliteStorage(table_name=TABLE)  # in memory: used only for its encoder
    row = _ROW_ENCODER.row_codec.encode(ours_session(d))
    return _ROW_ENCODER.row_codec.stamp(row, int(time.time()) if now is None else now)
