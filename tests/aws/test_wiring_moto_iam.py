"""IAM proven from the calls we make: every AWS call of the aws wiring tests, checked against infra/cfn.

Runs after ``tests/aws/test_wiring_moto.py`` in the same session (``tests/aws/conftest.py`` orders it
last) and reads what its moto server recorded (:data:`tests.aws.moto_server.RECORDINGS`): the calls
the Airflow tasks made (the MWAA execution role), the job roles' needs derived from the job
requests, and the documented platform calls (:mod:`tests.aws.iam_coverage`). Each is evaluated
offline by principalmapper against the policies of ``infra/cfn/*.yaml`` resolved for the test's
account, region and names. The report (operations per principal, statements broader than the
calls need) is written to ``.mlops/reports/iam_coverage.txt`` and printed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.aws import iam_coverage as iam
from tests.aws.cfn_policies import Deployment, load_template
from tests.aws.moto_server import RECORDINGS, RecordedCall

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / ".mlops" / "reports" / "iam_coverage.txt"
DATA_KEY_ID = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"


def _wiring_calls() -> list[RecordedCall]:
    from tests.aws import test_wiring_moto as wiring

    calls = [call for recording in RECORDINGS for call in recording
             if any(c.params.get("Bucket") == wiring.LAKE_BUCKET for c in recording)]  # fmt: skip
    if not any(call.principal == "task" for call in calls):
        pytest.fail(
            "no recorded calls of the aws wiring tests: run this together with tests/aws/test_wiring_moto.py "
            "(pytest tests/aws, or make test)",
            pytrace=False,
        )
    return calls


def _deployment() -> Deployment:
    """The stacks' values for the wiring test's account, region and names (project, environment, buckets, roles)."""
    from mlops.aws.glue_requests import stack_names
    from mlops.config import load_config
    from tests.aws import test_wiring_moto as wiring

    names = stack_names(load_config(environ={"MLOPS__AWS__LAKE_BUCKET": wiring.LAKE_BUCKET}))
    prefix = f"{names.project}-{names.environment}"
    arns = iam.Arns(wiring.ACCOUNT, wiring.REGION)
    exports = {
        f"{prefix}-LakeBucketName": wiring.LAKE_BUCKET,
        f"{prefix}-LakeBucketArn": arns.s3(wiring.LAKE_BUCKET),
        f"{prefix}-ArtifactsBucketName": wiring.ARTIFACTS_BUCKET,
        f"{prefix}-ArtifactsBucketArn": arns.s3(wiring.ARTIFACTS_BUCKET),
        f"{prefix}-DataKeyArn": arns.of("kms", f"key/{DATA_KEY_ID}"),
        f"{prefix}-MwaaExecutionRoleArn": arns.of("iam", f"role/{prefix}-mwaa-execution", region=False),
    }
    return Deployment(
        account=wiring.ACCOUNT,
        region=wiring.REGION,
        parameters={"ProjectName": names.project, "Environment": names.environment},
        exports=exports,
        # the roles the wiring test passes in its requests (ROLE_ARN, GLUE_ROLE_ARN) are these stacks' roles
        attributes={
            "SageMakerExecutionRole.Arn": wiring.ROLE_ARN,
            "GlueJobRole.Arn": wiring.GLUE_ROLE_ARN,
            "GlueValidationJobRole.Arn": wiring.GLUE_ROLE_ARN,
        },
    )


def _all_checks(deployment: Deployment, calls: list[RecordedCall]) -> list[iam.Check]:
    from mlops.aws import glue_requests
    from mlops.config import load_config
    from tests.aws import test_wiring_moto as wiring

    config = load_config(environ={"MLOPS__AWS__LAKE_BUCKET": wiring.LAKE_BUCKET,
                                  "MLOPS__AWS__ARTIFACTS_BUCKET": wiring.ARTIFACTS_BUCKET})  # fmt: skip
    names = glue_requests.stack_names(config)
    env = iam.Environment(
        arns=iam.Arns(deployment.account, deployment.region),
        data_key_arn=deployment.exports[f"{names.project}-{names.environment}-DataKeyArn"],
        encrypted_buckets=frozenset({wiring.LAKE_BUCKET, wiring.ARTIFACTS_BUCKET}),
    )
    glue_roles = {names.glue_job: "glue-curate-features", names.validation_job: "glue-validate-features"}
    glue_access = {names.glue_job: glue_requests.ARGUMENT_ACCESS["curate-features"],
                   names.validation_job: glue_requests.ARGUMENT_ACCESS["validate-features"]}  # fmt: skip
    glue_scripts = {names.glue_job: glue_requests.script_location(config),
                    names.validation_job: glue_requests.validation_script_location(config)}  # fmt: skip
    secret = load_template("data.yaml")["Parameters"]["SourceDbSecretName"]["Default"]
    buildspec = (ROOT / "infra" / "buildspec-deploy.yml").read_text()
    return (
        iam.task_checks(env, calls)
        + iam.job_checks(env, calls, glue_roles, glue_access, glue_scripts)
        + iam.dms_checks(env, config, wiring.LAKE_BUCKET, secret)
        + iam.feature_store_checks(env, config)
        + iam.mwaa_platform_checks(env, deployment, config.aws.conn_id)
        + iam.reporting_checks(env, deployment)
        + iam.codebuild_deploy_checks(env, deployment, buildspec)
    )


@pytest.fixture(scope="module")
def coverage():
    calls = _wiring_calls()
    deployment = _deployment()
    checks = _all_checks(deployment, calls)
    return deployment, checks, iam.resource_policies(deployment)


def test_every_call_is_allowed_by_its_principals_policies(coverage):
    deployment, checks, policies = coverage
    verdicts = iam.evaluate(deployment, checks, policies)
    report = iam.coverage_report(verdicts, iam.unused_grants(deployment, verdicts))
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(report + "\n")
    print(report)
    assert {c.principal for c in checks} == set(iam.PRINCIPALS), "a principal has no checks"
    denied = [v.check for v in verdicts if not v.allowed]
    assert not denied, f"{len(denied)} calls denied (full report: {REPORT}):\n" + "\n".join(
        f"  {c.principal} {c.action} {c.resource} {c.conditions} <- {c.source}" for c in denied[:40]
    )


@pytest.mark.parametrize(
    ("principal", "sid", "action"),
    [
        ("mwaa-execution", "GlueJobRuns", "glue:StartJobRun"),
        ("sagemaker-execution", "ReadFeaturesCaptureAndModels", "s3:GetObject"),
        ("glue-validate-features", "WriteFeatureReportsViaStaging", "s3:PutObject"),
        ("codebuild-deploy", "UpdateMwaaEnvironmentKeyGrants", "kms:CreateGrant"),
        ("glue-curate-features", "PutFeatureRecords", "sagemaker:PutRecord"),
        ("glue-curate-features", "DescribeFeatureGroups", "sagemaker:DescribeFeatureGroup"),
        ("sagemaker-execution", "ReadFeatureRecords", "sagemaker:BatchGetRecord"),
        ("feature-store-offline", "WriteOfflineStore", "s3:PutObject"),
    ],
)
def test_removing_a_needed_statement_denies_its_calls(coverage, principal, sid, action):
    """The check can fail: without one statement the calls it covers are denied (and nothing else)."""
    deployment, checks, policies = coverage
    verdicts = iam.evaluate(deployment, checks, policies, drop=(principal, sid))
    denied = {(v.check.principal, v.check.action) for v in verdicts if not v.allowed}
    assert (principal, action) in denied, f"dropping {principal}/{sid} denied only {sorted(denied)}"
    assert {p for p, _ in denied} == {principal}
