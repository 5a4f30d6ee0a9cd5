"""The PostgreSQL contenders, behind bench.contenders' batch interface.

Each contender owns one table (``open(name)``) in the ``ai`` schema of one
shared database on one server, so every contender sees the same server
settings. ``prepare`` converts the suite's session dicts outside any timer.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson
import psycopg

from agno_storage.backends.postgres import PostgresStorage
from bench.contenders import JSON_POSITIONS, Contender, ours_session

SCHEMA = "ai"
ORDER = ' ORDER BY "created_at" DESC NULLS LAST, "session_id" COLLATE "C" LIMIT %s'


class PgOurs(Contender):
    """This project's PostgresStorage at its defaults."""

    kind = "ours"

    def __init__(self, dsn: str, label: str = "agno_storage") -> None:
        super().__init__()
        self.label = label
        self.dsn = dsn
        self.st: PostgresStorage | None = None

    def open(self, path: str) -> None:
        self.path = path
        self.st = PostgresStorage(path, db_url=self.dsn, schema=SCHEMA, mode="agent")
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


class PgAgno(Contender):
    """agno 1.8.4's ``agno.storage.postgres.PostgresStorage`` at its defaults, on psycopg 3."""

    kind = "agno"
    label = "agno 1.8.4"

    def __init__(self, sqlalchemy_url: str) -> None:
        super().__init__()
        self.url = sqlalchemy_url
        self.st: Any = None

    def open(self, path: str) -> None:
        from agno.storage.postgres import PostgresStorage as AgnoPostgresStorage

        self.path = path
        self.st = AgnoPostgresStorage(table_name=path, schema=SCHEMA, db_url=self.url, mode="agent")
        self.st.create()

    def close(self) -> None:
        if self.st is not None:
            self.st.Session.remove()
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


class PgFloor(Contender):
    """Plain psycopg on one connection running the store's own statements on pre-encoded rows.

    The table is made by this project's store (agno's DDL), the statements
    are the store's text (upsert with the owner check and RETURNING, select
    with ``::text`` JSON columns), composed once. The connection is in
    autocommit with ``prepare_threshold=None``, as the store's are. By default
    each upsert is a single statement (its own implicit transaction); with
    ``explicit_tx`` it is BEGIN + upsert + COMMIT, the store's three round
    trips. ``decode`` runs ``orjson.loads`` on the JSON columns read.
    """

    kind = "floor"

    def __init__(
        self, dsn: str, label: str = "floor (psycopg)", *, explicit_tx: bool = False, decode: bool = False
    ) -> None:
        super().__init__()
        self.label = label
        self.dsn = dsn
        self.explicit_tx = explicit_tx
        self.decode = decode
        self.conn: psycopg.Connection[Any] | None = None
        self.sql_upsert = ""
        self.sql_read = ""
        self.sql_recent: dict[str, str] = {}
        self._st: PostgresStorage | None = None

    def statements(self, table: str, conn: psycopg.Connection[Any]) -> None:
        st = PostgresStorage(table, db_url=self.dsn, schema=SCHEMA, mode="agent")
        st.create()
        self._st = st
        self.sql_upsert = st._sql_upsert_returning
        select = st._sql_select
        self.sql_read = select + ' WHERE "session_id" = %s'
        self.sql_recent = {
            "user": select + ' WHERE "user_id" = %s' + ORDER,
            "agent": select + ' WHERE "agent_id" = %s' + ORDER,
            "all": select + ORDER,
        }

    def open(self, path: str) -> None:
        self.path = path
        self.conn = psycopg.connect(self.dsn, autocommit=True, prepare_threshold=None)
        # JSON arrives as text, as the store's connections get it.
        from agno_storage.backends.postgres import _configure

        _configure(self.conn)
        self.statements(path, self.conn)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self._st is not None:
            self._st.close()
            self._st = None

    def prepare(self, name: str, dicts: Sequence[dict[str, Any]]) -> None:
        # Pre-encoded by the store's codec: the floor's clock starts at the SQL. Needs open() first.
        assert self._st is not None, "open the floor before preparing its rows"
        self.sets[name] = [encode_pg_row(self._st, d) for d in dicts]

    def upsert_one(self, item: Any) -> bool:
        conn = self.conn
        assert conn is not None
        if self.explicit_tx:
            conn.execute("BEGIN")
            got = conn.execute(self.sql_upsert, item).fetchall()
            conn.execute("COMMIT")
        else:
            got = conn.execute(self.sql_upsert, item).fetchall()
        return bool(got)

    def _rows(self, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        assert self.conn is not None
        rows = self.conn.execute(query, params).fetchall()
        if self.decode:
            for row in rows:
                for i in JSON_POSITIONS:
                    orjson.loads(row[i])
        return rows

    def read_one(self, item: Any) -> bool:
        return bool(self._rows(self.sql_read, (item[0],)))

    def recent(self, user_id: str | None, agent_id: str | None, limit: int) -> int:
        if user_id is not None:
            return len(self._rows(self.sql_recent["user"], (user_id, limit)))
        if agent_id is not None:
            return len(self._rows(self.sql_recent["agent"], (agent_id, limit)))
        return len(self._rows(self.sql_recent["all"], (limit,)))


def encode_pg_row(st: PostgresStorage, d: dict[str, Any], now: int | None = None) -> list[Any]:
    """A session dict as ``st``'s upsert parameters (JSON as text, timestamps set), as the store binds them."""
    row = st._encode(ours_session(d))
    return st._stamp(row, int(time.time()) if now is None else now)
