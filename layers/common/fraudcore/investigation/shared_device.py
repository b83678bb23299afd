"""Shared-device analysis: who else uses the entity's devices and IPs, and how.

For each device and IP of the investigated entity (the entity itself when it is a device
or an IP; an account's devices and IPs otherwise):

- ``accounts``: accounts that ever used it (graph degree, counted up to a cap);
- ``accounts_last_24h``: distinct accounts in the 24 hours up to the investigation's
  reference time, from the time-series store (explicit time bounds, never ``ago()``,
  so a replay answers the same);
- ``flagged_accounts``: the listed accounts already flagged;
- ``dedicated_accounts``: the listed accounts that use no device but this one, made
  no card payment without it and, when they are enough to make a farm, have no friend of
  their own (:func:`with_friends`: an everyday sum exchanged with an account none of the
  others dealt with) (for a device: people also pay in shops, with no device, and pay
  friends back, where a farm's accounts pay only through the farm, fed by one funder); ``devices_behind``: distinct devices the listed accounts use (for an IP);
- ``first_seen`` / ``last_seen``: from the ``uses`` edges (epoch ms and ISO 8601);
- ``class``, by these thresholds (:class:`UsageThresholds`):

  ========================  ==========================================================
  ``single_user``           one account
  ``household``             2 or 3 accounts (a family, flatmates)
  ``device_farm``           a device with 4 or more accounts, three in four of them and
                            at least 4 using no other device and never paying in
                            person; an IP with 4 or more accounts active in the
                            last 24 h that share few devices (3 or more accounts per
                            device behind it), whatever its size
  ``shared_public``         any other device or IP with 4 or more accounts: an office
                            computer or kiosk whose users have devices of their own; a
                            carrier NAT, cafe or campus IP whose users each bring theirs
  ========================  ==========================================================

What tells a farm from an office or a cafe is not how many accounts share the device or
IP but whether they are people: people have devices of their own, accounts opened in a
farm use the farm's device and nothing else, and never pay at a till. A device shared by colleagues is not
evidence of a link by itself; the ring analysis decides from what else they share.

For an account, ``account_change`` reads the account's own history (``uses`` edges) and
the flagged activity (time series, the flag's window): which devices, IPs and countries
carried the flagged amount, and whether they were new to the account, i.e. first used
within :data:`NEW_IDENTIFIER_MAX_AGE` before the flag's window ended while the account was
established: it had used another device, had been active (devices, networks, cards) for at
least :data:`ESTABLISHED_MIN_AGE` and had made at least :data:`ESTABLISHED_MIN_PAYMENTS`
payments before the new device appeared (:data:`ESTABLISHED_MIN_PAYMENTS_ABROAD` when the
money left from a country new to the account). A new device
(with a new IP or a new country) carrying the flagged money on an established account is
how an account takeover looks to an analyst; a big spender pays with the usual device, and
a new device on the account's own network (every IP that carried the money known to the
account before the new device appeared, no new country: ``own_network``) is the owner's new
phone, not a takeover. When no
IP carried the money, a new device alone still counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..graph import schema
from ..graph.access import GraphAccess, GraphPort
from ..graph.connection import is_timeout
from ..ports import TimeseriesStore
from ..timeseries import rows_or_none_yet
from ..timeseries.dialects import dialect_of
from ..timeseries.queries import account_activity_sql, account_history_sql, active_accounts_sql
from ..timeutil import from_epoch_ms, iso_z
from .model import (
    Investigation,
    SharedDeviceLimits,
    epoch_ms,
    label_of,
    parse_time,
    plain_id,
)

LOOKBACK = timedelta(hours=24)
#: identifier label -> the time-series dimension column holding it
TIMESERIES_COLUMNS = {schema.DEVICE: "device_id", schema.IP: "ip"}
#: a device or IP first used by the account this long (or less) before the flag's window
#: ended is new to it: the takeover's device appears minutes before the cash-out
NEW_IDENTIFIER_MAX_AGE = timedelta(hours=2)
#: the account must have been active this long (its first device, network or card) before
#: the new device appeared, and have used another device: a brand-new account has no
#: history to be taken over
ESTABLISHED_MIN_AGE = timedelta(hours=2)
#: ... and made this many payments (any channel) before it appeared: with one or two there
#: is no habit an intruder could break, and a customer's first payment from their own phone
#: (a new device, through the phone's new network) looks exactly like an intruder's. The
#: depth of the history tells, not its age: on the wide tuning worlds the accounts really
#: taken over had used their devices for 2.3 to 12.9 hours (3 to 10 payments) before the
#: intruder came, the owners paying a large transfer from their own new phone for 8 and 11
#: hours (2 payments each)
ESTABLISHED_MIN_PAYMENTS = 3
#: ... or this many when the money also left from a country the account had never paid
#: from: the owner's first payment from their own new phone is made at home, and a
#: traveller abroad pays with the device they always use
ESTABLISHED_MIN_PAYMENTS_ABROAD = 2
#: a device, IP or country carried the flagged activity when this share of its amount
#: went through it
CARRIED_MIN_SHARE = 0.5
#: how far back the account's countries are read from the time series
COUNTRY_HISTORY = timedelta(days=30)


#: an everyday sum between people (a friend paid back, a relative's gift): far below the
#: transfers a laundering pattern moves (see ``scoring.MATERIAL_TRANSFER_MIN``)
EVERYDAY_TRANSFER_MAX = 5_000.0
#: transfers read per account and direction to find its friends
FRIEND_TRANSFERS_READ = 20


def with_friends(
    access: GraphAccess, accounts: set[str], per_account: int = FRIEND_TRANSFERS_READ
) -> set[str]:
    """The ``accounts`` (vertex ids) that exchanged everyday sums (under
    :data:`EVERYDAY_TRANSFER_MAX` a transfer) with an account outside them that no other of
    them exchanged money with: a friend paid back, a relative's gift. A person has people
    of their own; a farm's accounts have none: the funder that feeds them, or the collector
    they pay into, serves several of them."""
    if not accounts:
        return set()
    dealt_with: dict[str, set[str]] = {}  # outsider -> the accounts that exchanged money with it
    everyday: dict[str, set[str]] = {}  # account -> outsiders it exchanged everyday sums with
    for direction in ("in", "out"):
        rows = access.run(
            lambda g, direction=direction: g.transfers(sorted(accounts), direction, per_account),
            f"friends: transfers {direction}",
        )
        for row in rows:
            account = str(row["account"])
            for transfer in row["transfers"]:
                other = str(transfer["account"])
                if other in accounts:
                    continue
                dealt_with.setdefault(other, set()).add(account)
                count = max(1, int(transfer.get("tx_count") or 1))
                if float(transfer.get("amount") or 0.0) / count < EVERYDAY_TRANSFER_MAX:
                    everyday.setdefault(account, set()).add(other)
    return {
        account
        for account, others in everyday.items()
        if any(dealt_with.get(other) == {account} for other in others)
    }


@dataclass(frozen=True)
class UsageThresholds:
    household_max: int = 3
    device_farm_min: int = 4
    #: a device is a farm when at least this share of its accounts use no other device and
    #: never paid with a card in person: a farm's accounts all do, where a family computer's
    #: users show their phones and their shopping as the day goes on (half of them may not
    #: have yet when its fourth user appears)
    device_farm_dedicated_share: float = 0.75
    #: ... and at least this many of them: a farm is accounts that have no life of their
    #: own, four or more; a family computer at a home of four or five where one of them
    #: has shown a phone or a till payment by the time the fourth user appears is not one
    #: (households of up to six are common, and a member paying only through the family
    #: computer on a given day is ordinary)
    device_farm_dedicated_min: int = 4
    ip_farm_active_24h_min: int = 4
    #: an IP is a farm's when its accounts share devices: this many accounts per device
    ip_farm_accounts_per_device: float = 3.0


def classify(
    label: str,
    accounts: int,
    accounts_24h: int,
    thresholds: UsageThresholds = UsageThresholds(),
    *,
    dedicated_share: float = 0.0,
    dedicated: int | None = None,
    accounts_per_device: float = 0.0,
) -> str:
    """The usage class of a device or IP (see the module docstring's table).

    ``dedicated_share``: share of the device's accounts that use no other device (and never
    paid in person); ``dedicated``: how many they are (``dedicated_share`` of ``accounts``
    when not given);
    ``accounts_per_device``: accounts behind the IP per distinct device they use.
    """
    if accounts <= 1:
        return "single_user"
    if accounts <= thresholds.household_max:
        return "household"
    if label == schema.DEVICE:
        lifeless = round(dedicated_share * accounts) if dedicated is None else dedicated
        farm = (
            accounts >= thresholds.device_farm_min
            and dedicated_share >= thresholds.device_farm_dedicated_share
            and lifeless >= thresholds.device_farm_dedicated_min
        )
        return "device_farm" if farm else "shared_public"
    farm = (
        accounts_24h >= thresholds.ip_farm_active_24h_min
        and accounts_per_device >= thresholds.ip_farm_accounts_per_device
    )
    return "device_farm" if farm else "shared_public"


def _active_accounts(
    timeseries: TimeseriesStore | None, by_label: dict[str, list[str]], end_ms: int
) -> tuple[dict[str, int], list[str]]:
    counts: dict[str, int] = {}
    queries: list[str] = []
    if timeseries is None:
        return counts, queries
    start_ms = end_ms - int(LOOKBACK.total_seconds() * 1000)
    for label, values in sorted(by_label.items()):
        if not values:
            continue
        sql = active_accounts_sql(
            timeseries.database,
            timeseries.table,
            TIMESERIES_COLUMNS[label],
            values,
            start_ms,
            end_ms,
            dialect_of(timeseries),
        )
        queries.append(sql)
        for row in rows_or_none_yet(timeseries, sql):
            counts[schema.vertex_id(label, str(row["identifier"]))] = int(row["accounts"])
    return counts, queries


def _ms_iso(ms: int) -> str | None:
    return iso_z(from_epoch_ms(ms), "milliseconds") if ms else None


def _identifiers_of(
    access: GraphAccess, investigation: Investigation, limits: SharedDeviceLimits
) -> list[str]:
    vid = investigation.vertex_id
    if label_of(vid) in TIMESERIES_COLUMNS:
        return [vid]
    if label_of(vid) != schema.ACCOUNT:
        return []
    ids = access.run(lambda g: g.identifiers_of(vid, list(TIMESERIES_COLUMNS)), "shared devices: of account")
    return sorted(str(i) for i in ids)[: limits.identifiers_per_account]


def _pays_elsewhere(use: dict[str, Any]) -> bool:
    """The account made card payments that did not go through this device (in shops, at a
    till): a person. Every payment of a farm account goes through the farm's device."""
    if "card_transactions" not in use:
        return False
    cards = [edge for edge in use["card_transactions"] if label_of(str(edge["to"])) == schema.CARD]
    if any(int(edge.get("in_person") or 0) for edge in cards):
        return True
    return sum(int(edge["tx_count"] or 0) for edge in cards) > int(use.get("tx_count") or 0)


