"""A small recorded day for the page tests: twelve ordinary customers and two rings of two."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any


def two_rings_day(**common: Any) -> list[dict]:
    """Each customer on their own device and email; each ring's pair on one device and one
    email, moving 19,000 three times. ``common`` is added to every transaction."""
    start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    rows: list[dict] = []

    def add(account: str, minutes: float, amount: float, **extra: str) -> None:
        moment = start + timedelta(minutes=minutes)
        rows.append(
            {
                "transaction_id": f"tx-{len(rows):05d}",
                "timestamp": moment.isoformat().replace("+00:00", "Z"),
                "account_id": account,
                "amount": amount,
                "merchant_id": "m-1",
                **common,
                **extra,
            }
        )

    for n in range(12):
        for k in range(3):
            add(f"acc-{n:03d}", 4 * n + 20 * k, 15 + n, device_id=f"dev-{n}", email=f"c{n}@example.com")
    for i, account in enumerate(("ring-a", "ring-b", "ring-c", "ring-d")):
        shared = {"device_id": f"dev-ring-{i // 2}", "email": f"ring{i // 2}@example.net"}
        for k in range(3):
            add(account, 40 + 30 * (i // 2) + k + i * 0.1, 19_000, **shared)
    return rows
