"""Benchmark: two ways to cut the model's estimation error at 40k training rows (issue 18), on validation only.

    MLOPS_RUNTIMES=.mlops/venvs PYTHONPATH=include .venv/bin/python bench/bench_model_estimation.py \
        [--orders 50000] [--seeds 42 7 123] [--fit-seeds 42 1 2] [--cache DIR]

The data per seed is ``tune_model.py``'s (demo generator, pandas features job; cached under ``--cache``, test
split left out). Each comparison is measured in the same process, for every LightGBM seed in ``--fit-seeds``,
scored by the training metric (mAP) on the validation split:

- **more rows**: what refitting on train + validation after early stopping would gain, mirrored inside the
  train split: *before* fits on 8/9 of it with early stopping on the other 1/9 (the shipped procedure at 8/9 of
  the rows), *after* refits on all of it for the rounds *before* stopped at, times 9/8.
- **linear logits as inputs**: *before* is the shipped fit (early stopping on validation); *after* adds the logits
  of a multinomial logistic regression (standardised numerics, one-hot categoricals; cross-fitted over 5 folds on
  the train split, refitted on all of it for validation) as three more numeric inputs.
- **both**: *before* as in "more rows"; *after* the linear logits as inputs, early-stopped on 8/9 of the train split
  and refitted on all of it for those rounds times 9/8.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))
sys.path.insert(0, str(ROOT / "bench"))

from tune_model import add_data_arguments, curated_path, run_in_sagemaker_runtime  # noqa: E402

from mlops.config import load_config  # noqa: E402

FIT_SNIPPET = """
import contextlib, dataclasses, hashlib, io, json, sys
from pathlib import Path
import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from mlops.training import features, metrics, model

cache, hyper, fit_seeds = Path(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
frame, parts = features.read_channel(cache)
train, valid = features.select_split(frame, "train"), features.select_split(frame, "validation")
spec = features.spec_from_frame(train, parts)
x, y = (lambda f: features.model_inputs(f, spec)), (lambda f: features.labels(f, spec))
ninth = train["order_id"].astype(str).map(lambda k: int(hashlib.sha256(k.encode()).hexdigest()[8:16], 16) % 9)
part, held = train[ninth != 0], train[ninth == 0]
kept = (ninth != 0).to_numpy()
xt, yt, xv, yv = x(train), y(train), x(valid), y(valid)

def fitted(spec_, hp, xa, ya, xb, yb, rounds=None):
    pipe = model.build_pipeline(spec_, hp if rounds is None else {**hp, "n_estimators": rounds})
    with contextlib.redirect_stdout(io.StringIO()):
        model.fit(pipe, xa, ya, xb, yb, 0 if rounds else hp["early_stopping_rounds"], hp["early_stopping_min_delta"])
    return pipe

def score(pipe, xs):
    return metrics.mean_average_precision(yv, pipe.predict_proba(xs), spec.classes)

def linear():
    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), list(spec.numeric)),
        ("cat", OneHotEncoder(handle_unknown="ignore"), list(spec.categorical))])
    return Pipeline([("pre", pre), ("lr", LogisticRegression(C=1.0, max_iter=2000))])

crossed = np.zeros((len(xt), len(spec.classes)))
for fold, rest in KFold(5, shuffle=True, random_state=0).split(xt):
    crossed[rest] = linear().fit(xt.iloc[fold], np.asarray(yt)[fold]).decision_function(xt.iloc[rest])
whole = linear().fit(xt, yt)
names = tuple(f"linear_logit_{c}" for c in spec.classes)
xt2, xv2 = xt.copy(), xv.copy()
for k, name in enumerate(names):
    xt2[name], xv2[name] = crossed[:, k], whole.decision_function(xv)[:, k]
stacked = dataclasses.replace(spec, numeric=(*spec.numeric, *names))
linear_alone = metrics.mean_average_precision(yv, whole.predict_proba(xv), spec.classes)
for fit_seed in fit_seeds:
    hp = model.coerce_hyperparameters({**hyper, "seed": fit_seed})
    before = fitted(spec, hp, x(part), y(part), x(held), y(held))
    rounds = int(before.named_steps["classifier"].best_iteration_ or hp["n_estimators"])
    after = fitted(spec, hp, xt, yt, x(held), y(held), rounds=max(1, round(rounds * 9 / 8)))
    shipped = fitted(spec, hp, xt, yt, xv, yv)
    with_logits = fitted(stacked, hp, xt2, yt, xv2, yv)
    logits_part = fitted(stacked, hp, xt2[kept], y(part), xt2[~kept], y(held))
    logits_rounds = int(logits_part.named_steps["classifier"].best_iteration_ or hp["n_estimators"])
    both = fitted(stacked, hp, xt2, yt, xt2[~kept], y(held), rounds=max(1, round(logits_rounds * 9 / 8)))
    print(json.dumps({"fit_seed": fit_seed, "rounds": rounds, "linear_alone": linear_alone,
                      "more_rows": [score(before, xv), score(after, xv)],
                      "linear_logits": [score(shipped, xv), score(with_logits, xv2)],
                      "both": [score(before, xv), score(both, xv2)]}), flush=True)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(parser)
    parser.add_argument("--fit-seeds", type=int, nargs="+", default=[42, 1, 2])
    args = parser.parse_args()
    hyperparameters = dict(load_config().training.hyperparameters)
    args.cache.mkdir(parents=True, exist_ok=True)
    print("| seed | comparison | before (mean validation mAP) | after | after / before | after > before |")
    print("|---|---|---:|---:|---:|---:|")
    gains: dict[str, list[float]] = {"more_rows": [], "linear_logits": [], "both": []}
    for seed in args.seeds:
        results = run_in_sagemaker_runtime(
            FIT_SNIPPET, curated_path(seed, args.orders, args.cache), hyperparameters, args.fit_seeds
        )
        for comparison in gains:
            before = statistics.fmean(r[comparison][0] for r in results)
            after = statistics.fmean(r[comparison][1] for r in results)
            wins = f"{sum(r[comparison][1] > r[comparison][0] for r in results)}/{len(results)}"
            gains[comparison].append(after - before)
            print(f"| {seed} | {comparison} | {before:.4f} | {after:.4f} | {after / before:.4f} | {wins} |")
        print(f"| {seed} | linear model alone | {results[0]['linear_alone']:.4f} | | | |", flush=True)
    for comparison, deltas in gains.items():
        print(f"{comparison}: mean gain {statistics.fmean(deltas):+.4f} mAP over seeds {args.seeds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
