"""Shared-device analysis: who else uses the entity's devices and IPs, and how.

For each device and IP of the investigated entity (the entity itself when it is a device
or an IP; an account's devices and IPs otherwise):

- ``accounts``: accounts that ever used it (graph degree, counted up to a cap);
- ``accounts_last_24h``: distinct accounts in the 24 hours up to the investigation's
  reference time, from the time-series store (explicit time bounds, never ``ago()``,
  so a replay answers the same);
- ``flagged_accounts``: the listed accounts already flagged;
- ``first_seen`` / ``last_seen``: from the ``uses`` edges (epoch ms and ISO 8601);
- ``class``, by these thresholds (:class:`UsageThresholds`):

  ========================  ==========================================================
  ``single_user``           one account
  ``household``             2 or 3 accounts (a family, flatmates)
  ``device_farm``           a device with 4 or more accounts; an IP with 4 to 19
                            accounts of which 4 or more were active in the last 24 h
  ``shared_public``         an IP with 20 or more accounts (carrier NAT, cafe, office),
                            or 4 to 19 accounts that are not active together
  ========================  ==========================================================

A device is personal hardware: four accounts on one device is a farm whatever the day.
An IP is often shared by strangers, so only many accounts active together on a
mid-sized IP make it a farm.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..graph import schema
from ..ports import TimeseriesStore
from .model import (
    GraphAccess,
    Investigation,
    SharedDeviceLimits,
    is_timeout,
    iso,
    label_of,
    parse_time,
    plain_id,
)

LOOKBACK = timedelta(hours=24)
#: identifier label -> the time-series dimension column holding it
TIMESERIES_COLUMNS = {schema.DEVICE: "device_id", schema.IP: "ip"}


@dataclass(frozen=True)
class UsageThresholds:
    household_max: int = 3
    device_farm_min: int = 4
    ip_public_min: int = 20
    ip_farm_active_24h_min: int = 4


def classify(
    label: str, accounts: int, accounts_24h: int, thresholds: UsageThresholds = UsageThresholds()
) -> str:
    """The usage class of a device or IP (see the module docstring's table)."""
    if accounts <= 1:
        return "single_user"
    if accounts <= thresholds.household_max:
        return "household"
    if label == schema.DEVICE:
        return "device_farm"
    if accounts >= thresholds.ip_public_min:
        return "shared_public"
    return "device_farm" if accounts_24h >= thresholds.ip_farm_active_24h_min else "shared_public"


def _sql_text(value: str) -> str:
    """A SQL string literal; identifiers come from transaction data, so quotes are doubled."""
    return "'" + value.replace("'", "''") + "'"


def active_accounts_sql(
    database: str, table: str, column: str, values: list[str], start_ms: int, end_ms: int
) -> str:
    """Timestream SQL: distinct accounts per identifier value within [start, end]."""
    listed = ", ".join(_sql_text(v) for v in values)
    return (
        f"SELECT {column} AS identifier, COUNT(DISTINCT account_id) AS accounts "
        f'FROM "{database}"."{table}" '
        f"WHERE time BETWEEN from_milliseconds({start_ms}) AND from_milliseconds({end_ms}) "
        f"AND {column} IN ({listed}) "
        f"GROUP BY {column}"
    )


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
            timeseries.database, timeseries.table, TIMESERIES_COLUMNS[label], values, start_ms, end_ms
        )
        queries.append(sql)
        for row in timeseries.query(sql):
            counts[schema.vertex_id(label, str(row["identifier"]))] = int(row["accounts"])
    return counts, queries


def _ms_iso(ms: int) -> str | None:
    return iso(datetime.fromtimestamp(ms / 1000.0, tz=UTC)) if ms else None


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


def analyse_shared_devices(
    graph: Any,
    timeseries: TimeseriesStore | None,
    investigation: Investigation,
    limits: SharedDeviceLimits | None = None,
    thresholds: UsageThresholds | None = None,
) -> dict[str, Any]:
    """Usage of each device and IP of the entity (see the module docstring)."""
    limits = limits or SharedDeviceLimits()
    thresholds = thresholds or UsageThresholds()
    access = graph if isinstance(graph, GraphAccess) else GraphAccess(graph)
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

    identifiers = []
    for row in sorted(rows, key=lambda r: str(r["id"])):
        vid, label, degree = str(row["id"]), str(row["label"]), int(row["degree"])
        uses = sorted(row["uses"], key=lambda u: str(u["account"]))
        if len(uses) > limits.accounts_listed:
            truncation["accounts_listed"] = (
                f"at most {limits.accounts_listed} accounts are listed per device or IP"
            )
            uses = uses[: limits.accounts_listed]
        first = min((int(u["first_seen"]) for u in uses if u["first_seen"]), default=0)
        last = max((int(u["last_seen"]) for u in uses), default=0)
        accounts_24h = active.get(vid, 0)
        identifiers.append(
            {
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
                "class": classify(label, degree, accounts_24h, thresholds),
            }
        )
    window_end = parse_time(investigation.reference_time, "reference_time")
    return {
        "analysis": "shared_device",
        "start": {"type": investigation.entity_type, "id": investigation.entity_id},
        "window": {"start": iso(window_end - LOOKBACK), "end": iso(window_end)},
        "identifiers": identifiers,
        "classes": sorted({i["class"] for i in identifiers}),
        "thresholds": thresholds.__dict__.copy(),
        "timeseries_queries": queries,
        "truncated": bool(truncation),
        "truncation": [{"reason": r, "detail": d} for r, d in sorted(truncation.items())],
        "requests": access.requests,
    }
