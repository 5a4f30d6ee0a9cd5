"""Markdown and text pieces both reports render: result tables, plans, targets.

bench/report.py (the SQLite page) and bench/pg_report.py (its PostgreSQL
section) import this module; it imports neither of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

Row = dict[str, Any]
#: (target, requirement, measured, met); met is None when not measured.
Target = tuple[str, str, str, bool | None]


def find(rows: Iterable[Row], workload: str, contender: str) -> Row | None:
    """The first row of ``contender`` in a workload whose name starts with ``workload``, or None."""
    for r in rows:
        if r["workload"].startswith(workload) and r["contender"] == contender:
            return r
    return None


def speedup_target(rows: Iterable[Row], workload: str, contender: str, need: float, name: str) -> Target:
    """Target ``name``: agno_storage at least ``need`` times faster than ``contender`` in ``workload``."""
    r = find(rows, workload, contender)
    if r is None:
        return (name, f">= {need:g}x", "not measured", None)
    return (name, f">= {need:g}x", f"{r['speedup']:.2f}x", r["speedup"] >= need)


def fmt_us(us: float) -> str:
    """Microseconds with a unit and precision a reader can compare at a glance."""
    if us >= 100_000:
        return f"{us / 1000:,.0f} ms"
    if us >= 10_000:
        return f"{us / 1000:,.1f} ms"
    if us >= 1000:
        return f"{us / 1000:,.2f} ms"
    return f"{us:,.1f} µs"


def table(rows: Sequence[Row]) -> str:
    """The results table: one line per (workload, contender)."""
    lines = [
        "| workload | contender | median per op | ops/s | agno_storage speed-up | errors |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        extra = ""
        if r.get("extrapolated_s"):
            extra = f" (100k would take ~{r['extrapolated_s']:,.0f} s)" if r["extrapolated_s"] > 1 else ""
        if r.get("peak_rss_mib") is not None:
            extra += f"; peak RSS +{r['peak_rss_mib']:.1f} MiB"
        lines.append(
            f"| {r['workload'][3:]} | {r['contender']}{extra} | {fmt_us(r['median_us'])} | {r['ops_per_s']:,.0f} | "
            f"{r['speedup']:.2f}x | {r['errors']} |"
        )
    return "\n".join(lines)


def plans_table(rows: Sequence[Row]) -> str:
    """The query plan recorded on each row that has one."""
    lines = ["| query | contender | plan |", "|---|---|---|"]
    for r in rows:
        if r.get("plan"):
            lines.append(f"| {r['workload'][3:]} | {r['contender']} | `{r['plan']}` |")
    return "\n".join(lines)


def targets_table(targets: Sequence[Target]) -> str:
    """Targets as a markdown table; a miss in bold."""
    lines = ["| target | needed | measured | met |", "|---|---|---|---|"]
    for name, need, got, met in targets:
        lines.append(
            f"| {name} | {need} | {got} | {'yes' if met else 'not measured' if met is None else '**MISSED**'} |"
        )
    return "\n".join(lines)


def target_lines(targets: Sequence[Target]) -> list[str]:
    """Targets as terminal lines: ``ok``, ``MISS`` or ``--`` (not measured) first."""
    return [
        f"{'ok  ' if met else 'MISS' if met is not None else '--  '} {name}: {got} (needed {need})"
        for name, need, got, met in targets
    ]
