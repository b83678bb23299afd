"""What the end-to-end tests of the local pipeline read from a run's output folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: summary figures that measure the run itself, not what it found
RUN_FIGURES = frozenset({"elapsed_seconds", "transactions_per_second", "event_source_mappings", "source"})


def read(out: Path, name: str) -> Any:
    """A JSON output of the run written to ``out``."""
    return json.loads((out / name).read_text())


def found(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary without the figures that measure the run itself."""
    return {key: value for key, value in summary.items() if key not in RUN_FIGURES}
