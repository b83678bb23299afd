"""Each shipped rule's derived DuckDB query over fixtures with known answers.

The store is the local DuckDB adapter; the SQL run is the rule's
Timestream SQL translated by the local dialect, exactly as on the scheduled path.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fraudcore.micro import evaluate_rules
from fraudcore.model import Transaction
from fraudcore.rules import load_rules
from fraudlocal.adapters.timeseries_duckdb import DuckDBTimeseriesStore

RULES = {rule.id: rule for rule in load_rules()}
NOON = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


class Recorder:
    """Builds transactions with unique ids and loads them into the store."""

    def __init__(self, store: DuckDBTimeseriesStore):
        self.store = store
        self.serial = 0

    def add(self, *rows: dict) -> None:
        transactions = []
        for row in rows:
            self.serial += 1
            data = {"transaction_id": f"t{self.serial}", "amount": 10.0, **row}
            data["timestamp"] = NOON + data.pop("at")
            transactions.append(Transaction.model_validate(data))
        assert not self.store.write(transactions).failed


@pytest.fixture
def recorder(tmp_path: Path):
    store = DuckDBTimeseriesStore(tmp_path / "ts.duckdb", "fraud", "transactions")
    yield Recorder(store)
    store.close()


def hits(recorder: Recorder, rule_id: str, at: timedelta) -> dict[tuple[str, str], float]:
    flags, errors = evaluate_rules(recorder.store, [RULES[rule_id]], NOON + at)
    assert errors == {}
    return {(flag.entity_id, flag.window_start): flag.observed for flag in flags}


def entities(found: dict[tuple[str, str], float]) -> set[str]:
    return {entity for entity, _ in found}


def minutes(value: float) -> timedelta:
    return timedelta(minutes=value)


def test_high_value_burst_exactly_at_threshold_is_not_a_hit(recorder: Recorder) -> None:
    recorder.add(
        {"account_id": "at-threshold", "amount": 30_000, "at": minutes(1)},
        {"account_id": "at-threshold", "amount": 20_000, "at": minutes(2)},
        {"account_id": "over", "amount": 30_000, "at": minutes(1)},
        {"account_id": "over", "amount": 20_000.01, "at": minutes(2)},
    )
    found = hits(recorder, "high_value_burst", minutes(5))
    assert {entity for entity, _ in found} == {"over"}
    # Windows [11:57:30, 12:02:30) and [12:00, 12:05) both hold the burst: the earliest names it.
    assert found == {("over", "2026-11-29T11:57:30Z"): pytest.approx(50_000.01)}


def test_high_value_burst_window_edges(recorder: Recorder) -> None:
    recorder.add(
        # 12:00:00 and 12:05:00 fall in different 5-minute windows, and no half-shifted
        # window holds both: an event on a window's end belongs to the next window.
        {"account_id": "split", "amount": 30_000, "at": minutes(0)},
        {"account_id": "split", "amount": 30_000, "at": minutes(5)},
        # The first instant of a window and the last millisecond before its end are inside.
        {"account_id": "inside", "amount": 30_000, "at": minutes(0)},
        {"account_id": "inside", "amount": 30_000, "at": minutes(5) - timedelta(milliseconds=1)},
        # Straddling a 5-minute boundary: caught by the window shifted by half (hop 150s).
        {"account_id": "straddle", "amount": 30_000, "at": minutes(13)},
        {"account_id": "straddle", "amount": 30_000, "at": minutes(16)},
    )
    assert hits(recorder, "high_value_burst", minutes(10)) == {("inside", "2026-11-29T12:00:00Z"): 60_000}
    assert hits(recorder, "high_value_burst", minutes(17)) == {("straddle", "2026-11-29T12:12:30Z"): 60_000}


def test_an_event_at_the_evaluation_time_waits_for_the_next_run(recorder: Recorder) -> None:
    recorder.add(
        {"account_id": "a", "amount": 40_000, "at": minutes(3)},
        {"account_id": "a", "amount": 20_000, "at": minutes(5) + minutes(2)},
    )
    assert hits(recorder, "high_value_burst", minutes(7)) == {}  # time < T: the 12:07 event is not seen yet
    assert ("a", "2026-11-29T12:02:30Z") in hits(
        recorder, "high_value_burst", minutes(7) + timedelta(seconds=1)
    )


def test_a_late_event_is_caught_within_the_lateness_allowance_only(recorder: Recorder) -> None:
    recorder.add({"account_id": "late", "amount": 40_000, "at": minutes(1)})
    assert hits(recorder, "high_value_burst", minutes(5)) == {}
    # Arrives after the 12:05 run, with an event time inside [12:00, 12:05).
    recorder.add({"account_id": "late", "amount": 20_000, "at": minutes(1.5)})
    assert entities(hits(recorder, "high_value_burst", minutes(10))) == {"late"}
    # Lateness 10m: the window [12:00, 12:05) is evaluated until 12:15 exclusive.
    assert hits(recorder, "high_value_burst", minutes(15) - timedelta(seconds=1)) == {
        ("late", "2026-11-29T12:00:00Z"): 60_000
    }
    assert hits(recorder, "high_value_burst", minutes(15)) == {}
    # An event arriving later than that is beyond the allowance: no run looks at its window.
    recorder.add({"account_id": "too-late", "amount": 60_000, "at": minutes(2)})
    assert "too-late" not in entities(hits(recorder, "high_value_burst", minutes(20)))


def test_velocity_counts_transactions_per_account(recorder: Recorder) -> None:
    recorder.add(*({"account_id": "fast", "at": timedelta(seconds=20 * i)} for i in range(15)))
    recorder.add(*({"account_id": "busy", "at": timedelta(seconds=20 * i)} for i in range(14)))
    found = hits(recorder, "velocity", minutes(10))
    assert found == {("fast", "2026-11-29T11:55:00Z"): 15}  # >= 15; the earliest overlapping window


def test_card_testing_counts_only_small_charges_on_one_card(recorder: Recorder) -> None:
    recorder.add(
        *({"account_id": "x", "card_id": "stolen", "amount": 1.0, "at": minutes(i)} for i in range(5))
    )
    recorder.add(
        *({"account_id": "y", "card_id": "coffee", "amount": 4.99, "at": minutes(i)} for i in range(4))
    )
    recorder.add(
        *({"account_id": "y", "card_id": "coffee", "amount": 5.0, "at": minutes(i)} for i in range(4, 8))
    )
    found = hits(recorder, "card_testing", minutes(10))
    assert found == {("stolen", "2026-11-29T11:55:00Z"): 5}


def test_device_account_burst_spares_households(recorder: Recorder) -> None:
    recorder.add(*({"account_id": f"mule{i}", "device_id": "farm", "at": minutes(5 * i)} for i in range(5)))
    recorder.add(
        *({"account_id": f"family{i}", "device_id": "home-tablet", "at": minutes(i)} for i in range(3))
    )
    found = hits(recorder, "device_account_burst", minutes(60))
    assert found == {("farm", "2026-11-29T12:00:00Z"): 5}


def test_ip_account_burst_threshold(recorder: Recorder) -> None:
    recorder.add(*({"account_id": f"bot{i}", "ip": "198.51.100.7", "at": minutes(i)} for i in range(15)))
    recorder.add(*({"account_id": f"cafe{i}", "ip": "203.0.113.9", "at": minutes(i)} for i in range(14)))
    found = hits(recorder, "ip_account_burst", minutes(60))
    assert found == {("198.51.100.7", "2026-11-29T12:00:00Z"): 15}


def test_account_device_churn(recorder: Recorder) -> None:
    recorder.add(*({"account_id": "taken", "device_id": f"d{i}", "at": minutes(10 * i)} for i in range(4)))
    recorder.add(
        *({"account_id": "normal", "device_id": f"n{i % 2}", "at": minutes(10 * i)} for i in range(6))
    )
    found = hits(recorder, "account_device_churn", minutes(60))
    assert found == {("taken", "2026-11-29T12:00:00Z"): 4}


def test_amount_spike_against_the_accounts_own_average(recorder: Recorder) -> None:
    history = timedelta(hours=-5)
    recorder.add(*({"account_id": "habit", "amount": 100, "at": history + minutes(i)} for i in range(5)))
    recorder.add({"account_id": "habit", "amount": 1000, "at": minutes(3)})  # exactly 10x: flagged (>=)
    recorder.add(*({"account_id": "big", "amount": 5000, "at": history + minutes(i)} for i in range(5)))
    recorder.add({"account_id": "big", "amount": 20_000, "at": minutes(3)})  # 4x a big spender's habit
    recorder.add(*({"account_id": "new", "amount": 10, "at": history + minutes(i)} for i in range(4)))
    recorder.add({"account_id": "new", "amount": 5000, "at": minutes(3)})  # too little history to judge
    found = hits(recorder, "amount_spike", minutes(5))
    assert found == {("habit", "2026-11-29T12:00:00Z"): pytest.approx(10.0)}


def test_geo_velocity_spares_a_traveller(recorder: Recorder) -> None:
    recorder.add(
        *(
            {"account_id": "cloned", "country": c, "at": minutes(15 * i)}
            for i, c in enumerate(["FR", "DE", "BR"])
        )
    )
    recorder.add(
        *(
            {"account_id": "traveller", "country": c, "at": minutes(20 * i)}
            for i, c in enumerate(["FR", "FR", "US"])
        )
    )
    found = hits(recorder, "geo_velocity", minutes(60))
    assert found == {("cloned", "2026-11-29T12:00:00Z"): 3}


def test_overlapping_windows_and_later_windows_of_one_cooldown_make_one_flag(recorder: Recorder) -> None:
    recorder.add(
        {"account_id": "a", "amount": 60_000, "at": minutes(3)},
        {"account_id": "a", "amount": 60_000, "at": minutes(8)},
    )
    flags, _ = evaluate_rules(recorder.store, [RULES["high_value_burst"]], NOON + minutes(10))
    assert len(flags) == 1
    assert flags[0].window_start == "2026-11-29T12:00:00Z"
    assert flags[0].execution_name == "high_value_burst-account-a-20261129T120000Z"


def test_shared_card_counts_accounts_on_one_card(recorder: Recorder) -> None:
    recorder.add(
        {"account_id": "tester", "card_id": "stolen", "at": minutes(5)},
        # 95 minutes later: inside the 2h window that started at 11:00 (windows every hour)
        {"account_id": "casher", "card_id": "stolen", "at": minutes(100)},
        # one person, one card, many payments: not shared
        *({"account_id": "regular", "card_id": "own", "at": minutes(i)} for i in range(10)),
        # two accounts on one card, but 2h apart: no 2h window holds both
        {"account_id": "early", "card_id": "apart", "at": minutes(0)},
        {"account_id": "late", "card_id": "apart", "at": minutes(120)},
    )
    found = hits(recorder, "shared_card", minutes(125))
    assert found == {("stolen", "2026-11-29T12:00:00Z"): 2}


def test_mule_pass_through_needs_most_of_a_large_receipt_passed_on(recorder: Recorder) -> None:
    def received(account: str, amount: float, at: timedelta) -> dict:
        return {
            "account_id": f"from-{account}",
            "counterparty_account_id": account,
            "amount": amount,
            "at": at,
        }

    recorder.add(
        # 20,000 in, 16,000 (exactly 80 %) sent on 50 minutes later: a hit (>=)
        received("hop", 20_000, minutes(10)),
        {"account_id": "hop", "counterparty_account_id": "next", "amount": 16_000, "at": minutes(60)},
        # 20,000 in, 15,999 sent: keeps a little more than a fifth
        received("saver", 20_000, minutes(10)),
        {"account_id": "saver", "counterparty_account_id": "x", "amount": 15_999, "at": minutes(60)},
        # 9,999 received: too little to be a mule's hop, whatever goes out
        received("small", 9_999, minutes(10)),
        {"account_id": "small", "counterparty_account_id": "x", "amount": 9_999, "at": minutes(20)},
        # cashed out by card: spending counts as passing the money on; more than received caps at 1
        received("casher", 12_000, minutes(10)),
        {"account_id": "casher", "card_id": "c1", "amount": 15_000, "at": minutes(90)},
    )
    found = hits(recorder, "mule_pass_through", minutes(120))
    # windows of 3h every hour; at 14:00 the earliest still looked at starts at 11:00 (it
    # ends after 14:00 - lateness) and holds both receipt and spending: it names the hit
    assert found == {
        ("hop", "2026-11-29T11:00:00Z"): pytest.approx(0.8),
        ("casher", "2026-11-29T11:00:00Z"): pytest.approx(1.0),
    }


def test_mule_pass_through_sees_a_hop_forwarded_two_hours_later(recorder: Recorder) -> None:
    recorder.add(
        {"account_id": "mule", "counterparty_account_id": "slow", "amount": 30_000, "at": minutes(50)},
        {"account_id": "slow", "counterparty_account_id": "next", "amount": 28_000, "at": minutes(170)},
    )
    assert hits(recorder, "mule_pass_through", minutes(165)) == {}  # not forwarded yet
    found = hits(recorder, "mule_pass_through", minutes(175))
    assert found == {("slow", "2026-11-29T12:00:00Z"): pytest.approx(28 / 30)}


def test_a_filling_window_is_investigated_again_when_it_grows_and_rechecked_when_it_closes(
    recorder: Recorder, tmp_path: Path
) -> None:
    from fraudcore.micro import run_micro_analysis
    from fraudlocal.adapters.starter_local import LocalInvestigationStarter

    starter = LocalInvestigationStarter(tmp_path / "state")
    rule = [RULES["device_account_burst"]]
    recorder.add(*({"account_id": f"farm{i}", "device_id": "farm", "at": minutes(i)} for i in range(5)))
    first = run_micro_analysis(recorder.store, starter, rule, NOON + minutes(10))
    assert (first.started, first.duplicates) == (1, 0)
    assert run_micro_analysis(recorder.store, starter, rule, NOON + minutes(15)).started == 0
    # more accounts join the device within the same hour: the count grew, so the device is
    # investigated again, under the larger count
    recorder.add(
        *({"account_id": f"farm{i}", "device_id": "farm", "at": minutes(i + 20)} for i in range(5, 9))
    )
    assert run_micro_analysis(recorder.store, starter, rule, NOON + minutes(30)).started == 1
    assert run_micro_analysis(recorder.store, starter, rule, NOON + minutes(35)).started == 0
    # the hour is over: one recheck of the complete window, under its own name
    closed = run_micro_analysis(recorder.store, starter, rule, NOON + minutes(60))
    assert closed.started == 1
    assert closed.flags[0].observed == 9
    assert sorted(p.stem for p in starter.pending.glob("*.json")) == [
        "device_account_burst-device-farm-20261129T120000Z-n4",
        "device_account_burst-device-farm-20261129T120000Z-n8",
        "device_account_burst-device-farm-20261129T120000Z-n8-closed",
    ]
    assert run_micro_analysis(recorder.store, starter, rule, NOON + minutes(65)).started == 0


def test_an_account_joining_a_shared_email_is_rechecked_when_the_window_closes(
    recorder: Recorder, tmp_path: Path
) -> None:
    from fraudcore.micro import run_micro_analysis
    from fraudlocal.adapters.starter_local import LocalInvestigationStarter

    starter = LocalInvestigationStarter(tmp_path / "state")
    rule = [RULES["shared_email"]]
    recorder.add(
        *({"account_id": f"ring{i}", "email": "x@example.com", "at": minutes(5 + i)} for i in range(2))
    )
    assert run_micro_analysis(recorder.store, starter, rule, NOON + minutes(15)).started == 1
    # a third member starts using the address: the count grew, so it is investigated again
    recorder.add({"account_id": "ring2", "email": "x@example.com", "at": minutes(40)})
    assert run_micro_analysis(recorder.store, starter, rule, NOON + minutes(45)).started == 1
    assert run_micro_analysis(recorder.store, starter, rule, NOON + minutes(50)).started == 0
    # the earliest window (11:00-13:00) closes: one recheck sees all three
    closed = run_micro_analysis(recorder.store, starter, rule, NOON + minutes(60))
    assert closed.started == 1
    assert closed.flags[0].observed == 3
    assert sorted(p.stem for p in starter.pending.glob("*.json"))[-1].endswith("-closed")


def test_a_hit_first_seen_closed_is_investigated_once(recorder: Recorder, tmp_path: Path) -> None:
    from fraudcore.micro import run_micro_analysis
    from fraudlocal.adapters.starter_local import LocalInvestigationStarter

    starter = LocalInvestigationStarter(tmp_path / "state")
    recorder.add(*({"account_id": f"farm{i}", "device_id": "farm", "at": minutes(i)} for i in range(5)))
    result = run_micro_analysis(recorder.store, starter, [RULES["device_account_burst"]], NOON + minutes(60))
    assert (result.started, result.duplicates) == (1, 0)
    assert [p.stem for p in starter.pending.glob("*.json")] == [
        "device_account_burst-device-farm-20261129T120000Z-n4"
    ]


@pytest.mark.parametrize(("rule", "column"), [("shared_email", "email"), ("shared_phone", "phone")])
def test_shared_email_and_phone(recorder: Recorder, rule: str, column: str) -> None:
    recorder.add(
        {"account_id": "member1", column: "ring-contact", "at": minutes(10)},
        {"account_id": "member2", column: "ring-contact", "at": minutes(40)},
        *({"account_id": "own", column: "own-contact", "at": minutes(i)} for i in range(5)),
    )
    assert hits(recorder, rule, minutes(45)) == {("ring-contact", "2026-11-29T11:00:00Z"): 2}


def _profile(recorder: Recorder, account: str, **identifiers: str) -> None:
    """Ten ordinary payments over the previous day from the account's usual device, IP, country."""
    usual = {"device_id": f"{account}-phone", "ip": f"{account}-home", "country": "US", **identifiers}
    recorder.add(
        *(
            {"account_id": account, "amount": 40.0 + n, "at": -timedelta(hours=20 - 2 * n), **usual}
            for n in range(10)
        )
    )


