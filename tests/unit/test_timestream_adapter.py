"""The Timestream adapter against botocore's Stubber (exact requests, error cases) and moto."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from fraudcore.model import Transaction
from fraudcore.ports import TimeseriesStore
from fraudcore.timeseries.timestream import TimestreamStore, parse_timestamp

NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
DATABASE, TABLE = "fraud", "transactions"


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def tx(n: int, *, at: datetime | None = None, **fields: Any) -> Transaction:
    moment = at or NOW - timedelta(minutes=5) + timedelta(milliseconds=n)
    return Transaction(
        transaction_id=f"tx-{n}", timestamp=moment, account_id=f"acct-{n % 7}", amount=10.5 + n, **fields
    )


class Recorder:
    """Collects the waits asked of the injected sleep."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def stubbed_store(**options: Any) -> tuple[TimestreamStore, Stubber, Stubber, Recorder]:
    write = boto3.client("timestream-write", region_name="us-east-1")
    query = boto3.client("timestream-query", region_name="us-east-1")
    sleep = Recorder()
    store = TimestreamStore(
        DATABASE,
        TABLE,
        24,
        write_client=write,
        query_client=query,
        sleep=sleep,
        clock=lambda: NOW,
        jitter=lambda low, high: high,  # deterministic: always the ceiling
        **options,
    )
    return store, Stubber(write), Stubber(query), sleep


def written(total: int = 1) -> dict[str, Any]:
    return {"RecordsIngested": {"Total": total, "MemoryStore": total, "MagneticStore": 0}}


def rejected(*items: dict[str, Any]) -> dict[str, Any]:
    return {"Message": "One or more records have been rejected.", "RejectedRecords": list(items)}


OUTSIDE_MEMORY_STORE = "The record timestamp is outside the time range of the memory store."


def refuse_time_range(write: Stubber) -> None:
    """The next WriteRecords call refuses its first record as outside the memory store's range."""
    write.add_client_error(
        "write_records",
        "RejectedRecordsException",
        http_status_code=419,
        modeled_fields=rejected({"RecordIndex": 0, "Reason": OUTSIDE_MEMORY_STORE}),
    )


def test_implements_the_port() -> None:
    store, *_ = stubbed_store()
    assert isinstance(store, TimeseriesStore)
    assert (store.database, store.table) == (DATABASE, TABLE)


def test_record_shape_dimensions_measures_and_millisecond_time() -> None:
    store, write, _, _ = stubbed_store()
    full = tx(1, at=datetime(2026, 11, 29, 11, 59, 0, 123000, tzinfo=UTC), device_id="dev-9", ip="10.0.0.1")
    expected = {
        "DatabaseName": DATABASE,
        "TableName": TABLE,
        "CommonAttributes": {
            "MeasureName": "transaction",
            "MeasureValueType": "MULTI",
            "TimeUnit": "MILLISECONDS",
            "Version": 1,
        },
        "Records": [
            {
                "Dimensions": [
                    {"Name": "account_id", "Value": "acct-1", "DimensionValueType": "VARCHAR"},
                    {"Name": "transaction_id", "Value": "tx-1", "DimensionValueType": "VARCHAR"},
                    {"Name": "device_id", "Value": "dev-9", "DimensionValueType": "VARCHAR"},
                    {"Name": "ip", "Value": "10.0.0.1", "DimensionValueType": "VARCHAR"},
                    {"Name": "currency", "Value": "USD", "DimensionValueType": "VARCHAR"},
                ],
                "MeasureValues": [{"Name": "amount", "Value": "11.5", "Type": "DOUBLE"}],
                "Time": "1795953540123",
            }
        ],
    }
    write.add_response("write_records", written(), expected)
    with write:
        outcome = store.write([full])
    write.assert_no_pending_responses()
    assert outcome.stored == {"tx-1"}
    assert outcome.requests == 1


