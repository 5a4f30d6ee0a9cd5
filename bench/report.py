"""Render a run as docs/benchmarks.md (tables, targets) and docs/benchmarks.png (chart)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import pg_report, projected
from bench.contenders import AGNO_WAL
from bench.gobench import GO_LABEL
from bench.tables import (
    Goal,
    Row,
    at_least,
    at_most_slower,
    find,
    fmt_us,
    goal_lines,
    goals_table,
    plans_table,
    table,
)

HERE = Path(__file__).resolve().parent
#: Hand-written prose (how to run, what is measured, causes of misses),
#: placed around the generated tables.
INTRO = HERE / "doc_intro.md"
ANALYSIS = HERE / "doc_analysis.md"


#: The labels the SQLite targets are measured on (bench/sqlite.py and bench/workloads.py name them).
OURS, FLOOR, AGNO = "agno_storage", "floor (sqlite3)", "agno 1.8.4"
OURS_NORMAL, FLOOR_NORMAL = "agno_storage, synchronous=NORMAL", "floor, synchronous=NORMAL"
FLOOR_DECODE = "floor + orjson.loads"
RECENT_OURS, RECENT_FLOOR_DECODE = "agno_storage (recency indexes)", "floor, best index + orjson.loads"
#: Workload 4b, when the store has list_summaries(): its contender and the floor selecting the same columns.
PROJECTED, PROJECTED_OURS, PROJECTED_FLOOR = projected.WORKLOAD, projected.OURS, projected.FLOOR


def targets(results: dict[str, Any]) -> list[Goal]:
    """Every stated target with the ceiling it was measured against; met is None when not measured."""
    rows = results["rows"]
    out: list[Goal] = []
    encode = "The store encodes the session (RowCodec.encode, orjson.dumps) and runs its transaction inside the clock."
    for w in ("1. upsert new small", "1. upsert existing small"):
        n = w[3:]
        out.append(
            at_least(
                rows,
                w,
                f"{n}, FULL: vs {AGNO} at its defaults",
                8.5,
                OURS,
                AGNO,
                ceiling=FLOOR,
                why=f"Each commit waits for an fsync; the {AGNO_WAL} row shows how much of agno's time is its journal.",
            )
        )
        out.append(at_least(rows, w, f"{n}, FULL: vs its floor", 0.9, OURS, FLOOR, why=encode))
        out.append(
            at_least(
                rows,
                w,
                f"{n}, NORMAL: vs its floor",
                0.85,
                OURS_NORMAL,
                FLOOR_NORMAL,
                why=encode + " Without an fsync to wait for, that is a larger share.",
            )
        )
        out.append(
            at_least(
                rows,
                w,
                f"{n}: vs {GO_LABEL}",
                1,
                OURS,
                GO_LABEL,
                why="Both wait for one fsync per commit; Go is timed inside its own process, with no Python calls.",
            )
        )
    decode = "Over fetch + orjson.loads the store runs the wide-integer scan, checks each column and builds the record."
    out.append(
        at_least(rows, "2. read small", "read small: vs fetch + orjson.loads", 0.8, OURS, FLOOR_DECODE, why=decode)
    )
    out.append(
        at_least(rows, "3. read large", "read large: vs fetch + orjson.loads", 0.9, OURS, FLOOR_DECODE, why=decode)
    )
    out.append(
        at_least(rows, "3. read large", f"read large: vs {AGNO}", 1.9, OURS, AGNO, ceiling=FLOOR_DECODE, why=decode)
    )
    for q in ("user", "agent", "all"):
        why = "Twenty rows of the read path's per-row work (scan, checks, records)."
        out.append(
            at_most_slower(
                rows,
                f"4. newest 20 of {q}",
                f"newest 20 of {q}: vs floor + decode",
                1.3,
                RECENT_OURS,
                RECENT_FLOOR_DECODE,
                why=why,
            )
        )
    summaries = [r for r in rows if r["workload"].startswith(PROJECTED)]
    for q in ("user", "agent", "all"):
        if any(r["workload"].startswith(f"{PROJECTED} of {q}") for r in summaries):
            out.append(
                at_most_slower(
                    rows,
                    f"{PROJECTED} of {q}",
                    f"newest 20 projected of {q}: vs raw floor",
                    2,
                    PROJECTED_OURS,
                    PROJECTED_FLOOR,
                    why="The store builds 20 SessionSummary records (decode_summaries' checks, attrs __init__); "
                    "the floor returns raw tuples.",
                )
            )
    if not summaries:
        out.append(
            Goal(
                "newest 20 projected: vs raw floor",
                "<= 2x the time",
                "floor selecting the same columns",
                "not measured",
                None,
                "The measured revision of the store has no list_summaries().",
            )
        )
    bulk = [r for r in rows if r["workload"].startswith("5.")]
    ours_bulk = [r for r in bulk if r["kind"] == "ours"]
    floor_bulk = next((r for r in bulk if r["kind"] == "floor"), None)
    if ours_bulk and floor_bulk is not None:
        big = max(ours_bulk, key=_count)
        small = min(ours_bulk, key=_count)
        out.append(
            at_least(
                rows,
                "5.",
                "upsert_many: vs its floor",
                0.9,
                big["contender"],
                floor_bulk["contender"],
                why="The store encodes every session inside the clock; the floor's rows are encoded before it starts.",
            )
        )
        grow = big["peak_rss_mib"] - small["peak_rss_mib"]
        flat = grow <= max(2.0, 0.25 * small["peak_rss_mib"])
        out.append(
            Goal(
                "upsert_many: peak memory flat in the count",
                "no growth",
                f"{small['contender']}",
                f"+{small['peak_rss_mib']:.1f} MiB at {_count(small):,}, +{big['peak_rss_mib']:.1f} MiB at "
                f"{_count(big):,}",
                flat,
                "" if flat else f"Peak RSS grew by {grow:.1f} MiB with the count.",
            )
        )
    c = results["concurrent"]
    out.append(
        Goal(
            "concurrent writers: errors",
            "0",
            "every writer's own count",
            str(c["errors"]),
            c["errors"] == 0,
            "" if c["errors"] == 0 else f"Samples: {c['error_samples']}",
        )
    )
    ok = c["ratio"] >= 0.7
    out.append(
        Goal(
            "concurrent writers: total vs one process",
            ">= 0.7x",
            f"one process alone: {c['alone_per_s']:,.0f}/s",
            f"{c['ratio']:.2f}x",
            ok,
            ""
            if ok
            else "Writers to one SQLite file take turns at its one write lock; each commit waits for an fsync.",
        )
    )
    return out


def _count(row: Row) -> int:
    """The session count in a bulk row's label: ``agno_storage upsert_many (100,000)`` gives 100000."""
    return int(row["contender"].split("(")[1].split(")")[0].split(" ")[0].replace(",", ""))


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


