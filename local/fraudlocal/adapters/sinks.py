"""Local rejected-record sink and event publisher: JSON-lines files under the state dir.

``<state>/rejected.jsonl`` holds one RejectedRecord per line (``reason``, ``data``, ...);
``<state>/events.jsonl`` one published event per line: ``{"time", "source",
"detail_type", "detail"}``. Each write is appended and flushed at once, so a crash of the process loses
nothing already reported and another process (``fraudlocal stats``, a viewer) can read
the files while the pipeline runs.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fraudcore.ports import RejectedRecord
from fraudcore.timeutil import iso_z, utc_now

from ..state_dir import StateDir

DEFAULT_EVENT_SOURCE = "fraud-detection"


class _JsonlFile:
    """An append-only JSON-lines file; each append is one flushed write."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()

    def append(self, objects: Sequence[Mapping[str, Any]]) -> None:
        if not objects:
            return
        text = "".join(json.dumps(obj, default=str, ensure_ascii=False) + "\n" for obj in objects)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    def count(self) -> int:
        if not self.path.exists():
            return 0
        with self.path.open("rb") as handle:
            return sum(1 for line in handle if line.strip())


def _delivery_key(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """One rejection of one Kinesis record by one function, however often it is redelivered."""
    return (record.get("source"), record.get("sequence_number"), record.get("data"))


class JsonlRejectedRecordSink:
    """:class:`fraudcore.ports.RejectedRecordSink` on ``<state>/rejected.jsonl``.

    A record redelivered by Kinesis (a retry, a replayed batch) is written once: the sink
    skips a rejection it already holds for the same function and sequence number.
    """

    def __init__(self, state_dir: str | Path):
        self.path = StateDir(Path(state_dir)).rejected
        self._file = _JsonlFile(self.path)
        self._seen: set[tuple[Any, ...]] | None = None

    def send(self, records: Sequence[RejectedRecord]) -> None:
        if self._seen is None:
            self._seen = {_delivery_key(row) for row in self._file.read()}
        stamped = []
        for record in records:
            row = (
                record.to_dict()
                if record.rejected_at
                else {**record.to_dict(), "rejected_at": iso_z(utc_now())}
            )
            key = _delivery_key(row)
            if key not in self._seen:
                self._seen.add(key)
                stamped.append(row)
        self._file.append(stamped)

    def count(self) -> int:
        return self._file.count()

    def read(self) -> list[dict[str, Any]]:
        """Every rejected record so far, oldest first."""
        return self._file.read()


class JsonlEventPublisher:
    """:class:`fraudcore.ports.EventPublisher` on ``<state>/events.jsonl``."""

    def __init__(self, state_dir: str | Path, source: str = DEFAULT_EVENT_SOURCE):
        self.path = StateDir(Path(state_dir)).events
        self.source = source
        self._file = _JsonlFile(self.path)

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        if not detail_type:
            raise ValueError("an event needs a detail type (e.g. 'Fraud Case Opened')")
        self._file.append(
            [
                {
                    "time": iso_z(utc_now()),
                    "source": self.source,
                    "detail_type": detail_type,
                    "detail": dict(detail),
                }
            ]
        )

    def count(self) -> int:
        return self._file.count()

    def read(self) -> list[dict[str, Any]]:
        """Every published event so far, oldest first."""
        return self._file.read()


def rejected_by_function(state_dir: Path) -> dict[str, int]:
    """How many records each function rejected, from the sink's file."""
    path = StateDir(state_dir).rejected
    counts: Counter[str] = Counter()
    if path.exists():
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    counts[str(json.loads(line).get("source", "unknown"))] += 1
    return dict(sorted(counts.items()))
