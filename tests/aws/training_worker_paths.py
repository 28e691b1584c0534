"""The aws-target worker paths of the training and serving stages, run in a fresh interpreter.

``python -m tests.aws.training_worker_paths`` imports what a worker has anyway (boto3, Airflow, the
provider's SageMaker operators and hooks, moto for the fake account), then runs the code the aws
operators and ``@task`` bodies of ``mlops_train`` / ``mlops_deploy`` run, against moto's S3 and
SageMaker: publish the code bundle and plan the training job, the step cache, the evaluation
request, the gate reading ``evaluation.json``, registration, the champion, the model to deploy,
the endpoint requests and the smoke test's checks. It prints one JSON line: which of the modules
a worker must not load (pandas, numpy, pyarrow, ...) those paths loaded, and what they returned.
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
from typing import Any

HEAVY = {
    "pandas",
    "pyarrow",
    "numpy",
    "duckdb",
    "sqlalchemy",
    "fsspec",
    "s3fs",
    "great_expectations",
    "sklearn",
    "pyspark",
    "matplotlib",
    "lightgbm",
    "onnxruntime",
    "skl2onnx",
}
REGION = "eu-west-1"
RUN_ID = "asset_triggered__2026-11-24T10:00:00+00:00"
RUN_AFTER = "2026-11-24T10:00:00"


def loaded_heavy() -> set[str]:
    """The heavy top-level packages imported so far."""
    return {name.split(".", 1)[0] for name in list(sys.modules)} & HEAVY


def _model_archive(example: dict[str, Any]) -> bytes:
    """A model.tar.gz with the members the worker reads (the smoke test's input example)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        data = json.dumps(example).encode()
        info = tarfile.TarInfo("input_example.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def _evaluation_document(map_value: float) -> dict[str, Any]:
    """An evaluation.json as the evaluation job writes it (the fields the gate and registration read)."""
    metrics = {
        name: {"value": value, "standard_deviation": 0.01}
        for name, value in (("mean_average_precision", map_value), ("accuracy", 0.9))
    }
    return {"version": 0.0, "dataset": {"item_count": 450}, "multiclass_classification_metrics": metrics}


def run_training(s3: Any, sagemaker: Any) -> dict[str, Any]:
    """mlops_train's worker steps on an S3 lake: plan, cache, evaluation request, gate + register."""
    from mlops.aws.sagemaker_requests import resolve_image_uri
    from mlops.config import load_config
    from mlops.lake import Lake
    from mlops.registry import latest_approved
    from mlops.training import cache, lake_io, steps

    config = load_config()
    lake = Lake.for_target(config, "aws")
    s3.create_bucket(Bucket=config.aws.lake_bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    snapshot = lake_io.join(lake.curated("features"), "snapshots", "r1")
    for split in ("train", "validation", "test"):  # the worker lists the snapshot, never reads it
        lake_io.write_bytes(lake_io.join(snapshot, f"split={split}", "part-0.parquet"), b"PAR1", s3)
    pointer = json.dumps({"uri": snapshot}).encode()
    lake_io.write_bytes(lake_io.join(lake.curated("features"), "_validated.json"), pointer, s3)

    image = resolve_image_uri(config.training, REGION)
    champion = latest_approved(sagemaker, config.registry.model_package_group)
    plan = steps.training_plan(
        config, lake, run_id=RUN_ID, run_after=RUN_AFTER, curated_uri=lake.curated("features"), image_uri=image, s3=s3
    )
    name = plan["training_request"]["TrainingJobName"]
    model_uri = lake_io.join(lake.models("training"), name, "output", "model.tar.gz")
    lake_io.write_bytes(model_uri, _model_archive({"instances": [{"basket_value": 1.0}]}), s3)
    training = {
        "TrainingJobName": name,
        "TrainingJobStatus": "Completed",
        "ModelArtifacts": {"S3ModelArtifacts": model_uri},
    }
    key, prints = cache.cache_key(plan["training_request"], s3=s3)
    step_cache = cache.StepCache(lake.models("_cache"), s3=s3)
    step_cache.store("training", key, training, prints)

    request = steps.evaluation_request(
        config, lake, plan=plan, training=training, champion=champion, run_id=RUN_ID, run_after=RUN_AFTER
    )
    output = request["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    lake_io.write_bytes(lake_io.join(output, "evaluation.json"), json.dumps(_evaluation_document(0.71)).encode(), s3)
    registered = steps.register(
        config, sagemaker, training=training, processing=request, champion=champion, image_uri=image,
        run_id=RUN_ID, s3=s3,
    )  # fmt: skip
    return {
        "cache_hit": step_cache.lookup("training", key) is not None,
        "version": registered["version"],
        "map": registered["map"],
        "model_data_url": registered["model_data_url"],
    }


def run_deploy(s3: Any, sagemaker: Any, model_data_url: str) -> dict[str, Any]:
    """mlops_deploy's worker steps: the approved model, the endpoint requests, the smoke test's checks."""
    from mlops.aws.endpoint_requests import deploy_requests
    from mlops.config import load_config
    from mlops.lake import Lake
    from mlops.registry import list_packages
    from mlops.serving.deploy_model import resolve_deploy_model
    from mlops.serving.runtime import check_predictions, sample_request
    from mlops.training import lake_io
    from mlops_airflow.tasks.serving import framework_image_uri

    config = load_config()
    group = config.registry.model_package_group
    model = resolve_deploy_model(group=group, packages=lambda: list_packages(group, sagemaker))
    requests = deploy_requests(
        config,
        model_data_url=model["model_data_url"],
        model_version=model["version"],
        run_id=RUN_ID,
        image_uri=framework_image_uri(config),
        capture_uri=Lake.for_target(config, "aws").capture(),
    )
    example = sample_request(lake_io.read_bytes(model_data_url, s3))
    answer = {"predictions": [{"label": "delivered", "probabilities": {"delivered": 0.9, "returned": 0.1}}]}
    check_predictions(json.dumps(answer).encode(), len(example["instances"]))
    return {"deployed_version": model["version"], "endpoint": requests["endpoint"]["EndpointName"]}


def main() -> int:
    import boto3
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook  # noqa: F401 - what a worker has loaded anyway
    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTrainingOperator  # noqa: F401
    from airflow.sdk import BaseOperator  # noqa: F401
    from moto import mock_aws

    with mock_aws():
        s3, sagemaker = boto3.client("s3", region_name=REGION), boto3.client("sagemaker", region_name=REGION)
        s3.list_buckets(), sagemaker.list_model_package_groups()  # moto's backends load before the baseline
        baseline = loaded_heavy()
        from mlops_airflow.operators import serving_aws, training_aws

        classes = [
            training_aws.AwsTrainingJobOperator,
            training_aws.AwsRegisterModelOperator,
            serving_aws.AwsSageMakerModelOperator,
        ]
        trained = run_training(s3, sagemaker)
        deployed = run_deploy(s3, sagemaker, trained["model_data_url"])
    result = {
        "baseline": sorted(baseline),
        "loaded_by_worker_paths": sorted(loaded_heavy() - baseline),
        "operators": [cls.__name__ for cls in classes],
        **trained,
        **deployed,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
