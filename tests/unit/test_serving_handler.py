"""The model-package loader and the fixture handler's input/output contract (no server)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from mlops.serving import fixture_model
from mlops.serving.errors import InvalidInput, ModelPackageError, UnsupportedContentType, status_for
from mlops.serving.handler import ModelHandler, extract_model

ROW = fixture_model.EXAMPLE


@pytest.fixture(scope="module")
def pipeline():
    return fixture_model.train_pipeline(rows=600)


@pytest.fixture(scope="module")
def handler(pipeline, tmp_path_factory) -> ModelHandler:
    root = tmp_path_factory.mktemp("pkg")
    archive = fixture_model.build_package(root / "model.tar.gz", pipeline=pipeline)
    return ModelHandler.load(extract_model(archive.as_uri(), root / "model"))


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


def test_single_object_and_batch(handler, pipeline):
    single, content_type = _json(handler, ROW)
    assert content_type == "application/json"
    [prediction] = single["predictions"]
    assert set(prediction["probabilities"]) == {"cancelled", "delivered", "returned"}
    assert abs(sum(prediction["probabilities"].values()) - 1) < 1e-4
    batch, _ = _json(handler, {"instances": [ROW, {**ROW, "channel": "store", "basket_value": 300.0}]})
    assert len(batch["predictions"]) == 2 and batch["predictions"][0] == prediction


def test_onnx_matches_the_native_pipeline(handler, pipeline):
    import pandas as pd

    rows = fixture_model.training_frame(rows=50, seed=3).drop(columns="status")
    answer, _ = _json(handler, {"instances": rows.to_dict("records")})
    native = pipeline.predict_proba(pd.DataFrame(rows))
    onnx = [[p["probabilities"][c] for c in pipeline.classes_] for p in answer["predictions"]]
    assert abs(native - onnx).max() < 1e-4


def test_csv_in_and_out(handler):
    body, content_type = handler.invoke(b"web,north,42.5,3,12\napp,east,10,1,100\n", "text/csv", "text/csv")
    lines = body.decode().strip().splitlines()
    assert content_type == "text/csv" and len(lines) == 2
    assert lines[0].split(",")[0] in {"cancelled", "delivered", "returned"} and len(lines[0].split(",")) == 4


@pytest.mark.parametrize(
    ("payload", "content_type", "field"),
    [
        (b"{not json", "application/json", "body"),
        (json.dumps({k: v for k, v in ROW.items() if k != "region"}).encode(), "application/json", "region"),
        (
            json.dumps({"instances": [ROW, {**ROW, "items": "three"}]}).encode(),
            "application/json",
            "instances[1].items",
        ),
        (json.dumps({"instances": []}).encode(), "application/json", "instances"),
        (b"web,north,42.5,3\n", "text/csv", "row 1"),
        (b"web,north,abc,3,12\n", "text/csv", "row 1 column 3 (basket_value)"),
    ],
)
def test_malformed_input_names_the_field(handler, payload, content_type, field):
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


def test_package_without_inference_py_is_a_clear_error(pipeline, tmp_path):
    archive = fixture_model.build_package(tmp_path / "model.tar.gz", pipeline=pipeline, broken="no_code")
    with pytest.raises(ModelPackageError, match=r"no code/inference.py"):
        ModelHandler.load(extract_model(archive.as_uri(), tmp_path / "model"))


def test_missing_handler_function_is_named(tmp_path):
    (tmp_path / "model" / "code").mkdir(parents=True)
    (tmp_path / "model" / "code" / "inference.py").write_text("def model_fn(d):\n    return 1\n")
    with pytest.raises(ModelPackageError, match="input_fn, predict_fn, output_fn"):
        ModelHandler.load(tmp_path / "model")


def test_model_fn_failure_is_reported(pipeline, tmp_path):
    archive = fixture_model.build_package(tmp_path / "model.tar.gz", pipeline=pipeline, broken="model_fn_raises")
    with pytest.raises(ModelPackageError, match=r"model_fn.*weights are corrupt"):
        ModelHandler.load(extract_model(str(archive), tmp_path / "model"))


def test_archive_paths_cannot_escape(tmp_path):
    evil = tmp_path / "evil.tar.gz"
    payload = tmp_path / "x.txt"
    payload.write_text("x")
    with tarfile.open(evil, "w:gz") as tar:
        tar.add(payload, arcname="../escaped.txt")
    with pytest.raises(Exception):  # noqa: B017 - tarfile's data filter refuses it
        extract_model(str(evil), tmp_path / "model")
    assert not (tmp_path / "escaped.txt").exists()


def test_training_stage_handler_follows_the_contract(tmp_path):
    """The training stage's code/inference.py loads with this loader (when it exists)."""
    source = Path(__file__).resolve().parents[2] / "include" / "mlops" / "training" / "inference.py"
    if not source.exists():
        pytest.skip("training stage has no inference.py yet")
    import ast

    names = {n.name for n in ast.parse(source.read_text()).body if isinstance(n, ast.FunctionDef)}
    assert {"model_fn", "input_fn", "predict_fn", "output_fn"} <= names
