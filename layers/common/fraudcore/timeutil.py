"""Times, one way everywhere: aware UTC datetimes in, ISO 8601 with ``Z`` out.

Producers, scheduled events, query rows and investigation inputs give times as ISO 8601
text (with or without an offset, ``T`` or a space, up to nanoseconds as Timestream
returns them), as epoch milliseconds (numbers or digit strings), or as datetimes.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

#: epoch milliseconds of year 9999 (what a datetime holds)
_MAX_EPOCH_MS = 253_402_300_799_999
_FRACTION = re.compile(r"^(.*[T ]\d\d:\d\d:\d\d)\.(\d+)(.*)$")


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_utc(value: Any) -> datetime:
    """An aware UTC datetime; naive times are taken as UTC. ValueError says what was wrong.

    A time that cannot be represented (an epoch far out of range, an offset that moves a
    time past year 1 or 9999) is a ValueError too, never an OverflowError.
    """
    try:
        return _parse_utc(value)
    except (OverflowError, OSError):
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        raise ValueError(f"{shown} is outside the range of representable times") from None


def _from_epoch_ms(milliseconds: float) -> datetime:
    if abs(milliseconds) > _MAX_EPOCH_MS:
        raise OverflowError(milliseconds)
    return datetime.fromtimestamp(milliseconds / 1000.0, tz=UTC)


def _parse_utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, bool) or value is None:
        raise ValueError(f"expected ISO 8601 text or epoch milliseconds, got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("epoch milliseconds must be a finite number")
        return _from_epoch_ms(value)
    if not isinstance(value, str):
        raise ValueError(f"expected ISO 8601 text or epoch milliseconds, got {type(value).__name__}")
    text = value.strip()
    if text.isdigit():
        if len(text) > 19:
            raise OverflowError(text)
        return _from_epoch_ms(int(text))
    text = text.replace("Z", "+00:00").replace("z", "+00:00")
    fraction = _FRACTION.match(text)
    if fraction:  # Python reads at most microseconds
        text = f"{fraction.group(1)}.{fraction.group(2)[:6]}{fraction.group(3)}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is not ISO 8601 (e.g. 2026-11-29T12:00:00Z) nor epoch milliseconds"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


#: how much of the second :func:`iso_z` writes: ``auto`` milliseconds when there are any
#: (``12:00:00Z``, ``12:00:00.250Z``), ``milliseconds`` always three digits, ``exact``
#: every microsecond there is (Python's own rule)
TimeSpec = Literal["auto", "milliseconds", "exact"]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_z(moment: datetime | int | str, timespec: TimeSpec = "auto") -> str:
    """UTC ISO 8601 with a ``Z``: ``2026-11-29T12:00:00Z``; see :data:`TimeSpec`."""
    moment = parse_utc(moment)
    if timespec == "auto":
        spec = "milliseconds" if moment.microsecond else "seconds"
    elif timespec == "milliseconds":
        spec = "milliseconds"
    elif timespec == "exact":
        spec = "auto"
    else:
        raise ValueError(f"timespec={timespec!r}: expected auto, milliseconds or exact")
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def from_epoch_ms(ms: int) -> datetime:
    """The aware UTC datetime of epoch milliseconds, exactly (no float rounding)."""
    return EPOCH + timedelta(milliseconds=ms)
