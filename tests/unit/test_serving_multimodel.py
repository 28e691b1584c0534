"""The multi-model container in-process: lazy loading, the LRU bounds, and the 4xx a client earns.

The loader is replaced by one that reads a text file (the real one imports onnxruntime, which this
environment does not have); the real loader runs in tests/integration/test_serving_multimodel.py.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from mlops.serving.app import InferenceApp, Request
from mlops.serving.multimodel import LoadedModel, ModelCache, MultiModelBackend, target_model_url
from tests.unit.test_serving_app import call


class EchoHandler:
    """A 'model' that answers with its own name: proves which target model served a request."""

    def __init__(self, name: str) -> None:
        self.name = name

    def invoke(self, body: bytes, content_type: str, accept: str | None) -> tuple[bytes, str]:
        return json.dumps({"model": self.name, "body": body.decode()}).encode(), "application/json"


def text_loader(calls: list[str]):
    def load(url: str, directory: Path, program: str) -> tuple[EchoHandler, int]:
        calls.append(url)
        directory.mkdir(parents=True)
        payload = Path(url.removeprefix("file://")).read_text()
        (directory / "model.txt").write_text(payload)
        return EchoHandler(payload), len(payload)

    return load


@pytest.fixture
def prefix(tmp_path) -> Path:
    root = tmp_path / "prefix"
    (root / "segments").mkdir(parents=True)
    for name, size in {"v1.tar.gz": 10, "v2.tar.gz": 10, "v3.tar.gz": 10, "big.tar.gz": 100}.items():
        (root / name).write_text(name.split(".")[0].ljust(size, "."))
    (root / "segments" / "eu.tar.gz").write_text("eu".ljust(10, "."))
    return root


def _backend(prefix: Path, tmp_path: Path, calls: list[str], max_models: int = 2, max_bytes: int = 25):
    return MultiModelBackend(
        prefix.as_uri() + "/",
        tmp_path / "work",
        variant="AllTraffic",
        max_models=max_models,
        max_bytes=max_bytes,
        loader=text_loader(calls),
    )


def _request(target: str | None) -> Request:
    return Request(b"{}", "application/json", "", None, None, None, target)


def _invoke(backend: MultiModelBackend, target: str | None):
    return asyncio.run(backend.invoke(_request(target)))


def test_each_target_model_answers_and_loads_once(prefix, tmp_path):
    calls: list[str] = []
    backend = _backend(prefix, tmp_path, calls, max_models=3, max_bytes=1000)
    answers = [json.loads(_invoke(backend, t).body)["model"] for t in ("v1.tar.gz", "v2.tar.gz", "v1.tar.gz")]
    assert [a.rstrip(".") for a in answers] == ["v1", "v2", "v1"]
    assert [c.rsplit("/", 1)[1] for c in calls] == ["v1.tar.gz", "v2.tar.gz"]  # v1 was warm the second time
    assert json.loads(_invoke(backend, "segments/eu.tar.gz").body)["model"].startswith("eu")


def test_concurrent_requests_for_a_cold_model_share_one_load(prefix, tmp_path):
    calls: list[str] = []
    backend = _backend(prefix, tmp_path, calls)

    async def burst():
        return await asyncio.gather(*(backend.invoke(_request("v1.tar.gz")) for _ in range(5)))

    outcomes = asyncio.run(burst())
    assert {o.status for o in outcomes} == {200} and len(calls) == 1


def test_least_recently_used_model_is_evicted_by_count(prefix, tmp_path):
    calls: list[str] = []
    backend = _backend(prefix, tmp_path, calls, max_models=2, max_bytes=1000)
    for target in ("v1.tar.gz", "v2.tar.gz", "v1.tar.gz", "v3.tar.gz"):  # v2 is least recently used when v3 comes
        assert _invoke(backend, target).status == 200
    assert list(backend.cache.entries) == ["v1.tar.gz", "v3.tar.gz"]
    assert len(list((tmp_path / "work").iterdir())) == 2  # v2's files are gone
    _invoke(backend, "v2.tar.gz")
    assert [c.rsplit("/", 1)[1] for c in calls] == ["v1.tar.gz", "v2.tar.gz", "v3.tar.gz", "v2.tar.gz"]


def test_the_byte_bound_evicts_too_and_refuses_a_model_that_cannot_fit(prefix, tmp_path):
    backend = _backend(prefix, tmp_path, [], max_models=10, max_bytes=25)
    for target in ("v1.tar.gz", "v2.tar.gz", "v3.tar.gz"):
        assert _invoke(backend, target).status == 200
    assert list(backend.cache.entries) == ["v2.tar.gz", "v3.tar.gz"] and backend.cache.size_bytes == 20
    too_big = _invoke(backend, "big.tar.gz")
    assert too_big.status == 507 and "big.tar.gz needs 100 bytes" in too_big.body.decode()
    assert list(backend.cache.entries) == ["v2.tar.gz", "v3.tar.gz"]


def test_client_errors_name_the_target_model(prefix, tmp_path):
    backend = _backend(prefix, tmp_path, [])
    missing = _invoke(backend, "v9.tar.gz")
    assert (missing.status, missing.error_code) == (400, "ValidationError")
    message = json.loads(missing.body)["message"]
    assert "target model v9.tar.gz not found" in message and "v1.tar.gz" in message  # names what exists
    no_header = _invoke(backend, None)
    assert no_header.status == 400 and "missing a target model header" in no_header.body.decode()
    for hostile in ("../outside.tar.gz", "/etc/passwd", "a//b", "-x"):
        assert _invoke(backend, hostile).status == 400, hostile


def test_target_model_keys_stay_under_the_prefix():
    assert target_model_url("s3://b/models/mme/ep/", "v3.tar.gz") == "s3://b/models/mme/ep/v3.tar.gz"
    with pytest.raises(ValueError, match=r"without '\.\.'"):
        target_model_url("s3://b/p/", "a/../../x.tar.gz")


def test_cache_bounds_are_checked():
    cache = ModelCache(max_models=1, max_bytes=10)
    assert cache.put(LoadedModel("a", None, 5, Path("a"))) == []
    assert [m.name for m in cache.put(LoadedModel("b", None, 5, Path("b")))] == ["a"]
    with pytest.raises(ValueError, match="must be positive"):
        ModelCache(0, 10)


def test_target_model_header_reaches_the_backend_and_is_checked(prefix, tmp_path):
    backend = _backend(prefix, tmp_path, [])
    app = InferenceApp(backend, endpoint_name="ep")
    headers = {"Content-Type": "application/json", "X-Amzn-SageMaker-Target-Model": "v1.tar.gz"}
    status, _, body = call(app, "POST", "/endpoints/ep/invocations", b"{}", headers)
    assert status == 200 and json.loads(body)["model"].startswith("v1")
    status, answer, body = call(
        app, "POST", "/endpoints/ep/invocations", b"{}", {**headers, "X-Amzn-SageMaker-Target-Model": "v9.tar.gz"}
    )
    assert status == 400 and answer["x-amzn-errortype"] == "ValidationError" and b"v9.tar.gz" in body
    status, _, body = call(
        app, "POST", "/invocations", b"{}", {**headers, "X-Amzn-SageMaker-Target-Model": " leading-space"}
    )
    assert status == 400 and b"X-Amzn-SageMaker-Target-Model header" in body


def test_a_single_model_server_refuses_a_target_model():
    from mlops.serving.server import LocalBackend

    backend = LocalBackend(EchoHandler("only"), "AllTraffic", "ep")
    outcome = asyncio.run(backend.invoke(_request("v1.tar.gz")))
    assert outcome.status == 400 and "ep is not a multi-model endpoint" in outcome.body.decode()
    assert asyncio.run(backend.invoke(_request(None))).status == 200


def test_the_ab_decision_is_a_report_and_a_comparison_for_the_ui():
    """The UI plugin finds reports generically: the decision's report_uri and its comparison table."""
    from mlops.serving.ab_decision import comparison_table, decide
    from mlops_airflow.ui.discovery import TaskOutput, comparison_in, reports_in
    from mlops_airflow.ui.lake_files import ServedLake

    summary = {
        "champion": "champion", "challenger": "challenger", "confidence": 0.95,
        "map_difference": 0.2, "map_difference_ci": [0.15, 0.25],
        "variants": {name: {"requests": 500, "labeled_rows": 300, "map": m, "map_ci": [m - 0.05, m + 0.05],
                            "prediction_mix": {"delivered": 0.7, "returned": 0.3}}
                     for name, m in (("champion", 0.5), ("challenger", 0.7))},
    }  # fmt: skip
    from mlops.config import AbTestConfig

    decision = decide(summary, AbTestConfig())
    value = {**decision, "report_uri": "s3://lake/reports/ab-tests/ep/job/ab_test_report.json",
             "comparison": comparison_table(summary, decision)}  # fmt: skip
    served = ServedLake(root="s3://lake", prefixes=("reports", "monitoring", "models"))
    (report,) = reports_in(TaskOutput("decide_ab_test", -1, "return_value", value), served)
    assert report.key == "reports/ab-tests/ep/job/ab_test_report.json"
    table = comparison_in(value)
    assert "challenger" in table and "0.7000" in table and "decision: promote challenger" in table
