"""Where the model's distance to the feasible reference comes from: missing features, or estimation.

    MLOPS_RUNTIMES=.mlops/venvs PYTHONPATH=include .venv/bin/python bench/bench_model_gap.py \
        [--orders 50000] [--seeds 42 7 123] [--write]

Per seed, the demo data and its curated table are built as ``bench_model_quality.py`` builds them
(generator, pandas features job), with the feasible reference and the hidden-trait posteriors it is
made of. The shipped model (configured hyperparameters, :func:`mlops.training.model.fit` with early
stopping on validation logloss, as ``train.py`` fits it) is then refitted with extra input columns, each
a step closer to what the feasible reference knows:

- ``shipped``: the curated features only (among them the customer's smoothed rates, the data-driven
  form of the customer posteriors below).
- ``+ customer posteriors``: the exact posterior that the customer is a serial returner, and a frequent
  canceller, from the generator's formula (no model can compute these: they need the formula).
- ``+ product posterior``: the exact posterior that the basket holds a defective product.
- ``+ all posteriors``, then ``+ basket logits``: also the formula's return and cancel logits without the
  hidden traits.
- ``+ feasible``: the feasible reference's own probabilities.

Every variant is scored on the validation split by the training metric, against the feasible
reference's mAP on the same rows; the test split is never read. The exact-posterior rows are
diagnostics: they show how much of the distance better history features could close at most, and how
much is the estimation a gradient-boosted model makes from ~40k training rows. ``--write`` replaces
the "Model quality: where the gap is" section of BENCHMARKS.md.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

import bench_model_quality as quality  # noqa: E402  (bench/ is on the path: the script's folder)

from mlops.etl import pandas_features  # noqa: E402
from mlops.runtimes import runtime_python  # noqa: E402
from mlops.schema.curated import LABEL, SPLIT  # noqa: E402
from mlops.training.metrics import mean_average_precision  # noqa: E402

SECTION = "## Model quality: where the gap is"
VARIANTS: dict[str, list[str]] = {
    "shipped": [],
    "+ customer posteriors": ["gap_serial_returner", "gap_frequent_canceller"],
    "+ product posterior": ["gap_defective"],
    "+ all posteriors": ["gap_serial_returner", "gap_frequent_canceller", "gap_defective"],
    "+ all posteriors + basket logits": [
        "gap_serial_returner", "gap_frequent_canceller", "gap_defective", "gap_return_logit", "gap_cancel_logit",
    ],
    "+ feasible": ["gap_feasible_returned", "gap_feasible_cancelled"],
}  # fmt: skip

FIT_SNIPPET = """
import contextlib, dataclasses, io, json, sys
import pandas as pd
from mlops.training import features, metrics, model
frame, hyper, variants = pd.read_parquet(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
train, valid = features.select_split(frame, "train"), features.select_split(frame, "validation")
base = features.spec_from_frame(train.drop(columns=[c for c in frame.columns if c.startswith("gap_")]))
hp = model.coerce_hyperparameters(hyper)
for name, extra in variants.items():
    spec = dataclasses.replace(base, numeric=base.numeric + tuple(extra))
    pipe = model.build_pipeline(spec, hp)
    y_valid = features.labels(valid, spec)
    with contextlib.redirect_stdout(io.StringIO()):
        model.fit(pipe, features.model_inputs(train, spec), features.labels(train, spec),
                  features.model_inputs(valid, spec), y_valid,
                  hp["early_stopping_rounds"], hp["early_stopping_min_delta"])
    proba = pipe.predict_proba(features.model_inputs(valid, spec))
    print(json.dumps({"variant": name, "classes": list(spec.classes),
                      "validation_map": metrics.mean_average_precision(y_valid, proba, spec.classes)}), flush=True)
"""


def gap_frame(seed: int, orders: int, workdir: Path) -> tuple[pd.DataFrame, float]:
    """The seed's train and validation rows with the diagnostic ``gap_`` columns, and the feasible
    reference's validation mAP."""
    tables = quality.source_tables(seed, orders, workdir)
    curated = pandas_features.build_features(tables)
    facts, lines = quality.order_facts(tables)
    _, observable = quality.true_logits(facts, lines)
    combos = quality.combo_probabilities(observable)
    post_rc, p_defective = quality.trait_posteriors(facts, lines, combos)
    feasible = quality.feasible_probabilities(post_rc, p_defective, combos)
    extra = pd.DataFrame({
        "order_id": facts["order_id"].to_numpy(),
        "gap_serial_returner": post_rc[:, 2] + post_rc[:, 3],
        "gap_frequent_canceller": post_rc[:, 1] + post_rc[:, 3],
        "gap_defective": p_defective,
        "gap_return_logit": observable[:, 0],
        "gap_cancel_logit": observable[:, 1],
        **{f"gap_feasible_{c}": feasible[:, i] for i, c in enumerate(quality.CLASSES)},
    })  # fmt: skip
    frame = curated[curated[SPLIT] != "test"].merge(extra, on="order_id", how="left")
    valid = frame[frame[SPLIT] == "validation"]
    feasible_map = mean_average_precision(
        valid[LABEL].to_numpy(), valid[[f"gap_feasible_{c}" for c in quality.CLASSES]].to_numpy(), quality.CLASSES
    )
    return frame, feasible_map


def fit_variants(frame: pd.DataFrame, workdir: Path, hyperparameters: dict[str, Any]) -> dict[str, float]:
    """Validation mAP of every variant, fitted in the SageMaker runtime as train.py fits."""
    path = workdir / "gap.parquet"
    frame.to_parquet(path, index=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "include"), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    done = subprocess.run(
        [runtime_python("sagemaker"), "-c", FIT_SNIPPET, str(path), json.dumps(hyperparameters), json.dumps(VARIANTS)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"fitting failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {r["variant"]: r["validation_map"] for r in results}


def markdown(report: dict[str, Any]) -> str:
    """The BENCHMARKS.md section: per variant, validation mAP per seed and mean, and the mean ratio."""
    seeds = [r["seed"] for r in report["results"]]
    feasible = [r["feasible"] for r in report["results"]]
    lines = [
        SECTION,
        "",
        f"`{report['command']}` on {report['machine']} ({report['date']}). {report['orders']:,} demo orders per "
        "seed; the shipped model refitted with extra input columns (see the script's docstring), scored on the "
        "validation split (the test split is not read) against the feasible reference on the same rows. The "
        "posterior and logit columns come from the generator's formula: diagnostics no model can have.",
        "",
        "| inputs | " + " | ".join(f"seed {s} mAP" for s in seeds) + " | mean mAP | mean / feasible |",
        "|---|" + "---:|" * (len(seeds) + 2),
        "| feasible reference | "
        + " | ".join(f"{v:.4f}" for v in feasible)
        + f" | {statistics.fmean(feasible):.4f} | 1.0000 |",
    ]
    for name in VARIANTS:
        values = [r["variants"][name] for r in report["results"]]
        ratio = statistics.fmean(v / f for v, f in zip(values, feasible, strict=True))
        per_seed = " | ".join(f"{v:.4f}" for v in values)
        lines.append(f"| {name} | {per_seed} | {statistics.fmean(values):.4f} | {ratio:.4f} |")
    lines += ["", *report.get("notes", []), ""]
    return "\n".join(lines)


def run_seed(seed: int, orders: int, workdir: Path, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """One seed: the feasible reference's validation mAP and every variant's."""
    frame, feasible = gap_frame(seed, orders, workdir)
    return {"seed": seed, "feasible": feasible, "variants": fit_variants(frame, workdir, hyperparameters)}


def main() -> int:
    return quality.seed_report(__doc__, "bench_model_gap.py", run_seed, markdown)


if __name__ == "__main__":
    sys.exit(main())
