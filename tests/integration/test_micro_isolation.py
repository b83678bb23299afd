"""Micro-analysis goes on past one bad rule, one bad row, one failed start or one bad override."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from bursts import bursts
from moto import mock_aws

from fraudcore import rules as rules_module
from fraudcore.aws_adapters import StepFunctionsInvestigationStarter
from fraudcore.micro import flags_from_rows, run_micro_analysis
from fraudcore.rules import RuleError, apply_overrides, load_rules, load_rules_keeping_last_good
from fraudlocal.adapters.timeseries_duckdb import DuckDBTimeseriesStore

SCHEDULED = datetime(2026, 11, 29, 12, 5, tzinfo=UTC)
RULES = {rule.id: rule for rule in load_rules()}


@pytest.fixture
def store(tmp_path: Path):
    with DuckDBTimeseriesStore(tmp_path / "ts.duckdb", "fraud", "transactions") as duckdb_store:
        duckdb_store.write(bursts(["acct-1", "acct-2", "acct-3"], SCHEDULED))
        yield duckdb_store


# -- rows and rules ---------------------------------------------------------------------------


def test_a_non_finite_observed_value_skips_only_its_row() -> None:
    rule = RULES["high_value_burst"]
    rows = [
        {"entity_id": "acct-1", "window_start": "2026-11-29T12:00:00Z", "observed": float("inf")},
        {"entity_id": "acct-2", "window_start": "2026-11-29T12:00:00Z", "observed": float("nan")},
        {"entity_id": "acct-3", "window_start": "9999-12-31T23:59:59Z", "observed": 60_000.0},
        {"entity_id": "acct-4", "window_start": "2026-11-29T12:00:00Z"},
        {"entity_id": "acct-5", "window_start": "2026-11-29T12:00:00Z", "observed": 60_000.0},
    ]
    skipped: list[str] = []
    flags = flags_from_rows(rule, rows, SCHEDULED, skipped)
    assert [flag.entity_id for flag in flags] == ["acct-5"]
    assert len(skipped) == 4
    assert "not finite" in skipped[0] and "not finite" in skipped[1]


def test_a_rule_that_cannot_be_compiled_skips_only_itself(store, tmp_path: Path) -> None:
    from fraudlocal.adapters.starter_local import LocalInvestigationStarter

    broken = replace(RULES["velocity"], entity="planet")  # no column for it: compiling raises
    result = run_micro_analysis(
        store, LocalInvestigationStarter(tmp_path), [broken, RULES["high_value_burst"]], SCHEDULED
    )
    assert list(result.rule_errors) == ["velocity"]
    assert sorted(flag.entity_id for flag in result.flags) == ["acct-1", "acct-2", "acct-3"]
    assert result.started == 3


# -- StartExecution throttled: no flag lost -----------------------------------------------------


@mock_aws
def test_throttled_start_skips_only_that_flag_and_the_next_run_starts_it(store) -> None:
    client = boto3.client("stepfunctions", region_name="us-east-1")
    machine = client.create_state_machine(
        name="investigation",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/investigation",
    )["stateMachineArn"]
    throttled = {"count": 0}

    def throttle_second_start(params, **_):
        throttled["count"] += 1
        if throttled["count"] == 2:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "StartExecution"
            )

    client.meta.events.register("provide-client-params.stepfunctions.StartExecution", throttle_second_start)
    starter = StepFunctionsInvestigationStarter(machine, client=client)
    rules = [RULES["high_value_burst"]]

    first = run_micro_analysis(store, starter, rules, SCHEDULED)
    assert (first.started, len(first.start_failures)) == (2, 1)
    assert "ThrottlingException" in next(iter(first.start_failures.values()))

    later = run_micro_analysis(store, starter, rules, SCHEDULED + timedelta(minutes=5))
    assert (later.started, later.duplicates, later.start_failures) == (1, 2, {})
    names = sorted(e["name"] for e in client.list_executions(stateMachineArn=machine)["executions"])
    assert names == sorted(flag.execution_name for flag in first.flags)  # lost flags: 0


def test_a_non_finite_input_is_refused_before_step_functions_sees_it() -> None:
    starter = StepFunctionsInvestigationStarter(
        "arn:aws:states:us-east-1:123456789012:stateMachine:x",
        client=boto3.client("stepfunctions", region_name="us-east-1"),
    )
    with pytest.raises(ValueError, match="JSON compliant"):
        starter.start("high_value_burst-account-a-20261129T120000Z", {"observed": float("inf")})


# -- rule overrides --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"enabled": "false"}, "expected true or false"),
        ({"enabled": 0}, "expected true or false"),
        ({"recheck_on_close": "yes"}, "expected true or false"),
        ({"threshold": float("inf")}, "finite number"),
        ({"threshold": float("nan")}, "finite number"),
        ({"threshold": "10"}, "expected a number"),
        ({"threshold": -1}, "0 or more"),
        ({"threshold": 10**400}, "too large"),
        ({"window": "99999999999999999999d"}, "not a duration"),
        ({"window": "400d"}, "longer than 366 days"),
        ({"window": ["5m"]}, "not a duration"),
        ({"window": "2d"}, "looks back further"),
        ({"lateness": "1d"}, "looks back further"),
        ({"filter": "amount > 0; DROP TABLE x"}, "cannot override"),
    ],
)
def test_a_bad_override_is_refused_with_a_clear_message(changes, message) -> None:
    with pytest.raises(RuleError, match=message):
        apply_overrides(list(RULES.values()), {"velocity": changes}, "override", timedelta(hours=24))


def test_a_bad_override_keeps_the_rule_at_its_last_good_definition(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(rules_module, "_last_good", {})
    override = tmp_path / "override.yaml"
    override.write_text("velocity: {threshold: 7}\nhigh_value_burst: {threshold: 70000}\n")
    rules, errors = load_rules_keeping_last_good(str(override), timedelta(hours=24))
    by_id = {rule.id: rule for rule in rules}
    assert errors == {} and by_id["velocity"].threshold == 7 and by_id["high_value_burst"].threshold == 70_000

    # an operator's typo in one rule: that rule keeps 7, the other takes its new value
    override.write_text(
        'velocity: {threshold: .inf, enabled: "false"}\nhigh_value_burst: {threshold: 80000}\n'
    )
    rules, errors = load_rules_keeping_last_good(str(override), timedelta(hours=24))
    by_id = {rule.id: rule for rule in rules}
    assert list(errors) == ["velocity"] and "finite" in errors["velocity"]
    assert by_id["velocity"].threshold == 7 and by_id["velocity"].enabled
    assert by_id["high_value_burst"].threshold == 80_000

    # a document that is not even YAML: every rule keeps its last good definition
    override.write_text("velocity: {threshold: [\n")
    rules, errors = load_rules_keeping_last_good(str(override), timedelta(hours=24))
    by_id = {rule.id: rule for rule in rules}
    assert list(errors) == ["*"] and "not valid YAML" in errors["*"]
    assert (by_id["velocity"].threshold, by_id["high_value_burst"].threshold) == (7, 80_000)

    # unknown rule ids are refused by name; the known ones still apply
    override.write_text("no_such_rule: {threshold: 1}\nvelocity: {threshold: 9}\n")
    rules, errors = load_rules_keeping_last_good(str(override), timedelta(hours=24))
    assert list(errors) == ["no_such_rule"]
    assert {rule.id: rule for rule in rules}["velocity"].threshold == 9
