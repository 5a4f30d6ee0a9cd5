# ruff: noqa: S608 - every identifier here comes through schema.quote; every value is bound.
"""The change feed's tables and triggers: their names, their SQL on each engine, and how the feed's are told apart.

The log ``<table>_changes`` and its meta table ``<table>_changes_meta``
are known to be the feed's by their columns (and the meta table by its
``pruned_through`` key), not by their names alone: a table of another
program's by one of those names is never written to or dropped. The
triggers on SQLite are ``<table>_changes_*`` on the sessions table and
``<table>_runs_changes_*`` on ``agent_runs``; on PostgreSQL one trigger
function ``<table>_changes_log`` (``SECURITY DEFINER``) behind a row
trigger and a TRUNCATE trigger. :func:`agno_storage.changes.enable_changes`
and :func:`~agno_storage.changes.disable_changes` run the statements made
here; nothing here writes (what is given a connection only reads the
catalogue through it).
"""

from __future__ import annotations

import builtins
import re
from typing import TYPE_CHECKING, Any, Final

from agno_storage import agent_runs
from agno_storage.errors import StorageError
from agno_storage.schema import literal, quote, unquote

if TYPE_CHECKING:
    from agno_storage.backends.base import BaseStorage


def names(store: BaseStorage) -> tuple[str, str]:
    """The feed's log and meta table of ``store``'s table, quoted (and qualified by its schema on PostgreSQL)."""
    t = store.table_name
    schema = getattr(store, "schema", None)
    if is_sqlite(store) or not schema:
        return quote(t + "_changes"), quote(t + "_changes_meta")
    return f"{quote(schema)}.{quote(t + '_changes')}", f"{quote(schema)}.{quote(t + '_changes_meta')}"


def is_sqlite(store: BaseStorage) -> bool:
    """Whether ``store`` is a SQLite store: the feed's SQL differs by engine."""
    from agno_storage.backends.sqlite import SqliteStorage

    return isinstance(store, SqliteStorage)


#: The log's columns in order, as enable_changes() makes it on SQLite and on PostgreSQL (every build so far):
#: how a table by the log's name is known to be the feed's and not another program's.
_SQLITE_LOG_COLUMNS: Final = ("cursor", "tbl", "session_id", "user_id", "op", "at")
_PG_LOG_COLUMNS: Final = ("id", "cursor", "tbl", "session_id", "user_id", "op", "at", "xid")
#: The meta table's columns; it is the feed's only if it also holds the 'pruned_through' key (see :func:`is_meta`).
_META_COLUMNS: Final = ("key", "value")


def _columns(store: BaseStorage, table: str) -> tuple[str, ...]:
    """The columns, in order, of the plain table ``table`` (quoted, qualified or not); () if no table has that name.

    A view or an index by that name has none: it is no table of the feed's.
    """
    if is_sqlite(store):
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


def is_log(store: BaseStorage, log: str) -> bool:
    """Whether ``log`` is a change log: a table with the log's columns, not one that merely has its name."""
    return _columns(store, log) == (_SQLITE_LOG_COLUMNS if is_sqlite(store) else _PG_LOG_COLUMNS)


def is_meta(store: BaseStorage, meta: str) -> bool:
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
    log, _ = names(store)
    return is_log(store, log)


def taken(store: BaseStorage, log: str) -> bool:
    """Whether something already has the log's name."""
    if is_sqlite(store):
        return bool(store._query("SELECT 1 FROM sqlite_master WHERE name = ? COLLATE NOCASE", (unquote(log),)))
    rows = store._query("SELECT to_regclass(%s) IS NOT NULL", (log,))
    return bool(rows and rows[0][0])


#: The PostgreSQL trigger that marks the feed when the sessions table is emptied by TRUNCATE (suffix of its name).
TRUNCATE_SUFFIX: Final = "_changes_truncate"


def trigger_function(log: str) -> str:
    """The PostgreSQL trigger function of the feed whose log is ``log``, quoted (and qualified as ``log`` is)."""
    return log[:-1] + '_log"'


def pg_function_sql(function: str, log: str, meta: str) -> str:
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


