"""The baseline of a model: ``statistics.json`` and ``constraints.json`` from its training data.

``constraints.json`` follows Model Monitor's schema: per feature ``inferred_type``,
``completeness`` (the observed non-null share), ``num_constraints.is_non_negative`` and, for
low-cardinality strings, ``string_constraints.domains``; and ``monitoring_config`` with the
thresholds of the drift job (``distribution_constraints``: ``comparison_threshold``,
``comparison_method`` Simple/Robust, ``categorical_comparison_threshold``,
``categorical_drift_method`` LInfinity).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from mlops.monitoring.statistics import STRING, dataset_statistics, feature_counts

MAX_DOMAIN = 100  # Model Monitor lists domains "for small cardinality"


@dataclass(frozen=True)
class Thresholds:
    """The ``monitoring_config`` values (pipeline.yaml ``monitoring``)."""

    comparison_threshold: float = 0.1
    categorical_comparison_threshold: float = 0.1
    comparison_method: str = "Robust"
    datatype_check_threshold: float = 0.1
    domain_content_threshold: float = 0.1

    def monitoring_config(self) -> dict[str, Any]:
        return {
            "evaluate_constraints": "Enabled",
            "emit_metrics": "Enabled",
            "datatype_check_threshold": self.datatype_check_threshold,
            "domain_content_threshold": self.domain_content_threshold,
            "distribution_constraints": {
                "perform_comparison": "Enabled",
                "comparison_threshold": self.comparison_threshold,
                "comparison_method": self.comparison_method,
                "categorical_comparison_threshold": self.categorical_comparison_threshold,
                "categorical_drift_method": "LInfinity",
            },
        }


def feature_constraint(feature: dict[str, Any]) -> dict[str, Any]:
    """The suggested constraint of one statistics.json feature."""
    counts = feature_counts(feature)
    total = counts["num_present"] + counts["num_missing"]
    constraint: dict[str, Any] = {
        "name": feature["name"],
        "inferred_type": feature["inferred_type"],
        "completeness": round(counts["num_present"] / total, 6) if total else 1.0,
    }
    if feature["inferred_type"] == STRING:
        buckets = feature["string_statistics"]["distribution"]["categorical"]["buckets"]
        if len(buckets) <= MAX_DOMAIN:
            constraint["string_constraints"] = {"domains": sorted(b["value"] for b in buckets)}
    else:
        constraint["num_constraints"] = {"is_non_negative": feature["numerical_statistics"]["min"] >= 0}
    return constraint


def suggest_constraints(statistics: dict[str, Any], thresholds: Thresholds | None = None) -> dict[str, Any]:
    """constraints.json suggested from a baseline's statistics.json."""
    return {
        "version": 0.0,
        "features": [feature_constraint(f) for f in statistics["features"]],
        "monitoring_config": (thresholds or Thresholds()).monitoring_config(),
    }


def compute_baseline(
    frame: pd.DataFrame, numeric: list[str], categorical: list[str], thresholds: Thresholds | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(statistics.json, constraints.json) of a training frame's feature columns.

    Raises ValueError naming the columns when a feature of the spec is not in the frame.
    """
    missing = [c for c in (*numeric, *categorical) if c not in frame.columns]
    if missing:
        raise ValueError(f"training data lacks feature column(s) {missing}; columns: {list(frame.columns)}")
    if frame.empty:
        raise ValueError("training data has no rows; a baseline needs the model's training split")
    statistics = dataset_statistics(frame, list(numeric), list(categorical))
    return statistics, suggest_constraints(statistics, thresholds)
