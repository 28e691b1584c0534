"""Shared builders for the monitoring tests: a lake with curated features, a model package with a
feature spec, and capture files in SageMaker's format (written with the serving stage's own code)."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from mlops.config import PipelineConfig
from mlops.lake import Lake, local_path
from mlops.serving.capture import CaptureSettings, capture_file_name, capture_key, capture_record
from mlops.training.features import spec_from_frame
from mlops.training.synthetic import curated_features, write_dataset


def make_lake(tmp_path: Path) -> tuple[PipelineConfig, Lake]:
    config = PipelineConfig.model_validate(
        {"lake": {"local_root": str(tmp_path / "lake")}, "monitoring": {"image_uri": "local/sklearn:1.2-1"}}
    )
    return config, Lake.for_target(config, "local")


def curated(lake: Lake, rows: int = 6000, seed: int = 1) -> tuple[str, pd.DataFrame, dict]:
    """Write synthetic curated features (split partitions); return (uri, frame, feature spec)."""
    frame = curated_features(rows, seed=seed, decimals=False)
    uri = lake.uri(lake.layout.curated_prefix, "features", "snapshots", "s1")
    write_dataset(frame, local_path(uri))
    spec = spec_from_frame(frame[frame.split == "train"].drop(columns="split"))
    return (
        uri,
        frame,
        {"numeric": list(spec.numeric), "categorical": list(spec.categorical), "classes": list(spec.classes)},
    )


def model_package(lake: Lake, spec: dict, job: str = "mlops-train-1") -> str:
    """A model.tar.gz holding only feature_spec.json, at the training job's output key."""
    uri = lake.models("training", job, "output", "model.tar.gz")
    path = local_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(spec).encode()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("feature_spec.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return uri


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
    """Write ``rows`` as captured requests of ``batch`` rows from ``start`` on; return files written."""
    settings = CaptureSettings(destination_uri=lake.capture())
    files: dict[Path, list[str]] = {}
    root = local_path(lake.capture())
    for i, first in enumerate(range(0, len(rows), batch)):
        when = start + i * spacing
        chunk = rows.iloc[first : first + batch]
        if csv:
            body = chunk.to_csv(header=False, index=False).encode()
            content_type = "text/csv"
        else:
            body = json.dumps({"instances": json.loads(chunk.to_json(orient="records"))}).encode()
            content_type = "application/json"
        answer = json.dumps({"predictions": [{"label": "delivered", "probabilities": {"delivered": 1.0}}] * len(chunk)})
        line = capture_record(
            settings,
            request_body=body,
            request_content_type=content_type,
            response_body=answer.encode(),
            response_content_type="application/json",
            when=when,
        )
        folder = root / capture_key(endpoint, variant, when)
        target = folder / capture_file_name(when)
        files.setdefault(target, []).append(json.dumps(line))
    for target, lines in files.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(lines) + "\n")
    return len(files)
