"""Which IAM permissions the pipeline's AWS calls need, per principal, checked against ``infra/cfn``.

Three sources of *checks* (an IAM action on a resource ARN, with the request's condition keys):

1. **Recorded calls** (``tests/aws/moto_server.py``): every call the code under test makes during the
   aws wiring tests runs as the **MWAA execution role** on AWS. Each is turned into the IAM
   authorizations AWS evaluates for it (:func:`task_checks`): the action (``ListObjectsV2`` is
   ``s3:ListBucket`` with ``s3:prefix``, ``InvokeEndpoint`` is ``sagemaker:InvokeEndpoint``, ...), the
   resource ARN built from the parameters, and what the call implies: ``kms:Decrypt`` /
   ``kms:GenerateDataKey`` through S3 (``kms:ViaService``) on the KMS-encrypted buckets,
   ``iam:PassRole`` (``iam:PassedToService``) for a role in the request, ``sagemaker:AddTags`` for
   ``Tags``, and Athena's reads and result writes, which Athena makes with the caller's credentials.
2. **Jobs the tests run locally as stubs**: their roles' needs are derived from the job request the
   MWAA role sent (:func:`job_checks`): a training or processing job reads each S3 input (ListBucket on
   the prefix, GetObject) and writes each output under its S3 output path, pulls its image, writes
   its logs and metrics; an endpoint's model reads ``ModelDataUrl`` and writes data capture under
   ``DestinationS3Uri/<endpoint>/<variant>/``; a Glue run reads its script and ``--extra-py-files``
   and reads/writes the URIs of its arguments as :data:`mlops.aws.glue_requests.ARGUMENT_ACCESS`
   declares (``put-records``: PutRecord into the feature groups); an endpoint's model whose container
   names the feature groups (``MLOPS_FEATURE_GROUP_PREFIX``) BatchGetRecords them; the groups' offline-store
   role (``create_feature_group_request``) writes the offline store and keeps its Glue tables; DMS's S3
   target role writes the raw objects the seeded full load put under
   ``raw/dms/`` (the local replicator writes DMS's layout) and its Secrets Manager role reads the
   source secret.
3. **Platform calls** documented by AWS and derived from the templates (:func:`platform_checks`):
   MWAA's own (logs, Celery queue, metrics, the bundle in the artifacts bucket, the secrets backend's
   connection lookup), the reporting Lambda's event source mapping, the CodeBuild deploy stage's
   commands (``infra/buildspec-deploy.yml``, parsed).

Each check is evaluated by principalmapper's offline policy simulator
(``local_check_authorization_full``: Allow/Deny statements, conditions, resource policies) against
the role's inline policies from ``infra/cfn`` (resolved by :mod:`tests.aws.cfn_policies`) and, for
S3 and KMS, the bucket policy and the key policy. :func:`unused_grants` lists, per statement, the
actions and resource patterns no check used: what is broader than the calls need.
"""

from __future__ import annotations

import collections
import collections.abc
import json
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from tests.aws.cfn_policies import Deployment, load_template
from tests.aws.moto_server import RecordedCall

#: principal -> (template, logical id of its IAM role)
PRINCIPALS = {
    "mwaa-execution": ("iam.yaml", "MwaaExecutionRole"),
    "glue-curate-features": ("iam.yaml", "GlueJobRole"),
    "glue-validate-features": ("iam.yaml", "GlueValidationJobRole"),
    "sagemaker-execution": ("iam.yaml", "SageMakerExecutionRole"),
    "feature-store-offline": ("iam.yaml", "FeatureStoreOfflineRole"),
    "dms-s3-target": ("iam.yaml", "DmsS3TargetRole"),
    "dms-secrets": ("iam.yaml", "DmsSecretsAccessRole"),
    "reporting-lambda": ("reporting.yaml", "ReportingFunctionRole"),
    "codebuild-deploy": ("pipeline.yaml", "DeployRole"),
}
#: KMS-encrypted buckets (storage.yaml: the data key) and their bucket policies.
BUCKET_POLICIES = {"LakeBucketArn": "LakeBucketPolicy", "ArtifactsBucketArn": "ArtifactsBucketPolicy"}
#: The account MWAA's Celery queues live in (AWS-owned; any value other than ours shows the wildcard works).
MWAA_SERVICE_ACCOUNT = "999988887777"
ALWAYS_ALLOWED = {("sts", "GetCallerIdentity")}


@dataclass(frozen=True)
class Check:
    """One authorization AWS makes: ``principal`` may do ``action`` on ``resource`` given ``context``."""

    principal: str
    action: str
    resource: str
    context: tuple[tuple[str, str], ...]
    source: str  # the call or derivation it comes from

    @property
    def conditions(self) -> dict[str, str]:
        return dict(self.context)


def _check(principal: str, action: str, resource: str, source: str, **context: str) -> Check:
    keys = {"aws:SecureTransport": "true", **{k.replace("__", ":"): v for k, v in context.items()}}
    return Check(principal, action, resource, tuple(sorted(keys.items())), source)


# ------------------------------------------------------------------------------- resource ARNs


@dataclass(frozen=True)
class Arns:
    """ARN builders of one account and region."""

    account: str
    region: str
    partition: str = "aws"

    def of(self, service: str, resource: str, region: bool = True, account: bool = True) -> str:
        return (f"arn:{self.partition}:{service}:{self.region if region else ''}:"
                f"{self.account if account else ''}:{resource}")  # fmt: skip

    def s3(self, bucket: str, key: str | None = None) -> str:
        return f"arn:{self.partition}:s3:::{bucket}" + (f"/{key}" if key is not None else "")

    def s3_uri(self, uri: str) -> tuple[str, str]:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return bucket, key