def test_novel_takeover_needs_a_new_device_a_new_network_and_an_amount_far_above_habit(
    recorder: Recorder,
) -> None:
    for account in ("intruded", "traveller", "new-phone", "one-off", "too-small"):
        _profile(recorder, account)
    recorder.add(
        # A new device, from a new IP and a new country, 30 times the habit: a takeover.
        {
            "account_id": "intruded",
            "amount": 1_300,
            "at": minutes(1),
            "device_id": "attacker",
            "ip": "vpn",
            "country": "RO",
        },
        # Benign twins, each missing one signal:
        # a traveller abroad on their usual phone (new IP and country, ordinary amounts)...
        {
            "account_id": "traveller",
            "amount": 45,
            "at": minutes(1),
            "device_id": "traveller-phone",
            "ip": "hotel",
            "country": "JP",
        },
        {
            "account_id": "traveller",
            "amount": 2_000,
            "at": minutes(2),
            "device_id": "traveller-phone",
            "ip": "hotel",
            "country": "JP",
        },
        # a new phone on the home network, paying a large sum (no new IP, no new country)...
        {
            "account_id": "new-phone",
            "amount": 2_500,
            "at": minutes(1),
            "device_id": "new-phone-2",
            "ip": "new-phone-home",
            "country": "US",
        },
        # a large one-off payment from the usual device at home...
        {
            "account_id": "one-off",
            "amount": 4_000,
            "at": minutes(1),
            "device_id": "one-off-phone",
            "ip": "one-off-home",
            "country": "US",
        },
        # and a new device and network with an ordinary amount.
        {
            "account_id": "too-small",
            "amount": 60,
            "at": minutes(1),
            "device_id": "d2",
            "ip": "cafe",
            "country": "US",
        },
    )
    found = hits(recorder, "novel_takeover", minutes(5))
    assert entities(found) == {"intruded"}
    assert list(found.values()) == [pytest.approx(1_300)]


