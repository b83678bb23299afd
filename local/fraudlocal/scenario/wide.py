"""Wide worlds: every pattern's parameters drawn from wide ranges per seed, with variants.

A detector tuned on one generator fits that generator. In a wide world each planted group
draws its size (2 to 30 accounts), amounts (across orders of magnitude), timing (minutes to
hours), shared identifiers and transaction counts from wide ranges, and comes in variants:

- ``fraud_ring``: ``chain`` (members linked pairwise through two identifier types drawn
  from device, card, email and phone), ``hub`` (one identifier shared by everyone) and
  ``synthetic_identity`` (new accounts built from a small pool of emails and phones, no
  history, cashing out at once);
- ``account_takeover``: ``transfers`` (1-5 large transfers to a payee the victim never paid,
  from a new device and IP, sometimes a new country) and ``purchases`` (1-5 large online
  purchases, the same way); the beneficiary of the transfers is labelled too;
- ``mule_chain``: ``fan_in`` (2-30 sources feed a collector, which passes the money to 1-4
  cash-out accounts) and ``fan_out`` (a placement account splits a deposit among 2-20
  mules, each passing it on to a cash-out account or spending it);
- ``card_testing``: 5-25 tests under 5 within minutes, then 1-3 large purchases;
- ``device_farm``: 4-30 new accounts on 1-3 devices, opened within 20 minutes to 8 hours.

Confounders are harder in the same way: households of 2-6 people, families of 2-5 on one
card, offices of 3-15 colleagues on one workstation, VPN exits (an IP shared by people in
several countries), carrier NATs, big spenders, and travellers who spend big abroad on the
day they arrive (a new country, a new IP and a large amount, on their own phone).

Every labelled account carries its role in the group (``collector``, ``source``,
``cash_out``, ``victim``, ``beneficiary``, ``member``...).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from . import confounders
from .bursts import burst_start, burst_times, split_amount
from .ordinary import (
    CARD_NOT_PRESENT,
    CARD_PRESENT,
    MOBILE,
    TRANSFER,
    ordinary_activity,
    ordinary_amount,
    purchase,
    transfer,
)
from .population import DAY_MS, HOUR_MS, MINUTE_MS, TRAVEL_COUNTRIES, Account, Leg
from .world import PlantedGroup, World

ATTACKER_COUNTRIES = ("RO", "BR", "NG", "VN", "ID", "UA", "PH")

#: planted groups per 500 accounts in a wide world (at least one of each)
GROUPS_PER_500 = {
    "fraud_ring": 2,
    "card_testing": 1,
    "account_takeover": 3,
    "mule_chain": 2,
    "device_farm": 1,
    "household": 14,
    "public_ip": 1,
    "office_device": 2,
    "big_spender": 4,
    "traveller": 6,
    "shared_card_family": 3,
    "large_transfer": 2,
    "carrier_nat": 1,
}
#: fewest accounts a wide world can hold every pattern in
MIN_WIDE_ACCOUNTS = 300
#: at most this share of a world's accounts in any one group
_GROUP_SHARE = 0.06


def wide_group_counts(accounts: int) -> dict[str, int]:
    scale = accounts / 500
    return {pattern: max(1, round(per * scale)) for pattern, per in GROUPS_PER_500.items()}


def _log_uniform(world: World, lo: float, hi: float) -> float:
    return math.exp(world.rng.uniform(math.log(lo), math.log(hi)))


def _group_size(world: World, lo: int, hi: int) -> int:
    """A size in [lo, hi], small ones more likely, never more than a few percent of the world."""
    cap = max(lo, min(hi, int(len(world.accounts) * _GROUP_SHARE)))
    return min(cap, int(_log_uniform(world, lo, cap + 1)))


def _moment(world: World, lo_share: float, hi_share: float, room_ms: int = 0) -> int:
    clock = world.clock
    period = clock.end_ms - clock.start_ms
    lo = clock.start_ms + int(period * lo_share)
    hi = max(lo + 1, clock.start_ms + int(period * hi_share) - room_ms)
    return world.rng.randrange(lo, hi)


def _history(world: World, accounts: list[Account], rate: tuple[float, float] = (0.8, 2.0)) -> None:
    """A little ordinary-looking spending, so the accounts do not look brand new."""
    for account in accounts:
        account.daily_rate = world.rng.uniform(*rate)
        account.contacts = []
        ordinary_activity(world.timeline, world.rng, account, world.clock, world.merchants)


def _cash_out_purchases(
    world: World,
    account: Account,
    at_ms: int,
    total: float,
    *,
    device: str,
    ip: str,
    counts: tuple[int, int] = (1, 4),
) -> None:
    """``total`` spent online in a burst of ``counts`` (lowest, highest) purchases from ``at_ms``."""
    rng = world.rng
    count = rng.randint(*counts)
    for ms, amount in zip(burst_times(world, at_ms, count), split_amount(world, total, count), strict=True):
        world.timeline.emit(
            world.clip(ms),
            account,
            amount,
            channel=CARD_NOT_PRESENT,
            merchant=world.merchants.pick(rng),
            card=account.cards[0],
            device=device,
            ip=ip,
        )


# --- fraud rings -------------------------------------------------------------------------

_IDENTIFIER_TYPES = ("device_id", "card_id", "email", "phone")


def _give(world: World, member: Account, kind: str, value: str) -> None:
    if kind == "device_id":
        member.online_devices = [value]
        member.mobile_device = value
    elif kind == "card_id":
        member.cards = [value, *member.cards]
    elif kind == "email":
        member.email = value
    else:
        member.phone = value


def plant_ring(world: World, group_id: str) -> PlantedGroup:
    rng, ids = world.rng, world.ids
    variant = rng.choice(("chain", "chain", "hub", "synthetic_identity"))
    size = _group_size(world, 2, 30)
    members = world.take_for_fraud(size)
    makers = {"device_id": ids.device, "card_id": ids.card, "email": ids.email, "phone": ids.phone}
    identifiers: dict[str, list[str]] = {}
    if variant == "hub":
        kind = rng.choice(_IDENTIFIER_TYPES)
        value = makers[kind]()
        identifiers[kind] = [value]
        for member in members:
            _give(world, member, kind, value)
    else:
        kinds = (
            ("email", "phone") if variant == "synthetic_identity" else tuple(rng.sample(_IDENTIFIER_TYPES, 2))
        )
        # Blocks of k members share one value of the first type; the second type's values
        # straddle the blocks: one connected group whatever its size.
        block = rng.randint(2, 5)
        firsts = [makers[kinds[0]]() for _ in range(math.ceil(size / block))]
        seconds = [makers[kinds[1]]() for _ in range((size + block // 2) // block + 1)]
        for index, member in enumerate(members):
            _give(world, member, kinds[0], firsts[index // block])
            _give(world, member, kinds[1], seconds[(index + block // 2) // block])
        used = sorted({(index + block // 2) // block for index in range(size)})
        identifiers = {kinds[0]: firsts, kinds[1]: [seconds[n] for n in used]}
    if variant == "synthetic_identity":
        for member in members:  # new accounts: nothing before the cash-out
            member.contacts = []
    else:
        _history(world, members)
    clock = world.clock
    total = _log_uniform(world, 20_000, 250_000)
    bursters = members[: max(1, min(len(members), rng.randint(1, 3)))]
    shares = split_amount(world, total, len(bursters))
    burst_at = burst_start(world, clock.start_ms + 3 * HOUR_MS, clock.end_ms - 2 * HOUR_MS)
    for index, (member, share) in enumerate(zip(bursters, shares, strict=True)):
        start = burst_at if index == 0 else world.clip(burst_at + rng.randint(-2, 2) * HOUR_MS)
        _cash_out_purchases(
            world, member, start, share, device=member.online_devices[0], ip=member.home_ip, counts=(2, 6)
        )
    for member in members[len(bursters) :]:
        for _ in range(rng.randint(1, 4)):
            world.timeline.emit(
                world.clip(burst_at + rng.randint(-3 * HOUR_MS, 3 * HOUR_MS)),
                member,
                _log_uniform(world, 200, 8_000),
                channel=CARD_NOT_PRESENT,
                merchant=world.merchants.pick(rng),
                card=member.cards[0],
                device=member.online_devices[0],
                ip=member.home_ip,
            )
    if len(members) >= 2:
        for _ in range(rng.randint(0, 4)):
            sender, receiver = rng.sample(members, 2)
            transfer(
                world.timeline,
                rng,
                sender,
                receiver.account_id,
                world.clip(burst_at + rng.randint(-3 * HOUR_MS, 3 * HOUR_MS)),
                round(_log_uniform(world, 300, 20_000), 2),
                device=sender.online_devices[0],
                ip=sender.home_ip,
            )
    return PlantedGroup(
        group_id,
        "fraud_ring",
        tuple(member.account_id for member in members),
        identifiers=identifiers,
        roles={
            "burster": [m.account_id for m in bursters],
            "member": [m.account_id for m in members[len(bursters) :]],
        },
        facts={"cash_out_total": round(total, 2), "size": size},
        variant=variant,
    )


# --- card testing ------------------------------------------------------------------------


def plant_card_testing(world: World, group_id: str) -> PlantedGroup:
    rng, ids, clock = world.rng, world.ids, world.clock
    testers = world.take_for_fraud(rng.randint(1, 3))
    card, device = ids.card(), ids.device()
    for tester in testers:
        tester.cards, tester.online_devices, tester.mobile_device = [card], [device], device
    start = burst_start(world, clock.start_ms + HOUR_MS, clock.end_ms - 2 * HOUR_MS, 30 * MINUTE_MS)
    tests = rng.randint(5, 25)
    spread = rng.choice((2, 4, 8)) * MINUTE_MS  # within a 10-minute window, however spread
    shops = world.merchants.pick_distinct(rng, rng.randint(2, 8))
    for index in range(tests):
        world.timeline.emit(
            start + rng.randrange(spread),
            testers[index % len(testers)],
            rng.uniform(0.3, 4.99),
            channel=CARD_NOT_PRESENT,
            merchant=shops[index % len(shops)],
            card=card,
            device=device,
            ip=testers[0].home_ip,
        )
    for _ in range(rng.randint(1, 3)):
        casher = rng.choice(testers)
        world.timeline.emit(
            world.clip(start + rng.randint(12, 240) * MINUTE_MS),
            casher,
            _log_uniform(world, 300, 9_000),
            channel=CARD_NOT_PRESENT,
            merchant=world.merchants.pick(rng),
            card=card,
            device=device,
            ip=casher.home_ip,
        )
    return PlantedGroup(
        group_id,
        "card_testing",
        tuple(t.account_id for t in testers),
        identifiers={"card_id": [card], "device_id": [device]},
        roles={"tester": [t.account_id for t in testers]},
        facts={"tests": tests, "test_start_ms": start},
        variant="spread" if spread > 4 * MINUTE_MS else "burst",
    )


# --- account takeover --------------------------------------------------------------------


def plant_takeover(world: World, group_id: str) -> PlantedGroup:
    """An active customer's account, taken over: 1-5 large transactions from a new device and a
    new IP (and, half the time, a new country), to a payee never paid before or online shops."""
    rng, ids = world.rng, world.ids
    variant = rng.choice(("transfers", "purchases"))
    # Intruders go for accounts worth taking: active customers, with their everyday history.
    (victim,) = world.take(1, lambda account: account.daily_rate >= 2.0 and account.itinerary is None)
    victim.daily_rate = rng.uniform(5.0, 12.0)
    beneficiary = world.take_for_fraud(1)[0] if variant == "transfers" else None
    if beneficiary is not None:
        beneficiary.contacts = []
        _history(world, [beneficiary], (0.3, 1.0))
    # The intruder comes in late enough for the owner's everyday spending to be its history.
    at = _moment(world, 0.5, 0.95, HOUR_MS)
    new_device, new_ip = ids.device(), ids.ip()
    country = rng.choice(ATTACKER_COUNTRIES) if rng.random() < 0.5 else victim.country
    count = rng.randint(1, 5)
    habit = math.exp(victim.amount_mu)
    total = max(_log_uniform(world, 1_500, 80_000), habit * 10 * count)
    gaps = sorted(rng.randrange(rng.choice((10, 30, 60)) * MINUTE_MS) for _ in range(count))
    for gap, amount in zip(gaps, split_amount(world, total, count), strict=True):
        if beneficiary is not None:
            world.timeline.emit(
                at + gap,
                victim,
                amount,
                channel=TRANSFER,
                country=country,
                device=new_device,
                ip=new_ip,
                counterparty=beneficiary.account_id,
            )
        else:
            world.timeline.emit(
                at + gap,
                victim,
                amount,
                channel=CARD_NOT_PRESENT,
                country=country,
                merchant=world.merchants.pick(rng),
                card=victim.cards[-1],
                device=new_device,
                ip=new_ip,
            )
    if beneficiary is not None:  # the beneficiary moves the money on soon after
        _cash_out_purchases(
            world,
            beneficiary,
            at + gaps[-1] + rng.randint(10, 120) * MINUTE_MS,
            total * rng.uniform(0.7, 0.95),
            device=beneficiary.online_devices[0],
            ip=beneficiary.home_ip,
        )
    members = (victim.account_id,) + ((beneficiary.account_id,) if beneficiary else ())
    roles = {"victim": [victim.account_id]}
    if beneficiary is not None:
        roles["beneficiary"] = [beneficiary.account_id]
    return PlantedGroup(
        group_id,
        "account_takeover",
        members,
        identifiers={"device_id": [new_device], "ip": [new_ip]},
        roles=roles,
        facts={"takeover_ms": at, "transactions": count, "total": round(total, 2), "country": country},
        variant=variant,
    )


# --- mule networks -----------------------------------------------------------------------


def _forward(world: World, sender: Account, receiver: Account, at_ms: int, amount: float) -> None:
    transfer(world.timeline, world.rng, sender, receiver.account_id, world.clip(at_ms), round(amount, 2))


def plant_mule_network(world: World, group_id: str) -> PlantedGroup:
    rng = world.rng
    variant = rng.choice(("fan_in", "fan_out"))
    fan = _group_size(world, 2, 30)
    ends = rng.randint(1, 4) if variant == "fan_in" else 0
    accounts = world.take_for_fraud(1 + fan + ends + (1 if variant == "fan_out" else 0))
    _history(world, accounts, (0.3, 1.2))
    hub, spokes, rest = accounts[0], accounts[1 : 1 + fan], accounts[1 + fan :]
    start = _moment(world, 0.1, 0.7, 8 * HOUR_MS)
    spread = rng.choice((15, 60, 180)) * MINUTE_MS
    roles: dict[str, list[str]] = {}
    if variant == "fan_in":
        per_source = _log_uniform(world, max(300, 12_000 / fan), 15_000)
        received = 0.0
        for source in spokes:
            amount = round(per_source * rng.uniform(0.6, 1.4), 2)
            received += amount
            _forward(world, source, hub, start + rng.randrange(spread), amount)
        forward_at = start + spread + rng.randint(5, 90) * MINUTE_MS
        for end, share in zip(
            rest, split_amount(world, received * rng.uniform(0.85, 0.97), len(rest)), strict=True
        ):
            _forward(world, hub, end, forward_at + rng.randrange(10 * MINUTE_MS), share)
            _cash_out_purchases(
                world,
                end,
                forward_at + rng.randint(15, 120) * MINUTE_MS,
                share * rng.uniform(0.8, 0.95),
                device=end.online_devices[0],
                ip=end.home_ip,
            )
        roles = {
            "collector": [hub.account_id],
            "source": [s.account_id for s in spokes],
            "cash_out": [e.account_id for e in rest],
        }
    else:
        (depositor,) = rest
        deposit = round(_log_uniform(world, 12_000, 200_000), 2)
        _forward(world, depositor, hub, start, deposit)
        split_at = start + rng.randint(10, 120) * MINUTE_MS
        for mule, share in zip(
            spokes, split_amount(world, deposit * rng.uniform(0.85, 0.97), fan), strict=True
        ):
            _forward(world, hub, mule, split_at + rng.randrange(spread), share)
            _cash_out_purchases(
                world,
                mule,
                split_at + spread + rng.randint(10, 180) * MINUTE_MS,
                share * rng.uniform(0.8, 0.95),
                device=mule.online_devices[0],
                ip=mule.home_ip,
            )
        roles = {
            "placement": [hub.account_id],
            "depositor": [depositor.account_id],
            "mule": [m.account_id for m in spokes],
        }
    return PlantedGroup(
        group_id,
        "mule_chain",
        tuple(a.account_id for a in accounts),
        roles=roles,
        facts={"start_ms": start, "spread_ms": spread},
        variant=variant,
    )


# --- device farms ------------------------------------------------------------------------


def plant_device_farm(world: World, group_id: str) -> PlantedGroup:
    rng, ids = world.rng, world.ids
    accounts = world.take_for_fraud(_group_size(world, 4, 30))
    devices = [ids.device() for _ in range(rng.randint(1, 3))]
    proxies = [ids.ip() for _ in range(rng.randint(1, 4))]
    spread = rng.choice((20, 60, 180, 480)) * MINUTE_MS
    start = _moment(world, 0.05, 0.9, spread + HOUR_MS)
    # Each device carries at least four accounts: a farm is many accounts per device.
    per_device = max(4, math.ceil(len(accounts) / len(devices)))
    for index, account in enumerate(accounts):
        device = devices[min(len(devices) - 1, index // per_device)]
        account.online_devices, account.mobile_device = [device], device
        account.contacts = []
        first = start + rng.randrange(spread)
        for ms in [first, *(first + rng.randrange(20 * MINUTE_MS) for _ in range(rng.randint(0, 4)))]:
            world.timeline.emit(
                world.clip(ms),
                account,
                _log_uniform(world, 10, 900),
                channel=CARD_NOT_PRESENT,
                merchant=world.merchants.pick(rng),
                card=account.cards[0],
                device=device,
                ip=rng.choice(proxies),
            )
    return PlantedGroup(
        group_id,
        "device_farm",
        tuple(a.account_id for a in accounts),
        identifiers={"device_id": devices, "ip": proxies},
        roles={"farm_account": [a.account_id for a in accounts]},
        facts={"start_ms": start, "spread_ms": spread},
        variant="one_device" if len(devices) == 1 else "several_devices",
    )


# --- confounders -------------------------------------------------------------------------


def plant_household(world: World, group_id: str) -> PlantedGroup:
    """2-6 people at one address (one home IP, one family computer, money between them),
    half of them with a large one-off payment (a sofa, a holiday) from the family computer."""
    rng = world.rng
    group = confounders.plant_household(world, group_id, sizes=(2, 6))
    facts = {}
    if rng.random() < 0.5:
        buyer = world.accounts[rng.choice(group.members)]
        at = _moment(world, 0.5, 0.95)
        amount = round(_log_uniform(world, 1_500, 12_000), 2)
        (home_ip,), (family_device,) = group.identifiers["ip"], group.identifiers["device_id"]
        world.timeline.emit(
            at,
            buyer,
            amount,
            channel=CARD_NOT_PRESENT,
            merchant=world.merchants.pick(rng),
            card=buyer.cards[0],
            device=family_device,
            ip=home_ip,
        )
        facts = {"one_off": {"account": buyer.account_id, "amount": amount, "ms": at}}
    return replace(group, facts=facts, variant="large" if len(group.members) > 3 else "small")


def plant_vpn_or_public_ip(world: World, group_id: str) -> PlantedGroup:
    """A cafe's IP, or a VPN exit: people in several countries on one IP, each on their phone."""
    rng, ids, clock = world.rng, world.ids, world.clock
    vpn = rng.random() < 0.5
    members = world.take(min(_group_size(world, 20, 200), len(world.unassigned) // 3))
    shared_ip = ids.ip()
    shops = world.merchants.pick_distinct(rng, 4)
    rush = clock.aligned(rng, clock.start_ms + 7 * HOUR_MS, clock.end_ms - 2 * HOUR_MS, HOUR_MS)
    for member in members:
        for _ in range(rng.randint(1, 3)):
            at = rush + rng.randrange(50 * MINUTE_MS) if rng.random() < 0.25 else _moment(world, 0.0, 1.0)
            world.timeline.emit(
                world.clip(at),
                member,
                ordinary_amount(rng, member) if vpn else max(1.0, rng.lognormvariate(2.0, 0.6)),
                channel=MOBILE if not vpn else CARD_NOT_PRESENT,
                country=member.country,
                merchant=world.merchants.pick(rng) if vpn else rng.choice(shops),
                card=member.cards[0],
                device=member.mobile_device,
                ip=shared_ip,
            )
    return PlantedGroup(
        group_id,
        "public_ip",
        tuple(m.account_id for m in members),
        identifiers={"ip": [shared_ip]},
        roles={"network_user": [m.account_id for m in members]},
        variant="vpn_exit" if vpn else "public_wifi",
    )


def plant_office(world: World, group_id: str) -> PlantedGroup:
    group = confounders.plant_office_device(world, group_id, sizes=(3, _group_size(world, 3, 15)))
    return replace(group, variant="large" if len(group.members) > 6 else "small")


def plant_big_spending_traveller(world: World, group_id: str) -> PlantedGroup:
    """Someone who flies abroad and, the day they land, spends big on their own phone: a new
    country and a new IP with large amounts, but the device they always use."""
    rng, ids, clock = world.rng, world.ids, world.clock
    (traveller,) = world.take(1, lambda account: account.itinerary is None)
    traveller.amount_mu = rng.gauss(4.5, 0.4)
    traveller.amount_cap = 6_000.0
    leave_at = _moment(world, 0.25, 0.6)
    country = rng.choice([c for c in TRAVEL_COUNTRIES if c != traveller.country])
    hotel_ip = ids.ip()
    landed = leave_at + rng.randint(2, 8) * HOUR_MS
    legs = [
        Leg(clock.start_ms, clock.start_ms, traveller.country, None),
        Leg(leave_at, landed, country, hotel_ip),
    ]
    traveller.set_itinerary(legs)
    facts = {"country": country, "landed_ms": landed}
    variant = "ordinary_amounts"
    if rng.random() < 0.6 and landed + 2 * HOUR_MS < clock.end_ms:
        variant = "spends_big"
        for ms in sorted(landed + rng.randrange(6 * HOUR_MS) for _ in range(rng.randint(1, 3))):
            if ms < clock.end_ms:
                world.timeline.emit(
                    ms,
                    traveller,
                    _log_uniform(world, 1_500, 15_000),
                    channel=rng.choice((CARD_PRESENT, MOBILE)),
                    country=country,
                    merchant=world.merchants.pick(rng),
                    card=traveller.cards[0],
                    device=traveller.mobile_device,
                    ip=hotel_ip,
                )
    if landed < clock.end_ms:
        purchase(world.timeline, rng, traveller, world.merchants, world.clip(landed + rng.randrange(HOUR_MS)))
    return PlantedGroup(
        group_id,
        "traveller",
        (traveller.account_id,),
        identifiers={"ip": [hotel_ip]},
        roles={"traveller": [traveller.account_id]},
        facts=facts,
        variant=variant,
    )


def plant_family_card(world: World, group_id: str) -> PlantedGroup:
    """2-5 people of one family on one card, often one email or phone too, at one home."""
    group = confounders.plant_shared_card_family(world, group_id, sizes=(2, 5))
    return replace(group, variant="large" if len(group.members) > 3 else "small")


def plant_carrier_nat(world: World, group_id: str) -> PlantedGroup:
    most = min(_group_size(world, 15, 80), len(world.unassigned) // 3)
    return confounders.plant_carrier_nat(world, group_id, sizes=(min(15, most), most))


def plant_large_transfer(world: World, group_id: str) -> PlantedGroup:
    return confounders.plant_large_transfer(world, group_id, amounts=(3_000, 60_000))


def plant_big_spender(world: World, group_id: str) -> PlantedGroup:
    rng, clock = world.rng, world.clock
    (spender,) = world.take(1)
    spender.amount_mu = rng.gauss(5.3, 0.5)
    spender.amount_cap = 12_000.0
    for _ in range(rng.randint(1, 3)):
        purchase(
            world.timeline,
            rng,
            spender,
            world.merchants,
            clock.start_ms + rng.randrange(clock.end_ms - clock.start_ms),
            amount=_log_uniform(world, 3_000, 40_000),
        )
    return PlantedGroup(
        group_id, "big_spender", (spender.account_id,), roles={"spender": [spender.account_id]}
    )


#: the wide world's planters, fraud-only groups first (a takeover's victim is an ordinary
#: customer, taken after them, and confounders take ordinary people too)
WIDE_PLANTERS: dict[str, Callable[[World, str], PlantedGroup]] = {
    "fraud_ring": plant_ring,
    "card_testing": plant_card_testing,
    "mule_chain": plant_mule_network,
    "device_farm": plant_device_farm,
    "account_takeover": plant_takeover,
    "household": plant_household,
    "public_ip": plant_vpn_or_public_ip,
    "office_device": plant_office,
    "traveller": plant_big_spending_traveller,
    "shared_card_family": plant_family_card,
    "large_transfer": plant_large_transfer,
    "carrier_nat": plant_carrier_nat,
    "big_spender": plant_big_spender,
}

__all__ = ["DAY_MS", "MIN_WIDE_ACCOUNTS", "WIDE_PLANTERS", "wide_group_counts"]
