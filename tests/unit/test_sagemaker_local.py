"""The local SageMaker runner executing the stage's real CreateTrainingJob / CreateProcessingJob requests."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from mlops.config import load_config
from mlops.lake import Lake, local_path
from mlops.sagemaker_local import run_processing_job, run_training_job
from mlops.sagemaker_local.logs import parse_metrics
from mlops.training import steps, synthetic

pytestmark = pytest.mark.slow
RUN_ID = "manual__2026-11-24T10:00:00+00:00"


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    """One training job and one evaluation job on a small learnable fixture, shared by the tests."""
    home = tmp_path_factory.mktemp("mlops-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(home))
        config = load_config(environ={})
        lake = Lake.for_target(config, "local")
        synthetic.write_dataset(synthetic.curated_features(3000, seed=5), local_path(lake.curated("features")))
        plan = steps.training_plan(
            config,
            lake,
            run_id=RUN_ID,
            run_after="2026-11-24T10:00:00",
            curated_uri=lake.curated("features"),
            image_uri="local/sklearn:1.2-1",
            hyperparameters={"n_estimators": 40, "num_leaves": 15},
        )
        training = run_training_job(plan["training_request"])
        evaluation_request = steps.evaluation_request(
            config, lake, plan=plan, training=training, champion=None, run_id=RUN_ID, run_after="2026-11-24T10:00:00"
        )
        processing = run_processing_job(evaluation_request)
        yield {
            "home": home,
            "config": config,
            "lake": lake,
            "plan": plan,
            "training": training,
            "processing": processing,
        }


def test_training_job_completes_with_model_package_at_the_aws_key(stage):
    training, plan = stage["training"], stage["plan"]
    assert training["TrainingJobStatus"] == "Completed", training.get("FailureReason")
    name = plan["training_request"]["TrainingJobName"]
    expected = f"{stage['lake'].models('training')}/{name}/output/model.tar.gz"
    assert training["ModelArtifacts"]["S3ModelArtifacts"] == expected
    with tarfile.open(local_path(expected)) as tar:
        members = set(tar.getnames())
    assert {
        "model.onnx",
        "feature_spec.json",
        "code/inference.py",
        "code/requirements.txt",
        "input_example.json",
    } <= members
    assert local_path(expected.replace("model.tar.gz", "output.tar.gz")).exists()


def test_training_job_dir_is_laid_out_like_opt_ml(stage):
    job = Path(stage["training"]["LocalJobDir"]) / "opt" / "ml"
    hyperparameters = json.loads((job / "input/config/hyperparameters.json").read_text())
    assert json.loads(hyperparameters["sagemaker_program"]) == "train.py"
    assert json.loads(hyperparameters["n_estimators"]) == 40
    channels = json.loads((job / "input/config/inputdataconfig.json").read_text())
    assert set(channels) == {"train", "validation", "test"}
    assert any((job / "input/data/train").rglob("*.parquet"))
    assert (job / "code/train.py").exists() and (job / "code/mlops/training/train.py").exists()
    log = (Path(stage["training"]["LocalJobDir"]) / "logs" / "algo-1.log").read_text()
    assert "features numeric=" in log and "snapped" in log


def test_metrics_are_taken_from_the_log(stage):
    found = {m["MetricName"]: m["Value"] for m in stage["training"]["FinalMetricDataList"]}
    assert set(found) == {"train:mlogloss", "validation:mlogloss", "validation:mAP", "test:onnx_max_abs_diff"}
    assert 0.45 < found["validation:mAP"] <= 1.0
    assert found["test:onnx_max_abs_diff"] <= 1e-4  # the parity gate held on the test split


def test_evaluation_job_writes_model_quality_report(stage):
    processing = stage["processing"]
    assert processing["ProcessingJobStatus"] == "Completed", processing.get("FailureReason")
    output = local_path(processing["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"])
    assert {"evaluation.json", "report.html", "pr_curves.png", "confusion_matrix.png"} <= {
        p.name for p in output.iterdir()
    }
    assert (output / "pr_curves.png").read_bytes()[:4] == b"\x89PNG"
    document = json.loads((output / "evaluation.json").read_text())
    block = document["multiclass_classification_metrics"]
    assert block["mean_average_precision"]["value"] > stage["config"].training.map_threshold  # learnable fixture
    assert "mean_average_precision" in (output / "report.html").read_text()


def test_parse_metrics_takes_the_last_match():
    definitions = [
        {"Name": "validation:mAP", "Regex": "validation:mAP=([0-9.eE+-]+)"},
        {"Name": "absent", "Regex": "x=(\\d+)"},
    ]
    found = parse_metrics("validation:mAP=0.5;\nnoise\nvalidation:mAP=0.61;\n", definitions)
    assert [(m["MetricName"], m["Value"]) for m in found] == [("validation:mAP", 0.61)]
    with pytest.raises(ValueError, match="invalid Regex"):
        parse_metrics("", [{"Name": "bad", "Regex": "("}])


def test_failure_reason_comes_from_opt_ml_output_failure(stage):
    request = json.loads(json.dumps(stage["plan"]["training_request"]))
    request["TrainingJobName"] = "mlops-train-bad-hyperparameter"
    request["HyperParameters"]["num_leaves"] = json.dumps("many")
    failed = run_training_job(request)
    assert failed["TrainingJobStatus"] == "Failed"
    assert failed["FailureReason"].startswith("ValueError: hyperparameter num_leaves='many' is not a valid int")
    assert "ModelArtifacts" not in failed


def test_failed_processing_job_publishes_nothing(stage):
    request = steps.evaluation_request(
        stage["config"],
        stage["lake"],
        plan=stage["plan"],
        training={"ModelArtifacts": {"S3ModelArtifacts": stage["lake"].models("missing", "model.tar.gz")}},
        champion=None,
        run_id="another-run",
        run_after="2026-11-24T11:00:00",
    )
    request["ProcessingInputs"][1]["S3Input"]["S3Uri"] = stage["plan"]["channels"]["test"]  # "model" = no tarball
    failed = run_processing_job(request)
    assert failed["ProcessingJobStatus"] == "Failed"
    assert "no model.tar.gz" in failed["FailureReason"]
    assert not local_path(request["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]).exists()


def test_trained_package_serves_through_the_model_server(stage, tmp_path):
    """The serving stage's model server (in the SageMaker runtime, as a local endpoint runs it) loads
    the package the training job wrote and answers as SageMaker's containers would (contract check)."""
    from tests.sagemaker_runtime import http, start_model_server, stop_model_server

    archive = stage["training"]["ModelArtifacts"]["S3ModelArtifacts"]
    with tarfile.open(local_path(archive)) as tar:
        example = tar.extractfile("input_example.json").read()
        spec = json.loads(tar.extractfile("feature_spec.json").read())
    proc, port = start_model_server(archive, tmp_path / "model")
    try:
        json_type = {"Content-Type": "application/json"}
        status, headers, body = http(port, "/invocations", example, {**json_type, "Accept": "application/json"})
        predictions = json.loads(body)["predictions"]
        assert status == 200 and headers["content-type"] == "application/json" and len(predictions) == 2
        assert set(predictions[0]["probabilities"]) == {"cancelled", "delivered", "returned"}
        row = ",".join("" for _ in spec["numeric"] + spec["categorical"])  # all missing: imputed
        status, headers, body = http(
            port, "/invocations", row.encode(), {"Content-Type": "text/csv", "Accept": "text/csv"}
        )
        assert status == 200 and headers["content-type"] == "text/csv" and len(body.decode().strip().split(",")) == 4
        bad = b'{"instances": [{"basket_value": "lots"}]}'
        status, _, body = http(port, "/invocations", bad, json_type)
        assert (status, json.loads(body)["error"]) == (400, "ValidationError")
        status, _, body = http(port, "/invocations", example, {**json_type, "Accept": "application/x-npy"})
        assert (status, json.loads(body)["error"]) == (406, "NotAcceptable")
    finally:
        stop_model_server(proc)
