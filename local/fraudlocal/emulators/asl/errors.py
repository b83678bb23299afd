"""Errors raised while running a state machine.

``StatesError`` is an error *inside* the workflow: it carries the ASL error name and
cause that Retry and Catch match on. ``DefinitionError`` is a defect of the ASL document
itself (an unknown state, a missing field) found while running it.
"""

from __future__ import annotations

# Errors that end the execution whatever its Retry/Catch say (Step Functions: "a retry or
# catch on States.ALL won't catch States.Runtime errors").
TERMINAL_ERRORS = frozenset({"States.Runtime", "States.DataLimitExceeded"})


class StatesError(Exception):
    """An ASL error: ``name`` is what ErrorEquals matches, ``cause`` a readable string."""

    def __init__(self, name: str, cause: str) -> None:
        super().__init__(f"{name}: {cause}")
        self.name = name
        self.cause = cause

    @property
    def terminal(self) -> bool:
        return self.name in TERMINAL_ERRORS


class RuntimeStatesError(StatesError):
    """``States.Runtime``: bad data for a path, a ResultPath that cannot be applied, ..."""

    def __init__(self, cause: str) -> None:
        super().__init__("States.Runtime", cause)


class IntrinsicFailure(StatesError):
    """``States.IntrinsicFailure``: an intrinsic function could not be evaluated."""

    def __init__(self, cause: str) -> None:
        super().__init__("States.IntrinsicFailure", cause)


class DefinitionError(ValueError):
    """The ASL document is not something this executor can run (names the state and field)."""
