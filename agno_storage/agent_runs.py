"""agno-golang's ``agent_runs`` table: what a Go ``agent.Agent`` writes, read here (SQLite, agent mode).

agno-golang v0.1.6's Agent stores each run as one row of a table with the
fixed name ``agent_runs`` beside the sessions table, and for a new session
id writes no session row at all (docs/compat.md, "agno-golang v0.1.6 as it
is"). This module reads those rows for :func:`agno_storage.conversation.history`
and lists the sessions that exist only there, so that ``list()`` of the
sessions table does not hide them without saying so.

Only an agent-mode :class:`~agno_storage.SqliteStorage` has runs: every
other store reads none. ``PRAGMA foreign_keys`` is never turned on (the
table's foreign key would make the Go Agent's writes for new sessions fail).
"""

from __future__ import annotations

import builtins
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, cast

import attrs

from agno_storage import codec
from agno_storage.backends.sqlite_ddl import affinity, inexact_collation
from agno_storage.backends.statements import EQUALS, filter_kind
from agno_storage.conversation_go import RunRow
from agno_storage.errors import CorruptRowError, InvalidInputError, SchemaMismatchError
from agno_storage.models import Mode
from agno_storage.schema import AGENT_RUNS_TABLE, identify_mode, quote

if TYPE_CHECKING:
    from agno_storage.backends.base import BaseStorage
    from agno_storage.backends.sqlite import SqliteStorage

#: The table's name, fixed by agno-golang whatever the sessions table is called.
TABLE: Final = AGENT_RUNS_TABLE

_COLUMNS: Final = "id, session_id, user_id, user_message, agent_message, messages, metrics, created_at"


@attrs.frozen
class StoredRun:
    """One whole row of ``agent_runs`` as stored (JSON columns as text), its fields in agno-golang's column order.

    What ``to_agno3`` reads of a Go Agent's runs, and what an export line
    ``{"agent_run": {...}}`` holds (``agno_storage.ops.runs``).
    """

    id: str
    session_id: str
    user_id: str | None
    run_name: str | None
    run_data: str | None
    user_message: str | None
    agent_message: str | None
    messages: str | None
    metrics: str | None
    created_at: int | None
    updated_at: int | None

    def run_row(self) -> RunRow:
        """The columns of this row a conversation is read from, as ``history`` reads them."""
        return RunRow(
            id=self.id,
            session_id=self.session_id,
            user_id=self.user_id,
            user_message=self.user_message,
            agent_message=self.agent_message,
            messages=self.messages,
            metrics=self.metrics,
            created_at=self.created_at,
        )


#: Every column of ``agent_runs``, in agno-golang's order.
ALL_COLUMNS: Final = tuple(field.name for field in attrs.fields(StoredRun))

#: What every caller runs one statement on the file (or schema) with: ``query(sql, params)`` gives its rows.
Query = Callable[[str, Sequence[Any]], Sequence[Sequence[Any]]]


def is_go_layout(columns: Collection[str]) -> bool:
    """Whether a table of ``columns`` is agno-golang's runs table: it has every column of :data:`ALL_COLUMNS`.

    The one test every reader of ``agent_runs`` makes before reading it as
    runs (a store, ``tables``, ``doctor``, ``export``, ``copy``, ``prune``,
    ``to-agno3``): an earlier agno-storage let a sessions table have that
    name, and such a table has none of ``id``, ``run_name``, ``run_data``,
    ``user_message``... (Column names compare without case, as SQL's do.)
    """
    have = {str(c).lower() for c in columns}
    return all(c in have for c in ALL_COLUMNS)


def not_go_runs(name: str, columns: Collection[str], sql_name: str | None = None) -> SchemaMismatchError:
    """The error for a table named ``agent_runs`` (spelt ``name``) whose ``columns`` are not agno-golang's runs
    table's (:func:`is_go_layout`): what it is, and the SQL that renames it so its sessions can be read
    (``sql_name``: the table as that SQL names it, schema-qualified on PostgreSQL; default ``name``)."""
    have = {str(c).lower() for c in columns}
    missing = ", ".join(c for c in ALL_COLUMNS if c not in have)
    mode = identify_mode(columns)
    if mode is None:
        what = "it is another program's table"
        new = f"{TABLE}_other"
        then = "so that a Go Agent can make its own"
    else:
        article = "an" if mode is Mode.AGENT else "a"
        what = f"it is {article} {mode.value} sessions table, which an earlier agno-storage let be made under this name"
        new = f"{mode.value}_sessions_renamed"
        then = f"to read its sessions (then as --table {new})"
    return SchemaMismatchError(
        f"table {name!r} is not agno-golang's runs table, where a Go Agent keeps its runs (it has no column "
        f"{missing}): {what}; nothing reads it as runs, nor as sessions under this name. Rename it {then}: "
        f"ALTER TABLE {sql_name or name} RENAME TO {new} (or any name not taken)",
        table=name,
    )