def test_takeover_abroad_needs_a_new_device_in_a_new_country_after_two_payments(recorder: Recorder) -> None:
    def account(name: str, earlier: int, amount: float, device: str, ip: str, country: str) -> list[dict]:
        """``earlier`` payments of 30 at home (device h-<name>, US) in the morning, then ``amount``."""
        home = [
            {"account_id": name, "amount": 30, "at": -timedelta(hours=11 - 2 * n), "device_id": f"h-{name}"}
            for n in range(earlier)
        ]
        for payment in home:
            payment |= {"ip": f"home-{name}", "country": "US"}
        last = {"account_id": name, "amount": amount, "at": minutes(1), "device_id": device}
        return [*home, last | {"ip": ip, "country": country}]

    recorder.add(
        # Two payments at home in the morning, then 6,000 from a device never seen, in Brazil.
        *account("abroad", 2, 6_000, "a2", "x1", "BR"),
        # The owner's own new phone at home: a new device on a new network, a known country.
        *account("new-phone", 2, 6_000, "p2", "4g", "US"),
        # A traveller abroad on the device they always use.
        *account("traveller", 2, 6_000, "h-traveller", "hotel", "BR"),
        # One earlier payment: no habit to break.
        *account("one", 1, 6_000, "o2", "x2", "BR"),
        # A new device abroad paying what the account always pays.
        *account("usual", 2, 60, "u2", "x3", "BR"),
    )
    found = hits(recorder, "takeover_abroad", minutes(5))
    assert entities(found) == {"abroad"}
    assert list(found.values()) == [pytest.approx(6_000)]
    # novel_takeover wants three earlier payments: it sees none of them
    assert hits(recorder, "novel_takeover", minutes(5)) == {}


