"""Benchmark: ways to cut the model's estimation error at 40k training rows (issue 18), on validation or on test.

    MLOPS_RUNTIMES=.mlops/venvs PYTHONPATH=include .venv/bin/python bench/bench_model_estimation.py \
        [--orders 50000] [--seeds 42 7 123] [--fit-seeds 42 1 2] [--cache DIR] [--split validation|test]

The data per seed is ``tune_model.py``'s (demo generator, pandas features job; cached under ``--cache``). Every
comparison is measured in the same process, for every LightGBM seed in ``--fit-seeds``, scored by the training
metric (mAP) on the scored split, against *before*: the shipped procedure (fit with early stopping, native
probabilities). Three row sets play the roles of train.py's splits:

- ``--split validation`` (default; the test split is never read): *fit* = 8/9 of the train split, *stop* = the
  other 1/9, *scored* = the validation split. A proxy, for choosing a procedure.
- ``--split test``: *fit* = train, *stop* = validation, *scored* = test: the procedure as it would ship, scored as
  ``bench_model_quality.py`` scores it. Run it once, for a procedure chosen on validation.

The comparisons (*after*):

- **more rows**: a refit on *fit* + *stop* (train + validation, when shipped) for *before*'s rounds scaled by the
  rows (about 9/8).
- **linear logits**: the logits of a multinomial logistic regression (standardised numerics, one-hot
  categoricals; cross-fitted over 5 folds on *fit*, refitted on all of it for the other rows) as three more
  numeric inputs, early-stopped on *stop*.
- **both**: the linear logits (cross-fitted on *fit* + *stop*), refitted on *fit* + *stop* for the linear-logits
  fit's rounds scaled by the rows.
- **seed ensemble**: the mean of *before*'s probabilities over the fit seeds, against a single seed's (the mean
  of their scores): what averaging models trained alike buys.
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
import numpy as np, pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from mlops.training import features, metrics, model

cache, (hyper, fit_seeds, scored) = Path(sys.argv[1]), (json.loads(a) for a in sys.argv[2:5])
frame, parts = features.read_channel(cache)
train, valid = features.select_split(frame, "train"), features.select_split(frame, "validation")
spec = features.spec_from_frame(train, parts)
if scored == "validation":
    ninth = train["order_id"].astype(str).map(lambda k: int(hashlib.sha256(k.encode()).hexdigest()[8:16], 16) % 9)
    fit_f, stop_f, scored_f = train[ninth != 0], train[ninth == 0], valid
else:
    fit_f, stop_f, scored_f = train, valid, features.select_split(frame, "test")
refit_f = pd.concat([fit_f, stop_f], ignore_index=True)
scale = len(refit_f) / len(fit_f)
x, y = (lambda f: features.model_inputs(f, spec)), (lambda f: features.labels(f, spec))
(xf, yf), (xs, ys), (xr, yr), (xq, yq) = ((x(f), y(f)) for f in (fit_f, stop_f, refit_f, scored_f))

def fitted(spec_, hp, xa, ya, xb, yb, rounds=None):
    pipe = model.build_pipeline(spec_, hp if rounds is None else {**hp, "n_estimators": rounds})
    with contextlib.redirect_stdout(io.StringIO()):
        model.fit(pipe, xa, ya, xb, yb, 0 if rounds else hp["early_stopping_rounds"], hp["early_stopping_min_delta"])
    return pipe

def rounds_of(pipe, hp):
    return max(1, round(int(pipe.named_steps["classifier"].best_iteration_ or hp["n_estimators"]) * scale))

def score(proba):
    return metrics.mean_average_precision(yq, proba, spec.classes)

def linear():
    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), list(spec.numeric)),
        ("cat", OneHotEncoder(handle_unknown="ignore"), list(spec.categorical))])
    return Pipeline([("pre", pre), ("lr", LogisticRegression(C=1.0, max_iter=2000))])

names = tuple(f"linear_logit_{c}" for c in spec.classes)
stacked = dataclasses.replace(spec, numeric=(*spec.numeric, *names))

def with_logits(xa, ya, *others):  # xa with out-of-fold logits (5 folds); others with the fit on all of xa's
    crossed = np.zeros((len(xa), len(spec.classes)))
    for fold, rest in KFold(5, shuffle=True, random_state=0).split(xa):
        crossed[rest] = linear().fit(xa.iloc[fold], np.asarray(ya)[fold]).decision_function(xa.iloc[rest])
    whole = linear().fit(xa, ya)
    out = []
    for frame_, logits in ((xa, crossed), *((o, whole.decision_function(o)) for o in others)):
        frame_ = frame_.copy()
        for k, name in enumerate(names):
            frame_[name] = logits[:, k]
        out.append(frame_)
    return out

xf2, xs2, xq2 = with_logits(xf, yf, xs, xq)
xr3, xq3 = with_logits(xr, yr, xq)
singles = []
for fit_seed in fit_seeds:
    hp = model.coerce_hyperparameters({**hyper, "seed": fit_seed})
    before = fitted(spec, hp, xf, yf, xs, ys)
    singles.append(before.predict_proba(xq))
    more_rows = fitted(spec, hp, xr, yr, xs, ys, rounds=rounds_of(before, hp))
    logits = fitted(stacked, hp, xf2, yf, xs2, ys)
    both = fitted(stacked, hp, xr3, yr, xs2, ys, rounds=rounds_of(logits, hp))
    base = score(singles[-1])
    print(json.dumps({"fit_seed": fit_seed, "rounds": int(before.named_steps["classifier"].best_iteration_ or 0),
                      "more_rows": [base, score(more_rows.predict_proba(xq))],
                      "linear_logits": [base, score(logits.predict_proba(xq2))],
                      "both": [base, score(both.predict_proba(xq3))]}), flush=True)
print(json.dumps({"seed_ensemble": [float(np.mean([score(p) for p in singles])), score(np.mean(singles, axis=0))],
                  "linear_alone": score(linear().fit(xf, yf).predict_proba(xq))}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(parser)
    parser.add_argument("--fit-seeds", type=int, nargs="+", default=[42, 1, 2])
    parser.add_argument("--split", choices=("validation", "test"), default="validation", help="the scored split")
    args = parser.parse_args()
    hyperparameters = dict(load_config().training.hyperparameters)
    args.cache.mkdir(parents=True, exist_ok=True)
    print(f"| seed | comparison | before (mean {args.split} mAP) | after | after / before | after > before |")
    print("|---|---|---:|---:|---:|---:|")
    gains: dict[str, list[float]] = {"more_rows": [], "linear_logits": [], "both": [], "seed_ensemble": []}
    for seed in args.seeds:
        data = curated_path(seed, args.orders, args.cache, with_test=args.split == "test")
        lines = run_in_sagemaker_runtime(FIT_SNIPPET, data, hyperparameters, args.fit_seeds, args.split)
        fits, whole = lines[:-1], lines[-1]
        for comparison in gains:
            pairs = [r[comparison] for r in fits] if comparison != "seed_ensemble" else [whole[comparison]]
            before = statistics.fmean(b for b, _ in pairs)
            after = statistics.fmean(a for _, a in pairs)
            wins = f"{sum(a > b for b, a in pairs)}/{len(pairs)}"
            gains[comparison].append(after - before)
            print(f"| {seed} | {comparison} | {before:.4f} | {after:.4f} | {after / before:.4f} | {wins} |")
        print(f"| {seed} | linear model alone | {whole['linear_alone']:.4f} | | | |", flush=True)
    for comparison, deltas in gains.items():
        print(f"{comparison}: mean gain {statistics.fmean(deltas):+.4f} {args.split} mAP over seeds {args.seeds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
