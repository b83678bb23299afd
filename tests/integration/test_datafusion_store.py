"""The local InfluxDB 3 stand-in: every rule's InfluxDB 3 SQL executed on Apache DataFusion.

The SQL is the text ``fraudlocal rules --dialect influxdb3`` prints, from the same rule
definitions as the Timestream SQL; on the same transactions it must find exactly the hits
the DuckDB store finds with the Timestream SQL translated.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from engine_stores import both_engines

from fraudcore.micro import evaluate_rules
from fraudcore.model import Transaction
from fraudcore.rules import load_rules
from fraudcore.timeseries import MissingColumnError
from fraudcore.timeseries.dialects import INFLUXDB3, TIMESTREAM
from fraudcore.timeseries.rule_sql import compile_range, span_range
from fraudlocal.adapters.timeseries_datafusion import DataFusionTimeseriesStore
from fraudlocal.cli import main
from fraudlocal.scenario.generator import generate

RULES = load_rules()
NOON = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def both_stores(tmp_path_factory: pytest.TempPathFactory):
    """A generated day (500 accounts, planted fraud) in DuckDB and in DataFusion."""
    root = tmp_path_factory.mktemp("engines")
    scenario = generate(accounts=500, days=1, seed=23)
    transactions = [Transaction.model_validate(row) for row in scenario.transactions]
    duck, fusion = both_engines(root, transactions)
    first = min(t.timestamp for t in transactions)
    last = max(t.timestamp for t in transactions)
    yield duck, fusion, first, last
    duck.close()
    fusion.close()


def test_rules_prints_influxdb3_sql_for_every_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--dialect", "influxdb3", "--json", "--at", "2026-11-29T12:00:00Z"]) == 0
    listing = json.loads(capsys.readouterr().out)["rules"]
    assert [item["id"] for item in listing] == [rule.id for rule in RULES]
    for item in listing:
        assert set(item) & {"timestream_sql", "duckdb_sql"} == set()
        assert "date_bin(INTERVAL" in item["influxdb3_sql"] and "bin(time," not in item["influxdb3_sql"]
        assert "from_iso8601_timestamp" not in item["influxdb3_sql"]


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.id)
def test_every_rule_finds_the_same_hits_on_datafusion_as_on_duckdb(both_stores, rule) -> None:
    duck, fusion, first, last = both_stores
    span = span_range(rule, first + timedelta(minutes=5), last + timedelta(hours=1))
    timestream_hits = duck.query(compile_range(rule, "fraud", "transactions", span, TIMESTREAM))
    influx_sql = compile_range(rule, "fraud", "transactions", span, INFLUXDB3)
    influx_hits = fusion.query(influx_sql)

    def key(row: dict) -> tuple:
        return (row["entity_id"], row["window_start"], round(float(row["observed"]), 6))

    assert sorted(map(key, influx_hits)) == sorted(map(key, timestream_hits))
    assert all(row["window_start"].tzinfo is UTC for row in influx_hits)


def test_scheduled_evaluations_flag_the_same_windows(both_stores) -> None:
    duck, fusion, first, _ = both_stores
    flagged = 0
    for hours in (3, 9, 15, 21):
        at = first + timedelta(hours=hours)
        duck_flags, duck_errors = evaluate_rules(duck, RULES, at)
        fusion_flags, fusion_errors = evaluate_rules(fusion, RULES, at)
        assert duck_errors == fusion_errors == {}
        assert [f.to_dict() for f in fusion_flags] == [f.to_dict() for f in duck_flags]
        flagged += len(duck_flags)
    assert flagged > 0


def tx(serial: int, **extra: object) -> Transaction:
    data = {"transaction_id": f"t{serial}", "timestamp": NOON, "account_id": "a", "amount": 1.0, **extra}
    return Transaction.model_validate(data)


def test_columns_never_written_fail_like_influxdb(tmp_path: Path) -> None:
    store = DataFusionTimeseriesStore(tmp_path, "fraud", "transactions")
    with pytest.raises(Exception, match=r"transactions.*not found"):
        store.query('SELECT count(*) FROM "transactions"')
    store.write([tx(1)])
    assert store.query('SELECT count(*) AS n FROM "transactions"') == [{"n": 1}]
    with pytest.raises(MissingColumnError, match="No field named device_id") as missing:
        store.query('SELECT device_id FROM "transactions"')
    assert missing.value.column == "device_id"
    store.write([tx(2, device_id="d")])
    assert store.query('SELECT device_id FROM "transactions" ORDER BY transaction_id') == [
        {"device_id": None},
        {"device_id": "d"},
    ]


def test_replays_overwrite_and_the_store_survives_a_reopen(tmp_path: Path) -> None:
    store = DataFusionTimeseriesStore(tmp_path, "fraud", "transactions")
    batch = [tx(i, timestamp=NOON + timedelta(seconds=i)) for i in range(3)]
    assert store.write(batch).stored == {"t0", "t1", "t2"}
    store.query("SELECT 1")
    assert store.write(batch).stored == {"t0", "t1", "t2"}  # a replay: same key, same values
    store.write([tx(1, timestamp=NOON + timedelta(seconds=1), amount=5.0)])
    assert store.count() == 3
    store.close()
    reopened = DataFusionTimeseriesStore(tmp_path, "fraud", "transactions")
    rows = reopened.query('SELECT transaction_id, amount FROM "transactions" ORDER BY transaction_id')
    assert rows == [
        {"transaction_id": "t0", "amount": 1.0},
        {"transaction_id": "t1", "amount": 5.0},
        {"transaction_id": "t2", "amount": 1.0},
    ]
    assert reopened.count() == 3
    reopened.close()


def test_a_field_written_with_another_type_is_refused_line_by_line(tmp_path: Path) -> None:
    from fraudlocal.adapters.line_protocol import parse_lines

    store = DataFusionTimeseriesStore(tmp_path, "fraud", "transactions")
    points, _ = parse_lines(
        "transactions,account_id=x,transaction_id=s amount=1.0,card_id=3i 1\n"
        'transactions,account_id=y,transaction_id=u amount=2.0,card_id="c" 2\n'
        "transactions,account_id=z,transaction_id=v amount=3.0 3",
        "second",
    )
    errors = store.write_points(points)
    assert [(e["line_number"], e["error_message"]) for e in errors] == [
        (2, "invalid column type for column 'card_id', expected Integer, got String")
    ]
    outcome = store.write([tx(9, card_id="c9")])
    assert "expected Integer, got String" in outcome.rejected["t9"]
    assert store.count() == 2
