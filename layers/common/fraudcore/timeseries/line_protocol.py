"""Transactions as InfluxDB line protocol, the write format of InfluxDB 3 (``/api/v3/write_lp``).

One line per transaction, in the table (measurement) ``<table>``::

    transactions,account_id=A1,transaction_id=T9 amount=12.5,card_id="C1",country="FR" 1767225600000

Schema (the reasons are in docs/architecture.md):

- **tags** (:data:`TAGS`): ``account_id`` and ``transaction_id``. InfluxDB 3's primary key is
  the tag set plus ``time``, and a point written again with the same key replaces the stored
  one. With both ids in the key every transaction is its own series: a replayed record
  overwrites itself with the same values (idempotent), and two transactions of one account
  in the same millisecond never overwrite each other. The key also sorts the data by
  account, the column most rules and the analyses filter and group by.
- **fields**: ``amount`` (float) and every other identifier as a string field: they vary
  from point to point (high cardinality) and only need to be read, not to key the data.
- **time**: event time, written in milliseconds (``precision=millisecond``).

Escaping follows the line-protocol rules: in the measurement, commas and spaces; in tag
keys, tag values and field keys, commas, equals signs and spaces; in string field values,
double quotes and backslashes. What line protocol cannot carry is refused, naming the
field, rather than written wrong: newlines in any value, and backslashes in tag values
(a tag value's backslash before an escaped character cannot be told from an escape).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from ..model import DIMENSION_FIELDS, Transaction
from . import event_time_ms, measure_values, record_dimensions

#: the identifiers written as tags (the primary key with time), in key order
TAGS: tuple[str, ...] = ("account_id", "transaction_id")
#: the identifiers written as string fields
STRING_FIELDS: tuple[str, ...] = tuple(name for name in DIMENSION_FIELDS if name not in TAGS)
#: ``precision`` of every write: the lines carry epoch milliseconds
PRECISION = "millisecond"

_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})
_KEY_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})


class LineProtocolError(ValueError):
    """A value line protocol cannot carry; the message names the field."""


def _no_newlines(name: str, value: str) -> None:
    if "\n" in value or "\r" in value:
        raise LineProtocolError(f"{name}: line protocol cannot carry a line break ({value[:40]!r})")


def escape_measurement(name: str) -> str:
    _no_newlines("measurement", name)
    if not name:
        raise LineProtocolError("measurement: must not be empty")
    return name.translate(_MEASUREMENT_ESCAPES)


def escape_key(name: str) -> str:
    """A tag key, tag value or field key, escaped."""
    return name.translate(_KEY_ESCAPES)


def escape_tag_value(name: str, value: str) -> str:
    _no_newlines(name, value)
    if "\\" in value:
        raise LineProtocolError(
            f"{name}: a tag value cannot hold a backslash in line protocol ({value[:40]!r})"
        )
    return escape_key(value)


def escape_string_field(name: str, value: str) -> str:
    """A string field value: double-quoted, with double quotes and backslashes escaped."""
    _no_newlines(name, value)
    return '"' + value.translate(_STRING_ESCAPES) + '"'


def format_float(name: str, value: float) -> str:
    if not math.isfinite(value):
        raise LineProtocolError(f"{name}: {value!r} is not a finite number")
    return repr(float(value))


def transaction_line(measurement: str, transaction: Transaction) -> str:
    """The line of one transaction (a :class:`LineProtocolError` when it cannot be written)."""
    dimensions = record_dimensions(transaction)
    tags = "".join(
        f",{escape_key(name)}={escape_tag_value(name, dimensions[name])}"
        for name in TAGS
        if name in dimensions
    )
    fields = [
        f"{escape_key(name)}={format_float(name, value)}"
        for name, value in measure_values(transaction).items()
    ]
    fields += [
        f"{escape_key(name)}={escape_string_field(name, dimensions[name])}"
        for name in STRING_FIELDS
        if name in dimensions
    ]
    return f"{escape_measurement(measurement)}{tags} {','.join(fields)} {event_time_ms(transaction)}"


def encode_batch(
    measurement: str, transactions: Iterable[Transaction]
) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """``([(transaction_id, line)], {transaction_id: why it cannot be written})``."""
    lines: list[tuple[str, str]] = []
    refused: dict[str, str] = {}
    for transaction in transactions:
        try:
            lines.append((transaction.transaction_id, transaction_line(measurement, transaction)))
        except LineProtocolError as error:
            refused[transaction.transaction_id] = f"cannot be written as line protocol: {error}"
    return lines, refused
