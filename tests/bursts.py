"""High-value bursts that the micro-analysis rules flag, for tests of the scheduled run."""

from __future__ import annotations

from datetime import datetime, timedelta

from fraudcore.model import Transaction


def bursts(accounts: list[str], scheduled: datetime) -> list[Transaction]:
    """A 60,000 burst per account (two 30,000 payments), two minutes before ``scheduled``."""
    return [
        Transaction(
            transaction_id=f"{account}-{step}",
            timestamp=scheduled - timedelta(minutes=2, seconds=-10 * step),
            account_id=account,
            amount=30_000,
        )
        for account in accounts
        for step in range(2)
    ]
