"""Compare a window of traffic with the baseline: distances per feature and Model Monitor's checks.

Distances (per feature, on the values present):

- **L-inf** (the ``baseline_drift_check`` distance). Numeric: the two-sample Kolmogorov-Smirnov
  statistic ``max_x |F_baseline(x) - F_window(x)|``, with ``F_baseline`` read from the baseline's
  KLL sketch (accurate to about 1/k = 0.0005) and ``F_window`` exact. Categorical:
  ``max_v |p_baseline(v) - p_window(v)|`` over the union of categories (Model Monitor's
  ``LInfinity``). A feature drifts when the distance exceeds the threshold:
  ``comparison_method`` *Simple* uses ``comparison_threshold`` (categorical:
  ``categorical_comparison_threshold``); *Robust* uses ``max(threshold, c(alpha) *
  sqrt((n + m) / (n m)))``, the KS critical value for a baseline of m and a window of n values,
  with ``c(alpha) = sqrt(-ln(alpha / 2) / 2)``, so sampling noise of a small window is not drift.
- **PSI** (reported, not a Model Monitor field): ``sum (w - b) ln(w / b)`` over the baseline's
  decile buckets (numeric; ties merged) or its categories plus one bucket for unseen values,
  shares floored at 1e-4. ``psi_alert`` marks PSI above ``psi_threshold`` (0.2 = the usual
  "significant shift").

Checks (violation types of Model Monitor): ``data_type_check`` (share of values not of the
baseline type above ``datatype_check_threshold``; Integral accepts integral numbers only,
Fractional accepts any number), ``completeness_check`` (completeness below the baseline's
minus ``completeness_tolerance``; Robust: at least 3 binomial standard errors of the window),
``baseline_drift_check``, ``missing_column_check``,
``extra_column_check`` and ``categorical_values_check`` (share of values outside the baseline
domain above ``domain_content_threshold``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from mlops.monitoring.statistics import INTEGRAL, STRING, sketch_values, typed_column
from mlops.monitoring.violations import violation

PSI_FLOOR = 1e-4
DISTRIBUTION_CHECKS = ("baseline_drift_check", "categorical_values_check")


@dataclass(frozen=True)
class DriftSettings:
    """Thresholds of the drift job (pipeline.yaml ``monitoring``)."""

    comparison_method: str = "Robust"
    comparison_threshold: float = 0.1
    categorical_comparison_threshold: float = 0.1
    robust_alpha: float = 0.001
    psi_threshold: float = 0.2
    completeness_tolerance: float = 0.05
    datatype_check_threshold: float = 0.1
    domain_content_threshold: float = 0.1


@dataclass
class FeatureDrift:
    """One feature's comparison (goes to drift_summary.json and the report)."""

    name: str
    kind: str  # numeric | categorical
    inferred_type: str
    baseline_present: int
    window_present: int
    window_missing: int
    linf: float | None = None
    threshold: float | None = None
    psi: float | None = None
    psi_alert: bool = False
    drifted: bool = False
    completeness: float | None = None
    out_of_domain_share: float | None = None
    type_mismatch_share: float | None = None
    typed: Any = field(default=None, repr=False, compare=False)  # the TypedColumn, reused for window statistics
    baseline_shares: list[float] = field(default_factory=list)
    window_shares: list[float] = field(default_factory=list)
    bucket_labels: list[str] = field(default_factory=list)


def ks_critical(alpha: float, n: int, m: int) -> float:
    """Two-sample KS critical value at level ``alpha`` for samples of n and m."""
    return math.sqrt(-math.log(alpha / 2) / 2) * math.sqrt((n + m) / (n * m))


def threshold_for(base: float, settings: DriftSettings, n: int, m: int) -> float:
    if settings.comparison_method == "Robust" and n and m:
        return max(base, ks_critical(settings.robust_alpha, n, m))
    return base


def completeness_tolerance(expected: float, rows: int, settings: DriftSettings) -> float:
    """``completeness_tolerance``, widened (Robust) to 3 binomial standard errors of a window of ``rows``."""
    if settings.comparison_method == "Robust" and rows:
        return max(settings.completeness_tolerance, 3 * math.sqrt(expected * (1 - expected) / rows))
    return settings.completeness_tolerance


def psi(baseline: np.ndarray, window: np.ndarray) -> float:
    """Population stability index of two share vectors (floored at PSI_FLOOR)."""
    b = np.maximum(baseline, PSI_FLOOR)
    w = np.maximum(window, PSI_FLOOR)
    return float(np.sum((w - b) * np.log(w / b)))


