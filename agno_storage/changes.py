# ruff: noqa: S608 - every identifier here comes through schema.quote; every value is bound.
"""A feed of session changes from every writer: :class:`Change`, :func:`enable_changes`, :func:`changes`.

:func:`enable_changes` adds a log table beside the sessions table and
triggers that append (table, session_id, insert/update/delete, time) to it
for every row any program writes, in that program's own transaction: the
same opt-in, log-only design as the search index (docs/search.md). A
consumer keeps the ``cursor`` of the last change it processed and asks for
``changes(since=cursor)`` after a restart.

Order: on SQLite the cursor is the log's AUTOINCREMENT id, assigned under
the file's write lock, so cursor order is commit order. On PostgreSQL
concurrent transactions commit in any order, so a row's cursor is assigned
by :func:`changes` once every transaction that could still commit before
it has ended (``pg_snapshot_xmin``): a consumer never misses a change
behind its cursor. Changes older than the retention (default 7 days) are
pruned by :func:`changes`; asking for a cursor before them raises
StorageError instead of silently skipping them. So does asking for one
handed out before writes went unlogged (a watched table dropped behind the
feed, say) and :func:`enable_changes` started the feed again.
"""

from __future__ import annotations

import builtins
import re
import time
from typing import TYPE_CHECKING, Any, Final, cast

import attrs

from agno_storage import agent_runs
from agno_storage.errors import InvalidInputError, ReadOnlyDatabaseError, StorageError, TableNotFoundError
from agno_storage.schema import check_derived_names, quote, unquote

if TYPE_CHECKING:
    from agno_storage.backends.base import BaseStorage
    from agno_storage.backends.postgres import PostgresStorage
    from agno_storage.backends.sqlite import SqliteStorage

#: How long changes are kept unless enable_changes() is told otherwise (seconds).
DEFAULT_RETENTION: Final = 7 * 86400

#: The largest integer either engine stores (a cursor, a retention): SQLite's INTEGER, PostgreSQL's bigint.
_INT64_MAX: Final = 2**63 - 1


@attrs.frozen(kw_only=True)
class Change:
    """One row written by some program: its ``table`` (the sessions table or ``agent_runs``) and session.

    ``op`` is ``"insert"``, ``"update"`` or ``"delete"``; ``at`` is Unix
    seconds. agno-golang's ``INSERT OR REPLACE`` of an existing session shows
    as ``"insert"`` (SQLite gives the trigger no old row unless the writer
    turned ``recursive_triggers`` on, when a ``"delete"`` comes first).
    """

    cursor: int
    table: str
    session_id: str
    user_id: str | None
    op: str
    at: int


def _names(store: BaseStorage) -> tuple[str, str]:
    t = store.table_name
    schema = getattr(store, "schema", None)
    if _is_sqlite(store) or not schema:
        return quote(t + "_changes"), quote(t + "_changes_meta")
    return f"{quote(schema)}.{quote(t + '_changes')}", f"{quote(schema)}.{quote(t + '_changes_meta')}"


def _is_sqlite(store: BaseStorage) -> bool:
    from agno_storage.backends.sqlite import SqliteStorage

    return isinstance(store, SqliteStorage)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


#: The log's columns in order, as enable_changes() makes it on SQLite and on PostgreSQL (every build so far):
#: how a table by the log's name is known to be the feed's and not another program's.
_SQLITE_LOG_COLUMNS: Final = ("cursor", "tbl", "session_id", "user_id", "op", "at")
_PG_LOG_COLUMNS: Final = ("id", "cursor", "tbl", "session_id", "user_id", "op", "at", "xid")
#: The meta table's columns; it is the feed's only if it also holds the 'pruned_through' key (see :func:`_is_meta`).
_META_COLUMNS: Final = ("key", "value")


def _columns(store: BaseStorage, table: str) -> tuple[str, ...]:
    """The columns, in order, of the plain table ``table`` (quoted, qualified or not); () if no table has that name.

    A view or an index by that name has none: it is no table of the feed's.
    """
    if _is_sqlite(store):
        rows = store._query(
            "SELECT p.name FROM sqlite_master AS m, pragma_table_info(m.name) AS p "
            "WHERE m.type = 'table' AND m.name = ? COLLATE NOCASE ORDER BY p.cid",
            (unquote(table),),
        )
    else:
        rows = store._query(
            "SELECT a.attname FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid "
            "WHERE c.oid = to_regclass(%s) AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum",
            (table,),
        )
    return tuple(str(r[0]) for r in rows)


def _is_log(store: BaseStorage, log: str) -> bool:
    """Whether ``log`` is a change log: a table with the log's columns, not one that merely has its name."""
    return _columns(store, log) == (_SQLITE_LOG_COLUMNS if _is_sqlite(store) else _PG_LOG_COLUMNS)


