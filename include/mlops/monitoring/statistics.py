"""Deequ-style dataset statistics in Model Monitor's ``statistics.json`` schema.

Per feature: ``inferred_type`` (Integral / Fractional / String), ``common`` counts, and

- numeric: mean, sum, std_dev, min, max and ``distribution.kll`` with 10 equal-width
  ``buckets`` between min and max (what Model Monitor materialises) plus a quantile
  ``sketch`` (``parameters`` c/k and ``data``: one list of items per KLL level; an item on
  level h stands for 2^h values). Our sketch is a systematic sample of the sorted values on one
  level (exact to 1/k in rank), which is what drift distances are computed from;
- string: ``distinct_count`` and ``distribution.categorical.buckets`` [{value, count}].

Values are typed one by one, as Model Monitor does: a value is Integral when it is a number
with no fractional part (``3``, ``"3"``, ``3.0``), Fractional when it is another finite number,
String otherwise; ``None``, NaN and ``""`` are missing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

INTEGRAL, FRACTIONAL, STRING = "Integral", "Fractional", "String"
KLL_C, KLL_K = 0.64, 2048
BUCKETS = 10


@dataclass(frozen=True)
class TypedColumn:
    """One column split by value type: the numeric values present and the type counts."""

    numbers: np.ndarray  # float64, present numeric values
    strings: np.ndarray  # object, present values as str (every present value)
    num_missing: int
    num_integral: int
    num_fractional: int
    num_string: int

    @property
    def num_present(self) -> int:
        return self.num_integral + self.num_fractional + self.num_string


def typed_column(series: pd.Series, *, strings: bool = False) -> TypedColumn:
    """Type every value of ``series`` (vectorised; numeric dtypes take a fast path).

    ``strings``: a categorical feature: keep the present values as text, and count them all as
    String without parsing numbers (a String feature accepts any value, so the split is unused).
    """
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        values = series.astype("float64").to_numpy()
        present = ~np.isnan(values)
        numbers = values[present]
        finite = np.isfinite(numbers)
        integral = int(np.count_nonzero(finite & (np.floor(numbers) == numbers)))
        text = series[present].astype(str).to_numpy(dtype=object) if strings else np.empty(0, dtype=object)
        return TypedColumn(
            numbers[finite], text, int((~present).sum()), integral, int(finite.sum()) - integral, int((~finite).sum())
        )
    objects = series.astype(object)
    text = objects.where(objects.isna(), objects.astype(str))
    missing = objects.isna().to_numpy() | (text == "").to_numpy() | text.isin(["nan", "NaN", "None", "null"]).to_numpy()
    present_text = text[~missing]
    if strings:
        return TypedColumn(
            np.empty(0), present_text.to_numpy(dtype=object), int(missing.sum()), 0, 0, len(present_text)
        )
    parsed = pd.to_numeric(present_text, errors="coerce").to_numpy(dtype="float64")
    numeric = np.isfinite(parsed)
    numbers = parsed[numeric]
    integral = int(np.count_nonzero(np.floor(numbers) == numbers))
    return TypedColumn(
        numbers,
        present_text.to_numpy(dtype=object),
        int(missing.sum()),
        integral,
        int(numeric.sum()) - integral,
        int((~numeric).sum()),
    )


def numeric_type(column: TypedColumn) -> str:
    """Integral when every present value is integral, else Fractional (String when nothing is numeric)."""
    if column.num_present and column.num_string == column.num_present:
        return STRING
    return FRACTIONAL if column.num_fractional or column.num_string else INTEGRAL


def kll_sketch(values: np.ndarray, k: int = KLL_K) -> dict[str, Any]:
    """A one-level KLL-shaped sketch: every 2^h-th sorted value on level h (h = 0 when n <= k)."""
    ordered = np.sort(values)
    n = len(ordered)
    level = 0 if n <= k else math.ceil(math.log2(n / k))
    step = 2**level
    items = ordered[step // 2 :: step] if level else ordered
    return {"parameters": {"c": KLL_C, "k": float(k)}, "data": [[] for _ in range(level)] + [items.tolist()]}


def sketch_values(sketch: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(sorted items, their weights 2^level) of a KLL sketch."""
    items, weights = [], []
    for level, level_items in enumerate(sketch.get("data", [])):
        items.extend(level_items)
        weights.extend([2.0**level] * len(level_items))
    order = np.argsort(np.asarray(items, dtype="float64"), kind="stable")
    return np.asarray(items, dtype="float64")[order], np.asarray(weights, dtype="float64")[order]