def _split_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


# ------------------------------------------------------------------------------- S3 and KMS


@dataclass(frozen=True)
class Environment:
    """What the checks need to know about the deployment: ARNs, the data key, the encrypted buckets."""

    arns: Arns
    data_key_arn: str
    encrypted_buckets: frozenset[str]


def s3_read(env: Environment, principal: str, uri: str, source: str, prefix: bool = False) -> list[Check]:
    """GetObject of ``uri`` (and, for a prefix input, ListBucket on it), plus kms:Decrypt through S3."""
    bucket, key = _split_uri(uri)
    checks = [_check(principal, "s3:GetObject", env.arns.s3(bucket, key), source)]
    if prefix:
        checks.append(_check(principal, "s3:ListBucket", env.arns.s3(bucket), source, s3__prefix=key))
    return checks + _kms(env, principal, bucket, "kms:Decrypt", source)


def s3_write(env: Environment, principal: str, uri: str, source: str) -> list[Check]:
    """PutObject of ``uri``, plus kms:GenerateDataKey through S3 on an encrypted bucket."""
    bucket, key = _split_uri(uri)
    write = _check(principal, "s3:PutObject", env.arns.s3(bucket, key), source)
    return [write, *_kms(env, principal, bucket, "kms:GenerateDataKey", source)]


def _kms(env: Environment, principal: str, bucket: str, action: str, source: str) -> list[Check]:
    if bucket not in env.encrypted_buckets:
        return []
    via = f"s3.{env.arns.region}.amazonaws.com"
    return [_check(principal, action, env.data_key_arn, source, kms__ViaService=via,
                   kms__CallerAccount=env.arns.account)]  # fmt: skip


def _kms_via(env: Environment, principal: str, service: str, actions: Iterable[str], source: str) -> list[Check]:
    via = f"{service}.{env.arns.region}.amazonaws.com"
    return [
        _check(principal, action, env.data_key_arn, source, kms__ViaService=via, kms__CallerAccount=env.arns.account)
        for action in actions
    ]


# ------------------------------------------------------------------------------- 1. task calls

S3_ACTIONS = {
    "GetObject": ("s3:GetObject", "read"),
    "HeadObject": ("s3:GetObject", None),
    "PutObject": ("s3:PutObject", "write"),
    "CreateMultipartUpload": ("s3:PutObject", "write"),
    "UploadPart": ("s3:PutObject", None),
    "CompleteMultipartUpload": ("s3:PutObject", None),
    "AbortMultipartUpload": ("s3:AbortMultipartUpload", None),
    "DeleteObject": ("s3:DeleteObject", None),
}
SAGEMAKER_RESOURCES = {  # parameter -> ARN resource of the action
    "TrainingJobName": "training-job/{}",
    "ProcessingJobName": "processing-job/{}",
    "ModelName": "model/{}",
    "EndpointConfigName": "endpoint-config/{}",
    "EndpointName": "endpoint/{}",
    "ModelPackageGroupName": "model-package-group/{}",
}
SERVICE_PREFIX = {"sagemaker-runtime": "sagemaker", "mwaa": "airflow", "monitoring": "cloudwatch"}


def task_checks(env: Environment, calls: list[RecordedCall], principal: str = "mwaa-execution") -> list[Check]:
    """The authorizations of every call the code under test made (as ``principal``)."""
    starts = [c for c in calls if c.operation == "StartQueryExecution" and "QueryExecutionId" in c.response]
    workgroups = {c.response["QueryExecutionId"]: c.params.get("WorkGroup", "primary") for c in starts}
    tables = _catalog_locations(calls)
    checks: list[Check] = []
    for call in calls:
        if call.principal != "task" or (call.service, call.operation) in ALWAYS_ALLOWED:
            continue
        source = f"{call.service}.{call.operation}"
        checks += _call_checks(env, principal, call, source, workgroups, tables)
    return checks