def test_absent_and_blank_identifiers_are_not_dimensions() -> None:
    store, write, _, _ = stubbed_store()
    write.add_response("write_records", written(), None)
    captured: list[dict[str, Any]] = []
    store.write_client.meta.events.register(
        "provide-client-params.timestream-write.WriteRecords", lambda params, **_: captured.append(params)
    )
    with write:
        store.write([tx(1, card_id="   ", phone="")])
    names = [d["Name"] for d in captured[0]["Records"][0]["Dimensions"]]
    assert names == ["account_id", "transaction_id", "currency"]
    assert all(d["Value"] for d in captured[0]["Records"][0]["Dimensions"])


@mock_aws
def test_1000_records_take_exactly_10_write_requests_of_at_most_100() -> None:
    write = boto3.client("timestream-write", region_name="us-east-1")
    write.create_database(DatabaseName=DATABASE)
    write.create_table(DatabaseName=DATABASE, TableName=TABLE)
    sizes: list[int] = []
    write.meta.events.register(
        "provide-client-params.timestream-write.WriteRecords",
        lambda params, **_: sizes.append(len(params["Records"])),
    )
    store = TimestreamStore(DATABASE, TABLE, 24, write_client=write, sleep=Recorder())

    outcome = store.write([tx(n) for n in range(1000)])

    assert sizes == [100] * 10
    assert outcome.requests == 10
    assert len(outcome.stored) == 1000 and not outcome.rejected and not outcome.failed
    from moto.backends import get_backend

    table = get_backend("timestream-write")["123456789012"]["us-east-1"].databases[DATABASE].tables[TABLE]
    assert len(table.records) == 1000


def test_250_records_are_split_100_100_50_and_repeated_ids_written_once() -> None:
    store, write, _, _ = stubbed_store()
    sizes: list[int] = []
    store.write_client.meta.events.register(
        "provide-client-params.timestream-write.WriteRecords",
        lambda params, **_: sizes.append(len(params["Records"])),
    )
    for _ in range(3):
        write.add_response("write_records", written(), None)
    batch = [tx(n) for n in range(250)] + [tx(3), tx(7)]
    with write:
        outcome = store.write(batch)
    assert sizes == [100, 100, 50]
    assert len(outcome.stored) == 250


def test_rejected_duplicate_with_existing_version_counts_as_stored() -> None:
    store, write, _, _ = stubbed_store()
    write.add_client_error(
        "write_records",
        "RejectedRecordsException",
        "One or more records have been rejected.",
        http_status_code=419,
        modeled_fields=rejected(
            {
                "RecordIndex": 1,
                "Reason": "The record version 1 is lower than the existing version 1. A higher version is required to update the measure value.",
                "ExistingVersion": 1,
            }
        ),
    )
    with write:
        outcome = store.write([tx(0), tx(1), tx(2)])
    assert outcome.stored == {"tx-0", "tx-1", "tx-2"}
    assert not outcome.rejected and not outcome.failed


def test_rejected_duplicate_without_existing_version_counts_as_stored() -> None:
    store, write, _, _ = stubbed_store()
    write.add_client_error(
        "write_records",
        "RejectedRecordsException",
        http_status_code=419,
        modeled_fields=rejected(
            {
                "RecordIndex": 0,
                "Reason": "A record already exists with the same time, dimensions, measure name, and record version.",
            }
        ),
    )
    with write:
        outcome = store.write([tx(0), tx(1)])
    assert outcome.stored == {"tx-0", "tx-1"}


