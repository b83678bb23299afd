"""The local ASL executor on small state machines (tests/fixtures/asl/)."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fraudlocal.emulators.asl import (
    DefinitionError,
    RuntimeStatesError,
    choice,
    execute,
    function_name,
    paths,
    validate_execution_name,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "asl"
START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def definition(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.asl.json").read_text())


def error_class(name: str) -> type[Exception]:
    """An exception class whose name is an AWS error name such as ``Lambda.ServiceException``."""
    return type(name, (Exception,), {})


class Functions:
    """Handlers by logical id, with a log of every call, as ``invoke`` for the executor."""

    def __init__(self, **handlers: Callable[[Any], Any]) -> None:
        self.handlers = handlers
        self.calls: list[tuple[str, Any]] = []

    def __call__(self, logical_id: str, payload: Any) -> Any:
        self.calls.append((logical_id, payload))
        return self.handlers[logical_id](payload)


def run(name: str, data: Any, invoke: Callable[[str, Any], Any] | None = None, **options: Any):
    return execute(
        definition(name), data, invoke or Functions(), name="test-run", start_time=START, **options
    )


# -- Choice -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "route"),
    [
        ({"entity_type": "account", "amount": 5000, "threshold": 5000}, "High value"),
        ({"entity_type": "account", "amount": 4999.5, "threshold": 5000, "manual": True}, "Manual"),
        ({"entity_type": "account", "rule": "high_value_burst", "manual": False}, "Burst"),
        ({"entity_type": "account", "rule": "burst_high_value", "manual": False}, "Nothing to do"),
        ({"entity_type": "ip", "manual": False}, "Shared device"),
        ({"entity_type": "card", "reviewed_at": "2023-12-31T23:59:59+00:00", "manual": False}, "Stale"),
        ({"entity_type": "card", "reviewed_at": "2024-01-01T00:00:00Z", "manual": False}, "Nothing to do"),
        ({"entity_type": "card"}, "Unknown"),
        ({"entity_type": "card", "manual": None}, "Manual null"),
        ({"entity_type": "card", "manual": "yes"}, "Nothing to do"),  # BooleanEquals on a string is false
        ({"entity_type": "account", "amount": "9999", "threshold": 5000, "manual": False}, "Nothing to do"),
    ],
)
def test_choice_routes_each_flag_to_its_state(flag: dict[str, Any], route: str) -> None:
    execution = run("choice", flag)

    assert execution.status == "SUCCEEDED"
    assert [event.state for event in execution.history] == ["Route flag", route]
    assert execution.event("Route flag").next == route


def test_choice_on_a_missing_variable_fails_with_states_runtime() -> None:
    execution = run("choice", {"entity_type": "account", "amount": 10})  # threshold missing

    assert execution.status == "FAILED"
    assert execution.error == "States.Runtime"
    assert "$.threshold" in execution.cause


def test_choice_without_match_or_default_fails() -> None:
    machine = {
        "StartAt": "Pick",
        "States": {
            "Pick": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": 1, "Next": "One"}]},
            "One": {"Type": "Succeed"},
        },
    }
    execution = execute(machine, {"x": 2}, Functions(), name="no-match")

    assert (execution.status, execution.error) == ("FAILED", "States.NoChoiceMatched")
    assert "Pick" in execution.cause


# -- Parallel and Map ---------------------------------------------------------------------------


def test_parallel_keeps_branch_order_and_ends_with_its_slowest_branch() -> None:
    functions = Functions(
        RingAnalysisFunction=lambda event: {"analysis": "ring", "members": ["a1", "a2"]},
        MoneyFlowAnalysisFunction=lambda event: {"analysis": "money_flow", "cycles": 1},
    )
    execution = run("parallel", {"entity_id": "a1"}, functions)

    assert execution.status == "SUCCEEDED"
    assert execution.output == {
        "entity_id": "a1",
        "analyses": [
            {"analysis": "ring", "members": ["a1", "a2"]},
            {"analysis": "money_flow", "cycles": 1},
            {"analysis": "constant"},
        ],
    }
    assert sorted(name for name, _ in functions.calls) == [
        "MoneyFlowAnalysisFunction",
        "RingAnalysisFunction",
    ]
    # Branches start together in simulated time: the Parallel lasts as long as its 30 s branch.
    parallel = execution.event("Run analyses")
    assert parallel.simulated_seconds == 30
    assert execution.event("Money flow analysis").entered_at == START
    assert execution.event("Ring analysis").entered_at == START + timedelta(seconds=30)
    assert execution.event("Constant").parent == "Run analyses/branch 2"
    assert execution.stop_date == START + timedelta(seconds=30)


def test_parallel_branch_failure_fails_the_parallel_state() -> None:
    def broken(event: Any) -> Any:
        raise KeyError("members")

    functions = Functions(RingAnalysisFunction=broken, MoneyFlowAnalysisFunction=lambda event: {})
    execution = run("parallel", {}, functions)

    assert (execution.status, execution.error) == ("FAILED", "KeyError")
    assert execution.event("Run analyses").error == "KeyError"
    assert execution.event("Ring analysis").function == "RingAnalysisFunction"


def test_map_runs_each_item_with_the_item_selector_and_context() -> None:
    functions = Functions(
        ScoreFunction=lambda event: {**event, "score": len(event["account_id"]), "wait": 10}
    )
    execution = run("map", {"case_id": "case-1", "members": ["a1", "acct-22", "b"]}, functions)

    assert execution.status == "SUCCEEDED"
    assert [payload for _, payload in functions.calls] == [
        {"account_id": "a1", "position": 0, "case": "case-1", "execution": "test-run"},
        {"account_id": "acct-22", "position": 1, "case": "case-1", "execution": "test-run"},
        {"account_id": "b", "position": 2, "case": "case-1", "execution": "test-run"},
    ]
    assert [score["score"] for score in execution.output["scores"]] == [2, 7, 1]
    assert execution.output["members"] == ["a1", "acct-22", "b"]
    assert [event.parent for event in execution.events("Score member")] == [
        "Score members/item 0",
        "Score members/item 1",
        "Score members/item 2",
    ]
    # The Lambda ARN had a qualifier: the function is still found by its name.
    assert {name for name, _ in functions.calls} == {"ScoreFunction"}
    # Iterations run concurrently in simulated time: 10 s in all, not 30 s.
    assert execution.event("Score members").simulated_seconds == 10


def test_map_with_max_concurrency_one_runs_items_one_after_another() -> None:
    machine = definition("map")
    machine["States"]["Score members"]["MaxConcurrency"] = 1
    functions = Functions(ScoreFunction=lambda event: {"wait": 10})
    execution = execute(
        machine, {"case_id": "c", "members": ["a", "b", "c"]}, functions, name="seq", start_time=START
    )

    assert execution.event("Score members").simulated_seconds == 30


def test_map_over_something_that_is_not_an_array_fails() -> None:
    execution = run("map", {"case_id": "c", "members": "a1"})

    assert (execution.status, execution.error) == ("FAILED", "States.Runtime")
    assert "ItemsPath" in execution.cause


# -- Retry and Catch ---------------------------------------------------------------------------


def flaky(failures: list[type[Exception]], result: Any) -> Callable[[Any], Any]:
    """A handler that raises each of ``failures`` once, in order, then returns ``result``."""
    remaining = list(failures)

    def handler(event: Any) -> Any:
        if remaining:
            raise remaining.pop(0)("transient failure")
        return result

    return handler


def test_retry_on_transient_lambda_errors_then_success_advances_the_simulated_clock() -> None:
    service, throttled = (
        error_class("Lambda.ServiceException"),
        error_class("Lambda.TooManyRequestsException"),
    )
    functions = Functions(FlagEntityFunction=flaky([service, throttled, service], {"flagged": True}))
    execution = run("retry", {"entity_type": "account", "entity_id": "a1"}, functions)

    assert execution.status == "SUCCEEDED"
    assert execution.output["flagged"] == {"flag": {"flagged": True}}
    event = execution.event("Flag entity")
    assert event.attempts == 4
    assert [r.error for r in event.retries] == [
        "Lambda.ServiceException",
        "Lambda.TooManyRequestsException",
        "Lambda.ServiceException",
    ]
    # IntervalSeconds 2, BackoffRate 3: waits of 2, 6 and 18 simulated seconds.
    assert [r.delay_seconds for r in event.retries] == [2, 6, 18]
    assert event.simulated_seconds == 26
    assert execution.stop_date - execution.start_date == timedelta(seconds=26)
    # The context object's RetryCount counts the retries of the state.
    assert [payload["retry"] for _, payload in functions.calls] == [0, 1, 2, 3]


def test_max_delay_caps_the_backoff() -> None:
    conflict = error_class("ConcurrentModificationException")
    functions = Functions(FlagEntityFunction=flaky([conflict] * 4, {"flagged": True}))
    execution = run("retry", {"entity_type": "account", "entity_id": "a1"}, functions)

    assert execution.status == "SUCCEEDED"
    assert [r.delay_seconds for r in execution.event("Flag entity").retries] == [1, 2, 3, 3]


def test_retries_exhausted_go_to_catch_and_the_fail_state_gives_a_readable_cause() -> None:
    service = error_class("Lambda.ServiceException")
    functions = Functions(FlagEntityFunction=flaky([service] * 10, {"flagged": True}))
    execution = run("retry", {"entity_type": "account", "entity_id": "a1"}, functions)

    assert execution.status == "FAILED"
    assert execution.error == "InvestigationFailed"
    assert execution.cause == "Could not flag account a1: Lambda.ServiceException"
    flag = execution.event("Flag entity")
    assert flag.attempts == 4  # MaxAttempts 3 retries after the first try
    assert (flag.error, flag.caught, flag.next) == ("Lambda.ServiceException", True, "Investigation failed")
    # Catch's ResultPath put the error output next to the original input.
    failed_input = execution.event("Investigation failed").input
    assert failed_input["entity_id"] == "a1"
    assert failed_input["failure"]["Error"] == "Lambda.ServiceException"
    cause = json.loads(failed_input["failure"]["Cause"])
    assert (cause["errorType"], cause["errorMessage"]) == ("Lambda.ServiceException", "transient failure")


def test_a_handler_bug_is_not_retried_and_is_reported_like_lambda_does() -> None:
    def bug(event: Any) -> Any:
        raise ValueError(f"entity_id {event['flag']['entity_id']!r} is not an account id")

    execution = run("retry", {"entity_type": "account", "entity_id": "??"}, Functions(FlagEntityFunction=bug))

    flag = execution.event("Flag entity")
    assert flag.attempts == 1  # the States.ALL retrier has MaxAttempts 0
    assert flag.error == "ValueError"
    assert json.loads(flag.cause)["errorMessage"] == "entity_id '??' is not an account id"
    assert execution.cause == "Could not flag account ??: ValueError"


def test_jitter_is_recorded_within_the_backoff_and_reproducible() -> None:
    machine = definition("retry")
    machine["States"]["Flag entity"]["Retry"][0]["JitterStrategy"] = "FULL"
    service = error_class("Lambda.ServiceException")

    def delays(seed: int) -> list[float]:
        functions = Functions(FlagEntityFunction=flaky([service] * 3, {}))
        execution = execute(machine, {}, functions, name="jitter", start_time=START, seed=seed)
        return [r.delay_seconds for r in execution.event("Flag entity").retries]

    first = delays(seed=7)
    assert first == delays(seed=7)
    assert all(0 <= delay <= cap for delay, cap in zip(first, [2, 6, 18], strict=True))
    assert first != [2, 6, 18]


def test_unserialisable_handler_result_is_a_marshal_error() -> None:
    execution = run(
        "retry", {"entity_type": "a", "entity_id": "b"}, Functions(FlagEntityFunction=lambda e: {1, 2})
    )

    assert execution.event("Flag entity").error == "Runtime.MarshalError"
    assert execution.error == "InvestigationFailed"


# -- data flow ----------------------------------------------------------------------------------


def test_input_parameters_result_and_output_paths() -> None:
    flag = {
        "entity_type": "account",
        "entity_id": "a1",
        "reasons": [{"code": "high_value_burst"}, {"code": "velocity"}],
    }
    execution = run("data_flow", {"flag": flag, "keep": 1})

    selected = {
        "entity": "account:a1",
        "reasons": ["high_value_burst", "velocity"],
        "first_reason": "high_value_burst",
        "static": {"nested": True},
        "list": [1, {"execution": "test-run"}],
        "state": "Select entity",
        "original": "a1",
    }
    assert execution.event("Select entity").output == {"flag": flag, "keep": 1, "selected": selected}
    # ResultPath null: the state's output is its input, the result is dropped.
    assert execution.event("Keep input").output == execution.event("Keep input").input
    # ResultPath into missing objects creates them.
    assert execution.event("Deep result").output["analysis"] == {"ring": {"score": 42}}
    # OutputPath keeps only the selection.
    assert execution.event("Only selection").output == selected
    # InputPath null: Parameters see an empty input; the result lands at ResultPath.
    assert execution.output == {**selected, "parameters": {"empty_input": True}}


def test_a_handler_changing_its_event_changes_nothing_the_execution_recorded() -> None:
    """States share the data flowing between them instead of copying it: what a handler
    gets is its own copy, so changing it in place leaves the history, the other branches
    and the execution's input as they were."""
    lambda_task = {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:Meddle"}
    machine = {
        "StartAt": "Mark",
        "States": {
            "Mark": {"Type": "Pass", "Result": {"seen": []}, "ResultPath": "$.marks.first", "Next": "Both"},
            "Both": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Left", "States": {"Left": {**lambda_task, "End": True}}},
                    {"StartAt": "Right", "States": {"Right": {**lambda_task, "End": True}}},
                ],
                "ResultPath": "$.branches",
                "End": True,
            },
        },
    }

    def meddle(event: dict[str, Any]) -> dict[str, Any]:
        event["flag"]["entity_id"] = "changed"
        event["marks"]["first"]["seen"].append("handler")
        event["added"] = True
        return event

    flag = {"entity_type": "account", "entity_id": "a1"}
    execution = execute(machine, {"flag": flag}, Functions(Meddle=meddle), name="meddle", start_time=START)

    assert execution.succeeded
    assert flag == {"entity_type": "account", "entity_id": "a1"}
    assert execution.input == {"flag": flag}
    before = {"flag": flag, "marks": {"first": {"seen": []}}}
    assert execution.event("Mark").output == before
    assert execution.event("Left").input == before
    assert execution.event("Right").input == before  # not what the left branch's handler made of it
    changed = {
        "flag": {**flag, "entity_id": "changed"},
        "marks": {"first": {"seen": ["handler"]}},
        "added": True,
    }
    assert execution.output == {**before, "branches": [changed, changed]}
    assert machine["States"]["Mark"]["Result"] == {"seen": []}  # the definition's literal too