def _usage(
    row: dict[str, Any],
    accounts_24h: int,
    limits: SharedDeviceLimits,
    thresholds: UsageThresholds,
    truncation: dict[str, str],
    access: GraphAccess | None = None,
) -> dict[str, Any]:
    """One device or IP: who uses it, since when, and its class. With ``access``, the
    accounts that would make a device a farm are asked for friends of their own
    (:func:`with_friends`): an account with one is a person, not a farm's."""
    vid, label, degree = str(row["id"]), str(row["label"]), int(row["degree"])
    uses = sorted(row["uses"], key=lambda u: str(u["account"]))
    if len(uses) > limits.accounts_listed:
        truncation["accounts_listed"] = (
            f"at most {limits.accounts_listed} accounts are listed per device or IP"
        )
        uses = uses[: limits.accounts_listed]
    first = min((int(u["first_seen"]) for u in uses if u["first_seen"]), default=0)
    last = max((int(u["last_seen"]) for u in uses), default=0)
    devices_of = {str(u["account"]): {str(d) for d in u.get("devices") or []} for u in uses}
    lifeless = {
        str(u["account"]) for u in uses if devices_of[str(u["account"])] == {vid} and not _pays_elsewhere(u)
    }
    if (
        access is not None
        and label == schema.DEVICE
        and len(lifeless) >= thresholds.device_farm_dedicated_min
    ):
        try:
            lifeless -= with_friends(access, {str(u["account"]) for u in uses})
        except Exception as error:
            if not is_timeout(error):
                raise
            truncation["evaluation_timeout"] = f"a graph request exceeded its evaluation timeout: {error}"
    dedicated = sorted(plain_id(account) for account in lifeless)
    behind = set().union(*devices_of.values()) if devices_of else set()
    item: dict[str, Any] = {
        "type": label,
        "id": plain_id(vid),
        "accounts": degree,
        "accounts_last_24h": accounts_24h,
        "account_ids": [plain_id(str(u["account"])) for u in uses],
        "flagged_accounts": [plain_id(str(u["account"])) for u in uses if u["flagged"] is True],
        "first_seen": first or None,
        "last_seen": last or None,
        "first_seen_at": _ms_iso(first),
        "last_seen_at": _ms_iso(last),
    }
    if label == schema.DEVICE:
        item["dedicated_accounts"] = dedicated
    else:
        item["devices_behind"] = len(behind)
    item["class"] = classify(
        label,
        degree,
        accounts_24h,
        thresholds,
        dedicated_share=len(dedicated) / len(uses) if uses else 0.0,
        dedicated=len(dedicated),
        accounts_per_device=len(uses) / len(behind) if behind else 0.0,
    )
    return item


