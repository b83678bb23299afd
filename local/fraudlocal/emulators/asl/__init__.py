"""A local executor for Amazon States Language: runs the real ``statemachines/*.asl.json``.

Why our own interpreter rather than moto's Step Functions: moto 5.x can execute ASL, but
it reaches Lambda tasks only through its internal ``LambdaSimpleBackend.invoke``, an API
that is not public and may change with any release, and it would run our handlers behind
a simulated Lambda service. This package instead

* dispatches each Lambda task in-process to a Python callable chosen by the function's
  logical id (no dependency on moto internals);
* records the history an analyst and our tests need (state, entered/exited, real
  duration, input, output, error, every retry with its delay);
* never sleeps: Wait states and retry intervals advance a simulated clock, so a
  workflow with backoffs runs in milliseconds and its timing is deterministic.

Supported: Task (``arn:aws:states:::lambda:invoke``, plain Lambda ARNs,
``arn:aws:states:::events:putEvents``), Pass, Choice, Wait, Succeed, Fail, Parallel,
inline Map; InputPath, Parameters/ItemSelector with ``.$`` keys and the context object,
ResultSelector, ResultPath, OutputPath, intrinsic functions, Retry and Catch. Not
supported (a :class:`DefinitionError` says so): other service integrations,
``.waitForTaskToken``, distributed Map, JSONata, task timeouts and heartbeats.
"""

from .errors import DefinitionError, IntrinsicFailure, RuntimeStatesError, StatesError
from .executor import execute, function_name, validate_execution_name
from .history import Execution, HistoryEvent, RetryAttempt
from .loader import LoadedStateMachine, load_state_machine, run_state_machine
from .substitutions import PlaceholderReport, apply_substitutions, compare_placeholders, placeholders

__all__ = [
    "DefinitionError",
    "Execution",
    "HistoryEvent",
    "IntrinsicFailure",
    "LoadedStateMachine",
    "PlaceholderReport",
    "RetryAttempt",
    "RuntimeStatesError",
    "StatesError",
    "apply_substitutions",
    "compare_placeholders",
    "execute",
    "function_name",
    "load_state_machine",
    "placeholders",
    "run_state_machine",
    "validate_execution_name",
]
