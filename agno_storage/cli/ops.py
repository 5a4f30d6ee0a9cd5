"""The commands that operate a whole database: tables, export, import, copy, prune, backup, doctor."""

from __future__ import annotations

import argparse
import errno
import functools
import os
import re
import signal
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import attrs

from agno_storage import times, urls
from agno_storage.backends.sqlite_bulk import fsync_folder
from agno_storage.cli.common import (
    FAILED,
    NOT_FOUND,
    OK,
    PROG,
    Exit,
    cell,
    columns,
    out,
    parse_target,
    printable,
    schema_option,
    shown,
    to_json,
)
from agno_storage.errors import DiskFullError, TableNotFoundError
from agno_storage.models import Mode
from agno_storage.ops import backup as backup_ops
from agno_storage.ops import copy as copy_ops
from agno_storage.ops import doctor as doctor_ops
from agno_storage.ops import export as export_ops
from agno_storage.ops import files
from agno_storage.ops import load as load_ops
from agno_storage.ops import prune as prune_ops
from agno_storage.ops import tables as tables_ops
from agno_storage.ops.db import open_database, refuse_source, roll_back_hot_journal, sqlite_path
from agno_storage.ops.errors import DatabaseMissingError
from agno_storage.ops.select import Filters

#: doctor's exit code when it found a problem.
UNWELL = 3

Run = Callable[[argparse.Namespace], int]


def _not_found_is_1(run: Run) -> Run:
    @functools.wraps(run)
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except (TableNotFoundError, DatabaseMissingError) as exc:
            raise Exit(NOT_FOUND, str(exc)) from None

    return wrapped


def _mode(args: argparse.Namespace) -> Mode | None:
    return Mode(args.mode) if getattr(args, "mode", None) else None


# --- progress -------------------------------------------------------------


class _Bar:
    """A tqdm bar on stderr; only made when stderr is a terminal."""

    def __init__(self, what: str) -> None:
        from tqdm import tqdm  # type: ignore[import-untyped]

        self._bar = tqdm(desc=what, unit=" sessions", file=sys.stderr, leave=False, dynamic_ncols=True)

    def start(self, total: int | None) -> None:
        self._bar.reset(total=total)

    def advance(self, count: int) -> None:
        self._bar.update(count)

    def close(self) -> None:
        self._bar.close()


@contextmanager
def _progress(what: str) -> Iterator[_Bar | None]:
    bar = _Bar(what) if sys.stderr.isatty() else None
    try:
        yield bar
    finally:
        if bar is not None:
            bar.close()


# --- argument types -------------------------------------------------------