def check_layout(query: Query) -> None:
    """:func:`not_go_runs` if the SQLite file has an ``agent_runs`` (in any case) that is not agno-golang's runs
    table; nothing if it has none. One catalogue query (two for one that is not)."""
    columns = [str(row[0]) for row in query("SELECT name FROM pragma_table_info(?)", (TABLE,))]
    if columns and not is_go_layout(columns):
        rows = query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE", (TABLE,))
        raise not_go_runs(str(rows[0][0]) if rows else TABLE, columns)


def create_statements(sessions_table: str) -> builtins.list[str]:
    """agno-golang's own DDL for ``agent_runs`` and its indexes (``IF NOT EXISTS``), byte for byte.

    The foreign key names the sessions table, as upstream's does; nobody
    enforces it (``PRAGMA foreign_keys`` stays off).
    """
    return [
        "CREATE TABLE IF NOT EXISTS agent_runs (\nid TEXT PRIMARY KEY,\nsession_id TEXT NOT NULL,\nuser_id TEXT,\n"
        "run_name TEXT,\nrun_data TEXT,\nuser_message TEXT,\nagent_message TEXT,\nmessages TEXT,\nmetrics TEXT,\n"
        "created_at INTEGER,\nupdated_at INTEGER,\n"
        f"FOREIGN KEY (session_id) REFERENCES {sessions_table}(session_id)\n\t\t)",
        "CREATE INDEX IF NOT EXISTS idx_runs_session_id ON agent_runs(session_id)",
        "CREATE INDEX IF NOT EXISTS idx_runs_user_id ON agent_runs(user_id)",
        "CREATE INDEX IF NOT EXISTS idx_runs_created_at ON agent_runs(created_at)",
    ]


def make_table(conn: Any, sessions_table: str) -> None:
    """Make ``agent_runs`` and its indexes if missing (:func:`create_statements`), in ``conn``'s transaction.

    SchemaMismatchError (:func:`not_go_runs`), before any index is made, if
    the file has an ``agent_runs`` that is not agno-golang's runs table: an
    index, trigger or row of runs does not go on a sessions table an earlier
    build let be named so. ``conn``: a ``sqlite3.Connection``.
    """
    table, *indexes = create_statements(sessions_table)
    conn.execute(table)
    check_layout(lambda sql, params: conn.execute(sql, params).fetchall())
    for statement in indexes:
        conn.execute(statement)


