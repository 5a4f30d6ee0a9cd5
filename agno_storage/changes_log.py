# ruff: noqa: S608 - every identifier here comes through schema.quote; every value is bound.
"""The change feed's log as it is read: :class:`Change`, its cursors, pruning, and the gaps a feed can have.

:func:`read_changes` is :func:`agno_storage.changes.changes` once its
arguments are checked: on SQLite it prunes what is older than the
retention first; on PostgreSQL it first numbers the rows whose
transactions, and every one that began before them, have ended, and
prunes, in a write transaction of its own. :func:`first_cursor` is where
a new log's cursors start; :func:`find_gap` tells a feed that stopped
logging (a watched table dropped or renamed, or on PostgreSQL emptied by
TRUNCATE), and :func:`start_over` empties the log of such a feed and
counts every cursor handed out so far as pruned.
"""

from __future__ import annotations

import builtins
import time
from typing import TYPE_CHECKING, Any, Final, cast

import attrs

from agno_storage import agent_runs
from agno_storage.changes_ddl import (
    PENDING,
    REPLACE_MARK,
    TRUNCATE_SUFFIX,
    enabled,
    is_sqlite,
    later_triggers,
    names,
    trigger_names,
)
from agno_storage.errors import ReadOnlyDatabaseError, StorageError
from agno_storage.schema import literal, quote, unquote

if TYPE_CHECKING:
    from agno_storage.backends.base import BaseStorage
    from agno_storage.backends.postgres import PostgresStorage

#: How long changes are kept unless enable_changes() is told otherwise (seconds).
DEFAULT_RETENTION: Final = 7 * 86400

#: The largest integer either engine stores (a cursor, a retention): SQLite's INTEGER, PostgreSQL's bigint.
INT64_MAX: Final = 2**63 - 1


@attrs.frozen(kw_only=True)
class Change:
    """One row written by some program: its ``table`` (the sessions table or ``agent_runs``) and session.

    ``op`` is ``"insert"``, ``"update"`` or ``"delete"``; ``at`` is Unix
    seconds. agno-golang's ``INSERT OR REPLACE`` of an existing session shows
    as ``"insert"``, after a ``"delete"`` under the old owner when it gives the
    session to another one (or whenever the writer turned
    ``recursive_triggers`` on).
    """

    cursor: int
    table: str
    session_id: str
    user_id: str | None
    op: str
    at: int


def not_enabled(store: BaseStorage, *, while_reading: bool = False) -> StorageError:
    """The StorageError of changes() on a table with no feed (or one disabled while it read)."""
    t = store.table_name
    if while_reading:
        return StorageError(
            f"the change feed of table {t!r} is not enabled: disable_changes() dropped it while changes() read it "
            "(enable_changes() starts a new feed)",
            table=t,
        )
    return StorageError(f"the change feed of table {t!r} is not enabled (enable_changes())", table=t)


