"""agno 1.x metrics as agno 3.1.10's: names renamed, per-call lists summed, the rest in ``additional_metrics``."""

from __future__ import annotations

from collections.abc import Mapping
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
#: ``additional_metrics``, is among the fields). Kept per field set and key order: a run's metrics
#: have the same names, in the same order, run after run.
_MetricPlan = tuple[tuple[str, str, bool, bool, bool], ...]
_METRIC_PLANS: dict[frozenset[str], dict[tuple[str, ...], _MetricPlan]] = {}
#: Distinct key orders kept per field set; past it (metrics of ever new names) plans are not kept.
_METRIC_PLANS_KEPT = 256


def _metric_plan(keys: tuple[str, ...], fields: frozenset[str]) -> _MetricPlan:
    plans = _METRIC_PLANS.get(fields)
    if plans is None:
        plans = _METRIC_PLANS[fields] = {}
    plan = plans.get(keys)
    if plan is None:
        plan = tuple(
            (key, name, name in fields and name != "additional_metrics", name == "additional_metrics", name in fields)
            for key, name in ((k, METRIC_RENAMES.get(k, k)) for k in keys)
        )
        # Kept only for plain text keys (what JSON gives): a key of another type (a str subclass, a number)
        # is planned on every call, as it is, so a plan never stands for keys that merely compare equal.
        if len(plans) < _METRIC_PLANS_KEPT and all(type(k) is str for k in keys):
            plans[keys] = plan
    return plan


def convert_metrics(metrics: Any, fields: AbstractSet[str] = METRICS_FIELDS) -> tuple[dict[str, Any] | None, bool]:
    """1.x metrics as agno 3's; and whether anything was not carried over exactly (lists, unknown names).

    Names are renamed as agno's own v1_to_v2 does; a 1.x per-call list
    becomes its total (``time_to_first_token``: its first value); zeros and
    ``None`` are left out, as agno 3 leaves them; a name agno 3 has no field
    for goes to ``additional_metrics``.
    """
    if not is_mapping(metrics):
        return None, metrics is not None
    plan = _metric_plan(tuple(metrics), fields if type(fields) is frozenset else frozenset(fields))
    out: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    lossy = False
    for (key, name, is_field, is_additional, in_fields), value in zip(plan, metrics.values(), strict=True):
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


__all__ = ["convert_metrics", "is_mapping"]
