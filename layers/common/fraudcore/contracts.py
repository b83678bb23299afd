"""What passes between the steps, typed: the flag, each analysis' result, the case.

These are the payloads the investigation state machine carries (``$.investigation``,
``$.ring``, ``$.shared_device``, ``$.money_flow``, the case summary) and the flag
micro-analysis starts it with. Each model dumps (:meth:`Contract.payload`) to exactly the
JSON the steps exchanged before there were models, so the ASL's JSONPaths
(``$.investigation.entity_type``, ``$.verdict`` ...) keep working; reading a payload back
(:meth:`Contract.parse`) fails at once, naming the field, when a step sent something else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

#: a number as the step computed it: an int stays an int in the JSON, a float a float
Number = int | float
#: every verdict, the most severe first: a ring (accounts acting together), an account
#: taken over (a victim and the payees the intruder paid: not a ring), suspicious, cleared
Verdict = Literal["fraud_ring", "account_takeover", "suspicious", "cleared"]
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)
#: the verdicts that count as detecting fraud (the case goes to an analyst or flags a ring)
DETECTING_VERDICTS: tuple[Verdict, ...] = tuple(v for v in VERDICTS if v != "cleared")
AnalysisName = Literal["ring", "shared_device", "money_flow"]
ANALYSES: tuple[AnalysisName, ...] = get_args(AnalysisName)


class ContractError(ValueError):
    """A step's payload does not have the shape the next step reads."""


