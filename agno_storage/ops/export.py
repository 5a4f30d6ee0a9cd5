"""``export``: a sessions table to JSON Lines, losslessly, streaming in flat memory."""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

import attrs
import orjson

from agno_storage.models import Mode
from agno_storage.modes import SPECS
from agno_storage.ops import runs, select
from agno_storage.ops.db import Database
from agno_storage.ops.lines import header_for, make_converter
from agno_storage.ops.progress import NoProgress, Progress
from agno_storage.ops.select import Filters
from agno_storage.ops.tables import TableInfo, check_exact_ids, check_types, describe
from agno_storage.ops.values import BadValue, row_check


@attrs.frozen
class ExportSummary:
    table: str
    mode: Mode
    sessions: int
    #: ``agent_runs`` rows written after the sessions (an agent table beside an ``agent_runs`` table).
    runs: int = 0


def export_table(
    db: Database,
    table: str,
    out: IO[bytes],
    *,
    mode: Mode | None = None,
    filters: Filters = Filters(),  # noqa: B008 - frozen
    progress: Progress | None = None,
) -> ExportSummary:
    """Write ``table``'s sessions (those ``filters`` selects) to ``out``: a header line, then one line each.

    An agent table beside an ``agent_runs`` table also gets the runs that go
    with those sessions (:mod:`agno_storage.ops.runs`), one line each after
    the sessions, in a version 2 file; any other export is version 1.

    The format is :mod:`agno_storage.ops.lines`. ``mode`` is detected from
    the table's columns unless given. Reads one snapshot (the table's
    columns, whether runs go with it, the sessions and runs alike), ``FETCH_SIZE`` rows at a time. Raises TableNotFoundError,
    SchemaMismatchError (a column of a type the store refuses the table for, before any line), and
    CorruptRowError for a value no line can hold that import would take back (a BLOB, a text or a
    REAL where a time is, JSON text import refuses, an empty session_id): what it wrote before stays.
    """
    progress = progress or NoProgress()
    # One moment for all of it: the table's columns, whether runs go with it (the file's version), the count,
    # the sessions and their runs. A writer that makes, fills or drops agent_runs meanwhile changes none of it.
    # (A streaming statement holds a rollback-journal file's read lock as long as the transaction would.)
    with db.snapshot():
        info = describe(db, table, mode)
        check_types(db, info)  # a column the store refuses (a real time): said once, as the store says it
        with_runs = runs.carried(db, info) and runs.any_rows(db, info, filters)
        if with_runs:
            runs.check_ids(db, info, filters)  # before anything is written
        if filters.user is not None:  # compared case-blind, 'ALICE' would be alice
            check_exact_ids(db, info, runs=with_runs)
        return _export(db, info, table, out, filters, progress, with_runs)


def _export(
    db: Database, info: TableInfo, table: str, out: IO[bytes], filters: Filters, progress: Progress, with_runs: bool
) -> ExportSummary:
    header = header_for(info.mode, layout=info.layout.value, engine=db.engine, table=table, agent_runs=with_runs)
    out.write(orjson.dumps(make_converter().unstructure(header)) + b"\n")
    progress.start(select.count(db, info, filters))
    names = SPECS[info.mode].names
    check = _row_check(table, info.mode)
    dumps, write = orjson.dumps, out.write
    written = 0
    for batch in select.rows(db, info, filters):
        for row in batch:
            check(row)
        # The row as a dict is exactly what the converter unstructures a line
        # to (tests check it); building no line object keeps export at the
        # speed of a plain loop.
        write(b"".join([dumps(dict(zip(names, row, strict=True))) + b"\n" for row in batch]))
        written += len(batch)
        progress.advance(len(batch))
    carried = 0
    if with_runs:
        for batch in runs.rows(db, info, filters):
            write(b"".join([dumps({"agent_run": dict(zip(runs.COLUMNS, row, strict=True))}) + b"\n" for row in batch]))
            carried += len(batch)
    return ExportSummary(table=table, mode=info.mode, sessions=written, runs=carried)


def _row_check(table: str, mode: Mode) -> Callable[[tuple[object, ...]], None]:
    """A function that raises CorruptRowError for a row whose line import would refuse (:func:`.values.row_check`).

    A text where a time is, a REAL time (1.5, or infinity, which orjson would
    write as null), a BLOB, JSON text that does not decode or is of the wrong
    type, an empty session_id: a backup holding it would fail on the day it
    is restored, so the export stops at it instead, naming it.
    """
    row_problem = row_check(mode)

    def check(row: tuple[object, ...]) -> None:
        try:
            row_problem(row)
        except BadValue as exc:
            raise exc.corrupt(table, row[0], "no export line can hold it that import would take") from None

    return check


__all__ = ["ExportSummary", "export_table"]
