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

from fraudcore import backends
from fraudcore.execution_names import safe_part
from fraudcore.graph.schema import ENTITY_TYPES, vertex_id
from fraudcore.timeutil import iso_z, parse_utc

from ..errors import UserError
from ..runtime import DEFAULT_TEMPLATE, FunctionRunner, LocalTarget, close_local_backends, patched_environment
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


def build_input(
    entity: tuple[str, str], input_file: Path | None, at: datetime | None = None
) -> dict[str, Any]:
    """The execution input: the file's (a flag or a hand-started request) or a hand-started one
    looking at the graph as of ``at``."""
    entity_type, entity_id = entity
    if input_file is None:
        request = {
            "entity_type": entity_type,
            "entity_id": entity_id,
            "requested_by": "fraudlocal investigate",
        }
        if at is not None:
            request["reference_time"] = iso_z(at, "milliseconds")
        return request
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


def parse_at(text: str) -> datetime:
    try:
        return parse_utc(text)
    except ValueError as error:
        raise UserError(f"--at {text!r}: {error}; e.g. --at 2026-11-02T12:00:00Z") from None


def execution_name(entity: tuple[str, str], now: datetime) -> str:
    stamp = now.strftime("%Y%m%dT%H%M%S%f")
    base = safe_part(f"{entity[0]}-{entity[1]}")[: 80 - len(stamp) - 10]
    return f"local-{base}-{stamp}"


def run_investigation(
    state_dir: Path | LocalTarget,
    execution_input: dict[str, Any],
    name: str,
    template: Path = DEFAULT_TEMPLATE,
    *,
    start_time: datetime | None = None,
    verbose: bool = False,
) -> dict[str, Any]:
    """Run the state machine locally and return ``Execution.to_dict()``; the simulated clock
    starts at ``start_time`` and runs while each task works. The functions' logs stay
    quiet unless ``verbose``."""
    from ..asl import run_state_machine

    target = state_dir if isinstance(state_dir, LocalTarget) else LocalTarget(Path(state_dir))
    runner = FunctionRunner(target, verbose=verbose)
    try:
        execution = run_state_machine(
            template,
            STATE_MACHINE,
            execution_input,
            runner.invoke,
            name,
            start_time=start_time,
            task_time=True,
        )
    finally:
        close_local_backends()
    return execution.to_dict()


def latest_event_time(target: LocalTarget) -> datetime | None:
    """The time of the newest transaction in the time-series store (None when it is empty)."""
    with patched_environment(target.environment({})):
        try:
            store = backends.timeseries_store()
            rows = store.query(
                f'SELECT max(time) AS latest FROM "{store.database}"."{store.table}" '
                "WHERE measure_name = 'transaction'"
            )
        finally:
            backends.reset()
    latest = rows[0]["latest"] if rows else None
    if latest is None:
        return None
    return parse_utc(latest)


def entity_exists(target: LocalTarget, entity: tuple[str, str]) -> bool:
    vid = vertex_id(ENTITY_TYPES[entity[0]], entity[1])
    with patched_environment(target.environment({})):
        try:
            return bool(
                backends.graph_connection().run(lambda g: g.V(vid).id_(), "toList", what="entity exists")
            )
        finally:
            backends.reset()


def save_execution(state_dir: Path, execution: dict[str, Any]) -> Path:
    folder = state_dir / "investigations"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{execution['name']}.json"
    path.write_text(json.dumps(execution, indent=2, default=str))
    return path


def _choice_text(choice: dict[str, Any] | None) -> str:
    if not choice:
        return ""
    values = ", ".join(f"{path.removeprefix('$.')}={value!r}" for path, value in choice["values"].items())
    which = "no rule matched: Default" if choice["rule"] == "Default" else f"rule {choice['rule'] + 1}"
    return f"{which} ({values}) -> {choice['next']}"


def format_history(execution: dict[str, Any]) -> str:
    rows = [("state", "type", "entered", "exited", "retries", "outcome")]
    for event in execution.get("history", []):
        state = event["state"] if not event.get("parent") else f"  {event['state']}"
        rows.append(
            (
                state,
                event.get("type", ""),
                str(event.get("entered_at", ""))[11:23],
                str(event.get("exited_at", ""))[11:23],
                str(len(event.get("retries") or [])),
                event.get("error") or _choice_text(event.get("choice")),
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
    lines = [f"Verdict: {case['investigation_verdict']}, score {case['investigation_score']:.3f}"]
    if case["case_id"] is None:
        lines.append("No case recorded: no account to review behind this entity")
    else:
        lines.append(
            f"Case {case['case_id']} ({case['status']}): {case['verdict']}, score {case['score']:.3f} "
            "(the most severe of the case's investigations)"
        )
    lines.append(f"Members ({len(case['members'])}): {', '.join(case['members'])}")
    if case.get("flags_propagated"):
        lines.append(f"Flagged as ring members: {', '.join(case['flags_propagated'])}")
    lines.append("Reasons:")
    lines += [f"  - {reason['sentence']}" for reason in case["reasons"]] or ["  (none)"]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    entity = parse_entity(args.entity)
    target = target_from_args(args)
    if args.input is None and not entity_exists(target, entity):
        raise UserError(
            f"{entity[0]}:{entity[1]} is not in the graph of {target.state_dir}; check the id "
            "(`fraudlocal cases list` and `cases show` name the accounts), or ingest its transactions first"
        )
    at = parse_at(args.at) if args.at else latest_event_time(target)
    execution_input = build_input(entity, args.input, at)
    name = args.name or execution_name(entity, at or datetime.now(tz=UTC))
    execution = run_investigation(target, execution_input, name, start_time=at, verbose=args.verbose)
    saved = save_execution(target.state_dir, execution)
    if args.html:
        from ..investigation_html import write_investigation_html

        write_investigation_html(execution, args.html)
    if args.json:
        output = {
            **(execution.get("output") or {}),
            "execution": execution,
        }
        if execution["status"] != "SUCCEEDED":
            output.update(
                status=execution["status"], error=execution.get("error"), cause=execution.get("cause")
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
        "--json",
        action="store_true",
        help="print the case summary with the whole execution (each state's input, output, times, choice)",
    )
    parser.add_argument(
        "--at",
        default=None,
        help="look at the graph as of this time (ISO 8601 UTC); default: the latest transaction in the stores",
    )
    parser.add_argument("--verbose", action="store_true", help="show the functions' logs on stderr")
    parser.add_argument(
        "--html", type=Path, default=None, help="write the investigation page (ring graph, evidence, history)"
    )
    parser.add_argument(
        "--name", default=None, help="execution name (default: derived from the entity and the time)"
    )
    add_graph_options(parser)
    parser.set_defaults(func=run)
