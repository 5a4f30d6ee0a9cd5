"""``agno-storage to-agno3``: copy agno 1.x and agno-golang sessions into agno 3.1.10's tables."""

from __future__ import annotations

import argparse
import sys

from agno_storage import InvalidInputError, Mode, SchemaVersionError
from agno_storage.agno3 import DEFAULT_TABLES, WORKERS_LIMIT, Agno3Report, to_agno3
from agno_storage.agno3.memory_table import DEFAULT_MEMORY_TABLE
from agno_storage.agno3.migrate import BATCH
from agno_storage.cli.common import FAILED, OK, Exit, columns, count_arg, out, shown, to_json, upgrade_line

_FLAGS = {
    Mode.AGENT: "--agent-table",
    Mode.TEAM: "--team-table",
    Mode.WORKFLOW: "--workflow-table",
    Mode.WORKFLOW_V2: "--workflow-v2-table",
}


def _progress(done: int, total: int) -> None:
    width = 30
    filled = width * done // total if total else width
    print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} sessions", end="", file=sys.stderr, flush=True)
    if done >= total:
        print(file=sys.stderr)


def _workers(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"not a number of processes: {text!r}")
    if n > WORKERS_LIMIT:
        raise argparse.ArgumentTypeError(f"at most {WORKERS_LIMIT} processes, got {n}")
    return n


def _batch_size(text: str) -> int:
    value = count_arg(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _summary(report: Agno3Report, src: str, dst: str) -> list[str]:
    verb = "would write" if report.dry_run else "wrote"
    names = ["sessions", "runs", "memories", "summaries", "unchanged"]
    skipped = report.total("skipped")
    if skipped:  # a column only when a session was left out, each named below
        names.append("skipped")
    rows = [["from", *names]]
    for label, count in report.modes.items():
        table = report.tables.get(label, label)
        rows.append([f"{label} ({table})", *(str(getattr(count, n)) for n in names)])
    totals = [report.total(n) for n in names]
    rows.append(["total", *map(str, totals)])
    lines = columns(rows)
    if report.missing:
        lines.append(f"not in {shown(src)} (skipped): {', '.join(report.missing)}")
    lines += [f"problem: {p}" for p in report.problems]
    removed = report.total("runs_removed")
    if removed:
        lines.append(
            f"{'would delete' if report.dry_run else 'deleted'} {removed} runs an earlier run wrote"
            " that their session no longer holds in SRC, or that are another user's"
        )
    lines.append(
        f"{verb} {totals[0]} sessions, {totals[1]} runs, {totals[2]} memories to {shown(dst)}"
        f" in {report.seconds:.2f}s; {totals[4]} already there and unchanged"
    )
    if skipped:
        lines.append(f"{skipped} sessions not migrated (each named above)")
    earlier = report.total("earlier_mapping")
    if earlier:
        lines.append(
            f"{earlier} of the unchanged sessions were written by an earlier build, with its mapping: run it again"
            " with --rewrite to give them this one's (agno 3 loads every run of them then)"
        )
    left_out = report.total("users_left_out")
    if left_out:  # runs, not sessions: the sessions they were left out of were migrated, counted in the table
        lines.append(f"Go runs of another user left out: {left_out} (one per session and user, each named above)")
    return lines


def _run(args: argparse.Namespace) -> int:
    tables = {mode: getattr(args, flag[2:].replace("-", "_")) for mode, flag in _FLAGS.items()}
    progress = _progress if sys.stderr.isatty() and not args.json else None
    try:
        report = to_agno3(
            args.src,
            args.dst,
            tables=tables,
            schema=args.schema or None,
            dst_schema=args.dst_schema or None,
            dry_run=args.dry_run,
            progress=progress,
            memory_table=args.memory_table or None,
            workers=args.workers,
            batch_size=args.batch_size,
            rewrite=args.rewrite,
        )
    except InvalidInputError as exc:
        raise Exit(FAILED, str(exc)) from None
    except SchemaVersionError as exc:
        # Always SRC's (agno 3's tables in DST are not read through this package's stores): named here, where
        # SRC is known; the hint of other commands names their URL argument, which to-agno3 has not.
        message = " ".join(str(exc).split())
        raise Exit(FAILED, f"{message} (from a shell: {upgrade_line(args.src, exc.table, args.schema)})") from None
    if args.json:
        out(to_json(report.to_dict()))
    else:
        for line in _summary(report, args.src, args.dst):
            out(line)
    return OK


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: dict[str, argparse.ArgumentParser]
) -> None:
    """Add ``to-agno3``."""
    cmd = sub.add_parser(
        "to-agno3",
        help="copy agno 1.x / agno-golang sessions into agno 3's agno_sessions, agno_runs and agno_memories",
        description="Copy every session of SRC's agno 1.x / agno-golang tables into agno 3.1.10's tables in DST "
        "(the same database is fine). SRC is only read; running it again skips sessions already copied.",
    )
    cmd.add_argument("src", metavar="SRC", help="the agno 1.x database: a SQLite file path or a URL")
    cmd.add_argument("dst", metavar="DST", help="agno 3's database: a SQLite file path or a URL (made if missing)")
    for mode, flag in _FLAGS.items():
        cmd.add_argument(
            flag, default=DEFAULT_TABLES[mode], help=f"the {mode.value} table (default {DEFAULT_TABLES[mode]})"
        )
    cmd.add_argument(
        "--memory-table",
        default=DEFAULT_MEMORY_TABLE,
        help=f"agno 1.x's separate user-memory table, read when there (default {DEFAULT_MEMORY_TABLE}; '' to skip)",
    )
    cmd.add_argument("--schema", default="ai", help="PostgreSQL: the schema of SRC's tables (default ai)")
    cmd.add_argument("--dst-schema", default="ai", help="PostgreSQL: the schema of agno 3's tables in DST (default ai)")
    cmd.add_argument("--dry-run", action="store_true", help="write nothing; report what would be written")
    cmd.add_argument(
        "--workers",
        type=_workers,
        default=None,
        metavar="N",
        help="processes mapping sessions while this one writes (default: one per core up to 4;"
        f" none on one core or under 2,000 sessions; 0: none; at most {WORKERS_LIMIT})",
    )
    cmd.add_argument(
        "--rewrite",
        action="store_true",
        help="write every session a migration wrote again, its source changed or not (to give a target an earlier"
        " build migrated this one's mapping; agno 3's changes since to such a session's row are replaced)",
    )
    cmd.add_argument(
        "--batch-size",
        type=_batch_size,
        default=BATCH,
        metavar="N",
        help=f"sessions to a transaction (default {BATCH}); fewer keeps less in memory where sessions are large",
    )
    cmd.add_argument("--json", action="store_true", help="print the report as JSON")
    cmd.set_defaults(run=_run)
