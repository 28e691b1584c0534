"""mlops_deploy through dag.test(): create, then a blue/green canary update, emitting the endpoint-live Asset."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from mlops import processes
from tests.sagemaker_runtime import build_model_packages

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


@pytest.fixture(scope="module")
def deploy_env(tmp_path_factory):
    from mlops_airflow.targets import pipeline_config

    home = tmp_path_factory.mktemp("deploy-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(home))
        patch.setenv("MLOPS_TARGET", "local")
        patch.setenv("MLOPS__SERVING__PORT_RANGE", "[28400, 28599]")
        patch.setenv("MLOPS__SERVING__ENDPOINT_NAME", "dag-test-orders")
        pipeline_config.cache_clear()
        built = build_model_packages(home / "models", {"v1": {"seed": 7}, "v2": {"seed": 5}})
        packages = [Path(built[name]["archive"]) for name in ("v1", "v2")]
        register(packages[0], "Approved")
        register(packages[1], "Approved")
        register(packages[1], "PendingManualApproval")
        yield home, packages
        processes.stop_all(timeout=10)
        pipeline_config.cache_clear()


def register(archive, status: str) -> None:
    """Register a package version in the local SQLite registry, as the training stage does."""
    from mlops.registry import ensure_group, local_registry
    from mlops_airflow.targets import pipeline_config

    client = local_registry()
    group = pipeline_config().registry.model_package_group
    ensure_group(client, group)
    client.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus=status,
        InferenceSpecification={
            "Containers": [{"Image": "local", "ModelDataUrl": archive.as_uri()}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )


def _run(conf: dict, home, succeed: bool = True):
    from mlops_tools.dag_runner import run_dag

    result = run_dag("mlops_deploy", conf=conf, log_path=home / "logs" / "mlops_deploy.log")
    assert result.succeeded is succeed, f"{result.task_states} {result.error} (log: {result.log_path})"
    return result


def test_deploy_create_then_blue_green_update(deploy_env):  # one test: dag.test runs share the endpoint
    home, (first, second) = deploy_env
    created = _run({"model_data_url": first.as_uri(), "bake_seconds": 0}, home)
    extra = created.asset_extras["mlops_endpoint_live"]
    assert extra["endpoint_name"] == "dag-test-orders" and extra["model_version"] == 1
    assert extra["invocation_url"].startswith("http://127.0.0.1:")
    assert extra["invocation_url"].endswith("/endpoints/dag-test-orders/invocations")
    assert extra["variant_weights"] == {"AllTraffic": 1.0}
    request = json.loads(extra["sample_request"])
    assert json.loads(extra["sample_response"])["predictions"]

    # the URL in the event is replayable as is, and so is the printed curl command
    import subprocess

    replayed = subprocess.run(extra["replay"], shell=True, capture_output=True, text=True, timeout=30, check=True)
    assert json.loads(replayed.stdout)["predictions"]
    replay = urllib.request.Request(
        extra["invocation_url"], data=json.dumps(request).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(replay, timeout=10) as response:
        assert json.loads(response.read())["predictions"]

    updated = _run(
        {
            "model_data_url": second.as_uri(),
            "model_version": "2",
            "strategy": "canary",
            "canary_percent": 20,
            "bake_seconds": 1,
        },
        home,
    )
    extra2 = updated.asset_extras["mlops_endpoint_live"]
    assert extra2["model_version"] == 2 and extra2["invocation_url"] == extra["invocation_url"]
    assert extra2["endpoint_config_name"] != extra["endpoint_config_name"]
    endpoint = updated.xcoms["deploy_endpoint"]["Endpoint"]
    assert endpoint["EndpointStatus"] == "InService"
    assert any("green serves" in h["event"] for h in endpoint["LocalHistory"])

    refused = _run({"model_version": "3"}, home, succeed=False)  # registered, but pending approval
    assert refused.task_states["resolve_model"] == "failed"
    assert "not 'Approved'" in (refused.error or "")
    assert "mlops_endpoint_live" not in refused.asset_extras

    latest = _run({"bake_seconds": 0, "strategy": "all_at_once"}, home)  # no version: the newest Approved one
    assert latest.asset_extras["mlops_endpoint_live"]["model_version"] == 2

    # A/B: two weighted variants, the challenger (v2) and an approved champion (v1)
    from mlops_airflow.targets import pipeline_config

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS__SERVING__VARIANTS", "[{name: challenger, weight: 0.5}, {name: champion, weight: 0.5}]")
        pipeline_config.cache_clear()
        ab = _run({"model_version": "2", "champion_version": 1, "bake_seconds": 0}, home)
    pipeline_config.cache_clear()
    assert ab.asset_extras["mlops_endpoint_live"]["variant_weights"] == {"challenger": 0.5, "champion": 0.5}
    models = {v["VariantName"]: v["ModelName"] for v in ab.xcoms["deploy_endpoint"]["Endpoint"]["ProductionVariants"]}
    assert models["challenger"] != models["champion"]
    refused_champion = _run({"model_version": "2", "champion_version": 3, "bake_seconds": 0}, home, succeed=False)
    assert "not 'Approved'" in (refused_champion.error or "")
