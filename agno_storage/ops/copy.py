"""``copy``: a sessions table to another table, engine or file, row by row as stored."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import attrs

from agno_storage import urls
from agno_storage.agent_runs import TABLE as RUNS_TABLE
from agno_storage.models import Mode
from agno_storage.ops import runs, select
from agno_storage.ops.db import Database, check_conninfo, open_database, refuse_source
from agno_storage.ops.errors import OutputIsSourceError
from agno_storage.ops.progress import NoProgress, Progress
from agno_storage.ops.select import Filters
from agno_storage.ops.tables import TableInfo, check_exact_ids, check_types, describe
from agno_storage.ops.write import BadValue, RowWriter


@attrs.frozen
class CopySummary:
    table: str
    to_table: str
    mode: Mode
    sessions: int
    #: ``agent_runs`` rows copied with the sessions (agent table to an agent table in SQLite).
    runs: int = 0
    #: ``agent_runs`` rows that go with the sessions but that the destination cannot hold (not SQLite).
    runs_left: int = 0


def copy_table(
    source: Database,
    table: str,
    url: str,
    *,
    to_table: str | None = None,
    mode: Mode | None = None,
    schema: str | None = "ai",
    filters: Filters = Filters(),  # noqa: B008 - frozen
    progress: Progress | None = None,
) -> CopySummary:
    """Upsert every session of ``table`` in ``source`` into ``to_table`` (default: the same name) of ``url``.

    Rows go as stored (JSON as its text; PostgreSQL keeps it as jsonb), one
    transaction per ``FETCH_SIZE`` sessions; rerunning it is safe and gives
    the same table. An agent table's ``agent_runs`` rows go with its
    sessions into an agent table in SQLite (:mod:`agno_storage.ops.runs`;
    into another table of the source's own file, or of its PostgreSQL
    schema, whose ``agent_runs`` is beside the copy already, they stay as
    they are); into any other PostgreSQL table, which has no ``agent_runs``,
    they are counted in ``runs_left``. Refuses (OutputIsSourceError, before writing) a
    destination that is the source's -wal, -shm or -journal, a source that
    is the destination's (which SQLite would take for the new file's own),
    or the source table itself (on PostgreSQL: the same table of the same database, or
    of a standby of that database, by what the servers say, not how the
    URLs spell them: :meth:`~agno_storage.ops.db.TableIdentity.is_same`).
    Raises SchemaMismatchError, before writing, for a source table the store
    refuses for a column's type (:func:`~agno_storage.ops.tables.check_types`).
    Raises CorruptRowError (nothing of its batch written) for a value export
    would refuse (:func:`~agno_storage.ops.values.row_check`) or a run id two runs hold
    (:func:`~agno_storage.ops.runs.check_ids`, before writing), and what
    :class:`RowWriter` raises.
    """
    progress = progress or NoProgress()
    target = to_table or table
    shares_runs = _refuse_own_files(source, table, url, target, schema)
    with contextlib.ExitStack() as stack:
        writer: RowWriter | None = None
        if shares_runs:
            # Into another table of the source's own file (or schema): the writer first, whose store puts a
            # SQLite file in WAL, where the read transaction below keeps none of its commits out (in a rollback
            # journal it would). Its checks first too: a refused copy makes no table.
            first = describe(source, table, mode)
            if filters.user is not None:
                check_exact_ids(source, first, runs=False)
            mode = first.mode
            writer = stack.enter_context(RowWriter(url, target, mode, schema))
        # One moment of the source for all of it: its columns, the count, whether runs go with it, the sessions
        # and their runs (a writer that makes, fills or drops agent_runs meanwhile changes none of it).
        stack.enter_context(source.snapshot())
        info = describe(source, table, mode)
        check_types(source, info)  # a column the store refuses (a real time): said once, as the store says it
        progress.start(select.count(source, info, filters))
        # Into another table of the same file or schema, agent_runs is the one beside both: written back from
        # this copy's snapshot, it would bring back the runs of a session deleted meanwhile, and none is left behind.
        with_runs = not shares_runs and runs.carried(source, info) and runs.any_rows(source, info, filters)
        if with_runs:
            runs.check_ids(source, info, filters)  # before anything is written
        if writer is None:
            if filters.user is not None:  # compared case-blind, 'ALICE' would be alice
                check_exact_ids(source, info, runs=with_runs)
            writer = stack.enter_context(RowWriter(url, target, info.mode, schema))
        copied, carried, left = _copy(source, info, table, writer, filters, progress, with_runs)
    return CopySummary(table=table, to_table=target, mode=info.mode, sessions=copied, runs=carried, runs_left=left)


def _copy(
    source: Database,
    info: TableInfo,
    table: str,
    writer: RowWriter,
    filters: Filters,
    progress: Progress,
    with_runs: bool,
) -> tuple[int, int, int]:
    """Write the sessions ``filters`` selects, then (``with_runs``) their runs; (sessions, runs copied, runs left)."""
    for batch in select.rows(source, info, filters):
        rows = []
        for row in batch:
            try:
                rows.append(writer.check(row))
            except BadValue as exc:
                copied = writer.flush()  # every batch before this one, committed
                raise exc.corrupt(table, row[0], f"{copied} sessions were copied before it") from None
        # On PostgreSQL, committed by the writer's thread while the next batch is read.
        writer.write(rows)
        progress.advance(len(rows))
    copied = writer.flush()
    carried = left = 0
    if with_runs:
        for run_batch in runs.rows(source, info, filters):
            if writer.holds_runs:
                writer.write_runs(run_batch)
                carried += len(run_batch)
            else:
                left += len(run_batch)
        writer.flush()
    return copied, carried, left


def _refuse_own_files(source: Database, table: str, url: str, to_table: str, schema: str | None) -> bool:
    """Raise OutputIsSourceError if the copy would write a file of the source other than its other tables,
    or the source table itself (on PostgreSQL: the same table of the same server or of a standby of it,
    however ``url`` spells it); else whether ``to_table`` has the source's ``agent_runs`` beside it (another
    table of the source's SQLite file, or of the PostgreSQL schema that holds the source's ``agent_runs``)."""
    check_conninfo(url)  # at once, its password never shown
    target = urls.parse_location(url)
    if isinstance(target, urls.PostgresTarget):
        if source.is_sqlite:
            return False
        same_table, shares_runs = _postgres_destination(source, table, url, to_table, schema)
        if same_table:
            raise OutputIsSourceError(
                f"the destination is the source table {table!r} itself (the same table of the same "
                "PostgreSQL database, or of a standby of it, which holds its rows of a moment ago): upserting "
                "its own rows would undo what others wrote meanwhile; give --to-table or --to-schema another "
                "table (a server restored from a backup and still in recovery: promote it first; a promoted server made "
                "from a base backup of the source's primary: copy from that primary, which is not in recovery)",
                table=table,
            )
        return shares_runs
    if source.path is None or target.path is None:
        return False
    path = Path(target.path).expanduser()
    try:
        same = os.path.samefile(path, source.path)
    except OSError:
        same = False
    if not same:
        refuse_source(path, source.path, "the destination")  # its -wal, -shm or -journal
    elif source.same_table(to_table, table):
        raise OutputIsSourceError(
            f"the destination is the source table {table!r} itself; give --to-table another table",
            path=source.path,
            table=table,
        )
    return same


def _postgres_destination(
    source: Database, table: str, url: str, to_table: str, schema: str | None
) -> tuple[bool, bool]:
    """Whether ``to_table`` of ``url`` (in ``schema``) is ``table`` of ``source``, and whether the ``agent_runs``
    beside it is the source's, as the two servers say."""
    mine, my_runs = source.table_identity(table), source.table_identity(RUNS_TABLE)
    if mine is None and my_runs is None:
        return False, False
    with open_database(url, schema) as destination:
        theirs, their_runs = destination.table_identity(to_table), destination.table_identity(RUNS_TABLE)
    # None: no such table there yet, or one this user cannot see, which the writer then cannot write either.
    return (
        mine is not None and theirs is not None and mine.is_same(theirs),
        my_runs is not None and their_runs is not None and my_runs.is_same(their_runs),
    )


__all__ = ["CopySummary", "copy_table"]
