"""The interpreter: runs an ASL document state by state and records the history."""

from __future__ import annotations

import copy
import json
import random
import re
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from fraudcore.execution_names import check_execution_name

from . import choice, intrinsics, paths
from .errors import DefinitionError, RuntimeStatesError, StatesError
from .history import Execution, HistoryEvent, RetryAttempt, iso
from .substitutions import apply_substitutions

Invoke = Callable[[str, Any], Any]
PutEvents = Callable[[list[dict[str, Any]]], Any]

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
EVENTS_PUT = "arn:aws:states:::events:putEvents"
REGION = "us-east-1"
ACCOUNT = "123456789012"

# arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>], the partial
# form <account>:function:<name>, or a bare name.
_FUNCTION_ARN = re.compile(
    r"^(?:arn:[\w-]+:lambda:[\w-]+:\d{12}:function:|\d{12}:function:)?([\w-]+)(?::[\w$-]+)?$"
)


def function_name(reference: str) -> str:
    """The function name in a Lambda ARN, partial ARN or name (qualifier dropped)."""
    match = _FUNCTION_ARN.match(reference)
    if not match:
        raise RuntimeStatesError(f"{reference!r} is not a Lambda function name or ARN")
    return match.group(1)


def validate_execution_name(name: str) -> None:
    check_execution_name(name)


#: Step Functions' payload size quota: a state's input (after Parameters) and output, and a
#: task's result, at most 256 KiB as a UTF-8 encoded JSON string; over it, the state fails with
#: the terminal ``States.DataLimitExceeded``, which no Retry or Catch on ``States.ALL`` handles
#: (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html,
#: https://docs.aws.amazon.com/step-functions/latest/dg/limits-overview.html)
PAYLOAD_QUOTA_BYTES = 262_144


def _within_quota(text: str, what: str) -> str:
    """``text`` (a JSON document written with ``ensure_ascii=False``, as the service measures it
    in UTF-8) if it fits the payload size quota, else States.DataLimitExceeded."""
    if len(text) * 4 > PAYLOAD_QUOTA_BYTES:  # only then can its UTF-8 exceed the quota
        size = len(text.encode("utf-8", errors="surrogatepass"))
        if size > PAYLOAD_QUOTA_BYTES:
            raise StatesError(
                "States.DataLimitExceeded",
                f"{what} has {size} bytes as UTF-8 JSON; the payload size quota is "
                f"{PAYLOAD_QUOTA_BYTES} bytes (256 KiB)",
            )
    return text


def _as_json(value: Any, what: str, *, quota: bool = False) -> Any:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise RuntimeStatesError(f"{what} is not JSON: {exc}") from None
    return json.loads(_within_quota(text, what) if quota else text)


