"""SageMaker Processing entry point: evaluate a model package on the test split.

Run as ``python3 evaluate.py --model <dir> --test <dir> [--champion <dir>] --output <dir>``;
the defaults are the processing container paths under ``/opt/ml/processing``. It scores the
challenger's ONNX model (the artifact that will be served) and, when a champion package is
given, the champion on the very same rows, and writes to ``--output``:

- ``evaluation.json``: ModelQuality statistics (mAP, per-class AP, accuracy, F1, ...,
  confusion matrix), the document CreateModelPackage's ModelMetrics points at;
- ``champion_evaluation.json``: the same for the champion (when given);
- ``pr_curves.png``, ``confusion_matrix.png`` (argmax labels), ``confusion_matrix_thresholds.png``
  (labels at the package's decision thresholds, when it has them) and ``report.html``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # script mode: import the bundled ``mlops`` package, not sibling modules
    _here = Path(__file__).resolve().parent
    sys.path[0] = str(_here if (_here / "mlops").is_dir() else _here.parents[1])

PROCESSING = "/opt/ml/processing"
NEEDED_MODULES = ("onnxruntime", "pyarrow", "matplotlib", "pandas")


def ensure_packages() -> None:
    """Install the bundle's requirements.txt when the image lacks them (processing jobs don't)."""
    missing = [m for m in NEEDED_MODULES if importlib.util.find_spec(m) is None]
    requirements = Path(__file__).resolve().parent / "requirements.txt"
    if missing and requirements.exists():
        print(f"installing {requirements} for missing modules {missing}", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", str(requirements)], check=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=f"{PROCESSING}/model", help="folder holding model.tar.gz")
    parser.add_argument("--test", default=f"{PROCESSING}/test", help="test channel (Parquet)")
    parser.add_argument(
        "--champion", default=f"{PROCESSING}/champion", help="folder holding the champion's model.tar.gz"
    )
    parser.add_argument("--output", default=f"{PROCESSING}/evaluation")
    parser.add_argument("--failure-file", default="/opt/ml/output/failure")
    parser.add_argument("--bootstrap-rounds", type=int, default=10)
    parser.add_argument("--trigger", default="", help="what started the run (e.g. input_drift)")
    parser.add_argument("--recent-since", default="", help="ISO time of the drift point: recent = orders from then")
    parser.add_argument("--recent-days", type=int, default=30, help="else recent = the last N days of the split")
    parser.add_argument("--min-recent-rows", type=int, default=200)
    return parser.parse_args(argv)


def _package(folder: Path, workdir: Path) -> Path | None:
    """The unpacked model package in ``folder`` (a model.tar.gz or an unpacked tree), or None."""
    from mlops.training.model_package import extract

    if (folder / "model.onnx").exists():
        return folder
    archives = sorted(folder.glob("*.tar.gz")) if folder.is_dir() else []
    return extract(archives[0], workdir) if archives else None


def score(package: Path, test_frame: Any, bootstrap_rounds: int) -> tuple[dict[str, Any], Any, Any]:
    """ModelQuality document, truth and probabilities of one model package on the test rows."""
    from mlops.training import decision, features, metrics, onnx_export

    spec = features.FeatureSpec.load(package / "feature_spec.json")
    x_test, y_test = features.model_inputs(test_frame, spec), features.labels(test_frame, spec)
    proba = onnx_export.onnx_probabilities((package / "model.onnx").read_bytes(), x_test, spec)
    document = metrics.model_quality(y_test, proba, spec.classes, bootstrap_rounds=bootstrap_rounds)
    document["model"] = {"classes": list(spec.classes), "features": list(spec.columns)}
    if (package / decision.DECISION_FILE).exists():
        chosen = json.loads((package / decision.DECISION_FILE).read_text())
        document["decision"] = thresholded_metrics(chosen, y_test, proba, spec.classes)
    return document, y_test, proba


def thresholded_metrics(chosen: dict[str, Any], y_test: Any, proba: Any, classes: Any) -> dict[str, Any]:
    """The package's thresholds with the test confusion matrix and macro-F1 at them and at the argmax."""
    import numpy as np

    from mlops.training import decision

    classes = list(classes)
    truth = np.array([classes.index(v) for v in y_test])
    thresholds = decision.thresholds_in_order(chosen, classes)
    out: dict[str, Any] = {
        "thresholds": dict(zip(classes, thresholds, strict=True)),
        "objective": chosen.get("objective"),
    }
    for rule, weights in (("thresholds", thresholds), ("argmax", [1.0] * len(classes))):
        matrix = decision.confusion_counts(truth, decision.apply_thresholds(proba, weights), len(classes))
        out[f"confusion_matrix_{rule}"] = {
            a: {p: int(matrix[i, j]) for j, p in enumerate(classes)} for i, a in enumerate(classes)
        }
        out[f"macro_f1_{rule}"] = round(decision.objective_value(matrix, "macro_f1"), 6)
    return out


