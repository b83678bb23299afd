"""The scenario generator: deterministic output, valid records, and every planted pattern
and confounder really present in the transactions with the shape its label promises."""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from fraudcore.model import parse_transaction
from fraudlocal.commands import generate as generate_command
from fraudlocal.errors import UserError
from fraudlocal.scenario import (
    CONFOUNDER,
    CONFOUNDER_PATTERNS,
    FRAUD,
    FRAUD_PATTERNS,
    Label,
    LabelsError,
    Scenario,
    generate,
    load_labels,
)

FIVE_MINUTES = 5 * 60_000
HOUR = 60 * 60_000
ISO_MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def epoch_ms(record: dict) -> int:
    return int(datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp() * 1000)


def max_window_sum(records: list[dict], window_ms: int = FIVE_MINUTES) -> float:
    """The largest sum of amounts within any window of ``window_ms`` (records in time order)."""
    best, total, first = 0.0, 0.0, 0
    times = [epoch_ms(record) for record in records]
    for last, record in enumerate(records):
        total += record["amount"]
        while times[last] - times[first] >= window_ms:
            total -= records[first]["amount"]
            first += 1
        best = max(best, total)
    return best


def max_bin_sum(records: list[dict], bin_ms: int = FIVE_MINUTES) -> float:
    """The largest sum of amounts within one epoch-aligned bin of ``bin_ms``."""
    sums: dict[int, float] = defaultdict(float)
    for record in records:
        sums[epoch_ms(record) // bin_ms] += record["amount"]
    return max(sums.values(), default=0.0)


def max_distinct_accounts(records: list[dict], window_ms: int = HOUR) -> tuple[int, set[str]]:
    """The most distinct accounts within any window of ``window_ms``, and who they were."""
    best: tuple[int, set[str]] = (0, set())
    times = [epoch_ms(record) for record in records]
    first = 0
    seen: dict[str, int] = defaultdict(int)
    for last, record in enumerate(records):
        seen[record["account_id"]] += 1
        while times[last] - times[first] >= window_ms:
            gone = records[first]["account_id"]
            seen[gone] -= 1
            if not seen[gone]:
                del seen[gone]
            first += 1
        if len(seen) > best[0]:
            best = (len(seen), set(seen))
    return best


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return generate()


@pytest.fixture(scope="module")
def records(scenario: Scenario) -> list[dict]:
    return scenario.transactions


@pytest.fixture(scope="module")
def by_account(records: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        grouped[record["account_id"]].append(record)
    return grouped


@pytest.fixture(scope="module")
def users_of(records: list[dict]) -> dict[tuple[str, str], set[str]]:
    """(field, value) -> accounts whose transactions carry that identifier."""
    users: dict[tuple[str, str], set[str]] = defaultdict(set)
    for record in records:
        for field in ("card_id", "device_id", "ip", "email", "phone"):
            if field in record:
                users[field, record[field]].add(record["account_id"])
    return users


# --- determinism -------------------------------------------------------------------------


def read_outputs(directory: Path) -> dict[str, bytes]:
    return {
        name: (directory / name).read_bytes()
        for name in ("transactions.jsonl", "labels.jsonl", "scenario.json")
    }


def test_same_seed_writes_byte_identical_files_and_another_seed_differs(tmp_path: Path) -> None:
    generate(seed=11).write(tmp_path / "a")
    generate(seed=11).write(tmp_path / "b")
    generate(seed=12).write(tmp_path / "c")
    first, again, other = (read_outputs(tmp_path / name) for name in "abc")
    assert first == again
    assert first["transactions.jsonl"] != other["transactions.jsonl"]
    assert first["labels.jsonl"] != other["labels.jsonl"]


def test_generation_leaves_the_global_random_state_alone() -> None:
    random.seed(2026)
    before = random.getstate()
    generate(accounts=500, days=1, seed=3)
    assert random.getstate() == before


def test_start_parameter_moves_the_whole_period() -> None:
    shifted = generate(accounts=500, days=1, seed=3, start="2027-03-10T06:00:00Z")
    times = [epoch_ms(record) for record in shifted.transactions]
    start = int(datetime.fromisoformat("2027-03-10T06:00:00+00:00").timestamp() * 1000)
    assert start <= min(times) and max(times) < start + 24 * HOUR
    assert shifted.params["start"] == "2027-03-10T06:00:00.000Z"


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"accounts": 100}, "accounts"),
        ({"accounts": "2000"}, "accounts"),
        ({"days": 0}, "days"),
        ({"start": "next tuesday"}, "start"),
    ],
)
def test_bad_parameters_are_named(kwargs: dict, named: str) -> None:
    with pytest.raises(ValueError, match=rf"^{named}:"):
        generate(**kwargs)


