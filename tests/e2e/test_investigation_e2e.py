"""From a flag to a recorded case: the real state machine, run by the local executor, each
task by its real handler in-process on the embedded stores of a fresh state directory.

The same ring found from two of its members (and again once it has grown by one account)
yields one case, opened once and updated after.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gremlin_python.process.anonymous_traversal import traversal
from gremlin_python.process.graph_traversal import __

from fraudcore import backends
from fraudcore.model import Transaction
from fraudcore.settings import Settings
from fraudlocal.adapters.graph_embedded import open_embedded_graph
from fraudlocal.commands.investigate import run_investigation
from fraudlocal.emulators.runtime import LocalTarget

REPO = Path(__file__).resolve().parents[2]
WINDOW_END = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
RING = ["a1", "a2", "a3", "a4"]


def _tx(n: int, account: str, minutes_ago: int, amount: float, **identifiers: str) -> Transaction:
    return Transaction(
        transaction_id=f"tx-{account}-{n}",
        timestamp=WINDOW_END - timedelta(minutes=minutes_ago),
        account_id=account,
        amount=amount,
        **identifiers,
    )


def ingest(state_dir: Path, transactions: list[Transaction]) -> None:
    """Through the application's own graph and time-series stores, as ingest writes them."""
    settings = Settings(state_dir=state_dir)
    try:
        backends.graph_store(settings).upsert_transactions(transactions)
        backends.timeseries_store(settings).write(transactions)
    finally:
        backends.reset()


def ring_transactions() -> list[Transaction]:
    """Four accounts paying with one card from one phone-farm device (nothing else: no other
    device, no payment at a till); a1 bursts 60,000 online through it."""
    txs = [
        _tx(1, a, 30 + i, 120.0, card_id="card-ring", device_id="dev-ring", ip=f"198.51.100.{i}")
        for i, a in enumerate(RING)
    ]
    txs += [
        _tx(
            2 + k,
            "a1",
            4 - k,
            20_000.0,
            merchant_id="m-jewels",
            card_id="card-ring",
            device_id="dev-ring",
            ip="198.51.100.0",
        )
        for k in range(3)
    ]
    # a household nearby that must not be pulled in: its own IP and device
    txs += [_tx(1, h, 50, 30.0, ip="10.0.0.9", device_id="dev-home") for h in ("h1", "h2")]
    return txs