def append_run(
    store: BaseStorage,
    session_id: str,
    user_message: str,
    agent_message: str,
    *,
    user_id: str | None = None,
    messages: Sequence[Mapping[str, Any]] | None = None,
    metrics: Mapping[str, Any] | None = None,
    run_data: Mapping[str, Any] | None = None,
) -> RunRow:
    """Append one run to ``agent_runs`` exactly as agno-golang v0.1.6's ``CreateRun`` writes it.

    ``messages`` is what the model was sent (default: the user message
    alone), stored as Go's ``json.Marshal`` of ``[{"content", "role"}]``
    (keys sorted, ``<>&`` escaped); ``metrics`` and ``run_data`` default to
    ``{}``; ``id`` is a random UUID, ``run_name`` ``run_<unix seconds>``.
    Floats keep Python's spelling (``2.0`` where Go writes ``2``), as in
    every JSON column the store writes (docs/compat.md); Go reads either.
    Creates the table in upstream's DDL if missing. Raises InvalidInputError
    on a store that is not an agent table in SQLite, SchemaMismatchError
    (nothing written) if the file's ``agent_runs`` is not agno-golang's runs
    table (:func:`not_go_runs`).
    """
    if not applies(store):
        raise InvalidInputError("agent_runs exist only beside an agent table in SQLite", table=store.table_name)
    for name, value in (("session_id", session_id), ("user_message", user_message), ("agent_message", agent_message)):
        if not isinstance(value, str) or (name == "session_id" and not value) or not codec.is_utf8(value):
            raise InvalidInputError(f"{name} must be a str (valid Unicode), got {value!r}", table=TABLE, column=name)
    if user_id is not None and (not isinstance(user_id, str) or not codec.is_utf8(user_id)):
        raise InvalidInputError(f"user_id must be a str or None, got {user_id!r}", table=TABLE, column="user_id")
    if messages is not None and (
        isinstance(messages, (str, bytes, Mapping))
        or not isinstance(messages, Sequence)
        or not all(isinstance(m, Mapping) for m in messages)
    ):
        raise InvalidInputError(
            f"messages must be a sequence of mappings ({{'role', 'content'}}), got {messages!r:.80}",
            table=TABLE,
            column="messages",
        )
    for name, mapping in (("metrics", metrics), ("run_data", run_data)):
        if mapping is not None and not isinstance(mapping, Mapping):
            raise InvalidInputError(f"{name} must be a mapping or None, got {mapping!r:.80}", table=TABLE, column=name)
    sent = [{"role": "user", "content": user_message}] if messages is None else [dict(m) for m in messages]
    now = int(time.time())
    row = RunRow(
        id=str(uuid.uuid4()),
        session_id=session_id,
        user_id=user_id or "",
        user_message=user_message,
        agent_message=agent_message,
        messages=codec.dumps(sent),
        metrics=codec.dumps(dict(metrics or {})),
        created_at=now,
    )
    run_data_text = codec.dumps(dict(run_data or {}))
    with store.transaction() as conn:
        make_table(conn, store.table_name)
        # The header is read now: a file that was empty when the store opened it may have been made UTF-16.
        cast("SqliteStorage", store)._check_encoding(conn.execute("PRAGMA encoding").fetchone()[0])
        conn.execute(
            "INSERT INTO agent_runs (\nid, session_id, user_id, run_name, run_data, user_message, \n"
            "agent_message, messages, metrics, created_at, updated_at\n) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.id,
                row.session_id,
                row.user_id,
                f"run_{now}",
                run_data_text,
                row.user_message,
                row.agent_message,
                row.messages,
                row.metrics,
                now,
                now,
            ),
        )
    return row


def delete_session(store: BaseStorage, session_id: str, user_id: str | None) -> bool:
    """Delete a session row and its conversation's ``agent_runs`` rows, in one transaction.

    ``user_id`` scopes the row as :meth:`BaseStorage.delete` does (``None``:
    whoever owns it; ``''``: only if it has no owner). With the row go the
    runs of its conversation (:func:`agno_storage.conversation.belongs`),
    never another user's runs under its id: those are that user's, and
    ``delete(session_id, that_user)`` deletes them, as to that user the row
    is an id the table does not have. A session only ``agent_runs`` holds
    (no row) loses the runs of that user. Runs whose session still has a row
    in another agent table of the file (an archive copy, say) stay: they
    are that session's conversation too. True if anything went.
    """
    how = filter_kind(user_id)
    params = [session_id, user_id] if how == EQUALS else [session_id]
    with store.transaction() as conn:
        owners = row_owner(store, session_id)
        if not exists(store):
            return store._execute_write(store.statements.delete_for(how), params) > 0
        # Whether the row goes, read with the DELETE's own filter: its runs go first, so that the change feed
        # logs their deletes before the row's, as changes of its owner's session (changes_log._owner_filter).
        gone = owners is not None and store._is_there(session_id, user_id)
        if gone:
            # The conversation of the row that goes (conversation.belongs, its owner bound).
            owner = owners[0] if owners else None
            where = "session_id = ? AND (user_id IS NULL OR user_id = '' OR ? IS NULL OR ? = '' OR user_id = ?)"
            args: builtins.list[Any] = [session_id, owner, owner, owner]
        elif owners:
            # Another user's row: to this caller an id the table does not have, holding only their own runs.
            # (Under a row with no owner every run is that session's conversation: none is the caller's alone.)
            if not user_id or not owners[0]:
                return False
            where, args = "session_id = ? AND user_id = ?", [session_id, user_id]
        else:
            where, args = "session_id = ?", [session_id]
            if user_id is not None:
                owner_filter, more = _owner(user_id)
                where, args = f"{where} AND {owner_filter}", [*args, *more]
        where += _not_elsewhere(store, f"{TABLE}.session_id")
        removed: int = conn.execute(f"DELETE FROM {TABLE} WHERE {where}", args).rowcount  # noqa: S608
        if gone:
            gone = store._execute_write(store.statements.delete_for(how), params) > 0
        return gone or removed > 0