def _account_change(
    access: GraphAccess,
    timeseries: TimeseriesStore | None,
    investigation: Investigation,
    limits: SharedDeviceLimits,
) -> tuple[dict[str, Any] | None, list[str]]:
    """Devices, IPs and countries new to the account that carried the flagged activity."""
    if investigation.is_manual or not investigation.window_start or timeseries is None:
        return None, []
    vid = investigation.vertex_id
    start_ms = epoch_ms(parse_time(investigation.window_start, "window_start"))
    end_ms = investigation.reference_ms
    # its devices and networks, and its cards: payments at a till are history too
    own = access.run(
        lambda g: g.account_uses(vid, [*TIMESERIES_COLUMNS, schema.CARD], limits.identifiers_per_account),
        "shared devices: the account's own history",
    )
    first_use = {str(r["id"]): int(r["first_seen"]) for r in own}
    window_sql = account_activity_sql(
        timeseries.database,
        timeseries.table,
        investigation.entity_id,
        start_ms,
        end_ms,
        dialect_of(timeseries),
    )
    carried: dict[str, dict[str, float]] = {"device_id": {}, "ip": {}, "country": {}}
    total = 0.0
    for row in rows_or_none_yet(timeseries, window_sql):
        amount = float(row["amount"] or 0.0)
        total += amount
        for column, shares in carried.items():
            if row.get(column):
                shares[str(row[column])] = shares.get(str(row[column]), 0.0) + amount
    # The account's history is what came before the new device (the owner's own payments in
    # the window's first minutes count; the intruder's probe before the window does not);
    # with no new device, what came before the window.
    new_devices = _new_devices(first_use, carried, total, end_ms)
    until = min((first_use[d] for d in new_devices), default=start_ms)
    history_sql = account_history_sql(
        timeseries.database,
        timeseries.table,
        investigation.entity_id,
        start_ms - int(COUNTRY_HISTORY.total_seconds() * 1000),
        until,
        dialect_of(timeseries),
    )
    history = rows_or_none_yet(timeseries, history_sql)
    known_countries = sorted(str(r["country"]) for r in history if r.get("country"))
    prior_payments = sum(int(r["payments"] or 0) for r in history)
    return (
        assess_account_change(
            first_use, carried, total, known_countries, end_ms, prior_payments=prior_payments
        ),
        [window_sql, history_sql],
    )


