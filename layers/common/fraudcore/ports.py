"""The ports: the only ways fraudcore reaches the outside world.

One adapter per backend implements each port (AWS adapters in fraudcore, the embedded
ones in fraudlocal). :mod:`fraudcore.backends` picks them from the settings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .model import Transaction


@dataclass
class WriteOutcome:
    """What became of each transaction of a batch write, by transaction_id.

    ``stored`` holds new and already-stored (identical replay) records; ``rejected`` those
    that can never be stored (they go to the rejected-record sink, with the reason);
    ``failed`` those that failed for a transient reason (their Kinesis record is retried).
    """

    stored: set[str] = field(default_factory=set)
    rejected: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    requests: int = 0

    def merge(self, other: WriteOutcome) -> WriteOutcome:
        self.stored |= other.stored
        self.rejected.update(other.rejected)
        self.failed.update(other.failed)
        self.requests += other.requests
        return self


@dataclass(frozen=True)
class RejectedRecord:
    """A record that cannot be stored as it is, with why and the original data."""

    source: str  # which function or stage rejected it
    reason: str
    data: str  # the original record text (decoded from base64 when it was text)
    sequence_number: str | None = None
    partition_key: str | None = None
    transaction_id: str | None = None
    rejected_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@runtime_checkable
class TimeseriesStore(Protocol):
    """Event-time store of every transaction.

    Timestream for LiveAnalytics or Timestream for InfluxDB 3 on AWS; DuckDB or DataFusion
    locally. ``sql_dialect`` (:mod:`fraudcore.timeseries.dialects`) says which SQL the store
    runs: queries are compiled in that dialect.
    """

    database: str
    table: str
    sql_dialect: Any

    def write(self, transactions: Sequence[Transaction]) -> WriteOutcome: ...

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run a query written in the store's ``sql_dialect``."""
        ...

    def count(self) -> int: ...


@runtime_checkable
class RejectedRecordSink(Protocol):
    def send(self, records: Sequence[RejectedRecord]) -> None: ...

    def count(self) -> int: ...


@runtime_checkable
class EventPublisher(Protocol):
    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None: ...


@runtime_checkable
class InvestigationStarter(Protocol):
    def start(self, name: str, payload: Mapping[str, Any]) -> bool:
        """Start one investigation; False when one of that name already exists (a duplicate)."""
        ...