def row_owner(store: BaseStorage, session_id: str) -> tuple[Any] | None:
    """``(user_id,)`` of the store's row of ``session_id`` as stored, not decoded; None if it has none (or no table)."""
    if not store.table_exists():
        return None  # a Go Agent's file: agent_runs alone
    rows = store._query(f"SELECT user_id FROM {quote(store.table_name)} WHERE session_id = ?", (session_id,))  # noqa: S608
    return (rows[0][0],) if rows else None


def _not_elsewhere(store: BaseStorage, column: str) -> str:
    """`` AND ...`` terms: ``column`` is the id of no session of another agent table of the file (none if none)."""
    return "".join(
        f" AND NOT EXISTS (SELECT 1 FROM {quote(other)} o WHERE o.session_id = {column})"  # noqa: S608
        for other in _other_agent_tables(store)
    )


def held_elsewhere(store: BaseStorage, session_ids: Sequence[str]) -> set[str]:
    """Those of ``session_ids`` that another agent table of the file holds a row of (an archive copy, say).

    Their runs are that session's conversation, not a session only
    ``agent_runs`` holds: the store lists, reads, searches and counts
    none of them, and its ``delete`` leaves them.
    """
    others = _other_agent_tables(store) if session_ids else []
    found: set[str] = set()
    ids = builtins.list(session_ids)
    for other in others:
        for start in range(0, len(ids), MAX_IDS):
            chunk = ids[start : start + MAX_IDS]
            marks = ", ".join("?" for _ in chunk)
            sql = f"SELECT session_id FROM {quote(other)} WHERE session_id IN ({marks})"  # noqa: S608
            found.update(r[0] for r in store._query(sql, chunk))
    return found


def _other_agent_tables(store: BaseStorage) -> builtins.list[str]:
    """The agent tables of the store's file but its own (whose names SQLite compares without case)."""
    return [t for t in agent_tables(store) if t.lower() != store.table_name.lower()]


def agent_tables(store: BaseStorage) -> builtins.list[str]:
    """The agent sessions tables of the store's file (by their columns, as a store tells modes apart).

    Reads the catalogue, and the columns only of tables whose definition
    names ``agent_id``; never opens a virtual table (its module may not be
    loaded here).
    """
    out: builtins.list[str] = []
    for name, sql in store._query("SELECT name, sql FROM sqlite_master WHERE type = 'table'", ()):
        name, sql = str(name), str(sql or "")
        lowered = name.lower()
        if (
            lowered == TABLE
            or lowered.startswith("sqlite_")
            or "agent_id" not in sql.lower()
            or sql.lstrip().upper().startswith("CREATE VIRTUAL")
        ):
            continue
        columns = [row[0] for row in store._query("SELECT name FROM pragma_table_info(?)", (name,))]
        if identify_mode(columns) is Mode.AGENT:
            out.append(name)
    return out


def alone(store: BaseStorage) -> bool:
    """True if ``agent_runs`` is the only home of agent sessions in the file: no agent table beside it.

    A Go Agent makes no sessions table (it writes ``agent_runs`` alone), also
    in a file a Go Team's table or other tables share. Then its runs are the
    sessions of an agent store whose table is not there. Beside an agent
    table (one whose columns are an agent table's, as a store tells modes
    apart), a store naming a table the file lacks is a mistyped name, and
    reads and deletes no runs. Reads the catalogue, and the columns only of
    tables whose definition names ``agent_id``; never opens a virtual table
    (its module may not be loaded here). SchemaMismatchError
    (:func:`not_go_runs`) if that ``agent_runs`` is not agno-golang's runs table.
    """
    if not applies(store):
        return False
    names = {str(r[0]).lower() for r in store._query("SELECT name FROM sqlite_master WHERE type = 'table'", ())}
    if TABLE not in names or agent_tables(store):
        return False
    check_layout(store._query)  # a sessions table an earlier build let be named so holds no Go Agent's sessions
    return True


