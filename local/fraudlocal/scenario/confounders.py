"""Confounders: ordinary people whose behaviour looks like fraud to a naive detector.

They change an account's profile (shared identifiers, bigger amounts, an itinerary) and
add the events that make the resemblance certain; everyday spending is added later for
them as for everyone.
"""

from __future__ import annotations

from .bursts import BURST_SPAN_MS, burst_start, burst_times, split_amount
from .ordinary import CARD_NOT_PRESENT, CARD_PRESENT, MOBILE, ordinary_amount, purchase, transfer
from .population import DAY_MS, HOUR_MS, MINUTE_MS, TRAVEL_COUNTRIES, Leg
from .world import PlantedGroup, World


def plant_household(world: World, group_id: str, *, sizes: tuple[int, int] = (2, 3)) -> PlantedGroup:
    """2-3 people (``sizes``) at one address: one home IP, one family laptop, money sent between them."""
    rng, ids, clock = world.rng, world.ids, world.clock
    members = world.take(rng.randint(*sizes))
    home_ip, family_device = ids.ip(), ids.device()
    for member in members:
        member.home_ip = home_ip
        member.shared_device = family_device
        member.contacts = [other.account_id for other in members if other is not member]
        # Certain evidence of the sharing, whatever the random spending below does.
        world.timeline.emit(
            clock.start_ms + rng.randrange(clock.end_ms - clock.start_ms),
            member,
            ordinary_amount(rng, member),
            channel=CARD_NOT_PRESENT,
            merchant=world.merchants.pick(rng),
            card=member.cards[0],
            device=family_device,
            ip=home_ip,
        )
    return PlantedGroup(
        group_id,
        "household",
        tuple(member.account_id for member in members),
        identifiers={"ip": [home_ip], "device_id": [family_device]},
    )


def plant_public_ip(world: World, group_id: str) -> PlantedGroup:
    """A cafe, airport or campus NAT: 120-200 people pay from their phones behind one IP,
    some of them in the same rush hour (enough to look like an IP burst)."""
    rng, ids, clock = world.rng, world.ids, world.clock
    members = world.take(min(rng.randint(120, 200), len(world.unassigned)))
    public_ip = ids.ip()
    venue_shops = world.merchants.pick_distinct(rng, 3)
    rush_day = rng.randrange(clock.days)
    rush_hour = clock.aligned(
        rng, clock.day_start(rush_day) + 7 * HOUR_MS, clock.day_start(rush_day) + 19 * HOUR_MS, HOUR_MS
    )
    for member in members:
        for _ in range(rng.randint(1, 3)):
            if rng.random() < 0.2:
                visit = rush_hour + rng.randrange(50 * MINUTE_MS)
            else:
                visit = clock.day_start(rng.randrange(clock.days)) + rng.randint(7, 19) * HOUR_MS
                visit += rng.randrange(HOUR_MS)
            for purchase_at in range(rng.randint(1, 2)):
                world.timeline.emit(
                    world.clip(visit + purchase_at * rng.randint(1, 10) * MINUTE_MS),
                    member,
                    max(1.0, rng.lognormvariate(2.0, 0.6)),
                    channel=MOBILE,
                    merchant=rng.choice(venue_shops),
                    card=member.cards[0],
                    device=member.mobile_device,
                    ip=public_ip,
                )
    return PlantedGroup(
        group_id,
        "public_ip",
        tuple(member.account_id for member in members),
        identifiers={"ip": [public_ip]},
        facts={"rush_hour_ms": rush_hour},
    )


