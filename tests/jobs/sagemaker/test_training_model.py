"""Feature spec, the LightGBM pipeline, ONNX export + parity, and the inference.py contract."""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlops.training import features, model, model_package, onnx_export, synthetic

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def fitted():
    frame = synthetic.curated_features(3000, seed=11)
    train, test = frame[frame.split == "train"], frame[frame.split == "test"]
    spec = features.spec_from_frame(train)
    pipeline = model.build_pipeline(spec, {"n_estimators": 60, "num_leaves": 15})
    x_train, y_train = features.model_inputs(train, spec), features.labels(train, spec)
    model.fit(pipeline, x_train, y_train, features.model_inputs(test, spec), features.labels(test, spec), 0)
    x_test = features.model_inputs(test, spec)
    return spec, pipeline, x_train, x_test, onnx_export.to_onnx(pipeline, spec)


def test_spec_types_columns_and_skips_reserved_and_partitions():
    frame = synthetic.curated_features(400, seed=1)
    frame["order_ts"] = pd.Timestamp("2026-01-01")
    frame["dt"] = "2026-01-01"
    spec = features.spec_from_frame(frame, partition_columns=("dt",))
    assert "shipping_fee" in spec.numeric and "has_fragile" in spec.numeric  # decimal and bool -> numeric
    assert set(spec.categorical) == {"channel", "payment_method", "shipping_method", "country", "top_category"}
    assert spec.ignored == ("order_ts",)
    assert not {"order_id", "label", "split", "dt"} & set(spec.columns)
    assert spec.classes == ("cancelled", "delivered", "returned")
    assert features.FeatureSpec.from_json(spec.to_json()) == spec
    inputs = features.model_inputs(frame, spec)
    assert all(inputs[c].dtype == np.float32 for c in spec.numeric)
    assert (inputs["country"] == features.MISSING_CATEGORY).sum() == frame["country"].isna().sum()


def test_read_channel_reports_hive_partitions(tmp_path: Path):
    synthetic.write_dataset(synthetic.curated_features(200, seed=2), tmp_path / "features")
    frame, partitions = features.read_channel(tmp_path / "features")
    assert partitions == ("split",) and set(frame["split"].astype(str)) == {"train", "validation", "test"}
    only_train, none = features.read_channel(tmp_path / "features" / "split=train")
    assert none == () and "split" not in only_train.columns
    with pytest.raises(ValueError, match="no rows with split='nope'"):
        features.select_split(frame, "nope")


def test_schema_without_features_is_refused():
    schema = pa.schema([("order_id", pa.int64()), ("label", pa.string()), ("split", pa.string())])
    with pytest.raises(ValueError, match="no numeric or string feature columns"):
        features.derive_spec(schema, ["a", "b"])


def test_hyperparameters_are_typed_and_checked():
    hp = model.coerce_hyperparameters({"n_estimators": "120", "learning_rate": "0.1", "class_weight": "balanced"})
    assert hp["n_estimators"] == 120 and hp["learning_rate"] == 0.1 and hp["class_weight"] == "balanced"
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        model.coerce_hyperparameters({"n_trees": 3})
    with pytest.raises(ValueError, match="not a valid int"):
        model.coerce_hyperparameters({"num_leaves": "many"})
    with pytest.raises(ValueError, match="max_train_rows=-5 must be 0"):
        model.coerce_hyperparameters({"max_train_rows": "-5"})
    assert model.coerce_hyperparameters({})["early_stopping_min_delta"] == 0.0
    with pytest.raises(ValueError, match=r"early_stopping_min_delta=-0\.001 must be 0"):
        model.coerce_hyperparameters({"early_stopping_min_delta": "-0.001"})


def test_early_stopping_min_delta_stops_when_gains_get_small():
    frame = synthetic.curated_features(3000, seed=5)
    train, valid = frame[frame.split == "train"], frame[frame.split != "train"]
    spec = features.spec_from_frame(train)
    data = (features.model_inputs(train, spec), features.labels(train, spec))
    data += (features.model_inputs(valid, spec), features.labels(valid, spec))
    rounds = {}
    for delta in (0.0, 1e-3):
        pipeline = model.build_pipeline(spec, {"n_estimators": 400, "learning_rate": 0.05, "num_leaves": 7})
        model.fit(pipeline, *data, early_stopping_rounds=10, min_delta=delta)
        rounds[delta] = pipeline.named_steps["classifier"].best_iteration_
    assert 0 < rounds[1e-3] < rounds[0.0], rounds  # a gain below 1e-3 logloss no longer counts


def test_training_budget_samples_train_rows_reproducibly():
    from mlops.training.train import training_sample

    frame = pd.DataFrame({"order_id": range(1000), "x": np.arange(1000) % 7})
    assert training_sample(frame, 0, 42) is frame and training_sample(frame, 1000, 42) is frame
    first, again, other = (training_sample(frame, 300, seed) for seed in (42, 42, 7))
    assert len(first) == 300 and first["order_id"].is_unique and first.index.is_monotonic_increasing
    assert first.equals(again) and not first.equals(other)
    assert set(first["order_id"]) <= set(frame["order_id"])