def _carriers(carried: dict[str, dict[str, float]], total: float, column: str, label: str) -> list[str]:
    """The identifiers of ``column`` that carried at least CARRIED_MIN_SHARE of the amount."""
    return sorted(
        schema.vertex_id(label, value)
        for value, amount in carried[column].items()
        if total > 0 and amount / total >= CARRIED_MIN_SHARE
    )


def _new_devices(
    first_use: dict[str, int], carried: dict[str, dict[str, float]], total: float, end_ms: int
) -> list[str]:
    """Devices that carried the flagged activity, first used by the account lately."""
    new_after = end_ms - int(NEW_IDENTIFIER_MAX_AGE.total_seconds() * 1000)
    return [
        d
        for d in _carriers(carried, total, "device_id", schema.DEVICE)
        if first_use.get(d, end_ms) >= new_after
    ]


def assess_account_change(
    first_use: dict[str, int],
    carried: dict[str, dict[str, float]],
    total: float,
    known_countries: list[str],
    end_ms: int,
    *,
    prior_payments: int,
) -> dict[str, Any]:
    """Which identifiers carrying the flagged activity are new to an established account.

    ``first_use``: vertex id -> when the account first used it (epoch ms); ``carried``:
    column -> value -> amount of the flagged activity through it; ``known_countries``:
    countries of the account's activity before the new device appeared (before the window
    when there is none); ``prior_payments``: how many payments the account made in that time.
    """
    new_after = end_ms - int(NEW_IDENTIFIER_MAX_AGE.total_seconds() * 1000)
    new_devices = _new_devices(first_use, carried, total, end_ms)
    carrier_ips = _carriers(carried, total, "ip", schema.IP)
    new_ips = [i for i in carrier_ips if first_use.get(i, end_ms) >= new_after]
    appeared = min((first_use.get(d, end_ms) for d in new_devices), default=end_ms)
    other_devices = [
        vid
        for vid, first in first_use.items()
        if label_of(vid) == schema.DEVICE and vid not in new_devices and first > 0
    ]
    # the account's history: everything it used before the new device appeared (a card paid
    # with at a till in the morning, the laptop at noon), provided it had another device
    established_since = (
        min((first for first in first_use.values() if 0 < first < appeared), default=None)
        if other_devices
        else None
    )
    new_countries = [
        c
        for c in sorted(carried["country"])
        if known_countries
        and c not in known_countries
        and total > 0
        and carried["country"][c] / total >= CARRIED_MIN_SHARE
    ]
    established = (
        established_since is not None
        and appeared - established_since >= int(ESTABLISHED_MIN_AGE.total_seconds() * 1000)
        and prior_payments >= (ESTABLISHED_MIN_PAYMENTS_ABROAD if new_countries else ESTABLISHED_MIN_PAYMENTS)
    )
    # The money went out through networks the account had used before the new device
    # appeared, from a country it knows: a new device there is the owner's (a new phone at
    # home; a traveller's phone on the hotel network the laptop joined an hour before), not
    # an intruder's, whose device and network come together.
    intruder_ips = [i for i in new_ips if first_use.get(i, end_ms) >= appeared]
    own_network = bool(carrier_ips) and not intruder_ips and not new_countries
    return {
        "flagged_amount": round(total, 2),
        "new_devices": [plain_id(d) for d in new_devices],
        "new_ips": [plain_id(i) for i in new_ips],
        "new_countries": new_countries,
        "known_countries": known_countries,
        "usual_devices": sorted(plain_id(d) for d in other_devices),
        "established_since": established_since,
        "established_since_at": _ms_iso(established_since or 0),
        "prior_payments": prior_payments,
        "new_device_first_seen_at": _ms_iso(appeared) if new_devices else None,
        "new_device_first_seen": appeared if new_devices else None,
        "own_network": own_network,
        "takeover": bool(new_devices) and established and not own_network,
    }


