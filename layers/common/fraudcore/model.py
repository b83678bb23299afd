"""The canonical transaction event and its validation.

Every producer's payload becomes a :class:`Transaction` (through a field mapping when it is
not canonical). Validation errors name the field and the problem, so a rejected record
says what to fix.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from .limits import (
    DEFAULT_MAX_AMOUNT,
    MAX_IDENTIFIER_BYTES,
    MAX_LABEL_BYTES,
    check_amount,
    check_event_time,
    check_text,
    quote,
)
from .timeutil import iso_z, parse_utc

IDENTIFIER_FIELDS = ("merchant_id", "card_id", "device_id", "ip", "email", "phone", "counterparty_account_id")
DIMENSION_FIELDS = (
    "account_id",
    "transaction_id",
    "card_id",
    "device_id",
    "ip",
    "email",
    "phone",
    "merchant_id",
    "counterparty_account_id",
    "channel",
    "country",
    "currency",
)


class InvalidRecord(ValueError):
    """A record that can never be stored as it is: it goes to the rejected-record sink."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Transaction(BaseModel):
    """One payment or transfer, as every part of the system sees it."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    transaction_id: str = Field(min_length=1)
    timestamp: datetime
    account_id: str = Field(min_length=1)
    amount: float = Field(ge=0)
    currency: str = Field(default="USD", min_length=3, max_length=3)
    merchant_id: str | None = None
    card_id: str | None = None
    device_id: str | None = None
    ip: str | None = None
    email: str | None = None
    phone: str | None = None
    counterparty_account_id: str | None = None
    channel: str | None = None
    country: str | None = None

    @field_validator("timestamp", mode="before")
    @classmethod
    def _timestamp(cls, value: Any) -> datetime:
        return check_event_time(parse_utc(value))

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("expected a number, got a boolean")
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise ValueError(f"{quote(value)} is not a number") from None
        if isinstance(value, int) and abs(value) >= 2**63:
            raise ValueError(f"{quote(value)} is too large")
        if isinstance(value, int | float) and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @field_validator("amount")
    @classmethod
    def _amount_bound(cls, value: float, info: ValidationInfo) -> float:
        context = info.context or {}
        return check_amount(value, context.get("max_amount", DEFAULT_MAX_AMOUNT))

    @field_validator("transaction_id", "account_id", *IDENTIFIER_FIELDS)
    @classmethod
    def _identifier_limits(cls, value: str | None) -> str | None:
        return None if value is None else check_text(value, MAX_IDENTIFIER_BYTES)

    @field_validator("channel", "country", "currency")
    @classmethod
    def _label_limits(cls, value: str | None) -> str | None:
        return None if value is None else check_text(value, MAX_LABEL_BYTES)

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator(*IDENTIFIER_FIELDS, "channel", "country", mode="before")
    @classmethod
    def _optional_text(cls, value: Any) -> Any:
        # Producers send numbers for phone numbers and ids; empty strings mean "absent".
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @property
    def epoch_ms(self) -> int:
        return int(self.timestamp.timestamp() * 1000)

    def dimensions(self) -> dict[str, str]:
        """The identifiers of this transaction that are present, as strings."""
        values = self.model_dump(include=set(DIMENSION_FIELDS))
        return {k: str(v) for k, v in values.items() if v is not None}

    def to_json_dict(self) -> dict[str, Any]:
        data = self.model_dump(exclude_none=True)
        data["timestamp"] = iso_z(self.timestamp, "exact")
        return data


def describe_validation_error(error: ValidationError) -> str:
    """One sentence per problem, each naming the field: 'amount: must be >= 0 (got -5)'."""
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "record"
        if item["type"] == "missing":
            problems.append(f"{where}: required field is missing")
            continue
        message = item["msg"].removeprefix("Value error, ")
        message = message.replace("Input should be greater than or equal to 0", "must be >= 0")
        got = item.get("input")
        if got is not None and not isinstance(got, dict | list):
            quoted = quote(got)
            if quoted not in message:
                message = f"{message} (got {quoted})"
        problems.append(f"{where}: {message}")
    return "; ".join(problems)


def parse_transaction(payload: Any, max_amount: float = DEFAULT_MAX_AMOUNT) -> Transaction:
    """Validate a canonical payload; raise :class:`InvalidRecord` naming each problem."""
    if not isinstance(payload, dict):
        raise InvalidRecord(f"record must be a JSON object, got {type(payload).__name__}")
    try:
        return Transaction.model_validate(payload, context={"max_amount": max_amount})
    except ValidationError as error:
        raise InvalidRecord(describe_validation_error(error)) from None