def _is_meta(store: BaseStorage, meta: str) -> bool:
    """Whether ``meta`` is a feed's meta table: ``(key, value)`` holding the ``pruned_through`` key.

    enable_changes() writes that key in the transaction that makes the
    table, so every meta table of a feed has it; a key-value table of
    another program's by that name (two common column names) does not.
    """
    if _columns(store, meta) != _META_COLUMNS:
        return False
    # Compared as text: a table of another program's may have other types in these columns.
    return bool(store._query(f"SELECT 1 FROM {meta} WHERE CAST(key AS TEXT) = 'pruned_through'", ()))


def enabled(store: BaseStorage) -> bool:
    """Whether the log is there: the log table itself (by its columns), not a table that shares its name."""
    log, _ = _names(store)
    return _is_log(store, log)


def _not_enabled(store: BaseStorage, *, while_reading: bool = False) -> StorageError:
    """The StorageError of :func:`changes` on a table with no feed (or one disabled while it read)."""
    t = store.table_name
    if while_reading:
        return StorageError(
            f"the change feed of table {t!r} is not enabled: disable_changes() dropped it while changes() read it "
            "(enable_changes() starts a new feed)",
            table=t,
        )
    return StorageError(f"the change feed of table {t!r} is not enabled (enable_changes())", table=t)


