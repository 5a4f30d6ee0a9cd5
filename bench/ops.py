"""Benchmark of ``agno_storage.ops``: export, import, copy to PostgreSQL, and their peak memory.

    python -m bench.ops --quick                 # about three minutes, printed
    python -m bench.ops --full --out docs/      # about 12 minutes on 2 cores; writes docs/benchmarks-ops.md
    python -m bench.ops --smoke                 # seconds; what the tests run

Sessions are bench/sessions.py's small ones (3 runs, about 8 KiB a line),
in a SQLite file built for each size (bench/ops_work.py). Each operation is
timed against a plain loop doing the same work with the same drivers and
statements and no checks (its floor), interleaved round by round as
bench/harness.py does, so each ratio comes from one run:

  export  export_table to a file         vs sqlite3 + orjson.dumps of each row as a dict
  import  import_lines into a new file   vs orjson.loads of each line + executemany of the store's upsert
  copy    copy_table to a new PG table   vs sqlite3 rows + psycopg executemany of the store's upsert

Import and copy also time a third contender, the raw SQL floor: the plain
loop's statements over rows read and decoded before its clock starts, what
the database alone takes on this machine.

Peak RSS is measured for each operation in a process of its own
(``python -m bench.ops_work rss``) at two sizes. PostgreSQL is a throwaway
server (devkit/pgserver.py) with durability on, as in bench/pg.py; without
one the copy rows say why, and --full exits with status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import platform
import shlex
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs

from bench import harness, ops_work
from bench.config import add_mode_options
from bench.harness import Entry
from bench.provenance import ROOT, package_version, revision
from bench.targets import Target, markdown, terminal

#: The targets: export at least this fraction of its floor's speed; import and copy at least these sessions/s.
EXPORT_VS_FLOOR = 0.8
IMPORT_PER_S = 20_000
COPY_PER_S = 10_000


@attrs.frozen
class OpsConfig:
    """Sizes of one mode: sessions per timed operation, rounds, and the two sizes of each memory figure."""

    mode: str
    rounds: int
    export_n: int
    import_n: int
    copy_n: int
    rss_export: tuple[int, ...]
    rss_import: tuple[int, ...]
    rss_copy: tuple[int, ...]


def make_config(mode: str) -> OpsConfig:
    if mode == "smoke":
        return OpsConfig(mode, 1, 300, 300, 300, (100, 300), (100, 300), (100, 300))
    if mode == "quick":
        return OpsConfig(mode, 3, 20_000, 5_000, 5_000, (5_000, 20_000), (5_000, 20_000), (5_000, 20_000))
    if mode == "full":
        # Timed sizes keep the rounds short (import and copy run at 3,000-8,000
        # sessions/s on the 2-core machine the documented run used); memory is
        # measured at 100,000 and 1,000,000 sessions for every operation, which
        # takes most of the run's ten-odd minutes and about 8 GB of disk.
        return OpsConfig(
            mode, 3, 100_000, 20_000, 10_000, (100_000, 1_000_000), (100_000, 1_000_000), (100_000, 1_000_000)
        )
    raise ValueError(f"unknown mode {mode!r}")


def machine() -> dict[str, Any]:
    """The machine and versions, with its load (1, 5, 15 minutes) as the run starts."""
    return {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "orjson": package_version("orjson"),
        "psycopg": package_version("psycopg"),
        "cattrs": package_version("cattrs"),
        "agno_storage": package_version("agno-session-storage"),
        "revision": revision(),
        "load_before": list(os.getloadavg()),
    }


# --- PostgreSQL ---------------------------------------------------------------------


@contextlib.contextmanager
def postgres(url: str | None) -> Iterator[tuple[str | None, str]]:
    """(URL, "") of the server to copy to, or (None, why not): ``url`` if given, else a throwaway durable server."""
    if url is not None:
        yield url, ""
        return
    from bench import pg

    why = pg.missing()
    if why is not None:
        yield None, why
        return
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(pg.durable_server())
        except Exception as exc:  # initdb, pg_ctl or the restart with durability on failed
            yield None, f"could not start a PostgreSQL server: {str(exc).strip().splitlines()[0]}"
            return
        yield server.dsn, ""


# --- timing ---------------------------------------------------------------------------


def timed_pair(
    name: str,
    n: int,
    rounds: int,
    ours: Callable[[int], tuple[float, int]],
    floor: Callable[[int], tuple[float, int]],
    after: Callable[[str, int], None],
    sql: Callable[[int], tuple[float, int]] | None = None,
    checked: Callable[[int], tuple[float, int]] | None = None,
) -> dict[str, Any]:
    """Time ``ours(round)``, ``floor(round)`` (and ``sql(round)``, ``checked(round)``) interleaved; sessions/s of
    each, the ratios, the misses.

    ``after(kind, round)`` runs outside the clock after each (removes what it wrote).
    """
    entries = [Entry("ours", "agno_storage.ops", "ours", n), Entry("floor", "plain loop", "floor", n)]
    fns = {"ours": ours, "floor": floor}
    if sql is not None:
        entries.append(Entry("sql", "raw SQL", "sql", n))
        fns["sql"] = sql
    if checked is not None:
        entries.append(Entry("checked", "checking loop", "checked", n))
        fns["checked"] = checked
    counts: dict[str, list[int]] = {e.key: [] for e in entries}

    def run(e: Entry, r: int) -> harness.Batch:
        seconds, count = fns[e.key](r)
        counts[e.key].append(count)
        after(e.key, r)
        return seconds, count, abs(e.count - count)

    results = harness.interleave(entries, rounds, run)
    per_s = {e.key: 1.0 / results[e.label]["median_s"] for e in entries}
    ours_samples, floor_samples = results["agno_storage.ops"]["samples"], results["plain loop"]["samples"]
    extra = {} if sql is None else {"sql_per_s": per_s["sql"], "sql_errors": results["raw SQL"]["errors"]}
    if checked is not None:
        checked_samples = results["checking loop"]["samples"]
        extra |= {
            "checked_per_s": per_s["checked"],
            "checked_ratio": per_s["ours"] / per_s["checked"],
            "checked_round_ratios": [c / o for c, o in zip(checked_samples, ours_samples, strict=True)],
            "checked_errors": results["checking loop"]["errors"],
        }
    return {
        **extra,
        "op": name,
        "sessions": n,
        "rounds": rounds,
        "ours_per_s": per_s["ours"],
        "floor_per_s": per_s["floor"],
        "ratio": per_s["ours"] / per_s["floor"],
        # Round i of each ran side by side: the ratio of each round, to show the spread.
        "round_ratios": [f / o for f, o in zip(floor_samples, ours_samples, strict=True)],
        "ours_s": results["agno_storage.ops"]["median_s"] * n,
        "floor_s": results["plain loop"]["median_s"] * n,
        "ours_errors": results["agno_storage.ops"]["errors"],
        "floor_errors": results["plain loop"]["errors"],
        # Sessions each one said it wrote, per round.
        "counts": counts,
    }


def lines_digest(path: Path) -> str:
    """sha256 of a file's lines after the first (the session lines of an export)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        next(f, None)
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def rss(op: str, *args: str) -> dict[str, Any]:
    """Peak RSS of one operation in a fresh process (bench/ops_work.py); RuntimeError if it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.ops_work", "rss", op, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.ops_work rss {op} failed: {done.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


# --- the run ------------------------------------------------------------------------------


def run(mode: str, workdir: Path, command: str, pg_url: str | None = None) -> dict[str, Any]:
    """Build the sources in ``workdir``, time the three operations, measure their memory; the results."""
    cfg = make_config(mode)
    started = time.time()
    env = machine()
    sizes = sorted({cfg.export_n, cfg.import_n, cfg.copy_n, *cfg.rss_export, *cfg.rss_import, *cfg.rss_copy})
    src: dict[int, Path] = {}
    build_s: dict[int, float] = {}
    for n in sizes:
        src[n] = workdir / f"src-{n}.db"
        t = time.perf_counter()
        ops_work.build_source(src[n], n)
        build_s[n] = time.perf_counter() - t
        if ops_work.count_rows(src[n]) != n:
            raise RuntimeError(f"the source of {n} sessions holds {ops_work.count_rows(src[n])}")
    out = workdir / "out.jsonl"
    timed: list[dict[str, Any]] = []

    # Export: both write the whole table to a file of their own, overwritten each round.
    ours_file, floor_file = workdir / "export-ours.jsonl", workdir / "export-floor.jsonl"
    checked_file = workdir / "export-checked.jsonl"
    export = timed_pair(
        "export",
        cfg.export_n,
        cfg.rounds,
        lambda r: ops_work.ours_export(src[cfg.export_n], ours_file),
        lambda r: ops_work.floor_export(src[cfg.export_n], floor_file),
        lambda kind, r: None,
        checked=lambda r: ops_work.checked_export(src[cfg.export_n], checked_file),
    )
    export["same_lines_as_floor"] = lines_digest(ours_file) == lines_digest(floor_file) == lines_digest(checked_file)
    timed.append(export)
    floor_file.unlink()
    checked_file.unlink()
    ours_file.unlink()

    # Import: both read the same export file into a new SQLite file each round.
    ops_work.ours_export(src[cfg.import_n], out)
    imported: dict[str, list[int]] = {"ours": [], "floor": [], "sql": []}

    def dest(kind: str, r: int) -> Path:
        return workdir / f"import-{kind}-{r}.db"

    def drop_file(kind: str, r: int) -> None:
        imported[kind].append(ops_work.count_rows(dest(kind, r)))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{dest(kind, r)}{suffix}").unlink(missing_ok=True)

    imp = timed_pair(
        "import",
        cfg.import_n,
        cfg.rounds,
        lambda r: ops_work.ours_import(out, dest("ours", r)),
        lambda r: ops_work.floor_import(out, dest("floor", r)),
        drop_file,
        lambda r: ops_work.sql_import(out, dest("sql", r)),
    )
    imp["rows_in_table"] = imported
    timed.append(imp)

    notes: list[str] = []
    memory: list[dict[str, Any]] = []
    with postgres(pg_url) as (url, why):
        if url is None:
            timed.append({"op": "copy", "sessions": cfg.copy_n, "skipped": why})
            notes.append(f"copy to PostgreSQL not measured: {why}")
        else:
            copied: dict[str, list[int]] = {"ours": [], "floor": [], "sql": []}

            def drop_table(kind: str, r: int) -> None:
                copied[kind].append(ops_work.count_pg_rows(url, f"bench_copy_{kind}_{r}"))
                ops_work.drop_pg_table(url, f"bench_copy_{kind}_{r}")

            cp = timed_pair(
                "copy",
                cfg.copy_n,
                cfg.rounds,
                lambda r: ops_work.ours_copy(src[cfg.copy_n], url, f"bench_copy_ours_{r}"),
                lambda r: ops_work.floor_copy(src[cfg.copy_n], url, f"bench_copy_floor_{r}"),
                drop_table,
                lambda r: ops_work.sql_copy(src[cfg.copy_n], url, f"bench_copy_sql_{r}"),
            )
            cp["rows_in_table"] = copied
            timed.append(cp)

        # Peak memory, one fresh process each.
        for n in cfg.rss_export:
            # The file is kept for the import of the same size; at sizes no import reads, it goes to /dev/null.
            target = workdir / f"rss-{n}.jsonl" if n in cfg.rss_import else Path(os.devnull)
            memory.append({"sessions": n, **rss("export", "--src", str(src[n]), "--out", str(target))})
        for n in cfg.rss_import:
            lines = workdir / f"rss-{n}.jsonl"
            if not lines.exists():
                ops_work.ours_export(src[n], lines)
            db = workdir / f"rss-import-{n}.db"
            memory.append({"sessions": n, **rss("import", "--src", str(lines), "--out", str(db))})
            memory[-1]["rows_in_table"] = ops_work.count_rows(db)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            lines.unlink()
        for n in cfg.rss_copy:
            if url is None:
                continue
            table = f"bench_rss_{n}"
            memory.append({"sessions": n, **rss("copy", "--src", str(src[n]), "--url", url, "--table", table)})
            memory[-1]["rows_in_table"] = ops_work.count_pg_rows(url, table)
            ops_work.drop_pg_table(url, table)
    env["load_after"] = list(os.getloadavg())
    return {
        "mode": mode,
        "command": command,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": time.time() - started,
        "env": env,
        "config": attrs.asdict(cfg),
        "line_bytes": out.stat().st_size // (cfg.import_n + 1),
        "build_s": {str(k): v for k, v in build_s.items()},
        "timed": timed,
        "memory": memory,
        "notes": notes,
    }


# --- the report -------------------------------------------------------------------------


def _timed(results: dict[str, Any], op: str) -> dict[str, Any] | None:
    return next((t for t in results["timed"] if t["op"] == op and "skipped" not in t), None)


def _growth(results: dict[str, Any], op: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    got = sorted((m for m in results["memory"] if m["op"] == op), key=lambda m: m["sessions"])
    return (got[0], got[-1]) if len(got) >= 2 else None


def targets(results: dict[str, Any]) -> list[Target]:
    """(target, requirement, measured, met) for each target; met is None when not measured."""
    out: list[Target] = []
    e = _timed(results, "export")
    name = "export: sessions/s vs the sqlite3 + orjson loop that checks what import refuses"
    if e is None or "checked_ratio" not in e:
        out.append((name, f">= {EXPORT_VS_FLOOR:g}x", "not measured", None))
    else:
        spread = _spread(e["checked_round_ratios"])
        out.append(
            (
                name,
                f">= {EXPORT_VS_FLOOR:g}x",
                f"{e['checked_ratio']:.2f}x{spread}",
                e["checked_ratio"] >= EXPORT_VS_FLOOR,
            )
        )
    for op, need, what in (
        ("import", IMPORT_PER_S, "import into SQLite"),
        ("copy", COPY_PER_S, "copy SQLite to PostgreSQL"),
    ):
        t = _timed(results, op)
        name = f"{what}: sessions/s"
        if t is None:
            out.append((name, f">= {need:,}/s", "not measured", None))
        else:
            out.append((name, f">= {need:,}/s", f"{t['ours_per_s']:,.0f}/s", t["ours_per_s"] >= need))
    for op in ("export", "import", "copy"):
        g = _growth(results, op)
        name = f"{op}: flat memory (peak RSS growth over the process's start)"
        if g is None:
            out.append((name, "< 2x", "not measured", None))
            continue
        small, big = g
        grow_small = max(small["peak_kib"] - small["start_kib"], 1)
        grow_big = max(big["peak_kib"] - big["start_kib"], 1)
        ratio = grow_big / grow_small
        out.append(
            (
                f"{name}, {small['sessions']:,} -> {big['sessions']:,} sessions",
                "< 2x",
                f"{ratio:.2f}x ({grow_small / 1024:.1f} -> {grow_big / 1024:.1f} MiB)",
                ratio < 2,
            )
        )
    return out


def _spread(ratios: list[float]) -> str:
    return f" ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""


def _sql(t: dict[str, Any]) -> str:
    return f"{t['sql_per_s']:,.0f}/s" if "sql_per_s" in t else ""


def _checked(t: dict[str, Any]) -> str:
    if "checked_per_s" not in t:
        return ""
    return f"{t['checked_per_s']:,.0f}/s ({t['checked_ratio']:.2f}x{_spread(t['checked_round_ratios'])})"


def _mib(kib: int) -> str:
    return f"{kib / 1024:,.1f} MiB"


def render(results: dict[str, Any]) -> str:
    """The markdown section of docs/benchmarks-ops.md."""
    env, cfg = results["env"], results["config"]
    lines = [
        "## agno_storage.ops: export, import, copy",
        "",
        f"`{results['command']}`, {results['date']}, {results['seconds'] / 60:.1f} minutes; "
        f"{env['cores']} cores, {env['platform']}, Python {env['python']}, SQLite {env['sqlite']}, "
        f"orjson {env['orjson']}, psycopg {env['psycopg']}, cattrs {env['cattrs']}; agno_storage {env['revision']}.",
        f"Load average (1, 5, 15 min) before: {', '.join(f'{x:.2f}' for x in env['load_before'])}; "
        f"after: {', '.join(f'{x:.2f}' for x in env['load_after'])}.",
        "",
        f"Small sessions of bench/sessions.py (3 runs, about {results['line_bytes']:,} bytes an export line). "
        f"Medians of {cfg['rounds']} interleaved rounds; each ratio is agno_storage.ops' sessions/s over its "
        "plain loop's in the same run (in brackets: the lowest and highest ratio of a single round).",
        "",
        "Sizes of this run: "
        + "; ".join(
            f"{op} {cfg[f'{op}_n']:,} sessions timed, peak RSS at " + " and ".join(f"{n:,}" for n in cfg[f"rss_{op}"])
            for op in ("export", "import", "copy")
        )
        + f"; building the sources took {sum(results['build_s'].values()):.0f} s of the run.",
        "",
        "| operation | sessions | agno_storage.ops | plain loop | ratio | errors (ours / loop) | raw SQL floor |"
        " checking loop (ratio) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in results["timed"]:
        if "skipped" in t:
            lines.append(f"| {t['op']} | {t['sessions']:,} | not measured: {t['skipped']} | | | | | |")
            continue
        lines.append(
            f"| {t['op']} | {t['sessions']:,} | {t['ours_per_s']:,.0f}/s ({t['ours_s']:.2f} s) | "
            f"{t['floor_per_s']:,.0f}/s ({t['floor_s']:.2f} s) | {t['ratio']:.2f}x{_spread(t['round_ratios'])} | "
            f"{t['ours_errors']} / {t['floor_errors']} | {_sql(t)} | {_checked(t)} |"
        )
    lines += [
        "",
        "The raw SQL floor runs the plain loop's statements over rows read and decoded before its clock "
        "starts (import: with the same durability as import; copy: into a new table of the same layout): "
        "what the database alone takes here. The checking loop is export's plain loop plus the least that "
        "keeps a line import refuses out of the file (each JSON text decoded by orjson and its type checked, "
        "each time and id checked); in brackets agno_storage.ops' ratio to it, which the export target uses.",
        "",
        "Peak RSS of each operation in a process of its own (`python -m bench.ops_work rss`: the kernel's "
        "high-water mark VmHWM, reset as the operation starts; `resource.getrusage` where there is no /proc), "
        "and its RSS at that start (interpreter and imports):",
        "",
        "| operation | sessions | peak RSS | at start | growth | seconds | sessions written |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m in results["memory"]:
        lines.append(
            f"| {m['op']} | {m['sessions']:,} | {_mib(m['peak_kib'])} | {_mib(m['start_kib'])} | "
            f"{_mib(m['peak_kib'] - m['start_kib'])} | {m['seconds']:.1f} | {m['count']:,} |"
        )
    lines += ["", "### Targets", "", markdown(targets(results))]
    for note in results["notes"]:
        lines += ["", f"> {note}"]
    return "\n".join(lines) + "\n"


HERE = Path(__file__).resolve().parent
#: Hand-written: what each figure means and the causes of the misses, after the generated tables.
ANALYSIS = HERE / "doc_ops_analysis.md"
TITLE = """# Benchmarks: database operations

