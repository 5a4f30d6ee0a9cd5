"""bench/search.py runs end to end at a tiny size and reports every figure it promises."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import search as bench_search


def test_search_benchmark_runs_at_a_tiny_size(tmp_path: Path) -> None:
    out = bench_search.main(
        [
            "--sessions",
            "40",
            "--runs",
            "3",
            "--long-runs",
            "50",
            "--dir",
            str(tmp_path),
            "--json",
            str(tmp_path / "o.json"),
        ]
    )
    assert out["messages"] == 240
    for key in (
        "like_scan_ms",
        "search_scan_ms",
        "index_build_messages_per_s",
        "index_build_floor_messages_per_s",
        "search_index_median_ms",
        "catch_up_s",
        "index_build_cpu_s",
        "catch_up_cpu_s",
        "writer_with_trigger_s",
        "writer_without_trigger_s",
        "history_over_decode",
        "history_floor_ms",
        "history_floor_over_decode",
    ):
        assert out[key] > 0, key
    assert out["history_messages"] == 100  # 50 runs, each message once although agno replays the last turns
    assert (tmp_path / "o.json").exists()


def test_postgres_search_benchmark_runs_at_a_tiny_size(tmp_path: Path, pg_server: Any) -> None:
    from bench import search_pg

    args = ["--sessions", "40", "--runs", "3", "--dsn", pg_server.dsn, "--table", "bench_search_pg", "--drop"]
    out = search_pg.main([*args, "--json", str(tmp_path / "o.json")])
    assert out["messages"] == 240
    for key in (
        "like_scan_ms",
        "search_scan_ms",
        "index_build_messages_per_s",
        "search_index_median_ms",
        "catch_up_s",
        "writer_with_trigger_s",
        "writer_without_trigger_s",
    ):
        assert out[key] > 0, key
    assert (tmp_path / "o.json").exists()
