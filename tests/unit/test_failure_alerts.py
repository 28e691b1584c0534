"""The DAG failure callback: what it says, that it only logs locally, and that aws without a topic is a clear error."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from mlops.config import ConfigError, load_config
from mlops_airflow import callbacks
from mlops_airflow.targets import TargetError, pipeline_config


def _context(error: str = "boom") -> dict:
    ti = SimpleNamespace(dag_id="mlops_train", task_id="train", run_id="manual__1", try_number=3, map_index=-1,
                         log_url="http://127.0.0.1:8080/log")  # fmt: skip
    return {"ti": ti, "run_id": "manual__1", "exception": ValueError(error)}


@pytest.fixture(autouse=True)
def fresh_config():
    pipeline_config.cache_clear()
    yield
    pipeline_config.cache_clear()


def test_the_alert_names_the_dag_task_run_and_error():
    alert = callbacks.failure_alert(_context("training job mlops-train-1 Failed: AlgorithmError"))
    assert alert.subject == "[mlops] mlops_train.train failed"
    for line in ("DAG: mlops_train", "Task: train", "Run: manual__1", "Try: 3", "AlgorithmError", "Log: http"):
        assert line in alert.message
    assert alert.attributes == {"dag_id": "mlops_train", "task_id": "train", "event": "task_failed"}


def test_the_subject_is_what_sns_accepts():
    context = _context()
    context["ti"].task_id = "t\u00e9l\u00e9\nmetry_" + "x" * 200
    subject = callbacks.failure_alert(context).subject
    assert len(subject) < 100 and subject.isascii() and "\n" not in subject


def test_local_logs_the_failure_and_calls_no_aws(monkeypatch, caplog):
    monkeypatch.setenv("MLOPS_TARGET", "local")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # a publish would fail loudly
    with caplog.at_level(logging.ERROR, logger=callbacks.__name__):
        callbacks.task_failure_alert(_context("disk full"))
    assert "mlops_train.train failed" in caplog.text and "disk full" in caplog.text


def test_aws_without_a_topic_names_the_setting_to_fix(monkeypatch, caplog):
    monkeypatch.setenv("MLOPS_TARGET", "aws")
    monkeypatch.delenv("MLOPS__AWS__ALERTS_TOPIC_ARN", raising=False)
    with caplog.at_level(logging.ERROR), pytest.raises(TargetError, match="MLOPS__AWS__ALERTS_TOPIC_ARN"):
        callbacks.task_failure_alert(_context())
    assert "mlops_train.train failed" in caplog.text, "the failure is logged before the publish is attempted"


@pytest.mark.parametrize(
    "value",
    ["mlops-dev-alerts", "arn:aws:sqs:eu-west-1:123456789012:mlops-dev-alerts", "arn:aws:sns:eu-west-1:1234:x",
     "arn:aws:sns:eu-west-1:123456789012:bad/name"],
)  # fmt: skip
def test_config_rejects_anything_but_a_topic_arn(value):
    with pytest.raises(ConfigError, match=r"aws\.alerts_topic_arn"):
        load_config(environ={"MLOPS__AWS__ALERTS_TOPIC_ARN": value})


def test_config_accepts_the_ml_stacks_topic():
    arn = "arn:aws:sns:eu-west-1:123456789012:mlops-dev-alerts"
    assert load_config(environ={"MLOPS__AWS__ALERTS_TOPIC_ARN": arn}).aws.alerts_topic_arn == arn
