"""Send traffic to an endpoint: held-out feature rows as they are ("normal") or shifted ("drifted").

Used by the demo's closed loop and by tests::

    from mlops.monitoring.traffic import send_traffic
    send_traffic(endpoint_live_extra["invocation_url"], 2000, drifted=True, source=curated_source(lake),
                 model_data_url=endpoint_live_extra["model_data_url"])

Requests go through boto3's ``sagemaker-runtime`` ``invoke_endpoint`` (the URL's host is the
``endpoint_url`` locally; pass ``client`` for real AWS), as JSON ``{"instances": [...]}`` with only
the model's feature columns. The endpoint's data capture records them; ``reporter`` (optional)
receives one prediction record per row for real-time reporting (:mod:`mlops.reporting`).

Inference ids: when the source rows carry an ``order_id`` (the curated snapshot does), every order
is scored in its own request with ``InferenceId=<order_id>``, as the shop scores an order when it
is placed. Data capture records it as ``eventMetadata.inferenceId``, so the model-quality job
(:mod:`mlops.monitoring.quality_job`) joins the captured prediction with the order's terminal
status once it reaches the lake.

Drift (deterministic for a seed): numeric features become ``x * (1 + s/2) + s/2 * std(x)`` (integral
columns rounded, so types do not change) and, with probability ``0.6 s``, a categorical value
becomes the source's rarest category (``s`` = ``strength``, default 1).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd

Reporter = Callable[[list[dict[str, Any]]], Any]
ID_COLUMN = "order_id"
JSON = "application/json"


def load_rows(source: pd.DataFrame | str, split: str | None = "test") -> pd.DataFrame:
    """A frame of source rows: a DataFrame as is, or a Parquet dataset URI (its ``split`` rows when it has splits)."""
    if isinstance(source, pd.DataFrame):
        return source
    import pyarrow.dataset as ds

    from mlops.lake import local_path

    path = str(local_path(source)) if source.startswith("file://") else source
    frame = ds.dataset(path, format="parquet", partitioning="hive", exclude_invalid_files=True).to_table().to_pandas()
    if split and "split" in frame.columns and (frame["split"].astype(str) == split).any():
        frame = frame[frame["split"].astype(str) == split]
    return frame.reset_index(drop=True)


def curated_source(lake: Any) -> str:
    """URI of the curated feature snapshot to draw traffic from: the validated one, else the current one.

    ``send_traffic(..., source=curated_source(lake))`` sends held-out (``test`` split) rows.
    """
    from mlops.training import lake_io

    curated = lake.curated("features")
    for pointer in ("_validated.json", "_current.json"):
        uri = lake_io.join(curated, pointer)
        if lake_io.exists(uri):
            return json.loads(lake_io.read_bytes(uri))["uri"]
    raise FileNotFoundError(f"no curated snapshot under {curated}; run mlops_features first")


def drift_rows(
    frame: pd.DataFrame, numeric: list[str], categorical: list[str], *, strength: float = 1.0, seed: int = 0
) -> pd.DataFrame:
    """A drifted copy of ``frame`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    for column in numeric:
        values = pd.to_numeric(out[column].astype("object"), errors="coerce").astype("float64")
        shifted = values * (1 + strength / 2) + strength / 2 * float(np.nan_to_num(values.std()) or 1.0)
        integral = (
            pd.api.types.is_integer_dtype(out[column])
            or pd.api.types.is_bool_dtype(out[column])
            or bool(((values.dropna() % 1) == 0).all())
        )
        out[column] = shifted.round().astype("Int64") if integral else shifted
    for column in categorical:
        counts = out[column].dropna().astype(str).value_counts()
        if counts.empty:
            continue
        rare = counts.index[-1]
        replace = rng.random(len(out)) < 0.6 * strength
        out[column] = out[column].astype(object).where(~replace, rare)
    return out


def sample_rows(frame: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` rows drawn from ``frame`` (with replacement when it has fewer)."""
    return frame.sample(n=n, replace=n > len(frame), random_state=seed).reset_index(drop=True)


def _client_and_name(invocation_url: str, client: Any) -> tuple[Any, str]:
    parsed = urlparse(invocation_url)
    parts = parsed.path.strip("/").split("/")
    if len(parts) != 3 or parts[0] != "endpoints" or parts[2] != "invocations":
        raise ValueError(
            f"{invocation_url!r} is not a SageMaker Runtime invocation URL (.../endpoints/NAME/invocations)"
        )
    if client is None:
        from mlops.serving.runtime import runtime_client

        client = runtime_client(f"{parsed.scheme}://{parsed.netloc}")
    return client, parts[1]


def _invoke_request(endpoint: str, chunk: pd.DataFrame, inference_id: str | None) -> dict[str, Any]:
    """InvokeEndpoint for one chunk of rows, with its InferenceId when it is one order."""
    body = json.dumps({"instances": json.loads(chunk.to_json(orient="records"))})
    request = {"EndpointName": endpoint, "Body": body, "ContentType": JSON, "Accept": JSON}
    if inference_id is not None:
        request["InferenceId"] = inference_id
    return request


def send_traffic(
    invocation_url: str,
    n: int,
    *,
    drifted: bool = False,
    source: pd.DataFrame | str,
    feature_spec: dict[str, Any] | None = None,
    model_data_url: str | None = None,
    batch_size: int = 20,
    strength: float = 1.0,
    seed: int = 0,
    client: Any = None,
    reporter: Reporter | None = None,
    id_column: str | None = ID_COLUMN,
) -> dict[str, Any]:
    """Send ``n`` rows (normal or drifted) in requests of ``batch_size``; return what was sent and answered.

    The feature columns come from ``feature_spec`` (``{"numeric": [...], "categorical": [...]}``) or
    the model package at ``model_data_url``. When the source has ``id_column``, each row goes in its
    own request with that value as the InferenceId. Raises RuntimeError when every request failed.
    """
    numeric, categorical = _feature_columns(feature_spec, model_data_url)
    sampled = sample_rows(load_rows(source), n, seed)
    ids = sampled[id_column].astype(str).tolist() if id_column and id_column in sampled.columns else None
    rows = sampled[numeric + categorical]
    if drifted:
        rows = drift_rows(rows, numeric, categorical, strength=strength, seed=seed)
    if ids is not None:
        batch_size = 1
    runtime, endpoint = _client_and_name(invocation_url, client)
    labels: Counter[str] = Counter()
    variants: Counter[str] = Counter()
    errors: list[str] = []
    started = time.monotonic()
    for first in range(0, n, batch_size):
        request = _invoke_request(endpoint, rows.iloc[first : first + batch_size], ids[first] if ids else None)
        sent_at = time.monotonic()
        try:
            response = runtime.invoke_endpoint(**request)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}"[:300])
            continue
        latency_ms = (time.monotonic() - sent_at) * 1000
        variant = response.get("InvokedProductionVariant", "AllTraffic")
        predictions = json.loads(response["Body"].read()).get("predictions", [])
        variants[variant] += len(predictions)
        labels.update(str(p.get("label")) for p in predictions)
        if reporter is not None:
            reporter(_prediction_events(endpoint, variant, predictions, latency_ms))
    requests = -(-n // batch_size)
    if errors and len(errors) == requests:
        raise RuntimeError(f"every request to {invocation_url} failed; first error: {errors[0]}")
    answered = {"labels": dict(labels), "variants": dict(variants), "seconds": round(time.monotonic() - started, 3)}
    sent = {"endpoint_name": endpoint, "rows": n, "requests": requests, "failed_requests": len(errors)}
    return {**sent, "errors": errors[:5], "drifted": drifted, "inference_ids": ids is not None, **answered}


def _feature_columns(feature_spec: dict[str, Any] | None, model_data_url: str | None) -> tuple[list[str], list[str]]:
    """(numeric, categorical) input columns: from ``feature_spec``, else from the model package's."""
    if feature_spec is None:
        if not model_data_url:
            raise ValueError("pass feature_spec or model_data_url: the traffic must carry the model's feature columns")
        from mlops.monitoring.feature_spec import read_feature_spec
        from mlops.training import lake_io

        feature_spec = read_feature_spec(lake_io.read_bytes(model_data_url))
    return list(feature_spec["numeric"]), list(feature_spec["categorical"])


