"""The state dir: every file the local stores and tools keep under ``--state-dir``.

========================  ============================================================
``timeseries.duckdb``     the time-series store (DuckDB; ``.wal`` beside it)
``graph/``                the embedded graph engine's files
``rejected.jsonl``        the rejected-record sink, one record a line
``events.jsonl``          the published events (``FraudCaseOpened`` ...), one a line
``investigations/``       the investigation queue: ``pending/`` inputs, ``done/`` histories
``ingest-failures.jsonl`` batches the Kinesis mapping gave up on (its on-failure destination)
``rules-override.yaml``   threshold overrides for the local runs (kept between runs)
========================  ============================================================
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError

TIMESERIES = "timeseries.duckdb"
GRAPH = "graph"
REJECTED = "rejected.jsonl"
EVENTS = "events.jsonl"
INVESTIGATIONS = "investigations"
INGEST_FAILURES = "ingest-failures.jsonl"
RULES_OVERRIDE = "rules-override.yaml"
#: every name the local stores and tools create in a state dir
OWNED = frozenset(
    {
        TIMESERIES,
        f"{TIMESERIES}.wal",
        GRAPH,
        REJECTED,
        EVENTS,
        INVESTIGATIONS,
        INGEST_FAILURES,
        RULES_OVERRIDE,
    }
)


@dataclass(frozen=True)
class StateDir:
    """The paths of one state dir."""

    root: Path

    @property
    def timeseries(self) -> Path:
        return self.root / TIMESERIES

    @property
    def graph(self) -> Path:
        return self.root / GRAPH

    @property
    def rejected(self) -> Path:
        return self.root / REJECTED

    @property
    def events(self) -> Path:
        return self.root / EVENTS

    @property
    def investigations(self) -> Path:
        return self.root / INVESTIGATIONS

    @property
    def pending(self) -> Path:
        return self.investigations / "pending"

    @property
    def done(self) -> Path:
        return self.investigations / "done"

    @property
    def ingest_failures(self) -> Path:
        return self.root / INGEST_FAILURES

    @property
    def rules_override(self) -> Path:
        return self.root / RULES_OVERRIDE


def fresh_state_dir(state_dir: Path) -> Path:
    """Empty ``state_dir`` for a run; refuse to wipe a folder that is not a state dir."""
    if state_dir.exists():
        strangers = [p.name for p in state_dir.iterdir() if p.name not in OWNED]
        if strangers:
            raise UserError(
                f"{state_dir} holds files the local stores did not create ({', '.join(sorted(strangers)[:5])}); "
                "give another --state-dir (or remove it)"
            )
        for child in state_dir.iterdir():
            if child.name == RULES_OVERRIDE:
                continue
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    state_dir.mkdir(parents=True, exist_ok=True)
    return state_dir
