"""Planted fraud: rings, card testing, account takeover, mule chains and device farms.

High-value bursts sit inside one epoch-aligned 5-minute bin, card tests inside the first
minutes of a 30-minute-aligned span and device farms inside one clock hour (see
:mod:`.bursts`), so whether a window rule slides or uses aligned bins, it sees them whole.
"""

from __future__ import annotations

import itertools
import math

from .bursts import burst_start, burst_times, split_amount
from .ordinary import CARD_NOT_PRESENT, ordinary_activity, purchase, transfer
from .population import HOUR_MS, MINUTE_MS, Account
from .world import PlantedGroup, World

ATTACKER_COUNTRIES = ("RO", "BR", "NG", "VN", "ID")


def _high_value_burst(
    world: World, account: Account, start_ms: int, *, card: str, device: str, ip: str, country: str
) -> float:
    """3-6 online purchases in a few minutes summing to well over 50,000; returns the sum."""
    rng = world.rng
    count = rng.randint(3, 6)
    amounts = split_amount(world, rng.uniform(55_000, 85_000), count, floor=4_000)
    shops = world.merchants.pick_distinct(rng, 3)
    for index, (ms, amount) in enumerate(zip(burst_times(world, start_ms, count), amounts, strict=True)):
        world.timeline.emit(
            ms,
            account,
            amount,
            channel=CARD_NOT_PRESENT,
            country=country,
            merchant=shops[index % len(shops)],
            card=card,
            device=device,
            ip=ip,
        )
    return round(sum(amounts), 2)


# --- fraud rings -------------------------------------------------------------------------

_RING_IDENTIFIER_TYPES = ("device_id", "card_id", "email", "phone")


def plant_fraud_ring(world: World, group_id: str) -> PlantedGroup:
    """4-8 accounts linked through a mix of shared devices, cards, emails and phones.

    Member ``i`` holds shared identifiers ``i`` and ``i+1`` (modulo their number), so the
    members form one connected ring however many identifier types it uses.
    """
    rng, ids = world.rng, world.ids
    members = world.take_for_fraud(rng.randint(4, 8))
    types = rng.sample(_RING_IDENTIFIER_TYPES, rng.randint(2, 4))
    makers = {"device_id": ids.device, "card_id": ids.card, "email": ids.email, "phone": ids.phone}
    shared = {kind: makers[kind]() for kind in types}
    ring_card: dict[str, str] = {}
    ring_device: dict[str, str] = {}
    for index, member in enumerate(members):
        for kind in dict.fromkeys((types[index % len(types)], types[(index + 1) % len(types)])):
            if kind == "device_id":
                member.online_devices = [shared[kind]]
            elif kind == "card_id":
                member.cards = [shared[kind], *member.cards]
            elif kind == "email":
                member.email = shared[kind]
            else:
                member.phone = shared[kind]
        ring_card[member.account_id] = member.cards[0]
        ring_device[member.account_id] = member.online_devices[0]
        # A little ordinary-looking spending, so the accounts do not look brand new.
        member.daily_rate = rng.uniform(0.8, 2.0)
        member.contacts = []
        ordinary_activity(world.timeline, rng, member, world.clock, world.merchants)

    clock = world.clock
    burst_at = burst_start(world, clock.start_ms + 3 * HOUR_MS, clock.end_ms - 2 * HOUR_MS)
    bursters = members[: 2 if rng.random() < 0.5 else 1]
    burst_sums: dict[str, float] = {}
    for index, member in enumerate(bursters):
        start = burst_at if index == 0 else burst_start(world, burst_at - 2 * HOUR_MS, burst_at + 2 * HOUR_MS)
        burst_sums[member.account_id] = _high_value_burst(
            world,
            member,
            start,
            card=ring_card[member.account_id],
            device=ring_device[member.account_id],
            ip=member.home_ip,
            country=member.country,
        )
    for member in members[len(bursters) :]:
        # The others cash in too, below the burst threshold.
        for _ in range(rng.randint(2, 4)):
            world.timeline.emit(
                world.clip(burst_at + rng.randint(-2 * HOUR_MS, 2 * HOUR_MS)),
                member,
                rng.uniform(800, 6_000),
                channel=CARD_NOT_PRESENT,
                merchant=world.merchants.pick(rng),
                card=ring_card[member.account_id],
                device=ring_device[member.account_id],
                ip=member.home_ip,
            )
    for _ in range(rng.randint(2, 5)):
        sender, receiver = rng.sample(members, 2)
        transfer(
            world.timeline,
            rng,
            sender,
            receiver.account_id,
            world.clip(burst_at + rng.randint(-3 * HOUR_MS, 3 * HOUR_MS)),
            round(rng.uniform(1_000, 9_000), 2),
            device=ring_device[sender.account_id],
            ip=sender.home_ip,
        )
    return PlantedGroup(
        group_id,
        "fraud_ring",
        tuple(member.account_id for member in members),
        identifiers={kind: [value] for kind, value in shared.items()},
        roles={"bursters": [member.account_id for member in bursters]},
        facts={"burst_sums": burst_sums},
    )


