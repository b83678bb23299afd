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

``demo``, ``replay`` and ``kinesis-consume`` run in a folder of their own under the state
dir (``<state-dir>/demo`` ...), emptied first, and name it in ``<state-dir>/latest-run``.
Every other command (``cases``, ``investigate``, ``stats``, ``serve``, ``invoke``) reads
the state dir itself when it holds stores, and otherwise the latest run's folder, so
``fraudlocal --state-dir S demo`` followed by ``fraudlocal --state-dir S cases list``
needs no further flag.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from fraudcore.pii import KEY_FILE

from .errors import UserError

TIMESERIES = "timeseries.duckdb"
#: the DataFusion time-series store (Parquet files), with --timeseries datafusion
TIMESERIES_DATAFUSION = "timeseries-datafusion"
GRAPH = "graph"
REJECTED = "rejected.jsonl"
EVENTS = "events.jsonl"
INVESTIGATIONS = "investigations"
INGEST_FAILURES = "ingest-failures.jsonl"
RULES_OVERRIDE = "rules-override.yaml"
LATEST_RUN = "latest-run"
#: what makes a folder a state dir with stores in it
STORE_NAMES = (TIMESERIES, TIMESERIES_DATAFUSION, GRAPH)
#: every name the local stores and tools create in a state dir
OWNED = frozenset(
    {
        TIMESERIES,
        f"{TIMESERIES}.wal",
        TIMESERIES_DATAFUSION,
        GRAPH,
        REJECTED,
        EVENTS,
        INVESTIGATIONS,
        INGEST_FAILURES,
        RULES_OVERRIDE,
        KEY_FILE,
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
    def timeseries_datafusion(self) -> Path:
        return self.root / TIMESERIES_DATAFUSION

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
            if child.name in (RULES_OVERRIDE, KEY_FILE):  # kept: the same key, the same names
                continue
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    state_dir.mkdir(parents=True, exist_ok=True)
    return state_dir


def has_stores(folder: Path) -> bool:
    return any((folder / name).exists() for name in STORE_NAMES)


def run_folder(state_dir: Path, command: str) -> Path:
    """The folder a pipeline command runs in; recorded as the latest run."""
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / LATEST_RUN).write_text(command + "\n")
    return state_dir / command


def resolve(state_dir: Path) -> Path:
    """The state dir itself when it holds stores, else its latest run's folder (if any)."""
    state_dir = Path(state_dir)
    if has_stores(state_dir):
        return state_dir
    marker = state_dir / LATEST_RUN
    if marker.is_file():
        latest = state_dir / marker.read_text().strip()
        if latest.name and has_stores(latest):
            return latest
    return state_dir
