"""The Assets that chain the pipeline's DAGs.

    raw_data -> validated_features -> registered_model -> endpoint_live -> drift_detected
                                            ^-------------- retraining -------------'  model_quality_degraded
                                            ^-------------- retraining ----------------------------'

Names are logical and identical on both targets; where the data lives is in each event's
``extra`` (row counts, lake URIs, model version, mAP, drift share, ...).
"""

from __future__ import annotations

from airflow.sdk import Asset

RAW_DATA = Asset(name="mlops_raw_data", uri="mlops://lake/raw", group="mlops")
VALIDATED_FEATURES = Asset(name="mlops_validated_features", uri="mlops://lake/curated/features", group="mlops")
REGISTERED_MODEL = Asset(name="mlops_registered_model", uri="mlops://registry/model", group="mlops")
ENDPOINT_LIVE = Asset(name="mlops_endpoint_live", uri="mlops://serving/endpoint", group="mlops")
DRIFT_DETECTED = Asset(name="mlops_drift_detected", uri="mlops://monitoring/drift", group="mlops")
MODEL_QUALITY_DEGRADED = Asset(
    name="mlops_model_quality_degraded", uri="mlops://monitoring/model-quality", group="mlops"
)
