"""agno 1.x's separate user-memory table (``memory_db``) as agno 3.1.10 ``agno_memories`` rows.

agno 1.x's Memory v2 (``agno.memory.v2.db``: ``SqliteMemoryDb``,
``PostgresMemoryDb``) and the older ``agno.memory.db`` keep user memories in
a table of their own, outside the sessions tables, with the same columns:
``id``, ``user_id``, ``memory``, ``created_at``, ``updated_at``. On SQLite
``memory`` is the Python ``str()`` of a dict (agno reads it back with
``eval``); on PostgreSQL it is JSONB. This module reads such a table (read
only) and maps each row; docs/agno3.md "Memory" has the field list.
"""

from __future__ import annotations

import ast
import json
import math
import sqlite3
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from agno_storage import urls
from agno_storage.agno3.records import Agno3Memory
from agno_storage.agno3.runs import make_id
from agno_storage.errors import StorageError
from agno_storage.schema import quote

#: The table name agno 1.x's ``SqliteMemoryDb`` uses when none is given.
DEFAULT_MEMORY_TABLE = "memory"
#: The columns that make a table agno 1.x's memory table.
MEMORY_COLUMNS = frozenset({"id", "user_id", "memory", "created_at", "updated_at"})
#: The keys of a 1.x memory dict (``UserMemory.to_dict()``, v1 ``Memory``) that map to agno 3 columns.
_MAPPED_KEYS = frozenset({"memory", "memory_id", "topics", "input", "feedback", "last_updated", "updated_at"})
_SELECT = "SELECT id, user_id, memory, created_at, updated_at FROM {table} ORDER BY created_at, id"


@attrs.frozen
class MemoryTableRow:
    """One row of a 1.x memory table, as stored (``memory``: text on SQLite, an object on PostgreSQL)."""

    id: Any
    user_id: str | None
    memory: Any
    created_at: Any
    updated_at: Any


def _epoch(value: Any) -> int | None:
    """A stored timestamp as epoch seconds: SQLite's UTC text, PostgreSQL's timestamptz, a 1.x ISO string."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str) and value:
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        try:
            return int(value.timestamp())
        except (OverflowError, OSError, ValueError):
            return None
    return None


def local_epoch(value: Any) -> int | None:
    """``last_updated`` of a 1.x memory dict: ``datetime.now().isoformat()``, the writer's local time."""
    if isinstance(value, str) and value:
        try:
            return int(datetime.fromisoformat(value).timestamp())
        except (ValueError, OverflowError, OSError):
            return None
    return None


