"""Run every worker-side step of mlops_monitor on an ``s3://`` lake (moto in-process) and report which
heavy modules the steps loaded: ``python -m tests.aws.monitoring_worker_steps pandas,numpy,...``.

Run in a fresh interpreter by ``test_monitoring_worker_imports.py``. Airflow, the provider, boto3
and moto are imported (and S3 used once) before the baseline of ``sys.modules`` is taken; the
``mlops`` task bodies and steps are imported after it. Prints one JSON line.
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
from typing import Any

BUCKET = "lake"
REGION = "eu-west-1"
RUN_AFTER = "2026-03-01T11:00:00+00:00"
MODEL_KEY = "models/training/j1/output/model.tar.gz"
TABLE = "realtime-metrics"


def loaded() -> set[str]:
    return {name.split(".")[0] for name in sys.modules}


def model_archive() -> bytes:
    archive = io.BytesIO()
    data = json.dumps({"numeric": ["x"], "categorical": []}).encode()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo("feature_spec.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return archive.getvalue()


def seed(s3: Any, dynamodb: Any) -> None:
    """What the earlier stages leave: a model package, a validated curated snapshot, one capture object,
    one minute of real-time aggregates (the reporting stack's table)."""
    from mlops.reporting.requests import update_item_request

    dynamodb.create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "minute")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "minute", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_item(**update_item_request(TABLE, "orders#AllTraffic", "2026-03-01T10:10Z", {"predictions": 3}, 30))
    s3.put_object(Bucket=BUCKET, Key=MODEL_KEY, Body=model_archive())
    s3.put_object(Bucket=BUCKET, Key="curated/features/snapshots/s1/split=train/part-0.parquet", Body=b"PAR1")
    pointer = json.dumps({"uri": f"s3://{BUCKET}/curated/features/snapshots/s1"}).encode()
    s3.put_object(Bucket=BUCKET, Key="curated/features/_validated.json", Body=pointer)
    s3.put_object(Bucket=BUCKET, Key="capture/orders/AllTraffic/2026/03/01/10/10-00-000-a.jsonl", Body=b"{}")


def key_of(prefix_uri: str, name: str) -> str:
    return prefix_uri.removeprefix(f"s3://{BUCKET}/").rstrip("/") + "/" + name


def put_json(s3: Any, prefix_uri: str, name: str, doc: dict[str, Any]) -> None:
    s3.put_object(Bucket=BUCKET, Key=key_of(prefix_uri, name), Body=json.dumps(doc).encode())


