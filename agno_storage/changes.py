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
StorageError instead of silently skipping them.
"""

from __future__ import annotations

import builtins
import time
from typing import TYPE_CHECKING, Any, Final, cast

import attrs

from agno_storage import agent_runs
from agno_storage.errors import InvalidInputError, ReadOnlyDatabaseError, StorageError
from agno_storage.schema import check_derived_names, quote, unquote

if TYPE_CHECKING:
    from agno_storage.backends.base import BaseStorage
    from agno_storage.backends.postgres import PostgresStorage
    from agno_storage.backends.sqlite import SqliteStorage

#: How long changes are kept unless enable_changes() is told otherwise (seconds).
DEFAULT_RETENTION: Final = 7 * 86400


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


def enabled(store: BaseStorage) -> bool:
    """Whether the log is there: the log table itself (its ``tbl`` column), not a table that shares its name."""
    log, _ = _names(store)
    if _is_sqlite(store):
        rows = store._query("SELECT 1 FROM pragma_table_info(?) WHERE name = 'tbl'", (unquote(log),))
        return bool(rows)
    rows = store._query("SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = 'tbl'", (log,))
    return bool(rows)


def enable_changes(store: BaseStorage, retention: int = DEFAULT_RETENTION) -> None:
    """Start logging every write to the table (and to ``agent_runs``); idempotent, keeps the log if on.

    ``retention`` (seconds, at least 60) is stored with the log and applies
    to every consumer. On an agent table in SQLite, ``agent_runs`` is created
    in agno-golang's own DDL if missing, so a Go Agent's first run is logged
    too (the Go Agent creates it the same way, ``IF NOT EXISTS``).
    """
    if type(retention) is not int or retention < 60:
        raise InvalidInputError(f"retention must be seconds >= 60, got {retention!r}", table=store.table_name)
    if not _is_sqlite(store):
        check_derived_names(store.table_name, ("_changes", "_changes_meta", "_changes_log"), "the change feed")
    store.create()
    log, meta = _names(store)
    t = store.table_name
    with store.transaction() as conn:
        if not enabled(store) and _taken(store, log):
            # Its triggers would write into someone else's table, and fail their writes to the sessions table.
            raise StorageError(
                f"cannot make the change log of table {t!r}: the database has a table named {log} already",
                table=t,
            )
        if _is_sqlite(store):
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
            watched = [t]
            if agent_runs.applies(store):
                for statement in agent_runs.create_statements(t):
                    conn.execute(statement)
                watched.append(agent_runs.TABLE)
            for table in watched:
                for trigger in _trigger_names(table, t):
                    on = _trigger_table(conn, trigger)
                    if on is not None and on.lower() != table.lower():
                        # The feed of a sessions table named <t>_runs has these names on its own table.
                        raise StorageError(
                            f"cannot log {table} for the change feed of table {t!r}: the trigger {trigger!r} "
                            f"it needs is on table {on!r} (the feed of a table named {t + '_runs'!r})",
                            table=t,
                        )
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
            conn.execute(
                f"INSERT INTO {meta} (key, value) VALUES ('retention', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                (retention,),
            )
            conn.execute(
                f"INSERT INTO {meta} (key, value) VALUES ('pruned_through', %s) ON CONFLICT DO NOTHING",
                (_first_cursor(),),
            )
            function = log[:-1] + '_log"'
            conn.execute(
                f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN "
                f"IF TG_OP = 'DELETE' THEN INSERT INTO {log} (tbl, session_id, user_id, op) "
                "VALUES (TG_TABLE_NAME, OLD.session_id, OLD.user_id, 'delete'); "
                "ELSE "
                # An update that renames the session: the old id is gone. One that changes its owner: the
                # old owner's consumers see it change too.
                "IF TG_OP = 'UPDATE' AND OLD.session_id IS DISTINCT FROM NEW.session_id THEN "
                f"INSERT INTO {log} (tbl, session_id, user_id, op) "
                "VALUES (TG_TABLE_NAME, OLD.session_id, OLD.user_id, 'delete'); "
                "ELSIF TG_OP = 'UPDATE' AND OLD.user_id IS DISTINCT FROM NEW.user_id THEN "
                f"INSERT INTO {log} (tbl, session_id, user_id, op) "
                "VALUES (TG_TABLE_NAME, OLD.session_id, OLD.user_id, 'update'); "
                "END IF; "
                f"INSERT INTO {log} (tbl, session_id, user_id, op) VALUES (TG_TABLE_NAME, NEW.session_id, NEW.user_id, "
                "CASE WHEN TG_OP = 'UPDATE' AND OLD.session_id IS DISTINCT FROM NEW.session_id THEN 'insert' "
                "ELSE lower(TG_OP) END); "
                "END IF; RETURN NULL; END $fn$"
            )
            trigger = quote(t + "_changes_log")
            table = cast("PostgresStorage", store).qualified_table
            conn.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
            conn.execute(
                f"CREATE TRIGGER {trigger} AFTER INSERT OR UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {function}()"
            )


def _trigger_names(table: str, sessions_table: str) -> builtins.list[str]:
    """The names of the feed's triggers on ``table`` (the sessions table, or ``agent_runs``), unquoted."""
    if table != agent_runs.TABLE:
        return [f"{table}_changes_{op}" for op in ("insert", "update", "delete")]
    return [f"{sessions_table}_runs_changes_{op}" for op in ("insert", "update", "delete", "replace", "reid")]


