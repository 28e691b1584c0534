"""Drift job: one window of captured traffic vs the model's baseline (a processing-job entry point).

Run by SageMaker Processing (sklearn framework image) or :mod:`mlops.sagemaker_local` as::

    python3 drift_job.py --window-start 2026-11-24T17:00:00+00:00 --window-end 2026-11-24T18:00:00+00:00 \\
        [--baseline /opt/ml/processing/input/baseline] [--capture /opt/ml/processing/input/capture] \\
        [--reporting /opt/ml/processing/input/reporting] [--output /opt/ml/processing/output] [thresholds]

Inputs: ``baseline/`` holds statistics.json, constraints.json and feature_spec.json;
``capture/`` any folder tree of capture ``*.jsonl`` files (records outside the window are
skipped); ``reporting/aggregates.json`` (optional) the real-time per-minute aggregates.
Outputs (``--output``): the window's ``statistics.json``, ``constraint_violations.json``
(Model Monitor's schema), ``drift_summary.json`` (per-feature L-inf, threshold, PSI, the drift
share and verdict) and ``report.html``. A failure's reason goes to ``/opt/ml/output/failure``.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # script mode: import the bundled ``mlops`` package
    _here = Path(__file__).resolve().parent
    sys.path[0] = str(_here if (_here / "mlops").is_dir() else _here.parents[1])

from mlops.monitoring import capture_lines, capture_reader, drift, job_args, report, statistics, violations

PROCESSING = job_args.PROCESSING
QUARANTINE_FILE = "quarantined_capture.jsonl"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=f"{PROCESSING}/input/baseline")
    parser.add_argument("--capture", default=f"{PROCESSING}/input/capture")
    parser.add_argument("--reporting", default=f"{PROCESSING}/input/reporting")
    parser.add_argument("--output", default=f"{PROCESSING}/output")
    parser.add_argument("--window-start", required=True)
    parser.add_argument("--window-end", required=True)
    parser.add_argument("--model-version", default="")
    parser.add_argument("--endpoint-name", default="")
    job_args.add_comparison_arguments(parser)
    parser.add_argument("--robust-alpha", type=float, default=0.001)
    parser.add_argument("--psi-threshold", type=float, default=0.2)
    parser.add_argument("--completeness-tolerance", type=float, default=0.05)
    parser.add_argument("--drift-share-threshold", type=float, default=0.25)
    parser.add_argument("--min-window-records", type=int, default=100)
    parser.add_argument("--min-distinct-sources", type=int, default=20)
    parser.add_argument("--max-source-share", type=float, default=0.5)
    return parser.parse_args(argv)


def settings_of(args: argparse.Namespace) -> drift.DriftSettings:
    return drift.DriftSettings(
        comparison_method=args.comparison_method,
        comparison_threshold=args.comparison_threshold,
        categorical_comparison_threshold=args.categorical_comparison_threshold,
        robust_alpha=args.robust_alpha,
        psi_threshold=args.psi_threshold,
        completeness_tolerance=args.completeness_tolerance,
        datatype_check_threshold=args.datatype_check_threshold,
        domain_content_threshold=args.domain_content_threshold,
    )


def settings_summary(args: argparse.Namespace, settings: drift.DriftSettings) -> dict[str, Any]:
    """The settings the window was judged with, for drift_summary.json."""
    names = ("drift_share_threshold", "min_window_records", "min_distinct_sources", "max_source_share")
    return {**settings.__dict__, **{name: getattr(args, name) for name in names}}


def flood_reason(window: capture_reader.CaptureWindow, args: argparse.Namespace) -> str | None:
    """Why the window looks like one client's flood (too few distinct request sources, or one source
    sending most of it), else None. A source is an inference id, or for a request without one its payload."""
    if not window.records:
        return None
    if len(window.sources) < args.min_distinct_sources:
        return f"{len(window.sources)} distinct request source(s) < --min-distinct-sources {args.min_distinct_sources}"
    if window.top_source_share > args.max_source_share:
        return f"one request source sent {window.top_source_share:.0%} of the records > --max-source-share"
    return None


def load_baseline(folder: Path) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(statistics, constraints, input columns in model order) of a baseline folder."""
    stats = json.loads((folder / "statistics.json").read_text())
    constraints = json.loads((folder / "constraints.json").read_text())
    spec_file = folder / "feature_spec.json"
    if spec_file.exists():
        spec = json.loads(spec_file.read_text())
        columns = [*spec["numeric"], *spec["categorical"]]
    else:
        columns = [f["name"] for f in constraints["features"]]
    return stats, constraints, columns


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)  # noqa: UP017 - runs on older Pythons


