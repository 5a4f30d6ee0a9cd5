"""``doctor``: what is wrong with a sessions database, row by row, without changing it."""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Callable

import attrs

from agno_storage import agent_runs, codec, conversation, conversation_go, usage
from agno_storage.agent_runs import TABLE as RUNS_TABLE
from agno_storage.agent_runs import StoredRun
from agno_storage.backends.sqlite_errors import translate
from agno_storage.errors import BusyError, CorruptRowError, DatabaseCorruptError, SchemaMismatchError, StorageError
from agno_storage.models import Session
from agno_storage.modes import JSON_KINDS, SPECS, TEXT_KINDS, ColumnKind
from agno_storage.ops import runs
from agno_storage.ops.db import Database
from agno_storage.ops.errors import HotJournalError
from agno_storage.ops.tables import TableInfo, check_types, inexact_ids, inexact_run_ids, list_tables
from agno_storage.ops.values import JSON_TYPES, json_problem
from agno_storage.schema import CURRENT_VERSION, quote

PROBLEM, NOTE = "problem", "note"

#: The note for a file or schema with no table at all (SQLite reads a 0-byte file as such a database).
NO_TABLES = "no_tables"


@attrs.frozen
class Finding:
    """One thing doctor found. A ``problem`` makes the database unwell; a ``note`` is for information."""

    severity: str
    kind: str
    message: str
    table: str | None = None
    session_id: str | None = None
    column: str | None = None


@attrs.frozen
class DoctorReport:
    findings: tuple[Finding, ...]
    tables: tuple[TableInfo, ...]
    #: SQLite only: ``integrity_check``'s answer, the journal mode and the -wal file's size.
    integrity: str | None = None
    journal_mode: str | None = None
    wal_bytes: int | None = None

    @property
    def ok(self) -> bool:
        """True when nothing is wrong (notes allowed)."""
        return not any(f.severity == PROBLEM for f in self.findings)

    @property
    def empty(self) -> bool:
        """True when the file (or schema) holds no table at all: nothing was there to check."""
        return any(f.kind == NO_TABLES for f in self.findings)


