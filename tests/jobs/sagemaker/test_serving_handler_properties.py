"""Property-based tests (Hypothesis) of the SageMaker inference handler, ``code/inference.py``'s
``input_fn`` -> ``predict_fn`` -> ``output_fn`` as the model server runs them (issue 13.9).

Whatever the body, content type and values: the handler answers with one prediction per row (finite
probabilities summing to 1), or refuses with a client error (``InvalidInput`` naming a field,
``UnsupportedContentType``); it never raises anything a server would answer with a 5xx, which the
blue/green rollback alarm counts. And well-formed records are never refused. Runs in the SageMaker
runtime (onnxruntime); the example count is bounded so ``make test`` stays quick."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops.serving.errors import InvalidInput, UnsupportedContentType, status_for
from mlops.serving.handler import ModelHandler, extract_model
from tests.jobs.sagemaker.model_packages import build_packages

EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
CLIENT_ERRORS = (InvalidInput, UnsupportedContentType)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    manifest = build_packages(tmp_path_factory.mktemp("packages"), {"onnx": {"seed": 7}})["onnx"]
    handler = ModelHandler.load(extract_model(Path(manifest["archive"]).as_uri(), tmp_path_factory.mktemp("m") / "m"))
    return handler, manifest


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
good_numbers = st.one_of(st.none(), st.integers(-(10**6), 10**6), st.floats(-1e30, 1e30, allow_nan=False))
good_categories = st.one_of(st.none(), st.text(max_size=20), st.sampled_from(["web", "app", "card", "DE"]))


def _check_answer(handler, body: bytes, content_type: str, rows: int | None) -> None:
    try:
        answer, answer_type = handler.invoke(body, content_type, "application/json")
    except CLIENT_ERRORS as exc:
        assert status_for(exc)[0] in (400, 415)
        if isinstance(exc, InvalidInput):
            assert str(exc).startswith(exc.field) and exc.field
        return
    predictions = json.loads(answer)["predictions"]
    assert answer_type == "application/json"
    if rows is not None:
        assert len(predictions) == rows
    for prediction in predictions:
        probabilities = list(prediction["probabilities"].values())
        assert all(math.isfinite(p) for p in probabilities) and abs(sum(probabilities) - 1) < 1e-3


@EXAMPLES
@given(data=st.data())
def test_any_record_values_get_an_answer_or_a_client_error(served, data):
    handler, manifest = served
    row = dict(manifest["row"])
    features = list(row)
    for name in data.draw(st.lists(st.sampled_from(features), max_size=4, unique=True)):
        row[name] = data.draw(json_values)
    for name in data.draw(st.lists(st.sampled_from(features), max_size=2, unique=True)):
        if data.draw(st.booleans()):
            del row[name]
    row.update(data.draw(st.dictionaries(st.text(max_size=8), json_values, max_size=2)))
    batch = data.draw(st.integers(1, 3))
    body = json.dumps({"instances": [row] * batch}, allow_nan=True).encode()  # NaN/Infinity literals included
    _check_answer(handler, body, "application/json", batch)


@EXAMPLES
@given(body=st.binary(max_size=300), content_type=st.sampled_from(["application/json", "text/csv", "text/plain"]))
def test_any_bytes_get_an_answer_or_a_client_error(served, body, content_type):
    handler, _ = served
    _check_answer(handler, body, content_type, None)


@EXAMPLES
@given(data=st.data())
def test_any_csv_fields_get_an_answer_or_a_client_error(served, data):
    handler, manifest = served
    fields = manifest["csv"].split(",")
    for i in data.draw(st.lists(st.integers(0, len(fields) - 1), max_size=4)):
        fields[i] = data.draw(st.text(max_size=12).map(lambda t: t.replace(",", "").replace("\n", "")))
    _check_answer(handler, (",".join(fields) + "\n").encode(), "text/csv", 1)


@EXAMPLES
@given(data=st.data())
def test_well_formed_records_are_never_refused(served, data):
    handler, manifest = served
    spec = manifest["feature_spec"]
    row = {c: data.draw(good_numbers) for c in spec["numeric"]}
    row.update({c: data.draw(good_categories) for c in spec["categorical"]})
    row.update({c: data.draw(st.booleans()) for c in spec["boolean"] if data.draw(st.booleans())})
    answer, _ = handler.invoke(json.dumps({"instances": [row]}).encode(), "application/json", None)
    [prediction] = json.loads(answer)["predictions"]
    assert prediction["label"] in spec["classes"]
