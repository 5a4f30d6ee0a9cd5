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

The feed's tables and triggers (names, SQL, how they are told from another
program's) are in :mod:`agno_storage.changes_ddl`; :class:`Change` and the
reading, numbering and pruning of the log in :mod:`agno_storage.changes_log`.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, cast

from agno_storage import agent_runs
from agno_storage.changes_ddl import (
    REPLACE_MARK,
    TRIGGERS_VERSION,
    TRUNCATE_SUFFIX,
    enabled,
    is_log,
    is_meta,
    is_sqlite,
    misplaced_trigger,
    names,
    pg_function_sql,
    pg_require_own,
    pg_resolved,
    pg_triggers,
    sqlite_trigger,
    sqlite_triggers,
    taken,
    trigger_function,
    trigger_names,
    writes_to,
)
from agno_storage.changes_log import (
    DEFAULT_RETENTION,
    INT64_MAX,
    Change,
    find_gap,
    first_cursor,
    not_enabled,
    read_changes,
    start_over,
)
from agno_storage.errors import InvalidInputError, StorageError, TableNotFoundError
from agno_storage.schema import check_derived_names, quote, unquote

if TYPE_CHECKING:
    from agno_storage.backends.base import BaseStorage
    from agno_storage.backends.postgres import PostgresStorage


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
    of range; StorageError if another table or trigger has a name the feed
    needs, or a watched table was renamed with the feed's triggers on it
    (the message says what to do). On PostgreSQL the triggers' function runs as the role that called
    this (``SECURITY DEFINER``), so writers need no grant on the log.
    """
    t = store.table_name
    if type(retention) is not int or not 60 <= retention <= INT64_MAX:
        raise InvalidInputError(f"retention must be seconds from 60 to 2**63 - 1, got {retention!r}", table=t)
    if not is_sqlite(store):
        check_derived_names(t, ("_changes", "_changes_meta", "_changes_log", TRUNCATE_SUFFIX), "the change feed")
    store.create()
    log, meta = names(store)
    with store.transaction() as conn:
        kept = enabled(store)
        for name in (log, meta):
            if not is_sqlite(store):
                pg_require_own(conn, name, t)  # another role's table: this refusal names its owner
            if taken(store, name) and not (kept if name == log else is_meta(store, meta)):
                # The feed would write into someone else's table (its triggers failing writes to the sessions table).
                raise StorageError(
                    f"cannot make the change log of table {t!r}: the database has a table named {name} already",
                    table=t,
                )
        if is_sqlite(store):
            # Read before the triggers are made again: gone, they logged nothing since they went.
            missed = kept and find_gap(store, meta) is not None
            new = not conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = ? COLLATE NOCASE", (unquote(log),)
            ).fetchone()
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {log} (cursor INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, "
                "session_id TEXT NOT NULL, user_id TEXT, op TEXT NOT NULL, at INTEGER NOT NULL)"
            )
            conn.execute(f"CREATE TABLE IF NOT EXISTS {meta} (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
            conn.execute(f"INSERT OR REPLACE INTO {meta} (key, value) VALUES ('retention', ?)", (retention,))
            start = first_cursor() if new else 0
            if new:
                conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (unquote(log), start))
            conn.execute(f"INSERT OR IGNORE INTO {meta} (key, value) VALUES ('pruned_through', ?)", (start,))
            if missed:
                start_over(store, conn, log, meta)
            watched = [t]
            if agent_runs.applies(store):
                agent_runs.make_table(conn, t)  # refuses one that is not agno-golang's: no trigger goes on it
                watched.append(agent_runs.TABLE)
            for table in watched:
                for trigger in trigger_names(table, t):
                    found = sqlite_trigger(conn, trigger)
                    if found is not None and found[0].lower() != table.lower():
                        raise misplaced_trigger(t, log, table, trigger, *found)
                for statement in sqlite_triggers(log, table, t):
                    conn.execute(statement)  # drops and makes each again: an earlier version's is replaced
            conn.execute(f"INSERT OR REPLACE INTO {meta} (key, value) VALUES (?, ?)", (REPLACE_MARK, TRIGGERS_VERSION))
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
                pg_require_own(conn, name, t)
            conn.execute(
                f"INSERT INTO {meta} (key, value) VALUES ('retention', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                (retention,),
            )
            conn.execute(
                f"INSERT INTO {meta} (key, value) VALUES ('pruned_through', %s) ON CONFLICT DO NOTHING",
                (first_cursor(),),
            )
            function = trigger_function(log)
            table = cast("PostgresStorage", store).qualified_table
            elsewhere = pg_triggers(conn, function, but_on=table)
            if elsewhere:
                # The table was renamed with the trigger on it: it still logs that table's writes into this feed.
                raise StorageError(
                    f"cannot start the change feed of table {t!r}: its trigger is on table {elsewhere[0][1]!r}, "
                    f"which another program renamed from {t!r} behind the feed (the trigger went along); "
                    "disable_changes() removes the trigger and the log, then enable_changes() starts a new feed",
                    table=t,
                )
            if kept and find_gap(store, meta) is not None:
                start_over(store, conn, log, meta)
            # Named with their schemas as resolved now, so no writer's search_path moves them (or breaks them).
            conn.execute(pg_function_sql(function, pg_resolved(conn, log), pg_resolved(conn, meta)))
            # Only triggers call it: a role that could attach it to a table of its own would write into this log.
            conn.execute(f"REVOKE ALL ON FUNCTION {function}() FROM PUBLIC")
            trigger = quote(t + "_changes_log")
            conn.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
            conn.execute(
                f"CREATE TRIGGER {trigger} AFTER INSERT OR UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {function}()"
            )
            truncate = quote(t + TRUNCATE_SUFFIX)
            conn.execute(f"DROP TRIGGER IF EXISTS {truncate} ON {table}")
            conn.execute(
                f"CREATE TRIGGER {truncate} AFTER TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )


def disable_changes(store: BaseStorage) -> None:
    """Stop logging and drop the log (consumers' cursors mean nothing afterwards); idempotent.

    The feed's triggers are dropped wherever they are: also on a watched
    table another program renamed (which took them along). A table named
    ``<table>_changes`` or ``<table>_changes_meta`` that is not the feed's
    (by its columns, see :func:`~agno_storage.changes_ddl.is_log` and
    :func:`~agno_storage.changes_ddl.is_meta`) is left as it is, rows and
    all: :meth:`drop` calls this on every table, with a feed or not.
    """
    log, meta = names(store)
    t = store.table_name
    with store.transaction() as conn:
        if is_sqlite(store):
            for table in (t, agent_runs.TABLE):
                for trigger in trigger_names(table, t):
                    found = sqlite_trigger(conn, trigger)
                    # By its name on its own table, or on any table if it appends to this log (the table was
                    # renamed): one of the feed of a table named <t>_runs, which has these names, stays.
                    if found is not None and (found[0].lower() == table.lower() or writes_to(found[1], log)):
                        conn.execute(f"DROP TRIGGER {quote(trigger)}")
        else:
            function = trigger_function(log)
            for schema, table, trigger in pg_triggers(conn, function):
                conn.execute(f"DROP TRIGGER {quote(trigger)} ON {quote(schema)}.{quote(table)}")
            conn.execute(f"DROP FUNCTION IF EXISTS {function}()")
        # Only the feed's own: a table of another program's that has one of these names stays, with its rows.
        if is_log(store, log):
            conn.execute(f"DROP TABLE {log}")
        if is_meta(store, meta):
            conn.execute(f"DROP TABLE {meta}")


def changes(store: BaseStorage, since: int = 0, limit: int = 1000, user_id: str | None = None) -> builtins.list[Change]:
    """Changes after cursor ``since``, oldest first, at most ``limit``; with ``user_id``, only that user's.

    A user's changes are those logged under that ``user_id``, and on a
    SQLite agent table those of the ``agent_runs`` rows with no user under
    the user's sessions (see :func:`~agno_storage.changes_log._owner_filter`).

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
        raise not_enabled(store)
    try:
        return read_changes(store, since, limit, user_id)
    except TableNotFoundError as exc:
        # The log or its meta table went between the check above and the read: disable_changes() ran.
        if not enabled(store):
            raise not_enabled(store, while_reading=True) from exc
        raise


__all__ = ["DEFAULT_RETENTION", "Change", "changes", "disable_changes", "enable_changes", "enabled"]
