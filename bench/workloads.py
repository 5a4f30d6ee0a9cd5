"""The six workloads. Each returns a list of result rows (dicts) for the report.

Timed workloads run every contender in the same process, interleaved: round
r runs each contender once, in forward order on even rounds and reverse order
on odd ones, so drift in the machine's speed (page cache, CPU frequency,
other tenants) lands on everyone alike. Per-op medians are over rounds.
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
from bench.config import Config
from bench.contenders import TABLE, Agno, Floor, Ours
from bench.harness import Contender

ROOT = Path(__file__).resolve().parent.parent
Row = dict[str, Any]


def interleave(
    contenders: Sequence[Contender], rounds: int, run: Callable[[Contender, int], tuple[float, int, int]]
) -> dict[str, dict[str, Any]]:
    """Run ``run(contender, round) -> (seconds, ops, errors)`` round by round, alternating order."""
    per_op: dict[str, list[float]] = {c.label: [] for c in contenders}
    errors: dict[str, int] = {c.label: 0 for c in contenders}
    for r in range(rounds):
        order = contenders if r % 2 == 0 else list(reversed(contenders))
        for c in order:
            seconds, ops, errs = run(c, r)
            per_op[c.label].append(seconds / max(ops, 1))
            errors[c.label] += errs
    return {
        label: {"median_s": statistics.median(v), "samples": v, "errors": errors[label]} for label, v in per_op.items()
    }


def rows_for(workload: str, results: dict[str, dict[str, Any]], contenders: Sequence[Contender]) -> list[Row]:
    """Result rows with each contender's ratio to this project's default row (the first)."""
    base = results[contenders[0].label]["median_s"]
    out = []
    for c in contenders:
        res = results[c.label]
        out.append(
            {
                "workload": workload,
                "contender": c.label,
                "kind": c.kind,
                "median_us": res["median_s"] * 1e6,
                "ops_per_s": 1.0 / res["median_s"] if res["median_s"] else 0.0,
                # How many times faster this project is: their time / ours.
                "speedup": res["median_s"] / base if base else 0.0,
                "errors": res["errors"],
                "rounds": len(res["samples"]),
            }
        )
    return out


def _open_all(contenders: Sequence[Contender], workdir: Path, tag: str) -> None:
    for i, c in enumerate(contenders):
        path = workdir / f"{tag}-{i}-{c.kind}.db"
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        c.path = str(path)
        c.open(str(path))


def small_writes_and_reads(cfg: Config, contenders: Sequence[Contender], readers: Sequence[Contender]) -> list[Row]:
    """Workloads 1 and 2: upsert new, upsert existing and read small sessions, one transaction each."""
    _open_all(contenders, cfg.workdir, "small")
    n = cfg.small_batch
    out: list[Row] = []

    def upsert(c: Contender, r: int) -> tuple[float, int, int]:
        s, e = c.upsert("small", r * n, n)
        return s, n, e

    res = interleave(contenders, cfg.rounds, upsert)
    out += rows_for("1. upsert new small", res, contenders)
    res = interleave(contenders, cfg.rounds, upsert)
    out += rows_for("1. upsert existing small", res, contenders)

    for c in readers:
        if c.twin is not None:  # a second view of another contender's file
            c.path = c.twin.path
            c.open(c.twin.path)
    written = cfg.rounds * n
    m = cfg.read_batch

    def read(c: Contender, r: int) -> tuple[float, int, int]:
        start = (r * m) % max(written - m, 1)
        s, e = c.read("small", start, min(m, written))
        return s, min(m, written), e

    res = interleave(readers, cfg.rounds, read)
    out += rows_for("2. read small", res, readers)
    return out


def large_writes_and_reads(cfg: Config, contenders: Sequence[Contender]) -> list[Row]:
    """Workload 3: upsert (new) and read of large sessions."""
    _open_all(contenders, cfg.workdir, "large")
    n = cfg.large_batch

    def upsert(c: Contender, r: int) -> tuple[float, int, int]:
        s, e = c.upsert("large", r * n, n)
        return s, n, e

    def read(c: Contender, r: int) -> tuple[float, int, int]:
        s, e = c.read("large", r * n, n)
        return s, n, e

    out = rows_for("3. upsert large", interleave(contenders, cfg.large_rounds, upsert), contenders)
    out += rows_for("3. read large", interleave(contenders, cfg.large_rounds, read), contenders)
    return out


def _populate(cfg: Config) -> tuple[Path, Path]:
    """A Go-layout file with recency indexes and an agno-layout file, both holding the same rows."""
    ours_path = cfg.workdir / "recent-ours.db"
    agno_path = cfg.workdir / "recent-agno.db"
    for p in (ours_path, agno_path):
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(p) + suffix).unlink(missing_ok=True)
    st = SqliteStorage(table_name=TABLE, db_file=ours_path, synchronous="NORMAL")
    st.create()
    from bench.child import bulk_dicts
    from bench.harness import ours_session

    st.upsert_many(ours_session(t, **over) for t, over in bulk_dicts(cfg.recent_rows, prefix="r"))
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

    contenders: list[Contender] = [
        Ours("agno_storage (recency indexes)"),
        Ours("agno_storage (Go indexes only)", recency_indexes=False),
        Floor("floor, best index (raw rows)"),
        Floor("floor, best index + orjson.loads", decode=True),
        Agno(),
    ]
    paths = [ours_path, no_rx, floor_path, floor_path, agno_path]
    for c, p in zip(contenders, paths, strict=True):
        c.open(str(p))
    plans = _plans(floor_path, ours_path, no_rx, contenders[2])

    queries = {
        "user": [(f"user-{(k * 7) % 100:04d}", None) for k in range(50)],
        "agent": [(None, f"agent-{k % 10:02d}") for k in range(50)],
        "all": [(None, None)] * 50,
    }
    out: list[Row] = []
    for name, args in queries.items():

        def run(c: Contender, r: int, args: list[tuple[str | None, str | None]] = args) -> tuple[float, int, int]:
            # Fixed time budget per batch: the slow contenders run fewer queries.
            ops, errors = 0, 0
            start = time.perf_counter()
            while True:
                user, agent = args[(r * 7 + ops) % len(args)]
                if c.recent(user, agent, 20) == 0:
                    errors += 1
                ops += 1
                elapsed = time.perf_counter() - start
                if ops >= cfg.recent_ops or elapsed >= cfg.recent_budget_s:
                    return elapsed, ops, errors

        res = interleave(contenders, cfg.rounds, run)
        out += rows_for(f"4. newest 20 of {name} ({cfg.recent_rows:,} rows)", res, contenders)
    for c in contenders:
        c.close()
    for row in out:
        row["plan"] = plans.get((row["contender"], row["workload"].split()[4]), "")
    return out


def _plans(floor_path: Path, ours_path: Path, no_rx: Path, floor: Contender) -> dict[tuple[str, str], str]:
    """EXPLAIN QUERY PLAN of each query, to show which index served it."""
    assert isinstance(floor, Floor)
    order = ' ORDER BY "agent_sessions"."created_at" DESC, "agent_sessions"."session_id" LIMIT 20'
    ours_sql = {
        "user": f'SELECT * FROM "{TABLE}" WHERE "agent_sessions"."user_id" = \'user-0001\'' + order,  # noqa: S608
        "agent": f'SELECT * FROM "{TABLE}" WHERE "agent_sessions"."agent_id" = \'agent-01\'' + order,  # noqa: S608
        "all": f'SELECT * FROM "{TABLE}"' + order,  # noqa: S608
    }
    out: dict[tuple[str, str], str] = {}
    for label, path, sqls in (
        ("agno_storage (recency indexes)", ours_path, ours_sql),
        ("agno_storage (Go indexes only)", no_rx, ours_sql),
        ("floor, best index (raw rows)", floor_path, None),
    ):
        conn = sqlite3.connect(path)
        for q in ("user", "agent", "all"):
            if sqls is None:
                sql, params = floor.sql_recent[q], {"user": ("user-0001", 20), "agent": ("agent-01", 20)}.get(q, (20,))
            else:
                sql, params = sqls[q], ()
            plan = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
            out[(label, q)] = "; ".join(str(p[-1]) for p in plan)
        conn.close()
    return out


def _child(*args: str) -> dict[str, Any]:
    got = subprocess.run(
        [sys.executable, "-m", "bench.child", *args], cwd=ROOT, check=True, capture_output=True, text=True
    )
    result: dict[str, Any] = json.loads(got.stdout)
    return result


def _fresh(path: Path) -> str:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return str(path)


def bulk_import(cfg: Config) -> list[Row]:
    """Workload 5: upsert_many of many small sessions, each run in a fresh process (peak RSS)."""
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "ours-small": [], "floor": [], "agno": []}
    n, n_small = cfg.bulk_n, cfg.bulk_n_small
    for r in range(cfg.bulk_rounds):
        order = ["ours", "floor", "ours-small", "agno"]
        if r % 2:
            order.reverse()
        for key in order:
            db = _fresh(cfg.workdir / f"bulk-{key}.db")
            if key == "ours":
                runs[key].append(_child("bulk", "--kind", "ours", "--db", db, "--n", str(n)))
            elif key == "ours-small":
                runs[key].append(_child("bulk", "--kind", "ours", "--db", db, "--n", str(n_small)))
            elif key == "floor":
                runs[key].append(_child("bulk", "--kind", "floor", "--db", db, "--n", str(n)))
            else:
                runs[key].append(_child("bulk", "--kind", "agno", "--db", db, "--n", str(cfg.agno_sample)))
    labels = {
        "ours": f"agno_storage upsert_many ({n:,})",
        "ours-small": f"agno_storage upsert_many ({n_small:,})",
        "floor": f"floor executemany ({n:,})",
        "agno": f"agno 1.8.4 upsert loop ({cfg.agno_sample:,}, extrapolated)",
    }
    kinds = {"ours": "ours", "ours-small": "ours", "floor": "floor", "agno": "agno"}
    base = statistics.median(x["seconds"] / x["count"] for x in runs["ours"])
    out = []
    for key, results in runs.items():
        per = statistics.median(x["seconds"] / max(x["count"], 1) for x in results)
        out.append(
            {
                "workload": "5. bulk import small",
                "contender": labels[key],
                "kind": kinds[key],
                "median_us": per * 1e6,
                "ops_per_s": 1.0 / per,
                "speedup": per / base,
                "errors": sum(
                    (cfg.agno_sample if key == "agno" else n_small if key == "ours-small" else n) - x["count"]
                    for x in results
                ),
                "rounds": len(results),
                "peak_rss_mib": max((x["rss_peak_kib"] - x["rss_base_kib"]) / 1024 for x in results),
                "extrapolated_s": per * n if key == "agno" else None,
            }
        )
    return out


def large_memory(cfg: Config) -> list[dict[str, Any]]:
    """Workload 3's peak memory: tracemalloc around one upsert and one read of a large session."""
    out = []
    for kind, label in (("ours", "agno_storage"), ("agno", "agno 1.8.4")):
        got = _child("large-mem", "--kind", kind, "--db", _fresh(cfg.workdir / f"largemem-{kind}.db"))
        got["contender"] = label
        out.append(got)
    return out


