"""The A/B analysis job: captured traffic per variant (and matured labels) -> ``ab_summary.json``.

A processing job (SageMaker Processing on aws, the local processing runner locally; the same script)::

    python3 ab_job.py --capture DIR --labels DIR --output DIR --endpoint-name NAME \
        --champion VARIANT --challenger VARIANT --window-start ISO --window-end ISO \
        [--join-key order_id] [--bootstrap-samples 1000] [--confidence 0.95] [--seed 0]

Per variant (the capture layout's ``<variant>/yyyy/mm/dd/hh/*.jsonl`` folder names it): requests and
rows in the window, the prediction mix (share of each predicted label), and, for the rows whose label
has matured (the join key, a request field the model ignores such as ``order_id``, or the record's
``inferenceId`` for a one-row request, found in the labels: the curated table keeps terminal orders
only), mAP with a bootstrap confidence interval; then the interval of the challenger-minus-champion
mAP difference. Data capture has no latency, so ``latency_ms`` is null here; the worker fills it from the
real-time reporting aggregates when they have it (:func:`mlops.monitoring.ab_steps.variant_latency`).
Lines that cannot be read are counted, never fatal.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # script mode: import the bundled ``mlops`` package
    _here = Path(__file__).resolve().parent
    sys.path[0] = str(_here if (_here / "mlops").is_dir() else _here.parents[1])

from mlops.monitoring import job_args
from mlops.monitoring.ab_stats import difference, variant_quality


def parse_time(text: str) -> datetime:
    """An ISO 8601 time (``Z`` or an offset), as a naive UTC datetime (Python 3.9 in the processing image)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.replace(tzinfo=None) - (value.utcoffset() or timedelta(0))


def records(capture: Path) -> tuple[list[tuple[str, dict[str, Any]]], int]:
    """``(variant, record)`` of every readable capture line under ``capture``, and the unreadable count."""
    found, unreadable = [], 0
    for path in sorted(capture.rglob("*.jsonl")):
        variant = path.relative_to(capture).parts[0]
        for line in path.read_bytes().splitlines():
            try:
                record = json.loads(line)
                record["captureData"]["endpointOutput"]
            except (ValueError, KeyError, TypeError):
                unreadable += 1 if line.strip() else 0
                continue
            found.append((variant, record))
    return found, unreadable


def request_rows(record: dict[str, Any], join_key: str) -> list[Any]:
    """The join key of each row of the request (None where the row has none)."""
    source = record["captureData"].get("endpointInput") or {}
    try:
        body = json.loads(source.get("data", "")) if source.get("encoding") == "JSON" else None
    except ValueError:
        body = None
    rows = body.get("instances", [body]) if isinstance(body, dict) else []
    keys = [row.get(join_key) if isinstance(row, dict) else None for row in rows]
    inference_id = record.get("eventMetadata", {}).get("inferenceId")
    if len(keys) <= 1 and inference_id is not None and (not keys or keys[0] is None):
        keys = [inference_id]
    return keys


def predictions(record: dict[str, Any]) -> list[dict[str, Any]]:
    output = record["captureData"]["endpointOutput"]
    body = json.loads(output["data"]) if output.get("encoding") == "JSON" else {}
    return [p for p in body.get("predictions", []) if isinstance(p, dict)]


def load_labels(labels: Path, join_key: str) -> dict[str, str]:
    """``{str(join key): label}`` of the matured rows (an empty mapping without a labels folder)."""
    if not labels.is_dir() or not any(labels.rglob("*.parquet")):
        return {}
    import pyarrow.dataset as ds

    table = ds.dataset(str(labels), format="parquet", partitioning="hive").to_table(columns=[join_key, "label"])
    keys, values = table.column(join_key).to_pylist(), table.column("label").to_pylist()
    return {str(k): str(v) for k, v in zip(keys, values)}  # noqa: B905 - Python 3.9 in the processing image


def collect(args: argparse.Namespace) -> tuple[dict[str, dict[str, Any]], int]:
    """Per variant: requests, rows, predicted labels, and (label, probabilities) of joined rows."""
    start, end = parse_time(args.window_start), parse_time(args.window_end)
    labels = load_labels(Path(args.labels), args.join_key)
    found, unreadable = records(Path(args.capture))
    variants: dict[str, dict[str, Any]] = {}
    for variant, record in found:
        when = parse_time(record.get("eventMetadata", {}).get("inferenceTime", "1970-01-01T00:00:00Z"))
        if not start <= when < end:
            continue
        entry = variants.setdefault(variant, {"requests": 0, "predicted": Counter(), "joined": []})
        entry["requests"] += 1
        answers = predictions(record)
        entry["predicted"].update(str(p.get("label")) for p in answers)
        for key, answer in zip(request_rows(record, args.join_key), answers):  # noqa: B905 - Python 3.9
            if key is not None and str(key) in labels and isinstance(answer.get("probabilities"), dict):
                entry["joined"].append((labels[str(key)], answer["probabilities"]))
    return variants, unreadable


def summarize(args: argparse.Namespace) -> dict[str, Any]:
    variants, unreadable = collect(args)
    classes = sorted({c for v in variants.values() for _, probs in v["joined"] for c in probs})
    summary: dict[str, Any] = {
        "endpoint_name": args.endpoint_name,
        "window_start": args.window_start,
        "window_end": args.window_end,
        "join_key": args.join_key,
        "classes": classes,
        "confidence": args.confidence,
        "bootstrap_samples": args.bootstrap_samples,
        "unreadable_lines": unreadable,
        "variants": {},
    }
    boots: dict[str, np.ndarray] = {}
    for offset, name in enumerate(sorted(set(variants) | {args.champion, args.challenger})):
        entry = variants.get(name, {"requests": 0, "predicted": Counter(), "joined": []})
        rows = sum(entry["predicted"].values())
        report: dict[str, Any] = {
            "requests": entry["requests"],
            "rows": rows,
            "prediction_mix": {k: round(v / rows, 4) for k, v in sorted(entry["predicted"].items())} if rows else {},
            "latency_ms": None,
            "labeled_rows": len(entry["joined"]),
            "map": None,
            "map_ci": None,
        }
        if entry["joined"] and classes:
            truth = [label for label, _ in entry["joined"]]
            proba = np.array([[float(p.get(c, 0.0)) for c in classes] for _, p in entry["joined"]])
            quality, boots[name] = variant_quality(
                truth, proba, classes, args.bootstrap_samples, args.confidence, args.seed + offset
            )
            report.update(quality)
        summary["variants"][name] = report
    if args.champion in boots and args.challenger in boots:
        summary["map_difference"] = (
            summary["variants"][args.challenger]["map"] - summary["variants"][args.champion]["map"]
        )
        summary["map_difference_ci"] = difference(boots[args.challenger], boots[args.champion], args.confidence)
    summary.update(champion=args.champion, challenger=args.challenger)
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    required = ("capture", "labels", "output", "endpoint-name", "champion", "challenger", "window-start", "window-end")
    for name in required:
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--join-key", default="order_id")
    parser.add_argument("--bootstrap-samples", type=int, default=1000)
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--failure-file", default="/opt/ml/output/failure")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summary = summarize(args)
    except Exception as exc:  # the job's FailureReason says why
        job_args.write_failure(args.failure_file, exc, prefix="A/B analysis failed: ")
        raise
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "ab_summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: summary[k] for k in ("variants", "champion", "challenger")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
