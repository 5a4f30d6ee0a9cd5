"""The core of every store: the engine contract, schema checks, reads and writes, written once.

Every engine subclasses :class:`~agno_storage.backends.base.BaseStorage`
(which adds the features over this core) and provides what the "engine
contract" section below declares: its :class:`Statements`, its
transactions, how it reads its table's layout, creates and migrates it, and
runs reads and writes. Validation, encoding, ownership rules and schema
checks live here, so they cannot drift between engines. Nothing here
imports a feature module (conversations, search, usage, the change feed).
"""

from __future__ import annotations

import abc
import builtins
import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar, TypeAlias, TypeVar

from agno_storage import codec, schema
from agno_storage.backends.batches import Batches, IterableError
from agno_storage.backends.statements import FULL, IDS, SUMMARY, SelectKey, Statements, filter_kind
from agno_storage.errors import InvalidInputError, OwnershipError, RowsKeptError, StorageError, TableNotFoundError
from agno_storage.models import BaseSession, Mode, Session, SessionSummary
from agno_storage.modes import ModeSpec, parse_mode, spec
from agno_storage.schema import TableShape

T = TypeVar("T")

#: Called with every statement a store runs on its own behalf and its parameters
#: (for a batch, the list of parameter rows); see ``BaseStorage``'s ``tracer``.
Tracer: TypeAlias = Callable[[str, Sequence[Any] | None], None]