def concurrent_writers(cfg: Config, go_binary: Path | None, sessions_file: Path | None) -> dict[str, Any]:
    """Workload 6: two Python writers (and one Go writer) sharing one file, against one writer alone."""
    n = cfg.concurrent_n
    alone: list[float] = []
    shared: list[dict[str, Any]] = []
    for r in range(cfg.concurrent_rounds):
        for step in ("alone", "shared") if r % 2 == 0 else ("shared", "alone"):
            db = _fresh(cfg.workdir / f"concurrent-{step}.db")
            SqliteStorage(table_name=TABLE, db_file=db).create()  # one creator, before anyone writes
            if step == "alone":
                got = _child("write", "--db", db, "--n", str(n), "--prefix", "solo")
                alone.append(got["count"] / (got["end"] - got["start"]))
                continue
            start_at = time.time() + 2.0  # let every process load before the first write
            cmds = [
                [
                    sys.executable,
                    "-m",
                    "bench.child",
                    "write",
                    "--db",
                    db,
                    "--n",
                    str(n),
                    "--prefix",
                    p,
                    "--start-at",
                    str(start_at),
                ]
                for p in ("py1", "py2")
            ]
            if go_binary is not None and sessions_file is not None:
                cmds.append(
                    [
                        str(go_binary),
                        "-sessions",
                        str(sessions_file),
                        "-db",
                        db,
                        "-write",
                        str(n),
                        "-prefix",
                        "go",
                        "-start-at",
                        str(start_at),
                    ]
                )
            procs = [subprocess.Popen(c, cwd=ROOT, stdout=subprocess.PIPE, text=True) for c in cmds]
            results = [json.loads(p.communicate()[0]) for p in procs]
            span = max(x["end"] for x in results) - min(x["start"] for x in results)
            total = sum(x["count"] for x in results)
            conn = sqlite3.connect(db)
            stored = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]  # noqa: S608
            conn.close()
            shared.append(
                {
                    "throughput": total / span,
                    "errors": sum(x["errors"] for x in results),
                    "samples": [s for x in results for s in x["error_samples"]][:5],
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
        "rows_ok": all(x["stored"] == x["expected"] for x in shared),
        "rounds": len(shared),
    }
