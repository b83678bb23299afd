"""What an execution leaves behind: its status, output and the history of its states."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fraudcore.timeutil import iso_z


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return iso_z(moment, "milliseconds")


@dataclass
class RetryAttempt:
    """One retry of a state: the error that caused it and the (simulated) wait before it."""

    attempt: int  # 1 for the first retry
    retrier: int  # index of the matching entry of the state's Retry list
    error: str
    cause: str
    delay_seconds: float
    at: datetime  # simulated time the retry started, after the delay

    def to_dict(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "retrier": self.retrier,
            "error": self.error,
            "cause": self.cause,
            "delay_seconds": self.delay_seconds,
            "at": iso(self.at),
        }


@dataclass
class HistoryEvent:
    """One state entered and exited.

    ``entered_at``/``exited_at`` come from the simulated clock (Wait states, retry intervals
    and the time each Task took here move it); ``duration_ms`` is the real time the state
    took to run here.
    ``parent`` names the Parallel branch or Map iteration the state ran in, e.g.
    ``"Analyses/branch 1"`` or ``"PerMember/item 3"``; None at the top level.
    """

    index: int
    state: str
    type: str
    parent: str | None
    entered_at: datetime
    input: Any
    exited_at: datetime | None = None
    duration_ms: float = 0.0
    output: Any = None
    next: str | None = None
    error: str | None = None
    cause: str | None = None
    caught: bool = False  # the error was handled by a Catch (execution went on at ``next``)
    function: str | None = None  # logical id of the Lambda function a Task invoked
    retries: list[RetryAttempt] = field(default_factory=list)
    #: for a Choice: ``{rule: index or "Default", next, values: {Variable: value}}``
    choice: dict[str, Any] | None = None

    @property
    def attempts(self) -> int:
        return 1 + len(self.retries)

    @property
    def simulated_seconds(self) -> float:
        end = self.exited_at or self.entered_at
        return (end - self.entered_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "state": self.state,
            "type": self.type,
            "parent": self.parent,
            "entered_at": iso(self.entered_at),
            "exited_at": iso(self.exited_at),
            "simulated_seconds": self.simulated_seconds,
            "duration_ms": round(self.duration_ms, 3),
            "function": self.function,
            "attempts": self.attempts,
            "retries": [r.to_dict() for r in self.retries],
            "error": self.error,
            "cause": self.cause,
            "caught": self.caught,
            "next": self.next,
            "choice": self.choice,
            "input": self.input,
            "output": self.output,
        }


@dataclass
class Execution:
    """The result of running a state machine: Step Functions' DescribeExecution, plus history.

    The values in it are shared where the data flowed unchanged (a state's output is the
    next state's input, the input of a Parallel is each branch's): read them, do not change
    them in place.
    """

    name: str
    state_machine: str
    status: str  # SUCCEEDED or FAILED
    input: Any
    start_date: datetime
    stop_date: datetime
    output: Any = None
    error: str | None = None
    cause: str | None = None
    history: list[HistoryEvent] = field(default_factory=list)
    published_events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    def events(self, state: str) -> list[HistoryEvent]:
        """Every run of the state called ``state`` (several inside a Map or after a loop)."""
        return [event for event in self.history if event.state == state]

    def event(self, state: str) -> HistoryEvent:
        """The single run of ``state``; an error naming the states that did run otherwise."""
        found = self.events(state)
        if len(found) != 1:
            ran = sorted({event.state for event in self.history})
            raise KeyError(f"state {state!r} ran {len(found)} times (states that ran: {ran})")
        return found[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state_machine": self.state_machine,
            "status": self.status,
            "start_date": iso(self.start_date),
            "stop_date": iso(self.stop_date),
            "input": self.input,
            "output": self.output,
            "error": self.error,
            "cause": self.cause,
            "published_events": self.published_events,
            "history": [event.to_dict() for event in self.history],
        }
