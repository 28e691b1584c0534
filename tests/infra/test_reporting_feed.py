"""reporting.yaml on aws: new data-capture files of the lake reach the reporting queue, and the Lambda may read them.

The rule is matched (moto's EventBridge pattern matcher) against S3 ``Object Created`` events for keys the
serving layer's capture layout produces under ``lake.capture_prefix``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlops.config import load_config
from mlops.serving.capture import capture_file_name, capture_key
from tests.aws.cfn_policies import Deployment, load_template

ACCOUNT, REGION, LAKE = "123456789012", "eu-west-1", "mlops-lake-dev-123456789012-eu-west-1"
RULE_ARN = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/mlops-dev-capture-to-reporting"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:mlops-dev-prediction-events"


@pytest.fixture(scope="module")
def deployment() -> Deployment:
    exports = {"mlops-dev-LakeBucketName": LAKE, "mlops-dev-LakeBucketArn": f"arn:aws:s3:::{LAKE}",
               "mlops-dev-DataKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k"}  # fmt: skip
    attributes = {"CaptureFilesToReporting.Arn": RULE_ARN, "EventsQueue.Arn": QUEUE_ARN,
                  "EventsDeadLetterQueue.Arn": QUEUE_ARN + "-dlq"}  # fmt: skip
    return Deployment(ACCOUNT, REGION, {"ProjectName": "mlops", "Environment": "dev"}, exports, attributes)


def resolved(deployment: Deployment, logical_id: str, key: str) -> dict:
    return deployment.resolve(
        "reporting.yaml", load_template("reporting.yaml")["Resources"][logical_id]["Properties"][key]
    )


def _created(key: str, bucket: str = LAKE) -> dict:
    return {"source": "aws.s3", "detail-type": "Object Created", "account": ACCOUNT, "region": REGION,
            "resources": [], "detail": {"bucket": {"name": bucket}, "object": {"key": key}}}  # fmt: skip


def test_the_lake_sends_its_object_events_to_eventbridge():
    lake = load_template("storage.yaml")["Resources"]["LakeBucket"]["Properties"]
    assert lake["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}


def test_new_capture_files_and_nothing_else_reach_the_queue(deployment):
    from moto.events.models import EventPattern

    config = load_config(environ={})
    assert load_template("reporting.yaml")["Parameters"]["CapturePrefix"]["Default"] == config.lake.capture_prefix
    when = datetime(2026, 12, 1, 10, tzinfo=UTC)
    capture = (
        f"{config.lake.capture_prefix}/{capture_key('mlops-orders', 'AllTraffic', when)}/{capture_file_name(when)}"
    )
    pattern = EventPattern(None, resolved(deployment, "CaptureFilesToReporting", "EventPattern"))
    assert pattern.matches_event(_created(capture))
    assert not pattern.matches_event(_created("raw/dms/shop/orders/LOAD00000001.parquet"))
    assert not pattern.matches_event(_created(capture, bucket="someone-elses-bucket"))
    assert not pattern.matches_event({**_created(capture), "detail-type": "Object Deleted"})
    assert [t["Arn"] for t in resolved(deployment, "CaptureFilesToReporting", "Targets")] == [QUEUE_ARN]


def test_only_that_rule_may_send_to_the_queue_and_the_lambda_reads_capture_files_only(deployment):
    policy = resolved(deployment, "EventsQueuePolicy", "PolicyDocument")
    (allow,) = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"} and allow["Action"] == "sqs:SendMessage"
    assert allow["Resource"] == QUEUE_ARN and allow["Condition"] == {"ArnEquals": {"aws:SourceArn": RULE_ARN}}
    (_, document), = deployment.role_policies("reporting.yaml", "ReportingFunctionRole")  # fmt: skip
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    assert by_sid["ReadCaptureFiles"] == {"Sid": "ReadCaptureFiles", "Effect": "Allow", "Action": "s3:GetObject",
                                          "Resource": f"arn:aws:s3:::{LAKE}/capture/*"}  # fmt: skip
    assert f"s3.{REGION}.amazonaws.com" in by_sid["DataKey"]["Condition"]["StringEquals"]["kms:ViaService"]