def read_changes(store: BaseStorage, since: int, limit: int, user_id: str | None) -> builtins.list[Change]:
    """:func:`~agno_storage.changes.changes` once its arguments are checked and the feed was found enabled."""
    log, meta = names(store)
    mark = "?" if is_sqlite(store) else "%s"
    gap = find_gap(store, meta)
    if gap:
        if not enabled(store):
            raise not_enabled(store, while_reading=True)  # disable_changes() took the triggers, then the log
        raise StorageError(
            f"the change feed of table {store.table_name!r} {gap}; enable_changes() starts it again (after a rename, "
            "disable_changes() first), and every cursor handed out before then raises StorageError: read the "
            "sessions again, then follow the feed",
            table=store.table_name,
        )
    if is_sqlite(store):
        try:
            _prune_sqlite(store, log, meta)
        except ReadOnlyDatabaseError:
            pass  # a consumer that may not write reads what is kept; a writer's changes() prunes
    else:
        _stamp_postgres(store, log, meta)
    after = min(since, INT64_MAX)  # no cursor is above it, and SQLite takes no larger integer
    join, owner, params = _owner_filter(store, user_id, mark, after)
    params.insert(1 if join else 0, after)
    # One statement, so one snapshot: what was pruned and what is left are read together (a prune by
    # another process in between would otherwise hide changes behind a cursor that looked readable).
    got = store._query(
        f"SELECT m.value, l.cursor, l.tbl, l.session_id, l.user_id, l.op, l.at FROM {meta} AS m LEFT JOIN "
        f"(SELECT cursor, tbl, session_id, user_id, op, at FROM {log}{join} WHERE cursor > {mark} AND op <> '{PENDING}'{owner} "
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


def _owner_filter(
    store: BaseStorage, user_id: str | None, mark: str, after: int
) -> tuple[str, str, builtins.list[Any]]:
    """A join on the log and the log's WHERE clause, with their parameters but the clause's cursor (``after``,
    which the caller puts between them), for the changes of ``user_id``'s sessions after cursor ``after``.

    A row is logged under its own ``user_id``. An ``agent_runs`` row with no
    user (a Go Agent given none) is part of the conversation of the session
    row with its id, when there is one (:func:`conversation.belongs`): it is
    the changes of that session's owner, read here at the time of reading,
    and not of "no owner". A change logged before that id's session row was
    last deleted was part of an earlier session (a session another user may
    have made since under the id), and is no user's: the join finds when
    each session was last deleted, reading the log after ``after`` once.
    """
    none = "(user_id IS NULL OR user_id = '')"  # "no owner", stored either way (agno writes NULL)
    if user_id is None:
        return "", "", []
    if store._unmatchable(user_id):
        return "", " AND 1 = 0", []  # no change is logged under a user the engine cannot store
    if not (is_sqlite(store) and agent_runs.applies(store)):
        return ("", f" AND {none}", []) if user_id == "" else ("", f" AND user_id = {mark}", [user_id])
    log, _ = names(store)
    runs_table = literal(agent_runs.TABLE)
    join = (
        f" LEFT JOIN (SELECT session_id AS gone_id, MAX(cursor) AS gone_at FROM {log} WHERE cursor > {mark} "
        f"AND op = 'delete' AND tbl <> {runs_table} GROUP BY session_id) AS gone ON gone.gone_id = {log}.session_id"
    )
    runs = f"tbl = {runs_table} AND {none}"
    earlier = f"COALESCE({log}.cursor < gone.gone_at, 0)"  # 0: never deleted
    owned = f"session_id IN (SELECT session_id FROM {quote(store.table_name)}"
    if user_id == "":
        return join, f" AND {none} AND NOT ({runs} AND ({earlier} OR {owned} WHERE user_id <> '')))", [after]
    theirs = f" AND (user_id = {mark} OR ({runs} AND NOT {earlier} AND {owned} WHERE user_id = {mark})))"
    return join, theirs, [after, user_id, user_id]


def _top(store: BaseStorage, log: str, meta: str) -> int:
    """The highest cursor the feed has handed out (or pruned through)."""
    if is_sqlite(store):
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


def first_cursor() -> int:
    """Where a new log's cursors start: the time now in microseconds.

    Above every cursor of a log this table had before (disable_changes()
    dropped it, and with it SQLite's own count), unless that one logged more
    than a change per microsecond on average or the clock has been set back
    since it started (nothing of a dropped log is kept to check against); a
    consumer that kept one of its cursors gets StorageError (pruned), not a
    cursor that means something new.
    """
    return time.time_ns() // 1000


def find_gap(store: BaseStorage, meta: str) -> str | None:
    """What went unlogged since enable_changes(), if anything did: the end of the error of changes().

    A watched table (the sessions table, ``agent_runs``) dropped or renamed
    took its triggers along; one of the feed's triggers another program
    dropped stopped logging its kind of write; on PostgreSQL a TRUNCATE
    fires no row trigger, and the feed's statement trigger marks it in
    ``meta``. One catalogue query per watched table.
    """
    t = store.table_name
    lost = " since enable_changes() and writes since then were not logged"
    if is_sqlite(store):
        watched = [t]
        if agent_runs.applies(store):
            watched.append(agent_runs.TABLE)
        mark = store._query(f"SELECT value FROM {meta} WHERE key = ?", (REPLACE_MARK,))
        version = int(mark[0][0]) if mark else 0
        for table in watched:
            present = {
                str(name).lower()
                for (name,) in store._query(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? COLLATE NOCASE", (table,)
                )
            }
            needed = trigger_names(table, t)
            later = later_triggers(table, t, version)
            if not any(name.lower() in present for name in later):
                needed = [name for name in needed if name not in later]  # an earlier version's: nothing is missed
            missing = [name for name in needed if name.lower() not in present]
            if len(missing) == len(needed):
                return f"stopped logging: {table} was dropped or renamed (its triggers went with it){lost}"
            if missing:
                return f"stopped logging: another program dropped the trigger {missing[0]!r} on {table}{lost}"
        return None
    table = cast("PostgresStorage", store).qualified_table
    triggers = (t + "_changes_log", t + TRUNCATE_SUFFIX)
    # Compared as PostgreSQL's type name, which cuts a long name at 63 bytes as the catalogue holds it.
    found = "EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = %s AND tgrelid = to_regclass(%s))"
    rows = store._query(
        f"SELECT {found}, {found}, EXISTS (SELECT 1 FROM {meta} WHERE key = 'truncated')",
        (triggers[0], table, triggers[1], table),
    )
    *exist, truncated = rows[0]
    if not any(exist):
        return f"stopped logging: {t} was dropped or renamed (its triggers went with it){lost}"
    for name, there in zip(triggers, exist, strict=True):
        if not there:
            return f"stopped logging: another program dropped the trigger {name!r} on {t}{lost}"
    if truncated:
        return (
            f"has a gap: {t} was emptied by TRUNCATE since enable_changes(), which fires no row trigger, so the "
            "deletes of its rows were not logged"
        )
    return None


#: The meta key of the cursor :func:`start_over` marked: a ``since`` below it asks for changes that went unlogged.
_UNLOGGED: Final = "unlogged_through"


def start_over(store: BaseStorage, conn: Any, log: str, meta: str) -> None:
    """Empty the log and count every cursor handed out so far, and one more, as pruned (in ``conn``'s transaction).

    For enable_changes() on a feed that missed writes (:func:`find_gap`): a
    consumer holding any cursor of it then gets StorageError from
    :func:`~agno_storage.changes.changes`, which names the cursor to go on
    from, instead of the changes after the gap as if nothing had been
    missed. The mark is one above the highest cursor handed out, so the
    consumer that had read them all is told too; new cursors go on above it.
    """
    mark = _top(store, log, meta) + 1
    conn.execute(f"DELETE FROM {log}")
    if is_sqlite(store):
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
    # A pending row is no change (one that is committed was left by an insert that did not go in): pruned
    # through, it would tell a consumer holding the change before it that it missed something.
    real = f"at < ? AND op <> '{PENDING}'"
    if not store._query(f"SELECT 1 FROM {log} WHERE {real} LIMIT 1", (cutoff,)):
        return
    with store.transaction() as conn:
        top = conn.execute(f"SELECT MAX(cursor) FROM {log} WHERE {real}", (cutoff,)).fetchone()[0]
        if top is not None:
            conn.execute(f"DELETE FROM {log} WHERE cursor <= ? OR op = '{PENDING}'", (top,))
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


__all__ = [
    "DEFAULT_RETENTION",
    "INT64_MAX",
    "Change",
    "find_gap",
    "first_cursor",
    "not_enabled",
    "read_changes",
    "start_over",
]