def _call_checks(
    env: Environment, principal: str, call: RecordedCall, source: str, workgroups: dict[str, str],
    tables: dict[tuple[str, str], str],
) -> list[Check]:  # fmt: skip
    service, op, p, arns = call.service, call.operation, call.params, env.arns
    if service == "s3":
        return _s3_call(env, principal, op, p, source)
    if service == "glue":
        return _glue_call(arns, principal, op, p, source)
    if service == "athena":
        workgroup = p.get("WorkGroup") or workgroups.get(p.get("QueryExecutionId", ""), "primary")
        checks = [_check(principal, f"athena:{op}", arns.of("athena", f"workgroup/{workgroup}"), source)]
        if op == "StartQueryExecution":
            checks += _athena_reads_and_results(env, principal, call, tables, source)
        return checks
    if service in ("sagemaker", "sagemaker-runtime"):
        return _sagemaker_call(env, principal, call, source)
    if service == "dms":
        resource = p.get("ReplicationTaskArn", "*")
        return [_check(principal, f"dms:{op}", resource, source)]
    if service == "cloudwatch":
        if op == "DescribeAlarms" and p.get("AlarmNames"):
            return [_check(principal, "cloudwatch:DescribeAlarms", arns.of("cloudwatch", f"alarm:{n}"), source)
                    for n in p["AlarmNames"]]  # fmt: skip
        extra = {"cloudwatch__namespace": p["Namespace"]} if "Namespace" in p else {}
        return [_check(principal, f"cloudwatch:{op}", "*", source, **extra)]
    if service == "logs":
        group = p.get("logGroupName", "*")
        return [_check(principal, f"logs:{op}", arns.of("logs", f"log-group:{group}:*"), source)]
    if service == "sqs":
        name = p["QueueUrl"].rstrip("/").rsplit("/", 1)[-1]
        checks = [_check(principal, f"sqs:{op}", arns.of("sqs", name), source)]
        return checks + _kms_via(env, principal, "sqs", ["kms:GenerateDataKey", "kms:Decrypt"], source)
    if service == "sns":
        # Publish names its topic as TopicArn or TargetArn (the provider's SnsHook sends TargetArn)
        checks = [_check(principal, f"sns:{op}", p.get("TopicArn") or p["TargetArn"], source)]
        return checks + _kms_via(env, principal, "sns", ["kms:GenerateDataKey", "kms:Decrypt"], source)
    if service == "dynamodb":
        return [_check(principal, f"dynamodb:{op}", arns.of("dynamodb", f"table/{p['TableName']}"), source)]
    if service == "secretsmanager":
        secret = arns.of("secretsmanager", f"secret:{p['SecretId']}-AbCdEf")
        read = _check(principal, f"secretsmanager:{op}", secret, source)
        return [read, *_kms_via(env, principal, "secretsmanager", ["kms:Decrypt"], source)]
    prefix = SERVICE_PREFIX.get(service, service)
    arn = next((v for k, v in p.items() if k.endswith("Arn") and isinstance(v, str)), "*")
    return [_check(principal, f"{prefix}:{op}", arn, f"{source} (generic rule)")]


def _s3_call(env: Environment, principal: str, op: str, p: dict[str, Any], source: str) -> list[Check]:
    arns, bucket = env.arns, p["Bucket"]
    if op in ("ListObjectsV2", "ListObjects"):
        return [_check(principal, "s3:ListBucket", arns.s3(bucket), source, s3__prefix=p.get("Prefix", ""))]
    if op == "HeadBucket":
        return [_check(principal, "s3:ListBucket", arns.s3(bucket), source)]
    if op == "DeleteObjects":
        return [_check(principal, "s3:DeleteObject", arns.s3(bucket, o["Key"]), source)
                for o in p["Delete"]["Objects"]]  # fmt: skip
    if op == "CopyObject":
        source_bucket, _, source_key = str(p["CopySource"]).lstrip("/").partition("/")
        return s3_read(env, principal, f"s3://{source_bucket}/{source_key}", source) + s3_write(
            env, principal, f"s3://{bucket}/{p['Key']}", source
        )
    if op not in S3_ACTIONS:
        return [_check(principal, f"s3:{op}", arns.s3(bucket), f"{source} (generic rule)")]
    action, kms = S3_ACTIONS[op]
    checks = [_check(principal, action, arns.s3(bucket, p["Key"]), source)]
    if kms == "read":
        checks += _kms(env, principal, bucket, "kms:Decrypt", source)
    elif kms == "write":
        checks += _kms(env, principal, bucket, "kms:GenerateDataKey", source)
    return checks


def _glue_call(arns: Arns, principal: str, op: str, p: dict[str, Any], source: str) -> list[Check]:
    if "JobName" in p:
        return [_check(principal, f"glue:{op}", arns.of("glue", f"job/{p['JobName']}"), source)]
    database = p.get("DatabaseName") or p.get("Name")
    resources = [arns.of("glue", "catalog"), arns.of("glue", f"database/{database}")]
    table = p.get("TableInput", {}).get("Name") or (p.get("Name") if "DatabaseName" in p else None)
    if table:
        resources.append(arns.of("glue", f"table/{database}/{table}"))
    elif op == "GetTables":
        resources.append(arns.of("glue", f"table/{database}/*"))
    return [_check(principal, f"glue:{op}", r, source) for r in resources]


def _catalog_locations(calls: list[RecordedCall]) -> dict[tuple[str, str], str]:
    """(database, table) -> S3 location, from the CreateTable/UpdateTable calls recorded."""
    locations = {}
    for call in calls:
        if call.operation in ("CreateTable", "UpdateTable"):
            table = call.params["TableInput"]
            locations[(call.params["DatabaseName"], table["Name"])] = table["StorageDescriptor"]["Location"]
    return locations


def _athena_reads_and_results(
    env: Environment, principal: str, call: RecordedCall, tables: dict[tuple[str, str], str], source: str
) -> list[Check]:
    """Athena reads the catalog and the tables' objects, and writes the result, with the caller's rights."""
    import sqlglot
    from sqlglot import exp

    database = call.params.get("QueryExecutionContext", {}).get("Database", "default")
    checks = [_check(principal, "glue:GetDatabase", env.arns.of("glue", f"database/{database}"), source)]
    for table in sqlglot.parse_one(call.params["QueryString"], read="trino").find_all(exp.Table):
        db, name = table.db or database, table.name
        if (db, name) not in tables:
            continue  # a CTE name, not a catalog table
        checks += [_check(principal, "glue:GetTable", env.arns.of("glue", r), source)
                   for r in ("catalog", f"database/{db}", f"table/{db}/{name}")]  # fmt: skip
        checks += s3_read(env, principal, tables[(db, name)].rstrip("/") + "/part-00000.parquet", source)
        bucket, key = _split_uri(tables[(db, name)])
        checks.append(_check(principal, "s3:ListBucket", env.arns.s3(bucket), source, s3__prefix=key))
    output = call.params.get("ResultConfiguration", {}).get("OutputLocation")
    if output and "QueryExecutionId" in call.response:
        result = f"{output.rstrip('/')}/{call.response['QueryExecutionId']}.csv"
        checks += s3_write(env, principal, result, source) + s3_write(env, principal, result + ".metadata", source)
        checks.append(_check(principal, "s3:GetBucketLocation", env.arns.s3(_split_uri(output)[0]), source))
    return checks


