"""Rings that grow and rings seen whole, on every graph backend, through the workflow's steps
on graphs written by ingest.

- A ring chained pair by pair (a card number, a computer, a card number, a phone) is
  followed past two hops through the cards and the phone; the office computer of one of
  its members, as far out, links nobody more.
- Two accounts paying thousands from one computer, each from a network of its own, are a
  ring cashing out (``device_cash_out``); a family paying a sofa and a laptop from the family
  computer at home is a family.
- A ring found at 18:00 on one email grows at 19:40, when a third account starts using one
  member's phone (in no two-hour window with anyone): the re-look twelve hours on finds it,
  and the case grows (``grown``); a family sharing an email stays cleared at its re-look
  (``kept``).
- Two new accounts on one email, paying everyday sums, are cleared at 18:00; both cash out
  thousands in the evening: the re-look finds the ring and raises the case (``raised``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fraudcore.contracts import Flag
from fraudcore.graph.connection import GraphConnection
from fraudcore.graph.store import GraphStore
from fraudcore.investigation import (
    Investigation,
    analyse_ring,
    casework,
    flag_step,
    record_case_step,
    ring_step,
    shared_device_step,
)
from fraudcore.investigation.model import RingLimits
from fraudcore.micro import relook
from fraudcore.model import Transaction
from fraudcore.rules import load_rules
from fraudcore.timeutil import iso_z
from fraudlocal.commands.cases import format_relook

MIDNIGHT = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
RULES = {rule.id: rule for rule in load_rules()}


class Ingest:
    def __init__(self, g: Any) -> None:
        remote = g.remote_connection
        self.store = GraphStore(GraphConnection(lambda: remote, name="conformance", max_retries=0))
        self.serial = 0

    def pay(self, account: str, at: timedelta, amount: float = 0.0, **where: Any) -> Transaction:
        """A payment by ``account``: its own card, device and home network unless ``where`` says."""
        self.serial += 1
        fields = {
            "transaction_id": f"t{self.serial}",
            "timestamp": MIDNIGHT + at,
            "account_id": account,
            "amount": amount or 25.0 + self.serial,
            "card_id": f"card-{account}",
            "device_id": f"dev-{account}",
            "ip": f"ip-{account}",
            "merchant_id": f"m{self.serial % 3}",
            **where,
        }
        return Transaction(**{k: v for k, v in fields.items() if v is not None})

    def write(self, *transactions: Transaction) -> None:
        assert not self.store.upsert_transactions(list(transactions)).failed


def hours(value: float) -> timedelta:
    return timedelta(hours=value)


def flag(rule_id: str, entity_type: str, entity_id: str, start: datetime, at: datetime) -> Flag:
    rule = RULES[rule_id]
    return Flag(
        rule=rule.id,
        entity_type=entity_type,
        entity_id=entity_id,
        window_start=iso_z(start),
        window_end=iso_z(start + rule.window),
        observed=2,
        threshold=rule.threshold,
        severity=rule.severity,
        description=f"{entity_type} {entity_id} was used by 2 distinct accounts.",
        execution_name=f"{rule.id}-{entity_type}-{entity_id}-{start:%Y%m%dT%H%M%SZ}-n2-closed",
        evaluation_time=iso_z(at),
    )


def investigate(g: Any, hit: Flag, now: datetime) -> dict[str, Any]:
    """The workflow's branch for the flag: shared devices first for a device, then the ring."""
    investigation = flag_step(hit.to_dict(), g, now)
    event = {"investigation": investigation}
    analyses: dict[str, Any] = {"ring": ring_step(event, g)}
    if hit.entity_type == "device":
        analyses["shared_device"] = shared_device_step(event, g, None)
    return record_case_step({"investigation": investigation, "analyses": analyses}, g, None, now)


def card_flag(card: str) -> Investigation:
    return Investigation(
        entity_type="card",
        entity_id=card,
        trigger="flag",
        rule="shared_card",
        severity="medium",
        reference_time=iso_z(MIDNIGHT + hours(12)),
        risk_score=0.5,
        window_start=iso_z(MIDNIGHT + hours(10)),
        window_end=iso_z(MIDNIGHT + hours(12)),
    )


