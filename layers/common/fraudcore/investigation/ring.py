"""Ring analysis: from the flagged entity through shared identifiers to other accounts.

The expansion is a breadth-first search done hop by hop in Python, two bounded requests
per hop (accounts -> their identifiers; identifiers -> their degree and accounts), so no
single request can wander:

- ``max_hops``: account-to-account links through one shared identifier;
- ``max_personal_hops``: beyond ``max_hops``, links through a card, an email or a phone
  (:data:`PERSONAL_LINK_TYPES`, each one customer's) are followed up to this many hops; an
  IP or a device further out (a member's home, an office computer) links nobody more. A
  ring chained pair by pair (each pair sharing a card number, the next pair a phone) is
  one ring however long the chain; people's homes and offices are not;
- ``identifiers_per_account``: per-hop fan-out (``limit`` inside ``by()``, i.e. per account);
- ``max_identifier_degree``: an identifier used by more accounts than its type's cutoff
  links nobody (a public IP with hundreds of accounts, a shop's shared terminal); it is
  listed under ``skipped_identifiers``;
- ``member_cap``: most accounts in a ring;
- the evaluation timeout of every request plus a time budget checked between hops.

When a bound cut anything, ``truncated`` is true and ``truncation`` says which and why.

Output (ids without their ``<label>:`` prefix): ``members``, ``shared_identifiers``
(``{type, id, degree, accounts}`` for identifiers used by two or more members),
``density`` (share of member pairs that share at least one identifier), ``flagged_share``
(share of the members other than the investigated account that were already flagged),
``ring_score``, ``benign_cluster`` and ``cashing_out`` (``{account, amount, payments}`` of
the members whose card payments, as read through their card edges' ``amount_total`` and
``tx_count``, come to :data:`CASH_OUT_TOTAL_MIN` or more at :data:`CASH_OUT_AVERAGE_MIN` or
more a payment: thousands spent at once, as a ring's new accounts cash out).

A household is recognised as a benign cluster: two or three accounts linked only by an IP
and/or a device, among them their home's IP (a family computer is used at home: one device
carried between three homes is not a household's), none of the others flagged (a case's own ``ring_member`` flags and one
account's ``amount_spike``, ``novel_takeover`` or ``takeover_abroad`` do not count: see :data:`OWN_FLAG_REASONS`), and the flag not about a group's money (not a
high-value burst; an amount spike on one member's account is about that account alone,
and the family stays a family). So are colleagues at an office computer: more
accounts linked only by a device and/or IP, under the same conditions, each of which also
uses a device of its own (people have phones; accounts opened in a device farm use the
farm's device and nothing else). A family is one too, even when its members share a card,
an email or a phone: at most three accounts, all on one home IP that nobody else uses and
on one family device, under the same conditions (rings share cards and phones, but each
member keeps a home of its own). Beyond three, up to :data:`PLACE_SIZE` accounts are people at
one place (a large family, an office) when at least :data:`HOME_SHARE` of them are on one
IP nobody else uses (the others may not have paid from home yet) and at least half of
them use a device of their own, pay with a card in person (no device, no IP) or have
friends of their own (an everyday sum exchanged with an account none of the others dealt
with: see ``shared_device.with_friends``), or fewer than :data:`FARM_MIN_LIFELESS` show
none of that: a farm's accounts use its device and nothing
else. So are
up to :data:`PLACE_SIZE` accounts sharing cards that at least two of them paid with in
person (no device, no IP), at least half of them doing so: a card handed around at the
till is a household's, a ring shares card numbers to cash out online. A flag of critical severity (card testing: a pattern of
fraud by itself) is never waved through as a household, even when the testers work from
one machine behind one IP as a family would. A benign cluster's ring score is capped at
:data:`BENIGN_SCORE_CAP`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from ..graph import schema
from ..graph.access import GraphAccess, GraphPort
from ..graph.connection import is_timeout
from .model import (
    HIGH_VALUE_RULES,
    Investigation,
    RingLimits,
    label_of,
    plain_id,
)
from .shared_device import UsageThresholds, with_friends

#: how much a shared identifier of each type says about common control of the accounts:
#: a card or a phone is personal, an IP is shared by whole buildings
LINK_WEIGHTS = {"card": 1.0, "phone": 0.8, "email": 0.8, "device": 0.7, "ip": 0.4}
#: identifier types that alone make a household rather than a ring
HOUSEHOLD_LINK_TYPES = frozenset({"ip", "device"})
#: identifier types that belong to one customer: followed beyond max_hops (max_personal_hops)
PERSONAL_LINK_TYPES = frozenset({"card", "email", "phone"})
BENIGN_SCORE_CAP = 0.2
#: most accounts of one household (a home IP and a family computer)
HOME_SIZE = 3
#: most accounts at one place (a large family, an office) whose sharing is benign when the
#: place's IP is theirs alone and at least half of them use a device of their own
PLACE_SIZE = 15
#: share of the accounts at one place that must be seen on its network (an IP nobody else
#: uses): a family of five sharing a card and a phone, two of whom have only paid at a till
#: or from their phones so far, is at home all the same; a ring's members each keep a
#: network of their own
HOME_SHARE = 0.5
#: share of the accounts that must show a life of their own (a device of their own, a card
#: paid with in person) for a cluster to be taken as people rather than a farm or a ring
PEOPLE_SHARE = 0.5
#: a farm is this many accounts with no life of their own or more (the shared-device
#: analysis' test of a farm's device): at one place where fewer show nothing else, the
#: others showing a device of their own or a till payment, the place is people's
FARM_MIN_LIFELESS = UsageThresholds().device_farm_dedicated_min
#: flags that say nothing about a cluster's members acting together: a case verdict's flag
#: on its own members (evidence about this very cluster, not new evidence), one account's
#: payment far above its own habit, and one account's payment from a device and network it
#: had not used (a takeover is an outsider's doing, or a member's new phone). They still
#: count in the ring score; they do not stop people at one home or one card from being
#: taken for a household.
OWN_FLAG_REASONS = frozenset({"ring_member", "amount_spike", "novel_takeover", "takeover_abroad"})
#: a member cashing out: its card payments, as far as the ring analysis read them, come to at
#: least CASH_OUT_TOTAL_MIN at an average of at least CASH_OUT_AVERAGE_MIN a payment (new
#: accounts of a ring or a synthetic identity spend thousands online at once; a family's
#: everyday payments average tens, and its one-off sofa is one member's)
CASH_OUT_AVERAGE_MIN = 1_000.0
CASH_OUT_TOTAL_MIN = 2_000.0
#: ring_score = sum of weight * component (each component in 0..1)
SCORE_WEIGHTS = {"size": 0.3, "density": 0.2, "flagged_share": 0.3, "link_strength": 0.2}
#: a ring of this many accounts (or more) counts fully towards the size component
FULL_SIZE = 6


@dataclass
class _Expansion:
    start: str
    limits: RingLimits
    members: set[str] = field(default_factory=set)
    #: identifier vertex id -> (label, degree, accounts using it as far as read)
    identifiers: dict[str, tuple[str, int, set[str]]] = field(default_factory=dict)
    #: card vertex id -> the accounts that paid with it in person (no device, no IP)
    in_person: dict[str, set[str]] = field(default_factory=dict)
    #: account -> [amount, payments] paid with the cards read (their edges' totals)
    spending: dict[str, list[float]] = field(default_factory=dict)
    skipped: dict[str, tuple[str, int]] = field(default_factory=dict)
    explored_identifiers: set[str] = field(default_factory=set)
    #: account -> the identifiers read for it (at most identifiers_per_account)
    account_identifiers: dict[str, set[str]] = field(default_factory=dict)
    truncation: dict[str, str] = field(default_factory=dict)
    hops: int = 0

    def truncate(self, reason: str, detail: str) -> None:
        self.truncation.setdefault(reason, detail)


def _identifier_rows(access: GraphAccess, ids: list[str], limits: RingLimits) -> list[dict[str, Any]]:
    widest = max([limits.degree_cutoff(label_of(i)) for i in ids] or [1])
    return access.run(
        lambda g: g.identifier_usage(ids, account_limit=widest + 1, degree_limit=limits.degree_count_cap),
        "ring: identifier usage",
    )


def _admit_identifiers(state: _Expansion, rows: Iterable[dict[str, Any]]) -> set[str]:
    """Record each identifier; those under their cutoff contribute their accounts."""
    reached: set[str] = set()
    for row in rows:
        vid, label, degree = str(row["id"]), str(row["label"]), int(row["degree"])
        state.explored_identifiers.add(vid)
        if degree > state.limits.degree_cutoff(label):
            state.skipped[vid] = (label, degree)
            state.truncate(
                "identifier_degree",
                f"identifiers used by more accounts than their cutoff link nobody "
                f"(cutoffs: {dict(state.limits.max_identifier_degree)})",
            )
            continue
        accounts = {str(a) for a in row["accounts"]}
        state.identifiers[vid] = (label, degree, accounts)
        if label == schema.CARD:
            uses = row.get("in_person") or []
            state.in_person[vid] = {str(u["account"]) for u in uses if u["count"]}
            for use in uses:
                spent = state.spending.setdefault(str(use["account"]), [0.0, 0.0])
                spent[0] += float(use.get("amount") or 0.0)
                spent[1] += float(use.get("payments") or 0)
        reached |= accounts
    return reached


def _reached_through(state: _Expansion, rows: Iterable[dict[str, Any]], labels: AbstractSet[str]) -> set[str]:
    """The accounts of the identifiers of ``rows`` (admitted, under their cutoff) whose
    label is one of ``labels``."""
    reached: set[str] = set()
    for row in rows:
        label, _, accounts = state.identifiers.get(str(row["id"]), ("", 0, set()))
        if label in labels:
            reached |= accounts
    return reached


def _admit_accounts(state: _Expansion, reached: set[str]) -> list[str]:
    new = sorted(reached - state.members)
    room = state.limits.member_cap - len(state.members)
    if len(new) > room:
        state.truncate("member_cap", f"the ring was cut at {state.limits.member_cap} accounts")
        new = new[: max(room, 0)]
    state.members.update(new)
    return new


def _account_identifier_rows(
    state: _Expansion, access: GraphAccess, accounts: list[str]
) -> list[dict[str, Any]]:
    per_account = state.limits.identifiers_per_account
    return access.run(
        lambda g: g.account_identifiers(accounts, per_account + 1), "ring: identifiers of accounts"
    )


def _next_identifiers(
    state: _Expansion, access: GraphAccess, frontier: list[str], rows: list[dict[str, Any]] | None = None
) -> list[str]:
    """The identifiers of the frontier's accounts not explored yet (``rows``: the frontier's
    identifier rows when already asked for)."""
    per_account = state.limits.identifiers_per_account
    if rows is None:
        rows = _account_identifier_rows(state, access, frontier)
    found: set[str] = set()
    for row in rows:
        ids = sorted(str(i) for i in row["identifiers"])
        if len(ids) > per_account:
            state.truncate("fan_out", f"at most {per_account} identifiers were followed per account and hop")
            ids = ids[:per_account]
        state.account_identifiers[str(row["account"])] = set(ids)
        found.update(ids)
    return sorted(found - state.explored_identifiers)


def _expand(state: _Expansion, access: GraphAccess, deadline: float) -> None:
    start_label = label_of(state.start)
    first_rows = None
    if start_label == schema.ACCOUNT:
        # the start's identifiers: also whether it is in the graph (no row when it is not)
        first_rows = _account_identifier_rows(state, access, [state.start])
        if not first_rows:
            return
        state.members.add(state.start)
        frontier = [state.start]
    elif start_label in schema.SHARED_IDENTIFIER_LABELS:
        frontier = _admit_accounts(
            state, _admit_identifiers(state, _identifier_rows(access, [state.start], state.limits))
        )
        state.hops = 1 if frontier else 0
    else:
        return  # a merchant links accounts by commerce, not by common control
    while frontier:
        if access.now() > deadline:
            state.truncate("time_budget", f"the analysis stopped after {state.limits.time_budget_ms} ms")
            return
        identifiers = _next_identifiers(state, access, frontier, first_rows)
        first_rows = None
        if not identifiers:
            return
        rows = _identifier_rows(access, identifiers, state.limits)
        reached = _admit_identifiers(state, rows)
        if state.hops >= state.limits.max_hops:
            # further out, only the links of one customer's identifiers are followed
            personal = _reached_through(state, rows, PERSONAL_LINK_TYPES)
            if reached - personal - state.members:
                state.truncate(
                    "max_hops",
                    f"accounts further than {state.limits.max_hops} hops through devices and IPs "
                    "were not followed",
                )
            if state.hops >= state.limits.max_personal_hops:
                if personal - state.members:
                    state.truncate(
                        "max_personal_hops",
                        f"accounts further than {state.limits.max_personal_hops} hops were not followed",
                    )
                return
            reached = personal
        frontier = _admit_accounts(state, reached)
        if frontier:
            state.hops += 1


def _shared(state: _Expansion) -> list[dict[str, Any]]:
    shared = []
    for vid, (label, degree, accounts) in state.identifiers.items():
        on_ring = accounts & state.members
        if len(on_ring) >= 2:
            shared.append(
                {
                    "type": label,
                    "id": plain_id(vid),
                    "degree": degree,
                    "accounts": sorted(plain_id(a) for a in on_ring),
                }
            )
    return sorted(shared, key=lambda s: (s["type"], s["id"]))


def _everyone_has_own_device(state: _Expansion) -> bool:
    """Every member uses a device no other member uses (people, not farm accounts)."""
    return bool(state.members) and _with_own_device(state) == state.members


def _with_own_device(state: _Expansion) -> set[str]:
    """The members that use a device no other member uses."""
    own = set()
    for member in state.members:
        others = set().union(*(state.account_identifiers.get(m, set()) for m in state.members - {member}))
        devices = {i for i in state.account_identifiers.get(member, set()) if label_of(i) == schema.DEVICE}
        if devices - others:
            own.add(member)
    return own


def _people_share(state: _Expansion, friends: AbstractSet[str] = frozenset()) -> float:
    """Share of the members with a life of their own: a device no other member uses, a
    card they paid with in person (no device, no IP), or (``friends``) an everyday sum
    exchanged with someone none of the others dealt with. A farm's accounts have none."""
    if not state.members:
        return 0.0
    in_person = set().union(*state.in_person.values()) if state.in_person else set()
    return len(_with_own_device(state) | ((in_person | friends) & state.members)) / len(state.members)