def test_novel_takeover_ignores_a_brand_new_account_and_one_without_history(recorder: Recorder) -> None:
    recorder.add(
        # A new account: every identifier is new, and it has no habit to compare with.
        {
            "account_id": "fresh",
            "amount": 50,
            "at": minutes(-50),
            "device_id": "f1",
            "ip": "fip",
            "country": "US",
        },
        {
            "account_id": "fresh",
            "amount": 60,
            "at": minutes(-40),
            "device_id": "f1",
            "ip": "fip",
            "country": "US",
        },
        {
            "account_id": "fresh",
            "amount": 70,
            "at": minutes(-30),
            "device_id": "f1",
            "ip": "fip",
            "country": "US",
        },
        {
            "account_id": "fresh",
            "amount": 5_000,
            "at": minutes(1),
            "device_id": "f1",
            "ip": "fip",
            "country": "US",
        },
        # Two earlier payments only (a customer's first payment from their own new phone
        # looks like this): fewer than min_history, so no habit.
        *(
            {
                "account_id": "thin",
                "amount": 20,
                "at": -timedelta(hours=hours),
                "device_id": "t1",
                "ip": "tip",
                "country": "US",
            }
            for hours in (11, 9)
        ),
        {
            "account_id": "thin",
            "amount": 5_000,
            "at": minutes(1),
            "device_id": "t2",
            "ip": "tip2",
            "country": "BR",
        },
    )
    assert hits(recorder, "novel_takeover", minutes(5)) == {}