def test_record_older_than_memory_store_window_is_rejected_with_the_reason() -> None:
    store, write, _, _ = stubbed_store()
    old = tx(1, at=NOW - timedelta(days=3))
    write.add_client_error(
        "write_records",
        "RejectedRecordsException",
        http_status_code=419,
        modeled_fields=rejected(
            {
                "RecordIndex": 1,
                "Reason": "The record timestamp is outside the time range [2026-11-28T12:00:00.000Z, 2026-11-29T12:15:00.000Z) of the memory store.",
            }
        ),
    )
    with write:
        outcome = store.write([tx(0), old, tx(2)])
    assert outcome.stored == {"tx-0", "tx-2"}
    assert set(outcome.rejected) == {"tx-1"}
    reason = outcome.rejected["tx-1"]
    assert "older than the Timestream memory-store window (24 h)" in reason
    assert "enable magnetic store writes" in reason and "too old" in reason
    assert "2026-11-26T12:00:00+00:00" in reason
    assert not outcome.failed


def test_record_in_the_far_future_is_rejected_naming_the_clock() -> None:
    store, write, _, _ = stubbed_store()
    refuse_time_range(write)
    with write:
        outcome = store.write([tx(0, at=NOW + timedelta(days=2))])
    assert "in the future" in outcome.rejected["tx-0"]


def test_time_range_refusal_inside_the_window_is_retried_not_rejected() -> None:
    # e.g. the retention was just changed: Timestream refuses times it will soon accept.
    store, write, _, _ = stubbed_store()
    refuse_time_range(write)
    with write:
        outcome = store.write([tx(0, at=NOW - timedelta(hours=2))])
    assert set(outcome.failed) == {"tx-0"} and not outcome.rejected


def test_other_rejection_reason_fails_only_that_record() -> None:
    store, write, _, _ = stubbed_store()
    write.add_client_error(
        "write_records",
        "RejectedRecordsException",
        http_status_code=419,
        modeled_fields=rejected({"RecordIndex": 2, "Reason": "Internal ingestion error for this record."}),
    )
    with write:
        outcome = store.write([tx(0), tx(1), tx(2), tx(3)])
    assert outcome.stored == {"tx-0", "tx-1", "tx-3"}
    assert set(outcome.failed) == {"tx-2"}
    assert "Internal ingestion error for this record." in outcome.failed["tx-2"]
    assert not outcome.rejected


def test_each_rejection_case_in_one_request() -> None:
    store, write, _, _ = stubbed_store()
    write.add_client_error(
        "write_records",
        "RejectedRecordsException",
        http_status_code=419,
        modeled_fields=rejected(
            {
                "RecordIndex": 0,
                "Reason": "The record version 1 is lower than the existing version 1.",
                "ExistingVersion": 1,
            },
            {
                "RecordIndex": 1,
                "Reason": OUTSIDE_MEMORY_STORE,
            },
            {"RecordIndex": 2, "Reason": "Something else."},
        ),
    )
    with write:
        outcome = store.write([tx(0), tx(1, at=NOW - timedelta(days=30)), tx(2), tx(3)])
    assert outcome.stored == {"tx-0", "tx-3"}
    assert set(outcome.rejected) == {"tx-1"}
    assert set(outcome.failed) == {"tx-2"}


def test_throttling_is_retried_with_growing_jittered_waits_then_succeeds() -> None:
    store, write, _, sleep = stubbed_store()
    write.add_client_error("write_records", "ThrottlingException", "Rate exceeded", http_status_code=429)
    write.add_client_error("write_records", "InternalServerException", "oops", http_status_code=500)
    write.add_response("write_records", written(2), None)
    with write:
        outcome = store.write([tx(0), tx(1)])
    write.assert_no_pending_responses()
    assert outcome.stored == {"tx-0", "tx-1"} and not outcome.failed
    assert outcome.requests == 3
    assert sleep.waits == [0.1, 0.2]  # full jitter drawn up to 0.1 * 2**(attempt-1)


