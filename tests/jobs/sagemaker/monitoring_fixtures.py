"""Builders for the monitoring tests: synthetic curated features, a model package holding only its
feature spec, and data-capture files in SageMaker's JSONL format.

Self-contained on purpose: numpy, pandas, pyarrow and the standard library (plus the light
``mlops.config`` / ``mlops.lake``), so the same builders serve the job tests in the SageMaker
runtime (``tests/jobs/sagemaker``) and the DAG and local-runner tests in the Airflow environment,
without depending on another stage's test helpers.
"""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops.config import PipelineConfig
from mlops.lake import Lake, local_path

NUMERIC = ["basket_value", "basket_units", "prior_orders", "prior_returns", "days_since_prev_order", "has_fragile"]
CATEGORICAL = ["channel", "payment_method", "shipping_method", "country", "top_category"]
CLASSES = ["cancelled", "delivered", "returned"]
ANSWER_LABEL = "delivered"
_NAMES = uuid.UUID("6f1e2c3a-8d4b-4e5f-9a0b-1c2d3e4f5a6b")  # namespace of the capture files' deterministic ids


def curated_features(rows: int, seed: int = 0) -> pd.DataFrame:
    """``rows`` orders shaped like the curated feature table: ids, the features above (ints, floats,
    bools, low-cardinality strings, some missing values), ``label`` and ``split`` (70/15/15)."""
    rng = np.random.default_rng(seed)
    prior_returns = rng.poisson(0.4, rows)
    return pd.DataFrame(
        {
            "order_id": np.arange(1, rows + 1, dtype=np.int64),
            "channel": rng.choice(["web", "app", "marketplace", "phone"], rows, p=[0.45, 0.3, 0.2, 0.05]),
            "payment_method": rng.choice(
                ["card", "paypal", "bank_transfer", "cash_on_delivery"], rows, p=[0.5, 0.25, 0.15, 0.1]
            ),
            "shipping_method": rng.choice(["standard", "express", "pickup"], rows, p=[0.7, 0.2, 0.1]),
            "country": np.where(
                rng.random(rows) < 0.02, None, rng.choice(["DE", "FR", "ES", "IT", "NL", "PL", "GB", "US"], rows)
            ),
            "top_category": rng.choice(["electronics", "apparel", "home", "beauty", "toys"], rows),
            "basket_value": np.round(rng.lognormal(4.0, 0.8, rows), 2),
            "basket_units": rng.integers(1, 8, rows).astype(np.int32),
            "prior_orders": (prior_returns + rng.poisson(3, rows)).astype(np.int32),
            "prior_returns": prior_returns.astype(np.int32),
            "days_since_prev_order": np.where(rng.random(rows) < 0.1, np.nan, np.round(rng.exponential(40, rows), 3)),
            "has_fragile": rng.random(rows) < 0.2,
            "label": rng.choice(CLASSES, rows, p=[0.06, 0.84, 0.10]),
            "split": rng.choice(["train", "validation", "test"], rows, p=[0.7, 0.15, 0.15]),
        }
    )


def feature_spec() -> dict[str, list[str]]:
    """The model's input columns, in the training stage's feature_spec.json layout."""
    return {"numeric": list(NUMERIC), "categorical": list(CATEGORICAL), "classes": list(CLASSES)}


def write_dataset(frame: pd.DataFrame, root: Path) -> Path:
    """Parquet laid out as the curated snapshot: ``split=<name>/part-0.parquet``."""
    for split, rows in frame.groupby("split"):
        folder = root / f"split={split}"
        folder.mkdir(parents=True, exist_ok=True)
        rows.drop(columns="split").to_parquet(folder / "part-0.parquet", index=False)
    return root


def model_archive(path: Path, spec: dict[str, Any] | None) -> Path:
    """A model.tar.gz holding only feature_spec.json (all monitoring reads of a model); ``spec=None``: without it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    member, data = ("feature_spec.json", json.dumps(spec).encode()) if spec is not None else ("model.onnx", b"onnx")
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def make_lake(tmp_path: Path) -> tuple[PipelineConfig, Lake]:
    config = PipelineConfig.model_validate(
        {"lake": {"local_root": str(tmp_path / "lake")}, "monitoring": {"image_uri": "local/sklearn:1.2-1"}}
    )
    return config, Lake.for_target(config, "local")


def curated(lake: Lake, rows: int = 6000, seed: int = 1) -> tuple[str, pd.DataFrame, dict[str, list[str]]]:
    """Write synthetic curated features (split partitions) into the lake; return (uri, frame, feature spec)."""
    frame = curated_features(rows, seed=seed)
    uri = lake.uri(lake.layout.curated_prefix, "features", "snapshots", "s1")
    write_dataset(frame, local_path(uri))
    return uri, frame, feature_spec()


def model_package(lake: Lake, spec: dict[str, Any], job: str = "mlops-train-1") -> str:
    """A model.tar.gz holding only feature_spec.json, at the training job's output key."""
    uri = lake.models("training", job, "output", "model.tar.gz")
    model_archive(local_path(uri), spec)
    return uri


def capture_line(body: str, content_type: str, rows: int, when: datetime, event_id: str) -> dict[str, Any]:
    """One capture record in SageMaker's format: the request as sent and one prediction per row."""
    answer = json.dumps({"predictions": [{"label": ANSWER_LABEL, "probabilities": {ANSWER_LABEL: 1.0}}] * rows})
    encoding = "CSV" if content_type == "text/csv" else "JSON"
    return {
        "captureData": {
            "endpointInput": {"observedContentType": content_type, "mode": "INPUT", "data": body, "encoding": encoding},
            "endpointOutput": {
                "observedContentType": "application/json",
                "mode": "OUTPUT",
                "data": answer,
                "encoding": "JSON",
            },
        },
        "eventMetadata": {
            "eventId": event_id,
            "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
        },
        "eventVersion": "0",
    }


def write_capture(
    lake: Lake,
    endpoint: str,
    rows: pd.DataFrame,
    start: datetime,
    *,
    variant: str = "AllTraffic",
    batch: int = 10,
    spacing: timedelta = timedelta(seconds=1),
    csv: bool = False,
) -> int:
    """Write ``rows`` as captured requests of ``batch`` rows from ``start`` on, one request every ``spacing``,
    in ``<endpoint>/<variant>/yyyy/mm/dd/hh/MM-SS-mmm-<id>.jsonl`` files; return the files written."""
    files: dict[Path, list[str]] = {}
    root = local_path(lake.capture())
    for i, first in enumerate(range(0, len(rows), batch)):
        when = start + i * spacing
        chunk = rows.iloc[first : first + batch]
        if csv:
            body, content_type = chunk.to_csv(header=False, index=False), "text/csv"
        else:
            body = json.dumps({"instances": json.loads(chunk.to_json(orient="records"))})
            content_type = "application/json"
        event_id = str(uuid.uuid5(_NAMES, f"{endpoint}/{variant}/{when.isoformat()}"))
        folder = root / endpoint / variant / f"{when:%Y/%m/%d/%H}"
        target = folder / f"{when:%M-%S}-{when.microsecond // 1000:03d}-{event_id}.jsonl"
        files.setdefault(target, []).append(json.dumps(capture_line(body, content_type, len(chunk), when, event_id)))
    for target, lines in files.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(lines) + "\n")
    return len(files)