def test_novel_takeover_counts_a_takeover_spread_over_an_hour_once(recorder: Recorder) -> None:
    _profile(recorder, "victim")
    recorder.add(
        *(
            {
                "account_id": "victim",
                "amount": 600,
                "at": minutes(m),
                "device_id": "intruder",
                "ip": "proxy",
                "counterparty_account_id": "payee",
            }
            for m in (2, 20, 41)
        )
    )
    found = hits(recorder, "novel_takeover", minutes(50))
    assert entities(found) == {"victim"}
    # Three transfers of 600 from the intruder's device: the new-IP signal holds for each.
    assert max(found.values()) == pytest.approx(1_800)


def test_device_account_spread_sees_a_farm_opening_accounts_over_hours(recorder: Recorder) -> None:
    # a farm's four accounts, one every 90 minutes: never five in an hour (device_account_burst)
    recorder.add(*({"account_id": f"slow{i}", "device_id": "farm", "at": minutes(90 * i)} for i in range(4)))
    # a couple's tablet, used by both all day: not four accounts
    recorder.add(
        *({"account_id": f"couple{i % 2}", "device_id": "tablet", "at": minutes(40 * i)} for i in range(8))
    )
    assert hits(recorder, "device_account_burst", minutes(6 * 60)) == {}
    # the 12-hour window that holds them is judged once it has closed (at 18:00), not while
    # it fills: its first hours cannot tell a farm from a family computer
    assert hits(recorder, "device_account_spread", minutes(5 * 60)) == {}
    found = hits(recorder, "device_account_spread", minutes(6 * 60))
    assert found == {("farm", "2026-11-29T06:00:00Z"): 4}


