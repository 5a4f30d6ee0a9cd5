"""agno 1.x metrics as agno 3.1.10's: names renamed, per-call lists summed, the rest in ``additional_metrics``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from agno_storage.agno3.fields import METRIC_RENAMES, METRICS_FIELDS

_NUMBERS = (int, float)


def is_mapping(value: Any) -> bool:
    """``isinstance(value, Mapping)``, with the JSON decoder's plain dict checked first (the ABC check is slow)."""
    return type(value) is dict or isinstance(value, Mapping)


def _sum(values: Any) -> Any:
    """A 1.x per-call metric list as one number (agno 3 keeps totals); a scalar as it is.

    A list holding anything but numbers (a bool, a None) has no total: None.
    """
    if type(values) is list and len(values) == 1:  # one model call: the common case
        only = values[0]
        kind = type(only)
        if kind is int or kind is float:
            return 0 + only  # what sum() gives
    if isinstance(values, list):
        for v in values:
            if type(v) is bool or not isinstance(v, _NUMBERS):
                return None
        return sum(values) if values else 0
    return values


#: How convert_metrics treats one 1.x metric name: (name, agno 3 name, is a plain agno 3 field, is
#: ``additional_metrics``, is among the fields).
_MetricPlan = tuple[tuple[str, str, bool, bool, bool], ...]
#: The conversion of a metrics object's values, in the key order of the plan it was made for.
_Converter = Callable[[Iterable[Any]], tuple[dict[str, Any], bool]]
#: Per field set and key order, the conversion :func:`_compile` made of its plan: a run's metrics have the same
#: names, in the same order, run after run.
_CONVERTERS: dict[frozenset[str], dict[tuple[str, ...], _Converter]] = {}
#: Distinct key orders kept per field set; past it (metrics of ever new names) conversions are not kept.
_METRIC_PLANS_KEPT = 256


def _metric_plan(keys: tuple[str, ...], fields: frozenset[str]) -> _MetricPlan:
    return tuple(
        (key, name, name in fields and name != "additional_metrics", name == "additional_metrics", name in fields)
        for key, name in ((k, METRIC_RENAMES.get(k, k)) for k in keys)
    )


def _convert_by_plan(plan: _MetricPlan, values: Iterable[Any]) -> tuple[dict[str, Any], bool]:
    """What :func:`convert_metrics` gives of a metrics object with ``plan``'s keys and these ``values``."""
    out: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    lossy = False
    for (key, name, is_field, is_additional, in_fields), value in zip(plan, values, strict=True):
        if isinstance(value, list):
            lossy = True
            if name != "time_to_first_token":
                value = _sum(value)
            elif value and value[0] is not None:
                value = value[0]
            else:
                value = next((v for v in value if v is not None), None)
        if is_field:
            if value is not None and value != 0:
                out[name] = value
        elif is_additional and isinstance(value, Mapping):
            extra.update(value)
        elif value not in (None, 0, [], {}):
            lossy = True
            extra[key] = value
        elif not in_fields:
            lossy = True
    if extra:
        out["additional_metrics"] = extra
    return out, lossy


def _compile(plan: _MetricPlan) -> _Converter:
    """:func:`_convert_by_plan` of ``plan`` with its loop unrolled: one function per key order, made once.

    A run's metrics are converted twice per run (its own, its reply's); the
    loop's tests of each name's plan cost a third of that. The names are
    never written into the code: it reads them from tuples (``K``, ``N``),
    so a stored name is only ever data. ``tests/test_agno3_metrics.py``
    checks the compiled function against the loop.
    """
    lines = ["def convert(values):", f"    [{', '.join(f'v{i}' for i in range(len(plan)))}] = values"]
    lines += ["    out = {}", "    extra = {}", "    lossy = False"]
    for i, (_key, name, is_field, is_additional, in_fields) in enumerate(plan):
        v = f"v{i}"
        # One model call's number (agno 1.x's common case) first: what _sum (or the first value) gives of it.
        first = f"0 + {v}[0]" if name != "time_to_first_token" else f"{v}[0]"
        lines += [
            f"    if type({v}) is list and len({v}) == 1 and type({v}[0]) in NUMBERS:",
            "        lossy = True",
            f"        {v} = {first}",
            f"    elif isinstance({v}, list):",
            "        lossy = True",
        ]
        if name != "time_to_first_token":
            lines += [f"        {v} = _sum({v})"]
        else:
            lines += [
                f"        if {v} and {v}[0] is not None:",
                f"            {v} = {v}[0]",
                "        else:",
                f"            {v} = next((x for x in {v} if x is not None), None)",
            ]
        if is_field:
            lines += [f"    if {v} is not None and {v} != 0:", f"        out[N[{i}]] = {v}"]
            continue
        test = "if"
        if is_additional:
            lines += [f"    if isinstance({v}, Mapping):", f"        extra.update({v})"]
            test = "elif"
        # NOTHING: the values left out, made once (the literal built a list, a dict and a tuple each time).
        lines += [f"    {test} {v} not in NOTHING:", "        lossy = True", f"        extra[K[{i}]] = {v}"]
        if not in_fields:
            lines += ["    else:", "        lossy = True"]
    lines += ["    if extra:", '        out["additional_metrics"] = extra', "    return out, lossy"]
    namespace: dict[str, Any] = {
        "K": tuple(p[0] for p in plan),
        "N": tuple(p[1] for p in plan),
        "NUMBERS": _NUMBERS,
        "NOTHING": (None, 0, [], {}),
        "_sum": _sum,
        "Mapping": Mapping,
    }
    exec(compile("\n".join(lines), f"<metrics of {len(plan)} names>", "exec"), namespace)
    converter: _Converter = namespace["convert"]
    return converter


#: The conversions made for runs' and messages' metrics (:data:`METRICS_FIELDS`), by key order: what
#: :func:`convert_metrics` gives of a dict of those keys in that order is ``RUN_CONVERTERS[keys](dict.values())``.
RUN_CONVERTERS = _CONVERTERS[METRICS_FIELDS] = {}


def convert_metrics(metrics: Any, fields: AbstractSet[str] = METRICS_FIELDS) -> tuple[dict[str, Any] | None, bool]:
    """1.x metrics as agno 3's; and whether anything was not carried over exactly (lists, unknown names).

    Names are renamed as agno's own v1_to_v2 does; a 1.x per-call list
    becomes its total (``time_to_first_token``: its first value); zeros and
    ``None`` are left out, as agno 3 leaves them; a name agno 3 has no field
    for goes to ``additional_metrics``.
    """
    if not is_mapping(metrics):
        return None, metrics is not None
    keys = tuple(metrics)
    field_set = fields if type(fields) is frozenset else frozenset(fields)
    converters = _CONVERTERS.get(field_set)
    if converters is None:
        converters = _CONVERTERS[field_set] = {}
    convert = converters.get(keys)
    if convert is not None:
        return convert(metrics.values())
    plan = _metric_plan(keys, field_set)
    # Kept only for plain text keys (what JSON gives): a key of another type (a str subclass, a number) is
    # planned on every call, as it is, so a conversion never stands for keys that merely compare equal.
    if len(converters) < _METRIC_PLANS_KEPT and all(type(k) is str for k in keys):
        convert = converters[keys] = _compile(plan)
        return convert(metrics.values())
    return _convert_by_plan(plan, metrics.values())


__all__ = ["convert_metrics", "is_mapping"]