def test_a_chain_of_cards_and_phones_is_followed_past_two_hops_and_an_office_further_out_is_not(
    graph_backend: Any,
) -> None:
    g = graph_backend
    ingest = Ingest(g)
    ingest.write(
        # Q1 and Q2 share a card number, Q2 and Q3 a computer, Q3 and Q4 a card, Q4 and Q5 a phone
        ingest.pay("Q1", hours(1), card_id="c-Q12"),
        ingest.pay("Q2", hours(1.5), card_id="c-Q12", device_id="d-Q23"),
        ingest.pay("Q3", hours(2), card_id="c-Q34", device_id="d-Q23"),
        ingest.pay("Q4", hours(3), card_id="c-Q34", phone="p-Q45"),
        ingest.pay("Q5", hours(4), phone="p-Q45"),
        # Q4 also pays from the office computer, which two colleagues use too
        ingest.pay("Q4", hours(9), device_id="d-office", ip="ip-office"),
        ingest.pay("W1", hours(9.5), device_id="d-office", ip="ip-office"),
        ingest.pay("W2", hours(10), device_id="d-office", ip="ip-office"),
    )
    ring = analyse_ring(g, card_flag("c-Q12"))
    # Q4 (hop 3) through the card, Q5 (hop 4) through the phone; not the office behind Q4
    assert ring["members"] == ["Q1", "Q2", "Q3", "Q4", "Q5"]
    assert ring["hops"] == 4
    assert [s["id"] for s in ring["shared_identifiers"]] == ["c-Q12", "c-Q34", "d-Q23", "p-Q45"]
    assert [t["reason"] for t in ring["truncation"]] == ["max_hops"]
    assert "through devices and IPs" in ring["truncation"][0]["detail"]
    # with personal links bounded as the others, the chain stops at two hops
    short = analyse_ring(g, card_flag("c-Q12"), RingLimits(max_hops=2, max_personal_hops=2))
    assert short["members"] == ["Q1", "Q2", "Q3"]
    assert [t["reason"] for t in short["truncation"]] == ["max_personal_hops"]
    # a household from its card: the family and nothing further
    ingest.write(
        *(
            ingest.pay(f"H{n}", hours(12 + n), card_id="c-home", device_id="d-home", ip="ip-home")
            for n in (1, 2)
        ),
        ingest.pay("H2", hours(16), phone="p-H2"),
    )
    family = analyse_ring(g, card_flag("c-home"))
    assert (family["members"], family["benign_cluster"], family["truncated"]) == (["H1", "H2"], True, False)


def test_two_accounts_cashing_out_from_one_computer_are_a_ring_and_a_family_computer_is_not(
    graph_backend: Any,
) -> None:
    g = graph_backend
    ingest = Ingest(g)
    ingest.write(
        # each from a network of its own, through the same computer, thousands at a time
        *(
            ingest.pay(account, hours(10) + timedelta(minutes=n), amount=4_000.0 + n, device_id="d-cash")
            for account in ("C1", "C2")
            for n in range(3)
        ),
        # the family: a sofa and a laptop from the family computer at home, everyday sums
        ingest.pay("F1", hours(10), amount=2_400.0, device_id="d-family", ip="ip-family"),
        ingest.pay("F2", hours(10.5), amount=1_300.0, device_id="d-family", ip="ip-family"),
        ingest.pay("F1", hours(8), amount=32.0, device_id="d-family", ip="ip-family"),
        ingest.pay("F2", hours(9), amount=18.0, device_id="d-family", ip="ip-family"),
    )
    noon = MIDNIGHT + hours(12)
    ring = investigate(g, flag("device_cash_out", "device", "d-cash", MIDNIGHT + hours(10), noon), noon)
    assert (ring["verdict"], ring["members"]) == ("fraud_ring", ["C1", "C2"])
    assert "cash_out" in {r["signal"] for r in ring["reasons"]}
    family = investigate(g, flag("device_cash_out", "device", "d-family", MIDNIGHT + hours(10), noon), noon)
    assert (family["verdict"], family["members"]) == ("cleared", ["F1", "F2"])
    assert "cash_out" not in {r["signal"] for r in family["reasons"]}
    assert any("household pattern" in r["sentence"] for r in family["reasons"])


