"""The people, their identifiers and the merchants they pay, plus the scenario's clock."""

from __future__ import annotations

import itertools
import math
import random
from bisect import bisect_right
from dataclasses import dataclass, field

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

HOME_COUNTRIES = ("US", "GB", "DE", "FR", "CA", "ES", "IT")
HOME_COUNTRY_CUM = tuple(itertools.accumulate((55, 10, 8, 7, 8, 6, 6)))
TRAVEL_COUNTRIES = ("US", "GB", "DE", "FR", "CA", "ES", "IT", "JP", "MX", "PT", "NL", "TH", "AU")

# Relative activity per hour of the day (UTC): quiet nights, busy lunch and evening.
_HOURLY_WEIGHTS = (
    0.3, 0.2, 0.1, 0.1, 0.1, 0.2, 0.5, 1.0, 1.5, 1.6, 1.6, 1.8,
    2.2, 2.0, 1.6, 1.5, 1.6, 1.9, 2.2, 2.3, 2.0, 1.6, 1.0, 0.6,
)  # fmt: skip
_HOURLY_CUM = tuple(itertools.accumulate(_HOURLY_WEIGHTS))

_FIRST_NAMES = (
    "ana", "ben", "chloe", "dan", "eva", "femi", "gita", "hugo", "ines", "jon", "kai", "lena",
    "marc", "nora", "omar", "pia", "quinn", "rosa", "sam", "tara", "uma", "vik", "wen", "yara", "zoe",
)  # fmt: skip
_LAST_NAMES = (
    "adams", "berg", "costa", "diaz", "evans", "fischer", "garcia", "hansen", "ito", "jones",
    "khan", "lopez", "moreau", "novak", "okafor", "park", "rossi", "silva", "tanaka", "weber",
)  # fmt: skip
_EMAIL_DOMAINS = ("example.com", "example.net", "example.org")