def test_full_jitter_draws_between_zero_and_the_ceiling() -> None:
    draws: list[tuple[float, float]] = []
    write = boto3.client("timestream-write", region_name="us-east-1")
    store = TimestreamStore(
        DATABASE,
        TABLE,
        24,
        write_client=write,
        sleep=Recorder(),
        jitter=lambda low, high: draws.append((low, high)) or low,
        max_attempts=6,
        base_delay=1.0,
        max_delay=5.0,
    )
    stub = Stubber(write)
    for _ in range(6):
        stub.add_client_error("write_records", "ThrottlingException", http_status_code=429)
    with stub:
        store.write([tx(0)])
    assert draws == [(0.0, 1.0), (0.0, 2.0), (0.0, 4.0), (0.0, 5.0), (0.0, 5.0)]


def test_throttling_exhausted_fails_the_chunk_with_the_error() -> None:
    store, write, _, sleep = stubbed_store(max_attempts=3)
    for _ in range(3):
        write.add_client_error("write_records", "ThrottlingException", "Rate exceeded", http_status_code=429)
    with write:
        outcome = store.write([tx(0), tx(1)])
    write.assert_no_pending_responses()
    assert set(outcome.failed) == {"tx-0", "tx-1"}
    assert "after 3 attempt(s)" in outcome.failed["tx-0"]
    assert "ThrottlingException: Rate exceeded" in outcome.failed["tx-0"]
    assert len(sleep.waits) == 2 and not outcome.stored


def test_only_the_throttled_chunk_fails() -> None:
    store, write, _, _ = stubbed_store(max_attempts=2)
    write.add_response("write_records", written(100), None)
    write.add_client_error("write_records", "ThrottlingException", http_status_code=429)
    write.add_client_error("write_records", "ThrottlingException", http_status_code=429)
    with write:
        outcome = store.write([tx(n) for n in range(150)])
    assert len(outcome.stored) == 100 and len(outcome.failed) == 50
    assert all(int(key.split("-")[1]) >= 100 for key in outcome.failed)


def test_access_denied_is_not_retried_and_fails_the_records() -> None:
    store, write, _, sleep = stubbed_store()
    write.add_client_error("write_records", "AccessDeniedException", "not allowed", http_status_code=403)
    with write:
        outcome = store.write([tx(0)])
    assert "AccessDeniedException" in outcome.failed["tx-0"]
    assert sleep.waits == []


def test_validation_error_isolates_the_bad_record_by_writing_one_by_one() -> None:
    store, write, _, _ = stubbed_store()
    write.add_client_error(
        "write_records", "ValidationException", "Invalid dimension value", http_status_code=400
    )
    write.add_response(
        "write_records",
        written(),
        {"DatabaseName": DATABASE, "TableName": TABLE, "CommonAttributes": ANY, "Records": [ANY]},
    )
    write.add_client_error(
        "write_records", "ValidationException", "Dimension value too long", http_status_code=400
    )
    write.add_response("write_records", written(), None)
    with write:
        outcome = store.write([tx(0), tx(1), tx(2)])
    write.assert_no_pending_responses()
    assert outcome.stored == {"tx-0", "tx-2"}
    assert outcome.rejected == {
        "tx-1": "Timestream refused the record as invalid: ValidationException: Dimension value too long"
    }
    assert outcome.requests == 4


