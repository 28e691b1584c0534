"""The target switch: validated, and each step resolves to the right operator class."""

from __future__ import annotations

import pytest

from mlops_airflow import targets


def test_default_target_is_local(monkeypatch):
    monkeypatch.delenv("MLOPS_TARGET", raising=False)
    assert targets.current_target() == "local"


def test_bad_target_is_named(monkeypatch):
    monkeypatch.setenv("MLOPS_TARGET", "azure")
    with pytest.raises(targets.TargetError, match="MLOPS_TARGET='azure'"):
        targets.current_target()


@pytest.mark.parametrize("step", sorted(targets.STEPS))
def test_every_step_resolves_on_both_targets(step, monkeypatch):
    """Each step imports on both targets as exactly the class its entry names, from exactly that module."""
    aws_path, local_path = targets.STEPS[step]
    for target, path in (("aws", aws_path), ("local", local_path)):
        monkeypatch.setenv("MLOPS_TARGET", target)
        operator = targets.step_operator(step)
        assert f"{operator.__module__}:{operator.__name__}" == path


def test_each_target_has_its_own_modules():
    """aws classes live in *_aws modules and stand-ins in *_local ones, except a step with one class for both."""
    for step, (aws_path, local_path) in targets.STEPS.items():
        if aws_path == local_path:
            continue
        aws_module, local_module = aws_path.partition(":")[0], local_path.partition(":")[0]
        assert aws_module.endswith("_aws") and local_module.endswith("_local"), step


def test_aws_steps_use_the_amazon_provider(monkeypatch):
    monkeypatch.setenv("MLOPS_TARGET", "aws")
    sensor = targets.step_operator("dms_sync")
    assert any(base.__module__.startswith("airflow.providers.amazon") for base in sensor.__mro__)


def test_unknown_step_is_named():
    with pytest.raises(targets.TargetError, match="unknown pipeline step 'dms_syncc'"):
        targets.step_operator("dms_syncc")


def test_aws_task_arn_must_be_configured(monkeypatch):
    monkeypatch.setenv("MLOPS_TARGET", "aws")
    config = targets.load_config(environ={})
    with pytest.raises(targets.TargetError, match="dms_replication_task_arn is not set"):
        targets.replication_task_arn(config)
    monkeypatch.setenv("MLOPS_TARGET", "local")
    assert targets.replication_task_arn(config).endswith(":task:mlops-source-to-lake")
