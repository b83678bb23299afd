"""Line protocol: the encoder of the InfluxDB 3 adapter and the reader of the local stand-ins.

Hostile values (separators, quotes, backslashes, unicode, line breaks) either survive the
round trip unchanged or are refused with the field named; nothing is written wrong.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fraudcore.model import Transaction
from fraudcore.timeseries.line_protocol import (
    LineProtocolError,
    encode_batch,
    escape_key,
    escape_measurement,
    escape_string_field,
    transaction_line,
)
from fraudlocal.adapters.line_protocol import LineError, parse_line, parse_lines

AT = datetime(2026, 11, 29, 12, 0, 0, 123000, tzinfo=UTC)
HOSTILE = [
    "plain",
    "with space",
    "comma,inside",
    "equals=sign",
    'double"quote',
    "single'quote",
    "back\\slash",
    "ends with backslash\\",
    '\\, mixed =\\" all',
    "unicode ✓ žluťoučký 日本",
    "two  spaces\tand a tab",
    "=,= ,,",
]


def tx(**extra: object) -> Transaction:
    """A transaction carrying ``extra`` as it is.

    The canonical model already refuses control characters in identifiers; the values are
    set without its validation so the encoder's own refusal is tested too.
    """
    base = {"transaction_id": "t1", "timestamp": AT, "account_id": "a1", "amount": 12.5}
    return Transaction.model_validate(base).model_copy(update=extra)


def test_a_transaction_is_one_line_with_two_tags_string_fields_and_milliseconds() -> None:
    line = transaction_line("transactions", tx(card_id="c1", country="FR"))
    assert line == (
        'transactions,account_id=a1,transaction_id=t1 amount=12.5,card_id="c1",country="FR",currency="USD" '
        f"{int(AT.timestamp() * 1000)}"
    )
    point = parse_line(line, "millisecond")
    assert point.tags == {"account_id": "a1", "transaction_id": "t1"}
    assert point.fields == {"amount": 12.5, "card_id": "c1", "country": "FR", "currency": "USD"}
    assert point.time_ns == int(AT.timestamp() * 1000) * 1_000_000


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_string_fields_survive_the_round_trip(value: str) -> None:
    line = transaction_line("transactions", tx(device_id=value, email=value + "@x"))
    point = parse_line(line, "millisecond")
    assert point.fields["device_id"] == value
    assert point.fields["email"] == value + "@x"
    assert point.tags == {"account_id": "a1", "transaction_id": "t1"}


@pytest.mark.parametrize("value", [v for v in HOSTILE if "\\" not in v])
def test_hostile_tag_values_survive_the_round_trip(value: str) -> None:
    line = transaction_line("transactions", tx(account_id=value, transaction_id=value + "-t"))
    point = parse_line(line, "millisecond")
    assert point.tags == {"account_id": value, "transaction_id": value + "-t"}
    assert point.fields["amount"] == 12.5


@pytest.mark.parametrize("name", ["my table", "a,b", "tab=le", "x\\y"])
def test_measurement_names_are_escaped(name: str) -> None:
    assert parse_line(f"{escape_measurement(name)} f=1", "second").measurement == name


def test_keys_escape_commas_equals_and_spaces() -> None:
    assert escape_key("a b,c=d") == r"a\ b\,c\=d"
    assert escape_string_field("f", 'say "hi" \\o/') == r'"say \"hi\" \\o/"'


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"account_id": "a\\1"}, "account_id"),  # a backslash in a tag value cannot be carried
    ],
)
def test_values_line_protocol_cannot_carry_are_refused_naming_the_field(extra: dict, field: str) -> None:
    with pytest.raises(LineProtocolError, match=field):
        transaction_line("transactions", tx(**extra))
    lines, refused = encode_batch("transactions", [tx(**extra), tx(transaction_id="t2")])
    assert [tid for tid, _ in lines] == ["t2"]
    assert field in refused["t1"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("transactions amount=1", None),
        ("transactions", "expected a space"),
        ("transactions,account_id amount=1 1", "has no value"),
        ("transactions,account_id= amount=1 1", "must not be empty"),
        ("transactions amount= 1", "has no value"),
        ('transactions name="open 1', "closing double quote"),
        ("transactions amount=1x 1", "invalid value"),
        ("transactions amount=1 12:00", "invalid timestamp"),
        ("transactions amount=1,amount=2 1", "appears twice"),
        ("transactions,a=1 a=2 1", "both a tag and a field"),
        (",a=1 f=1 1", "missing measurement"),
    ],
)
def test_the_reader_refuses_what_influxdb_refuses(line: str, message: str | None) -> None:
    if message is None:
        assert parse_line(line, "nanosecond").fields == {"amount": 1.0}
        return
    with pytest.raises(LineError, match=message):
        parse_line(line, "nanosecond")


def test_field_types_and_precisions() -> None:
    point = parse_line('m i=-3i,u=7u,f=1e3,b=T,s="x",g=false 5', "second")
    assert point.fields == {"i": -3, "u": ("u", 7), "f": 1000.0, "b": True, "s": "x", "g": False}
    assert point.time_ns == 5_000_000_000
    assert parse_line("m f=1 1767225600000", "auto").time_ns == 1767225600000 * 1_000_000


def test_errors_carry_line_numbers_counted_over_the_whole_body() -> None:
    points, errors = parse_lines("m f=1 1\n\n# comment\nm f= 2\nm f=3 3", "second")
    assert [number for number, _, _ in points] == [1, 5]
    assert errors == [
        {"original_line": "m f= 2", "line_number": 4, "error_message": "field 'f' has no value"}
    ]


@pytest.mark.parametrize(
    ("extra", "field"),
    [({"device_id": "line\nbreak"}, "device_id"), ({"account_id": "carriage\rreturn"}, "account_id")],
)
def test_line_breaks_are_refused_by_the_model_before_any_adapter(extra: dict, field: str) -> None:
    from pydantic import ValidationError

    base = {"transaction_id": "t1", "timestamp": AT, "account_id": "a1", "amount": 12.5}
    with pytest.raises(ValidationError, match=field):
        Transaction.model_validate({**base, **extra})