Generated by `python -m bench.ops --full --out docs/` (`make bench-ops`);
bench/ops.py says what is measured and how. The analysis after the tables
is bench/doc_ops_analysis.md.

"""


def page(results: dict[str, Any]) -> str:
    """docs/benchmarks-ops.md: the title, the generated section, the analysis."""
    analysis = ANALYSIS.read_text() if ANALYSIS.exists() else ""
    return TITLE + render(results) + ("\n" + analysis if analysis else "")


def summary(results: dict[str, Any]) -> str:
    """What the terminal shows: the figures, then every target with ok / MISS."""
    out = [f"{results['command']}  ({results['seconds']:.0f} s, load {results['env']['load_before'][0]:.2f})"]
    for t in results["timed"]:
        if "skipped" in t:
            out.append(f"{t['op']:<7} not measured: {t['skipped']}")
            continue
        out.append(
            f"{t['op']:<7} {t['sessions']:>9,}  ours {t['ours_per_s']:>9,.0f}/s  loop {t['floor_per_s']:>9,.0f}/s  "
            f"ratio {t['ratio']:.2f}x  errors {t['ours_errors']}/{t['floor_errors']}"
            + (f"  raw SQL {t['sql_per_s']:,.0f}/s" if "sql_per_s" in t else "")
        )
    for m in results["memory"]:
        out.append(
            f"rss {m['op']:<7} {m['sessions']:>9,}  peak {_mib(m['peak_kib']):>10}  start {_mib(m['start_kib']):>10}  "
            f"{m['count']:,} sessions"
        )
    out += terminal(targets(results))
    out += [f"NOTE {n}" for n in results["notes"]]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.ops", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    add_mode_options(p, "smaller sizes, about three minutes (default)")
    p.add_argument("--out", type=Path, default=None, help="write benchmarks-ops.md into this folder")
    p.add_argument("--json", type=Path, default=None, help="also save the raw results here")
    p.add_argument("--workdir", type=Path, default=None, help="folder for the database files (default: a temp dir)")
    p.add_argument("--pg-url", default=None, help="copy to this PostgreSQL database instead of a throwaway server")
    p.add_argument(
        "--render", type=Path, default=None, help="saved results (--json) to write the page from, without measuring"
    )
    args = p.parse_args(argv)
    if args.render is not None:
        saved = json.loads(args.render.read_text())
        out = args.out or Path("docs")
        out.mkdir(parents=True, exist_ok=True)
        (out / "benchmarks-ops.md").write_text(page(saved))
        print(summary(saved))
        return 0
    mode = args.mode or "quick"
    command = "python -m bench.ops " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    with contextlib.ExitStack() as stack:
        if args.workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="agno-storage-bench-ops-")))
        else:
            workdir = args.workdir.resolve()
            workdir.mkdir(parents=True, exist_ok=True)
        results = run(mode, workdir, command, args.pg_url)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "benchmarks-ops.md").write_text(page(results))
    print(summary(results))
    return 1 if mode == "full" and results["notes"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