def delete_runs_only(store: BaseStorage, session_id: str, user_id: str | None) -> bool:
    """Delete the runs of a session of an agent store whose table is not there, where :func:`alone` says so.

    ``user_id`` scopes them as :func:`delete_session` scopes a session only
    ``agent_runs`` holds. True if any went; False in any other file.
    SchemaMismatchError, nothing deleted, if the table's ids or owners compare inexactly.
    """
    if not alone(store):
        return False
    check_store_table(store)  # a case-blind user_id would take another user's runs with these
    where, args = "session_id = ?", [session_id]
    if user_id is not None:
        owner, more = _owner(user_id)
        where, args = f"{where} AND {owner}", [*args, *more]
    with store.transaction() as conn:
        removed: int = conn.execute(f"DELETE FROM {TABLE} WHERE {where}", args).rowcount  # noqa: S608
    return removed > 0


def applies(store: BaseStorage) -> bool:
    """True if ``store`` can hold Go Agent runs: an agent table in SQLite."""
    from agno_storage.backends.sqlite import SqliteStorage

    return isinstance(store, SqliteStorage) and store.mode is Mode.AGENT


def exists(store: BaseStorage) -> bool:
    """True if the file has an ``agent_runs`` table that is the store's to read.

    It is when the store's table is there, or when no agent table is (:func:`alone`:
    a Go Agent keeps its sessions there alone). A store naming a table the
    file lacks beside an agent table (a mistyped name) reads no runs.
    SchemaMismatchError if its ids or owners compare inexactly (a COLLATE
    another program declared), as a sessions table's would be.
    """
    if not applies(store):
        return False
    rows = store._query("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE", (TABLE,))
    found = bool(rows) and (store.table_exists() or alone(store))
    if found:
        check_store_table(store, rows[0][0] or "")
    return found


def check_store_layout(store: BaseStorage) -> None:
    """:func:`check_layout` of ``store``'s SQLite file."""
    check_layout(store._query)


def check_store_table(store: BaseStorage, table_sql: str | None = None) -> None:
    """:func:`check_table` of the ``agent_runs`` in ``store``'s SQLite file."""
    check_table(store._query, table_sql)


def check_table(query: Query, table_sql: str | None = None) -> None:
    """SchemaMismatchError if the file's ``agent_runs`` is not one the store reads runs from: not agno-golang's
    runs table (:func:`not_go_runs`: a sessions table an earlier agno-storage let be named so), or one whose ids
    compare inexactly (:func:`check_collations`). Nothing if there is none. ``query`` and ``table_sql``: as
    :func:`check_collations` takes them.

    Each definition (``sqlite_master.sql``) is looked at once: the columns follow from it.
    """
    if table_sql is None:
        rows = query("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE", (TABLE,))
        if not rows:
            return
        table_sql = rows[0][0] or ""
    if table_sql not in _GO_LAYOUT:
        check_layout(query)
        if table_sql and len(_GO_LAYOUT) < _CHECKED_KEPT:
            _GO_LAYOUT.add(table_sql)
    check_collations(query, table_sql)


#: Definitions of ``agent_runs`` found to be agno-golang's runs table (:func:`check_table`).
_GO_LAYOUT: set[str] = set()


#: What :func:`check_collations` found of each ``agent_runs`` definition (its ``sqlite_master.sql``): why its ids
#: do not compare exactly, or None.
_CHECKED: dict[str, str | None] = {}
#: Distinct definitions kept; past it they are looked at on every call.
_CHECKED_KEPT = 64
_UNSEEN: Any = object()


def check_collations(
    query: Callable[[str, Sequence[Any]], Sequence[Sequence[Any]]], table_sql: str | None = None
) -> None:
    """SchemaMismatchError if the table's ids compare inexactly (:func:`ids_apart`). ``query`` runs one statement
    on the SQLite file; ``table_sql``: the table's ``sqlite_master.sql``, if read already."""
    why = ids_apart(query, table_sql)
    if why is not None:
        raise SchemaMismatchError(
            f"table {TABLE!r} cannot keep runs apart: {why}; the store compares ids and owners exactly "
            "(declare its text columns TEXT, without COLLATE)",
            table=TABLE,
        )