def enable_changes(store: BaseStorage, retention: int = DEFAULT_RETENTION) -> None:
    """Start logging every write to the table (and to ``agent_runs``); idempotent, keeps the log if on.

    ``retention`` (seconds, at least 60) is stored with the log and applies
    to every consumer. On an agent table in SQLite, ``agent_runs`` is created
    in agno-golang's own DDL if missing, so a Go Agent's first run is logged
    too (the Go Agent creates it the same way, ``IF NOT EXISTS``).

    On a feed that missed writes since it was enabled (another program
    dropped a watched table, or on PostgreSQL emptied it by TRUNCATE) the
    triggers are made again and the log starts over: its changes are
    deleted and every cursor handed out so far counts as pruned, so
    :func:`changes` raises StorageError for each of them (a consumer reads
    the sessions again) rather than going on past what it missed.

    Raises InvalidInputError, before changing anything, for a retention out
    of range or a sessions table named ``agent_runs``; StorageError if
    another table or trigger has a name the feed needs, or a watched table
    was renamed with the feed's triggers on it (the message says what to
    do). On PostgreSQL the triggers' function runs as the role that called
    this (``SECURITY DEFINER``), so writers need no grant on the log.
    """
    t = store.table_name
    if type(retention) is not int or not 60 <= retention <= _INT64_MAX:
        raise InvalidInputError(f"retention must be seconds from 60 to 2**63 - 1, got {retention!r}", table=t)
    if _is_runs_table(store):
        # On SQLite it is agno-golang's runs table, whose triggers (keyed by a run id) the feed of an agent
        # table puts on it; either way a Change from it could not be told from one of a Go Agent's runs.
        raise InvalidInputError(
            f"a sessions table named {t!r} cannot have a change feed: {agent_runs.TABLE} is the name of the "
            "Go Agent's runs table, which the feed of an agent table watches; use another table name",
            table=t,
        )
    if not _is_sqlite(store):
        check_derived_names(t, ("_changes", "_changes_meta", "_changes_log", _TRUNCATE_SUFFIX), "the change feed")
    store.create()
    log, meta = _names(store)
    with store.transaction() as conn:
        kept = enabled(store)
        for name in (log, meta):
            if not _is_sqlite(store):
                _pg_require_own(conn, name, t)  # another role's table: this refusal names its owner
            if _taken(store, name) and not (kept if name == log else _is_meta(store, meta)):
                # The feed would write into someone else's table (its triggers failing writes to the sessions table).
                raise StorageError(
                    f"cannot make the change log of table {t!r}: the database has a table named {name} already",
                    table=t,
                )
        if _is_sqlite(store):
            # Read before the triggers are made again: gone, they logged nothing since they went.
            missed = kept and _gap(store, meta) is not None
            new = not conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = ? COLLATE NOCASE", (unquote(log),)
            ).fetchone()
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {log} (cursor INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, "
                "session_id TEXT NOT NULL, user_id TEXT, op TEXT NOT NULL, at INTEGER NOT NULL)"
            )
            conn.execute(f"CREATE TABLE IF NOT EXISTS {meta} (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
            conn.execute(f"INSERT OR REPLACE INTO {meta} (key, value) VALUES ('retention', ?)", (retention,))
            start = _first_cursor() if new else 0
            if new:
                conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (unquote(log), start))
            conn.execute(f"INSERT OR IGNORE INTO {meta} (key, value) VALUES ('pruned_through', ?)", (start,))
            if missed:
                _start_over(store, conn, log, meta)
            watched = [t]
            if agent_runs.applies(store):
                for statement in agent_runs.create_statements(t):
                    conn.execute(statement)
                watched.append(agent_runs.TABLE)
            for table in watched:
                for trigger in _trigger_names(table, t):
                    found = _sqlite_trigger(conn, trigger)
                    if found is not None and found[0].lower() != table.lower():
                        raise _misplaced_trigger(t, log, table, trigger, *found)
                for statement in _sqlite_triggers(log, table, t):
                    conn.execute(statement)  # drops and makes each again: an earlier version's is replaced
        else:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (log,))
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {log} (id bigserial PRIMARY KEY, cursor bigint UNIQUE, "
                "tbl text NOT NULL, session_id text NOT NULL, user_id text, op text NOT NULL, "
                "at bigint NOT NULL DEFAULT extract(epoch FROM clock_timestamp())::bigint, "
                "xid xid8 NOT NULL DEFAULT pg_current_xact_id())"
            )
            conn.execute(f"CREATE TABLE IF NOT EXISTS {meta} (key text PRIMARY KEY, value bigint NOT NULL)")
            # Before anything is written into them: the trigger function runs as this role, and a log another
            # role owns (one it made where this role's search path finds it first, say) would run that role's
            # triggers with this role's rights, from the first INSERT on.
            for name in (log, meta):
                _pg_require_own(conn, name, t)
            conn.execute(
                f"INSERT INTO {meta} (key, value) VALUES ('retention', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                (retention,),
            )
            conn.execute(
                f"INSERT INTO {meta} (key, value) VALUES ('pruned_through', %s) ON CONFLICT DO NOTHING",
                (_first_cursor(),),
            )
            function = _function(log)
            table = cast("PostgresStorage", store).qualified_table
            elsewhere = _pg_triggers(conn, function, but_on=table)
            if elsewhere:
                # The table was renamed with the trigger on it: it still logs that table's writes into this feed.
                raise StorageError(
                    f"cannot start the change feed of table {t!r}: its trigger is on table {elsewhere[0][1]!r}, "
                    f"which another program renamed from {t!r} behind the feed (the trigger went along); "
                    "disable_changes() removes the trigger and the log, then enable_changes() starts a new feed",
                    table=t,
                )
            if kept and _gap(store, meta) is not None:
                _start_over(store, conn, log, meta)
            # Named with their schemas as resolved now, so no writer's search_path moves them (or breaks them).
            conn.execute(_pg_function_sql(function, _pg_resolved(conn, log), _pg_resolved(conn, meta)))
            # Only triggers call it: a role that could attach it to a table of its own would write into this log.
            conn.execute(f"REVOKE ALL ON FUNCTION {function}() FROM PUBLIC")
            trigger = quote(t + "_changes_log")
            conn.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
            conn.execute(
                f"CREATE TRIGGER {trigger} AFTER INSERT OR UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {function}()"
            )
            truncate = quote(t + _TRUNCATE_SUFFIX)
            conn.execute(f"DROP TRIGGER IF EXISTS {truncate} ON {table}")
            conn.execute(
                f"CREATE TRIGGER {truncate} AFTER TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )


#: The PostgreSQL trigger that marks the feed when the sessions table is emptied by TRUNCATE (suffix of its name).
_TRUNCATE_SUFFIX: Final = "_changes_truncate"


def _is_runs_table(store: BaseStorage) -> bool:
    """Whether the sessions table is named ``agent_runs`` (in SQLite, whatever its case: that is one table)."""
    t = store.table_name
    return t.lower() == agent_runs.TABLE if _is_sqlite(store) else t == agent_runs.TABLE


def _function(log: str) -> str:
    """The PostgreSQL trigger function of the feed whose log is ``log``, quoted (and qualified as ``log`` is)."""
    return log[:-1] + '_log"'


def _pg_function_sql(function: str, log: str, meta: str) -> str:
    """CREATE OR REPLACE of the PostgreSQL trigger function, writing into ``log`` and ``meta`` (schema-qualified).

    ``SECURITY DEFINER``: it runs as the role that enabled the feed, so a
    writer needs no grant on the log; with a fixed search_path, so nothing
    in it resolves through a writer's.
    """
    insert = f"INSERT INTO {log} (tbl, session_id, user_id, op)"
    body = (
        "BEGIN "
        # TRUNCATE fires no row trigger, so its deletes cannot be logged: the feed is marked as having a gap.
        "IF TG_OP = 'TRUNCATE' THEN "
        f"INSERT INTO {meta} (key, value) VALUES ('truncated', extract(epoch FROM clock_timestamp())::bigint) "
        "ON CONFLICT (key) DO NOTHING; RETURN NULL; END IF; "
        f"IF TG_OP = 'DELETE' THEN {insert} VALUES (TG_TABLE_NAME, OLD.session_id, OLD.user_id, 'delete'); "
        "ELSE "
        # An update that renames the session: the old id is gone. One that changes its owner: the
        # old owner's consumers see it change too.
        "IF TG_OP = 'UPDATE' AND OLD.session_id IS DISTINCT FROM NEW.session_id THEN "
        f"{insert} VALUES (TG_TABLE_NAME, OLD.session_id, OLD.user_id, 'delete'); "
        "ELSIF TG_OP = 'UPDATE' AND OLD.user_id IS DISTINCT FROM NEW.user_id THEN "
        f"{insert} VALUES (TG_TABLE_NAME, OLD.session_id, OLD.user_id, 'update'); "
        "END IF; "
        f"{insert} VALUES (TG_TABLE_NAME, NEW.session_id, NEW.user_id, "
        "CASE WHEN TG_OP = 'UPDATE' AND OLD.session_id IS DISTINCT FROM NEW.session_id THEN 'insert' "
        "ELSE lower(TG_OP) END); "
        "END IF; RETURN NULL; END"
    )
    tag, n = "$fn$", 0
    while tag in body:  # a schema name with the quote's tag in it would end the body early
        n += 1
        tag = f"$fn{n}$"
    return (
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER "
        f"SET search_path = pg_catalog, pg_temp AS {tag}{body}{tag}"
    )


def _pg_class(conn: Any, table: str) -> Any:
    """(schema, name, owner, current_user) of ``table`` (quoted, qualified or not) where the search path finds
    it now, or None."""
    return conn.execute(
        "SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner), current_user FROM pg_class AS c "
        "JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)",
        (table,),
    ).fetchone()


def _pg_require_own(conn: Any, table: str, t: str) -> None:
    """StorageError unless ``table`` (as the search path finds it now) is owned by the role running this."""
    row = _pg_class(conn, table)
    if row is not None and row[2] != row[3]:
        raise StorageError(
            f"cannot start the change feed of table {t!r}: {row[0]}.{row[1]} is owned by role {row[2]!r}, not "
            f"by {row[3]!r}, which enables the feed; the feed's trigger function runs as the role that enables it, "
            "so its log must be that role's (enable the feed as that role, or give the table to this one)",
            table=t,
        )


def _pg_resolved(conn: Any, table: str) -> str:
    """``table`` (quoted, qualified or not) as schema.name, quoted: where the search path finds it now."""
    row = _pg_class(conn, table)
    return f"{quote(row[0])}.{quote(row[1])}"


def _pg_triggers(conn: Any, function: str, but_on: str | None = None) -> builtins.list[tuple[str, str, str]]:
    """(schema, table, trigger) of every trigger that calls ``function``, leaving out those on ``but_on``."""
    rows: Any = conn.execute(
        "SELECT n.nspname, c.relname, t.tgname FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid "
        "JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE t.tgfoid = to_regprocedure(%s) "
        "AND t.tgrelid IS DISTINCT FROM to_regclass(%s) ORDER BY 1, 2, 3",
        (function + "()", but_on),
    ).fetchall()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def _trigger_names(table: str, sessions_table: str) -> builtins.list[str]:
    """The names of the feed's triggers on ``table`` (the sessions table, or ``agent_runs``), unquoted."""
    if table != agent_runs.TABLE:
        return [f"{table}_changes_{op}" for op in ("insert", "update", "delete")]
    return [f"{sessions_table}_runs_changes_{op}" for op in ("insert", "update", "delete", "replace", "reid")]


def _sqlite_trigger(conn: Any, trigger: str) -> tuple[str, str] | None:
    """The table the SQLite trigger ``trigger`` is on and its SQL, or None if there is none by that name."""
    row = conn.execute(
        "SELECT tbl_name, sql FROM sqlite_master WHERE type = 'trigger' AND name = ? COLLATE NOCASE", (trigger,)
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1] or ""))