def test_training_scores_validation_with_the_export_and_checks_parity_on_a_test_sample(tmp_path, capsys):
    from mlops.training import metrics, train

    frame = synthetic.curated_features(3000, seed=5)
    data = synthetic.write_dataset(frame, tmp_path / "data")
    argv = ["--n_estimators=30", "--num_leaves=7", "--early_stopping_rounds=0", "--parity_rows=100"]
    argv += [f"--{channel}={data}" for channel in ("train", "validation", "test")]
    argv += [f"--model-dir={tmp_path / 'model'}", f"--output-data-dir={tmp_path / 'out'}", f"--output-dir={tmp_path}"]
    result = train.train(train.parse_args(argv))

    test_rows = int((frame.split == "test").sum())
    assert test_rows > 100 and result["rows"] == {**result["rows"], "test": test_rows, "parity": 100}
    assert "ONNX parity checked on 100 of" in capsys.readouterr().out
    # the validation metrics are the exported model's, equal to the native model's on the same rows
    import joblib

    native = joblib.load(tmp_path / "out" / "native_model.joblib")
    valid = frame[frame.split == "validation"]
    spec = features.FeatureSpec.load(tmp_path / "model" / "feature_spec.json")
    x_valid, y_valid = features.model_inputs(valid, spec), features.labels(valid, spec)
    onnx_proba = onnx_export.onnx_probabilities((tmp_path / "model" / "model.onnx").read_bytes(), x_valid, spec)
    assert result["metrics"]["validation:mAP"] == metrics.mean_average_precision(y_valid, onnx_proba, spec.classes)
    native_map = metrics.mean_average_precision(y_valid, native.predict_proba(x_valid), spec.classes)
    assert abs(result["metrics"]["validation:mAP"] - native_map) < 1e-6


def test_float32_threshold_snapping_keeps_predictions(fitted):
    _, pipeline, x_train, _, _ = fitted
    before = pipeline.predict_proba(x_train)
    assert model.snap_thresholds_to_float32(pipeline) == 0  # already snapped by fit(): idempotent
    np.testing.assert_array_equal(before, pipeline.predict_proba(x_train))


def test_onnx_parity_on_test_split(fitted):
    spec, pipeline, _, x_test, onnx_bytes = fitted
    worst = onnx_export.check_parity(pipeline, onnx_export.onnx_scorer(onnx_bytes, spec), x_test, spec, tolerance=1e-4)
    assert worst <= 1e-4
    labels = pipeline.predict(x_test)
    proba = onnx_export.onnx_probabilities(onnx_bytes, x_test, spec)
    assert (np.asarray(spec.classes)[proba.argmax(axis=1)] == labels).mean() > 0.999


def test_parity_failure_raises_actionable_error(fitted):
    spec, pipeline, x_train, x_test, _ = fitted
    other = model.build_pipeline(spec, {"n_estimators": 5, "seed": 3, "num_leaves": 4})
    model.fit(other, x_train, pipeline.predict(x_train), x_test, pipeline.predict(x_test), 0)
    scorer = onnx_export.onnx_scorer(onnx_export.to_onnx(other, spec), spec)
    with pytest.raises(onnx_export.ParityError, match=r"ONNX parity failed: max \|delta p\|"):
        onnx_export.check_parity(pipeline, scorer, x_test, spec, tolerance=1e-4)


@pytest.fixture(scope="module")
def handler(fitted, tmp_path_factory):
    spec, pipeline, _, x_test, onnx_bytes = fitted
    model_dir = tmp_path_factory.mktemp("model")
    written = model_package.write_model_dir(model_dir, onnx_bytes, spec, example={"instances": []})
    assert written == [
        "model.onnx",
        "feature_spec.json",
        "code/inference.py",
        "code/requirements.txt",
        "input_example.json",
    ]
    module_spec = importlib.util.spec_from_file_location("packaged_inference", model_dir / "code" / "inference.py")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module, module.model_fn(str(model_dir)), spec, pipeline, x_test


def test_inference_json_round_trip_matches_native_model(handler):
    module, loaded, spec, pipeline, x_test = handler
    rows = x_test.head(5)
    records = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
        for r in json.loads(rows.to_json(orient="records"))
    ]
    body, content_type = module.output_fn(
        module.predict_fn(module.input_fn(json.dumps({"instances": records}), "application/json"), loaded),
        "application/json",
    )
    assert content_type == "application/json"
    predictions = json.loads(body)["predictions"]
    native = pipeline.predict_proba(rows)
    for prediction, expected in zip(predictions, native, strict=True):
        got = [prediction["probabilities"][c] for c in spec.classes]
        np.testing.assert_allclose(got, expected, atol=1e-4)
        assert prediction["label"] == spec.classes[int(np.argmax(expected))]


def test_inference_csv_in_and_out(handler):
    module, loaded, spec, _, x_test = handler
    buffer = io.StringIO()
    x_test.head(3).to_csv(buffer, header=True, index=False)  # a header line equal to the columns is allowed
    body, content_type = module.output_fn(
        module.predict_fn(module.input_fn(buffer.getvalue(), "text/csv"), loaded), "text/csv"
    )
    lines = body.strip().splitlines()
    assert content_type == "text/csv" and len(lines) == 3
    label, *probabilities = lines[0].split(",")
    assert label in spec.classes and len(probabilities) == len(spec.classes)
    assert sum(map(float, probabilities)) == pytest.approx(1.0, abs=1e-5)


def test_inference_rejects_bad_input(handler):
    module, loaded, spec, _, _ = handler
    record = dict.fromkeys(spec.columns, None)
    record[spec.numeric[0]] = "lots"
    with pytest.raises(ValueError, match=rf"instances\[0\]\.{spec.numeric[0]}: must be a number"):
        module.predict_fn(module.input_fn(json.dumps({"instances": [record]}), "application/json"), loaded)
    with pytest.raises(ValueError, match="missing"):
        module.predict_fn([{spec.numeric[0]: 1.0}], loaded)
    with pytest.raises(ValueError, match="not supported"):
        module.input_fn("x", "application/x-npy")
    with pytest.raises(ValueError, match="not supported"):
        module.output_fn({"classes": [], "labels": [], "probabilities": []}, "application/x-npy")
    all_missing = module.predict_fn([dict.fromkeys(spec.columns)], loaded)  # nulls are imputed, not errors
    assert len(all_missing["labels"]) == 1
