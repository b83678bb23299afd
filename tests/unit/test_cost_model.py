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
    DemoRates,
    RecordSizes,
    load_demo_rates,
    measure_record_sizes,
    query_scans,
    render_text,
    rule_scans,
    scheduled_queries,
    write_demo_rates,
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


def _takeover_rules(**changes) -> tuple:
    rules = rules_by_id()
    return tuple(
        rule_with(rules[name], **changes) for name in ("amount_spike", "novel_takeover", "takeover_abroad")
    )


def test_rules_sharing_a_history_read_it_once_in_one_query() -> None:
    rules = rules_by_id()
    queries = scheduled_queries(list(rules.values()))
    assert _takeover_rules() in queries and len(queries) == len(rules) - 2
    group = _takeover_rules(every=None)  # queried at every run
    shared = query_scans(group, "fraud", "transactions", FIVE)
    alone = [rule_scans(rule, "fraud", "transactions", FIVE) for rule in group]
    assert shared.rule == "amount_spike + novel_takeover + takeover_abroad" and shared.queried_runs == 288
    # the day of history (the earliest of the starts) and the candidates: two reads, not six
    assert len(shared.scans) == 2 and all(len(scan.scans) == 2 for scan in alone)
    assert max(scan.seconds for scan in shared.scans) >= 86_400
    assert shared.seconds() < 0.4 * sum(scan.seconds() for scan in alone)


def test_a_cadence_reads_the_history_once_for_the_runs_it_answers_for() -> None:
    """every: 15m at a 5-minute schedule: one query in three runs, nine lanes (three rules at
    three runs), reading the history once: about a third of the bytes, a little more (the
    union of three runs' ranges)."""
    every_run = query_scans(_takeover_rules(every=None), "fraud", "transactions", FIVE)
    cadenced = query_scans(_takeover_rules(), "fraud", "transactions", FIVE)
    assert (cadenced.queried_runs, cadenced.lanes, every_run.queried_runs, every_run.lanes) == (96, 9, 288, 3)
    assert cadenced.queried_at == list(range(0, 288, 3))  # the runs at :00, :15, :30, :45
    # each query reads ten minutes more than one run's: two runs' worth of window
    assert max(cadenced.run_seconds) - max(every_run.run_seconds) == pytest.approx(2 * 600)
    assert 0.33 < cadenced.seconds() / every_run.seconds() < 0.36
    minute = query_scans(_takeover_rules(), "fraud", "transactions", timedelta(minutes=1))
    assert (minute.queried_runs, minute.lanes) == (96, 45)


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
    every_run = [rule_with(rule, every=None) for rule in load_rules()]
    ratio = (
        estimate(100, timedelta(minutes=1), rules=every_run, sizes=SIZES)
        .line("Timestream queries")
        .monthly_usd
        / estimate(100, FIVE, rules=every_run, sizes=SIZES).line("Timestream queries").monthly_usd
    )
    assert 4 < ratio < 5.5  # five times the runs, each reading slightly less look-back
    # a rule queried every 15 minutes reads as much at either schedule: a smaller ratio
    every_minute = estimate(100, timedelta(minutes=1), sizes=SIZES)
    assert (
        2
        < every_minute.line("Timestream queries").monthly_usd / busy.line("Timestream queries").monthly_usd
        < 4
    )


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
    assert busy.derived["tcu_seconds_busy_busiest_run"] > 30
    # the runs that query the takeover rules are busier than the others: each is billed its own
    seconds = busy.line("Timestream queries").quantity * 3600 / (runs * 4)
    assert seconds > 30 and busy.derived["tcu_seconds_busy_per_run"] <= seconds
    assert seconds < busy.derived["tcu_seconds_busy_busiest_run"]
    with pytest.raises(CostError, match="query-pricing"):
        estimate(1, FIVE, sizes=SIZES, query_pricing="free")