def _home_network(members: set[str], shared: list[dict[str, Any]]) -> bool:
    """An IP that at least HOME_SHARE of the members (two or more) use and nobody else does:
    a home's or an office's network. The others may not have paid from home yet (a family
    member who has only paid at a till and on the phone by midday)."""
    least = max(2, math.ceil(HOME_SHARE * len(members)))
    return any(
        s["type"] == schema.IP and len(s["accounts"]) >= least and s["degree"] == len(s["accounts"])
        for s in shared
    )


def _one_place(
    state: _Expansion, members: set[str], shared: list[dict[str, Any]], access: GraphAccess | None = None
) -> bool:
    """People at one home or office: at most PLACE_SIZE accounts, at least HOME_SHARE of them
    on one IP that nobody else uses (:func:`_home_network`), at least PEOPLE_SHARE of them
    with a device of their own or paying with a card in person, or fewer than
    FARM_MIN_LIFELESS of them without (a family of five where two have shown their phones by
    midday). A farm's accounts use the farm's device and nothing else; a ring's members each
    keep a network of their own, even when they share card numbers, phones and emails; a
    family of five on the family card and phone, on the home network, each with a phone or
    shopping in person, is a family. Friends of their own (:func:`with_friends`, read
    through ``access`` only when the rest does not settle it) count as a life of their own:
    a home of four where, by the time the family computer's fourth user appears, one member
    has been paid back by a friend is people, not a farm behind one proxy."""
    if not HOME_SIZE < len(members) <= PLACE_SIZE or not _home_network(members, shared):
        return False

    def people(share: float) -> bool:
        return share >= PEOPLE_SHARE or round((1.0 - share) * len(members)) < FARM_MIN_LIFELESS

    if people(_people_share(state)):
        return True
    if access is None:
        return False
    try:
        friends = with_friends(access, set(members))
    except Exception as error:
        if not is_timeout(error):
            raise
        state.truncate("evaluation_timeout", f"a graph request exceeded its evaluation timeout: {error}")
        return False
    return people(_people_share(state, friends))


