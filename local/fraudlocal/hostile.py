"""Records as an attacker or an unlucky producer sends them: valid ones with awkward values,
and hostile ones that must be rejected with a reason.

Used by the property-based tests (driven by Hypothesis' random source) and by
``bench/fuzz.py`` (a seeded :class:`random.Random`), so both throw the same kinds of input.
Every hostile kind is invalid by construction: a correct ingest rejects it, whatever the
random draws.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fraudcore.limits import MAX_IDENTIFIER_BYTES, MAX_JSON_DEPTH, MAX_RECORD_BYTES

#: characters that break naive composite ids, paths, SQL, Gremlin scripts and JSON
AWKWARD = "|:%/\\'\"`$#{}[]<>&;,?*~^ \u00e9\u4e2d\U0001f600\u200b\u202e"
BASE_TIME = datetime(2026, 11, 29, tzinfo=UTC)


def awkward_text(rng: random.Random, length: int) -> str:
    """Letters mixed with separators, quotes, non-ASCII and invisible characters."""
    alphabet = "abcxyz0189" + AWKWARD
    return "".join(rng.choice(alphabet) for _ in range(length))


def valid_record(rng: random.Random, prefix: str, index: int) -> dict[str, object]:
    """A canonical transaction that must be stored: awkward ids, edge-of-range values."""
    account = f"{prefix}a{rng.randrange(20)}{awkward_text(rng, rng.randrange(0, 6))}"
    record: dict[str, object] = {
        "transaction_id": f"{prefix}t{index}-{awkward_text(rng, rng.randrange(0, 8))}",
        "timestamp": _valid_time(rng),
        "account_id": account,
        "amount": rng.choice([0, 0.01, 1, 12.5, 999.99, 1e6, 1e12, rng.uniform(0, 5000)]),
    }
    for name in ("card_id", "device_id", "ip", "email", "phone", "merchant_id"):
        if rng.random() < 0.6:
            record[name] = f"{prefix}{name[0]}{awkward_text(rng, rng.randrange(1, 10))}"
    if rng.random() < 0.2:
        record["counterparty_account_id"] = f"{prefix}a{rng.randrange(20)}"
    if rng.random() < 0.1:  # the longest identifier accepted
        record["device_id"] = (prefix + "d" * MAX_IDENTIFIER_BYTES)[:MAX_IDENTIFIER_BYTES]
    return record


def _valid_time(rng: random.Random) -> object:
    moment = BASE_TIME + timedelta(seconds=rng.randrange(-86_400, 86_400), microseconds=rng.randrange(10**6))
    form = rng.randrange(4)
    if form == 0:
        return moment.isoformat().replace("+00:00", "Z")
    if form == 1:
        return int(moment.timestamp() * 1000)
    if form == 2:  # an offset that moves the day
        return (moment.astimezone(tz=None)).isoformat()
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123-05:00"  # nanoseconds and an offset


def _base(rng: random.Random, prefix: str, index: int) -> dict[str, object]:
    record = valid_record(rng, prefix, index)
    record.pop("counterparty_account_id", None)
    return record


def _with(rng: random.Random, prefix: str, index: int, **changes: object) -> bytes:
    record = _base(rng, prefix, index)
    record.update(changes)
    return json.dumps(record).encode()


def _raw(record: dict[str, object], **replacements: str) -> bytes:
    text = json.dumps(record)
    for placeholder, literal in replacements.items():
        text = text.replace(json.dumps(placeholder), literal)
    return text.encode()


def _huge_integer(rng: random.Random, prefix: str, i: int) -> bytes:
    record = _base(rng, prefix, i)
    record["amount"] = "@AMOUNT@"
    return _raw(record, **{"@AMOUNT@": "9" * rng.randrange(41, 6000)})


def _huge_float(rng: random.Random, prefix: str, i: int) -> bytes:
    return _with(rng, prefix, i, amount=rng.choice([1e308, 1.7976931348623157e308, 1e13, 5e15]))


def _overflowing_float_literal(rng: random.Random, prefix: str, i: int) -> bytes:
    record = _base(rng, prefix, i)
    record["amount"] = "@AMOUNT@"
    return _raw(record, **{"@AMOUNT@": rng.choice(["1e309", "-1e999", "1" + "0" * 400 + ".5"])})


def _nan_or_infinity(rng: random.Random, prefix: str, i: int) -> bytes:
    record = _base(rng, prefix, i)
    record["amount"] = "@AMOUNT@"
    return _raw(record, **{"@AMOUNT@": rng.choice(["NaN", "Infinity", "-Infinity"])})


def _non_finite_text(rng: random.Random, prefix: str, i: int) -> bytes:
    return _with(rng, prefix, i, amount=rng.choice(["nan", "inf", "-inf", "1e400", "12,5"]))


def _negative_amount(rng: random.Random, prefix: str, i: int) -> bytes:
    return _with(rng, prefix, i, amount=-rng.uniform(0.01, 1e6))


def _odd_date(rng: random.Random, prefix: str, i: int) -> bytes:
    value = rng.choice(
        [
            "9999-12-31T23:59:59-23:59",
            "0001-01-01T00:00:00+23:59",
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "2300-01-01T00:00:00Z",
            "yesterday",
            "",
            "9" * rng.randrange(20, 400),
            str(-rng.randrange(1, 10**12)),
        ]
    )
    return _with(rng, prefix, i, timestamp=value)


def _epoch_out_of_range(rng: random.Random, prefix: str, i: int) -> bytes:
    return _with(rng, prefix, i, timestamp=rng.choice([10**19, -(10**19), 1e300, 253_402_300_800_000, -1]))


def _deep_nesting(rng: random.Random, prefix: str, i: int) -> bytes:
    depth = rng.choice([MAX_JSON_DEPTH + 1, 100, 5000, 200_000])
    record = _base(rng, prefix, i)
    record["extra"] = "@NEST@"
    return _raw(record, **{"@NEST@": "[" * depth + "]" * depth})


def _long_identifier(rng: random.Random, prefix: str, i: int) -> bytes:
    field = rng.choice(["transaction_id", "account_id", "card_id", "email", "device_id"])
    length = rng.choice([MAX_IDENTIFIER_BYTES + 1, 5000, 60_000])
    return _with(rng, prefix, i, **{field: prefix + "x" * length})


def _control_character(rng: random.Random, prefix: str, i: int) -> bytes:
    field = rng.choice(["transaction_id", "account_id", "card_id", "ip", "phone"])
    bad = rng.choice(["\x00", "\x07", "\n", "\x1b", "\x7f", "\x85", "\ud800", "\udfff", "\uffff"])
    return _with(rng, prefix, i, **{field: f"{prefix}id{bad}x"})


def _oversized_record(rng: random.Random, prefix: str, i: int) -> bytes:
    return _with(rng, prefix, i, note="n" * (MAX_RECORD_BYTES + rng.randrange(1, 10_000)))


def _missing_field(rng: random.Random, prefix: str, i: int) -> bytes:
    record = _base(rng, prefix, i)
    record.pop(rng.choice(["transaction_id", "timestamp", "amount"]))
    return json.dumps(record).encode()


def _wrong_types(rng: random.Random, prefix: str, i: int) -> bytes:
    field, value = rng.choice(
        [
            ("account_id", {"nested": True}),
            ("account_id", [1, 2]),
            ("amount", True),
            ("amount", None),
            ("timestamp", True),
            ("card_id", 1.5),
            ("currency", "DOLLARS"),
        ]
    )
    return _with(rng, prefix, i, **{field: value})


def _not_json(rng: random.Random, prefix: str, i: int) -> bytes:
    return rng.choice([b"{", b"not json", b"\xff\xfe\x00garbage", b"[1,2,3]", b"42", b'"text"', b"null", b""])


HostileKind = Callable[[random.Random, str, int], bytes]

#: every kind of hostile record; each one is rejected by a correct ingest
HOSTILE_KINDS: dict[str, HostileKind] = {
    "huge_integer": _huge_integer,
    "huge_float": _huge_float,
    "overflowing_float_literal": _overflowing_float_literal,
    "nan_or_infinity": _nan_or_infinity,
    "non_finite_text": _non_finite_text,
    "negative_amount": _negative_amount,
    "odd_date": _odd_date,
    "epoch_out_of_range": _epoch_out_of_range,
    "deep_nesting": _deep_nesting,
    "long_identifier": _long_identifier,
    "control_character": _control_character,
    "oversized_record": _oversized_record,
    "missing_field": _missing_field,
    "wrong_types": _wrong_types,
    "not_json": _not_json,
}


def hostile_record(rng: random.Random, prefix: str, index: int, kind: str | None = None) -> bytes:
    """One hostile record, of ``kind`` or of a random kind."""
    chosen = kind or rng.choice(sorted(HOSTILE_KINDS))
    return HOSTILE_KINDS[chosen](rng, prefix, index)
