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
