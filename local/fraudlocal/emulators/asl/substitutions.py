"""``${Name}`` placeholders of an ASL file and the ``DefinitionSubstitutions`` that fill them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PLACEHOLDER = re.compile(r"\$\{([^${}]+)\}")


def _strings(node: Any) -> Iterable[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def placeholders(definition: Any) -> set[str]:
    """Names of every ``${Name}`` in a parsed ASL document (keys and values)."""
    return {name for text in _strings(definition) for name in PLACEHOLDER.findall(text)}


def apply_substitutions(definition: Any, values: Mapping[str, str]) -> Any:
    """A copy of ``definition`` with every ``${Name}`` replaced by ``values[Name]``.

    Like Step Functions, only strings are touched. A placeholder with no value is an error
    that lists them all, so a typo cannot reach a running workflow.
    """
    missing = sorted(placeholders(definition) - set(values))
    if missing:
        raise ValueError(f"the definition uses placeholders with no substitution: {', '.join(missing)}")

    def fill(node: Any) -> Any:
        if isinstance(node, str):
            return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), node)
        if isinstance(node, dict):
            return {fill(key): fill(value) for key, value in node.items()}
        if isinstance(node, list):
            return [fill(value) for value in node]
        return node

    return fill(definition)


@dataclass(frozen=True)
class PlaceholderReport:
    """How a definition's placeholders and its substitution keys line up."""

    source: str  # the ASL file (or state machine) checked, for messages
    missing: tuple[str, ...]  # used in the ASL, no DefinitionSubstitutions key
    unused: tuple[str, ...]  # DefinitionSubstitutions keys the ASL never uses

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unused

    def problems(self) -> list[str]:
        out = []
        if self.missing:
            out.append(
                f"{self.source}: placeholders with no DefinitionSubstitutions key: {', '.join(self.missing)}"
            )
        if self.unused:
            out.append(
                f"{self.source}: DefinitionSubstitutions keys never used in the ASL: {', '.join(self.unused)}"
            )
        return out


def compare_placeholders(definition: Any, keys: Iterable[str], source: str) -> PlaceholderReport:
    used, declared = placeholders(definition), set(keys)
    return PlaceholderReport(source, tuple(sorted(used - declared)), tuple(sorted(declared - used)))
