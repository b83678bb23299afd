"""Checks of the ASL files: placeholders against DefinitionSubstitutions, statelint, asl-validator.

Neither ``sam validate`` nor cfn-lint looks inside a SAM state machine's DefinitionUri,
so this is the only check of the workflow before it is deployed. The linters run on the
definition with the substitutions rendered to local stand-ins (real-looking ARNs), since
a raw ``${FlagEntityFunctionArn}`` is not a URI and statelint would reject every Task.

Run as ``python -m fraudlocal.emulators.asl.check [--template template.yaml] [--no-lint]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..template import Template, TemplateError
from .loader import load_state_machine, read_definition
from .substitutions import PlaceholderReport, compare_placeholders


@dataclass(frozen=True)
class AslFile:
    """An ASL file as the checks see it: raw, rendered, and its placeholder report."""

    path: Path
    state_machines: tuple[str, ...]
    rendered: dict[str, Any]
    report: PlaceholderReport


def placeholder_reports(template: Template) -> list[PlaceholderReport]:
    """One report per state machine: placeholders without keys, keys without placeholders."""
    reports = []
    for logical_id, spec in sorted(template.state_machines().items()):
        source, raw = read_definition(template, logical_id)
        where = f"{logical_id} ({source.name})" if source else logical_id
        reports.append(compare_placeholders(raw, spec.substitutions, where))
    return reports


def asl_files(template: Template, folder: Path) -> list[AslFile]:
    """Every ``*.asl.json`` in ``folder``, with the state machines that use it."""
    users: dict[Path, list[str]] = {}
    for logical_id, spec in template.state_machines().items():
        if spec.definition_uri:
            users.setdefault((template.root / spec.definition_uri).resolve(), []).append(logical_id)
    found = []
    for path in sorted(p.resolve() for p in folder.glob("*.asl.json")):
        machines = tuple(sorted(users.get(path.resolve(), [])))
        raw = json.loads(path.read_text())
        if machines:
            keys = template.state_machine(machines[0]).substitutions
            report = compare_placeholders(raw, keys, f"{machines[0]} ({path.name})")
            # Rendering needs every placeholder filled; the report says which are not.
            rendered = raw if report.missing else load_state_machine(template, machines[0]).definition
        else:
            # No state machine uses the file, so no key can fill any placeholder in it.
            report = compare_placeholders(raw, (), f"{path.name} (used by no state machine)")
            rendered = raw
        found.append(AslFile(path, machines, rendered, report))
    return found


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _run(command: list[str], cwd: Path) -> tuple[int, str]:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    return done.returncode, (done.stdout + done.stderr).strip()


def lint(files: list[AslFile], root: Path, statelint: str, asl_validator: list[str]) -> list[str]:
    """Run both linters on the rendered definitions; messages name the original file."""
    problems = []
    with tempfile.TemporaryDirectory(prefix="check-asl-") as scratch:
        for asl in files:
            if asl.report.missing:
                continue  # cannot render it; the placeholder report already says why
            rendered = Path(scratch) / asl.path.name
            rendered.write_text(json.dumps(asl.rendered, indent=2))
            for tool, command in (
                ("statelint", [statelint, str(rendered)]),
                ("asl-validator", [*asl_validator, "--json-path", str(rendered)]),
            ):
                code, output = _run(command, root)
                status = "ok" if code == 0 else "FAILED"
                shown = _shown(asl.path, root)
                print(f"{tool:<14} {shown}: {status}")
                if code != 0:
                    problems.append(
                        f"{tool} rejected {shown}:\n{output.replace(str(rendered), asl.path.name)}"
                    )
    return problems


def find_tools(root: Path) -> tuple[str, list[str]]:
    statelint = shutil.which("statelint", path=str(Path(sys.executable).parent)) or shutil.which("statelint")
    if statelint is None:
        raise SystemExit("statelint is not installed: pip install statelint (it is in the dev extras)")
    # node_modules sits at the repository root, which may be above the template's folder.
    for folder in (root, *root.parents, Path.cwd()):
        validator = folder / "node_modules" / ".bin" / "asl-validator"
        if validator.exists():
            return statelint, [str(validator)]
    raise SystemExit(
        "asl-validator is not installed: run `npm ci --no-audit --no-fund` at the repository root"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="check-asl", description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, default=Path("template.yaml"))
    parser.add_argument(
        "--statemachines",
        type=Path,
        help="folder of *.asl.json (default: statemachines/ beside the template)",
    )
    parser.add_argument("--no-lint", action="store_true", help="only the placeholder check")
    args = parser.parse_args(argv)
    try:
        template = Template.load(args.template)
        folder = args.statemachines or template.root / "statemachines"
        reports = placeholder_reports(template)
        files = asl_files(template, folder)
    except (TemplateError, ValueError) as exc:
        print(f"check-asl: {exc}", file=sys.stderr)
        return 1
    problems = [p for report in reports for p in report.problems()]
    problems += [p for asl in files if not asl.state_machines for p in asl.report.problems()]
    print(
        f"placeholders   {len(reports)} state machine(s), {len(files)} ASL file(s): {'FAILED' if problems else 'ok'}"
    )
    if not args.no_lint:
        statelint, validator = find_tools(template.root.resolve())
        problems += lint(files, template.root.resolve(), statelint, validator)
    for problem in problems:
        print(f"check-asl: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
