"""audit.yaml: the CloudTrail trail, the failed-run rules and the alarms say what the pipeline needs.

The templates are resolved for one deployment (``tests.aws.cfn_policies.Deployment``: project ``mlops``,
environment ``dev``), so names are compared as AWS would see them. The EventBridge rules are matched
against events shaped as the services document them, with the names the request builders give the
jobs, by moto's EventBridge pattern matcher (the same ``prefix`` / ``$or`` semantics as EventBridge).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mlops.config import load_config
from tests.aws.cfn_policies import Deployment, load_template

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT, REGION = "123456789012", "eu-west-1"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:mlops-dev-alerts"
TRAIL_ARN = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/mlops-dev-audit"
AUDIT_KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/audit"
EXPORTS = {
    "mlops-dev-AlertsTopicArn": TOPIC_ARN,
    "mlops-dev-LakeBucketArn": "arn:aws:s3:::mlops-lake-dev",
    "mlops-dev-ArtifactsBucketArn": "arn:aws:s3:::mlops-artifacts-dev",
    "mlops-dev-AccessLogBucketName": "mlops-access-logs-dev",
    "mlops-dev-DataKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/data",
}


@pytest.fixture(scope="module")
def deployment() -> Deployment:
    return Deployment(ACCOUNT, REGION, {"ProjectName": "mlops", "Environment": "dev"}, exports=EXPORTS,
                      attributes={"AuditKey.Arn": AUDIT_KEY_ARN})  # fmt: skip


def resolved(deployment: Deployment, template: str, logical_id: str, *keys: str) -> dict[str, Any]:
    """A resource's properties (or only ``keys`` of them), every intrinsic function resolved for the deployment."""
    props = load_template(template)["Resources"][logical_id]["Properties"]
    return deployment.resolve(template, {k: v for k, v in props.items() if not keys or k in keys})


def of_type(template: str, of: str) -> list[str]:
    return [lid for lid, r in load_template(template)["Resources"].items() if r["Type"] == of]


def statement(policy: dict[str, Any], sid: str) -> dict[str, Any]:
    (found,) = [s for s in policy["Statement"] if s.get("Sid") == sid]
    return found


# ---------------------------------------------------------------------------- CloudTrail
def test_trail_is_multi_region_validated_encrypted_and_records_the_buckets_objects(deployment):
    trail = resolved(deployment, "audit.yaml", "Trail")
    assert trail["IsMultiRegionTrail"] is True and trail["IncludeGlobalServiceEvents"] is True
    assert trail["EnableLogFileValidation"] is True and trail["IsLogging"] is True
    assert trail["KMSKeyId"] == AUDIT_KEY_ARN
    assert f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/{trail['TrailName']}" == TRAIL_ARN
    (selector,) = trail["EventSelectors"]
    assert selector["IncludeManagementEvents"] is True
    assert load_template("audit.yaml")["Parameters"]["DataEventsReadWriteType"]["Default"] == "All"
    (objects,) = selector["DataResources"]
    assert objects["Type"] == "AWS::S3::Object"
    assert sorted(objects["Values"]) == ["arn:aws:s3:::mlops-artifacts-dev/", "arn:aws:s3:::mlops-lake-dev/"]
    assert load_template("audit.yaml")["Resources"]["Trail"]["DependsOn"] == "TrailBucketPolicy"


