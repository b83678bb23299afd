"""What an investigation is about, its bounds, and how it reaches the graph.

An investigation starts from one of two inputs:

- a flag from micro-analysis: ``{"rule", "entity_type", "entity_id", "window_start",
  "window_end", "observed", "threshold", "severity", "summary"...}`` (also accepted
  wrapped as ``{"flag": {...}}``);
- a hand-started one from the console: ``{"entity_type": "account", "entity_id": "..."}``
  with optional ``reference_time`` and ``requested_by``;
- the re-look of a flag (``relook_of`` set: see :func:`fraudcore.micro.relook`): the
  same flag, looked at again at its ``evaluation_time``.

Both become an :class:`Investigation`, passed from step to step as ``$.investigation``.
Its ``reference_time`` (the flag's ``window_end``, the re-look's time, or the start time of
a hand-started investigation) anchors every time-bounded query, so a replay answers the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from ..graph import schema
from ..timeutil import iso_z, parse_utc

MANUAL_TRIGGER = "manual"
FLAG_TRIGGER = "flag"
RELOOK_TRIGGER = "relook"

#: risk a flag carries into scoring when it gives no score of its own
SEVERITY_RISK = {"low": 0.3, "medium": 0.5, "high": 0.7, "critical": 0.9}
#: rules whose hits are about money moved by a group: a cluster they touch is never waved
#: through as a household. ``amount_spike`` is not among them: it compares one account with
#: its own habit, so a family member's large one-off payment says nothing about the home the
#: family shares; the account is judged on its own evidence and the family stays a
#: household, not a ring.
HIGH_VALUE_RULES = frozenset({"high_value_burst"})


class InvalidInvestigationInput(ValueError):
    """The investigation's input is malformed; the message names the field and the fix."""


class EntityNotInGraph(LookupError):
    """A flagged entity has no vertex yet: ingest may not have caught up (the workflow retries)."""


class EntityNotFound(LookupError):
    """A hand-started investigation names an entity the graph does not hold: nothing to wait
    for (the workflow does not retry it)."""


def parse_time(value: Any, name: str) -> datetime:
    """ISO 8601 text or epoch milliseconds -> an aware UTC datetime; errors name the field."""
    try:
        return parse_utc(value)
    except ValueError as error:
        raise InvalidInvestigationInput(f"{name}: {error}") from None


def epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


@dataclass(frozen=True)
class Investigation:
    """The subject and context of one investigation (``$.investigation`` in the workflow)."""

    entity_type: str
    entity_id: str
    trigger: str  # "flag" (micro-analysis), "relook" (a flag looked at again) or "manual" (an analyst)
    rule: str  # the micro-analysis rule id, or "manual"
    reference_time: str  # ISO 8601 UTC: the flag's window_end, or when an analyst started it
    risk_score: float
    window_start: str | None = None
    window_end: str | None = None
    severity: str | None = None
    observed: float | None = None
    threshold: float | None = None
    summary: str = ""
    requested_by: str | None = None
    #: the execution name of the investigation a re-look looks at again
    relook_of: str | None = None

    @property
    def vertex_id(self) -> str:
        return schema.vertex_id(schema.ENTITY_TYPES[self.entity_type], self.entity_id)

    @property
    def reference_ms(self) -> int:
        return epoch_ms(parse_time(self.reference_time, "reference_time"))

    @property
    def is_manual(self) -> bool:
        return self.trigger == MANUAL_TRIGGER

    @property
    def is_relook(self) -> bool:
        return self.trigger == RELOOK_TRIGGER

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Investigation:
        """Rebuild from ``$.investigation`` (what the flag step returned)."""
        if not isinstance(data, Mapping):
            raise InvalidInvestigationInput(
                f"investigation: expected the object the flag step returned, got {type(data).__name__}"
            )
        missing = [
            k for k in ("entity_type", "entity_id", "trigger", "rule", "reference_time") if not data.get(k)
        ]
        if missing:
            raise InvalidInvestigationInput(
                f"investigation: missing {', '.join(missing)}; pass the flag step's output as $.investigation"
            )
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        values.setdefault("risk_score", 0.0)
        return cls(**values)


def _entity(data: Mapping[str, Any]) -> tuple[str, str]:
    entity_type = data.get("entity_type")
    entity_id = data.get("entity_id")
    if not isinstance(entity_type, str) or entity_type not in schema.ENTITY_TYPES:
        raise InvalidInvestigationInput(
            f"entity_type={entity_type!r}: expected one of {', '.join(schema.ENTITY_TYPES)}"
        )
    if isinstance(entity_id, int) and not isinstance(entity_id, bool):
        entity_id = str(entity_id)
    if not isinstance(entity_id, str) or not entity_id.strip():
        raise InvalidInvestigationInput(
            f"entity_id={entity_id!r}: expected the id of the {entity_type}, e.g. '1234-5678-22'"
        )
    entity_id = entity_id.strip()
    prefix = f"{entity_type}:"
    # An analyst may paste a vertex id ("account:123"): accept it.
    return entity_type, entity_id.removeprefix(prefix)