def _family_card(state: _Expansion, members: set[str]) -> bool:
    """A family's card: at most PLACE_SIZE accounts linked by one or more cards, each of
    which at least two of them paid with in person (no device, no IP: card in hand at a
    till), and at least half of them paying in person with one. A ring shares card numbers
    to cash out online; a card handed around at the till is a household's."""
    if not 2 <= len(members) <= PLACE_SIZE:
        return False
    cards = [vid for vid, (label, _, accounts) in state.identifiers.items() if label == schema.CARD]
    shared_cards = [vid for vid in cards if len(state.identifiers[vid][2] & members) >= 2]
    if not shared_cards:
        return False
    holders = [state.in_person.get(vid, set()) & members for vid in shared_cards]
    if any(len(hands) < 2 for hands in holders):
        return False
    return len(set().union(*holders)) >= PEOPLE_SHARE * len(members)


def _one_home(members: set[str], shared: list[dict[str, Any]]) -> bool:
    """A family: at most HOME_SIZE accounts that all use one home IP (used by nobody else)
    and one device; sharing a card, email or phone among them is what families do."""
    if len(members) > HOME_SIZE:
        return False
    everyone = sorted(plain_id(m) for m in members)

    def all_on(kind: str) -> bool:
        return any(
            s["type"] == kind and s["accounts"] == everyone and s["degree"] <= HOME_SIZE for s in shared
        )

    return all_on(schema.IP) and all_on(schema.DEVICE)


