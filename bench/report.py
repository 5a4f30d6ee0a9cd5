"""Render a run as docs/benchmarks.md (tables, targets) and docs/benchmarks.png (chart)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import pg_report
from bench.tables import Target, find, fmt_us, plans_table, speedup_target, table, target_lines, targets_table

HERE = Path(__file__).resolve().parent
#: Hand-written prose (how to run, what is measured, causes of misses),
#: placed around the generated tables.
INTRO = HERE / "doc_intro.md"
ANALYSIS = HERE / "doc_analysis.md"


def targets(results: dict[str, Any]) -> list[Target]:
    """(target, requirement, measured, met) for every stated target; met is None when not measured."""
    rows = results["rows"]
    out: list[Target] = []

    def ratio(workload: str, contender: str, need: float, name: str) -> None:
        out.append(speedup_target(rows, workload, contender, need, name))

    for w in ("1. upsert new small", "1. upsert existing small"):
        ratio(w, "agno 1.8.4", 8, f"{w[3:]}: vs agno 1.8.4 (each at its defaults)")
        ratio(w, "floor (sqlite3)", 0.8, f"{w[3:]}: vs floor, both synchronous=FULL")
        ratio(w, "agno-golang v0.1.6", 1, f"{w[3:]}: vs agno-golang v0.1.6")
    ratio("2. read small", "agno 1.8.4", 6, "read small: vs agno 1.8.4")
    ratio("2. read small", "floor (sqlite3)", 0.8, "read small: vs floor (raw rows)")
    ratio("3. upsert large", "agno 1.8.4", 3, "upsert large: vs agno 1.8.4")
    ratio("3. read large", "agno 1.8.4", 3, "read large: vs agno 1.8.4")
    for q in ("agent", "all"):
        ratio(f"4. newest 20 of {q}", "agno 1.8.4", 50, f"newest 20 of {q}: vs agno 1.8.4")
    for q in ("user", "agent", "all"):
        r = find(rows, f"4. newest 20 of {q}", "floor, best index (raw rows)")
        base = find(rows, f"4. newest 20 of {q}", "agno_storage (recency indexes)")
        if r and base:
            slower = base["median_us"] / r["median_us"]
            out.append(
                (
                    f"newest 20 of {q}: within 2x of floor's best index",
                    "<= 2x slower",
                    f"{slower:.2f}x slower",
                    slower <= 2,
                )
            )
    bulk = [r for r in rows if r["workload"].startswith("5.") and r["contender"].startswith("agno_storage")]
    if bulk:
        big = max(bulk, key=lambda r: int(r["contender"].split("(")[1].rstrip(")").replace(",", "")))
        small = min(bulk, key=lambda r: int(r["contender"].split("(")[1].rstrip(")").replace(",", "")))
        out.append(("bulk import: sessions/s", ">= 50,000/s", f"{big['ops_per_s']:,.0f}/s", big["ops_per_s"] >= 50_000))
        grow = big["peak_rss_mib"] - small["peak_rss_mib"]
        out.append(
            (
                "bulk import: peak memory flat in the count",
                "no growth",
                f"{small['peak_rss_mib']:.1f} MiB at {small['contender'].split('(')[1][:-1]}, "
                f"{big['peak_rss_mib']:.1f} MiB at {big['contender'].split('(')[1][:-1]}",
                grow <= max(2.0, 0.25 * small["peak_rss_mib"]),
            )
        )
    c = results["concurrent"]
    out.append(("concurrent writers: errors", "0", str(c["errors"]), c["errors"] == 0))
    out.append(("concurrent writers: total vs one process", ">= 0.7x", f"{c['ratio']:.2f}x", c["ratio"] >= 0.7))
    return out


def _per_writer(c: dict[str, Any]) -> str:
    """Workload 6's counts per writer process, totalled over its rounds ('' for results without them)."""
    if not c.get("per_writer"):
        return ""
    lines = [
        "",
        f"Per writer, over {c['rounds']} round(s). Every writer counts a failed upsert and goes on; "
        "*unexpected* are failures outside the store's own error type (for agno_storage anything but "
        "StorageError) and the sessions of a writer that died.",
        "",
        "| writer | sessions written | errors | unexpected |",
        "|---|---:|---:|---:|",
    ]
    for w in c["per_writer"]:
        lines.append(f"| {w['writer']} | {w['written']:,} | {w['errors']} | {w['unexpected']} |")
    return "\n".join(lines) + "\n"