def flag(account: str, rule: str = "high_value_burst", end: datetime = WINDOW_END) -> dict[str, Any]:
    return {
        "rule": rule,
        "entity_type": "account",
        "entity_id": account,
        "window_start": (end - timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
        "window_end": end.isoformat().replace("+00:00", "Z"),
        "observed": 60000.0,
        "threshold": 50000.0,
        "severity": "high",
        "description": "60,000.00 in 5 minutes",
    }


def investigate(state_dir: Path, execution_input: dict[str, Any], name: str) -> dict[str, Any]:
    return run_investigation(LocalTarget(state_dir), execution_input, name)


def graph_rows(state_dir: Path, build: Any) -> list[Any]:
    connection = open_embedded_graph(state_dir)
    try:
        return build(traversal().with_remote(connection)).to_list()
    finally:
        connection.close()


def events(state_dir: Path) -> list[dict[str, Any]]:
    path = state_dir / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_flag_to_case_and_the_same_ring_from_another_member(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ingest(state, ring_transactions())

    first = investigate(state, flag("a1"), "flag-a1")
    assert first["status"] == "SUCCEEDED", first["cause"]
    states = [e["state"] for e in first["history"] if e["parent"] is None]
    assert states == [
        "Flag the suspicious entity",
        "Which analyses fit this flag?",
        "Look for a ring and follow the money",
        "Score the evidence and record the case",
        "What did the investigation conclude?",
        "Fraud ring: case recorded, members flagged",
    ]
    case = first["output"]
    assert case["verdict"] == "fraud_ring"
    assert case["status"] == "opened"
    assert case["members"] == RING
    assert case["flags_propagated"] == ["a2", "a3", "a4"]
    # an account flag runs the ring, the money flow and the account's devices side by side
    assert {r["signal"] for r in case["reasons"]} == {"flag", "ring", "shared_device"}
    ring_reason = next(r for r in case["reasons"] if r["signal"] == "ring")
    assert ring_reason["evidence"]["members"] == RING
    # dev-ring is the only device of all four accounts: a device farm, a1 on it already
    # flagged by the first step (0.85)
    device_reason = next(r for r in case["reasons"] if r["signal"] == "shared_device")
    assert "a device farm" in device_reason["sentence"]
    # ring: 0.3 * 3/5 + 0.2 * 1.0 + 0.2 * 1.0 (a shared card); noisy-or with the flag's 0.7 / 2
    assert case["score"] == round(1 - (1 - 0.35) * (1 - 0.58) * (1 - 0.85), 3)

    # the graph: one case linked to its four members, members flagged as ring members
    flags = graph_rows(
        state,
        lambda g: (
            g.V("account:a1", "account:a2", "account:h1")
            .project("id", "flagged", "reason")
            .by("value")
            .by(__.coalesce(__.values("flagged"), __.constant(False)))
            .by(__.coalesce(__.values("last_flag_reason"), __.constant("none")))
        ),
    )
    assert {(r["id"], r["flagged"], r["reason"]) for r in flags} == {
        ("a1", True, "high_value_burst"),
        ("a2", True, "ring_member"),
        ("h1", False, "none"),
    }
    members = graph_rows(state, lambda g: g.V(f"case:{case['case_id']}").in_("member_of").values("value"))
    assert sorted(members) == RING
    alerts = graph_rows(state, lambda g: g.V(f"case:{case['case_id']}").in_("alert_of").values("reason"))
    assert sorted(alerts) == ["high_value_burst", "ring_member", "ring_member", "ring_member"]

    # the same ring from another member, flagged by another rule an hour later: one case
    second = investigate(state, flag("a3", rule="velocity", end=WINDOW_END + timedelta(hours=1)), "flag-a3")
    assert second["status"] == "SUCCEEDED", second["cause"]
    assert second["output"]["case_id"] == case["case_id"]
    assert second["output"]["status"] == "updated"

    # the ring grows by one account; a hand-started investigation still finds the same case
    ingest(state, [_tx(9, "a5", 1, 50.0, card_id="card-ring")])
    third = investigate(state, {"entity_type": "account", "entity_id": "a5"}, "manual-a5")
    assert third["status"] == "SUCCEEDED", third["cause"]
    assert [e["state"] for e in third["history"] if e["parent"] is None][2] == "Run every analysis"
    assert third["output"]["members"] == [*RING, "a5"]
    assert third["output"]["case_id"] == case["case_id"]
    # an analyst's investigation flags nothing by itself, but a ring verdict flags every member
    assert third["output"]["flags_propagated"] == [*RING, "a5"]

    assert graph_rows(state, lambda g: g.V().has_label("case").count()) == [1]
    assert [e["detail_type"] for e in events(state)] == [
        "FraudCaseOpened",
        "FraudCaseUpdated",
        "FraudCaseUpdated",
    ]
    assert events(state)[0]["detail"]["case_id"] == case["case_id"]


def test_a_household_is_cleared_without_flagging_anyone(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ingest(state, ring_transactions())
    result = investigate(state, flag("h1", rule="velocity"), "flag-h1")
    assert result["status"] == "SUCCEEDED", result["cause"]
    assert result["output"]["verdict"] == "cleared"
    assert result["output"]["flags_propagated"] == []
    assert any("household pattern" in r["sentence"] for r in result["output"]["reasons"])


def test_an_unknown_entity_fails_with_a_readable_cause(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ingest(state, ring_transactions())
    result = investigate(state, {"entity_type": "account", "entity_id": "no-such-account"}, "manual-missing")
    assert result["status"] == "FAILED"
    assert result["error"] == "EntityNotFound"
    assert "account 'no-such-account' is not in the graph" in result["cause"]
    assert result["history"][0]["retries"] == []  # an analyst's typo: nothing to wait for
    flagged = investigate(state, flag("no-such-account"), "flag-missing")
    assert flagged["error"] == "EntityNotInGraph"
    assert flagged["cause"].startswith("The investigation stopped because a step failed after its retries")
    assert len(flagged["history"][0]["retries"]) == 2  # ingest may lag behind a flag: retried


def test_device_flag_starts_with_the_shared_device_analysis(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ingest(state, ring_transactions())
    device_flag = {
        **flag("x"),
        "rule": "device_account_burst",
        "entity_type": "device",
        "entity_id": "dev-ring",
    }
    result = investigate(state, device_flag, "flag-dev-ring")
    assert result["status"] == "SUCCEEDED", result["cause"]
    top = [e["state"] for e in result["history"] if e["parent"] is None]
    assert top[2:5] == [
        "Who else uses these devices and IPs?",
        "Look for a ring around the shared devices",
        "Gather the device and ring evidence",
    ]
    case = result["output"]
    assert case["members"] == RING
    assert case["verdict"] == "fraud_ring"
    assert any("a device farm" in r["sentence"] for r in case["reasons"])


def test_a_mule_and_the_accounts_its_money_moved_through_make_one_case(tmp_path: Path) -> None:
    state = tmp_path / "state"
    feeders = [f"v{n}" for n in range(1, 5)]
    txs = [
        _tx(1, v, 90 - n, 16_000.0, counterparty_account_id="mule", channel="transfer")
        for n, v in enumerate(feeders)
    ]
    txs += [
        _tx(1, "mule", 4, 31_000.0, counterparty_account_id="b1", channel="transfer"),
        _tx(2, "mule", 3, 30_000.0, counterparty_account_id="b2", channel="transfer"),
        # an everyday transfer into a feeder: too small to carry the mule's money
        _tx(1, "friend", 300, 40.0, counterparty_account_id="v1", channel="transfer"),
    ]
    ingest(state, txs)
    result = investigate(state, {**flag("mule"), "observed": 61_000.0}, "flag-mule")
    assert result["status"] == "SUCCEEDED", result["cause"]
    case = result["output"]
    # 4 senders, 95 % passed on: a mule pattern, so the feeders and recipients are members
    assert case["members"] == ["b1", "b2", "mule", *feeders]
    assert case["verdict"] == "fraud_ring"
    assert any("money-mule pattern" in r["sentence"] for r in case["reasons"])
    assert "friend" not in case["members"]


def test_cli_json_output(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ingest(state, ring_transactions())
    flag_file = tmp_path / "flag.json"
    flag_file.write_text(json.dumps(flag("a1")))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "fraudlocal.cli",
            "--state-dir",
            str(state),
            "investigate",
            "account:a1",
            "--input",
            str(flag_file),
            "--json",
        ],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    case = json.loads(run.stdout)
    assert (case["verdict"], case["members"]) == ("fraud_ring", RING)
    assert len(list((state / "investigations").glob("*.json"))) == 1
    wrong = subprocess.run(
        [
            sys.executable,
            "-m",
            "fraudlocal.cli",
            "--state-dir",
            str(state),
            "investigate",
            "account:a2",
            "--input",
            str(flag_file),
        ],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert wrong.returncode != 0
    assert "is about account:a1, not account:a2" in wrong.stderr


def test_sample_events_run_through_their_handlers(tmp_path: Path) -> None:
    from fraudlocal.emulators.runtime import close_local_backends, invoke_function

    state = tmp_path / "state"
    ingest(
        state,
        [
            _tx(
                1,
                a,
                10,
                15_000.0,
                card_id="card-77",
                device_id="dev-000042",
                counterparty_account_id="acc-000456",
            )
            for a in ("acc-000123", "acc-000456", "acc-000789")
        ],
    )
    folder = REPO / "events" / "investigation"
    calls = {
        "FlagEntityFunction": ["flag-entity.json", "flag-entity-hand-started.json"],
        "RingAnalysisFunction": ["ring-analysis.json"],
        "SharedDeviceAnalysisFunction": [
            "shared-device-analysis.json",
            "shared-device-analysis-account.json",
        ],
        "MoneyFlowAnalysisFunction": ["money-flow-analysis.json"],
        "RecordCaseFunction": ["record-case.json"],
    }
    try:
        responses = {
            name: invoke_function(function, json.loads((folder / name).read_text()), LocalTarget(state))
            for function, names in calls.items()
            for name in names
        }
    finally:
        close_local_backends()
    assert responses["flag-entity.json"]["rule"] == "high_value_burst"
    assert responses["flag-entity-hand-started.json"]["trigger"] == "manual"
    assert responses["ring-analysis.json"]["members"] == ["acc-000123", "acc-000456", "acc-000789"]
    assert [i["class"] for i in responses["shared-device-analysis.json"]["identifiers"]] == ["household"]
    # an account flag also reads the activity in the flag's window (none here: the sample
    # transactions are 10 minutes older), so no device carried it and there is no takeover
    change = responses["shared-device-analysis-account.json"]["account_change"]
    assert (change["flagged_amount"], change["new_devices"], change["takeover"]) == (0.0, [], False)
    assert responses["money-flow-analysis.json"]["fan_out"] == 1
    assert responses["record-case.json"]["members"] == ["acc-000123", "acc-000456", "acc-000789"]
    for name in ("state-machine-flag.json", "state-machine-hand-started.json"):
        assert json.loads((folder / name).read_text())["entity_id"] == "acc-000123"