def ids_apart(
    query: Callable[[str, Sequence[Any]], Sequence[Sequence[Any]]], table_sql: str | None = None
) -> str | None:
    """Why the table's ids do not compare exactly, or None: ``user_id TEXT COLLATE NOCASE`` (or RTRIM) would
    give alice the runs of ``ALICE`` (or ``alice ``), and a session the runs of another's id; so would one
    declared NUMERIC, INTEGER or REAL (``'1.0'`` would be the user ``'1'``). Arguments as
    :func:`check_collations` takes them."""
    ids = ("id", "session_id", "user_id")
    if table_sql is None:
        rows = query("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE", (TABLE,))
        table_sql = (rows[0][0] or "") if rows else ""
    # The answer follows from the table's definition alone (its columns' types and collations), which is read on
    # every history, search and usage of an agent table: each definition is looked at once.
    why: str | None = _CHECKED.get(table_sql, _UNSEEN)
    if why is _UNSEEN:
        why = inexact_collation(query, TABLE, ids, table_sql) or _converting_id(query, ids)
        if len(_CHECKED) < _CHECKED_KEPT:
            _CHECKED[table_sql] = why
    return why


def _converting_id(query: Callable[[str, Sequence[Any]], Sequence[Sequence[Any]]], ids: Sequence[str]) -> str | None:
    """Why one of ``ids`` of ``agent_runs`` does not compare exactly as text (declared of an affinity that turns
    text reading as a number into one: ``'1.0'`` asked for equals the user ``'1'`` stored as 1), or None."""
    declared = {
        str(name): str(decl or "") for name, decl in query("SELECT name, type FROM pragma_table_info(?)", (TABLE,))
    }
    for column in ids:
        kind = affinity(declared[column]) if column in declared else "TEXT"
        if kind in ("INTEGER", "REAL", "NUMERIC"):
            return (
                f"{column} is declared {declared[column]!r}, and SQLite keeps text that reads as a number in a column "
                f"of {kind} affinity as that number (so '1.0' would be the user or session '1')"
            )
    return None


def _owner(user_id: str, column: str = "user_id") -> tuple[str, builtins.list[Any]]:
    """The condition on ``column`` for runs of ``user_id``: ``''`` is "no user", a NULL or empty user_id, as in list()."""
    if user_id == "":
        return f"({column} IS NULL OR {column} = '')", []
    return f"{column} = ?", [user_id]


def read_runs(
    store: BaseStorage,
    session_id: str,
    user_id: str | None = None,
    *,
    checked: bool = False,
    with_no_user: bool = False,
    of_unowned_row: bool = False,
) -> builtins.list[RunRow]:
    """The runs of ``session_id`` in the order they were written; with ``user_id``, only that user's.

    With ``with_no_user`` also the runs with no user: the conversation of a
    session row owned by ``user_id`` (:func:`agno_storage.conversation.belongs`),
    read without decoding another user's runs (a damaged one of theirs must
    not fail the owner's read), while the row is still ``user_id``'s. With
    no ``user_id`` and ``of_unowned_row``, the conversation of a row with no
    owner: every run, while the row still has none. Empty when the store is not an agent table
    in SQLite or the file has no ``agent_runs`` table of the store's
    (:func:`exists`; ``checked``: the caller found it is there, for many
    sessions at once). Raises CorruptRowError for a row whose columns hold
    the wrong types.
    """
    if not checked and not exists(store):
        return []
    sql = f"SELECT {_COLUMNS} FROM {TABLE} WHERE session_id = ?"  # noqa: S608 - constant identifiers
    params: builtins.list[Any] = [session_id]
    owner, args = _owner_terms(store, user_id, with_no_user, of_unowned_row)
    if owner:
        sql += " AND " + owner
        params += args
    sql += " ORDER BY created_at, rowid"
    return [_row(r) for r in store._query(sql, params)]


