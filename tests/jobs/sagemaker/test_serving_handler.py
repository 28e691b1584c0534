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


# ---- issue 13.7: hostile requests are client errors naming the field, never model errors ------------------


def _hostile(package: dict) -> dict[str, tuple[bytes, str, str]]:
    """(body, content type, the field the 400 must name) of each hostile request of issue 13 (13.7)."""
    row, spec = package["row"], package["feature_spec"]
    number, category = spec["numeric"][0], spec["categorical"][0]
    boolean = spec["boolean"][0]
    not_boolean = next(c for c in spec["numeric"] if c not in spec["boolean"])

    def one(value_json: str, feature: str = number) -> bytes:
        record = json.dumps({**row, feature: "@@"})
        return ('{"instances": [' + record.replace('"@@"', value_json) + "]}").encode()

    return {
        "deeply_nested": (b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/json", "body"),
        "ten_to_the_400": (one("1" + "0" * 400), "application/json", f"instances[0].{number}"),
        "ten_to_the_5000": (one("1" + "0" * 5000), "application/json", f"instances[0].{number}"),
        "float_overflow": (one("1e400"), "application/json", f"instances[0].{number}"),
        "beyond_float32": (one("1e300"), "application/json", f"instances[0].{number}"),
        "nan_literal": (one("NaN"), "application/json", f"instances[0].{number}"),
        "infinity_literal": (one("-Infinity"), "application/json", f"instances[0].{number}"),
        "nan_text": (one('"nan"'), "application/json", f"instances[0].{number}"),
        "boolean_for_a_number": (one("true", not_boolean), "application/json", f"instances[0].{not_boolean}"),
        "list_for_a_number": (one("[1, 2]"), "application/json", f"instances[0].{number}"),
        "object_for_a_number": (one('{"a": 1}'), "application/json", f"instances[0].{number}"),
        "boolean_for_a_category": (one("false", category), "application/json", f"instances[0].{category}"),
        "list_for_a_category": (one('["web"]', category), "application/json", f"instances[0].{category}"),
        "number_row": (b'{"instances": [3]}', "application/json", "instances[0]"),
        "text_row": (b'{"instances": ["abc"]}', "application/json", "instances[0]"),
        "not_utf8_json": (b'{"instances": [\xff]}', "application/json", "body"),
        "not_utf8_csv": (b"\xff,1\n", "text/csv", "body"),
        "csv_infinity": (
            package["csv"].replace(package["csv"].split(",")[0], "inf", 1).encode(),
            "text/csv",
            f"instances[0].{number}",
        ),
        "csv_field_too_large": (b'"' + b"x" * 200_000 + b'"\n', "text/csv", "body"),
        "other_text_for_a_boolean_feature": (one('"maybe"', boolean), "application/json", f"instances[0].{boolean}"),
    }


HOSTILE = [
    "deeply_nested",
    "ten_to_the_400",
    "ten_to_the_5000",
    "float_overflow",
    "beyond_float32",
    "nan_literal",
    "infinity_literal",
    "nan_text",
    "boolean_for_a_number",
    "list_for_a_number",
    "object_for_a_number",
    "boolean_for_a_category",
    "list_for_a_category",
    "number_row",
    "text_row",
    "not_utf8_json",
    "not_utf8_csv",
    "csv_infinity",
    "csv_field_too_large",
    "other_text_for_a_boolean_feature",
]


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_input_is_a_400_naming_the_field(handler, package, case):
    payload, content_type, field = _hostile(package)[case]
    with pytest.raises(InvalidInput) as caught:
        handler.invoke(payload, content_type, None)
    assert caught.value.field == field, str(caught.value)
    assert str(caught.value).startswith(field)
    assert status_for(caught.value) == (400, "ValidationError")


def test_booleans_extra_features_and_missing_values(handler, package):
    """Decided behaviour: true/false only for features that were boolean in training; extra request fields
    are ignored (a client may send a feature a newer model reads); null / empty CSV field = missing."""
    row, spec = package["row"], package["feature_spec"]
    boolean = spec["boolean"][0]
    as_one, _ = _json(handler, {**row, boolean: 1})
    as_true, _ = _json(handler, {**row, boolean: True})
    as_text, _ = _json(handler, {**row, boolean: "TRUE"})
    assert as_one == as_true == as_text
    plain, _ = _json(handler, row)
    extra, _ = _json(handler, {**row, "coupon_code": "X1", "score_v2": [1, 2]})
    assert plain == extra
    missing, _ = _json(handler, {**row, spec["numeric"][0]: None, spec["categorical"][0]: None})
    assert len(missing["predictions"]) == 1


def test_stock_container_answers_client_errors_with_4xx_not_500(package, monkeypatch):
    """On SageMaker's scikit-learn container any handler exception is a 500 (Invocation5XXErrors, the rollback
    alarm): there the handler hands a refused request to output_fn, which answers it with a 4xx Response."""
    import importlib.util
    import types

    spec_ = importlib.util.spec_from_file_location("stock_inference", TRAINING_INFERENCE)
    inference = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(inference)

    class Response:  # sagemaker_containers.beta.framework.worker.Response's signature
        def __init__(self, response=None, accept=None, status=200, headers=None, mimetype=None):
            self.response, self.status, self.mimetype = response, status, mimetype

    monkeypatch.setattr(inference, "_container_worker", types.SimpleNamespace(Response=Response))
    model = {
        "spec": package["feature_spec"],
        "columns": [*package["feature_spec"]["numeric"], *package["feature_spec"]["categorical"]],
    }
    answers = {}
    for case in ("ten_to_the_400", "nan_literal", "boolean_for_a_category", "number_row", "not_utf8_json"):
        payload, content_type, field = _hostile(package)[case]
        answer = inference.output_fn(inference.predict_fn(inference.input_fn(payload, content_type), model), JSON)
        answers[case] = answer
        assert answer.status == 400 and json.loads(answer.response)["message"].startswith(field)
    unsupported = inference.output_fn(inference.predict_fn(inference.input_fn(b"<a/>", "application/xml"), model), JSON)
    assert unsupported.status == 415
    assert inference.output_fn({"classes": [], "labels": [], "probabilities": []}, "image/png").status == 406


JSON = "application/json"
