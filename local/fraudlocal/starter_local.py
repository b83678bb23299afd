"""The local investigation starter: a queue of pending investigations on disk.

``<state_dir>/investigations/pending/<execution-name>.json`` holds the input of each
investigation waiting for the local executor, which moves it to
``<state_dir>/investigations/done/`` when it has run. Like Step Functions, a name is used
once: starting a name that is pending or done is a duplicate.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fraudcore.execution_names import check_safe_execution_name


class LocalInvestigationStarter:
    def __init__(self, state_dir: str | Path):
        self.root = Path(state_dir) / "investigations"
        self.pending = self.root / "pending"
        self.done = self.root / "done"

    def _exists(self, name: str) -> bool:
        # The executor may keep more than the input in done/ (a history file, a folder).
        return any(
            folder.is_dir() and any(folder.glob(f"{name}.*")) for folder in (self.pending, self.done)
        ) or ((self.done / name).exists())

    def start(self, name: str, payload: Mapping[str, Any]) -> bool:
        check_safe_execution_name(name)  # the queue keeps one file per name
        if self._exists(name):
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
            return False
        finally:
            draft.unlink(missing_ok=True)
        return True

    def pending_names(self) -> list[str]:
        return sorted(path.stem for path in self.pending.glob("*.json")) if self.pending.is_dir() else []
