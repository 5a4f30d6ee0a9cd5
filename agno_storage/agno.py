"""agno 1.x ``storage=`` adapter: ``from agno_storage.agno import SqliteStorage``.

The classes below are ``agno.storage.base.Storage`` objects that agno's Agent,
Team, Workflow and v2 Workflow accept as their ``storage=``. They take agno's
own constructor arguments, hand back agno's own session dataclasses, and keep
every byte in the table through a core store chosen by the URL: a
``sqlite:///`` URL (or ``db_file``) gives :class:`agno_storage.SqliteStorage`,
a ``postgresql://`` URL (SQLAlchemy's ``postgresql+psycopg://`` too) gives
:class:`agno_storage.backends.postgres.PostgresStorage`. Moving an Agent from
SQLite to PostgreSQL is then a change of URL; the tables stay readable by
agno's upstream stores (and SQLite files by agno-golang).

Where agno 1.x behaves oddly the adapter makes a deliberate choice; each one
is listed in ``docs/compat_agno.md``.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any, Literal, Self

import attrs

try:
    from agno.storage.base import Storage
    from agno.storage.session.agent import AgentSession as AgnoAgentSession
    from agno.storage.session.team import TeamSession as AgnoTeamSession
    from agno.storage.session.v2.workflow import (
        WorkflowSession as AgnoWorkflowSessionV2,
    )
    from agno.storage.session.workflow import WorkflowSession as AgnoWorkflowSession
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "agno_storage.agno needs agno 1.x; install it with: pip install 'agno-session-storage[agno]'"
    ) from exc

from agno_storage import AgentSession, BaseStorage, TeamSession, WorkflowSession, WorkflowSessionV2, urls
from agno_storage import SqliteStorage as CoreSqliteStorage
from agno_storage.agno_args import (
    ENGINES,
    Backend,
    as_agno_resolves,
    backend_of_url,
    check_options,
    postgres_url_of_engine,
    sqlite_file_of_engine,
)
from agno_storage.backends.process import ForkLock
from agno_storage.errors import CorruptRowError, InvalidInputError, OwnershipError
from agno_storage.models import Mode
from agno_storage.modes import SPECS
from agno_storage.schema import check_table_name

__all__ = ["AgnoSession", "PostgresStorage", "SqliteStorage"]

ModeName = Literal["agent", "team", "workflow", "workflow_v2"]
AgnoSession = AgnoAgentSession | AgnoTeamSession | AgnoWorkflowSession | AgnoWorkflowSessionV2
CoreSession = AgentSession | TeamSession | WorkflowSession | WorkflowSessionV2

_MODES = tuple(mode.value for mode in Mode)


def _agno_class(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


#: agno's session dataclass of each mode, as the mode records name them.
_AGNO_CLASSES: dict[str, Any] = {mode.value: _agno_class(spec.agno_class) for mode, spec in SPECS.items()}
#: Fields of our v2 record that are not copied by name from agno's.
_V2_OWN = frozenset({"memory", "runs"})
#: The keys of what agno's v2 WorkflowSession.to_dict writes for a run it could not serialise.
_UNSERIALISED_RUN = frozenset({"run_id", "status", "error"})


class _AgnoStorage(Storage):
    """What both public classes share; they differ only in agno's argument order and ``db_engine``."""

    def __init__(
        self,
        table_name: str,
        *,
        db_url: str | None,
        db_file: str | None,
        schema: str | None,
        schema_version: int,
        auto_upgrade_schema: bool,
        mode: ModeName | None,
        user_id: str | None,
        core_options: dict[str, Any],
    ) -> None:
        if schema_version != 1:
            raise InvalidInputError(f"agno 1.x tables have schema_version 1, got {schema_version}")
        backend: Backend = "sqlite" if db_url is None else backend_of_url(db_url)
        # At construction, where agno builds its storage, not at the Agent's first run: a name the store
        # cannot take (one agno's SQLAlchemy would quote: "my-sessions", a reserved word) fails here.
        check_table_name(table_name, engine=ENGINES[backend])
        if backend == "postgresql" and db_file is not None:
            raise InvalidInputError(f"db_file={db_file!r} cannot go with the PostgreSQL db_url {urls.shown(db_url)}")
        self.backend: Backend = backend
        #: The stores opened (one per mode) and the lock they are opened under, shared with this object's
        #: copies: threads that first use one mode together get one store (an in-memory database is private
        #: to its store: two would split the writes).
        self._shared = _Shared()
        super().__init__(mode)
        self.mode = mode  # through the setter's check: agno's __init__ may set the attribute directly
        self.table_name = table_name
        self.db_url = db_url
        self.db_file = as_agno_resolves(db_file) if db_url is None else db_file
        self.schema = schema
        self.schema_version = schema_version
        self.auto_upgrade_schema = auto_upgrade_schema
        self.user_id = user_id
        # Scoped to a user, a session with no owner reads as missing: a write there would replace what the
        # Agent never loaded, so it may not take such a session. Unscoped, agno reads it whole, and may.
        defaults: dict[str, Any] = {"claim_unowned": user_id is None}
        if backend == "sqlite":
            # agno's own store writes NaN and infinities as json.dumps spells them, and reads them back: so must
            # its replacement, or its users lose their old sessions (writing them stays refused).
            defaults["read_non_finite"] = True
        self.core_options: dict[str, Any] = {**defaults, **core_options}
        check_options(self._core_class(), self.core_options)

    # -- the delegate ------------------------------------------------------
    def _core_class(self) -> type[BaseStorage]:
        if self.backend == "postgresql":
            # Imported only here, so SQLite users need no PostgreSQL driver.
            from agno_storage.backends.postgres import PostgresStorage as CorePostgresStorage

            return CorePostgresStorage
        return CoreSqliteStorage

    @property
    def core(self) -> BaseStorage:
        """The core store for the current mode, opened on first use.

        For PostgreSQL, opening it connects and checks the table; a server
        that cannot be reached raises ConnectionLostError here.
        """
        mode = self.mode
        stores = self._shared.stores
        store = stores.get(mode)
        if store is not None:
            return store
        with self._lock():
            store = stores.get(mode)
            if store is None:
                # Both core stores take these; where the table lives (a schema or a
                # file) is the one argument that differs by engine.
                where = {"schema": self.schema} if self.backend == "postgresql" else {"db_file": self.db_file}
                open_core: Callable[..., BaseStorage] = self._core_class()
                store = open_core(
                    table_name=self.table_name,
                    db_url=self.db_url,
                    mode=mode,
                    auto_upgrade_schema=self.auto_upgrade_schema,
                    **where,
                    **self.core_options,
                )
                stores[mode] = store
        return store

    def _lock(self) -> ForkLock:
        """The lock the stores are opened and closed under, shared with this object's copies."""
        return self._shared.lock

    @property
    def mode(self) -> ModeName:
        """The agno mode; setting it switches the delegate (opened lazily)."""
        return self._mode

    @mode.setter
    def mode(self, value: ModeName | None) -> None:
        value = "agent" if value is None else value
        if not isinstance(value, str) or value not in _MODES:
            raise InvalidInputError(f"mode must be one of {_MODES}, got {value!r}")
        self._mode = value

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        # agno deep-copies agents; the copy must see the same database, and an
        # open connection or pool cannot be copied, so copies share the stores.
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.core_options = dict(self.core_options)
        memo[id(self)] = clone
        return clone

    # -- agno's Storage interface -----------------------------------------
    def create(self) -> None:
        """Create the table and its indexes if missing."""
        self.core.create()

    def table_exists(self) -> bool:
        """Whether the table exists."""
        return self.core.table_exists()

    def read(self, session_id: str, user_id: str | None = None) -> AgnoSession | None:
        """One session as agno's dataclass, or None; scoped to ``user_id`` when set.

        A storage scoped to one user returns None for another user's id,
        whatever ``user_id`` is passed. A ``session_id`` of None or ``''``
        is None, as in agno's own ``read``. ``user_id=""`` is no filter, as in
        agno's own ``read`` (which filters only on a non-empty user).
        """
        user_id = user_id or None
        if session_id is None or session_id == "" or self._other_user(user_id):
            # No id is no session, as agno's own read has it: Agent.load_session() reads with None
            # before it makes a new id.
            return None
        found = self.core.read(session_id, user_id=self._user(user_id))
        return None if found is None else self._to_agno(found)

    def get_all_session_ids(self, user_id: str | None = None, entity_id: str | None = None) -> list[str]:
        """Session ids, newest first (only the scoped user's, when ``user_id`` is set)."""
        if self._other_user(user_id):
            return []
        return list(self.core.get_all_session_ids(user_id=self._user(user_id), entity_id=entity_id))

    def get_all_sessions(self, user_id: str | None = None, entity_id: str | None = None) -> list[AgnoSession]:
        """Sessions as agno dataclasses, newest first."""
        return self._list(user_id, entity_id, limit=None)

    def get_recent_sessions(
        self,
        user_id: str | None = None,
        entity_id: str | None = None,
        limit: int | None = 2,
    ) -> list[AgnoSession]:
        """The ``limit`` newest sessions as agno dataclasses: all of them for None or a negative limit.

        agno's own store hands the limit to SQLite, where ``LIMIT -1`` is no limit (its PostgreSQL store fails on
        one, logs it and returns ``[]``); ``0`` is none.
        """
        if type(limit) is int and limit < 0:
            limit = None
        return self._list(user_id, entity_id, limit=limit)

    def upsert(self, session: AgnoSession) -> AgnoSession | None:
        """Insert or update; returns the session as stored.

        Raises OwnershipError when the session_id belongs to another user (or
        the session's user differs from the scoped ``user_id``), and the core
        store's typed errors otherwise; never returns None. On a storage not
        scoped to a user, a session with no ``user_id`` written over one that
        has an owner keeps that owner (agno's ``Agent.run`` writes with the
        user it was called with, None, after loading an owned session). A
        dict key that is not a string is written as agno's ``json.dumps``
        writes it (``1`` as ``"1"``). A v2 workflow run agno's ``to_dict``
        could not serialise is InvalidInputError, nothing written.
        """
        if self.user_id is not None and session.user_id not in (None, self.user_id):
            raise OwnershipError(
                f"session {session.session_id!r} is for user {session.user_id!r} but this storage "
                f"is scoped to user {self.user_id!r} (table {self.table_name!r})",
                table=self.table_name,
                session_id=session.session_id,
                user_id=session.user_id,
            )
        record = self._to_core(session)
        if self.user_id is not None and record.user_id is None:
            record.user_id = self.user_id
        try:
            stored = self._write(record)
        except OwnershipError:
            if self.user_id is not None or record.user_id is not None:
                raise
            # agno's Agent.run writes with the user it was called with (None), even after it loaded a
            # session that has an owner: a write that names no user keeps the owner it has.
            owner = self.core.read_summary(record.session_id)
            if owner is None or owner.user_id is None:
                raise
            stored = self._write(attrs.evolve(record, user_id=owner.user_id))
        return self._to_agno(stored)

    def _write(self, record: CoreSession) -> CoreSession:
        """``core.upsert(record)``; a JSON column it refuses is written again as agno's ``json.dumps`` writes it.

        agno's own store writes ``json.dumps``'s text, which spells a key that is no str (``1``, ``True``) as
        a string (``"1"``, ``"true"``) and a str subclass as a str: so does this one, rather than lose the
        turn. What json refuses too (a datetime) or cannot write as JSON (NaN) stays the error it was.
        """
        done: set[str] = set()
        while True:
            try:
                return self.core.upsert(record)
            except InvalidInputError as exc:
                again = None if exc.column in done else _as_json_writes(record, exc.column)
                if again is None or exc.column is None:
                    raise
                done.add(exc.column)
                record = again

    def delete_session(self, session_id: str | None = None) -> None:
        """Delete one session (only the scoped user's, when ``user_id`` is set); a None id is a no-op, as in agno."""
        if session_id is not None:
            self.core.delete(session_id, user_id=self.user_id)

    def drop(self) -> None:
        """Drop the table."""
        self.core.drop()

    def upgrade_schema(self) -> None:
        """Bring an older agno table up to date (agno 1.2 added team_session_id)."""
        self.core.upgrade_schema()

    def close(self) -> None:
        """Close every store this object (and its deep copies) opened."""
        with self._lock():
            stores = list(self._shared.stores.values())
            self._shared.stores.clear()
        for store in stores:
            store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- conversion --------------------------------------------------------
    def _user(self, user_id: str | None) -> str | None:
        return user_id if user_id is not None else self.user_id

    def _other_user(self, user_id: str | None) -> bool:
        """True if a storage scoped to one user is asked about another: the answer is "nothing"."""
        return self.user_id is not None and user_id is not None and user_id != self.user_id

    def _list(self, user_id: str | None, entity_id: str | None, limit: int | None) -> list[AgnoSession]:
        if self._other_user(user_id):
            return []
        found = self.core.list(user_id=self._user(user_id), entity_id=entity_id, limit=limit)
        return [self._to_agno(s) for s in found]

    def _to_core(self, session: AgnoSession) -> CoreSession:
        # Our records use agno's field names (see agno_storage.models), so each
        # field is copied by name. workflow_session_id has no column in
        # agno's tables (upstream drops it too); agno sets it on the live
        # Agent/Team from the Workflow.
        expected = _AGNO_CLASSES[self.mode]
        if not isinstance(session, expected):
            raise InvalidInputError(
                f"a {self.mode} storage stores {expected.__module__}.{expected.__qualname__}, "
                f"got {type(session).__module__}.{type(session).__qualname__} (table {self.table_name!r})",
                table=self.table_name,
                session_id=getattr(session, "session_id", None),
            )
        core_class = SPECS[Mode(self.mode)].session_class
        v2 = core_class is WorkflowSessionV2
        values = {
            name: getattr(session, name) for name in attrs.fields_dict(core_class) if not (v2 and name in _V2_OWN)
        }
        if v2:
            # agno's v2 session has no memory, and its own to_dict is the one
            # definition of how runs serialize.
            values["runs"] = session.to_dict()["runs"]
            for run in values["runs"] or ():
                if isinstance(run, dict) and run.keys() == _UNSERIALISED_RUN:
                    # What agno's to_dict writes for a run it could not serialise: agno cannot read it
                    # back, and every later read and listing of the table would fail on it.
                    raise InvalidInputError(
                        f"run {run['run_id']!r} of session {session.session_id!r} cannot be stored: "
                        f"{run['error']} (nothing written)",
                        table=self.table_name,
                        session_id=session.session_id,
                        column="runs",
                    )
        return core_class(**values)

    def _to_agno(self, session: CoreSession) -> AgnoSession:
        values = attrs.asdict(session, recurse=False)
        if isinstance(session, AgentSession):
            values["memory"] = _agent_memory(session.memory)
        elif isinstance(session, WorkflowSessionV2):
            if session.runs and not isinstance(session.runs, list):
                # agno's from_dict would crash on it and agno's own store then
                # returns None, so the next write replaces the row: refuse.
                raise CorruptRowError(
                    f"runs of session {session.session_id!r} is a JSON "
                    f"{type(session.runs).__name__}, agno 1.x needs a list of runs",
                    table=self.table_name,
                    session_id=session.session_id,
                    column="runs",
                )
            values["runs"] = session.runs or None
        # agno's from_dict reads the keys it knows (v2: rebuilding the runs as
        # WorkflowRunResponse objects) and leaves workflow_session_id None.
        try:
            rebuilt: AgnoSession | None = _AGNO_CLASSES[session.MODE].from_dict(values)
        except (TypeError, AttributeError, KeyError, ValueError) as exc:
            # A v2 run agno cannot rebuild (a key WorkflowRunResponse lacks, such as the "error" its own
            # to_dict writes for a run it could not serialise; an item that is not an object).
            raise CorruptRowError(
                f"session {session.session_id!r} of table {self.table_name!r} holds what agno 1.x cannot "
                f"rebuild its session from: {type(exc).__name__}: {exc}",
                table=self.table_name,
                session_id=session.session_id,
                column="runs" if isinstance(session, WorkflowSessionV2) else None,
            ) from exc
        assert rebuilt is not None  # from_dict only refuses a missing session_id
        return rebuilt