def analyse_shared_devices(
    graph: GraphPort | GraphAccess,
    timeseries: TimeseriesStore | None,
    investigation: Investigation,
    limits: SharedDeviceLimits | None = None,
    thresholds: UsageThresholds | None = None,
) -> dict[str, Any]:
    """Usage of each device and IP of the entity (see the module docstring)."""
    limits = limits or SharedDeviceLimits()
    thresholds = thresholds or UsageThresholds()
    access = GraphAccess.of(graph)
    truncation: dict[str, str] = {}
    reference_ms = investigation.reference_ms
    try:
        ids = _identifiers_of(access, investigation, limits)
        rows = (
            access.run(
                lambda g: g.identifier_sightings(ids, limits.accounts_listed + 1, limits.degree_count_cap),
                "shared devices: sightings",
            )
            if ids
            else []
        )
    except Exception as error:
        if not is_timeout(error):
            raise
        rows = []
        truncation["evaluation_timeout"] = f"a graph request exceeded its evaluation timeout: {error}"
    by_label: dict[str, list[str]] = {}
    for row in rows:
        by_label.setdefault(str(row["label"]), []).append(plain_id(str(row["id"])))
    active, queries = _active_accounts(timeseries, {k: sorted(v) for k, v in by_label.items()}, reference_ms)

    identifiers = [
        _usage(row, active.get(str(row["id"]), 0), limits, thresholds, truncation, access)
        for row in sorted(rows, key=lambda r: str(r["id"]))
    ]
    change = None
    if label_of(investigation.vertex_id) == schema.ACCOUNT:
        try:
            change, change_queries = _account_change(access, timeseries, investigation, limits)
            queries += change_queries
        except Exception as error:
            if not is_timeout(error):
                raise
            truncation["evaluation_timeout"] = f"a graph request exceeded its evaluation timeout: {error}"
    window_end = parse_time(investigation.reference_time, "reference_time")
    return {
        "analysis": "shared_device",
        "start": {"type": investigation.entity_type, "id": investigation.entity_id},
        "window": {
            "start": iso_z(window_end - LOOKBACK, "milliseconds"),
            "end": iso_z(window_end, "milliseconds"),
        },
        "identifiers": identifiers,
        "classes": sorted({i["class"] for i in identifiers}),
        "account_change": change,
        "thresholds": thresholds.__dict__.copy(),
        "timeseries_queries": queries,
        "truncated": bool(truncation),
        "truncation": [{"reason": r, "detail": d} for r, d in sorted(truncation.items())],
        "requests": access.requests,
    }
