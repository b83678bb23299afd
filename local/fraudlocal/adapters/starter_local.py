"""The local investigation starter: a queue of pending investigations on disk.

``<state_dir>/investigations/pending/<execution-name>.json`` holds the input of each
investigation waiting for the local executor, which moves it to
``<state_dir>/investigations/done/`` (its history as ``<execution-name>.json``) when it has
run. Like Step Functions, a name is used once: starting a name that is pending or done is a
duplicate. Like StartExecution, an input that is not JSON (an infinite number) or longer than
:data:`~fraudcore.aws_adapters.EXECUTION_INPUT_MAX_BYTES` as UTF-8 is refused, with the error
the AWS starter raises.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fraudcore.aws_adapters import EXECUTION_INPUT_MAX_BYTES, InvestigationStartError, execution_input
from fraudcore.execution_names import check_safe_execution_name

from ..state_dir import StateDir


class LocalInvestigationStarter:
    def __init__(self, state_dir: str | Path):
        layout = StateDir(Path(state_dir))
        self.root = layout.investigations
        self.pending = layout.pending
        self.done = layout.done
        #: names this starter has found or made used: a name once used stays used (the
        #: executor writes an investigation to done before it removes it from pending), so a
        #: scheduled run's duplicates (most of its flags) are not looked up on disk again
        self._used: set[str] = set()

    def _exists(self, name: str) -> bool:
        # The paths a name can take, looked up one by one. A glob of the folders instead read
        # the name of every investigation done so far at each start, so a long replay slowed
        # down as its investigations accumulated.
        return any(
            path.exists()
            for path in (self.pending / f"{name}.json", self.done / f"{name}.json", self.done / name)
        )

    def start(self, name: str, payload: Mapping[str, Any]) -> bool:
        check_safe_execution_name(name)  # the queue keeps one file per name
        _check_input(name, payload)
        if name in self._used or self._exists(name):
            self._used.add(name)
            return False
        self.pending.mkdir(parents=True, exist_ok=True)
        target = self.pending / f"{name}.json"
        body = json.dumps(dict(payload), sort_keys=True, default=str)
        # Written aside, then linked into place: link() fails when the name exists, so two
        # starters racing for one name get one investigation (as on AWS), and the executor
        # never reads a half-written file.
        draft = self.pending / f".{name}.{os.getpid()}.tmp"
        draft.write_text(body)
        try:
            os.link(draft, target)
        except FileExistsError:
            self._used.add(name)
            return False
        finally:
            draft.unlink(missing_ok=True)
        self._used.add(name)
        return True

    def pending_names(self) -> list[str]:
        return sorted(path.stem for path in self.pending.glob("*.json")) if self.pending.is_dir() else []


def _check_input(name: str, payload: Mapping[str, Any]) -> None:
    """Refuse what StartExecution refuses: an input that is not JSON (``ValueError``, as the AWS
    starter raises before sending it) or longer than its quota (``ValidationException``)."""
    text = execution_input(payload)
    if len(text) * 4 <= EXECUTION_INPUT_MAX_BYTES:  # a character is at most 4 bytes of UTF-8
        return
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > EXECUTION_INPUT_MAX_BYTES:
        raise InvestigationStartError(
            f"Step Functions could not start investigation {name!r} on the local queue: ValidationException: "
            f"1 validation error detected: Value at 'input' failed to satisfy constraint: Member must have "
            f"length less than or equal to {EXECUTION_INPUT_MAX_BYTES} (the input has {size} bytes as UTF-8)"
        )
