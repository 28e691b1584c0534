"""Builders for the model-quality tests: a fixed scoring rule standing in for the model, capture
records of single-order requests with ``inferenceId`` = order id, and the raw DMS orders table
holding each order's (delayed) terminal status.

Concept shift = labels drawn from another rule on the same inputs; covariate shift = drifted inputs
with labels drawn from the model's own probabilities (the model stays right, so quality holds).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from tests.jobs.sagemaker.monitoring_fixtures import CLASSES


def scores(frame: pd.DataFrame) -> np.ndarray:
    """The stand-in model: class probabilities (columns = CLASSES) from a few features."""
    value = np.log1p(pd.to_numeric(frame["basket_value"], errors="coerce").fillna(50).to_numpy(float))
    returns = pd.to_numeric(frame["prior_returns"], errors="coerce").fillna(0).to_numpy(float)
    cod = (frame["payment_method"].astype(str) == "cash_on_delivery").to_numpy(float)
    logits = np.column_stack([-3.0 + 4.5 * cod, np.full(len(frame), 1.0), -4.0 + 2.2 * returns + 0.2 * value])
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def sample_labels(proba: np.ndarray, seed: int) -> np.ndarray:
    """One label per row drawn from its class probabilities."""
    rng = np.random.default_rng(seed)
    cumulative = proba.cumsum(axis=1)
    picks = (rng.random(len(proba))[:, None] > cumulative).sum(axis=1)
    return np.asarray(CLASSES)[np.minimum(picks, len(CLASSES) - 1)]


def concept_shifted_labels(proba: np.ndarray, seed: int) -> np.ndarray:
    """Labels of a changed world: the same inputs, but returns and cancellations swap their drivers."""
    return sample_labels(proba[:, [2, 1, 0]], seed)


def write_capture(
    root: Path,
    frame: pd.DataFrame,
    proba: np.ndarray,
    start: datetime,
    *,
    ids: bool = True,
    endpoint: str = "mlops-orders",
) -> None:
    """One capture record per order (``inferenceId`` = order id unless ``ids`` is False), a second apart."""
    lines = []
    for i, (row, probs) in enumerate(zip(json.loads(frame.to_json(orient="records")), proba, strict=True)):
        when = start + timedelta(seconds=i)
        order_id = str(row.pop("order_id"))
        label = CLASSES[int(np.argmax(probs))]
        probabilities = dict(zip(CLASSES, probs.round(6).tolist(), strict=True))
        answer = {"predictions": [{"label": label, "probabilities": probabilities}]}
        meta = {"eventId": f"e-{order_id}-{i}", "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%S.000Z")}
        if ids:
            meta["inferenceId"] = order_id
        lines.append(json.dumps({
            "captureData": {
                "endpointInput": {"observedContentType": "application/json", "mode": "INPUT", "encoding": "JSON",
                                  "data": json.dumps({"instances": [row]}, default=str)},
                "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT", "encoding": "JSON",
                                   "data": json.dumps(answer)},
            },
            "eventMetadata": meta,
            "eventVersion": "0",
        }))  # fmt: skip
    folder = root / endpoint / "AllTraffic" / f"{start:%Y/%m/%d/%H}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{start:%M-%S}-000-capture.jsonl").write_text("\n".join(lines) + "\n")


def write_orders(
    root: Path,
    order_ids: np.ndarray,
    labels: np.ndarray,
    *,
    matured: float = 1.0,
    name: str = "1",
    committed: str = "2026-01-05 00:00:00.000000",
) -> Path:
    """The raw orders table: a full load with every order ``placed``, then a CDC file (commit time
    ``committed``) moving the first ``matured`` share of them to their terminal status (the rest have no
    label yet)."""
    folder = root / "orders"
    folder.mkdir(parents=True, exist_ok=True)
    n = len(order_ids)
    load = pd.DataFrame({"Op": "I", "dms_change_seq": "0" * 20, "dms_commit_ts": "2026-01-01 00:00:00.000000",
                         "order_id": order_ids, "status": "placed"})  # fmt: skip
    load.to_parquet(folder / f"LOAD{int(name):08d}.parquet", index=False)
    done = round(n * matured)
    cdc = pd.DataFrame({"Op": "U", "dms_change_seq": [f"{name}{i + 1:019d}" for i in range(done)],
                        "dms_commit_ts": committed, "order_id": order_ids[:done],
                        "status": labels[:done]})  # fmt: skip
    cdc.to_parquet(folder / f"20260105-{name}-{done}.parquet", index=False)
    return folder
