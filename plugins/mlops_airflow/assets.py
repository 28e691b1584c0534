"""The Assets that chain the pipeline's DAGs.

    raw_data -> validated_features -> registered_model -> endpoint_live -> drift_detected
                                            ^-------------- retraining -------------'  model_quality_degraded
                                            ^-------------- retraining ----------------------------'

Names are logical and identical on both targets; where the data lives is in each event's
``extra`` (row counts, lake URIs, model version, mAP, drift share, ...).

The URIs use a user-defined scheme, which Airflow marks with the ``x-`` prefix: it leaves such
URIs as they are, where any other scheme makes the first Asset of a parse load every provider's
URI normaliser (the Amazon provider's imports ``S3Hook`` and boto3, 0.4 s of CPU per DAG file).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import Asset

SCHEME = "x-mlops"

RAW_DATA = Asset(name="mlops_raw_data", uri=f"{SCHEME}://lake/raw", group="mlops")
VALIDATED_FEATURES = Asset(name="mlops_validated_features", uri=f"{SCHEME}://lake/curated/features", group="mlops")
REGISTERED_MODEL = Asset(name="mlops_registered_model", uri=f"{SCHEME}://registry/model", group="mlops")
ENDPOINT_LIVE = Asset(name="mlops_endpoint_live", uri=f"{SCHEME}://serving/endpoint", group="mlops")
DRIFT_DETECTED = Asset(name="mlops_drift_detected", uri=f"{SCHEME}://monitoring/drift", group="mlops")
MODEL_QUALITY_DEGRADED = Asset(
    name="mlops_model_quality_degraded", uri=f"{SCHEME}://monitoring/model-quality", group="mlops"
)


def triggering_events(context: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(asset name, extra)`` of each event that triggered this run (none for a manual run), **oldest first**.

    Airflow lists a run's triggering events per asset in no set order, and one run can consume several:
    the first scheduled run after ``make demo`` consumed the demo's two features events and the scheduler's
    own, and took its data from the oldest, a snapshot since pruned. Callers take the newest that says
    what they need: the last of this list."""
    events = [
        (getattr(asset, "name", str(asset)), event)
        for asset, asset_events in (context.get("triggering_asset_events") or {}).items()
        for event in asset_events
    ]
    events.sort(key=lambda pair: pair[1].timestamp)
    return [(name, dict(event.extra or {})) for name, event in events]
