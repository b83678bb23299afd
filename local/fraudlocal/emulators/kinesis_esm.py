"""An emulator of Lambda's Kinesis event-source mapping, for local pipelines.

It reproduces what matters for correctness of the ingest functions:

- records are spread over shards by the MD5 of their partition key (as Kinesis does) and
  each shard is read in order, ``batch_size`` records at a time;
- with ``ReportBatchItemFailures`` Lambda checkpoints before the *lowest* failed sequence
  number and delivers the rest of the batch again;
- a function error (an exception) fails the whole batch; with ``bisect_on_error`` the
  batch is split in two and each half retried;
- after ``max_retries`` retries of a batch (or when its records are older than
  ``max_record_age_s``) the batch is given up and described to the on-failure
  destination (a JSON-lines file here, an SQS queue on AWS) so nothing is lost silently.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STREAM_ARN = "arn:aws:kinesis:us-east-1:000000000000:stream/fraud-transactions"


@dataclass(frozen=True)
class StreamRecord:
    sequence_number: str
    partition_key: str
    data: bytes
    arrival: float = 0.0  # epoch seconds
    shard_id: str = "shardId-000000000000"

    def as_lambda_record(self) -> dict[str, Any]:
        return {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": self.partition_key,
                "sequenceNumber": self.sequence_number,
                "data": base64.b64encode(self.data).decode(),
                "approximateArrivalTimestamp": self.arrival,
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"{self.shard_id}:{self.sequence_number}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": "arn:aws:iam::000000000000:role/fraud-ingest",
            "awsRegion": "us-east-1",
            "eventSourceARN": STREAM_ARN,
        }


def kinesis_event(records: Sequence[StreamRecord]) -> dict[str, Any]:
    """The event Lambda receives for a batch of records."""
    return {"Records": [r.as_lambda_record() for r in records]}


def shard_for(partition_key: str, shards: int) -> int:
    """Kinesis maps the MD5 of the partition key onto equal hash-key ranges."""
    digest = int.from_bytes(hashlib.md5(partition_key.encode()).digest(), "big")
    return digest * shards >> 128


class LocalStream:
    """An in-memory stream: ``put`` assigns shard and sequence number, like PutRecords."""

    def __init__(self, shards: int = 1):
        if shards < 1:
            raise ValueError("a stream has at least one shard")
        self.shards: list[list[StreamRecord]] = [[] for _ in range(shards)]
        self._sequence = 0

    def put(
        self, data: bytes | str | dict[str, Any], partition_key: str, arrival: float = 0.0
    ) -> StreamRecord:
        if isinstance(data, dict):
            data = json.dumps(data, separators=(",", ":"))
        if isinstance(data, str):
            data = data.encode()
        index = shard_for(partition_key, len(self.shards))
        self._sequence += 1
        record = StreamRecord(
            sequence_number=f"{49_600_000_000_000_000_000 + self._sequence:056d}",
            partition_key=partition_key,
            data=data,
            arrival=arrival,
            shard_id=f"shardId-{index:012d}",
        )
        self.shards[index].append(record)
        return record

    def __len__(self) -> int:
        return sum(len(s) for s in self.shards)


@dataclass
class MappingStats:
    invocations: int = 0
    records_delivered: int = 0
    partial_failures: int = 0
    function_errors: int = 0
    bisections: int = 0
    retries: int = 0
    batches_given_up: int = 0
    records_given_up: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class EventSourceMapping:
    """One mapping: a function reading the stream (each function has its own, as on AWS)."""

    name: str
    handler: Callable[[dict[str, Any]], Any]
    batch_size: int = 100
    max_retries: int = 3
    bisect_on_error: bool = True
    on_failure: Path | None = None
    #: seconds to wait before each retry (Lambda backs off too); 0 retries at once
    retry_delay_s: float = 0.0
    stats: MappingStats = field(default_factory=MappingStats)
    _positions: dict[int, int] = field(default_factory=dict)

    def poll(self, stream: LocalStream) -> int:
        """Deliver everything the stream holds beyond this mapping's checkpoints; return records done."""
        done = 0
        for index, shard in enumerate(stream.shards):
            position = self._positions.get(index, 0)
            while position < len(shard):
                batch = shard[position : position + self.batch_size]
                self._deliver(batch, attempt=0)
                position += len(batch)
                done += len(batch)
            self._positions[index] = position
        return done

    # -- one batch, with Lambda's retry semantics ------------------------------------------
    def _deliver(self, batch: Sequence[StreamRecord], attempt: int) -> None:
        if not batch:
            return
        self.stats.invocations += 1
        self.stats.records_delivered += len(batch)
        try:
            response = self.handler(kinesis_event(batch))
        except Exception as error:
            self.stats.function_errors += 1
            self._after_function_error(batch, attempt, error)
            return
        failures = (response or {}).get("batchItemFailures") or []
        if not failures:
            return
        self.stats.partial_failures += 1
        failed = {item.get("itemIdentifier") for item in failures}
        # Lambda resumes from the lowest failed sequence number (the list may be unordered).
        first = (
            min(i for i, r in enumerate(batch) if r.sequence_number in failed)
            if any(r.sequence_number in failed for r in batch)
            else 0
        )
        rest = batch[first:]
        if attempt >= self.max_retries:
            self._give_up(rest, f"{len(failed)} record(s) still failing after {attempt} retries")
            return
        self.stats.retries += 1
        self._wait_before_retry()
        self._deliver(rest, attempt + 1)

    def _after_function_error(self, batch: Sequence[StreamRecord], attempt: int, error: Exception) -> None:
        reason = f"{type(error).__name__}: {error}"
        if attempt >= self.max_retries:
            self._give_up(batch, reason)
            return
        self.stats.retries += 1
        self._wait_before_retry()
        if self.bisect_on_error and len(batch) > 1:
            # Bisection does not count against the retry attempts on AWS either, but its
            # halves carry the attempt count so a poison record is given up eventually.
            self.stats.bisections += 1
            middle = len(batch) // 2
            self._deliver(batch[:middle], attempt + 1)
            self._deliver(batch[middle:], attempt + 1)
        else:
            self._deliver(batch, attempt + 1)

    def _wait_before_retry(self) -> None:
        if self.retry_delay_s > 0:
            time.sleep(self.retry_delay_s)

    def _give_up(self, batch: Sequence[StreamRecord], reason: str) -> None:
        self.stats.batches_given_up += 1
        self.stats.records_given_up += len(batch)
        if self.on_failure is None:
            return
        self.on_failure.parent.mkdir(parents=True, exist_ok=True)
        # The shape of the on-failure record Lambda sends for stream sources.
        description = {
            "requestContext": {"functionArn": self.name, "condition": "RetryAttemptsExhausted"},
            "timestamp": datetime.now(UTC).isoformat(),
            "reason": reason,
            "KinesisBatchInfo": {
                "shardId": batch[0].shard_id,
                "startSequenceNumber": batch[0].sequence_number,
                "endSequenceNumber": batch[-1].sequence_number,
                "batchSize": len(batch),
                "streamArn": STREAM_ARN,
            },
        }
        with self.on_failure.open("a") as out:
            out.write(json.dumps(description) + "\n")


def discard_consumed(stream: LocalStream, mappings: Sequence[EventSourceMapping]) -> int:
    """Drop the records every mapping has read (their retention ended), keeping memory bounded.

    A real stream keeps records for its retention period whatever is read; the emulator
    holds them in memory, so a long replay forgets what no mapping needs any more. Returns
    how many records were dropped.
    """
    dropped = 0
    for index, shard in enumerate(stream.shards):
        done = min((m._positions.get(index, 0) for m in mappings), default=0)
        if done <= 0:
            continue
        del shard[:done]
        for mapping in mappings:
            mapping._positions[index] = mapping._positions.get(index, 0) - done
        dropped += done
    return dropped


def feed(stream: LocalStream, records: Iterable[tuple[dict[str, Any] | bytes | str, str]]) -> int:
    count = 0
    for data, key in records:
        stream.put(data, key)
        count += 1
    return count