# --- records ------------------------------------------------------------------------------


def test_every_record_is_a_valid_canonical_transaction_in_event_time_order(
    scenario: Scenario, records: list[dict]
) -> None:
    assert 15_000 <= len(records) <= 60_000
    assert len({record["transaction_id"] for record in records}) == len(records)
    for record in records:
        transaction = parse_transaction(record)
        assert ISO_MILLIS.match(record["timestamp"]), record
        assert transaction.account_id == record["account_id"]
        assert transaction.amount == record["amount"] and record["amount"] > 0
    times = [epoch_ms(record) for record in records]
    assert times == sorted(times)
    start = epoch_ms({"timestamp": scenario.params["start"]})
    assert start <= times[0] and times[-1] < start + 2 * 24 * HOUR


def test_transfers_name_a_known_counterparty_and_no_merchant(scenario: Scenario, records: list[dict]) -> None:
    transfers = [record for record in records if record.get("channel") == "transfer"]
    assert len(transfers) > 100
    for record in transfers:
        assert record["counterparty_account_id"] != record["account_id"]
        assert record["counterparty_account_id"] in scenario.contacts  # every account of the scenario
        assert "merchant_id" not in record and "card_id" not in record
    assert all(
        "counterparty_account_id" not in record for record in records if record.get("channel") != "transfer"
    )


def test_written_transactions_are_the_records_one_per_line(tmp_path: Path, scenario: Scenario) -> None:
    paths = scenario.write(tmp_path)
    lines = paths["transactions"].read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == scenario.transactions
    assert load_labels(paths["labels"]) == scenario.labels
    described = json.loads(paths["scenario"].read_text())
    assert described["summary"] == scenario.summary()
    assert len(described["groups"]) == len(scenario.groups)


# --- labels -------------------------------------------------------------------------------


def test_labels_follow_the_planted_groups_and_fraud_is_a_few_percent(
    scenario: Scenario, by_account: dict
) -> None:
    members_seen: set[str] = set()
    for group in scenario.groups:
        assert not members_seen & set(group.members), f"{group.group_id} reuses accounts"
        members_seen |= set(group.members)
        for account_id in group.members:
            label = scenario.labels[account_id]
            assert label.pattern == group.pattern
            assert label.label == (FRAUD if group.pattern in FRAUD_PATTERNS else CONFOUNDER)
            assert label.ring_id == (
                None if group.pattern in ("big_spender", "traveller") else group.group_id
            )
    assert set(scenario.labels) == members_seen
    assert set(scenario.labels) <= set(by_account)
    fraud = [label for label in scenario.labels.values() if label.label == FRAUD]
    assert 0.03 <= len(fraud) / scenario.params["accounts"] <= 0.05
    summary = scenario.summary()
    for pattern in FRAUD_PATTERNS + CONFOUNDER_PATTERNS:
        counted = sum(1 for label in scenario.labels.values() if label.pattern == pattern)
        assert summary["patterns"][pattern]["accounts"] == counted > 0
    assert summary["patterns"]["fraud_ring"]["groups"] >= 3
    assert summary["transactions"] == len(scenario.transactions)


def test_confounder_accounts_never_carry_a_fraud_label(scenario: Scenario) -> None:
    for group in scenario.groups:
        if group.pattern in CONFOUNDER_PATTERNS:
            assert {scenario.labels[a].label for a in group.members} == {CONFOUNDER}


