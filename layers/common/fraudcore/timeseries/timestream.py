"""The AWS time-series store: Amazon Timestream for LiveAnalytics through boto3.

Writes are multi-measure records (see :mod:`fraudcore.timeseries` for the layout), at most
100 per WriteRecords request. What becomes of each record:

- written, or already stored: a replay of the same record (same key, same
  :data:`~fraudcore.timeseries.RECORD_VERSION`) is accepted as a no-op or rejected with
  ``ExistingVersion``; both count as stored. In one request, the records that are not
  in ``RejectedRecords`` are written, so they count as stored too.
- rejected before the request: a record over Timestream's size limits (see
  :func:`~fraudcore.timeseries.record_limit_problem`); it never reaches WriteRecords.
- rejected (never storable, goes to the rejected-record sink): an event time older than
  the memory-store window that Timestream refuses (magnetic store writes off, or older
  than the magnetic retention), an event time too far in the future, and a record the
  service calls invalid (ValidationException, isolated by writing the chunk record by
  record).
- failed (its Kinesis record is retried): throttling and internal errors after the last
  retry, and every other rejection reason.

Throttling, internal errors and connection errors are retried here with exponential
backoff and full jitter; botocore's own retries are off for the write client so the two
do not multiply.

A query naming a column no record has used yet fails on Timestream with
``ValidationException``; it is raised as :class:`~fraudcore.timeseries.MissingColumnError`.
With ``query_endpoint`` (a cell's endpoint), queries go straight there without endpoint
discovery, which a VPC reaching Timestream only through an interface endpoint needs.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..aws_adapters import aws_client
from ..chunking import chunks
from ..model import Transaction
from ..ports import WriteOutcome
from ..retry import RetryPolicy
from ..timeutil import parse_utc, utc_now
from . import (
    MAX_RECORDS_PER_WRITE,
    MEASURE_NAME,
    MEASURES,
    RECORD_VERSION,
    MissingColumnError,
    event_time_ms,
    measure_values,
    missing_column,
    quote_identifier,
    record_dimensions,
    split_by_record_limits,
    unique_by_key,
)
from .dialects import TIMESTREAM

#: error codes worth another try of the same request
TRANSIENT_ERROR_CODES = frozenset(
    {"ThrottlingException", "InternalServerException", "InvalidEndpointException", "ServiceUnavailable"}
)
#: Timestream's wording for a record time outside what the table accepts, e.g.
#: "The record timestamp is outside the time range [...) of the memory store."
_TIME_RANGE_REASON = re.compile(
    r"outside (of )?the (time range|retention)|memory store|ingestion window", re.I
)
#: "A record already exists with the same time, dimensions, measure name, and record version."
_DUPLICATE_REASON = re.compile(r"already exists|existing version", re.I)
#: Timestream accepts event times up to 15 minutes ahead of its clock
_FUTURE_TOLERANCE = timedelta(minutes=15)


def _configured_endpoint(service: str) -> str:
    """An endpoint set with botocore's own variables (``AWS_ENDPOINT_URL_TIMESTREAM_QUERY``,
    ``AWS_ENDPOINT_URL``): an emulator of the API, or a proxy."""
    specific = "AWS_ENDPOINT_URL_" + service.upper().replace("-", "_")
    return os.environ.get(specific) or os.environ.get("AWS_ENDPOINT_URL") or ""


def _client(service: str, endpoint_url: str = "") -> Any:
    """The service's client; an ``endpoint_url`` turns botocore's endpoint discovery off.

    An endpoint configured through botocore's variables is passed explicitly too: botocore
    would otherwise still discover the endpoint through it and then send the requests to the
    address the discovery answer names, not to the configured endpoint.
    """
    if service == "timestream-write":
        # Retries are ours (with jitter, per chunk): botocore's would multiply them.
        config = Config(retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=20)
    else:
        config = Config(retries={"mode": "standard", "total_max_attempts": 3})
    return aws_client(service, config, endpoint_url=endpoint_url or _configured_endpoint(service))


def to_record(transaction: Transaction) -> dict[str, Any]:
    """One multi-measure record; the constant parts are in :func:`common_attributes`."""
    return {
        "Dimensions": [
            {"Name": name, "Value": value, "DimensionValueType": "VARCHAR"}
            for name, value in record_dimensions(transaction).items()
        ],
        "MeasureValues": [
            {"Name": name, "Value": repr(value), "Type": MEASURES[name]}
            for name, value in measure_values(transaction).items()
        ],
        "Time": str(event_time_ms(transaction)),
    }


def common_attributes() -> dict[str, Any]:
    """What every record of a request shares (sent once per request, as AWS advises)."""
    return {
        "MeasureName": MEASURE_NAME,
        "MeasureValueType": "MULTI",
        "TimeUnit": "MILLISECONDS",
        "Version": RECORD_VERSION,
    }


class TimestreamStore:
    """:class:`fraudcore.ports.TimeseriesStore` on Amazon Timestream for LiveAnalytics."""

    sql_dialect = TIMESTREAM

    def __init__(
        self,
        database: str,
        table: str,
        memory_retention_hours: int,
        write_client: Any = None,
        query_client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        *,
        max_attempts: int = 5,
        base_delay: float = 0.1,
        max_delay: float = 5.0,
        clock: Callable[[], datetime] = utc_now,
        jitter: Callable[[float, float], float] = random.uniform,
        query_endpoint: str = "",
    ):
        if memory_retention_hours < 1:
            raise ValueError(f"memory_retention_hours must be at least 1, got {memory_retention_hours}")
        self.database = database
        self.table = table
        self.memory_retention_hours = memory_retention_hours
        self._write_client = write_client
        self._query_client = query_client
        self.retry = RetryPolicy(max_attempts, base_delay, max_delay, sleep=sleep, jitter=jitter)
        self._clock = clock
        self._query_endpoint = query_endpoint

    @property
    def write_client(self) -> Any:
        if self._write_client is None:
            self._write_client = _client("timestream-write")
        return self._write_client

    @property
    def query_client(self) -> Any:
        if self._query_client is None:
            self._query_client = _client("timestream-query", self._query_endpoint)
        return self._query_client

    # -- writes -------------------------------------------------------------------------

    def write(self, transactions: Sequence[Transaction]) -> WriteOutcome:
        """Write a batch in chunks of 100; say per transaction_id what became of it.

        Records over Timestream's size limits are rejected here, before any request."""
        fitting, refused = split_by_record_limits(unique_by_key(list(transactions)))
        outcome = WriteOutcome(rejected=refused)
        for chunk in chunks(fitting, MAX_RECORDS_PER_WRITE):
            outcome.merge(self._write_chunk(chunk, isolate_invalid=True))
        return outcome

    def _write_chunk(self, chunk: Sequence[Transaction], *, isolate_invalid: bool) -> WriteOutcome:
        outcome = WriteOutcome()
        request = {
            "DatabaseName": self.database,
            "TableName": self.table,
            "CommonAttributes": common_attributes(),
            "Records": [to_record(t) for t in chunk],
        }
        for attempt in range(1, self.retry.max_attempts + 1):
            outcome.requests += 1
            try:
                self.write_client.write_records(**request)
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                if code == "RejectedRecordsException":
                    return outcome.merge(self._sort_rejected(chunk, error.response))
                if code == "ValidationException":
                    message = _error_text(error)
                    if isolate_invalid and len(chunk) > 1:
                        return outcome.merge(self._write_one_by_one(chunk))
                    outcome.rejected.update(
                        {
                            t.transaction_id: f"Timestream refused the record as invalid: {message}"
                            for t in chunk
                        }
                    )
                    return outcome
                if code in TRANSIENT_ERROR_CODES and self.retry.can_retry(attempt):
                    self.retry.back_off(attempt)
                    continue
                return self._all_failed(chunk, outcome, error, attempt)
            except BotoCoreError as error:  # connection reset, read timeout, endpoint discovery
                if self.retry.can_retry(attempt):
                    self.retry.back_off(attempt)
                    continue
                return self._all_failed(chunk, outcome, error, attempt)
            outcome.stored.update(t.transaction_id for t in chunk)
            return outcome
        raise AssertionError("unreachable: the last attempt always returns")  # pragma: no cover

    def _write_one_by_one(self, chunk: Sequence[Transaction]) -> WriteOutcome:
        # A ValidationException names no record: write each alone to find the bad one(s).
        outcome = WriteOutcome()
        for transaction in chunk:
            outcome.merge(self._write_chunk([transaction], isolate_invalid=False))
        return outcome

    def _all_failed(
        self, chunk: Sequence[Transaction], outcome: WriteOutcome, error: Exception, attempts: int
    ) -> WriteOutcome:
        reason = f"Timestream WriteRecords failed after {attempts} attempt(s): {_error_text(error)}"
        outcome.failed.update(dict.fromkeys((t.transaction_id for t in chunk), reason))
        return outcome

    def _sort_rejected(self, chunk: Sequence[Transaction], response: dict[str, Any]) -> WriteOutcome:
        """Per record of a RejectedRecordsException; the records not listed were written."""
        outcome = WriteOutcome()
        rejected_indexes: set[int] = set()
        for item in response.get("RejectedRecords") or []:
            index = item.get("RecordIndex")
            if not isinstance(index, int) or not 0 <= index < len(chunk):
                continue
            rejected_indexes.add(index)
            transaction = chunk[index]
            verdict, reason = self._classify(transaction, item)
            if verdict == "stored":
                outcome.stored.add(transaction.transaction_id)
            elif verdict == "rejected":
                outcome.rejected[transaction.transaction_id] = reason
            else:
                outcome.failed[transaction.transaction_id] = reason
        if not rejected_indexes and len(chunk) > 0:
            # No per-record detail (seen with old SDKs): nothing tells which were written.
            reason = f"Timestream rejected records without details: {_error_text_of(response)}"
            outcome.failed.update(dict.fromkeys((t.transaction_id for t in chunk), reason))
            return outcome
        outcome.stored.update(t.transaction_id for i, t in enumerate(chunk) if i not in rejected_indexes)
        return outcome

    def _classify(self, transaction: Transaction, item: dict[str, Any]) -> tuple[str, str]:
        reason = str(item.get("Reason") or "no reason given")
        if item.get("ExistingVersion") is not None or _DUPLICATE_REASON.search(reason):
            # Same key already stored: a replay. The first write of a transaction_id wins.
            return "stored", reason
        if _TIME_RANGE_REASON.search(reason):
            return self._classify_time(transaction, reason)
        return "failed", f"Timestream rejected the record: {reason}"

    def _classify_time(self, transaction: Transaction, reason: str) -> tuple[str, str]:
        now = self._clock()
        event_time = transaction.timestamp.astimezone(UTC).isoformat()
        window_start = now - timedelta(hours=self.memory_retention_hours)
        if transaction.timestamp < window_start:
            return "rejected", (
                f"event time {event_time} is older than the Timestream memory-store window "
                f"({self.memory_retention_hours} h): enable magnetic store writes on table "
                f"{self.database}.{self.table} to accept late records, or the record is older than "
                f"the magnetic-store retention and too old to store (Timestream: {reason})"
            )
        if transaction.timestamp > now + _FUTURE_TOLERANCE:
            return "rejected", (
                f"event time {event_time} is more than 15 minutes in the future; "
                f"check the producer's clock (Timestream: {reason})"
            )
        # Inside the window by our clock: the retention was just changed, or clocks differ. Retry.
        return "failed", f"Timestream refused an event time inside the memory-store window: {reason}"

    # -- queries ------------------------------------------------------------------------

    def query(self, timestream_sql: str) -> list[dict[str, Any]]:
        """Run Timestream SQL, following NextToken; rows as dicts with Python values."""
        rows: list[dict[str, Any]] = []
        request: dict[str, Any] = {"QueryString": timestream_sql}
        while True:
            try:
                page = self.query_client.query(**request)
            except ClientError as error:
                details = error.response.get("Error") or {}
                column = missing_column(str(details.get("Message") or ""))
                if details.get("Code") == "ValidationException" and column:
                    raise MissingColumnError(column, _error_text(error)) from error
                raise
            columns = page.get("ColumnInfo") or []
            names = [column.get("Name") or f"_col{i}" for i, column in enumerate(columns)]
            for row in page.get("Rows") or []:
                values = [
                    convert_datum(datum, column["Type"])
                    for datum, column in zip(row["Data"], columns, strict=True)
                ]
                rows.append(dict(zip(names, values, strict=True)))
            token = page.get("NextToken")
            if not token:
                return rows
            request["NextToken"] = token

    def count(self) -> int:
        sql = (
            f"SELECT count(*) AS row_count FROM {quote_identifier(self.database)}."
            f"{quote_identifier(self.table)} WHERE measure_name = '{MEASURE_NAME}'"
        )
        result = self.query(sql)
        return int(result[0]["row_count"]) if result else 0


