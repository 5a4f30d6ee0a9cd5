"""The stores being compared, behind one small batch interface.

Each contender owns one database file per workload. ``prepare`` turns the
suite's session dicts into whatever the contender takes (outside any timer);
``upsert`` / ``read`` run a slice of a prepared set and return
``(seconds, errors)`` measured around the store calls only.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from agno_storage import AgentSession, SqliteStorage
from agno_storage.schema import mode_columns

TABLE = "agent_sessions"
#: Our session fields, taken from the suite's agno-shaped dicts.
FIELDS = tuple(c.name for c in mode_columns(AgentSession.MODE))
JSON_POSITIONS = (2, 3, 4, 8)  # memory, session_data, extra_data, agent_data


def ours_session(d: dict[str, Any], **over: Any) -> AgentSession:
    fields = {k: d.get(k) for k in FIELDS if k != "updated_at"}
    fields.update(over)
    return AgentSession(**fields)


class Contender:
    """One store under test. Subclasses fill in the operations they support."""

    label = ""
    kind = ""

    def __init__(self) -> None:
        self.sets: dict[str, list[Any]] = {}
        self.path = ""

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

    def _loop(self, fn: Callable[[Any], bool], items: Sequence[Any]) -> tuple[float, int]:
        errors = 0
        start = time.perf_counter()
        for item in items:
            if not fn(item):
                errors += 1
        return time.perf_counter() - start, errors

    def upsert(self, name: str, start: int, count: int) -> tuple[float, int]:
        return self._loop(self.upsert_one, self.sets[name][start : start + count])

    def read(self, name: str, start: int, count: int) -> tuple[float, int]:
        return self._loop(self.read_one, self.sets[name][start : start + count])


class Ours(Contender):
    """This project's SqliteStorage."""

    kind = "ours"

    def __init__(self, label: str = "agno_storage", synchronous: str = "FULL", recency_indexes: bool = True) -> None:
        super().__init__()
        self.label = label
        self.synchronous = synchronous
        self.recency_indexes = recency_indexes
        self.st: SqliteStorage | None = None

    def open(self, path: str) -> None:
        self.st = SqliteStorage(
            table_name=TABLE,
            db_file=path,
            mode="agent",
            synchronous=self.synchronous,
            recency_indexes=self.recency_indexes,
        )
        self.st.create()

    def close(self) -> None:
        if self.st is not None:
            self.st.close()
            self.st = None

    def convert(self, d: dict[str, Any]) -> Any:
        return ours_session(d)

    def upsert_one(self, item: Any) -> bool:
        assert self.st is not None
        self.st.upsert(item)
        return True

    def read_one(self, item: Any) -> bool:
        assert self.st is not None
        return self.st.read(item.session_id) is not None

    def recent(self, user_id: str | None, agent_id: str | None, limit: int) -> int:
        assert self.st is not None
        return len(self.st.get_recent_sessions(user_id=user_id, entity_id=agent_id, limit=limit))


class Agno(Contender):
    """Python agno 1.8.4's ``agno.storage.sqlite.SqliteStorage`` at its defaults."""

    kind = "agno"
    label = "agno 1.8.4"

    def __init__(self) -> None:
        super().__init__()
        self.st: Any = None

    def open(self, path: str) -> None:
        from agno.storage.sqlite import SqliteStorage as AgnoSqliteStorage

        self.st = AgnoSqliteStorage(table_name=TABLE, db_file=path, mode="agent")
        self.st.create()

    def close(self) -> None:
        if self.st is not None:
            self.st.db_engine.dispose()
            self.st = None

    def convert(self, d: dict[str, Any]) -> Any:
        from agno.storage.session.agent import AgentSession as AgnoAgentSession

        return AgnoAgentSession(**{k: v for k, v in d.items() if k != "updated_at"})

    def upsert_one(self, item: Any) -> bool:
        # agno logs and returns None instead of raising.
        return self.st.upsert(item) is not None

    def read_one(self, item: Any) -> bool:
        return self.st.read(item.session_id) is not None

    def recent(self, user_id: str | None, agent_id: str | None, limit: int) -> int:
        return len(self.st.get_recent_sessions(user_id=user_id, entity_id=agent_id, limit=limit))

    def pragmas(self) -> dict[str, Any]:
        with self.st.db_engine.connect() as conn:
            return {
                "journal_mode": conn.exec_driver_sql("PRAGMA journal_mode").scalar(),
                "synchronous": conn.exec_driver_sql("PRAGMA synchronous").scalar(),
            }


class Floor(Contender):
    """Plain sqlite3 running this project's statements on pre-encoded rows.

    The table is made by this project's store (same DDL and indexes), the
    upsert is the store's own statement text, each write is BEGIN IMMEDIATE +
    upsert ... RETURNING + COMMIT with the same pragmas. Reads fetch the raw
    row; with ``decode`` they also run ``orjson.loads`` on its JSON columns.
    ``best_indexes`` lets "newest first" queries use an index made for them.
    """

    kind = "floor"

    def __init__(
        self, label: str = "floor (sqlite3)", synchronous: str = "FULL", decode: bool = False, best_indexes: bool = True
    ) -> None:
        super().__init__()
        self.label = label
        self.synchronous = synchronous
        self.decode = decode
        self.best_indexes = best_indexes
        self.conn: sqlite3.Connection | None = None
        self.sql_upsert = ""
        self.sql_read = ""
        self.sql_recent: dict[str, str] = {}
        self._encoder: SqliteStorage | None = None

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
        self._encoder = st
        conn = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        if self.best_indexes:
            # The recency indexes serve user and agent; "all" gets its own.
            conn.execute(f'CREATE INDEX IF NOT EXISTS "floor_all_recent" ON "{TABLE}" (created_at DESC, session_id)')
        self.conn = conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self._encoder is not None:
            self._encoder.close()

    def convert(self, d: dict[str, Any]) -> Any:
        # Pre-encoded with this project's codec, timestamps filled in: the
        # floor's clock starts at the SQL.
        return encode_row(d)

    def upsert_one(self, item: Any) -> bool:
        conn = self.conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        got = conn.execute(self.sql_upsert, item).fetchall()
        conn.execute("COMMIT")
        return bool(got)

    def read_one(self, item: Any) -> bool:
        assert self.conn is not None
        rows = self.conn.execute(self.sql_read, (item[0],)).fetchall()
        if self.decode:
            for row in rows:
                for i in JSON_POSITIONS:
                    orjson.loads(row[i])
        return bool(rows)

    def recent(self, user_id: str | None, agent_id: str | None, limit: int) -> int:
        assert self.conn is not None
        if user_id is not None:
            rows = self.conn.execute(self.sql_recent["user"], (user_id, limit)).fetchall()
        elif agent_id is not None:
            rows = self.conn.execute(self.sql_recent["agent"], (agent_id, limit)).fetchall()
        else:
            rows = self.conn.execute(self.sql_recent["all"], (limit,)).fetchall()
        if self.decode:
            for row in rows:
                for i in JSON_POSITIONS:
                    orjson.loads(row[i])
        return len(rows)


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
