"""Training benchmark: training time at 100k and 1M orders, and ONNX Runtime vs the native model.

    PYTHONPATH=include:plugins .venv/bin/python bench/bench_training.py [--sizes 100000 1000000] [--write]

All in one run on this machine, with the pipeline's code path:

1. For each size, a learnable synthetic curated-feature table (``mlops.training.synthetic``,
   70/15/15 split) is written as Parquet partitioned by ``split`` and ``train.py``'s ``train()``
   runs on it in-process with the configured hyperparameters (early stopping on validation):
   read -> fit -> ONNX export -> parity on the test split -> model package. Fit time and the
   whole script's time are reported, with validation mAP and the parity max |delta p|.
2. With the smallest size's model: latency of the native sklearn Pipeline (``predict_proba`` on
   a pandas DataFrame, as the stock SageMaker sklearn container serves it) against ONNX Runtime
   (one intra-op thread, numpy feeds) at batch 1 and batch 1000, and through ``inference.py``
   (``input_fn`` JSON -> ``predict_fn`` -> ``output_fn``), the path the endpoint serves.
   The ratio native / ONNX is the speed-up.

``--write`` replaces the "## Training" section of BENCHMARKS.md with the results.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "include"), str(ROOT / "plugins")]

from benchmarks_md import write_section  # noqa: E402  (bench/ is on the path: the script's folder)

from mlops.config import load_config  # noqa: E402
from mlops.training import synthetic  # noqa: E402  (sets OMP_WAIT_POLICY before lightgbm loads)


def train_once(rows: int, workdir: Path, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """Run train.py's train() on a fresh synthetic table of ``rows`` orders."""
    from mlops.training import train as train_script

    data = workdir / f"features-{rows}"
    started = time.perf_counter()
    synthetic.write_dataset(synthetic.curated_features(rows, seed=rows % 997), data)
    generate = time.perf_counter() - started
    args = train_script.parse_args(
        [
            "--train",
            str(data / "split=train"),
            "--validation",
            str(data / "split=validation"),
            "--test",
            str(data / "split=test"),
            "--model-dir",
            str(workdir / f"model-{rows}"),
            "--output-data-dir",
            str(workdir / f"data-{rows}"),
            "--output-dir",
            str(workdir / f"out-{rows}"),
        ]
        + [token for name, value in hyperparameters.items() for token in (f"--{name}", str(value))]
    )
    summary = train_script.train(args)
    summary["generate_seconds"] = round(generate, 2)
    summary["model_dir"] = str(workdir / f"model-{rows}")
    summary["native_model"] = str(workdir / f"data-{rows}" / "native_model.joblib")
    summary["test_data"] = str(data / "split=test")
    return summary


def _latency(fn: Any, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls after a warm-up."""
    for _ in range(3):
        fn()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def inference(summary: dict[str, Any]) -> dict[str, Any]:
    """Native vs ONNX Runtime vs inference.py latency at batch 1 and 1000."""
    import joblib
    import numpy as np

    from mlops.training import features, onnx_export

    os.environ.setdefault("MLOPS_ORT_THREADS", "1")
    model_dir = Path(summary["model_dir"])
    spec = features.FeatureSpec.load(model_dir / "feature_spec.json")
    native = joblib.load(summary["native_model"])
    frame, _ = features.read_channel(summary["test_data"])
    x = features.model_inputs(frame, spec)
    module_spec = importlib.util.spec_from_file_location("bench_inference", model_dir / "code" / "inference.py")
    handler = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(handler)
    loaded = handler.model_fn(str(model_dir))
    session = loaded["session"]
    results: dict[str, Any] = {}
    for batch, repeats in ((1, 300), (1000, 30)):
        rows = x.head(batch)
        feed = onnx_export.onnx_feed(rows, spec)
        records = [
            {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
            for r in json.loads(rows.to_json(orient="records"))
        ]
        body = json.dumps({"instances": records})
        np.testing.assert_allclose(native.predict_proba(rows), session.run(None, feed)[1], atol=1e-4)
        timings = {
            "native": _latency(lambda rows=rows: native.predict_proba(rows), repeats),
            "onnxruntime": _latency(lambda feed=feed: session.run(None, feed), repeats),
            "inference_py": _latency(
                lambda body=body: handler.output_fn(
                    handler.predict_fn(handler.input_fn(body, "application/json"), loaded), "application/json"
                ),
                repeats,
            ),
        }
        timings["ratio_native_over_onnx"] = timings["native"] / timings["onnxruntime"]
        timings["ratio_native_over_inference_py"] = timings["native"] / timings["inference_py"]
        results[f"batch_{batch}"] = timings
    return results


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "## Training",
        "",
        f"`bench/bench_training.py`, one run on {report['machine']} ({report['date']}). Synthetic curated",
        "features (`mlops.training.synthetic`: 5 categorical + 7 numeric columns, labels ~84/10/6 %), split",
        "70/15/15; `train.py` in-process with the configured hyperparameters",
        f"(`{json.dumps(report['hyperparameters'])}`, early stopping after 30 rounds without gain).",
        "",
        "| orders | train rows | fit s | train.py total s (read, fit, ONNX export, parity, package) "
        "| boosting rounds | validation mAP | ONNX max abs dp |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["training"]:
        lines.append(
            f"| {row['orders']:,} | {row['rows']['train']:,} | {row['fit_seconds']:.1f} | {row['total_seconds']:.1f} "
            f"| {row['best_iteration']} | {row['metrics']['validation:mAP']:.4f} "
            f"| {row['metrics']['test:onnx_max_abs_diff']:.1e} |"
        )
    lines += [
        "",
        f"Inference, model of the {report['inference_model_orders']:,}-order run, median latency per call "
        "(ONNX Runtime with one intra-op thread):",
        "",
        "| batch | native sklearn Pipeline (pandas) | ONNX Runtime | ratio native/ORT "
        "| inference.py JSON path | ratio native/inference.py |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in report["inference"].items():
        batch = name.split("_")[1]
        lines.append(
            f"| {batch} | {row['native'] * 1e3:.3f} ms | {row['onnxruntime'] * 1e3:.3f} ms "
            f"| {row['ratio_native_over_onnx']:.1f}x "
            f"| {row['inference_py'] * 1e3:.3f} ms | {row['ratio_native_over_inference_py']:.1f}x |"
        )
    lines += ["", *report.get("notes", []), ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--write", action="store_true", help="update the Training section of BENCHMARKS.md")
    parser.add_argument("--note", action="append", default=[], help="a line appended under the tables")
    args = parser.parse_args()
    hyperparameters = dict(load_config().training.hyperparameters)
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}",
        "date": time.strftime("%Y-%m-%d"),
        "hyperparameters": hyperparameters,
        "training": [],
        "notes": args.note,
    }
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        for rows in sorted(args.sizes):
            summary = train_once(rows, Path(tmp), hyperparameters)
            summary["orders"] = rows
            report["training"].append(summary)
            print(
                f"{rows:>9,} orders: fit {summary['fit_seconds']:.1f}s, train.py {summary['total_seconds']:.1f}s",
                flush=True,
            )
        smallest = report["training"][0]
        report["inference_model_orders"] = smallest["orders"]
        report["inference"] = inference(smallest)
    for row in report["training"]:
        for key in ("feature_spec", "model_files", "model_dir", "native_model", "test_data"):
            row.pop(key, None)
    section = markdown(report)
    print(section)
    print(json.dumps(report, default=str))
    if args.write:
        write_section(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
