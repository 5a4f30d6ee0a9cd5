"""``prune``: delete sessions not updated for a while, with their agno-golang runs, in short transactions."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import attrs

from agno_storage.agent_runs import TABLE as RUNS_TABLE
from agno_storage.agent_runs import belongs_sql
from agno_storage.errors import InvalidInputError, StorageError
from agno_storage.models import Mode
from agno_storage.ops.db import Database, open_store, store_qualified
from agno_storage.ops.errors import RowsKeptError, rerun_completes
from agno_storage.ops.progress import NoProgress, Progress
from agno_storage.ops.select import RUN_ALIAS, Filters, no_owner_is, where
from agno_storage.ops.tables import check_exact_ids, describe, go_runs, list_tables
from agno_storage.schema import check_table_name, quote

#: Sessions deleted per write transaction: each holds the write lock only briefly.
PRUNE_BATCH = 500


@attrs.frozen
class PruneSummary:
    table: str
    cutoff: int
    dry_run: bool
    #: The sessions removed (or, for a dry run, that would be), in session_id order. A session_id another
    #: program stored as other than text (a BLOB, which ``doctor`` reports) is shown as Python spells it.
    session_ids: tuple[str, ...]
    #: Their rows in ``agent_runs`` removed (or that would be), with those of ``run_sessions``.
    runs: int
    #: Agent tables only: sessions a Go Agent kept in ``agent_runs`` alone (no session row in any
    #: sessions table) whose newest run is older than the cutoff; all their runs removed.
    run_sessions: tuple[str, ...] = ()


def prune(
    db: Database,
    url: str,
    table: str,
    older_than: int,
    *,
    user: str | None = None,
    mode: Mode | None = None,
    dry_run: bool = False,
    schema: str | None = "ai",
    now: int | None = None,
    progress: Progress | None = None,
) -> PruneSummary:
    """Delete the sessions of ``table`` not updated in ``older_than`` seconds, and their ``agent_runs`` rows.

    A session with no ``updated_at`` counts from ``created_at``; one with
    neither is kept, as is a row without a session_id. On an agent table, a
    session with a run newer than the cutoff is kept (a Go Agent adds runs
    and leaves the row as it was); pruning any other table leaves
    ``agent_runs`` alone. ``user`` limits it to one owner (``''``: no owner).
    With an agent table, the sessions a Go Agent keeps in ``agent_runs``
    alone (runs whose session_id has no row in any sessions table) are pruned
    by their runs' own age: all of a session's runs go when its newest run
    (``updated_at``, else ``created_at``) is older than the cutoff, every run
    has a time (one with none may be the newest) and, with ``user``, every
    run is that user's; a live conversation keeps all of its.
    A pruned session's runs go with it, but for those whose session_id
    still has a row in another sessions table (that session lives on) and,
    with ``user``, those of another user under an owned session's id (not
    the owner's conversation: :func:`agno_storage.conversation.belongs`).
    ``older_than`` below 0 (or NaN) is InvalidInputError, nothing removed.
    ``mode``, when given, must be the table's (SchemaMismatchError). A table
    whose name is not a plain SQL identifier (another program's) is
    InvalidInputError, in a dry run too: the store that deletes refuses it, and
    a dry run refuses every table the store does (it opens it, read-only).
    ``db`` is a read connection to the same database (the dry run and the
    counts); deletes go through the store, ``PRUNE_BATCH`` sessions per
    transaction, each re-checking the age under the write lock. A batch
    that fails raises its StorageError, saying how many sessions the
    batches before it removed (they stay removed).
    """
    progress = progress or NoProgress()
    # Negative, the cutoff is after now; NaN, every time is below it on PostgreSQL: every session would go, one
    # written a moment ago included. "not >= 0" refuses both.
    if not older_than >= 0:
        raise InvalidInputError(
            f"older_than is {older_than} seconds: an age is 0 or more (a negative one, or NaN, would prune every "
            "session)",
            table=table,
        )
    # Deletes go through the store, which takes the names check_table_name takes only: a dry run refuses what the
    # prune would (agent_runs as a sessions table too, before its runs are read as sessions).
    check_table_name(table, engine=db.engine)
    info = describe(db, table, mode)
    cutoff = (int(time.time()) if now is None else now) - older_than
    filters = Filters(user=user, until=cutoff)
    clause, params = where(db, filters)
    # agent_runs holds agent sessions' runs only: pruning a team or workflow table leaves it alone.
    has_runs = info.mode is Mode.AGENT and go_runs(db)
    # Ids compared case-blind would take another's sessions or runs; the store refuses the table, and a dry
    # run refuses what the prune would.
    check_exact_ids(db, info, runs=has_runs)
    if dry_run:
        # The store deletes: a table it refuses (a time declared TEXT, say) a dry run refuses too, opening it as
        # the prune would, read-only (the file is never changed).
        open_store(url, table, info.mode, schema, read_only=True).close()
    old = _OldSessions(table, clause, params, cutoff, has_runs)
    ids = [r[0] for r in db.query(*old.select(db.qualified, db.placeholder), table=table)]
    orphans: _RunSessions | None = None
    theirs: _TheirRuns | None = None
    if has_runs:
        session_tables = [t.name for t in list_tables(db).sessions]
        # A user no row can be (where() selects no session of it) has no run-only session either.
        orphans = None if no_owner_is(db, user) else _RunSessions(session_tables, cutoff, user)
        theirs = _TheirRuns(
            table, [t for t in session_tables if not db.same_table(t, table)], owned_only=user is not None
        )
    run_ids = (
        [r[0] for r in db.query(*orphans.select(db.qualified, db.placeholder), table=RUNS_TABLE)] if orphans else []
    )
    progress.start(len(ids) + len(run_ids))
    if dry_run:
        runs = 0
        if theirs is not None:
            runs = _count_runs(db, ids, theirs.condition(db.qualified)) + _count_runs(db, run_ids, "")
        return PruneSummary(
            table=table, cutoff=cutoff, dry_run=True, session_ids=_shown(ids), runs=runs, run_sessions=_shown(run_ids)
        )
    store = open_store(url, table, info.mode, schema)
    removed: list[str] = []
    removed_runs: list[str] = []
    runs = 0
    try:
        ph = store.statements.placeholder
        sessions = store_qualified(store, table)
        agent_runs = store_qualified(store, RUNS_TABLE)
        # SQLite's write transaction holds the file; PostgreSQL locks the rows chosen, each checked again
        # against its newest version, so a session a writer updates meanwhile stays on either engine.
        lock = ph != "?"
        while True:
            batch_runs = 0  # counted once its transaction commits: a batch that fails removes none
            with store.transaction() as conn:
                cursor = conn.cursor()
                # Re-selected under the write lock: a session updated meanwhile stays.
                cursor.execute(*old.select(lambda t: store_qualified(store, t), ph, PRUNE_BATCH, lock=lock))
                batch = [r[0] for r in cursor.fetchall()]
                if not batch:
                    break
                marks = ", ".join([ph] * len(batch))
                if theirs is not None:
                    condition = theirs.condition(lambda t: store_qualified(store, t))
                    cursor.execute(
                        f'DELETE FROM {agent_runs} AS r WHERE r."session_id" IN ({marks}){condition}',  # noqa: S608
                        batch,
                    )
                    batch_runs = max(cursor.rowcount, 0)
                cursor.execute(f'DELETE FROM {sessions} WHERE "session_id" IN ({marks})', batch)  # noqa: S608
                if 0 <= cursor.rowcount < len(batch):  # chosen under the lock, so only a trigger or rule kept them
                    raise _kept(table, len(batch) - cursor.rowcount, "sessions")
                cursor.close()
            runs += batch_runs
            removed.extend(batch)
            progress.advance(len(batch))
        while orphans is not None:
            batch_runs = 0
            with store.transaction() as conn:
                cursor = conn.cursor()
                # Again under the write lock: a session that got a row or a new run meanwhile stays.
                statement, orphan_params = orphans.select(lambda t: store_qualified(store, t), ph, PRUNE_BATCH)
                cursor.execute(statement, orphan_params)
                batch = [r[0] for r in cursor.fetchall()]
                if not batch:
                    break
                marks = ", ".join([ph] * len(batch))
                cursor.execute(f'DELETE FROM {agent_runs} WHERE "session_id" IN ({marks})', batch)  # noqa: S608
                batch_runs = max(cursor.rowcount, 0)
                cursor.execute(f'SELECT COUNT(*) FROM {agent_runs} WHERE "session_id" IN ({marks})', batch)  # noqa: S608
                (kept,) = cursor.fetchone()
                if kept:
                    raise _kept(RUNS_TABLE, int(kept), "agent_runs rows")
                cursor.close()
            runs += batch_runs
            removed_runs.extend(batch)
            progress.advance(len(batch))
    except StorageError as exc:  # the batches before it stay deleted: say so, or the user thinks none went
        exc.message = (
            f"{exc.message}; {len(removed)} sessions were removed before it stopped (and {len(removed_runs)} a "
            f"Go Agent kept only in agent_runs; {runs} agent_runs rows), none of the batch that failed"
            + (" (running it again completes it)" if rerun_completes(exc) else "")
        )
        raise
    finally:
        store.close()
    return PruneSummary(
        table=table,
        cutoff=cutoff,
        dry_run=False,
        session_ids=_shown(removed),
        runs=runs,
        run_sessions=_shown(removed_runs),
    )


def _kept(table: str, count: int, what: str) -> StorageError:
    # Chosen again, they would be for ever: a rerun stops there too.
    return RowsKeptError(
        f"the database kept {count} {what} of the batch it was asked to remove from {table!r} (a trigger or rule "
        "of another program); prune stopped and rolled the batch back",
        table=table,
    )


def _shown(ids: list[Any]) -> tuple[str, ...]:
    """``ids`` as text, sorted: a BLOB session_id (bytes, not comparable with text) as Python spells it.

    Made after the deletes too: a report that fails here would hide what was deleted."""
    return tuple(sorted(i if isinstance(i, str) else repr(i) for i in ids))


@attrs.frozen
class _OldSessions:
    """The sessions of a table old enough to prune: the row's age, and on an agent table its runs' too.

    A Go Agent never updates a session row it continues; it adds rows to
    ``agent_runs``. So a session with a run newer than the cutoff is live,
    however old its row. A row without a session_id (only a broken file
    has one) cannot be named, and is left for ``doctor`` to report.
    """

    table: str
    clause: str
    params: list[Any]
    cutoff: int
    with_runs: bool

    def select(
        self, qualified: Callable[[str], str], ph: str, limit: int | None = None, *, lock: bool = False
    ) -> tuple[str, list[Any]]:
        """Their session_ids in order (at most ``limit``; ``lock``: FOR UPDATE, PostgreSQL only)."""
        sessions = qualified(self.table)
        terms = [self.clause or " WHERE 1 = 1", ' AND "session_id" IS NOT NULL']
        params = list(self.params)
        if self.with_runs:
            r = RUN_ALIAS  # any run keeps it, another user's too: prune errs on the side of keeping
            terms.append(
                f' AND NOT EXISTS (SELECT 1 FROM {qualified(RUNS_TABLE)} AS {r} WHERE {r}."session_id" = '  # noqa: S608
                f'{sessions}."session_id" AND COALESCE({r}."updated_at", {r}."created_at") >= {ph})'
            )
            params.append(self.cutoff)
        statement = f'SELECT "session_id" FROM {sessions}{"".join(terms)} ORDER BY "session_id"'  # noqa: S608
        if limit is not None:
            statement += f" LIMIT {int(limit)}"
        if lock:
            statement += " FOR UPDATE"
        return statement, params


@attrs.frozen
class _RunSessions:
    """The sessions that exist only as rows of ``agent_runs``, old enough to prune."""

    session_tables: list[str]
    cutoff: int
    user: str | None

    def select(self, qualified: Callable[[str], str], ph: str, limit: int | None = None) -> tuple[str, list[Any]]:
        """Their session_ids in order (at most ``limit``): ``qualified`` quotes a table name for the connection."""
        no_row = "".join(
            f' AND NOT EXISTS (SELECT 1 FROM {qualified(t)} s WHERE s."session_id" = r."session_id")'  # noqa: S608
            for t in self.session_tables
        )
        # A run with no time may be the newest: its session is kept, as a session row with no time is (and
        # ``export --until``, which takes a run by its own time, never holds it).
        stamp = 'COALESCE(r."updated_at", r."created_at")'
        having = f"MAX({stamp}) < {ph} AND COUNT({stamp}) = COUNT(*)"
        params: list[Any] = [self.cutoff]
        if self.user is not None:
            having += f" AND MIN(COALESCE(r.\"user_id\", '')) = {ph} AND MAX(COALESCE(r.\"user_id\", '')) = {ph}"
            params += [self.user, self.user]
        statement = (
            # A run without a session_id (another program's table allows one) names no session: left for doctor.
            f'SELECT r."session_id" FROM {qualified(RUNS_TABLE)} r WHERE r."session_id" IS NOT NULL{no_row}'  # noqa: S608
            f' GROUP BY r."session_id" HAVING {having} ORDER BY r."session_id"'
        )
        if limit is not None:
            statement += f" LIMIT {int(limit)}"
        return statement, params


@attrs.frozen
class _TheirRuns:
    """Which ``agent_runs`` rows of a pruned session go with it: a condition on the runs (alias ``r``).

    Not a run whose session_id has a row in another sessions table of the
    file or schema: that session is still there, and the runs are its
    conversation too. With ``owned_only`` (prune of one user's sessions),
    only the runs of the session's own conversation (no user, the owner's,
    or any of a session with no owner), never another user's under its id.
    """

    table: str
    other_tables: list[str]
    owned_only: bool

    def condition(self, qualified: Callable[[str], str]) -> str:
        """`` AND ...`` terms for a statement on ``agent_runs AS r`` (none when every run goes)."""
        terms = [
            f' AND NOT EXISTS (SELECT 1 FROM {qualified(t)} o WHERE o."session_id" = r."session_id")'  # noqa: S608
            for t in self.other_tables
        ]
        if self.owned_only:
            terms.append(
                f' AND EXISTS (SELECT 1 FROM {qualified(self.table)} s WHERE s."session_id" = r."session_id"'  # noqa: S608
                f" AND {belongs_sql('r', 's')})"
            )
        return "".join(terms)


def _count_runs(db: Database, ids: list[str], condition: str) -> int:
    total = 0
    for start in range(0, len(ids), PRUNE_BATCH):
        chunk = ids[start : start + PRUNE_BATCH]
        marks = ", ".join([db.placeholder] * len(chunk))
        (n,) = db.query(
            f'SELECT COUNT(*) FROM {db.qualified(RUNS_TABLE)} AS r WHERE r."session_id" IN ({marks}){condition}',  # noqa: S608
            chunk,
            table=RUNS_TABLE,
        )[0]
        total += int(n)
    return total


def vacuum(url: str, table: str, schema: str | None = "ai") -> None:
    """Give the space freed by deletes back: ``VACUUM`` of a SQLite file, or of the table on PostgreSQL."""
    from agno_storage import urls

    target = urls.parse_location(url)
    if isinstance(target, urls.SqliteTarget):
        import sqlite3

        from agno_storage.ops.db import sqlite_path

        path = sqlite_path(target)
        try:
            # The URL's ?timeout=, as every command waits it; without one, 30 s.
            wait = 30.0 if target.timeout is None else target.timeout
            conn = sqlite3.connect(path, isolation_level=None, timeout=wait)
            try:
                conn.execute("VACUUM")
            finally:
                conn.close()
        except sqlite3.Error as exc:  # a full disk (VACUUM writes a copy of the file), a lock held past the wait
            from agno_storage.backends.sqlite_errors import translate

            # Typed as the deletes' errors are (BusyError, DiskFullError...), saying the deletes stand.
            typed = translate(exc, path=path)
            raise type(typed)(f"VACUUM of {path!r} failed (the deletes stand): {typed.message}", table=table) from exc
        return
    import psycopg

    name = f"{quote(schema)}.{quote(table)}" if schema else quote(table)
    try:
        with psycopg.connect(target.conninfo, autocommit=True, client_encoding="utf8", prepare_threshold=None) as pg:
            pg.execute(psycopg.sql.SQL(f"VACUUM {name}"))  # quoted identifiers
    except psycopg.Error as exc:
        from agno_storage.backends.pg_conn import translate as pg_translate

        typed = pg_translate(exc, table)
        raise type(typed)(f"VACUUM of table {name} failed (the deletes stand): {typed.message}", table=table) from exc


__all__ = ["PRUNE_BATCH", "PruneSummary", "prune", "vacuum"]