def _load(env: dict[str, Any]) -> str:
    """The load averages before and after the SQLite part, against the cores ('not recorded' for older runs)."""
    before, after = env.get("load_before"), env.get("load_after")
    if not before or not after:
        return "not recorded"
    fmt = "/".join
    return (
        f"{fmt(f'{x:.2f}' for x in before)} before, {fmt(f'{x:.2f}' for x in after)} after "
        f"(1/5/15-minute load averages, `os.getloadavg()`, on {env['cores']} cores)"
    )


def render(results: dict[str, Any], chart_name: str = "benchmarks.png") -> str:
    env = results["env"]
    rows = results["rows"]
    parts: list[str] = []
    if INTRO.exists():
        parts.append(INTRO.read_text().rstrip())
    agno_sync = env.get("agno_pragmas", {})
    agno_wal = env.get("agno_wal_pragmas", {})
    wal_text = (
        f"; {AGNO_WAL}: the same library and engine URL, journal_mode `{agno_wal.get('journal_mode')}`, "
        f"synchronous `{agno_wal.get('synchronous')}`, set on each connection by a SQLAlchemy connect hook"
        if agno_wal
        else ""
    )
    parts.append(
        f"""## Results

Run `{results["command"]}` on {results["date"]} ({results["mode"]} mode, {results["seconds"]:.0f} s).

| | |
|---|---|
| machine | {env["cores"]} cores, {env["platform"]} |
| load | {_load(env)} |
| agno_storage | commit {env.get("revision", "not recorded")} |
| Python | {env["python"]}; sqlite3 module on SQLite {env["sqlite_python"]} |
| agno | {env["agno"]} (SQLAlchemy {env["sqlalchemy"]}) |
| Go | {GO_LABEL}: the released module `github.com/devalexandre/agno-golang` v0.1.6, unmodified, called by compat/cmd/bench; {env["go"]}; modernc.org/sqlite embedding SQLite {env["sqlite_go"]} |
| orjson | {env["orjson"]} |
| durability | agno_storage, floor and Go: WAL, `synchronous=FULL` (rows marked NORMAL: `synchronous=NORMAL`); agno 1.8.4: journal_mode `{agno_sync.get("journal_mode")}`, synchronous `{agno_sync.get("synchronous")}` (2 = FULL), its defaults{wal_text} |
| sessions | small {results["small_json_bytes"] / 1024:.1f} KiB of JSON, large {results["large_json_bytes"] / 1024:.0f} KiB |

Medians over interleaved rounds (see each workload's rounds in the configuration below).
"Speed-up" is the contender's median time divided by agno_storage's (first row of the
workload): above 1 means agno_storage is faster. In brackets, the lowest and highest of
the same ratio taken round by round (round *i* of the contender over round *i* of
agno_storage, which ran beside it): how far one round can stray from the median. "Upsert existing" writes every session
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

{c["writers"]} processes ({f"two Python processes with agno_storage and one Go process with {GO_LABEL}" if c["writers"] == 3 else "two Python processes with agno_storage"})
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
    parts.append(
        "### Targets\n\n"
        "Each target is a ratio of this run, median over rounds with its min-max round by round, and names "
        "what it is measured against. A target against agno also names its ceiling: how the floor (plain "
        "driver, the store's statements, nothing decoded or encoded inside the clock) does against agno in "
        "the same rounds; no store that does more than the floor can beat that figure. A miss is listed below "
        "the table with its cause, computed from the same rows.\n\n" + goals_table(targets(results))
    )
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
        medians = [r["median_us"] for r in sel]
        # Whiskers: the fastest and slowest round's time per op (older results have no samples).
        lows = [m - min(r.get("samples_us") or [m]) for m, r in zip(medians, sel, strict=True)]
        highs = [max(r.get("samples_us") or [m]) - m for m, r in zip(medians, sel, strict=True)]
        ax.barh(
            [r["contender"] for r in sel],
            medians,
            xerr=[lows, highs],
            error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "#333333"},
            color=[colors.get(r["kind"], "#555555") for r in sel],
        )
        ax.invert_yaxis()
        ax.set_xscale("log")
        # Bars start a decade below the fastest: on a short log range they would otherwise start anywhere.
        ax.set_xlim(left=min(medians) / 10)
        # Minor ticks unlabelled: on a short log range their labels overlap.
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(w, fontsize=9, loc="left")
        ax.tick_params(labelsize=7)
        ax.set_xlabel("µs per operation (log scale, lower is better; whiskers: fastest and slowest round)", fontsize=7)
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
    lines += goal_lines(targets(results))
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
