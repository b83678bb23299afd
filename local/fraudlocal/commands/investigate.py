"""``fraudlocal investigate <entity_type>:<entity_id> [--input FILE] [--json] [--html FILE]``.

Runs the real investigation state machine (``statemachines/investigation.asl.json``, with
the ``DefinitionSubstitutions`` of ``template.yaml``) through the local executor, each
task in-process on the state dir's stores; prints the execution history and the case.
The execution is also saved under ``<state dir>/investigations/<name>.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fraudcore.execution_names import safe_part
from fraudcore.graph.schema import ENTITY_TYPES

from ..errors import UserError
from ..runtime import DEFAULT_TEMPLATE, close_local_backends, invoke_function
from ..state_machine import STATE_MACHINE
from .invoke import add_graph_options, read_json_file, target_from_args


def parse_entity(text: str) -> tuple[str, str]:
    entity_type, sep, entity_id = text.partition(":")
    if not sep or not entity_id.strip() or entity_type not in ENTITY_TYPES:
        raise UserError(
            f"{text!r}: expected <entity_type>:<entity_id> with entity_type one of "
            f"{', '.join(ENTITY_TYPES)}, e.g. account:acc-000123"
        )
    return entity_type, entity_id.strip()


def build_input(entity: tuple[str, str], input_file: Path | None) -> dict[str, Any]:
    """The execution input: the file's (a flag or a hand-started request) or a hand-started one."""
    entity_type, entity_id = entity
    if input_file is None:
        return {"entity_type": entity_type, "entity_id": entity_id, "requested_by": "fraudlocal investigate"}
    data = read_json_file(input_file, "input file")
    if not isinstance(data, dict):
        raise UserError(f"input file {input_file}: expected a JSON object (a flag or a hand-started request)")
    body = data.get("flag") if isinstance(data.get("flag"), dict) else data
    given = (body.get("entity_type"), str(body.get("entity_id", "")).removeprefix(f"{entity_type}:"))
    if given != (None, "") and given != (entity_type, entity_id):
        raise UserError(
            f"input file {input_file} is about {given[0]}:{given[1]}, not {entity_type}:{entity_id}: "
            "give the same entity on the command line"
        )
    return {**data, "entity_type": entity_type, "entity_id": entity_id} if body is data else data


def execution_name(entity: tuple[str, str], now: datetime) -> str:
    stamp = now.strftime("%Y%m%dT%H%M%S%f")
    base = safe_part(f"{entity[0]}-{entity[1]}")[: 80 - len(stamp) - 10]
    return f"local-{base}-{stamp}"


def run_investigation(
    state_dir: Path | Any, execution_input: dict[str, Any], name: str, template: Path = DEFAULT_TEMPLATE
) -> dict[str, Any]:
    """Run the state machine locally and return ``Execution.to_dict()``."""
    from ..asl import run_state_machine

    def invoke(logical_id: str, payload: Any) -> Any:
        return invoke_function(logical_id, payload, state_dir)

    try:
        execution = run_state_machine(template, STATE_MACHINE, execution_input, invoke, name)
    finally:
        close_local_backends()
    return execution.to_dict()


def save_execution(state_dir: Path, execution: dict[str, Any]) -> Path:
    folder = state_dir / "investigations"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{execution['name']}.json"
    path.write_text(json.dumps(execution, indent=2, default=str))
    return path


def format_history(execution: dict[str, Any]) -> str:
    rows = [("state", "type", "entered", "ms", "retries", "error")]
    for event in execution.get("history", []):
        state = event["state"] if not event.get("parent") else f"  {event['state']}"
        rows.append(
            (
                state,
                event.get("type", ""),
                str(event.get("entered_at", ""))[11:23],
                f"{float(event.get('duration_ms') or 0):.1f}",
                str(len(event.get("retries") or [])),
                event.get("error") or "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_case(execution: dict[str, Any]) -> str:
    if execution.get("status") != "SUCCEEDED":
        return f"Investigation {execution.get('status')}: {execution.get('error')}\n{execution.get('cause')}"
    case = execution["output"]
    lines = [
        f"Case {case['case_id']} ({case['status']}): {case['verdict']}, score {case['score']:.3f}",
        f"Members ({len(case['members'])}): {', '.join(case['members'])}",
    ]
    if case.get("flags_propagated"):
        lines.append(f"Flagged as ring members: {', '.join(case['flags_propagated'])}")
    lines.append("Reasons:")
    lines += [f"  - {reason['sentence']}" for reason in case["reasons"]] or ["  (none)"]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    entity = parse_entity(args.entity)
    execution_input = build_input(entity, args.input)
    name = args.name or execution_name(entity, datetime.now(tz=UTC))
    execution = run_investigation(target_from_args(args), execution_input, name)
    saved = save_execution(Path(args.state_dir), execution)
    if args.html:
        from ..investigation_html import write_investigation_html

        write_investigation_html(execution, args.html)
    if args.json:
        output = (
            execution.get("output")
            if execution["status"] == "SUCCEEDED"
            else {
                "status": execution["status"],
                "error": execution.get("error"),
                "cause": execution.get("cause"),
            }
        )
        json.dump(output, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print(format_history(execution))
        print()
        print(format_case(execution))
        print(f"\nExecution saved to {saved}" + (f"; page written to {args.html}" if args.html else ""))
    return 0 if execution["status"] == "SUCCEEDED" else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "investigate",
        help="run the investigation state machine locally on an entity",
        description="Run statemachines/investigation.asl.json locally (the real handlers, in-process, on the "
        "local stores) from a hand-started request or a flag given with --input; print the execution "
        "history and the case.",
    )
    parser.add_argument("entity", help="<entity_type>:<entity_id>, e.g. account:acc-000123 or device:dev-42")
    parser.add_argument(
        "--input", type=Path, default=None, help="execution input JSON (a flag, or a hand-started request)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print only the execution output (the case summary)"
    )
    parser.add_argument(
        "--html", type=Path, default=None, help="write the investigation page (ring graph, evidence, history)"
    )
    parser.add_argument(
        "--name", default=None, help="execution name (default: derived from the entity and the time)"
    )
    add_graph_options(parser)
    parser.set_defaults(func=run)
