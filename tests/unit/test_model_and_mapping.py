"""The canonical model's validation and the field mappings."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from fraudcore.mapping import FieldMapping, MappingError, derive_transaction_id, load_mapping
from fraudcore.model import InvalidRecord, parse_transaction

SAMPLE = {
    "object_type": "transaction",
    "account": "1234-5678-22",
    "accountemail": "shared@example-anycompany.com",
    "phone": "10001000",
    "merchant": "1234-5678-1003",
    "transaction_amount": "20000",
    "time": "Nov 29, 2026, 12:00:00.123",
}


def canonical(**changes):
    tx = {"transaction_id": "t-1", "timestamp": "2026-11-29T12:00:00Z", "account_id": "a-1", "amount": 10}
    tx.update(changes)
    return tx


def test_valid_transaction_defaults_and_types():
    tx = parse_transaction(canonical(amount="12.50", phone=10001000, currency="eur", ip=""))
    assert tx.amount == 12.5
    assert tx.currency == "EUR"
    assert tx.phone == "10001000"
    assert tx.ip is None
    assert tx.timestamp == datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def test_epoch_millis_and_naive_iso_are_utc():
    assert parse_transaction(canonical(timestamp=1796040000000)).timestamp == datetime(
        2026, 11, 30, 12, 0, tzinfo=UTC
    )
    assert parse_transaction(canonical(timestamp="2026-11-29T12:00:00")).timestamp.tzinfo == UTC
    assert parse_transaction(canonical(timestamp="2026-11-29T13:00:00+01:00")).timestamp.hour == 12


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (canonical(amount=-5), "amount: must be >= 0"),
        (canonical(amount="ten"), "amount: 'ten' is not a number"),
        (canonical(amount=float("nan")), "amount: must be a finite number"),
        (canonical(timestamp="29/11/2026 12:00"), "timestamp: '29/11/2026 12:00' is not ISO 8601"),
        (
            {k: v for k, v in canonical().items() if k != "account_id"},
            "account_id: required field is missing",
        ),
        (canonical(currency="DOLLARS"), "currency:"),
        (["not", "an", "object"], "record must be a JSON object, got list"),
    ],
)
def test_invalid_records_name_the_field_and_problem(payload, expected):
    with pytest.raises(InvalidRecord) as error:
        parse_transaction(payload)
    assert expected in error.value.reason


def test_several_problems_are_all_named():
    with pytest.raises(InvalidRecord) as error:
        parse_transaction({"timestamp": "x", "amount": -1})
    reason = error.value.reason
    for field in ("transaction_id", "account_id", "timestamp", "amount"):
        assert f"{field}:" in reason


def test_aws_guidance_sample_mapping():
    mapping = FieldMapping.load("aws-guidance-sample")
    tx = parse_transaction(mapping.apply(SAMPLE))
    assert tx.account_id == "1234-5678-22"
    assert tx.email == "shared@example-anycompany.com"
    assert tx.merchant_id == "1234-5678-1003"
    assert tx.amount == 20000.0
    assert tx.timestamp == datetime(2026, 11, 29, 12, 0, 0, 123000, tzinfo=UTC)
    assert tx.currency == "USD"
    # deterministic id: the same record always gets the same id, another record another one
    assert tx.transaction_id == parse_transaction(mapping.apply(dict(SAMPLE))).transaction_id
    assert (
        tx.transaction_id
        != parse_transaction(mapping.apply({**SAMPLE, "time": "Nov 29, 2026, 12:00:01.000"})).transaction_id
    )
    assert tx.transaction_id.startswith("tx-")


def test_mapping_rejects_other_object_types_and_bad_times():
    mapping = FieldMapping.load("aws-guidance-sample")
    with pytest.raises(InvalidRecord, match="object_type: expected 'transaction'"):
        mapping.apply({**SAMPLE, "object_type": "login"})
    with pytest.raises(InvalidRecord, match="does not match the time format"):
        mapping.apply({**SAMPLE, "time": "2026-11-29 12:00"})
    with pytest.raises(InvalidRecord, match=r"amount: '20k' is not a number"):
        mapping.apply({**SAMPLE, "transaction_amount": "20k"})


@pytest.mark.parametrize(
    ("time_spec", "raw", "expected"),
    [
        ({"format": "epoch_s"}, "1796040000", datetime(2026, 11, 30, 12, 0, tzinfo=UTC)),
        ({"format": "epoch_ms"}, 1796040000500, datetime(2026, 11, 30, 12, 0, 0, 500000, tzinfo=UTC)),
        ({"format": "iso8601"}, "2026-11-30T12:00:00Z", datetime(2026, 11, 30, 12, 0, tzinfo=UTC)),
        (
            {"format": "%d/%m/%Y %H:%M", "timezone": "Europe/Berlin"},
            "30/11/2026 13:00",
            datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
        ),
    ],
)
def test_time_formats(time_spec, raw, expected):
    mapping = FieldMapping.from_dict(
        {
            "name": "t",
            "rename": {"acct": "account_id", "amt": "amount", "when": "timestamp", "id": "transaction_id"},
            "numbers": ["amount"],
            "time": {"field": "timestamp", **time_spec},
            "defaults": {"currency": "EUR"},
        }
    )
    tx = parse_transaction(mapping.apply({"acct": "a", "amt": "1,234.50", "when": raw, "id": "x1"}))
    assert tx.timestamp == expected
    assert tx.amount == 1234.5
    assert tx.currency == "EUR"
    assert tx.transaction_id == "x1"


def test_transaction_id_from_chosen_fields():
    mapping = FieldMapping.from_dict(
        {
            "name": "f",
            "rename": {"acct": "account_id", "amt": "amount", "ts": "timestamp"},
            "transaction_id": {"derive_from": ["account_id", "timestamp"]},
        }
    )
    a = mapping.apply({"acct": "a", "amt": 1, "ts": "2026-01-01T00:00:00Z", "noise": 1})
    b = mapping.apply({"acct": "a", "amt": 2, "ts": "2026-01-01T00:00:00Z", "noise": 2})
    assert (
        a["transaction_id"]
        == b["transaction_id"]
        == derive_transaction_id(
            {"account_id": "a", "timestamp": "2026-01-01T00:00:00Z"}, ["account_id", "timestamp"]
        )
    )


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"rename": {"x": "acount_id"}}, "'acount_id' is not a canonical field"),
        ({"time": {"format": "dd/mm/yyyy"}}, "expected a strftime pattern"),
        ({"time": {"timezone": "Mars/Olympus"}}, "not a known time zone"),
        ({"renames": {}}, "unknown keys ['renames']"),
    ],
)
def test_bad_mapping_documents_are_explained(doc, message):
    with pytest.raises(MappingError) as error:
        FieldMapping.from_dict(doc, origin="my.yaml")
    assert message in str(error.value)
    assert "my.yaml" in str(error.value)


def test_unknown_mapping_name_lists_the_shipped_ones(tmp_path):
    with pytest.raises(MappingError, match="aws-guidance-sample"):
        FieldMapping.load(str(tmp_path / "nope.yaml"))


def test_auto_mapping_takes_canonical_and_sample_records():
    auto = load_mapping("auto")
    assert parse_transaction(auto.apply(canonical())).account_id == "a-1"
    assert parse_transaction(auto.apply(SAMPLE)).account_id == "1234-5678-22"
    with pytest.raises(InvalidRecord, match="account_id: required field is missing"):
        parse_transaction(auto.apply({"something": "else"}))


def test_mapping_file_from_json(tmp_path):
    path = tmp_path / "producer.json"
    path.write_text(json.dumps({"name": "p", "rename": {"acct": "account_id"}}))
    assert FieldMapping.load(str(path)).rename == {"acct": "account_id"}