def test_slow_pass_through_sees_a_deposit_split_over_hours_and_spares_who_keeps_it(
    recorder: Recorder,
) -> None:
    recorder.add(
        # a placement account: 30,000 in, split among mules over five hours
        {
            "account_id": "depositor",
            "counterparty_account_id": "placement",
            "amount": 30_000,
            "at": minutes(10),
        },
        *(
            {
                "account_id": "placement",
                "counterparty_account_id": f"mule{i}",
                "amount": 5_600,
                "at": minutes(70 * i),
            }
            for i in range(1, 6)
        ),
        # a car sold to a friend: 30,000 in, kept, a few everyday payments out
        {"account_id": "friend", "counterparty_account_id": "seller", "amount": 30_000, "at": minutes(10)},
        *(
            {"account_id": "seller", "card_id": "c-seller", "amount": 60, "at": minutes(60 * i)}
            for i in range(1, 6)
        ),
    )
    assert hits(recorder, "mule_pass_through", minutes(6 * 60)) == {}  # too slow for three hours
    found = hits(recorder, "slow_pass_through", minutes(6 * 60))
    assert entities(found) == {"placement"}
    assert max(found.values()) == pytest.approx(28_000 / 30_000)


def test_a_device_account_spread_hit_is_looked_at_again_twelve_hours_on(
    recorder: Recorder, tmp_path: Path
) -> None:
    """The run that judged a window starts its investigation; the run 12 hours later starts
    the re-look (same flag, its own name, its own time), once however often it runs."""
    import json

    from fraudcore.micro import run_micro_analysis
    from fraudlocal.adapters.starter_local import LocalInvestigationStarter

    recorder.add(
        *({"account_id": f"h{n}", "device_id": "d-home", "at": -minutes(60 * n)} for n in range(1, 5))
    )
    rule = RULES["device_account_spread"]
    starter = LocalInvestigationStarter(tmp_path / "state")
    first = run_micro_analysis(recorder.store, starter, [rule], NOON)
    [flag] = first.flags
    assert (flag.entity_id, flag.window_end, first.started, first.relooks) == (
        "d-home",
        "2026-11-29T12:00:00Z",
        1,
        [],
    )
    assert first.to_response().get("relooks") is None
    # nothing is due before the 12 hours are up
    assert (
        run_micro_analysis(recorder.store, starter, [rule], NOON + timedelta(hours=11, minutes=55)).relooks
        == []
    )
    later = NOON + timedelta(hours=12)
    due = run_micro_analysis(recorder.store, starter, [rule], later)
    [again] = due.relooks
    assert due.relooks_started == 1
    assert again.execution_name == flag.execution_name + "-relook"
    assert (again.relook_of, again.evaluation_time) == (flag.execution_name, "2026-11-30T00:00:00Z")
    assert (again.rule, again.entity_id, again.window_start, again.window_end) == (
        flag.rule,
        flag.entity_id,
        flag.window_start,
        flag.window_end,
    )
    payload = json.loads((starter.pending / f"{again.execution_name}.json").read_text())
    assert payload["relook_of"] == flag.execution_name
    # a retried run starts nothing twice
    retried = run_micro_analysis(recorder.store, starter, [rule], later)
    assert (retried.relooks_started, retried.duplicates) == (0, 1)
    # a plain flag carries no re-look field at all
    assert "relook_of" not in flag.to_dict()


