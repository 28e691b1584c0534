"""The model server's package loader (``mlops.serving.handler``) on a package the training stage's
code built (the real ``code/inference.py``), and that handler's input/output contract (no server).
Runs in the SageMaker runtime: loading the package imports onnxruntime, as the inference container does."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import joblib
import pytest

from mlops.serving.errors import InvalidInput, ModelPackageError, UnsupportedContentType, status_for
from mlops.serving.handler import ModelHandler, extract_model
from mlops.training import features, synthetic
from tests.jobs.sagemaker.model_packages import build_packages

TRAINING_INFERENCE = Path(__file__).resolve().parents[3] / "include" / "mlops" / "training" / "inference.py"


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> dict:
    """One fitted model, packaged whole (with its native pipeline) and broken two ways."""
    return build_packages(
        tmp_path_factory.mktemp("packages"),
        {
            "onnx": {"seed": 7, "native": True},
            "no_code": {"seed": 7, "broken": "no_code"},
            "model_fn_raises": {"seed": 7, "broken": "model_fn_raises"},
        },
    )


@pytest.fixture(scope="module")
def package(packages) -> dict:
    return packages["onnx"]


@pytest.fixture(scope="module")
def handler(package, tmp_path_factory) -> ModelHandler:
    archive = Path(package["archive"])
    return ModelHandler.load(extract_model(archive.as_uri(), tmp_path_factory.mktemp("pkg") / "model"))


def _json(handler, payload, accept="application/json"):
    body, content_type = handler.invoke(json.dumps(payload).encode(), "application/json", accept)
    return json.loads(body), content_type


def test_package_layout(handler):
    names = {p.relative_to(handler.model_dir).as_posix() for p in handler.model_dir.rglob("*") if p.is_file()}
    assert {
        "model.onnx",
        "feature_spec.json",
        "input_example.json",
        "code/inference.py",
        "code/requirements.txt",
    } <= names


def test_single_object_and_batch(handler, package):
    row = package["row"]
    single, content_type = _json(handler, row)
    assert content_type == "application/json"
    [prediction] = single["predictions"]
    assert set(prediction["probabilities"]) == {"cancelled", "delivered", "returned"}
    assert abs(sum(prediction["probabilities"].values()) - 1) < 1e-4
    batch, _ = _json(handler, {"instances": [row, {**row, "channel": "store", "basket_value": 300.0}]})
    first = batch["predictions"][0]
    assert len(batch["predictions"]) == 2 and first["label"] == prediction["label"]
    # the same row answers the same in a batch, up to float32 noise (ONNX Runtime's kernels vary with batch size)
    assert first["probabilities"] == pytest.approx(prediction["probabilities"], abs=1e-6)


def test_onnx_matches_the_native_pipeline(handler, package):
    pipeline = joblib.load(package["native_model"])
    spec = features.FeatureSpec.from_json(json.dumps(package["feature_spec"]))
    rows = features.model_inputs(synthetic.curated_features(50, seed=3), spec)
    records = json.loads(rows.to_json(orient="records"))  # NaN -> null: missing values, imputed by the model
    answer, _ = _json(handler, {"instances": records})
    native = pipeline.predict_proba(rows)
    onnx = [[p["probabilities"][c] for c in pipeline.classes_] for p in answer["predictions"]]
    assert abs(native - onnx).max() < 1e-4


def test_csv_in_and_out(handler, package):
    other = {**package["row"], "channel": "app", "basket_value": 10.0}
    columns = [*package["feature_spec"]["numeric"], *package["feature_spec"]["categorical"]]
    body = f"{package['csv']}\n{','.join(str(other[c]) for c in columns)}\n".encode()
    answer, content_type = handler.invoke(body, "text/csv", "text/csv")
    lines = answer.decode().strip().splitlines()
    assert content_type == "text/csv" and len(lines) == 2
    assert lines[0].split(",")[0] in {"cancelled", "delivered", "returned"} and len(lines[0].split(",")) == 4


def _malformed(package: dict, case: str) -> tuple[bytes, str, str]:
    """(body, content type, the field the error must name) of one kind of malformed request."""
    row, spec, csv = package["row"], package["feature_spec"], package["csv"].split(",")
    absent = spec["categorical"][1]
    not_a_number = ",".join([*csv[:2], "abc", *csv[3:]])  # CSV columns: numeric first, in spec order
    cases = {
        "not_json": (b"{not json", "application/json", "body"),
        "missing_feature": (
            json.dumps({k: v for k, v in row.items() if k != absent}).encode(),
            "application/json",
            f"instances[0].{absent}",
        ),
        "json_not_a_number": (
            json.dumps({"instances": [row, {**row, "basket_units": "three"}]}).encode(),
            "application/json",
            "instances[1].basket_units",
        ),
        "instances_not_a_list": (json.dumps({"instances": "rows"}).encode(), "application/json", "instances"),
        "csv_short_row": (",".join(csv[:-1]).encode() + b"\n", "text/csv", "row 1"),
        "csv_not_a_number": (not_a_number.encode() + b"\n", "text/csv", f"instances[0].{spec['numeric'][2]}"),
    }
    return cases[case]


@pytest.mark.parametrize(
    "case",
    ["not_json", "missing_feature", "json_not_a_number", "instances_not_a_list", "csv_short_row", "csv_not_a_number"],
)
def test_malformed_input_names_the_field(handler, package, case):
    payload, content_type, field = _malformed(package, case)
    with pytest.raises(InvalidInput) as caught:
        handler.invoke(payload, content_type, None)
    assert caught.value.field == field
    assert str(caught.value).startswith(field)
    assert status_for(caught.value) == (400, "ValidationError")


def test_unsupported_content_type(handler):
    with pytest.raises(UnsupportedContentType) as caught:
        handler.invoke(b"<a/>", "application/xml", None)
    assert status_for(caught.value) == (415, "UnsupportedMediaType")


def test_status_mapping_by_name_and_type():
    class UnsupportedContentType(ValueError):  # a package's own class, as the training stage defines it
        pass

    assert status_for(UnsupportedContentType("x")) == (415, "UnsupportedMediaType")
    assert status_for(ValueError("bad")) == (400, "ValidationError")
    assert status_for(RuntimeError("boom")) == (500, "ModelError")


def test_package_without_inference_py_is_a_clear_error(packages, tmp_path):
    archive = Path(packages["no_code"]["archive"])
    with pytest.raises(ModelPackageError, match=r"no code/inference.py"):
        ModelHandler.load(extract_model(archive.as_uri(), tmp_path / "model"))


def test_missing_handler_function_is_named(tmp_path):
    (tmp_path / "model" / "code").mkdir(parents=True)
    (tmp_path / "model" / "code" / "inference.py").write_text("def model_fn(d):\n    return 1\n")
    with pytest.raises(ModelPackageError, match="input_fn, predict_fn, output_fn"):
        ModelHandler.load(tmp_path / "model")


def test_model_fn_failure_is_reported(packages, tmp_path):
    archive = packages["model_fn_raises"]["archive"]
    with pytest.raises(ModelPackageError, match=r"model_fn.*weights are corrupt"):
        ModelHandler.load(extract_model(archive, tmp_path / "model"))


def test_archive_paths_cannot_escape(tmp_path):
    evil = tmp_path / "evil.tar.gz"
    payload = tmp_path / "x.txt"
    payload.write_text("x")
    with tarfile.open(evil, "w:gz") as tar:
        tar.add(payload, arcname="../escaped.txt")
    with pytest.raises(Exception):  # noqa: B017 - tarfile's data filter refuses it
        extract_model(str(evil), tmp_path / "model")
    assert not (tmp_path / "escaped.txt").exists()


def test_the_package_serves_the_training_stage_handler(handler):
    """What the server loaded is the training stage's own inference.py, byte for byte."""
    assert (handler.model_dir / "code" / "inference.py").read_bytes() == TRAINING_INFERENCE.read_bytes()
