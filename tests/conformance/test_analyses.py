"""The investigation analyses on small graphs with known answers, on every graph backend.

One graph holds five patterns that never touch each other except where said:

- a ring r1..r5: card c-ring (r1, r2, r3), device d-ring (r3, r4), phone p-ring (r4, r5);
  r2 is already flagged; r1 also uses a personal device and the public IP;
- a household h1, h2: one IP and one device, nobody flagged;
- a family e1, e2 at one home (IP 10.0.0.8, device dev-family) sharing the card c-family and
  the phone p-family, each with a phone of its own; a pair n1, n2 sharing the card c-pair
  and the phone p-pair, each at a home of its own;
- a public IP 203.0.113.9 used by r1 and by 300 other accounts pub-000..pub-299;
- a device farm d-farm used by f1..f6 (f6 flagged), four of them in the last 24 hours;
  they use no other device;
- a second farm: g1..g6 on d-farm2, g7 and g8 on d-side2, all behind the proxy IP
  198.51.100.77 (8 accounts, 2 devices), all active in the last 24 hours;
- an office: o1..o4 at the computer d-office behind 192.0.2.50, each with a phone of its own;
- a takeover: t1 used d-t1 and 192.0.2.10 for a month; 20 minutes before the reference
  time d-new and 192.0.2.200 appear and carry a 60,000 burst from RO (t1 paid from FR);
  a big spender s1 pays 60,000 with its usual device d-s1;
- a mule chain v1..v4 -> m1 -> m2 -> m3 -> m4 (m3 flagged), and a cycle k1 -> k2 -> k3 -> k1.

The graph is written with plain gremlinpython bytecode following the model of
``fraudcore.graph.schema`` (ids ``<label>:<value>``, edges ``<out>|<label>|<in>``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from gremlin_python.process.graph_traversal import GraphTraversalSource, __
from gremlin_python.process.traversal import Cardinality, Direction, Merge, T
from gremlin_python.statics import long

from fraudcore.graph import schema
from fraudcore.investigation import Investigation, analyse_money_flow, analyse_ring, analyse_shared_devices
from fraudcore.investigation.model import MoneyFlowLimits, RingLimits
from fraudcore.investigation.scoring import assess
from fraudcore.model import Transaction
from fraudlocal.adapters.timeseries_duckdb import DuckDBTimeseriesStore

REFERENCE = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
REF_MS = int(REFERENCE.timestamp() * 1000)
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
PUBLIC_IP = "203.0.113.9"
FARM_PROXY = "198.51.100.77"
MINUTE_MS = 60_000


def _vid(label: str, value: str) -> str:
    return schema.vertex_id(label, value)


class GraphBuilder:
    """Collects vertices and edges, then writes them in a few batched mergeV/mergeE requests."""

    def __init__(self) -> None:
        self.vertices: dict[str, dict[str, Any]] = {}
        self.edges: dict[str, dict[Any, Any]] = {}
        self.flagged: list[str] = []
        self.flag_reasons: dict[str, str] = {}

    def vertex(self, label: str, value: str) -> str:
        vid = _vid(label, value)
        self.vertices.setdefault(vid, {"match": {T.id: vid, T.label: label}, "create": {"value": value}})
        return vid

    def uses(
        self,
        account: str,
        label: str,
        value: str,
        first: int,
        last: int,
        tx: int = 3,
        in_person: int = 0,
        amount: float | None = None,
    ) -> None:
        out_id, in_id = self.vertex(schema.ACCOUNT, account), self.vertex(label, value)
        edge_label = {"email": schema.HAS_EMAIL, "phone": schema.HAS_PHONE}.get(label, schema.USES)
        props: dict[str, Any] = {"first_seen": long(first), "last_seen": long(last), "tx_count": tx}
        if amount is not None:
            props["amount_total"] = amount
        if in_person:
            props["in_person_count"] = long(in_person)
        self._edge(edge_label, out_id, in_id, props)

    def transfer(self, sender: str, receiver: str, amount: float, tx: int = 1) -> None:
        out_id, in_id = self.vertex(schema.ACCOUNT, sender), self.vertex(schema.ACCOUNT, receiver)
        props = {
            "first_seen": long(REF_MS - DAY_MS),
            "last_seen": long(REF_MS - HOUR_MS),
            "tx_count": tx,
            "amount_total": amount,
        }
        self._edge(schema.TRANSFERS_TO, out_id, in_id, props)

    def flag(self, account: str, reason: str | None = None) -> None:
        self.flagged.append(self.vertex(schema.ACCOUNT, account))
        if reason:
            self.flag_reasons[self.vertex(schema.ACCOUNT, account)] = reason

    def _edge(self, label: str, out_id: str, in_id: str, props: dict[str, Any]) -> None:
        eid = schema.edge_id(label, out_id, in_id)
        self.edges[eid] = {
            "match": {T.id: eid, T.label: label, Direction.OUT: out_id, Direction.IN: in_id},
            "create": props,
        }

    def write(self, g: GraphTraversalSource) -> None:
        for rows, merge in ((list(self.vertices.values()), "v"), (list(self.edges.values()), "e")):
            for i in range(0, len(rows), 100):
                start = g.inject(rows[i : i + 100]).unfold().as_("row")
                step = start.merge_v if merge == "v" else start.merge_e
                step(__.select("row").select("match")).option(
                    Merge.on_create, __.select("row").select("create")
                ).iterate()
        for vid in self.flagged:
            g.V(vid).property(Cardinality.single, "flagged", True).property(
                Cardinality.single, "risk_score", 0.9
            ).iterate()
            if vid in self.flag_reasons:
                g.V(vid).property(Cardinality.single, "last_flag_reason", self.flag_reasons[vid]).iterate()


def build_world(g: GraphTraversalSource) -> None:
    b = GraphBuilder()
    old, recent = REF_MS - 30 * DAY_MS, REF_MS - 2 * HOUR_MS
    for account in ("r1", "r2", "r3"):
        b.uses(account, "card", "c-ring", old, recent)
    for account in ("r3", "r4"):
        b.uses(account, "device", "d-ring", old, recent)
    for account in ("r4", "r5"):
        b.uses(account, "phone", "p-ring", old, recent)
    b.uses("r1", "device", "d-r1", old, recent)
    b.flag("r2")
    for account in ("h1", "h2"):
        b.uses(account, "ip", "10.0.0.7", old, recent)
        b.uses(account, "device", "dev-home", old + DAY_MS, recent)
    for account in ("e1", "e2"):
        b.uses(account, "ip", "10.0.0.8", old, recent)
        b.uses(account, "device", "dev-family", old, recent)
        b.uses(account, "card", "c-family", old, recent)
        b.uses(account, "phone", "p-family", old, recent)
        b.uses(account, "device", f"d-phone-{account}", old, recent)
    for account in ("n1", "n2"):
        b.uses(account, "card", "c-pair", old, recent)
        b.uses(account, "phone", "p-pair", old, recent)
        b.uses(account, "ip", f"10.0.1.{account[1]}", old, recent)
        b.uses(account, "device", f"d-phone-{account}", old, recent)
    # five at one home (an IP nobody else uses), on the family card, three with phones of
    # their own; the same five without phones of their own (a farm behind one proxy)
    for n in range(1, 6):
        for prefix, own_phone in (("L", n <= 3), ("F", False)):
            b.uses(f"{prefix}{n}", "ip", f"10.0.2.{prefix}", old, recent)
            b.uses(f"{prefix}{n}", "card", f"c-{prefix}", old, recent)
            b.uses(f"{prefix}{n}", "device", f"d-computer-{prefix}", old, recent)
            if own_phone:
                b.uses(f"{prefix}{n}", "device", f"d-phone-{prefix}{n}", old, recent)
    # four on one card and one phone, each on a network of their own: three of them pay
    # with the card at a till (a family card handed around) / only online (a ring)
    for n in range(1, 5):
        for prefix, at_till in (("W", n <= 3), ("X", False)):
            b.uses(f"{prefix}{n}", "card", f"c-{prefix}", old, recent, in_person=2 if at_till else 0)
            b.uses(f"{prefix}{n}", "phone", f"p-{prefix}", old, recent)
            b.uses(f"{prefix}{n}", "ip", f"10.0.3.{prefix}{n}", old, recent)
            b.uses(f"{prefix}{n}", "device", f"d-phone-{prefix}{n}", old, recent)
    # a home of four on its network and family computer, only M1 with a phone of its own so
    # far (the others' phones and shopping come later in the day); five on one network and
    # computer, only Q1 with a phone: four accounts that show nothing else
    for prefix, size in (("M", 4), ("Q", 5)):
        for n in range(1, size + 1):
            b.uses(f"{prefix}{n}", "ip", f"10.0.4.{prefix}", old, recent)
            b.uses(f"{prefix}{n}", "device", f"d-computer-{prefix}", old, recent)
        b.uses(f"{prefix}1", "device", f"d-phone-{prefix}1", old, recent)
    # two at one home, one of them flagged for a payment from a device and network new to it
    # (Y1) / for a high-value burst (Z1)
    for prefix, reason in (("Y", "novel_takeover"), ("Z", "high_value_burst")):
        for n in (1, 2):
            b.uses(f"{prefix}{n}", "ip", f"10.0.5.{prefix}", old, recent)
            b.uses(f"{prefix}{n}", "device", f"d-home-{prefix}", old, recent)
        b.flag(f"{prefix}1", reason)
    # five on one card and one phone: three of them seen on the home network (an IP nobody
    # else uses) and its family computer, the other two not online yet except A4 on a phone
    # of its own, A5 at a till with the card (a family at midday); the twin: the same five
    # but each of the three on a network of its own (a ring)
    for prefix in ("A", "B"):
        for n in range(1, 6):
            b.uses(f"{prefix}{n}", "card", f"c-{prefix}", old, recent, in_person=1 if n == 5 else 0)
            b.uses(f"{prefix}{n}", "phone", f"p-{prefix}", old, recent)
        for n in range(1, 4):
            b.uses(f"{prefix}{n}", "ip", "10.0.6.1" if prefix == "A" else f"10.0.7.{n}", old, recent)
            b.uses(f"{prefix}{n}", "device", f"d-computer-{prefix}", old, recent)
        b.uses(f"{prefix}4", "device", f"d-phone-{prefix}4", old, recent)
    # three accounts on one device, each through a network of its own (a device carried
    # between homes, not a family computer)
    for n in range(1, 4):
        b.uses(f"D{n}", "device", "d-carried", old, recent)
        b.uses(f"D{n}", "ip", f"10.0.8.{n}", old, recent)
    # four on a kitchen computer and nothing else online, all paying in shops with their cards
    for n in range(1, 5):
        b.uses(f"K{n}", "device", "d-kitchen", old, recent)
        b.uses(f"K{n}", "card", f"c-K{n}", old, recent, tx=5, in_person=2)
    # two new accounts on one phone, each on a card and network of its own, both spending
    # thousands at once (a synthetic-identity pair cashing out); the twin: a couple on one
    # phone, one of whom bought a sofa (6,000 among everyday payments), the other shopping
    for prefix, spent in (("S", ((6_000.0, 3), (4_000.0, 2))), ("U", ((6_150.0, 4), (120.0, 5)))):
        for n, (amount, payments) in enumerate(spent, start=1):
            b.uses(f"{prefix}{n}", "phone", f"p-{prefix}", recent, recent)
            b.uses(f"{prefix}{n}", "card", f"c-{prefix}{n}", recent, recent, tx=payments, amount=amount)
            b.uses(f"{prefix}{n}", "ip", f"10.0.9.{prefix}{n}", recent, recent)
    # four on one home network and one family computer, nothing else seen yet; at the home
    # (H) a friend paid H4 back 40; at the farm behind one proxy (J) one funder sent 40 to
    # each account
    for prefix in ("H", "J"):
        for n in range(1, 5):
            b.uses(f"{prefix}{n}", "ip", f"10.0.10.{prefix}", recent, recent)
            b.uses(f"{prefix}{n}", "device", f"d-computer-{prefix}", recent, recent)
            b.uses(f"{prefix}{n}", "card", f"c-{prefix}{n}", recent, recent, tx=1, amount=30.0)
    b.transfer("friend-of-H4", "H4", 40.0)
    for n in range(1, 5):
        b.transfer("funder-of-J", f"J{n}", 40.0)
    b.uses("r1", "ip", PUBLIC_IP, old, recent)
    for n in range(300):
        b.uses(f"pub-{n:03d}", "ip", PUBLIC_IP, old + n * HOUR_MS, old + n * HOUR_MS + HOUR_MS)
    for n in range(1, 7):
        b.uses(f"f{n}", "device", "d-farm", REF_MS - (10 - n) * DAY_MS, REF_MS - n * HOUR_MS)
    b.flag("f6")
    for n in range(1, 9):
        b.uses(f"g{n}", "device", "d-farm2" if n <= 6 else "d-side2", REF_MS - 3 * HOUR_MS, REF_MS - HOUR_MS)
        b.uses(f"g{n}", "ip", FARM_PROXY, REF_MS - 3 * HOUR_MS, REF_MS - HOUR_MS)
    for n in range(1, 5):
        b.uses(f"o{n}", "device", "d-office", old, recent)
        b.uses(f"o{n}", "ip", "192.0.2.50", old, recent)
        b.uses(f"o{n}", "device", f"d-phone-o{n}", old, recent)
    b.uses("t1", "device", "d-t1", old, REF_MS - 3 * HOUR_MS)
    b.uses("t1", "ip", "192.0.2.10", old, REF_MS - 3 * HOUR_MS)
    b.uses("t1", "device", "d-new", REF_MS - 20 * MINUTE_MS, REF_MS - MINUTE_MS)
    b.uses("t1", "ip", "192.0.2.200", REF_MS - 20 * MINUTE_MS, REF_MS - MINUTE_MS)
    b.uses("s1", "device", "d-s1", old, REF_MS - MINUTE_MS)
    for n in range(1, 5):
        b.transfer(f"v{n}", "m1", 2500.0)
    b.transfer("m1", "m2", 9500.0)
    b.transfer("m2", "m3", 9000.0)
    b.transfer("m3", "m4", 8800.0)
    b.transfer("k1", "k2", 5000.0)
    b.transfer("k2", "k3", 4900.0)
    b.transfer("k3", "k1", 4800.0)
    b.flag("m3")
    b.write(g)


@pytest.fixture
def world(graph_backend: Any) -> Any:
    build_world(graph_backend)
    return graph_backend


@pytest.fixture
def timeseries(tmp_path: Path) -> DuckDBTimeseriesStore:
    """d-farm: f1..f4 within the last 24 hours, f5 just outside, f6 long ago; one household row."""
    store = DuckDBTimeseriesStore(tmp_path / "ts.duckdb", "fraud", "transactions")
    rows = []
    for n, hours_ago in ((1, 1), (2, 5), (3, 12), (4, 23), (5, 25), (6, 200)):
        at = REFERENCE - timedelta(hours=hours_ago)
        rows.append(
            Transaction(
                transaction_id=f"t-f{n}", timestamp=at, account_id=f"f{n}", amount=10, device_id="d-farm"
            )
        )
    # an event after the reference time does not count: the analysis looks back from the flag
    rows.append(
        Transaction(
            transaction_id="t-late",
            timestamp=REFERENCE + timedelta(minutes=5),
            account_id="f5",
            amount=1,
            device_id="d-farm",
        )
    )
    for n in range(1, 9):
        rows.append(
            Transaction(
                transaction_id=f"t-g{n}",
                timestamp=REFERENCE - timedelta(hours=2),
                account_id=f"g{n}",
                amount=20,
                device_id="d-farm2" if n <= 6 else "d-side2",
                ip=FARM_PROXY,
            )
        )
    for n in range(1, 5):
        rows.append(
            Transaction(
                transaction_id=f"t-o{n}",
                timestamp=REFERENCE - timedelta(hours=n),
                account_id=f"o{n}",
                amount=20,
                device_id="d-office",
                ip="192.0.2.50",
            )
        )
    # t1: a month of payments from FR on d-t1, then 60,000 in the window from RO on d-new
    for day in range(1, 4):
        rows.append(
            Transaction(
                transaction_id=f"t-t1-old{day}",
                timestamp=REFERENCE - timedelta(days=day),
                account_id="t1",
                amount=50,
                device_id="d-t1",
                ip="192.0.2.10",
                country="FR",
            )
        )
    for k in range(3):
        rows.append(
            Transaction(
                transaction_id=f"t-t1-burst{k}",
                timestamp=REFERENCE - timedelta(minutes=4 - k),
                account_id="t1",
                amount=20_000,
                device_id="d-new",
                ip="192.0.2.200",
                country="RO",
            )
        )
    rows.append(
        Transaction(
            transaction_id="t-s1-car",
            timestamp=REFERENCE - timedelta(minutes=3),
            account_id="s1",
            amount=60_000,
            device_id="d-s1",
            country="FR",
        )
    )
    rows.append(
        Transaction(
            transaction_id="t-h1",
            timestamp=REFERENCE - timedelta(hours=3),
            account_id="h1",
            amount=10,
            ip="10.0.0.7",
            device_id="dev-home",
        )
    )
    store.write(rows)
    yield store
    store.close()


def investigation(
    entity_type: str, entity_id: str, rule: str = "velocity", window: timedelta | None = None
) -> Investigation:
    return Investigation(
        entity_type=entity_type,
        entity_id=entity_id,
        trigger="flag",
        rule=rule,
        reference_time=REFERENCE.isoformat().replace("+00:00", "Z"),
        risk_score=0.7,
        window_start=(REFERENCE - window).isoformat().replace("+00:00", "Z") if window else None,
        window_end=REFERENCE.isoformat().replace("+00:00", "Z"),
    )


def _core(result: dict[str, Any]) -> dict[str, Any]:
    """The analysis without its request count (which is the same on both backends anyway)."""
    return {k: v for k, v in result.items() if k != "requests"}


# -- ring -------------------------------------------------------------------------------


def test_ring_from_a_member_follows_shared_identifiers_and_stops_at_the_hop_limit(world: Any) -> None:
    # r5 shares a phone with r4 (hop 3): followed by default (a personal link), not here
    result = analyse_ring(world, investigation("account", "r1"), RingLimits(max_hops=2, max_personal_hops=2))
    assert result["members"] == ["r1", "r2", "r3", "r4"]
    assert result["shared_identifiers"] == [
        {"type": "card", "id": "c-ring", "degree": 3, "accounts": ["r1", "r2", "r3"]},
        {"type": "device", "id": "d-ring", "degree": 2, "accounts": ["r3", "r4"]},
    ]
    assert result["skipped_identifiers"] == [{"type": "ip", "id": PUBLIC_IP, "degree": 301}]
    assert result["flagged_members"] == ["r2"]
    # pairs sharing an identifier: r1-r2, r1-r3, r2-r3, r3-r4 of 6
    assert result["density"] == 0.667
    assert result["flagged_share"] == 0.333
    # 0.3 * 3/5 + 0.2 * 0.667 + 0.3 * 0.333 + 0.2 * 1.0 (a shared card)
    assert result["ring_score"] == 0.613
    assert result["benign_cluster"] is False
    assert result["hops"] == 2
    assert result["truncated"] is True
    assert [t["reason"] for t in result["truncation"]] == ["identifier_degree", "max_personal_hops"]
    # by default the phone is followed a hop further: the whole ring
    whole = analyse_ring(world, investigation("account", "r1"))
    assert (whole["members"], whole["hops"]) == (["r1", "r2", "r3", "r4", "r5"], 3)
    assert [t["reason"] for t in whole["truncation"]] == ["identifier_degree"]


def test_ring_with_more_hops_reaches_the_whole_ring(world: Any) -> None:
    result = analyse_ring(world, investigation("account", "r5"), RingLimits(max_hops=4))
    assert result["members"] == ["r1", "r2", "r3", "r4", "r5"]
    assert [s["id"] for s in result["shared_identifiers"]] == ["c-ring", "d-ring", "p-ring"]
    assert result["hops"] == 3
    # the public IP is only reached through r1 and links nobody
    assert [t["reason"] for t in result["truncation"]] == ["identifier_degree"]
    assert result["flagged_share"] == 0.25
    assert result["density"] == 0.5


def test_ring_member_cap_truncates(world: Any) -> None:
    result = analyse_ring(world, investigation("account", "r1"), RingLimits(max_hops=2, member_cap=2))
    assert result["members"] == ["r1", "r2"]
    assert "member_cap" in [t["reason"] for t in result["truncation"]]


def test_household_is_a_benign_cluster(world: Any) -> None:
    result = analyse_ring(world, investigation("account", "h1"))
    assert _core(result) | {"truncation": []} == {
        "analysis": "ring",
        "start": {"type": "account", "id": "h1"},
        "members": ["h1", "h2"],
        "shared_identifiers": [
            {"type": "device", "id": "dev-home", "degree": 2, "accounts": ["h1", "h2"]},
            {"type": "ip", "id": "10.0.0.7", "degree": 2, "accounts": ["h1", "h2"]},
        ],
        "skipped_identifiers": [],
        "flagged_members": [],
        "density": 1.0,
        "flagged_share": 0.0,
        "ring_score": 0.2,
        "benign_cluster": True,
        "cashing_out": [],
        "hops": 1,
        "truncated": False,
        "truncation": [],
    }


def test_one_device_used_from_three_homes_is_not_a_household(world: Any) -> None:
    # the household twin (h1, h2: a family computer on the home network) is benign above
    carried = analyse_ring(world, investigation("account", "D1", rule="amount_spike"))
    assert carried["members"] == ["D1", "D2", "D3"]
    assert {s["type"] for s in carried["shared_identifiers"]} == {"device"}
    assert carried["benign_cluster"] is False
    assert analyse_ring(world, investigation("account", "h1", rule="amount_spike"))["benign_cluster"] is True


def test_two_linked_accounts_spending_thousands_at_once_are_cashing_out_and_a_sofa_is_not(
    world: Any,
) -> None:
    pair = analyse_ring(world, investigation("phone", "p-S", rule="shared_phone"))
    assert pair["members"] == ["S1", "S2"]
    assert pair["cashing_out"] == [
        {"account": "S1", "amount": 6000.0, "payments": 3},
        {"account": "S2", "amount": 4000.0, "payments": 2},
    ]
    flag = replace(investigation("phone", "p-S", rule="shared_phone"), severity="medium")
    ring = assess(flag, {"ring": pair})
    assert ring.verdict == "fraud_ring"
    assert "cash_out" in {r.signal for r in ring.reasons}
    # the couple: one member's large one-off payment is not a pair cashing out; the small
    # cluster stays below suspicious
    couple = analyse_ring(world, investigation("phone", "p-U", rule="shared_phone"))
    assert couple["members"] == ["U1", "U2"]
    assert couple["cashing_out"] == [{"account": "U1", "amount": 6150.0, "payments": 4}]
    family = assess(replace(flag, entity_id="p-U"), {"ring": couple})
    assert family.verdict == "cleared"
    assert "cash_out" not in {r.signal for r in family.reasons}


def test_household_hit_by_a_high_value_burst_is_not_waved_through(world: Any) -> None:
    result = analyse_ring(world, investigation("account", "h1", rule="high_value_burst"))
    assert result["benign_cluster"] is False
    # 0.3 * 1/5 + 0.2 * 1.0 + 0 + 0.2 * 0.7 (a shared device)
    assert result["ring_score"] == 0.4


def test_a_family_sharing_a_card_and_a_phone_at_one_home_is_a_benign_cluster(world: Any) -> None:
    result = analyse_ring(world, investigation("card", "c-family", rule="shared_card"))
    assert result["members"] == ["e1", "e2"]
    assert {s["type"] for s in result["shared_identifiers"]} == {"card", "device", "ip", "phone"}
    assert result["benign_cluster"] is True
    assert result["ring_score"] == 0.2
    # the same card and phone without a common home: not a household
    pair = analyse_ring(world, investigation("card", "c-pair", rule="shared_card"))
    assert pair["members"] == ["n1", "n2"]
    assert pair["benign_cluster"] is False
    # 0.3 * 1/5 + 0.2 * 1.0 + 0 + 0.2 * 1.0 (a shared card)
    assert pair["ring_score"] == 0.46


def test_people_at_one_home_are_a_benign_cluster_and_a_farm_behind_one_proxy_is_not(world: Any) -> None:
    # five on the home network and the family card, most with phones of their own: a family
    family = analyse_ring(world, investigation("card", "c-L", rule="shared_card"))
    assert family["members"] == ["L1", "L2", "L3", "L4", "L5"]
    assert family["benign_cluster"] is True
    assert family["ring_score"] == 0.2
    # the same links, nobody with a device of their own: accounts, not people
    farm = analyse_ring(world, investigation("card", "c-F", rule="shared_card"))
    assert farm["members"] == ["F1", "F2", "F3", "F4", "F5"]
    assert farm["benign_cluster"] is False
    # the family's large one-off payment (an amount spike) leaves it a family; a burst does not
    assert analyse_ring(world, investigation("account", "L2", rule="amount_spike"))["benign_cluster"] is True
    assert (
        analyse_ring(world, investigation("account", "L2", rule="high_value_burst"))["benign_cluster"]
        is False
    )


def test_a_family_half_seen_at_home_is_a_benign_cluster_and_the_same_links_across_homes_are_not(
    world: Any,
) -> None:
    # three of the five on the home network nobody else uses, the other two paying from
    # their phone and at a till: a family whose day has only begun
    family = analyse_ring(world, investigation("phone", "p-A", rule="shared_phone"))
    assert family["members"] == ["A1", "A2", "A3", "A4", "A5"]
    assert (family["benign_cluster"], family["ring_score"]) == (True, 0.2)
    # the twin: the same card, phone and computer, each of the three on a network of its own
    ring = analyse_ring(world, investigation("phone", "p-B", rule="shared_phone"))
    assert ring["members"] == ["B1", "B2", "B3", "B4", "B5"]
    assert ring["benign_cluster"] is False
    # the family's home does not wave a burst through
    burst = analyse_ring(world, investigation("account", "A2", rule="high_value_burst"))
    assert burst["benign_cluster"] is False


def test_a_home_of_four_where_one_shows_a_phone_is_people_and_four_showing_nothing_are_a_farm(
    world: Any, timeseries: DuckDBTimeseriesStore
) -> None:
    home = analyse_ring(world, investigation("device", "d-computer-M", rule="device_account_spread"))
    assert (home["members"], home["benign_cluster"]) == (["M1", "M2", "M3", "M4"], True)
    [computer] = analyse_shared_devices(world, timeseries, investigation("device", "d-computer-M"))[
        "identifiers"
    ]
    assert (computer["dedicated_accounts"], computer["class"]) == (["M2", "M3", "M4"], "shared_public")
    # the twin: one more account that uses nothing but the computer makes four of them
    farm = analyse_ring(world, investigation("device", "d-computer-Q", rule="device_account_spread"))
    assert (len(farm["members"]), farm["benign_cluster"]) == (5, False)
    [computer] = analyse_shared_devices(world, timeseries, investigation("device", "d-computer-Q"))[
        "identifiers"
    ]
    assert (computer["dedicated_accounts"], computer["class"]) == (["Q2", "Q3", "Q4", "Q5"], "device_farm")


def test_a_card_handed_around_at_the_till_is_a_familys_and_one_used_online_only_is_not(world: Any) -> None:
    handed = analyse_ring(world, investigation("card", "c-W", rule="shared_card"))
    assert handed["members"] == ["W1", "W2", "W3", "W4"]
    assert handed["benign_cluster"] is True
    online = analyse_ring(world, investigation("card", "c-X", rule="shared_card"))
    assert online["members"] == ["X1", "X2", "X3", "X4"]
    assert online["benign_cluster"] is False
    # card testing on the family's card is never waved through
    tested = replace(investigation("card", "c-W", rule="card_testing"), severity="critical")
    assert analyse_ring(world, tested)["benign_cluster"] is False


def test_a_family_hit_by_a_high_value_burst_is_not_waved_through(world: Any) -> None:
    result = analyse_ring(world, investigation("account", "e1", rule="high_value_burst"))
    assert result["benign_cluster"] is False


def test_one_members_amount_spike_leaves_the_household_a_household(world: Any) -> None:
    # An amount far above one member's habit is about that account: the home the family
    # shares does not become a ring link.
    for member in ("h1", "e1"):
        assert (
            analyse_ring(world, investigation("account", member, rule="amount_spike"))["benign_cluster"]
            is True
        )


def test_one_members_takeover_flag_leaves_the_household_a_household(world: Any) -> None:
    home = analyse_ring(world, investigation("account", "Y2"))
    assert (home["members"], home["flagged_members"], home["benign_cluster"]) == (["Y1", "Y2"], ["Y1"], True)
    # the twin: a member flagged for a high-value burst is evidence about the pair
    assert analyse_ring(world, investigation("account", "Z2"))["benign_cluster"] is False


def test_card_testing_from_one_home_is_not_waved_through_as_a_family(world: Any) -> None:
    tested = replace(investigation("card", "c-family", rule="card_testing"), severity="critical")
    assert analyse_ring(world, tested)["benign_cluster"] is False


def test_public_ip_links_nobody(world: Any) -> None:
    from_member = analyse_ring(world, investigation("account", "pub-007"))
    assert from_member["members"] == ["pub-007"]
    assert from_member["shared_identifiers"] == []
    assert from_member["skipped_identifiers"] == [{"type": "ip", "id": PUBLIC_IP, "degree": 301}]
    assert from_member["ring_score"] == 0.0
    assert from_member["truncated"] is True
    from_ip = analyse_ring(world, investigation("ip", PUBLIC_IP))
    assert from_ip["members"] == []
    assert from_ip["skipped_identifiers"] == [{"type": "ip", "id": PUBLIC_IP, "degree": 301}]


def test_ring_from_a_flagged_device_starts_with_its_accounts(world: Any) -> None:
    result = analyse_ring(world, investigation("device", "d-farm"))
    assert result["members"] == ["f1", "f2", "f3", "f4", "f5", "f6"]
    assert result["shared_identifiers"] == [
        {"type": "device", "id": "d-farm", "degree": 6, "accounts": ["f1", "f2", "f3", "f4", "f5", "f6"]}
    ]
    assert result["density"] == 1.0
    # the device is not an account: every member counts towards the flagged share
    assert result["flagged_share"] == round(1 / 6, 3)
    assert result["truncated"] is False


def test_unknown_account_has_no_ring(world: Any) -> None:
    result = analyse_ring(world, investigation("account", "nobody"))
    assert result["members"] == []
    assert result["ring_score"] == 0.0


# -- shared devices ---------------------------------------------------------------------


def test_device_farm_with_accounts_in_the_last_24_hours(
    world: Any, timeseries: DuckDBTimeseriesStore
) -> None:
    result = analyse_shared_devices(world, timeseries, investigation("device", "d-farm"))
    assert result["window"] == {"start": "2026-11-28T12:00:00.000Z", "end": "2026-11-29T12:00:00.000Z"}
    [farm] = result["identifiers"]
    assert farm == {
        "type": "device",
        "id": "d-farm",
        "accounts": 6,
        "accounts_last_24h": 4,
        "account_ids": ["f1", "f2", "f3", "f4", "f5", "f6"],
        "flagged_accounts": ["f6"],
        "first_seen": REF_MS - 9 * DAY_MS,
        "last_seen": REF_MS - HOUR_MS,
        "first_seen_at": "2026-11-20T12:00:00.000Z",
        "last_seen_at": "2026-11-29T11:00:00.000Z",
        "dedicated_accounts": ["f1", "f2", "f3", "f4", "f5", "f6"],
        "class": "device_farm",
    }
    assert result["classes"] == ["device_farm"]
    assert result["truncated"] is False
    # explicit time bounds, never ago(): a replay answers the same
    assert "ago(" not in result["timeseries_queries"][0]
    assert f"from_milliseconds({REF_MS})" in result["timeseries_queries"][0]


def test_account_devices_and_ips_are_classified(world: Any, timeseries: DuckDBTimeseriesStore) -> None:
    result = analyse_shared_devices(world, timeseries, investigation("account", "r1"))
    summary = [(i["type"], i["id"], i["accounts"], i["class"]) for i in result["identifiers"]]
    assert summary == [("device", "d-r1", 1, "single_user"), ("ip", PUBLIC_IP, 301, "shared_public")]
    public = result["identifiers"][1]
    assert len(public["account_ids"]) == 50
    assert result["truncated"] is True
    assert [t["reason"] for t in result["truncation"]] == ["accounts_listed"]


def test_household_device_and_ip(world: Any, timeseries: DuckDBTimeseriesStore) -> None:
    result = analyse_shared_devices(world, timeseries, investigation("account", "h2"))
    assert [
        (i["type"], i["id"], i["accounts"], i["accounts_last_24h"], i["class"]) for i in result["identifiers"]
    ] == [
        ("device", "dev-home", 2, 1, "household"),
        ("ip", "10.0.0.7", 2, 1, "household"),
    ]


def test_identifier_with_a_quote_is_queried_safely(world: Any, timeseries: DuckDBTimeseriesStore) -> None:
    b = GraphBuilder()
    b.uses("q1", "device", "it's-mine", REF_MS - DAY_MS, REF_MS - HOUR_MS)
    b.write(world)
    result = analyse_shared_devices(world, timeseries, investigation("account", "q1"))
    assert [(i["id"], i["accounts_last_24h"], i["class"]) for i in result["identifiers"]] == [
        ("it's-mine", 0, "single_user")
    ]


# -- money flow -------------------------------------------------------------------------


def test_mule_chain(world: Any) -> None:
    result = analyse_money_flow(world, investigation("account", "m1"))
    assert _core(result) == {
        "analysis": "money_flow",
        "start": {"type": "account", "id": "m1"},
        "fan_out": 1,
        "fan_in": 4,
        "amount_out": 9500.0,
        "amount_in": 10000.0,
        "pass_through": 0.95,
        "chains_out": [
            {"accounts": ["m1", "m2", "m3", "m4"], "amounts": [9500.0, 9000.0, 8800.0], "hops": 3}
        ],
        "chains_in": [{"accounts": [f"v{n}", "m1"], "amounts": [2500.0], "hops": 1} for n in range(1, 5)],
        "cycles": [],
        "longest_chain": 3,
        "accounts_downstream": ["m2", "m3", "m4"],
        "accounts_upstream": ["v1", "v2", "v3", "v4"],
        "flagged_accounts": ["m3"],
        # the direct transfers, with their times: who fed the account, whom it paid
        "transfers_in": [
            {
                "account": f"v{n}",
                "amount": 2500.0,
                "transfers": 1,
                "first_seen": REF_MS - DAY_MS,
                "last_seen": REF_MS - HOUR_MS,
            }
            for n in range(1, 5)
        ],
        "transfers_out": [
            {
                "account": "m2",
                "amount": 9500.0,
                "transfers": 1,
                "first_seen": REF_MS - DAY_MS,
                "last_seen": REF_MS - HOUR_MS,
            }
        ],
        "truncated": False,
        "truncation": [],
    }


def test_money_flow_in_from_the_end_of_the_chain(world: Any) -> None:
    result = analyse_money_flow(world, investigation("account", "m4"))
    # three hops back from m4 reach m1, not the victims behind it
    assert result["chains_in"] == [
        {"accounts": ["m1", "m2", "m3", "m4"], "amounts": [9500.0, 9000.0, 8800.0], "hops": 3}
    ]
    assert result["accounts_upstream"] == ["m1", "m2", "m3"]
    assert result["fan_out"] == 0


def test_cycle_back_to_the_start(world: Any) -> None:
    result = analyse_money_flow(world, investigation("account", "k1"))
    assert result["cycles"] == [
        {"accounts": ["k1", "k2", "k3", "k1"], "amounts": [5000.0, 4900.0, 4800.0], "hops": 3}
    ]
    assert result["fan_out"] == 1 and result["fan_in"] == 1
    assert result["accounts_downstream"] == ["k2", "k3"]


def test_money_flow_fan_out_limit(world: Any) -> None:
    result = analyse_money_flow(
        world, investigation("account", "m1"), MoneyFlowLimits(transfers_per_account=2)
    )
    assert result["fan_in"] == 2
    assert [t["reason"] for t in result["truncation"]] == ["fan_out"]


def test_an_office_computer_is_shared_not_a_farm(world: Any, timeseries: DuckDBTimeseriesStore) -> None:
    result = analyse_shared_devices(world, timeseries, investigation("account", "o1"))
    summary = [(i["type"], i["id"], i["accounts"], i["class"]) for i in result["identifiers"]]
    assert summary == [
        ("device", "d-office", 4, "shared_public"),
        ("device", "d-phone-o1", 1, "single_user"),
        ("ip", "192.0.2.50", 4, "shared_public"),
    ]
    office = result["identifiers"][0]
    assert office["dedicated_accounts"] == []  # every colleague has a phone of its own
    assert result["identifiers"][2]["devices_behind"] == 5  # the computer and four phones


def test_a_family_computer_of_people_who_shop_in_person_is_no_farm(
    world: Any, timeseries: DuckDBTimeseriesStore
) -> None:
    kitchen = analyse_shared_devices(world, timeseries, investigation("account", "K1"))["identifiers"][0]
    assert (kitchen["id"], kitchen["dedicated_accounts"], kitchen["class"]) == (
        "d-kitchen",
        [],
        "shared_public",
    )
    # five accounts that pay only through one computer (a card each, never at a till): a farm
    farm = analyse_shared_devices(world, timeseries, investigation("account", "F1"))["identifiers"]
    computer = next(i for i in farm if i["id"] == "d-computer-F")
    assert (computer["dedicated_accounts"], computer["class"]) == (
        ["F1", "F2", "F3", "F4", "F5"],
        "device_farm",
    )


def test_a_home_where_one_member_was_paid_back_by_a_friend_is_people_and_a_farm_fed_by_one_funder_is_not(
    world: Any, timeseries: DuckDBTimeseriesStore
) -> None:
    home = analyse_ring(world, investigation("device", "d-computer-H", rule="device_account_spread"))
    assert home["members"] == ["H1", "H2", "H3", "H4"]
    assert home["benign_cluster"] is True
    computer = analyse_shared_devices(world, timeseries, investigation("account", "H1"))["identifiers"]
    family = next(i for i in computer if i["id"] == "d-computer-H")
    assert (family["dedicated_accounts"], family["class"]) == (["H1", "H2", "H3"], "shared_public")
    # the same four, each sent 40 by one funder: a farm's plumbing, not friends
    farm = analyse_ring(world, investigation("device", "d-computer-J", rule="device_account_spread"))
    assert farm["members"] == ["J1", "J2", "J3", "J4"]
    assert farm["benign_cluster"] is False
    proxy = analyse_shared_devices(world, timeseries, investigation("account", "J1"))["identifiers"]
    fed = next(i for i in proxy if i["id"] == "d-computer-J")
    assert (fed["dedicated_accounts"], fed["class"]) == (["J1", "J2", "J3", "J4"], "device_farm")


def test_colleagues_at_one_computer_are_a_benign_cluster(world: Any) -> None:
    result = analyse_ring(world, investigation("account", "o1"))
    assert result["members"] == ["o1", "o2", "o3", "o4"]
    assert result["benign_cluster"] is True
    assert result["ring_score"] == 0.2


def test_a_farm_proxy_ip_whatever_its_size(world: Any, timeseries: DuckDBTimeseriesStore) -> None:
    result = analyse_shared_devices(world, timeseries, investigation("ip", FARM_PROXY))
    [proxy] = result["identifiers"]
    assert (proxy["accounts"], proxy["accounts_last_24h"], proxy["devices_behind"]) == (8, 8, 2)
    assert proxy["class"] == "device_farm"
    assert proxy["account_ids"] == [f"g{n}" for n in range(1, 9)]
    # a farm's accounts are not benign: they have no device of their own
    ring = analyse_ring(world, investigation("device", "d-farm2"))
    assert ring["members"] == [f"g{n}" for n in range(1, 9)]
    assert ring["benign_cluster"] is False


def test_a_new_device_carrying_the_flagged_money_is_a_takeover(
    world: Any, timeseries: DuckDBTimeseriesStore
) -> None:
    flagged = investigation("account", "t1", rule="high_value_burst", window=timedelta(minutes=5))
    change = analyse_shared_devices(world, timeseries, flagged)["account_change"]
    assert change == {
        "flagged_amount": 60_000.0,
        "new_devices": ["d-new"],
        "new_ips": ["192.0.2.200"],
        "new_countries": ["RO"],
        "known_countries": ["FR"],
        "usual_devices": ["d-t1"],
        "established_since": REF_MS - 30 * DAY_MS,
        "established_since_at": "2026-10-30T12:00:00.000Z",
        "prior_payments": 3,  # the three days before the new device appeared
        "new_device_first_seen_at": "2026-11-29T11:40:00.000Z",
        "new_device_first_seen": REF_MS - 20 * 60_000,
        "own_network": False,
        "takeover": True,
    }


def test_a_big_spender_on_the_usual_device_is_no_takeover(
    world: Any, timeseries: DuckDBTimeseriesStore
) -> None:
    flagged = investigation("account", "s1", rule="high_value_burst", window=timedelta(minutes=5))
    change = analyse_shared_devices(world, timeseries, flagged)["account_change"]
    assert change["flagged_amount"] == 60_000.0
    assert (change["new_devices"], change["takeover"]) == ([], False)
    # without a window (a hand-started investigation) there is no flagged activity to read
    assert analyse_shared_devices(world, timeseries, investigation("account", "s1"))["account_change"] is None