class _Shared:
    """An adapter's opened stores and their lock, shared with its copies (``copy``, agno's ``deepcopy``).

    Pickled, it is a new empty one (neither a lock nor an open connection
    travels): the unpickled adapter opens its own stores on first use, and
    copies pickled together still share theirs. A forked child gets the
    lock unheld (a :class:`~agno_storage.backends.process.ForkLock`): a fork
    while another thread held it would leave it held in the child for ever.
    """

    __slots__ = ("lock", "stores")

    def __init__(self) -> None:
        self.lock = ForkLock()
        self.stores: dict[str, BaseStorage] = {}

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Shared, ())


def _as_json_writes(record: CoreSession, column: str | None) -> CoreSession | None:
    """``record`` with ``column`` (a JSON column) as agno's ``json.dumps`` would store it; None when json
    refuses it too or it is no JSON column."""
    if column is None or not isinstance(getattr(record, column, None), dict | list):
        return None
    try:
        written = json.loads(json.dumps(getattr(record, column)))
    except (TypeError, ValueError, RecursionError):
        return None
    return attrs.evolve(record, **{column: written})


def _agent_memory(memory: dict[str, Any] | None) -> dict[str, Any]:
    """Agent memory in the shape agno's ``Agent.load_agent_session`` accepts.

    agno raises TypeError on a None memory (SQL NULL or JSON ``null``, which
    Go and hand-written rows contain) when the Agent has no memory yet, and
    KeyError on a memory dict without ``"runs"``; both mean "no runs yet".
    """
    if memory is None:
        return {"runs": []}
    if "runs" not in memory:
        return {**memory, "runs": []}
    return memory


