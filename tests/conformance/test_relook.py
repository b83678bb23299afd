"""Re-looks on every graph backend, through the workflow's steps on graphs written by ingest.

At noon a home of four that had used nothing but the family computer and the home network,
and a farm of four on one computer behind one proxy, look the same: accounts with no life
of their own, a device farm, a ring. Both verdicts are provisional. In the evening the
family's phones and a till payment arrive; the farm's accounts keep paying through the
farm's computer only. The re-look twelve hours on lowers the family's case (and says so in
its history) and confirms the farm's; a case an analyst has written on is left as it is.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fraudcore.contracts import Flag
from fraudcore.graph.connection import GraphConnection
from fraudcore.graph.store import GraphStore
from fraudcore.investigation import casework, flag_step, record_case_step, ring_step, shared_device_step
from fraudcore.micro import relook
from fraudcore.model import Transaction
from fraudcore.rules import load_rules
from fraudcore.timeutil import iso_z

MIDNIGHT = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
NOON = MIDNIGHT + timedelta(hours=12)
RULE = {rule.id: rule for rule in load_rules()}["device_account_spread"]


class Ingest:
    def __init__(self, g: Any) -> None:
        remote = g.remote_connection
        self.store = GraphStore(GraphConnection(lambda: remote, name="conformance", max_retries=0))
        self.serial = 0

    def pay(self, account: str, at: timedelta, **where: Any) -> Transaction:
        self.serial += 1
        fields = {
            "transaction_id": f"t{self.serial}",
            "timestamp": MIDNIGHT + at,
            "account_id": account,
            "amount": 25.0 + self.serial,
            "card_id": f"card-{account}",
            "merchant_id": f"m{self.serial % 3}",
            **where,
        }
        return Transaction(**{k: v for k, v in fields.items() if v is not None})

    def write(self, transactions: list[Transaction]) -> None:
        assert not self.store.upsert_transactions(transactions).failed


def lifeless_morning(ingest: Ingest, group: str, device: str, ip: str) -> None:
    """Four accounts paying online through one computer and one network, nothing else."""
    ingest.write(
        [
            ingest.pay(f"{group}{n}", timedelta(hours=n + hour), device_id=device, ip=ip)
            for n in range(1, 5)
            for hour in (0, 5)
        ]
    )


def family_evening(ingest: Ingest, group: str) -> None:
    """Three of them pay from their own phones, the fourth at a till (no device, no IP)."""
    ingest.write(
        [
            *(
                ingest.pay(
                    f"{group}{n}", timedelta(hours=17 + n), device_id=f"phone-{group}{n}", ip=f"100.64.0.{n}"
                )
                for n in range(1, 4)
            ),
            ingest.pay(f"{group}4", timedelta(hours=19), device_id=None, ip=None),
        ]
    )


def spread_flag(device: str) -> Flag:
    name = f"device_account_spread-device-{device}-20261129T000000Z"
    return Flag(
        rule=RULE.id,
        entity_type="device",
        entity_id=device,
        window_start=iso_z(MIDNIGHT),
        window_end=iso_z(NOON),
        observed=4,
        threshold=4,
        severity=RULE.severity,
        description=f"Device {device} was used by 4 distinct accounts.",
        execution_name=name,
        evaluation_time=iso_z(NOON),
    )


def investigate(g: Any, flag: Flag, now: datetime) -> dict[str, Any]:
    """The device branch of the workflow: flag, shared devices, ring, record."""
    investigation = flag_step(flag.to_dict(), g, now)
    event = {"investigation": investigation}
    analyses = {"shared_device": shared_device_step(event, g, None), "ring": ring_step(event, g)}
    return record_case_step({"investigation": investigation, "analyses": analyses}, g, None, now)


def test_a_family_that_shows_its_life_later_is_lowered_and_a_farm_that_never_does_is_kept(
    graph_backend: Any,
) -> None:
    g = graph_backend
    ingest = Ingest(g)
    lifeless_morning(ingest, "H", "d-home", "10.1.1.1")
    lifeless_morning(ingest, "F", "d-farm", "198.51.100.7")
    home, farm = spread_flag("d-home"), spread_flag("d-farm")
    at_noon = {name: investigate(g, flag, NOON) for name, flag in (("home", home), ("farm", farm))}
    for name, summary in at_noon.items():
        # at noon the two look the same: a farm, a ring, and a verdict resting on an absence
        assert (summary["verdict"], summary.get("provisional")) == ("fraud_ring", True), name
        assert any(r["evidence"].get("class") == "device_farm" for r in summary["reasons"]), name
    assert at_noon["home"]["members"] == ["H1", "H2", "H3", "H4"]
    family_evening(ingest, "H")
    ingest.write(
        [
            ingest.pay(f"F{n}", timedelta(hours=18 + n), device_id="d-farm", ip="198.51.100.7")
            for n in range(1, 5)
        ]
    )

    midnight = NOON + RULE.relook_after
    lowered = investigate(g, relook(RULE, home, midnight), midnight)
    assert lowered["case_id"] == at_noon["home"]["case_id"]
    assert (lowered["verdict"], lowered["investigation_verdict"]) == ("cleared", "cleared")
    assert lowered["relook"] == {"outcome": "lowered", "relook_of": home.execution_name}
    assert "provisional" not in lowered
    case = casework.get_case(g, lowered["case_id"])
    assert (case["verdict"], case["provisional"], case["status"], case["decisions"]) == (
        "cleared",
        False,
        "open",
        [],
    )
    [entry] = case["verdict_history"]
    assert (entry["outcome"], entry["by"], entry["relook_of"]) == ("lowered", "re-look", home.execution_name)
    assert (entry["from"]["verdict"], entry["to"]["verdict"], entry["found"]["verdict"]) == (
        "fraud_ring",
        "cleared",
        "cleared",
    )
    assert entry["reference_time"] == "2026-11-30T00:00:00.000Z"
    assert any("household pattern" in sentence for sentence in entry["reasons"])

    kept = investigate(g, relook(RULE, farm, midnight), midnight)
    assert kept["case_id"] == at_noon["farm"]["case_id"]
    assert (kept["verdict"], kept["relook"]["outcome"]) == ("fraud_ring", "confirmed")
    farm_case = casework.get_case(g, kept["case_id"])
    assert (farm_case["verdict"], farm_case["provisional"]) == ("fraud_ring", False)
    assert [e["outcome"] for e in farm_case["verdict_history"]] == ["confirmed"]

    # the same re-look delivered again finds the case settled and records nothing twice
    again = investigate(g, relook(RULE, home, midnight), midnight)
    assert (again["verdict"], again["relook"]["outcome"]) == ("cleared", "kept")
    assert len(casework.get_case(g, lowered["case_id"])["verdict_history"]) == 1


def test_a_relook_never_overrides_an_analyst(graph_backend: Any) -> None:
    g = graph_backend
    ingest = Ingest(g)
    lifeless_morning(ingest, "K", "d-kitchen", "10.2.2.2")
    flag = spread_flag("d-kitchen")
    opened = investigate(g, flag, NOON)
    assert (opened["verdict"], opened.get("provisional")) == ("fraud_ring", True)
    casework.decide(
        g, opened["case_id"], "note", "ana", "calling the family tomorrow", NOON + timedelta(hours=1)
    )
    family_evening(ingest, "K")
    midnight = NOON + RULE.relook_after
    after = investigate(g, relook(RULE, flag, midnight), midnight)
    assert (after["investigation_verdict"], after["verdict"]) == ("cleared", "fraud_ring")
    assert after["relook"]["outcome"] == "not_applied"
    case = casework.get_case(g, opened["case_id"])
    assert (case["verdict"], case["provisional"]) == ("fraud_ring", True)
    assert [e["outcome"] for e in case["verdict_history"]] == ["not_applied"]
    assert [d["action"] for d in case["decisions"]] == ["note"]
