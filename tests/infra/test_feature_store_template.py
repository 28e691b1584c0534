"""The feature groups of ``infra/cfn/data.yaml`` are the ones the code builds, and only their principals reach them.

The template repeats the groups' definitions (CloudFormation cannot import Python): resolved for one
deployment, each ``AWS::SageMaker::FeatureGroup`` must equal
:func:`mlops.aws.feature_store_requests.create_feature_group_request` for the same names, role and key
(tags aside), so a change to ``mlops.schema.feature_groups`` fails here until the template follows.
The IAM statements that name the groups (the Glue job's PutRecord, the endpoint's BatchGetRecord, the
offline store's Glue tables) name exactly these groups and tables.
"""

from __future__ import annotations

from typing import Any

import pytest

from mlops.aws import feature_store_requests as fsr
from mlops.config import load_config
from mlops.schema.feature_groups import FEATURE_GROUPS
from tests.aws.cfn_policies import Deployment, load_template

ACCOUNT, REGION = "123456789012", "eu-west-1"
LAKE = f"mlops-lake-dev-{ACCOUNT}-{REGION}"
DATA_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
OFFLINE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/mlops-dev-feature-store-offline"
LOGICAL_IDS = {"customer-history": "CustomerHistoryFeatureGroup", "product-history": "ProductHistoryFeatureGroup"}


@pytest.fixture(scope="module")
def deployment() -> Deployment:
    database = load_template("data.yaml")["Resources"]["CatalogDatabase"]["Properties"]["DatabaseInput"]["Name"]
    deployment = Deployment(
        account=ACCOUNT,
        region=REGION,
        parameters={"ProjectName": "mlops", "Environment": "dev"},
        exports={
            "mlops-dev-LakeBucketName": LAKE,
            "mlops-dev-LakeBucketArn": f"arn:aws:s3:::{LAKE}",
            "mlops-dev-ArtifactsBucketArn": f"arn:aws:s3:::mlops-artifacts-dev-{ACCOUNT}-{REGION}",
            "mlops-dev-DataKeyArn": DATA_KEY,
            "mlops-dev-FeatureStoreOfflineRoleArn": OFFLINE_ROLE,
        },
    )
    deployment.attributes["CatalogDatabase"] = deployment.resolve("data.yaml", database)
    return deployment


@pytest.fixture(scope="module")
def config():
    return load_config(environ={"MLOPS__AWS__LAKE_BUCKET": LAKE})


def _statement(deployment: Deployment, logical: str, sid: str) -> dict[str, Any]:
    (statement,) = [
        s for _, document in deployment.role_policies("iam.yaml", logical) for s in document["Statement"]
        if s.get("Sid") == sid
    ]  # fmt: skip
    return statement


def _group_arns(config) -> list[str]:
    return [f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:feature-group/{fsr.feature_group_name(config, g)}"
            for g in FEATURE_GROUPS]  # fmt: skip


@pytest.mark.parametrize("group", FEATURE_GROUPS, ids=lambda g: g.name)
def test_template_feature_group_equals_the_request_builders(deployment, config, group):
    resource = load_template("data.yaml")["Resources"][LOGICAL_IDS[group.name]]
    assert resource["Type"] == "AWS::SageMaker::FeatureGroup"
    properties = deployment.resolve("data.yaml", resource["Properties"])
    tags = properties.pop("Tags")
    assert {t["Key"] for t in tags} == {"Project", "Environment"}
    assert properties == fsr.create_feature_group_request(config, group, OFFLINE_ROLE, DATA_KEY)


def test_every_group_is_in_the_template():
    groups = [lid for lid, r in load_template("data.yaml")["Resources"].items()
              if r["Type"] == "AWS::SageMaker::FeatureGroup"]  # fmt: skip
    assert sorted(groups) == sorted(LOGICAL_IDS.values()) and len(LOGICAL_IDS) == len(FEATURE_GROUPS)


def test_glue_job_puts_and_endpoint_reads_exactly_the_two_groups(deployment, config):
    put = _statement(deployment, "GlueJobRole", "PutFeatureRecords")
    read = _statement(deployment, "SageMakerExecutionRole", "ReadFeatureRecords")
    assert put["Action"] == "sagemaker:PutRecord" and read["Action"] == "sagemaker:BatchGetRecord"
    assert put["Resource"] == read["Resource"] == _group_arns(config)
    for role in ("GlueJobRole", "SageMakerExecutionRole"):
        key = _statement(deployment, role, "OnlineStoreKey")
        assert key["Action"] == "kms:Decrypt" and key["Resource"] == DATA_KEY
        assert key["Condition"] == {"StringEquals": {"kms:ViaService": f"sagemaker.{REGION}.amazonaws.com"}}


def test_offline_store_role_writes_only_the_offline_store_and_its_tables(deployment, config):
    write = _statement(deployment, "FeatureStoreOfflineRole", "WriteOfflineStore")
    request = fsr.create_feature_group_request(config, FEATURE_GROUPS[0], OFFLINE_ROLE, DATA_KEY)
    store = request["OfflineStoreConfig"]["S3StorageConfig"]["S3Uri"].removeprefix("s3://")
    assert write["Resource"] == f"arn:aws:s3:::{store}/*"
    tables = _statement(deployment, "FeatureStoreOfflineRole", "OfflineStoreTables")["Resource"]
    database = fsr.create_feature_group_request(config, FEATURE_GROUPS[0], OFFLINE_ROLE, DATA_KEY)[
        "OfflineStoreConfig"
    ]["DataCatalogConfig"]["Database"]
    expected = [f"arn:aws:glue:{REGION}:{ACCOUNT}:table/{database}/{fsr.offline_table_name(config, g)}"
                for g in FEATURE_GROUPS]  # fmt: skip
    assert [t for t in tables if ":table/" in t] == expected
    trust = load_template("iam.yaml")["Resources"]["FeatureStoreOfflineRole"]["Properties"]
    assert trust["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