def _owner_terms(
    store: BaseStorage, user_id: str | None, with_no_user: bool, of_unowned_row: bool = False
) -> tuple[str, builtins.list[Any]]:
    """The condition on runs of ``user_id`` (:func:`_owner`), and with ``with_no_user`` of runs with no user;
    with no ``user_id``, none, or with ``of_unowned_row`` every run while the row under its id has no owner.

    A run with no user is ``user_id``'s only while the session row under its
    id is, and a run is part of an ownerless row's conversation only while
    the row has no owner: checked in the statement that reads the run, so a
    session handed to another owner after its row was read never brings
    that owner's runs into the conversation read from the row.
    """
    if user_id is None:
        if not of_unowned_row:
            return "", []
        unowned = (
            f"EXISTS (SELECT 1 FROM {quote(store.table_name)} s"  # noqa: S608 - quoted identifiers only
            f" WHERE s.session_id = {TABLE}.session_id AND (s.user_id IS NULL OR s.user_id = ''))"
        )
        return unowned, []
    condition, args = _owner(user_id)
    if with_no_user and user_id != "":
        owned = (
            f"EXISTS (SELECT 1 FROM {quote(store.table_name)} s"  # noqa: S608 - quoted identifiers only
            f" WHERE s.session_id = {TABLE}.session_id AND s.user_id = ?)"
        )
        condition = f"({condition} OR ((user_id IS NULL OR user_id = '') AND {owned}))"
        args = [*args, user_id]
    return condition, args


#: The most session ids :func:`runs_of` takes in one call (one statement, well under SQLite's bound-parameter limit).
MAX_IDS = 10_000


def runs_of(
    store: BaseStorage,
    session_ids: Sequence[str],
    user_id: str | None = None,
    *,
    with_no_user: bool = False,
    of_unowned_row: bool = False,
) -> dict[str, builtins.list[RunRow]]:
    """The runs of each of ``session_ids`` that has any, each session's in the order written (one statement).

    As :func:`read_runs` for many sessions at once (for bringing an index up
    to date); at most :data:`MAX_IDS` ids a call. With ``user_id``, only
    that user's runs are read (``''`` is "no user", as in list()), and with
    ``with_no_user`` those with no user too; the others are not checked.
    ``of_unowned_row``: as :func:`read_runs` takes it.
    """
    if not session_ids or not exists(store):
        return {}
    marks = ", ".join("?" for _ in session_ids)
    params: builtins.list[Any] = builtins.list(session_ids)
    owner = ""
    condition, args = _owner_terms(store, user_id, with_no_user, of_unowned_row)
    if condition:
        owner = " AND " + condition
        params += args
    sql = f"SELECT {_COLUMNS} FROM {TABLE} WHERE session_id IN ({marks}){owner} ORDER BY session_id, created_at, rowid"  # noqa: S608 - constant identifiers
    out: dict[str, builtins.list[RunRow]] = {}
    for raw in store._query(sql, params):
        row = _row(raw)
        out.setdefault(row.session_id, []).append(row)
    return out


def all_runs(store: BaseStorage) -> builtins.list[RunRow]:
    """Every run in the file, by session and then in the order written (for building an index)."""
    if not exists(store):
        return []
    sql = f"SELECT {_COLUMNS} FROM {TABLE} ORDER BY session_id, created_at, rowid"  # noqa: S608 - constant identifiers
    return [_row(r) for r in store._query(sql, ())]


def runs_only_sessions(store: BaseStorage, user_id: str | None = None) -> builtins.list[str]:
    """Session ids that have ``agent_runs`` rows but no row in the sessions table, newest first.

    These are the sessions a Go Agent started (it writes no session row):
    ``list()`` and ``count()`` of the sessions table do not include them;
    ``history()`` and ``search()`` do. Runs whose id another agent table of
    the file holds are that session's (:func:`held_elsewhere`), not one of
    these. With ``user_id``, only sessions whose runs are that user's.
    """
    if not exists(store):
        return []
    if not store.table_exists():
        return _all_run_sessions(store, user_id)
    t = quote(store.table_name)
    elsewhere = _not_elsewhere(store, "r.session_id")
    sql = (
        f"SELECT r.session_id FROM {TABLE} r WHERE NOT EXISTS "  # noqa: S608 - quoted identifiers only
        f"(SELECT 1 FROM {t} s WHERE s.session_id = r.session_id){elsewhere}"
    )
    return [r[0] for r in _by_session(store, sql, user_id)]