def pg_require_own(conn: Any, table: str, t: str) -> None:
    """StorageError unless ``table`` (as the search path finds it now) is owned by the role running this."""
    row = _pg_class(conn, table)
    if row is not None and row[2] != row[3]:
        raise StorageError(
            f"cannot start the change feed of table {t!r}: {row[0]}.{row[1]} is owned by role {row[2]!r}, not "
            f"by {row[3]!r}, which enables the feed; the feed's trigger function runs as the role that enables it, "
            "so its log must be that role's (enable the feed as that role, or give the table to this one)",
            table=t,
        )


def pg_resolved(conn: Any, table: str) -> str:
    """``table`` (quoted, qualified or not) as schema.name, quoted: where the search path finds it now."""
    row = _pg_class(conn, table)
    return f"{quote(row[0])}.{quote(row[1])}"


def pg_triggers(conn: Any, function: str, but_on: str | None = None) -> builtins.list[tuple[str, str, str]]:
    """(schema, table, trigger) of every trigger that calls ``function``, leaving out those on ``but_on``."""
    rows: Any = conn.execute(
        "SELECT n.nspname, c.relname, t.tgname FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid "
        "JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE t.tgfoid = to_regprocedure(%s) "
        "AND t.tgrelid IS DISTINCT FROM to_regclass(%s) ORDER BY 1, 2, 3",
        (function + "()", but_on),
    ).fetchall()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


#: The op of a log row the sessions table's BEFORE triggers write for the row an insert (or a rename) may replace:
#: the insert (rename) trigger makes it a ``delete`` if the write went in (a REPLACE); no reader returns it as it is.
PENDING: Final = "pending"

#: The meta key under which enable_changes() keeps the version of the triggers it made (:data:`TRIGGERS_VERSION`):
#: a feed an earlier version made has an older one, or none, and lacks the triggers :func:`later_triggers` names
#: with no gap (enable_changes() adds them, keeping the log).
REPLACE_MARK: Final = "replace_trigger"

#: The version of the feed's SQLite triggers: 1 added the sessions table's ``replace``, 2 its ``reid`` and
#: ``rename`` (the update trigger's renames, which it then left to that one).
TRIGGERS_VERSION: Final = 2

#: The feed's triggers on the sessions table and on ``agent_runs``, by op, each with the version that added it
#: (0: every version). ``agent_runs``' ``replace`` and ``reid`` came together, before the mark.
_OPS: Final = {"insert": 0, "update": 0, "delete": 0, "replace": 1, "reid": 2, "rename": 2}
_RUNS_OPS: Final = {"insert": 0, "update": 0, "delete": 0, "replace": 1, "reid": 1}


def trigger_names(table: str, sessions_table: str) -> builtins.list[str]:
    """The names of the feed's triggers on ``table`` (the sessions table, or ``agent_runs``), unquoted."""
    if table != agent_runs.TABLE:
        return [f"{table}_changes_{op}" for op in _OPS]
    return [f"{sessions_table}_runs_changes_{op}" for op in _RUNS_OPS]


def later_triggers(table: str, sessions_table: str, version: int) -> builtins.list[str]:
    """The feed's triggers on ``table`` that a feed of triggers ``version`` (0: no mark) was made without, unquoted.

    Such a feed lacks them all, or none: one of them there means the
    others are needed too (one missing then was dropped by another program).
    """
    added = _RUNS_OPS if table == agent_runs.TABLE else _OPS
    return [name for name, v in zip(trigger_names(table, sessions_table), added.values(), strict=True) if v > version]


def sqlite_trigger(conn: Any, trigger: str) -> tuple[str, str] | None:
    """The table the SQLite trigger ``trigger`` is on and its SQL, or None if there is none by that name."""
    row = conn.execute(
        "SELECT tbl_name, sql FROM sqlite_master WHERE type = 'trigger' AND name = ? COLLATE NOCASE", (trigger,)
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1] or ""))


def writes_to(sql: str, log: str) -> bool:
    """Whether a feed's SQLite trigger (its ``sql``) appends to ``log`` (quoted): it is that feed's own."""
    return f"insert into {log.lower()} (" in sql.lower()


def misplaced_trigger(t: str, log: str, table: str, trigger: str, on: str, sql: str) -> StorageError:
    """The error for a trigger the feed of ``t`` needs on ``table`` that is on table ``on`` instead."""
    if writes_to(sql, log):
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


