"""network.yaml: a private network without internet that MWAA, DMS and the jobs run in, through VPC endpoints.

The endpoint list is checked against what the MWAA execution role may call (iam.yaml): a service the
workers are allowed to call but cannot reach from the private subnets would fail only on AWS.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.aws.cfn_policies import load_template

CFN = Path(__file__).resolve().parents[2] / "infra" / "cfn"
TEMPLATES = sorted(path.name for path in CFN.glob("*.yaml"))

#: IAM service prefix of an action -> the VPC endpoint service(s) its API is reached through.
ENDPOINT_OF = {
    "s3": {"s3"},
    "sagemaker": {"sagemaker.api", "sagemaker.runtime"},
    "glue": {"glue"},
    "athena": {"athena"},
    "dms": {"dms"},
    "cloudwatch": {"monitoring"},
    "logs": {"logs"},
    "sqs": {"sqs"},
    "sns": {"sns"},
    "kms": {"kms"},
    "secretsmanager": {"secretsmanager"},
    "airflow": {"airflow.api", "airflow.env", "airflow.ops"},
}
#: Actions that are authorisations inside another call, not API calls of their own (no endpoint).
NOT_CALLS = {"iam:PassRole"}


def network() -> dict[str, Any]:
    return load_template("network.yaml")["Resources"]


def of_type(resources: dict[str, Any], of: str) -> dict[str, dict[str, Any]]:
    return {lid: r["Properties"] for lid, r in resources.items() if r["Type"] == of}


def endpoint_services(kind: str) -> set[str]:
    prefix = "com.amazonaws.${AWS::Region}."
    found = set()
    for props in of_type(network(), "AWS::EC2::VPCEndpoint").values():
        if props["VpcEndpointType"] == kind:
            assert props["ServiceName"]["Fn::Sub"].startswith(prefix)
            found.add(props["ServiceName"]["Fn::Sub"].removeprefix(prefix))
    return found


def import_of(name: str) -> dict[str, Any]:
    return {"Fn::ImportValue": {"Fn::Sub": "${ProjectName}-${Environment}-" + name}}


def test_no_route_to_the_internet_anywhere():
    for template in TEMPLATES:
        types = {r["Type"] for r in load_template(template)["Resources"].values()}
        internet = {"AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::EgressOnlyInternetGateway"}
        assert not types & internet, f"{template} creates {types & internet}"
        assert "AWS::EC2::Route" not in types, f"{template} adds a route; the private route table has none"


def test_two_private_subnets_in_different_azs_on_a_route_table_with_only_s3():
    subnets = of_type(network(), "AWS::EC2::Subnet")
    assert len(subnets) == 2
    assert sorted(p["AvailabilityZone"]["Fn::Select"][0] for p in subnets.values()) == [0, 1]
    assert all(p["MapPublicIpOnLaunch"] is False for p in subnets.values())
    vpc = next(iter(of_type(network(), "AWS::EC2::VPC").values()))
    assert vpc["EnableDnsSupport"] is True and vpc["EnableDnsHostnames"] is True, "private DNS of the endpoints"
    (gateway,) = [p for p in of_type(network(), "AWS::EC2::VPCEndpoint").values() if p["VpcEndpointType"] == "Gateway"]
    assert gateway["RouteTableIds"] == [{"Ref": "PrivateRouteTable"}]
    associated = {p["SubnetId"]["Ref"] for p in of_type(network(), "AWS::EC2::SubnetRouteTableAssociation").values()}
    assert associated == set(subnets)


def test_interface_endpoints_are_private_in_both_subnets_behind_the_endpoint_group():
    interfaces = [
        p for p in of_type(network(), "AWS::EC2::VPCEndpoint").values() if p["VpcEndpointType"] == "Interface"
    ]
    for props in interfaces:
        assert props["PrivateDnsEnabled"] is True, props["ServiceName"]
        assert props["SubnetIds"] == [{"Ref": "PrivateSubnetA"}, {"Ref": "PrivateSubnetB"}]
        assert props["SecurityGroupIds"] == [{"Ref": "EndpointSecurityGroup"}]
    group = network()["EndpointSecurityGroup"]["Properties"]
    assert group["SecurityGroupIngress"] == [
        {**group["SecurityGroupIngress"][0], "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
         "CidrIp": {"Ref": "VpcCidr"}}
    ]  # fmt: skip


def test_every_service_the_mwaa_role_may_call_has_an_endpoint():
    role = load_template("iam.yaml")["Resources"]["MwaaExecutionRole"]["Properties"]
    actions = {
        action
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        for action in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    } - NOT_CALLS
    services = {action.split(":")[0] for action in actions}
    assert services <= set(ENDPOINT_OF), f"no endpoint mapping for {services - set(ENDPOINT_OF)}"
    needed = set().union(*(ENDPOINT_OF[s] for s in services))
    assert "s3" in endpoint_services("Gateway")
    reachable = endpoint_services("Interface") | endpoint_services("Gateway")
    assert needed <= reachable, f"the MWAA role may call services without an endpoint: {needed - reachable}"
    # MWAA on private routing (its own VPC endpoints guide), DMS (secrets, validation), the jobs' images
    assert {"airflow.api", "airflow.env", "airflow.ops", "ecr.api", "ecr.dkr", "sts"} <= endpoint_services("Interface")


def test_no_security_group_egresses_to_the_internet():
    for template in TEMPLATES:
        text = json.dumps(load_template(template))
        assert "0.0.0.0/0" not in text and "::/0" not in text, f"{template} opens a rule to the internet"


def test_mwaa_egress_is_its_endpoints_s3_and_its_own_database():
    resources = load_template("mwaa.yaml")["Resources"]
    group = resources["MwaaSecurityGroup"]["Properties"]
    assert group["VpcId"] == import_of("VpcId")
    rules = [(r["FromPort"], r.get("DestinationSecurityGroupId"), r.get("DestinationPrefixListId"))
             for r in group["SecurityGroupEgress"]]  # fmt: skip
    assert rules == [(443, import_of("EndpointSecurityGroupId"), None), (443, None, import_of("S3PrefixListId"))]
    own = {p["FromPort"]: p for p in of_type(resources, "AWS::EC2::SecurityGroupEgress").values()}
    assert set(own) == {443, 5432}
    for port, rule in own.items():
        assert rule["IpProtocol"] == "tcp" and rule["ToPort"] == port
        assert rule["GroupId"] == rule["DestinationSecurityGroupId"] == {"Ref": "MwaaSecurityGroup"}
    subnets = resources["MwaaEnvironment"]["Properties"]["NetworkConfiguration"]["SubnetIds"]
    assert subnets == {"Fn::Split": [",", import_of("PrivateSubnetIds")]}


def test_dms_runs_in_the_private_subnets_and_reaches_only_the_source_endpoints_and_s3():
    resources = load_template("data.yaml")["Resources"]
    assert resources["DmsSubnetGroup"]["Properties"]["SubnetIds"] == {"Fn::Split": [",", import_of("PrivateSubnetIds")]}
    group = resources["DmsSecurityGroup"]["Properties"]
    assert group["VpcId"] == import_of("VpcId")
    https = [r for r in group["SecurityGroupEgress"] if r["FromPort"] == 443]
    assert [r.get("DestinationSecurityGroupId") or r.get("DestinationPrefixListId") for r in https] == [
        import_of("EndpointSecurityGroupId"),
        import_of("S3PrefixListId"),
    ]


def test_imported_network_values_are_exported_by_network_yaml():
    exported = {
        out["Export"]["Name"]["Fn::Sub"].removeprefix("${ProjectName}-${Environment}-")
        for out in load_template("network.yaml")["Outputs"].values()
    }
    for template in TEMPLATES:
        if template == "network.yaml":
            continue
        text = json.dumps(load_template(template))
        for name in ("VpcId", "PrivateSubnetIds", "EndpointSecurityGroupId", "S3PrefixListId", "VpcCidr"):
            if f'${{Environment}}-{name}"' in text:
                assert name in exported, f"{template} imports {name}, which network.yaml does not export"
    assert {"VpcId", "PrivateSubnetIds", "EndpointSecurityGroupId", "S3PrefixListId", "SageMakerJobsSecurityGroupId",
            "GlueSubnetId", "GlueSubnetAvailabilityZone", "GlueJobsSecurityGroupId"} <= exported  # fmt: skip


# ---------------------------------------------------------------------------- Glue in the VPC
ALL_TCP = {"IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535}
GLUE_GROUP = {"Ref": "GlueJobsSecurityGroup"}


def test_glue_jobs_group_has_glues_self_referencing_all_tcp_rule_and_otherwise_only_https_out():
    resources = network()
    group = resources["GlueJobsSecurityGroup"]["Properties"]
    assert group["VpcId"] == {"Ref": "Vpc"} and "SecurityGroupIngress" not in group
    assert [(r["IpProtocol"], r["FromPort"], r["ToPort"], r.get("DestinationSecurityGroupId"),
             r.get("DestinationPrefixListId")) for r in group["SecurityGroupEgress"]] == [
        ("tcp", 443, 443, {"Ref": "EndpointSecurityGroup"}, None),
        ("tcp", 443, 443, None, {"Ref": "S3PrefixListId"}),
    ]  # fmt: skip
    ingress = [p for p in of_type(resources, "AWS::EC2::SecurityGroupIngress").values() if p["GroupId"] == GLUE_GROUP]
    egress = [p for p in of_type(resources, "AWS::EC2::SecurityGroupEgress").values() if p["GroupId"] == GLUE_GROUP]
    assert [{k: r[k] for k in ALL_TCP} | {"from": r["SourceSecurityGroupId"]} for r in ingress] == [
        {**ALL_TCP, "from": GLUE_GROUP}
    ], "Glue documents one self-referencing inbound rule for all TCP ports, from the group itself only"
    assert [{k: r[k] for k in ALL_TCP} | {"to": r["DestinationSecurityGroupId"]} for r in egress] == [
        {**ALL_TCP, "to": GLUE_GROUP}
    ]
    endpoints = resources["EndpointSecurityGroup"]["Properties"]["SecurityGroupIngress"][0]
    assert endpoints["CidrIp"] == {"Ref": "VpcCidr"}, "the endpoints admit the Glue workers' HTTPS"


def test_the_glue_network_connection_sits_in_one_private_subnet_and_its_own_az():
    outputs = load_template("network.yaml")["Outputs"]
    assert outputs["GlueSubnetId"]["Value"] == {"Ref": "PrivateSubnetA"}
    assert outputs["GlueSubnetAvailabilityZone"]["Value"] == {"Fn::GetAtt": ["PrivateSubnetA", "AvailabilityZone"]}
    assert outputs["GlueJobsSecurityGroupId"]["Value"] == {"Fn::GetAtt": ["GlueJobsSecurityGroup", "GroupId"]}
    connection = load_template("data.yaml")["Resources"]["GlueNetworkConnection"]
    assert connection["Type"] == "AWS::Glue::Connection"
    spec = connection["Properties"]["ConnectionInput"]
    assert spec["ConnectionType"] == "NETWORK"
    assert spec["Name"] == {"Fn::Sub": "${ProjectName}-${Environment}-private"}
    assert spec["PhysicalConnectionRequirements"] == {
        "SubnetId": import_of("GlueSubnetId"),
        "AvailabilityZone": import_of("GlueSubnetAvailabilityZone"),
        "SecurityGroupIdList": [import_of("GlueJobsSecurityGroupId")],
    }


def test_glue_jobs_run_through_the_network_connection_unless_they_pip_install_at_start():
    """A job with --additional-python-modules needs PyPI at start, which the connection's subnet cannot reach."""
    resources = load_template("data.yaml")["Resources"]
    jobs = of_type(resources, "AWS::Glue::Job")
    assert set(jobs) == {"CurateFeaturesJob", "ValidateFeaturesJob"}
    for name, job in jobs.items():
        if "--additional-python-modules" in job["DefaultArguments"]:
            assert "Connections" not in job, f"{name} pip-installs at start: no route to PyPI in the private subnet"
        else:
            assert job["Connections"] == {"Connections": [{"Ref": "GlueNetworkConnection"}]}, name
    assert "Connections" in jobs["CurateFeaturesJob"]
    exported = load_template("data.yaml")["Outputs"]["GlueConnectionName"]
    assert exported["Value"] == {"Ref": "GlueNetworkConnection"}


def test_the_curate_job_role_may_use_the_connection_and_manage_only_its_own_network_interfaces():
    resources = load_template("iam.yaml")["Resources"]
    sids = {}
    for role in ("GlueJobRole", "GlueValidationJobRole"):
        (policy,) = resources[role]["Properties"]["Policies"]
        sids[role] = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert not {"NetworkConnection", "VpcNetworkInterfaces"} & set(sids["GlueValidationJobRole"]), "not in the VPC"
    statements = sids["GlueJobRole"]
    connection = statements["NetworkConnection"]
    assert connection["Action"] == "glue:GetConnection"
    assert connection["Resource"][1]["Fn::Sub"].endswith(":connection/${ProjectName}-${Environment}-private")
    interfaces = statements["VpcNetworkInterfaces"]
    assert interfaces["Action"] == ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"]
    assert all("${AWS::Region}:${AWS::AccountId}:" in r["Fn::Sub"] for r in interfaces["Resource"])
    tags = statements["VpcGlueServiceTags"]
    assert tags["Condition"] == {"ForAllValues:StringEquals": {"aws:TagKeys": "aws-glue-service-resource"}}
    assert all(a.startswith("ec2:Describe") for a in statements["VpcDescribeNoResourceLevelPermissions"]["Action"])
