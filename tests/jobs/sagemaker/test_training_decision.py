"""Per-class decision thresholds: chosen on validation, shipped in the package, applied by inference.py,
shown next to the argmax in the evaluation report."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops.training import decision, evaluate, features, model, model_package, onnx_export, report, synthetic

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
CLASSES = ("cancelled", "delivered", "returned")


def _all_delivered_case(rows: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from probabilities whose argmax is "delivered" on every row."""
    rng = np.random.default_rng(seed)
    p_returned = rng.uniform(0.0, 0.4, rows)
    p_cancelled = rng.uniform(0.0, 0.1, rows)
    proba = np.column_stack([p_cancelled, 1 - p_returned - p_cancelled, p_returned])
    truth = np.asarray(CLASSES)[(proba.cumsum(axis=1) > rng.random((rows, 1))).argmax(axis=1)]
    return truth, proba


def test_thresholds_label_rare_classes_where_argmax_says_delivered_for_everything():
    truth, proba = _all_delivered_case()
    argmax = decision.apply_thresholds(proba, [1.0, 1.0, 1.0])
    assert set(np.asarray(CLASSES)[argmax]) == {"delivered"}
    chosen = decision.choose_thresholds(truth, proba, CLASSES)
    labels = np.asarray(CLASSES)[decision.apply_thresholds(proba, [chosen["thresholds"][c] for c in CLASSES])]
    assert {"returned", "cancelled"} <= set(labels)
    assert chosen["thresholds"]["delivered"] == 1.0  # the most frequent class is the reference
    assert chosen["validation"]["objective_value"] > chosen["validation"]["argmax_objective_value"] + 0.1
    hit_rate = np.mean(truth[labels == "returned"] == "returned")
    assert hit_rate > np.mean(truth == "returned")  # the returns it flags are likelier than a random order's


def test_cost_objective_lowers_the_mean_cost_and_follows_the_matrix():
    truth, proba = _all_delivered_case(seed=1)
    cheap_miss = {"returned": {"delivered": 1.0}, "delivered": {"returned": 1.0}}
    dear_miss = {"returned": {"delivered": 20.0}, "delivered": {"returned": 1.0}}
    flagged = {}
    for name, matrix in (("cheap", cheap_miss), ("dear", dear_miss)):
        chosen = decision.choose_thresholds(truth, proba, CLASSES, "cost", json.dumps(matrix))
        assert chosen["validation"]["objective_value"] >= chosen["validation"]["argmax_objective_value"]
        flagged[name] = int((decision.apply_thresholds(proba, list(chosen["thresholds"].values())) == 2).sum())
    assert flagged["dear"] > flagged["cheap"]  # a costlier missed return flags more orders as returns


@pytest.mark.parametrize(
    ("matrix", "named"),
    [
        ('{"lost": {"delivered": 1}}', "'lost' is not a class"),
        ('{"returned": {"delivered": -1}}', "cost >= 0"),
        ("[1, 2]", "must be an object"),
    ],
)
def test_a_bad_cost_matrix_is_named(matrix, named):
    with pytest.raises(ValueError, match=named):
        decision.parse_cost_matrix(matrix, list(CLASSES))
    with pytest.raises(ValueError, match="needs a cost_matrix"):
        decision.choose_thresholds(["delivered", "returned"], np.eye(3)[[1, 2]], CLASSES, "cost")


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """A trained model's package twice: without decision.json (argmax) and with thresholds chosen on validation."""
    frame = synthetic.curated_features(4000, seed=5)
    train, valid = frame[frame.split == "train"], frame[frame.split == "validation"]
    spec = features.spec_from_frame(train)
    pipeline = model.build_pipeline(spec, {"n_estimators": 60, "num_leaves": 15})
    x_train, x_valid = features.model_inputs(train, spec), features.model_inputs(valid, spec)
    model.fit(pipeline, x_train, features.labels(train, spec), x_valid, features.labels(valid, spec), 0)
    onnx_bytes = onnx_export.to_onnx(pipeline, spec)
    proba = pipeline.predict_proba(x_valid)
    delivered = np.asarray(spec.classes)[proba.argmax(axis=1)] == "delivered"
    chosen = decision.choose_thresholds(features.labels(valid, spec)[delivered], proba[delivered], spec.classes)
    dirs = {}
    for name, document in (("argmax", None), ("thresholds", decision.decision_document(chosen, spec.classes))):
        dirs[name] = tmp_path_factory.mktemp(name)
        model_package.write_model_dir(dirs[name], onnx_bytes, spec, decision=document)
    return spec, dirs, x_valid[delivered], valid[delivered]


