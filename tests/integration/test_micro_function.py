"""MicroAnalysisFunction end to end: DuckDB store, local queue or Step Functions (moto)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from bursts import bursts
from moto import mock_aws

from fraudcore import backends
from fraudcore.aws_adapters import StepFunctionsInvestigationStarter
from fraudcore.micro import run_micro_analysis
from fraudcore.model import Transaction
from fraudcore.rules import load_rules
from fraudcore.settings import Settings, reset_settings_cache
from fraudlocal.adapters.starter_local import LocalInvestigationStarter
from fraudlocal.adapters.timeseries_duckdb import DuckDBTimeseriesStore
from fraudlocal.emulators.runtime import LocalLambdaContext, load_handler, patched_environment

REPO = Path(__file__).resolve().parents[2]
EVENT = json.loads((REPO / "events/micro_analysis/scheduled.json").read_text())
SCHEDULED = datetime.fromisoformat(EVENT["time"].replace("Z", "+00:00"))


@pytest.fixture
def local_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        "FRAUD_STATE_DIR": str(tmp_path / "state"),
        "TIMESERIES_BACKEND": "duckdb",
        "INVESTIGATION_STARTER": "local",
        "RULES_OVERRIDE": "",
        "FRAUD_LOCAL_RUN": "1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "MAX_INVESTIGATIONS_PER_RUN": "200",
    }
    with patched_environment(env):
        yield env
        backends.reset()


def invoke(event: dict) -> dict:
    handler = load_handler(REPO / "functions/micro_analysis", "app.lambda_handler")
    return handler(event, LocalLambdaContext(function_name="MicroAnalysisFunction"))


def test_running_twice_for_the_same_scheduled_time_starts_one_investigation(
    local_env: dict[str, str],
) -> None:
    backends.timeseries_store(Settings.from_env()).write(bursts(["acct-1"], SCHEDULED))
    first = invoke(EVENT)
    second = invoke(EVENT)
    assert first["evaluation_time"] == "2026-11-29T12:05:00Z"
    assert (first["started"], first["duplicates"]) == (1, 0)
    assert (second["started"], second["duplicates"]) == (0, 1)
    assert [flag["rule"] for flag in first["flags"]] == ["high_value_burst"]
    flag = first["flags"][0]
    assert flag["entity_type"] == "account" and flag["entity_id"] == "acct-1"
    assert flag["observed"] == 60_000 and flag["threshold"] == 50_000 and flag["severity"] == "high"
    assert "acct-1" in flag["description"] and flag["description"].endswith(".")
    pending = Path(local_env["FRAUD_STATE_DIR"]) / "investigations/pending"
    files = sorted(pending.glob("*.json"))
    assert [path.stem for path in files] == [flag["execution_name"]]
    assert json.loads(files[0].read_text()) == flag  # the flag is the investigation's input
    # The next scheduled run still sees the window (lateness) and still starts nothing new.
    later = invoke({**EVENT, "time": "2026-11-29T12:10:00Z"})
    assert (later["started"], later["duplicates"]) == (0, 1)


def test_a_done_investigation_is_not_started_again(tmp_path: Path) -> None:
    starter = LocalInvestigationStarter(tmp_path)
    assert starter.start("velocity-account-a-20261129T120000Z", {"rule": "velocity"}) is True
    done = tmp_path / "investigations/done"
    done.mkdir(parents=True)
    (tmp_path / "investigations/pending/velocity-account-a-20261129T120000Z.json").rename(
        done / "velocity-account-a-20261129T120000Z.json"
    )
    assert starter.start("velocity-account-a-20261129T120000Z", {"rule": "velocity"}) is False
    assert starter.pending_names() == []
    with pytest.raises(ValueError, match="letters, digits"):
        starter.start("bad name/with slash", {})


def test_the_cap_bites_with_a_metric_and_flags_are_still_reported(
    local_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    os.environ["MAX_INVESTIGATIONS_PER_RUN"] = "2"
    reset_settings_cache()
    backends.timeseries_store(Settings.from_env()).write(bursts(["a1", "a2", "a3"], SCHEDULED))
    capsys.readouterr()
    first = invoke(EVENT)
    assert (len(first["flags"]), first["started"], first["capped"]) == (3, 2, 1)
    emitted = capsys.readouterr().out
    metrics = [json.loads(line) for line in emitted.splitlines() if line.startswith("{") and "_aws" in line]
    assert any(
        record.get("InvestigationsCapped") == [1.0] or record.get("InvestigationsCapped") == 1.0
        for record in metrics
    )
    second = invoke(EVENT)  # the capped flag gets its investigation on the next run
    assert (second["started"], second["duplicates"], second["capped"]) == (1, 2, 0)


def test_a_failing_rule_does_not_hide_the_others(local_env: dict[str, str]) -> None:
    store = backends.timeseries_store(Settings.from_env())
    store.write(bursts(["acct-9"], SCHEDULED))
    rules = load_rules()
    broken = next(rule for rule in rules if rule.id == "velocity")
    broken = replace(broken, filter="no_such_column > 1")  # bypasses the loader's check on purpose
    starter = LocalInvestigationStarter(Path(local_env["FRAUD_STATE_DIR"]))
    result = run_micro_analysis(store, starter, [broken, *rules[:1]], SCHEDULED)
    assert list(result.rule_errors) == ["velocity"]
    assert [flag.entity_id for flag in result.flags] == ["acct-9"]


@mock_aws
def test_step_functions_starts_one_execution_for_two_runs(tmp_path: Path) -> None:
    client = boto3.client("stepfunctions", region_name="us-east-1")
    machine = client.create_state_machine(
        name="investigation",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/investigation",
    )["stateMachineArn"]
    starter = StepFunctionsInvestigationStarter(machine, client=client)
    # The retry of the same scheduled event comes a minute later (Lambda's async retry):
    # Step Functions answers the same name and input of a running execution with success,
    # which the adapter recognises by the execution's earlier start date.
    retry = StepFunctionsInvestigationStarter(
        machine, client=client, clock=lambda: datetime.now(tz=UTC) + timedelta(minutes=1)
    )
    with DuckDBTimeseriesStore(tmp_path / "ts.duckdb", "fraud", "transactions") as store:
        store.write(bursts(["acct-1", "acct-2"], SCHEDULED))
        first = run_micro_analysis(store, starter, load_rules(), SCHEDULED)
        second = run_micro_analysis(store, retry, load_rules(), SCHEDULED)
        # The next scheduled run sees the same windows with another input: ExecutionAlreadyExists.
        later = run_micro_analysis(store, starter, load_rules(), SCHEDULED + timedelta(minutes=5))
    assert (first.started, first.duplicates) == (2, 0)
    assert (second.started, second.duplicates) == (0, 2)
    assert (later.started, later.duplicates) == (0, 2)
    executions = client.list_executions(stateMachineArn=machine)["executions"]
    assert sorted(execution["name"] for execution in executions) == sorted(
        flag.execution_name for flag in first.flags
    )
    described = client.describe_execution(executionArn=executions[0]["executionArn"])
    assert json.loads(described["input"])["rule"] == "high_value_burst"


def test_the_handler_reads_the_scheduled_time_and_rejects_a_bad_one(local_env: dict[str, str]) -> None:
    response = invoke({**EVENT, "time": "2026-11-29T13:00:00Z"})
    # Nothing was ever written: like a new Timestream table, the store has no columns yet.
    # Every rule that queries is skipped; device_account_spread waits for its 12-hour windows
    # to close (00:00, 06:00...) and at 13:00 has none to look at: it sends no query.
    skipped = response.pop("rules_skipped")
    assert set(skipped) == {rule.id for rule in load_rules() if rule.enabled} - {"device_account_spread"}
    assert response == {
        "evaluation_time": "2026-11-29T13:00:00Z",
        "flags": [],
        "started": 0,
        "duplicates": 0,
        "capped": 0,
    }
    with pytest.raises(ValueError, match=r"event\.time"):
        invoke({**EVENT, "time": "yesterday"})
    assert datetime.fromisoformat(invoke({})["evaluation_time"].replace("Z", "+00:00")) <= datetime.now(
        tz=UTC
    )


def test_a_slower_schedule_widens_the_look_back(local_env: dict[str, str]) -> None:
    # A burst in [11:40, 11:45): the 12:05 run looks back 10 minutes after a window's end
    # by default, which misses it; with runs every 30 minutes it must not.
    store = backends.timeseries_store(Settings.from_env())
    store.write(
        [
            Transaction(
                transaction_id=f"s{i}",
                timestamp=SCHEDULED - timedelta(minutes=24),
                account_id="slow",
                amount=30_000,
            )
            for i in range(2)
        ]
    )
    assert invoke(EVENT)["flags"] == []
    os.environ["MICRO_SCHEDULE_INTERVAL"] = "rate(30 minutes)"
    reset_settings_cache()  # settings are read once per execution environment
    try:
        assert [flag["entity_id"] for flag in invoke(EVENT)["flags"]] == ["slow"]
    finally:
        del os.environ["MICRO_SCHEDULE_INTERVAL"]
        reset_settings_cache()


def test_rules_on_columns_no_record_has_used_are_skipped_not_failed(local_env: dict[str, str]) -> None:
    # Bursts carry no card, device, IP, country or counterparty: on Timestream those columns
    # do not exist, and neither do they on the strict local store.
    backends.timeseries_store(Settings.from_env()).write(bursts(["acct-1"], SCHEDULED))
    response = invoke(EVENT)
    assert "rule_errors" not in response
    skipped = response["rules_skipped"]
    assert "card_testing" in skipped and "Column 'card_id' does not exist" in skipped["card_testing"]
    assert "high_value_burst" not in skipped  # it reads account_id and amount only
    assert [flag["rule"] for flag in response["flags"]] == ["high_value_burst"]
