"""Load a state machine from ``template.yaml``: its ASL file with the substitutions applied."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..template import FUNCTION_TYPES, Template, TemplateError
from .executor import Invoke, execute
from .history import Execution
from .substitutions import apply_substitutions


@dataclass(frozen=True)
class LoadedStateMachine:
    logical_id: str
    source: Path | None  # the ASL file, None for an inline Definition
    raw: dict[str, Any]  # the ASL document as written, placeholders and all
    substitutions: dict[str, str]  # DefinitionSubstitutions rendered for local runs
    targets: dict[str, str | None]  # substitution key -> logical id of the resource it names
    definition: dict[str, Any]  # raw with the substitutions applied

    @property
    def functions(self) -> dict[str, str]:
        """Substitution key -> Lambda function logical id, for the keys that name a function."""
        return {key: target for key, target in self.targets.items() if target is not None}


def read_definition(template: Template, logical_id: str) -> tuple[Path | None, dict[str, Any]]:
    spec = template.state_machine(logical_id)
    if spec.definition is not None:
        return None, spec.definition
    if spec.definition_uri is None:
        raise TemplateError(
            f"state machine {logical_id!r} has neither DefinitionUri (a local file) nor Definition"
        )
    path = template.root / spec.definition_uri
    try:
        return path, json.loads(path.read_text())
    except FileNotFoundError:
        raise TemplateError(f"state machine {logical_id!r}: DefinitionUri {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise TemplateError(f"state machine {logical_id!r}: {path} is not valid JSON: {exc}") from None


def load_state_machine(template: Template | str | Path, logical_id: str) -> LoadedStateMachine:
    """Read the state machine's ASL and fill its placeholders with local stand-ins.

    A substitution naming a Lambda function (``!GetAtt FlagEntityFunction.Arn``,
    ``!Ref FlagEntityFunction``) renders to an ARN or name whose function name is the
    logical id, so the executor hands that task to the function with that logical id.
    """
    if not isinstance(template, Template):
        template = Template.load(template)
    source, raw = read_definition(template, logical_id)
    spec = template.state_machine(logical_id)
    rendered: dict[str, str] = {}
    targets: dict[str, str | None] = {}
    for key, value in spec.substitutions.items():
        resolved = template.resolve_local(value)
        rendered[key] = resolved if isinstance(resolved, str) else json.dumps(resolved)
        target = template.referenced_logical_id(value)
        targets[key] = target if target and template.resource_type(target) in FUNCTION_TYPES else None
    return LoadedStateMachine(
        logical_id=logical_id,
        source=source,
        raw=raw,
        substitutions=rendered,
        targets=targets,
        definition=apply_substitutions(raw, rendered),
    )


def run_state_machine(
    template_path: Template | str | Path,
    logical_id: str,
    input: Any,
    invoke: Invoke,
    name: str,
    **options: Any,
) -> Execution:
    """Run the template's state machine ``logical_id`` locally; see :func:`execute` for ``options``."""
    loaded = load_state_machine(template_path, logical_id)
    return execute(loaded.definition, input, invoke, name=name, state_machine_name=logical_id, **options)
