"""Every SageMaker Feature Store request of the entity feature groups is valid for botocore's service models."""

from __future__ import annotations

import pytest

from mlops.aws import feature_store_requests as fsr
from mlops.config import load_config
from mlops.schema.curated import curated_types
from mlops.schema.feature_groups import CUSTOMER_HISTORY, FEATURE_GROUPS, PRODUCT_HISTORY
from tests.aws.botocore_validation import assert_valid_request

ROLE = "arn:aws:iam::123456789012:role/mlops-dev-feature-store"
KMS = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.fixture(scope="module")
def config():
    return load_config(environ={})


@pytest.mark.parametrize("group", FEATURE_GROUPS, ids=lambda g: g.name)
def test_create_feature_group_is_valid_with_both_stores_encrypted(config, group):
    request = fsr.create_feature_group_request(config, group, ROLE, KMS)
    assert_valid_request("sagemaker", "CreateFeatureGroup", request)
    assert request["FeatureGroupName"] == f"mlops-dev-{group.name}"
    assert request["OnlineStoreConfig"]["SecurityConfig"]["KmsKeyId"] == KMS
    offline = request["OfflineStoreConfig"]
    assert offline["S3StorageConfig"] == {"S3Uri": "s3://mlops-lake-dev/curated/feature-store", "KmsKeyId": KMS}
    assert offline["DataCatalogConfig"]["Database"] == "mlops_dev"
    names = [d["FeatureName"] for d in request["FeatureDefinitions"]]
    assert names[:2] == [group.record_identifier, group.event_time] and len(set(names)) == len(names)


def test_groups_derive_curated_columns():
    types = curated_types()
    for group in FEATURE_GROUPS:
        assert group.derives and all(column in types for column in group.derives)
    assert set(CUSTOMER_HISTORY.derives).isdisjoint(PRODUCT_HISTORY.derives)


def test_put_record_is_valid_and_leaves_missing_values_out():
    record = {"customer_id": 7, "event_time": 1735689600.123456, "orders": 3, "spend": 12.5, "last_order_micros": None}
    request = fsr.put_record_request("mlops-dev-customer-history", CUSTOMER_HISTORY, record)
    assert_valid_request("sagemaker-featurestore-runtime", "PutRecord", request)
    values = {v["FeatureName"]: v["ValueAsString"] for v in request["Record"]}
    assert values == {"customer_id": "7", "event_time": "1735689600.123456", "orders": "3", "spend": "12.5"}
    with pytest.raises(ValueError, match="event_time"):
        fsr.put_record_request("mlops-dev-customer-history", CUSTOMER_HISTORY, {"customer_id": 7})


def test_batch_get_record_is_valid_and_bounded():
    request = fsr.batch_get_record_request({"mlops-dev-customer-history": [7], "mlops-dev-product-history": [3, 3, 5]})
    assert_valid_request("sagemaker-featurestore-runtime", "BatchGetRecord", request)
    assert request["Identifiers"][1]["RecordIdentifiersValueAsString"] == ["3", "5"]
    with pytest.raises(ValueError, match="at most 100"):
        fsr.batch_get_record_request({"g": range(101)})


@pytest.mark.parametrize("group", FEATURE_GROUPS, ids=lambda g: g.name)
def test_put_record_of_a_full_record_is_valid(group):
    """A record with every feature, typed as its group defines it (as the Glue job's rows are), is a valid PutRecord."""
    samples = {"bigint": 1_735_689_600_000_000, "int": 3, "double": 0.25, "string": "DE"}
    record = {group.record_identifier: 42, group.event_time: 1735689600.123456}
    record |= {name: samples[kind] for name, kind in group.columns}
    request = fsr.put_record_request(f"mlops-dev-{group.name}", group, record)
    assert_valid_request("sagemaker-featurestore-runtime", "PutRecord", request)
    assert [v["FeatureName"] for v in request["Record"]] == group.feature_names()


def test_the_features_job_puts_records_into_feature_store_on_aws(config):
    """The job's StartJobRun names SageMaker Feature Store in the pipeline's region as its online store, in the
    scheme the job script recognises (the local stand-in swaps in its SQLite file)."""
    from mlops.aws import glue_requests
    from mlops.etl import build_features
    from mlops.lake import Lake

    arguments = glue_requests.job_arguments(Lake.for_target(config, "aws"), config, "r")
    assert arguments["--online_store_uri"] == f"featurestore://{config.aws.region}"
    assert build_features.FEATURE_STORE_SCHEME == glue_requests.FEATURE_STORE_SCHEME
    assert f"{arguments['--feature_group_prefix']}-{CUSTOMER_HISTORY.name}" == fsr.feature_group_name(
        config, CUSTOMER_HISTORY
    )
    assert glue_requests.ARGUMENT_ACCESS["curate-features"]["--online_store_uri"] == "put-records"
    assert fsr.lookup_environment(config) == {fsr.PREFIX_ENV: "mlops-dev"}


def test_the_features_job_trains_from_the_offline_stores_feature_store_resolves(config):
    """On aws the job's offline store is Feature Store's own (``featurestore://<region>``: each group's folder
    comes from DescribeFeatureGroup), which the job appends to; the describe request is valid, and the folder
    is read from a response shaped as botocore's model defines it."""
    from mlops.aws import glue_requests
    from mlops.lake import Lake
    from mlops.schema.feature_groups import describe_feature_group_request, resolved_offline_uri
    from tests.aws.botocore_validation import assert_valid_request, output_member_names

    assert {"FeatureGroupName", "FeatureGroupStatus", "FailureReason", "OfflineStoreConfig"} <= output_member_names(
        "sagemaker", "DescribeFeatureGroupResponse"
    )
    assert "ResolvedOutputS3Uri" in output_member_names("sagemaker", "S3StorageConfig")
    arguments = glue_requests.job_arguments(Lake.for_target(config, "aws"), config, "r")
    assert arguments["--offline_store_uri"] == f"featurestore://{config.aws.region}"
    assert arguments["--offline_store_writer"] == "job"
    assert glue_requests.ARGUMENT_ACCESS["curate-features"]["--offline_store_uri"] == "offline-store"
    name = fsr.feature_group_name(config, CUSTOMER_HISTORY)
    assert_valid_request("sagemaker", "DescribeFeatureGroup", describe_feature_group_request(name))
    data = f"s3://mlops-lake-dev/curated/feature-store/123456789012/sagemaker/eu-west-1/offline-store/{name}-1767225600/data"
    described = {
        "FeatureGroupName": name,
        "FeatureGroupStatus": "Created",
        "OfflineStoreConfig": {"S3StorageConfig": {"S3Uri": "s3://mlops-lake-dev/curated/feature-store",
                                                   "ResolvedOutputS3Uri": data + "/"}},
    }  # fmt: skip
    assert resolved_offline_uri(described) == data
    with pytest.raises(ValueError, match="is Creating, not Created"):
        resolved_offline_uri({**described, "FeatureGroupStatus": "Creating"})
    with pytest.raises(ValueError, match="no offline store"):
        resolved_offline_uri({**described, "OfflineStoreConfig": {}})
