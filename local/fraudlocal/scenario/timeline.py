"""Collects generated transactions compactly and renders them as canonical records."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, NamedTuple

from fraudcore.timeutil import from_epoch_ms, iso_z

from .population import Account


class Event(NamedTuple):
    """One transaction before it gets its id; ordering is by time, then account, then creation."""

    ms: int
    account_id: str
    seq: int
    amount: float
    merchant_id: str | None
    card_id: str | None
    device_id: str | None
    ip: str | None
    channel: str
    country: str
    counterparty_account_id: str | None


class Timeline:
    """Every generator appends here; one sort at the end puts the stream in event-time order."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(
        self,
        ms: int,
        account: Account,
        amount: float,
        *,
        channel: str,
        country: str | None = None,
        merchant: str | None = None,
        card: str | None = None,
        device: str | None = None,
        ip: str | None = None,
        counterparty: str | None = None,
    ) -> None:
        self.events.append(
            Event(
                ms,
                account.account_id,
                len(self.events),
                round(amount, 2),
                merchant,
                card,
                device,
                ip,
                channel,
                country or account.country,
                counterparty,
            )
        )

    def sorted_events(self) -> list[Event]:
        # Sequence numbers are unique, so the comparison never reaches a None field.
        return sorted(self.events)


def iso_millis(ms: int) -> str:
    """``2026-11-01T08:15:30.123Z`` from epoch milliseconds."""
    return iso_z(from_epoch_ms(ms), "milliseconds")


def render(
    events: list[Event], contacts: dict[str, tuple[str, str]], id_prefix: str
) -> Iterator[dict[str, Any]]:
    """Canonical records (fields in the order of ``fraudcore.model.Transaction``, absent ones left out)."""
    for index, event in enumerate(events, start=1):
        email, phone = contacts[event.account_id]
        record: dict[str, Any] = {
            "transaction_id": f"{id_prefix}-{index:08d}",
            "timestamp": iso_millis(event.ms),
            "account_id": event.account_id,
            "amount": event.amount,
            "currency": "USD",
        }
        for key, value in (
            ("merchant_id", event.merchant_id),
            ("card_id", event.card_id),
            ("device_id", event.device_id),
            ("ip", event.ip),
            ("email", email),
            ("phone", phone),
            ("counterparty_account_id", event.counterparty_account_id),
            ("channel", event.channel),
            ("country", event.country),
        ):
            if value is not None:
                record[key] = value
        yield record


_ENCODER = json.JSONEncoder(separators=(",", ":"))


def to_json_line(record: dict[str, Any]) -> str:
    return _ENCODER.encode(record) + "\n"