def test_trail_bucket_admits_only_this_trail(deployment):
    bucket = resolved(deployment, "audit.yaml", "TrailBucket")
    policy = resolved(deployment, "audit.yaml", "TrailBucketPolicy")["PolicyDocument"]
    acl = statement(policy, "CloudTrailAclCheck")
    write = statement(policy, "CloudTrailWrite")
    for granted in (acl, write):
        assert granted["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
        assert granted["Condition"]["StringEquals"]["aws:SourceArn"] == TRAIL_ARN
    assert acl["Action"] == "s3:GetBucketAcl" and acl["Resource"] == f"arn:aws:s3:::{bucket['BucketName']}"
    assert write["Action"] == "s3:PutObject"
    assert write["Resource"] == f"arn:aws:s3:::{bucket['BucketName']}/AWSLogs/{ACCOUNT}/*"
    assert write["Condition"]["StringEquals"]["s3:x-amz-acl"] == "bucket-owner-full-control"
    encryption = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert encryption["SSEAlgorithm"] == "aws:kms"


def test_audit_key_lets_only_this_trail_encrypt(deployment):
    policy = resolved(deployment, "audit.yaml", "AuditKey", "KeyPolicy")["KeyPolicy"]
    services = [s for s in policy["Statement"] if "Service" in s["Principal"]]
    assert {s["Principal"]["Service"] for s in services} == {"cloudtrail.amazonaws.com"}
    for granted in services:
        assert granted["Condition"]["StringEquals"]["aws:SourceArn"] == TRAIL_ARN
        assert not {"kms:Decrypt", "kms:*"} & set(granted["Action"] if isinstance(granted["Action"], list)
                                                  else [granted["Action"]])  # fmt: skip
    encrypt = statement(policy, "CloudTrailEncryptsThisTrailsLogs")
    assert encrypt["Condition"]["StringLike"]["kms:EncryptionContext:aws:cloudtrail:arn"] == (
        f"arn:aws:cloudtrail:*:{ACCOUNT}:trail/*"
    )


# ---------------------------------------------------------------------------- failed runs
def _event(source: str, detail_type: str, detail: dict[str, Any], resources: list[str] | None = None) -> dict:
    envelope = {"version": "0", "id": "1", "account": ACCOUNT, "time": "2026-12-01T00:00:00Z", "region": REGION}
    return {**envelope, "source": source, "detail-type": detail_type, "resources": resources or [], "detail": detail}


def _failure_events() -> dict[str, list[tuple[dict[str, Any], bool]]]:
    """Per rule: (event, should it alert) with the names the request builders and data.yaml give."""
    from mlops.aws.glue_requests import stack_names
    from mlops.aws.sagemaker_requests import job_name

    config = load_config(environ={})
    names = stack_names(config)
    when = datetime(2026, 12, 1, tzinfo=UTC)
    train = job_name(config.training.job_name_prefix, "train", "manual__1", when)
    evaluate = job_name(config.training.job_name_prefix, "eval", "manual__1", when)
    task = f"arn:aws:dms:{REGION}:{ACCOUNT}:task:mlops-dev-cdc"

    def glue(job: str, state: str) -> dict[str, Any]:
        return _event("aws.glue", "Glue Job State Change", {"jobName": job, "state": state, "jobRunId": "jr_1"})

    def training(job: str, status: str) -> dict[str, Any]:
        detail = {"TrainingJobName": job, "TrainingJobStatus": status}
        return _event("aws.sagemaker", "SageMaker Training Job State Change", detail)

    def processing(job: str, status: str) -> dict[str, Any]:
        detail = {"ProcessingJobName": job, "ProcessingJobStatus": status}
        return _event("aws.sagemaker", "SageMaker Processing Job State Change", detail)

    def dms(arn: str, event_type: str) -> dict[str, Any]:
        detail = {"type": "REPLICATION_TASK", "category": "Failure", "eventType": event_type}
        return _event("aws.dms", "DMS Replication Task State Change", detail, [arn])

    return {
        "GlueJobFailedRule": [
            (glue(names.glue_job, "FAILED"), True),
            (glue(names.validation_job, "TIMEOUT"), True),
            (glue(names.glue_job, "SUCCEEDED"), False),
            (glue("someone-elses-job", "FAILED"), False),
        ],
        "SageMakerJobFailedRule": [
            (training(train, "Failed"), True),
            (processing(evaluate, "Failed"), True),
            (training(train, "Completed"), False),
            (processing("other-eval", "Failed"), False),
        ],
        "DmsTaskFailedRule": [
            (dms(task, "REPLICATION_TASK_FAILED"), True),
            (dms(task, "REPLICATION_TASK_STOPPED"), False),
            (dms(task.replace("-cdc", "-other"), "REPLICATION_TASK_FAILED"), False),
        ],
    }


@pytest.mark.parametrize("rule", ["GlueJobFailedRule", "SageMakerJobFailedRule", "DmsTaskFailedRule"])
def test_failed_run_rules_match_failures_of_the_projects_jobs_only(deployment, rule):
    from moto.events.models import EventPattern

    props = resolved(deployment, "audit.yaml", rule)
    assert props["State"] == "ENABLED"
    assert [t["Arn"] for t in props["Targets"]] == [TOPIC_ARN]
    pattern = EventPattern(None, props["EventPattern"])
    for event, alerts in _failure_events()[rule]:
        assert pattern.matches_event(event) is alerts, f"{rule} on {event['detail']}: expected {alerts}"


def test_dms_rule_watches_the_task_data_yaml_creates(deployment):
    task = resolved(deployment, "data.yaml", "ReplicationTask", "ResourceIdentifier")["ResourceIdentifier"]
    rule = resolved(deployment, "audit.yaml", "DmsTaskFailedRule")["EventPattern"]
    assert rule["resources"] == [f"arn:aws:dms:{REGION}:{ACCOUNT}:task:{task}"]


def test_eventbridge_may_publish_to_the_encrypted_alerts_topic(deployment):
    policy = resolved(deployment, "ml.yaml", "AlertsTopicPolicy")["PolicyDocument"]
    events = statement(policy, "EventBridgeRulesOfThisStack")
    assert events["Principal"] == {"Service": "events.amazonaws.com"} and events["Action"] == "sns:Publish"
    allowed = events["Condition"]["ArnLike"]["aws:SourceArn"]
    assert allowed == f"arn:aws:events:{REGION}:{ACCOUNT}:rule/mlops-dev-*"
    for rule in of_type("audit.yaml", "AWS::Events::Rule"):
        assert resolved(deployment, "audit.yaml", rule)["Name"].startswith("mlops-dev-"), rule
    key = resolved(deployment, "storage.yaml", "DataKey", "KeyPolicy")["KeyPolicy"]
    granted = statement(key, "EventBridgeRulesPublishToEncryptedTopic")
    assert granted["Principal"] == {"Service": "events.amazonaws.com"}
    assert set(granted["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert granted["Condition"]["StringEquals"]["aws:SourceAccount"] == ACCOUNT


# ---------------------------------------------------------------------------- alarms
def _alarms(deployment: Deployment) -> dict[str, dict[str, Any]]:
    return {p["MetricName"]: p for p in (resolved(deployment, "audit.yaml", lid)
                                         for lid in of_type("audit.yaml", "AWS::CloudWatch::Alarm"))}  # fmt: skip


def test_cdc_latency_alarms_watch_the_replication_task_at_the_pipelines_bound(deployment):
    config = load_config(environ={})
    instance = resolved(deployment, "data.yaml", "ReplicationInstance", "ResourceIdentifier")["ResourceIdentifier"]
    task = resolved(deployment, "data.yaml", "ReplicationTask", "ResourceIdentifier")["ResourceIdentifier"]
    alarms = _alarms(deployment)
    for metric in ("CDCLatencySource", "CDCLatencyTarget"):
        alarm = alarms[metric]
        assert alarm["Namespace"] == "AWS/DMS"
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
            "ReplicationInstanceIdentifier": instance,
            "ReplicationTaskIdentifier": task,
        }
        assert int(alarm["Threshold"]) == config.replication.max_cdc_lag_seconds
        assert alarm["TreatMissingData"] == "breaching", "a CDC task that publishes no latency is not replicating"


def test_reporting_alarms_watch_the_dlq_and_the_function(deployment):
    alarms = _alarms(deployment)
    dlq = resolved(deployment, "reporting.yaml", "EventsDeadLetterQueue", "QueueName")["QueueName"]
    function = resolved(deployment, "reporting.yaml", "ReportingFunction", "FunctionName")["FunctionName"]
    depth = alarms["ApproximateNumberOfMessagesVisible"]
    assert depth["Namespace"] == "AWS/SQS" and depth["Dimensions"] == [{"Name": "QueueName", "Value": dlq}]
    errors = alarms["Errors"]
    assert errors["Namespace"] == "AWS/Lambda" and errors["Dimensions"] == [{"Name": "FunctionName", "Value": function}]
    for alarm in (depth, errors):
        assert float(alarm["Threshold"]) == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_every_alarm_and_rule_alerts_the_one_topic(deployment):
    alarms = _alarms(deployment)
    assert set(alarms) == {"CDCLatencySource", "CDCLatencyTarget", "ApproximateNumberOfMessagesVisible", "Errors"}
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [TOPIC_ARN] and alarm["OKActions"] == [TOPIC_ARN]
    topic = resolved(deployment, "ml.yaml", "AlertsTopic")
    assert f"arn:aws:sns:{REGION}:{ACCOUNT}:{topic['TopicName']}" == TOPIC_ARN