def test_device_cash_out_needs_two_accounts_paying_a_thousand_from_one_device(recorder: Recorder) -> None:
    recorder.add(
        # two new accounts cashing out from the ring's computer, minutes apart
        {"account_id": "ring1", "device_id": "d-ring", "amount": 6_289.84, "at": minutes(35)},
        {"account_id": "ring2", "device_id": "d-ring", "amount": 10_203.82, "at": minutes(36)},
        # the benign twin: a family computer where one member buys a sofa and the other pays
        # everyday sums; and one account paying thousands twice from its own laptop
        {"account_id": "mum", "device_id": "d-family", "amount": 4_800, "at": minutes(30)},
        {"account_id": "son", "device_id": "d-family", "amount": 45, "at": minutes(40)},
        {"account_id": "son", "device_id": "d-family", "amount": 999.99, "at": minutes(41)},
        {"account_id": "rich", "device_id": "d-own", "amount": 9_000, "at": minutes(10)},
        {"account_id": "rich", "device_id": "d-own", "amount": 7_000, "at": minutes(20)},
        # two large payments from one office computer, but more than an hour apart
        {"account_id": "colleague1", "device_id": "d-office", "amount": 1_500, "at": minutes(0)},
        {"account_id": "colleague2", "device_id": "d-office", "amount": 1_200, "at": minutes(61)},
    )
    found = hits(recorder, "device_cash_out", minutes(45))
    assert found == {("d-ring", "2026-11-29T12:00:00Z"): 2}


