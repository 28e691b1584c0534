"""Requests to SageMaker Feature Store for the entity feature groups (:mod:`mlops.schema.feature_groups`).

Pure functions; ``tests/aws/test_feature_store_requests.py`` validates each against botocore's service
models (``sagemaker`` for CreateFeatureGroup, ``sagemaker-featurestore-runtime`` for PutRecord and
BatchGetRecord). Locally the online store (:mod:`mlops.features.online_store`) answers the same
BatchGetRecord dicts and takes the same PutRecord dicts; the offline store is written by the features job
in SageMaker's layout.

Not wired into a DAG on ``aws`` yet: creating the groups and ingesting records there is a later step (the
features job would PutRecord the latest record per entity, from Glue, never from the MWAA worker).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from mlops.aws.glue_requests import stack_names
from mlops.config import PipelineConfig
from mlops.schema.feature_groups import FeatureGroup

OFFLINE_STORE_PREFIX = "feature-store"  # under the lake bucket
BATCH_GET_MAX_IDS = 100  # BatchGetRecord: at most 100 record identifiers per feature group


def feature_group_name(config: PipelineConfig, group: FeatureGroup) -> str:
    """``<project>-<environment>-<group>``, like the other resources of the stacks."""
    names = stack_names(config)
    return f"{names.project}-{names.environment}-{group.name}"


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
                "S3Uri": f"s3://{config.aws.lake_bucket}/{OFFLINE_STORE_PREFIX}",
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
        "Description": f"{group.name} records by {group.record_identifier}; derive {', '.join(group.derives)}"[:128],
    }


def _value_text(value: Any) -> str | None:
    """A record value as Feature Store's ``ValueAsString`` (None: the feature is left out of the record)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    return repr(value) if isinstance(value, float) else str(value)


def put_record_request(group_name: str, group: FeatureGroup, record: Mapping[str, Any]) -> dict[str, Any]:
    """PutRecord of one record (missing values left out, as Feature Store allows); ValueError without its
    record identifier or event time."""
    for required in (group.record_identifier, group.event_time):
        if _value_text(record.get(required)) is None:
            raise ValueError(f"{group.name} record needs {required!r}; got {dict(record)!r:.200}")
    values = [(name, _value_text(record.get(name))) for name in group.feature_names()]
    return {
        "FeatureGroupName": group_name,
        "Record": [{"FeatureName": name, "ValueAsString": text} for name, text in values if text is not None],
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