def plant_office_device(world: World, group_id: str, *, sizes: tuple[int, int] = (3, 6)) -> PlantedGroup:
    """3-6 colleagues (``sizes``) who all pay from one office workstation, during working hours."""
    rng, ids, clock = world.rng, world.ids, world.clock
    colleagues = world.take(rng.randint(*sizes))
    office_device, office_ip = ids.device(), ids.ip()
    for colleague in colleagues:
        for day in range(clock.days):
            for _ in range(rng.randint(1, 3)):
                at = clock.day_start(day) + rng.randint(9, 16) * HOUR_MS + rng.randrange(HOUR_MS)
                world.timeline.emit(
                    at,
                    colleague,
                    ordinary_amount(rng, colleague),
                    channel=CARD_NOT_PRESENT,
                    merchant=world.merchants.pick(rng),
                    card=colleague.cards[0],
                    device=office_device,
                    ip=office_ip,
                )
    return PlantedGroup(
        group_id,
        "office_device",
        tuple(colleague.account_id for colleague in colleagues),
        identifiers={"device_id": [office_device], "ip": [office_ip]},
    )


def plant_big_spender(world: World, group_id: str, *, once_above_threshold: bool) -> PlantedGroup:
    """A wealthy customer: larger everyday amounts and a few large purchases in person.

    With ``once_above_threshold`` the customer also buys something very expensive (a car,
    jewellery) in two or three payments in a few minutes, more than 50,000 in all: a
    legitimate high-value burst. Only a few are planted (one per 2,000 accounts).
    """
    rng, clock = world.rng, world.clock
    (spender,) = world.take(1)
    spender.amount_mu = rng.gauss(5.3, 0.3)
    spender.amount_cap = 8_000.0
    period = clock.end_ms - clock.start_ms
    for _ in range(rng.randint(1, 2)):
        purchase(
            world.timeline,
            rng,
            spender,
            world.merchants,
            clock.start_ms + rng.randrange(period),
            amount=rng.uniform(5_000, 20_000),
        )
    facts: dict[str, object] = {}
    if once_above_threshold:
        start = burst_start(world, clock.start_ms + HOUR_MS, clock.end_ms - HOUR_MS)
        payments = rng.randint(2, 3)
        amounts = split_amount(world, rng.uniform(51_000, 62_000), payments, floor=10_000)
        dealer = world.merchants.pick(rng)
        for ms, amount in zip(burst_times(world, start, payments), amounts, strict=True):
            world.timeline.emit(
                ms, spender, amount, channel=CARD_PRESENT, merchant=dealer, card=spender.cards[0]
            )
        facts = {"burst_ms": start, "burst_sum": round(sum(amounts), 2), "burst_span_ms": BURST_SPAN_MS}
    return PlantedGroup(group_id, "big_spender", (spender.account_id,), facts=facts)