def parse_memory(value: Any) -> Any:
    """The stored ``memory`` value as a Python object: JSON, or the ``str()`` of a dict (never ``eval``)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        pass
    try:
        return ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):  # TypeError: "{[1]: 2}"
        return value


def memory_copy_id(user_id: str | None, text: str) -> str:
    """The agno 3 id of a user memory a 1.x session row holds without an id (AgentMemory's list).

    Made of the user and the text: the copies of one memory that each of a
    user's sessions holds are one row, and a memory-table row with the same
    user and text (the memory they were copied from) replaces them.
    """
    return make_id("memory", user_id or "", text)


def map_memory_row(row: MemoryTableRow) -> tuple[Agno3Memory, str | None]:
    """One memory-table row as an agno 3 memory, and a problem to report (or None).

    A ``memory`` that is not a dict with a text ``memory`` is kept whole as
    the memory's text (its stored form), and reported. Keys agno 3 has no
    column for are reported by name; agno 3's memories table has no place
    to keep them. A row with no ``id`` gets the id a session's copy of the
    same user's memory gets (a uuid5 of user and text), and is reported; an
    ``id`` that is not text is its text.
    """
    data = parse_memory(row.memory)
    problem: str | None = None
    if not isinstance(data, Mapping) or not isinstance(data.get("memory"), str):
        text = row.memory if isinstance(row.memory, str) else json.dumps(row.memory, default=str)
        data = {"memory": text}
        problem = f"memory table row {row.id!r}: memory is not a 1.x memory object; its stored text is the memory"
    extra = sorted(str(k) for k in data if k not in _MAPPED_KEYS)
    if extra and problem is None:
        problem = f"memory table row {row.id!r}: no agno 3 column for {', '.join(extra)}"
    created = _epoch(row.created_at)
    updated = _epoch(row.updated_at)
    if updated is None:
        updated = local_epoch(data.get("last_updated"))
    if created is None:
        created = updated if updated is not None else 0
    topics = data.get("topics")
    memory_id = str(row.id) if row.id is not None and row.id != "" else None
    if memory_id is None:
        memory_id = memory_copy_id(row.user_id, data["memory"])
        problem = f"memory table row with no id (user {row.user_id!r}): written as memory {memory_id!r}" + (
            f"; {problem}" if problem is not None else ""
        )
    memory = Agno3Memory(
        memory_id=memory_id,
        memory=data["memory"],
        input=data.get("input") if isinstance(data.get("input"), str) else None,
        agent_id=None,
        team_id=None,
        user_id=row.user_id or None,
        topics=topics if isinstance(topics, list) else None,
        feedback=data.get("feedback") if isinstance(data.get("feedback"), str) else None,
        created_at=created,
        updated_at=updated if updated is not None else created,
    )
    return memory, problem


class MemoryTable:
    """A 1.x memory table in the source database, read only; ``present`` says whether it is there."""

    def __init__(self, target: urls.Target, table: str, schema: str | None) -> None:
        """Open the source read-only and look for the table.

        Raises the driver's own error (connecting, reading the catalog), the
        connection closed: the caller names the database.
        """
        self._table = table
        self._pg: Any = None
        self._sqlite: sqlite3.Connection | None = None
        try:
            self.present = self._open(target, table, schema)
        except BaseException:
            self.close()
            raise

    def _open(self, target: urls.Target, table: str, schema: str | None) -> bool:
        if isinstance(target, urls.SqliteTarget):
            uri = Path(str(target.path)).expanduser().resolve().as_uri() + "?mode=ro"
            self._sqlite = sqlite3.connect(uri, uri=True, timeout=5.0 if target.timeout is None else target.timeout)
            names = {r[1] for r in self._sqlite.execute(f"PRAGMA table_info({quote(table)})")}
            self._from = quote(table)
        else:
            self._conninfo = target.conninfo
            self._pg = self._connect()
            sql = "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND table_schema = "
            sql += "%s" if schema else "current_schema()"
            names = {r[0] for r in self._pg.execute(sql, (table, schema) if schema else (table,))}
            # The rows are read after every batch, on a connection of their own: one left open until then would
            # idle past a server's idle_session_timeout (or idle_in_transaction_session_timeout), which ends it.
            self.close()
            self._from = f"{quote(schema)}.{quote(table)}" if schema else quote(table)
        return MEMORY_COLUMNS <= names

    def rows(self) -> Iterator[MemoryTableRow]:
        """Every row, oldest first; a driver's error while reading them is a typed one naming the table."""
        if not self.present:
            return
        sql = _SELECT.format(table=self._from)
        rows: Iterator[tuple[Any, ...]]
        try:
            if self._sqlite is not None:
                rows = self._sqlite.execute(sql)
            else:
                self._pg = self._connect()
                rows = self._pg.cursor(name="agno3_memory_table")  # server-side: flat memory
                rows.execute(sql)  # type: ignore[attr-defined]
            for row in rows:
                yield MemoryTableRow(*row)
        except (StorageError, GeneratorExit):
            raise
        except Exception as exc:  # the driver's (a view that fails on a row, say), or the file system's
            from agno_storage.agno3.writer import driver_error

            # SQLite's connection is read-only: a write that fails is of the file it sorts an unindexed table in.
            raise driver_error(
                exc, f"reading the memory table {self._from}", table=self._table, read_only=self._sqlite is not None
            ) from exc

    def _connect(self) -> Any:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - the postgres extra
            raise StorageError(
                f"PostgreSQL needs psycopg: pip install 'agno-session-storage[postgres]' ({exc})"
            ) from exc
        conn = psycopg.connect(self._conninfo, autocommit=False, prepare_threshold=None)
        conn.read_only = True  # every transaction: BEGIN READ ONLY
        return conn

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            self._pg.close()
            self._pg = None


__all__ = [
    "DEFAULT_MEMORY_TABLE",
    "MemoryTable",
    "MemoryTableRow",
    "local_epoch",
    "map_memory_row",
    "memory_copy_id",
    "parse_memory",
]