def _writes_to(sql: str, log: str) -> bool:
    """Whether a feed's SQLite trigger (its ``sql``) appends to ``log`` (quoted): it is that feed's own."""
    return f"insert into {log.lower()} (" in sql.lower()


def _misplaced_trigger(t: str, log: str, table: str, trigger: str, on: str, sql: str) -> StorageError:
    """The error for a trigger the feed of ``t`` needs on ``table`` that is on table ``on`` instead."""
    if _writes_to(sql, log):
        return StorageError(
            f"cannot start the change feed of table {t!r}: its trigger {trigger!r} is on table {on!r}, which "
            f"another program renamed from {table!r} behind the feed (its triggers went along); "
            "disable_changes() removes them and the log, then enable_changes() starts a new feed",
            table=t,
        )
    owner = re.search(r'insert into "(\w+)_changes" \(', sql, re.IGNORECASE)
    other = f"table {owner.group(1)!r}" if owner else "another table"
    # The feed of t names its agent_runs triggers <t>_runs_changes_*, as the feed of a table <t>_runs names its own.
    return StorageError(
        f"cannot log {table} for the change feed of table {t!r}: the trigger {trigger!r} it needs is on table "
        f"{on!r}, for the change feed of {other}; tables named t and t_runs cannot both have one: "
        f"disable_changes() on {other} first",
        table=t,
    )


