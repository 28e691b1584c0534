"""Benchmark: the training budget (``max_train_rows``) on a real curated snapshot, against all train rows.

    MLOPS_RUNTIMES=.mlops/venvs .mlops/venvs/sagemaker/bin/python bench/bench_training_budget.py \
        --snapshot .mlops/lake/curated/features/snapshots/<id> [--rows 250000 500000]

The snapshot is what ``mlops_features`` wrote (e.g. by ``make demo SIZE=1000000``). One process, in this
order: every train row (the baseline), then each ``--rows`` budget, each a seeded random sample of the train
split exactly as ``train.py`` draws it (:func:`mlops.training.train.training_sample`). Every fit uses the
configured hyperparameters (``include/pipeline.yaml``) and the pipeline's ``model.fit`` with early stopping on
the whole validation split; mAP (the gate's metric) is measured on the whole validation and test splits.
Printed per run: train rows, fit seconds, boosting rounds, validation and test mAP, and fit time and mAP
against the baseline of the same run.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

from snapshot_args import parse_snapshot_args, snapshot_parser  # noqa: E402  (bench/ is on the path)

from mlops.config import load_config  # noqa: E402
from mlops.training import features, metrics, model  # noqa: E402
from mlops.training.train import training_sample  # noqa: E402


def load(snapshot: Path) -> tuple[features.FeatureSpec, dict[str, tuple]]:
    """The spec and (inputs, labels) of each split of a curated snapshot (partitioned by split)."""
    frames = {s: features.read_channel(snapshot / f"split={s}") for s in ("train", "validation", "test")}
    spec = features.spec_from_frame(*frames["train"])
    return spec, {s: (features.model_inputs(f, spec), features.labels(f, spec)) for s, (f, _) in frames.items()}


def fit_once(spec, splits: dict[str, tuple], hyperparameters: dict, budget: int) -> dict:
    """Fit on the budget's sample of the train split; fit seconds, rounds, validation and test mAP."""
    x_all, y_all = splits["train"]
    x_train = training_sample(x_all, budget, hyperparameters["seed"])
    y_train = y_all[x_all.index.get_indexer(x_train.index)]
    pipeline = model.build_pipeline(spec, hyperparameters)
    started = time.monotonic()
    model.fit(
        pipeline,
        x_train,
        y_train,
        *splits["validation"],
        hyperparameters["early_stopping_rounds"],
        hyperparameters["early_stopping_min_delta"],
    )
    seconds = time.monotonic() - started
    scores = {
        s: metrics.mean_average_precision(splits[s][1], pipeline.predict_proba(splits[s][0]), spec.classes)
        for s in ("validation", "test")
    }
    rounds = pipeline.named_steps["classifier"].best_iteration_
    return {"rows": len(x_train), "fit_s": seconds, "rounds": rounds, **scores}


def main() -> int:
    args = parse_snapshot_args(snapshot_parser(__doc__.splitlines()[0], [250_000, 500_000], "budgets to compare"))
    hyperparameters = model.coerce_hyperparameters(load_config().training.hyperparameters)
    spec, splits = load(args.snapshot)
    print(f"snapshot {args.snapshot.name}: {len(splits['train'][0]):,} train rows", flush=True)
    runs = [fit_once(spec, splits, hyperparameters, 0)]
    runs += [fit_once(spec, splits, hyperparameters, budget) for budget in args.rows]
    base = runs[0]
    print("| train rows | fit s | rounds | validation mAP | test mAP | fit time vs all | test mAP vs all |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        print(
            f"| {run['rows']:,} | {run['fit_s']:.1f} | {run['rounds']} | {run['validation']:.4f} | {run['test']:.4f} "
            f"| {run['fit_s'] / base['fit_s']:.2f}x | {run['test'] - base['test']:+.4f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
