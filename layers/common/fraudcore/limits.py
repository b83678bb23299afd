"""Input limits, in one place: what a record may be before any store sees it.

A producer (or an attacker) can send anything a Kinesis record holds (up to 1 MiB). Every
limit here is checked before a store is called, so a record outside them is rejected with
a reason naming the limit, rather than raising inside a store, a JSON parser or a date
conversion and failing its whole batch.

The limits are chosen to fit every store the records go to:

- Timestream for LiveAnalytics: a record is at most 2 KB and the dimension name/value
  pairs of a series at most 2 KB. The dimension names of the table take 108 bytes; nine
  identifiers of :data:`MAX_IDENTIFIER_BYTES` plus two labels of :data:`MAX_LABEL_BYTES`
  and a currency code stay under 1.3 KB.
- Neptune / TinkerPop: ids are strings made of a label and the identifier
  (:func:`fraudcore.graph.schema.vertex_id`); edge ids escape their parts.
- Event times are bounded to what a signed 64-bit count of nanoseconds since the Unix epoch
  holds (Timestream keeps nanosecond timestamps), from the epoch on.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any

#: a canonical transaction is well under 1 KB; this leaves room for other producers' shapes
MAX_RECORD_BYTES = 64 * 1024
#: a transaction is a flat object; a mapped producer's payload may nest a little
MAX_JSON_DEPTH = 16
#: digits of an integer literal (Python refuses more than 4,300 by default; ids are shorter)
MAX_INTEGER_DIGITS = 40
#: account, card, device, ip, email, phone, merchant, counterparty and transaction ids
MAX_IDENTIFIER_BYTES = 128
#: channel and country
MAX_LABEL_BYTES = 64
#: the default upper bound of an amount (configurable: ``MAX_AMOUNT``)
DEFAULT_MAX_AMOUNT = 1e12
#: event times the stores can hold: from the Unix epoch to the end of int64 nanoseconds
MIN_EVENT_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_EVENT_TIME = datetime(2262, 4, 11, 23, 47, 16, tzinfo=UTC)
#: what a reason may quote of a bad value
MAX_QUOTED_CHARS = 80


class LimitExceeded(ValueError):
    """A value is outside the limits above; the message names the limit."""


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INTEGER_DIGITS:
        raise LimitExceeded(f"a number has {digits} digits; at most {MAX_INTEGER_DIGITS} are accepted")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise LimitExceeded(f"the number {quote(text)} is too large to be a finite double")
    return value


def _no_constant(text: str) -> float:
    raise LimitExceeded(f"{text} is not a number JSON allows (NaN and Infinity are refused)")


def json_depth(value: Any) -> int:
    """How deeply objects and arrays nest (0 for a scalar), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        stack.extend((child, depth) for child in children)
    return deepest


def parse_json_record(text: str) -> Any:
    """The JSON value of one record, within the limits; :class:`LimitExceeded` or ``JSONDecodeError``."""
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_RECORD_BYTES:
        raise LimitExceeded(f"record has {size} bytes; at most {MAX_RECORD_BYTES} are accepted")
    try:
        value = json.loads(
            text, parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_no_constant
        )
    except RecursionError:
        raise LimitExceeded(f"JSON nests deeper than {MAX_JSON_DEPTH} levels") from None
    # each level of nesting opens with a bracket, so a text with few brackets (those inside
    # strings counted too) cannot nest too deep: the walk is for the others
    if text.count("{") + text.count("[") > MAX_JSON_DEPTH and json_depth(value) > MAX_JSON_DEPTH:
        raise LimitExceeded(f"JSON nests deeper than {MAX_JSON_DEPTH} levels")
    return value


#: the characters a text field refuses: controls (Unicode category Cc, U+0000-U+001F and
#: U+007F-U+009F) but the tab, surrogates (Cs, U+D800-U+DFFF) and the non-characters U+FFFE/U+FFFF
_REFUSED_CHARACTER = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def check_text(value: str, max_bytes: int) -> str:
    """``value`` if it fits ``max_bytes`` of UTF-8 and has no control, surrogate or non-character."""
    refused = _REFUSED_CHARACTER.search(value)
    if refused is not None:
        raise LimitExceeded(
            f"contains the character U+{ord(refused.group()):04X} at position {refused.start()}"
        )
    size = len(value.encode("utf-8"))
    if size > max_bytes:
        raise LimitExceeded(f"has {size} bytes; at most {max_bytes} are accepted")
    return value


def check_amount(value: float, max_amount: float = DEFAULT_MAX_AMOUNT) -> float:
    if not math.isfinite(value):
        raise LimitExceeded("must be a finite number")
    if value > max_amount:
        raise LimitExceeded(f"{value:g} is more than the accepted maximum {max_amount:g} (MAX_AMOUNT)")
    return value


def check_event_time(moment: datetime) -> datetime:
    if not MIN_EVENT_TIME <= moment <= MAX_EVENT_TIME:
        raise LimitExceeded(
            f"{moment.isoformat()} is outside the accepted range "
            f"{MIN_EVENT_TIME.date()} to {MAX_EVENT_TIME.date()}"
        )
    return moment


def quote(value: Any, max_chars: int = MAX_QUOTED_CHARS) -> str:
    """A short, printable quotation of a bad value for a reason (never the whole of a huge one)."""
    try:
        text = repr(value)
    except ValueError:  # an int too long for repr
        text = f"<{type(value).__name__}>"
    if len(text) > max_chars:
        text = f"{text[: max_chars - 1]}… ({len(text)} characters)"
    return text


def shorten(text: str, max_chars: int = 600) -> str:
    """An error message kept short for a reason (a server may echo a whole request)."""
    return text if len(text) <= max_chars else f"{text[: max_chars - 1]}…"