def _read_window(
    args: argparse.Namespace, columns: list[str], categorical: list[str], span: tuple[datetime, datetime]
) -> tuple[Any, capture_lines.Quarantine]:
    """The window's capture records, and the quarantine of the lines that could not be read."""
    quarantine = capture_lines.Quarantine(Path(args.output) / QUARANTINE_FILE)
    window = capture_reader.read_folder(
        Path(args.capture), columns, *span, categorical=categorical, quarantine=quarantine
    )
    if quarantine.total:
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(quarantine.by_reason.items()))
        print(f"quarantined {quarantine.total} capture line(s) ({reasons}) -> {QUARANTINE_FILE}", flush=True)
    return window, quarantine


def _write_outputs(
    output: Path, reporting: Path, window_stats: dict[str, Any], doc: dict[str, Any], summary: dict[str, Any]
) -> None:
    """statistics.json, constraint_violations.json, drift_summary.json and report.html under ``output``."""
    aggregates_file = reporting / "aggregates.json"
    aggregates = json.loads(aggregates_file.read_text()) if aggregates_file.exists() else []
    output.mkdir(parents=True, exist_ok=True)
    (output / "statistics.json").write_text(json.dumps(window_stats, indent=2))
    (output / "constraint_violations.json").write_text(json.dumps(doc, indent=2))
    (output / "drift_summary.json").write_text(json.dumps(summary, indent=2))
    (output / "report.html").write_text(report.render(summary, doc, aggregates))


def analyse(args: argparse.Namespace) -> dict[str, Any]:
    """Read the window, compare it with the baseline, write the four outputs; return the summary."""
    started = time.monotonic()
    baseline_stats, constraints, columns = load_baseline(Path(args.baseline))
    start, end = _time(args.window_start), _time(args.window_end)
    numeric = [f["name"] for f in baseline_stats["features"] if f["inferred_type"] != statistics.STRING]
    categorical = [f["name"] for f in baseline_stats["features"] if f["inferred_type"] == statistics.STRING]
    output = Path(args.output)
    window, quarantine = _read_window(args, columns, categorical, (start, end))
    read_seconds = time.monotonic() - started
    frame = window.frame
    settings = settings_of(args)
    results, found = drift.compare(frame, baseline_stats, constraints, settings)
    feature_count = len(baseline_stats["features"])
    share = drift.drift_share(results, feature_count)
    flooded = flood_reason(window, args)
    insufficient = len(frame) < args.min_window_records or bool(flooded)
    window_stats = statistics.dataset_statistics(frame, numeric, categorical, {r.name: r.typed for r in results})
    doc = violations.validate(violations.document(found))
    labels = window.label_counts
    summary = {
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "model_version": args.model_version,
        "endpoint_name": args.endpoint_name,
        "records": window.records,
        "rows": len(frame),
        "skipped_records": window.skipped_records,
        "malformed_records": window.malformed,
        "quarantined": quarantine.summary(),
        "records_per_variant": dict(window.variants),
        "extra_columns_dropped": window.extra_columns_dropped,
        "insufficient": insufficient,
        "distinct_inference_ids": len(window.inference_ids),
        "distinct_sources": len(window.sources),
        "top_source_share": round(window.top_source_share, 6),
        "flooded": flooded,
        "feature_count": feature_count,
        "drift_share": round(share, 6),
        "window_drifted": (not insufficient) and share >= args.drift_share_threshold,
        "drifted_features": sorted(r.name for r in results if r.drifted),
        "psi_alerts": sorted(r.name for r in results if r.psi_alert),
        "violation_counts": dict(Counter(v["constraint_check_type"] for v in doc["violations"])),
        "predicted_labels": window.predicted_labels,
        "predicted_label_shares": {k: round(v / sum(labels.values()), 6) for k, v in labels.items()},
        "features": drift.as_dicts(results),
        "settings": settings_summary(args, settings),
        "metric": "L-inf (KS) per feature vs the baseline KLL sketch / category shares; PSI reported",
        "json_library": capture_lines.JSON_LIBRARY,
    }
    summary["seconds"] = {"read": round(read_seconds, 3), "total": round(time.monotonic() - started, 3)}
    _write_outputs(output, Path(args.reporting), window_stats, doc, summary)
    print(
        f"window {start.isoformat()} .. {end.isoformat()}: {window.records} records, {len(frame)} rows, "
        f"drift share {share:.3f} ({', '.join(summary['drifted_features']) or 'no feature drifted'}), "
        f"{len(doc['violations'])} violation(s); {summary['seconds']['total']:.1f}s",
        flush=True,
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    gc.freeze()  # a short-lived job holding millions of parsed objects: spare the cyclic GC their traversal
    gc.disable()
    try:
        analyse(args)
    except Exception as exc:
        job_args.write_failure(args.failure_file, exc)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
