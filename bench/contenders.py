"""The SQLite contenders, behind bench.harness's batch interface.

Each contender owns one database file per workload.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from agno_storage import SqliteStorage
from bench.harness import AgnoApi, OursApi, RawFloor, ours_session

TABLE = "agent_sessions"


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


#: The label of agno 1.8.4 with its file switched to WAL (see ``Agno``).
AGNO_WAL = "agno 1.8.4 with WAL"


class Agno(AgnoApi):
    """Python agno 1.8.4's ``agno.storage.sqlite.SqliteStorage``, at its defaults unless ``wal``.

    With ``wal`` (label AGNO_WAL) agno opens the file as at its defaults and
    its own engine gets a connect hook that sets ``journal_mode=WAL`` and
    ``synchronous`` (FULL, the store's default) on every new connection; the
    pool is emptied first so that no connection escapes the hook. The same
    library at the store's durability settings: the journal mode and the
    library are priced apart. (agno 1.8.4 cannot be handed an engine: its
    ``SqliteStorage(db_engine=...)`` falls through to an in-memory database.)
    """

    def __init__(self, wal: bool = False, synchronous: str = "FULL") -> None:
        super().__init__()
        self.wal = wal
        self.synchronous = synchronous
        if wal:
            self.label = AGNO_WAL

    def open(self, path: str) -> None:
        from agno.storage.sqlite import SqliteStorage as AgnoSqliteStorage

        self.st = AgnoSqliteStorage(table_name=TABLE, db_file=path, mode="agent")
        if self.wal:
            use_wal(self.st.db_engine, self.synchronous)
        self.st.create()

    def release(self) -> None:
        self.st.db_engine.dispose()

    def pragmas(self) -> dict[str, Any]:
        with self.st.db_engine.connect() as conn:
            return {
                "journal_mode": conn.exec_driver_sql("PRAGMA journal_mode").scalar(),
                "synchronous": conn.exec_driver_sql("PRAGMA synchronous").scalar(),
            }


def use_wal(engine: Any, synchronous: str) -> None:
    """Make every new connection of SQLAlchemy ``engine`` set WAL and ``synchronous``; drop pooled ones."""
    from sqlalchemy import event

    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError(f"synchronous must be FULL or NORMAL, got {synchronous!r}")

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute(f"PRAGMA synchronous = {synchronous}")  # one of two constants, checked above
        cur.close()

    event.listen(engine, "connect", on_connect)
    engine.dispose()  # a connection made before the hook (agno's inspector) is not reused


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

    def open(self, path: str) -> None:
        st = SqliteStorage(table_name=TABLE, db_file=path, mode="agent", synchronous=self.synchronous)
        st.create()
        self.use_statements_of(st)
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
