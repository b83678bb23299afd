"""Scoring and deciding an investigation: pure functions, every threshold checked."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from fraudcore.investigation.case import case_id_for, jaccard
from fraudcore.investigation.model import InvalidInvestigationInput, Investigation, parse_investigation_input
from fraudcore.investigation.ring import ring_score
from fraudcore.investigation.scoring import assess, combine, decide, is_provisional
from fraudcore.investigation.shared_device import assess_account_change, classify
from fraudcore.timeseries.queries import active_accounts_sql

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def flag(rule: str = "high_value_burst", risk: float = 0.7, entity: str = "a1") -> Investigation:
    return parse_investigation_input(
        {
            "rule": rule,
            "entity_type": "account",
            "entity_id": entity,
            "window_start": "2026-11-29T11:55:00Z",
            "window_end": "2026-11-29T12:00:00Z",
            "observed": 60000,
            "threshold": 50000,
            "risk_score": risk,
            "summary": "60,000 in 5 minutes",
        },
        NOW,
    )


def ring(
    members: list[str], score: float, benign: bool = False, shared: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "members": members,
        "shared_identifiers": shared
        or [{"type": "card", "id": "c1", "degree": len(members), "accounts": members}],
        "flagged_members": [],
        "density": 1.0,
        "flagged_share": 0.0,
        "ring_score": score,
        "benign_cluster": benign,
        "truncated": False,
        "truncation": [],
    }


def test_flag_input_and_hand_started_input() -> None:
    automated = flag()
    assert automated.trigger == "flag" and automated.reference_time == "2026-11-29T12:00:00.000Z"
    assert automated.vertex_id == "account:a1"
    manual = parse_investigation_input({"entity_type": "account", "entity_id": "account:a1"}, NOW)
    assert (manual.trigger, manual.rule, manual.entity_id, manual.risk_score) == (
        "manual",
        "manual",
        "a1",
        0.0,
    )
    assert manual.reference_time == "2026-11-29T12:00:00.000Z"
    wrapped = parse_investigation_input(
        {
            "flag": {
                "rule": "ip_account_burst",
                "entity_type": "ip",
                "entity_id": "1.2.3.4",
                "window_end": 1_795_953_600_000,
                "severity": "high",
            }
        },
        NOW,
    )
    assert (wrapped.entity_type, wrapped.risk_score) == ("ip", 0.7)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"entity_type": "planet", "entity_id": "x"}, "entity_type='planet'"),
        ({"entity_type": "account", "entity_id": " "}, "entity_id=' '"),
        ({"rule": "velocity", "entity_type": "account", "entity_id": "a"}, "window_end is missing"),
        (
            {"rule": "velocity", "entity_type": "account", "entity_id": "a", "window_end": "yesterday"},
            "window_end: 'yesterday' is not ISO 8601",
        ),
        (
            {
                "rule": "velocity",
                "entity_type": "account",
                "entity_id": "a",
                "window_end": 1,
                "risk_score": 3,
            },
            "between 0 and 1",
        ),
    ],
)
def test_bad_input_is_named(event: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInvestigationInput, match=message.replace("(", r"\(")):
        parse_investigation_input(event, NOW)


def test_ring_score_components() -> None:
    assert ring_score(1, 0.0, 0.0, [], False) == 0.0
    assert ring_score(6, 1.0, 1.0, ["card"], False) == 1.0
    assert ring_score(3, 1.0, 0.0, ["ip"], False) == round(0.3 * 0.4 + 0.2 + 0.2 * 0.4, 3)
    assert ring_score(3, 1.0, 0.0, ["ip"], True) == 0.2


def test_usage_classes_at_their_thresholds() -> None:
    assert classify("device", 1, 1) == "single_user"
    assert classify("device", 3, 3, dedicated_share=1.0) == "household"
    # a device: a farm when three in four of its accounts, and at least four, use no other
    # device and never paid in person
    assert classify("device", 4, 0, dedicated_share=1.0) == "device_farm"
    # three of four using nothing else: a family computer whose fourth user has a phone
    assert classify("device", 4, 0, dedicated_share=0.75, dedicated=3) == "shared_public"
    assert classify("device", 5, 0, dedicated_share=0.8, dedicated=4) == "device_farm"
    # an office or family computer, half of whose users have shown a phone or a till payment
    assert classify("device", 4, 0, dedicated_share=0.5) == "shared_public"
    assert classify("ip", 3, 3, accounts_per_device=3.0) == "household"
    # an IP: a farm when 4+ accounts were active in 24 h and share devices (3+ per device)
    assert classify("ip", 4, 3, accounts_per_device=4.0) == "shared_public"
    assert classify("ip", 4, 4, accounts_per_device=3.0) == "device_farm"
    assert classify("ip", 4, 4, accounts_per_device=2.9) == "shared_public"
    assert classify("ip", 300, 40, accounts_per_device=10.0) == "device_farm"  # whatever its size
    assert classify("ip", 300, 40, accounts_per_device=0.7) == "shared_public"  # people with phones


def test_timestream_query_quotes_identifiers() -> None:
    sql = active_accounts_sql("fraud", "transactions", "device_id", ["a'b"], 1, 2)
    assert "IN ('a''b')" in sql and "from_milliseconds(1) AND from_milliseconds(2)" in sql


def test_combine_and_decide() -> None:
    assert combine([]) == 0.0
    assert combine([0.5, 0.5]) == 0.75
    assert combine([1.0, 0.2]) == 1.0
    assert decide(0.7, 2) == "fraud_ring"
    assert decide(0.7, 1) == "suspicious"
    assert decide(0.69, 5) == "suspicious"
    assert decide(0.4, 5) == "suspicious"
    assert decide(0.399, 5) == "cleared"
    # an account takeover alone, with or without payees, has its own verdict
    assert decide(0.7, 2, takeover=True) == decide(0.7, 1, takeover=True) == "account_takeover"
    assert decide(0.69, 2, takeover=True) == "suspicious"


def test_a_ring_with_a_high_value_flag_is_a_fraud_ring() -> None:
    result = assess(flag(), {"ring": ring(["a1", "a2", "a3", "a4"], 0.62)})
    # noisy-or of the flag (0.7 / 2) and the ring score
    assert result.score == round(1 - (1 - 0.35) * (1 - 0.62), 3) == 0.753
    assert result.verdict == "fraud_ring"
    assert result.members == ["a1", "a2", "a3", "a4"]
    assert [r.signal for r in result.reasons] == ["ring", "flag"]
    assert result.reasons[0].evidence["members"] == ["a1", "a2", "a3", "a4"]
    assert "4 accounts (a1, a2, a3, a4) are linked through 1 shared identifier" in result.reasons[0].sentence


def test_a_household_is_cleared() -> None:
    household = ring(
        ["a1", "a2"],
        0.2,
        benign=True,
        shared=[{"type": "ip", "id": "10.0.0.7", "degree": 2, "accounts": ["a1", "a2"]}],
    )
    result = assess(flag(rule="velocity", risk=0.9), {"ring": household})
    assert result.score == 0.3
    assert result.verdict == "cleared"
    assert (
        "household pattern" in result.reasons[-1].sentence
        or "household pattern" in result.reasons[0].sentence
    )


def test_money_cycle_and_mule_pattern() -> None:
    money = {
        "start": {"type": "account", "id": "m1"},
        "fan_in": 4,
        "fan_out": 1,
        "amount_in": 10000.0,
        "amount_out": 9500.0,
        "pass_through": 0.95,
        "chains_out": [],
        "chains_in": [],
        "cycles": [{"accounts": ["m1", "x", "m1"], "amounts": [10.0, 9.0], "hops": 2}],
    }
    result = assess(flag(entity="m1", risk=0.0), {"money_flow": money})
    assert [r.strength for r in result.reasons] == [0.8, 0.6, 0.0]
    assert result.score == round(1 - 0.2 * 0.4, 3) == 0.92
    assert result.members == ["m1", "x"]
    assert result.verdict == "fraud_ring"
    assert "money-mule pattern" in result.reasons[1].sentence


def flow(start: str, **values: Any) -> dict[str, Any]:
    base = {
        "start": {"type": "account", "id": start},
        "fan_in": 0,
        "fan_out": 0,
        "amount_in": 0.0,
        "amount_out": 0.0,
        "pass_through": 0.0,
        "chains_out": [],
        "chains_in": [],
        "cycles": [],
        "flagged_accounts": [],
    }
    return base | values


def test_a_mule_case_holds_the_accounts_its_money_moved_through() -> None:
    money = flow(
        "mule",
        fan_in=3,
        fan_out=2,
        amount_in=45_000.0,
        amount_out=43_000.0,
        pass_through=0.956,
        chains_in=[
            {"accounts": ["f1", "mule"], "amounts": [15_000.0], "hops": 1},
            {"accounts": ["f2", "mule"], "amounts": [15_000.0], "hops": 1},
            # a friend once sent f3 40: everyday money does not make the friend a member
            {"accounts": ["friend", "f3", "mule"], "amounts": [40.0, 15_000.0], "hops": 2},
        ],
        chains_out=[
            {"accounts": ["mule", "b1", "b2"], "amounts": [22_000.0, 20_500.0], "hops": 2},
            # the money stops following at the first small transfer
            {"accounts": ["mule", "c1", "c2"], "amounts": [21_000.0, 300.0], "hops": 2},
        ],
    )
    result = assess(flag(entity="mule"), {"money_flow": money})
    assert result.members == ["b1", "b2", "c1", "f1", "f2", "f3", "mule"]
    # noisy-or of the flag (0.35) and the mule pattern (0.6)
    assert result.score == round(1 - 0.65 * 0.4, 3) == 0.74
    assert result.verdict == "fraud_ring"


def test_a_pass_through_hop_from_a_flagged_mule() -> None:
    money = flow(
        "b2",
        fan_in=1,
        fan_out=1,
        amount_in=20_500.0,
        amount_out=19_000.0,
        pass_through=0.927,
        chains_in=[{"accounts": ["mule", "b1", "b2"], "amounts": [22_000.0, 20_500.0], "hops": 2}],
        chains_out=[{"accounts": ["b2", "b3"], "amounts": [19_000.0], "hops": 1}],
        flagged_accounts=["mule"],
    )
    result = assess(flag(rule="mule_pass_through", entity="b2"), {"money_flow": money})
    assert [(r.signal, r.strength) for r in result.reasons] == [
        ("money_flow", 0.5),
        ("money_flow", 0.5),
        ("flag", 0.35),
    ]
    assert "pass-through hop" in result.reasons[0].sentence
    assert "already flagged account mule" in result.reasons[1].sentence
    assert result.members == ["b1", "b2", "b3", "mule"]
    assert result.score == round(1 - 0.5 * 0.5 * 0.65, 3)
    assert result.verdict == "fraud_ring"


def test_small_transfers_with_a_flagged_account_prove_nothing() -> None:
    money = flow(
        "p1",
        fan_in=1,
        amount_in=300.0,
        chains_in=[{"accounts": ["flagged", "p1"], "amounts": [300.0], "hops": 1}],
        flagged_accounts=["flagged"],
    )
    result = assess(flag(rule="amount_spike", entity="p1", risk=0.5), {"money_flow": money})
    assert [r.signal for r in result.reasons] == ["flag"]
    assert result.members == ["p1"]
    assert result.verdict == "cleared"


def takeover_change(**changes: Any) -> dict[str, Any]:
    change = {
        "flagged_amount": 60_000.0,
        "new_devices": ["d-new"],
        "new_ips": ["192.0.2.200"],
        "new_countries": [],
        "known_countries": ["FR"],
        "usual_devices": ["d-old"],
        "established_since": 1,
        "established_since_at": "2026-10-30T12:00:00.000Z",
        "new_device_first_seen_at": "2026-11-29T11:40:00.000Z",
        "takeover": True,
    }
    return change | changes


def test_a_new_device_carrying_the_burst_makes_a_takeover_suspicious() -> None:
    result = assess(flag(), {"shared_device": {"identifiers": [], "account_change": takeover_change()}})
    reason = result.reasons[0]
    assert (reason.signal, reason.strength) == ("shared_device", 0.6)  # new device and new IP
    assert "device d-new, first used by the account at 2026-11-29T11:40:00.000Z" in reason.sentence
    assert "a likely account takeover" in reason.sentence
    assert result.score == round(1 - 0.65 * 0.4, 3)
    assert result.verdict == "account_takeover"
    alone = assess(
        flag(), {"shared_device": {"identifiers": [], "account_change": takeover_change(new_ips=[])}}
    )
    assert alone.reasons[0].strength == 0.5


def test_a_big_spender_on_the_usual_device_stays_cleared() -> None:
    usual = takeover_change(new_devices=[], new_ips=[], takeover=False)
    result = assess(flag(), {"shared_device": {"identifiers": [], "account_change": usual}})
    assert [r.signal for r in result.reasons] == ["flag"]
    assert result.verdict == "cleared"


def test_card_testing_alone_is_suspicious() -> None:
    testing = parse_investigation_input(
        {
            "rule": "card_testing",
            "entity_type": "card",
            "entity_id": "c9",
            "window_end": "2026-11-29T12:00:00Z",
            "severity": "critical",
        },
        NOW,
    )
    result = assess(testing, {"ring": ring(["t1"], 0.0)})
    assert result.score == 0.45
    assert result.verdict == "suspicious"


def test_an_office_computer_is_no_evidence() -> None:
    office = {
        "identifiers": [
            {
                "type": "device",
                "id": "d-office",
                "accounts": 5,
                "accounts_last_24h": 5,
                "account_ids": ["o1", "o2", "o3", "o4", "o5"],
                "flagged_accounts": [],
                "class": "shared_public",
            }
        ]
    }
    result = assess(flag(rule="velocity", entity="o1", risk=0.5), {"shared_device": office})
    assert [r.strength for r in result.reasons] == [0.25, 0.0]
    assert "an office or family computer" in result.reasons[1].sentence
    assert result.members == ["o1"]
    assert result.verdict == "cleared"


def test_device_farm_members_join_the_case() -> None:
    farm = {
        "identifiers": [
            {
                "type": "device",
                "id": "d9",
                "accounts": 6,
                "accounts_last_24h": 4,
                "account_ids": ["f1", "f2", "f3", "f4", "f5", "f6"],
                "flagged_accounts": ["f6"],
                "class": "device_farm",
            }
        ]
    }
    investigation = parse_investigation_input(
        {
            "rule": "device_account_burst",
            "entity_type": "device",
            "entity_id": "d9",
            "window_end": "2026-11-29T12:00:00Z",
            "risk_score": 0.8,
        },
        NOW,
    )
    result = assess(investigation, {"shared_device": farm})
    assert result.members == ["f1", "f2", "f3", "f4", "f5", "f6"]
    assert result.score == round(1 - 0.6 * 0.15, 3)
    assert result.verdict == "fraud_ring"


def test_case_id_is_derived_from_the_ring() -> None:
    assert case_id_for(["b", "a", "c"]) == case_id_for(["c", "b", "a"])
    assert case_id_for(["a", "b"]) != case_id_for(["a", "b", "c"])
    assert case_id_for(["a"]).startswith("ring-") and len(case_id_for(["a"])) == 21
    assert jaccard({"a", "b", "c", "d"}, {"a", "b", "c", "d", "e"}) == 0.8


def identifier_flag(rule: str = "shared_card", severity: str = "medium", entity: str = "c1") -> Investigation:
    return Investigation(
        entity_type="card",
        entity_id=entity,
        trigger="flag",
        rule=rule,
        reference_time="2026-11-29T12:00:00Z",
        risk_score=0.5,
        severity=severity,
        summary="2 accounts on one card",
    )


def test_two_accounts_sharing_a_card_and_nothing_else_stay_below_suspicious() -> None:
    pair = ring(["a1", "a2"], 0.46)
    result = assess(identifier_flag(), {"ring": pair})
    # without the cap: noisy-or of 0.46 and 0.25 = 0.595, suspicious
    assert result.score == 0.35
    assert result.verdict == "cleared"
    assert result.members == ["a1", "a2"]
    assert any(r.evidence.get("small_cluster") for r in result.reasons)


@pytest.mark.parametrize(
    ("investigation", "analyses"),
    [
        # a fourth account: more than a family
        (identifier_flag(), {"ring": ring(["a1", "a2", "a3", "a4"], 0.46)}),
        # a member already flagged
        (identifier_flag(), {"ring": ring(["a1", "a2"], 0.46) | {"flagged_members": ["a2"]}}),
        # a critical pattern on the card (card testing) is evidence by itself
        (identifier_flag(rule="card_testing", severity="critical"), {"ring": ring(["a1", "a2"], 0.46)}),
        # money moving: a pass-through hop at one of them
        (
            identifier_flag(),
            {
                "ring": ring(["a1", "a2"], 0.46),
                "money_flow": flow(
                    "a1", fan_in=1, fan_out=1, amount_in=9_000.0, amount_out=8_800.0, pass_through=0.978
                ),
            },
        ),
    ],
)
def test_a_small_cluster_with_corroboration_is_not_capped(
    investigation: Investigation, analyses: dict[str, Any]
) -> None:
    result = assess(investigation, analyses)
    assert result.score > 0.4
    assert result.verdict != "cleared"
    assert not any(r.evidence.get("small_cluster") for r in result.reasons)


CASHING = [
    {"account": "a1", "amount": 9_000.0, "payments": 3},
    {"account": "a2", "amount": 4_000.0, "payments": 2},
]


def test_two_linked_accounts_cashing_out_lift_the_small_cluster_cap() -> None:
    pair = ring(["a1", "a2"], 0.46) | {"cashing_out": CASHING}
    result = assess(identifier_flag(), {"ring": pair})
    # noisy-or of the ring 0.46, the flag 0.25 and cashing out 0.5: 0.797
    assert result.score == 0.797
    assert result.verdict == "fraud_ring"
    cash_out = [r for r in result.reasons if r.signal == "cash_out"]
    assert [r.evidence["members"] for r in cash_out] == [["a1", "a2"]]
    assert "a1 paid 9,000.00 in 3 payments" in cash_out[0].sentence


@pytest.mark.parametrize(
    "cashing",
    [
        [],  # everyday spending
        CASHING[:1],  # one member's large one-off payment (a sofa, a holiday)
    ],
)
def test_one_member_spending_big_is_no_cash_out(cashing: list[dict[str, Any]]) -> None:
    result = assess(identifier_flag(), {"ring": ring(["a1", "a2"], 0.46) | {"cashing_out": cashing}})
    assert (result.score, result.verdict) == (0.35, "cleared")
    assert "cash_out" not in {r.signal for r in result.reasons}


def test_a_household_whose_members_spend_big_stays_a_household() -> None:
    home = ring(["a1", "a2"], 0.2, benign=True) | {"cashing_out": CASHING}
    result = assess(identifier_flag(), {"ring": home})
    assert "cash_out" not in {r.signal for r in result.reasons}
    assert result.verdict == "cleared"


def test_paying_out_a_few_small_repayments_and_a_large_deposit_is_no_mule() -> None:
    # friends paid back 120 and 80; the account then paid a 20,000 deposit to a landlord
    money = flow(
        "p1",
        fan_in=2,
        fan_out=1,
        amount_in=200.0,
        amount_out=20_000.0,
        pass_through=1.0,
        chains_out=[{"accounts": ["p1", "landlord"], "amounts": [20_000.0], "hops": 1}],
    )
    result = assess(flag(rule="amount_spike", entity="p1", risk=0.5), {"money_flow": money})
    assert [r.signal for r in result.reasons] == ["flag"]
    assert result.members == ["p1"]
    assert result.verdict == "cleared"


def test_a_new_phone_on_the_accounts_own_network_is_no_takeover() -> None:
    hour = 3_600_000
    end = 100 * hour
    first_use = {"device:d-old": end - 30 * hour, "ip:home": end - 30 * hour, "device:d-phone": end - 600_000}
    own = assess_account_change(
        first_use,
        {"device_id": {"d-phone": 20_000.0}, "ip": {"home": 20_000.0}, "country": {"US": 20_000.0}},
        20_000.0,
        ["US"],
        end,
        prior_payments=10,
    )
    assert (own["new_devices"], own["new_ips"], own["own_network"], own["takeover"]) == (
        ["d-phone"],
        [],
        True,
        False,
    )
    # the same new phone from a network the account never used: an intruder's
    first_use["ip:elsewhere"] = end - 300_000
    away = assess_account_change(
        first_use,
        {"device_id": {"d-phone": 20_000.0}, "ip": {"elsewhere": 20_000.0}, "country": {"US": 20_000.0}},
        20_000.0,
        ["US"],
        end,
        prior_payments=10,
    )
    assert (away["new_ips"], away["own_network"], away["takeover"]) == (["elsewhere"], False, True)
    # no IP carried the money: the new device alone still counts
    blind = assess_account_change(
        first_use,
        {"device_id": {"d-phone": 20_000.0}, "ip": {}, "country": {"US": 20_000.0}},
        20_000.0,
        ["US"],
        end,
        prior_payments=10,
    )
    assert (blind["own_network"], blind["takeover"]) == (False, True)


def test_a_first_payment_from_the_owners_new_phone_after_two_payments_is_no_takeover() -> None:
    # The laptop paid twice in the morning; eight hours later the owner's phone, on the
    # phone's own network, sends a 22,000 transfer: new device, new IP, as an intruder's.
    hour = 3_600_000
    end = 100 * hour
    first_use = {"device:laptop": end - 9 * hour, "ip:home": end - 9 * hour}
    first_use |= {"device:phone": end - 600_000, "ip:mobile": end - 600_000}
    carried = {"device_id": {"phone": 22_000.0}, "ip": {"mobile": 22_000.0}, "country": {"US": 22_000.0}}
    thin = assess_account_change(first_use, carried, 22_000.0, ["US"], end, prior_payments=2)
    assert (thin["new_devices"], thin["new_ips"], thin["takeover"]) == (["phone"], ["mobile"], False)
    # with a third payment behind it the account has a habit to break: a takeover
    deeper = assess_account_change(first_use, carried, 22_000.0, ["US"], end, prior_payments=3)
    assert deeper["takeover"] is True


def test_a_new_device_in_a_new_country_after_two_payments_is_a_takeover() -> None:
    # Two payments at home in the morning; eight hours later a device never seen, on a new
    # network, sends 22,000 from Brazil: no owner's new phone does that from home.
    hour = 3_600_000
    end = 100 * hour
    first_use = {"device:laptop": end - 9 * hour, "ip:home": end - 9 * hour}
    first_use |= {"device:intruder": end - 600_000, "ip:vpn": end - 600_000}
    carried = {"device_id": {"intruder": 22_000.0}, "ip": {"vpn": 22_000.0}, "country": {"BR": 22_000.0}}
    abroad = assess_account_change(first_use, carried, 22_000.0, ["US"], end, prior_payments=2)
    assert (abroad["new_countries"], abroad["takeover"]) == (["BR"], True)
    # the twin: one earlier payment is no habit, abroad or not
    once = assess_account_change(first_use, carried, 22_000.0, ["US"], end, prior_payments=1)
    assert once["takeover"] is False


def test_payments_at_a_till_before_the_first_device_are_history() -> None:
    # A card paid with at a till four hours before, the laptop an hour and a half before,
    # then an intruder's device and network: the account was established.
    hour = 3_600_000
    end = 100 * hour
    first_use = {"card:c1": end - 4 * hour, "device:laptop": end - 90 * 60_000, "ip:home": end - 90 * 60_000}
    first_use |= {"device:intruder": end - 600_000, "ip:vpn": end - 600_000}
    carried = {"device_id": {"intruder": 9_000.0}, "ip": {"vpn": 9_000.0}, "country": {"NG": 9_000.0}}
    change = assess_account_change(first_use, carried, 9_000.0, ["US"], end, prior_payments=4)
    assert (change["established_since"], change["takeover"]) == (end - 4 * hour, True)
    # the twin: the same account whose history began with the laptop is too young to tell
    del first_use["card:c1"]
    young = assess_account_change(first_use, carried, 9_000.0, ["US"], end, prior_payments=4)
    assert (young["established_since"], young["takeover"]) == (end - 90 * 60_000, False)


def test_a_travellers_new_phone_on_the_hotel_network_their_laptop_joined_is_no_takeover() -> None:
    hour = 3_600_000
    end = 100 * hour
    # the laptop (used for a day) joined the hotel's network 40 minutes before the phone,
    # first seen on the trip, paid 3,000 there, in a country the account had paid in
    first_use = {
        "device:laptop": end - 30 * hour,
        "ip:home": end - 30 * hour,
        "ip:hotel": end - 40 * 60_000,
        "device:phone": end - 10 * 60_000,
    }
    carried = {"device_id": {"phone": 3_000.0}, "ip": {"hotel": 3_000.0}, "country": {"AU": 3_000.0}}
    trip = assess_account_change(first_use, carried, 3_000.0, ["AU", "US"], end, prior_payments=10)
    assert (trip["new_ips"], trip["own_network"], trip["takeover"]) == (["hotel"], True, False)
    # an intruder's device and network come together: the same payment is a takeover
    first_use["ip:hotel"] = first_use["device:phone"]
    intruded = assess_account_change(first_use, carried, 3_000.0, ["AU", "US"], end, prior_payments=10)
    assert (intruded["own_network"], intruded["takeover"]) == (False, True)


# --- money-flow roles ---------------------------------------------------------------------

HOUR_MS = 3_600_000
#: 2026-11-29T11:55:00Z, the start of flag()'s window
WINDOW_START_MS = 1_795_953_300_000


def sent(account: str, amount: float, hours_before_window: float) -> dict[str, Any]:
    at = int(WINDOW_START_MS - hours_before_window * HOUR_MS)
    return {"account": account, "amount": amount, "transfers": 1, "first_seen": at, "last_seen": at}


def test_a_collector_case_lists_its_sources_and_cash_outs_with_roles_amounts_and_times() -> None:
    # Twelve sources of 900-1,400 each fed the collector within the hour: far below the
    # 5,000 of a material transfer, yet they are the network an analyst wants listed.
    sources = [sent(f"s{n:02d}", 900.0 + 50 * n, 0.5) for n in range(12)]
    money = flow(
        "collector",
        fan_in=13,
        fan_out=2,
        amount_in=14_200.0,
        amount_out=13_500.0,
        pass_through=0.95,
        transfers_in=[*sources, sent("old-friend", 40.0, 30)],
        transfers_out=[sent("c1", 7_000.0, -0.2), sent("c2", 6_500.0, -0.2)],
        chains_out=[
            {"accounts": ["collector", "c1"], "amounts": [7_000.0], "hops": 1},
            {"accounts": ["collector", "c2"], "amounts": [6_500.0], "hops": 1},
        ],
    )
    result = assess(flag(rule="mule_pass_through", entity="collector", risk=0.7), {"money_flow": money})
    assert result.roles["collector"] == {"role": "collector"}
    assert {m for m, r in result.roles.items() if r["role"] == "source"} == {f"s{n:02d}" for n in range(12)}
    fed_at = WINDOW_START_MS - HOUR_MS // 2
    assert result.roles["s03"] == {
        "role": "source",
        "amount": 1_050.0,
        "first_seen": fed_at,
        "last_seen": fed_at,
    }
    assert {m for m, r in result.roles.items() if r["role"] == "cash_out"} == {"c1", "c2"}
    # a friend's small transfer of a day before is not part of the network
    assert "old-friend" not in result.members
    assert result.verdict == "fraud_ring"


def test_money_received_and_kept_gives_nobody_a_role() -> None:
    # The benign twin: a large transfer from a friend, kept (no pass-through, no pattern).
    money = flow(
        "receiver",
        fan_in=1,
        amount_in=30_000.0,
        pass_through=0.0,
        transfers_in=[sent("friend", 30_000.0, 0.2)],
    )
    result = assess(flag(rule="amount_spike", entity="receiver", risk=0.5), {"money_flow": money})
    assert result.members == ["receiver"]
    assert result.roles == {"receiver": {"role": "flagged"}}


def test_a_takeover_case_names_the_victim_and_the_new_payee() -> None:
    money = flow(
        "victim",
        fan_out=2,
        amount_out=9_050.0,
        transfers_out=[sent("landlord", 1_200.0, 200), sent("payee", 7_850.0, -0.1)],
    )
    change = takeover_change(new_device_first_seen=WINDOW_START_MS - 10 * 60_000)
    result = assess(
        flag(rule="amount_spike", entity="victim", risk=0.7),
        {"money_flow": money, "shared_device": {"identifiers": [], "account_change": change}},
    )
    assert result.roles["victim"] == {"role": "victim"}
    assert result.roles["payee"]["role"] == "beneficiary" and result.roles["payee"]["amount"] == 7_850.0
    assert "landlord" not in result.members  # paid long before the intruder's device appeared
    # a victim and the payee who received its money are not a ring
    assert result.verdict == "account_takeover"
    # the twin: the same takeover by accounts that share a card with the victim is a ring
    linked = assess(
        flag(rule="amount_spike", entity="victim", risk=0.7),
        {
            "money_flow": money,
            "shared_device": {"identifiers": [], "account_change": change},
            "ring": ring(["victim", "payee", "r3"], 0.62),
        },
    )
    assert linked.roles["r3"] == {"role": "ring_member"}
    assert linked.verdict == "fraud_ring"


def _spread_flag(**extra: Any) -> Investigation:
    return parse_investigation_input(
        {
            "rule": "device_account_spread",
            "entity_type": "device",
            "entity_id": "d-home",
            "window_start": "2026-11-29T00:00:00Z",
            "window_end": "2026-11-29T12:00:00Z",
            "severity": "low",
            **extra,
        },
        NOW,
    )


def _device(klass: str, accounts: list[str]) -> dict[str, Any]:
    return {
        "identifiers": [
            {
                "type": "device",
                "id": "d-home",
                "accounts": len(accounts),
                "accounts_last_24h": len(accounts),
                "account_ids": accounts,
                "flagged_accounts": [],
                "class": klass,
            }
        ]
    }


def test_a_verdict_that_needs_the_farm_finding_is_provisional_and_one_that_does_not_is_settled() -> None:
    four = ["h1", "h2", "h3", "h4"]
    linked = ring(four, 0.52, shared=[{"type": "device", "id": "d-home", "degree": 4, "accounts": four}])
    farm = assess(_spread_flag(), {"shared_device": _device("device_farm", four), "ring": linked})
    # farm 0.75, ring 0.52, flag 0.15: a ring; without the farm 0.592, only suspicious
    assert (farm.verdict, farm.score) == ("fraud_ring", 0.898)
    assert is_provisional(farm)
    # money returning to the device's account is evidence of a presence: settled
    cycle = {"cycles": [{"accounts": ["h1", "h2", "h1"], "hops": 2, "amounts": [9_000.0, 8_900.0]}]}
    money = {**_flow_without_pattern("h1"), **cycle}
    settled = assess(
        _spread_flag(), {"shared_device": _device("device_farm", four), "ring": linked, "money_flow": money}
    )
    assert settled.verdict == "fraud_ring" and not is_provisional(settled)
    # an office computer (shared_public) or a cleared case is never provisional
    office = assess(_spread_flag(), {"shared_device": _device("shared_public", four), "ring": linked})
    assert not is_provisional(office)


def _flow_without_pattern(start: str) -> dict[str, Any]:
    return {
        "start": {"type": "account", "id": start},
        "amount_in": 0.0,
        "amount_out": 0.0,
        "fan_in": 0,
        "fan_out": 0,
        "pass_through": 0.0,
        "chains_out": [],
        "chains_in": [],
        "cycles": [],
        "flagged_accounts": [],
        "transfers_in": [],
        "transfers_out": [],
    }


def test_a_relook_is_the_flag_at_its_own_later_time() -> None:
    relook = _spread_flag(
        relook_of="device_account_spread-device-d-home-20261129T000000Z",
        evaluation_time="2026-11-30T00:00:00Z",
    )
    assert (relook.trigger, relook.is_relook, relook.reference_time) == (
        "relook",
        True,
        "2026-11-30T00:00:00.000Z",
    )
    assert (relook.window_start, relook.window_end) == (
        "2026-11-29T00:00:00.000Z",
        "2026-11-29T12:00:00.000Z",
    )
    assert relook.relook_of == "device_account_spread-device-d-home-20261129T000000Z"
    assert Investigation.from_dict(relook.to_dict()) == relook
    with pytest.raises(InvalidInvestigationInput, match="evaluation_time is missing"):
        _spread_flag(relook_of="x")
    with pytest.raises(InvalidInvestigationInput, match="is before the window's end"):
        _spread_flag(relook_of="x", evaluation_time="2026-11-29T11:00:00Z")
    with pytest.raises(InvalidInvestigationInput, match="relook_of="):
        _spread_flag(relook_of=5, evaluation_time="2026-11-30T00:00:00Z")
