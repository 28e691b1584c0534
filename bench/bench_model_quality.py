"""Model quality against what the demo data allows: oracle, feasible and the trained model, over seeds.

    MLOPS_RUNTIMES=.mlops/venvs PYTHONPATH=include .venv/bin/python bench/bench_model_quality.py \
        [--orders 50000] [--seeds 42 7 123] [--write]

For each seed, in one run on this machine:

1. ``mlops generate``'s generator (:func:`mlops.source.generator.generate`, the configured start
   date and span) writes ``--orders`` orders into a fresh SQLite source DB.
2. The pandas features job (:mod:`mlops.etl.pandas_features`, the same rules as the Glue job and
   checked against it by the parity test) turns the four tables into the curated table: the same
   columns, the same leak-free history and the same hash split as the pipeline.
3. ``train.py`` trains on it with the configured hyperparameters, in a subprocess of the SageMaker
   runtime, as the training job does; the native model scores the test split (``model``).
4. On the same test rows, two references, both scored with the training metric
   (:func:`mlops.training.metrics.mean_average_precision`, one-vs-rest AP averaged over classes):

   - **oracle**: the generator's own class probabilities
     (:func:`mlops.source.generator.outcome_probabilities` on each order's facts, hidden traits
     included: serial returner, frequent canceller, defective product). Nothing can beat it on
     average; no model can reach it, because the traits are hidden.
   - **feasible**: the same formula with each hidden trait replaced by its posterior given the
     leak-free history an order has when it is placed: the customer's earlier orders and the
     product's earlier orders whose outcome was already known (terminal before this order's
     time). Per customer the posterior is over the four (serial returner, frequent canceller)
     combinations, from the likelihood of each known outcome under each combination (the order's
     own defect indicator marginalised with its prior); per product the posterior of being
     defective comes from the known outcomes of the orders that held it (customer traits
     marginalised with their prior). The prediction mixes the generator's probabilities over the
     eight trait combinations with those posteriors. It is the best score a model could reach
     from leak-free history if it knew the generator's formula; the customer and product
     posteriors are computed independently, so it is a close reference, not a strict bound.

The ratios model/feasible and model/oracle are printed per seed, with means and medians over the
seeds. The test split is a sample (about 5,000 orders per seed at 50k), so model/feasible is an estimate:
its 90% bootstrap interval per seed (the test rows resampled with replacement, model and feasible scored on
the same resample) and the standard error of the seeds' mean say how finely the table can tell two ratios
apart. ``--write`` replaces the "Model quality" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

from benchmarks_md import write_section  # noqa: E402  (bench/ is on the path: the script's folder)

from mlops.config import load_config  # noqa: E402
from mlops.etl import pandas_features  # noqa: E402
from mlops.runtimes import runtime_python  # noqa: E402
from mlops.schema.curated import LABEL_CLASSES  # noqa: E402
from mlops.source import generator as gen  # noqa: E402
from mlops.source.db import make_engine  # noqa: E402
from mlops.training.metrics import mean_average_precision, per_class_average_precision  # noqa: E402

SECTION = "## Model quality"
CLASSES = tuple(LABEL_CLASSES)  # delivered, returned, cancelled: the generator's probability columns
BOOTSTRAP_ROUNDS = 300  # resamples of the test rows behind the resolution line
# The generator's weights of its hidden traits (mlops.source.generator.outcome_probabilities).
SERIAL_RETURNER_WEIGHT, CANCELLER_WEIGHT, DEFECTIVE_WEIGHT = 1.8, 1.6, 1.0
P_SERIAL, P_CANCELLER, P_DEFECTIVE = 0.10, 0.08, 0.05

TRAIN_SNIPPET = """
import json, sys
from pathlib import Path
import joblib, pandas as pd
from mlops.training import features, train
data, out, hyper = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
args = train.parse_args([
    "--train", str(data / "split=train"), "--validation", str(data / "split=validation"),
    "--test", str(data / "split=test"), "--model-dir", str(out / "model"),
    "--output-data-dir", str(out / "data"), "--output-dir", str(out / "out"),
] + [t for k, v in hyper.items() for t in (f"--{k}", str(v))])
summary = train.train(args)
spec = features.FeatureSpec.load(out / "model" / "feature_spec.json")
test, _ = features.read_channel(data / "split=test")
pipeline = joblib.load(out / "data" / "native_model.joblib")
proba = pipeline.predict_proba(features.model_inputs(test, spec))
frame = pd.DataFrame(proba, columns=list(spec.classes))
frame.insert(0, "order_id", test["order_id"].to_numpy())
frame.to_parquet(out / "test_proba.parquet")
print(json.dumps({"best_iteration": summary["best_iteration"], "validation_map": summary["metrics"]["validation:mAP"],
                  "features": len(spec.columns)}))
