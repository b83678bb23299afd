"""``generate()``: a whole scenario, deterministic by seed, and the :class:`Scenario` it returns."""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from .. import collector
from . import confounders, fraud, wide
from .labels import FRAUD, PATTERN_LABEL, PATTERNS, Label, dump_labels
from .ordinary import ordinary_activity
from .population import Account, Clock, Identifiers, Merchants, new_account
from .timeline import Event, Timeline, iso_millis, render, to_json_line
from .world import PlantedGroup, World

DEFAULT_ACCOUNTS = 2_000
DEFAULT_DAYS = 2
DEFAULT_SEED = 7
DEFAULT_START = "2026-11-01T00:00:00Z"
#: below this, a public IP cannot gather its hundred-odd users next to everything else
MIN_ACCOUNTS = 500
MAX_DAYS = 366
#: ``classic``: the fixed shapes the rules were first written against; ``wide``: every
#: pattern's parameters drawn from wide ranges, with variants (see :mod:`.wide`)
VARIETIES = ("classic", "wide")
DEFAULT_VARIETY = "classic"

TRANSACTIONS_FILE = "transactions.jsonl"
LABELS_FILE = "labels.jsonl"
SCENARIO_FILE = "scenario.json"

# Planted groups per 2,000 accounts (at least one of each, whatever the size).
_GROUPS_PER_2000 = {
    "fraud_ring": 5,
    "card_testing": 2,
    "account_takeover": 2,
    "mule_chain": 2,
    "device_farm": 1,
    "household": 50,
    "public_ip": 2,
    "office_device": 2,
    "big_spender": 10,
    "traveller": 14,
    "shared_card_family": 8,
    "large_transfer": 6,
    "carrier_nat": 1,
}
_GROUP_PREFIX = {
    "fraud_ring": "ring",
    "card_testing": "cardtest",
    "account_takeover": "takeover",
    "mule_chain": "mule",
    "device_farm": "farm",
    "household": "household",
    "public_ip": "public-ip",
    "office_device": "office",
    "big_spender": "big-spender",
    "traveller": "traveller",
    "shared_card_family": "family-card",
    "large_transfer": "large-transfer",
    "carrier_nat": "carrier-nat",
}
_PLANTERS: dict[str, Callable[[World, str], PlantedGroup]] = {
    "fraud_ring": fraud.plant_fraud_ring,
    "card_testing": fraud.plant_card_testing,
    "mule_chain": fraud.plant_mule_chain,
    "device_farm": fraud.plant_device_farm,
    # account takeover picks its victim among ordinary people: planted after the fraud-only groups
    "account_takeover": fraud.plant_account_takeover,
    "household": confounders.plant_household,
    "public_ip": confounders.plant_public_ip,
    "office_device": confounders.plant_office_device,
    "traveller": confounders.plant_traveller,
    "shared_card_family": confounders.plant_shared_card_family,
    "large_transfer": confounders.plant_large_transfer,
    "carrier_nat": confounders.plant_carrier_nat,
}


def group_counts(accounts: int) -> dict[str, int]:
    """How many groups of each pattern a scenario of ``accounts`` accounts gets."""
    scale = accounts / DEFAULT_ACCOUNTS
    return {pattern: max(1, round(per * scale)) for pattern, per in _GROUPS_PER_2000.items()}