def _sqlite_triggers(log: str, table: str, sessions_table: str) -> builtins.list[str]:
    now = "CAST(strftime('%s', 'now') AS INTEGER)"
    tbl = _literal(table)
    insert = f"INSERT INTO {log} (tbl, session_id, user_id, op, at)"
    # A row with no session_id (SQLite lets a TEXT PRIMARY KEY hold NULL in a broken file) is not logged: no
    # reader can ask for it, and the log's NOT NULL would fail the writer's statement, repair included.
    body = {
        "insert": f"{insert} SELECT {tbl}, new.session_id, new.user_id, 'insert', {now} "
        "WHERE new.session_id IS NOT NULL;",
        # An update that renames the session: the old id is gone, the new one appears. One that changes
        # the owner: the old owner's consumers see it change too.
        "update": (
            f"{insert} SELECT {tbl}, old.session_id, old.user_id, 'delete', {now} "
            "WHERE old.session_id IS NOT new.session_id AND old.session_id IS NOT NULL; "
            f"{insert} SELECT {tbl}, old.session_id, old.user_id, 'update', {now} "
            "WHERE old.session_id IS new.session_id AND old.user_id IS NOT new.user_id "
            "AND old.session_id IS NOT NULL; "
            f"{insert} SELECT {tbl}, new.session_id, new.user_id, "
            f"CASE WHEN old.session_id IS new.session_id THEN 'update' ELSE 'insert' END, {now} "
            "WHERE new.session_id IS NOT NULL;"
        ),
        "delete": f"{insert} SELECT {tbl}, old.session_id, old.user_id, 'delete', {now} "
        "WHERE old.session_id IS NOT NULL;",
    }
    events = [("insert", "AFTER INSERT"), ("update", "AFTER UPDATE"), ("delete", "AFTER DELETE")]
    if table == agent_runs.TABLE:
        # A run is keyed by its id: a REPLACE (or UPDATE OR REPLACE of the id) taking an id another session
        # (or another owner) holds deletes that row with no delete trigger fired; log it beforehand, as
        # an update (re-read it): an INSERT OR IGNORE fires the trigger too, and then nothing is lost.
        gone = (
            f"{insert} SELECT {tbl}, session_id, user_id, 'update', {now} FROM {quote(table)} "
            "WHERE id = new.id AND session_id IS NOT NULL"
        )
        body["replace"] = f"{gone} AND (session_id IS NOT new.session_id OR user_id IS NOT new.user_id);"
        body["reid"] = f"{gone} AND new.id IS NOT old.id;"
        events += [("replace", "BEFORE INSERT"), ("reid", "BEFORE UPDATE OF id")]
    out = []
    for name, (op, event) in zip(_trigger_names(table, sessions_table), events, strict=True):
        trigger = quote(name)
        out.append(f"DROP TRIGGER IF EXISTS {trigger}")
        out.append(f"CREATE TRIGGER {trigger} {event} ON {quote(table)} BEGIN {body[op]} END")
    return out


