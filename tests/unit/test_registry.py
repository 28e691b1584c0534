"""The SQLite registry's ModelPackage semantics, approval transitions, and gated registration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mlops import registry
from mlops.aws.sagemaker_requests import model_package_request
from mlops.config import load_config
from mlops.training import gate, metrics, steps

GROUP = "orders-test"
CLASSES = ("cancelled", "delivered", "returned")


@pytest.fixture
def client(tmp_path: Path) -> registry.SqliteModelRegistry:
    return registry.SqliteModelRegistry(tmp_path / "registry.sqlite")


def _request(config, model_data_url: str, map_value: float) -> dict:
    request = model_package_request(
        config,
        image_uri="123.dkr.ecr.eu-west-1.amazonaws.com/sklearn:1.2-1",
        model_data_url=model_data_url,
        evaluation_uri="file:///tmp/evaluation.json",
        description="test",
        metadata={"map": f"{map_value:.6f}"},
    )
    return {**request, "ModelPackageGroupName": GROUP}


def test_versions_increment_per_group(client):
    config = load_config(environ={})
    registry.ensure_group(client, GROUP)
    registry.ensure_group(client, GROUP)  # idempotent
    arns = [
        client.create_model_package(**_request(config, f"file:///m{i}.tar.gz", 0.5 + i / 10))["ModelPackageArn"]
        for i in range(3)
    ]
    assert [a.rsplit("/", 1)[1] for a in arns] == ["1", "2", "3"]
    registry.ensure_group(client, "other-group")
    other = client.create_model_package(
        **{**_request(config, "file:///x.tar.gz", 0.4), "ModelPackageGroupName": "other-group"}
    )
    assert other["ModelPackageArn"].endswith("/other-group/1")
    listed = registry.list_packages(GROUP, client)
    assert [p["version"] for p in listed] == [3, 2, 1]
    assert listed[0]["map"] == pytest.approx(0.7) and listed[0]["model_data_url"] == "file:///m2.tar.gz"
    described = client.describe_model_package(ModelPackageName=arns[0])
    assert described["ModelPackageVersion"] == 1 and described["ModelPackageStatus"] == "Completed"
    assert described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == "file:///tmp/evaluation.json"


def test_unknown_group_and_package_are_errors(client):
    config = load_config(environ={})
    with pytest.raises(registry.RegistryError, match="does not exist; create it first"):
        client.create_model_package(**_request(config, "file:///m.tar.gz", 0.5))
    with pytest.raises(registry.RegistryError, match="has no version 7"):
        registry.approve("nope", 7, client=client)
    assert registry.list_packages("nope", client) == []


def test_approval_transitions_and_champion(client):
    config = load_config(environ={"MLOPS__REGISTRY__APPROVAL_POLICY": "manual"})
    registry.ensure_group(client, GROUP)
    for i in range(2):
        client.create_model_package(**_request(config, f"file:///m{i}.tar.gz", 0.6 + i / 10))
    assert {p["approval_status"] for p in registry.list_packages(GROUP, client)} == {"PendingManualApproval"}
    assert registry.latest_approved(client, GROUP) is None

    assert registry.approve(GROUP, 1, client=client)["approval_status"] == "Approved"
    assert registry.latest_approved(client, GROUP)["version"] == 1
    assert registry.approve(GROUP, 2, description="looks good", client=client)["approval_status"] == "Approved"
    assert registry.latest_approved(client, GROUP)["version"] == 2
    arn = registry.package_arn(client, GROUP, 2)
    assert client.describe_model_package(ModelPackageName=arn)["ApprovalDescription"] == "looks good"

    assert registry.reject(GROUP, 2, client=client)["approval_status"] == "Rejected"
    assert registry.latest_approved(client, GROUP)["version"] == 1  # the rejected one is no champion
    with pytest.raises(registry.RegistryError, match="must be one of"):
        client.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Deployed")


def _evaluation_output(folder: Path, quality: float, champion_quality: float | None = None) -> dict:
    """A finished processing job's describe, its output folder holding evaluation documents."""
    rng = np.random.default_rng(0)
    y = rng.choice(CLASSES, size=400)

    def doc(q: float) -> dict:
        onehot = (np.asarray(CLASSES)[None, :] == y[:, None]).astype(float)
        proba = q * onehot + (1 - q) * rng.dirichlet([1, 1, 1], size=len(y))
        return metrics.model_quality(y, proba, CLASSES, bootstrap_rounds=2)

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "evaluation.json").write_text(json.dumps(doc(quality)))
    if champion_quality is not None:
        (folder / "champion_evaluation.json").write_text(json.dumps(doc(champion_quality)))
    return {"ProcessingOutputConfig": {"Outputs": [{"S3Output": {"S3Uri": folder.as_uri()}}]}}


def _training(name: str) -> dict:
    return {"TrainingJobName": name, "ModelArtifacts": {"S3ModelArtifacts": f"file:///lake/{name}/model.tar.gz"}}


def test_register_gates_on_threshold_and_champion(client, tmp_path):
    config = load_config(environ={"MLOPS__REGISTRY__MODEL_PACKAGE_GROUP": GROUP})
    first = steps.register(
        config,
        client,
        training=_training("job-1"),
        processing=_evaluation_output(tmp_path / "e1", 0.2),
        champion=None,
        image_uri="img",
        run_id="run-1",
        threshold=0.4,
    )
    assert first["version"] == 1 and first["approval_status"] == "Approved" and first["created"]
    champion = registry.latest_approved(client, GROUP)
    assert champion["map"] == pytest.approx(first["map"], abs=1e-6)

    # a worse challenger, measured on the same split as the champion: rejected, nothing registered
    with pytest.raises(gate.GateRejected, match="below the approved champion"):
        steps.register(
            config,
            client,
            training=_training("job-2"),
            processing=_evaluation_output(tmp_path / "e2", 0.02, 0.2),
            champion=champion,
            image_uri="img",
            run_id="run-2",
            threshold=0.4,
            tolerance=0.01,
        )
    # a model under the absolute threshold: rejected
    with pytest.raises(gate.GateRejected, match="below the threshold"):
        steps.register(
            config,
            client,
            training=_training("job-3"),
            processing=_evaluation_output(tmp_path / "e3", 0.2),
            champion=None,
            image_uri="img",
            run_id="run-3",
            threshold=0.99,
        )
    assert [p["version"] for p in registry.list_packages(GROUP, client)] == [1]

    better = steps.register(
        config,
        client,
        training=_training("job-4"),
        processing=_evaluation_output(tmp_path / "e4", 0.3, 0.2),
        champion=champion,
        image_uri="img",
        run_id="run-4",
        threshold=0.4,
    )
    assert better["version"] == 2 and better["champion_version"] == 1
    assert "mean_average_precision" in better["comparison"] and "ACCEPTED" in better["comparison"]

    again = steps.register(  # the same artifact (e.g. a step-cache hit) is not registered twice
        config,
        client,
        training=_training("job-4"),
        processing=_evaluation_output(tmp_path / "e5", 0.3, 0.3),
        champion=registry.latest_approved(client, GROUP),
        image_uri="img",
        run_id="run-5",
        threshold=0.4,
    )
    assert again["version"] == 2 and not again["created"]
