"""The IAM policies of ``infra/cfn/*.yaml``, resolved for one deployment (offline, no CloudFormation).

:func:`load_template` reads a template with its short tags (``!Sub``, ``!Ref``, ...) as their long
form; :class:`Deployment` resolves the intrinsic functions a policy uses (``Ref``, ``Fn::Sub``,
``Fn::ImportValue``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Select``, ``Fn::Split``, ``Fn::If``) with given
parameters, pseudo parameters and export values, and hands out each role's policy documents, the
bucket policies and the KMS key policy. A value it cannot resolve raises, naming the template and
the expression: a policy is never evaluated half-resolved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

CFN = Path(__file__).resolve().parents[2] / "infra" / "cfn"
_SUB = re.compile(r"\$\{([^}!]+)\}")


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that turns CloudFormation short tags (!Ref, !Sub, ...) into their long form."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


@cache
def load_template(name: str) -> dict[str, Any]:
    """``infra/cfn/<name>`` as a dict, intrinsic functions in their long form."""
    return yaml.load((CFN / name).read_text(), Loader=_CfnLoader)


class UnresolvedError(ValueError):
    """A template expression the deployment has no value for."""


@dataclass
class Deployment:
    """One deployment's values: account, region, stack parameters, exports and resource attributes.

    ``exports`` maps export names (``mlops-dev-LakeBucketArn``) to values; ``attributes`` maps
    ``"<LogicalId>.<Attribute>"`` (and ``"<LogicalId>"`` for ``Ref``) to values, for resources whose
    physical names the test fixes (its role ARNs, its queue URL).
    """

    account: str
    region: str
    parameters: dict[str, str]
    exports: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)
    partition: str = "aws"

    # ------------------------------------------------------------------------- resolution
    def resolve(self, template: str, value: Any) -> Any:
        """``value`` with every intrinsic function replaced by its string (lists and dicts recursively)."""
        if isinstance(value, list):  # AWS::NoValue (None) removes a list element, as in CloudFormation
            return [r for r in (self.resolve(template, v) for v in value) if r is not None]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref" or key.startswith("Fn::"):
                return self._function(template, key, argument)
        resolved = {k: self.resolve(template, v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not None}  # AWS::NoValue removes a property

    def _function(self, template: str, key: str, argument: Any) -> Any:
        if key == "Ref":
            return self._ref(template, argument)
        if key == "Fn::Sub":
            text, names = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
            local = {name: self.resolve(template, v) for name, v in names.items()}
            return _SUB.sub(lambda m: str(local[m[1]] if m[1] in local else self._name(template, m[1])), text)
        if key == "Fn::ImportValue":
            name = self.resolve(template, argument)
            if name not in self.exports:
                raise UnresolvedError(f"{template}: no value for the export {name!r}")
            return self.exports[name]
        if key == "Fn::GetAtt":
            return self._attribute(template, f"{argument[0]}.{argument[1]}")
        if key == "Fn::Join":
            return argument[0].join(str(v) for v in self.resolve(template, argument[1]))
        if key == "Fn::Select":
            return self.resolve(template, argument[1])[int(argument[0])]
        if key == "Fn::Split":
            return self.resolve(template, argument[1]).split(argument[0])
        if key == "Fn::If":
            return self.resolve(template, argument[1] if self.condition(template, argument[0]) else argument[2])
        raise UnresolvedError(f"{template}: {key} is not supported here")

    def _name(self, template: str, name: str) -> str:
        """A ``${Name}`` of Fn::Sub: a pseudo parameter, a parameter, ``Logical.Attribute`` or a resource's Ref."""
        return str(self._attribute(template, name) if "." in name else self._ref(template, name))

    def _ref(self, template: str, name: str) -> Any:
        pseudo = {"AWS::AccountId": self.account, "AWS::Region": self.region, "AWS::Partition": self.partition,
                  "AWS::NoValue": None, "AWS::URLSuffix": "amazonaws.com"}  # fmt: skip
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        body = load_template(template)
        if name in body.get("Parameters", {}):
            if "Default" not in body["Parameters"][name]:
                raise UnresolvedError(f"{template}: parameter {name} has no default and no value")
            return str(body["Parameters"][name]["Default"])
        if name in self.attributes:
            return self.attributes[name]
        resource = body.get("Resources", {}).get(name)
        if resource is None:
            raise UnresolvedError(f"{template}: nothing named {name}")
        if resource["Type"] == "AWS::SQS::Queue":  # Ref of a queue is its URL
            queue = self._physical_name(template, name, resource)
            return f"https://sqs.{self.region}.amazonaws.com/{self.account}/{queue}"
        return self._physical_name(template, name, resource)

    def _attribute(self, template: str, path: str) -> str:
        if path in self.attributes:
            return self.attributes[path]
        logical, attribute = path.split(".", 1)
        resource = load_template(template)["Resources"].get(logical)
        if resource is None:
            raise UnresolvedError(f"{template}: no resource {logical} for {path}")
        kind, name = resource["Type"], self._physical_name(template, logical, resource)
        prefix, region = f"arn:{self.partition}", f"{self.region}:{self.account}"
        arns = {
            ("AWS::IAM::Role", "Arn"): f"arn:{self.partition}:iam::{self.account}:role/{name}",
            ("AWS::SQS::Queue", "Arn"): f"arn:{self.partition}:sqs:{self.region}:{self.account}:{name}",
            ("AWS::DynamoDB::Table", "Arn"): f"arn:{self.partition}:dynamodb:{self.region}:{self.account}:table/{name}",
            ("AWS::Logs::LogGroup", "Arn"): f"{prefix}:logs:{region}:log-group:{name}:*",
            ("AWS::S3::Bucket", "Arn"): f"arn:{self.partition}:s3:::{name}",
            ("AWS::CodeBuild::Project", "Arn"): f"{prefix}:codebuild:{region}:project/{name}",
            ("AWS::SNS::Topic", "TopicArn"): f"arn:{self.partition}:sns:{self.region}:{self.account}:{name}",
        }  # fmt: skip
        if (kind, attribute) not in arns:
            raise UnresolvedError(f"{template}: {path} ({kind}) is not supported here; pass it in attributes")
        return arns[(kind, attribute)]

    def _physical_name(self, template: str, logical: str, resource: dict[str, Any]) -> str:
        """The name a resource's properties give it (RoleName, QueueName, ...); Ref of a named resource."""
        properties = resource.get("Properties", {})
        for key in ("RoleName", "QueueName", "TableName", "LogGroupName", "BucketName", "Name", "TopicName",
                    "FunctionName", "AliasName"):  # fmt: skip
            if key in properties:
                return str(self.resolve(template, properties[key]))
        raise UnresolvedError(f"{template}: {logical} has no name property; pass it in attributes")

    def condition(self, template: str, name: str) -> bool:
        """Evaluate a template condition (Fn::Equals / Fn::Not / Fn::And / Fn::Or)."""
        return self._truth(template, load_template(template).get("Conditions", {})[name])

    def _truth(self, template: str, expression: Any) -> bool:
        ((key, argument),) = expression.items()
        if key == "Fn::Equals":
            left, right = (self.resolve(template, v) for v in argument)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self._truth(template, argument[0])
        if key == "Fn::And":
            return all(self._truth(template, a) for a in argument)
        if key == "Fn::Or":
            return any(self._truth(template, a) for a in argument)
        if key == "Condition":
            return self.condition(template, argument)
        raise UnresolvedError(f"{template}: condition function {key} is not supported here")

    # ------------------------------------------------------------------------- policies
    def role_policies(self, template: str, logical: str) -> list[tuple[str, dict[str, Any]]]:
        """(policy name, resolved document) of every inline policy of a role."""
        resource = load_template(template)["Resources"][logical]
        if resource["Type"] != "AWS::IAM::Role":
            raise ValueError(f"{template}: {logical} is a {resource['Type']}, not an IAM role")
        return [
            (policy["PolicyName"], self.resolve(template, policy["PolicyDocument"]))
            for policy in resource["Properties"].get("Policies", [])
        ]

    def role_arn(self, template: str, logical: str) -> str:
        return self._attribute(template, f"{logical}.Arn")

    def resource_policy(self, template: str, logical: str) -> dict[str, Any]:
        """The resolved PolicyDocument (bucket policy, topic policy) or KeyPolicy of a resource."""
        properties = load_template(template)["Resources"][logical]["Properties"]
        document = properties.get("PolicyDocument", properties.get("KeyPolicy"))
        if document is None:
            raise ValueError(f"{template}: {logical} has no PolicyDocument or KeyPolicy")
        return self.resolve(template, document)
