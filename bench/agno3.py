"""Benchmark of ``agno_storage.agno3.to_agno3()`` against agno 3.1.10's own ``migrate()``.

    python -m bench.agno3                      # 1,000 and 10,000 sessions, printed with a markdown table
    python -m bench.agno3 --smoke              # seconds; what the tests run

The source is one SQLite file per size with ``agent_sessions`` holding
sessions shaped as agno 1.8.4 writes them (bench/sessions.py: ``memory.runs``
with 10 runs each, their messages and metrics, each run stamped with the
second before its messages, as 1.8.4 stamps a run with the time its
process imported agno: to_agno3 gives each the time of its messages and
keeps the stamp in its metadata), written through this
project's SqliteStorage. Each round copies the source to a fresh file
(outside the clock) and migrates it in place, in a process of its own:

  to_agno3   this project's interpreter: ``to_agno3(db, db)``
  migrate    the agno 3.1.10 venv (.venv-agno3, made by devkit/agno3_env.py):
             ``migrate(SqliteDb(db_file=db), "", agent_sessions_table_name="agent_sessions")``

Each process times its call only (imports and opening outside the clock)
and reports its peak RSS over its start (VmHWM after a reset); to_agno3's
process also reports each worker process's own peak RSS (VmHWM, read just
before the worker is closed), shown beside it. The two run interleaved,
round by round. Afterwards the file is counted: sessions in
``agno_sessions``, runs in ``agno_runs`` (and in a ``runs`` column of
``agno_sessions`` had agno put them there).

After each to_agno3 round, the floor (``FLOOR_CHILD``), outside either's
clock: in a fresh copy of the source, every ``memory`` decoded and the
rows to_agno3 wrote copied by SQL into the same tables and indexes, in one
process with no mapping; to_agno3 is reported as a multiple of its time.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import datetime
import json
import os
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from agno_storage import SqliteStorage
from agno_storage.agno3.migrate import BATCH
from bench import harness, rss, sessions
from bench.config import add_mode_options
from bench.harness import Entry
from bench.provenance import ROOT, package_version, revision
from bench.targets import Target, terminal

TABLE = "agent_sessions"
#: The targets: to_agno3 at least this many times faster than agno's migrate() at each size, and its
#: peak memory growth under 2x from the small size to the big one (agno's is shown, not a target).
SPEEDUP = 10

#: The peak-RSS window both children use (bench/rss.py, standard library only), run as source in each.
_RSS = Path(rss.__file__).read_text()

#: What the agno 3.1.10 interpreter runs: argv[1] is the file to migrate in place.
AGNO_CHILD = (
    _RSS
    + """
import json, sys, time
from agno.db.migrations.v1_to_v2 import migrate
from agno.db.sqlite import SqliteDb
db = SqliteDb(db_file=sys.argv[1])
start_kib = start_window()
t = time.perf_counter()
migrate(db, "", agent_sessions_table_name="agent_sessions")
seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "peak_kib": peak_kib(), "start_kib": start_kib}))
"""
)

#: What this project's interpreter runs: argv[1] is the file to migrate in place.
OURS_CHILD = (
    _RSS
    + """
import json, sys, time
from agno_storage.agno3 import to_agno3
from agno_storage.agno3.workers import WorkerPool
workers_kib = []
_close = WorkerPool.close
def close(pool):
    # Each worker's own peak RSS (VmHWM), read while it is still there.
    for pid in pool.pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                workers_kib.extend(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
        except OSError:
            pass
    _close(pool)
WorkerPool.close = close
start_kib = start_window()
t = time.perf_counter()
report = to_agno3(sys.argv[1], sys.argv[1], workers=None if sys.argv[2] == "default" else int(sys.argv[2]),
                  batch_size=int(sys.argv[3]))
seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "peak_kib": peak_kib(), "start_kib": start_kib, "workers_peak_kib": workers_kib,
                  "reported": {"sessions": report.total("sessions"), "runs": report.total("runs")}}))
