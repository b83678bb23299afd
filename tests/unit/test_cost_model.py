"""The cost model: prices from one dated file, scans from the rule compiler, docs in step."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from fraudcore.rules import enabled_rules, load_rules, rule_with
from fraudlocal.cli import main
from fraudlocal.cost import CostError, estimate, load_prices
from fraudlocal.cost.docs import document_block, render_block
from fraudlocal.cost.model import (
    RecordSizes,
    measure_record_sizes,
    query_scans,
    rule_scans,
    scheduled_queries,
)

DEPLOY_GUIDE = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
SIZES = RecordSizes(kinesis_bytes=320.0, timestream_bytes=240.0, sample=1)
FIVE = timedelta(minutes=5)


def rules_by_id() -> dict:
    return {rule.id: rule for rule in enabled_rules(load_rules())}


def test_the_deploy_guide_holds_the_tables_the_model_computes() -> None:
    # When this fails: run `fraudlocal cost --write-docs docs/deploy.md` and review the diff.
    assert document_block(DEPLOY_GUIDE) == render_block()


def test_every_price_says_where_and_when_it_was_read() -> None:
    book = load_prices()
    assert book.prices
    for key, price in book.prices.items():
        assert price.value >= 0, key
        assert re.match(r"^\d{4}-\d{2}-\d{2}$", price.checked), key
        assert price.source.startswith("https://aws.amazon.com/"), key
    used = {key for line in estimate(100, FIVE, sizes=SIZES).lines for key in line.prices}
    used |= {key for line in estimate(100, FIVE, "influxdb3", sizes=SIZES).lines for key in line.prices}
    used |= {
        key for line in estimate(100, FIVE, sizes=SIZES, query_pricing="tcu").lines for key in line.prices
    }
    assert used == set(book.prices), "a price nobody uses, or a component without its price"


def test_each_rule_reads_what_its_compiled_query_reads() -> None:
    rules = rules_by_id()
    spike = rule_scans(rules["amount_spike"], "fraud", "transactions", FIVE)
    # the trailing average reads a day of history before the windows it evaluates
    assert max(scan.seconds for scan in spike.scans) >= 86_400
    velocity = rule_scans(rules["velocity"], "fraud", "transactions", FIVE)
    assert len(velocity.scans) == 1  # a hopping window: every phase from one read
    pass_through = rule_scans(rules["mule_pass_through"], "fraud", "transactions", FIVE)
    assert len(pass_through.scans) == 1  # money sent and received, every phase: one read
    assert pass_through.queried_runs == pass_through.runs == 288
    # a rule that waits for its windows to close queries only at the runs that see one close
    spread = rule_scans(rules["device_account_spread"], "fraud", "transactions", FIVE)
    assert spread.runs == 288 and spread.queried_runs == 8  # 2 runs (lateness 10m) x 4 closes a day
    assert all(seconds == 12 * 3600 for seconds in spread.run_seconds)  # the closed window only
    longer = rule_scans(
        rule_with(rules["velocity"], window=timedelta(minutes=20)), "fraud", "transactions", FIVE
    )
    assert longer.seconds() > velocity.seconds()


def test_rules_sharing_a_history_read_it_once_in_one_query() -> None:
    rules = rules_by_id()
    group = (rules["amount_spike"], rules["novel_takeover"], rules["takeover_abroad"])
    queries = scheduled_queries(list(rules.values()))
    # and one more query for each rule whose hits are looked at again (at the runs that see
    # one of its windows close)
    relooking = [rule for rule in rules.values() if rule.relook_after is not None]
    assert group in queries and len(queries) == len(rules) - 2 + len(relooking)
    assert [query[0].id for query in queries[-len(relooking) :]] == [f"{r.id} (re-look)" for r in relooking]
    shared = query_scans(group, "fraud", "transactions", FIVE)
    alone = [rule_scans(rule, "fraud", "transactions", FIVE) for rule in group]
    assert shared.rule == "amount_spike + novel_takeover + takeover_abroad" and shared.queried_runs == 288
    # the day of history (the earliest of the starts) and the candidates: two reads, not six
    assert len(shared.scans) == 2 and all(len(scan.scans) == 2 for scan in alone)
    assert max(scan.seconds for scan in shared.scans) >= 86_400
    assert shared.seconds() < 0.4 * sum(scan.seconds() for scan in alone)


def test_a_read_costs_the_columns_it_names() -> None:
    sizes = measure_record_sizes()
    assert sum(sizes.column_bytes.values()) == pytest.approx(sizes.timestream_bytes)
    assert sizes.row_bytes(None) == sizes.timestream_bytes  # SELECT *: the whole record
    rules = rules_by_id()
    spike = rule_scans(rules["amount_spike"], "fraud", "transactions", FIVE)
    named = {"time", "measure_name", "account_id", "transaction_id", "amount"}
    assert all(scan.columns is not None and scan.columns <= named for scan in spike.scans)
    assert "transaction_id" in max(spike.scans, key=lambda scan: scan.seconds).columns  # the order
    whole = estimate(100, FIVE, sizes=RecordSizes(sizes.kinesis_bytes, sizes.timestream_bytes, sizes.sample))
    aware = estimate(100, FIVE, sizes=sizes)
    assert aware.derived["bytes_scanned_per_run"] < 0.5 * whole.derived["bytes_scanned_per_run"]
    for scan in aware.scans:
        assert 8 < scan["bytes_per_row"] < sizes.timestream_bytes, scan


def test_query_bytes_follow_the_rate_the_schedule_and_the_minimum() -> None:
    quiet = estimate(0.01, FIVE, sizes=SIZES)
    # a trickle: every query pays Timestream's 10 MB minimum (averaged over the day's runs)
    for scan in quiet.scans:
        assert scan["billed_bytes"] == round(10_000_000 * scan["queries_per_day"] / 288), scan
    busy = estimate(100, FIVE, sizes=SIZES)
    assert busy.derived["bytes_scanned_per_run"] == sum(scan["bytes"] for scan in busy.scans)
    assert busy.derived["bytes_scanned_per_run"] > 1_000 * quiet.derived["bytes_scanned_per_run"]
    every_minute = estimate(100, timedelta(minutes=1), sizes=SIZES)
    ratio = every_minute.line("Timestream queries").monthly_usd / busy.line("Timestream queries").monthly_usd
    assert 4 < ratio < 5.5  # five times the runs, each reading slightly less look-back


def test_influxdb3_has_no_charge_per_query() -> None:
    influx = estimate(100, FIVE, "influxdb3", sizes=SIZES)
    components = {line.component for line in influx.lines}
    assert "Timestream queries" not in components and "InfluxDB 3 instance hours" in components
    assert influx.line("InfluxDB 3 instance hours").monthly_usd == pytest.approx(
        730 * load_prices()["influxdb3_instance_hour"]
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tps": 0}, "--tps"),
        ({"tps": 1, "engine": "oracle"}, "--engine"),
        ({"tps": 1, "schedule": timedelta(0)}, "--schedule"),
    ],
)
def test_bad_inputs_are_refused_with_the_option_named(kwargs: dict, message: str) -> None:
    with pytest.raises(CostError, match=message):
        estimate(sizes=SIZES, **kwargs)


def test_the_command_prints_json_with_every_component(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--tps", "100", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["monthly_total_usd"] == pytest.approx(
        sum(c["monthly_usd"] for c in printed["components"]), abs=0.1
    )
    names = " ".join(c["component"] for c in printed["components"])
    for part in ("Kinesis", "Lambda", "Timestream writes", "memory store", "magnetic store", "queries",
                 "Neptune", "Step Functions", "EventBridge", "SQS", "NAT", "CloudWatch", "X-Ray"):  # fmt: skip
        assert part in names, part
    assert printed["assumptions"]["investigations_per_thousand_transactions"] > 0
    assert main(["cost"]) == 2  # --tps is needed


def test_tcu_pricing_bills_the_runs_busy_time_with_its_30_second_minimum() -> None:
    quiet = estimate(1, FIVE, sizes=SIZES, query_pricing="tcu")
    busy = estimate(1000, FIVE, sizes=SIZES, query_pricing="tcu")
    runs = quiet.derived["scheduled_runs_per_month"]
    # a light run is billed 4 TCUs for 30 seconds; a heavy one for as long as it scans
    assert quiet.line("Timestream queries").quantity == pytest.approx(runs * 4 * 30 / 3600)
    assert busy.derived["tcu_seconds_busy_per_run"] > 30
    assert busy.line("Timestream queries").quantity == pytest.approx(
        runs * 4 * busy.derived["tcu_seconds_busy_per_run"] / 3600, rel=1e-2
    )
    with pytest.raises(CostError, match="query-pricing"):
        estimate(1, FIVE, sizes=SIZES, query_pricing="free")