def diagnose(db: Database, path: str | None = None) -> DoctorReport:
    """Check ``db`` (open it with ``lenient_text=True`` to see non-UTF-8 text): read-only, every row.

    Problems: a failed ``integrity_check``; a table that needs an upgrade; a
    value that is not what its column holds (JSON that does not decode or is
    of the wrong type, a non-integer timestamp, a BLOB or non-UTF-8 text).
    A SQLite file too damaged to be read (not a database, a malformed
    schema) is one ``unreadable`` problem, and nothing more is checked; a
    hot journal (a writer stopped mid-transaction) is one ``hot_journal``
    problem saying how to recover. On PostgreSQL a schema the database does
    not have is one ``no_schema`` problem. A table whose rows cannot all be read (a
    damaged page) is an ``integrity`` problem; on PostgreSQL another error of
    the server (a table this role may not read: StorageError saying
    "permission denied"; ConnectionLostError) is raised. ``agent_runs`` values of the
    wrong type (what export, copy and history stop at) are ``bad_value``. An
    ``agent_runs`` that is not agno-golang's runs table (a sessions table an
    earlier agno-storage let be named so, which every reader of runs refuses)
    is an ``unfit_runs`` problem saying how to rename it.
    A sessions or ``agent_runs`` row whose values are sound but whose
    conversation ``history`` and ``search`` cannot read (``memory.runs`` not
    a list, a stored message that is not an object or has no role, ...) is a
    ``bad_conversation``: each row is read by the parser they use
    (:func:`agno_storage.conversation.combined`), so a row doctor passes is
    one they read. One whose run figures ``usage`` cannot read is a
    ``bad_usage`` (read by :func:`agno_storage.usage.session_runs` and
    :func:`~agno_storage.usage.stored_run`). Cost: one pass over each table,
    rows streamed; each row's JSON is decoded once.
    Notes: ``agent_runs`` rows whose session has no row (a Go Agent writes
    them by design), columns of other writers, on PostgreSQL each of
    agno's indexes a sessions table lacks (``missing_index``), and a file
    or schema with no table at all (``no_tables``: an empty file is such a
    SQLite database; nothing was checked, see :attr:`DoctorReport.empty`).
    ``path`` (SQLite) is the file, for the size of its -wal.
    """
    findings: list[Finding] = []
    integrity = journal = None
    wal = None
    if db.is_sqlite:
        if path is not None:
            wal = os.path.getsize(path + "-wal") if os.path.exists(path + "-wal") else 0
        try:
            integrity = "; ".join(str(r[0]) for r in db.query("PRAGMA integrity_check"))
            journal = str(db.query("PRAGMA journal_mode")[0][0])
        except HotJournalError as exc:
            findings.append(Finding(PROBLEM, "hot_journal", str(exc)))
            return DoctorReport(findings=tuple(findings), tables=(), wal_bytes=wal)
        except StorageError as exc:
            cause = exc.__cause__
            if isinstance(cause, sqlite3.Error) and isinstance(translate(cause), BusyError):
                # Locked by another connection (a writer's EXCLUSIVE lock, a VACUUM): nothing was checked, which
                # is no finding about the file.
                raise BusyError(
                    f"doctor: the file is locked by another connection ({cause}); nothing was checked"
                ) from exc
            findings.append(Finding(PROBLEM, "unreadable", f"SQLite cannot read the file: {cause or exc}"))
            return DoctorReport(findings=tuple(findings), tables=(), integrity=integrity, wal_bytes=wal)
        if integrity != "ok":
            findings.append(Finding(PROBLEM, "integrity", f"integrity_check: {integrity}"))
    elif db.schema and not db.query("SELECT 1 FROM pg_namespace WHERE nspname = %s", (db.schema,)):
        # A mistyped --schema would read as a healthy database with no tables.
        findings.append(Finding(PROBLEM, "no_schema", f"the database has no schema {db.schema!r}"))
        return DoctorReport(findings=tuple(findings), tables=())
    try:
        report = list_tables(db)
    except StorageError as exc:  # a damaged page under the schema or a table's count
        if not _is_damage(db, exc):
            raise
        findings.append(_stopped(exc, None, integrity))
        return DoctorReport(
            findings=tuple(findings), tables=(), integrity=integrity, journal_mode=journal, wal_bytes=wal
        )
    if not report.sessions and report.runs is None and not report.others:
        where = (
            "the file (SQLite reads an empty file as an empty database)"
            if db.is_sqlite
            else "the database"
            if db.schema is None
            else f"schema {db.schema!r}"
        )
        findings.append(Finding(NOTE, NO_TABLES, f"{where} holds no tables: there are no sessions to check"))
    for info in report.sessions:
        if info.version < CURRENT_VERSION:
            findings.append(
                Finding(
                    PROBLEM,
                    "old_schema",
                    f"schema version {info.version} (missing {', '.join(info.missing)}); run agno-storage upgrade",
                    table=info.name,
                )
            )
        if info.extra:
            findings.append(
                Finding(
                    NOTE, "extra_columns", f"columns of other writers, left alone: {', '.join(info.extra)}", info.name
                )
            )
        why = inexact_ids(db, info.name, [c.name for c in SPECS[info.mode].columns if c.kind in TEXT_KINDS])
        if why is not None:
            findings.append(Finding(PROBLEM, "inexact_ids", _INEXACT.format(why=why), table=info.name))
        findings.extend(_unfit_types(db, info))
        if not db.is_sqlite:
            findings.extend(_missing_indexes(db, info))
        findings.extend(_checked(db, info.name, integrity, functools.partial(_rows, db, info)))
    findings.extend(_unknown_shapes(db, report.others))
    if report.unfit_runs is not None:
        findings.append(Finding(PROBLEM, "unfit_runs", report.unfit_runs.reason, table=report.unfit_runs.name))
    if report.runs is not None:
        # On SQLite, what the store refuses the table for (agent_runs.ids_apart: a collation, or a type that turns
        # text into numbers); on PostgreSQL, where only prune and export read it, a collation.
        why = agent_runs.ids_apart(db.query) if db.is_sqlite else inexact_run_ids(db)
        if why is not None:
            findings.append(Finding(PROBLEM, "inexact_ids", _INEXACT.format(why=why), table=report.runs.name))
        findings.extend(_checked(db, report.runs.name, integrity, functools.partial(_run_rows, db)))
    if report.runs is not None and report.runs.orphaned:
        findings.append(
            Finding(
                NOTE,
                "orphaned_runs",
                f"{report.runs.orphaned} of {report.runs.rows} agent_runs rows have no session row "
                "(a Go Agent writes the runs of a new session so; prune removes them by their own age)",
                table=report.runs.name,
            )
        )
    return DoctorReport(
        findings=tuple(findings), tables=report.sessions, integrity=integrity, journal_mode=journal, wal_bytes=wal
    )


_INEXACT = (
    "{why}: one user's id could stand for another's ('ALICE' or 'alice ' for 'alice', '1.0' for '1'), so the "
    "store refuses the table; declare its id and owner columns as text (or varchar) without a collation"
)


def _unfit_types(db: Database, info: TableInfo) -> list[Finding]:
    """A column of a type that changes or refuses the store's values, for which the store refuses the table
    (``tables.check_types``): every command that opens it stops, an empty table's too."""
    try:
        check_types(db, info)
    except SchemaMismatchError as exc:
        return [Finding(PROBLEM, "unfit_type", f"{exc}; the store refuses the table", table=info.name)]
    return []


