"""The whole closed loop of `make demo`, at small scale, on the local target.

Drift must be detected exactly on the last drifted window (not on normal traffic), retraining
must register a second version or be stopped by the gate, and the summary must be written.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from mlops_airflow import targets
from mlops_tools import demo as demo_module
from mlops_tools.demo_report import report

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    monkeypatch.setenv("MLOPS_TARGET", "local")
    targets.pipeline_config.cache_clear()
    yield tmp_path
    from mlops.serving.runtime import delete_endpoint, list_endpoints

    for endpoint in list_endpoints():
        delete_endpoint(endpoint["EndpointName"])
    targets.pipeline_config.cache_clear()


def test_closed_loop(home):
    demo = demo_module.run(size=3000, seed=42)
    statuses = {s.name: s.status for s in demo.stages}
    details = {s.name: s.detail for s in demo.stages if s.status != "ok"}
    assert not demo.failed, details
    normal = next(s for s in demo.stages if s.name == "monitor: window of normal traffic")
    assert "mlops_drift_detected" not in normal.figures["events"]
    drifted = [s for s in demo.stages if s.name.startswith("monitor: drifted window")]
    assert [("mlops_drift_detected" in s.figures["events"]) for s in drifted][-1] is True
    assert all("mlops_drift_detected" not in s.figures["events"] for s in drifted[:-1])
    quality = next(s for s in demo.stages if s.name.startswith("model quality"))
    # every scored order has its label (a small demo scores fewer distinct orders than min_labelled_rows: pending)
    figures = quality.figures
    assert figures["label_coverage"] == 1.0 and figures["labelled"] == figures["predictions"] > 0
    assert figures["status"] in ("evaluated", "pending"), figures
    assert 0 < figures["map"] <= 1 and figures["threshold"] < figures["baseline_map"]
    retrain = next(s for s in demo.stages if s.name.startswith("retrain: train"))
    if retrain.status == "ok":
        assert retrain.figures["version"] == 2 and retrain.figures["champion_version"] == 1
        assert statuses["retrain: blue/green canary deploy"] == "ok"
    else:
        assert retrain.status == "gated" and "gate" in retrain.detail

    summary_path = report(demo, datetime.now(UTC))
    summary = json.loads(summary_path.read_text())
    assert summary["ok"] is True
    assert summary["endpoint"]["invocation_url"].startswith("http://127.0.0.1:")
    assert summary["endpoint"]["invocation_url"].endswith("/endpoints/mlops-orders/invocations")
    assert [v["version"] for v in summary["model_versions"]][-1] == 1
    index = (home / "lake" / "reports" / "index.html").read_text()
    assert all(r["uri"] in index for r in summary["reports"]) and len(summary["reports"]) >= 4