def weighted_quantiles(items: np.ndarray, weights: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """Quantiles of sorted weighted items (inverted CDF; ``np.quantile(weights=...)`` needs numpy 2)."""
    cum = np.cumsum(weights) / weights.sum()
    return items[np.minimum(np.searchsorted(cum, qs, side="left"), len(items) - 1)]


def numeric_distance(sketch: dict[str, Any], values: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, list[str]]:
    """(L-inf between the sketch's CDF and the values' CDF, baseline decile shares, window shares, labels)."""
    items, weights = sketch_values(sketch)
    ordered = np.sort(values)
    cum = np.cumsum(weights) / weights.sum()
    grid = np.union1d(items, np.quantile(ordered, np.linspace(0, 1, min(len(ordered), 4097))))
    f_base = np.concatenate([[0.0], cum])[np.searchsorted(items, grid, side="right")]
    f_win = np.searchsorted(ordered, grid, side="right") / len(ordered)
    linf = float(np.max(np.abs(f_base - f_win)))
    edges = np.unique(weighted_quantiles(items, weights, np.linspace(0.1, 0.9, 9)))
    base_idx = np.searchsorted(edges, items, side="left")
    base_shares = np.bincount(base_idx, weights=weights, minlength=len(edges) + 1) / weights.sum()
    win_shares = np.bincount(np.searchsorted(edges, ordered, side="left"), minlength=len(edges) + 1) / len(ordered)
    bounds = [-math.inf, *edges.tolist(), math.inf]
    labels = [f"({_fmt(bounds[i])}, {_fmt(bounds[i + 1])}]" for i in range(len(bounds) - 1)]
    return linf, base_shares, win_shares, labels


def _fmt(value: float) -> str:
    return "inf" if value == math.inf else "-inf" if value == -math.inf else f"{value:.4g}"


def categorical_distance(
    buckets: list[dict[str, Any]], values: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray, list[str], float]:
    """(L-inf, baseline shares, window shares, category labels, share of window values unseen in the baseline)."""
    base = {str(b["value"]): float(b["count"]) for b in buckets}
    total = sum(base.values()) or 1.0
    counts = pd.Series(values, dtype=object).astype(str).value_counts()
    n = max(int(counts.sum()), 1)
    labels = list(base)
    base_shares = np.array([base[v] / total for v in labels] + [0.0])
    win_shares = np.array([counts.get(v, 0) / n for v in labels] + [counts[~counts.index.isin(labels)].sum() / n])
    unseen = counts[~counts.index.isin(labels)]
    linf = max(
        float(np.max(np.abs(base_shares[:-1] - win_shares[:-1]))) if labels else 0.0,
        float(unseen.max() / n) if len(unseen) else 0.0,
    )
    return linf, base_shares, win_shares, [*labels, "(unseen)"], float(win_shares[-1])


def compare_feature(
    stat: dict[str, Any], constraint: dict[str, Any], column: pd.Series, rows: int, settings: DriftSettings
) -> tuple[FeatureDrift, list[dict[str, str]]]:
    """Compare one feature's window values with its baseline statistics and constraint."""
    name, expected = stat["name"], constraint.get("inferred_type", stat["inferred_type"])
    categorical = expected == STRING
    typed = typed_column(column, strings=categorical)
    section = stat["string_statistics" if categorical else "numerical_statistics"]
    m = int(section["common"]["num_present"])
    result = FeatureDrift(
        name, "categorical" if categorical else "numeric", expected, m, typed.num_present, typed.num_missing
    )
    result.typed = typed
    result.completeness = typed.num_present / rows if rows else None
    found = _completeness_check(result, constraint, rows, settings)
    if typed.num_present == 0:
        return result, found
    wrong = typed.num_string + (typed.num_fractional if expected == INTEGRAL else 0) if not categorical else 0
    result.type_mismatch_share = wrong / typed.num_present
    found += _data_type_check(result, settings)
    if categorical:
        linf, base_shares, win_shares, labels, _unseen = categorical_distance(
            section["distribution"]["categorical"]["buckets"], typed.strings
        )
        base_threshold = settings.categorical_comparison_threshold
        found += _domain_check(result, constraint, settings)
    else:
        if not len(typed.numbers):
            return result, found
        linf, base_shares, win_shares, labels = numeric_distance(
            section["distribution"]["kll"]["sketch"], typed.numbers
        )
        base_threshold = settings.comparison_threshold
    n = len(typed.strings) if categorical else len(typed.numbers)
    result.linf, result.threshold = linf, threshold_for(base_threshold, settings, n, m)
    result.psi = psi(base_shares, win_shares)
    result.psi_alert = result.psi > settings.psi_threshold
    result.baseline_shares, result.window_shares, result.bucket_labels = (
        [round(float(v), 6) for v in base_shares],
        [round(float(v), 6) for v in win_shares],
        labels,
    )
    if linf > result.threshold:
        result.drifted = True
        found.append(
            violation(
                name,
                "baseline_drift_check",
                f"Baseline drift distance: {linf:.4f} exceeds threshold: {result.threshold:.4f}",
            )
        )
    if any(v["constraint_check_type"] in DISTRIBUTION_CHECKS for v in found):
        result.drifted = True
    return result, found


def _completeness_check(
    result: FeatureDrift, constraint: dict[str, Any], rows: int, settings: DriftSettings
) -> list[dict[str, str]]:
    """A completeness_check violation when too few of the window's rows have the feature."""
    expected_completeness = float(constraint.get("completeness", 1.0))
    tolerance = completeness_tolerance(expected_completeness, rows, settings)
    if result.completeness is None or result.completeness >= expected_completeness - tolerance:
        return []
    return [
        violation(
            result.name,
            "completeness_check",
            f"Data completeness requirement is not met. Expected completeness: "
            f"{expected_completeness:.2%} (tolerance {tolerance:.1%}). Observed: only "
            f"{result.completeness:.2%} of "
            f"data is complete.",
        )
    ]


def _data_type_check(result: FeatureDrift, settings: DriftSettings) -> list[dict[str, str]]:
    """A data_type_check violation when too many present values are not of the baseline's type."""
    share, expected = result.type_mismatch_share or 0.0, result.inferred_type
    if share <= settings.datatype_check_threshold:
        return []
    return [
        violation(
            result.name,
            "data_type_check",
            f"Data type match requirement is not met. Expected data type: {expected}, expected "
            f"match: {1 - settings.datatype_check_threshold:.0%}. Observed: only "
            f"{1 - share:.1%} of data is {expected}.",
        )
    ]


def _domain_check(result: FeatureDrift, constraint: dict[str, Any], settings: DriftSettings) -> list[dict[str, str]]:
    """A categorical_values_check violation when too many values are outside the baseline's domain."""
    domain = constraint.get("string_constraints", {}).get("domains")
    if domain is None:
        return []
    result.out_of_domain_share = float((~pd.Series(result.typed.strings).isin(domain)).mean())
    if result.out_of_domain_share <= settings.domain_content_threshold:
        return []
    return [
        violation(
            result.name,
            "categorical_values_check",
            f"Data content requirement is not met: {result.out_of_domain_share:.1%} of values "
            f"are outside the baseline domain (threshold "
            f"{settings.domain_content_threshold:.0%}).",
        )
    ]


def compare(
    frame: pd.DataFrame, statistics: dict[str, Any], constraints: dict[str, Any], settings: DriftSettings
) -> tuple[list[FeatureDrift], list[dict[str, str]]]:
    """Compare a window's frame with the baseline; returns per-feature results and all violations."""
    by_name = {c["name"]: c for c in constraints["features"]}
    known = [f["name"] for f in statistics["features"]]
    results, found = [], []
    for stat in statistics["features"]:
        name = stat["name"]
        if name not in frame.columns:
            found.append(
                violation(
                    name,
                    "missing_column_check",
                    f"There are missing columns in current dataset: {name} is in the baseline but not "
                    "in any captured request.",
                )
            )
            continue
        result, violations = compare_feature(stat, by_name.get(name, {}), frame[name], len(frame), settings)
        results.append(result)
        found += violations
    for extra in [c for c in frame.columns if c not in known]:
        found.append(
            violation(
                extra,
                "extra_column_check",
                f"There are extra columns in current dataset: {extra} is not a baseline feature.",
            )
        )
    return results, found


def drift_share(results: list[FeatureDrift], feature_count: int) -> float:
    """Share of the baseline's features whose distribution drifted in the window."""
    return sum(r.drifted for r in results) / feature_count if feature_count else 0.0


def as_dicts(results: list[FeatureDrift]) -> list[dict[str, Any]]:
    return [{f.name: getattr(r, f.name) for f in fields(r) if f.name != "typed"} for r in results]
