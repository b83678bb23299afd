"""What every pattern planter works with: the random source, the clock, the cast of accounts."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from .population import Account, Clock, Identifiers, Merchants
from .timeline import Timeline

#: patterns whose accounts act alone: their labels carry no group id
LONE_PATTERNS = ("big_spender", "traveller")
#: the role of a member whose group names none for it
DEFAULT_ROLES = {
    "fraud_ring": "member",
    "card_testing": "tester",
    "account_takeover": "victim",
    "mule_chain": "mule",
    "device_farm": "farm_account",
    "household": "household_member",
    "public_ip": "network_user",
    "office_device": "colleague",
    "big_spender": "spender",
    "traveller": "traveller",
    "shared_card_family": "family_member",
    "large_transfer": "party",
    "carrier_nat": "subscriber",
}


@dataclass(frozen=True)
class PlantedGroup:
    """One planted pattern instance: a ring, a chain, a household, a public IP and its users...

    ``identifiers`` names what the members share (``{"device_id": [...], ...}``); ``roles``
    says who did what in patterns with roles (``{"mule": [...], "feeders": [...]}``);
    ``facts`` holds times and amounts worth knowing when checking a detector's answer.
    """

    group_id: str
    pattern: str
    members: tuple[str, ...]
    identifiers: dict[str, list[str]] = field(default_factory=dict)
    roles: dict[str, list[str]] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    #: which form of the pattern this is (``fan_in``, ``synthetic_identity``...), if it has forms
    variant: str | None = None

    def role_of(self, account_id: str) -> str:
        """The member's role: the first role that names it, else the pattern's default."""
        for role, accounts in self.roles.items():
            if account_id in accounts:
                return role
        return DEFAULT_ROLES.get(self.pattern, "member")

    @property
    def ring_id(self) -> str | None:
        return None if self.pattern in LONE_PATTERNS else self.group_id

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "group_id": self.group_id,
            "pattern": self.pattern,
            "members": list(self.members),
            "identifiers": self.identifiers,
            "roles": self.roles,
            "facts": self.facts,
            "variant": self.variant,
        }


@dataclass
class World:
    rng: random.Random
    clock: Clock
    ids: Identifiers
    merchants: Merchants
    timeline: Timeline
    accounts: dict[str, Account]
    #: accounts not yet given a role, in a random order
    unassigned: list[Account]
    #: accounts whose whole behaviour a fraud planter writes (no everyday spending added)
    fraud_only: set[str] = field(default_factory=set)

    def take(self, count: int, suits: Callable[[Account], bool] | None = None) -> list[Account]:
        """``count`` accounts without a role yet (the first ones that suit, if a test is given)."""
        newest_first = range(len(self.unassigned) - 1, -1, -1)
        fitting = (i for i in newest_first if suits is None or suits(self.unassigned[i]))
        positions = list(islice(fitting, count))
        if len(positions) < count:
            raise ValueError(
                f"not enough suitable accounts left to plant every pattern (needed {count}); use more accounts"
            )
        # Descending positions: popping one never moves the next.
        return [self.unassigned.pop(position) for position in positions]

    def take_for_fraud(self, count: int) -> list[Account]:
        taken = self.take(count)
        self.fraud_only.update(account.account_id for account in taken)
        return taken

    def clip(self, ms: int) -> int:
        """``ms`` moved inside the scenario's period."""
        return min(self.clock.end_ms - 1, max(self.clock.start_ms, ms))
