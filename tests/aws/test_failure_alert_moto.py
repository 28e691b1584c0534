"""The DAG failure callback on aws, against moto on 127.0.0.1: the alert reaches the alerts topic, and the
MWAA execution role of ``infra/cfn/iam.yaml`` may make every call it made (principalmapper, as in
``test_wiring_moto_iam``)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tests.aws import iam_coverage as iam
from tests.aws.moto_server import MotoServer, stub_operations

pytestmark = [pytest.mark.airflow]

REGION = "eu-west-1"


@pytest.fixture
def published(monkeypatch):
    """Run the callback on aws against moto; the topic's messages arrive on a subscribed SQS queue."""
    from mlops_airflow import callbacks
    from mlops_airflow.targets import pipeline_config
    from tests.aws.test_wiring_moto_iam import _deployment

    parameters = _deployment().parameters  # the names the IAM check resolves the stacks with
    topic = f"{parameters['ProjectName']}-{parameters['Environment']}-alerts"  # ml.yaml's AlertsTopic
    with MotoServer(REGION) as server:
        for name, value in server.environment().items():
            monkeypatch.setenv(name, value)
        topic_arn = server.client("sns").create_topic(Name=topic)["TopicArn"]
        sqs = server.client("sqs")
        queue_url = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        server.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        monkeypatch.setenv("MLOPS_TARGET", "aws")
        monkeypatch.setenv("MLOPS__AWS__REGION", REGION)
        monkeypatch.setenv("MLOPS__AWS__ALERTS_TOPIC_ARN", topic_arn)
        pipeline_config.cache_clear()
        ti = SimpleNamespace(dag_id="mlops_features", task_id="build_features", run_id="scheduled__1", try_number=3,
                             map_index=-1, log_url="http://127.0.0.1:8080/log")  # fmt: skip
        try:
            with stub_operations({}):  # nothing stubbed: records the callback's calls
                callbacks.task_failure_alert({"ti": ti, "run_id": "scheduled__1",
                                              "exception": RuntimeError("Glue run jr_1 FAILED")})  # fmt: skip
        finally:
            pipeline_config.cache_clear()
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
        yield topic_arn, [json.loads(m["Body"]) for m in messages], [c for c in server.calls if c.principal == "task"]


def test_the_failure_reaches_the_alerts_topic(published):
    topic_arn, notifications, _ = published
    (notification,) = notifications
    assert notification["TopicArn"] == topic_arn
    assert notification["Subject"] == "[mlops] mlops_features.build_features failed"
    assert "Glue run jr_1 FAILED" in notification["Message"] and "Run: scheduled__1" in notification["Message"]
    assert notification["MessageAttributes"]["dag_id"]["Value"] == "mlops_features"


def test_the_mwaa_role_may_publish_it(published):
    from tests.aws.test_wiring_moto_iam import _deployment

    _, _, calls = published
    assert [(c.service, c.operation) for c in calls] == [("sns", "Publish")]
    deployment = _deployment()
    prefix = "{ProjectName}-{Environment}".format(**deployment.parameters)
    env = iam.Environment(
        arns=iam.Arns(deployment.account, deployment.region),
        data_key_arn=deployment.exports[f"{prefix}-DataKeyArn"],
        encrypted_buckets=frozenset(),
    )
    checks = iam.task_checks(env, calls)
    assert {c.action for c in checks} == {"sns:Publish", "kms:GenerateDataKey", "kms:Decrypt"}
    verdicts = iam.evaluate(deployment, checks, iam.resource_policies(deployment))
    assert all(v.allowed for v in verdicts), [v.check for v in verdicts if not v.allowed]
    dropped = iam.evaluate(deployment, checks, iam.resource_policies(deployment),
                           drop=("mwaa-execution", "PublishFailureAlerts"))  # fmt: skip
    assert {v.check.action for v in dropped if not v.allowed} == {"sns:Publish"}, "the check can fail"