def sqlite_triggers(log: str, table: str, sessions_table: str) -> builtins.list[str]:
    """DROP and CREATE of each of the feed's SQLite triggers on ``table`` (the sessions table or ``agent_runs``)."""
    now = "CAST(strftime('%s', 'now') AS INTEGER)"
    tbl = literal(table)
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
    events = [("insert", "AFTER INSERT", ""), ("update", "AFTER UPDATE", ""), ("delete", "AFTER DELETE", "")]
    if table != agent_runs.TABLE:
        # agno-golang's INSERT OR REPLACE deletes the row it replaces with no delete trigger fired (unless the
        # writer turned recursive_triggers on), as does an UPDATE OR REPLACE of session_id onto another row's:
        # one under another owner would leave that owner's feed with no change. A BEFORE trigger cannot tell a
        # REPLACE from a write that is ignored (or an insert that turns into an update), so it logs that row as
        # pending, and the insert trigger, or the rename trigger of that update, makes it the old owner's
        # delete (the write went in, so the row was replaced). Each looks only at the newest row of the log,
        # and only at one of another owner than the new row's: a pending row an ignored write left that is
        # still the newest names the session's owner now (any write since would be logged after it), and a
        # REPLACE by that owner logs none of its own. A pending row is never read; pruning drops them all.
        # No trigger deletes one: a DELETE on the log would cost every upsert more than the rest of its logging.
        replaced = (
            f"UPDATE {log} SET op = 'delete' WHERE cursor = (SELECT MAX(cursor) FROM {log}) AND op = '{PENDING}' "
            f"AND tbl = {tbl} AND session_id = new.session_id AND user_id IS NOT new.user_id;"
        )
        pending = (
            f"{insert} SELECT {tbl}, session_id, user_id, '{PENDING}', {now} FROM {quote(table)} "
            "WHERE session_id = new.session_id AND user_id IS NOT new.user_id;"
        )
        body["replace"] = body["reid"] = pending
        # A rename has a trigger of its own, so an update that keeps the id (agno's upsert) runs no statement
        # for the pending row of a rename; their WHEN clauses split every update between them.
        body["rename"] = f"{replaced} {body['update']}"
        body["insert"] = f"{replaced} {body['insert']}"
        renamed = "WHEN old.session_id IS NOT new.session_id"
        events[1] = ("update", "AFTER UPDATE", "WHEN old.session_id IS new.session_id")
        events += [
            ("replace", "BEFORE INSERT", ""),
            ("reid", "BEFORE UPDATE OF session_id", renamed),
            ("rename", "AFTER UPDATE OF session_id", renamed),
        ]
    else:
        # A run is keyed by its id: a REPLACE (or UPDATE OR REPLACE of the id) taking an id another session
        # (or another owner) holds deletes that row with no delete trigger fired; log it beforehand, as
        # an update (re-read it): an INSERT OR IGNORE fires the trigger too, and then nothing is lost.
        gone = (
            f"{insert} SELECT {tbl}, session_id, user_id, 'update', {now} FROM {quote(table)} "
            "WHERE id = new.id AND session_id IS NOT NULL"
        )
        body["replace"] = f"{gone} AND (session_id IS NOT new.session_id OR user_id IS NOT new.user_id);"
        body["reid"] = f"{gone} AND new.id IS NOT old.id;"
        events += [("replace", "BEFORE INSERT", ""), ("reid", "BEFORE UPDATE OF id", "")]
    out = []
    for name, (op, event, when) in zip(trigger_names(table, sessions_table), events, strict=True):
        trigger = quote(name)
        out.append(f"DROP TRIGGER IF EXISTS {trigger}")
        out.append(f"CREATE TRIGGER {trigger} {event} ON {quote(table)} {when} BEGIN {body[op]} END")
    return out


__all__ = [
    "PENDING",
    "REPLACE_MARK",
    "TRIGGERS_VERSION",
    "TRUNCATE_SUFFIX",
    "enabled",
    "is_log",
    "is_meta",
    "is_sqlite",
    "later_triggers",
    "misplaced_trigger",
    "names",
    "pg_function_sql",
    "pg_require_own",
    "pg_resolved",
    "pg_triggers",
    "sqlite_trigger",
    "sqlite_triggers",
    "taken",
    "trigger_function",
    "trigger_names",
    "writes_to",
]
