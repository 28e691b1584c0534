"""Tune LightGBM hyperparameters on the validation split only (never the test split), over seeds.

    MLOPS_RUNTIMES=.mlops/venvs PYTHONPATH=include .venv/bin/python bench/tune_model.py \
        [--orders 50000] [--seeds 42 7 123] [--cache DIR] [--candidates FILE.json]

Per seed the demo data and its curated table are built once, as ``bench_model_quality.py`` does
(generator, pandas features job), and cached as parquet under ``--cache``. Each candidate (the
configured hyperparameters overlaid with the candidate's; extra LightGBM parameters under
``"lgbm"`` are set on the classifier) is then fitted with :func:`mlops.training.model.fit` (early
stopping on validation logloss, as ``train.py`` does) in the SageMaker runtime and scored by the
training metric on the validation split. Candidates are ranked by mean validation mAP over the
seeds; the test split is never read by the fit or the score. Pick one, make it the configured
default, then run ``bench_model_quality.py`` once for the test figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_model_quality import source_tables  # noqa: E402

from mlops.config import load_config  # noqa: E402
from mlops.etl import pandas_features  # noqa: E402
from mlops.runtimes import runtime_python  # noqa: E402

DEFAULT_CANDIDATES: list[dict[str, Any]] = [  # overrides of the configured hyperparameters; {} = as configured
    {},
    {"num_leaves": 15, "min_child_samples": 40, "reg_lambda": 1.0, "n_estimators": 500},  # the defaults before
    {"num_leaves": 4, "min_child_samples": 100},
    {"num_leaves": 5, "min_child_samples": 200},
    {"learning_rate": 0.015, "early_stopping_rounds": 100},
    {"lgbm": {"path_smooth": 20.0}},
]

FIT_SNIPPET = """
import contextlib, io, json, sys
from pathlib import Path
from mlops.training import features, metrics, model
cache, hyper, candidates = Path(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
frame, parts = features.read_channel(cache)
train, valid = features.select_split(frame, "train"), features.select_split(frame, "validation")
spec = features.spec_from_frame(train, parts)
xt, yt = features.model_inputs(train, spec), features.labels(train, spec)
xv, yv = features.model_inputs(valid, spec), features.labels(valid, spec)
for cand in candidates:
    extra = cand.get("lgbm", {})
    hp = model.coerce_hyperparameters({**hyper, **{k: v for k, v in cand.items() if k != "lgbm"}})
    pipe = model.build_pipeline(spec, hp)
    pipe.named_steps["classifier"].set_params(**extra)
    with contextlib.redirect_stdout(io.StringIO()):
        model.fit(pipe, xt, yt, xv, yv, hp["early_stopping_rounds"], hp["early_stopping_min_delta"])
    proba = pipe.predict_proba(xv)
    print(json.dumps({"candidate": cand, "validation_map": metrics.mean_average_precision(yv, proba, spec.classes),
                      "validation_mlogloss": metrics.log_loss(yv, proba, spec.classes),
                      "best_iteration": int(pipe.named_steps["classifier"].best_iteration_ or 0)}), flush=True)
"""


def curated_path(seed: int, orders: int, cache: Path, with_test: bool = False) -> Path:
    """The seed's curated table, built once and cached: train and validation splits only (what tuning may read),
    or ``with_test`` every split (for a benchmark that scores on the test split)."""
    path = cache / f"curated-{seed}-{orders}{'-with-test' if with_test else ''}"
    if not path.exists():
        with tempfile.TemporaryDirectory(prefix="tune-model-") as tmp:
            curated = pandas_features.build_features(source_tables(seed, orders, Path(tmp)))
        staged = cache / f".staging-{path.name}"
        shutil.rmtree(staged, ignore_errors=True)  # a run stopped mid-write
        kept = curated if with_test else curated[curated["split"] != "test"]
        kept.to_parquet(staged, partition_cols=["split"], index=False)
        staged.rename(path)
    return path


def run_in_sagemaker_runtime(snippet: str, data: Path, *arguments: Any) -> list[dict[str, Any]]:
    """Run ``snippet`` on one seed's table in the SageMaker runtime (``arguments`` passed as JSON); the JSON
    lines it prints."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "include"), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    command = [runtime_python("sagemaker"), "-c", snippet, str(data), *(json.dumps(a) for a in arguments)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"fitting failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def score_candidates(data: Path, hyperparameters: dict[str, Any], candidates: list[dict]) -> list[dict[str, Any]]:
    """Fit every candidate on one seed's table in the SageMaker runtime; their validation figures."""
    return run_in_sagemaker_runtime(FIT_SNIPPET, data, hyperparameters, candidates)


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The options naming the demo data: orders per seed, the seeds, and the cache of curated tables."""
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7, 123])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "mlops-tune-model")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(parser)
    parser.add_argument("--candidates", type=Path, help="a JSON list of candidate overrides")
    args = parser.parse_args()
    candidates = json.loads(args.candidates.read_text()) if args.candidates else DEFAULT_CANDIDATES
    hyperparameters = dict(load_config().training.hyperparameters)
    args.cache.mkdir(parents=True, exist_ok=True)
    per_candidate: dict[str, list[float]] = {json.dumps(c, sort_keys=True): [] for c in candidates}
    for seed in args.seeds:
        for result in score_candidates(curated_path(seed, args.orders, args.cache), hyperparameters, candidates):
            per_candidate[json.dumps(result["candidate"], sort_keys=True)].append(result["validation_map"])
            print(json.dumps({"seed": seed, **result}), flush=True)
    ranked = sorted(per_candidate.items(), key=lambda item: -statistics.fmean(item[1]))
    print("mean validation mAP over seeds", args.seeds)
    for name, values in ranked:
        print(f"{statistics.fmean(values):.4f}  " + " ".join(f"{v:.4f}" for v in values) + f"  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
