"""The AWS guidance's sample producer through the whole pipeline, on a time-series stand-in as
strict as Timestream: a column exists only once a record has used it.

The producer sends accounts, e-mails, phones, merchants and amounts, never a card, a device, an
IP, a country or a counterparty. On Timestream every query naming one of those fails with
``ValidationException ... Column 'x' does not exist``; the rules that read them must be reported
as skipped, the investigation's device analysis must find nothing rather than fail, and the
rest must work.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fraudcore import backends
from fraudcore.settings import Settings
from fraudcore.timeseries import MissingColumnError
from fraudlocal.commands.investigate import run_investigation
from fraudlocal.emulators.runtime import LocalTarget, close_local_backends, invoke_function

REPO = Path(__file__).resolve().parents[2]
BATCH = json.loads((REPO / "events/ingest/aws-sample-producer-batch.json").read_text())
SCHEDULED = {
    "version": "0",
    "detail-type": "Scheduled Event",
    "source": "aws.scheduler",
    # a run of the takeover rules' 15-minute cadence (every: 15m): they are queried too
    "time": "2026-11-29T12:15:00Z",
    "detail": {},
}
#: the columns the producer never sends, and the rules that read them
ABSENT = {"card_id", "device_id", "ip", "country", "counterparty_account_id"}
SKIPPED_RULES = {
    "card_testing": "card_id",
    "shared_card": "card_id",
    "device_account_burst": "device_id",
    "account_device_churn": "device_id",
    "ip_account_burst": "ip",
    "geo_velocity": "country",
    "mule_pass_through": "counterparty_account_id",
    "novel_takeover": ("device_id", "ip", "country"),
    "takeover_abroad": ("device_id", "country"),
    "device_account_spread": "device_id",
    "device_cash_out": "device_id",
    "slow_pass_through": "counterparty_account_id",
}


@pytest.fixture
def target(tmp_path: Path):
    yield LocalTarget(tmp_path / "state")
    close_local_backends()


def test_sample_producer_records_ingest_flag_and_investigate_without_an_error(target: LocalTarget) -> None:
    for function in ("IngestTimeseriesFunction", "IngestGraphFunction"):
        assert invoke_function(function, BATCH, target) == {"batchItemFailures": []}, function
    store = backends.timeseries_store(Settings(state_dir=target.state_dir))
    assert store.count() == len(BATCH["Records"])
    assert not ABSENT & store.columns_in_use  # the stand-in has the table Timestream would have
    with pytest.raises(MissingColumnError, match="Column 'card_id' does not exist"):
        store.query('SELECT card_id FROM "fraud"."transactions"')

    micro = invoke_function("MicroAnalysisFunction", SCHEDULED, target)
    assert "rule_errors" not in micro
    skipped = micro["rules_skipped"]
    # device_account_spread waits for its 12-hour windows to close: at 12:15 none has closed
    # since its last look (the 12:00 run and those after), so this run sends it no query at all
    queried = {rule: columns for rule, columns in SKIPPED_RULES.items() if rule != "device_account_spread"}
    assert set(skipped) == set(queried)  # 11 of the 17 rules
    for rule, columns in queried.items():
        named = (columns,) if isinstance(columns, str) else columns
        assert any(f"Column '{column}' does not exist" in skipped[rule] for column in named), rule
    # The five rules on what the producer does send ran, and found its shared e-mail and phones.
    assert {flag["rule"] for flag in micro["flags"]} == {"shared_email", "shared_phone"}
    assert micro["started"] == len(micro["flags"])

    # An account flag runs ring, money flow and the account's devices in parallel; the device
    # step reads device_id, ip and country, which do not exist.
    flag = {
        "rule": "high_value_burst",
        "entity_type": "account",
        "entity_id": "1234-5678-21",
        "window_start": "2026-11-29T12:00:00Z",
        "window_end": "2026-11-29T12:05:00Z",
        "observed": 60000.0,
        "threshold": 50000.0,
        "severity": "high",
        "description": "60,000.00 in 5 minutes",
    }
    flagged = run_investigation(target, flag, "high_value_burst-account-1234-5678-21")
    assert flagged["status"] == "SUCCEEDED", flagged.get("cause")
    states = [event.get("state") for event in flagged["history"]]
    assert "Who else uses the account's devices and IPs?" in states
    assert flagged["output"]["members"] == ["1234-5678-20", "1234-5678-21", "1234-5678-22"]
    # By hand, every analysis runs.
    manual = run_investigation(target, {"entity_type": "account", "entity_id": "1234-5678-22"}, "by-hand")
    assert manual["status"] == "SUCCEEDED", manual.get("cause")
    assert "Accounts sharing its devices and IPs" in [event.get("state") for event in manual["history"]]
