"""The SAM template as CloudFormation receives it, for the infrastructure tests.

:func:`expand` runs SAM's own translator (``samtranslator``, the code behind
``AWS::Serverless-2016-10-31``) over ``template.yaml`` with the given parameter values, so
Globals, the generated roles, policy templates and event sources are exactly what a
deployment gets. What CloudFormation itself would then do with the result is applied on top:
parameters and pseudo parameters are substituted (``Ref`` and ``Fn::Sub``, with SAM's own
intrinsics resolver), ``Conditions`` are evaluated, resources whose condition is false are
dropped and ``Fn::If`` picks its branch. References to resources stay as they are
(``{"Ref": "X"}``, ``{"Fn::GetAtt": ["X", "Arn"]}``), so a test can ask which resource a
policy or a variable names.

    expanded = expand({"VpcEgress": "endpoints", "TimestreamQueryCell": "query-cell2"})
    expanded.role_statements("IngestGraphFunction")

Code locations become ``s3://`` URIs, as ``sam package`` leaves them.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from samtranslator.intrinsics.resolver import IntrinsicsResolver
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO / "template.yaml"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
STACK_NAME = "fraud-detection-test"
PSEUDO_PARAMETERS = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::Partition": "aws",
    "AWS::StackName": STACK_NAME,
    "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{STACK_NAME}/1",
    "AWS::URLSuffix": "amazonaws.com",
}
_NO_VALUE = object()


def source_template() -> dict[str, Any]:
    """``template.yaml`` as written (SAM's YAML reader: short-form tags become long form)."""
    return yaml_parse(TEMPLATE_PATH.read_text())


def parameter_values(source: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, overridden by ``overrides`` (unknown names are refused), plus pseudo parameters."""
    declared = source.get("Parameters") or {}
    unknown = set(overrides or {}) - set(declared)
    if unknown:
        raise KeyError(f"not parameters of the template: {sorted(unknown)}")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        raw = (overrides or {}).get(name, spec.get("Default"))
        if raw is None:
            raise KeyError(f"parameter {name} has no default: pass a value")
        if spec.get("Type") == "CommaDelimitedList":
            raw = raw if isinstance(raw, list) else str(raw).split(",")
        values[name] = raw if isinstance(raw, list) else str(raw)
    values.update(PSEUDO_PARAMETERS)
    return values


@dataclass(frozen=True)
class ExpandedTemplate:
    """The transformed template with parameters, pseudo parameters and conditions applied."""

    template: dict[str, Any]
    parameters: dict[str, Any]
    conditions: dict[str, bool]

    @property
    def resources(self) -> dict[str, Any]:
        return self.template["Resources"]

    def of_type(self, type_name: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.resources.items() if r["Type"] == type_name}

    def properties(self, logical_id: str) -> dict[str, Any]:
        return self.resources[logical_id].get("Properties", {})

    def role_of(self, logical_id: str) -> str:
        """The logical id of the IAM role a function or state machine runs with."""
        role = self.properties(logical_id)["RoleArn" if "RoleArn" in self.properties(logical_id) else "Role"]
        name = reference(role)
        if name is None:
            raise ValueError(f"{logical_id} runs with a role this template does not create: {role!r}")
        return name

    def role_statements(self, logical_id: str) -> list[dict[str, Any]]:
        """Every inline policy statement of the role of a function or state machine."""
        role = self.properties(self.role_of(logical_id))
        return [s for policy in role.get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]

    def managed_policies(self, logical_id: str) -> list[str]:
        """Names of the AWS managed policies attached to a function's or state machine's role."""
        arns = self.properties(self.role_of(logical_id)).get("ManagedPolicyArns", [])
        return [arn.rsplit("/", 1)[-1] if isinstance(arn, str) else json.dumps(arn) for arn in arns]

    def environment(self, function: str) -> dict[str, Any]:
        return dict(((self.properties(function).get("Environment") or {}).get("Variables")) or {})


def reference(value: Any) -> str | None:
    """The logical id a ``Ref``/``Fn::GetAtt`` (or a ``Fn::Sub`` naming one resource) points at."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, argument),) = value.items()
        if key == "Ref" and isinstance(argument, str):
            return argument
        if key == "Fn::GetAtt":
            return argument[0] if isinstance(argument, list) else str(argument).split(".")[0]
        if key == "Fn::Sub":
            text, variables = argument if isinstance(argument, list) else (argument, {})
            names = {part.split("}")[0].split(".")[0] for part in str(text).split("${")[1:]}
            targets = {reference(variables[n]) if n in variables else n for n in names}
            targets -= {None, *PSEUDO_PARAMETERS}
            return targets.pop() if len(targets) == 1 else None
    return None


def render(value: Any) -> Any:
    """A value with each resource reference shown by name (``Ref X`` -> ``X``, ``GetAtt X.Arn``
    -> ``X.Arn``, ``${X.Endpoint}`` -> ``X.Endpoint``): what a variable looks like once deployed,
    with names in place of the physical ids."""
    if isinstance(value, list):
        return [render(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, argument),) = value.items()
        if key == "Ref":
            return str(argument)
        if key == "Fn::GetAtt":
            return ".".join(argument) if isinstance(argument, list) else str(argument)
        if key == "Fn::Sub":
            text, variables = argument if isinstance(argument, list) else (argument, {})
            for name, variable in variables.items():
                text = text.replace("${" + name + "}", str(render(variable)))
            return re.sub(r"\$\{([^!}][^}]*)\}", r"\1", text).replace("${!", "${")
    return {k: render(v) for k, v in value.items()}


def expand(overrides: Mapping[str, Any] | None = None) -> ExpandedTemplate:
    """The template as CloudFormation would deploy it with these parameter values."""
    key = json.dumps(dict(overrides or {}), sort_keys=True)
    return copy.deepcopy(_expand(key))


@functools.cache
def _expand(overrides_json: str) -> ExpandedTemplate:
    overrides = json.loads(overrides_json)
    source = source_template()
    values = parameter_values(source, overrides)
    for resource in source["Resources"].values():
        props = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if isinstance(props.get(key), str):
                props[key] = f"s3://artifacts/{props[key].strip('/')}"  # what `sam package` leaves
    # SAM looks managed policies up by name only for names a template lists (ours lists none);
    # the session only names the region (no AWS call is made).
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=REGION))
    translated = translator.translate(source, parameter_values=dict(values), get_managed_policy_map=dict)
    resolved = IntrinsicsResolver(values).resolve_parameter_refs(translated)
    conditions = _evaluate_conditions(resolved.get("Conditions") or {})
    resolved["Resources"] = {
        name: resource
        for name, resource in resolved["Resources"].items()
        if conditions.get(resource.get("Condition", ""), True)
    }
    resolved["Outputs"] = {
        name: output
        for name, output in (resolved.get("Outputs") or {}).items()
        if conditions.get(output.get("Condition", ""), True)
    }
    resolved = _apply_conditions(resolved, conditions)
    return ExpandedTemplate(template=resolved, parameters=values, conditions=conditions)


