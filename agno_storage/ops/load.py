"""``import``: an export file back into a sessions table, in batches, each its own transaction."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable
from typing import Any

import attrs
import cattrs
import orjson

from agno_storage.backends import sqlite_errors
from agno_storage.errors import CorruptRowError, StorageError
from agno_storage.models import Mode
from agno_storage.modes import SPECS
from agno_storage.ops import runs
from agno_storage.ops.errors import ExportFormatError
from agno_storage.ops.lines import FORMAT, FORMAT_VERSION, Header, make_converter, row_reader
from agno_storage.ops.progress import NoProgress, Progress
from agno_storage.ops.write import BATCH_SIZE, BadValue, RowWriter


@attrs.frozen
class ImportSummary:
    table: str
    mode: Mode
    #: Sessions written, each once however many lines of the file wrote it.
    sessions: int
    #: ``agent_runs`` rows imported (a version 2 file into an agent table in SQLite), each run once.
    runs: int = 0
    #: ``agent_runs`` rows of the file that the table cannot have beside it (not SQLite): not imported.
    runs_left: int = 0
    #: Session lines whose session_id an earlier line of the file had: each replaced what that line wrote.
    repeated: int = 0


class _Written:
    """The session_ids (and run ids) an import has written, kept in a temporary file SQLite makes and removes.

    Memory stays flat (SQLite's page cache); the file, in SQLite's temporary
    folder (``SQLITE_TMPDIR``, else ``TMPDIR``), holds about 100 bytes an id.
    """

    def __init__(self) -> None:
        self.repeated = 0
        try:
            self._conn = sqlite3.connect("", isolation_level=None)  # "": a temporary database of its own
            for table in ("sessions", "runs"):
                self._conn.execute(f"CREATE TABLE {table} (id TEXT PRIMARY KEY) WITHOUT ROWID")
            self._conn.execute("BEGIN")  # never committed: nothing written to a journal
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def write(self, writer: RowWriter, batch: list[list[Any]]) -> None:
        """Hand ``batch`` to ``writer``, counting as sessions only those no earlier batch had (the rest: repeated).

        A failure of the temporary file (a full disk) stops the import as a
        batch's would: saying how many sessions were written before it.
        """
        new = self._noted(writer, "sessions", batch, "the batch")
        writer.write(batch, sessions=new)
        self.repeated += len(batch) - new

    def new_runs(self, writer: RowWriter, lines: list[tuple[Any, ...]]) -> int:
        """How many of ``lines`` (agent_runs rows, not yet written) are runs no earlier line had."""
        return self._noted(writer, "runs", lines, "the agent_runs batch")

    def _noted(self, writer: RowWriter, table: str, rows: list[list[Any]] | list[tuple[Any, ...]], batch: str) -> int:
        try:
            return self._new(table, rows)
        except StorageError as exc:
            writer.flush()  # the batches handed over before, committed (or the error one of them raised)
            writer.say_written(exc, batch)
            raise

    def _new(self, table: str, rows: list[list[Any]] | list[tuple[Any, ...]]) -> int:
        before = self._conn.total_changes
        try:
            self._conn.executemany(f"INSERT OR IGNORE INTO {table} VALUES (?)", [(row[0],) for row in rows])  # noqa: S608
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        return self._conn.total_changes - before

    def close(self) -> None:
        self._conn.close()

    @staticmethod
    def _error(exc: sqlite3.Error) -> StorageError:
        # Typed as the database's own errors are: a full temporary folder is a DiskFullError, which a rerun with
        # room there completes.
        typed = sqlite_errors.translate(exc)
        return type(typed)(
            "import keeps the ids it wrote in a temporary file (in SQLITE_TMPDIR, else TMPDIR), which failed: "
            f"{typed.message}"
        )


def read_header(line: bytes, converter: cattrs.Converter) -> Header:
    """The header of an export file; ExportFormatError (line 1) if it is not one this code reads."""
    try:
        header = converter.structure(_object(orjson.loads(line), "the header"), Header)
    except (orjson.JSONDecodeError, cattrs.BaseValidationError, TypeError, ValueError) as exc:
        raise ExportFormatError(f"line 1 is not an export header: {_why(exc)}", line=1) from None
    if header.format != FORMAT or not 1 <= header.version <= FORMAT_VERSION:
        raise ExportFormatError(
            f"line 1: format {header.format!r} version {header.version} is not {FORMAT!r} up to version {FORMAT_VERSION}",
            line=1,
        )
    if header.columns != list(SPECS[header.mode].names):
        raise ExportFormatError(f"line 1: columns {header.columns} are not the {header.mode.value} columns", line=1)
    return header


def import_lines(
    lines: Iterable[bytes],
    url: str,
    table: str,
    *,
    mode: Mode | None = None,
    schema: str | None = "ai",
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> ImportSummary:
    """Upsert the sessions of an export file (its lines) into ``table`` of ``url``; return how many.

    Creates the table if needed. Refuses (ExportFormatError, line 1) a file
    whose mode is not ``mode``, and (SchemaMismatchError) a table of another
    mode. Each batch of ``batch_size`` lines is checked whole, then written in
    one transaction (on PostgreSQL while the next batch is read): a bad line raises
    ExportFormatError with its line number and the count imported before it,
    and nothing of its batch is written. A bad line is one that is not a
    JSON object, or holds a value export would not write (an empty
    session_id, a time beyond 64 bits, JSON text of the wrong type; for a
    run line what :func:`runs.check` refuses), or one past a narrower PostgreSQL
    column of the table (the error names its session_id and column too). A session_id on several lines is
    upserted each time, as several imports would: the later line's values,
    the first's ``created_at``; it counts once in ``sessions`` (and in the
    count of a bad line's error), its later lines in ``repeated``. A version 2 file's ``agent_runs``
    lines go into ``agent_runs`` beside an agent table in SQLite; elsewhere
    they are counted in ``runs_left``.
    """
    progress = progress or NoProgress()
    converter = make_converter()
    iterator = iter(lines)
    first = next(iterator, None)
    if first is None:
        raise ExportFormatError("the file is empty: no export header", line=1)
    header = read_header(first, converter)
    if mode is not None and mode is not header.mode:
        raise ExportFormatError(f"line 1: the file holds {header.mode.value} sessions, not {mode.value}", line=1)
    progress.start(None)
    read = row_reader(header.mode, converter)
    run_lines: list[tuple[Any, ...]] = []
    carried = left = 0
    with RowWriter(url, table, header.mode, schema) as writer, contextlib.closing(_Written()) as written:
        batch: list[list[Any]] = []
        for number, line in enumerate(iterator, start=2):
            if not line or line.isspace():  # a blank line; strip() would copy every line
                continue
            try:
                value = orjson.loads(line)
                if header.agent_runs and type(value) is dict and value.keys() == {"agent_run"}:
                    run_lines.append(_run_row(value["agent_run"], converter))
                    if len(run_lines) >= runs.BATCH_SIZE:
                        # The session lines before these runs go first, even a batch not yet full: a run is
                        # never committed ahead of its session's line.
                        written.write(writer, batch)
                        progress.advance(len(batch))
                        batch = []
                        carried, left = _put_runs(writer, written, run_lines, carried, left)
                        run_lines = []
                    continue
                batch.append(writer.check(read(value)))  # an empty session_id too (values.row_check)
            except (orjson.JSONDecodeError, cattrs.BaseValidationError, BadValue, TypeError, ValueError) as exc:
                imported = writer.flush()  # every batch before this one, committed
                raise ExportFormatError(
                    f"line {number}: {_why(exc)}; {imported} sessions were imported before its batch, "
                    "nothing of its batch",
                    line=number,
                    imported=imported,
                    table=table,
                    # A value past a narrower PostgreSQL column of the target (InvalidInputError) names both too.
                    column=exc.column if isinstance(exc, (BadValue, StorageError)) else None,
                    session_id=exc.session_id if isinstance(exc, StorageError) else None,
                ) from None
            if len(batch) >= batch_size:
                # On PostgreSQL, committed by the writer's thread while the next batch is read.
                written.write(writer, batch)
                progress.advance(len(batch))
                batch = []
        written.write(writer, batch)
        progress.advance(len(batch))
        imported = writer.flush()
        carried, left = _put_runs(writer, written, run_lines, carried, left)
        writer.flush()
    return ImportSummary(
        table=table, mode=header.mode, sessions=imported, runs=carried, runs_left=left, repeated=written.repeated
    )


def _put_runs(
    writer: RowWriter, written: _Written, lines: list[tuple[Any, ...]], carried: int, left: int
) -> tuple[int, int]:
    """Write ``lines`` (agent_runs rows) where the table can have them, else count them as left; the new counts.

    A run written before (its id on an earlier line) is replaced and not counted again.

    The caller has handed every session line before them to ``writer``; they are committed first.
    """
    if not writer.holds_runs:
        return carried, left + len(lines)
    writer.flush()  # the sessions before them first
    new = written.new_runs(writer, lines)  # before they are written: a failure here leaves none of them written
    writer.write_runs(lines)
    return carried + new, left


def _object(value: Any, what: str) -> dict[str, Any]:
    """``value`` if it is a JSON object; TypeError (saying what it is) if not: the converter would fail on it."""
    if type(value) is not dict:
        kind = {type(None): "null", bool: "boolean", list: "array", str: "string"}.get(type(value), "number")
        raise TypeError(f"{what} is a JSON {kind}, not a JSON object")
    return value


def _run_row(value: Any, converter: cattrs.Converter) -> tuple[Any, ...]:
    """The ``agent_runs`` row of a run line's object; BadValue for one export, copy or history would refuse."""
    row = attrs.astuple(converter.structure(_object(value, "agent_run"), runs.RunLine))
    try:
        runs.check(row)
    except CorruptRowError as exc:
        raise BadValue(exc.column or "", str(exc)) from None
    return row


def _why(exc: Exception) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc, path="line"))
    return str(exc)


__all__ = ["ImportSummary", "import_lines", "read_header"]