def _sagemaker_call(env: Environment, principal: str, call: RecordedCall, source: str) -> list[Check]:
    p, arns, op = call.params, env.arns, call.operation
    if op == "ListModelPackages":
        resources = ["*"]
    elif op in ("DescribeModelPackage", "UpdateModelPackage"):
        resources = [p["ModelPackageName"] if p["ModelPackageName"].startswith("arn:")
                     else arns.of("sagemaker", f"model-package/{p['ModelPackageName']}")]  # fmt: skip
    elif op == "CreateModelPackage":
        resources = [arns.of("sagemaker", f"model-package/{p['ModelPackageGroupName']}/*")]
    else:
        name = next((k for k in SAGEMAKER_RESOURCES if k in p), None)
        resources = [arns.of("sagemaker", SAGEMAKER_RESOURCES[name].format(p[name]))] if name else ["*"]
    checks = [_check(principal, f"sagemaker:{op}", r, source) for r in resources]
    if p.get("Tags"):
        checks += [_check(principal, "sagemaker:AddTags", r, source) for r in resources]
    for key in ("RoleArn", "ExecutionRoleArn"):
        if key in p:
            checks.append(_check(principal, "iam:PassRole", p[key], source,
                                 iam__PassedToService="sagemaker.amazonaws.com"))  # fmt: skip
    return checks


# ------------------------------------------------------------------------------- 2. jobs


def _image_repository(arns: Arns, image: str) -> str:
    """``<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>`` -> the repository ARN."""
    host, _, path = image.partition("/")
    account, region = host.split(".")[0], host.split(".")[3]
    return f"arn:{arns.partition}:ecr:{region}:{account}:repository/{path.split(':')[0].split('@')[0]}"


def _container(env: Environment, principal: str, image: str, log_group: str, source: str) -> list[Check]:
    """What every SageMaker container needs: pull its image, write its logs and metrics."""
    repository = _image_repository(env.arns, image)
    pulls = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    logs = env.arns.of("logs", f"log-group:{log_group}:*")
    return (
        [_check(principal, a, repository, source) for a in pulls]
        + [_check(principal, "ecr:GetAuthorizationToken", "*", source)]
        + [_check(principal, a, logs, source) for a in ("logs:CreateLogStream", "logs:PutLogEvents")]
        + [_check(principal, "cloudwatch:PutMetricData", "*", source, cloudwatch__namespace=log_group)]
    )


def job_checks(env: Environment, calls: list[RecordedCall], glue_roles: dict[str, str],
               glue_access: dict[str, dict[str, str]], glue_scripts: dict[str, str]) -> list[Check]:  # fmt: skip
    """The job roles' authorizations, derived from the requests the MWAA role sent (module docstring)."""
    checks: list[Check] = []
    endpoint_models: dict[str, str] = {}
    for call in calls:
        if call.principal != "task":
            continue
        p, source = call.params, f"derived from {call.operation}"
        if call.operation == "CreateTrainingJob":
            checks += _training_job(env, p, source)
        elif call.operation == "CreateProcessingJob":
            checks += _processing_job(env, p, source)
        elif call.operation == "CreateModel":
            endpoint_models[p["ModelName"]] = p["ExecutionRoleArn"]
            container = p["PrimaryContainer"]
            checks += s3_read(env, "sagemaker-execution", container["ModelDataUrl"], source)
            checks += _container(env, "sagemaker-execution", container["Image"], "/aws/sagemaker/Endpoints", source)
            prefix = container.get("Environment", {}).get("MLOPS_FEATURE_GROUP_PREFIX")
            if prefix:  # inference.py looks raw orders up in the groups' online stores
                checks += _online_store(env, "sagemaker-execution", "sagemaker:BatchGetRecord", prefix, source)
        elif call.operation == "CreateEndpointConfig" and p.get("DataCaptureConfig"):
            destination = p["DataCaptureConfig"]["DestinationS3Uri"].rstrip("/")
            for variant in p["ProductionVariants"]:
                key = f"{destination}/<endpoint>/{variant['VariantName']}/2026/01/01/00/capture.jsonl"
                checks += s3_write(env, "sagemaker-execution", key, source)
                # reporting.yaml's rule queues each new capture file; the reporting Lambda reads it
                checks += s3_read(env, "reporting-lambda", key, f"{source} (capture file -> reporting queue)")
        elif call.operation == "StartJobRun":
            checks += _glue_run(env, p, glue_roles, glue_access, glue_scripts, source)
    return checks