def test_a_shared_email_is_looked_at_again_twelve_hours_after_its_window_closed(
    recorder: Recorder, tmp_path: Path
) -> None:
    """A ring grows: its hit is looked at again from the recheck of its closed window, once,
    and only the runs that see a window close query for it."""
    from fraudcore.micro import run_micro_analysis
    from fraudlocal.adapters.starter_local import LocalInvestigationStarter

    rule = RULES["shared_email"]
    starter = LocalInvestigationStarter(tmp_path / "state")
    recorder.add(
        *({"account_id": f"ring{i}", "email": "x@example.com", "at": minutes(5 + i)} for i in range(2))
    )
    assert run_micro_analysis(recorder.store, starter, [rule], NOON + minutes(15)).started == 1
    closed = run_micro_analysis(recorder.store, starter, [rule], NOON + minutes(60))
    [recheck] = closed.flags
    assert recheck.recheck_execution_name is not None
    assert closed.relooks == []
    # 12 hours later: the window that closed at 13:00 is looked at again, once
    before = run_micro_analysis(recorder.store, starter, [rule], NOON + timedelta(hours=12, minutes=55))
    assert before.relooks == []
    later = NOON + timedelta(hours=13)
    due = run_micro_analysis(recorder.store, starter, [rule], later)
    [again] = due.relooks
    assert due.relooks_started == 1
    assert again.execution_name == recheck.execution_name.rsplit("-n", 1)[0] + "-relook"
    assert (again.relook_of, again.evaluation_time) == (
        recheck.recheck_execution_name,
        "2026-11-30T01:00:00Z",
    )
    assert (again.window_start, again.window_end) == ("2026-11-29T11:00:00Z", "2026-11-29T13:00:00Z")
    # the next run still sees that window (its lateness): the same re-look, started once
    assert run_micro_analysis(recorder.store, starter, [rule], later + minutes(5)).relooks_started == 0
    # a run that sees no window close 12 hours earlier asks nothing for re-looks
    assert run_micro_analysis(recorder.store, starter, [rule], later + minutes(30)).relooks == []
    # the 12:00-14:00 window was rechecked on its own (another cooldown period): so is it looked
    # at again, 12 hours after it closed
    [second] = run_micro_analysis(recorder.store, starter, [rule], later + minutes(60)).relooks
    assert second.relook_of.endswith("-20261129T120000Z-n2-closed")
    assert second.execution_name.endswith("-20261129T120000Z-relook")