"""
)


#: The floor, run with this project's interpreter after each to_agno3 round: argv[1] is the file to_agno3 migrated,
#: argv[2] a fresh copy of the source. What any migration of these sessions in place does at the least, with no
#: mapping: every source ``memory`` read and decoded (orjson), then agno 3's tables and indexes made as to_agno3
#: made them and its rows written into them by SQL (``INSERT ... SELECT`` from the migrated file), in one
#: transaction at ``synchronous=NORMAL`` with to_agno3's writer's page cache, and the connection closed (its
#: checkpoint), in one process.
FLOOR_CHILD = """
import json, sqlite3, sys, time
import orjson
conn = sqlite3.connect(sys.argv[2], isolation_level=None)
conn.execute("PRAGMA journal_mode = WAL")
conn.execute("PRAGMA synchronous = NORMAL")
conn.execute("PRAGMA cache_size = -16384")  # to_agno3's writer's
conn.execute("ATTACH ? AS migrated", (sys.argv[1],))
source = {r[0] for r in conn.execute("SELECT name FROM main.sqlite_master")}
made = [(kind, name, sql) for kind, name, sql in conn.execute(
    "SELECT type, name, sql FROM migrated.sqlite_master WHERE sql IS NOT NULL ORDER BY type = 'index', rowid")
    if name not in source]
tables = [name for kind, name, _ in made if kind == "table"]
t = time.perf_counter()
decoded = 0
for (memory,) in conn.execute("SELECT memory FROM main.agent_sessions"):
    if memory is not None:
        orjson.loads(memory)
        decoded += 1
decode_seconds = time.perf_counter() - t
conn.execute("BEGIN IMMEDIATE")
for _, _, sql in made:
    conn.execute(sql)
rows = 0
for name in tables:
    rows += conn.execute(f'INSERT INTO main."{name}" SELECT * FROM migrated."{name}"').rowcount
conn.execute("COMMIT")
conn.execute("DETACH migrated")
conn.close()
seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "decode_seconds": decode_seconds, "decoded": decoded, "rows": rows,
                  "tables": tables}))
"""


@attrs.frozen
class Agno3Config:
    mode: str
    sizes: tuple[int, ...]
    runs_per_session: int
    rounds: int
    #: to_agno3's ``workers``: "default" (its own choice), or a number (the smoke run's 2 exercises them).
    workers: str = "default"
    #: to_agno3's ``batch_size``: sessions a batch (the smoke run's few make enough batches for its workers).
    batch_size: int = BATCH


def make_config(mode: str) -> Agno3Config:
    if mode == "smoke":
        return Agno3Config(mode, (10, 30), 10, 1, workers="2", batch_size=5)
    if mode == "quick":
        return Agno3Config(mode, (200, 1_000), 10, 1)
    if mode == "full":
        return Agno3Config(mode, (1_000, 10_000), 10, 2)
    raise ValueError(f"unknown mode {mode!r}")


def build_source(path: Path, n: int, runs: int) -> None:
    """``n`` agno 1.8.4-shaped agent sessions of ``runs`` runs each in ``agent_sessions``, through SqliteStorage."""
    store = SqliteStorage(table_name=TABLE, db_file=str(path), mode="agent", synchronous="NORMAL")
    try:
        store.create()
        store.upsert_many(harness.ours_session(sessions.agno_session(i, n_runs=runs)) for i in range(n))
    finally:
        store.close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def kept(path: Path) -> dict[str, int]:
    """What a migrated file holds for agno 3: sessions in agno_sessions, runs in agno_runs (and in a runs column)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        out = {"sessions": 0, "runs": 0, "runs_in_sessions_column": 0}
        if "agno_sessions" in tables:
            out["sessions"] = conn.execute("SELECT COUNT(*) FROM agno_sessions").fetchone()[0]
            columns = {r[1] for r in conn.execute("PRAGMA table_info(agno_sessions)")}
            if "runs" in columns:
                out["runs_in_sessions_column"] = conn.execute(
                    "SELECT COALESCE(SUM(json_array_length(runs)), 0) FROM agno_sessions WHERE json_valid(runs)"
                ).fetchone()[0]
        if "agno_runs" in tables:
            out["runs"] = conn.execute("SELECT COUNT(*) FROM agno_runs").fetchone()[0]
        return out
    finally:
        conn.close()


def agno3_python() -> Path:
    """The agno 3.1.10 interpreter (devkit/agno3_env.py makes .venv-agno3 the first time)."""
    sys.path.insert(0, str(ROOT))
    from devkit import agno3_env

    return agno3_env.python()


