"""Contract tests of the InfluxDB 3 HTTP adapter against a local v3 server on 127.0.0.1.

The server (fraudlocal.emulators.influxdb3_server) implements /api/v3/write_lp and /api/v3/query_sql
over the DataFusion store: line-protocol parsing, partial-write error bodies, bearer-token
checks, and injected 429 / 5xx / dropped connections. Each test starts and stops its own.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import urllib3

from fraudcore.ingest import ingest_records
from fraudcore.micro import evaluate_rules
from fraudcore.model import Transaction
from fraudcore.rules import load_rules
from fraudcore.timeseries import MissingColumnError
from fraudcore.timeseries.influxdb3 import InfluxDB3Error, InfluxDB3Store, token_from_secret
from fraudlocal.adapters.sinks import JsonlRejectedRecordSink
from fraudlocal.adapters.timeseries_datafusion import DataFusionTimeseriesStore
from fraudlocal.emulators.influxdb3_server import InfluxDB3Server

TOKEN = "apiv3_local-test-token"
NOON = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture
def server(tmp_path: Path):
    with InfluxDB3Server(tmp_path / "server", TOKEN) as running:
        yield running


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def adapter(server: InfluxDB3Server, token: str = TOKEN, **options) -> tuple[InfluxDB3Store, Sleeps]:
    sleeps = Sleeps()
    tokens = token if callable(token) else (lambda refresh=False: token)
    store = InfluxDB3Store(server.url, "fraud", "transactions", tokens, sleep=sleeps, **options)
    return store, sleeps


def tx(serial: int, minutes: float = 0, **extra) -> Transaction:
    data = {
        "transaction_id": f"t{serial}",
        "timestamp": NOON + timedelta(minutes=minutes),
        "account_id": f"a{serial % 3}",
        "amount": 10.0 + serial,
        "card_id": f"c{serial % 2}",
        **extra,
    }
    return Transaction.model_validate(data)


def test_a_batch_is_written_gzipped_with_the_token_and_read_back(server: InfluxDB3Server) -> None:
    store, sleeps = adapter(server)
    outcome = store.write([tx(i, i) for i in range(5)])
    assert outcome.stored == {f"t{i}" for i in range(5)} and not outcome.rejected and not outcome.failed
    method, path, headers = server.requests[0]
    assert (method, path) == ("POST", "/api/v3/write_lp")
    assert headers["Authorization"] == f"Bearer {TOKEN}" and headers["Content-Encoding"] == "gzip"
    rows = store.query(
        'SELECT transaction_id, account_id, amount, card_id, time FROM "transactions" ORDER BY time'
    )
    assert [row["transaction_id"] for row in rows] == [f"t{i}" for i in range(5)]
    assert rows[2] == {
        "transaction_id": "t2",
        "account_id": "a2",
        "amount": 12.0,
        "card_id": "c0",
        "time": NOON + timedelta(minutes=2),
    }
    assert store.count() == 5 and sleeps == []


def test_one_refused_line_is_rejected_with_the_servers_reason_and_the_rest_is_stored(
    server: InfluxDB3Server, tmp_path: Path
) -> None:
    store, _ = adapter(server)
    # The table learns device_id as an integer field; a transaction's device_id is a string.
    raw = urllib3.request(
        "POST",
        f"{server.url}/api/v3/write_lp?db=fraud&precision=second",
        body=b"transactions,account_id=x,transaction_id=seed amount=1.0,device_id=7i 1764417600",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert raw.status == 204
    records = [
        {
            "kinesis": {
                "sequenceNumber": str(i),
                "partitionKey": f"a{i}",
                "data": base64.b64encode(
                    json.dumps(tx(i, i, **extra).model_dump(mode="json")).encode()
                ).decode(),
            }
        }
        for i, extra in enumerate([{}, {"device_id": "d1"}, {}])
    ]
    sink = JsonlRejectedRecordSink(tmp_path / "state")
    result = ingest_records(records, store.write, sink, "IngestTimeseriesFunction")
    assert (result.stored, result.rejected, result.failed_sequence_numbers) == (2, 1, {})
    rejected = [json.loads(line) for line in (tmp_path / "state" / "rejected.jsonl").read_text().splitlines()]
    assert [r["sequence_number"] for r in rejected] == ["1"]
    assert "InfluxDB 3 refused the line" in rejected[0]["reason"]
    assert "device_id" in rejected[0]["reason"] and "expected Integer, got String" in rejected[0]["reason"]
    ids = {row["transaction_id"] for row in store.query('SELECT transaction_id FROM "transactions"')}
    assert ids == {"seed", "t0", "t2"}


def test_lines_that_cannot_be_encoded_are_rejected_before_sending(server: InfluxDB3Server) -> None:
    store, _ = adapter(server)
    # A line break is refused by the canonical model already; the encoder refuses it again.
    broken = tx(3).model_copy(update={"device_id": "two\nlines"})
    outcome = store.write([tx(1), tx(2, account_id="bad\\id"), broken])
    assert outcome.stored == {"t1"}
    assert set(outcome.rejected) == {"t2", "t3"}
    assert "account_id" in outcome.rejected["t2"] and "device_id" in outcome.rejected["t3"]


def test_throttling_and_server_errors_are_retried_with_backoff(server: InfluxDB3Server) -> None:
    store, sleeps = adapter(server)
    server.inject(429, retry_after="2")
    server.inject(503)
    server.inject(None)  # a dropped connection
    outcome = store.write([tx(1)])
    assert outcome.stored == {"t1"} and not outcome.failed
    assert len(sleeps) == 3 and sleeps[0] == 2.0
    server.inject(500, times=10)
    query_sleeps = len(sleeps)
    server.inject(502, times=1)
    with pytest.raises(InfluxDB3Error, match="HTTP 500"):
        store.query('SELECT count(*) AS n FROM "transactions"')
    assert len(sleeps) - query_sleeps == store.max_retries


def test_a_write_that_keeps_failing_is_reported_failed_so_kinesis_retries_it(server: InfluxDB3Server) -> None:
    store, _ = adapter(server, max_retries=2)
    server.inject(503, times=3)
    outcome = store.write([tx(1), tx(2)])
    assert set(outcome.failed) == {"t1", "t2"} and not outcome.stored
    assert "HTTP 503" in outcome.failed["t1"]


def test_a_refused_token_is_read_again_once(server: InfluxDB3Server) -> None:
    calls: list[bool] = []

    def rotated(refresh: bool = False) -> str:
        calls.append(refresh)
        return TOKEN if refresh else "stale-token"

    store, _ = adapter(server, token=rotated)
    assert store.write([tx(1)]).stored == {"t1"}
    assert calls[:2] == [False, True]
    wrong, _ = adapter(server, token="wrong")
    outcome = wrong.write([tx(2)])
    assert "HTTP 401" in outcome.failed["t2"]


def test_a_replay_overwrites_the_same_point(server: InfluxDB3Server) -> None:
    store, _ = adapter(server)
    batch = [tx(i, i) for i in range(4)]
    store.write(batch)
    store.write(batch)
    assert store.count() == 4
    # Same series key and time with another amount: the point is replaced, not added.
    store.write([tx(1, 1, amount=99.0)])
    rows = store.query("SELECT amount FROM \"transactions\" WHERE transaction_id = 't1'")
    assert rows == [{"amount": 99.0}] and store.count() == 4


def test_queries_naming_unknown_columns_or_databases_fail_like_influxdb(server: InfluxDB3Server) -> None:
    store, _ = adapter(server)
    with pytest.raises(InfluxDB3Error, match="HTTP 404"):
        store.query('SELECT 1 FROM "transactions"')
    store.write([tx(1)])
    # a field no point has carried: HTTP 400 "No field named ...", raised as a missing column
    with pytest.raises(MissingColumnError, match="No field named counterparty_account_id") as missing:
        store.query('SELECT counterparty_account_id FROM "transactions"')
    assert missing.value.column == "counterparty_account_id"
    with pytest.raises(InfluxDB3Error, match="not found"):
        store.query('SELECT * FROM "nothing"')


def test_the_rules_give_the_same_flags_over_http_as_on_the_local_datafusion_store(
    server: InfluxDB3Server, tmp_path: Path
) -> None:
    rules = load_rules()
    transactions = [
        tx(i, i * 0.2, account_id="burst", amount=20_000.0, card_id=f"k{i % 2}") for i in range(4)
    ]
    transactions += [
        tx(100 + i, i, account_id=f"acct{i}", device_id="farm", counterparty_account_id="burst")
        for i in range(6)
    ]
    transactions += [tx(200 + i, i * 0.5, card_id="tested", amount=1.0) for i in range(6)]
    remote, _ = adapter(server)
    assert not remote.write(transactions).rejected
    local = DataFusionTimeseriesStore(tmp_path / "local", "fraud", "transactions")
    local.write(transactions)
    at = NOON + timedelta(minutes=6)
    remote_skipped: dict[str, str] = {}
    local_skipped: dict[str, str] = {}
    remote_flags, remote_errors = evaluate_rules(remote, rules, at, skipped=remote_skipped)
    local_flags, local_errors = evaluate_rules(local, rules, at, skipped=local_skipped)
    # Columns never written (country, ip, email, phone) are not in InfluxDB 3's schema: their
    # rules are skipped with the reason on both, as a rule reading an unused Timestream column is.
    assert remote_errors == local_errors == {}
    assert (
        set(remote_skipped)
        == set(local_skipped)
        == {
            "geo_velocity",
            "ip_account_burst",
            "novel_takeover",
            "shared_email",
            "shared_phone",
            "takeover_abroad",
        }
    )
    assert "column 'country' does not exist yet" in remote_skipped["geo_velocity"]
    assert "No field named country" in remote_skipped["geo_velocity"]
    assert {(f.rule, f.entity_id, f.window_start) for f in remote_flags} == {
        (f.rule, f.entity_id, f.window_start) for f in local_flags
    }
    assert {f.rule for f in remote_flags} >= {"high_value_burst", "device_account_burst", "card_testing"}
    local.close()


def test_the_token_comes_from_json_or_plain_secrets() -> None:
    assert token_from_secret('{"token": "abc"}') == "abc"
    assert token_from_secret("  plain-token\n") == "plain-token"
    assert token_from_secret('{"username": "admin", "adminToken": "xyz"}') == "xyz"
    with pytest.raises(InfluxDB3Error, match="token"):
        token_from_secret('{"username": "admin"}')