def _cashing_out(state: _Expansion, members: set[str]) -> list[dict[str, Any]]:
    """The members whose card payments come to CASH_OUT_TOTAL_MIN or more at an average of
    CASH_OUT_AVERAGE_MIN or more a payment: ``{account, amount, payments}``, largest first."""
    found = []
    for member in members:
        amount, payments = state.spending.get(member, (0.0, 0.0))
        if payments and amount >= CASH_OUT_TOTAL_MIN and amount / payments >= CASH_OUT_AVERAGE_MIN:
            found.append({"account": plain_id(member), "amount": round(amount, 2), "payments": int(payments)})
    return sorted(found, key=lambda c: (-c["amount"], c["account"]))


def _density(members: set[str], shared: list[dict[str, Any]]) -> float:
    if len(members) < 2:
        return 0.0
    linked = {pair for s in shared for pair in combinations(s["accounts"], 2)}
    return round(len(linked) / (len(members) * (len(members) - 1) / 2), 3)


def ring_score(
    size: int, density: float, flagged_share: float, link_types: Iterable[str], benign: bool
) -> float:
    """0..1: bigger, denser, already-flagged rings linked by personal identifiers score higher."""
    if size < 2:
        return 0.0
    components = {
        "size": min(1.0, (size - 1) / (FULL_SIZE - 1)),
        "density": density,
        "flagged_share": flagged_share,
        "link_strength": max((LINK_WEIGHTS.get(t, 0.5) for t in link_types), default=0.0),
    }
    score = sum(SCORE_WEIGHTS[k] * v for k, v in components.items())
    return round(min(score, BENIGN_SCORE_CAP) if benign else score, 3)


