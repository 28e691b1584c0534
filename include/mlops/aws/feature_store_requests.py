"""Requests to SageMaker Feature Store for the entity feature groups (:mod:`mlops.schema.feature_groups`).

Pure functions; ``tests/aws/test_feature_store_requests.py`` validates each against botocore's service
models (``sagemaker`` for CreateFeatureGroup, ``sagemaker-featurestore-runtime`` for PutRecord and
BatchGetRecord). Locally the online store (:mod:`mlops.schema.online_store`) answers the same
BatchGetRecord dicts and takes the same PutRecord dicts; the offline store is written by the features job
in SageMaker's layout.

On ``aws`` the groups are CloudFormation resources (``infra/cfn/data.yaml``, equal to
:func:`create_feature_group_request`, ``tests/infra/test_feature_store_template.py``); the features Glue
job puts each entity's latest record from its Spark executors (``--online_store_uri featurestore://<region>``
of :func:`mlops.aws.glue_requests.job_arguments`; never from the MWAA worker), and the endpoint's container
finds the groups by :func:`lookup_environment` (its CreateModel ``Environment``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mlops.aws.glue_requests import OFFLINE_STORE_DATASET, stack_names
from mlops.config import PipelineConfig
from mlops.schema.feature_groups import FeatureGroup, put_record_request  # noqa: F401 - PutRecord lives with the groups (the Glue job builds it too)

WHERE = "mlops.schema.feature_groups"  # named in the groups' Description
BATCH_GET_MAX_IDS = 100  # BatchGetRecord: at most 100 record identifiers per feature group


PREFIX_ENV = "MLOPS_FEATURE_GROUP_PREFIX"  # inference.py looks records up in <prefix>-<group name>


def feature_group_prefix(config: PipelineConfig) -> str:
    """``<project>-<environment>``: every group is ``<prefix>-<group name>``."""
    names = stack_names(config)
    return f"{names.project}-{names.environment}"


def lookup_environment(config: PipelineConfig) -> dict[str, str]:
    """Container variables that let ``inference.py`` find the groups (the region is ``SAGEMAKER_REGION``)."""
    return {PREFIX_ENV: feature_group_prefix(config)}


def feature_group_name(config: PipelineConfig, group: FeatureGroup) -> str:
    """``<project>-<environment>-<group>``, like the other resources of the stacks."""
    return f"{feature_group_prefix(config)}-{group.name}"


def offline_table_name(config: PipelineConfig, group: FeatureGroup) -> str:
    """The Glue table of a group's offline store (in the project's Glue database)."""
    return feature_group_name(config, group).replace("-", "_")


def create_feature_group_request(
    config: PipelineConfig, group: FeatureGroup, role_arn: str, kms_key_id: str
) -> dict[str, Any]:
    """CreateFeatureGroup: online store and offline store (lake bucket, Glue table), both encrypted with the KMS key."""
    return {
        "FeatureGroupName": feature_group_name(config, group),
        "RecordIdentifierFeatureName": group.record_identifier,
        "EventTimeFeatureName": group.event_time,
        "FeatureDefinitions": group.feature_definitions(),
        "OnlineStoreConfig": {"EnableOnlineStore": True, "SecurityConfig": {"KmsKeyId": kms_key_id}},
        "OfflineStoreConfig": {
            "S3StorageConfig": {
                "S3Uri": f"s3://{config.aws.lake_bucket}/{config.lake.curated_prefix}/{OFFLINE_STORE_DATASET}",
                "KmsKeyId": kms_key_id,
            },
            "DisableGlueTableCreation": False,
            "DataCatalogConfig": {
                "TableName": offline_table_name(config, group),
                "Catalog": "AwsDataCatalog",
                "Database": stack_names(config).database,
            },
            "TableFormat": "Glue",
        },
        "RoleArn": role_arn,
        "Description": f"{group.name} records by {group.record_identifier} and {group.event_time}; defined in {WHERE}",
    }


def batch_get_record_request(identifiers: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """BatchGetRecord of feature group name -> record identifiers (deduplicated, in first-seen order)."""
    requested = []
    for group_name, ids in identifiers.items():
        unique = list(dict.fromkeys(str(i) for i in ids))
        if len(unique) > BATCH_GET_MAX_IDS:
            raise ValueError(f"{group_name}: {len(unique)} ids; BatchGetRecord takes at most {BATCH_GET_MAX_IDS}")
        if unique:
            requested.append({"FeatureGroupName": group_name, "RecordIdentifiersValueAsString": unique})
    return {"Identifiers": requested}