# --- planted fraud ------------------------------------------------------------------------


def test_fraud_ring_members_really_share_identifiers_and_one_bursts(
    scenario: Scenario, by_account: dict, users_of: dict
) -> None:
    kinds_used: set[str] = set()
    for ring in scenario.groups_of("fraud_ring"):
        members = set(ring.members)
        assert 4 <= len(members) <= 8
        assert len(ring.identifiers) >= 2, "a ring mixes identifier types"
        kinds_used |= set(ring.identifiers)
        for kind, values in ring.identifiers.items():
            for value in values:
                assert len(users_of[kind, value]) >= 2 and users_of[kind, value] <= members
        # Linked through identifiers seen in the transactions, the members form one component.
        neighbours: dict[str, set[str]] = defaultdict(set)
        for (kind, _value), accounts in users_of.items():
            if kind != "ip" and accounts & members and len(accounts) > 1:
                assert accounts <= members, f"{ring.group_id} shares a {kind} with outsiders"
                for account in accounts:
                    neighbours[account] |= accounts - {account}
        reached, frontier = set(), [next(iter(members))]
        while frontier:
            account = frontier.pop()
            if account not in reached:
                reached.add(account)
                frontier.extend(neighbours[account])
        assert reached == members
        bursts = {member: max_window_sum(by_account[member]) for member in members}
        assert max(bursts.values()) > 50_000, f"{ring.group_id}: {bursts}"
        transfers_inside = [
            record
            for member in members
            for record in by_account[member]
            if record.get("counterparty_account_id") in members
        ]
        assert len(transfers_inside) >= 2
    assert len(kinds_used) >= 3


