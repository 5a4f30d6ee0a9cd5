"""The benchmark suite runs end to end at tiny sizes and renders its report; its modules form no import cycle.

Asserts only that every workload produced numbers; timings are never checked.
"""

from __future__ import annotations

import ast
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import cli, projected, report
from bench.contenders import AGNO_WAL
from bench.harness import round_ratios, spread

BENCH = Path(__file__).resolve().parent.parent / "bench"


def bench_imports(path: Path) -> set[str]:
    """The bench modules ``path`` imports, at any depth of its code (function-level imports too)."""
    modules = {p.stem for p in BENCH.glob("*.py")}
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 1:  # from . import x, from .x import y
                module = "bench" + (f".{node.module}" if node.module else "")
            elif node.level == 0 and node.module:
                module = node.module
            else:
                continue
            # "from bench import x" names module x; "from bench.x import y" names x.
            names = [f"bench.{alias.name}" for alias in node.names] if module == "bench" else [module]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "bench" and len(parts) > 1 and parts[1] in modules:
                found.add(parts[1])
    return found


def import_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that ends where it starts, or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        if (cycle := visit(start)) is not None:
            return cycle
    return None


def test_import_cycle_finder_sees_one() -> None:
    assert import_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert import_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_bench_modules_import_each_other_without_a_cycle() -> None:
    graph = {p.stem: bench_imports(p) for p in BENCH.glob("*.py")}
    # The walk sees the imports it must: the entry point reaches both runners and the report.
    assert {"pg", "report", "sqlite"} <= graph["cli"] and graph["__main__"] == {"cli"}
    assert import_cycle(graph) is None, " -> ".join(import_cycle(graph) or [])


def test_ratio_spread_pairs_the_rounds_that_ran_side_by_side() -> None:
    # Round 2 was slow for both: paired round by round, the ratio stays 2.
    ratios = round_ratios([2.0, 20.0, 4.0], [1.0, 10.0, 2.0])
    assert ratios == [2.0, 2.0, 2.0]
    assert spread([1.0, 3.0, 2.0, 5.0, 4.0]) == {"min": 1.0, "q1": 2.0, "q3": 4.0, "max": 5.0}
    assert spread([1.5]) == {"min": 1.5, "q1": 1.5, "q3": 1.5, "max": 1.5}


WORKLOADS = (
    "1. upsert new small",
    "1. upsert existing small",
    "2. read small",
    "3. upsert large",
    "3. read large",
    "4. newest 20 of user",
    "4. newest 20 of agent",
    "4. newest 20 of all",
    "5. bulk import small",
)


