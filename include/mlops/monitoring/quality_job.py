"""Model-quality job: one window's captured predictions vs their delayed ground truth (a processing-job entry point).

Run by SageMaker Processing (sklearn framework image) or :mod:`mlops.sagemaker_local` as::

    python3 quality_job.py --window-start 2026-11-24T17:00:00+00:00 --window-end 2026-11-24T18:00:00+00:00 \\
        --baseline-map 0.62 [--max-map-drop 0.05] [--confidence-z 2] [--min-labelled-rows 200] \\
        [--capture /opt/ml/processing/input/capture] [--ground-truth /opt/ml/processing/input/ground_truth] \\
        [--output /opt/ml/processing/output]

Inputs: ``capture/`` capture ``*.jsonl`` files (records outside the window are skipped; see
:mod:`mlops.monitoring.predictions` for which records join); ``ground_truth/`` the raw DMS
``orders`` table (:mod:`mlops.monitoring.ground_truth`). Outputs (``--output``): Model Monitor's
model-quality ``statistics.json``, ``constraints.json`` and ``constraint_violations.json``,
``quality_summary.json`` (status, coverage, mAP, threshold, verdict; with ``--labels-after`` the count
of orders labelled after the model's training data cut-off, ``new_labelled_orders``) and ``report.html``. A
violation needs ``mAP + confidence_z * (bootstrap std of mAP) < threshold``: the drop must exceed
the window's sampling noise (see :func:`mlops.monitoring.quality.violations_document`). A window
whose labels have not matured (fewer than ``--min-labelled-rows`` labelled, or coverage below
``--min-label-coverage``) is ``pending``: its coverage is reported and no violation is raised.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # script mode: import the bundled ``mlops`` package
    _here = Path(__file__).resolve().parent
    sys.path[0] = str(_here if (_here / "mlops").is_dir() else _here.parents[1])

from mlops.monitoring import capture_lines, ground_truth, job_args, predictions, quality

PROCESSING = job_args.PROCESSING
QUARANTINE_FILE = "quarantined_capture.jsonl"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capture", default=f"{PROCESSING}/input/capture")
    parser.add_argument("--ground-truth", default=f"{PROCESSING}/input/ground_truth")
    parser.add_argument("--output", default=f"{PROCESSING}/output")
    parser.add_argument("--window-start", required=True)
    parser.add_argument("--window-end", required=True)
    parser.add_argument("--model-version", default="")
    parser.add_argument("--endpoint-name", default="")
    parser.add_argument("--baseline-map", type=float, required=True, help="the model's evaluated mAP")
    parser.add_argument("--max-map-drop", type=float, default=0.05)
    parser.add_argument("--min-labelled-rows", type=int, default=200)
    parser.add_argument("--min-label-coverage", type=float, default=0.5)
    parser.add_argument(
        "--confidence-z", type=float, default=2.0, help="violation: mAP + z * bootstrap std < threshold"
    )
    parser.add_argument("--bootstrap-rounds", type=int, default=20)
    parser.add_argument(
        "--labels-after", default="", help="the model's training data cut-off: count the orders labelled after it"
    )
    parser.add_argument("--failure-file", default="/opt/ml/output/failure")
    return parser.parse_args(argv)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)  # noqa: UP017 - older Pythons


def _classes(found: predictions.CapturedPredictions) -> list[str]:
    """The model's classes: the probability keys of the captured predictions, sorted."""
    return sorted({c for probs in found.probabilities.values() for c in probs}) or list(ground_truth.TERMINAL)


def measure(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any], dict[str, Any]]:
    """(summary, statistics or None, constraints, violations) of the window."""
    start, end = _time(args.window_start), _time(args.window_end)
    quarantine = capture_lines.Quarantine(Path(args.output) / QUARANTINE_FILE)
    found = predictions.read_predictions(Path(args.capture), start, end, quarantine)
    classes = _classes(found)
    orders = ground_truth.read_orders(Path(args.ground_truth))
    labels = ground_truth.terminal_labels(orders, classes)
    new_labels = ground_truth.labelled_after(orders, args.labels_after) if args.labels_after else None
    joined = quality.join(found.probabilities, labels, classes)
    status = quality.window_status(
        len(joined.ids),
        joined.coverage,
        min_labelled_rows=args.min_labelled_rows,
        min_label_coverage=args.min_label_coverage,
    )
    stats = quality.statistics_document(joined, args.bootstrap_rounds) if joined.ids else None
    constraints = quality.constraints_document(args.baseline_map, args.max_map_drop)
    judged = stats is not None and status == "evaluated"
    violations = quality.violations_document(stats, constraints, args.confidence_z) if judged else {"violations": []}
    values = (stats or {}).get("multiclass_classification_metrics", {})
    summary = {
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "model_version": args.model_version,
        "endpoint_name": args.endpoint_name,
        "status": status,
        "records": found.records,
        "predictions": joined.predictions,
        "distinct_inference_ids": joined.predictions,
        "not_joinable": dict(found.skipped),
        "labelled": len(joined.ids),
        "label_coverage": round(joined.coverage, 6),
        "quarantined": quarantine.summary(),
        "classes": classes,
        "map": (values.get(quality.MAP) or {}).get("value"),
        "per_class_ap": {c: (values.get(f"average_precision_{c}") or {}).get("value") for c in classes},
        "baseline_map": args.baseline_map,
        "threshold": constraints["multiclass_classification_constraints"][quality.MAP]["threshold"],
        "violated": bool(violations["violations"]),
        "map_standard_deviation": (values.get(quality.MAP) or {}).get("standard_deviation"),
        "new_labelled_orders": {"after": args.labels_after or None, "count": new_labels},
        "settings": {
            k: getattr(args, k)
            for k in ("max_map_drop", "min_labelled_rows", "min_label_coverage", "confidence_z", "bootstrap_rounds")
        },
    }
    quarantine.close()
    return summary, stats, constraints, violations