def disable_changes(store: BaseStorage) -> None:
    """Stop logging and drop the log (consumers' cursors mean nothing afterwards); idempotent.

    The feed's triggers are dropped wherever they are: also on a watched
    table another program renamed (which took them along). A table named
    ``<table>_changes`` or ``<table>_changes_meta`` that is not the feed's
    (by its columns, see :func:`_is_log` and :func:`_is_meta`) is left as
    it is, rows and all: :meth:`drop` calls this on every table, with a
    feed or not.
    """
    log, meta = _names(store)
    t = store.table_name
    with store.transaction() as conn:
        if _is_sqlite(store):
            for table in (t, agent_runs.TABLE):
                for trigger in _trigger_names(table, t):
                    found = _sqlite_trigger(conn, trigger)
                    # By its name on its own table, or on any table if it appends to this log (the table was
                    # renamed): one of the feed of a table named <t>_runs, which has these names, stays.
                    if found is not None and (found[0].lower() == table.lower() or _writes_to(found[1], log)):
                        conn.execute(f"DROP TRIGGER {quote(trigger)}")
        else:
            function = _function(log)
            for schema, table, trigger in _pg_triggers(conn, function):
                conn.execute(f"DROP TRIGGER {quote(trigger)} ON {quote(schema)}.{quote(table)}")
            conn.execute(f"DROP FUNCTION IF EXISTS {function}()")
        # Only the feed's own: a table of another program's that has one of these names stays, with its rows.
        if _is_log(store, log):
            conn.execute(f"DROP TABLE {log}")
        if _is_meta(store, meta):
            conn.execute(f"DROP TABLE {meta}")


def changes(store: BaseStorage, since: int = 0, limit: int = 1000, user_id: str | None = None) -> builtins.list[Change]:
    """Changes after cursor ``since``, oldest first, at most ``limit``; with ``user_id``, only that user's.

    A user's changes are those logged under that ``user_id``, and on a
    SQLite agent table those of the ``agent_runs`` rows with no user under
    the user's sessions (see :func:`_owner_filter`).

    ``since=0`` (nothing processed yet) starts from the oldest change still
    kept. Raises StorageError if the feed is not enabled (also when
    disable_changes() ran while this read it), if changes after ``since``
    were already pruned (the consumer fell behind the retention, holds a
    cursor of a feed disabled since, or one handed out before
    :func:`enable_changes` started a feed that missed writes again),
    or if a watched table was dropped or renamed (by another program: :meth:`drop`
    removes the feed too) since :func:`enable_changes`, which took its
    triggers and left later writes unlogged, or on PostgreSQL emptied by
    TRUNCATE, whose deletes no row trigger sees. A ``since`` above every
    cursor handed out (2**63 and more included) raises StorageError too.
    On PostgreSQL it writes (it assigns cursors): a role that may only read
    cannot call it.
    """
    if type(since) is not int or since < 0:
        raise InvalidInputError(f"since must be a cursor (int >= 0), got {since!r}", table=store.table_name)
    if type(limit) is not int or not 1 <= limit <= 100_000:
        raise InvalidInputError(f"limit must be an int from 1 to 100000, got {limit!r}", table=store.table_name)
    if not enabled(store):
        raise _not_enabled(store)
    try:
        return _read(store, since, limit, user_id)
    except TableNotFoundError as exc:
        # The log or its meta table went between the check above and the read: disable_changes() ran.
        if not enabled(store):
            raise _not_enabled(store, while_reading=True) from exc
        raise


def _read(store: BaseStorage, since: int, limit: int, user_id: str | None) -> builtins.list[Change]:
    """:func:`changes` once its arguments are checked and the feed was found enabled."""
    log, meta = _names(store)
    mark = "?" if _is_sqlite(store) else "%s"
    gap = _gap(store, meta)
    if gap:
        if not enabled(store):
            raise _not_enabled(store, while_reading=True)  # disable_changes() took the triggers, then the log
        raise StorageError(
            f"the change feed of table {store.table_name!r} {gap}; enable_changes() starts it again (after a rename, "
            "disable_changes() first), and every cursor handed out before then raises StorageError: read the "
            "sessions again, then follow the feed",
            table=store.table_name,
        )
    if _is_sqlite(store):
        try:
            _prune_sqlite(store, log, meta)
        except ReadOnlyDatabaseError:
            pass  # a consumer that may not write reads what is kept; a writer's changes() prunes
    else:
        _stamp_postgres(store, log, meta)
    owner, params = _owner_filter(store, user_id, mark)
    params.insert(0, min(since, _INT64_MAX))  # no cursor is above it, and SQLite takes no larger integer
    # One statement, so one snapshot: what was pruned and what is left are read together (a prune by
    # another process in between would otherwise hide changes behind a cursor that looked readable).
    got = store._query(
        f"SELECT m.value, l.cursor, l.tbl, l.session_id, l.user_id, l.op, l.at FROM {meta} AS m LEFT JOIN "
        f"(SELECT cursor, tbl, session_id, user_id, op, at FROM {log} WHERE cursor > {mark}{owner} "
        f"ORDER BY cursor LIMIT {mark}) AS l ON 1 = 1 WHERE m.key = 'pruned_through' ORDER BY l.cursor",
        [*params, limit],
    )
    pruned = int(got[0][0]) if got else 0
    if 0 < since < pruned:
        unlogged = store._query(f"SELECT value FROM {meta} WHERE key = {mark}", (_UNLOGGED,))
        if unlogged and since < int(unlogged[0][0]):
            raise StorageError(
                f"changes after cursor {since} of table {store.table_name!r} were not all logged: a watched table "
                "was dropped, renamed or truncated behind the feed, and enable_changes() started it again; read the "
                f"sessions again, then follow the feed from cursor {pruned}",
                table=store.table_name,
            )
        raise StorageError(
            f"changes after cursor {since} of table {store.table_name!r} were pruned (kept through the retention); "
            f"the oldest cursor still readable is {pruned}",
            table=store.table_name,
        )
    changes = [
        Change(cursor=int(c), table=tb, session_id=s, user_id=u or None, op=o, at=int(a))
        for _, c, tb, s, u, o, a in got
        if c is not None
    ]
    if not changes and since > pruned and since > _top(store, log, meta):
        raise StorageError(
            f"cursor {since} of table {store.table_name!r} is ahead of every change logged (the database was "
            "restored from an earlier copy, or the cursor is another feed's); start again from since=0",
            table=store.table_name,
        )
    return changes