def render(results: dict[str, Any], chart_name: str = "benchmarks.png") -> str:
    env = results["env"]
    rows = results["rows"]
    parts: list[str] = []
    if INTRO.exists():
        parts.append(INTRO.read_text().rstrip())
    agno_sync = env.get("agno_pragmas", {})
    parts.append(
        f"""## Results

Run `{results["command"]}` on {results["date"]} ({results["mode"]} mode, {results["seconds"]:.0f} s).

| | |
|---|---|
| machine | {env["cores"]} cores, {env["platform"]} |
| agno_storage | commit {env.get("revision", "not recorded")} |
| Python | {env["python"]}; sqlite3 module on SQLite {env["sqlite_python"]} |
| agno | {env["agno"]} (SQLAlchemy {env["sqlalchemy"]}) |
| Go | {env["go"]}; modernc.org/sqlite embedding SQLite {env["sqlite_go"]} |
| orjson | {env["orjson"]} |
| durability | agno_storage, floor and Go: WAL, `synchronous=FULL` (rows marked NORMAL: `synchronous=NORMAL`); agno 1.8.4: journal_mode `{agno_sync.get("journal_mode")}`, synchronous `{agno_sync.get("synchronous")}` (2 = FULL), its defaults |
| sessions | small {results["small_json_bytes"] / 1024:.1f} KiB of JSON, large {results["large_json_bytes"] / 1024:.0f} KiB |

Medians over interleaved rounds (see each workload's rounds in the configuration below).
"Speed-up" is the contender's median time divided by agno_storage's (first row of the
workload): above 1 means agno_storage is faster. "Upsert existing" writes every session
again with changed content (its state one step on, a revision in extra_data), the same
change for every contender. The floor runs agno_storage's own statements, upsert and
SELECTs, with the same parameters.

![benchmark chart]({chart_name})

{table(rows)}
"""
    )
    for note in results["notes"]:
        parts.append(f"> {note}")
    if "skipped" in results.get("postgres", {}):
        parts.append(
            f"> [!WARNING]\n> The PostgreSQL part did not run: {results['postgres']['skipped']}. See its section below."
        )
    parts.append(
        "### Query plans (workloads 2 and 4)\n\n"
        "EXPLAIN QUERY PLAN of the statement agno_storage builds for each read (recorded off the store), "
        "on each contender's own file. The floor runs the same statement text with the same parameters; "
        "only its indexes may differ.\n\n" + plans_table(rows)
    )

    mem_lines = [
        "| contender | JSON size | upsert peak | read peak |",
        "|---|---:|---:|---:|",
    ]
    for m in results["large_mem"]:
        mem_lines.append(
            f"| {m['contender']} | {m['json_bytes'] / 1024:.0f} KiB | {m['upsert_peak_bytes'] / 2**20:.1f} MiB | "
            f"{m['read_peak_bytes'] / 2**20:.1f} MiB |"
        )
    parts.append(
        "### Peak memory of one large session (workload 3)\n\n"
        "Python allocations (tracemalloc) during one upsert and one read of a large session, "
        "each contender in a fresh process.\n\n" + "\n".join(mem_lines)
    )
    c = results["concurrent"]
    parts.append(
        f"""### Concurrent writers (workload 6)

{c["writers"]} processes ({"two Python processes with agno_storage and one Go process with agno-golang v0.1.6" if c["writers"] == 3 else "two Python processes with agno_storage"})
each upsert {c["per_process"]:,} small sessions into one file at the same moment, one transaction per session.

| | sessions/s |
|---|---:|
| one Python process alone | {c["alone_per_s"]:,.0f} |
| {c["writers"]} processes together (total) | {c["shared_per_s"]:,.0f} |
| ratio | {c["ratio"]:.2f}x |
| errors | {c["errors"]} |
| every row stored | {"yes" if c["rows_ok"] else "NO"} |
"""
        + _per_writer(c)
        + (f"\nError samples: {c['error_samples']}\n" if c["error_samples"] else "")
    )
    # Recency index write cost.
    cost = []
    for w in ("1. upsert new small", "1. upsert existing small"):
        a = find(rows, w, "agno_storage")
        b = find(rows, w, "agno_storage, no recency indexes")
        if a and b:
            cost.append(
                f"| {w[3:]} | {fmt_us(a['median_us'])} | {fmt_us(b['median_us'])} | "
                f"{(a['median_us'] / b['median_us'] - 1) * 100:+.1f}% |"
            )
    reads = []
    for q in ("user", "agent", "all"):
        a = find(rows, f"4. newest 20 of {q}", "agno_storage (recency indexes)")
        b = find(rows, f"4. newest 20 of {q}", "agno_storage (Go indexes only)")
        if a and b:
            reads.append(
                f"| newest 20 of {q} | {fmt_us(a['median_us'])} | {fmt_us(b['median_us'])} | {b['median_us'] / a['median_us']:.1f}x faster |"
            )
    parts.append(
        "### Recency indexes: write cost and read gain\n\n"
        "| operation | with recency indexes | Go indexes only | difference |\n|---|---:|---:|---:|\n"
        + "\n".join(cost + reads)
    )
    parts.append("### Targets\n\n" + targets_table(targets(results)))
    cfg = results["config"]
    parts.append("### Configuration of this run\n\n" + ", ".join(f"{k}={v}" for k, v in cfg.items()) + "\n")
    if ANALYSIS.exists():
        parts.append(ANALYSIS.read_text().rstrip())
    if "postgres" in results:
        parts.append(pg_report.render(results["postgres"]).rstrip())
    return "\n\n".join(parts) + "\n"


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    rows = results["rows"]
    workloads: list[str] = []
    for r in rows:
        if r["workload"] not in workloads:
            workloads.append(r["workload"])
    panels = len(workloads) + 1
    cols = 2
    lines = (panels + cols - 1) // cols
    fig, axes = plt.subplots(lines, cols, figsize=(14, 2.6 * lines), squeeze=False)
    colors = {"ours": "#2a7ab0", "floor": "#888888", "agno": "#d0703a", "go": "#3a9d5d"}
    for ax, w in zip(axes.flat, workloads, strict=False):
        sel = [r for r in rows if r["workload"] == w]
        ax.barh(
            [r["contender"] for r in sel],
            [r["median_us"] for r in sel],
            color=[colors.get(r["kind"], "#555555") for r in sel],
        )
        ax.invert_yaxis()
        ax.set_xscale("log")
        # Minor ticks unlabelled: on a short log range their labels overlap.
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(w, fontsize=9, loc="left")
        ax.tick_params(labelsize=7)
        ax.set_xlabel("µs per operation (log scale, lower is better)", fontsize=7)
    c = results["concurrent"]
    ax = axes.flat[len(workloads)]
    ax.barh(
        ["one process alone", f"{c['writers']} processes, total"],
        [c["alone_per_s"], c["shared_per_s"]],
        color="#2a7ab0",
    )
    ax.invert_yaxis()
    ax.set_title("6. concurrent writers", fontsize=9, loc="left")
    ax.set_xlabel("sessions/s (higher is better)", fontsize=7)
    ax.tick_params(labelsize=7)
    for extra in list(axes.flat)[panels:]:
        extra.axis("off")
    fig.suptitle(f"agno_storage benchmarks ({results['mode']} run, {results['date']})", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write(results: dict[str, Any], out: Path, json_path: Path | None = None) -> None:
    """Write benchmarks.md and benchmarks.png into ``out``; the raw results to ``json_path`` if given."""
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(results, indent=1) + "\n")
    chart(results, out / "benchmarks.png")
    (out / "benchmarks.md").write_text(render(results))


def summary(results: dict[str, Any]) -> str:
    """The results table and the targets, for the terminal."""
    lines = [table(results["rows"]), ""]
    lines += target_lines(targets(results))
    c = results["concurrent"]
    lines.append(f"concurrent: alone {c['alone_per_s']:.0f}/s, shared {c['shared_per_s']:.0f}/s, errors {c['errors']}")
    for w in c.get("per_writer", []):
        lines.append(f"  {w['writer']}: {w['written']} written, {w['errors']} errors ({w['unexpected']} unexpected)")
    if "postgres" in results:
        lines += ["", pg_report.summary(results["postgres"])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Re-render the page from saved results: python -m bench.report RESULTS.json [--out docs/]."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m bench.report")
    p.add_argument("results", type=Path)
    p.add_argument("--out", type=Path, default=Path("docs"))
    p.add_argument("--postgres", type=Path, default=None, help="results of python -m bench.pg --json, to add")
    args = p.parse_args(argv)
    results = json.loads(args.results.read_text())
    if args.postgres is not None:
        results["postgres"] = json.loads(args.postgres.read_text())
    write(results, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