def test_missing_input_path_is_a_runtime_error_that_catch_all_does_not_catch() -> None:
    machine = {
        "StartAt": "Pick",
        "States": {
            "Pick": {
                "Type": "Task",
                "Resource": "arn:aws:lambda:us-east-1:123456789012:function:F",
                "InputPath": "$.missing",
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Recovered"}],
                "End": True,
            },
            "Recovered": {"Type": "Succeed"},
        },
    }
    functions = Functions(F=lambda event: event)
    execution = execute(machine, {"present": 1}, functions, name="runtime")

    assert (execution.status, execution.error) == ("FAILED", "States.Runtime")
    assert "$.missing" in execution.cause
    assert functions.calls == []


def _catch_all_task(resource_name: str = "F", **fields: Any) -> dict[str, Any]:
    return {
        "StartAt": "Work",
        "States": {
            "Work": {
                "Type": "Task",
                "Resource": f"arn:aws:lambda:us-east-1:123456789012:function:{resource_name}",
                "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Recovered"}],
                **fields,
                "End": True,
            },
            "Recovered": {"Type": "Succeed"},
        },
    }


#: a string whose JSON (with its quotes) is exactly the 256 KiB payload quota, in 2-byte characters
AT_QUOTA = "é" * ((262_144 - 2) // 2)


def test_a_task_result_over_256_kib_fails_the_execution_past_retry_and_catch_on_states_all() -> None:
    functions = Functions(F=lambda event: AT_QUOTA + "x")  # 262,145 bytes of UTF-8 JSON
    execution = execute(_catch_all_task(), {}, functions, name="too-big")

    assert (execution.status, execution.error) == ("FAILED", "States.DataLimitExceeded")
    assert "the result of F has 262145 bytes" in execution.cause and "262144" in execution.cause
    assert len(functions.calls) == 1  # not retried


def test_a_payload_of_exactly_256_kib_passes() -> None:
    execution = execute(_catch_all_task(), AT_QUOTA, Functions(F=lambda event: event), name="at-quota")

    assert execution.status == "SUCCEEDED" and execution.output == AT_QUOTA


def test_a_state_input_over_256_kib_after_parameters_fails_before_the_task_runs() -> None:
    functions = Functions(F=lambda event: "ok")
    machine = _catch_all_task(Parameters={"twice.$": "States.Array($.text, $.text)"})
    execution = execute(machine, {"text": "a" * 140_000}, functions, name="big-input")

    assert (execution.status, execution.error) == ("FAILED", "States.DataLimitExceeded")
    assert "the Lambda payload" in execution.cause
    assert functions.calls == []


def test_a_state_output_over_256_kib_fails_the_execution() -> None:
    machine = {
        "StartAt": "Grow",
        "States": {
            "Grow": {
                "Type": "Pass",
                "Parameters": {"twice.$": "States.Array($.text, $.text)"},
                "End": True,
            }
        },
    }
    execution = execute(machine, {"text": "a" * 140_000}, Functions(), name="big-output")

    assert (execution.status, execution.error) == ("FAILED", "States.DataLimitExceeded")
    assert "the output of state 'Grow'" in execution.cause


def test_intrinsic_functions() -> None:
    data = {
        "case_id": "case-7",
        "members": ["acct-1", "acct-2", "acct-3"],
        "evidence_json": '{"shared": ["device:d1"], "degree": 3}',
        "weights": {"ring": 0.5, "flow": 0.3},
        "overrides": {"flow": 0.4},
        "duplicates": [1, 2, 1, "x", "x"],
        "count": 10,
    }
    execution = run("intrinsics", data)

    assert execution.status == "SUCCEEDED", execution.cause
    out = execution.output
    assert out["format"] == "Case case-7 has 3 members, escaped {} and 'quotes'"
    assert out["parsed"] == {"shared": ["device:d1"], "degree": 3}
    assert out["serialized"] == '{"ring":0.5,"flow":0.3}'
    assert out["array"] == ["case-7", 7, True, None]
    assert (out["length"], out["second"], out["contains"]) == (3, "acct-2", True)
    assert out["unique"] == [1, 2, "x"]
    assert out["partition"] == [["acct-1", "acct-2"], ["acct-3"]]
    assert out["range"] == [1, 5, 9]
    assert out["hash"] == hashlib.sha256(b"case-7").hexdigest()
    assert out["sum"] == 7
    assert out["merged"] == {"ring": 0.5, "flow": 0.4}
    assert out["split"] == ["a", "b", "c"]
    assert (out["encoded"], out["decoded"]) == ("Y2FzZS03", "case-7")
    assert len(out["uuid"]) == 36 and out["uuid"].count("-") == 4
    assert out["name"] == "StateMachine/test-run"


def test_intrinsic_failure_names_the_function() -> None:
    machine = {
        "StartAt": "Parse",
        "States": {
            "Parse": {"Type": "Pass", "Parameters": {"x.$": "States.StringToJson($.text)"}, "End": True}
        },
    }
    execution = execute(machine, {"text": "{not json"}, Functions(), name="bad-json")

    assert (execution.status, execution.error) == ("FAILED", "States.IntrinsicFailure")
    assert "States.StringToJson" in execution.cause


# -- Wait and the simulated clock ---------------------------------------------------------------


def test_wait_states_advance_the_simulated_clock() -> None:
    execution = run("wait", {"cooldown_seconds": 240, "resume_at": "2024-05-01T12:30:00+00:00"})

    assert execution.status == "SUCCEEDED"
    entered = {event.state: event.entered_at for event in execution.history}
    assert entered["From input"] == START + timedelta(seconds=60)
    assert entered["Until"] == START + timedelta(seconds=300)
    assert entered["Until input"] == START + timedelta(minutes=10)
    assert entered["Already past"] == START + timedelta(minutes=30)
    assert execution.stop_date == START + timedelta(minutes=30)  # a past timestamp does not wait


def test_wait_with_a_bad_timestamp_fails() -> None:
    execution = run("wait", {"cooldown_seconds": 1, "resume_at": "next tuesday"})

    assert (execution.status, execution.error) == ("FAILED", "States.Runtime")
    assert "next tuesday" in execution.cause


# -- Fail, history, names -----------------------------------------------------------------------


def test_fail_state_with_error_path_and_cause_path() -> None:
    machine = {
        "StartAt": "Stop",
        "States": {"Stop": {"Type": "Fail", "ErrorPath": "$.code", "CausePath": "$.why"}},
    }
    execution = execute(machine, {"code": "CaseRejected", "why": "no members"}, Functions(), name="fail")

    assert (execution.status, execution.error, execution.cause) == ("FAILED", "CaseRejected", "no members")
    assert execution.event("Stop").error == "CaseRejected"


def test_history_serialises_to_json_with_simulated_timestamps() -> None:
    execution = run("wait", {"cooldown_seconds": 0, "resume_at": "2024-05-01T12:10:00Z"})
    record = json.loads(json.dumps(execution.to_dict()))

    assert record["status"] == "SUCCEEDED"
    assert record["history"][0]["entered_at"] == "2024-05-01T12:00:00.000Z"
    assert record["history"][0]["exited_at"] == "2024-05-01T12:01:00.000Z"
    assert [event["state"] for event in record["history"]] == [
        "Fixed",
        "From input",
        "Until",
        "Until input",
        "Already past",
    ]
    assert all(event["duration_ms"] >= 0 for event in record["history"])


def test_an_endless_loop_is_stopped() -> None:
    machine = {"StartAt": "Again", "States": {"Again": {"Type": "Pass", "Next": "Again"}}}
    execution = execute(machine, {}, Functions(), name="loop", max_transitions=50)

    assert (execution.status, execution.error) == ("FAILED", "States.Runtime")
    assert len(execution.history) == 50


def test_definition_errors_name_the_state() -> None:
    machine = {"StartAt": "Start", "States": {"Start": {"Type": "Pass", "Next": "Nowhere"}}}
    with pytest.raises(DefinitionError, match="Nowhere"):
        execute(machine, {}, Functions(), name="broken")
    unsupported = {
        "StartAt": "Q",
        "States": {"Q": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage", "End": True}},
    }
    with pytest.raises(DefinitionError, match="sqs:sendMessage"):
        execute(unsupported, {}, Functions(), name="unsupported")


@pytest.mark.parametrize("name", ["", "has space", "a/b", "x" * 81, "rule:entity"])
def test_execution_names_follow_step_functions_rules(name: str) -> None:
    with pytest.raises(ValueError, match="execution name"):
        validate_execution_name(name)


def test_execution_name_rule_accepts_derived_names() -> None:
    validate_execution_name("high_value_burst-account-a1-20240501T1200")


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("arn:aws:lambda:us-east-1:123456789012:function:FlagEntityFunction", "FlagEntityFunction"),
        ("arn:aws:lambda:us-east-1:123456789012:function:FlagEntityFunction:live", "FlagEntityFunction"),
        ("123456789012:function:FlagEntityFunction", "FlagEntityFunction"),
        ("FlagEntityFunction", "FlagEntityFunction"),
    ],
)
def test_function_name_from_arn_forms(reference: str, expected: str) -> None:
    assert function_name(reference) == expected


