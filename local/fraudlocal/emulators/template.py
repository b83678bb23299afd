"""Read the SAM template (``template.yaml``) for the local stack.

CloudFormation's short-form tags (``!Ref``, ``!GetAtt``, ``!Sub``, ``!If``, ...) are read
by a safe YAML loader into their long form (``{"Ref": ...}``, ``{"Fn::GetAtt": [...]}``),
so code handles both spellings the same way. :class:`Template` lists the functions (with
``Globals`` merged as SAM merges them) and the state machines, and renders intrinsic
values to local stand-ins: a resource's name is its logical id and its ARN is built
from the logical id, so a Lambda ARN in a state machine leads back to the function.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT = "123456789012"
PSEUDO_PARAMETERS = {
    "AWS::Region": LOCAL_REGION,
    "AWS::AccountId": LOCAL_ACCOUNT,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "fraud-detection-local",
    "AWS::StackId": f"arn:aws:cloudformation:{LOCAL_REGION}:{LOCAL_ACCOUNT}:stack/fraud-detection-local/local",
    "AWS::NoValue": None,
}
FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
STATE_MACHINE_TYPES = ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")

# ARN shapes by resource type, for GetAtt <Id>.Arn in local renderings.
_ARN_FORMATS = {
    "AWS::Serverless::Function": "arn:aws:lambda:{region}:{account}:function:{id}",
    "AWS::Lambda::Function": "arn:aws:lambda:{region}:{account}:function:{id}",
    "AWS::Serverless::StateMachine": "arn:aws:states:{region}:{account}:stateMachine:{id}",
    "AWS::StepFunctions::StateMachine": "arn:aws:states:{region}:{account}:stateMachine:{id}",
    "AWS::Events::EventBus": "arn:aws:events:{region}:{account}:event-bus/{id}",
    "AWS::SQS::Queue": "arn:aws:sqs:{region}:{account}:{id}",
    "AWS::Kinesis::Stream": "arn:aws:kinesis:{region}:{account}:stream/{id}",
    "AWS::DynamoDB::Table": "arn:aws:dynamodb:{region}:{account}:table/{id}",
    "AWS::SNS::Topic": "arn:aws:sns:{region}:{account}:{id}",
    "AWS::S3::Bucket": "arn:aws:s3:::{id}",
}
# Resources whose Ref is their ARN rather than their name.
_REF_IS_ARN = ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine", "AWS::SNS::Topic")
_SUB_VARIABLE = re.compile(r"\$\{([^!}][^}]*)\}")


class TemplateError(ValueError):
    """The template is missing something the local stack needs (names the resource)."""


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that also reads CloudFormation's short-form intrinsic tags."""


