"""The ops and agno3 benchmarks run end to end at tiny sizes and report every figure.

Timings are never checked: only that each figure is there and that every
operation wrote exactly the sessions of its source.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench import agno3 as bench_agno3
from bench import ops as bench_ops
from tests.pgserver import PgServer, require_pg, running_server


@pytest.fixture(scope="module")
def pg_server() -> Iterator[PgServer]:
    require_pg()
    with running_server() as server:
        yield server


@pytest.mark.slow
def test_ops_smoke_run_reports_every_figure_and_moves_every_session(tmp_path: Path, pg_server: PgServer) -> None:
    results = bench_ops.run("smoke", tmp_path, "python -m bench.ops --smoke", pg_url=pg_server.dsn)
    cfg = bench_ops.make_config("smoke")

    timed = {t["op"]: t for t in results["timed"]}
    assert set(timed) == {"export", "import", "copy"}
    for op, t in timed.items():
        n = t["sessions"]
        assert t["ours_per_s"] > 0 and t["floor_per_s"] > 0 and t["ratio"] > 0, t
        assert t["ours_errors"] == 0 and t["floor_errors"] == 0, t
        kinds = ("ours", "floor", "checked") if op == "export" else ("ours", "floor", "sql")
        assert t["counts"] == {kind: [n] * cfg.rounds for kind in kinds}, op
        if op != "export":
            assert t["sql_per_s"] > 0 and t["sql_errors"] == 0, t
    export = timed["export"]
    assert export["checked_per_s"] > 0 and export["checked_errors"] == 0 and export["checked_ratio"] > 0, export
    # What the import and the copy left in their tables, counted there (the raw SQL floor's too).
    assert timed["import"]["rows_in_table"] == {kind: [cfg.import_n] for kind in ("ours", "floor", "sql")}
    assert timed["copy"]["rows_in_table"] == {kind: [cfg.copy_n] for kind in ("ours", "floor", "sql")}
    # The plain and the checking loop write exactly export's session lines: the ratios compare the same work.
    assert timed["export"]["same_lines_as_floor"] is True

    memory = {(m["op"], m["sessions"]): m for m in results["memory"]}
    expected = {
        *(("export", n) for n in cfg.rss_export),
        *(("import", n) for n in cfg.rss_import),
        *(("copy", n) for n in cfg.rss_copy),
    }
    assert set(memory) == expected
    for (op, n), m in memory.items():
        assert m["count"] == n and m["peak_kib"] >= m["start_kib"] > 0, m
        if op != "export":
            assert m["rows_in_table"] == n, m

    targets = bench_ops.targets(results)
    assert len(targets) == 6 and all(met is not None for *_, met in targets)
    md = bench_ops.render(results)
    for op in ("export", "import", "copy"):
        assert f"| {op} | 300 |" in md
    assert "### Targets" in md and "Load average" in md
    assert not results["notes"]


def test_ops_without_postgres_says_so_in_the_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import pg

    monkeypatch.setattr(pg, "missing", lambda: "PostgreSQL server binaries not found")
    results = bench_ops.run("smoke", tmp_path, "python -m bench.ops --smoke")
    assert results["notes"] == ["copy to PostgreSQL not measured: PostgreSQL server binaries not found"]
    assert ("copy SQLite to PostgreSQL: sessions/s", ">= 10,000/s", "not measured", None) in bench_ops.targets(results)
    assert "not measured: PostgreSQL server binaries not found" in bench_ops.render(results)


@pytest.mark.slow
def test_agno3_smoke_run_reports_both_migrations_and_what_each_kept(tmp_path: Path) -> None:
    results: dict[str, Any] = bench_agno3.run("smoke", tmp_path, "python -m bench.agno3 --smoke")
    cfg = bench_agno3.make_config("smoke")

    assert [s["sessions"] for s in results["sizes"]] == list(cfg.sizes)
    for s in results["sizes"]:
        n = s["sessions"]
        assert s["ours_s"] > 0 and s["agno_s"] > 0 and s["speedup"] > 0
        for sample in s["samples"]["ours"]:
            # to_agno3 keeps every session and every run of the source.
            assert sample["sessions"] == n and sample["runs"] == n * cfg.runs_per_session
            assert sample["reported"] == {"sessions": n, "runs": n * cfg.runs_per_session}
            # The smoke run asks for two workers: each reports its own peak RSS.
            assert len(sample["workers_peak_kib"]) == 2 and all(kib > 0 for kib in sample["workers_peak_kib"])
            # Its floor decoded every source session and copied every row it wrote into agno 3's tables.
            floor = sample["floor"]
            assert floor["decoded"] == n and floor["seconds"] > floor["decode_seconds"] > 0
            assert {"agno_sessions", "agno_runs"} <= set(floor["tables"])
            assert floor["rows"] >= n + n * cfg.runs_per_session
        for sample in s["samples"]["agno"]:
            # agno 3.1.10's migrate() keeps the sessions; their runs go nowhere agno 3 reads them.
            assert sample["sessions"] == n and sample["runs"] == 0
        for key in ("ours", "agno"):
            assert len(s["samples"][key]) == cfg.rounds
            assert all(x["peak_kib"] >= x["start_kib"] > 0 for x in s["samples"][key])
    assert len(bench_agno3.targets(results)) == len(cfg.sizes) + 1
    md = bench_agno3.render(results)
    assert "| | runs kept in `agno_runs` | 0 | 300 |" in md
    assert "| | worker processes (each one's peak RSS) | none | 2: " in md
    assert "| | the floor: the source decoded, the same rows written by SQL (median) | | " in md


def test_the_checking_loop_takes_what_export_takes_and_stops_at_what_it_refuses(tmp_path: Path) -> None:
    """The export target's floor: on a Go Agent's file (JSON columns holding ``null``) and on sessions with no
    value in a JSON column it writes export's lines; a JSON column of the wrong type stops both."""
    import shutil
    import sqlite3

    from agno_storage.ops.db import open_database
    from agno_storage.ops.export import export_table
    from bench import ops_work
    from tests.test_compat_go import FIXTURES

    src = tmp_path / "go.db"
    shutil.copy(FIXTURES / "go_agent.db", src)
    with sqlite3.connect(src) as conn:
        conn.execute("UPDATE agent_sessions SET extra_data = NULL WHERE rowid = 1")
        conn.execute("UPDATE agent_sessions SET session_data = '' WHERE rowid = 2")
    _, n = ops_work.checked_export(src, tmp_path / "checked.jsonl")
    with open_database(str(src)) as db, (tmp_path / "ours.jsonl").open("wb") as f:
        assert export_table(db, ops_work.TABLE, f).sessions == n > 2
    assert bench_ops.lines_digest(tmp_path / "checked.jsonl") == bench_ops.lines_digest(tmp_path / "ours.jsonl")
    with sqlite3.connect(src) as conn:
        conn.execute("UPDATE agent_sessions SET agent_data = '[]' WHERE rowid = 3")
    with pytest.raises(ValueError, match="agent_data"):
        ops_work.checked_export(src, tmp_path / "checked.jsonl")
