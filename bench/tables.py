"""Markdown and text pieces both reports render: result tables, plans, targets.

bench/report.py (the SQLite page) and bench/pg_report.py (its PostgreSQL
section) import this module; it imports neither of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from bench.harness import round_ratios, spread

Row = dict[str, Any]
#: (target, requirement, measured, met); met is None when not measured. Other benchmarks' simple targets.
Target = tuple[str, str, str, bool | None]


@attrs.frozen
class Goal:
    """One stated target as measured, with what it was measured against.

    ``ceiling`` names what the target was measured against and how that did
    (the floor's own ratio to agno, say); ``got`` the median ratio with its
    per-round spread; ``met`` is None when not measured; ``cause`` says why a
    miss missed, from the same run's figures.
    """

    name: str
    need: str
    ceiling: str
    got: str
    met: bool | None
    cause: str = ""


def find(rows: Iterable[Row], workload: str, contender: str) -> Row | None:
    """The first row of ``contender`` in a workload whose name starts with ``workload``, or None."""
    for r in rows:
        if r["workload"].startswith(workload) and r["contender"] == contender:
            return r
    return None


def ratio_of(slow: Row, fast: Row) -> tuple[float, dict[str, float]]:
    """``slow``'s median time over ``fast``'s, and the spread of that ratio round by round.

    Rounds are interleaved, so round i of both rows ran side by side; rows of
    older results without per-round samples give an empty spread.
    """
    ratio = slow["median_us"] / fast["median_us"] if fast["median_us"] else 0.0
    a, b = slow.get("samples_us"), fast.get("samples_us")
    if not a or not b or len(a) != len(b):
        return ratio, {}
    return ratio, spread(round_ratios(a, b))


def fmt_ratio(ratio: float, sp: dict[str, float] | None, near: float | None = None) -> str:
    """``5.71x (5.20-6.10)``: the median ratio and, when known, its min-max over rounds.

    With ``near`` (a target) the ratio gets a third decimal when two would
    print it as the target itself.
    """
    text = f"{ratio:.2f}x"
    if near is not None and f"{ratio:.2f}" == f"{near:.2f}" and ratio != near:
        text = f"{ratio:.3f}x"
    return text if not sp else f"{text} ({sp['min']:.2f}-{sp['max']:.2f})"


def _need_inside(need: float, sp: dict[str, float]) -> str:
    if sp and sp["min"] <= need <= sp["max"]:
        return f" The target lies inside the per-round spread ({sp['min']:.2f}-{sp['max']:.2f}x)."
    return ""


def at_least(
    rows: Sequence[Row],
    workload: str,
    name: str,
    need: float,
    ours: str,
    other: str,
    ceiling: str | None = None,
    why: str = "",
) -> Goal:
    """Target ``name``: contender ``ours`` at least ``need`` times as fast as ``other`` in ``workload``.

    ``why`` (the structural cause, from profiles) follows a miss's figures.

    ``need`` below 1 reads "within a fraction of a floor": ours at least
    ``need`` times the floor's speed. With ``ceiling`` (a floor's label) the
    target is priced against what that floor achieves against ``other``:
    when the floor itself is under ``need``, no store that does more than the
    floor can meet it.
    """
    a, b = find(rows, workload, ours), find(rows, workload, other)
    if a is None or b is None:
        return Goal(name, f">= {need:g}x", ceiling or other, "not measured", None)
    ratio, sp = ratio_of(b, a)
    met = ratio >= need
    budget = b["median_us"] / need
    ceiling_text = f"{other}: {fmt_us(b['median_us'])}"
    cause = ""
    if ceiling is not None:
        c = find(rows, workload, ceiling)
        if c is not None:
            c_ratio, c_sp = ratio_of(b, c)
            ceiling_text = f"{ceiling} at {fmt_us(c['median_us'])}: {fmt_ratio(c_ratio, c_sp)} as fast as {other}"
            if not met:
                if c_ratio < need and a["median_us"] <= c["median_us"]:
                    cause = (
                        f"At the ceiling: {need:g}x needs {fmt_us(budget)} per op; the store takes "
                        f"{fmt_us(a['median_us'])}, no more than {ceiling} ({fmt_us(c['median_us'])}), which "
                        f"itself reaches only {c_ratio:.2f}x here."
                    )
                elif c_ratio < need:
                    cause = (
                        f"Beyond the ceiling: {need:g}x needs {fmt_us(budget)} per op, and {ceiling}, which does "
                        f"less than the store, takes {fmt_us(c['median_us'])} (the store {fmt_us(a['median_us'])})."
                    )
                else:
                    cause = (
                        f"{need:g}x needs {fmt_us(budget)} per op; the store takes {fmt_us(a['median_us'])}, "
                        f"{fmt_us(a['median_us'] - c['median_us'])} over {ceiling}."
                    )
    elif not met:
        cause = (
            f"{need:g}x of {other} needs {fmt_us(budget)} per op; the store takes {fmt_us(a['median_us'])}, "
            f"{fmt_us(a['median_us'] - b['median_us'])} over it."
        )
    if cause:
        cause += f" {why}" if why else ""
        cause += _need_inside(need, sp)
    return Goal(name, f">= {need:g}x", ceiling_text, fmt_ratio(ratio, sp, need), met, cause)


def at_most_slower(
    rows: Sequence[Row], workload: str, name: str, limit: float, ours: str, floor: str, why: str = ""
) -> Goal:
    """Target ``name``: ``ours`` takes at most ``limit`` times ``floor``'s time in ``workload``; ``why`` explains a miss."""
    a, b = find(rows, workload, ours), find(rows, workload, floor)
    if a is None or b is None:
        return Goal(name, f"<= {limit:g}x the time", floor, "not measured", None)
    ratio, sp = ratio_of(a, b)
    met = ratio <= limit
    cause = ""
    if not met:
        cause = (
            f"{limit:g}x needs {fmt_us(b['median_us'] * limit)} per query; the store takes "
            f"{fmt_us(a['median_us'])}, {fmt_us(a['median_us'] - b['median_us'])} over {floor}."
        )
        cause += f" {why}" if why else ""
        if sp and sp["min"] <= limit <= sp["max"]:
            cause += f" The limit lies inside the per-round spread ({sp['min']:.2f}-{sp['max']:.2f}x)."
    got = fmt_ratio(ratio, sp, limit) + " the time"
    return Goal(name, f"<= {limit:g}x the time", f"{floor}: {fmt_us(b['median_us'])}", got, met, cause)