class SqliteStorage(_AgnoStorage):
    """agno 1.x storage with agno's ``SqliteStorage`` signature; the URL picks the engine.

    ``db_url="sqlite:///path.db"`` or ``db_file=`` (neither: a private
    in-memory database) keeps sessions in SQLite; ``db_url="postgresql://..."``
    keeps them in PostgreSQL, in agno's ``PostgresStorage`` layout under
    ``schema`` (default ``"ai"``, ignored for SQLite). ``db_engine`` is
    honoured only for a SQLite file (its file is opened; the engine is not
    used); any other engine raises InvalidInputError.

    Construction opens nothing; the core store for the current ``mode`` is
    opened on first use, so agno may set ``storage.mode`` after construction
    (Agent, Team and Workflow all do). ``user_id=`` scopes every call to one
    user: agno reads sessions by id alone, so without it an Agent resumes a
    session_id whoever owns it (the write is then refused). Scoped, a
    session with no owner reads as missing too, and a write never gives it
    an owner (``OwnershipError``): it would replace a conversation the Agent
    never loaded. ``claim_unowned=True`` permits it, as agno's store does
    (unscoped, agno loads such a session whole, and its write may claim it).
    Other keyword arguments
    (``allow_owner_change``, ``claim_unowned``, ``recency_indexes``;
    ``busy_timeout``, ``synchronous``, ``read_non_finite`` for SQLite; ``pool_size``,
    ``connect_timeout``, ``retries``, ``prepared_statements`` for PostgreSQL) go to the core store
    unchanged; one it does not take raises InvalidInputError here.

    Unlike agno's store, failures raise typed ``agno_storage.errors`` errors
    instead of logging and returning None. Thread-safety is that of the core
    store; deep copies (agno copies agents) share its open stores.
    """

    def __init__(
        self,
        table_name: str,
        db_url: str | None = None,
        db_file: str | None = None,
        db_engine: Any | None = None,
        schema_version: int = 1,
        auto_upgrade_schema: bool = False,
        mode: ModeName | None = "agent",
        user_id: str | None = None,
        schema: str | None = "ai",
        **core_options: Any,
    ) -> None:
        if db_engine is not None and db_url is None and db_file is None:
            db_file = sqlite_file_of_engine(db_engine)
        super().__init__(
            table_name,
            db_url=db_url,
            db_file=db_file,
            schema=schema,
            schema_version=schema_version,
            auto_upgrade_schema=auto_upgrade_schema,
            mode=mode,
            user_id=user_id,
            core_options=core_options,
        )