class _Interpreter:
    """Runs one execution.

    A value is never changed in place once made: each state builds its output anew (a
    ResultPath copies only the objects along its path), so the states, the history and the
    context object share values rather than copy them. What leaves for code that may
    change it goes as a copy: a Lambda payload and the putEvents entries as JSON (which
    also checks that they are JSON), and what comes from the definition (a Pass state's
    Result, the literals of a template) is copied out of it.
    """

    def __init__(
        self,
        invoke: Invoke,
        execution: Execution,
        *,
        seed: int,
        max_transitions: int,
        put_events: PutEvents | None,
        task_time: bool = False,
    ) -> None:
        self.invoke = invoke
        self.task_time = task_time
        self.execution = execution
        self.clock = execution.start_date
        self.rng = random.Random(seed)
        self.max_transitions = max_transitions
        self.put_events = put_events

    # -- machine and state loop -------------------------------------------------------

    def run_machine(self, machine: Mapping[str, Any], data: Any, parent: str | None) -> Any:
        states = machine.get("States")
        name = machine.get("StartAt")
        if not isinstance(states, dict) or name not in states:
            where = parent or "the state machine"
            raise DefinitionError(f"{where}: StartAt {name!r} is not one of its States")
        while True:
            state = states.get(name)
            if state is None:
                raise DefinitionError(f"state {name!r} is the Next of a state but is not defined")
            data, following = self.run_state(name, state, data, parent)
            if following is None:
                return data
            name = following

    def run_state(
        self, name: str, state: Mapping[str, Any], data: Any, parent: str | None
    ) -> tuple[Any, Any]:
        if len(self.execution.history) >= self.max_transitions:
            raise RuntimeStatesError(
                f"the execution entered {self.max_transitions} states without ending (a loop with no exit?)"
            )
        kind = state.get("Type")
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            raise DefinitionError(f"state {name!r}: Type {kind!r} is not one of {sorted(_HANDLERS)}")
        event = HistoryEvent(
            index=len(self.execution.history),
            state=name,
            type=kind,
            parent=parent,
            entered_at=self.clock,
            input=data,
        )
        self.execution.history.append(event)
        started = time.perf_counter()
        try:
            output, following = handler(self, name, state, data, event)
            _within_quota(json.dumps(output, ensure_ascii=False), f"the output of state {name!r}")
            event.output, event.next = output, following
            return output, following
        except StatesError as err:
            event.error, event.cause = err.name, err.cause
            raise
        finally:
            event.duration_ms = (time.perf_counter() - started) * 1000
            if kind == "Task" and self.task_time:
                # The simulated clock runs while a task works, as long as it took here, so
                # the history's entered/exited times show each task's part of the execution.
                self.advance(event.duration_ms / 1000)
            event.exited_at = self.clock

    # -- context object and data processing -------------------------------------------

    def context(self, name: str, entered: datetime, retry_count: int = 0, item: Any = None) -> dict[str, Any]:
        execution = self.execution
        machine_arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{execution.state_machine}"
        context: dict[str, Any] = {
            "Execution": {
                "Id": f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{execution.state_machine}:{execution.name}",
                "Input": execution.input,
                "Name": execution.name,
                "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/{execution.state_machine}Role",
                "StartTime": iso(execution.start_date),
                "RedriveCount": 0,
            },
            "StateMachine": {"Id": machine_arn, "Name": execution.state_machine},
            "State": {"Name": name, "EnteredTime": iso(entered), "RetryCount": retry_count},
            "Task": {},
        }
        if item is not None:
            context["Map"] = {"Item": item}
        return context

    @staticmethod
    def input_path(state: Mapping[str, Any], data: Any, context: Any) -> Any:
        if "InputPath" not in state:
            return data
        if state["InputPath"] is None:
            return {}
        return paths.read(state["InputPath"], data, context)

    def payload_template(self, template: Any, data: Any, context: Any) -> Any:
        """Parameters / ItemSelector / ResultSelector: ``.$`` keys take paths or intrinsics."""
        if isinstance(template, dict):
            out: dict[str, Any] = {}
            for key, value in template.items():
                if key.endswith(".$"):
                    out[key[:-2]] = self.dynamic_value(key, value, data, context)
                else:
                    out[key] = self.payload_template(value, data, context)
            return out
        if isinstance(template, list):
            return [self.payload_template(value, data, context) for value in template]
        return copy.deepcopy(template)

    @staticmethod
    def dynamic_value(key: str, expression: Any, data: Any, context: Any) -> Any:
        if intrinsics.is_intrinsic(expression):
            return intrinsics.evaluate(expression, data, context)
        if paths.is_path(expression):
            return paths.read(expression, data, context)
        raise RuntimeStatesError(
            f"the value of {key!r} must be a path or an intrinsic function, not {expression!r}"
        )

    @staticmethod
    def result_path(state: Mapping[str, Any], raw: Any, result: Any, key: str = "ResultPath") -> Any:
        if key not in state:
            return result
        if state[key] is None:
            return raw
        return paths.write(state[key], raw, result)

    @staticmethod
    def output_path(state: Mapping[str, Any], value: Any, context: Any) -> Any:
        if "OutputPath" not in state:
            return value
        if state["OutputPath"] is None:
            return {}
        return paths.read(state["OutputPath"], value, context)

    @staticmethod
    def next_of(name: str, state: Mapping[str, Any]) -> str | None:
        if state.get("End") is True:
            return None
        following = state.get("Next")
        if not isinstance(following, str):
            raise DefinitionError(f"state {name!r} has neither 'Next' nor 'End': true")
        return following

    def advance(self, seconds: float) -> None:
        self.clock += timedelta(seconds=max(0.0, seconds))

    # -- Retry and Catch ----------------------------------------------------------------

    def with_retry_and_catch(
        self,
        name: str,
        state: Mapping[str, Any],
        raw: Any,
        event: HistoryEvent,
        attempt: Callable[[dict[str, Any]], Any],
    ) -> tuple[Any, str | None]:
        """Run ``attempt`` (given the context object) until it succeeds, retries run out or a Catch applies."""
        retriers = state.get("Retry") or []
        used = [0] * len(retriers)
        while True:
            context = self.context(name, event.entered_at, retry_count=len(event.retries))
            try:
                result = attempt(context)
            except StatesError as err:
                if err.terminal:
                    raise
                if self.schedule_retry(retriers, used, err, event):
                    continue
                return self.catch(name, state, raw, err, event)
            if "ResultSelector" in state:
                result = self.payload_template(state["ResultSelector"], result, context)
            output = self.result_path(state, raw, result)
            return self.output_path(state, output, context), self.next_of(name, state)

    def schedule_retry(
        self, retriers: list[Mapping[str, Any]], used: list[int], err: StatesError, event: HistoryEvent
    ) -> bool:
        for index, retrier in enumerate(retriers):
            if not _error_matches(retrier.get("ErrorEquals", []), err):
                continue
            # Only the first matching retrier counts; once exhausted, Catch decides.
            if used[index] >= retrier.get("MaxAttempts", 3):
                return False
            delay = retrier.get("IntervalSeconds", 1) * retrier.get("BackoffRate", 2.0) ** used[index]
            if "MaxDelaySeconds" in retrier:
                delay = min(delay, retrier["MaxDelaySeconds"])
            if retrier.get("JitterStrategy") == "FULL":
                delay = self.rng.uniform(0, delay)
            used[index] += 1
            self.advance(delay)
            event.retries.append(
                RetryAttempt(len(event.retries) + 1, index, err.name, err.cause, delay, self.clock)
            )
            return True
        return False

    def catch(
        self, name: str, state: Mapping[str, Any], raw: Any, err: StatesError, event: HistoryEvent
    ) -> tuple[Any, str]:
        for catcher in state.get("Catch") or []:
            if _error_matches(catcher.get("ErrorEquals", []), err):
                following = catcher.get("Next")
                if not isinstance(following, str):
                    raise DefinitionError(f"state {name!r}: a Catch has no 'Next'")
                event.error, event.cause, event.caught = err.name, err.cause, True
                error_output = {"Error": err.name, "Cause": err.cause}
                return self.result_path(catcher, raw, error_output), following
        raise err

    # -- resources ------------------------------------------------------------------------

    def call_lambda(self, reference: Any, payload: Any, event: HistoryEvent) -> Any:
        if not isinstance(reference, str):
            raise RuntimeStatesError(f"FunctionName must be a string, not {reference!r}")
        logical_id = function_name(reference)
        event.function = logical_id
        payload = _as_json(payload, "the Lambda payload", quota=True)
        try:
            result = self.invoke(logical_id, payload)
        except Exception as exc:
            error_type = type(exc).__name__
            cause = {
                "errorMessage": str(exc),
                "errorType": error_type,
                "stackTrace": traceback.format_tb(exc.__traceback__)[-5:],
            }
            raise StatesError(error_type, json.dumps(cause)) from exc
        try:
            text = json.dumps(result, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            message = f"Unable to marshal response: {exc}"
            cause = {"errorMessage": message, "errorType": "Runtime.MarshalError"}
            raise StatesError("Runtime.MarshalError", json.dumps(cause)) from None
        return json.loads(_within_quota(text, f"the result of {logical_id}"))

    def call_resource(self, name: str, resource: str, payload: Any, event: HistoryEvent) -> Any:
        if resource == LAMBDA_INVOKE:
            if not isinstance(payload, dict) or "FunctionName" not in payload:
                raise RuntimeStatesError(
                    f"state {name!r}: lambda:invoke needs Parameters with a FunctionName"
                )
            result = self.call_lambda(payload["FunctionName"], payload.get("Payload", {}), event)
            return {
                "ExecutedVersion": "$LATEST",
                "Payload": result,
                "SdkHttpMetadata": {"HttpStatusCode": 200},
                "SdkResponseMetadata": {"RequestId": str(uuid.UUID(int=self.rng.getrandbits(128)))},
                "StatusCode": 200,
            }
        if resource == EVENTS_PUT:
            return self.put(name, payload)
        if resource.startswith("arn:aws:states:::"):
            raise DefinitionError(
                f"state {name!r}: the local executor does not support the resource {resource!r}"
            )
        if ":lambda:" in resource or ":function:" in resource:
            return self.call_lambda(resource, payload, event)
        raise DefinitionError(
            f"state {name!r}: Resource {resource!r} is neither a Lambda ARN nor a known integration"
        )

    def put(self, name: str, payload: Any) -> dict[str, Any]:
        entries = payload.get("Entries") if isinstance(payload, dict) else None
        if not isinstance(entries, list) or not entries:
            raise RuntimeStatesError(
                f"state {name!r}: events:putEvents needs Parameters with a non-empty Entries list"
            )
        entries = _as_json(entries, "the event entries", quota=True)
        self.execution.published_events.extend(entries)
        if self.put_events is not None:
            self.put_events(entries)
        event_ids = [{"EventId": str(uuid.UUID(int=self.rng.getrandbits(128)))} for _ in entries]
        return {"Entries": event_ids, "FailedEntryCount": 0}

    # -- concurrency in simulated time ----------------------------------------------------

    def run_concurrently(self, jobs: list[tuple[Mapping[str, Any], Any, str]], sequential: bool) -> list[Any]:
        """Run branches/iterations; in simulated time they start together and the slowest ends last."""
        start, ends, results = self.clock, [], []
        for machine, data, parent in jobs:
            if not sequential:
                self.clock = start
            results.append(self.run_machine(machine, data, parent))
            ends.append(self.clock)
        self.clock = max(ends, default=start)
        return results


def _error_matches(names: list[str], err: StatesError) -> bool:
    for name in names:
        if name == err.name or name == "States.ALL":
            return True
        if name == "States.TaskFailed" and err.name != "States.Timeout":
            return True
    return False


# -- state types -------------------------------------------------------------------------------


def _task(run: _Interpreter, name: str, state: Mapping[str, Any], raw: Any, event: HistoryEvent) -> Any:
    resource = state.get("Resource")
    if not isinstance(resource, str):
        raise DefinitionError(f"state {name!r}: a Task needs a 'Resource'")

    def attempt(context: dict[str, Any]) -> Any:
        data = run.input_path(state, raw, context)
        if "Parameters" in state:
            data = run.payload_template(state["Parameters"], data, context)
        return run.call_resource(name, resource, data, event)

    return run.with_retry_and_catch(name, state, raw, event, attempt)


def _pass(run: _Interpreter, name: str, state: Mapping[str, Any], raw: Any, event: HistoryEvent) -> Any:
    context = run.context(name, event.entered_at)
    data = run.input_path(state, raw, context)
    if "Result" in state:
        result = copy.deepcopy(state["Result"])
    elif "Parameters" in state:
        result = run.payload_template(state["Parameters"], data, context)
    else:
        result = data
    output = run.result_path(state, raw, result)
    return run.output_path(state, output, context), run.next_of(name, state)


def _choice(run: _Interpreter, name: str, state: Mapping[str, Any], raw: Any, event: HistoryEvent) -> Any:
    context = run.context(name, event.entered_at)
    data = run.input_path(state, raw, context)
    following = state.get("Default")
    rules = state.get("Choices") or []
    for index, rule in enumerate(rules):
        if choice.evaluate(rule, data, context, f"state {name!r}"):
            following = rule.get("Next")
            if not isinstance(following, str):
                raise DefinitionError(f"state {name!r}: a top-level choice rule needs a 'Next'")
            event.choice = {"rule": index, "next": following, "values": choice.variables(rule, data, context)}
            break
    else:
        if following is None:
            raise StatesError(
                "States.NoChoiceMatched", f"no choice rule of state {name!r} matched and it has no Default"
            )
        values: dict[str, Any] = {}
        for rule in rules:
            values.update(choice.variables(rule, data, context))
        event.choice = {"rule": "Default", "next": following, "values": values}
    return run.output_path(state, data, context), following


def _wait(run: _Interpreter, name: str, state: Mapping[str, Any], raw: Any, event: HistoryEvent) -> Any:
    context = run.context(name, event.entered_at)
    data = run.input_path(state, raw, context)
    if "Seconds" in state or "SecondsPath" in state:
        seconds = state["Seconds"] if "Seconds" in state else paths.read(state["SecondsPath"], data, context)
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise RuntimeStatesError(f"state {name!r}: wait seconds must be a number >= 0, not {seconds!r}")
        run.advance(seconds)
    elif "Timestamp" in state or "TimestampPath" in state:
        text = (
            state["Timestamp"] if "Timestamp" in state else paths.read(state["TimestampPath"], data, context)
        )
        moment = choice.parse_timestamp(text)
        if moment is None:
            raise RuntimeStatesError(f"state {name!r}: {text!r} is not an RFC 3339 timestamp with a zone")
        run.advance((moment - run.clock).total_seconds())
    else:
        raise DefinitionError(
            f"state {name!r}: a Wait needs Seconds, SecondsPath, Timestamp or TimestampPath"
        )
    return run.output_path(state, data, context), run.next_of(name, state)


def _succeed(run: _Interpreter, name: str, state: Mapping[str, Any], raw: Any, event: HistoryEvent) -> Any:
    context = run.context(name, event.entered_at)
    return run.output_path(state, run.input_path(state, raw, context), context), None


def _fail(run: _Interpreter, name: str, state: Mapping[str, Any], raw: Any, event: HistoryEvent) -> Any:
    context = run.context(name, event.entered_at)

    def field(key: str) -> str:
        if f"{key}Path" in state:
            value = run.dynamic_value(f"{key}Path", state[f"{key}Path"], raw, context)
            return value if isinstance(value, str) else json.dumps(value)
        return str(state.get(key, ""))

    raise StatesError(field("Error"), field("Cause"))


def _parallel(run: _Interpreter, name: str, state: Mapping[str, Any], raw: Any, event: HistoryEvent) -> Any:
    branches = state.get("Branches")
    if not isinstance(branches, list) or not branches:
        raise DefinitionError(f"state {name!r}: a Parallel needs a non-empty 'Branches' list")
    prefix = f"{event.parent}/{name}" if event.parent else name

    def attempt(context: dict[str, Any]) -> Any:
        data = run.input_path(state, raw, context)
        if "Parameters" in state:
            data = run.payload_template(state["Parameters"], data, context)
        jobs = [(branch, data, f"{prefix}/branch {i}") for i, branch in enumerate(branches)]
        return run.run_concurrently(jobs, sequential=False)

    return run.with_retry_and_catch(name, state, raw, event, attempt)


def _map(run: _Interpreter, name: str, state: Mapping[str, Any], raw: Any, event: HistoryEvent) -> Any:
    processor = state.get("ItemProcessor") or state.get("Iterator")
    if not isinstance(processor, dict):
        raise DefinitionError(f"state {name!r}: a Map needs an 'ItemProcessor' (or 'Iterator')")
    if "ItemReader" in state or processor.get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED":
        raise DefinitionError(
            f"state {name!r}: distributed Map (ItemReader, DISTRIBUTED mode) is not supported locally"
        )
    selector = state.get("ItemSelector", state.get("Parameters"))
    prefix = f"{event.parent}/{name}" if event.parent else name

    def attempt(context: dict[str, Any]) -> Any:
        data = run.input_path(state, raw, context)
        items = paths.read(state.get("ItemsPath", "$"), data, context)
        if not isinstance(items, list):
            raise RuntimeStatesError(
                f"state {name!r}: ItemsPath must select an array, not {type(items).__name__}"
            )
        jobs = []
        for index, value in enumerate(items):
            item_input = value
            if selector is not None:
                item_context = run.context(name, event.entered_at, item={"Index": index, "Value": value})
                item_input = run.payload_template(selector, data, item_context)
            jobs.append((processor, item_input, f"{prefix}/item {index}"))
        return run.run_concurrently(jobs, sequential=state.get("MaxConcurrency") == 1)

    return run.with_retry_and_catch(name, state, raw, event, attempt)


_HANDLERS: dict[str, Callable[..., tuple[Any, str | None]]] = {
    "Task": _task,
    "Pass": _pass,
    "Choice": _choice,
    "Wait": _wait,
    "Succeed": _succeed,
    "Fail": _fail,
    "Parallel": _parallel,
    "Map": _map,
}


def execute(
    definition: Mapping[str, Any],
    input: Any,
    invoke: Invoke,
    *,
    name: str,
    state_machine_name: str = "StateMachine",
    substitutions: Mapping[str, str] | None = None,
    start_time: datetime | None = None,
    put_events: PutEvents | None = None,
    seed: int = 0,
    max_transitions: int = 25_000,
    task_time: bool = False,
) -> Execution:
    """Run ``definition`` on ``input`` and return the finished execution.

    ``invoke(function, payload)`` runs a Lambda task: ``function`` is the function name
    taken from the task's ARN or FunctionName (the logical id when the definition came
    through :func:`fraudlocal.emulators.asl.run_state_machine`). A Python exception it raises becomes
    the ASL error named after the exception class. ``substitutions`` fills ``${Name}``
    placeholders first. ``start_time`` starts the simulated clock (default: now, UTC);
    ``seed`` makes jittered retry delays and generated ids reproducible. With ``task_time``
    the simulated clock also runs while a Task works, as long as it took here (so each
    state's entered/exited times show its part of the execution); without it only Wait
    states and retry intervals move the clock, which keeps the history reproducible.
    ``put_events`` also receives the entries of ``events:putEvents`` tasks, which are
    always kept on ``Execution.published_events``.

    Errors in the workflow end in ``status == "FAILED"``; a definition this executor
    cannot run raises :class:`DefinitionError` instead.
    """
    validate_execution_name(name)
    if substitutions is not None:
        definition = apply_substitutions(definition, substitutions)
    start = (start_time or datetime.now(UTC)).astimezone(UTC)
    execution = Execution(
        name=name,
        state_machine=state_machine_name,
        status="RUNNING",
        input=_as_json(input, "the execution input"),
        start_date=start,
        stop_date=start,
    )
    run = _Interpreter(
        invoke,
        execution,
        seed=seed,
        max_transitions=max_transitions,
        put_events=put_events,
        task_time=task_time,
    )
    try:
        execution.output = run.run_machine(definition, execution.input, None)
        execution.status = "SUCCEEDED"
    except StatesError as err:
        execution.status = "FAILED"
        execution.error, execution.cause = err.name or None, err.cause or None
    execution.stop_date = run.clock
    return execution