def run_steps(s3: Any, sagemaker: Any, dynamodb: Any) -> dict[str, Any]:
    """The task bodies' steps, in DAG order; the jobs' outputs are put where the jobs would write them."""
    import mlops_airflow.tasks.monitoring  # noqa: F401 - the task bodies' module and what it imports
    from mlops.config import PipelineConfig
    from mlops.lake import Lake
    from mlops.monitoring import baseline_steps, steps
    from mlops_airflow.operators.monitoring_aws import AwsCaptureSensor

    config = PipelineConfig.model_validate(
        {
            "aws": {"lake_bucket": BUCKET, "region": REGION},
            "training": {"role_arn": "arn:aws:iam::123456789012:role/sm"},
            "serving": {"endpoint_name": "orders"},
            "reporting": {"dynamodb_table": TABLE},
        }
    )
    lake = Lake.for_target(config, "aws")
    window = steps.plan_window(lake, "orders", run_id="r1", end=RUN_AFTER, window_minutes=60, s3=s3)
    params = {"model_version": 3, "model_data_url": f"s3://{BUCKET}/{MODEL_KEY}"}
    model = steps.monitored_model([], params, "orders")
    source = baseline_steps.training_data_uri(model, lake, s3=s3, sagemaker=sagemaker)
    request = baseline_steps.plan_baseline(
        config, lake, model, run_id="r1", run_after=RUN_AFTER, training_uri=source, s3=s3
    )
    staged = request["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    for name in (*baseline_steps.BASELINE_FILES, baseline_steps.SUMMARY):
        put_json(s3, staged, name, {"item_count": 5, "features": 1})
    baseline = baseline_steps.finish_baseline(lake, model, request, s3)
    cached = baseline_steps.plan_baseline(config, lake, model, run_id="r2", run_after=RUN_AFTER, s3=s3)
    keys = steps.list_capture_keys(lake.capture("orders"), s3)
    folders = steps.window_folders(keys, window["window_start"], window["window_end"])
    name = steps.job_name(config, "r1", RUN_AFTER)
    aggregates = steps.publish_aggregates(config, lake, name, window, s3=s3, dynamodb=dynamodb)
    drift = steps.drift_request(
        config,
        lake,
        run_id="r1",
        run_after=RUN_AFTER,
        model=model,
        baseline=baseline,
        window=window,
        folders=folders,
        image=steps.image_uri(config),
        code_uri=steps.publish_code(lake, s3),
        aggregates_uri=aggregates,
    )
    summary = {**window, "model_version": "3", "drift_share": 0.5, "rows": 200, "drifted_features": ["x"]}
    put_json(s3, drift["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"], "drift_summary.json", summary)
    decision = steps.evaluate(config, lake, run_id="r1", processing=drift, s3=s3)
    sensor = AwsCaptureSensor(task_id="wait", capture_uri=lake.capture("orders"), aws_conn_id=None, **window)
    return quality(config, lake, model, s3, sagemaker) | {
        "source": source,
        "baseline_created": baseline["created"],
        "cached_plan": cached,
        "folders": folders,
        "sensor_found": sensor.in_window(keys),
        "aggregates": json.loads(
            s3.get_object(Bucket=BUCKET, Key=key_of(aggregates, "aggregates.json"))["Body"].read()
        ),
        "status": decision["status"],
    }


def quality(config: Any, lake: Any, model: dict[str, Any], s3: Any, sagemaker: Any) -> dict[str, Any]:
    """mlops_model_quality's worker-side steps: window, registry lookup, request, decision."""
    import mlops_airflow.tasks.model_quality  # noqa: F401 - the task bodies' module and what it imports
    from mlops.monitoring import quality_steps, steps

    window = quality_steps.plan_window(config, lake, run_id="q1", end=RUN_AFTER, s3=s3)
    try:
        quality_steps.evaluated_map(model, sagemaker)
        refused = False
    except steps.MonitoringError:  # not in moto's registry: refused with the fix
        refused = True
    keys = steps.list_capture_keys(lake.capture("orders"), s3)
    request = quality_steps.quality_request(
        config, lake, run_id="q1", run_after=RUN_AFTER, model=model, window=window,
        folders=steps.window_folders(keys, window["window_start"], window["window_end"]),
        baseline_map=0.6, code_uri=steps.publish_code(lake, s3),
    )  # fmt: skip
    summary = {**window, "model_version": "3", "status": "evaluated", "labelled": 600, "predictions": 600,
               "label_coverage": 1.0, "map": 0.4, "threshold": 0.55, "baseline_map": 0.6, "violated": True}  # fmt: skip
    put_json(s3, request["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"], "quality_summary.json", summary)
    decision = quality_steps.evaluate(config, lake, run_id="q1", processing=request, s3=s3)
    return {"quality_refused_unregistered": refused, "quality_fire": decision["fire"]}


def main(heavy: set[str]) -> None:
    import airflow.sdk  # noqa: F401 - the worker's own imports, loaded before the baseline is taken
    import boto3
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook  # noqa: F401
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        seed(s3, dynamodb)
        before = loaded()
        report = run_steps(s3, lambda: boto3.client("sagemaker", region_name=REGION), lambda: dynamodb)
    print(json.dumps({**report, "heavy": sorted(heavy & (loaded() - before))}))


if __name__ == "__main__":
    main(set(sys.argv[1].split(",")))
