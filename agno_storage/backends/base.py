"""The backend boundary: the public API, written once over a few engine primitives.

Every backend subclasses :class:`BaseStorage` and implements the abstract
``_`` methods. Validation, encoding, ownership rules, schema checks and the
agno 1.x method names live here, so they cannot drift between engines.
"""

from __future__ import annotations

import abc
import builtins
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, NoReturn, TypeAlias

import attrs

from agno_storage import codec, schema
from agno_storage.errors import InvalidInputError, OwnershipError, StorageError
from agno_storage.models import BaseSession, Mode, Session
from agno_storage.schema import TableShape

#: Sessions encoded per executemany in upsert_many: bounds memory, not the transaction.
BATCH_SIZE = 500


class BaseStorage(abc.ABC):
    """A sessions table of one mode.

    Thread-safe: one object may be shared by many threads. Every method
    raises a subclass of :class:`~agno_storage.errors.StorageError` on
    failure; none returns ``None`` to mean "something went wrong".
    """

    #: Set by each engine when it renders its statements: its bind placeholder,
    #: the quoted session_id, user_id and entity columns its filters name, and
    #: ``SELECT COUNT(*) FROM <table>``.
    _placeholder: str
    _filter_columns: tuple[str, str, str]
    _sql_count: str

    def __init__(
        self,
        table_name: str,
        mode: Mode | str | None = Mode.AGENT,
        *,
        auto_upgrade_schema: bool = False,
        allow_owner_change: bool = False,
    ) -> None:
        self.table_name = schema.check_table_name(table_name)
        self._mode = schema.parse_mode(mode)
        self.auto_upgrade_schema = auto_upgrade_schema
        self.allow_owner_change = allow_owner_change
        self._shape: TableShape | None = None
        # Rendered SELECTs by filter shape: at most 2 * 3 * 3 * 2 * 2 of them.
        self._select_statements: dict[SelectKey, str] = {}
        self._count_statements: dict[tuple[int, int], str] = {}
        names = [c.name for c in schema.mode_columns(self._mode)]
        self._created_at_pos = names.index("created_at")
        self._updated_at_pos = names.index("updated_at")
        self._user_pos = names.index("user_id")

    # --- engine primitives -------------------------------------------------

    @abc.abstractmethod
    def transaction(self) -> AbstractContextManager[Any]:
        """A write transaction: commits on success, rolls back on any exception.

        Nested use opens a savepoint. Yields the engine's connection.
        """

    @abc.abstractmethod
    def _table_layout(self) -> tuple[list[str], list[str], str] | None:
        """(column names, index names, CREATE TABLE text) of the table, or ``None`` if it does not exist."""

    @abc.abstractmethod
    def _create_table(self) -> None:
        """Create the table and its indexes unless the table exists, atomically."""

    @abc.abstractmethod
    def _apply_migrations(self) -> TableShape | None:
        """Run pending migrations under the engine's write lock; return the new shape."""

    @abc.abstractmethod
    def _write(self, rows: Iterable[list[Any]], *, returning: bool) -> list[tuple[int, int]] | int:
        """Upsert encoded rows in one transaction; see SqliteStorage for the contract."""

    @abc.abstractmethod
    def _build_select(self, by_id: bool, by_user: int, by_entity: int, limited: bool, ids_only: bool) -> str:
        """The SELECT text for one :data:`SelectKey` (see :meth:`_select`).

        Binds, in order: session_id if ``by_id``, user_id and entity_id if
        their filter is EQUALS, the limit if ``limited``. Rows come in mode
        column order (or as 1-tuples of ids), newest first unless ``by_id``.
        """

    def _where(self, by_id: bool, by_user: int, by_entity: int) -> str:
        """The WHERE clause of a select key's filters, '' for none; binds as :meth:`_build_select` says."""
        id_column, user_column, entity_column = self._filter_columns
        mark = self._placeholder
        terms = [f"{id_column} = {mark}"] if by_id else []
        terms += [
            t
            for t in (filter_condition(user_column, by_user, mark), filter_condition(entity_column, by_entity, mark))
            if t
        ]
        return " WHERE " + " AND ".join(terms) if terms else ""

    def _build_count(self, by_user: int, by_entity: int) -> str:
        """The COUNT(*) of the rows ``_build_select(False, by_user, by_entity, ...)`` returns; binds as it does."""
        return self._sql_count + self._where(False, by_user, by_entity)

    @abc.abstractmethod
    def _query(self, statement: str, params: Sequence[Any]) -> builtins.list[tuple[Any, ...]]:
        """Run one read statement and return its rows; inside this thread's transaction, join it."""

    @abc.abstractmethod
    def _vanished(self, exc: StorageError) -> bool:
        """True if ``exc`` says the table was dropped and the call may go on as if it were absent.

        Forgets the table's shape, so the next call looks again. False inside
        a caller's transaction: its work so far stands or falls with it.
        """

    @abc.abstractmethod
    def _delete(self, session_id: str, user_id: str | None) -> bool: ...

    @abc.abstractmethod
    def _drop(self) -> None: ...

    @abc.abstractmethod
    def close(self) -> None:
        """Release every connection this object opened in this process."""

    # --- schema ------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        """The mode of the table this object reads and writes."""
        return self._mode

    def _inspect(self) -> TableShape | None:
        layout = self._table_layout()
        if layout is None:
            return None
        columns, indexes, table_sql = layout
        return schema.inspect_shape(self.table_name, self._mode, columns, indexes, table_sql)

    def _check_on_open(self) -> None:
        """Refuse another mode's table now, before anything is written; upgrade an old one if asked to."""
        shape = self._inspect()
        if shape is None:
            return  # nothing to check, and nothing changed until the first write creates the table
        self._fit_to_write()
        if shape.version < schema.CURRENT_VERSION and self.auto_upgrade_schema:
            self._checked_shape(create=False)

    def _fit_to_write(self) -> None:  # noqa: B027 - a hook; an engine with nothing to defer leaves it empty
        """Called once the table is known to be this mode's, or is about to be created: the store may change the file."""

    def _checked_shape(self, *, create: bool) -> TableShape | None:
        """The table's shape once it is known to be current; ``None`` if absent and not created.

        Raises SchemaMismatchError or SchemaVersionError; auto-upgrades if asked to.
        No lock is held here: creating and migrating are idempotent transactions
        of their own, so two threads racing through it do the same work twice at
        worst, and never wait on each other while holding a connection.
        """
        shape = self._shape
        if shape is not None:
            return shape
        shape = self._inspect()
        if shape is None and not create:
            return None
        self._fit_to_write()
        if shape is None:
            self._create_table()
            shape = self._inspect()
            assert shape is not None
        if shape.version < schema.CURRENT_VERSION and self.auto_upgrade_schema:
            shape = self._apply_migrations()
            assert shape is not None
        schema.require_current(self.table_name, shape)
        self._shape = shape
        return shape

    def _forget_shape(self) -> None:
        """Look at the table again next time (it was dropped, rolled back or closed)."""
        self._shape = None

    def create(self) -> None:
        """Create the table if it does not exist: the engine's layout and indexes, plus the recency indexes.

        The layout is the Go port's on SQLite and agno 1.x's on PostgreSQL;
        ``recency_indexes=False`` leaves the recency indexes out.

        An existing table is left as it is (no indexes added) and checked:
        raises SchemaMismatchError if it belongs to another mode, and
        SchemaVersionError if it is old and auto_upgrade_schema is off.
        """
        self._forget_shape()
        self._checked_shape(create=True)

    def table_exists(self) -> bool:
        return self._table_layout() is not None

    def schema_shape(self) -> TableShape | None:
        """What the table's columns say (mode, version, who made it), or ``None`` if absent."""
        return self._inspect()

    def upgrade_schema(self) -> None:
        """Bring an old table to the current version; a no-op on a current or absent table.

        Each migration runs in one write transaction and is idempotent, so
        several processes may upgrade the same table at once.
        """
        self._forget_shape()
        if self._inspect() is None:
            return
        shape = self._apply_migrations()
        if shape is not None:
            schema.require_current(self.table_name, shape)
        self._shape = shape

    def drop(self) -> None:
        """Drop the table and its indexes if it exists."""
        self._drop()
        self._forget_shape()

    # --- writes ------------------------------------------------------------

    def upsert(self, session: Session) -> Session:
        """Insert or update one session; return it as stored (timestamps filled in).

        created_at is the session's own value or now on insert and is kept on
        update; updated_at is now. Raises OwnershipError if the session_id
        belongs to another non-empty user (unless allow_owner_change),
        InvalidInputError for data that cannot be stored; nothing is written
        then.
        """
        row = self._encode(session)
        self._checked_shape(create=True)
        stamps = self._write([row], returning=True)
        assert isinstance(stamps, list)
        created_at, updated_at = stamps[0]
        return _with_stamps(session, created_at, updated_at)

    def upsert_many(self, sessions: Iterable[Session]) -> int:
        """Upsert many sessions in one transaction; return how many were written.

        All or nothing: any error rolls every row back. ``sessions`` may be a
        generator; it is encoded and written in batches, so memory does not
        grow with its length.
        """
        try:
            iterator = iter(sessions)
        except TypeError:
            raise InvalidInputError(
                f"upsert_many needs an iterable of sessions, got {type(sessions).__name__}", table=self.table_name
            ) from None
        if isinstance(sessions, BaseSession):
            raise InvalidInputError(
                "upsert_many needs an iterable of sessions; use upsert for one", table=self.table_name
            )
        self._checked_shape(create=True)
        written = self._write((self._encode(s) for s in iterator), returning=False)
        assert isinstance(written, int)
        return written

    def _stamp(self, row: list[Any], now: int) -> list[Any]:
        """Fill in an encoded row's timestamps: created_at if unset, updated_at always."""
        if row[self._created_at_pos] is None:
            row[self._created_at_pos] = now
        row[self._updated_at_pos] = now
        return row

    def _raise_refused(self, params_list: Iterable[list[Any]], upsert_one: Callable[[list[Any]], bool]) -> NoReturn:
        """Name the row of a short-written batch that the owner check refused.

        Replays the rows one at a time with ``upsert_one`` (True if written)
        inside the caller's transaction, which the raised error rolls back.
        """
        for params in params_list:
            if not upsert_one(params):
                raise self._ownership_error(params)
        raise StorageError("a batch wrote fewer rows than it held", table=self.table_name)

    def _ownership_error(self, params: list[Any]) -> OwnershipError:
        sid = params[0]
        user = params[self._user_pos] or None
        return OwnershipError(
            f"session {sid!r} in table {self.table_name!r} belongs to another user; "
            f"refusing to write it as user {user!r} (allow_owner_change=True permits this)",
            table=self.table_name,
            session_id=sid,
            user_id=user,
        )

    def _encode(self, session: Session) -> list[Any]:
        checked = codec.check_session(session, self._mode, self.table_name)
        return codec.encode_session(checked, schema.mode_columns(self._mode), self.table_name)

    # --- reads -------------------------------------------------------------

    def read(self, session_id: str, user_id: str | None = None) -> Session | None:
        """The session with ``session_id``, or ``None``.

        With ``user_id``, a session owned by anyone else is ``None`` too.
        """
        _check_id(session_id, "session_id", self.table_name)
        _check_user(user_id, self.table_name)
        if self._checked_shape(create=False) is None:
            return None
        rows = self._select(session_id=session_id, user_id=user_id, entity_id=None, limit=1, ids_only=False)
        return self._decode(rows[0]) if rows else None

    def list(
        self, user_id: str | None = None, entity_id: str | None = None, limit: int | None = None
    ) -> builtins.list[Session]:
        """Sessions newest first (created_at DESC, then session_id), optionally filtered."""
        _check_limit(limit)
        _check_user(user_id, self.table_name)
        _check_user(entity_id, self.table_name, "entity_id")
        if self._checked_shape(create=False) is None:
            return []
        rows = self._select(session_id=None, user_id=user_id, entity_id=entity_id, limit=limit, ids_only=False)
        return [self._decode(r) for r in rows]

    def _select(
        self,
        *,
        session_id: str | None,
        user_id: str | None,
        entity_id: str | None,
        limit: int | None,
        ids_only: bool,
    ) -> builtins.list[tuple[Any, ...]]:
        """Rows in mode column order (or 1-tuples of ids), newest first.

        The statement is built once per filter shape and kept: this runs on
        every read, so it stays a tuple, a dict lookup and the engine call.
        A table dropped since it was checked reads as empty.
        """
        # '' asks for "nobody", which agno spells NULL and the Go port ''.
        key = (session_id is not None, filter_kind(user_id), filter_kind(entity_id), limit is not None, ids_only)
        statement = self._select_statements.get(key)
        if statement is None:
            statement = self._select_statements[key] = self._build_select(*key)
        # Only EQUALS filters bind a value: None is ANY and '' is NOBODY.
        params: list[Any] = list(filter(None, (session_id, user_id, entity_id)))
        if limit is not None:
            params.append(limit)
        return self._rows(statement, params)

    def _rows(self, statement: str, params: Sequence[Any]) -> builtins.list[tuple[Any, ...]]:
        """``_query``, with a table dropped since it was checked reading as empty."""
        try:
            return self._query(statement, params)
        except StorageError as exc:
            if not self._vanished(exc):
                raise
            return []

    def count(self, user_id: str | None = None, entity_id: str | None = None) -> int:
        """How many sessions ``list(user_id, entity_id)`` returns, counted by the engine; 0 without a table."""
        _check_user(user_id, self.table_name)
        _check_user(entity_id, self.table_name, "entity_id")
        if self._checked_shape(create=False) is None:
            return 0
        key = (filter_kind(user_id), filter_kind(entity_id))
        statement = self._count_statements.get(key)
        if statement is None:
            statement = self._count_statements[key] = self._build_count(*key)
        rows = self._rows(statement, list(filter(None, (user_id, entity_id))))
        return int(rows[0][0]) if rows else 0

    def _decode(self, row: Sequence[Any]) -> Session:
        return codec.decode_row(row, self._mode, self.table_name)

    def delete(self, session_id: str, user_id: str | None = None) -> bool:
        """Delete a session; with ``user_id``, only if that user owns it. True if a row went."""
        _check_id(session_id, "session_id", self.table_name)
        _check_user(user_id, self.table_name)
        if self._checked_shape(create=False) is None:
            return False
        return self._delete(session_id, user_id)

    # --- agno 1.x names ----------------------------------------------------

    def get_all_session_ids(self, user_id: str | None = None, entity_id: str | None = None) -> builtins.list[str]:
        """Session ids newest first, optionally filtered by user and entity."""
        _check_user(user_id, self.table_name)
        _check_user(entity_id, self.table_name, "entity_id")
        if self._checked_shape(create=False) is None:
            return []
        rows = self._select(session_id=None, user_id=user_id, entity_id=entity_id, limit=None, ids_only=True)
        return [r[0] for r in rows]

    def get_all_sessions(self, user_id: str | None = None, entity_id: str | None = None) -> builtins.list[Session]:
        return self.list(user_id=user_id, entity_id=entity_id)

    def get_recent_sessions(
        self, user_id: str | None = None, entity_id: str | None = None, limit: int | None = 2
    ) -> builtins.list[Session]:
        """The ``limit`` newest sessions (all of them if ``limit`` is None)."""
        return self.list(user_id=user_id, entity_id=entity_id, limit=limit)

    def delete_session(self, session_id: str | None = None) -> bool:
        """Delete a session by id, whoever owns it. True if a row went."""
        if session_id is None:
            raise InvalidInputError("delete_session needs a session_id", table=self.table_name)
        return self.delete(session_id)

    # --- lifetime ----------------------------------------------------------

    def __enter__(self) -> BaseStorage:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(table_name={self.table_name!r}, mode={self._mode.value!r})"