_DURATION = re.compile(r"([0-9]+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: The widest span a duration may give: 1,000 years (a cutoff before it is no calendar's date).
_MOST_SECONDS = 1000 * 366 * 86400
#: Unix seconds a time argument may give: those of the years 1 to 9999, which every date function holds.


def duration_arg(text: str) -> int:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s`` as seconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a number and a unit (s, m, h, d, w), e.g. 30d; got {text!r}")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds > _MOST_SECONDS:
        raise argparse.ArgumentTypeError(f"expected at most 1,000 years, got {text!r}")
    return seconds


def time_arg(text: str) -> int:
    """Unix seconds, or an ISO 8601 date or time (UTC unless it says otherwise); see :func:`times.bound`."""
    try:
        return times.bound(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# --- commands -------------------------------------------------------------


def _summary(args: argparse.Namespace, record: Any, text: str) -> None:
    if args.json:
        out(to_json(attrs.asdict(record, value_serializer=_plain)))
    else:
        out(text)


def _plain(_: Any, __: Any, value: Any) -> Any:
    return value.value if isinstance(value, Mode | tables_ops.Layout) else value


@_not_found_is_1
def _tables(args: argparse.Namespace) -> int:
    with open_database(args.url, schema_option(args.url, args.schema)) as db:
        if db.schema and not db.query("SELECT 1 FROM pg_namespace WHERE nspname = %s", (db.schema,)):
            # Listed as "no sessions table", a mistyped --schema would read as an empty database.
            raise Exit(NOT_FOUND, f"no schema {db.schema!r} in {shown(args.url)}")
        report = tables_ops.list_tables(db)
    if args.json:
        out(to_json(attrs.asdict(report, value_serializer=_plain)))
        return OK
    if not report.sessions:
        out(f"no sessions table in {shown(args.url)}")
    else:
        rows = [["table", "mode", "layout", "version", "sessions"]]
        for t in report.sessions:
            version = f"{t.version} (needs upgrade)" if t.missing else str(t.version)
            rows.append([cell(t.name), t.mode.value, t.layout.value, version, str(t.rows)])
        for line in columns(rows):
            out(line)
    if report.runs is not None:
        out(f"agent_runs: {report.runs.rows} runs, {report.runs.orphaned} of them with no session row")
    if report.unfit_runs is not None:
        out(f"{cell(report.unfit_runs.name)}: {printable(report.unfit_runs.reason)}")
    if report.others:
        out(f"other tables: {', '.join(cell(name) for name in report.others)}")
    return OK


def _filters(args: argparse.Namespace) -> Filters:
    if args.since is not None and args.until is not None and args.since >= args.until:
        # --since is "at or after", --until "before": an equal pair is an empty time too.
        raise Exit(FAILED, "--since is not before --until: no session was updated in that time")
    return Filters(user=args.user, since=args.since, until=args.until)


@_not_found_is_1
def _export(args: argparse.Namespace) -> int:
    # A path naming one of this process's descriptors (/dev/stdout, /dev/fd/3) is written through it, as the
    # shell opened it (appending to a file >> opened): moved over, the file would lose what it held.
    if args.output == "":
        raise Exit(FAILED, "-o '' names no file: give a file's name, or '-' for stdout")
    descriptor = None if args.output in (None, "-") else _descriptor(args.output)
    with open_database(args.url, schema_option(args.url, args.schema)) as db, _progress("export") as bar:
        if args.output in (None, "-") or descriptor == 1:  # the lines alone: a summary would be a line too
            export_ops.export_table(db, args.table, _stdout(), mode=_mode(args), filters=_filters(args), progress=bar)
            sys.stdout.flush()
            return OK
        # A file appears only when the export is whole: written beside it, then moved in place (beside the
        # file a link names, so the link stays). A pipe or a device is written as it is.
        stream = _is_stream(args.output)
        output = os.path.realpath(args.output) if os.path.islink(args.output) and not stream else args.output
        if os.path.isdir(output) and descriptor is None:  # found only when the export is moved in place otherwise
            raise Exit(FAILED, f"{args.output!r} is a folder, not a file: give -o a file's name")
        if db.path is not None:  # before anything is written: -o naming the database would replace it
            refuse_source(args.output, db.path, "the output")
            refuse_source(output, db.path, "the output")  # a link to the database's -wal, say
        if descriptor is not None or stream:
            with (
                _writing(args.output),
                os.fdopen(os.dup(descriptor), "wb") if descriptor is not None else open(output, "wb") as sink,
            ):
                summary = export_ops.export_table(
                    db, args.table, sink, mode=_mode(args), filters=_filters(args), progress=bar
                )
        else:
            with _terminate_as_exit(), _writing(args.output):  # from the temporary file made to it moved in place
                temporary, partial = _new_file(Path(output))
                try:
                    with temporary:
                        summary = export_ops.export_table(
                            db, args.table, temporary, mode=_mode(args), filters=_filters(args), progress=bar
                        )
                        files.sync(temporary)
                    partial.replace(output)
                    fsync_folder(partial.parent)  # the new name on disk too
                except BaseException:
                    partial.unlink(missing_ok=True)
                    raise
    _summary(
        args,
        summary,
        f"exported {summary.sessions} sessions{_runs_text(summary.runs)} of table {summary.table!r} to {args.output}",
    )
    return OK


@contextmanager
def _writing(output: str) -> Iterator[None]:
    """An error writing ``output`` names it: a full disk (or the file-size limit) is a DiskFullError, any other
    OS error gets ``output``'s name: a write's own error names no file, and one made or moved beside it names
    the temporary file, which the user never gave (and which is gone by then)."""
    try:
        yield
    except OSError as exc:
        if exc.filename == output or isinstance(exc, BrokenPipeError):
            raise
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(f"writing {output!r}: the disk is full: {exc.strerror}") from exc
        if exc.errno == errno.EFBIG:
            raise DiskFullError(f"writing {output!r}: past this process's file-size limit: {exc.strerror}") from exc
        raise OSError(exc.errno, exc.strerror, output) from exc


def _new_file(output: Path) -> tuple[IO[bytes], Path]:
    """A new temporary file beside ``output`` (``.NAME.XXXXXXXX.partial``, a name of its own: see
    :func:`files.new_file`), open for writing, and its path.

    Two exports to one file never write into or remove each other's; the one
    that ends last leaves its whole file in place. Over a file that is there,
    it has that file's permission bits (and owner and group, as far as this
    process may set them), as writing into the file would have kept them; a
    new file's are 0666 less the umask.
    """
    try:
        replaced: os.stat_result | None = os.stat(output)
    except OSError:
        replaced = None  # not there (yet): a new file
    fd, path = files.new_file(output)
    try:
        if replaced is not None and stat.S_ISREG(replaced.st_mode):
            files.keep_owner_and_mode(fd, replaced)
        return os.fdopen(fd, "wb"), path
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise


@contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """SIGTERM (``kill``, a service manager stopping it) as ``SystemExit(143)`` while the block runs, so that the
    block's ``except``/``finally`` removes what it made. Only where SIGTERM would end the process as it is (its
    default): a program that handles it itself (one calling :func:`agno_storage.cli.main`) keeps its handler,
    and outside the main thread no handler can be set."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


#: A path naming a descriptor of this process, as /dev/stdout's link does.
_DESCRIPTOR_PATH = re.compile(r"/(?:proc/self|dev)/fd/([0-9]+)")


def _descriptor(path: str) -> int | None:
    """The descriptor of this process ``path`` names (``/dev/stdout``, ``/dev/fd/3``, ``/proc/self/fd/1``), or
    None: its links followed one at a time (resolved whole, it would name the file the descriptor is open on)."""
    for _ in range(8):
        match = _DESCRIPTOR_PATH.fullmatch(os.path.normpath(path))
        if match is not None:
            return int(match.group(1))
        if not os.path.islink(path):
            return None
        path = os.path.join(os.path.dirname(path), os.readlink(path))
    return None


def _is_stream(path: str) -> bool:
    """Whether ``path`` names something other than a regular file or a folder: a pipe, a device, a socket."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False  # not there (yet): a new file
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


class _TextSink:
    """Bytes to a text stream that has no binary buffer (a redirected sys.stdout)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, data: bytes) -> int:
        return self._stream.write(data.decode())


def _stdout() -> Any:
    if sys.stdout is None:  # closed by the caller (``>&-``): the lines would go nowhere
        raise Exit(FAILED, "stdout is closed: nothing to write the export to (use -o FILE)")
    buffer = getattr(sys.stdout, "buffer", None)
    return buffer if buffer is not None else _TextSink(sys.stdout)


def _lines(source: IO[bytes]) -> Iterator[bytes]:
    yield from source


@_not_found_is_1
def _import(args: argparse.Namespace) -> int:
    if args.file == "-" and sys.stdin is None:  # closed by the caller (``<&-``)
        raise Exit(FAILED, "stdin is closed: nothing to import from it (give FILE)")
    source = sys.stdin.buffer if args.file == "-" else None
    if source is None:
        try:
            is_folder = stat.S_ISDIR(os.stat(args.file).st_mode)
        except OSError:
            raise Exit(NOT_FOUND, f"no file {args.file!r}") from None
        if is_folder:  # a pipe (<(zcat f.gz), a named pipe) or a device is read as a file is
            raise Exit(NOT_FOUND, f"{args.file!r} is a folder, not a file")
    target = parse_target(args.url)
    if source is None and isinstance(target, urls.SqliteTarget) and target.path is not None:
        refuse_source(args.file, target.path, "the file to import")  # it would be written while it is read
    schema = schema_option(args.url, args.schema)
    with _progress("import") as bar, nullcontext(source) if source is not None else open(args.file, "rb") as lines:
        summary = load_ops.import_lines(
            _lines(lines), args.url, args.table, mode=_mode(args), schema=schema, progress=bar
        )
    repeated = (
        f" ({summary.repeated} lines were later versions of a session written before them, which they replaced)"
        if summary.repeated
        else ""
    )
    text = f"imported {summary.sessions} sessions{_runs_text(summary.runs)} into table {summary.table!r}{repeated}"
    _summary(args, summary, text)
    _warn_runs_left(summary.runs_left, "imported")
    return OK


@_not_found_is_1
def _copy(args: argparse.Namespace) -> int:
    with open_database(args.url, schema_option(args.url, args.schema)) as db, _progress("copy") as bar:
        summary = copy_ops.copy_table(
            db,
            args.table,
            args.destination,
            to_table=args.to_table,
            mode=_mode(args),
            schema=schema_option(args.destination, args.to_schema, "--to-schema")
            if args.to_schema is not None
            else schema_option(args.url, args.schema),
            progress=bar,
        )
    _summary(
        args,
        summary,
        f"copied {summary.sessions} sessions{_runs_text(summary.runs)} of table {summary.table!r} "
        f"to {summary.to_table!r}",
    )
    _warn_runs_left(summary.runs_left, "copied")
    return OK


def _runs_text(runs: int) -> str:
    return f" and {runs} agent_runs rows" if runs else ""


def _warn_runs_left(left: int, done: str) -> None:
    """Say on stderr that Go Agent runs stayed behind (the command still succeeds: the sessions are there)."""
    if left:
        print(
            f"{PROG}: warning: {left} agent_runs rows (Go Agent conversations) were not {done}: only an agent "
            "table in SQLite has agent_runs beside it; history() of those sessions reads them in the source only",
            file=sys.stderr,
        )


@_not_found_is_1
def _prune(args: argparse.Namespace) -> int:
    target = parse_target(args.url)
    if isinstance(target, urls.SqliteTarget) and not args.dry_run:
        # prune writes the file anyway: a read-write open rolls a crashed writer's hot journal back first.
        # A dry run writes nothing: it reports the hot journal instead.
        roll_back_hot_journal(sqlite_path(target), target.timeout)  # the URL's ?timeout=, as the deletes wait
    with open_database(args.url, schema_option(args.url, args.schema)) as db, _progress("prune") as bar:
        summary = prune_ops.prune(
            db,
            args.url,
            args.table,
            args.older_than,
            user=args.user,
            mode=_mode(args),
            dry_run=args.dry_run,
            schema=schema_option(args.url, args.schema),
            progress=bar,
        )
    verb = "would remove" if summary.dry_run else "removed"
    lines = [
        f"{verb} {len(summary.session_ids)} sessions not updated since {_utc(summary.cutoff)} and {summary.runs} agent_runs rows"
    ]
    lines += [f"  {cell(sid)}" for sid in summary.session_ids]
    if summary.run_sessions:
        lines.append(f"and {len(summary.run_sessions)} sessions a Go Agent kept only in agent_runs:")
        lines += [f"  {cell(sid)}" for sid in summary.run_sessions]
    _summary(args, summary, "\n".join(lines))  # what was removed is said before VACUUM can fail
    if args.vacuum and not args.dry_run:
        sys.stdout.flush()
        prune_ops.vacuum(args.url, args.table, schema_option(args.url, args.schema))
    return OK


def _utc(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@_not_found_is_1
def _backup(args: argparse.Namespace) -> int:
    # DEST is read as every location is: a SQLite URL names its file, and a PostgreSQL URL or a libpq
    # key=value string is refused (its password masked), not written as a file of that name.
    destination = parse_target(args.destination)
    if not isinstance(destination, urls.SqliteTarget):
        raise Exit(FAILED, f"DEST {shown(args.destination)!r} is a PostgreSQL URL: backup writes a SQLite file")
    with _terminate_as_exit():  # stopped by SIGTERM, the copy's temporary file is removed
        summary = backup_ops.backup(args.url, destination.path or args.destination)
    _summary(args, summary, f"backed up {args.url} to {args.destination}: {summary.pages} pages, integrity_check ok")
    return OK


@_not_found_is_1
def _doctor(args: argparse.Namespace) -> int:
    path: str | None = None
    target = urls.parse_location(args.url)
    if isinstance(target, urls.SqliteTarget):
        path = sqlite_path(target)
    with open_database(args.url, schema_option(args.url, args.schema), lenient_text=True) as db:
        report = doctor_ops.diagnose(db, path)
    if args.json:
        data = attrs.asdict(report, value_serializer=_plain)
        data["ok"] = report.ok
        out(to_json(data))
    else:
        if report.integrity is not None:
            out(printable(f"integrity_check: {report.integrity}"))
            out(f"journal mode:    {report.journal_mode} (-wal file: {report.wal_bytes} bytes)")
        for t in report.tables:
            out(
                f"table {cell(t.name)}: {t.mode.value}, {t.layout.value}, schema version {t.version}, {t.rows} sessions"
            )
        for f in report.findings:
            where = ".".join(p for p in (f.table, f.column) if p)
            session = f" session {f.session_id!r}" if f.session_id is not None else ""
            subject = f"{where}{session}: " if where or session else ""
            out(printable(f"{f.severity}: {subject}{f.message}"))
        out("problems found" if not report.ok else "nothing to check: no tables" if report.empty else "all is well")
    return OK if report.ok else UNWELL


# --- registration ---------------------------------------------------------


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: dict[str, argparse.ArgumentParser]
) -> None:
    """Add this module's subcommands to ``sub``."""
    url = argparse.ArgumentParser(add_help=False)
    url.add_argument("url", metavar="URL", help="a SQLite file path, sqlite:///relative.db or postgresql://...")
    url.add_argument("--schema", help="PostgreSQL only: the schema (default ai; '' for the search path)")
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="JSON for scripts instead of text")
    table = [parents["table"], as_json]

    def add(
        name: str, summary: str, command_parents: list[argparse.ArgumentParser], run: Run
    ) -> argparse.ArgumentParser:
        command = sub.add_parser(name, parents=command_parents, help=summary, description=summary)
        command.set_defaults(run=run)
        return command

    add("tables", "every sessions table: mode, layout, schema version, sessions; agent_runs", [url, as_json], _tables)

    export = add("export", "a table's sessions as JSON Lines, losslessly", table, _export)
    export.add_argument("-o", "--output", help="the file to write (default: stdout)")
    for command in (export,):
        command.add_argument("--user", help="only sessions of this user_id ('' for sessions with no owner)")
        command.add_argument(
            "--since",
            type=time_arg,
            help="only sessions updated at or after (Unix seconds or ISO 8601; an agent table's Go runs count)",
        )
        command.add_argument(
            "--until",
            type=time_arg,
            help="only sessions updated before (Unix seconds or ISO 8601; an agent table's Go runs count)",
        )

    imp = add("import", "upsert the sessions of an export file into a table (made if needed)", table, _import)
    imp.add_argument("file", metavar="FILE", help="an export file ('-' for stdin)")

    copy = add("copy", "copy a table to another database or table, any engine to any engine", table, _copy)
    copy.add_argument("destination", metavar="DST", help="the database to copy to (SQLite path or PostgreSQL URL)")
    copy.add_argument("--to-table", help="the table to copy to (default: the same name)")
    copy.add_argument("--to-schema", help="PostgreSQL destination's schema (default: --schema's)")

    prune = add("prune", "delete sessions not updated for a while, with their agent_runs", table, _prune)
    prune.add_argument("--older-than", type=duration_arg, required=True, help="e.g. 30d, 12h, 2w")
    prune.add_argument("--user", help="only sessions of this user_id ('' for sessions with no owner)")
    prune.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")
    prune.add_argument("--vacuum", action="store_true", help="give the freed space back afterwards (VACUUM)")

    backup = add("backup", "an online, checked snapshot of a SQLite file", [as_json], _backup)
    backup.add_argument("url", metavar="DB", help="the SQLite file")
    backup.add_argument("destination", metavar="DEST", help="the new file to write")

    add("doctor", "integrity, table shapes, undecodable rows, orphaned runs; exit 3 if unwell", [url, as_json], _doctor)


__all__ = ["UNWELL", "duration_arg", "register", "time_arg"]