def test_query_converts_typed_rows_across_pages() -> None:
    store, _, query, _ = stubbed_store()
    columns = [
        {"Name": "account_id", "Type": {"ScalarType": "VARCHAR"}},
        {"Name": "tx_count", "Type": {"ScalarType": "BIGINT"}},
        {"Name": "total", "Type": {"ScalarType": "DOUBLE"}},
        {"Name": "window_end", "Type": {"ScalarType": "TIMESTAMP"}},
        {"Name": "flagged", "Type": {"ScalarType": "BOOLEAN"}},
        {"Name": "devices", "Type": {"ArrayColumnInfo": {"Type": {"ScalarType": "VARCHAR"}}}},
    ]
    query.add_response(
        "query",
        {
            "QueryId": "q1",
            "NextToken": "page-2",
            "ColumnInfo": columns,
            "Rows": [
                {
                    "Data": [
                        {"ScalarValue": "acct-1"},
                        {"ScalarValue": "12"},
                        {"ScalarValue": "1234.5"},
                        {"ScalarValue": "2026-11-29 12:05:00.123456789"},
                        {"ScalarValue": "true"},
                        {"ArrayValue": [{"ScalarValue": "d1"}, {"ScalarValue": "d2"}]},
                    ]
                }
            ],
        },
        {"QueryString": "SELECT 1"},
    )
    query.add_response(
        "query",
        {
            "QueryId": "q1",
            "ColumnInfo": columns,
            "Rows": [
                {
                    "Data": [
                        {"ScalarValue": "acct-2"},
                        {"ScalarValue": "3"},
                        {"NullValue": True},
                        {"ScalarValue": "2026-11-29 12:10:00.000000000"},
                        {"ScalarValue": "false"},
                        {"ArrayValue": []},
                    ]
                }
            ],
        },
        {"QueryString": "SELECT 1", "NextToken": "page-2"},
    )
    with query:
        rows = store.query("SELECT 1")
    query.assert_no_pending_responses()
    assert rows == [
        {
            "account_id": "acct-1",
            "tx_count": 12,
            "total": 1234.5,
            "window_end": datetime(2026, 11, 29, 12, 5, 0, 123456, tzinfo=UTC),
            "flagged": True,
            "devices": ["d1", "d2"],
        },
        {
            "account_id": "acct-2",
            "tx_count": 3,
            "total": None,
            "window_end": datetime(2026, 11, 29, 12, 10, tzinfo=UTC),
            "flagged": False,
            "devices": [],
        },
    ]


def test_count_runs_select_count_on_the_table() -> None:
    store, _, query, _ = stubbed_store()
    query.add_response(
        "query",
        {
            "QueryId": "q",
            "ColumnInfo": [{"Name": "row_count", "Type": {"ScalarType": "BIGINT"}}],
            "Rows": [{"Data": [{"ScalarValue": "4242"}]}],
        },
        {
            "QueryString": 'SELECT count(*) AS row_count FROM "fraud"."transactions" WHERE measure_name = \'transaction\''
        },
    )
    with query:
        assert store.count() == 4242


def test_timestamp_text_without_fraction() -> None:
    assert parse_timestamp("2026-01-02 03:04:05") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_rejection_without_record_details_fails_the_chunk() -> None:
    # Nothing says which records were written: retrying all is the only safe answer.
    store, write, _, _ = stubbed_store()
    write.add_client_error("write_records", "RejectedRecordsException", "rejected", http_status_code=419)
    with write:
        outcome = store.write([tx(0), tx(1)])
    assert set(outcome.failed) == {"tx-0", "tx-1"} and not outcome.stored
    assert "without details" in outcome.failed["tx-0"]


# -- Timestream's record limits, before the request -------------------------------------------


def test_a_record_over_the_size_limits_is_rejected_before_writerecords() -> None:
    store, write, _, _ = stubbed_store()
    long_device = tx(1).model_copy(
        update={"device_id": "d" * 2100}
    )  # over the 2 KB of a series' dimension pairs
    fits = tx(2, device_id="dev-2")
    write.add_response("write_records", written(), {**_request_for([fits])})
    with write:
        outcome = store.write([long_device, fits])
    write.assert_no_pending_responses()  # one request, with the fitting record only
    assert outcome.stored == {"tx-2"}
    assert set(outcome.rejected) == {"tx-1"}
    assert "2048 bytes per series" in outcome.rejected["tx-1"] and "device_id" in outcome.rejected["tx-1"]
    assert outcome.failed == {} and outcome.requests == 1


def test_a_batch_of_only_oversized_records_sends_nothing() -> None:
    store, write, _, _ = stubbed_store()
    with write:
        outcome = store.write([tx(1).model_copy(update={"email": "e" * 3000})])
    assert set(outcome.rejected) == {"tx-1"} and outcome.requests == 0