# -- every comparison operator ------------------------------------------------------------------

OPERATOR_DATA = {
    "name": "acct-1",
    "other": "acct-2",
    "amount": 250.5,
    "limit": 100,
    "on": True,
    "at": "2024-05-01T12:00:00Z",
    "later": "2024-05-01T13:00:00+01:00",  # the same instant in another zone
    "nothing": None,
}


@pytest.mark.parametrize(
    ("rule", "holds"),
    [
        ({"StringEquals": "acct-1"}, True),
        ({"StringEqualsPath": "$.other"}, False),
        ({"StringLessThanPath": "$.other"}, True),
        ({"StringGreaterThan": "acct-0"}, True),
        ({"StringLessThanEquals": "acct-1"}, True),
        ({"StringGreaterThanEquals": "acct-10"}, False),
        ({"StringMatches": "acct-*"}, True),
        ({"StringMatches": "acct\\*"}, False),
        ({"IsString": True}, True),
        ({"IsNumeric": True}, False),
        ({"IsPresent": False}, False),
    ],
)
def test_string_and_type_operators(rule: dict[str, Any], holds: bool) -> None:
    assert choice.evaluate({"Variable": "$.name", **rule}, OPERATOR_DATA, {}, "test") is holds


@pytest.mark.parametrize(
    ("variable", "rule", "holds"),
    [
        ("$.amount", {"NumericGreaterThanPath": "$.limit"}, True),
        ("$.amount", {"NumericEquals": 250.5}, True),
        ("$.amount", {"NumericLessThan": 250.5}, False),
        ("$.amount", {"NumericLessThanEqualsPath": "$.limit"}, False),
        ("$.limit", {"NumericGreaterThanEquals": 100}, True),
        ("$.on", {"NumericEquals": 1}, False),  # a boolean is not a number
        ("$.on", {"BooleanEqualsPath": "$.on"}, True),
        ("$.on", {"IsBoolean": True}, True),
        ("$.at", {"TimestampEqualsPath": "$.later"}, True),
        ("$.at", {"TimestampGreaterThan": "2024-05-01T11:59:59Z"}, True),
        ("$.at", {"TimestampLessThanEquals": "2024-05-01T12:00:00Z"}, True),
        ("$.at", {"TimestampGreaterThanEquals": "2024-06-01T00:00:00Z"}, False),
        ("$.at", {"IsTimestamp": True}, True),
        ("$.name", {"IsTimestamp": True}, False),
        ("$.nothing", {"IsNull": True}, True),
        ("$.absent", {"IsPresent": False}, True),
    ],
)
def test_numeric_boolean_timestamp_operators(variable: str, rule: dict[str, Any], holds: bool) -> None:
    assert choice.evaluate({"Variable": variable, **rule}, OPERATOR_DATA, {}, "test") is holds


