"""The template as CloudFormation deploys it for given parameter values: conditions applied.

CloudFormation evaluates the Conditions from the parameter values, drops the resources and
outputs whose condition is false, and replaces every ``Fn::If`` by the chosen branch
(``AWS::NoValue`` removing the property or list item). :func:`with_parameters` does the
same on the parsed template, so a test can look at what one choice of parameters deploys.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from samtranslator.translator.transform import transform

_NO_VALUE = object()


def _value(template: dict[str, Any], parameters: dict[str, Any], node: Any) -> Any:
    if isinstance(node, dict) and set(node) == {"Ref"}:
        name = node["Ref"]
        if name in parameters:
            return parameters[name]
        if name in template.get("Parameters", {}):
            return template["Parameters"][name].get("Default", "")
    return node


def _condition(
    template: dict[str, Any], parameters: dict[str, Any], node: Any, cache: dict[str, bool]
) -> bool:
    if isinstance(node, dict):
        if "Condition" in node and len(node) == 1:
            return condition_value(template, parameters, node["Condition"], cache)
        if "Fn::Equals" in node:
            left, right = (_value(template, parameters, side) for side in node["Fn::Equals"])
            return str(left) == str(right)
        if "Fn::Not" in node:
            return not _condition(template, parameters, node["Fn::Not"][0], cache)
        if "Fn::And" in node:
            return all(_condition(template, parameters, item, cache) for item in node["Fn::And"])
        if "Fn::Or" in node:
            return any(_condition(template, parameters, item, cache) for item in node["Fn::Or"])
    raise ValueError(f"cannot evaluate condition {node!r}")


def condition_value(
    template: dict[str, Any], parameters: dict[str, Any], name: str, cache: dict[str, bool] | None = None
) -> bool:
    cache = {} if cache is None else cache
    if name not in cache:
        cache[name] = _condition(template, parameters, template["Conditions"][name], cache)
    return cache[name]


def _resolve(node: Any, decide: Any) -> Any:
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            name, when_true, when_false = node["Fn::If"]
            return _resolve(when_true if decide(name) else when_false, decide)
        if node == {"Ref": "AWS::NoValue"}:
            return _NO_VALUE
        resolved = {key: _resolve(value, decide) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not _NO_VALUE}
    if isinstance(node, list):
        return [item for item in (_resolve(value, decide) for value in node) if item is not _NO_VALUE]
    return node


def with_parameters(template: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """A copy of the template with the conditions of these parameter values applied."""
    cache: dict[str, bool] = {}

    def decide(name: str) -> bool:
        return condition_value(template, parameters, name, cache)

    result = copy.deepcopy(template)
    for section in ("Resources", "Outputs"):
        result[section] = {
            name: item
            for name, item in result.get(section, {}).items()
            if "Condition" not in item or decide(item["Condition"])
        }
    for key in ("Globals", "Resources", "Outputs"):
        if key in result:
            result[key] = _resolve(result[key], decide)
    for resource in result["Resources"].values():
        resource.pop("Condition", None)
    return result


def sam_transform(template: dict[str, Any]) -> dict[str, Any]:
    """The template after the SAM transform, as CloudFormation would receive it."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    local = copy.deepcopy(template)
    for resource in local["Resources"].values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if isinstance(props.get(key), str):
                props[key] = "s3://bucket/key"  # what `sam package` puts there

    class NoManagedPolicyLookups:
        def load(self) -> dict[str, str]:
            return {}

    return transform(local, {}, NoManagedPolicyLookups())