def test_record_size_counts_as_timestream_meters_a_write() -> None:
    # Identifiers this long are refused by the canonical model first; the adapter checks again.
    from fraudcore.timeseries import MAX_RECORD_BYTES, record_limit_problem, record_size

    small = tx(1)
    # 8 (time) + account_id acct-1 + transaction_id tx-1 + currency USD + "transaction" + amount + 8
    expected = 8 + (10 + 6) + (14 + 4) + (8 + 3) + 11 + 6 + 8
    assert record_size(small) == expected
    assert record_limit_problem(small) is None
    # Dimensions just under the 2,048 bytes of a series, plus time and measures, pass the
    # 2,048-byte record limit: 2,021 bytes of dimension pairs make a 2,054-byte record.
    crowded = tx(2).model_copy(update={"device_id": "d" * 700, "email": "e" * 700, "ip": "i" * 560})
    assert record_size(crowded) == 2054 > MAX_RECORD_BYTES
    assert record_limit_problem(crowded) == (
        "the record takes 2054 bytes, over Timestream's 2048-byte record limit"
    )
    fitting = tx(3).model_copy(update={"device_id": "d" * 700, "email": "e" * 700, "ip": "i" * 520})
    assert record_limit_problem(fitting) is None


def _request_for(transactions: list[Transaction]) -> dict[str, Any]:
    from fraudcore.timeseries.timestream import common_attributes, to_record

    return {
        "DatabaseName": DATABASE,
        "TableName": TABLE,
        "CommonAttributes": common_attributes(),
        "Records": [to_record(t) for t in transactions],
    }


# -- columns that do not exist yet ---------------------------------------------------------------


def test_a_query_naming_a_column_never_written_raises_missing_column() -> None:
    from fraudcore.timeseries import MissingColumnError

    store, _, query, _ = stubbed_store()
    query.add_client_error(
        "query",
        "ValidationException",
        "line 1:8: Column 'card_id' does not exist",
        http_status_code=400,
    )
    with query, pytest.raises(MissingColumnError) as raised:
        store.query('SELECT card_id FROM "fraud"."transactions"')
    assert raised.value.column == "card_id"
    assert "ValidationException: line 1:8: Column 'card_id' does not exist" in str(raised.value)


def test_other_validation_errors_are_not_mistaken_for_a_missing_column() -> None:
    from botocore.exceptions import ClientError

    store, _, query, _ = stubbed_store()
    query.add_client_error("query", "ValidationException", "line 1:1: mismatched input", http_status_code=400)
    with query, pytest.raises(ClientError):
        store.query("SELEC 1")


def test_a_query_endpoint_skips_endpoint_discovery(monkeypatch: pytest.MonkeyPatch) -> None:
    from fraudcore import aws_adapters

    monkeypatch.setattr(aws_adapters, "_clients", {})
    store = TimestreamStore(
        DATABASE, TABLE, 24, query_endpoint="https://query-cell2.timestream.us-east-1.amazonaws.com"
    )
    client = store.query_client
    # botocore turns endpoint discovery off for a client given an endpoint_url
    assert client.meta.endpoint_url == "https://query-cell2.timestream.us-east-1.amazonaws.com"
    discovering = TimestreamStore(DATABASE, TABLE, 24).query_client
    assert discovering.meta.endpoint_url != client.meta.endpoint_url


def test_a_configured_endpoint_is_called_directly_not_discovered(monkeypatch: pytest.MonkeyPatch) -> None:
    from fraudcore import aws_adapters

    monkeypatch.setattr(aws_adapters, "_clients", {})
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5999")
    monkeypatch.setenv("AWS_ENDPOINT_URL_TIMESTREAM_WRITE", "http://127.0.0.1:5998")
    store = TimestreamStore(DATABASE, TABLE, 24)
    assert store.query_client.meta.endpoint_url == "http://127.0.0.1:5999"
    assert store.write_client.meta.endpoint_url == "http://127.0.0.1:5998"