def test_a_member_joining_hours_later_is_found_by_the_relook_and_a_family_stays_a_family(
    graph_backend: Any,
) -> None:
    g = graph_backend
    ingest = Ingest(g)
    rule = RULES["shared_email"]
    ingest.write(
        # two new accounts on one email, each cashing out from its own computer and network
        *(
            ingest.pay(
                account, hours(16.7) + timedelta(minutes=n), amount=3_000.0 + n, email="e-ring", phone=phone
            )
            for account, phone in (("R1", "p-R1"), ("R2", "p-R2"))
            for n in range(2)
        ),
        # a family sharing its email from home, everyday sums
        *(
            ingest.pay(account, hours(16.5 + n), email="e-family", device_id="d-fam", ip="ip-fam")
            for n, account in enumerate(("E1", "E2"))
        ),
    )
    closed = MIDNIGHT + hours(18)
    ring_hit = flag("shared_email", "email", "e-ring", MIDNIGHT + hours(16), closed)
    family_hit = flag("shared_email", "email", "e-family", MIDNIGHT + hours(16), closed)
    found = investigate(g, ring_hit, closed)
    assert (found["verdict"], found["members"]) == ("fraud_ring", ["R1", "R2"])
    assert investigate(g, family_hit, closed)["verdict"] == "cleared"
    # 19:40: a third account pays thousands with R1's phone, three hours after R1 last did;
    # the family keeps shopping
    ingest.write(
        *(
            ingest.pay("R3", hours(19.67) + timedelta(minutes=n), amount=2_500.0, phone="p-R1")
            for n in range(3)
        ),
        ingest.pay("E1", hours(20), email="e-family", device_id="d-fam", ip="ip-fam"),
    )
    later = closed + rule.relook_after
    grown = investigate(g, relook(rule, ring_hit, later), later)
    assert grown["case_id"] == found["case_id"]
    assert (grown["verdict"], grown["members"]) == ("fraud_ring", ["R1", "R2", "R3"])
    # the verdict stands, the case has a member more: grown, not kept
    assert grown["relook"] == {"outcome": "grown", "relook_of": ring_hit.execution_name}
    case = casework.get_case(g, found["case_id"])
    assert (case["verdict"], sorted(case["members"])) == ("fraud_ring", ["R1", "R2", "R3"])
    [entry] = case["verdict_history"]
    assert (entry["outcome"], entry["reference_time"]) == ("grown", "2026-11-30T06:00:00.000Z")
    assert (entry["from"]["verdict"], entry["to"]["verdict"], entry["members_added"]) == (
        "fraud_ring",
        "fraud_ring",
        ["R3"],
    )
    # as the analyst's case page on the command line shows it
    assert "grown: fraud_ring" in format_relook(entry) and "members added: R3" in format_relook(entry)
    family = investigate(g, relook(rule, family_hit, later), later)
    assert (family["verdict"], family["members"]) == ("cleared", ["E1", "E2"])
    # nothing changed: kept
    assert family["relook"]["outcome"] == "kept"
    [entry] = casework.get_case(g, family["case_id"])["verdict_history"]
    assert (entry["outcome"], entry["to"]["verdict"], entry["members_added"]) == ("kept", "cleared", [])


def test_a_cleared_pair_that_cashes_out_later_is_raised_at_its_relook(graph_backend: Any) -> None:
    g = graph_backend
    ingest = Ingest(g)
    rule = RULES["shared_email"]
    # two accounts on one email, each from its own computer and network, everyday sums
    ingest.write(
        *(ingest.pay(account, hours(16.7 + n / 4), email="e-quiet") for n, account in enumerate(("Q1", "Q2")))
    )
    closed = MIDNIGHT + hours(18)
    hit = flag("shared_email", "email", "e-quiet", MIDNIGHT + hours(16), closed)
    quiet = investigate(g, hit, closed)
    assert (quiet["verdict"], quiet["members"]) == ("cleared", ["Q1", "Q2"])
    # in the evening both pay thousands, one payment after the other
    ingest.write(
        *(
            ingest.pay(account, hours(20) + timedelta(minutes=n), amount=3_000.0 + n, email="e-quiet")
            for account in ("Q1", "Q2")
            for n in range(2)
        )
    )
    later = closed + rule.relook_after
    raised = investigate(g, relook(rule, hit, later), later)
    assert (raised["case_id"], raised["verdict"], raised["members"]) == (
        quiet["case_id"],
        "fraud_ring",
        ["Q1", "Q2"],
    )
    # graver than the case was: raised (the same members: no growth to tell)
    assert raised["relook"] == {"outcome": "raised", "relook_of": hit.execution_name}
    case = casework.get_case(g, quiet["case_id"])
    [entry] = case["verdict_history"]
    assert (entry["outcome"], entry["from"]["verdict"], entry["to"]["verdict"], entry["members_added"]) == (
        "raised",
        "cleared",
        "fraud_ring",
        [],
    )
    assert (case["verdict"], case["provisional"]) == ("fraud_ring", False)
    assert format_relook(entry).split(" ", 1)[1].startswith("raised: cleared ")
