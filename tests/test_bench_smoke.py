"""The benchmark suite runs end to end at tiny sizes and renders its report.

Asserts only that every workload produced numbers; timings are never checked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import cli, report

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
    for m in results["large_mem"]:
        assert m["upsert_peak_bytes"] > 0 and m["read_peak_bytes"] > 0
    c = results["concurrent"]
    assert c["alone_per_s"] > 0 and c["shared_per_s"] > 0 and c["rows_ok"]

    md = (out / "benchmarks.md").read_text()
    for workload in WORKLOADS:
        assert workload[3:] in md
    assert "### Targets" in md and "Go column skipped" in md
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


def test_postgres_part_skips_with_a_one_line_note(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import pg, pg_report

    monkeypatch.setattr(pg, "missing", lambda: "PostgreSQL server binaries not found: apt-get install postgresql")
    results = pg.run("smoke", command="python -m bench.pg --smoke")
    assert results == {"skipped": "PostgreSQL server binaries not found: apt-get install postgresql"}
    assert pg_report.summary(results).count("\n") == 0
    assert "skipped" in pg_report.render(results)