def _trigger_table(conn: Any, trigger: str) -> str | None:
    """The table the SQLite trigger ``trigger`` is on, or None if there is none by that name."""
    row = conn.execute(
        "SELECT tbl_name FROM sqlite_master WHERE type = 'trigger' AND name = ? COLLATE NOCASE", (trigger,)
    ).fetchone()
    return None if row is None else str(row[0])


def _sqlite_triggers(log: str, table: str, sessions_table: str) -> builtins.list[str]:
    now = "CAST(strftime('%s', 'now') AS INTEGER)"
    tbl = _literal(table)
    insert = f"INSERT INTO {log} (tbl, session_id, user_id, op, at)"
    body = {
        "insert": f"{insert} VALUES ({tbl}, new.session_id, new.user_id, 'insert', {now});",
        # An update that renames the session: the old id is gone, the new one appears. One that changes
        # the owner: the old owner's consumers see it change too.
        "update": (
            f"{insert} SELECT {tbl}, old.session_id, old.user_id, 'delete', {now} "
            "WHERE old.session_id IS NOT new.session_id; "
            f"{insert} SELECT {tbl}, old.session_id, old.user_id, 'update', {now} "
            "WHERE old.session_id IS new.session_id AND old.user_id IS NOT new.user_id; "
            f"{insert} VALUES ({tbl}, new.session_id, new.user_id, "
            f"CASE WHEN old.session_id IS new.session_id THEN 'update' ELSE 'insert' END, {now});"
        ),
        "delete": f"{insert} VALUES ({tbl}, old.session_id, old.user_id, 'delete', {now});",
    }
    events = [("insert", "AFTER INSERT"), ("update", "AFTER UPDATE"), ("delete", "AFTER DELETE")]
    if table == agent_runs.TABLE:
        # A run is keyed by its id: a REPLACE (or UPDATE OR REPLACE of the id) taking an id another session
        # (or another owner) holds deletes that row with no delete trigger fired; log it beforehand, as
        # an update (re-read it): an INSERT OR IGNORE fires the trigger too, and then nothing is lost.
        gone = f"{insert} SELECT {tbl}, session_id, user_id, 'update', {now} FROM {quote(table)} WHERE id = new.id"
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
    """Stop logging and drop the log (consumers' cursors mean nothing afterwards); idempotent."""
    log, meta = _names(store)
    t = store.table_name
    with store.transaction() as conn:
        if _is_sqlite(store):
            for table in (t, agent_runs.TABLE):
                for trigger in _trigger_names(table, t):
                    on = _trigger_table(conn, trigger)
                    if on is not None and on.lower() == table.lower():  # not the feed of a table named <t>_runs
                        conn.execute(f"DROP TRIGGER {quote(trigger)}")
        else:
            if store.table_exists():
                table = cast("PostgresStorage", store).qualified_table
                conn.execute(f"DROP TRIGGER IF EXISTS {quote(t + '_changes_log')} ON {table}")
            conn.execute(f'DROP FUNCTION IF EXISTS {log[:-1]}_log"()')
        conn.execute(f"DROP TABLE IF EXISTS {log}")
        conn.execute(f"DROP TABLE IF EXISTS {meta}")


def changes(store: BaseStorage, since: int = 0, limit: int = 1000, user_id: str | None = None) -> builtins.list[Change]:
    """Changes after cursor ``since``, oldest first, at most ``limit``; with ``user_id``, only that user's.

    A user's changes are those logged under that ``user_id``, and on a
    SQLite agent table those of the ``agent_runs`` rows with no user under
    the user's sessions (see :func:`_owner_filter`).

    ``since=0`` (nothing processed yet) starts from the oldest change still
    kept. Raises StorageError if the feed is not enabled, if changes after
    ``since`` were already pruned (the consumer fell behind the retention,
    or holds a cursor of a feed disabled since),
    or if a watched table was dropped or renamed (by another program: :meth:`drop`
    removes the feed too) since :func:`enable_changes`, which took its
    triggers and left later writes unlogged.
    """
    if type(since) is not int or since < 0:
        raise InvalidInputError(f"since must be a cursor (int >= 0), got {since!r}", table=store.table_name)
    if type(limit) is not int or not 1 <= limit <= 100_000:
        raise InvalidInputError(f"limit must be an int from 1 to 100000, got {limit!r}", table=store.table_name)
    if not enabled(store):
        raise StorageError(
            f"the change feed of table {store.table_name!r} is not enabled (enable_changes())", table=store.table_name
        )
    log, meta = _names(store)
    mark = "?" if _is_sqlite(store) else "%s"
    unwatched = _unwatched(store)
    if unwatched:
        raise StorageError(
            f"the change feed of table {store.table_name!r} stopped logging: {unwatched} was dropped or renamed since"
            " enable_changes() (its triggers went with it) and writes since then were not logged;"
            " disable_changes() and enable_changes() start a new feed",
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
    params.insert(0, since)
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


def _unwatched(store: BaseStorage) -> str | None:
    """The watched table (the sessions table, ``agent_runs``) that lost its triggers since enable_changes(), if any."""
    t = store.table_name
    if _is_sqlite(store):
        watched = [(t, f"{t}_changes_insert")]
        if agent_runs.applies(store):
            watched.append((agent_runs.TABLE, f"{t}_runs_changes_insert"))
        for table, trigger in watched:
            if not cast("SqliteStorage", store).trigger_exists(trigger, table):
                return table
        return None
    table = cast("PostgresStorage", store).qualified_table
    rows = store._query(
        "SELECT 1 FROM pg_trigger WHERE tgname = %s AND tgrelid = to_regclass(%s)", (t + "_changes_log", table)
    )
    return None if rows else t


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
