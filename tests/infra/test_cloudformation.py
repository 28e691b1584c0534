"""The CloudFormation under infra/: cfn-lint and checkov run clean, and the templates say what the pipeline needs.

cfn-lint and checkov run from their own venv (.mlops/venvs/infra, `make infra-venv`; the main
Makefile's test target builds it first). A missing venv fails these tests; it never skips them.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.config import load_config
from mlops_tools.mwaa_constraints import MWAA_DIR, read_versions
from tests.aws.cfn_policies import load_template

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
CFN = INFRA / "cfn"
INFRA_BIN = ROOT / ".mlops" / "venvs" / "infra" / "bin"
TEMPLATES = sorted(CFN.glob("*.yaml"))

#: Actions that may use Resource "*" because their APIs have no resource-level permissions.
NO_RESOURCE_LEVEL_ACTIONS = {
    "cloudwatch:PutMetricData",
    "cloudwatch:GetMetricData",
    "logs:DescribeLogGroups",
    "s3:GetAccountPublicAccessBlock",
    "ecr:GetAuthorizationToken",
    "dms:DescribeReplicationTasks",
    "sagemaker:ListModelPackages",
    "ec2:DescribeNetworkInterfaces",
    # SageMaker jobs in VPC mode (EC2 Describe* calls take no resource ARN)
    "ec2:DescribeVpcs",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
    # Glue jobs on a NETWORK connection
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeRouteTables",
    "ec2:DescribeVpcAttribute",
}


# ---------------------------------------------------------------------------- loading
def resources(of_type: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(template, logical id, properties) of every resource of a type, over all templates."""
    found = []
    for path in TEMPLATES:
        for logical_id, resource in load_template(path.name)["Resources"].items():
            if resource["Type"] == of_type:
                found.append((path.name, logical_id, resource.get("Properties", {})))
    return found


def one(of_type: str) -> dict[str, Any]:
    (found,) = resources(of_type)
    return found[2]


def default(template_name: str, value: Any) -> Any:
    """A property value, resolving a {"Ref": Parameter} to the parameter's default."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return load_template(template_name)["Parameters"][value["Ref"]]["Default"]
    return value


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    """A policy's statements, each branch of an ``Fn::If`` statement included (``AWS::NoValue`` left out)."""
    found = []
    for statement in document["Statement"]:
        branches = statement["Fn::If"][1:] if set(statement) == {"Fn::If"} else [statement]
        found += [branch for branch in branches if "Effect" in branch]
    return found


def policy_statements() -> list[tuple[str, str, dict[str, Any]]]:
    """(template, owner, statement) for every statement of every IAM role's inline policies."""
    statements = []
    for name, logical_id, props in resources("AWS::IAM::Role"):
        for policy in props.get("Policies", []):
            for statement in statements_of(policy["PolicyDocument"]):
                statements.append((name, f"{logical_id}/{policy['PolicyName']}", statement))
    return statements


def all_policy_documents() -> list[tuple[str, dict[str, Any]]]:
    """(owner, statement) over roles, bucket/topic/queue policies and KMS key policies."""
    owners: list[tuple[str, dict[str, Any]]] = [(owner, st) for _, owner, st in policy_statements()]
    for of_type, prop in [
        ("AWS::S3::BucketPolicy", "PolicyDocument"),
        ("AWS::SNS::TopicPolicy", "PolicyDocument"),
        ("AWS::SQS::QueuePolicy", "PolicyDocument"),
        ("AWS::KMS::Key", "KeyPolicy"),
    ]:
        for _, logical_id, props in resources(of_type):
            owners += [(logical_id, st) for st in statements_of(props[prop])]
    return owners


@pytest.fixture(scope="module")
def pipeline():
    return load_config(ROOT / "include" / "pipeline.yaml", environ={})


# ---------------------------------------------------------------------------- linters
def _tool(name: str) -> Path:
    path = INFRA_BIN / name
    if not path.exists():
        pytest.fail(
            f"{path} is missing: the infra lint venv is not installed; run make test (or make infra-venv)",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="module")
