"""Choice rules: every comparison operator, their ``...Path`` variants, And/Or/Not.

A comparison of mismatched types is false (as in Step Functions); a ``Variable`` that is
not in the input is a ``States.Runtime`` error, except for ``IsPresent``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from . import paths
from .errors import DefinitionError

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": operator.eq,
    "LessThan": operator.lt,
    "GreaterThan": operator.gt,
    "LessThanEquals": operator.le,
    "GreaterThanEquals": operator.ge,
}
_TYPE_TESTS = ("IsNull", "IsPresent", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp")


def parse_timestamp(value: Any) -> datetime | None:
    """An RFC 3339 timestamp with a zone (as Step Functions requires), else None."""
    if not isinstance(value, str) or not re.match(r"^\d{4}-\d{2}-\d{2}T", value):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _string_matches(value: str, pattern: str) -> bool:
    # '*' is the only wildcard; '\*' and '\\' are literal.
    regex = "".join(
        ".*" if piece == "*" else re.escape(piece[1:] if piece.startswith("\\") else piece)
        for piece in re.findall(r"\\.|\*|[^\\*]+", pattern)
    )
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def evaluate(rule: dict[str, Any], data: Any, context: Any, where: str) -> bool:
    """Whether ``rule`` holds for ``data``; ``where`` names the state for error messages."""
    if "And" in rule:
        return all(evaluate(r, data, context, where) for r in rule["And"])
    if "Or" in rule:
        return any(evaluate(r, data, context, where) for r in rule["Or"])
    if "Not" in rule:
        return not evaluate(rule["Not"], data, context, where)
    variable = rule.get("Variable")
    if not isinstance(variable, str):
        raise DefinitionError(f"{where}: a choice rule needs a 'Variable' or And/Or/Not: {rule}")
    operators = [k for k in rule if k not in ("Variable", "Next")]
    if len(operators) != 1:
        raise DefinitionError(f"{where}: a choice rule needs exactly one comparison operator: {rule}")
    name = operators[0]
    expected = rule[name]
    if name == "IsPresent":
        return paths.exists(variable, data, context) == expected
    value = paths.read(variable, data, context)
    if name in _TYPE_TESTS:
        return _type_test(name, value) == expected
    if name.endswith("Path"):
        expected = paths.read(expected, data, context)
        name = name[: -len("Path")]
    return _compare(name, value, expected, where)


def variables(rule: dict[str, Any], data: Any, context: Any) -> dict[str, Any]:
    """Every ``Variable`` a rule reads, with its value (absent ones as None)."""
    found: dict[str, Any] = {}
    for key in ("And", "Or"):
        for sub in rule.get(key) or []:
            found.update(variables(sub, data, context))
    if isinstance(rule.get("Not"), dict):
        found.update(variables(rule["Not"], data, context))
    variable = rule.get("Variable")
    if isinstance(variable, str):
        found[variable] = (
            paths.read(variable, data, context) if paths.exists(variable, data, context) else None
        )
    return found


def _type_test(name: str, value: Any) -> bool:
    if name == "IsNull":
        return value is None
    if name == "IsNumeric":
        return _is_number(value)
    if name == "IsString":
        return isinstance(value, str)
    if name == "IsBoolean":
        return isinstance(value, bool)
    return parse_timestamp(value) is not None


def _compare(name: str, value: Any, expected: Any, where: str) -> bool:
    if name == "StringMatches":
        return isinstance(value, str) and isinstance(expected, str) and _string_matches(value, expected)
    if name == "BooleanEquals":
        return isinstance(value, bool) and isinstance(expected, bool) and value == expected
    for family in ("String", "Numeric", "Timestamp"):
        if name.startswith(family) and name[len(family) :] in _ORDER:
            compare = _ORDER[name[len(family) :]]
            return _compare_family(family, compare, value, expected)
    raise DefinitionError(f"{where}: unknown choice operator {name!r}")


def _compare_family(family: str, compare: Callable[[Any, Any], bool], value: Any, expected: Any) -> bool:
    if family == "String":
        return isinstance(value, str) and isinstance(expected, str) and compare(value, expected)
    if family == "Numeric":
        return _is_number(value) and _is_number(expected) and compare(value, expected)
    left, right = parse_timestamp(value), parse_timestamp(expected)
    return left is not None and right is not None and compare(left, right)
