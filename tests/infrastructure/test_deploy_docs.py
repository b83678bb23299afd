"""docs/deploy.md stays true: every command block is marked, and checked as far as it can be here.

<!-- runnable -->        run here, each block as one bash script; must exit 0
<!-- checked-by-make --> run by `make test` (a Makefile target, or a step of the scripts it runs)
<!-- needs-aws -->       needs an account: every option must exist (`--help` of sam and of our
<!-- needs-docker -->    scripts; botocore's service model for `aws <service> <operation>`)
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import botocore.session
import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "deploy.md"
MARKERS = ("runnable", "checked-by-make", "needs-aws", "needs-docker")
# Options of the aws CLI itself, not of an operation.
AWS_GLOBAL_OPTIONS = {"query", "output", "region", "profile", "endpoint-url", "no-cli-pager"}


@dataclass(frozen=True)
class Block:
    marker: str | None
    line: int
    commands: tuple[str, ...]


def doc_blocks(text: str) -> list[Block]:
    blocks = []
    pattern = re.compile(r"(?:<!-- (?P<marker>[\w-]+) -->\n)?```bash\n(?P<body>.*?)```", re.S)
    for match in pattern.finditer(text):
        commands = tuple(
            line.strip() for line in match["body"].splitlines() if line.strip() and not line.startswith("#")
        )
        blocks.append(Block(match["marker"], text[: match.start()].count("\n") + 1, commands))
    return blocks


BLOCKS = doc_blocks(DOC.read_text())


def blocks(marker: str) -> list[Block]:
    return [b for b in BLOCKS if b.marker == marker]


def block_id(block: Block) -> str:
    return f"line{block.line}"


def env_for_docs(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DOC_TMP=str(tmp_path),
        SAM_CLI_TELEMETRY="0",
        SAM_CLI_DISABLE_VERSION_CHECK="1",
        PATH=f"{REPO / '.venv' / 'bin'}:{env.get('PATH', '')}",
    )
    return env


def test_every_command_block_is_marked() -> None:
    assert BLOCKS, "no bash blocks found in docs/deploy.md"
    unmarked = [b.line for b in BLOCKS if b.marker not in MARKERS]
    assert not unmarked, f"bash blocks without one of {MARKERS} at lines {unmarked}"
    for marker in MARKERS:
        assert blocks(marker), f"no {marker} block: the guide lost a step"


def test_the_guide_covers_each_step_of_a_deployment() -> None:
    text = " ".join(DOC.read_text().replace("\n>", "\n").split())  # prose and quotes wrap anywhere
    everything = "\n".join(c for b in BLOCKS for c in b.commands)
    for needed in (
        "sam build",
        "sam deploy --guided",
        "--config-env dev",
        "put-sample-records --stream-name",
        "stepfunctions start-execution",
        "sam delete",
        "--env-vars env.local.json",
    ):
        assert needed in everything, needed
    assert "closed to new AWS customers since 2025-06-20" in text
    assert "| **total (estimate)** |" in text


def test_runnable_blocks_run_in_order(tmp_path: Path) -> None:
    # One test, in the guide's order: later steps use what earlier ones made (DOC_TMP).
    env = env_for_docs(tmp_path)
    for block in blocks("runnable"):
        script = "set -euo pipefail\n" + "\n".join(block.commands)
        result = subprocess.run(
            ["bash", "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, (
            f"docs/deploy.md line {block.line}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        )


def makefile_targets() -> set[str]:
    return set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.M))


def run_by_make_test() -> str:
    """The text of what `make test` runs: the Makefile and the scripts it calls."""
    texts = [(REPO / "Makefile").read_text()]
    for script in ("scripts/run-tests", "scripts/validate-template"):
        path = REPO / script
        if path.exists():
            texts.append(path.read_text())
    return "\n".join(texts)


@pytest.mark.parametrize("block", blocks("checked-by-make"), ids=block_id)
def test_make_runs_what_the_guide_promises(block: Block) -> None:
    made = run_by_make_test()
    for command in block.commands:
        words = shlex.split(command)
        program = next(w for w in words if "=" not in w.split("/")[0] or w.startswith(("./", "/")))
        if program == "make":
            assert words[1] in makefile_targets(), command
        elif program.startswith("scripts/"):
            assert (REPO / program).is_file() and re.search(rf"^\s*{re.escape(program)}\b", made, re.M), (
                command
            )
        else:
            tool = Path(program).name
            sub = words[words.index(program) + 1]
            assert re.search(rf'{tool}"?\s+{sub}\b', made), f"{command}: not run by make test"


@cache
def help_text(*command: str) -> str:
    result = subprocess.run(
        [*command, "--help"], cwd=REPO, env=env_for_docs(REPO), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"{' '.join(command)} --help failed: {result.stderr[-1000:]}"
    return result.stdout


def options(words: list[str]) -> list[str]:
    return [w[2:].split("=", 1)[0] for w in words if w.startswith("--")]


def check_aws_cli(words: list[str]) -> None:
    service, operation = words[1], words[2]
    model = botocore.session.get_session().get_service_model(service)
    name = "".join(part.capitalize() for part in operation.split("-"))
    assert name in model.operation_names, f"aws {service} {operation}: no such operation"
    members = {m.lower() for m in model.operation_model(name).input_shape.members}
    for option in options(words):
        if option not in AWS_GLOBAL_OPTIONS:
            assert option.replace("-", "") in members, f"aws {service} {operation}: no option --{option}"


def check_tool_options(words: list[str]) -> None:
    program = words[0]
    positional = [w for w in words[1:] if not w.startswith("-")]
    if Path(program).name == "sam":
        subcommand = positional[:2] if positional[:1] == ["local"] else positional[:1]
    elif program.startswith("scripts/"):
        subcommand = positional[:1] if program.endswith("redrive") else []
    else:
        subcommand = []
    if program == "scripts/gremlin-server":
        assert (REPO / program).is_file()
        return
    text = help_text(program, *subcommand)
    for option in options(words):
        assert f"--{option}" in text, f"{' '.join([program, *subcommand])}: no option --{option}"


def command_lines(block: Block) -> list[list[str]]:
    lines = []
    for command in block.commands:
        inner = re.fullmatch(r"export \w+=\$\((.*)\)", command)
        lines.append(shlex.split(inner[1] if inner else command))
    return lines


@pytest.mark.parametrize("block", blocks("needs-aws") + blocks("needs-docker"), ids=block_id)
def test_account_steps_use_options_that_exist(block: Block) -> None:
    for words in command_lines(block):
        if words[0] == "aws":
            check_aws_cli(words)
        else:
            check_tool_options(words)


def test_the_option_checks_catch_a_typo() -> None:
    with pytest.raises(AssertionError):
        check_aws_cli(["aws", "stepfunctions", "start-execution", "--state-machine", "x"])
    with pytest.raises(AssertionError):
        check_tool_options([".venv/bin/sam", "deploy", "--config-environment", "dev"])