# --- card testing ------------------------------------------------------------------------


def plant_card_testing(world: World, group_id: str) -> PlantedGroup:
    """One card tried with 8-20 tiny amounts at several merchants within minutes, then a big one."""
    rng, ids, clock = world.rng, world.ids, world.clock
    testers = world.take_for_fraud(1 if rng.random() < 0.5 else 2)
    card, device = ids.card(), ids.device()
    for tester in testers:
        tester.cards, tester.online_devices, tester.mobile_device = [card], [device], device
    start = burst_start(world, clock.start_ms + HOUR_MS, clock.end_ms - 2 * HOUR_MS, 30 * MINUTE_MS)
    shops = world.merchants.pick_distinct(rng, rng.randint(4, 8))
    tests = rng.randint(8, 20)
    for index, ms in enumerate(burst_times(world, start, tests)):
        world.timeline.emit(
            ms,
            testers[0],
            rng.uniform(0.5, 4.99),
            channel=CARD_NOT_PRESENT,
            merchant=shops[index % len(shops)],
            card=card,
            device=device,
            ip=testers[0].home_ip,
        )
    cash_out_at = start + rng.randint(15, 40) * MINUTE_MS
    big = round(rng.uniform(1_500, 6_000), 2)
    world.timeline.emit(
        cash_out_at,
        testers[-1],
        big,
        channel=CARD_NOT_PRESENT,
        merchant=world.merchants.pick(rng),
        card=card,
        device=device,
        ip=testers[-1].home_ip,
    )
    return PlantedGroup(
        group_id,
        "card_testing",
        tuple(tester.account_id for tester in testers),
        identifiers={"card_id": [card], "device_id": [device]},
        facts={"tests": tests, "test_start_ms": start, "cash_out_ms": cash_out_at, "cash_out_amount": big},
    )


# --- account takeover --------------------------------------------------------------------


def plant_account_takeover(world: World, group_id: str) -> PlantedGroup:
    """An ordinary account (with its usual history) taken over: a new device and IP, a probe,
    then a high-value burst on the victim's cards."""
    rng, ids, clock = world.rng, world.ids, world.clock
    # An active customer, who keeps its everyday spending: the history before the takeover.
    (victim,) = world.take(1, lambda account: account.daily_rate >= 3.0)
    period = clock.end_ms - clock.start_ms
    burst_at = burst_start(
        world, clock.start_ms + max(int(period * 0.4), 6 * HOUR_MS), clock.end_ms - HOUR_MS
    )
    for _ in range(2):
        purchase(
            world.timeline,
            rng,
            victim,
            world.merchants,
            clock.start_ms + rng.randrange(burst_at - HOUR_MS - clock.start_ms),
        )
    new_device, new_ip = ids.device(), ids.ip()
    country = rng.choice(ATTACKER_COUNTRIES) if rng.random() < 0.5 else victim.country
    # The real owner was online shortly before.
    world.timeline.emit(
        burst_at - rng.randint(30, 55) * MINUTE_MS,
        victim,
        rng.uniform(10, 120),
        channel=CARD_NOT_PRESENT,
        merchant=world.merchants.pick(rng),
        card=victim.cards[0],
        device=victim.online_devices[0],
        ip=victim.home_ip,
    )
    probe_at = burst_at - rng.randint(5, 25) * MINUTE_MS
    world.timeline.emit(
        probe_at,
        victim,
        rng.uniform(1, 30),
        channel=CARD_NOT_PRESENT,
        country=country,
        merchant=world.merchants.pick(rng),
        card=victim.cards[0],
        device=new_device,
        ip=new_ip,
    )
    burst_sum = _high_value_burst(
        world, victim, burst_at, card=victim.cards[-1], device=new_device, ip=new_ip, country=country
    )
    return PlantedGroup(
        group_id,
        "account_takeover",
        (victim.account_id,),
        identifiers={"device_id": [new_device], "ip": [new_ip]},
        facts={"takeover_ms": probe_at, "burst_ms": burst_at, "burst_sum": burst_sum},
    )


# --- mule chains -------------------------------------------------------------------------


