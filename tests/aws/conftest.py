"""Fixtures for the AWS request and in-process moto tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def fake_aws_credentials(monkeypatch):
    """Dummy credentials and region for moto's in-process mock; no endpoint override."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def pytest_collection_modifyitems(session, config, items):
    """The IAM coverage test reads what the aws wiring tests recorded: run it after them."""
    last = [item for item in items if item.module.__name__.endswith("test_wiring_moto_iam")]
    items[:] = [item for item in items if item not in last] + last