# -- JSONPath ----------------------------------------------------------------------------------

PATH_DATA = {"ring": {"members": [{"id": "a1", "flagged": True}, {"id": "a2"}, {"id": "a3"}]}, "odd key": 1}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("$", PATH_DATA),
        ("$.ring.members[1].id", "a2"),
        ("$.ring.members[-1].id", "a3"),
        ("$['odd key']", 1),
        ("$.ring['members'][0]['flagged']", True),
        ("$.ring.members[*].id", ["a1", "a2", "a3"]),
        ("$.ring.members[0:2].id", ["a1", "a2"]),
        ("$.ring.members[*].flagged", [True]),
        ("$.ring.*", [PATH_DATA["ring"]["members"]]),
    ],
)
def test_paths_read(path: str, value: Any) -> None:
    assert paths.read(path, PATH_DATA) == value


@pytest.mark.parametrize(
    "path", ["ring", "$..id", "$.ring.members[?(@.flagged)]", "$.ring[", "$.ring.members[x]"]
)
def test_unsupported_or_malformed_paths_name_the_path(path: str) -> None:
    with pytest.raises(RuntimeStatesError, match="Invalid JSONPath"):
        paths.read(path, PATH_DATA)


def test_paths_write_copies_and_refuses_to_step_into_scalars() -> None:
    before = copy.deepcopy(PATH_DATA)
    updated = paths.write("$.ring.members[0].score", PATH_DATA, 0.9)

    assert updated["ring"]["members"][0] == {"id": "a1", "flagged": True, "score": 0.9}
    assert updated["ring"]["members"][1:] == before["ring"]["members"][1:]
    assert before == PATH_DATA  # at every level: only copies along the path were written
    created = paths.write("$.ring.new.deeper", PATH_DATA, [1])
    assert created["ring"]["new"] == {"deeper": [1]} and before == PATH_DATA
    with pytest.raises(RuntimeStatesError, match="ResultPath"):
        paths.write("$['odd key'].x", {"odd key": 1}, 2)
    with pytest.raises(RuntimeStatesError, match="ResultPath"):
        paths.write("$.x", "a string input", 2)