def analyse_ring(
    graph: GraphPort | GraphAccess, investigation: Investigation, limits: RingLimits | None = None
) -> dict[str, Any]:
    """The ring around the investigated entity (see the module docstring for the output)."""
    limits = limits or RingLimits()
    access = GraphAccess.of(graph)
    state = _Expansion(start=investigation.vertex_id, limits=limits)
    deadline = access.now() + limits.time_budget_ms / 1000.0
    try:
        _expand(state, access, deadline)
    except Exception as error:
        if not is_timeout(error):
            raise
        state.truncate("evaluation_timeout", f"a graph request exceeded its evaluation timeout: {error}")

    members = state.members
    shared = _shared(state)
    others = sorted(members - {state.start})
    flagged: list[str] = []
    independently: list[str] = []
    if members:
        rows = access.run(lambda g: g.flag_states(sorted(members)), "ring: flags of members")
        flagged = sorted(str(r["id"]) for r in rows if r["flagged"] is True)
        independently = sorted(
            str(r["id"]) for r in rows if r["flagged"] is True and r.get("reason") not in OWN_FLAG_REASONS
        )
    flagged_others = [m for m in flagged if m != state.start]
    flagged_share = round(len(flagged_others) / len(others), 3) if others else 0.0
    density = _density(members, shared)
    link_types = {s["type"] for s in shared}
    benign = (
        len(members) >= 2
        and not [m for m in independently if m != state.start]
        and investigation.rule not in HIGH_VALUE_RULES
        and investigation.severity != "critical"
        and bool(link_types)
        and (
            (
                link_types <= HOUSEHOLD_LINK_TYPES
                and (
                    (len(members) <= HOME_SIZE and schema.IP in link_types) or _everyone_has_own_device(state)
                )
            )
            or _one_home(members, shared)
            or _one_place(state, members, shared, access)
            or _family_card(state, members)
        )
    )
    return {
        "analysis": "ring",
        "start": {"type": investigation.entity_type, "id": investigation.entity_id},
        "members": sorted(plain_id(m) for m in members),
        "shared_identifiers": shared,
        "skipped_identifiers": sorted(
            (
                {"type": label, "id": plain_id(vid), "degree": degree}
                for vid, (label, degree) in state.skipped.items()
            ),
            key=lambda s: (s["type"], s["id"]),
        ),
        "flagged_members": sorted(plain_id(m) for m in flagged),
        "density": density,
        "flagged_share": flagged_share,
        "ring_score": ring_score(len(members), density, flagged_share, link_types, benign),
        "benign_cluster": benign,
        "cashing_out": _cashing_out(state, members),
        "hops": state.hops,
        "truncated": bool(state.truncation),
        "truncation": [{"reason": r, "detail": d} for r, d in sorted(state.truncation.items())],
        "requests": access.requests,
    }