def _training_job(env: Environment, p: dict[str, Any], source: str) -> list[Check]:
    role = "sagemaker-execution"
    checks = []
    for channel in p.get("InputDataConfig", []):
        checks += s3_read(env, role, channel["DataSource"]["S3DataSource"]["S3Uri"], source, prefix=True)
    submit = p.get("HyperParameters", {}).get("sagemaker_submit_directory")
    if submit:
        checks += s3_read(env, role, json.loads(submit), source)
    output = f"{p['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{p['TrainingJobName']}/output/model.tar.gz"
    checks += s3_write(env, role, output, source)
    image = p["AlgorithmSpecification"]["TrainingImage"]
    return checks + _container(env, role, image, "/aws/sagemaker/TrainingJobs", source)


def _processing_job(env: Environment, p: dict[str, Any], source: str) -> list[Check]:
    role = "sagemaker-execution"
    checks = []
    for item in p.get("ProcessingInputs", []):
        if "S3Input" in item:
            checks += s3_read(env, role, item["S3Input"]["S3Uri"], source, prefix=True)
    for item in p["ProcessingOutputConfig"]["Outputs"]:
        checks += s3_write(env, role, item["S3Output"]["S3Uri"].rstrip("/") + "/output.json", source)
    image = p["AppSpecification"]["ImageUri"]
    return checks + _container(env, role, image, "/aws/sagemaker/ProcessingJobs", source)


def _glue_run(env: Environment, p: dict[str, Any], roles: dict[str, str], access: dict[str, dict[str, str]],
              scripts: dict[str, str], source: str) -> list[Check]:  # fmt: skip
    job = p["JobName"]
    role = roles[job]
    checks = s3_read(env, role, scripts[job], source)
    for name, uri in p.get("Arguments", {}).items():
        for mode in access[job].get(name, "").split("+"):
            if mode == "read":
                checks += s3_read(env, role, uri.rstrip("/") + "/part-00000.parquet", source, prefix=True)
            elif mode == "write":
                checks += s3_write(env, role, uri.rstrip("/") + "/part-00000.parquet", source)
            elif mode == "code":
                checks += s3_read(env, role, uri, source)
            elif mode == "put-records":
                if uri != f"featurestore://{env.arns.region}":
                    raise AssertionError(f"{job}: {name} {uri} is not Feature Store in {env.arns.region}")
                prefix = p["Arguments"]["--feature_group_prefix"]
                checks += _online_store(env, role, "sagemaker:PutRecord", prefix, source)
            elif mode == "offline-store":
                if uri != f"featurestore://{env.arns.region}":
                    raise AssertionError(f"{job}: {name} {uri} is not Feature Store in {env.arns.region}")
                checks += _offline_store_appends(env, role, p["Arguments"], source)
    logs = env.arns.of("logs", "log-group:/aws-glue/jobs/output:*")
    checks += [_check(role, a, logs, source) for a in ("logs:CreateLogStream", "logs:PutLogEvents")]
    return [*checks, _check(role, "cloudwatch:PutMetricData", "*", source, cloudwatch__namespace="Glue")]


def _offline_store_appends(env: Environment, principal: str, arguments: dict[str, str], source: str) -> list[Check]:
    """The features job resolves each group's offline-store folder (DescribeFeatureGroup), reads what it holds
    and appends hourly Parquet to it; the folder is the groups' ``S3Uri`` (the lake's curated prefix, as
    ``create_feature_group_request`` builds it) with SageMaker's layout below it."""
    from mlops.aws.glue_requests import OFFLINE_STORE_DATASET
    from mlops.schema.feature_groups import FEATURE_GROUPS, offline_table_uri

    store = f"{arguments['--curated_uri'].rstrip('/').rsplit('/', 1)[0]}/{OFFLINE_STORE_DATASET}"
    checks = []
    for group in FEATURE_GROUPS:
        name = f"{arguments['--feature_group_prefix']}-{group.name}"
        arn = env.arns.of("sagemaker", f"feature-group/{name}")
        checks.append(_check(principal, "sagemaker:DescribeFeatureGroup", arn, source))
        data = offline_table_uri(store, env.arns.account, env.arns.region, name, 1767225600)
        key = f"{data}/year=2026/month=01/day=01/hour=00/20260101T000000Z000000_00000.parquet"
        checks += s3_read(env, principal, key, source, prefix=True) + s3_write(env, principal, key, source)
    return checks


def _online_store(env: Environment, principal: str, action: str, prefix: str, source: str) -> list[Check]:
    """``action`` (PutRecord, BatchGetRecord) on each feature group ``<prefix>-<group>``; data-plane calls on a
    KMS-encrypted online store need kms:Decrypt on its key (through SageMaker)."""
    from mlops.schema.feature_groups import FEATURE_GROUPS

    arns = [env.arns.of("sagemaker", f"feature-group/{prefix}-{group.name}") for group in FEATURE_GROUPS]
    return [_check(principal, action, arn, source) for arn in arns] + _kms_via(
        env, principal, "sagemaker", ["kms:Decrypt"], source
    )


