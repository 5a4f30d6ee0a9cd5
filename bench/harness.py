"""What the SQLite and PostgreSQL workloads share: the contenders' interface.

A contender owns one store (a SQLite file, a PostgreSQL table). ``prepare``
turns the suite's session dicts into whatever it takes, outside any timer;
``upsert`` / ``read`` run a slice of a prepared set and return
``(seconds, errors)`` measured around the store calls only.

bench/contenders.py and bench/pg_contenders.py hold what differs per engine:
how a store is opened and closed, and the floor's SQL.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from agno_storage import AgentSession
from agno_storage.schema import mode_columns

#: Our session fields, taken from the suite's agno-shaped dicts; both stores bind them in this order.
FIELDS = tuple(c.name for c in mode_columns(AgentSession.MODE))
JSON_POSITIONS = (2, 3, 4, 8)  # memory, session_data, extra_data, agent_data


def ours_session(d: dict[str, Any], **over: Any) -> AgentSession:
    """A suite session dict as this project's AgentSession (``updated_at`` left to the store)."""
    fields: dict[str, Any] = {k: d.get(k) for k in FIELDS if k != "updated_at"}
    fields.update(over)
    return AgentSession(**fields)


def agno_session(d: dict[str, Any]) -> Any:
    """A suite session dict as agno 1.8.4's AgentSession (``updated_at`` left to the store)."""
    from agno.storage.session.agent import AgentSession as AgnoAgentSession

    return AgnoAgentSession(**{k: v for k, v in d.items() if k != "updated_at"})


class Contender:
    """One store under test. Subclasses fill in the operations they support.

    ``twin``, when set, is another contender whose store this one opens after
    the writes, to read it a second way.
    """

    label = ""
    kind = ""

    def __init__(self) -> None:
        self.sets: dict[str, list[Any]] = {}
        self.path = ""
        self.twin: Contender | None = None

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


class SessionApi(Contender):
    """A store with agno's session API (upsert, read, get_recent_sessions), opened into ``self.st``."""

    def __init__(self) -> None:
        super().__init__()
        self.st: Any = None

    def release(self) -> None:
        """Free ``self.st``'s connections."""
        self.st.close()

    def close(self) -> None:
        if self.st is not None:
            self.release()
            self.st = None

    def read_one(self, item: Any) -> bool:
        return self.st.read(item.session_id) is not None

    def recent(self, user_id: str | None, agent_id: str | None, limit: int) -> int:
        return len(self.st.get_recent_sessions(user_id=user_id, entity_id=agent_id, limit=limit))


class OursApi(SessionApi):
    """This project's store, on whichever engine the subclass opens."""

    kind = "ours"

    def convert(self, d: dict[str, Any]) -> Any:
        return ours_session(d)

    def upsert_one(self, item: Any) -> bool:
        self.st.upsert(item)
        return True


class AgnoApi(SessionApi):
    """agno 1.8.4's store, on whichever engine the subclass opens."""

    kind = "agno"
    label = "agno 1.8.4"

    def convert(self, d: dict[str, Any]) -> Any:
        return agno_session(d)

    def upsert_one(self, item: Any) -> bool:
        # agno logs and returns None instead of raising.
        return self.st.upsert(item) is not None


class RawFloor(Contender):
    """A plain driver connection (``self.conn``) running SQL on pre-encoded rows.

    Subclasses open the connection, set ``sql_upsert``, ``sql_read`` (one
    session_id parameter) and ``sql_recent`` ("user", "agent", "all"), and
    write ``upsert_one``. With ``decode`` every row read also goes through
    ``orjson.loads`` on its JSON columns. ``store`` is the project's store
    that made the table and the statements; it is closed with the floor.
    """

    kind = "floor"

    def __init__(self, label: str, decode: bool) -> None:
        super().__init__()
        self.label = label
        self.decode = decode
        self.conn: Any = None
        self.store: Any = None
        self.sql_upsert = ""
        self.sql_read = ""
        self.sql_recent: dict[str, str] = {}

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.store is not None:
            self.store.close()
            self.store = None

    def _rows(self, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self.conn.execute(query, params).fetchall()
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
