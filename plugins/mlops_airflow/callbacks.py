"""What a pipeline task does when it has failed for good (its retries spent): tell someone.

Every DAG gets :func:`task_failure_alert` as ``on_failure_callback`` through
``mlops_airflow.dag_defaults.DEFAULT_ARGS``; Airflow calls it after the last try, not on a retry.
The failure is always logged. On ``aws`` it is also published to the alerts topic
(``aws.alerts_topic_arn``: the ml stack's ``AlertsTopicArn``, which ``infra/mwaa/startup.sh`` maps from
the environment's ``mlops.alerts_topic_arn`` option) through the Amazon provider's SnsHook: the topic
the CloudWatch alarms and EventBridge rules of ``infra/cfn`` publish to. The MWAA execution role may
``sns:Publish`` to that one topic (``iam.yaml``, Sid ``PublishFailureAlerts``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from mlops_airflow.targets import TargetError, current_target, pipeline_config

log = logging.getLogger(__name__)

#: SNS accepts a Subject of printable ASCII without line breaks, under 100 characters.
SUBJECT_LIMIT = 99
#: Characters of the exception text kept in the message (SNS allows 256 KB; a traceback is in the task log).
ERROR_LIMIT = 2000


@dataclass(frozen=True)
class FailureAlert:
    """The SNS message of one failed task: subject, body, and attributes subscribers can filter on."""

    subject: str
    message: str
    attributes: dict[str, str]


def _subject(text: str) -> str:
    """``text`` as an SNS Subject: printable ASCII, one line, at most :data:`SUBJECT_LIMIT` characters."""
    ascii_only = re.sub(r"[^\x20-\x7e]+", " ", text).strip()
    return ascii_only[:SUBJECT_LIMIT]


def failure_alert(context: dict[str, Any]) -> FailureAlert:
    """The alert for the failure callback's ``context`` (task instance, run id, exception)."""
    ti = context["ti"]
    run_id = context.get("run_id") or getattr(ti, "run_id", "?")
    error = str(context.get("exception") or "no exception in the callback context")[:ERROR_LIMIT]
    try_number = getattr(ti, "try_number", None)
    lines = [
        f"DAG: {ti.dag_id}",
        f"Task: {ti.task_id}" + (f" (map index {ti.map_index})" if getattr(ti, "map_index", -1) >= 0 else ""),
        f"Run: {run_id}",
        f"Try: {try_number}",
        f"Target: {current_target()}",
        f"Error: {error}",
    ]
    log_url = getattr(ti, "log_url", None)
    if log_url:
        lines.append(f"Log: {log_url}")
    attributes = {"dag_id": ti.dag_id, "task_id": ti.task_id, "event": "task_failed"}
    return FailureAlert(_subject(f"[mlops] {ti.dag_id}.{ti.task_id} failed"), "\n".join(lines), attributes)


def alerts_topic_arn() -> str:
    """The alerts topic of the aws target, or a clear error naming the setting to fix."""
    config = pipeline_config()
    if not config.aws.alerts_topic_arn:
        raise TargetError(
            "aws.alerts_topic_arn is not set, so failure alerts cannot be published; put the ml stack's "
            "AlertsTopicArn output in MWAA's mlops.alerts_topic_arn option (infra/cfn/mwaa.yaml does) or set "
            "MLOPS__AWS__ALERTS_TOPIC_ARN"
        )
    return config.aws.alerts_topic_arn


def task_failure_alert(context: dict[str, Any]) -> None:
    """``on_failure_callback``: log the failure; on ``aws`` also publish it to the alerts topic."""
    alert = failure_alert(context)
    log.error("%s\n%s", alert.subject, alert.message)
    if current_target() != "aws":
        return
    from airflow.providers.amazon.aws.hooks.sns import SnsHook

    topic_arn = alerts_topic_arn()
    config = pipeline_config()
    hook = SnsHook(aws_conn_id=config.aws.conn_id, region_name=config.aws.region)
    response = hook.publish_to_target(
        topic_arn, alert.message, subject=alert.subject, message_attributes=alert.attributes
    )
    log.info("failure alert published to %s (MessageId %s)", topic_arn, response["MessageId"])