class Contract(BaseModel):
    """A payload between steps: fields in the order the JSON has them."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def payload(self) -> dict[str, Any]:
        """The JSON object the state machine carries (fields a producer left out stay out)."""
        return self.model_dump(by_alias=True, exclude_unset=True)

    @classmethod
    def parse(cls, data: Mapping[str, Any] | Self, what: str) -> Self:
        if isinstance(data, cls):
            return data
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in error.errors()
            )
            raise ContractError(f"{what}: {problems}") from None


# -- micro-analysis -> investigation ---------------------------------------------------------


class Flag(Contract):
    """One rule hit on one entity in one window: the input of its investigation."""

    model_config = ConfigDict(frozen=True)

    rule: str
    entity_type: str
    entity_id: str
    window_start: str
    window_end: str
    observed: Number
    threshold: Number
    severity: str
    description: str
    execution_name: str
    evaluation_time: str
    #: set when the rule rechecks on close and the window has closed: the name of the
    #: investigation that looks again at the whole window (see ``recheck_on_close``)
    recheck_execution_name: str | None = None
    #: set on the re-look of a hit (a rule with ``relook_after``): the execution name of the
    #: investigation it looks again after; ``evaluation_time`` is then the re-look's time
    relook_of: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = self.model_dump()
        if data["relook_of"] is None:
            del data["relook_of"]  # a flag is what it always was; only a re-look says so
        return data


# -- the analyses ------------------------------------------------------------------------------


class Entity(Contract):
    type: str
    id: str


class Truncation(Contract):
    """A bound that cut the search short, and how."""

    reason: str
    detail: str


class SharedIdentifier(Contract):
    """An identifier two or more ring members use."""

    type: str
    id: str
    degree: int
    accounts: list[str]


class SkippedIdentifier(Contract):
    """An identifier too widely used to expand (a public IP, a payment processor's card)."""

    type: str
    id: str
    degree: int


class CashingOut(Contract):
    """A ring member whose card payments come to thousands at a thousand or more a payment."""

    account: str
    amount: Number
    payments: int


class RingAnalysis(Contract):
    analysis: Literal["ring"] = "ring"
    start: Entity | None = None
    members: list[str]
    shared_identifiers: list[SharedIdentifier]
    skipped_identifiers: list[SkippedIdentifier] = Field(default_factory=list)
    flagged_members: list[str] = Field(default_factory=list)
    density: Number
    flagged_share: Number
    ring_score: Number
    benign_cluster: bool = False
    cashing_out: list[CashingOut] = Field(default_factory=list)
    hops: int = 0
    truncated: bool = False
    truncation: list[Truncation] = Field(default_factory=list)
    requests: int = 0


class IdentifierUsage(Contract):
    """A device or IP of the investigation and the accounts that use it."""

    type: str
    id: str
    accounts: int
    accounts_last_24h: int
    account_ids: list[str]
    flagged_accounts: list[str]
    first_seen: int | None = None
    last_seen: int | None = None
    first_seen_at: str | None = None
    last_seen_at: str | None = None
    #: devices: the accounts that use no other device
    dedicated_accounts: list[str] | None = None
    #: IPs: how many devices are behind it
    devices_behind: int | None = None
    usage_class: Literal["single_user", "household", "shared_public", "device_farm"] = Field(alias="class")


class AccountChange(Contract):
    """Which devices, IPs and countries carried the flagged money, and which are new."""

    flagged_amount: Number
    new_devices: list[str]
    new_ips: list[str]
    new_countries: list[str]
    known_countries: list[str]
    usual_devices: list[str]
    established_since: int | None
    established_since_at: str | None
    #: payments the account made before the new device appeared (before the window without one)
    prior_payments: int = 0
    new_device_first_seen_at: str | None
    #: the same time in epoch ms (None without a new device)
    new_device_first_seen: int | None = None
    own_network: bool
    takeover: bool


class TimeWindow(Contract):
    start: str
    end: str


class SharedDeviceAnalysis(Contract):
    analysis: Literal["shared_device"] = "shared_device"
    start: Entity | None = None
    window: TimeWindow | None = None
    identifiers: list[IdentifierUsage] = Field(default_factory=list)
    classes: list[str] = Field(default_factory=list)
    account_change: AccountChange | None = None
    thresholds: dict[str, Number] = Field(default_factory=dict)
    timeseries_queries: list[str] = Field(default_factory=list)
    truncated: bool = False
    truncation: list[Truncation] = Field(default_factory=list)
    requests: int = 0


class MoneyChain(Contract):
    """Accounts the money moved through, in its direction, and the amount of each transfer."""

    accounts: list[str]
    amounts: list[Number]
    hops: int


class DirectTransfer(Contract):
    """The investigated account's transfers with one counterparty: who fed it, whom it paid."""

    account: str
    amount: Number
    transfers: int
    first_seen: int
    last_seen: int


class MoneyFlowAnalysis(Contract):
    analysis: Literal["money_flow"] = "money_flow"
    start: Entity
    fan_out: int
    fan_in: int
    amount_out: Number
    amount_in: Number
    pass_through: Number
    chains_out: list[MoneyChain] = Field(default_factory=list)
    chains_in: list[MoneyChain] = Field(default_factory=list)
    cycles: list[MoneyChain] = Field(default_factory=list)
    longest_chain: int = 0
    accounts_downstream: list[str] = Field(default_factory=list)
    accounts_upstream: list[str] = Field(default_factory=list)
    flagged_accounts: list[str] = Field(default_factory=list)
    transfers_in: list[DirectTransfer] = Field(default_factory=list)
    transfers_out: list[DirectTransfer] = Field(default_factory=list)
    truncated: bool = False
    truncation: list[Truncation] = Field(default_factory=list)
    requests: int = 0


class Analyses(Contract):
    """What the record step receives as ``$.analyses``: the analyses that ran."""

    ring: RingAnalysis | None = None
    shared_device: SharedDeviceAnalysis | None = None
    money_flow: MoneyFlowAnalysis | None = None


# -- the case ----------------------------------------------------------------------------------


class CaseReason(Contract):
    """A finding: which analysis made it, the sentence an analyst reads, its strength, the evidence."""

    signal: str
    sentence: str
    strength: Number
    evidence: dict[str, Any] = Field(default_factory=dict)


class MemberRole(Contract):
    """What a case member did: ``collector``, ``source``, ``cash_out``, ``victim``... and, for a
    role played by transfers, how much moved and when (epoch ms)."""

    role: str
    amount: Number | None = None
    first_seen: int | None = None
    last_seen: int | None = None


class Relook(Contract):
    """What a re-look of a flag did to the case."""

    outcome: Literal["raised", "lowered", "confirmed", "grown", "kept", "not_applied"]
    relook_of: str | None = None


class CaseSummary(Contract):
    """The record step's output (and the ``FraudCaseOpened``/``FraudCaseUpdated`` detail)."""

    #: None when the investigation found no account to hold a case (status ``no_case``)
    case_id: str | None
    status: Literal["opened", "updated", "no_case"]
    verdict: Verdict
    score: Number
    investigation_verdict: Verdict
    investigation_score: Number
    members: list[str]
    #: member -> the role it played (absent from summaries written before roles existed)
    roles: dict[str, MemberRole] = Field(default_factory=dict)
    reasons: list[CaseReason]
    entity: Entity
    trigger: str
    rule: str | None = None
    reference_time: str
    flags_propagated: list[str] = Field(default_factory=list)
    matched_existing_case: Number | None = None
    #: the other cases that share a member with this one
    related_cases: list[str] = Field(default_factory=list)
    #: the more severe case every member of this one belongs to
    superseded_by: str | None = None
    #: present (true) when the case's verdict rests on an absence: a re-look may lower it
    provisional: bool | None = None
    #: a re-look's outcome (raised, lowered, confirmed, grown, kept, not_applied) and what it looked at again
    relook: Relook | None = None