def _owner_filter(store: BaseStorage, user_id: str | None, mark: str) -> tuple[str, builtins.list[Any]]:
    """The log's WHERE clause (and its parameters) for the changes of ``user_id``'s sessions.

    A row is logged under its own ``user_id``. An ``agent_runs`` row with no
    user (a Go Agent given none) is part of the conversation of the session
    row with its id, when there is one (:func:`conversation.belongs`): it is
    the changes of that session's owner, read here at the time of reading,
    and not of "no owner".
    """
    none = "(user_id IS NULL OR user_id = '')"  # "no owner", stored either way (agno writes NULL)
    if user_id is None:
        return "", []
    if store._unmatchable(user_id):
        return " AND 1 = 0", []  # no change is logged under a user the engine cannot store
    if not (_is_sqlite(store) and agent_runs.applies(store)):
        return (f" AND {none}", []) if user_id == "" else (f" AND user_id = {mark}", [user_id])
    runs = f"tbl = {_literal(agent_runs.TABLE)} AND {none} AND session_id IN (SELECT session_id FROM {quote(store.table_name)}"
    if user_id == "":
        return f" AND {none} AND NOT ({runs} WHERE user_id <> ''))", []
    return f" AND (user_id = {mark} OR ({runs} WHERE user_id = {mark})))", [user_id, user_id]


def _top(store: BaseStorage, log: str, meta: str) -> int:
    """The highest cursor the feed has handed out (or pruned through)."""
    if _is_sqlite(store):
        rows = store._query(
            f"SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = ? COLLATE NOCASE), 0), "
            f"(SELECT value FROM {meta} WHERE key = 'pruned_through'))",
            (unquote(log),),
        )
    else:
        rows = store._query(
            f"SELECT GREATEST((SELECT COALESCE(MAX(cursor), 0) FROM {log}), "
            f"(SELECT value FROM {meta} WHERE key = 'pruned_through'))",
            (),
        )
    return int(rows[0][0] or 0) if rows else 0


def _taken(store: BaseStorage, log: str) -> bool:
    """Whether something already has the log's name."""
    if _is_sqlite(store):
        return bool(store._query("SELECT 1 FROM sqlite_master WHERE name = ? COLLATE NOCASE", (unquote(log),)))
    rows = store._query("SELECT to_regclass(%s) IS NOT NULL", (log,))
    return bool(rows and rows[0][0])


def _first_cursor() -> int:
    """Where a new log's cursors start: the time now in microseconds.

    Above every cursor of a log this table had before (disable_changes()
    dropped it, and with it SQLite's own count), unless that one logged more
    than a change per microsecond on average; a consumer that kept one of its
    cursors gets StorageError (pruned), not a cursor that means something new.
    """
    return time.time_ns() // 1000


def _gap(store: BaseStorage, meta: str) -> str | None:
    """What went unlogged since enable_changes(), if anything did: the end of the error of :func:`changes`.

    A watched table (the sessions table, ``agent_runs``) dropped or renamed
    took its triggers along; on PostgreSQL a TRUNCATE fires no row trigger,
    and the feed's statement trigger marks it in ``meta``.
    """
    t = store.table_name
    lost = (
        " was dropped or renamed since enable_changes() (its triggers went with it) and writes since then were not"
        " logged"
    )
    if _is_sqlite(store):
        watched = [(t, f"{t}_changes_insert")]
        if agent_runs.applies(store):
            watched.append((agent_runs.TABLE, f"{t}_runs_changes_insert"))
        for table, trigger in watched:
            if not cast("SqliteStorage", store).trigger_exists(trigger, table):
                return "stopped logging: " + table + lost
        return None
    table = cast("PostgresStorage", store).qualified_table
    rows = store._query(
        "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = %s AND tgrelid = to_regclass(%s)), "
        f"EXISTS (SELECT 1 FROM {meta} WHERE key = 'truncated')",
        (t + "_changes_log", table),
    )
    if not rows[0][0]:
        return "stopped logging: " + t + lost
    if rows[0][1]:
        return (
            f"has a gap: {t} was emptied by TRUNCATE since enable_changes(), which fires no row trigger, so the "
            "deletes of its rows were not logged"
        )
    return None