def _construct_tag(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix in ("Ref", "Condition"):
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        value = [resource, attribute]
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_yaml(text: str) -> Any:
    """Parse CloudFormation YAML (safe: no Python objects are ever built)."""
    return yaml.load(text, Loader=_CfnLoader)


def _merge_globals(defaults: Any, own: Any) -> Any:
    # SAM's rule: maps merge key by key, lists concatenate, scalars of the resource win.
    if isinstance(defaults, dict) and isinstance(own, dict):
        merged = dict(defaults)
        for key, value in own.items():
            merged[key] = _merge_globals(defaults[key], value) if key in defaults else value
        return merged
    if isinstance(defaults, list) and isinstance(own, list):
        return defaults + own
    return own


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: str | None
    handler: str | None
    runtime: str | None
    environment: dict[str, Any]  # Globals merged in; values may still be intrinsics
    properties: dict[str, Any]  # all properties, Globals merged in


@dataclass(frozen=True)
class StateMachineSpec:
    logical_id: str
    definition_uri: str | None
    definition: dict[str, Any] | None  # an inline Definition, if the template has one
    substitutions: dict[str, Any]  # DefinitionSubstitutions as written (intrinsics kept)
    properties: dict[str, Any]


class Template:
    """A parsed SAM template and the questions the local stack asks of it."""

    def __init__(
        self, data: Mapping[str, Any], path: Path | None = None, parameters: Mapping[str, Any] | None = None
    ):
        if not isinstance(data, Mapping) or not isinstance(data.get("Resources"), Mapping):
            raise TemplateError(f"{path or 'the template'} has no Resources section")
        self.data = dict(data)
        self.path = path
        self.parameters = dict(parameters or {})

    @classmethod
    def load(cls, path: str | Path, parameters: Mapping[str, Any] | None = None) -> Template:
        path = Path(path)
        try:
            data = load_yaml(path.read_text())
        except FileNotFoundError:
            raise TemplateError(f"template {path} does not exist") from None
        except yaml.YAMLError as exc:
            raise TemplateError(f"template {path} is not valid YAML: {exc}") from None
        return cls(data, path, parameters)

    @property
    def root(self) -> Path:
        """The folder relative paths (CodeUri, DefinitionUri) are taken from."""
        return self.path.parent if self.path else Path.cwd()

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.data["Resources"])

    def resource_type(self, logical_id: str) -> str | None:
        resource = self.resources.get(logical_id)
        return resource.get("Type") if isinstance(resource, dict) else None

    def _of_types(self, types: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource.get("Properties") or {}
            for logical_id, resource in self.resources.items()
            if isinstance(resource, dict) and resource.get("Type") in types
        }

    def functions(self) -> dict[str, FunctionSpec]:
        """Every function, by logical id, with ``Globals.Function`` merged in."""
        defaults = (self.data.get("Globals") or {}).get("Function") or {}
        specs = {}
        for logical_id, own in self._of_types(FUNCTION_TYPES).items():
            merged = (
                _merge_globals(defaults, own) if self.resource_type(logical_id) == FUNCTION_TYPES[0] else own
            )
            variables = (merged.get("Environment") or {}).get("Variables") or {}
            specs[logical_id] = FunctionSpec(
                logical_id=logical_id,
                code_uri=merged.get("CodeUri"),
                handler=merged.get("Handler"),
                runtime=merged.get("Runtime"),
                environment=dict(variables),
                properties=merged,
            )
        return specs

    def function(self, logical_id: str) -> FunctionSpec:
        specs = self.functions()
        if logical_id not in specs:
            raise TemplateError(
                f"{logical_id!r} is not a function of the template (functions: {sorted(specs)})"
            )
        return specs[logical_id]

    def local_environment(self, logical_id: str) -> dict[str, str]:
        """The function's environment rendered for local runs (intrinsics -> local stand-ins)."""
        rendered = {}
        for key, value in self.function(logical_id).environment.items():
            resolved = self.resolve_local(value)
            if resolved is not None:
                rendered[key] = resolved if isinstance(resolved, str) else str(resolved)
        return rendered

    def state_machines(self) -> dict[str, StateMachineSpec]:
        """Every state machine, by logical id."""
        defaults = (self.data.get("Globals") or {}).get("StateMachine") or {}
        specs = {}
        for logical_id, own in self._of_types(STATE_MACHINE_TYPES).items():
            merged = _merge_globals(defaults, own)
            uri = merged.get("DefinitionUri", merged.get("DefinitionS3Location"))
            specs[logical_id] = StateMachineSpec(
                logical_id=logical_id,
                definition_uri=uri if isinstance(uri, str) else None,
                definition=merged.get("Definition"),
                substitutions=dict(merged.get("DefinitionSubstitutions") or {}),
                properties=merged,
            )
        return specs

    def state_machine(self, logical_id: str) -> StateMachineSpec:
        specs = self.state_machines()
        if logical_id not in specs:
            raise TemplateError(
                f"{logical_id!r} is not a state machine of the template (state machines: {sorted(specs)})"
            )
        return specs[logical_id]

    # -- intrinsic values -----------------------------------------------------------------

    def referenced_logical_id(self, value: Any) -> str | None:
        """The resource a value points at: ``!Ref X``, ``!GetAtt X.Arn`` or ``!Sub "...${X.Arn}..."``."""
        if isinstance(value, dict) and len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref" and argument in self.resources:
                return argument
            if (
                key == "Fn::GetAtt"
                and isinstance(argument, list)
                and argument
                and argument[0] in self.resources
            ):
                return argument[0]
            if key == "Fn::Sub":
                text = argument[0] if isinstance(argument, list) else argument
                ids = {name.split(".")[0] for name in _SUB_VARIABLE.findall(str(text))} & set(self.resources)
                return ids.pop() if len(ids) == 1 else None
        return None

    def parameter_value(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        declared = (self.data.get("Parameters") or {}).get(name)
        if not isinstance(declared, dict) or "Default" not in declared:
            raise TemplateError(f"parameter {name!r} has no Default; pass a value for local runs")
        return declared["Default"]

    def ref(self, name: str) -> Any:
        if name in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[name]
        if name in (self.data.get("Parameters") or {}) or name in self.parameters:
            return self.parameter_value(name)
        resource_type = self.resource_type(name)
        if resource_type in _REF_IS_ARN:
            return self.get_att(name, "Arn")
        if resource_type == "AWS::SQS::Queue":
            return f"https://sqs.{LOCAL_REGION}.amazonaws.com/{LOCAL_ACCOUNT}/{name}"
        if name in self.resources:
            return name  # a resource's physical name, locally its logical id
        raise TemplateError(f"!Ref {name}: no parameter, pseudo parameter or resource has that name")

    def get_att(self, logical_id: str, attribute: str) -> str:
        resource_type = self.resource_type(logical_id)
        if resource_type is None:
            raise TemplateError(f"!GetAtt {logical_id}.{attribute}: no resource {logical_id!r}")
        if attribute == "Arn":
            service = resource_type.split("::")[1].lower() if "::" in resource_type else "unknown"
            fmt = _ARN_FORMATS.get(resource_type, f"arn:aws:{service}:{{region}}:{{account}}:{{id}}")
            return fmt.format(region=LOCAL_REGION, account=LOCAL_ACCOUNT, id=logical_id)
        if attribute in ("Name", "QueueName", "StreamName", "FunctionName"):
            return logical_id
        return f"{logical_id}.{attribute}"

    def resolve_local(self, value: Any) -> Any:
        """Render an intrinsic value to what it stands for locally (names = logical ids)."""
        if isinstance(value, list):
            return [self.resolve_local(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Condition":
                return self.condition(argument)
            if key.startswith("Fn::"):
                return self._function(key, argument)
        return {k: self.resolve_local(v) for k, v in value.items()}

    def condition(self, name: str) -> bool:
        conditions = self.data.get("Conditions") or {}
        if name not in conditions:
            raise TemplateError(f"condition {name!r} is not in the template's Conditions")
        return bool(self.resolve_local(conditions[name]))

    def _function(self, key: str, argument: Any) -> Any:
        if key == "Fn::GetAtt":
            return self.get_att(str(argument[0]), str(argument[1]))
        if key == "Fn::Sub":
            text, variables = (argument[0], argument[1]) if isinstance(argument, list) else (argument, {})
            return self._sub(str(text), {k: self.resolve_local(v) for k, v in variables.items()})
        if key == "Fn::If":
            name, when_true, when_false = argument
            return self.resolve_local(when_true if self.condition(name) else when_false)
        simple = {
            "Fn::Join": lambda a: str(a[0]).join(str(v) for v in a[1]),
            "Fn::Select": lambda a: a[1][int(a[0])],
            "Fn::Split": lambda a: str(a[1]).split(str(a[0])),
            "Fn::Equals": lambda a: str(a[0]) == str(a[1]),
            "Fn::Not": lambda a: not a[0],
            "Fn::And": all,
            "Fn::Or": any,
        }
        if key not in simple:
            raise TemplateError(f"{key} is not supported in local renderings of the template")
        return simple[key](self.resolve_local(argument))

    def _sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and name.split(".")[0] in self.resources:
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return str(self.ref(name))

        rendered = _SUB_VARIABLE.sub(replace, text)
        return rendered.replace("${!", "${")  # ${!Literal} is how Fn::Sub writes a literal ${Literal}


def load_template(path: str | Path, parameters: Mapping[str, Any] | None = None) -> Template:
    return Template.load(path, parameters)
