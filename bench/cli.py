"""Run the benchmark suite and write docs/benchmarks.md and docs/benchmarks.png.

python -m bench --quick --out docs/      # a minute or two
python -m bench --full --out docs/       # the numbers in docs/benchmarks.md
python -m bench --smoke --out /tmp/x     # seconds; what the test suite runs

The PostgreSQL part (bench/pg.py) runs last; --no-postgres leaves it out.
When it cannot run (no server binaries, no psycopg, a server that does not
start) the page and the printed summary end with a warning that names the
cause, and --full (the run that rewrites docs/) exits with status 1 after
writing them. So does --full when the Go contender was not left out with
--no-go but could not run (no ``go`` on PATH, a build that fails: on a fresh
clone, ``make go-work`` first, which ``make bench`` runs); the page names
the cause.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import pg, report, sqlite
from bench.config import add_mode_options


def run(
    mode: str,
    out: Path,
    workdir: Path,
    use_go: bool,
    command: str,
    json_path: Path | None = None,
    postgres: bool = False,
) -> dict[str, Any]:
    """Run the SQLite part in ``workdir``, then the PostgreSQL part if ``postgres``; write the report into ``out``."""
    results = sqlite.run(mode, workdir, use_go, command)
    if postgres:
        results["postgres"] = pg.run(mode, command)
    report.write(results, out, json_path)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    add_mode_options(p, "a minute or two (default)")
    p.add_argument("--out", type=Path, default=Path("docs"), help="folder for benchmarks.md/.png/.json (default docs/)")
    p.add_argument("--workdir", type=Path, default=None, help="folder for the database files (default: a temp dir)")
    p.add_argument(
        "--json", type=Path, default=None, help="also save the raw results here (re-render: python -m bench.report)"
    )
    p.add_argument("--no-go", dest="go", action="store_false", help="leave out the Go contender")
    p.add_argument(
        "--no-postgres",
        dest="postgres",
        action="store_false",
        help="leave out the PostgreSQL part",
    )
    p.add_argument(
        "--require-postgres",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="exit with status 1 when the PostgreSQL part cannot run (default: with --full only)",
    )
    args = p.parse_args(argv)
    mode = args.mode or "quick"
    require_pg = args.require_postgres if args.require_postgres is not None else mode == "full"
    command = "python -m bench " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    args.out.mkdir(parents=True, exist_ok=True)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        results = run(mode, args.out, args.workdir.resolve(), args.go, command, args.json, args.postgres)
    else:
        with tempfile.TemporaryDirectory(prefix="agno-storage-bench-") as tmp:
            results = run(mode, args.out, Path(tmp), args.go, command, args.json, args.postgres)
    print(report.summary(results))  # ends with the PostgreSQL part's warning when it did not run
    if require_pg and "skipped" in results.get("postgres", {}):
        print(
            "python -m bench: the PostgreSQL part did not run (see the warning above): exit status 1", file=sys.stderr
        )
        return 1
    if mode == "full" and args.go and results.get("go_skipped"):
        print(
            f"python -m bench: the Go contender did not run ({results['go_skipped'][:300]}): exit status 1",
            file=sys.stderr,
        )
        return 1
    return 0