# -- query result conversion ------------------------------------------------------------


def parse_timestamp(text: str) -> datetime:
    """'2026-11-29 12:00:00.123456789' (Timestream, nanoseconds) -> aware UTC datetime."""
    return parse_utc(text)


_SCALAR_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "BIGINT": int,
    "INTEGER": int,
    "DOUBLE": float,
    "BOOLEAN": lambda text: text.lower() == "true",
    "VARCHAR": str,
    "TIMESTAMP": parse_timestamp,
    "DATE": lambda text: datetime.strptime(text, "%Y-%m-%d").date(),
}


def convert_datum(datum: dict[str, Any], column_type: dict[str, Any]) -> Any:
    """One Timestream ``Datum`` as a Python value, by its column ``Type``."""
    if datum.get("NullValue"):
        return None
    if "ScalarValue" in datum:
        scalar_type = column_type.get("ScalarType", "VARCHAR")
        return _SCALAR_CONVERTERS.get(scalar_type, str)(datum["ScalarValue"])
    if "ArrayValue" in datum:
        element_type = (column_type.get("ArrayColumnInfo") or {}).get("Type", {})
        return [convert_datum(item, element_type) for item in datum["ArrayValue"]]
    if "RowValue" in datum:
        fields = column_type.get("RowColumnInfo") or []
        return {
            (info.get("Name") or f"_field{i}"): convert_datum(item, info["Type"])
            for i, (item, info) in enumerate(zip(datum["RowValue"]["Data"], fields, strict=True))
        }
    if "TimeSeriesValue" in datum:
        value_type = (column_type.get("TimeSeriesMeasureValueColumnInfo") or {}).get("Type", {})
        return [
            {"time": parse_timestamp(point["Time"]), "value": convert_datum(point["Value"], value_type)}
            for point in datum["TimeSeriesValue"]
        ]
    return None


def _error_text(error: Exception) -> str:
    if isinstance(error, ClientError):
        return _error_text_of(error.response)
    return f"{type(error).__name__}: {error}"


def _error_text_of(response: dict[str, Any]) -> str:
    details = response.get("Error") or {}
    code = details.get("Code") or "Error"
    message = details.get("Message") or response.get("Message") or ""
    return f"{code}: {message}".rstrip(": ")
