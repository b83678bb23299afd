"""The investigation state machine retries what Step Functions and Neptune say is transient,
at the level where a retry reruns only what failed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEFINITION = json.loads((REPO / "statemachines" / "investigation.asl.json").read_text())

#: Lambda's transient service errors, as Step Functions reports them (its best-practice list)
LAMBDA_SERVICE_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
}


def states(machine: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, state in machine["States"].items():
        found.append((name, state))
        for branch in state.get("Branches", []):
            found.extend(states(branch))
    return found


def retried(state: dict[str, Any]) -> set[str]:
    return {error for retrier in state.get("Retry", []) for error in retrier["ErrorEquals"]}


def test_every_task_retries_every_lambda_service_error() -> None:
    tasks = [(name, state) for name, state in states(DEFINITION) if state["Type"] == "Task"]
    assert len(tasks) >= 8
    for name, state in tasks:
        assert state["Resource"] == "arn:aws:states:::lambda:invoke", name
        assert retried(state) >= LAMBDA_SERVICE_ERRORS, name


def test_every_task_retries_the_graph_errors_that_pass_with_time() -> None:
    for name, state in states(DEFINITION):
        if state["Type"] != "Task":
            continue
        assert {"GraphBusyError", "GraphUnavailableError", "ConcurrentModificationError"} <= retried(state), (
            name
        )
        busy = next(r for r in state["Retry"] if "GraphBusyError" in r["ErrorEquals"])
        # A serverless cluster that is scaling up answers "busy" for tens of seconds.
        assert busy["IntervalSeconds"] >= 5 and busy["MaxDelaySeconds"] >= 60, name
        assert busy["JitterStrategy"] == "FULL", name


def test_parallel_states_do_not_rerun_every_branch_for_one_failed_task() -> None:
    # Each branch's tasks retry their own errors; a retry of the whole Parallel state would
    # run every branch again after a branch had already used up its own retries.
    parallels = [(name, state) for name, state in states(DEFINITION) if state["Type"] == "Parallel"]
    assert parallels
    for name, state in parallels:
        assert "Retry" not in state, name
        assert state["Catch"], name  # a failed branch still ends the investigation cleanly