def _evaluate_conditions(declared: Mapping[str, Any]) -> dict[str, bool]:
    results: dict[str, bool] = {}

    def evaluate(value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Condition":
                if argument not in results:
                    results[argument] = bool(evaluate(declared[argument]))
                return results[argument]
            if key == "Fn::Equals":
                left, right = (evaluate(a) for a in argument)
                return _text(left) == _text(right)
            if key == "Fn::Not":
                return not evaluate(argument[0])
            if key == "Fn::And":
                return all(evaluate(a) for a in argument)
            if key == "Fn::Or":
                return any(evaluate(a) for a in argument)
            if key == "Ref":
                raise ValueError(f"a condition refers to {argument}, which is not a parameter")
        return value

    for name in declared:
        evaluate({"Condition": name})
    return results


def _text(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _apply_conditions(value: Any, conditions: Mapping[str, bool]) -> Any:
    """``Fn::If`` resolved to its branch; ``AWS::NoValue`` removes the key or list item."""
    if isinstance(value, list):
        items = [_apply_conditions(v, conditions) for v in value]
        return [v for v in items if v is not _NO_VALUE]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, argument),) = value.items()
        if key == "Fn::If":
            name, when_true, when_false = argument
            return _apply_conditions(when_true if conditions[name] else when_false, conditions)
        if key == "Ref" and argument == "AWS::NoValue":
            return _NO_VALUE
        if key == "Fn::Sub" and isinstance(argument, str) and "${" not in argument.replace("${!", ""):
            return argument.replace("${!", "${")  # every variable was a parameter: plain text now
    items = {k: _apply_conditions(v, conditions) for k, v in value.items()}
    return {k: v for k, v in items.items() if v is not _NO_VALUE}


def statements_allowing(statements: list[dict[str, Any]]) -> Iterator[tuple[str, Any]]:
    """(action, resource) for every Allow statement, one pair per action and resource."""
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        for action in actions:
            for resource in resources:
                yield action, resource