#: The meta key of the cursor :func:`_start_over` marked: a ``since`` below it asks for changes that went unlogged.
_UNLOGGED: Final = "unlogged_through"


def _start_over(store: BaseStorage, conn: Any, log: str, meta: str) -> None:
    """Empty the log and count every cursor handed out so far, and one more, as pruned (in ``conn``'s transaction).

    For enable_changes() on a feed that missed writes (:func:`_gap`): a
    consumer holding any cursor of it then gets StorageError from
    :func:`changes`, which names the cursor to go on from, instead of the
    changes after the gap as if nothing had been missed. The mark is one
    above the highest cursor handed out, so the consumer that had read
    them all is told too; new cursors go on above it.
    """
    mark = _top(store, log, meta) + 1
    conn.execute(f"DELETE FROM {log}")
    if _is_sqlite(store):
        updated = conn.execute(
            "UPDATE sqlite_sequence SET seq = ? WHERE name = ? COLLATE NOCASE", (mark, unquote(log))
        ).rowcount
        if not updated:
            # The name as the file spells it: AUTOINCREMENT finds its row by the table's own name.
            (name,) = conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE", (unquote(log),)
            ).fetchone()
            conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (name, mark))
        conn.execute(
            f"INSERT OR REPLACE INTO {meta} (key, value) VALUES ('pruned_through', ?), (?, ?)", (mark, _UNLOGGED, mark)
        )
    else:
        conn.execute(
            f"INSERT INTO {meta} (key, value) VALUES ('pruned_through', %s), (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            (mark, _UNLOGGED, mark),
        )
        conn.execute(f"DELETE FROM {meta} WHERE key = 'truncated'")


def _prune_sqlite(store: BaseStorage, log: str, meta: str) -> None:
    rows = store._query(f"SELECT value FROM {meta} WHERE key = 'retention'", ())
    retention = int(rows[0][0]) if rows else DEFAULT_RETENTION
    cutoff = int(time.time()) - retention
    if not store._query(f"SELECT 1 FROM {log} WHERE at < ? LIMIT 1", (cutoff,)):
        return
    with store.transaction() as conn:
        top = conn.execute(f"SELECT MAX(cursor) FROM {log} WHERE at < ?", (cutoff,)).fetchone()[0]
        if top is not None:
            conn.execute(f"DELETE FROM {log} WHERE cursor <= ?", (top,))
            conn.execute(f"UPDATE {meta} SET value = MAX(value, ?) WHERE key = 'pruned_through'", (top,))


def _stamp_postgres(store: BaseStorage, log: str, meta: str) -> None:
    """Give cursors to the changes whose transactions, and every one that began before them, have ended."""
    with store.transaction() as conn:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (log,))
        row: Any = conn.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())").fetchone()
        xmin = row[0]
        conn.execute(
            # Numbered on from the highest cursor given, or from what was pruned when none is left.
            f"UPDATE {log} AS l SET cursor = s.n FROM (SELECT id, GREATEST((SELECT COALESCE(MAX(cursor), 0) FROM {log}), "
            f"(SELECT value FROM {meta} WHERE key = 'pruned_through')) + row_number() OVER (ORDER BY xid, id) AS n "
            f"FROM {log} WHERE cursor IS NULL AND xid < %s) AS s WHERE l.id = s.id",
            (xmin,),
        )
        retention_row: Any = conn.execute(f"SELECT value FROM {meta} WHERE key = 'retention'").fetchone()
        cutoff = int(time.time()) - int(retention_row[0] if retention_row else DEFAULT_RETENTION)
        top: Any = conn.execute(
            f"SELECT MAX(cursor) FROM {log} WHERE at < %s AND cursor IS NOT NULL", (cutoff,)
        ).fetchone()
        if top and top[0] is not None:
            conn.execute(f"DELETE FROM {log} WHERE cursor <= %s", (top[0],))
            conn.execute(f"UPDATE {meta} SET value = GREATEST(value, %s) WHERE key = 'pruned_through'", (top[0],))


__all__ = ["DEFAULT_RETENTION", "Change", "changes", "disable_changes", "enable_changes", "enabled"]
