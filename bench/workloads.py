"""The six SQLite workloads. Each returns a list of result rows (dicts) for the report.

The timed ones (1 to 4) go through bench.harness, as the PostgreSQL ones do:
interleaved rounds, per-op medians over rounds, ratios to our default row.
Workloads 5 and 6 time child processes, for a clean peak RSS and for writers
that share a file as separate processes do.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agno_storage import SqliteStorage
from bench import harness, projected
from bench.child import bulk_dicts
from bench.config import Config
from bench.contenders import AGNO_WAL, TABLE, Agno, Floor, Ours
from bench.gobench import GO_LABEL
from bench.harness import Contender, Entry, Row

ROOT = Path(__file__).resolve().parent.parent


def _fresh(path: Path) -> str:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return str(path)


def _files(workdir: Path, tag: str) -> Callable[[int, Contender], str]:
    """A fresh database file for each contender: ``<tag>-<index>-<kind>.db``."""
    return lambda i, c: _fresh(workdir / f"{tag}-{i}-{c.kind}.db")


def small_writes_and_reads(
    cfg: Config, writers: Sequence[Contender], readers: Sequence[Contender], small: Sequence[dict[str, Any]]
) -> list[Row]:
    """Workloads 1 and 2: upsert new, upsert existing and read small sessions, one transaction each.

    Rows of workload 2 carry ``plan`` (see ``_plans``) for agno_storage and the floors.
    """
    place = _files(cfg.workdir, "small")
    rows = harness.small_writes_and_reads(writers, readers, place, small, cfg.rounds, cfg.small_batch, cfg.read_batch)
    plans = _plans(readers, small[0]["session_id"], ("read",))
    for row in rows:
        if row["workload"].startswith("2."):
            row["plan"] = plans.get((row["contender"], "read"), "")
    return rows


def large_writes_and_reads(
    cfg: Config, writers: Sequence[Contender], readers: Sequence[Contender], large: Sequence[dict[str, Any]]
) -> list[Row]:
    """Workload 3: upsert (new) and read of large sessions; a reader with a twin reads the twin's file."""
    harness.open_all(writers, _files(cfg.workdir, "large"), "large", large)
    n = cfg.large_batch
    out = harness.timed("3. upsert large", writers, cfg.large_rounds, harness.upsert_batches("large", n))
    for c in readers:
        if c.twin is not None:
            harness.open_at(c, c.twin.path)
            c.prepare("large", large)
    out += harness.timed("3. read large", readers, cfg.large_rounds, harness.read_batches("large", n))
    return out


def _populate(cfg: Config) -> tuple[Path, Path]:
    """A Go-layout file with recency indexes and an agno-layout file, both holding the same rows."""
    ours_path = cfg.workdir / "recent-ours.db"
    agno_path = cfg.workdir / "recent-agno.db"
    for p in (ours_path, agno_path):
        _fresh(p)
    st = SqliteStorage(table_name=TABLE, db_file=ours_path, synchronous="NORMAL")
    st.create()
    st.upsert_many(harness.ours_session(t, **over) for t, over in bulk_dicts(cfg.recent_rows, prefix="r"))
    st.close()
    conn = sqlite3.connect(ours_path, isolation_level=None)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()

    agno = Agno()
    agno.open(str(agno_path))
    agno.close()
    # agno stores JSON through SQLAlchemy's JSON type, i.e. json.dumps with default separators.
    conn = sqlite3.connect(agno_path, isolation_level=None)
    conn.execute("BEGIN")
    conn.executemany(
        f"INSERT INTO {TABLE} (session_id, user_id, memory, session_data, extra_data, created_at, updated_at, "  # noqa: S608
        "agent_id, agent_data, team_session_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (
                over["session_id"],
                over["user_id"],
                json.dumps(t["memory"]),
                json.dumps(t["session_data"]),
                json.dumps(t["extra_data"]),
                over["created_at"],
                over["created_at"],
                over["agent_id"],
                json.dumps(t["agent_data"]),
                None,
            )
            for t, over in bulk_dicts(cfg.recent_rows, prefix="r")
        ),
    )
    conn.execute("COMMIT")
    conn.close()
    return ours_path, agno_path