def test_card_testing_is_many_tiny_amounts_on_one_card_then_a_big_one(
    scenario: Scenario, records: list[dict], users_of: dict
) -> None:
    for incident in scenario.groups_of("card_testing"):
        (card,) = incident.identifiers["card_id"]
        assert users_of["card_id", card] <= set(incident.members)
        on_card = [record for record in records if record.get("card_id") == card]
        tiny = [record for record in on_card if record["amount"] < 5]
        assert len(tiny) >= 8
        assert len({epoch_ms(record) // FIVE_MINUTES for record in tiny}) == 1, "one aligned 5-minute bin"
        assert len({record["merchant_id"] for record in tiny}) >= 3
        after = [record for record in on_card if epoch_ms(record) > epoch_ms(tiny[-1])]
        assert after and max(record["amount"] for record in after) >= 1_000


def test_account_takeover_is_a_new_device_and_ip_then_a_burst(
    scenario: Scenario, by_account: dict, users_of: dict
) -> None:
    for takeover in scenario.groups_of("account_takeover"):
        (victim,) = takeover.members
        (new_device,) = takeover.identifiers["device_id"]
        (new_ip,) = takeover.identifiers["ip"]
        history = by_account[victim]
        first_new = next(i for i, record in enumerate(history) if record.get("device_id") == new_device)
        before = history[:first_new]
        assert len(before) >= 3, "the victim has a history of its own"
        assert all(record.get("device_id") != new_device and record.get("ip") != new_ip for record in before)
        assert any(record.get("device_id") for record in before)
        assert users_of["device_id", new_device] == {victim} == users_of["ip", new_ip]
        attacker = [record for record in history if record.get("device_id") == new_device]
        assert epoch_ms(attacker[-1]) - epoch_ms(attacker[0]) < HOUR
        assert max_window_sum(attacker) > 50_000


def test_mule_chain_fans_in_then_fans_out_through_hops_with_decreasing_amounts(
    scenario: Scenario, records: list[dict]
) -> None:
    transfers = [record for record in records if "counterparty_account_id" in record]
    for chain in scenario.groups_of("mule_chain"):
        members = set(chain.members)
        (mule,) = chain.roles["mule"]
        incoming = [record for record in transfers if record["counterparty_account_id"] == mule]
        outgoing = [record for record in transfers if record["account_id"] == mule]
        assert len({record["account_id"] for record in incoming}) >= 4
        assert {record["account_id"] for record in incoming} <= members
        assert len({record["counterparty_account_id"] for record in outgoing}) >= 2
        assert max(epoch_ms(record) for record in incoming) < min(epoch_ms(record) for record in outgoing)
        assert sum(r["amount"] for r in outgoing) < sum(r["amount"] for r in incoming)
        assert max_window_sum(outgoing) > 50_000
        # Follow the money from each first hop: later, a little less, 2-3 hops deep.
        for first_hop in outgoing:
            depth, current = 1, first_hop
            while True:
                onward = [
                    record
                    for record in transfers
                    if record["account_id"] == current["counterparty_account_id"]
                    and epoch_ms(record) > epoch_ms(current)
                ]
                if not onward:
                    break
                (current_next,) = onward
                assert current_next["amount"] < current["amount"]
                assert current_next["counterparty_account_id"] in members
                depth, current = depth + 1, current_next
            assert 2 <= depth <= 3


def test_device_farm_puts_ten_or_more_new_accounts_on_one_device_within_an_hour(
    scenario: Scenario, records: list[dict], by_account: dict
) -> None:
    by_device: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        if "device_id" in record:
            by_device[record["device_id"]].append(record)
    crowded = {device: max_distinct_accounts(uses) for device, uses in by_device.items()}
    crowded = {device: found for device, found in crowded.items() if found[0] >= 10}
    farms = scenario.groups_of("device_farm")
    assert crowded and set(crowded) <= {device for farm in farms for device in farm.identifiers["device_id"]}
    for _count, accounts in crowded.values():
        assert {scenario.labels[account].pattern for account in accounts} == {"device_farm"}
        farm_hours = {epoch_ms(record) // HOUR for account in accounts for record in by_account[account]}
        assert len(farm_hours) == 1, "new accounts, all active within one clock hour only"


# --- confounders --------------------------------------------------------------------------


def test_households_share_an_ip_and_a_device_among_themselves_only(
    scenario: Scenario, users_of: dict
) -> None:
    households = scenario.groups_of("household")
    assert len(households) >= 20
    for household in households:
        assert 2 <= len(household.members) <= 3
        (ip,) = household.identifiers["ip"]
        (device,) = household.identifiers["device_id"]
        assert users_of["ip", ip] == set(household.members) == users_of["device_id", device]


def test_public_ips_gather_a_hundred_accounts_with_a_rush_hour(
    scenario: Scenario, records: list[dict]
) -> None:
    for venue in scenario.groups_of("public_ip"):
        (ip,) = venue.identifiers["ip"]
        behind = [record for record in records if record.get("ip") == ip]
        accounts = {record["account_id"] for record in behind}
        assert len(accounts) >= 100
        assert {scenario.labels[a].ring_id for a in accounts} == {venue.group_id}
        busiest, _ = max_distinct_accounts(behind)
        assert busiest >= 20, "the rush hour looks like an IP burst"


def test_office_device_is_shared_by_three_to_six_colleagues(scenario: Scenario, users_of: dict) -> None:
    for office in scenario.groups_of("office_device"):
        (device,) = office.identifiers["device_id"]
        assert 3 <= len(users_of["device_id", device]) <= 6
        assert users_of["device_id", device] == set(office.members)


def test_shared_card_families_share_a_card_at_one_home_within_hours(
    scenario: Scenario, records: list[dict], users_of: dict
) -> None:
    families = scenario.groups_of("shared_card_family")
    assert len(families) >= 4
    with_contact = 0
    for family in families:
        members = set(family.members)
        assert 2 <= len(members) <= 3
        (card,) = family.identifiers["card_id"]
        (ip,) = family.identifiers["ip"]
        (device,) = family.identifiers["device_id"]
        assert users_of["card_id", card] == users_of["ip", ip] == users_of["device_id", device] == members
        for kind in ("email", "phone"):
            if kind in family.identifiers:
                with_contact += 1
                assert users_of[kind, family.identifiers[kind][0]] == members
        # What the shared_card rule sees: every member on the card within two hours.
        on_card = [record for record in records if record.get("card_id") == card]
        assert max_distinct_accounts(on_card, 2 * HOUR)[0] == len(members)
        # Ordinary spending: nothing close to a burst, no onward transfers of large sums.
        assert max(record["amount"] for record in on_card) <= 3_000
    assert with_contact >= len(families) // 2, "most families share an email or a phone too"


def test_large_transfers_are_kept_by_their_receivers(scenario: Scenario, by_account: dict) -> None:
    pairs = scenario.groups_of("large_transfer")
    assert len(pairs) >= 3
    for pair in pairs:
        (sender,), (receiver,) = pair.roles["sender"], pair.roles["receiver"]
        sent = [r for r in by_account[sender] if r.get("counterparty_account_id") == receiver]
        assert [r["amount"] for r in sent] == [pair.facts["amount"]]
        assert 8_000 <= sent[0]["amount"] <= 40_000
        assert scenario.labels[sender].ring_id == scenario.labels[receiver].ring_id == pair.group_id
        # The receiver keeps it: far less than the mule rule's 80% leaves within 3 hours.
        received_at = epoch_ms(sent[0])
        onward = sum(
            r["amount"]
            for r in by_account[receiver]
            if received_at <= epoch_ms(r) < received_at + 3 * HOUR and r.get("counterparty_account_id")
        )
        assert onward < 0.2 * sent[0]["amount"]


def test_carrier_nat_carries_dozens_of_mobile_subscribers(scenario: Scenario, records: list[dict]) -> None:
    (nat,) = scenario.groups_of("carrier_nat")
    (ip,) = nat.identifiers["ip"]
    behind = [record for record in records if record.get("ip") == ip]
    assert 40 <= len({record["account_id"] for record in behind}) <= 80
    assert {record["account_id"] for record in behind} == set(nat.members)
    assert {record["channel"] for record in behind} <= {"mobile", "transfer"}


def test_smallest_scenario_still_plants_every_confounder() -> None:
    small = generate(accounts=500, seed=3)
    for pattern in ("shared_card_family", "large_transfer", "carrier_nat"):
        assert small.groups_of(pattern), pattern


def test_only_fraud_and_a_rare_big_spender_exceed_50000_in_five_minutes(
    scenario: Scenario, by_account: dict
) -> None:
    above = {account for account, history in by_account.items() if max_window_sum(history) > 50_000}
    # Planted bursts sit inside one aligned bin: binned rules see exactly what sliding ones see.
    assert above == {account for account, history in by_account.items() if max_bin_sum(history) > 50_000}
    patterns = {account: scenario.labels[account].pattern for account in above if account in scenario.labels}
    assert set(patterns) == above, "no ordinary account reaches the burst threshold"
    spenders = [account for account, pattern in patterns.items() if pattern == "big_spender"]
    assert len(spenders) == 1
    assert {p for p in patterns.values() if p != "big_spender"} <= set(FRAUD_PATTERNS)
    assert {"fraud_ring", "account_takeover", "mule_chain"} <= set(patterns.values())


def test_travellers_change_country_over_hours_not_minutes(scenario: Scenario, by_account: dict) -> None:
    for traveller in scenario.groups_of("traveller"):
        (account,) = traveller.members
        history = by_account[account]
        assert len({record["country"] for record in history}) >= 2
        for earlier, later in itertools.pairwise(history):
            if earlier["country"] != later["country"]:
                assert epoch_ms(later) - epoch_ms(earlier) >= 3 * HOUR


# --- labels file --------------------------------------------------------------------------


def test_load_labels_reads_other_sources_labels(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text(
        '{"account_id": "1234-5678-22", "label": "fraud", "pattern": "chargeback"}\n\n'
        '{"account_id": 42, "label": "confounder", "ring_id": null}\n'
    )
    assert load_labels(path) == {
        "1234-5678-22": Label("1234-5678-22", "fraud", "chargeback", None),
        "42": Label("42", "confounder", "unspecified", None),
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"account_id": "a", "label": "fraud"}\n{oops\n', r"line 2: not valid JSON"),
        ('{"account_id": "a", "label": "bad"}\n', r"line 1: label: must be 'fraud' or 'confounder'"),
        ('{"label": "fraud"}\n', r"line 1: account_id: required"),
        ('{"account_id": "a", "label": "fraud", "pattern": "household"}\n', r"household.*confounder pattern"),
        (
            '{"account_id": "a", "label": "fraud"}\n{"account_id": "a", "label": "fraud"}\n',
            r"already labelled on line 1",
        ),
    ],
)
def test_load_labels_names_the_bad_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text(content)
    with pytest.raises(LabelsError, match=message):
        load_labels(path)


def test_load_labels_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LabelsError, match="does not exist"):
        load_labels(tmp_path / "nope.jsonl")


# --- command ------------------------------------------------------------------------------


def run_command(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    generate_command.register(parser.add_subparsers())
    args = parser.parse_args(["generate", *argv])
    return args.func(args)


def test_generate_command_writes_the_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "scenario"
    assert run_command("--accounts", "500", "--days", "1", "--seed", "5", "--out", str(out)) == 0
    expected = generate(accounts=500, days=1, seed=5)
    lines = (out / "transactions.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == expected.transactions
    assert load_labels(out / "labels.jsonl") == expected.labels
    assert "device_farm" in capsys.readouterr().out


def test_generate_command_rejects_a_bad_start(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"--start: 'soon' is not ISO 8601"):
        run_command("--start", "soon", "--out", str(tmp_path))


# --- wide worlds --------------------------------------------------------------------------


def test_wide_worlds_draw_their_groups_from_wide_ranges_with_variants_and_roles() -> None:
    sizes: dict[str, set[int]] = {}
    variants: set[str] = set()
    for seed in range(11, 16):
        scenario = generate(accounts=400, days=1, seed=seed, variety="wide")
        assert scenario.params["variety"] == "wide"
        for group in scenario.groups:
            sizes.setdefault(group.pattern, set()).add(len(group.members))
            if group.variant:
                variants.add(f"{group.pattern}/{group.variant}")
        # every labelled account says what it did, and fraud groups name their form
        for label in scenario.labels.values():
            assert label.role, label
            if label.is_fraud:
                assert label.variant, label
    assert {
        "fraud_ring/chain",
        "fraud_ring/hub",
        "fraud_ring/synthetic_identity",
        "account_takeover/transfers",
        "account_takeover/purchases",
        "mule_chain/fan_in",
        "mule_chain/fan_out",
    } <= variants
    assert min(sizes["fraud_ring"]) <= 3 and max(sizes["fraud_ring"]) >= 10
    assert max(sizes["household"]) > 3  # households bigger than the classic 2-3


def test_wide_money_networks_label_collectors_sources_and_cash_outs() -> None:
    scenario = generate(accounts=400, days=1, seed=12, variety="wide")
    roles = {label.role for label in scenario.labels.values() if label.pattern == "mule_chain"}
    assert roles & {"collector", "placement"}
    assert roles & {"source", "depositor"}
    assert roles & {"cash_out", "mule"}
    takeover = {label.role for label in scenario.labels.values() if label.pattern == "account_takeover"}
    assert "victim" in takeover


def test_wide_worlds_are_deterministic_and_classic_ones_unchanged() -> None:
    first = generate(accounts=300, days=1, seed=3, variety="wide")
    again = generate(accounts=300, days=1, seed=3, variety="wide")
    assert first.transactions == again.transactions and first.labels == again.labels
    classic = generate(accounts=500, days=1, seed=3)
    assert "variety" not in classic.params
    assert all(label.variant is None for label in classic.labels.values())


def test_an_unknown_variety_is_refused() -> None:
    with pytest.raises(ValueError, match=r"variety: must be one of classic, wide"):
        generate(accounts=500, days=1, seed=1, variety="random")
