"""Which folder of a state dir holds the stores a command reads.

``demo``, ``replay`` and ``kinesis-consume`` run in a folder of their own under the state
dir (``<state-dir>/demo`` ...), emptied first, and name it in ``<state-dir>/latest-run``.
Every other command (``cases``, ``investigate``, ``stats``, ``serve``, ``invoke``) reads
the state dir itself when it holds stores, and otherwise the latest run's folder, so
``fraudlocal --state-dir S demo`` followed by ``fraudlocal --state-dir S cases list``
needs no further flag.
"""

from __future__ import annotations

from pathlib import Path

LATEST_RUN = "latest-run"
#: what makes a folder a state dir with stores in it
STORE_NAMES = ("timeseries.duckdb", "timeseries-datafusion", "graph")


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