@pytest.mark.slow
def test_smoke_run_produces_every_workload_and_the_report(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    results = cli.run("smoke", out, tmp_path, use_go=False, command="python -m bench --smoke")

    rows = results["rows"]
    for workload in WORKLOADS:
        got = [r for r in rows if r["workload"].startswith(workload)]
        assert got, f"no results for {workload}"
        for r in got:
            assert r["median_us"] > 0 and r["ops_per_s"] > 0, r
    kinds = {r["kind"] for r in rows}
    assert {"ours", "floor", "agno"} <= kinds
    # agno with WAL runs beside agno at its defaults in every timed workload, on a file really in WAL.
    for workload in WORKLOADS:
        got = [r for r in rows if r["workload"].startswith(workload) and r["contender"].startswith(AGNO_WAL)]
        assert got, f"no {AGNO_WAL} row in {workload}"
    assert results["env"]["agno_wal_pragmas"] == {"journal_mode": "wal", "synchronous": 2}
    assert results["env"]["agno_pragmas"]["journal_mode"] == "delete"
    # Every ratio comes with its spread over rounds; the load is recorded.
    for r in rows:
        sp = r["spread"]
        assert sp["min"] <= sp["q1"] <= sp["q3"] <= sp["max"] and len(r["samples_us"]) == r["rounds"], r
    assert len(results["env"]["load_before"]) == 3 and len(results["env"]["load_after"]) == 3
    if projected.available():
        assert [r for r in rows if r["workload"].startswith(projected.WORKLOAD)]
    for m in results["large_mem"]:
        assert m["upsert_peak_bytes"] > 0 and m["read_peak_bytes"] > 0
    c = results["concurrent"]
    assert c["alone_per_s"] > 0 and c["shared_per_s"] > 0 and c["rows_ok"]

    md = (out / "benchmarks.md").read_text()
    for workload in WORKLOADS:
        assert workload[3:] in md
    assert "### Targets" in md and "Go column skipped" in md
    assert "measured against (ceiling)" in md and "before" in md.split("| load |")[1].split("\n")[0]
    assert (out / "benchmarks.png").read_bytes().startswith(b"\x89PNG")
    assert report.targets(results)


PG_WORKLOADS = (
    "1. upsert new small",
    "1. upsert existing small",
    "2. read small",
    "3. newest 20 of user",
    "3. newest 20 of agent",
    "3. newest 20 of all",
    "4. bulk import small",
)


@pytest.mark.slow
def test_postgres_smoke_run_produces_every_workload_and_its_section(tmp_path: Path) -> None:
    from bench import pg, pg_report
    from tests.pgserver import require_pg

    require_pg()  # skips, or fails under AGNO_STORAGE_REQUIRE_PG=1
    results = pg.run("smoke", command="python -m bench.pg --smoke")

    assert "skipped" not in results
    assert results["server"]["fsync"] == "on" and results["server"]["synchronous_commit"] == "on"
    rows = results["rows"]
    for workload in PG_WORKLOADS:
        got = [r for r in rows if r["workload"].startswith(workload)]
        assert got, f"no results for {workload}"
        assert {"ours", "floor", "agno"} <= {r["kind"] for r in got}
        for r in got:
            assert r["median_us"] > 0 and r["ops_per_s"] > 0 and r["errors"] == 0, r
    assert all(
        r.get("plan")
        for r in rows
        if r["workload"].startswith("3.") and r["kind"] != "agno" and "orjson" not in r["contender"]
    )

    md = pg_report.render(results)
    for workload in PG_WORKLOADS:
        assert workload[3:] in md
    assert "fsync=on" in md and "### PostgreSQL targets" in md
    assert len(pg_report.targets(results)) == len(pg_report.TARGETS)


REASON = "PostgreSQL server binaries not found: apt-get install postgresql"


def test_postgres_part_that_cannot_run_says_so_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import pg, pg_report

    monkeypatch.setattr(pg, "missing", lambda: REASON)
    results = pg.run("smoke", command="python -m bench.pg --smoke")
    assert results == {"skipped": REASON}
    assert "WARNING: the PostgreSQL part did NOT run: " + REASON in pg_report.summary(results)
    assert "> **Not measured: the PostgreSQL part did not run.** " + REASON in pg_report.render(results)
    assert pg.main(["--smoke"]) == 1


def test_postgres_server_that_does_not_start_is_reported_with_its_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import pg, pg_report

    @contextlib.contextmanager
    def failing() -> Iterator[None]:
        raise RuntimeError("could not start PostgreSQL: initdb failed (1): no space left on device\nlog line")
        yield

    monkeypatch.setattr(pg, "missing", lambda: None)
    monkeypatch.setattr(pg, "durable_server", failing)
    results = pg.run("smoke", command="python -m bench.pg --smoke")
    assert results["skipped"] == (
        "could not start a PostgreSQL server: could not start PostgreSQL: initdb failed (1): no space left on device"
    )
    assert "!!   log line" in pg_report.summary(results)


@pytest.mark.parametrize(("mode", "status"), [("--quick", 0), ("--full", 1)])
def test_cli_writes_the_warning_into_the_page_and_fails_a_full_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, mode: str, status: int
) -> None:
    from bench import pg, sqlite

    saved = json.loads((BENCH / "results" / "full.json").read_text())
    saved.pop("postgres", None)
    monkeypatch.setattr(sqlite, "run", lambda *args: saved)  # a committed run stands in for the SQLite part
    monkeypatch.setattr(pg, "missing", lambda: REASON)

    assert cli.main([mode, "--no-go", "--out", str(tmp_path)]) == status
    out = capsys.readouterr().out
    assert out.rstrip().endswith("!" * 78) and "did NOT run: " + REASON in out
    md = (tmp_path / "benchmarks.md").read_text()
    assert "> The PostgreSQL part did not run: " + REASON in md
    assert "**Not measured: the PostgreSQL part did not run.**" in md


@pytest.mark.parametrize(
    ("args", "status"), [(["--quick"], 0), (["--full"], 1), (["--full", "--no-go"], 0)], ids=["quick", "full", "no-go"]
)
def test_a_full_run_whose_go_contender_could_not_build_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], status: int
) -> None:
    # On a fresh clone without `make go-work` the Go build fails; a full run wrote the page without the Go rows and
    # exited 0, so the committed page lost its Go contender without anybody noticing.
    from bench import sqlite

    saved = json.loads((BENCH / "results" / "full.json").read_text())
    saved.pop("postgres", None)
    saved["go"], saved["go_skipped"] = False, "`go build ./cmd/bench` failed: missing go.sum entry"
    monkeypatch.setattr(sqlite, "run", lambda *a: saved)  # a committed run stands in for the SQLite part

    assert cli.main([*args, "--no-postgres", "--out", str(tmp_path)]) == status
    err = capsys.readouterr().err
    assert ("the Go contender did not run (`go build ./cmd/bench` failed: missing go.sum entry)" in err) == (
        status == 1
    )


def test_the_decode_comparison_reports_each_decoder_against_orjson(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import decode

    assert decode.main(["--n", "4", "--rounds", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "4 small sessions, 1 rounds, decode time per row (median over rounds):"
    names = [line.split("  ")[1].strip() for line in lines[1:]]
    assert names == ["orjson.loads of the JSON columns", "RowCodec.decode_reference", "RowCodec.decode (generated)"]
    assert lines[1].endswith(" 1.00x") and all(line.endswith("x") for line in lines[2:])