def render_report(summary: dict[str, Any], stats: dict[str, Any] | None, violations: dict[str, Any]) -> str:
    """A self-contained HTML page: verdict, coverage, metrics, calibration and confusion counts."""
    e = html.escape
    verdict = "VIOLATION" if summary["violated"] else summary["status"]
    parts = [
        "<!doctype html><meta charset='utf-8'><title>Model quality</title>",
        f"<h1>Model quality v{e(str(summary['model_version']))}: {e(verdict)}</h1>",
        f"<p>window {e(summary['window_start'])} .. {e(summary['window_end'])}; {summary['labelled']} of "
        f"{summary['predictions']} predictions labelled (coverage {summary['label_coverage']:.1%}); mAP "
        f"{summary['map']} vs threshold {summary['threshold']} (evaluated {summary['baseline_map']}).</p>",
    ]
    new = summary.get("new_labelled_orders") or {}
    if new.get("count") is not None:
        parts.append(f"<p>{new['count']} orders labelled after the training data cut-off {e(str(new['after']))}.</p>")
    parts += [f"<p><b>{e(v['metric_name'])}</b>: {e(v['description'])}</p>" for v in violations["violations"]]
    if stats:
        metrics = stats["multiclass_classification_metrics"]
        rows = "".join(
            f"<tr><td>{e(k)}</td><td>{v['value']}</td><td>{v['standard_deviation']}</td></tr>"
            for k, v in metrics.items()
            if isinstance(v, dict) and "value" in v
        )
        head = "<tr><th>metric</th><th>value</th><th>std</th></tr>"
        parts.append(f"<h2>Metrics</h2><table border=1>{head}{rows}</table>")
        classes = list(metrics["confusion_matrix"])
        head = "".join(f"<th>{e(c)}</th>" for c in classes)
        body = "".join(
            f"<tr><th>{e(a)}</th>" + "".join(f"<td>{metrics['confusion_matrix'][a][p]}</td>" for p in classes) + "</tr>"
            for a in classes
        )
        parts.append(f"<h2>Confusion (rows actual)</h2><table border=1><tr><th></th>{head}</tr>{body}</table>")
        cal = stats["calibration"]
        bins = "".join(
            f"<tr><td>{b['lower']}-{b['upper']}</td><td>{b['count']}</td><td>{b['confidence']}</td><td>{b['accuracy']}</td></tr>"
            for b in cal["reliability"]
        )
        parts.append(
            f"<h2>Calibration</h2><p>Brier {cal['brier_score']}, ECE {cal['expected_calibration_error']}</p>"
            f"<table border=1><tr><th>confidence</th><th>n</th><th>mean conf.</th><th>accuracy</th></tr>{bins}</table>"
        )
    return "\n".join(parts)


def write_outputs(output: Path, summary: dict[str, Any], stats: dict[str, Any] | None, constraints: dict[str, Any],
                  violations: dict[str, Any]) -> None:  # fmt: skip
    """The five output files under ``output``."""
    output.mkdir(parents=True, exist_ok=True)
    empty = {"version": 0.0, "dataset": {"item_count": 0}, "multiclass_classification_metrics": {}}
    (output / "statistics.json").write_text(json.dumps(stats or empty, indent=2))
    (output / "constraints.json").write_text(json.dumps(constraints, indent=2))
    (output / "constraint_violations.json").write_text(json.dumps(violations, indent=2))
    (output / "quality_summary.json").write_text(json.dumps(summary, indent=2))
    (output / "report.html").write_text(render_report(summary, stats, violations))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summary, stats, constraints, violations = measure(args)
        write_outputs(Path(args.output), summary, stats, constraints, violations)
    except Exception as exc:
        job_args.write_failure(args.failure_file, exc)
        raise
    print(
        f"window {summary['window_start']} .. {summary['window_end']}: {summary['status']}, {summary['labelled']}/"
        f"{summary['predictions']} labelled, mAP {summary['map']} (threshold {summary['threshold']})"
        f"{', VIOLATION' if summary['violated'] else ''}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