def feature_store_checks(env: Environment, config: Any) -> list[Check]:
    """The offline store's writes with the groups' RoleArn (``data.yaml``, as ``create_feature_group_request``
    builds them): Parquet in SageMaker's layout under the offline store's S3 URI, the bucket's ACL read, the
    group's Glue table created and kept, the data key through S3 and Glue (the Data Catalog is encrypted)."""
    from mlops.aws.feature_store_requests import create_feature_group_request
    from mlops.schema.feature_groups import FEATURE_GROUPS, offline_table_uri

    role, arns, checks = "feature-store-offline", env.arns, []
    for group in FEATURE_GROUPS:
        request = create_feature_group_request(config, group, "arn:aws:iam::0:role/r", env.data_key_arn)
        source = f"derived from CreateFeatureGroup {request['FeatureGroupName']} (data.yaml)"
        store = request["OfflineStoreConfig"]["S3StorageConfig"]["S3Uri"]
        data = offline_table_uri(store, arns.account, arns.region, request["FeatureGroupName"], 1767225600)
        key = f"{data}/year=2026/month=01/day=01/hour=00/20260101T000000Z_record.parquet"
        checks += s3_write(env, role, key, source)
        checks.append(_check(role, "s3:PutObjectAcl", arns.s3(*_split_uri(key)), source))
        checks += s3_read(env, role, f"{store}/{arns.account}/sagemaker/{arns.region}/offline-store/metadata.json",
                          source)  # fmt: skip
        checks.append(_check(role, "s3:GetBucketAcl", arns.s3(_split_uri(store)[0]), source))
        catalog = request["OfflineStoreConfig"]["DataCatalogConfig"]
        table = f"table/{catalog['Database']}/{catalog['TableName']}"
        for action in ("glue:CreateTable", "glue:GetTable", "glue:UpdateTable"):
            checks += [_check(role, action, arns.of("glue", r), source)
                       for r in ("catalog", f"database/{catalog['Database']}", table)]  # fmt: skip
        checks += _kms_via(env, role, "glue", ["kms:Decrypt", "kms:GenerateDataKey"], source)
    return checks


def dms_checks(env: Environment, config: Any, lake_bucket: str, secret_name: str) -> list[Check]:
    """DMS's S3 target role writes each table's full-load file and date-folder CDC files in the layout of
    ``mlops.aws.dms_requests.s3_target_settings`` (the local replicator writes the same); its Secrets
    Manager role reads the source secret."""
    from datetime import UTC, datetime

    from mlops.aws.dms_requests import DATE_PARTITION_FORMAT, s3_target_settings

    settings, source = s3_target_settings(config), "derived from the DMS S3 target settings"
    folder = f"s3://{lake_bucket}/{settings['BucketFolder']}/{config.source.schema_name}"
    day = datetime(2026, 1, 1, tzinfo=UTC).strftime(DATE_PARTITION_FORMAT)
    checks: list[Check] = []
    for table in config.replication.tables:
        for key in (f"{table}/LOAD00000001.parquet", f"{table}/{day}/20260101-000000000.parquet"):
            checks += s3_write(env, "dms-s3-target", f"{folder}/{key}", source)
    checks.append(_check("dms-s3-target", "s3:ListBucket", env.arns.s3(lake_bucket), source,
                         s3__prefix=f"{settings['BucketFolder']}/"))  # fmt: skip
    secret = env.arns.of("secretsmanager", f"secret:{secret_name}-AbCdEf")
    source = "derived from the DMS source endpoint (SecretsManagerSecretId)"
    checks.append(_check("dms-secrets", "secretsmanager:GetSecretValue", secret, source))
    return checks + _kms_via(env, "dms-secrets", "secretsmanager", ["kms:Decrypt"], source)


# ------------------------------------------------------------------------------- 3. platform