def parse_start(value: str | datetime) -> datetime:
    """The scenario's start as an aware UTC datetime; naive values are taken as UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"start: {value!r} is not ISO 8601 (e.g. {DEFAULT_START})") from None
    if not isinstance(value, datetime):
        raise ValueError(f"start: expected ISO 8601 text or a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _check_int(name: str, value: Any, lo: int, hi: int | None, why: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}: expected a whole number, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"between {lo} and {hi}"
        raise ValueError(f"{name}: must be {bound}{' ' + why if why else ''} (got {value})")
    return value


@dataclass
class Scenario:
    """A generated scenario: transactions in event-time order and the ground truth behind them."""

    params: dict[str, Any]
    labels: dict[str, Label]
    groups: list[PlantedGroup]
    events: list[Event]
    contacts: dict[str, tuple[str, str]]
    id_prefix: str

    def iter_transactions(self) -> Iterator[dict[str, Any]]:
        """Canonical records, in event-time order, built one at a time."""
        return render(self.events, self.contacts, self.id_prefix)

    @cached_property
    def transactions(self) -> list[dict[str, Any]]:
        with collector.paused():
            return list(self.iter_transactions())

    def groups_of(self, pattern: str) -> list[PlantedGroup]:
        return [group for group in self.groups if group.pattern == pattern]

    def summary(self) -> dict[str, Any]:
        """Counts of transactions, and of accounts and groups per pattern."""
        by_pattern = Counter(label.pattern for label in self.labels.values())
        groups = Counter(group.pattern for group in self.groups)
        fraud_accounts = sum(1 for label in self.labels.values() if label.label == FRAUD)
        accounts = self.params["accounts"]
        return {
            **self.params,
            "transactions": len(self.events),
            "transfers": sum(1 for event in self.events if event.counterparty_account_id is not None),
            "fraud_accounts": fraud_accounts,
            "fraud_share": round(fraud_accounts / accounts, 4),
            "confounder_accounts": len(self.labels) - fraud_accounts,
            "patterns": {
                pattern: {
                    "label": PATTERN_LABEL[pattern],
                    "groups": groups[pattern],
                    "accounts": by_pattern[pattern],
                }
                for pattern in PATTERNS
            },
        }

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``transactions.jsonl``, ``labels.jsonl`` and ``scenario.json`` (summary and
        planted groups) into ``out_dir``; returns their paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "transactions": out / TRANSACTIONS_FILE,
            "labels": out / LABELS_FILE,
            "scenario": out / SCENARIO_FILE,
        }
        with collector.paused(), paths["transactions"].open("w", encoding="utf-8", newline="\n") as handle:
            handle.writelines(to_json_line(record) for record in self.iter_transactions())
        paths["labels"].write_text(dump_labels(self.labels), encoding="utf-8", newline="\n")
        description = {
            "summary": self.summary(),
            "groups": [group.to_json_dict() for group in self.groups],
        }
        paths["scenario"].write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
        return paths


def _plant(world: World, counts: dict[str, int]) -> list[PlantedGroup]:
    groups: list[PlantedGroup] = []
    for pattern, planter in _PLANTERS.items():
        for number in range(1, counts[pattern] + 1):
            groups.append(planter(world, f"{_GROUP_PREFIX[pattern]}-{number:03d}"))
    # A few big spenders (one per 2,000 accounts) once spend more than 50,000 in minutes.
    above_threshold = max(1, len(world.accounts) // DEFAULT_ACCOUNTS)
    for number in range(1, counts["big_spender"] + 1):
        groups.append(
            confounders.plant_big_spender(
                world, f"big-spender-{number:03d}", once_above_threshold=number <= above_threshold
            )
        )
    return groups


def _befriend(rng: random.Random, people: list[Account]) -> None:
    """Friends to send money to: 0-2 each, on top of any household."""
    for person in people:
        for friend in rng.sample(people, rng.choices((0, 1, 2), weights=(40, 40, 20))[0]):
            if friend is not person and friend.account_id not in person.contacts:
                person.contacts.append(friend.account_id)


#: the roles of the classic planters, as the labels name them
_ROLE_NAMES = {
    "bursters": "burster",
    "feeders": "source",
    "mule": "collector",
    "main_device_accounts": "farm_account",
}


def canonical_role(role: str) -> str:
    if role.startswith("branch_"):
        return "forwarder"
    return _ROLE_NAMES.get(role, role)


def _labels(groups: list[PlantedGroup]) -> dict[str, Label]:
    labels: dict[str, Label] = {}
    for group in groups:
        for account_id in group.members:
            if account_id in labels:  # roles are handed out once, so this is a generator bug
                raise AssertionError(
                    f"{account_id} planted twice ({labels[account_id].pattern}, {group.pattern})"
                )
            labels[account_id] = Label(
                account_id,
                PATTERN_LABEL[group.pattern],
                group.pattern,
                group.ring_id,
                role=group.role_of(account_id)
                if group.variant
                else canonical_role(group.role_of(account_id)),
                variant=group.variant,
            )
    return labels


def generate(
    accounts: int = DEFAULT_ACCOUNTS,
    days: int = DEFAULT_DAYS,
    seed: int = DEFAULT_SEED,
    start: str | datetime = DEFAULT_START,
    variety: str = DEFAULT_VARIETY,
) -> Scenario:
    """A scenario of ``accounts`` accounts over ``days`` days from ``start``, deterministic by ``seed``.

    ``variety`` is ``classic`` or ``wide`` (see :data:`VARIETIES`). Raises ``ValueError``
    naming the parameter when one is out of range.
    """
    if variety not in VARIETIES:
        raise ValueError(f"variety: must be one of {', '.join(VARIETIES)} (got {variety!r})")
    least = wide.MIN_WIDE_ACCOUNTS if variety == "wide" else MIN_ACCOUNTS
    accounts = _check_int("accounts", accounts, least, None, "so that every pattern fits")
    days = _check_int("days", days, 1, MAX_DAYS, "")
    seed = _check_int("seed", seed, -(2**63), 2**63 - 1, "")
    start_ms = int(parse_start(start).timestamp() * 1000)
    with collector.paused():
        return _generate(accounts, days, seed, start_ms, variety)


def _plant_wide(world: World, counts: dict[str, int]) -> list[PlantedGroup]:
    return [
        planter(world, f"{_GROUP_PREFIX[pattern]}-{number:03d}")
        for pattern, planter in wide.WIDE_PLANTERS.items()
        for number in range(1, counts[pattern] + 1)
    ]


def _generate(accounts: int, days: int, seed: int, start_ms: int, variety: str = DEFAULT_VARIETY) -> Scenario:

    rng = random.Random(seed)
    ids = Identifiers(rng)
    clock = Clock(start_ms, days)
    merchants = Merchants(max(300, min(5_000, accounts // 5)), rng)
    people = [new_account(f"acc-{n:06d}", rng, ids) for n in range(1, accounts + 1)]
    unassigned = list(people)
    rng.shuffle(unassigned)
    world = World(rng, clock, ids, merchants, Timeline(), {p.account_id: p for p in people}, unassigned)

    if variety == "wide":
        groups = _plant_wide(world, wide.wide_group_counts(accounts))
    else:
        groups = _plant(world, group_counts(accounts))
    everyday = [person for person in people if person.account_id not in world.fraud_only]
    _befriend(rng, everyday)
    for person in everyday:
        ordinary_activity(world.timeline, rng, person, clock, merchants)

    params = {
        "accounts": accounts,
        "days": days,
        "seed": seed,
        "start": iso_millis(start_ms),
        "end": iso_millis(clock.end_ms),
    }
    if variety != DEFAULT_VARIETY:  # classic scenarios keep their parameters (and transaction ids)
        params["variety"] = variety
    fingerprint = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:8]
    return Scenario(
        params=params,
        labels=_labels(groups),
        groups=groups,
        events=world.timeline.sorted_events(),
        contacts={p.account_id: (p.email, p.phone) for p in people},
        id_prefix=f"tx-{fingerprint}",
    )