def _number(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidInvestigationInput(f"{name}={value!r}: expected a number")
    try:
        return float(value)
    except ValueError:
        raise InvalidInvestigationInput(f"{name}={value!r}: expected a number") from None


def _flag_risk(flag: Mapping[str, Any]) -> float:
    for key in ("risk_score", "score"):
        number = _number(flag.get(key), key)
        if number is not None:
            if not 0.0 <= number <= 1.0:
                raise InvalidInvestigationInput(f"{key}={number}: expected a value between 0 and 1")
            return number
    severity = str(flag.get("severity") or "medium").lower()
    return SEVERITY_RISK.get(severity, SEVERITY_RISK["medium"])


def parse_investigation_input(event: Mapping[str, Any], now: datetime) -> Investigation:
    """A flag or a hand-started request -> an :class:`Investigation` (raises naming what is wrong)."""
    if not isinstance(event, Mapping):
        raise InvalidInvestigationInput(
            f"input: expected a JSON object (a flag, or {{'entity_type': 'account', 'entity_id': '...'}}), "
            f"got {type(event).__name__}"
        )
    data: Mapping[str, Any] = event["flag"] if isinstance(event.get("flag"), Mapping) else event
    entity_type, entity_id = _entity(data)
    rule = data.get("rule")
    if rule is None or rule == MANUAL_TRIGGER:
        reference = (
            parse_time(data["reference_time"], "reference_time") if data.get("reference_time") else now
        )
        return Investigation(
            entity_type=entity_type,
            entity_id=entity_id,
            trigger=MANUAL_TRIGGER,
            rule=MANUAL_TRIGGER,
            reference_time=iso_z(reference, "milliseconds"),
            risk_score=0.0,
            summary=str(
                data.get("summary") or f"Investigation of {entity_type} {entity_id} started by hand."
            ),
            requested_by=data.get("requested_by"),
        )
    if not isinstance(rule, str) or not rule.strip():
        raise InvalidInvestigationInput(
            f"rule={rule!r}: expected the id of the micro-analysis rule that flagged it"
        )
    if not data.get("window_end"):
        raise InvalidInvestigationInput(
            f"flag {rule} on {entity_type} {entity_id}: window_end is missing; a flag needs its window "
            "(window_start, window_end) so the investigation looks at the same time"
        )
    window_end = parse_time(data["window_end"], "window_end")
    window_start = parse_time(data["window_start"], "window_start") if data.get("window_start") else None
    summary = data.get("summary") or data.get("sentence") or data.get("description") or data.get("reason")
    relook_of = data.get("relook_of")
    reference = window_end
    if relook_of is not None:
        if not isinstance(relook_of, str) or not relook_of.strip():
            raise InvalidInvestigationInput(
                f"relook_of={relook_of!r}: expected the execution name of the investigation looked at again"
            )
        if not data.get("evaluation_time"):
            raise InvalidInvestigationInput(
                f"re-look of {relook_of}: evaluation_time is missing; a re-look looks at what happened "
                "up to its own time"
            )
        reference = parse_time(data["evaluation_time"], "evaluation_time")
        if reference < window_end:
            raise InvalidInvestigationInput(
                f"re-look of {relook_of}: evaluation_time {iso_z(reference)} is before the window's end "
                f"{iso_z(window_end)}"
            )
    return Investigation(
        entity_type=entity_type,
        entity_id=entity_id,
        trigger=FLAG_TRIGGER if relook_of is None else RELOOK_TRIGGER,
        rule=rule.strip(),
        reference_time=iso_z(reference, "milliseconds"),
        risk_score=_flag_risk(data),
        window_start=iso_z(window_start, "milliseconds") if window_start else None,
        window_end=iso_z(window_end, "milliseconds"),
        severity=str(data["severity"]) if data.get("severity") else None,
        observed=_number(data.get("observed"), "observed"),
        threshold=_number(data.get("threshold"), "threshold"),
        summary=str(summary or f"{rule} flagged {entity_type} {entity_id}."),
        relook_of=relook_of.strip() if relook_of else None,
    )


# -- bounds -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RingLimits:
    """Bounds of the ring analysis (see docs in :mod:`fraudcore.investigation.ring`)."""

    #: account-to-account links through a shared identifier, from the flagged entity
    max_hops: int = 2
    #: beyond ``max_hops``, links through a card, an email or a phone (one customer's) are
    #: followed up to this many hops: a ring chained pair by pair through card numbers and
    #: phones is one ring, while an IP or a device further out is a member's home or office
    max_personal_hops: int = 4
    #: identifiers followed per account per hop
    identifiers_per_account: int = 20
    #: an identifier used by more accounts than this links nobody (public IP, office device);
    #: IPs are shared by NATs and cafes, so their cutoff is lower
    max_identifier_degree: Mapping[str, int] = field(
        default_factory=lambda: {"device": 25, "card": 25, "ip": 15, "email": 15, "phone": 15}
    )
    #: most accounts in a ring
    member_cap: int = 50
    #: degrees are counted up to this many accounts
    degree_count_cap: int = 10_000
    #: wall-clock budget for the whole analysis, checked between hops (each request also
    #: carries the connection's evaluation timeout)
    time_budget_ms: int = 20_000

    def degree_cutoff(self, label: str) -> int:
        return int(self.max_identifier_degree.get(label, 25))


@dataclass(frozen=True)
class MoneyFlowLimits:
    max_hops: int = 3
    transfers_per_account: int = 50
    max_chains: int = 50
    time_budget_ms: int = 20_000


@dataclass(frozen=True)
class SharedDeviceLimits:
    #: accounts listed (with first/last seen) per device or IP
    accounts_listed: int = 50
    #: devices and IPs of an account looked at
    identifiers_per_account: int = 20
    degree_count_cap: int = 10_000


def limits_from(cls: type, overrides: Mapping[str, Any] | None) -> Any:
    """Limits with the given overrides (an event's ``limits``), naming unknown keys."""
    if not overrides:
        return cls()
    if not isinstance(overrides, Mapping):
        raise InvalidInvestigationInput(f"limits: expected an object, got {type(overrides).__name__}")
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise InvalidInvestigationInput(
            f"limits: unknown {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return cls(**overrides)


def plain_id(vertex_id: str) -> str:
    """``account:123`` -> ``123``."""
    return schema.split_vertex_id(vertex_id)[1]


def label_of(vertex_id: str) -> str:
    return schema.split_vertex_id(vertex_id)[0]