def mwaa_platform_checks(env: Environment, deployment: Deployment, conn_id: str) -> list[Check]:
    """MWAA's own calls as its execution-role guide lists them, for the environment of ``mwaa.yaml``."""
    arns, role, source = env.arns, "mwaa-execution", "MWAA platform (mwaa.yaml, execution-role guide)"
    mwaa = load_template("mwaa.yaml")["Resources"]["MwaaEnvironment"]["Properties"]
    name = deployment.resolve("mwaa.yaml", mwaa["Name"])
    prefix = deployment.parameters.get("MwaaPrefix", "mwaa")
    stack = f"{deployment.parameters['ProjectName']}-{deployment.parameters['Environment']}"
    artifacts = deployment.exports[f"{stack}-ArtifactsBucketName"]
    checks = [_check(role, "airflow:PublishMetrics", arns.of("airflow", f"environment/{name}"), source)]
    for kind in ("DAGProcessing", "Scheduler", "Task", "WebServer", "Worker"):
        group = arns.of("logs", f"log-group:airflow-{name}-{kind}:*")
        checks += [_check(role, a, group, source) for a in ("logs:CreateLogGroup", "logs:CreateLogStream",
                                                             "logs:PutLogEvents", "logs:GetLogEvents")]  # fmt: skip
    checks.append(_check(role, "logs:DescribeLogGroups", "*", source))
    checks.append(_check(role, "cloudwatch:PutMetricData", "*", source, cloudwatch__namespace="AmazonMWAA"))
    checks.append(_check(role, "s3:GetAccountPublicAccessBlock", "*", source))
    for key in (f"{prefix}/dags/mlops_ingest.py", f"{prefix}/plugins.zip", f"{prefix}/requirements.txt",
                f"{prefix}/startup.sh"):  # fmt: skip
        checks += s3_read(env, role, f"s3://{artifacts}/{key}", source)
    for action in ("s3:GetBucketVersioning", "s3:GetBucketPublicAccessBlock", "s3:GetEncryptionConfiguration"):
        checks.append(_check(role, action, arns.s3(artifacts), source))
    checks.append(_check(role, "s3:ListBucket", arns.s3(artifacts), source, s3__prefix=f"{prefix}/dags/"))
    queue = f"arn:{arns.partition}:sqs:{arns.region}:{MWAA_SERVICE_ACCOUNT}:airflow-celery-0a1b2c3d"
    for action in ("sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                   "sqs:GetQueueAttributes", "sqs:GetQueueUrl"):  # fmt: skip
        checks.append(_check(role, action, queue, source))
    checks += _kms_via(env, role, "sqs", ["kms:GenerateDataKey", "kms:Decrypt"], source)
    secret = arns.of("secretsmanager", f"secret:airflow/connections/{conn_id}-AbCdEf")
    checks.append(_check(role, "secretsmanager:GetSecretValue", secret, "Airflow secrets backend (aws connection)"))
    return checks + _kms_via(env, role, "secretsmanager", ["kms:Decrypt"], "Airflow secrets backend")


def reporting_checks(env: Environment, deployment: Deployment) -> list[Check]:
    """The Lambda's event source mapping (SQS) and its writes: one UpdateItem per (pk, minute)."""
    role, _arns = "reporting-lambda", env.arns
    queue = deployment.resolve("reporting.yaml", {"Fn::GetAtt": ["EventsQueue", "Arn"]})
    table = deployment.resolve("reporting.yaml", {"Fn::GetAtt": ["MetricsTable", "Arn"]})
    group = deployment.resolve("reporting.yaml", {"Fn::GetAtt": ["ReportingLogGroup", "Arn"]})
    source = "reporting.yaml EventsToReporting + mlops.reporting.requests.update_item_request"
    consume = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility")
    checks = [_check(role, a, queue, source) for a in consume]
    checks += _kms_via(env, role, "sqs", ["kms:Decrypt"], source)
    checks.append(_check(role, "dynamodb:UpdateItem", table, source))
    checks += _kms_via(env, role, "dynamodb", ["kms:Decrypt", "kms:GenerateDataKey"], source)
    checks += _kms_via(env, role, "lambda", ["kms:Decrypt"], "reporting.yaml KmsArn (environment variables)")
    return checks + [_check(role, a, group, source) for a in ("logs:CreateLogStream", "logs:PutLogEvents")]


#: ``aws <service> <command>`` of the deploy buildspec -> the IAM actions it needs.
CLI_ACTIONS = {
    ("s3", "sync"): ("s3:ListBucket", "s3:PutObject", "s3:DeleteObject"),
    ("s3", "cp"): ("s3:PutObject",),
    ("s3api", "put-object"): ("s3:PutObject",),
    ("mwaa", "update-environment"): ("airflow:UpdateEnvironment",),
    ("mwaa", "get-environment"): ("airflow:GetEnvironment",),
}


def codebuild_deploy_checks(env: Environment, deployment: Deployment, buildspec: str) -> list[Check]:
    """Every ``aws`` command of ``infra/buildspec-deploy.yml``, with the project's environment variables."""
    role, arns = "codebuild-deploy", env.arns
    variables = _codebuild_variables(deployment)
    bucket, prefix, environment = variables["MWAA_BUCKET"], variables["MWAA_PREFIX"], variables["MWAA_ENVIRONMENT"]
    checks: list[Check] = []
    for command in _aws_commands(buildspec):
        source = "buildspec-deploy.yml: aws " + " ".join(command[1:3])
        actions = CLI_ACTIONS.get((command[1], command[2]))
        if actions is None:
            raise AssertionError(f"{source}: no IAM mapping for this command; add it to CLI_ACTIONS")
        for action in actions:
            if action == "s3:ListBucket":
                checks.append(_check(role, action, arns.s3(bucket), source, s3__prefix=f"{prefix}/dags/"))
            elif action.startswith("s3:"):
                checks += [_check(role, action, arns.s3(bucket, f"{prefix}/dags/x.py"), source)]
                if action == "s3:PutObject":
                    checks += _kms(env, role, bucket, "kms:GenerateDataKey", source)
            else:
                checks.append(_check(role, action, arns.of("airflow", f"environment/{environment}"), source))
        if command[1:3] == ["mwaa", "update-environment"]:
            # AmazonMWAAFullApiAccess: updating an environment encrypted with a customer managed key
            # needs grants on the key, through the services that hold its data.
            for service in ("airflow", "s3", "sqs"):
                checks += _kms_via(env, role, service, ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey",
                                                        "kms:GenerateDataKey", "kms:Encrypt"], source)  # fmt: skip
    return checks


def _codebuild_variables(deployment: Deployment) -> dict[str, str]:
    project = load_template("pipeline.yaml")["Resources"]["DeployProject"]["Properties"]
    return {v["Name"]: str(deployment.resolve("pipeline.yaml", v["Value"]))
            for v in project["Environment"]["EnvironmentVariables"]}  # fmt: skip


def _aws_commands(buildspec: str) -> list[list[str]]:
    """The ``aws`` CLI invocations of a buildspec's commands (``$(...)`` substitutions included)."""
    commands = []
    for phase in yaml.safe_load(buildspec)["phases"].values():
        for line in phase.get("commands", []):
            for match in re.finditer(r"(?:^|\$\(|&&|;)\s*(aws\s[^)]*)", line):
                words = shlex.split(match[1].replace("\n", " "))
                commands.append(words)
    return commands


# ------------------------------------------------------------------------------- evaluation