"""


def source_tables(seed: int, orders: int, workdir: Path) -> dict[str, pd.DataFrame]:
    """Generate a fresh source DB as ``mlops generate`` does and read its four tables."""
    source = load_config().source
    engine = make_engine(f"sqlite:///{workdir / f'source-{seed}.db'}")
    gen.generate(engine, orders=orders, seed=seed, start_date=source.start_date, days=source.days)
    tables = {}
    with engine.connect() as conn:
        for name in ("customers", "products", "orders", "order_items"):
            frame = pd.read_sql_table(name, conn)
            for column in ("unit_price", "weight_kg", "shipping_fee", "discount_pct"):
                if column in frame.columns:
                    frame[column] = frame[column].astype("float64")
            tables[name] = frame
    engine.dispose()
    return tables


def _epoch(values: pd.Series) -> np.ndarray:
    return values.astype("datetime64[s]").astype("int64").to_numpy()


def order_facts(tables: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-order facts of the generator's outcome model, and the order lines with their order's position."""
    orders = tables["orders"].sort_values("order_id").reset_index(drop=True)
    customers = tables["customers"].set_index("customer_id")
    products = tables["products"].set_index("product_id")
    lines = tables["order_items"].merge(orders[["order_id"]].reset_index(names="pos"), on="order_id")
    lines["category"] = gen.encode(products["category"].reindex(lines["product_id"]).reset_index(drop=True),
                                   gen.CATEGORIES)  # fmt: skip
    lines["is_fragile"] = products["is_fragile"].reindex(lines["product_id"]).to_numpy(bool)
    orders["country"] = customers["country"].reindex(orders["customer_id"]).to_numpy()
    orders["segment"] = customers["segment"].reindex(orders["customer_id"]).to_numpy()
    orders["signup"] = _epoch(customers["signup_ts"].reindex(orders["customer_id"]).reset_index(drop=True))
    orders["t"], orders["done_t"] = _epoch(orders["order_ts"]), _epoch(orders["updated_at"])
    return orders, lines


