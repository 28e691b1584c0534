"""Benchmark: early stopping's minimum gain (``early_stopping_min_delta``) on a real curated snapshot.

    MLOPS_RUNTIMES=.mlops/venvs .mlops/venvs/sagemaker/bin/python bench/bench_early_stopping.py \
        --snapshot .mlops/lake/curated/features/snapshots/<id> [--min-delta 0.0001 0.00005]

The snapshot is what ``mlops_features`` wrote (e.g. the retraining run of ``make demo SIZE=1000000``, where
the validation logloss keeps improving by a few 1e-6 per round for a thousand rounds). One process, in this
order: the configured hyperparameters with ``early_stopping_min_delta`` 0 (every gain counts: the
baseline), then each ``--min-delta``. Each fit draws the configured training budget (``max_train_rows``) as
``train.py`` does and runs the pipeline's ``model.fit``; mAP (the gate's metric) on the whole validation and
test splits. Printed per run: boosting rounds, fit seconds, validation and test mAP, and fit time and test
mAP against the baseline of the same run.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

from bench_training_budget import fit_once, load  # noqa: E402  (bench/ is on the path)
from snapshot_args import parse_snapshot_args, snapshot_parser  # noqa: E402

from mlops.config import load_config  # noqa: E402
from mlops.training import model  # noqa: E402


def main() -> int:
    parser = snapshot_parser(__doc__.splitlines()[0])
    parser.add_argument("--min-delta", type=float, nargs="+", default=[1e-4, 5e-5], help="minimum gains to compare")
    args = parse_snapshot_args(parser)
    configured = model.coerce_hyperparameters(load_config().training.hyperparameters)
    spec, splits = load(args.snapshot)
    print(f"snapshot {args.snapshot.name}: {len(splits['train'][0]):,} train rows", flush=True)
    runs = []
    for delta in [0.0, *args.min_delta]:
        hyperparameters = {**configured, "early_stopping_min_delta": delta}
        runs.append({"delta": delta, **fit_once(spec, splits, hyperparameters, configured["max_train_rows"])})
        print(f"min_delta {delta:g}: {runs[-1]['rounds']} rounds in {runs[-1]['fit_s']:.1f}s", flush=True)
    base = runs[0]
    print("| min_delta | train rows | rounds | fit s | validation mAP | test mAP | fit time vs 0 | test mAP vs 0 |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        print(
            f"| {run['delta']:g} | {run['rows']:,} | {run['rounds']} | {run['fit_s']:.1f} | {run['validation']:.4f} "
            f"| {run['test']:.4f} | {run['fit_s'] / base['fit_s']:.2f}x | {run['test'] - base['test']:+.4f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