RATES = DemoRates(
    measured="2026-12-02",
    command="python bench/pipeline.py --sizes 2000x2 --cost-figures FILE",
    transactions=20_000,
    investigations=280,
    relooks=10 + 60,
    flags_by_rule={"device_account_spread": 10, "shared_card": 150, "velocity": 40},
    # the spread rule (waits for its windows) looked again at each of its 10 hits; the card
    # rule (rechecks on close) at its 60 closed windows' rechecks, not at its 150 hits
    relooks_by_rule={"device_account_spread": 10, "shared_card": 60},
)


def test_a_rule_that_looks_again_adds_investigations_and_a_query_a_run() -> None:
    rules = rules_by_id()
    spread = rules["device_account_spread"]
    assert spread.relook_after == timedelta(hours=12)
    without = [rule_with(rule, relook_after=None) for rule in rules.values()]
    # the spread rule alone looks again here (the sharing rules' re-looks: below)
    spread_only = [rule if rule is spread else rule_with(rule, relook_after=None) for rule in rules.values()]
    # 10/s: under the cap of 200 investigations a run
    plain = estimate(10, FIVE, sizes=SIZES, rules=without, rates=RATES)
    looking = estimate(10, FIVE, sizes=SIZES, rules=spread_only, rates=RATES)
    # the rule's measured re-looks (10) over the investigations the flags started (280 - 70)
    assert plain.derived["relooks_per_investigation"] == 0
    assert looking.derived["relooks_per_investigation"] == round(10 / 210, 4)  # (printed rounded)
    assert looking.derived["investigations_per_month"] == pytest.approx(
        plain.derived["investigations_per_month"] * (1 + 10 / 210), abs=1
    )
    assert looking.line("Step Functions transitions").quantity == pytest.approx(
        plain.line("Step Functions transitions").quantity * (1 + 10 / 210)
    )
    assert looking.derived["relook_investigations_per_month"] == pytest.approx(
        plain.derived["investigations_per_month"] * 10 / 210, abs=1
    )
    # where the cap of investigations a run binds, a run's own flags come first: no re-look
    capped = estimate(1000, FIVE, sizes=SIZES, rules=spread_only, rates=RATES)
    runs = capped.derived["scheduled_runs_per_month"]
    assert capped.derived["investigations_per_month"] == pytest.approx(runs * 200, abs=1)
    assert capped.derived["relook_investigations_per_month"] == 0
    # and each run re-sends the rule's query as the run 12 hours before sent it: the same
    # reads (the closed window) at the runs 12 hours later
    [again] = [scan for scan in looking.scans if scan["rule"] == "device_account_spread (re-look)"]
    [own] = [scan for scan in looking.scans if scan["rule"] == "device_account_spread"]
    assert not [scan for scan in plain.scans if "re-look" in scan["rule"]]
    assert {k: v for k, v in again.items() if k != "rule"} == {k: v for k, v in own.items() if k != "rule"}
    assert looking.derived["queries_per_run"] == pytest.approx(
        plain.derived["queries_per_run"] + own["queries_per_day"] / 288, abs=0.01
    )
    assert looking.derived["bytes_scanned_per_run"] == plain.derived["bytes_scanned_per_run"] + again["bytes"]
    shifted = query_scans([spread], "fraud", "transactions", FIVE, earlier=timedelta(hours=3))
    assert shifted.queried_runs == 8 and shifted.rule == "device_account_spread (re-look)"
    # the assumption is printed with the figures it comes from
    text = render_text(looking)
    assert "device_account_spread (relook_after 12h)" in text and "(10 / 210" in text
    assert "device_account_spread 10 re-looks for 10 hits" in text
    assert looking.to_dict()["measured"]["relooks_by_rule"] == {
        "device_account_spread": 10,
        "shared_card": 60,
    }
    # a rule that rechecks on close is asked again only at the runs that see a window close
    # (relooks_due asks for its closed windows as a rule that waits for them): its 60
    # measured re-looks, not one per each of its 150 hits
    shipped = estimate(10, FIVE, sizes=SIZES, rules=list(rules.values()), rates=RATES)
    assert shipped.derived["relooks_per_investigation"] == round((10 + 60) / 210, 4)
    assert "(70 / 210" in render_text(shipped) and "shared_card 60 re-looks for 150 hits" in render_text(
        shipped
    )
    # disabling the card rule takes its re-looks away with its hits
    no_card = [
        rule_with(rule, enabled=False) if rule.id == "shared_card" else rule for rule in rules.values()
    ]
    assert estimate(10, FIVE, sizes=SIZES, rules=no_card, rates=RATES).derived[
        "relooks_per_investigation"
    ] == round(10 / 210, 4)
    [card_again] = [scan for scan in shipped.scans if scan["rule"] == "shared_card (re-look)"]
    [card] = [scan for scan in shipped.scans if scan["rule"] == "shared_card"]
    assert card["queries_per_day"] == 288 and 0 < card_again["queries_per_day"] < card["queries_per_day"] / 4