def plant_mule_chain(world: World, group_id: str) -> PlantedGroup:
    """Fan-in: 4-6 feeders pay one mule; fan-out: the mule forwards in a burst to 2-3
    branches, each passing the money on through 2-3 hops, a little less each time."""
    rng, clock = world.rng, world.clock
    feeder_count, branch_count = rng.randint(4, 6), rng.randint(2, 3)
    depths = [rng.randint(2, 3) for _ in range(branch_count)]
    accounts = world.take_for_fraud(feeder_count + 1 + sum(depths))
    mule, feeders = accounts[0], accounts[1 : 1 + feeder_count]
    rest = accounts[1 + feeder_count :]
    branches = []
    for depth in depths:
        branches.append(rest[:depth])
        rest = rest[depth:]
    for account in accounts:
        account.daily_rate = rng.uniform(0.3, 1.2)
        account.contacts = []
        ordinary_activity(world.timeline, rng, account, clock, world.merchants)

    fan_in_at = clock.aligned(rng, clock.start_ms + 2 * HOUR_MS, clock.end_ms - 8 * HOUR_MS, HOUR_MS)
    paid_in = [rng.uniform(9_000, 16_000) for _ in feeders]
    if sum(paid_in) < 62_000:  # the mule must forward more than 50,000 in one go
        paid_in = [amount * 62_000 / sum(paid_in) * rng.uniform(1.0, 1.1) for amount in paid_in]
    paid_in = [round(amount, 2) for amount in paid_in]
    for feeder, amount in zip(feeders, paid_in, strict=True):
        transfer(world.timeline, rng, feeder, mule.account_id, fan_in_at + rng.randrange(HOUR_MS), amount)

    forward_at = burst_start(world, fan_in_at + 70 * MINUTE_MS, fan_in_at + 100 * MINUTE_MS)
    forwarded = split_amount(world, sum(paid_in) * rng.uniform(0.92, 0.97), branch_count)
    hops: list[list[str]] = []
    for branch, amount, sent_at in zip(
        branches, forwarded, burst_times(world, forward_at, branch_count), strict=True
    ):
        transfer(world.timeline, rng, mule, branch[0].account_id, sent_at, amount)
        for sender, receiver in itertools.pairwise(branch):
            sent_at += rng.randint(10, 60) * MINUTE_MS
            amount = round(amount * rng.uniform(0.9, 0.97), 2)
            transfer(world.timeline, rng, sender, receiver.account_id, sent_at, amount)
        _cash_out(world, branch[-1], sent_at, amount)
        hops.append([account.account_id for account in branch])
    return PlantedGroup(
        group_id,
        "mule_chain",
        tuple(account.account_id for account in accounts),
        roles={
            "mule": [mule.account_id],
            "feeders": [feeder.account_id for feeder in feeders],
            **{f"branch_{n}": branch for n, branch in enumerate(hops, start=1)},
        },
        facts={"paid_in": round(sum(paid_in), 2), "forwarded": round(sum(forwarded), 2)},
    )


def _cash_out(world: World, account: Account, received_at: int, received: float) -> None:
    """The end of a branch spends most of what it received (gift cards, crypto) soon after."""
    rng = world.rng
    payments = rng.randint(1, 3)
    amounts = split_amount(world, received * rng.uniform(0.8, 0.95), payments)
    spent_at = received_at + rng.randint(10, 90) * MINUTE_MS
    for ms in burst_times(world, spent_at, payments):
        world.timeline.emit(
            ms,
            account,
            amounts.pop(),
            channel=CARD_NOT_PRESENT,
            merchant=world.merchants.pick(rng),
            card=account.cards[0],
            device=account.online_devices[0],
            ip=account.home_ip,
        )


# --- device farms ------------------------------------------------------------------------


def plant_device_farm(world: World, group_id: str) -> PlantedGroup:
    """14-30 new accounts opened within one hour on a handful of devices (at least 10 on the
    main one), each making a few purchases straight away."""
    rng, ids, clock = world.rng, world.ids, world.clock
    accounts = world.take_for_fraud(rng.randint(14, 30))
    devices = [ids.device() for _ in range(rng.randint(1, 3))]
    proxies = [ids.ip() for _ in range(rng.randint(1, 3))]
    on_main = max(10, math.ceil(0.6 * len(accounts)))
    hour = clock.aligned(rng, clock.start_ms + HOUR_MS, clock.end_ms - HOUR_MS, HOUR_MS)
    for index, account in enumerate(accounts):
        device = devices[0] if index < on_main else devices[index % len(devices)]
        account.online_devices, account.mobile_device = [device], device
        ip = rng.choice(proxies)
        first = hour + rng.randint(1, 45) * MINUTE_MS + rng.randrange(MINUTE_MS)
        times = [first, *sorted(first + rng.randrange(10 * MINUTE_MS) for _ in range(rng.randint(1, 3)))]
        for ms in times:
            world.timeline.emit(
                ms,
                account,
                rng.uniform(15, 400),
                channel=CARD_NOT_PRESENT,
                merchant=world.merchants.pick(rng),
                card=account.cards[0],
                device=device,
                ip=ip,
            )
    return PlantedGroup(
        group_id,
        "device_farm",
        tuple(account.account_id for account in accounts),
        identifiers={"device_id": devices, "ip": proxies},
        roles={"main_device_accounts": [account.account_id for account in accounts[:on_main]]},
        facts={"hour_start_ms": hour},
    )
