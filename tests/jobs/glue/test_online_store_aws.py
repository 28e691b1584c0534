"""The features job fills SageMaker Feature Store's online store on aws: PutRecord from the Spark executors.

Feature Store is faked (no network): the partition writer gets a fake client in-process, and the job's
executors import a stand-in ``boto3`` module shipped with ``addPyFile`` that logs each call. The dicts are
:func:`mlops.schema.feature_groups.put_record_request`'s, which ``tests/aws/test_feature_store_requests.py``
validates against botocore (the glue runtime has no botocore).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

from mlops.etl import build_features as job
from mlops.schema.feature_groups import CUSTOMER_HISTORY, FEATURE_GROUPS, PRODUCT_HISTORY, put_record_request
from tests.jobs.glue.test_features_etl import _args
from tests.unit.test_etl_fixtures import write_fixture

GROUP = "mlops-dev-customer-history"


class FakeClientError(Exception):
    """Shaped like botocore's ClientError: ``response["Error"]["Code"]``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.response = {"Error": {"Code": code, "Message": code}}


class FakeFeatureStore:
    """``put_record`` that fails with the given error codes first, then records each request."""

    def __init__(self, *failures: str) -> None:
        self.failures, self.calls, self.tries = list(failures), [], 0

    def put_record(self, **request):
        self.tries += 1
        if self.failures:
            raise FakeClientError(self.failures.pop(0))
        self.calls.append(request)
        return {}


def test_a_partition_becomes_exactly_its_put_record_requests():
    rows = [
        {"customer_id": 7, "event_time": 1735689600.5, "orders": 3, "spend": 12.5, "country": "DE", "segment": None},
        {"customer_id": 8, "event_time": 0.0, "orders": 0, "spend": 0.0, "last_order_micros": None},
    ]
    client = FakeFeatureStore()
    assert job.put_partition(iter(rows), GROUP, CUSTOMER_HISTORY, client) == 2
    assert client.calls[0] == {
        "FeatureGroupName": GROUP,
        "Record": [
            {"FeatureName": "customer_id", "ValueAsString": "7"},
            {"FeatureName": "event_time", "ValueAsString": "1735689600.5"},
            {"FeatureName": "orders", "ValueAsString": "3"},
            {"FeatureName": "spend", "ValueAsString": "12.5"},
            {"FeatureName": "country", "ValueAsString": "DE"},
        ],
    }
    assert client.calls == [put_record_request(GROUP, CUSTOMER_HISTORY, row) for row in rows]


def test_throttling_is_retried_a_bounded_number_of_times(monkeypatch):
    slept = []
    monkeypatch.setattr(job.time, "sleep", slept.append)
    request = put_record_request(GROUP, CUSTOMER_HISTORY, {"customer_id": 7, "event_time": 1.0})
    client = FakeFeatureStore("ThrottlingException", "ServiceUnavailable")
    job.put_with_retries(client, request, sleep=slept.append)
    assert client.calls == [request] and client.tries == 3 and slept == [0.2, 0.4]

    always = FakeFeatureStore(*["ThrottlingException"] * job.PUT_RECORD_ATTEMPTS)
    with pytest.raises(RuntimeError, match=r"mlops-dev-customer-history record 7: still ThrottlingException"):
        job.put_with_retries(always, request, sleep=slept.append)
    assert always.tries == job.PUT_RECORD_ATTEMPTS and always.calls == []


def test_other_errors_are_not_retried():
    client = FakeFeatureStore("ValidationException")
    with pytest.raises(FakeClientError, match="ValidationException"):
        job.put_with_retries(client, {"FeatureGroupName": GROUP, "Record": []}, sleep=lambda _: None)
    assert client.tries == 1


def test_an_unknown_online_store_uri_is_refused():
    with pytest.raises(ValueError, match="featurestore://<region>"):
        job.write_online_store({}, {"online_store_uri": "s3://bucket/online"})


FAKE_BOTO3 = """
import json
LOG = {log!r}

class _FeatureStoreRuntime:
    def __init__(self, region):
        self.region = region

    def put_record(self, **request):
        with open(LOG, "a") as out:
            out.write(json.dumps({{"region": self.region, "request": request}}) + "\\n")
        return {{}}

def client(service, region_name=None):
    if service != "sagemaker-featurestore-runtime":
        raise ValueError(service)
    with open(LOG, "a") as out:
        out.write(json.dumps({{"client": region_name}}) + "\\n")
    return _FeatureStoreRuntime(region_name)
"""


@pytest.fixture(scope="module")
def spark():
    session = job.spark_session("mlops-online-store-aws-tests", shuffle_partitions=3)
    yield session
    session.stop()


def test_the_job_puts_each_entitys_latest_record_from_the_executors(spark, tmp_path):
    raw = write_fixture(tmp_path / "lake" / "raw" / "dms" / "shop")
    log = tmp_path / "put_record.jsonl"
    fake = tmp_path / "fake_boto3" / "boto3.py"
    fake.parent.mkdir()
    fake.write_text(FAKE_BOTO3.format(log=str(log)))
    spark.sparkContext.addPyFile(str(fake))  # the executors import it as boto3
    args = {**_args(tmp_path, raw), "offline_store_uri": "", "feature_group_prefix": "mlops-dev"}
    pointer = job.run_job(spark, {**args, "online_store_uri": "featurestore://eu-west-1"})

    lines = [json.loads(line) for line in log.read_text().splitlines()]
    puts = [line for line in lines if "request" in line]
    clients = [line["client"] for line in lines if "client" in line]
    records = job.entity_records(job.load_latest_tables(spark, raw.as_uri()))
    entities = {g.name: records[g.name].select(g.record_identifier).distinct().count() for g in FEATURE_GROUPS}
    assert pointer["online_records_put"] == len(puts) == sum(entities.values()) > 0
    assert {line["region"] for line in puts} == set(clients) == {"eu-west-1"}
    assert 1 < len(clients) <= len(puts), "one client per partition, not per record or per job"
    for group in (CUSTOMER_HISTORY, PRODUCT_HISTORY):
        name = f"mlops-dev-{group.name}"
        sent = sorted((p["request"] for p in puts if p["request"]["FeatureGroupName"] == name), key=json.dumps)
        latest = job.newest_per_entity(records[group.name], group).collect()
        assert sent == sorted((put_record_request(name, group, row.asDict()) for row in latest), key=json.dumps)
        assert len(sent) == entities[group.name]


def test_the_local_store_path_is_unchanged(spark, tmp_path):
    raw = write_fixture(tmp_path / "lake" / "raw" / "dms" / "shop")
    store = Path(tmp_path / "online.sqlite")
    args = {**_args(tmp_path, raw), "offline_store_uri": "", "online_store_uri": store.as_uri()}
    pointer = job.run_job(spark, args)
    assert pointer["online_records_put"] > 0 and store.exists()
