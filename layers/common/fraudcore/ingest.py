"""Kinesis batches into a store, with partial batch responses.

Every record of a batch ends in exactly one of three places:

- stored (new, or an identical replay already stored);
- the rejected-record sink, with the reason and the original data, when it can never be
  stored as it is (not JSON, a missing field, a negative amount, too old for the store):
  the batch goes on and the record is *not* reported as a failure, so it never blocks
  the shard;
- ``batchItemFailures``, when it failed for a transient reason (throttling, a lost
  connection): Lambda retries it (and, with bisect on error, splits the batch).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from .limits import DEFAULT_MAX_AMOUNT, LimitExceeded, parse_json_record, shorten
from .mapping import AutoMapping, FieldMapping
from .model import InvalidRecord, Transaction, parse_transaction
from .observability import logger, metrics
from .ports import RejectedRecord, RejectedRecordSink, WriteOutcome
from .timeutil import iso_z, utc_now


class TransientRecordFailure(Exception):
    """Raised for a record that must be retried by Lambda (reported in batchItemFailures)."""


@dataclass
class DecodedRecord:
    sequence_number: str
    partition_key: str | None
    data: str
    transaction: Transaction | None = None
    reason: str | None = None


@dataclass
class IngestResult:
    received: int = 0
    stored: int = 0
    rejected: int = 0
    failed_sequence_numbers: dict[str, str] = field(default_factory=dict)
    requests: int = 0


def decode_record(
    raw: dict[str, Any],
    mapping: FieldMapping | AutoMapping | None,
    max_amount: float = DEFAULT_MAX_AMOUNT,
) -> DecodedRecord:
    """Decode one Kinesis record; problems become a reason, never an exception."""
    try:
        return _decode_record(raw, mapping, max_amount)
    except Exception as error:  # a data problem no check above foresaw must not fail the batch
        kinesis = (raw.get("kinesis") if isinstance(raw, dict) else None) or {}
        return DecodedRecord(
            str(kinesis.get("sequenceNumber", "")),
            kinesis.get("partitionKey"),
            str(kinesis.get("data", "")),
            reason=f"record could not be read: {type(error).__name__}: {shorten(str(error))}",
        )


def _decode_record(
    raw: dict[str, Any], mapping: FieldMapping | AutoMapping | None, max_amount: float
) -> DecodedRecord:
    kinesis = raw.get("kinesis") or {}
    sequence_number = str(kinesis.get("sequenceNumber", ""))
    partition_key = kinesis.get("partitionKey")
    encoded = kinesis.get("data", "")
    try:
        payload_bytes = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError, TypeError):
        return DecodedRecord(sequence_number, partition_key, str(encoded), reason="data is not valid base64")
    try:
        text = payload_bytes.decode("utf-8")
    except UnicodeDecodeError:
        return DecodedRecord(
            sequence_number, partition_key, str(encoded), reason="data is not UTF-8 text (kept as base64)"
        )
    record = DecodedRecord(sequence_number, partition_key, text)
    try:
        payload = parse_json_record(text)
    except json.JSONDecodeError as error:
        record.reason = f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        return record
    except LimitExceeded as error:
        record.reason = f"record is outside the accepted limits: {error}"
        return record
    try:
        canonical = mapping.apply(payload) if mapping else payload
        record.transaction = parse_transaction(canonical, max_amount)
    except InvalidRecord as error:
        record.reason = error.reason
    return record


def ingest_records(
    raw_records: Sequence[dict[str, Any]],
    write: Callable[[Sequence[Transaction]], WriteOutcome],
    sink: RejectedRecordSink,
    source: str,
    mapping: FieldMapping | AutoMapping | None = None,
    max_amount: float = DEFAULT_MAX_AMOUNT,
) -> IngestResult:
    """Decode, write, and route every record; return what became of them."""
    decoded = [decode_record(raw, mapping, max_amount) for raw in raw_records]
    result = IngestResult(received=len(decoded))
    rejected = [
        RejectedRecord(
            source=source,
            reason=rec.reason or "",
            data=rec.data,
            sequence_number=rec.sequence_number,
            partition_key=rec.partition_key,
            rejected_at=iso_z(utc_now()),
        )
        for rec in decoded
        if rec.transaction is None
    ]
    valid = [rec for rec in decoded if rec.transaction is not None]
    by_tx: dict[str, list[DecodedRecord]] = {}
    for rec in valid:
        by_tx.setdefault(rec.transaction.transaction_id, []).append(rec)  # type: ignore[union-attr]

    unique = [recs[0].transaction for recs in by_tx.values()]
    outcome = write_isolated(write, unique) if unique else WriteOutcome()  # type: ignore[arg-type]
    result.requests = outcome.requests
    for tx_id, reason in outcome.rejected.items():
        for rec in by_tx.get(tx_id, []):
            rejected.append(
                RejectedRecord(
                    source=source,
                    reason=reason,
                    data=rec.data,
                    sequence_number=rec.sequence_number,
                    partition_key=rec.partition_key,
                    transaction_id=tx_id,
                    rejected_at=iso_z(utc_now()),
                )
            )
    for tx_id, reason in outcome.failed.items():
        for rec in by_tx.get(tx_id, []):
            result.failed_sequence_numbers[rec.sequence_number] = reason
    result.stored = sum(len(by_tx[tx_id]) for tx_id in outcome.stored if tx_id in by_tx)

    if rejected:
        try:
            sink.send(rejected)
        except Exception as error:
            # Nothing is lost: the records go back to Lambda and are retried.
            logger.warning(
                "rejected-record sink failed; the records will be retried", extra={"error": str(error)}
            )
            for rec in rejected:
                if rec.sequence_number:
                    result.failed_sequence_numbers[rec.sequence_number] = (
                        f"rejected-record sink failed: {error}"
                    )
        else:
            result.rejected = len(rejected)
    return result


def write_isolated(
    write: Callable[[Sequence[Transaction]], WriteOutcome], transactions: Sequence[Transaction]
) -> WriteOutcome:
    """Call the store; if it raises, halve the batch until what makes it raise is alone.

    Adapters classify their own refusals per record; this is the guard for what they do not
    foresee, so one record never fails the other records of its batch. A record that still
    makes the store raise on its own is reported as failed (Lambda retries it).
    """
    try:
        return write(transactions)
    except Exception as error:
        if len(transactions) <= 1:
            reason = f"store write raised {type(error).__name__}: {shorten(str(error))}"
            return WriteOutcome(failed={tx.transaction_id: reason for tx in transactions}, requests=1)
        middle = len(transactions) // 2
        first = write_isolated(write, transactions[:middle])
        return first.merge(write_isolated(write, transactions[middle:]))


def handle_kinesis_event(
    event: dict[str, Any],
    write: Callable[[Sequence[Transaction]], WriteOutcome],
    sink: RejectedRecordSink,
    source: str,
    mapping: FieldMapping | AutoMapping | None = None,
    context: Any = None,
    max_amount: float = DEFAULT_MAX_AMOUNT,
) -> dict[str, Any]:
    """The whole ingest handler: bulk write, then a Powertools partial batch response."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not records or not isinstance(records, list):
        return {"batchItemFailures": []}  # nothing to do (Lambda never sends an empty batch)
    result = ingest_records(records, write, sink, source, mapping, max_amount)
    metrics.add_metric(name="RecordsReceived", unit=MetricUnit.Count, value=result.received)
    metrics.add_metric(name="RecordsStored", unit=MetricUnit.Count, value=result.stored)
    metrics.add_metric(name="RecordsRejected", unit=MetricUnit.Count, value=result.rejected)
    metrics.add_metric(name="RecordsFailed", unit=MetricUnit.Count, value=len(result.failed_sequence_numbers))
    logger.info(
        "batch ingested",
        extra={
            "target": source,
            "received": result.received,
            "stored": result.stored,
            "rejected": result.rejected,
            "failed": len(result.failed_sequence_numbers),
            "requests": result.requests,
        },
    )

    failed = result.failed_sequence_numbers

    def record_handler(record: KinesisStreamRecord) -> None:
        reason = failed.get(record.kinesis.sequence_number)
        if reason is not None:
            raise TransientRecordFailure(reason)

    processor = BatchProcessor(event_type=EventType.KinesisDataStreams, raise_on_entire_batch_failure=False)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