def recent_sessions(cfg: Config) -> list[Row]:
    """Workload 4: the 20 newest sessions of one user, of one agent, and of all."""
    ours_path, agno_path = _populate(cfg)
    no_rx = cfg.workdir / "recent-ours-norx.db"
    floor_path = cfg.workdir / "recent-floor.db"
    shutil.copyfile(ours_path, no_rx)
    shutil.copyfile(ours_path, floor_path)
    conn = sqlite3.connect(no_rx, isolation_level=None)
    for name in [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'rx_%'")]:
        conn.execute(f'DROP INDEX "{name}"')
    conn.close()

    agno_wal_path = cfg.workdir / "recent-agno-wal.db"
    shutil.copyfile(agno_path, agno_wal_path)  # switched to WAL when the contender opens it
    contenders: list[Contender] = [
        Ours("agno_storage (recency indexes)"),
        Ours("agno_storage (Go indexes only)", recency_indexes=False),
        Floor("floor, best index (raw rows)"),
        Floor("floor, best index + orjson.loads", decode=True),
        Agno(),
        Agno(wal=True),
    ]
    paths = [ours_path, no_rx, floor_path, floor_path, agno_path, agno_wal_path]
    with harness.closing(contenders):
        for c, p in zip(contenders, paths, strict=True):
            harness.open_at(c, str(p))
        plans = _plans(contenders, "r-0000000", ("user", "agent", "all"))
        rows = harness.newest_20(4, cfg.recent_rows, contenders, cfg.rounds, cfg.recent_ops, cfg.recent_budget_s, plans)
    # 4b on the same files: the floor's file has kept the index made for "all".
    return rows + projected.newest_20_projected(cfg, ours_path, floor_path)


def _plans(contenders: Sequence[Contender], session_id: str, reads: Sequence[str]) -> dict[tuple[str, str], str]:
    """EXPLAIN QUERY PLAN of each of ``reads`` (see bench.harness.READS), per SQLite contender.

    The statement and parameters are recorded from the store itself, on the
    contender's own file, for the call the Ours contender makes; a floor's
    statement is checked to be the same text. Keyed by (label, read).
    """
    user, agent = harness.RECENT_QUERIES["user"][0][0], harness.RECENT_QUERIES["agent"][0][1]
    assert user is not None and agent is not None
    out: dict[tuple[str, str], str] = {}
    for c in contenders:
        if c.kind not in ("ours", "floor"):
            continue
        recorder = SqliteStorage(table_name=TABLE, db_file=c.path, recency_indexes=False)
        try:
            statements = harness.ours_reads(recorder, session_id, user, agent, 20)
        finally:
            recorder.close()
        if isinstance(c, Floor):
            for name in reads:
                runs = c.sql_read if name == "read" else c.sql_recent[name]
                if runs != statements[name][0]:
                    raise RuntimeError(f"{c.label} runs {runs!r} for {name!r}, the store {statements[name][0]!r}")
        conn = sqlite3.connect(c.path)
        try:
            for name in reads:
                sql, params = statements[name]
                plan = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
                out[(c.label, name)] = "; ".join(str(p[-1]) for p in plan)
        finally:
            conn.close()
    return out


def _child(*args: str) -> dict[str, Any]:
    """Run ``python -m bench.child ARGS`` and return the JSON it printed.

    Raises RuntimeError with the child's own error output when it fails.
    """
    got = subprocess.run([sys.executable, "-m", "bench.child", *args], cwd=ROOT, capture_output=True, text=True)
    if got.returncode != 0:
        raise RuntimeError(f"python -m bench.child {' '.join(args)} exited with code {got.returncode}:\n{got.stderr}")
    result: dict[str, Any] = json.loads(got.stdout)
    return result


def bulk_import(cfg: Config) -> list[Row]:
    """Workload 5: upsert_many of many small sessions, each run in a fresh process (peak RSS)."""
    n, n_small = cfg.bulk_n, cfg.bulk_n_small
    ours = Entry("ours", f"agno_storage upsert_many ({n:,})", "ours", n)
    ours_small = Entry("ours-small", f"agno_storage upsert_many ({n_small:,})", "ours", n_small)
    floor = Entry("floor", f"floor executemany ({n:,})", "floor", n)
    agno = Entry("agno", f"agno 1.8.4 upsert loop ({cfg.agno_sample:,}, extrapolated)", "agno", cfg.agno_sample)
    agno_wal = Entry("agno-wal", f"{AGNO_WAL} upsert loop ({cfg.agno_sample:,}, extrapolated)", "agno", cfg.agno_sample)
    runs: dict[str, list[dict[str, Any]]] = {e.key: [] for e in (ours, ours_small, floor, agno, agno_wal)}

    def run(e: Entry, r: int) -> tuple[float, int]:
        db = _fresh(cfg.workdir / f"bulk-{e.key}.db")
        # The key names the child's kind: agno-wal is agno with its file in WAL.
        got = _child("bulk", "--kind", e.key if e.key == "agno-wal" else e.kind, "--db", db, "--n", str(e.count))
        runs[e.key].append(got)
        return got["seconds"], got["count"]

    def peak_rss(e: Entry) -> Row:
        return {"peak_rss_mib": max((x["rss_peak_kib"] - x["rss_base_kib"]) / 1024 for x in runs[e.key])}

    return harness.bulk_import(
        "5. bulk import small",
        [ours, floor, ours_small, agno, agno_wal],
        cfg.bulk_rounds,
        run,
        order=[ours, ours_small, floor, agno, agno_wal],
        # The report's wording is "100k would take", whatever this run's size.
        extrapolate_to=100_000,
        extra=peak_rss,
    )


def large_memory(cfg: Config) -> list[dict[str, Any]]:
    """Workload 3's peak memory: tracemalloc around one upsert and one read of a large session."""
    out = []
    for kind, label in (("ours", "agno_storage"), ("agno", "agno 1.8.4")):
        got = _child("large-mem", "--kind", kind, "--db", _fresh(cfg.workdir / f"largemem-{kind}.db"))
        got["contender"] = label
        out.append(got)
    return out


def _writer_result(proc: subprocess.Popen[str], n: int) -> dict[str, Any]:
    """What one shared-file writer printed; one that died without a result wrote nothing: n errors.

    Keys as bench.child's ``write``; a dead writer's errors are all
    ``unexpected`` too, and it has no ``start`` or ``end``.
    """
    out, err = proc.communicate()
    if proc.returncode == 0:
        try:
            got: dict[str, Any] = json.loads(out)
            return got
        except json.JSONDecodeError:
            pass
    last = (err or out or "").strip().splitlines()[-1:]
    return {
        "count": 0,
        "errors": n,
        "unexpected": n,
        "error_samples": [f"writer exited with code {proc.returncode}: {' '.join(last)}"],
    }


def concurrent_writers(cfg: Config, go_binary: Path | None, sessions_file: Path | None) -> dict[str, Any]:
    """Workload 6: two Python writers (and one Go writer) sharing one file, against one writer alone.

    Every writer counts its failed upserts and goes on (a writer that dies
    counts all it did not write); ``per_writer`` gives each one's totals over
    the rounds.
    """
    n = cfg.concurrent_n
    alone: list[float] = []
    shared: list[dict[str, Any]] = []
    per_writer: dict[str, dict[str, int]] = {}
    for r in range(cfg.concurrent_rounds):
        for step in harness.alternating(("alone", "shared"), r):
            db = _fresh(cfg.workdir / f"concurrent-{step}.db")
            SqliteStorage(table_name=TABLE, db_file=db).create()  # one creator, before anyone writes
            if step == "alone":
                got = _child("write", "--db", db, "--n", str(n), "--prefix", "solo")
                alone.append(got["count"] / (got["end"] - got["start"]))
                continue
            start_at = str(time.time() + 2.0)  # let every process load before the first write
            child = [sys.executable, "-m", "bench.child", "write", "--db", db, "--n", str(n)]
            cmds = {
                f"agno_storage, process {k}": [*child, "--prefix", f"py{k}", "--start-at", start_at] for k in (1, 2)
            }
            if go_binary is not None and sessions_file is not None:
                cmds[GO_LABEL] = [
                    str(go_binary),
                    *("-sessions", str(sessions_file), "-db", db, "-write", str(n)),
                    *("-prefix", "go", "-start-at", start_at),
                ]
            procs = {
                label: subprocess.Popen(c, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for label, c in cmds.items()
            }
            results = {label: _writer_result(proc, n) for label, proc in procs.items()}
            for label, x in results.items():
                totals = per_writer.setdefault(label, {"written": 0, "errors": 0, "unexpected": 0})
                totals["written"] += x["count"]
                totals["errors"] += x["errors"]
                totals["unexpected"] += x.get("unexpected", 0)
            live = [x for x in results.values() if "start" in x]
            span = max(x["end"] for x in live) - min(x["start"] for x in live) if live else 0.0
            total = sum(x["count"] for x in results.values())
            conn = sqlite3.connect(db)
            stored = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]  # noqa: S608
            conn.close()
            shared.append(
                {
                    "throughput": total / span if span > 0 else 0.0,
                    "errors": sum(x["errors"] for x in results.values()),
                    "samples": [f"{label}: {s}" for label, x in results.items() for s in x["error_samples"]][:5],
                    "writers": len(results),
                    "stored": stored,
                    "expected": total,
                }
            )
    one = statistics.median(alone)
    many = statistics.median(x["throughput"] for x in shared)
    return {
        "workload": "6. concurrent writers",
        "writers": shared[0]["writers"],
        "per_process": n,
        "alone_per_s": one,
        "shared_per_s": many,
        "ratio": many / one,
        "errors": sum(x["errors"] for x in shared),
        "error_samples": [s for x in shared for s in x["samples"]][:5],
        "per_writer": [{"writer": label, **totals} for label, totals in per_writer.items()],
        "rows_ok": all(x["stored"] == x["expected"] for x in shared),
        "rounds": len(shared),
    }
