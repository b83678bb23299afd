"""The shape of the transactions table, defined once for every time-series adapter.

Timestream (on AWS) and DuckDB (locally) hold the same table ``<database>.<table>``:

========================  ===========================  ======================================
column                    Timestream                   DuckDB
========================  ===========================  ======================================
``time``                  record time, MILLISECONDS    ``TIMESTAMP`` (naive UTC, millisecond)
``measure_name``          ``transaction``              ``VARCHAR``, always ``transaction``
one per dimension         dimension (only if present)  ``VARCHAR``, NULL when absent
``amount``                multi-measure value DOUBLE   ``DOUBLE``
========================  ===========================  ======================================

The dimensions are :data:`fraudcore.model.DIMENSION_FIELDS`. ``transaction_id`` is one of
them, so two transactions never share a Timestream series key and the DuckDB table can
make it the primary key.

Idempotency (a replayed Kinesis record must not count twice):

- Timestream keys a record by (dimensions, time, measure name). Every record is written
  with the same :data:`RECORD_VERSION`, so an identical replay is either accepted as a
  no-op or rejected with ``ExistingVersion`` (the key is already stored); the adapter
  counts both as stored. A re-sent ``transaction_id`` with other values never overwrites
  the first one: the first write wins, as in DuckDB.
- DuckDB inserts with ``INSERT OR IGNORE`` on the ``transaction_id`` primary key.

Query results of both adapters use the same Python types: ``TIMESTAMP`` values are
timezone-aware UTC datetimes, BIGINT/INTEGER ints, DOUBLE floats, BOOLEAN bools,
VARCHAR strings and NULL None.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..model import DIMENSION_FIELDS, Transaction

#: measure name of every transaction record (Timestream ``measure_name``)
MEASURE_NAME = "transaction"
#: the multi-measure values of a record: name -> Timestream type
MEASURES: dict[str, str] = {"amount": "DOUBLE"}
#: the dimensions, in column order
DIMENSIONS: tuple[str, ...] = DIMENSION_FIELDS
#: the primary key of the local table (and a dimension on Timestream)
KEY_DIMENSION = "transaction_id"
TIME_COLUMN = "time"
MEASURE_NAME_COLUMN = "measure_name"
#: constant record version: an identical replay is an idempotent no-op (see the module docs)
RECORD_VERSION = 1
#: WriteRecords accepts at most 100 records per request
MAX_RECORDS_PER_WRITE = 100
#: Timestream's record limits (service limits: maximum record size 2 KB; the dimension
#: name-value pairs of a series 2 KB; a dimension name 60 bytes). Sizes are counted as
#: Timestream meters a write: 8 bytes of time, the UTF-8 bytes of every dimension name and
#: value and of the measure names, 8 bytes per DOUBLE measure value.
MAX_RECORD_BYTES = 2048
MAX_DIMENSION_PAIRS_BYTES = 2048
MAX_DIMENSION_NAME_BYTES = 60
_TIME_BYTES = 8
_MEASURE_VALUE_BYTES = {"DOUBLE": 8, "BIGINT": 8, "BOOLEAN": 1}
#: Timestream's message for a query naming a column no record has used yet
_MISSING_COLUMN = re.compile(r"Column '([^']+)' does not exist")
#: InfluxDB 3's (DataFusion's): a tag or field no written point has carried is not in the schema
_MISSING_FIELD = re.compile(r'No field named (?:"?[A-Za-z_]\w*"?\.)?"?([^".\s]+)"?')


class MissingColumnError(LookupError):
    """A query named a column that no record of the table has used yet.

    Timestream creates a dimension or measure column when a record first uses it; until then
    a query naming it fails (``ValidationException: ... Column 'card_id' does not exist``).
    Callers that look for optional identifiers treat it as "no rows yet".
    """

    def __init__(self, column: str, message: str):
        super().__init__(message)
        self.column = column

    def skip_reason(self) -> str:
        """Why a rule on this column is skipped, as runs and backtests report it."""
        return f"column {self.column!r} does not exist yet: no record has carried it ({self})"


def rows_or_none_yet(store: Any, timestream_sql: str) -> list[dict[str, Any]]:
    """The query's rows; none when it names a column no record has used yet (nothing to find)."""
    try:
        return store.query(timestream_sql)
    except MissingColumnError as error:
        logging.getLogger(__name__).info(
            "no rows: column %s does not exist yet (no record has used it)", error.column
        )
        return []


def missing_column(message: str) -> str | None:
    """The column a "does not exist" message names, or None for another message.

    Timestream: ``Column 'card_id' does not exist``; InfluxDB 3 (DataFusion):
    ``Schema error: No field named card_id.`` (or ``t.card_id``, or ``"Card_Id"``).
    """
    found = _MISSING_COLUMN.search(message) or _MISSING_FIELD.search(message)
    return found.group(1) if found else None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