def _checked(db: Database, table: str, integrity: str | None, check: Callable[[], list[Finding]]) -> list[Finding]:
    """What ``check`` finds in ``table``; a read the file's damage stops is itself a finding."""
    try:
        return check()
    except StorageError as exc:
        if not _is_damage(db, exc):
            raise
        return [_stopped(exc, table, integrity)]


def _is_damage(db: Database, exc: StorageError) -> bool:
    """Whether a read that stopped with ``exc`` tells of damage: on SQLite, any error reading the file; on
    PostgreSQL only the server's report of damaged data, not a table this role may not read or a lost
    connection, which say nothing of the data."""
    return db.is_sqlite or isinstance(exc, DatabaseCorruptError)


#: A table missing more of a mode's columns than this is taken for another program's, not a damaged one.
_MISSING_AT_MOST = 2


def _unknown_shapes(db: Database, others: tuple[str, ...]) -> list[Finding]:
    """A table that is a mode's sessions table but for a column or two (``session_id`` and the mode's entity
    column there, at most :data:`_MISSING_AT_MOST` of its columns missing: one dropped, say). ``list`` and
    ``show`` refuse it, so it is a problem, not a table of another program to leave alone (agno 3's are
    such: its sessions table has ``session_type``, its runs table lacks more columns)."""
    found: list[Finding] = []
    for name in others:
        layout = db.layout(name)
        columns = set(layout[0]) if layout is not None else set()
        if "session_type" in columns:  # agno 2's and 3's one sessions table for every kind, no 1.x table's
            continue
        for mode, spec in SPECS.items():
            missing = [c for c in spec.names if c not in columns]
            if "session_id" in columns and spec.entity_column in columns and 0 < len(missing) <= _MISSING_AT_MOST:
                found.append(
                    Finding(
                        PROBLEM,
                        "unknown_shape",
                        f"{mode.value} sessions table without {', '.join(missing)}: no command reads it so",
                        table=name,
                    )
                )
                break
    return found


#: Each index of a table (%s, its qualified name) by name, with its key columns (none for an expression's).
_INDEX_KEYS = """
SELECT c.relname::text, ARRAY(
    SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.n)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = to_regclass(%s)
"""


def _missing_indexes(db: Database, info: TableInfo) -> list[Finding]:
    """PostgreSQL: a note for each index agno 1.x makes on ``info``'s table that is not there under agno's name.

    A note, not a problem: agno and the store read and write the table all
    the same, but a read by that column may scan the whole table, and
    without any of them ``tables`` cannot tell the layout is agno's
    (``unknown``). Says how to make it, or to rename an index on that column
    alone that has another name (a renamed table keeps its indexes' names).
    A column the table lacks is left to ``old_schema``: the upgrade adds it
    with its index. Cost: one catalogue query.
    """
    from agno_storage.backends import postgres_ddl  # psycopg: only for a PostgreSQL connection

    keys = dict(db.query(_INDEX_KEYS, (db.name(info.name),), table=info.name))
    found: list[Finding] = []
    for column in SPECS[info.mode].agno_indexed:
        name = postgres_ddl.agno_index_name(info.name, column, db.schema)
        if column in info.missing or name in keys:
            continue
        other = sorted(n for n, columns in keys.items() if columns == [column])
        if other:
            why = (
                f"is there as {other[0]!r} (a renamed table keeps its indexes' names), which tables does not take "
                f"for agno's; rename it: ALTER INDEX {db.name(other[0])} RENAME TO {quote(name)}"
            )
        else:
            create = postgres_ddl.create_index(info.name, column, db.schema).as_string(None)
            why = (
                f"is not there (a read by {column} may scan the whole table; with none of agno's indexes, tables "
                f"shows the layout as unknown); make it: {create}"
            )
        found.append(
            Finding(NOTE, "missing_index", f"agno's index {name!r} on {column} {why}", info.name, column=column)
        )
    return found


def _stopped(exc: StorageError, table: str | None, integrity: str | None) -> Finding:
    """A read that a damaged file stopped: an integrity problem (integrity_check has said what, if it could)."""
    where = f"reading table {table} " if table else "reading the tables "
    message = f"{where}stopped: {exc.__cause__ or exc}"
    if integrity == "ok":  # integrity_check passed, but reading it failed all the same
        return Finding(PROBLEM, "unreadable", message, table)
    if integrity is None:  # PostgreSQL, which has no integrity_check: the server found the damage
        return Finding(PROBLEM, "integrity", f"{message} (damaged data, as the server reports)", table)
    return Finding(PROBLEM, "integrity", f"{message} (the damage integrity_check reports)", table)


