"""infra/cfn/runs-api.yaml: the routes the handler serves, IAM auth on each, and roles that can do only that."""

from __future__ import annotations

from typing import Any

from mlops_tools.lambda_zips import PACKAGES
from tests.aws.cfn_policies import load_template

TEMPLATE = load_template("runs-api.yaml")
RESOURCES = TEMPLATE["Resources"]


def _of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in RESOURCES.items() if r["Type"] == kind}


def _path(resource_name: str) -> str:
    """The API path of an AWS::ApiGateway::Resource, from its PathPart and its parents."""
    parts = []
    while isinstance(resource_name, str):
        props = RESOURCES[resource_name]["Properties"]
        parts.insert(0, props["PathPart"])
        parent = props["ParentId"]
        resource_name = parent.get("Ref") if isinstance(parent, dict) else None
    return "/" + "/".join(parts)


def test_the_api_serves_exactly_the_handlers_routes_with_iam_auth():
    routes = {}
    for method in _of_type("AWS::ApiGateway::Method").values():
        props = method["Properties"]
        routes[(props["HttpMethod"], _path(props["ResourceId"]["Ref"]))] = props
    assert set(routes) == {("POST", "/runs"), ("GET", "/runs/{dag_id}/{run_id}")}
    for route, props in routes.items():
        assert props["AuthorizationType"] == "AWS_IAM", f"{route} is not IAM-authorised"
        assert props["Integration"]["Type"] == "AWS_PROXY"
        assert "RunsFunction.Arn" in props["Integration"]["Uri"]["Fn::Sub"]


def test_the_function_runs_the_zips_handler_against_this_projects_environment():
    function = RESOURCES["RunsFunction"]["Properties"]
    assert function["Handler"] == PACKAGES["runs-api"].handler
    assert function["Runtime"] == "python3.12" and function["Architectures"] == ["arm64"]
    assert "MWAA_ENVIRONMENT_NAME" in function["Environment"]["Variables"]
    assert function["KmsKeyArn"] and function["ReservedConcurrentExecutions"]


def test_the_function_role_may_only_invoke_the_airflow_rest_api_as_one_airflow_role():
    statements = RESOURCES["RunsFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    actions = {s["Sid"]: s["Action"] for s in statements}
    assert actions["InvokeAirflowRestApi"] == "airflow:InvokeRestApi"
    invoke = next(s for s in statements if s["Sid"] == "InvokeAirflowRestApi")
    assert invoke["Resource"]["Fn::Sub"][0].endswith(":role/${Env}/${AirflowRole}")
    assert TEMPLATE["Parameters"]["AirflowRole"]["AllowedValues"] == ["User", "Op"], "never Admin"
    every = [a for value in actions.values() for a in ([value] if isinstance(value, str) else value)]
    assert [a for a in every if "*" in a] == ["kms:GenerateDataKey*"], "no other wildcard action"
    function = RESOURCES["RunsFunction"]["Properties"]
    assert function["VpcConfig"]["SubnetIds"], "InvokeRestApi from inside the VPC (the webserver is private)"
    data_key = next(s for s in statements if s["Sid"] == "DataKey")
    assert "kms:ViaService" in data_key["Condition"]["StringEquals"]


def test_callers_get_invoke_on_the_two_routes_only():
    statement = RESOURCES["RunsApiInvokePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert [s["Action"] for s in statement] == ["execute-api:Invoke"]
    resources = [r["Fn::Sub"] for r in statement[0]["Resource"]]
    assert [r.split("${RunsApi}/")[1] for r in resources] == ["${Environment}/POST/runs", "${Environment}/GET/runs/*/*"]


def test_the_stage_logs_traces_and_throttles():
    stage = RESOURCES["RunsStage"]["Properties"]
    assert stage["AccessLogSetting"]["DestinationArn"] and stage["TracingEnabled"] is True
    settings = stage["MethodSettings"][0]
    assert settings["ThrottlingRateLimit"] and settings["DataTraceEnabled"] is False
    for group in _of_type("AWS::Logs::LogGroup").values():
        assert group["Properties"]["KmsKeyId"], "log groups are encrypted with the data key"