def speedup_target(rows: Iterable[Row], workload: str, contender: str, need: float, name: str) -> Goal:
    """Target ``name``: agno_storage (the workload's first row) at least ``need`` times faster than ``contender``."""
    rows = list(rows)
    first = next((r for r in rows if r["workload"].startswith(workload)), None)
    if first is None:
        return Goal(name, f">= {need:g}x", contender, "not measured", None)
    return at_least(rows, workload, name, need, first["contender"], contender)


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
    """The results table: one line per (workload, contender), the speed-up with its min-max over rounds."""
    lines = [
        "| workload | contender | median per op | ops/s | agno_storage speed-up (min-max over rounds) | errors |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        extra = ""
        if r.get("extrapolated_s"):
            extra = f" (100k would take ~{r['extrapolated_s']:,.0f} s)" if r["extrapolated_s"] > 1 else ""
        if r.get("peak_rss_mib") is not None:
            extra += f"; peak RSS +{r['peak_rss_mib']:.1f} MiB"
        sp = r.get("spread")
        ratio = "—" if r is _first_of(rows, r) else fmt_ratio(r["speedup"], sp)
        lines.append(
            f"| {r['workload'][3:]} | {r['contender']}{extra} | {fmt_us(r['median_us'])} | {r['ops_per_s']:,.0f} | "
            f"{ratio} | {r['errors']} |"
        )
    return "\n".join(lines)


def _first_of(rows: Sequence[Row], row: Row) -> Row:
    """The first row of ``row``'s workload: the one every ratio of that workload is to."""
    return next(r for r in rows if r["workload"] == row["workload"])


def plans_table(rows: Sequence[Row]) -> str:
    """The query plan recorded on each row that has one."""
    lines = ["| query | contender | plan |", "|---|---|---|"]
    for r in rows:
        if r.get("plan"):
            lines.append(f"| {r['workload'][3:]} | {r['contender']} | `{r['plan']}` |")
    return "\n".join(lines)


def _met(met: bool | None) -> str:
    return "yes" if met else "not measured" if met is None else "**MISSED**"


def targets_table(targets: Sequence[Target]) -> str:
    """Simple targets as a markdown table; a miss in bold."""
    lines = ["| target | needed | measured | met |", "|---|---|---|---|"]
    for name, need, got, met in targets:
        lines.append(f"| {name} | {need} | {got} | {_met(met)} |")
    return "\n".join(lines)


def target_lines(targets: Sequence[Target]) -> list[str]:
    """Simple targets as terminal lines: ``ok``, ``MISS`` or ``--`` (not measured) first."""
    return [
        f"{'ok  ' if met else 'MISS' if met is not None else '--  '} {name}: {got} (needed {need})"
        for name, need, got, met in targets
    ]


def goals_table(goals: Sequence[Goal]) -> str:
    """Goals as a markdown table, each with the ceiling it was measured against; then every miss with its cause."""
    lines = [
        "| target | needed | measured against (ceiling) | measured (min-max over rounds) | met |",
        "|---|---|---|---|---|",
    ]
    for g in goals:
        lines.append(f"| {g.name} | {g.need} | {g.ceiling} | {g.got} | {_met(g.met)} |")
    misses = [g for g in goals if g.met is False]
    if misses:
        lines += ["", "Misses and their causes, from this run's figures:", ""]
        lines += [f"- **{g.name}**: {g.got}, needed {g.need}. {g.cause}".rstrip() for g in misses]
    return "\n".join(lines)


def goal_lines(goals: Sequence[Goal]) -> list[str]:
    """Goals as terminal lines: ``ok``, ``MISS`` or ``--`` (not measured) first, a miss's cause below it."""
    return [
        f"{'ok  ' if g.met else 'MISS' if g.met is not None else '--  '} {g.name}: {g.got} (needed {g.need}; "
        f"against {g.ceiling})" + (f"\n       {g.cause}" if g.cause else "")
        for g in goals
    ]
