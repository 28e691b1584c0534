"""mlops_ab_test through dag.test() against a live local A/B endpoint: a clearly better challenger is promoted
(the router's weights move), equal variants keep the champion; the report lands under reports/ab-tests/.

The captured traffic and the labels are written in SageMaker's capture format and the curated layout
(:mod:`tests.ab_fixtures`); the analysis runs as a local processing job from the published code bundle.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlops import processes
from tests.ab_fixtures import write_ab_traffic
from tests.sagemaker_runtime import build_model_packages

pytestmark = [pytest.mark.airflow, pytest.mark.slow]
ENDPOINT = "dag-test-ab"


@pytest.fixture
def ab_env(tmp_path):
    """A live two-variant endpoint (challenger 0.5 / champion 0.5) and an empty lake."""
    from mlops.serving.manager import LocalSageMaker
    from mlops_airflow.targets import lake, pipeline_config

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(tmp_path))
        patch.setenv("MLOPS_TARGET", "local")
        patch.setenv("MLOPS__SERVING__PORT_RANGE", "[28700, 28799]")
        patch.setenv("MLOPS__SERVING__ENDPOINT_NAME", ENDPOINT)
        patch.setenv("MLOPS__SERVING__VARIANTS", "[{name: challenger, weight: 0.5}, {name: champion, weight: 0.5}]")
        patch.setenv("MLOPS__SERVING__AB_TEST", "{min_requests: 20, min_labeled: 100, bootstrap_samples: 300}")
        pipeline_config.cache_clear()
        config = pipeline_config()
        built = build_model_packages(tmp_path / "pkg", {"a": {"seed": 7}, "b": {"seed": 11}})
        manager = LocalSageMaker(config.serving)
        variants = []
        for variant, package in (("challenger", "a"), ("champion", "b")):
            manager.create_model(
                ModelName=f"ab-{package}",
                ExecutionRoleArn="arn:aws:iam::000000000000:role/x",
                PrimaryContainer={"Image": "local", "ModelDataUrl": Path(built[package]["archive"]).as_uri()},
            )
            variants.append({"VariantName": variant, "ModelName": f"ab-{package}", "InitialVariantWeight": 0.5,
                             "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"})  # fmt: skip
        manager.create_endpoint_config(EndpointConfigName="ab-config", ProductionVariants=variants)
        manager.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="ab-config")
        yield manager, lake(config)
        processes.stop_all(timeout=10)
        pipeline_config.cache_clear()


def _traffic(the_lake, skills: dict[str, float]) -> None:
    """An hour ago: both variants' capture and the matured labels, with the curated pointer the pipeline reads."""
    from mlops.lake import local_path

    snapshot = local_path(the_lake.curated("features")) / "snapshot=1"
    write_ab_traffic(
        local_path(the_lake.capture()), snapshot, ENDPOINT, skills, when=datetime.now(UTC) - timedelta(hours=1)
    )
    pointer = local_path(the_lake.curated("features")) / "_validated.json"
    pointer.write_text(json.dumps({"uri": f"file://{snapshot}"}))  # as the pipeline writes it (no %3D)


def _run(tmp_path: Path):
    from mlops_tools.dag_runner import run_dag

    result = run_dag("mlops_ab_test", conf={}, log_path=tmp_path / "logs" / "mlops_ab_test.log")
    assert result.succeeded, f"{result.task_states} {result.error} (log: {result.log_path})"
    return result.xcoms


def _weights(manager) -> dict[str, float]:
    return {v["VariantName"]: v["CurrentWeight"] for v in manager.describe_endpoint(ENDPOINT)["ProductionVariants"]}


def _latency_reports(latency_ms: dict[str, float]) -> None:
    """Prediction records with the clients' observed latency, through the local reporting handler (queue -> Lambda)."""
    from mlops.reporting.handler import handler

    when = (datetime.now(UTC) - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    records = [
        {"type": "prediction", "endpoint": ENDPOINT, "variant": variant, "time": when, "label": "delivered",
         "latency_ms": value}
        for variant, value in latency_ms.items()
        for _ in range(3)
    ]  # fmt: skip
    handler({"records": records})


def test_a_clearly_better_challenger_is_promoted(ab_env, tmp_path):
    manager, the_lake = ab_env
    _traffic(the_lake, {"champion": 0.0, "challenger": 0.6})
    _latency_reports({"champion": 4.0, "challenger": 6.5})
    xcoms = _run(tmp_path)
    outcome = xcoms["promote_winner"]
    assert outcome["promoted"] is True and outcome["winner"] == "challenger", outcome["reason"]
    assert _weights(manager) == {"challenger": 1.0, "champion": 0.0}
    report = json.loads(Path(outcome["report_uri"].removeprefix("file://")).read_text())
    assert "/reports/ab-tests/dag-test-ab/" in outcome["report_uri"]
    assert report["decision"]["action"] == "promote_challenger" and report["summary"]["variants"]["challenger"]["map"]
    latency = {name: v["latency_ms"] for name, v in report["summary"]["variants"].items()}
    assert latency == {"champion": 4.0, "challenger": 6.5}
    assert "6.5 ms" in xcoms["decide_ab_test"]["comparison"] and "decision: promote" in outcome["comparison"]


def test_equal_variants_keep_the_champion(ab_env, tmp_path):
    manager, the_lake = ab_env
    _traffic(the_lake, {"champion": 0.4, "challenger": 0.4})
    outcome = _run(tmp_path)["promote_winner"]
    assert outcome["promoted"] is False and outcome["winner"] == "champion"
    assert "n/a" in outcome["comparison"]  # no latency reported: said, not invented
    assert "does not clear min_improvement" in outcome["reason"]
    assert _weights(manager) == {"challenger": 0.5, "champion": 0.5}