def _by_session(store: BaseStorage, sql: str, user_id: str | None) -> builtins.list[Any]:
    """The rows of ``sql`` (over ``agent_runs`` as ``r``, ending in its WHERE clause) with, if given, only
    ``user_id``'s runs: one a session, the session of the newest run first."""
    params: builtins.list[Any] = []
    if user_id is not None:
        owner, args = _owner(user_id, "r.user_id")
        sql += " AND " + owner
        params += args
    return store._query(sql + " GROUP BY r.session_id ORDER BY MAX(r.created_at) DESC, r.session_id", params)


def belongs_sql(run: str, session: str) -> str:
    """:func:`agno_storage.conversation.belongs` in SQL: run alias ``run`` is part of session alias ``session``'s
    conversation (a run with no user, the owner's, or any run of a session with no owner)."""
    return (
        f"({run}.user_id IS NULL OR {run}.user_id = '' OR {session}.user_id IS NULL OR {session}.user_id = '' "
        f"OR {run}.user_id = {session}.user_id)"
    )


def stray_sessions(store: BaseStorage, user_id: str | None = None) -> builtins.list[tuple[str, str]]:
    """(session_id, owner) of owned sessions whose id also holds another user's runs, newest run first.

    A Go Agent given user B and the id of a session A owns writes its runs
    under that id. They are not part of A's conversation
    (:func:`agno_storage.conversation.belongs`); they are B's, as
    ``history(session_id, B)`` reads them, and ``search`` and ``usage``
    count them as B's. With ``user_id``, only sessions holding that user's
    runs (``''``, "no user", has none: a run with no user is the owner's).
    """
    if user_id == "" or not exists(store) or not store.table_exists():
        return []
    t = quote(store.table_name)
    sql = (
        f"SELECT r.session_id, s.user_id FROM {TABLE} r JOIN {t} s ON s.session_id = r.session_id "  # noqa: S608 - quoted identifiers only
        f"WHERE NOT {belongs_sql('r', 's')}"
    )
    return [(r[0], r[1]) for r in _by_session(store, sql, user_id)]


def _all_run_sessions(store: BaseStorage, user_id: str | None) -> builtins.list[str]:
    sql = f"SELECT session_id FROM {TABLE}"  # noqa: S608 - constant identifiers
    params: builtins.list[Any] = []
    if user_id is not None:
        owner, args = _owner(user_id)
        sql += " WHERE " + owner
        params += args
    sql += " GROUP BY session_id ORDER BY MAX(created_at) DESC, session_id"
    return [r[0] for r in store._query(sql, params)]


def _row(raw: tuple[Any, ...]) -> RunRow:
    run_id, session_id, user_id, user_message, agent_message, messages, metrics, created_at = raw
    sid = session_id if isinstance(session_id, str) else repr(session_id)
    for name, value in (
        ("id", run_id),
        ("session_id", session_id),
        ("user_id", user_id),
        ("user_message", user_message),
        ("agent_message", agent_message),
        ("messages", messages),
        ("metrics", metrics),
    ):
        if value is not None and not isinstance(value, str):
            raise CorruptRowError(
                f"{TABLE}.{name} of a run of session {sid!r} holds {type(value).__name__}, not text",
                table=TABLE,
                session_id=sid,
                column=name,
            )
    if created_at is not None and (isinstance(created_at, bool) or not isinstance(created_at, int)):
        raise CorruptRowError(
            f"{TABLE}.created_at of a run of session {sid!r} holds {type(created_at).__name__}, not an integer",
            table=TABLE,
            session_id=sid,
            column="created_at",
        )
    return RunRow(
        id=run_id if run_id is not None else "",
        session_id=session_id,
        user_id=user_id,
        user_message=user_message,
        agent_message=agent_message,
        messages=messages,
        metrics=metrics,
        created_at=created_at,
    )


__all__ = [
    "ALL_COLUMNS",
    "MAX_IDS",
    "TABLE",
    "Query",
    "StoredRun",
    "agent_tables",
    "all_runs",
    "alone",
    "append_run",
    "applies",
    "belongs_sql",
    "check_collations",
    "check_layout",
    "check_store_layout",
    "check_store_table",
    "check_table",
    "create_statements",
    "delete_runs_only",
    "delete_session",
    "exists",
    "held_elsewhere",
    "is_go_layout",
    "make_table",
    "not_go_runs",
    "read_runs",
    "row_owner",
    "runs_of",
    "runs_only_sessions",
    "stray_sessions",
]
