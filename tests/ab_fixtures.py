"""A/B test fixtures for both environments (the Airflow env and the SageMaker runtime): captured traffic of one
variant in SageMaker's capture format, each request row carrying its ``order_id``, and curated-style labels.

A variant's quality is set by ``skill``: that share of each row's probability mass sits on the true class,
the rest is random (skill 0: an uninformative model).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from mlops.serving.capture import CaptureSettings, capture_key, capture_record

CLASSES = ["cancelled", "delivered", "returned"]


def probabilities(truth: np.ndarray, skill: float, rng: np.random.Generator) -> np.ndarray:
    noise = rng.dirichlet(np.ones(len(CLASSES)), size=len(truth))
    onehot = np.eye(len(CLASSES))[[CLASSES.index(t) for t in truth]]
    return skill * onehot + (1 - skill) * noise


def write_variant(
    capture_root: Path, endpoint: str, variant: str, truth: np.ndarray, ids: np.ndarray, skill: float, *,
    when: datetime, seed: int, garbage: bool = True,
) -> None:  # fmt: skip
    """Capture files of one variant under ``capture_root/<endpoint>/<variant>/``: requests of 10 rows."""
    rng = np.random.default_rng(seed)
    proba = probabilities(truth, skill, rng)
    settings = CaptureSettings(destination_uri=capture_root.as_uri())
    lines = []
    for start in range(0, len(truth), 10):
        rows = range(start, min(start + 10, len(truth)))
        body = {"instances": [{"order_id": int(ids[i]), "basket_value": 10.0} for i in rows]}
        answer = {
            "predictions": [
                {"label": CLASSES[int(np.argmax(proba[i]))], "probabilities": dict(zip(CLASSES, proba[i], strict=True))}
                for i in rows
            ]
        }
        record = capture_record(
            settings,
            request_body=json.dumps(body).encode(),
            request_content_type="application/json",
            response_body=json.dumps(answer).encode(),
            response_content_type="application/json",
            when=when + timedelta(seconds=start // 10),
        )
        lines.append(json.dumps(record))
    folder = capture_root / capture_key(endpoint, variant, when)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{when:%M-%S}-000-{variant}.jsonl").write_text("\n".join(lines) + ("\nnot json\n" if garbage else "\n"))


def write_ab_traffic(
    capture_root: Path, labels_dir: Path, endpoint: str, skills: dict[str, float], *, when: datetime,
    rows: int = 400, labeled_share: float = 1.0,
) -> None:  # fmt: skip
    """Both variants' capture and the labels (a hive-partitioned Parquet table) of ``labeled_share`` of their orders."""
    rng = np.random.default_rng(1)
    all_ids, all_truth = [], []
    for offset, (variant, skill) in enumerate(skills.items()):
        ids = np.arange(rows) + offset * 100_000
        truth = rng.choice(CLASSES, size=rows, p=[0.15, 0.6, 0.25])
        write_variant(capture_root, endpoint, variant, truth, ids, skill, when=when, seed=10 + offset)
        keep = rng.random(rows) < labeled_share  # the others are still open orders: no label yet
        all_ids += ids[keep].tolist()
        all_truth += truth[keep].tolist()
    (labels_dir / "split=test").mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame({"order_id": all_ids, "label": all_truth})
    frame.to_parquet(labels_dir / "split=test" / "part-0.parquet")
