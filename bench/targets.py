"""Targets of bench/ops.py and bench/agno3.py as a markdown table and as terminal lines.

A target is (name, what is needed, what was measured, met); met is None when
it was not measured, which the report says as loudly as a miss.
"""

from __future__ import annotations

from collections.abc import Sequence

#: (target, requirement, measured, met); met is None when not measured.
Target = tuple[str, str, str, bool | None]


def _verdict(met: bool | None) -> str:
    return "yes" if met else "not measured" if met is None else "**MISSED**"


def markdown(targets: Sequence[Target]) -> str:
    """The targets as a markdown table; a miss in bold."""
    lines = ["| target | needed | measured | met |", "|---|---|---|---|"]
    lines += [f"| {name} | {need} | {got} | {_verdict(met)} |" for name, need, got, met in targets]
    return "\n".join(lines)


def terminal(targets: Sequence[Target]) -> list[str]:
    """One line per target, ``ok``, ``MISS`` or ``--`` (not measured) first."""
    return [
        f"{'ok  ' if met else 'MISS' if met is not None else '--  '} {name}: {got} (needed {need})"
        for name, need, got, met in targets
    ]