def _handler(model_dir: Path):
    module_spec = importlib.util.spec_from_file_location(
        f"inference_{model_dir.name}", model_dir / "code" / "inference.py"
    )
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module, module.model_fn(str(model_dir))


def _predict(model_dir: Path, rows) -> list[dict]:
    module, loaded = _handler(model_dir)
    records = json.loads(rows.to_json(orient="records"))
    body, _ = module.output_fn(module.predict_fn(module.input_fn(json.dumps({"instances": records})), loaded))
    return json.loads(body)["predictions"]


def test_inference_applies_the_packaged_thresholds_and_keeps_the_probabilities(package):
    spec, dirs, rows, _ = package
    assert (dirs["thresholds"] / "decision.json").exists() and not (dirs["argmax"] / "decision.json").exists()
    plain, thresholded = _predict(dirs["argmax"], rows), _predict(dirs["thresholds"], rows)
    assert {p["label"] for p in plain} == {"delivered"}  # argmax: every one of these rows is "delivered"
    assert {p["label"] for p in thresholded} > {"delivered"}
    assert [p["probabilities"] for p in plain] == [p["probabilities"] for p in thresholded]
    thresholds = json.loads((dirs["thresholds"] / "decision.json").read_text())["thresholds"]
    for prediction in thresholded:
        ratio = {c: prediction["probabilities"][c] / thresholds[c] for c in spec.classes}
        assert prediction["label"] == max(ratio, key=ratio.get)


def test_a_decision_file_without_every_class_is_refused_at_load(package, tmp_path):
    spec, dirs, _, _ = package
    broken = tmp_path / "broken"
    model_package.write_model_dir(
        broken, (dirs["argmax"] / "model.onnx").read_bytes(), spec, decision={"thresholds": {}}
    )
    with pytest.raises(ValueError, match="need a positive threshold for every class"):
        _handler(broken)


def test_evaluation_shows_the_confusion_matrix_at_the_thresholds_next_to_argmax(package, tmp_path):
    _, dirs, _, frame = package
    document, _, _ = evaluate.score(dirs["thresholds"], frame, bootstrap_rounds=2)
    chosen = document["decision"]
    argmax, thresholded = chosen["confusion_matrix_argmax"], chosen["confusion_matrix_thresholds"]
    assert sum(row["delivered"] for row in argmax.values()) == len(frame)  # argmax: all "delivered"
    assert sum(row["returned"] + row["cancelled"] for row in thresholded.values()) > 0
    assert argmax == document["multiclass_classification_metrics"]["confusion_matrix"]
    page = report.write_html(tmp_path / "report.html", title="t", challenger=document, champion=None, images=[])
    text = page.read_text()
    assert "argmax: macro-F1" in text and "thresholds: macro-F1" in text and "Decision thresholds" in text
    assert "decision" not in evaluate.score(dirs["argmax"], frame, bootstrap_rounds=2)[0]


def test_evaluation_measures_the_recent_rows_for_both_models(package, tmp_path):
    _, dirs, _, _ = package
    frame = synthetic.curated_features(3000, seed=9)
    frame["order_ts"] = pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(len(frame)) * 3, unit="h")
    synthetic.write_dataset(frame, tmp_path / "data")
    since = frame["order_ts"].iloc[len(frame) // 2]
    argv = ["--model", str(dirs["thresholds"]), "--test", str(tmp_path / "data" / "split=test")]
    argv += ["--champion", str(dirs["argmax"]), "--output", str(tmp_path / "out"), "--bootstrap-rounds", "2"]
    evaluate.evaluate(evaluate.parse_args([*argv, "--trigger", "input_drift", "--recent-since", since.isoformat()]))
    mine = json.loads((tmp_path / "out" / "evaluation.json").read_text())["recent"]
    theirs = json.loads((tmp_path / "out" / "champion_evaluation.json").read_text())["recent"]
    test_rows = frame[frame.split == "test"]
    assert mine["rows"] == theirs["rows"] == int((test_rows["order_ts"] >= since).sum()) >= 200
    assert mine["usable"] and mine["trigger"] == "input_drift" and "drift point" in mine["rule"]
    assert mine["mean_average_precision"] == pytest.approx(theirs["mean_average_precision"])  # same ONNX model
    assert "Recent rows" in (tmp_path / "out" / "report.html").read_text()
    # a drift point after every order: too few rows, so the split's last N days are the recent rows
    late = evaluate.parse_args([*argv, "--recent-since", "2030-01-01", "--recent-days", "60"])
    mask, rule = evaluate.recent_rows(test_rows, late)
    assert "last 60 days" in rule and 0 < mask.sum() < len(test_rows)