def child(python: str, code: str, db: Path, *args: str) -> dict[str, Any]:
    """Run ``code`` on ``db`` (and ``args``) with ``python``; its JSON line. RuntimeError with its stderr if it fails."""
    env = {**os.environ, "AGNO_TELEMETRY": "false"}
    if python != sys.executable:
        env["PYTHONPATH"] = ""  # nothing of this project's venv in agno 3's
    done = subprocess.run(
        [python, "-c", code, str(db), *args], cwd=ROOT, capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{python} failed on {db}: {done.stderr[-3000:]}")
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def run(mode: str, workdir: Path, command: str) -> dict[str, Any]:
    """Build a source per size in ``workdir`` and migrate it with both, interleaved; the results."""
    cfg = make_config(mode)
    started = time.time()
    # to_agno3's workers import this package inside the clock. Installed from a wheel it has its bytecode; a
    # checkout under PYTHONDONTWRITEBYTECODE=1 (which some shells set) would compile every module in every
    # worker, a cost agno's migrate() never pays (one process, agno imported before its clock, from a venv pip
    # compiled). Compiled once here, as an install would have it.
    bytecode = compileall.compile_dir(str(ROOT / "agno_storage"), quiet=1)
    agno_py = str(agno3_python())
    agno_version = subprocess.run(
        [agno_py, "-c", "import importlib.metadata as m; print(m.version('agno'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    env = {
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "agno_in_agno3_venv": agno_version,
        "agno_storage": package_version("agno-session-storage"),
        "revision": revision(),
        "load_before": list(os.getloadavg()),
        "bytecode_compiled": bool(bytecode),
    }
    contenders = {"ours": (sys.executable, OURS_CHILD), "agno": (agno_py, AGNO_CHILD)}
    entries = [Entry("ours", "to_agno3", "ours", 0), Entry("agno", "agno migrate()", "agno", 0)]
    sizes: list[dict[str, Any]] = []
    for n in cfg.sizes:
        src = workdir / f"src-{n}.db"
        t = time.perf_counter()
        build_source(src, n, cfg.runs_per_session)
        build_s = time.perf_counter() - t
        samples: dict[str, list[dict[str, Any]]] = {"ours": [], "agno": []}

        def one(e: Entry, r: int, n: int = n, src: Path = src, samples: dict[str, Any] = samples) -> harness.Batch:
            db = workdir / f"{e.key}-{n}-{r}.db"
            shutil.copyfile(src, db)
            python, code = contenders[e.key]
            got = child(python, code, db, *((cfg.workers, str(cfg.batch_size)) if e.key == "ours" else ()))
            got.update(kept(db))
            if e.key == "ours":  # the floor of the rows it wrote, right after it (outside its clock)
                copy = workdir / f"floor-{n}-{r}.db"
                shutil.copyfile(src, copy)
                got["floor"] = child(sys.executable, FLOOR_CHILD, db, str(copy))
                copy.unlink()
            samples[e.key].append(got)
            db.unlink()
            missing = n - got["sessions"]
            return got["seconds"], n, missing

        results = harness.interleave(entries, cfg.rounds, one)
        per = {e.key: results[e.label]["median_s"] * n for e in entries}
        ours_samples, agno_samples = results["to_agno3"]["samples"], results["agno migrate()"]["samples"]
        sizes.append(
            {
                "sessions": n,
                "runs_in_source": n * cfg.runs_per_session,
                "source_mib": src.stat().st_size / 2**20,
                "build_s": build_s,
                "ours_s": per["ours"],
                "agno_s": per["agno"],
                "speedup": per["agno"] / per["ours"],
                "floor_s": statistics.median(x["floor"]["seconds"] for x in samples["ours"]),
                "floor_decode_s": statistics.median(x["floor"]["decode_seconds"] for x in samples["ours"]),
                "round_speedups": [a / o for a, o in zip(agno_samples, ours_samples, strict=True)],
                "samples": samples,
            }
        )
        src.unlink()
    env["load_after"] = list(os.getloadavg())
    return {
        "mode": mode,
        "command": command,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": time.time() - started,
        "env": env,
        "config": attrs.asdict(cfg),
        "sizes": sizes,
    }


def _last(size: dict[str, Any], key: str) -> dict[str, Any]:
    last: dict[str, Any] = size["samples"][key][-1]
    return last


def _growth_kib(sample: dict[str, Any]) -> int:
    return max(int(sample["peak_kib"]) - int(sample["start_kib"]), 1)


def _workers(sample: dict[str, Any]) -> str:
    peaks = sample.get("workers_peak_kib") or []
    if not peaks:
        return "none"
    return f"{len(peaks)}: " + ", ".join(f"{kib / 1024:,.1f}" for kib in peaks) + " MiB"


def targets(results: dict[str, Any]) -> list[Target]:
    out: list[Target] = []
    for s in results["sizes"]:
        out.append(
            (
                f"to_agno3 vs agno migrate(), {s['sessions']:,} sessions",
                f">= {SPEEDUP}x",
                f"{s['speedup']:.1f}x",
                s["speedup"] >= SPEEDUP,
            )
        )
    small, big = results["sizes"][0], results["sizes"][-1]
    a, b = _growth_kib(_last(small, "ours")), _growth_kib(_last(big, "ours"))
    out.append(
        (
            f"to_agno3: flat memory, peak RSS growth {small['sessions']:,} -> {big['sessions']:,} sessions",
            "< 2x",
            f"{b / a:.2f}x ({a / 1024:.1f} -> {b / 1024:.1f} MiB)",
            b / a < 2,
        )
    )
    return out


def render(results: dict[str, Any]) -> str:
    """The figures as markdown, for docs/agno3.md's side-by-side section."""
    env = results["env"]
    lines = [
        "| sessions (10 runs each) | | agno `migrate()` | `to_agno3` |",
        "|---|---|---:|---:|",
    ]
    for s in results["sizes"]:
        ours, agno = _last(s, "ours"), _last(s, "agno")
        lines += [
            f"| {s['sessions']:,} ({s['source_mib']:.0f} MiB) | time (median) | {s['agno_s']:.2f} s | "
            f"{s['ours_s']:.2f} s ({s['speedup']:.1f}x faster) |",
            f"| | sessions kept | {agno['sessions']:,} | {ours['sessions']:,} |",
            f"| | runs kept in `agno_runs` | {agno['runs']:,} | {ours['runs']:,} |",
            f"| | peak RSS over start | {_growth_kib(agno) / 1024:,.1f} MiB | {_growth_kib(ours) / 1024:,.1f} MiB |",
            f"| | worker processes (each one's peak RSS) | none | {_workers(ours)} |",
            f"| | the floor: the source decoded, the same rows written by SQL (median) | | {s['floor_s']:.2f} s, "
            f"{s['floor_decode_s']:.2f} s of it decoding (to_agno3 {s['ours_s'] / s['floor_s']:.2f}x its time) |",
        ]
    lines += [
        "",
        f"`{results['command']}`, {results['date']}: median of {results['config']['rounds']} interleaved "
        f"rounds per size, each a fresh copy of the source migrated in place in a process of its own; "
        f"{env['cores']} cores, load average {env['load_before'][0]:.2f} before and {env['load_after'][0]:.2f} "
        f"after; agno {env['agno_in_agno3_venv']} in .venv-agno3, agno_storage {env['revision']}"
        f"{' (its bytecode compiled before the first round, as an install has it)' if env.get('bytecode_compiled') else ''}.",
    ]
    return "\n".join(lines) + "\n"


def summary(results: dict[str, Any]) -> str:
    out = [f"{results['command']}  ({results['seconds']:.0f} s)"]
    for s in results["sizes"]:
        ours, agno = _last(s, "ours"), _last(s, "agno")
        out.append(
            f"{s['sessions']:>7,} sessions  to_agno3 {s['ours_s']:8.2f} s  migrate() {s['agno_s']:8.2f} s  "
            f"{s['speedup']:5.1f}x  floor {s['floor_s']:6.2f} s ({s['ours_s'] / s['floor_s']:.2f}x)  workers {_workers(ours)}  kept sessions/runs: to_agno3 {ours['sessions']:,}/{ours['runs']:,}, "
            f"migrate() {agno['sessions']:,}/{agno['runs']:,} (+{agno['runs_in_sessions_column']:,} in a runs column)"
        )
    out += terminal(targets(results))
    return "\n".join(out)


@contextlib.contextmanager
def _workdir(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="agno-storage-bench-agno3-") as tmp:
        yield Path(tmp)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.agno3", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    add_mode_options(p, "200 and 1,000 sessions, one round")
    p.add_argument("--json", type=Path, default=None, help="also save the raw results here")
    p.add_argument("--md", type=Path, default=None, help="also write the markdown table here")
    p.add_argument("--workdir", type=Path, default=None, help="folder for the database files (default: a temp dir)")
    args = p.parse_args(argv)
    mode = args.mode or "full"
    command = "python -m bench.agno3 " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    with _workdir(args.workdir) as workdir:
        results = run(mode, workdir, command.strip())
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    md = render(results)
    if args.md is not None:
        args.md.write_text(md)
    print(md)
    print(summary(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
