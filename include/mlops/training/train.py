"""SageMaker script-mode training: curated order features -> LightGBM Pipeline -> ONNX model package.

Run by SageMaker (or :mod:`mlops.sagemaker_local`) as ``python train.py --n_estimators 300 ...``.
Argument defaults come from the ``SM_*`` variables; the channels are ``train``, ``validation``
and ``test`` (Parquet, hive-partitioned or not; a ``split`` column is filtered when present).
Writes the model package (see :mod:`mlops.training.model_package`) to ``SM_MODEL_DIR`` — only after
the ONNX export matched the native model on (a seeded sample of ``--parity_rows`` of) the test split, with the
per-class decision thresholds chosen on the ONNX model's validation scores for ``--decision_objective``
(:mod:`mlops.training.decision`) — and ``training_summary.json``
plus the native model to ``SM_OUTPUT_DATA_DIR``. Metrics go to stdout as ``name=value`` lines
for the job's MetricDefinitions; a failure's reason goes to ``/opt/ml/output/failure``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):  # script mode: import the bundled ``mlops`` package, not sibling modules
    _here = Path(__file__).resolve().parent
    sys.path[0] = str(_here if (_here / "mlops").is_dir() else _here.parents[1])

from mlops.training.model import HYPERPARAMETER_TYPES

if TYPE_CHECKING:
    from mlops.training.onnx_export import Scorer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Paths default to the SM_* variables; each hyperparameter is ``--name value``."""
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=env("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument("--output-data-dir", default=env("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data"))
    parser.add_argument("--output-dir", default=env("SM_OUTPUT_DIR", "/opt/ml/output"))
    parser.add_argument("--train", default=env("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    parser.add_argument("--validation", default=env("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation"))
    parser.add_argument("--test", default=env("SM_CHANNEL_TEST", "/opt/ml/input/data/test"))
    parser.add_argument("--parity_tolerance", "--parity-tolerance", type=float, default=1e-4)
    parser.add_argument(
        "--parity_rows", "--parity-rows", type=int, default=20_000,
        help="test rows the ONNX parity check scores natively and in ONNX: a seeded sample (0 = every row)",
    )  # fmt: skip
    parser.add_argument("--decision_objective", "--decision-objective", default="macro_f1")
    parser.add_argument("--cost_matrix", "--cost-matrix", default="", help="JSON {actual: {predicted: cost}}")
    for name in HYPERPARAMETER_TYPES:
        parser.add_argument(f"--{name}", f"--{name.replace('_', '-')}", dest=name, default=None)
    args = parser.parse_args(argv)
    if args.parity_rows < 0:
        parser.error(f"--parity_rows must be 0 (every test row) or a positive row count, got {args.parity_rows}")
    return args


def emit(name: str, value: float) -> None:
    """Print a metric line the job's MetricDefinitions match (``name=value;``)."""
    print(f"{name}={value:.6f};", flush=True)


def input_example(frame: Any, spec: Any, rows: int = 2) -> dict[str, Any]:
    """A JSON request body of the first test rows (missing values as null)."""
    import math

    records = []
    for record in frame[list(spec.columns)].head(rows).to_dict(orient="records"):
        clean = {}
        for name, value in record.items():
            if value is None or (isinstance(value, float) and math.isnan(value)):
                clean[name] = None
            elif name in spec.numeric:
                clean[name] = float(value)
            else:
                clean[name] = str(value)
        records.append(clean)
    return {"instances": records}


def load_split(path: str, split: str) -> tuple[Any, tuple[str, ...]]:
    from mlops.training.features import read_channel, select_split

    frame, partitions = read_channel(path)
    return select_split(frame, split), partitions


def row_sample(frame: Any, max_rows: int, seed: int) -> Any:
    """``frame``, or a seeded random sample of ``max_rows`` of its rows (in their order) when it has more
    (``max_rows`` 0: all)."""
    if not max_rows or len(frame) <= max_rows:
        return frame
    return frame.sample(n=max_rows, random_state=seed).sort_index()


def training_sample(frame: Any, max_rows: int, seed: int) -> Any:
    """The training budget: :func:`row_sample` of the train split. LightGBM's time grows with the rows and the
    rounds, and past a few hundred thousand rows more rows add little here (BENCHMARKS.md "Training budget");
    validation and test stay whole."""
    sample = row_sample(frame, max_rows, seed)
    if sample is not frame:
        print(f"training on a random {max_rows} of {len(frame)} train rows (max_train_rows={max_rows})", flush=True)
    return sample


def validation_summary(
    scorer: Scorer, train_xy: tuple[Any, Any], valid_xy: tuple[Any, Any], spec: Any, args: argparse.Namespace
) -> tuple[dict[str, float], dict[str, Any]]:
    """Train/validation loss and mAP, and the decision thresholds chosen on validation for the objective, from
    ``scorer``'s probabilities (the exported model's: what the endpoint will serve)."""
    from mlops.training import decision, metrics

    (x_train, y_train), (x_valid, y_valid) = train_xy, valid_xy
    sample = x_train.sample(n=min(len(x_train), 50_000), random_state=0)
    train_loss = metrics.log_loss(y_train[x_train.index.get_indexer(sample.index)], scorer(sample), spec.classes)
    valid_proba = scorer(x_valid)
    summary = {
        "train:mlogloss": train_loss,
        "validation:mlogloss": metrics.log_loss(y_valid, valid_proba, spec.classes),
        "validation:mAP": metrics.mean_average_precision(y_valid, valid_proba, spec.classes),
    }
    chosen = decision.choose_thresholds(y_valid, valid_proba, spec.classes, args.decision_objective, args.cost_matrix)
    summary[f"validation:{args.decision_objective}_thresholds"] = chosen["validation"]["objective_value"]
    summary[f"validation:{args.decision_objective}_argmax"] = chosen["validation"]["argmax_objective_value"]
    return summary, chosen


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Train, evaluate on validation, export to ONNX, check parity on test, write the package."""
    import joblib

    from mlops.training import decision, features, model, model_package, onnx_export

    started = time.monotonic()
    hyperparameters = model.coerce_hyperparameters(
        {k: v for k in HYPERPARAMETER_TYPES if (v := getattr(args, k)) is not None}
    )
    train_frame, partitions = load_split(args.train, "train")
    valid_frame, _ = load_split(args.validation, "validation")
    test_path = args.test if Path(args.test).exists() else args.validation
    test_frame, _ = load_split(test_path, "test" if test_path == args.test else "validation")
    spec = features.spec_from_frame(train_frame, partitions)
    available = len(train_frame)
    train_frame = training_sample(train_frame, hyperparameters["max_train_rows"], hyperparameters["seed"])
    print(f"rows train={len(train_frame)} validation={len(valid_frame)} test={len(test_frame)}", flush=True)
    print(f"features numeric={list(spec.numeric)} categorical={list(spec.categorical)} ignored={list(spec.ignored)}")

    x_train, y_train = features.model_inputs(train_frame, spec), features.labels(train_frame, spec)
    x_valid, y_valid = features.model_inputs(valid_frame, spec), features.labels(valid_frame, spec)
    pipeline = model.build_pipeline(spec, hyperparameters)
    model.fit(
        pipeline,
        x_train,
        y_train,
        x_valid,
        y_valid,
        hyperparameters["early_stopping_rounds"],
        hyperparameters["early_stopping_min_delta"],
    )
    fit_seconds = time.monotonic() - started

    # Export, then check the export against the native model before anything is scored with it: every later
    # score is the ONNX model's (ONNX Runtime scores these trees about twice as fast as LightGBM does).
    onnx_model = onnx_export.to_onnx(pipeline, spec)
    scorer = onnx_export.onnx_scorer(onnx_model, spec)
    x_parity = row_sample(features.model_inputs(test_frame, spec), args.parity_rows, hyperparameters["seed"])
    worst = onnx_export.check_parity(pipeline, scorer, x_parity, spec, args.parity_tolerance)
    print(f"ONNX parity checked on {len(x_parity)} of {len(test_frame)} test rows (parity_rows={args.parity_rows})")
    emit("test:onnx_max_abs_diff", worst)

    summary, chosen = validation_summary(scorer, (x_train, y_train), (x_valid, y_valid), spec, args)
    for name, value in summary.items():
        emit(name, value)

    model_dir, data_dir = Path(args.model_dir), Path(args.output_data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    written = model_package.write_model_dir(
        model_dir, onnx_model, spec, example=input_example(test_frame, spec),
        decision=decision.decision_document(chosen, spec.classes),
    )  # fmt: skip
    joblib.dump(pipeline, data_dir / "native_model.joblib")
    best_iteration = getattr(pipeline.named_steps["classifier"], "best_iteration_", None)
    result = {
        "metrics": summary | {"test:onnx_max_abs_diff": worst},
        "hyperparameters": hyperparameters,
        "best_iteration": int(best_iteration) if best_iteration else None,
        "rows": {
            "train": len(train_frame),
            "train_available": available,
            "validation": len(valid_frame),
            "test": len(test_frame),
            "parity": len(x_parity),
        },
        "feature_spec": json.loads(spec.to_json()),
        "decision": chosen,
        "model_files": written,
        "fit_seconds": round(fit_seconds, 3),
        "total_seconds": round(time.monotonic() - started, 3),
    }
    (data_dir / "training_summary.json").write_text(json.dumps(result, indent=2))
    print(f"model package written to {model_dir}: {written}; fit {fit_seconds:.1f}s", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    """Entry point; on failure write the reason to ``<output-dir>/failure`` and exit 1."""
    args = parse_args(argv)
    try:
        train(args)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
        (Path(args.output_dir) / "failure").write_text(reason[:1024])
        print(reason, file=sys.stderr, flush=True)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