def recent_rows(test_frame: Any, args: argparse.Namespace) -> tuple[Any, str]:
    """Which test rows are recent: orders from the drift point when enough are, else the split's last days."""
    import pandas as pd

    times = pd.to_datetime(test_frame["order_ts"], utc=True) if "order_ts" in test_frame.columns else None
    if times is None or times.isna().all():
        return None, "no order_ts column"
    if args.recent_since:
        since = pd.Timestamp(args.recent_since)
        since = since.tz_localize("UTC") if since.tzinfo is None else since
        mask = (times >= since).to_numpy()
        if mask.sum() >= args.min_recent_rows:
            return mask, f"orders from the drift point {since.isoformat()}"
    since = times.max() - pd.Timedelta(days=args.recent_days)
    return (times >= since).to_numpy(), f"orders of the last {args.recent_days} days (from {since.isoformat()})"


def recent_block(mask: Any, rule: str, y_test: Any, proba: Any, classes: Any, args: argparse.Namespace) -> dict:
    """mAP and per-class AP on the recent rows (``usable`` when there are enough of them with 2+ classes)."""
    from mlops.training import metrics

    rows = 0 if mask is None else int(mask.sum())
    block: dict[str, Any] = {"trigger": args.trigger or None, "rule": rule, "rows": rows, "usable": False}
    if rows >= args.min_recent_rows and len(set(y_test[mask])) >= 2:
        values = metrics.scalar_metrics(y_test[mask], proba[mask], classes)
        block.update({k: round(v, 6) for k, v in values.items() if "average_precision" in k}, usable=True)
    return block


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from mlops.training import features, gate, report

    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    frame, _ = features.read_channel(args.test)
    test_frame = features.select_split(frame, "test")
    with tempfile.TemporaryDirectory() as tmp:
        challenger_dir = _package(Path(args.model), Path(tmp) / "challenger")
        if challenger_dir is None:
            raise FileNotFoundError(f"no model.tar.gz under {args.model}; pass the training job's model artifact")
        document, y_test, proba = score(challenger_dir, test_frame, args.bootstrap_rounds)
        mask, rule = recent_rows(test_frame, args)
        document["recent"] = recent_block(mask, rule, y_test, proba, document["model"]["classes"], args)
        champion_doc = None
        champion_dir = _package(Path(args.champion), Path(tmp) / "champion")
        if champion_dir is not None:
            try:
                champion_doc, champion_y, champion_proba = score(champion_dir, test_frame, args.bootstrap_rounds)
                classes = champion_doc["model"]["classes"]
                champion_doc["recent"] = recent_block(mask, rule, champion_y, champion_proba, classes, args)
            except ValueError as exc:  # e.g. the champion reads columns the curated table no longer has
                champion_doc = {"error": f"champion could not be scored on this test split: {exc}"}
            (output / "champion_evaluation.json").write_text(json.dumps(champion_doc, indent=2))
    (output / "evaluation.json").write_text(json.dumps(document, indent=2))
    classes = document["model"]["classes"]
    ap = {c: document["multiclass_classification_metrics"][f"average_precision_{c}"]["value"] for c in classes}
    report.plot_pr_curves(y_test, proba, classes, ap, output / "pr_curves.png")
    report.plot_confusion(
        document["multiclass_classification_metrics"]["confusion_matrix"], classes, output / "confusion_matrix.png"
    )
    images = ["pr_curves.png", "confusion_matrix.png"]
    if "decision" in document:
        matrix = document["decision"]["confusion_matrix_thresholds"]
        report.plot_confusion(matrix, classes, output / "confusion_matrix_thresholds.png", "at the thresholds")
        images.append("confusion_matrix_thresholds.png")
    comparable = champion_doc if champion_doc and "error" not in champion_doc else None
    report.write_html(
        output / "report.html",
        title="Model evaluation (test split)",
        challenger=document,
        champion=comparable,
        images=images,
    )
    print(f"test:mAP={gate.gate_value(document):.6f};", flush=True)
    if comparable:
        print(f"test:champion_mAP={gate.gate_value(comparable):.6f};", flush=True)
    return document


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        ensure_packages()
        evaluate(args)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        Path(args.failure_file).parent.mkdir(parents=True, exist_ok=True)
        Path(args.failure_file).write_text(reason[:1024])
        print(reason, file=sys.stderr, flush=True)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