def equal_width_buckets(values: np.ndarray, buckets: int = BUCKETS) -> list[dict[str, float]]:
    """``buckets`` equal-width buckets between min and max with their counts (upper bound inclusive)."""
    if len(values) == 0:
        return []
    low, high = float(values.min()), float(values.max())
    edges = np.linspace(low, high, buckets + 1) if high > low else np.array([low] * (buckets + 1))
    index = (
        np.clip(np.searchsorted(edges, values, side="left") - 1, 0, buckets - 1)
        if high > low
        else (np.zeros(len(values), dtype=int))
    )
    counts = np.bincount(index, minlength=buckets)
    return [
        {"lower_bound": float(edges[i]), "upper_bound": float(edges[i + 1]), "count": float(counts[i])}
        for i in range(buckets)
    ]


def numeric_feature(name: str, column: TypedColumn, inferred_type: str | None = None) -> dict[str, Any]:
    """One numeric feature's entry of statistics.json."""
    values = column.numbers
    stats: dict[str, Any] = {"common": {"num_present": column.num_present, "num_missing": column.num_missing}}
    if len(values):
        stats.update(
            mean=float(values.mean()),
            sum=float(values.sum()),
            std_dev=float(values.std()),
            min=float(values.min()),
            max=float(values.max()),
        )
    else:
        stats.update(mean=0.0, sum=0.0, std_dev=0.0, min=0.0, max=0.0)
    stats["distribution"] = {"kll": {"buckets": equal_width_buckets(values), "sketch": kll_sketch(values)}}
    return {"name": name, "inferred_type": inferred_type or numeric_type(column), "numerical_statistics": stats}


def string_feature(name: str, column: TypedColumn) -> dict[str, Any]:
    """One categorical feature's entry of statistics.json (buckets by descending count)."""
    counts = pd.Series(column.strings, dtype=object).value_counts(sort=False)
    buckets = sorted(((str(v), int(c)) for v, c in counts.items()), key=lambda vc: (-vc[1], vc[0]))
    return {
        "name": name,
        "inferred_type": STRING,
        "string_statistics": {
            "common": {"num_present": column.num_present, "num_missing": column.num_missing},
            "distinct_count": float(len(buckets)),
            "distribution": {"categorical": {"buckets": [{"value": v, "count": float(c)} for v, c in buckets]}},
        },
    }


def dataset_statistics(
    frame: pd.DataFrame, numeric: list[str], categorical: list[str], typed: dict[str, TypedColumn] | None = None
) -> dict[str, Any]:
    """statistics.json of ``frame``: numeric then categorical features, in the given order.

    ``typed``: columns already typed (by the drift comparison), reused instead of typing them again.
    """
    typed = typed or {}

    def column(name: str, strings: bool) -> TypedColumn:
        return typed[name] if name in typed else typed_column(frame[name], strings=strings)

    features = [numeric_feature(c, column(c, False)) for c in numeric if c in frame.columns]
    features += [string_feature(c, column(c, True)) for c in categorical if c in frame.columns]
    return {"version": 0.0, "dataset": {"item_count": float(len(frame))}, "features": features}


def feature_counts(feature: dict[str, Any]) -> dict[str, int]:
    """``num_present`` / ``num_missing`` of a statistics.json feature."""
    section = feature.get("numerical_statistics") or feature.get("string_statistics") or {}
    common = section.get("common", {})
    return {"num_present": int(common.get("num_present", 0)), "num_missing": int(common.get("num_missing", 0))}
