"""The SQLite contenders, behind bench.harness's batch interface.

Each contender owns one database file per workload.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from agno_storage import SqliteStorage
from bench.harness import FIELDS, AgnoApi, OursApi, RawFloor, ours_session

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


class Floor(RawFloor):
    """Plain sqlite3 running this project's statements on pre-encoded rows.

    The table is made by this project's store (same DDL and indexes), the
    upsert is the store's own statement text, each write is BEGIN IMMEDIATE +
    upsert ... RETURNING + COMMIT with the same pragmas. Reads fetch the raw
    row; with ``decode`` they also run ``orjson.loads`` on its JSON columns.
    ``best_indexes`` lets "newest first" queries use an index made for them.
    """

    def __init__(
        self, label: str = "floor (sqlite3)", synchronous: str = "FULL", decode: bool = False, best_indexes: bool = True
    ) -> None:
        super().__init__(label, decode)
        self.synchronous = synchronous
        self.best_indexes = best_indexes

    def _statements(self, st: SqliteStorage) -> None:
        # The store's own statement text, so the floor runs the same SQL.
        self.sql_upsert = st._sql_upsert_returning
        cols = ", ".join(f'"{n}"' for n in FIELDS)
        self.sql_read = f'SELECT {cols} FROM "{TABLE}" WHERE "session_id" = ?'  # noqa: S608 - constants
        order = ' ORDER BY "created_at" DESC, "session_id" LIMIT ?'
        self.sql_recent = {
            "user": f'SELECT {cols} FROM "{TABLE}" WHERE "user_id" = ?' + order,  # noqa: S608
            "agent": f'SELECT {cols} FROM "{TABLE}" WHERE "agent_id" = ?' + order,  # noqa: S608
            "all": f'SELECT {cols} FROM "{TABLE}"' + order,  # noqa: S608
        }

    def open(self, path: str) -> None:
        st = SqliteStorage(table_name=TABLE, db_file=path, mode="agent", synchronous=self.synchronous)
        st.create()
        self._statements(st)
        self.store = st
        conn = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        if self.best_indexes:
            # The recency indexes serve user and agent; "all" gets its own.
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
    row = _ROW_ENCODER._encode(ours_session(d))
    now = int(time.time()) if now is None else now
    if row[FIELDS.index("created_at")] is None:
        row[FIELDS.index("created_at")] = now
    row[FIELDS.index("updated_at")] = now
    return row
