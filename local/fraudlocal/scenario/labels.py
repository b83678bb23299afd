"""Ground-truth labels: one per labelled account, written and read as JSON lines."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FRAUD = "fraud"
CONFOUNDER = "confounder"

FRAUD_PATTERNS = ("fraud_ring", "card_testing", "account_takeover", "mule_chain", "device_farm")
CONFOUNDER_PATTERNS = (
    "household",
    "public_ip",
    "office_device",
    "big_spender",
    "traveller",
    "shared_card_family",
    "large_transfer",
    "carrier_nat",
)
PATTERNS = FRAUD_PATTERNS + CONFOUNDER_PATTERNS
#: the label each generated pattern carries
PATTERN_LABEL = {**dict.fromkeys(FRAUD_PATTERNS, FRAUD), **dict.fromkeys(CONFOUNDER_PATTERNS, CONFOUNDER)}

#: pattern given to a user's label line that names none
UNSPECIFIED_PATTERN = "unspecified"


class LabelsError(ValueError):
    """A labels file that cannot be read: the message names the file, the line and the problem."""


@dataclass(frozen=True, slots=True)
class Label:
    """What an account really is: planted fraud or a confounder (benign but fraud-like)."""

    account_id: str
    label: str
    pattern: str
    ring_id: str | None = None
    #: what the account did in its group (``collector``, ``source``, ``victim``...)
    role: str | None = None
    #: which form of the pattern its group took (``fan_in``, ``synthetic_identity``...)
    variant: str | None = None

    @property
    def is_fraud(self) -> bool:
        return self.label == FRAUD

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "label": self.label,
            "pattern": self.pattern,
            "ring_id": self.ring_id,
            "role": self.role,
            "variant": self.variant,
        }


def dump_labels(labels: dict[str, Label]) -> str:
    """The labels file's text: one object per line, sorted by account id."""
    lines = (json.dumps(labels[key].to_json_dict(), separators=(",", ":")) for key in sorted(labels))
    return "".join(f"{line}\n" for line in lines)


def _label_from_object(data: Any) -> Label:
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    account_id = data.get("account_id")
    if not isinstance(account_id, str | int) or isinstance(account_id, bool) or not str(account_id).strip():
        raise ValueError("account_id: required, a non-empty string")
    label = data.get("label")
    if label not in (FRAUD, CONFOUNDER):
        raise ValueError(f"label: must be 'fraud' or 'confounder' (got {label!r})")
    pattern = data.get("pattern") or UNSPECIFIED_PATTERN
    if not isinstance(pattern, str):
        raise ValueError(f"pattern: must be a string (got {pattern!r})")
    expected = PATTERN_LABEL.get(pattern)
    if expected is not None and expected != label:
        raise ValueError(f"pattern {pattern!r} is a {expected} pattern but label is {label!r}")
    ring_id = data.get("ring_id")
    if ring_id is not None and not isinstance(ring_id, str | int):
        raise ValueError(f"ring_id: must be a string or null (got {ring_id!r})")
    extras = {}
    for key in ("role", "variant"):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{key}: must be a string or null (got {value!r})")
        extras[key] = value
    return Label(
        account_id=str(account_id).strip(),
        label=label,
        pattern=pattern,
        ring_id=None if ring_id is None else str(ring_id),
        **extras,
    )


def parse_labels(lines: Any, source: str = "<labels>") -> dict[str, Label]:
    """Labels from JSON lines (any iterable of text lines); blank lines are skipped."""
    labels: dict[str, Label] = {}
    seen_on: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            label = _label_from_object(json.loads(text))
        except json.JSONDecodeError as error:
            raise LabelsError(f"{source}, line {number}: not valid JSON ({error.msg})") from None
        except ValueError as error:
            raise LabelsError(f"{source}, line {number}: {error}") from None
        if label.account_id in labels:
            raise LabelsError(
                f"{source}, line {number}: account {label.account_id!r} is already labelled "
                f"on line {seen_on[label.account_id]}; give each account one label"
            )
        labels[label.account_id] = label
        seen_on[label.account_id] = number
    return labels


def load_labels(path: str | Path) -> dict[str, Label]:
    """Read a labels file (see :mod:`fraudlocal.scenario`) into ``{account_id: Label}``.

    Labels from other sources are accepted too: ``pattern`` may be any text (or absent),
    ``ring_id`` may be absent. Raises :class:`LabelsError` naming the line at fault.
    """
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as handle:
            return parse_labels(handle, source=str(path))
    except FileNotFoundError:
        raise LabelsError(f"labels file {path} does not exist") from None
    except UnicodeDecodeError:
        raise LabelsError(f"labels file {path} is not UTF-8 text") from None