def _principalmapper() -> tuple[Any, Any, Any]:
    """principalmapper's Node, Policy and its offline evaluator.

    principalmapper 1.1.5 imports ``Mapping`` from ``collections`` (removed in Python 3.10); the
    aliases below are the only change it needs.
    """
    for name in ("Mapping", "MutableMapping"):
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))
    from principalmapper.common import Node, Policy
    from principalmapper.querying.query_interface import local_check_authorization_full

    return Node, Policy, local_check_authorization_full


@dataclass
class Verdict:
    check: Check
    allowed: bool


def evaluate(deployment: Deployment, checks: list[Check], resource_policies: dict[str, dict[str, Any]],
             drop: tuple[str, str] | None = None) -> list[Verdict]:  # fmt: skip
    """Each check against its principal's policies (and the resource's policy, when one is known).

    ``drop = (principal, Sid)`` removes one statement first: the check must then fail where it is needed.
    """
    node_class, policy_class, authorized = _principalmapper()
    nodes = {}
    for principal, (template, logical) in PRINCIPALS.items():
        arn = deployment.role_arn(template, logical)
        policies = []
        for name, document in deployment.role_policies(template, logical):
            statements = [s for s in document["Statement"] if (principal, s.get("Sid")) != drop]
            policies.append(policy_class(arn, name, {**document, "Statement": statements}))
        trust = load_template(template)["Resources"][logical]["Properties"]["AssumeRolePolicyDocument"]
        nodes[principal] = node_class(arn, f"AROA{principal.upper()}", policies, [], trust, None, 0, False,
                                      False, None, False, None)  # fmt: skip
    verdicts = []
    for check in checks:
        policy = next((doc for prefix, doc in resource_policies.items() if check.resource.startswith(prefix)), None)
        owner = deployment.account if policy is not None else None
        allowed = authorized(nodes[check.principal], check.action, check.resource, check.conditions, policy, owner)
        verdicts.append(Verdict(check, bool(allowed)))
    return verdicts


def resource_policies(deployment: Deployment) -> dict[str, dict[str, Any]]:
    """ARN prefix -> resource policy: the lake and artifacts bucket policies, the data key's key policy."""
    project, environment = deployment.parameters["ProjectName"], deployment.parameters["Environment"]
    policies = {}
    for export, logical in BUCKET_POLICIES.items():
        policies[deployment.exports[f"{project}-{environment}-{export}"]] = deployment.resource_policy(
            "storage.yaml", logical
        )
    policies[deployment.exports[f"{project}-{environment}-DataKeyArn"]] = deployment.resource_policy(
        "storage.yaml", "DataKey"
    )
    return policies


# ------------------------------------------------------------------------------- reporting


def unused_grants(deployment: Deployment, verdicts: list[Verdict]) -> list[str]:
    """Per statement of each principal: the actions and resource patterns no allowed check used."""
    _, _, _ = _principalmapper()
    from principalmapper.querying.local_policy_simulation import _matches_after_expansion

    lines = []
    allowed = [v.check for v in verdicts if v.allowed]
    for principal, (template, logical) in PRINCIPALS.items():
        mine = [c for c in allowed if c.principal == principal]
        for _name, document in deployment.role_policies(template, logical):
            for statement in document["Statement"]:
                if statement["Effect"] != "Allow":
                    continue
                actions = _as_list(statement["Action"])
                resources = _as_list(statement.get("Resource", "*"))
                hits = [c for c in mine if any(_matches_after_expansion(c.action, a) for a in actions)
                        and any(_matches_after_expansion(c.resource, r) for r in resources)]  # fmt: skip
                unused_actions = [a for a in actions if not any(_matches_after_expansion(c.action, a) for c in hits)]
                unused_resources = [r for r in resources if not any(_matches_after_expansion(c.resource, r)
                                                                    for c in hits)]  # fmt: skip
                if unused_actions or unused_resources:
                    sid = statement.get("Sid", "?")
                    lines.append(f"{principal} {sid}: unused actions {unused_actions or '-'}; "
                                 f"unused resources {unused_resources or '-'}")  # fmt: skip
    return lines


def coverage_report(verdicts: list[Verdict], unused: list[str]) -> str:
    """Operations per principal (action -> distinct resources, checks), then the denials and unused grants."""
    lines = ["IAM coverage: checks per principal (action: distinct resources / checks)"]
    by_principal: dict[str, dict[str, list[Check]]] = collections.defaultdict(lambda: collections.defaultdict(list))
    for verdict in verdicts:
        by_principal[verdict.check.principal][verdict.check.action].append(verdict.check)
    for principal in PRINCIPALS:
        actions = by_principal.get(principal, {})
        total = sum(len(v) for v in actions.values())
        lines.append(f"  {principal}: {total} checks, {len(actions)} actions")
        for action, checks in sorted(actions.items()):
            lines.append(f"    {action}: {len({c.resource for c in checks})} / {len(checks)}")
    denied = [v.check for v in verdicts if not v.allowed]
    lines.append(f"denied: {len(denied)}")
    lines += [f"  DENIED {c.principal} {c.action} {c.resource} {c.conditions} <- {c.source}" for c in denied]
    lines.append(f"statements broader than the calls need: {len(unused)}")
    lines += [f"  {line}" for line in unused]
    return "\n".join(lines)


def _as_list(value: Any) -> list[str]:
    return list(value) if isinstance(value, list) else [value]