@dataclass(frozen=True)
class TableLayout:
    """The column layout of the transactions table, in order."""

    time_column: str
    measure_name_column: str
    measure_name: str
    dimensions: tuple[str, ...]
    measures: tuple[tuple[str, str], ...]
    key: str

    @property
    def columns(self) -> tuple[str, ...]:
        return (
            self.time_column,
            self.measure_name_column,
            *self.dimensions,
            *(name for name, _ in self.measures),
        )


def table_layout() -> TableLayout:
    """The layout every adapter writes: time, measure name, the dimensions, the measures."""
    return TableLayout(
        time_column=TIME_COLUMN,
        measure_name_column=MEASURE_NAME_COLUMN,
        measure_name=MEASURE_NAME,
        dimensions=DIMENSIONS,
        measures=tuple(MEASURES.items()),
        key=KEY_DIMENSION,
    )


def event_time_ms(transaction: Transaction) -> int:
    """Event time in whole epoch milliseconds, computed exactly (no float rounding)."""
    return (transaction.timestamp - _EPOCH) // _MILLISECOND


def event_time_naive_utc(transaction: Transaction) -> datetime:
    """Event time as a naive UTC datetime truncated to the millisecond (the DuckDB column)."""
    moment = transaction.timestamp.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)


def record_dimensions(transaction: Transaction) -> dict[str, str]:
    """The dimensions of a record, in layout order: only present, non-empty values.

    Timestream rejects a dimension with an empty value, so absent identifiers are left
    out rather than written as "".
    """
    present = transaction.dimensions()
    return {name: present[name] for name in DIMENSIONS if present.get(name)}


def measure_values(transaction: Transaction) -> dict[str, Any]:
    """The measure values of a record, by measure name."""
    return {"amount": float(transaction.amount)}


def _utf8(text: str) -> int:
    return len(text.encode("utf-8"))


def record_size(transaction: Transaction) -> int:
    """The record's size as Timestream counts it (see :data:`MAX_RECORD_BYTES`)."""
    dimensions = sum(_utf8(name) + _utf8(value) for name, value in record_dimensions(transaction).items())
    measures = sum(_utf8(name) + _MEASURE_VALUE_BYTES.get(MEASURES[name], 8) for name in MEASURES)
    return _TIME_BYTES + dimensions + _utf8(MEASURE_NAME) + measures


def record_limit_problem(transaction: Transaction) -> str | None:
    """Why Timestream would refuse this record for its size, or None when it fits.

    Checked before WriteRecords, so an oversized record goes to the rejected-record sink
    with this reason instead of failing (and retrying) its batch.
    """
    dimensions = record_dimensions(transaction)
    for name in dimensions:
        if _utf8(name) > MAX_DIMENSION_NAME_BYTES:
            return f"dimension name {name!r} is longer than Timestream's {MAX_DIMENSION_NAME_BYTES} bytes"
    pairs = sum(_utf8(name) + _utf8(value) for name, value in dimensions.items())
    if pairs > MAX_DIMENSION_PAIRS_BYTES:
        longest = max(dimensions, key=lambda name: _utf8(dimensions[name]))
        return (
            f"the record's dimensions take {pairs} bytes, over Timestream's {MAX_DIMENSION_PAIRS_BYTES} "
            f"bytes per series (longest: {longest}, {_utf8(dimensions[longest])} bytes): shorten the "
            "identifiers"
        )
    size = record_size(transaction)
    if size > MAX_RECORD_BYTES:
        return f"the record takes {size} bytes, over Timestream's {MAX_RECORD_BYTES}-byte record limit"
    return None


def split_by_record_limits(
    transactions: list[Transaction],
) -> tuple[list[Transaction], dict[str, str]]:
    """(the transactions that fit Timestream's limits, {transaction_id: reason} for the others)."""
    fitting: list[Transaction] = []
    refused: dict[str, str] = {}
    for transaction in transactions:
        problem = record_limit_problem(transaction)
        if problem is None:
            fitting.append(transaction)
        else:
            refused[transaction.transaction_id] = f"Timestream would refuse the record: {problem}"
    return fitting, refused


def unique_by_key(transactions: list[Transaction] | tuple[Transaction, ...]) -> list[Transaction]:
    """The transactions with the first of each transaction_id (a batch may repeat one)."""
    seen: set[str] = set()
    unique: list[Transaction] = []
    for transaction in transactions:
        if transaction.transaction_id not in seen:
            seen.add(transaction.transaction_id)
            unique.append(transaction)
    return unique


def quote_identifier(name: str) -> str:
    """A double-quoted SQL identifier (Timestream and DuckDB quote the same way)."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A single-quoted SQL string literal; values come from transaction data, so quotes are doubled."""
    return "'" + value.replace("'", "''") + "'"