def plant_traveller(world: World, group_id: str) -> PlantedGroup:
    """Someone abroad: a new country every half day or more, with hours of travel between."""
    rng, ids, clock = world.rng, world.ids, world.clock
    (traveller,) = world.take(1)
    period = clock.end_ms - clock.start_ms
    legs = [Leg(clock.start_ms, clock.start_ms, traveller.country, None)]
    leave_at = clock.start_ms + rng.randint(6 * HOUR_MS, max(7 * HOUR_MS, min(20 * HOUR_MS, period // 2)))
    while leave_at + 6 * HOUR_MS < clock.end_ms and len(legs) < 5:
        country = rng.choice([c for c in TRAVEL_COUNTRIES if c != legs[-1].country])
        legs.append(Leg(leave_at, leave_at + rng.randint(3, 6) * HOUR_MS, country, ids.ip()))
        leave_at += rng.randint(12 * HOUR_MS, int(1.5 * DAY_MS))
    traveller.set_itinerary(legs)
    for leg, next_leg in zip(legs, [*legs[1:], None], strict=True):
        # At least one payment in every country, home included.
        until = next_leg.start_ms if next_leg else clock.end_ms
        if until > leg.settled_ms:
            at = leg.settled_ms + rng.randrange(min(2 * HOUR_MS, until - leg.settled_ms))
            purchase(world.timeline, rng, traveller, world.merchants, at)
    return PlantedGroup(
        group_id,
        "traveller",
        (traveller.account_id,),
        identifiers={"ip": [leg.ip for leg in legs if leg.ip]},
        facts={"countries": [leg.country for leg in legs], "legs_ms": [leg.start_ms for leg in legs]},
    )


def plant_shared_card_family(world: World, group_id: str, *, sizes: tuple[int, int] = (2, 3)) -> PlantedGroup:
    """2-3 people (``sizes``) of one household on one card (a partner's or a parent's), often
    with one family email or phone too: a home IP, a family computer and ordinary spending,
    but the card, email or phone is used by more than one account, as in a ring."""
    rng, ids, clock = world.rng, world.ids, world.clock
    members = world.take(rng.randint(*sizes))
    home_ip, family_device, family_card = ids.ip(), ids.device(), ids.card()
    identifiers: dict[str, list[str]] = {
        "ip": [home_ip],
        "device_id": [family_device],
        "card_id": [family_card],
    }
    shared_contact = rng.choice(("email", "phone", "email", "phone", None))
    contact_value = {"email": ids.email, "phone": ids.phone}[shared_contact]() if shared_contact else None
    if shared_contact and contact_value:
        identifiers[shared_contact] = [contact_value]
    for member in members:
        member.country = members[0].country
        member.home_ip = home_ip
        member.shared_device = family_device
        member.cards = [family_card, *member.cards]  # the family card is everyone's everyday card
        member.contacts = [other.account_id for other in members if other is not member]
        if shared_contact == "email" and contact_value:
            member.email = contact_value
        elif shared_contact == "phone" and contact_value:
            member.phone = contact_value
    # Certain evidence: everyone pays with the family card from home within the same evening.
    evening = clock.day_start(rng.randrange(clock.days)) + rng.randint(17, 21) * HOUR_MS
    for member in members:
        world.timeline.emit(
            world.clip(evening + rng.randrange(HOUR_MS)),
            member,
            ordinary_amount(rng, member),
            channel=CARD_NOT_PRESENT,
            merchant=world.merchants.pick(rng),
            card=family_card,
            device=family_device,
            ip=home_ip,
        )
    return PlantedGroup(
        group_id,
        "shared_card_family",
        tuple(member.account_id for member in members),
        identifiers=identifiers,
    )


def plant_large_transfer(
    world: World, group_id: str, *, amounts: tuple[float, float] = (8_000, 40_000)
) -> PlantedGroup:
    """One legitimate large transfer, 8,000-40,000 (``amounts``), between two ordinary
    accounts (a rent deposit, a car bought from a friend); the receiver keeps the money."""
    rng, clock = world.rng, world.clock
    sender, receiver = world.take(2)
    amount = round(rng.uniform(*amounts), -1)
    sent_at = (
        clock.day_start(rng.randrange(clock.days)) + rng.randint(8, 20) * HOUR_MS + rng.randrange(HOUR_MS)
    )
    transfer(world.timeline, rng, sender, receiver.account_id, world.clip(sent_at), amount)
    # The receiver keeps it: only everyday spending and small transfers follow.
    return PlantedGroup(
        group_id,
        "large_transfer",
        (sender.account_id, receiver.account_id),
        roles={"sender": [sender.account_id], "receiver": [receiver.account_id]},
        facts={"amount": amount, "sent_ms": sent_at},
    )


def plant_carrier_nat(world: World, group_id: str, *, sizes: tuple[int, int] = (40, 80)) -> PlantedGroup:
    """A mobile carrier's NAT: 40-80 subscribers (``sizes``) whose phones go out through one
    IP, at any hour, alongside their own home networks."""
    rng, ids, clock = world.rng, world.ids, world.clock
    members = world.take(min(rng.randint(*sizes), len(world.unassigned)))
    nat_ip = ids.ip()
    for member in members:
        member.mobile_ip = nat_ip  # everyday mobile payments use it too (see ordinary.purchase)
        world.timeline.emit(
            clock.start_ms + rng.randrange(clock.end_ms - clock.start_ms),
            member,
            ordinary_amount(rng, member),
            channel=MOBILE,
            merchant=world.merchants.pick(rng),
            card=member.cards[0],
            device=member.mobile_device,
            ip=nat_ip,
        )
    return PlantedGroup(
        group_id,
        "carrier_nat",
        tuple(member.account_id for member in members),
        identifiers={"ip": [nat_ip]},
    )