class PostgresStorage(_AgnoStorage):
    """agno 1.x storage with agno's ``PostgresStorage`` signature; the URL picks the engine.

    A drop-in for ``agno.storage.postgres.PostgresStorage``: the same
    arguments, tables in the same layout (``schema`` ``"ai"`` by default,
    ``None`` for the search path). ``db_url`` may be a libpq or a SQLAlchemy
    URL (``postgresql+psycopg://``); a ``sqlite:///path.db`` URL keeps the
    sessions in SQLite instead (``schema`` is then ignored), so the URL alone
    decides. ``db_engine``, a SQLAlchemy PostgreSQL engine, is used for its
    URL only (password included): its pool and ``connect_args`` are not.
    Given with ``db_url``, the engine's URL is the one used, as in agno.

    Raises InvalidInputError when neither ``db_url`` nor ``db_engine`` is
    given (agno raises ValueError, which it subclasses). Construction opens
    no connection; the first call for a mode does, and raises
    ConnectionLostError if the server cannot be reached. Options, scoping by
    ``user_id`` and errors are as for :class:`SqliteStorage`.
    """

    def __init__(
        self,
        table_name: str,
        schema: str | None = "ai",
        db_url: str | None = None,
        db_engine: Any | None = None,
        schema_version: int = 1,
        auto_upgrade_schema: bool = False,
        mode: ModeName | None = "agent",
        user_id: str | None = None,
        **core_options: Any,
    ) -> None:
        if db_engine is not None:
            # agno's order: the engine, then the URL; the URL beside an engine is not the database it uses.
            db_url = postgres_url_of_engine(db_engine)
        if db_url is None:
            raise InvalidInputError(f"PostgresStorage needs db_url or db_engine (table {table_name!r})")
        super().__init__(
            table_name,
            db_url=db_url,
            db_file=None,
            schema=schema,
            schema_version=schema_version,
            auto_upgrade_schema=auto_upgrade_schema,
            mode=mode,
            user_id=user_id,
            core_options=core_options,
        )