@dataclass(frozen=True, slots=True)
class Clock:
    """The scenario's period, in epoch milliseconds."""

    start_ms: int
    days: int

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.days * DAY_MS

    def day_start(self, day: int) -> int:
        return self.start_ms + day * DAY_MS

    def aligned(self, rng: random.Random, lo_ms: int, hi_ms: int, step_ms: int) -> int:
        """A random multiple of ``step_ms`` (from the Unix epoch) in ``[lo_ms, hi_ms)``.

        Planted bursts start just after such a boundary, so a rule whose windows are
        epoch-aligned bins of that size (or of a divisor of it) sees the whole burst in
        one bin, as a sliding window would.
        """
        first = -(-max(lo_ms, self.start_ms) // step_ms)
        last = (min(hi_ms, self.end_ms) - 1) // step_ms
        if last < first:
            raise ValueError("the period is too short to place an aligned burst")
        return rng.randint(first, last) * step_ms


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method: fine for the small means used here)."""
    limit = math.exp(-mean)
    count, product = 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def time_of_day_ms(rng: random.Random) -> int:
    """Milliseconds into a day, following the daily rhythm of card spending."""
    hour = bisect_right(_HOURLY_CUM, rng.random() * _HOURLY_CUM[-1])
    return min(hour, 23) * HOUR_MS + rng.randrange(HOUR_MS)


def cents(value: float) -> float:
    return round(value, 2)


class Identifiers:
    """Fresh, never-repeating identifiers drawn from the scenario's random source.

    Values are random rather than sequential so that nothing about an account's role
    leaks through the order in which its identifiers were made.
    """

    def __init__(self, rng: random.Random):
        self._rng = rng
        self._used: set[str] = set()

    def _unique(self, make) -> str:
        while True:
            value = make()
            if value not in self._used:
                self._used.add(value)
                return value

    def card(self) -> str:
        return self._unique(lambda: f"card-{self._rng.getrandbits(48):012x}")

    def device(self) -> str:
        return self._unique(lambda: f"dev-{self._rng.getrandbits(40):010x}")

    def ip(self) -> str:
        # 100.64.0.0/10 (shared address space): plenty of room, and no real subscriber.
        def make() -> str:
            host = self._rng.getrandbits(22)
            return f"100.{64 + (host >> 16)}.{(host >> 8) & 255}.{max(1, min(254, host & 255))}"

        return self._unique(make)

    def email(self) -> str:
        rng = self._rng
        return self._unique(
            lambda: (
                f"{rng.choice(_FIRST_NAMES)}.{rng.choice(_LAST_NAMES)}{rng.randint(1, 9999)}"
                f"@{rng.choice(_EMAIL_DOMAINS)}"
            )
        )

    def phone(self) -> str:
        return self._unique(lambda: f"+1555{self._rng.randrange(10_000_000):07d}")


@dataclass(frozen=True, slots=True)
class Leg:
    """Part of a trip: from ``start_ms`` the traveller is in ``country``; no spending before
    ``settled_ms`` (the journey)."""

    start_ms: int
    settled_ms: int
    country: str
    ip: str | None


@dataclass(slots=True)
class Account:
    """An account holder: identifiers and spending profile."""

    account_id: str
    email: str
    phone: str
    country: str
    cards: list[str]
    mobile_device: str
    online_devices: list[str]
    home_ip: str
    mobile_ip: str | None
    daily_rate: float
    amount_mu: float
    amount_sigma: float
    amount_cap: float
    transfer_rate: float
    contacts: list[str] = field(default_factory=list)
    #: a device shared with others (household tablet), used for part of the online spending
    shared_device: str | None = None
    #: for travellers: where they are over time (first leg = home)
    itinerary: list[Leg] | None = None
    _leg_starts: list[int] | None = None

    def set_itinerary(self, legs: list[Leg]) -> None:
        self.itinerary = legs
        self._leg_starts = [leg.start_ms for leg in legs]

    def location(self, ms: int) -> tuple[str, str | None] | None:
        """(country, IP used away from home) at ``ms``; None while travelling between places."""
        if self.itinerary is None or self._leg_starts is None:
            return self.country, None
        leg = self.itinerary[max(0, bisect_right(self._leg_starts, ms) - 1)]
        if ms < leg.settled_ms:
            return None
        return leg.country, leg.ip


def new_account(account_id: str, rng: random.Random, ids: Identifiers) -> Account:
    """An ordinary account holder with 1-2 cards, 1-3 devices and a log-normal spending profile."""
    mobile_device = ids.device()
    others = [ids.device() for _ in range(rng.choices((0, 1, 2), weights=(35, 45, 20))[0])]
    country = rng.choices(HOME_COUNTRIES, cum_weights=HOME_COUNTRY_CUM)[0]
    return Account(
        account_id=account_id,
        email=ids.email(),
        phone=ids.phone(),
        country=country,
        cards=[ids.card() for _ in range(1 if rng.random() < 0.6 else 2)],
        mobile_device=mobile_device,
        online_devices=others or [mobile_device],
        home_ip=ids.ip(),
        mobile_ip=ids.ip() if rng.random() < 0.5 else None,
        daily_rate=min(20.0, max(0.5, rng.lognormvariate(1.45, 0.5))),
        amount_mu=rng.gauss(3.4, 0.45),
        amount_sigma=rng.uniform(0.5, 0.9),
        amount_cap=3_000.0,
        transfer_rate=rng.uniform(0.02, 0.15),
    )


class Merchants:
    """A few hundred merchants with a Zipf-like popularity: a few big names get most sales."""

    def __init__(self, count: int, rng: random.Random):
        self.ids = [f"m-{n:05d}" for n in range(1, count + 1)]
        rng.shuffle(self.ids)
        self._cum = tuple(itertools.accumulate(1.0 / (rank**1.1) for rank in range(1, count + 1)))

    def pick(self, rng: random.Random) -> str:
        return self.ids[bisect_right(self._cum, rng.random() * self._cum[-1], 0, len(self._cum) - 1)]

    def pick_distinct(self, rng: random.Random, count: int) -> list[str]:
        return rng.sample(self.ids, count)
