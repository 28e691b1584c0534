"""Baseline job: a model's training data -> Model Monitor's statistics.json and constraints.json.

Our "suggest baseline" processing job, run by SageMaker Processing (sklearn framework image) or
:mod:`mlops.sagemaker_local` as::

    python3 baseline_job.py [--model /opt/ml/processing/input/model] [--train /opt/ml/processing/input/train] \\
        [--split train] [--output /opt/ml/processing/output] [thresholds]

Inputs: ``model/`` holds the model.tar.gz (its ``feature_spec.json`` names the input columns);
``train/`` the training data as Parquet (a hive-partitioned snapshot, whose ``split=<split>`` rows
are used, or the split's own folder). Outputs (``--output``): ``statistics.json``,
``constraints.json`` (Model Monitor's schemas), ``feature_spec.json`` (the columns, in model order,
for the drift job) and ``baseline_summary.json`` (row and feature counts, for the worker to record).
A failure's reason goes to ``/opt/ml/output/failure``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # script mode: import the bundled ``mlops`` package
    _here = Path(__file__).resolve().parent
    sys.path[0] = str(_here if (_here / "mlops").is_dir() else _here.parents[1])

from mlops.monitoring import baseline, job_args
from mlops.monitoring.feature_spec import read_feature_spec

PROCESSING = job_args.PROCESSING
OUTPUT_FILES = ("statistics.json", "constraints.json", "feature_spec.json", "baseline_summary.json")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=f"{PROCESSING}/input/model", help="folder holding the model.tar.gz")
    parser.add_argument("--train", default=f"{PROCESSING}/input/train", help="the training data (Parquet)")
    parser.add_argument("--split", default="train", help="rows of this split when the data has a split column")
    parser.add_argument("--output", default=f"{PROCESSING}/output")
    job_args.add_comparison_arguments(parser)
    return parser.parse_args(argv)


def thresholds_of(args: argparse.Namespace) -> baseline.Thresholds:
    return baseline.Thresholds(
        comparison_threshold=args.comparison_threshold,
        categorical_comparison_threshold=args.categorical_comparison_threshold,
        comparison_method=args.comparison_method,
        datatype_check_threshold=args.datatype_check_threshold,
        domain_content_threshold=args.domain_content_threshold,
    )


def model_spec(folder: Path) -> dict[str, Any]:
    """The feature spec of the one model.tar.gz in ``folder`` (or ``folder`` itself when it is the archive)."""
    archives = [folder] if folder.is_file() else sorted(folder.glob("*.tar.gz")) if folder.is_dir() else []
    if len(archives) != 1:
        raise FileNotFoundError(
            f"expected one model.tar.gz under {folder}, found {[a.name for a in archives]}; "
            "the request's model input must be the model's ModelDataUrl"
        )
    return read_feature_spec(archives[0])


def read_training_frame(folder: Path, split: str) -> Any:
    """The ``split`` rows of a Parquet dataset (hive-partitioned, or with a ``split`` column); all rows
    when it has no split column (the split's own folder)."""
    import pyarrow.dataset as ds

    if not folder.exists():
        raise FileNotFoundError(f"no training data at {folder}; the request's train input is missing")
    dataset = ds.dataset(str(folder), format="parquet", partitioning="hive", exclude_invalid_files=True)
    frame = dataset.to_table().to_pandas()
    if "split" in frame.columns:
        frame = frame[frame["split"].astype(str) == split]
    if frame.empty:
        raise ValueError(f"no {split!r} rows in the training data under {folder}; a baseline needs the training split")
    return frame


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Compute the baseline and write the output files; return the summary."""
    started = time.monotonic()
    spec = model_spec(Path(args.model))
    frame = read_training_frame(Path(args.train), args.split)
    numeric, categorical = list(spec["numeric"]), list(spec["categorical"])
    statistics, constraints = baseline.compute_baseline(frame, numeric, categorical, thresholds_of(args))
    summary = {
        "item_count": int(statistics["dataset"]["item_count"]),
        "features": len(statistics["features"]),
        "numeric": numeric,
        "categorical": categorical,
        "split": args.split,
        "seconds": round(time.monotonic() - started, 3),
    }
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    for name, doc in zip(OUTPUT_FILES, (statistics, constraints, spec, summary)):  # noqa: B905 - runs on older Pythons
        (output / name).write_text(json.dumps(doc, indent=2))
    print(
        f"baseline: {summary['item_count']} {args.split} rows, {summary['features']} features "
        f"({len(numeric)} numeric, {len(categorical)} categorical); {summary['seconds']:.1f}s",
        flush=True,
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except Exception as exc:
        job_args.write_failure(args.failure_file, exc)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
