"""Rules as data: the shipped file, overrides (file, inline, SSM), names and windows."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
import yaml
from moto import mock_aws

from fraudcore.aws_adapters import read_ssm_parameter
from fraudcore.micro import execution_name, flags_from_rows
from fraudcore.rules import SHIPPED_RULES, RuleError, load_rules, parse_duration, rules_from_document
from fraudcore.timeseries.rule_sql import compile_rule, evaluation_range, floor_to

EXPECTED_IDS = {
    "high_value_burst",
    "velocity",
    "card_testing",
    "device_account_burst",
    "ip_account_burst",
    "account_device_churn",
    "amount_spike",
    "novel_takeover",
    "takeover_abroad",
    "device_account_spread",
    "device_cash_out",
    "slow_pass_through",
    "geo_velocity",
    "shared_card",
    "shared_email",
    "shared_phone",
    "mule_pass_through",
}
STEP_FUNCTIONS_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


def shipped_doc() -> dict:
    return yaml.safe_load(SHIPPED_RULES.read_text())


def test_the_shipped_rules_have_the_expected_ids_and_defaults() -> None:
    rules = {rule.id: rule for rule in load_rules()}
    assert set(rules) == EXPECTED_IDS
    burst = rules["high_value_burst"]
    assert (burst.entity, burst.window, burst.op, burst.threshold) == (
        "account",
        timedelta(minutes=5),
        ">",
        50_000,
    )
    assert rules["device_account_burst"].threshold >= 5  # households and offices share devices
    assert all(rule.rationale and rule.enabled for rule in rules.values())
    # card testing is a pattern of fraud by itself: its hit alone makes a case suspicious
    assert rules["card_testing"].severity == "critical"
    mule = rules["mule_pass_through"]
    assert (mule.entity, mule.aggregate, mule.threshold, mule.params) == (
        "account",
        "pass_through",
        0.8,
        {"min_received": 10_000.0},
    )
    # a slow spread over a day is judged on the whole day (families show who they are)
    assert {r.id for r in rules.values() if r.wait_for_close} == {"device_account_spread"}
    # a takeover needs its signals together, read from the memory store's day only
    takeover = rules["novel_takeover"]
    assert [next(iter(s)) for s in takeover.signals] == ["new", "new", "over_habit"]
    assert takeover.params["history"] == "1d"
    # the windows that fill over an hour or more are looked at again once complete, so
    # accounts that join a device or an identifier after the first hit are investigated
    assert {r.id for r in rules.values() if r.recheck_on_close} == {
        "device_account_burst",
        "device_cash_out",
        "ip_account_burst",
        "shared_card",
        "shared_email",
        "shared_phone",
    }


def test_override_file_changes_thresholds_and_switches_rules_off(tmp_path: Path) -> None:
    override = tmp_path / "override.yaml"
    override.write_text(
        "velocity: {threshold: 30}\ngeo_velocity: {enabled: false}\nip_account_burst: {window: 30m}\n"
    )
    rules = {rule.id: rule for rule in load_rules(override=str(override))}
    assert rules["velocity"].threshold == 30
    assert rules["velocity"].hop == timedelta(minutes=5)  # untouched fields stay
    assert rules["geo_velocity"].enabled is False
    assert rules["ip_account_burst"].window == timedelta(minutes=30)
    assert rules["high_value_burst"].threshold == 50_000
    # A file is read on every call: an edit applies to the next run.
    override.write_text("velocity: {threshold: 40}\n")
    assert {r.id: r for r in load_rules(override=str(override))}["velocity"].threshold == 40


def test_inline_json_override() -> None:
    rules = {rule.id: rule for rule in load_rules(override=json.dumps({"card_testing": {"threshold": 8}}))}
    assert rules["card_testing"].threshold == 8


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"velocty": {"threshold": 3}}, "unknown rule ids ['velocty']"),
        ({"velocity": {"filter": "1=1"}}, "cannot override ['filter']"),
        ({"velocity": {"threshold": "many"}}, "threshold: expected a number"),
        ({"velocity": {"window": "5 minutes"}}, "is not a duration"),
        ({"velocity": {"hop": "3m"}}, "must be 1 to 4 times hop"),
        ({"velocity": 3}, "expected a mapping like"),
    ],
)
def test_bad_overrides_name_the_problem(override: dict, message: str) -> None:
    with pytest.raises(RuleError, match=re.escape(message)):
        load_rules(override=json.dumps(override))


def test_missing_override_file_is_named() -> None:
    with pytest.raises(RuleError, match=r"no-such\.yaml.*no such file"):
        load_rules(override="no-such.yaml")


@mock_aws
def test_override_from_ssm_is_read_once_per_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    read_ssm_parameter.cache_clear()
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name="/fraud/rules-override", Type="String", Value='{"velocity": {"threshold": 25}}')
    first = {rule.id: rule for rule in load_rules(override="ssm:/fraud/rules-override")}
    ssm.put_parameter(
        Name="/fraud/rules-override", Type="String", Value="velocity: {threshold: 99}", Overwrite=True
    )
    again = {rule.id: rule for rule in load_rules(override="ssm:/fraud/rules-override")}
    assert first["velocity"].threshold == again["velocity"].threshold == 25
    read_ssm_parameter.cache_clear()  # a new execution environment
    assert {r.id: r for r in load_rules(override="ssm:/fraud/rules-override")}["velocity"].threshold == 99
    with pytest.raises(RuleError, match="ssm:/fraud/missing: cannot read the SSM parameter"):
        load_rules(override="ssm:/fraud/missing")
    read_ssm_parameter.cache_clear()


def test_a_rules_file_may_replace_the_shipped_rules(tmp_path: Path) -> None:
    doc = shipped_doc()
    doc["rules"] = [rule for rule in doc["rules"] if rule["id"] == "velocity"]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert [rule.id for rule in load_rules(path)] == ["velocity"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"filter": "amount < 5; DROP TABLE x"}, "has something other than columns"),
        ({"filter": "secret_column = 1"}, "'secret_column', which is not a column"),
        ({"aggregate": "avg(amount)"}, "aggregate 'avg(amount)' is not one of"),
        ({"aggregate": "count(distinct password)"}, "not a dimension"),
        ({"entity": "planet"}, "entity 'planet' is not one of"),
        ({"severity": "urgent"}, "severity 'urgent'"),
        ({"description": "{nope}"}, "description cannot be formatted"),
        ({"id": "Bad-Id"}, "lower_snake_case"),
        ({"colour": "red"}, "unknown keys ['colour']"),
        ({"params": {"min_received": 5}}, "params are only for aggregates spike, pass_through"),
        ({"aggregate": "pass_through", "params": {"min_receive": 5}}, "unknown params ['min_receive']"),
        ({"aggregate": "pass_through", "params": {"min_received": 0}}, "min_received must be more than 0"),
        ({"aggregate": "pass_through", "entity": "card"}, "entity must be account"),
    ],
)
def test_bad_rule_definitions_name_the_rule_and_field(change: dict, message: str) -> None:
    doc = shipped_doc()
    doc["rules"][1].update(change)
    with pytest.raises(RuleError, match=re.escape(message)):
        rules_from_document(doc, "rules.yaml")


def test_duplicate_ids_are_refused() -> None:
    doc = shipped_doc()
    doc["rules"].append(doc["rules"][0])
    with pytest.raises(RuleError, match="'high_value_burst' appears twice"):
        rules_from_document(doc)


def test_durations() -> None:
    assert parse_duration("150s", "x") == timedelta(seconds=150)
    assert parse_duration("1d", "x") == timedelta(days=1)
    with pytest.raises(RuleError, match="not a duration"):
        parse_duration("0m", "x")


def test_execution_names_fit_step_functions_and_never_collide() -> None:
    period = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    plain = execution_name("velocity", "account", "acct-42", period)
    assert plain == "velocity-account-acct-42-20261129T120000Z"
    odd = [
        "user@example.com",
        "user#example.com",
        "2001:db8::1",
        "x" * 300,
        "x" * 299 + "y",
        "ümlaut id",
        "acct/1",
        "acct-1-",
    ]
    names = [execution_name("account_device_churn", "account", entity, period) for entity in odd]
    assert all(STEP_FUNCTIONS_NAME.match(name) for name in names), names
    assert len(set(names)) == len(odd)
    assert names == [execution_name("account_device_churn", "account", entity, period) for entity in odd]


def test_evaluation_range_covers_windows_ending_after_the_lateness() -> None:
    rule = {rule.id: rule for rule in load_rules()}["device_account_burst"]  # 1h tumbling, lateness 10m
    at = datetime(2026, 11, 29, 12, 5, tzinfo=UTC)
    span = evaluation_range(rule, at)
    assert span.first_window_start == datetime(2026, 11, 29, 11, 0, tzinfo=UTC)  # ends 12:00 > 11:55
    assert evaluation_range(rule, at + timedelta(minutes=5)).first_window_start == datetime(
        2026, 11, 29, 12, 0, tzinfo=UTC
    )  # 11:00-12:00 ended at T - lateness: no longer looked at
    assert floor_to(datetime(2026, 11, 29, 12, 7, 29, tzinfo=UTC), timedelta(seconds=150)) == datetime(
        2026, 11, 29, 12, 5, tzinfo=UTC
    )


def test_the_sql_uses_explicit_bounds_not_ago() -> None:
    at = datetime(2026, 11, 29, 12, 5, tzinfo=UTC)
    for rule in load_rules():
        sql = compile_rule(rule, "fraud", "transactions", at)
        assert "ago(" not in sql and "now()" not in sql
        # up to the run, or, for a rule that waits for its windows to close, up to the end
        # of the last window closed by then (12h windows every 6h: 12:00)
        end = "12:00:00" if rule.wait_for_close else "12:05:00"
        assert f"time < from_iso8601_timestamp('2026-11-29T{end}Z')" in sql
        assert '"fraud"."transactions"' in sql
        assert compile_rule(rule, "fraud", "transactions", at) == sql  # deterministic


def test_flags_carry_a_readable_sentence_and_the_cooldown_period() -> None:
    rule = {rule.id: rule for rule in load_rules()}["device_account_burst"]  # cooldown 6h
    rows = [{"entity_id": "dev-1", "window_start": "2026-11-29 13:00:00.000000000", "observed": "7"}]
    (flag,) = flags_from_rows(rule, rows, datetime(2026, 11, 29, 14, 5, tzinfo=UTC))
    assert flag.window_start == "2026-11-29T13:00:00Z" and flag.window_end == "2026-11-29T14:00:00Z"
    assert flag.description == (
        "Device dev-1 was used by 7 distinct accounts between 2026-11-29T13:00:00Z and 2026-11-29T14:00:00Z "
        "(threshold 5 in 1h)."
    )
    # 12:00-18:00 period, and the count's step (7 is in the step of 6): a count that grows
    # past the next step (8) later is a new investigation
    assert flag.execution_name == "device_account_burst-device-dev-1-20261129T120000Z-n6"
    # the window closed at 14:00: the rule rechecks closed windows, under a name of its own
    assert flag.recheck_execution_name == "device_account_burst-device-dev-1-20261129T120000Z-n6-closed"
    (filling,) = flags_from_rows(rule, rows, datetime(2026, 11, 29, 13, 55, tzinfo=UTC))
    assert filling.recheck_execution_name is None  # still filling at 13:55


def test_recheck_names_fit_step_functions() -> None:
    period = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    name = execution_name("device_account_burst", "device", "d" * 200, period, "-closed")
    assert STEP_FUNCTIONS_NAME.match(name) and name.endswith("20261129T120000Z-closed")
    assert name != execution_name("device_account_burst", "device", "d" * 200, period)


def test_a_growing_count_is_named_by_its_step() -> None:
    from fraudcore.micro import growth_suffix

    rules = {rule.id: rule for rule in load_rules()}
    shared_card, velocity = rules["shared_card"], rules["velocity"]
    # a late joiner to a pair is a new investigation; a fifth account on a card of four is
    # within the same step, an eighth is not
    assert [growth_suffix(shared_card, n) for n in (2, 3, 4, 5, 7, 8, 300)] == [
        "-n2", "-n3", "-n4", "-n4", "-n6", "-n8", "-n300",
    ]  # fmt: skip
    assert growth_suffix(velocity, 40) == ""  # not an identifier's accounts: no growth


@pytest.mark.parametrize(
    ("signals", "params", "message"),
    [
        ([{"new": ["colour"]}], {}, "signals[0]: new ['colour']: not one of device_id"),
        ([{"over_habit": 0}], {}, "signals[0]: over_habit must be more than 0"),
        ([{"sometimes": 1}], {}, "signals[0]: unknown signal 'sometimes'"),
        ({"new": "ip"}, {}, "signals must be a list"),
        ([{"new": ["ip"]}], {"baseline_transactions": 5}, "unknown params ['baseline_transactions']"),
        ([{"new": ["ip"]}], {"min_history": 0}, "params.min_history must be a whole number >= 1"),
    ],
)
def test_bad_signals_name_the_problem(signals: object, params: dict, message: str) -> None:
    doc = shipped_doc()
    (takeover,) = [rule for rule in doc["rules"] if rule["id"] == "novel_takeover"]
    takeover["signals"] = signals
    takeover["params"] = {**takeover["params"], **params}
    with pytest.raises(RuleError, match=re.escape(message)):
        rules_from_document(doc, "rules.yaml")


def test_a_rule_cannot_both_wait_for_its_window_and_recheck_it() -> None:
    doc = shipped_doc()
    (spread,) = [rule for rule in doc["rules"] if rule["id"] == "device_account_spread"]
    spread["recheck_on_close"] = True
    with pytest.raises(RuleError, match="wait_for_close and recheck_on_close exclude each other"):
        rules_from_document(doc, "rules.yaml")


def test_signals_need_an_amount_or_count_aggregate() -> None:
    doc = shipped_doc()
    (takeover,) = [rule for rule in doc["rules"] if rule["id"] == "novel_takeover"]
    takeover["aggregate"] = "count(distinct device_id)"
    with pytest.raises(
        RuleError, match=re.escape("signals combine with sum(amount), max(amount) or count(*)")
    ):
        rules_from_document(doc, "rules.yaml")


def test_a_rule_that_judges_a_whole_window_may_look_at_its_hits_again_later() -> None:
    rules = {rule.id: rule for rule in load_rules()}
    # a farm's verdict resting on an absence, and rings that grow: the accounts sharing a
    # card, an email, a phone or a cashing-out computer are looked at again 12 hours on
    assert {r.id: r.relook_after for r in rules.values() if r.relook_after} == {
        "device_account_spread": timedelta(hours=12),
        "device_cash_out": timedelta(hours=12),
        "shared_card": timedelta(hours=12),
        "shared_email": timedelta(hours=12),
        "shared_phone": timedelta(hours=12),
    }
    assert rules["device_account_spread"].to_dict()["relook_after"] == "12h"
    assert rules["shared_phone"].to_dict()["relook_after"] == "12h"
    doc = shipped_doc()
    # a rule that judges a window while it fills, and never once complete, has no hit to take up
    (velocity,) = [rule for rule in doc["rules"] if rule["id"] == "velocity"]
    velocity["relook_after"] = "12h"
    with pytest.raises(RuleError, match="relook_after needs wait_for_close or recheck_on_close"):
        rules_from_document(doc, "rules.yaml")
    velocity.pop("relook_after")
    (spread,) = [rule for rule in doc["rules"] if rule["id"] == "device_account_spread"]
    spread["relook_after"] = "soon"
    with pytest.raises(RuleError, match="relook_after: 'soon' is not a duration"):
        rules_from_document(doc, "rules.yaml")


def test_every_is_a_cadence_for_rules_reading_a_history() -> None:
    rules = {rule.id: rule for rule in load_rules()}
    # the takeover rules read a day of history: queried every 15 minutes, the others every run
    assert {r.id: r.every for r in rules.values() if r.every} == dict.fromkeys(
        ("amount_spike", "novel_takeover", "takeover_abroad"), timedelta(minutes=15)
    )
    spike = rules["amount_spike"]
    assert spike.to_dict()["every"] == "15m"
    assert [spike.runs_per_query(timedelta(minutes=m)) for m in (5, 1, 15)] == [3, 15, 1]
    assert spike.runs_per_query(None) == 1  # a schedule not known: every run queries
    with pytest.raises(
        RuleError,
        match=re.escape("rule amount_spike: every 15m is not a multiple of the schedule interval 10m"),
    ):
        spike.runs_per_query(timedelta(minutes=10))
    with pytest.raises(RuleError, match="every 15m is not a multiple of the schedule interval 30m"):
        spike.runs_per_query(timedelta(minutes=30))


@pytest.mark.parametrize(
    ("rule_id", "change", "message"),
    [
        ("amount_spike", {"every": "soon"}, "rule amount_spike: every: 'soon' is not a duration"),
        ("amount_spike", {"every": 0}, "rule amount_spike: every: 0 is not a duration"),
        ("velocity", {"every": "15m"}, "rule velocity: every 15m is for rules that read a history"),
        (
            "novel_takeover",
            {"wait_for_close": True},
            "rule novel_takeover: every 15m excludes wait_for_close",
        ),
        (
            "takeover_abroad",
            {"recheck_on_close": True},
            "every 15m excludes wait_for_close and recheck_on_close",
        ),
    ],
)
def test_a_bad_every_names_the_rule_and_the_value(rule_id: str, change: dict, message: str) -> None:
    doc = shipped_doc()
    (rule,) = [rule for rule in doc["rules"] if rule["id"] == rule_id]
    rule.update(change)
    with pytest.raises(RuleError, match=re.escape(message)):
        rules_from_document(doc, "rules.yaml")


def test_every_can_be_overridden_back_to_every_run() -> None:
    rules = {rule.id: rule for rule in load_rules(override='{"amount_spike": {"every": "5m"}}')}
    assert rules["amount_spike"].every == timedelta(minutes=5)
    assert rules["amount_spike"].runs_per_query(timedelta(minutes=5)) == 1
    with pytest.raises(RuleError, match="every 1h is for rules that read a history"):
        load_rules(override='{"velocity": {"every": "1h"}}')
