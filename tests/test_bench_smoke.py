"""The benchmark suite runs end to end at tiny sizes and renders its report.

Asserts only that every workload produced numbers; timings are never checked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("agno")

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