def checkov_report() -> dict[str, Any]:
    command = [str(_tool("checkov")), "--directory", str(INFRA), "--framework", "cloudformation"]
    command += ["--skip-download", "--output", "json"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.stdout.strip(), f"checkov printed no report (exit {result.returncode}): {result.stderr[-2000:]}"
    return json.loads(result.stdout)


def test_templates_exist():
    assert {p.name for p in TEMPLATES} >= {
        "storage.yaml",
        "iam.yaml",
        "data.yaml",
        "ml.yaml",
        "reporting.yaml",
        "mwaa.yaml",
        "pipeline.yaml",
    }


def test_cfn_lint_is_clean():
    result = subprocess.run(
        [str(_tool("cfn-lint")), "--include-checks", "I", "--", *map(str, TEMPLATES)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, f"cfn-lint found problems:\n{result.stdout}{result.stderr}"


def test_checkov_reports_zero_failed_checks(checkov_report):
    summary = checkov_report["summary"]
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in checkov_report["results"]["failed_checks"]]
    assert summary["failed"] == 0, "checkov failed checks:\n" + "\n".join(failed)
    assert summary["parsing_errors"] == 0
    assert summary["passed"] >= 100, "checkov scanned far fewer checks than the templates hold"
    assert summary["resource_count"] >= 40


def test_every_checkov_skip_has_a_reason_and_is_listed_in_the_readme(checkov_report):
    readme = (INFRA / "README.md").read_text()
    skipped = checkov_report["results"]["skipped_checks"]
    for check in skipped:
        assert len(check["check_result"].get("suppress_comment", "")) > 20, f"{check['check_id']} has no reason"
        logical_id = check["resource"].split(".", 1)[1]
        assert check["check_id"] in readme and logical_id in readme, f"{check['check_id']} not listed in README"
    in_templates = re.findall(r"checkov:skip=(CKV2?_AWS_\d+)", "".join(p.read_text() for p in TEMPLATES))
    assert sorted(in_templates) == sorted(c["check_id"] for c in skipped)


# ---------------------------------------------------------------------------- accounts
def test_every_template_is_parameterised_by_environment():
    for path in TEMPLATES:
        parameters = load_template(path.name)["Parameters"]
        assert parameters["Environment"]["AllowedValues"] == ["dev", "prod"], path.name
        assert "ProjectName" in parameters, path.name


def test_no_hard_coded_account_ids_or_arns():
    for path in TEMPLATES:
        data = load_template(path.name)
        for line in path.read_text().splitlines():
            code = line.split(" #", 1)[0]
            assert not re.search(r"(?<![\d{])\d{12}(?!\d)", code), f"{path.name}: account id in {line.strip()!r}"
        patterns = {json.dumps(p.get("AllowedPattern", "")) for p in data["Parameters"].values()}
        for arn in re.findall(r'"(arn:[^"]*)"', json.dumps(data)):
            assert "${AWS::Partition}" in arn or json.dumps(arn)[1:-1] in "".join(patterns), f"{path.name}: {arn}"


# ---------------------------------------------------------------------------- storage
def test_every_bucket_is_encrypted_private_versioned_and_tls_only():
    policies = {props["Bucket"]["Ref"]: props for _, _, props in resources("AWS::S3::BucketPolicy")}
    buckets = resources("AWS::S3::Bucket")
    assert len(buckets) >= 4
    for _name, logical_id, props in buckets:
        rules = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        algorithm = rules[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
        block = props["PublicAccessBlockConfiguration"]
        assert block == {k: True for k in block} and len(block) == 4, logical_id
        assert props["VersioningConfiguration"]["Status"] == "Enabled", logical_id
        deny = [s for s in statements_of(policies[logical_id]["PolicyDocument"]) if s["Effect"] == "Deny"]
        assert any(s["Condition"]["Bool"]["aws:SecureTransport"] == "false" for s in deny), logical_id
        if logical_id == "AccessLogBucket":
            assert algorithm == "AES256"  # S3 server access log delivery supports SSE-S3 only
        else:
            assert algorithm == "aws:kms", logical_id
            assert rules[0]["ServerSideEncryptionByDefault"]["KMSMasterKeyID"], logical_id
            assert "LoggingConfiguration" in props, f"{logical_id} has no access logging"


#: Storage classes whose objects GetObject cannot read without a restore (Glue fails on them, Athena skips them).
ARCHIVE_CLASSES = {"GLACIER", "DEEP_ARCHIVE"}


def test_kms_key_rotates_and_no_current_object_readers_touch_is_archived():
    assert all(key["EnableKeyRotation"] is True for _, _, key in resources("AWS::KMS::Key"))
    assert {logical_id for _, logical_id, _ in resources("AWS::KMS::Key")} == KMS_KEYS
    for _, logical_id, bucket in resources("AWS::S3::Bucket"):
        for rule in bucket.get("LifecycleConfiguration", {}).get("Rules", []):
            classes = {t["StorageClass"] for t in rule.get("Transitions", [])}
            assert not classes & ARCHIVE_CLASSES, f"{logical_id} {rule['Id']} archives current objects readers read"
            assert "Tierings" not in rule, "Intelligent-Tiering archive tiers need a restore too"
    lake = next(p for _, lid, p in resources("AWS::S3::Bucket") if lid == "LakeBucket")
    raw_rules = [r for r in lake["LifecycleConfiguration"]["Rules"] if r.get("Prefix") == "raw/"]
    assert raw_rules and raw_rules[0]["Transitions"][0]["StorageClass"] == "INTELLIGENT_TIERING"
    assert not resources("AWS::S3::IntelligentTieringConfiguration")  # no opt-in archive tiers


# ---------------------------------------------------------------------------- IAM
#: Key policies, whose first statement gives the account root kms:* on the key (the AWS default).
KMS_KEYS = {"DataKey", "AuditKey"}


def test_no_statement_allows_every_action():
    for owner, statement in all_policy_documents():
        actions = as_list(statement.get("Action", []))
        assert "*" not in actions, f"{owner}: Action '*' in {statement.get('Sid')}"
        if statement["Effect"] == "Allow" and owner not in KMS_KEYS:
            assert not [a for a in actions if a.endswith(":*")], f"{owner}: service-wide action in {statement}"


def test_resource_star_only_for_apis_without_resource_level_permissions():
    for name, owner, statement in policy_statements():
        if "*" not in as_list(statement["Resource"]):
            continue
        assert statement["Sid"].endswith("NoResourceLevelPermissions"), f"{name} {owner}: {statement['Sid']}"
        assert set(as_list(statement["Action"])) <= NO_RESOURCE_LEVEL_ACTIONS, f"{name} {owner}: {statement}"


def test_roles_are_assumable_only_by_their_service_in_this_account():
    for template, logical_id, props in resources("AWS::IAM::Role"):
        if template == "cross-account.yaml":
            continue  # the one cross-account role: test_the_promotion_role_trusts_one_dev_role_with_an_external_id
        for statement in props["AssumeRolePolicyDocument"]["Statement"]:
            assert set(statement["Principal"]) == {"Service"}, logical_id
            if logical_id not in {"DmsVpcRole", "DmsCloudWatchLogsRole"}:
                assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_pass_role_is_limited_to_its_service():
    for _, owner, statement in policy_statements():
        if "iam:PassRole" in as_list(statement["Action"]):
            assert "iam:PassedToService" in statement["Condition"]["StringEquals"], owner


def test_mwaa_reads_only_its_secrets_prefixes():
    props = one("AWS::MWAA::Environment")
    kwargs = json.loads(
        props["AirflowConfigurationOptions"]["secrets.backend_kwargs"]["Fn::Sub"]
        .replace("${AirflowConnectionsPrefix}", "airflow/connections")
        .replace("${AirflowVariablesPrefix}", "airflow/variables")
    )
    assert kwargs == {"connections_prefix": "airflow/connections", "variables_prefix": "airflow/variables"}
    secret_statements = [
        st
        for _, owner, st in policy_statements()
        if owner.startswith("MwaaExecutionRole") and "secretsmanager:" in str(st["Action"])
    ]
    allowed = [r["Fn::Sub"] for st in secret_statements for r in as_list(st["Resource"])]
    assert allowed
    assert all(r.endswith(("${AirflowConnectionsPrefix}/*", "${AirflowVariablesPrefix}/*")) for r in allowed)


# ---------------------------------------------------------------------------- DMS
def _target_endpoint() -> tuple[str, dict[str, Any]]:
    (found,) = [(n, p) for n, _, p in resources("AWS::DMS::Endpoint") if p["EngineName"] == "s3"]
    return found


def test_dms_s3_target_writes_parquet_with_op_and_commit_timestamp(pipeline):
    name, props = _target_endpoint()
    settings = props["S3Settings"]
    assert settings["DataFormat"] == "parquet"
    assert settings["ParquetVersion"] == "parquet-2-0"
    assert settings["IncludeOpForFullLoad"] is pipeline.replication.include_op_for_full_load is True
    assert default(name, settings["TimestampColumnName"]) == pipeline.replication.timestamp_column
    assert settings["CdcInsertsAndUpdates"] is False
    assert settings["CdcInsertsOnly"] is False
    assert settings["EncryptionMode"] == "SSE_KMS"
    assert settings["ServerSideEncryptionKmsKeyId"]
    assert default(name, settings["BucketFolder"]) == pipeline.lake.raw_prefix
    assert settings["ServiceAccessRoleArn"]


def test_dms_source_uses_secrets_manager_and_instance_is_private():
    (source,) = [p for _, _, p in resources("AWS::DMS::Endpoint") if p["EndpointType"] == "source"]
    assert source["EngineName"] == "postgres"
    assert source["PostgreSqlSettings"]["SecretsManagerSecretId"]
    assert source["PostgreSqlSettings"]["SecretsManagerAccessRoleArn"]
    assert not {"Password", "Username"} & set(source)
    instance = one("AWS::DMS::ReplicationInstance")
    assert instance["PubliclyAccessible"] is False
    assert instance["KmsKeyId"] and instance["ReplicationSubnetGroupIdentifier"]


def test_dms_task_replicates_the_pipeline_tables_with_change_sequence(pipeline):
    task = one("AWS::DMS::ReplicationTask")
    assert task["MigrationType"] == "full-load-and-cdc"
    schema = load_template("data.yaml")["Parameters"]["SourceSchema"]["Default"]
    assert schema == pipeline.source.schema_name
    rules = json.loads(task["TableMappings"]["Fn::Sub"].replace("${SourceSchema}", schema))["rules"]
    selected = [r["object-locator"] for r in rules if r["rule-type"] == "selection" and r["rule-action"] == "include"]
    assert {loc["schema-name"] for loc in selected} == {schema}
    assert sorted(loc["table-name"] for loc in selected) == sorted(pipeline.replication.tables)
    (add_column,) = [r for r in rules if r["rule-type"] == "transformation"]
    assert add_column["rule-action"] == "add-column"
    assert add_column["value"] == "dms_change_seq"
    assert add_column["expression"] == "$AR_H_CHANGE_SEQ"
    assert len({r["rule-id"] for r in rules}) == len(rules)


def test_dms_validates_the_s3_target_with_the_settings_the_code_reads(pipeline):
    from mlops.aws import dms_requests

    name, props = _target_endpoint()
    for key, value in dms_requests.s3_target_settings(pipeline).items():
        assert default(name, props["S3Settings"][key]) == value, f"S3Settings.{key}"
    task_settings = json.loads(one("AWS::DMS::ReplicationTask")["ReplicationTaskSettings"])
    assert task_settings["ValidationSettings"] == dms_requests.validation_settings(pipeline)
    version = default("data.yaml", one("AWS::DMS::ReplicationInstance")["EngineVersion"])
    assert tuple(int(part) for part in version.split(".")[:2]) >= (3, 5), "S3 target validation needs DMS 3.5.0+"
    (role,) = [p for _, logical_id, p in resources("AWS::IAM::Role") if logical_id == "DmsS3TargetRole"]
    allowed = {
        action
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Allow"
        for action in as_list(statement["Action"])
    }
    assert {"athena:StartQueryExecution", "athena:GetQueryExecution", "athena:CreateWorkGroup"} <= allowed
    assert {"glue:CreateTable", "glue:DeleteTable", "glue:GetTables", "s3:GetObject"} <= allowed


def test_only_dms_reaches_the_source_database():
    resources_ = load_template("data.yaml")["Resources"]
    source_sg = {"Ref": "SourceDbSecurityGroupId"}
    port = {"Ref": "SourceDbPort"}
    (to_source,) = [
        rule for rule in resources_["DmsSecurityGroup"]["Properties"]["SecurityGroupEgress"] if rule["FromPort"] == port
    ]
    assert to_source["DestinationSecurityGroupId"] == source_sg and to_source["ToPort"] == port
    ingress = [props for _, _, props in resources("AWS::EC2::SecurityGroupIngress") if props["GroupId"] == source_sg]
    assert ingress == [
        {
            "GroupId": source_sg,
            "Description": ingress[0]["Description"],
            "IpProtocol": "tcp",
            "FromPort": port,
            "ToPort": port,
            "SourceSecurityGroupId": {"Fn::GetAtt": ["DmsSecurityGroup", "GroupId"]},
        }
    ]
    opens_a_path = re.compile(r"SourceDb(Port|Security)")
    network = [path.name for path in TEMPLATES if path.name != "data.yaml" and opens_a_path.search(path.read_text())]
    assert network == [], "no other stack (MWAA included) may open a path to the source database"
    readers = {owner.split("/")[0] for _, owner, st in policy_statements() if "SourceDbSecretName" in json.dumps(st)}
    assert readers == {"DmsSecretsAccessRole"}, "only DMS reads the source credentials"


# ---------------------------------------------------------------------------- Glue / Athena
def test_glue_and_athena_encrypt_everything():
    encryption = one("AWS::Glue::SecurityConfiguration")["EncryptionConfiguration"]
    assert encryption["S3Encryptions"][0]["S3EncryptionMode"] == "SSE-KMS"
    assert encryption["CloudWatchEncryption"]["CloudWatchEncryptionMode"] == "SSE-KMS"
    assert encryption["JobBookmarksEncryption"]["JobBookmarksEncryptionMode"] == "CSE-KMS"
    jobs = resources("AWS::Glue::Job")
    assert len(jobs) == 2, "curate-features and validate-features"
    for _, _, job in jobs:
        assert job["GlueVersion"] == "5.0" and job["SecurityConfiguration"]
    workgroup = one("AWS::Athena::WorkGroup")["WorkGroupConfiguration"]
    assert workgroup["EnforceWorkGroupConfiguration"] is True
    assert workgroup["ResultConfiguration"]["EncryptionConfiguration"]["EncryptionOption"] == "SSE_KMS"
    assert workgroup["ResultConfiguration"]["EncryptionConfiguration"]["KmsKey"]


# ---------------------------------------------------------------------------- ML / reporting
def test_model_registry_and_rollback_alarms(pipeline):
    group = one("AWS::SageMaker::ModelPackageGroup")
    assert default("ml.yaml", group["ModelPackageGroupName"]) == pipeline.registry.model_package_group
    endpoint_parameter = load_template("ml.yaml")["Parameters"]["EndpointName"]
    assert endpoint_parameter["Default"] == pipeline.serving.endpoint_name
    alarms = {p["MetricName"]: p for name, _, p in resources("AWS::CloudWatch::Alarm") if name == "ml.yaml"}
    assert set(alarms) == {"Invocation5XXErrors", "ModelLatency"}
    for alarm in alarms.values():
        assert alarm["Namespace"] == "AWS/SageMaker"
        assert {d["Name"] for d in alarm["Dimensions"]} == {"EndpointName", "VariantName"}


def test_reporting_lambda_and_table(pipeline):
    function = next(p for _, lid, p in resources("AWS::Lambda::Function") if lid == "ReportingFunction")
    assert function["Runtime"] == "python3.12"
    assert function["Code"]["S3Key"] == {"Ref": "LambdaCodeS3Key"}
    module_name, _, attribute = default("reporting.yaml", function["Handler"]).rpartition(".")
    assert callable(getattr(importlib.import_module(module_name), attribute)), "handler path does not resolve"
    assert default("reporting.yaml", {"Ref": "AggregateTtlDays"}) == pipeline.reporting.ttl_days
    assert set(function["Environment"]["Variables"]) == {"METRICS_TABLE", "AGGREGATE_TTL_DAYS"}
    table = one("AWS::DynamoDB::Table")
    assert table["SSESpecification"] == {**table["SSESpecification"], "SSEEnabled": True, "SSEType": "KMS"}
    assert table["SSESpecification"]["KMSMasterKeyId"]
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


# ---------------------------------------------------------------------------- MWAA
def test_mwaa_is_private_logs_everything_and_matches_the_package():
    props = one("AWS::MWAA::Environment")
    assert props["WebserverAccessMode"] == "PRIVATE_ONLY"
    logging = props["LoggingConfiguration"]
    assert set(logging) == {"DagProcessingLogs", "SchedulerLogs", "TaskLogs", "WebserverLogs", "WorkerLogs"}
    assert all(kind["Enabled"] is True for kind in logging.values())
    version = default("mwaa.yaml", props["AirflowVersion"])
    assert version == read_versions().airflow, "infra/mwaa/versions.env names the one production version"
    assert props["AirflowConfigurationOptions"]["secrets.backend"] == (
        "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"
    )
    from mlops_tools.mwaa_bundle import UPLOADED

    for key, name in [("PluginsS3Path", "plugins.zip"), ("RequirementsS3Path", "requirements.txt")]:
        assert props[key] == {"Fn::Sub": "${MwaaPrefix}/" + name} and name in UPLOADED
    assert props["StartupScriptS3Path"] == {"Fn::Sub": "${MwaaPrefix}/startup.sh"} and "startup.sh" in UPLOADED
    assert props["DagS3Path"] == {"Fn::Sub": "${MwaaPrefix}/dags"}


def test_mwaa_options_feed_every_variable_startup_sh_maps():
    options = one("AWS::MWAA::Environment")["AirflowConfigurationOptions"]
    script = (MWAA_DIR / "startup.sh").read_text()
    mapped = re.findall(r"map_option AIRFLOW__MLOPS__([A-Z_]+) ", script)
    assert mapped
    for key in mapped:
        assert f"mlops.{key.lower()}" in options, f"startup.sh maps AIRFLOW__MLOPS__{key}; mwaa.yaml never sets it"


# ---------------------------------------------------------------------------- delivery
def test_buildspecs_test_before_packaging_and_deploy_the_tested_package():
    build = yaml.safe_load((INFRA / "buildspec.yml").read_text())
    assert build["phases"]["build"]["on-failure"] == "ABORT"
    assert "make test" in build["phases"]["build"]["commands"]
    assert any("make mwaa-bundle" in c for c in build["phases"]["post_build"]["commands"])
    assert build["artifacts"]["base-directory"] == ".mlops/mwaa"
    deploy = yaml.safe_load((INFRA / "buildspec-deploy.yml").read_text())
    commands = "\n".join(deploy["phases"]["build"]["commands"])
    assert "aws mwaa update-environment" in commands and "CODEBUILD_SRC_DIR_MwaaPackage" in commands
    pipeline = next(p for _, lid, p in resources("AWS::CodePipeline::Pipeline") if lid == "Pipeline")
    stages = [s for s in pipeline["Stages"] if isinstance(s, dict) and "Name" in s]
    assert [s["Name"] for s in stages] == ["Source", "BuildAndTest", "Deploy", "StartRuns"]


def test_names_match_what_the_request_builders_use():
    """The features/EDA tasks address the stacks' resources by name (mlops.aws.glue_requests)."""
    from mlops.aws import glue_requests

    names = glue_requests.StackNames(project="mlops", environment="dev")

    def sub(value: dict[str, Any]) -> str:
        return value["Fn::Sub"].replace("${ProjectName}", "mlops").replace("${Environment}", "dev")

    data = load_template("data.yaml")
    assert data["Parameters"]["GlueScriptKey"]["Default"] == glue_requests.SCRIPT_KEY
    jobs = {lid: props for _, lid, props in resources("AWS::Glue::Job")}
    assert sub(jobs["CurateFeaturesJob"]["Name"]) == names.glue_job
    assert sub(jobs["ValidateFeaturesJob"]["Name"]) == names.validation_job
    assert sub(one("AWS::Athena::WorkGroup")["Name"]) == names.workgroup
    assert sub(one("AWS::Glue::Database")["DatabaseInput"]["Name"]) == names.database
    lake = next(p for _, lid, p in resources("AWS::S3::Bucket") if lid == "LakeBucket")
    bucket = sub(lake["BucketName"]).replace("${AWS::AccountId}", "123456789012").replace("${AWS::Region}", "eu-west-1")
    config = load_config(ROOT / "include" / "pipeline.yaml", environ={"MLOPS__AWS__LAKE_BUCKET": bucket})
    assert glue_requests.stack_names(config) == names


def test_sagemaker_execution_role_can_run_jobs_in_vpc_mode():
    """The network-interface permissions SageMaker documents for jobs with a VpcConfig; creating and
    deleting interfaces stays in this account and region."""
    (role,) = [p for _, lid, p in resources("AWS::IAM::Role") if lid == "SageMakerExecutionRole"]
    statements = [s for policy in role["Policies"] for s in statements_of(policy["PolicyDocument"])]
    granted = {a for s in statements for a in as_list(s["Action"]) if a.startswith("ec2:")}
    assert granted == {
        "ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface",
        "ec2:DeleteNetworkInterfacePermission", "ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs",
        "ec2:DescribeDhcpOptions", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups",
    }  # fmt: skip
    for statement in statements:
        if any(a.startswith(("ec2:Create", "ec2:Delete")) for a in as_list(statement["Action"])):
            assert all("${AWS::Region}:${AWS::AccountId}:" in str(r) for r in as_list(statement["Resource"]))
