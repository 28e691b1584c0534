"""Statistics of an A/B test over captured traffic: per-variant mAP and bootstrap confidence intervals.

Job-side (the A/B analysis processing job imports it; numpy only). mAP is the training gate's metric
(:func:`mlops.training.metrics.mean_average_precision`: the macro mean of one-vs-rest average
precision over the classes present), so a variant's live mAP and its evaluation mAP are comparable.

Confidence intervals are percentile bootstraps: each variant's labeled rows are resampled with
replacement ``samples`` times (the variants are independent samples of traffic, so each is resampled
on its own), and the interval of the challenger-minus-champion difference comes from the pairs of
resampled mAPs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlops.training.metrics import mean_average_precision


def bootstrap_maps(
    labels: Sequence[str], proba: np.ndarray, classes: Sequence[str], samples: int, rng: np.random.Generator
) -> np.ndarray:
    """mAP of ``samples`` resamples (with replacement) of the rows; NaN where a resample has no positives."""
    truth = np.asarray(labels)
    n = len(truth)
    values = np.empty(samples)
    for i in range(samples):
        pick = rng.integers(0, n, n)
        try:
            values[i] = mean_average_precision(truth[pick], proba[pick], classes)
        except ValueError:
            values[i] = np.nan
    return values


def interval(values: np.ndarray, confidence: float) -> list[float]:
    """The two-sided percentile interval at ``confidence`` of the finite ``values``."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return [float("nan"), float("nan")]
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return [float(low), float(high)]


def variant_quality(
    labels: Sequence[str], proba: np.ndarray, classes: Sequence[str], samples: int, confidence: float, seed: int
) -> tuple[dict[str, object], np.ndarray]:
    """``{map, map_ci, labeled_rows}`` of one variant and its bootstrap mAPs (for the difference interval)."""
    rng = np.random.default_rng(seed)
    point = mean_average_precision(list(labels), proba, classes)
    maps = bootstrap_maps(labels, proba, classes, samples, rng)
    return {"map": point, "map_ci": interval(maps, confidence), "labeled_rows": len(labels)}, maps


def difference(challenger: np.ndarray, champion: np.ndarray, confidence: float) -> list[float]:
    """Interval of challenger mAP minus champion mAP from independent bootstrap draws of each."""
    return interval(challenger - champion, confidence)
