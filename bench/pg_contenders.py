"""The PostgreSQL contenders, behind bench.harness's batch interface.

Each contender owns one table (``open(name)``) in the ``ai`` schema of one
shared database on one server, so every contender sees the same server
settings.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import psycopg

from agno_storage.backends.postgres import PREPARE_THRESHOLD, PostgresStorage, configure_connection
from bench.harness import AgnoApi, OursApi, RawFloor, ours_session

SCHEMA = "ai"


#: The label of this project's store with ``prepared_statements=True``, and of the floor that prepares too.
OURS_PREPARED = "agno_storage, prepared_statements=True"
FLOOR_PREPARED = "floor + orjson.loads, prepared"
FLOOR_WRITES_PREPARED = "floor (psycopg), prepared"


class PgOurs(OursApi):
    """This project's PostgresStorage at its defaults (``recency_indexes`` may be turned off, and
    ``prepared_statements`` on)."""

    def __init__(
        self, dsn: str, label: str = "agno_storage", *, recency_indexes: bool = True, prepared: bool = False
    ) -> None:
        super().__init__()
        self.label = label
        self.dsn = dsn
        self.recency_indexes = recency_indexes
        self.prepared = prepared

    def open(self, path: str) -> None:
        self.st = PostgresStorage(
            path,
            db_url=self.dsn,
            schema=SCHEMA,
            mode="agent",
            recency_indexes=self.recency_indexes,
            prepared_statements=self.prepared,
        )
        self.st.create()


class PgAgno(AgnoApi):
    """agno 1.8.4's ``agno.storage.postgres.PostgresStorage`` at its defaults, on psycopg 3."""

    def __init__(self, sqlalchemy_url: str) -> None:
        super().__init__()
        self.url = sqlalchemy_url

    def open(self, path: str) -> None:
        from agno.storage.postgres import PostgresStorage as AgnoPostgresStorage

        self.st = AgnoPostgresStorage(table_name=path, schema=SCHEMA, db_url=self.url, mode="agent")
        self.st.create()

    def release(self) -> None:
        self.st.Session.remove()
        self.st.db_engine.dispose()


class PgFloor(RawFloor):
    """Plain psycopg on one connection running the store's own statements on pre-encoded rows.

    The table is made by this project's store (agno's DDL), the statements
    are the store's text (upsert with the owner check and RETURNING, the
    SELECTs its read and get_recent_sessions run). The connection is in
    autocommit with ``prepare_threshold=None``, as the store's are by default
    (``prepared``: psycopg's default threshold, as with the store's
    ``prepared_statements=True``). By default
    each upsert is a single statement (its own implicit transaction); with
    ``explicit_tx`` it is BEGIN + upsert + COMMIT, the store's three round
    trips. ``decode`` runs ``orjson.loads`` on the JSON columns read.
    """

    def __init__(
        self,
        dsn: str,
        label: str = "floor (psycopg)",
        *,
        explicit_tx: bool = False,
        decode: bool = False,
        prepared: bool = False,
    ) -> None:
        super().__init__(label, decode)
        self.dsn = dsn
        self.explicit_tx = explicit_tx
        self.prepared = prepared

    def open(self, path: str) -> None:
        threshold = PREPARE_THRESHOLD if self.prepared else None
        self.conn = psycopg.connect(self.dsn, autocommit=True, prepare_threshold=threshold)
        configure_connection(self.conn)  # JSON arrives as text, as on the store's own connections
        st = PostgresStorage(path, db_url=self.dsn, schema=SCHEMA, mode="agent")
        st.create()
        self.use_statements_of(st)

    def prepare(self, name: str, dicts: Sequence[dict[str, Any]]) -> None:
        # Pre-encoded by the store's codec: the floor's clock starts at the SQL. Needs open() first.
        assert self.store is not None, "open the floor before preparing its rows"
        self.sets[name] = [encode_pg_row(self.store, d) for d in dicts]

    def upsert_one(self, item: Any) -> bool:
        conn = self.conn
        if self.explicit_tx:
            conn.execute("BEGIN")
            got = conn.execute(self.sql_upsert, item).fetchall()
            conn.execute("COMMIT")
        else:
            got = conn.execute(self.sql_upsert, item).fetchall()
        return bool(got)


def encode_pg_row(st: PostgresStorage, d: dict[str, Any], now: int | None = None) -> list[Any]:
    """A session dict as ``st``'s upsert parameters (JSON as text, timestamps set), as the store binds them."""
    row = st.row_codec.encode(ours_session(d))
    return st.row_codec.stamp(row, int(time.time()) if now is None else now)