def _run_rows(db: Database) -> list[Finding]:
    """``agent_runs`` values agno-golang does not write (what stops export, copy and history), and (SQLite,
    where history, search and usage read them) runs whose messages or figures they cannot read."""
    text = f"SELECT {', '.join(quote(c) for c in runs.COLUMNS)} FROM {db.qualified(RUNS_TABLE)}"  # noqa: S608
    found: list[Finding] = []
    for batch in db.stream(text, table=RUNS_TABLE):
        for row in batch:
            try:
                runs.check(row)
            except CorruptRowError as exc:
                found.append(Finding(PROBLEM, "bad_value", str(exc), RUNS_TABLE, exc.session_id, exc.column))
                continue
            if not db.is_sqlite:
                continue  # history, search and usage read agent_runs on SQLite only (as agno-golang keeps it)
            run = StoredRun(*row).run_row()
            # Read alone: the runs before it in its session decide only which of its messages show, never
            # whether one can be read.
            problem = _conversation_problem(None, [run], RUNS_TABLE)
            if problem is not None:
                found.append(problem)
    return found


def _rows(db: Database, info: TableInfo) -> list[Finding]:
    """The values of ``info``'s rows that are not what their columns hold, and the conversations of the rest
    that ``history`` cannot read."""
    spec = SPECS[info.mode]
    columns = [c for c in spec.columns if c.name not in info.missing]
    # JSON as its stored text: psycopg would hand jsonb over decoded, and the text is what is checked.
    listed = ", ".join(db.as_text(c.name) if c.kind in JSON_KINDS else quote(c.name) for c in columns)
    statement = f"SELECT {listed} FROM {db.qualified(info.name)}"  # noqa: S608
    decoder = codec.RowCodec(spec, info.name)
    # Where each column read sits in the mode's row; a column an older schema lacks reads as NULL.
    places = [spec.names.index(c.name) for c in columns]
    full: list[object] = [None] * len(spec.names)
    found: list[Finding] = []
    for batch in db.stream(statement, table=info.name):
        for row in batch:
            for place, value in zip(places, row, strict=True):
                full[place] = value
            session = _decoded(decoder, full)
            sid = row[0]
            shown_id = sid if isinstance(sid, str) else repr(sid)
            sound = True
            for column, value in zip(columns, row, strict=True):
                if session is not None and type(value) is str and column.kind in JSON_KINDS:
                    continue  # the decode read this JSON text, and found it of the column's type
                why = _wrong(column.name, column.kind, value)
                if why is not None:
                    found.append(Finding(PROBLEM, "bad_value", why, info.name, shown_id, column.name))
                    sound = False
            if sound and session is not None:
                problem = _conversation_problem(session, [], info.name)
                if problem is not None:
                    found.append(problem)
    return found


def _decoded(decoder: codec.RowCodec, row: list[object]) -> Session | None:
    """The session ``row`` holds, decoded as the store decodes it; None where that fails (``_wrong`` says why)."""
    try:
        return decoder.decode(row)
    except CorruptRowError:
        return None


def _conversation_problem(session: Session | None, stored: list[conversation_go.RunRow], table: str) -> Finding | None:
    """A ``bad_conversation`` problem if ``history`` cannot read the conversation of ``session`` and ``stored``;
    else a ``bad_usage`` problem if ``usage`` cannot read the figures of their runs.

    The conversation is read by :func:`agno_storage.conversation.combined`, as ``history``, ``search`` and
    the search index read it, the figures by :func:`agno_storage.usage.session_runs` and
    :func:`~agno_storage.usage.stored_run`, as ``usage`` reads them; both are thrown away.
    """
    try:
        conversation.combined(session, stored, table)
    except CorruptRowError as exc:
        return Finding(PROBLEM, "bad_conversation", str(exc), exc.table, exc.session_id, exc.column)
    try:
        if session is not None:
            for _ in usage.session_runs(session, table):
                pass
        for run in stored:
            usage.stored_run(run)
    except CorruptRowError as exc:
        return Finding(PROBLEM, "bad_usage", str(exc), exc.table, exc.session_id, exc.column)
    return None


def _wrong(name: str, kind: ColumnKind, value: object) -> str | None:
    """Why ``value`` is not what column ``name`` of ``kind`` holds, or None if it is."""
    if kind is ColumnKind.KEY:
        return None if isinstance(value, str) and value else f"session_id {value!r} is not a non-empty text"
    if value is None:
        return None
    if kind is ColumnKind.TIMESTAMP:
        return None if type(value) is int else f"a {type(value).__name__} {value!r}, not a Unix timestamp"
    if kind in JSON_KINDS:
        # Export's and copy's own words (NaN named as such, with how to repair it); the finding names the column.
        why = json_problem(name, value, JSON_TYPES[kind])
        return None if why is None else why.removeprefix(f"{name} ")
    return None if isinstance(value, str) else f"holds a {type(value).__name__} {value!r:.60}, not text"


__all__ = ["NOTE", "PROBLEM", "DoctorReport", "Finding", "diagnose"]