def test_the_measured_rates_are_the_demo_pipelines_own() -> None:
    rates = load_demo_rates()
    assert rates.command.startswith("python bench/pipeline.py") and re.match(
        r"^\d{4}-\d{2}-\d{2}$", rates.measured
    )
    # the re-looks were started by the rules with relook_after alone, and add up to those
    # measured; each hit of a rule that waits for its windows was looked at again once; a
    # rule that rechecks on close is looked at again once per closed window's recheck,
    # which its hits of one window (-n2, -n3 as it grew) share: at most once per hit
    relook_rules = [rule for rule in enabled_rules(load_rules()) if rule.relook_after is not None]
    waiting = [rule for rule in relook_rules if rule.wait_for_close]
    assert relook_rules and waiting
    assert set(rates.relooks_by_rule) <= {rule.id for rule in relook_rules}
    assert sum(rates.relooks_by_rule.values()) == rates.relooks
    for rule in relook_rules:
        relooks, hits = rates.relooks_by_rule.get(rule.id, 0), rates.flags_by_rule.get(rule.id, 0)
        assert relooks == hits if rule.wait_for_close else relooks <= hits, rule.id
    # the shipped rules' re-look share is exactly the measured re-looks over the
    # investigations the flags started
    assert rates.relooks_per_investigation(load_rules()) == rates.relooks / (
        rates.investigations - rates.relooks
    )
    assert rates.investigations > sum(rates.flags_by_rule.values()) > 0
    assert set(rates.flags_by_rule) <= set(rules_by_id())


def test_measured_rates_round_trip_and_a_bad_file_is_refused(tmp_path: Path) -> None:
    run = {
        "accounts": 20,
        "days": 1,
        "transactions": 300,
        "investigations": 9,
        "relooks": 1,
        "flags_by_rule": {"device_account_spread": 1, "velocity": 5},
        "relooks_by_rule": {"device_account_spread": 1},
    }
    path = tmp_path / "measured.yaml"
    write_demo_rates(run, "python bench/pipeline.py --sizes 20x1 --cost-figures FILE", path)
    rates = load_demo_rates(path)
    assert (rates.transactions, rates.investigations, rates.relooks) == (300, 9, 1)
    assert rates.flags_by_rule == {"device_account_spread": 1, "velocity": 5}
    assert rates.relooks_by_rule == {"device_account_spread": 1}
    written = path.read_text()
    # a file written before the re-looks were counted by rule is refused, naming the field
    path.write_text(written.replace("relooks_by_rule:\n  device_account_spread: 1\n", ""))
    with pytest.raises(CostError, match=r"lacks relooks_by_rule$"):
        load_demo_rates(path)
    path.write_text(written.replace("relooks: 1\n", "relooks: 2\n"))
    with pytest.raises(CostError, match="relooks_by_rule adds up to 1, relooks is 2"):
        load_demo_rates(path)
    path.write_text("measured: 2026-12-02\ncommand: x\ntransactions: 3\n")
    with pytest.raises(CostError, match="lacks investigations, relooks, flags_by_rule, relooks_by_rule"):
        load_demo_rates(path)
    path.write_text(
        path.read_text() + "investigations: many\nrelooks: 0\nflags_by_rule: {}\nrelooks_by_rule: {}\n"
    )
    with pytest.raises(CostError, match="not a whole number"):
        load_demo_rates(path)
