"""Two accounts (dev -> prod): the promotion role, the dev grants that admit it, and the promotion pipeline.

Each template is resolved for the account it is deployed in (``tests.aws.cfn_policies.Deployment``):
``cross-account.yaml`` in prod, ``storage.yaml`` and ``pipeline.yaml`` in dev, so the names one side
trusts are compared with the names the other side creates.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.aws.cfn_policies import Deployment, load_template

ROOT = Path(__file__).resolve().parents[2]
DEV, PROD, REGION = "111111111111", "222222222222", "eu-west-1"
EXTERNAL_ID = "promote-mlops-0123456789abcdef"
DEV_LAKE, DEV_KEY = "mlops-lake-dev-111111111111-eu-west-1", f"arn:aws:kms:{REGION}:{DEV}:key/0b1c2d3e-4f50"
PROD_LAKE = "mlops-lake-prod-222222222222-eu-west-1"
PROMOTION_ROLE = f"arn:aws:iam::{PROD}:role/mlops-prod-model-promotion"


def prod(**parameters: str) -> Deployment:
    values = {"ProjectName": "mlops", "Environment": "prod", "SourceAccountId": DEV, "SourceLakeBucketName": DEV_LAKE,
              "SourceDataKeyArn": DEV_KEY, "ExternalId": EXTERNAL_ID, **parameters}  # fmt: skip
    exports = {"mlops-prod-LakeBucketArn": f"arn:aws:s3:::{PROD_LAKE}",
               "mlops-prod-DataKeyArn": f"arn:aws:kms:{REGION}:{PROD}:key/prod"}  # fmt: skip
    return Deployment(PROD, REGION, values, exports=exports)


def dev(**parameters: str) -> Deployment:
    exports = {"mlops-dev-DataKeyArn": DEV_KEY, "mlops-dev-ArtifactsBucketName": "mlops-artifacts-dev",
               "mlops-dev-AccessLogBucketName": "mlops-access-logs-dev"}  # fmt: skip
    values = {"ProjectName": "mlops", "Environment": "dev", **parameters}
    return Deployment(DEV, REGION, values, exports=exports, attributes={"DataKey.Arn": DEV_KEY})


def props(deployment: Deployment, template: str, logical_id: str, *keys: str) -> dict[str, Any]:
    properties = load_template(template)["Resources"][logical_id]["Properties"]
    return deployment.resolve(template, {k: v for k, v in properties.items() if not keys or k in keys})


def statement(document: dict[str, Any], sid: str) -> dict[str, Any] | None:
    found = [s for s in document["Statement"] if s.get("Sid") == sid]
    return found[0] if found else None


# ---------------------------------------------------------------------------- prod: the promotion role
def test_the_promotion_role_trusts_one_dev_role_with_an_external_id():
    role = props(prod(), "cross-account.yaml", "PromotionRole")
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    dev_role = props(dev(PromotionRoleArn=PROMOTION_ROLE), "pipeline.yaml", "PromoteRole", "RoleName")["RoleName"]
    assert trust["Principal"] == {"AWS": f"arn:aws:iam::{DEV}:role/{dev_role}"}, "the dev promotion project's role"
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}}
    assert f"arn:aws:iam::{PROD}:role/{role['RoleName']}" == PROMOTION_ROLE
    in_org = props(prod(OrganizationId="o-abcdef0123"), "cross-account.yaml", "PromotionRole")
    condition = in_org["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]["StringEquals"]
    assert condition == {"sts:ExternalId": EXTERNAL_ID, "aws:PrincipalOrgID": "o-abcdef0123"}
    assert load_template("cross-account.yaml")["Parameters"]["ExternalId"]["NoEcho"] is True


def test_the_promotion_role_reads_dev_models_and_writes_prod_promoted_models_only():
    (_, document), = prod().role_policies("cross-account.yaml", "PromotionRole")  # fmt: skip
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    assert by_sid["ReadDevModelArtifacts"]["Resource"] == f"arn:aws:s3:::{DEV_LAKE}/models/*"
    assert by_sid["DecryptDevModelArtifacts"]["Resource"] == DEV_KEY
    assert by_sid["WritePromotedModels"]["Resource"] == f"arn:aws:s3:::{PROD_LAKE}/models/promoted/*"
    for sid in ("DecryptDevModelArtifacts", "EncryptPromotedModels"):
        assert by_sid[sid]["Condition"]["StringEquals"]["kms:ViaService"] == f"s3.{REGION}.amazonaws.com"
    registry = by_sid["RegisterInProdRegistry"]["Resource"]
    assert all(arn.startswith(f"arn:aws:sagemaker:{REGION}:{PROD}:model-package") for arn in registry)
    assert not [s for s in document["Statement"] if s["Resource"] == "*"]


# ---------------------------------------------------------------------------- dev: the grants
def test_dev_lake_and_key_admit_the_promotion_role_for_models_only():
    deployment = dev(PromotionAccountId=PROD)
    bucket = props(deployment, "storage.yaml", "LakeBucketPolicy", "PolicyDocument")["PolicyDocument"]
    read = statement(bucket, "PromotionRoleReadsModels")
    assert read["Principal"] == {"AWS": f"arn:aws:iam::{PROD}:root"} and read["Action"] == "s3:GetObject"
    assert read["Resource"] == f"arn:aws:s3:::{DEV_LAKE}/models/*"
    assert read["Condition"] == {"ArnEquals": {"aws:PrincipalArn": PROMOTION_ROLE}}
    key = props(deployment, "storage.yaml", "DataKey", "KeyPolicy")["KeyPolicy"]
    decrypt = statement(key, "PromotionRoleDecryptsModelsThroughS3")
    assert decrypt["Action"] == "kms:Decrypt" and decrypt["Principal"] == {"AWS": f"arn:aws:iam::{PROD}:root"}
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"},
        "ArnEquals": {"aws:PrincipalArn": PROMOTION_ROLE},
    }


def test_one_account_grants_nothing_to_another():
    deployment = dev()
    bucket = props(deployment, "storage.yaml", "LakeBucketPolicy", "PolicyDocument")["PolicyDocument"]
    key = props(deployment, "storage.yaml", "DataKey", "KeyPolicy")["KeyPolicy"]
    assert statement(bucket, "PromotionRoleReadsModels") is None
    assert statement(key, "PromotionRoleDecryptsModelsThroughS3") is None
    assert not deployment.condition("pipeline.yaml", "PromotesToProd")


# ---------------------------------------------------------------------------- dev: the promotion pipeline
def _promotion() -> Deployment:
    return dev(PromotionRoleArn=PROMOTION_ROLE, PromotionExternalId=EXTERNAL_ID, PromotionLakeBucketName=PROD_LAKE,
               ConnectionArn=f"arn:aws:codeconnections:{REGION}:{DEV}:connection/abc", RepositoryId="o/r")  # fmt: skip


def test_promotion_pipeline_waits_for_a_person_after_the_registry_approval():
    deployment = _promotion()
    assert deployment.condition("pipeline.yaml", "PromotesToProd")
    stages = props(deployment, "pipeline.yaml", "PromotionPipeline", "Stages")["Stages"]
    assert [s["Name"] for s in stages] == ["Source", "ApprovePromotion", "Promote"]
    (source,) = stages[0]["Actions"]
    assert source["Configuration"]["DetectChanges"] == "false", "a push must not promote a model"
    (approval,) = stages[1]["Actions"]
    assert approval["ActionTypeId"] == {"Category": "Approval", "Owner": "AWS", "Provider": "Manual", "Version": "1"}
    project = load_template("pipeline.yaml")["Resources"]["PromoteProject"]["Properties"]
    assert project["Source"]["BuildSpec"] == "infra/buildspec-promote.yml"
    policies = load_template("pipeline.yaml")["Resources"]["PromoteRole"]["Properties"]["Policies"]
    (role_statements,) = [p["PolicyDocument"]["Statement"] for p in policies]
    assume = [s for s in role_statements if s["Action"] == "sts:AssumeRole"]
    assert [deployment.resolve("pipeline.yaml", s["Resource"]) for s in assume] == [PROMOTION_ROLE]


@pytest.mark.parametrize(("status", "group", "starts"), [("Approved", "mlops-order-outcome", True),
                                                         ("PendingManualApproval", "mlops-order-outcome", False),
                                                         ("Approved", "another-group", False)])  # fmt: skip
def test_a_registry_approval_starts_the_promotion(status, group, starts):
    from moto.events.models import EventPattern

    rule = props(_promotion(), "pipeline.yaml", "ModelApprovedRule", "EventPattern", "Targets")
    detail = {"ModelPackageGroupName": group, "ModelApprovalStatus": status, "ModelPackageVersion": 3}
    event = {"source": "aws.sagemaker", "detail-type": "SageMaker Model Package State Change", "account": DEV,
             "region": REGION, "resources": [], "detail": detail}  # fmt: skip
    assert EventPattern(None, rule["EventPattern"]).matches_event(event) is starts
    (target,) = rule["Targets"]
    assert target["Arn"] == f"arn:aws:codepipeline:{REGION}:{DEV}:mlops-dev-model-promotion"


def test_promote_buildspec_uses_what_the_project_sets_and_assumes_with_the_external_id():
    spec = yaml.safe_load((ROOT / "infra" / "buildspec-promote.yml").read_text())
    commands = "\n".join(spec["phases"]["build"]["commands"])
    assert spec["phases"]["build"]["on-failure"] == "ABORT" and commands.startswith("set -euo pipefail")
    project = load_template("pipeline.yaml")["Resources"]["PromoteProject"]["Properties"]
    variables = {v["Name"] for v in project["Environment"]["EnvironmentVariables"]}
    used = set(re.findall(r"\$\{?([A-Z][A-Z_]+)", commands)) - {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                                                 "AWS_SESSION_TOKEN", "SOURCE_ARN", "VERSION",
                                                                 "SOURCE_URL", "TARGET_URL", "CREDENTIALS",
                                                                 "TARGET_ARN"}  # fmt: skip
    assert used == variables
    assert '--role-arn "$PROMOTION_ROLE_ARN" --external-id "$PROMOTION_EXTERNAL_ID"' in commands
    assert "--model-approval-status Approved" in commands and "models/promoted/" in commands
