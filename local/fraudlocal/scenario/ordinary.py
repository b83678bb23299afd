"""Everyday behaviour: purchases at merchants and small transfers between friends and family."""

from __future__ import annotations

import random
from bisect import bisect_right

from .population import Account, Clock, Merchants, poisson, time_of_day_ms
from .timeline import Timeline

CARD_PRESENT = "card_present"
CARD_NOT_PRESENT = "card_not_present"
MOBILE = "mobile"
TRANSFER = "transfer"

_CHANNELS = (CARD_PRESENT, CARD_NOT_PRESENT, MOBILE)
_CHANNEL_CUM = (0.45, 0.80, 1.0)


def ordinary_amount(rng: random.Random, account: Account) -> float:
    return min(account.amount_cap, max(0.5, rng.lognormvariate(account.amount_mu, account.amount_sigma)))


def pick_card(rng: random.Random, account: Account) -> str:
    # The first card is the everyday one.
    if len(account.cards) == 1 or rng.random() < 0.85:
        return account.cards[0]
    return rng.choice(account.cards[1:])


def online_device(rng: random.Random, account: Account) -> str:
    if account.shared_device is not None and rng.random() < 0.5:
        return account.shared_device
    return rng.choice(account.online_devices)


def purchase(
    tl: Timeline,
    rng: random.Random,
    account: Account,
    merchants: Merchants,
    ms: int,
    amount: float | None = None,
) -> None:
    """One purchase at a popular merchant, through the channel the moment suggests."""
    where = account.location(ms)
    if where is None:  # on a plane
        return
    country, away_ip = where
    channel = _CHANNELS[bisect_right(_CHANNEL_CUM, rng.random())]
    device = ip = None
    if channel == CARD_NOT_PRESENT:
        device = online_device(rng, account)
        ip = away_ip or account.home_ip
    elif channel == MOBILE:
        device = account.mobile_device
        ip = away_ip or (account.mobile_ip if account.mobile_ip and rng.random() < 0.6 else account.home_ip)
    tl.emit(
        ms,
        account,
        ordinary_amount(rng, account) if amount is None else amount,
        channel=channel,
        country=country,
        merchant=merchants.pick(rng),
        card=pick_card(rng, account),
        device=device,
        ip=ip,
    )


def transfer(
    tl: Timeline,
    rng: random.Random,
    account: Account,
    counterparty: str,
    ms: int,
    amount: float,
    *,
    device: str | None = None,
    ip: str | None = None,
) -> None:
    """An account-to-account transfer, made from the sender's phone unless told otherwise."""
    where = account.location(ms)
    country, away_ip = where if where is not None else (account.country, None)
    tl.emit(
        ms,
        account,
        amount,
        channel=TRANSFER,
        country=country,
        device=device or account.mobile_device,
        ip=ip or away_ip or account.mobile_ip or account.home_ip,
        counterparty=counterparty,
    )


def ordinary_activity(
    tl: Timeline, rng: random.Random, account: Account, clock: Clock, merchants: Merchants
) -> None:
    """The account's day-to-day spending over the whole period."""
    for day in range(clock.days):
        base = clock.day_start(day)
        for _ in range(poisson(rng, account.daily_rate)):
            purchase(tl, rng, account, merchants, base + time_of_day_ms(rng))
        if account.contacts and rng.random() < account.transfer_rate:
            # Paying back a friend or a relative: small, rare, round-ish sums.
            amount = round(min(1_500.0, rng.lognormvariate(4.0, 0.8)))
            counterparty = rng.choice(account.contacts)
            sent_at = base + time_of_day_ms(rng)
            if account.location(sent_at) is not None:  # not while on a plane
                transfer(tl, rng, account, counterparty, sent_at, max(5, amount))
