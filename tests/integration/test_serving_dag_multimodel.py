"""mlops_deploy with serving.mode multi_model through dag.test(): two deploys, one endpoint, both versions live."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mlops import processes
from tests.integration.test_serving_dag import register
from tests.sagemaker_runtime import build_model_packages

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


@pytest.fixture(scope="module")
def mme_env(tmp_path_factory):
    from mlops_airflow.targets import pipeline_config

    home = tmp_path_factory.mktemp("mme-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(home))
        patch.setenv("MLOPS_TARGET", "local")
        patch.setenv("MLOPS__SERVING__PORT_RANGE", "[28600, 28699]")
        patch.setenv("MLOPS__SERVING__ENDPOINT_NAME", "dag-test-mme")
        patch.setenv("MLOPS__SERVING__MODE", "multi_model")
        pipeline_config.cache_clear()
        built = build_model_packages(home / "models", {"v1": {"seed": 7}, "v2": {"seed": 5}})
        packages = [Path(built[name]["archive"]) for name in ("v1", "v2")]
        for archive in packages:
            register(archive, "Approved")
        yield home, packages, built
        processes.stop_all(timeout=10)
        pipeline_config.cache_clear()


def _deploy(conf: dict, home) -> dict:
    from mlops_tools.dag_runner import run_dag

    result = run_dag("mlops_deploy", conf=conf, log_path=home / "logs" / "mlops_deploy.log")
    assert result.succeeded, f"{result.task_states} {result.error} (log: {result.log_path})"
    return result.asset_extras["mlops_endpoint_live"]


def test_two_deploys_leave_both_versions_invocable_on_one_endpoint(mme_env):
    from mlops.serving.manager import LocalSageMaker
    from mlops.serving.runtime import runtime_client
    from mlops_airflow.targets import lake, pipeline_config

    home, (_, second), built = mme_env
    extra = _deploy({"model_version": 1, "strategy": "all_at_once", "bake_seconds": 0}, home)
    assert extra["target_model"] == "v1.tar.gz" and json.loads(extra["sample_response"])["predictions"]
    replayed = subprocess.run(extra["replay"], shell=True, capture_output=True, text=True, timeout=30, check=True)
    assert json.loads(replayed.stdout)["predictions"]  # the printed curl carries the target model header

    extra = _deploy({"model_version": 2, "strategy": "all_at_once", "bake_seconds": 0}, home)
    assert extra["target_model"] == "v2.tar.gz"
    prefix = Path(lake(pipeline_config()).models("multi-model", "dag-test-mme").removeprefix("file://"))
    assert sorted(p.name for p in prefix.iterdir()) == ["v1.tar.gz", "v2.tar.gz"]
    assert (prefix / "v2.tar.gz").read_bytes() == second.read_bytes()

    description = LocalSageMaker(pipeline_config().serving).describe_endpoint("dag-test-mme")
    client = runtime_client(f"http://127.0.0.1:{description['LocalPort']}")
    body = json.dumps({"instances": [built["v1"]["row"]]})
    answers = {
        target: json.loads(
            client.invoke_endpoint(
                EndpointName="dag-test-mme", Body=body, ContentType="application/json", TargetModel=target
            )["Body"].read()
        )
        for target in ("v1.tar.gz", "v2.tar.gz")
    }
    assert answers["v1.tar.gz"] != answers["v2.tar.gz"]  # both versions answer, each as itself