def _prediction_events(
    endpoint: str, variant: str, predictions: list[dict[str, Any]], latency_ms: float
) -> list[dict[str, Any]]:
    """One reporting event per prediction of a request (the request's latency shared among them)."""
    now = datetime.now(UTC).isoformat()
    return [
        {
            "type": "prediction",
            "endpoint": endpoint,
            "variant": variant,
            "time": now,
            "label": str(p.get("label")),
            "latency_ms": round(latency_ms / max(len(predictions), 1), 3),
        }
        for p in predictions
    ]


def local_reporter(store: Any = None) -> Reporter:
    """A reporter that feeds the reporting handler in-process (the local stand-in of queue -> Lambda)."""
    from mlops.reporting.handler import handler

    return lambda records: handler({"records": records}, None, store)


def sqs_reporter(queue_url: str, client: Any = None) -> Reporter:
    """A reporter that publishes records to the reporting SQS queue (SendMessageBatch, 10 at a time)."""
    from mlops.reporting.requests import send_message_batch_request

    if client is None:
        import boto3

        client = boto3.client("sqs")

    def publish(records: list[dict[str, Any]]) -> None:
        for first in range(0, len(records), 10):
            client.send_message_batch(**send_message_batch_request(queue_url, records[first : first + 10], first))

    return publish