class StoreCore(abc.ABC):
    """A sessions table of one mode, without the features: see :class:`~agno_storage.backends.base.BaseStorage`."""

    #: The engine. What it is said of it (``schema.CASE_BLIND_NAMES``, ``schema.HOLDS_NUL``,
    #: ``schema.OLD_WORKFLOW_V2``) is said there, once; ``HOLDS_NUL`` is copied here for the read path.
    ENGINE: ClassVar[schema.Engine]
    #: ``schema.HOLDS_NUL`` of :attr:`ENGINE`, set for each subclass that names its engine.
    HOLDS_NUL: ClassVar[bool]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        engine = getattr(cls, "ENGINE", None)
        if engine is not None:
            cls.HOLDS_NUL = schema.HOLDS_NUL[engine]

    def _unmatchable(self, *values: str | None) -> bool:
        """Whether one of ``values`` (filters) can be in no row of this engine (see :attr:`HOLDS_NUL`)."""
        return not self.HOLDS_NUL and any(v and "\x00" in v for v in values)

    def __init__(
        self,
        table_name: str,
        mode: Mode | str | None = Mode.AGENT,
        *,
        auto_upgrade_schema: bool = False,
        allow_owner_change: bool = False,
        claim_unowned: bool = True,
        empty_text_is_null: bool = False,
        read_non_finite: bool = False,
        tracer: Tracer | None = None,
    ) -> None:
        self.table_name = schema.check_table_name(table_name, engine=self.ENGINE)
        self.spec: ModeSpec = spec(parse_mode(mode))
        self.auto_upgrade_schema = check_bool("auto_upgrade_schema", auto_upgrade_schema)
        self.allow_owner_change = check_bool("allow_owner_change", allow_owner_change)
        #: Whether a write with an owner may take a session that has none (False: OwnershipError instead).
        self.claim_unowned = check_bool("claim_unowned", claim_unowned)
        if tracer is not None and not callable(tracer):
            raise InvalidInputError(f"tracer must be a callable or None, got {tracer!r}")
        self.tracer: Tracer | None = tracer
        #: How this store turns sessions into rows and back (for tools that write rows themselves).
        self.row_codec = codec.RowCodec(
            self.spec,
            self.table_name,
            empty_text_is_null=empty_text_is_null,
            read_non_finite=check_bool("read_non_finite", read_non_finite),
        )
        self._shape: TableShape | None = None
        # Rendered SELECTs by filter shape: at most 2 * 3 * 3 * 2 * 2 of them.
        self._select_statements: dict[SelectKey, str] = {}
        self._count_statements: dict[tuple[int, int], str] = {}

    # --- the engine contract -----------------------------------------------

    @abc.abstractmethod
    def _build_statements(self) -> Statements:
        """This table's statements in the engine's dialect; called once, on first use."""

    @abc.abstractmethod
    def transaction(self) -> AbstractContextManager[Any]:
        """A write transaction: commits on success, rolls back on any exception.

        Nested use opens a savepoint. Yields the engine's connection. Every
        store call made inside the block on this thread joins it. On
        PostgreSQL a failed statement aborts the transaction even if the
        block catches its error: the block's end then rolls back and raises
        StorageError, never reporting a commit that did not happen.
        """

    @abc.abstractmethod
    def _in_transaction(self) -> bool:
        """True if this thread has a ``transaction()`` of this store open."""

    @abc.abstractmethod
    def _table_layout(self) -> tuple[list[str], list[str], str] | None:
        """(column names, index names, CREATE TABLE text) of the table, or ``None`` if it does not exist."""

    @abc.abstractmethod
    def _create_table(self) -> None:
        """Create the table and its indexes unless the table exists, atomically."""

    @abc.abstractmethod
    def _apply_migrations(self) -> TableShape | None:
        """Run pending migrations under the engine's write lock; return the new shape (``None``: no table)."""

    @abc.abstractmethod
    def _write_one(self, row: list[Any]) -> tuple[int, int]:
        """Upsert one encoded, unstamped row with ``statements.upsert_returning``, atomically.

        Returns its stored (created_at, updated_at). Raises OwnershipError
        (nothing written) if the owner check refused it.
        """

    @abc.abstractmethod
    def _write_many(self, batches: Batches) -> int:
        """Upsert every batch (encoded, unstamped rows) in one transaction; return how many rows.

        Each batch is stamped with :meth:`RowCodec.stamp` and written with
        ``statements.upsert``; a batch that wrote fewer rows than it holds
        goes to :meth:`_raise_refused`, and any error rolls everything back.
        An engine that runs the write again after a transient failure
        iterates ``batches`` again, while ``batches.replayable()``.
        """

    @abc.abstractmethod
    def _query(self, statement: str, params: Sequence[Any]) -> builtins.list[tuple[Any, ...]]:
        """Run one read statement and return its rows; inside this thread's transaction, join it."""

    @abc.abstractmethod
    def _execute_write(self, statement: str, params: Sequence[Any]) -> int:
        """Run one write statement in a transaction of its own (or this thread's); return its row count."""

    @abc.abstractmethod
    def _drop(self) -> None:
        """Drop the table and its indexes if it exists."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release every connection this object opened in this process."""

    # --- statements ----------------------------------------------------------

    @functools.cached_property
    def statements(self) -> Statements:
        """The SQL this store runs on its table (for tracing, tools and benchmarks)."""
        return self._build_statements()

    def _trace(self, statement: str, params: Sequence[Any] | None) -> None:
        tracer = self.tracer
        if tracer is not None:
            tracer(statement, params)

    # --- schema ------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        """The mode of the table this object reads and writes."""
        return self.spec.mode

    @mode.setter
    def mode(self, value: object) -> None:
        # agno sets ``storage.mode`` on what it is given as ``storage=``.
        raise InvalidInputError(
            f"{type(self).__name__} is agno_storage's core store, whose mode is fixed ({self.mode.value!r}); "
            "to pass a store to an agno Agent, Team or Workflow as storage=, use "
            "agno_storage.agno.SqliteStorage or agno_storage.agno.PostgresStorage",
            table=self.table_name,
        )

    def _inspect(self) -> TableShape | None:
        layout = self._table_layout()
        if layout is None:
            return None
        columns, indexes, table_sql = layout
        shape = schema.inspect_shape(self.table_name, self.spec.mode, columns, indexes, table_sql, engine=self.ENGINE)
        self._check_columns(table_sql)
        return shape

    @abc.abstractmethod
    def _check_columns(self, table_sql: str) -> None:
        """SchemaMismatchError for a column of the mode the engine would keep or compare otherwise than the
        store writes (a type that converts, a collation that is not exact); ``table_sql`` is what
        :meth:`_table_layout` gave."""

    def _check_on_open(self) -> None:
        """Refuse another mode's table now, before anything is written; upgrade an old one if asked to."""
        shape = self._inspect()
        if shape is None:
            return  # nothing to check, and nothing changed until the first write creates the table
        if shape.version < schema.CURRENT_VERSION and self.auto_upgrade_schema:
            self._checked_shape(create=False)

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
        shape = self._inspect()
        if shape is None or shape.version >= schema.CURRENT_VERSION:
            # Nothing to do: no write lock taken, and a file only read is left as it was.
            self._shape = shape
            return
        shape = self._apply_migrations()
        if shape is not None:
            schema.require_current(self.table_name, shape)
        self._shape = shape

    # --- writes ------------------------------------------------------------

    def upsert(self, session: Session) -> Session:
        """Insert or update one session; return it as stored (timestamps filled in).

        created_at is the session's own value or now on insert and is kept on
        update; updated_at is now. Raises OwnershipError if the session_id
        belongs to another non-empty user, or has no owner while ``session``
        has one and ``claim_unowned`` is False (unless allow_owner_change),
        InvalidInputError for data that cannot be stored; nothing is written
        then.
        """
        row = self.row_codec.encode(session)
        self._checked_shape(create=True)
        created_at, updated_at = self._again_if_dropped(lambda: self._write_one(row))
        return self.row_codec.stored(session, created_at, updated_at)

    def upsert_many(self, sessions: Iterable[Session]) -> int:
        """Upsert many sessions in one transaction; return how many were written.

        All or nothing: any error rolls every row back. ``sessions`` may be a
        generator; it is encoded and written in batches, so memory does not
        grow with its length. An error ``sessions`` raises is raised as it
        is (never taken for the engine's own and rerun), nothing written. No
        sessions, or a first batch (500) holding one that cannot be stored,
        leave the file as it was: no table is made.
        """
        if isinstance(sessions, BaseSession):
            raise InvalidInputError(
                "upsert_many needs an iterable of sessions; use upsert for one", table=self.table_name
            )
        try:
            iterator = iter(sessions)
        except TypeError:
            raise InvalidInputError(
                f"upsert_many needs an iterable of sessions, got {type(sessions).__name__}", table=self.table_name
            ) from None
        encode = self.row_codec.encode
        batches = Batches(encode(s) for s in iterator)
        try:
            # The first batch encoded before the file is touched: no sessions, or one that cannot be stored,
            # and a new file gets no table (nor, on SQLite, the switch to WAL).
            if not batches.take_first():
                return 0
            self._checked_shape(create=True)
            return self._again_if_dropped(lambda: self._write_many(batches), batches.replayable)
        except IterableError as failed:
            error = failed.error  # raised below, outside this handler, with no context of ours
        raise error

    def _again_if_dropped(self, write: Callable[[], T], replayable: Callable[[], bool] = lambda: True) -> T:
        """Run ``write``; if the table was dropped since it was checked, make it again and rerun once.

        A missing table shows on a write's first statement (the write lock
        keeps others from dropping it later), so nothing is lost by the rerun.
        """
        try:
            return write()
        except TableNotFoundError:
            if not self._vanished():
                raise
        self._checked_shape(create=True)
        if not replayable():
            raise StorageError(f"table {self.table_name!r} vanished during a write", table=self.table_name)
        return write()

    def _vanished(self) -> bool:
        """After a TableNotFoundError: forget the shape; True if the call may go on as if the table were absent.

        False inside a caller's transaction: its work so far stands or falls with it.
        """
        self._forget_shape()
        return not self._in_transaction()

    def _raise_refused(self, rows: Iterable[list[Any]], upsert_one: Callable[[list[Any]], bool]) -> None:
        """Name the row of a short-written batch that the owner check refused.

        Replays the rows one at a time with ``upsert_one`` (True if written)
        inside the caller's transaction, which the raised error rolls back.
        The replay meets what the batch left: a session the batch wrote twice
        may have been claimed by its later row, so each session's last row is
        replayed first (it alone decides what the session holds), then the
        others.
        """
        rows = builtins.list(rows)
        last = {self.row_codec.session_id(row): i for i, row in enumerate(rows)}
        lasts = [row for i, row in enumerate(rows) if last[self.row_codec.session_id(row)] == i]
        for row in [*lasts, *(row for i, row in enumerate(rows) if last[self.row_codec.session_id(row)] != i)]:
            if not upsert_one(row):
                raise self._refused_error(row)
        raise StorageError("a batch wrote fewer rows than it held", table=self.table_name)

    def _refused_error(self, row: list[Any]) -> OwnershipError | RowsKeptError:
        """Why the upsert of ``row`` wrote nothing and raised nothing: the owner check refused it, or else (no row
        of its session there to refuse it, or one the check lets it write) a trigger or rule of another program
        kept it out. A read of the session's row (inside the caller's transaction, if any), on this path only."""
        sid = self.row_codec.session_id(row)
        user = self.row_codec.user_id(row)
        if self._owner_check_passes(sid, user):
            return RowsKeptError(
                f"session {sid!r} in table {self.table_name!r} was kept out of the write without an error (a trigger"
                " or rule of another program); nothing of it was written",
                table=self.table_name,
                session_id=sid,
            )
        return self._ownership_error(sid, user)

    def _owner_check_passes(self, sid: str, user: str | None) -> bool:
        """Whether the upsert's owner check lets a write of ``sid`` as ``user`` through, as the table holds it now:
        a new session, the owner's own, or one with no owner (with ``claim_unowned``, or written with none)."""
        if self.allow_owner_change or not self._is_there(sid):
            return True
        if self._is_there(sid, ""):
            return self.claim_unowned or not user
        return bool(user) and self._is_there(sid, user)

    def _is_there(self, session_id: str, user_id: str | None = None) -> bool:
        """Whether the table holds ``session_id`` (owned by ``user_id``: ``''`` no owner; None: anyone)."""
        return bool(self._select(session_id=session_id, user_id=user_id, entity_id=None, limit=1, projection=IDS))

    def _ownership_error(self, sid: str, user: str | None) -> OwnershipError:
        if not self.claim_unowned and self._has_no_owner(sid):
            why, permit = "has no owner; this store (claim_unowned=False) does not give it one", "claim_unowned=True"
        else:
            why, permit = "belongs to another user", "allow_owner_change=True"
        return OwnershipError(
            f"session {sid!r} in table {self.table_name!r} {why}; "
            f"refusing to write it as user {user!r} ({permit} permits this)",
            table=self.table_name,
            session_id=sid,
            user_id=user,
        )

    def _has_no_owner(self, session_id: str) -> bool:
        """Whether the row of ``session_id`` has no owner (for an error's message; False if it cannot be told)."""
        try:
            return bool(self._select(session_id=session_id, user_id="", entity_id=None, limit=1, projection=IDS))
        except StorageError:
            return False

    # --- reads -------------------------------------------------------------

    def read(self, session_id: str, user_id: str | None = None) -> Session | None:
        """The session with ``session_id``, or ``None``.

        With ``user_id``, a session owned by anyone else is ``None`` too.
        """
        row = self._read_row(session_id, user_id)
        return None if row is None else self.row_codec.decode(row)

    def read_lax(self, session_id: str, user_id: str | None = None) -> tuple[Session, Sequence[Any]] | None:
        """``read``, decoded by :meth:`~agno_storage.codec.RowCodec.decode_lax`, with the row it was decoded from.

        The same checks, owner scoping and errors as ``read``; an integer of 19
        or more digits in a JSON column may be a float, until
        ``row_codec.reads_exactly(row)`` says there is none or
        ``row_codec.decode(row)`` reads the row again (``history()``).
        """
        row = self._read_row(session_id, user_id)
        return None if row is None else (self.row_codec.decode_lax(row), row)

    def _read_row(self, session_id: str, user_id: str | None) -> Sequence[Any] | None:
        """The stored row ``read`` decodes, or ``None``."""
        check_id(session_id, "session_id", self.table_name)
        check_user(user_id, self.table_name)
        if self._checked_shape(create=False) is None:
            return None
        rows = self._select(session_id=session_id, user_id=user_id, entity_id=None, limit=1, projection=FULL)
        return rows[0] if rows else None

    def read_stored(self, session_id: str) -> tuple[Session, tuple[Any, ...]] | None:
        """The session with ``session_id`` (any owner) and the row it was decoded from, or ``None``.

        The row holds the mode's columns in table order as the store selects
        them, JSON columns as the UTF-8 bytes of their stored JSON (SQLite
        reads them ``CAST AS BLOB``, PostgreSQL as text): for tools that must
        tell whether a stored session changed without encoding it again. Two
        rows that decode to different sessions always differ here; two that
        differ here may still decode alike (an SQLite integer 5 and a text
        '5' read as the same ``b"5"``, and decode alike too). Raises
        CorruptRowError as ``read`` does.
        """
        check_id(session_id, "session_id", self.table_name)
        if self._checked_shape(create=False) is None:
            return None
        rows = self._select(session_id=session_id, user_id=None, entity_id=None, limit=1, projection=FULL)
        return (self.row_codec.decode(rows[0]), tuple(rows[0])) if rows else None

    def list(
        self, user_id: str | None = None, entity_id: str | None = None, limit: int | None = None
    ) -> builtins.list[Session]:
        """Sessions newest first (created_at DESC, then session_id), optionally filtered.

        Raises CorruptRowError, naming the session and column, if any row it
        would return holds a value of the wrong type (written by another
        program); nothing is skipped silently. ``read`` of the other sessions
        still works.
        """
        check_limit(limit)
        check_user(user_id, self.table_name)
        check_user(entity_id, self.table_name, "entity_id")
        if self._checked_shape(create=False) is None:
            return []
        rows = self._select(session_id=None, user_id=user_id, entity_id=entity_id, limit=limit, projection=FULL)
        decode = self.row_codec.decode
        return [decode(r) for r in rows]

    def iter_sessions(self, user_id: str | None = None, entity_id: str | None = None) -> Iterator[Session]:
        """What :meth:`list` returns, one session at a time: memory holds the listed summaries and one session.

        The sessions are listed (summaries: no JSON read), then each is read
        as it is reached, scoped to ``user_id`` as the listing was: one
        deleted since is skipped, one changed since comes as it is now.
        CorruptRowError as :meth:`list`. For walks over a whole table
        (``search`` without an index, ``usage``) whose size is not bounded.
        """
        for summary in self.list_summaries(user_id=user_id, entity_id=entity_id):
            # Not read(): it refuses the '' another writer may have stored as an id, which list() returns.
            rows = self._select(
                session_id=summary.session_id, user_id=user_id, entity_id=None, limit=1, projection=FULL
            )
            if rows:
                yield self.row_codec.decode(rows[0])

    def read_summary(self, session_id: str, user_id: str | None = None) -> SessionSummary | None:
        """What ``read`` finds, as a summary (ids, owner, entity, timestamps), or ``None``; no JSON is read.

        For asking who owns a session, or when it changed, at the same cost
        whatever its size. Scoped to ``user_id`` as ``read`` is.
        """
        check_id(session_id, "session_id", self.table_name)
        check_user(user_id, self.table_name)
        if self._checked_shape(create=False) is None:
            return None
        rows = self._select(session_id=session_id, user_id=user_id, entity_id=None, limit=1, projection=SUMMARY)
        return self.row_codec.decode_summaries(rows)[0] if rows else None

    def list_summaries(
        self, user_id: str | None = None, entity_id: str | None = None, limit: int | None = None
    ) -> builtins.list[SessionSummary]:
        """What ``list()`` returns, as summaries: ids, entity, timestamps; no JSON column is read or decoded.

        For showing a list of sessions: the cost no longer grows with the
        size of each session's memory.
        """
        check_limit(limit)
        check_user(user_id, self.table_name)
        check_user(entity_id, self.table_name, "entity_id")
        if self._checked_shape(create=False) is None:
            return []
        rows = self._select(session_id=None, user_id=user_id, entity_id=entity_id, limit=limit, projection=SUMMARY)
        return self.row_codec.decode_summaries(rows)

    def _select(
        self,
        *,
        session_id: str | None,
        user_id: str | None,
        entity_id: str | None,
        limit: int | None,
        projection: int,
    ) -> builtins.list[tuple[Any, ...]]:
        """Rows in mode column order (or 1-tuples of ids, or summary columns), newest first.

        The statement is built once per filter shape and kept: this runs on
        every read, so it stays a tuple, a dict lookup and the engine call.
        """
        if not self.HOLDS_NUL and self._unmatchable(session_id, user_id, entity_id):  # no call on SQLite's reads
            return []
        # '' asks for "nobody", which agno spells NULL and the Go port ''.
        key = (session_id is not None, filter_kind(user_id), filter_kind(entity_id), limit is not None, projection)
        statement = self._select_statements.get(key)
        if statement is None:
            statement = self._select_statements[key] = self.statements.select_for(key)
        # Only EQUALS filters bind a value: None is ANY and '' is NOBODY (a session_id is always bound).
        params: builtins.list[Any] = builtins.list(filter(None, (user_id, entity_id)))
        if session_id is not None:
            params.insert(0, session_id)
        if limit is not None:
            params.append(limit)
        return self._rows(statement, params)

    def _rows(self, statement: str, params: Sequence[Any]) -> builtins.list[tuple[Any, ...]]:
        """``_query``, with a table dropped since it was checked reading as empty."""
        try:
            return self._query(statement, params)
        except TableNotFoundError:
            if not self._vanished():
                raise
            return []

    def count(self, user_id: str | None = None, entity_id: str | None = None) -> int:
        """How many sessions ``list(user_id, entity_id)`` returns, counted by the engine; 0 without a table."""
        check_user(user_id, self.table_name)
        check_user(entity_id, self.table_name, "entity_id")
        if self._checked_shape(create=False) is None or self._unmatchable(user_id, entity_id):
            return 0
        key = (filter_kind(user_id), filter_kind(entity_id))
        statement = self._count_statements.get(key)
        if statement is None:
            statement = self._count_statements[key] = self.statements.count_for(*key)
        rows = self._rows(statement, builtins.list(filter(None, (user_id, entity_id))))
        return int(rows[0][0]) if rows else 0

    # --- lifetime ----------------------------------------------------------

    def __repr__(self) -> str:
        return f"{type(self).__name__}(table_name={self.table_name!r}, mode={self.mode.value!r})"


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is a bool; InvalidInputError otherwise (``"false"`` is not False)."""
    if type(value) is not bool:
        raise InvalidInputError(f"{name} must be True or False, got {value!r}")
    return value


def check_id(value: object, name: str, table: str, *, empty: bool = False) -> None:
    """InvalidInputError unless ``value`` is a non-empty str with a UTF-8 form (what every engine can store).

    ``empty``: ``''`` too, for a call that must reach a row another writer stored with an empty id
    (agno-golang's NOT NULL column takes one; this store never writes it).
    """
    if type(value) is str and (value or empty) and value.isascii():
        return  # the common case, proven valid without encoding it
    if not isinstance(value, str) or not (value or empty) or not codec.is_utf8(value):
        wanted = "a str" if empty else "a non-empty str"
        raise InvalidInputError(f"{name} must be {wanted} of valid Unicode, got {value!r}", table=table, column=name)


def check_user(value: object, table: str, name: str = "user_id") -> None:
    """InvalidInputError unless ``value`` is None or a str with a UTF-8 form (a filter: '' asks for "nobody")."""
    if value is None or (type(value) is str and value.isascii()):
        return
    if not isinstance(value, str) or not codec.is_utf8(value):
        raise InvalidInputError(
            f"{name} must be a str of valid Unicode or None, got {value!r}", table=table, column=name
        )


def check_limit(limit: object) -> None:
    """InvalidInputError unless ``limit`` is None or an int from 0 to the largest 64-bit one."""
    if limit is not None and (type(limit) is not int or not 0 <= limit <= 2**63 - 1):
        raise InvalidInputError(f"limit must be a non-negative 64-bit int or None, got {limit!r}")


__all__ = [
    "StoreCore",
    "Tracer",
    "check_bool",
    "check_id",
    "check_limit",
    "check_user",
]