#: How a user_id / entity_id argument filters rows.
ANY, EQUALS, NOBODY = 0, 1, 2

#: What a SELECT filters on: (by session_id, user_id filter kind, entity_id filter kind, limited, ids only).
SelectKey: TypeAlias = tuple[bool, int, int, bool, bool]


def filter_kind(value: str | None) -> int:
    """Not at all (None), by value, or "nobody" for '' (which agno spells NULL and Go '')."""
    if value is None:
        return ANY
    return NOBODY if value == "" else EQUALS


def filter_condition(column: str, how: int, placeholder: str) -> str:
    """The WHERE term of ``filter_kind`` ``how`` on a quoted ``column``; '' for ANY."""
    if how == EQUALS:
        return f"{column} = {placeholder}"
    if how == NOBODY:
        return f"({column} IS NULL OR {column} = '')"
    return ""


def _with_stamps(session: Session, created_at: int, updated_at: int) -> Session:
    return attrs.evolve(session, created_at=created_at, updated_at=updated_at)


def _check_id(value: object, name: str, table: str) -> None:
    if not isinstance(value, str) or not value or not codec.is_utf8(value):
        raise InvalidInputError(
            f"{name} must be a non-empty str of valid Unicode, got {value!r}", table=table, column=name
        )


def _check_user(value: object, table: str, name: str = "user_id") -> None:
    if value is not None and (not isinstance(value, str) or not codec.is_utf8(value)):
        raise InvalidInputError(
            f"{name} must be a str of valid Unicode or None, got {value!r}", table=table, column=name
        )


def _check_limit(limit: object) -> None:
    if limit is not None and (type(limit) is not int or not 0 <= limit <= 2**63 - 1):
        raise InvalidInputError(f"limit must be a non-negative 64-bit int or None, got {limit!r}")


__all__ = ["BATCH_SIZE", "BaseStorage", "SelectKey", "StorageError", "filter_condition", "filter_kind"]