def true_logits(orders: pd.DataFrame, lines: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(orders, 3) generator probabilities, and the return/cancel logits without the hidden-trait terms."""
    pos = lines["pos"].to_numpy()
    defective = gen.defective_product(lines["product_id"].to_numpy())
    basket = gen.basket_features(
        pos, len(orders), lines["category"].to_numpy(), lines["is_fragile"].to_numpy(), defective,
        lines["discount_pct"].to_numpy(float), lines["quantity"].to_numpy(float), lines["unit_price"].to_numpy(float),
    )  # fmt: skip
    customer = orders["customer_id"].to_numpy(np.int64)
    facts = gen.OutcomeFeatures(
        customer_id=customer, channel=gen.encode(orders["channel"], gen.CHANNELS),
        payment=gen.encode(orders["payment_method"], gen.PAYMENT_METHODS),
        segment=gen.encode(orders["segment"], gen.SEGMENTS), promised_days=orders["promised_days"].to_numpy(),
        cross_border=(orders["ship_country"] != orders["country"]).to_numpy(),
        tenure_days=(orders["t"] - orders["signup"]).to_numpy() / gen.DAY, **basket,
    )  # fmt: skip
    proba = gen.outcome_probabilities(facts, gen.DriftSpec())
    returned = np.log(proba[:, 1] / proba[:, 0]) - SERIAL_RETURNER_WEIGHT * gen.serial_returner(customer)
    returned -= DEFECTIVE_WEIGHT * basket["any_defective"]
    cancelled = np.log(proba[:, 2] / proba[:, 0]) - CANCELLER_WEIGHT * gen.frequent_canceller(customer)
    return proba, np.column_stack([returned, cancelled])


def combo_probabilities(observable: np.ndarray) -> np.ndarray:
    """(orders, 8, 3) probabilities under each (serial returner, canceller, defective) combination."""
    out = np.empty((len(observable), 8, 3))
    for combo in range(8):
        serial, canceller, defective = combo >> 2 & 1, combo >> 1 & 1, combo & 1
        ret = observable[:, 0] + SERIAL_RETURNER_WEIGHT * serial + DEFECTIVE_WEIGHT * defective
        canc = observable[:, 1] + CANCELLER_WEIGHT * canceller
        logits = np.column_stack([np.zeros(len(ret)), ret, canc])
        expo = np.exp(logits - logits.max(axis=1, keepdims=True))
        out[:, combo] = expo / expo.sum(axis=1, keepdims=True)
    return out


def as_of_sums(entity: np.ndarray, event_t: np.ndarray, values: np.ndarray, query_t: np.ndarray) -> np.ndarray:
    """Per query (one per order, same entity array order), the sum of ``values`` of the entity's
    events strictly before the query time. ``entity``/``event_t``/``values`` describe the events;
    the queries are passed as the first ``len(query_t)`` rows of ``entity``."""
    n_query = len(query_t)
    times = np.r_[query_t, event_t]
    kind = np.r_[np.zeros(n_query), np.ones(len(event_t))]  # a query sorts before an event at the same time
    padded = np.vstack([np.zeros((n_query, values.shape[1])), values])
    order = np.lexsort((kind, times, entity))
    running = np.zeros_like(padded)
    frame = pd.DataFrame(padded[order]).groupby(entity[order]).cumsum().to_numpy()
    running[order] = frame
    return running[:n_query]


def trait_posteriors(orders: pd.DataFrame, lines: pd.DataFrame, combos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per order, the leak-free posteriors of the hidden traits: (orders, 4) over the customer's
    (serial returner, frequent canceller) pairs, in ``combo >> 1`` order, and (orders,) that the
    basket holds a defective product."""
    outcome = orders["status"].map({c: i for i, c in enumerate(CLASSES)}).fillna(-1).to_numpy(np.int64)
    terminal = outcome >= 0
    customer_ll, product_ll = (
        _customer_evidence(orders, lines, combos, outcome),
        _product_evidence(lines, combos, outcome),
    )
    customer_prior = np.log([(1 - P_SERIAL) * (1 - P_CANCELLER), (1 - P_SERIAL) * P_CANCELLER,
                             P_SERIAL * (1 - P_CANCELLER), P_SERIAL * P_CANCELLER])  # fmt: skip
    cust = orders["customer_id"].to_numpy()
    done = np.flatnonzero(terminal)
    entity = np.r_[cust, cust[done]]
    known = as_of_sums(entity, orders["done_t"].to_numpy()[done], customer_ll[done], orders["t"].to_numpy())
    log_post = known + customer_prior
    post_rc = np.exp(log_post - log_post.max(axis=1, keepdims=True))
    post_rc /= post_rc.sum(axis=1, keepdims=True)
    return post_rc, _basket_defect_posterior(orders, lines, product_ll, terminal)


def feasible_probabilities(post_rc: np.ndarray, p_defective: np.ndarray, combos: np.ndarray) -> np.ndarray:
    """Mix the eight combinations with the leak-free posteriors of the hidden traits."""
    mixed = np.zeros((len(post_rc), 3))
    for combo in range(8):
        rc, defective = combo >> 1, combo & 1
        weight = post_rc[:, rc] * (p_defective if defective else 1 - p_defective)
        mixed += weight[:, None] * combos[:, combo]
    return mixed


def _customer_evidence(
    orders: pd.DataFrame, lines: pd.DataFrame, combos: np.ndarray, outcome: np.ndarray
) -> np.ndarray:
    """(orders, 4) log-likelihood of each terminal order's outcome under each customer-trait pair."""
    distinct = (
        lines.drop_duplicates(["pos", "product_id"]).groupby("pos").size().reindex(range(len(orders)), fill_value=0)
    )
    q = 1 - (1 - P_DEFECTIVE) ** distinct.to_numpy()  # prior that the basket holds a defective product
    picked = combos[np.arange(len(orders)), :, np.maximum(outcome, 0)]  # (orders, 8)
    ll = np.zeros((len(orders), 4))
    for rc in range(4):
        ll[:, rc] = np.log((1 - q) * picked[:, 2 * rc] + q * picked[:, 2 * rc + 1])
    return ll


def _product_evidence(lines: pd.DataFrame, combos: np.ndarray, outcome: np.ndarray) -> pd.DataFrame:
    """Per distinct (order, product): log-likelihood ratio of the order's outcome, product defective vs not."""
    pairs = lines.drop_duplicates(["pos", "product_id"])[["pos", "product_id"]].copy()
    others = pairs.groupby("pos")["product_id"].transform("size").to_numpy() - 1
    rc_prior = np.array([(1 - P_SERIAL) * (1 - P_CANCELLER), (1 - P_SERIAL) * P_CANCELLER,
                         P_SERIAL * (1 - P_CANCELLER), P_SERIAL * P_CANCELLER])  # fmt: skip
    pos = pairs["pos"].to_numpy()
    picked = combos[pos, :, np.maximum(outcome[pos], 0)]
    with_defect = picked[:, 1::2] @ rc_prior
    without = picked[:, 0::2] @ rc_prior
    q_other = 1 - (1 - P_DEFECTIVE) ** others
    pairs["llr"] = np.log(with_defect) - np.log((1 - q_other) * without + q_other * with_defect)
    return pairs


def _basket_defect_posterior(
    orders: pd.DataFrame, lines: pd.DataFrame, product_ll: pd.DataFrame, terminal: np.ndarray
) -> np.ndarray:
    """Per order, the posterior that any of its products is defective, from earlier known outcomes."""
    pairs = lines.drop_duplicates(["pos", "product_id"])[["pos", "product_id"]]
    evidence = product_ll[terminal[product_ll["pos"].to_numpy()]]
    done_t = orders["done_t"].to_numpy()[evidence["pos"].to_numpy()]
    entity = np.r_[pairs["product_id"].to_numpy(), evidence["product_id"].to_numpy()]
    query_t = orders["t"].to_numpy()[pairs["pos"].to_numpy()]
    llr = as_of_sums(entity, done_t, evidence[["llr"]].to_numpy(), query_t)[:, 0]
    prior = np.log(P_DEFECTIVE / (1 - P_DEFECTIVE))
    log_clean = -np.logaddexp(0.0, llr + prior)  # log P(product not defective | its known outcomes)
    clean = pd.Series(log_clean).groupby(pairs["pos"].to_numpy()).sum()
    return 1 - np.exp(clean.reindex(range(len(orders)), fill_value=0.0).to_numpy())


def train_model(curated: pd.DataFrame, workdir: Path, hyperparameters: dict[str, Any]) -> tuple[pd.DataFrame, dict]:
    """Train with train.py in the SageMaker runtime; the native model's test-split probabilities."""
    data, out = workdir / "curated", workdir / "train"
    curated.to_parquet(data, partition_cols=["split"], index=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "include"), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    done = subprocess.run(
        [runtime_python("sagemaker"), "-c", TRAIN_SNIPPET, str(data), str(out), json.dumps(hyperparameters)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"train.py failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return pd.read_parquet(out / "test_proba.parquet"), json.loads(done.stdout.strip().splitlines()[-1])


def scores(truth: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """mAP and per-class AP with the training metric; ``proba`` columns follow CLASSES."""
    per_class = per_class_average_precision(truth, proba, CLASSES)
    return {"mAP": mean_average_precision(truth, proba, CLASSES), **{f"AP_{c}": v for c, v in per_class.items()}}


def ratio_bootstrap(truth: np.ndarray, model: np.ndarray, reference: np.ndarray, rounds: int) -> dict[str, float]:
    """Spread of mAP(model) / mAP(reference) over ``rounds`` seeded resamples of the rows: standard deviation (the
    ratio's standard error) and the 5th and 95th percentiles."""
    rng = np.random.default_rng(0)
    ratios = []
    for _ in range(rounds):
        rows = rng.integers(0, len(truth), len(truth))
        ratios.append(mean_average_precision(truth[rows], model[rows], CLASSES)
                      / mean_average_precision(truth[rows], reference[rows], CLASSES))  # fmt: skip
    return {"se": float(np.std(ratios)), "p5": float(np.percentile(ratios, 5)), "p95": float(np.percentile(ratios, 95))}


def run_seed(seed: int, orders: int, workdir: Path, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """Generate, build features, train, and score oracle, feasible and model on the test split."""
    started = time.perf_counter()
    tables = source_tables(seed, orders, workdir)
    curated = pandas_features.build_features(tables)
    facts, lines = order_facts(tables)
    oracle, observable = true_logits(facts, lines)
    combos = combo_probabilities(observable)
    feasible = feasible_probabilities(*trait_posteriors(facts, lines, combos), combos)
    model_proba, fit = train_model(curated, workdir, hyperparameters)
    test = curated[curated["split"] == "test"][["order_id", "label"]]
    rows = facts.reset_index(names="pos").set_index("order_id").loc[test["order_id"], "pos"].to_numpy()
    model_rows = model_proba.set_index("order_id").loc[test["order_id"], list(CLASSES)].to_numpy()
    truth = test["label"].to_numpy()
    result = {
        "seed": seed,
        "curated_rows": len(curated),
        "test_rows": len(test),
        "features": fit["features"],
        "best_iteration": fit["best_iteration"],
        "oracle": scores(truth, oracle[rows]),
        "feasible": scores(truth, feasible[rows]),
        "model": scores(truth, model_rows),
        "calibration": {
            c: [round(float(np.mean(truth == c)), 4), round(float(oracle[rows, i].mean()), 4)]
            for i, c in enumerate(CLASSES)
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    result["model_over_feasible"] = result["model"]["mAP"] / result["feasible"]["mAP"]
    result["model_over_feasible_bootstrap"] = ratio_bootstrap(truth, model_rows, feasible[rows], BOOTSTRAP_ROUNDS)
    result["model_over_oracle"] = result["model"]["mAP"] / result["oracle"]["mAP"]
    return result


def summary_rows(results: list[dict[str, Any]]) -> list[tuple[str, list[float]]]:
    """The figures of the table, per seed, in column order."""
    rows = []
    for r in results:
        values = [r["oracle"]["mAP"], r["feasible"]["mAP"], r["model"]["mAP"], r["model"]["AP_returned"],
                  r["model"]["AP_cancelled"], r["model_over_feasible"], r["model_over_oracle"]]  # fmt: skip
        rows.append((str(r["seed"]), values))
    columns = list(zip(*(values for _, values in rows), strict=True))
    rows.append(("mean", [statistics.fmean(c) for c in columns]))
    rows.append(("median", [statistics.median(c) for c in columns]))
    return rows


def markdown(report: dict[str, Any]) -> str:
    """The BENCHMARKS.md section."""
    lines = [
        SECTION,
        "",
        f"`{report['command']}` on {report['machine']} ({report['date']}). Demo generator (`mlops generate`), "
        f"{report['orders']:,} orders per seed; curated table by the pandas features job; `train.py` with the "
        f"configured hyperparameters; scores on the test split of the pipeline's hash split, with the training "
        f"metric (mAP = mean one-vs-rest AP). Oracle = the generator's true probabilities (hidden traits known); "
        f"feasible = the same formula with the hidden traits replaced by their posterior from leak-free history "
        f"(see the script's docstring). Model features: {report['results'][0]['features']}.",
        "",
        "| seed | oracle mAP | feasible mAP | model mAP | model returns AP | model cancels AP "
        "| model/feasible | model/oracle |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, values in summary_rows(report["results"]):
        lines.append(f"| {name} | " + " | ".join(f"{v:.4f}" for v in values) + " |")
    spreads = [(r["seed"], r["model_over_feasible_bootstrap"]) for r in report["results"]]
    mean_se = math.sqrt(sum(b["se"] ** 2 for _, b in spreads)) / len(spreads)
    lines += [
        "",
        f"Resolution: model/feasible's 90% bootstrap interval over {BOOTSTRAP_ROUNDS} resamples of each seed's test "
        "rows: "
        + "; ".join(f"seed {s} {b['p5']:.4f}-{b['p95']:.4f} (SE {b['se']:.4f})" for s, b in spreads)
        + f". Standard error of the {len(spreads)} seeds' mean: {mean_se:.4f}.",
        "",
        *report.get("notes", []),
        "",
    ]
    return "\n".join(lines)


def runtime_versions() -> str:
    """The model libraries' versions in the SageMaker runtime that trains: a figure that moves between two runs of
    the same code can then be traced to them (or ruled out)."""
    names = ("lightgbm", "sklearn", "numpy", "pandas")
    code = f"import importlib; print(' '.join(m + ' ' + importlib.import_module(m).__version__ for m in {names!r}))"
    return subprocess.run(
        [runtime_python("sagemaker"), "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def command_options(argv: list[str]) -> str:
    """The command line's options for the report, each ``--note`` text shortened to ``...`` (it is printed below)."""
    return " ".join("..." if i and argv[i - 1] == "--note" else arg for i, arg in enumerate(argv))


def seed_report(
    doc: str,
    script: str,
    run: Callable[[int, int, Path, dict[str, Any]], dict[str, Any]],
    render: Callable[[dict], str],
) -> int:
    """The seeds loop both model benchmarks share: parse the options, ``run(seed, orders, workdir, hyperparameters)``
    per seed (each result printed as a JSON line), print ``render(report)`` and, with ``--write``, put it in
    BENCHMARKS.md."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7, 123])
    parser.add_argument("--write", action="store_true", help="replace this benchmark's section of BENCHMARKS.md")
    parser.add_argument("--note", action="append", default=[], help="a line appended under the table")
    args = parser.parse_args()
    hyperparameters = dict(load_config().training.hyperparameters)
    report: dict[str, Any] = {
        "command": f"PYTHONPATH=include .venv/bin/python bench/{script} " + command_options(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
        f"training runtime {runtime_versions()}",
        "date": time.strftime("%Y-%m-%d"),
        "orders": args.orders,
        "results": [],
        "notes": args.note,
    }
    with tempfile.TemporaryDirectory(prefix=f"{Path(script).stem}-") as tmp:
        for seed in args.seeds:
            workdir = Path(tmp) / f"seed-{seed}"
            workdir.mkdir()
            result = run(seed, args.orders, workdir, hyperparameters)
            report["results"].append(result)
            print(json.dumps(result), flush=True)
    section = render(report)
    print(section)
    if args.write:
        write_section(section)
    return 0


def main() -> int:
    return seed_report(__doc__, "bench_model_quality.py", run_seed, markdown)


if __name__ == "__main__":
    sys.exit(main())
