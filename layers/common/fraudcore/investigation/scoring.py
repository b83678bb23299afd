"""Score the evidence of an investigation and decide: ``fraud_ring``, ``account_takeover``,
``suspicious``, ``cleared``.

Pure functions (no I/O), so every threshold is tested directly.

Each finding becomes a :class:`Reason`: a sentence an analyst reads, the structured
evidence behind it, and a signal strength in 0..1. Signals combine as independent
evidence (noisy-or: ``1 - prod(1 - s)``), so two moderate findings outweigh one, and no
amount of findings exceeds 1:

=================================  =========================================================
finding                            signal
=================================  =========================================================
the micro-analysis flag            half its risk score (a rule hit alone is not a verdict;
                                   card testing, severity critical, is 0.45: suspicious)
a ring (2+ accounts, not benign)   its ring score
members cashing out                0.5: two or more members of a ring that is not benign
                                   each paid 2,000+ at 1,000+ a payment
a device farm                      0.75, 0.85 when some of its accounts are flagged
money returning to the account     0.8
a mule pattern                     0.6: 5,000+ in from 2+ senders, 80 %+ forwarded on
a pass-through hop                 0.5: 5,000+ received, 80 %+ forwarded on (layering)
money from or to flagged accounts  0.5: through transfers of 5,000+ each
wide fan-out / fan-in (5+)         0.4
account takeover                   0.5: a device new to an established account carried
                                   the flagged money; 0.6 with a new IP or country too
=================================  =========================================================

Mitigating findings (a household pattern, a public IP, a shared office device) are
reasons with signal 0; a household pattern caps the score at :data:`HOUSEHOLD_CAP` when
nothing else is wrong. So does, at :data:`SMALL_CLUSTER_CAP`, a small uncorroborated
cluster: two or three accounts sharing a card, an email or a phone, flagged for that
sharing alone (severity medium or low), none of them flagged, with no money-flow, device or
cash-out evidence; such a pair is as often a family as a ring, and the sharing rules
investigate again as evidence accumulates. Two of them spending thousands at once is not
what families do (a family's large one-off payment is one member's): that lifts the cap.

Members of the case: the ring's members, the accounts of device farms, and, when the
money flow shows a pattern (a cycle, a mule, a pass-through hop, flagged counterparties),
the accounts the money moved through in transfers of :data:`MATERIAL_TRANSFER_MIN` or
more, up to the analysis' hop bound (everyday transfers between people are far smaller,
so a friend who once sent 50 is not pulled into a mule's case).

Verdict: ``account_takeover`` when the score reaches :data:`FRAUD_RING_MIN` and the case
is a takeover alone (its members are the victim and the payees the intruder paid, nothing
links them otherwise: a victim and a beneficiary are not a ring, and the victim's flags
must not spread to them as a ring's do); ``fraud_ring`` when the score reaches
:data:`FRAUD_RING_MIN` and the case has two or more accounts; ``suspicious`` from
:data:`SUSPICIOUS_MIN`; ``cleared`` below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# the verdict order lives in fraudcore.contracts; re-exported for the modules that read it here
from ..contracts import DETECTING_VERDICTS as DETECTING_VERDICTS
from ..contracts import VERDICTS as VERDICTS
from ..contracts import CaseReason
from .model import Investigation, epoch_ms, parse_time

FRAUD_RING_MIN = 0.7
SUSPICIOUS_MIN = 0.4
HOUSEHOLD_CAP = 0.3
#: a cluster of at most this many accounts, flagged only for sharing an identifier and with
#: no other evidence, is scored at most SMALL_CLUSTER_CAP (families are 2-3 people)
SMALL_CLUSTER_MAX = 3
SMALL_CLUSTER_CAP = 0.35
DEVICE_FARM_SIGNAL = 0.75
DEVICE_FARM_FLAGGED_SIGNAL = 0.85
CYCLE_SIGNAL = 0.8
MULE_SIGNAL = 0.6
MULE_PASS_THROUGH_MIN = 0.8
MULE_SENDERS_MIN = 2
WIDE_FAN = 5
WIDE_FAN_SIGNAL = 0.4
PASS_THROUGH_SIGNAL = 0.5
FLAGGED_MONEY_SIGNAL = 0.5
#: two or more members of a ring (not a benign cluster) spending thousands at once
CASH_OUT_SIGNAL = 0.5
CASH_OUT_MEMBERS_MIN = 2
#: a transfer this large carries the money of a laundering pattern: half the 10,000 the
#: mule_pass_through rule looks for, far above everyday transfers between people
MATERIAL_TRANSFER_MIN = 5_000.0
TAKEOVER_SIGNAL = 0.5
TAKEOVER_CORROBORATED_SIGNAL = 0.6
#: most accounts recorded in one case
CASE_MEMBER_CAP = 100
#: a direct transfer belongs to a money-flow pattern found around a flag when it was made
#: within this long before the flag's window began, or after: the sources that fed a
#: collector within hours, the accounts it paid out to
ROLE_TRANSFER_LOOKBACK_MS = 6 * 3_600_000


@dataclass(frozen=True)
class Reason:
    signal: str  # which analysis found it: flag, ring, shared_device, money_flow
    sentence: str
    strength: float
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return CaseReason(
            signal=self.signal,
            sentence=self.sentence,
            strength=round(self.strength, 3),
            evidence=dict(self.evidence),
        ).payload()


@dataclass(frozen=True)
class Assessment:
    verdict: str
    score: float
    members: list[str]
    reasons: list[Reason]
    #: member -> what it did: {role, and for money roles amount, first_seen, last_seen}
    roles: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def sentences(self) -> list[str]:
        return [r.sentence for r in self.reasons]


def _names(ids: list[str], limit: int = 6) -> str:
    shown = ", ".join(ids[:limit])
    return shown if len(ids) <= limit else f"{shown} and {len(ids) - limit} more"


def _money(amount: float) -> str:
    return f"{amount:,.2f}"


def flag_reasons(investigation: Investigation) -> list[Reason]:
    if investigation.is_manual:
        return []
    evidence = {
        "rule": investigation.rule,
        "entity": f"{investigation.entity_type}:{investigation.entity_id}",
        "window_start": investigation.window_start,
        "window_end": investigation.window_end,
        "observed": investigation.observed,
        "threshold": investigation.threshold,
        "severity": investigation.severity,
        "risk_score": investigation.risk_score,
    }
    sentence = (
        f"Micro-analysis rule {investigation.rule} flagged {investigation.entity_type} "
        f"{investigation.entity_id}: {investigation.summary.rstrip('.')}."
    )
    return [
        Reason(
            "flag",
            sentence,
            investigation.risk_score / 2,
            {k: v for k, v in evidence.items() if v is not None},
        )
    ]


def ring_reasons(ring: Mapping[str, Any] | None) -> list[Reason]:
    if not ring or len(ring.get("members", [])) < 2:
        return []
    members = list(ring["members"])
    shared = list(ring["shared_identifiers"])
    links = "; ".join(f"{s['type']} {s['id']} used by {_names(s['accounts'])}" for s in shared[:5])
    evidence = {
        "members": members,
        "shared_identifiers": shared,
        "density": ring["density"],
        "flagged_share": ring["flagged_share"],
        "ring_score": ring["ring_score"],
        "truncated": ring.get("truncated", False),
    }
    if ring.get("benign_cluster"):
        sentence = (
            f"Accounts {_names(members)} share only {' and '.join(sorted({s['type'] for s in shared}))} "
            f"({links}) and none of the others is flagged: a household pattern (people sharing a home or an office computer), not a ring."
        )
        return [Reason("ring", sentence, 0.0, {**evidence, "benign_cluster": True})]
    flagged = len(ring.get("flagged_members", []))
    sentence = (
        f"{len(members)} accounts ({_names(members)}) are linked through {len(shared)} shared "
        f"identifier{'s' if len(shared) != 1 else ''} ({links}); density {ring['density']:.2f}, "
        f"{flagged} already flagged; ring score {ring['ring_score']:.2f}."
    )
    if ring.get("truncated"):
        sentence += (
            " The search was bounded: " + "; ".join(t["detail"] for t in ring.get("truncation", [])) + "."
        )
    return [Reason("ring", sentence, float(ring["ring_score"]), evidence), *cash_out_reasons(ring)]


def cash_out_reasons(ring: Mapping[str, Any]) -> list[Reason]:
    """Two or more members of a ring that is not a benign cluster spent thousands with their
    cards at a thousand or more a payment: new accounts cashing out, not a family (a family's
    large one-off payment is one member's)."""
    cashing = list(ring.get("cashing_out") or [])
    if ring.get("benign_cluster") or len(cashing) < CASH_OUT_MEMBERS_MIN:
        return []
    spent = "; ".join(
        f"{c['account']} paid {_money(c['amount'])} in {c['payments']} payment{'s' if c['payments'] != 1 else ''}"
        for c in cashing[:5]
    )
    sentence = (
        f"{len(cashing)} of the {len(ring['members'])} linked accounts spent thousands with their cards at "
        f"1,000 or more a payment ({spent}): accounts cashing out together, not a family's everyday spending."
    )
    return [
        Reason(
            "cash_out",
            sentence,
            CASH_OUT_SIGNAL,
            {"members": [c["account"] for c in cashing], "cashing_out": cashing},
        )
    ]


def shared_device_reasons(shared_device: Mapping[str, Any] | None) -> list[Reason]:
    reasons: list[Reason] = []
    for item in (shared_device or {}).get("identifiers", []):
        kind, name = item["type"], item["id"]
        counts = f"{item['accounts']} accounts ({item['accounts_last_24h']} in the last 24 hours)"
        flagged = item["flagged_accounts"]
        evidence = {
            k: item[k] for k in ("type", "id", "accounts", "accounts_last_24h", "flagged_accounts", "class")
        }
        evidence |= {"first_seen_at": item.get("first_seen_at"), "last_seen_at": item.get("last_seen_at")}
        if item["class"] == "device_farm":
            strength = DEVICE_FARM_FLAGGED_SIGNAL if flagged else DEVICE_FARM_SIGNAL
            tail = f", {len(flagged)} of them already flagged" if flagged else ""
            reasons.append(
                Reason(
                    "shared_device",
                    f"{kind.upper() if kind == 'ip' else kind.capitalize()} {name} was used by {counts}{tail}: a device farm.",
                    strength,
                    evidence,
                )
            )
        elif item["class"] == "shared_public" and kind == "ip":
            reasons.append(
                Reason(
                    "shared_device",
                    f"IP {name} is shared by {counts} who use devices of their own: "
                    "a public network, not evidence of a link.",
                    0.0,
                    evidence,
                )
            )
        elif item["class"] == "shared_public":
            reasons.append(
                Reason(
                    "shared_device",
                    f"Device {name} is shared by {counts} who use devices of their own "
                    "(an office or family computer): not evidence of a link by itself.",
                    0.0,
                    evidence,
                )
            )
    change = (shared_device or {}).get("account_change")
    if change and change.get("takeover"):
        reasons.append(_takeover_reason(change))
    return reasons


def _takeover_reason(change: Mapping[str, Any]) -> Reason:
    devices = ", ".join(change["new_devices"])
    extra = []
    if change["new_ips"]:
        extra.append(f"IP {', '.join(change['new_ips'])}")
    if change["new_countries"]:
        extra.append(
            f"from {', '.join(change['new_countries'])} (before: {', '.join(change['known_countries'])})"
        )
    sentence = (
        f"The flagged {_money(change['flagged_amount'])} went through device {devices}, first used by the "
        f"account at {change['new_device_first_seen_at']}"
        + (f", with new {' and '.join(extra)}" if extra else "")
        + f"; the account, active since {change['established_since_at']}, had used "
        f"{', '.join(change['usual_devices'][:4])}: a likely account takeover."
    )
    strength = TAKEOVER_CORROBORATED_SIGNAL if extra else TAKEOVER_SIGNAL
    return Reason("shared_device", sentence, strength, dict(change))


def money_flow_reasons(flow: Mapping[str, Any] | None) -> list[Reason]:
    if not flow:
        return []
    start = flow["start"]["id"]
    reasons = []
    for cycle in flow.get("cycles", []):
        path = " -> ".join(cycle["accounts"])
        amounts = ", ".join(_money(a) for a in cycle["amounts"])
        reasons.append(
            Reason(
                "money_flow",
                f"Money sent by {start} comes back to it in {cycle['hops']} transfers: {path} ({amounts}).",
                CYCLE_SIGNAL,
                {"cycle": cycle},
            )
        )
    evidence = {
        k: flow.get(k)
        for k in ("amount_in", "amount_out", "fan_in", "fan_out", "pass_through", "chains_out", "chains_in")
    }
    # Only material money passed on is laundering: someone repaid a few small sums by
    # friends who then pays a large deposit sends out "all" they received, and is no mule.
    passed_on = flow["amount_in"] >= MATERIAL_TRANSFER_MIN and flow["pass_through"] >= MULE_PASS_THROUGH_MIN
    if passed_on and flow["fan_in"] >= MULE_SENDERS_MIN:
        reasons.append(
            Reason(
                "money_flow",
                f"Account {start} received {_money(flow['amount_in'])} from {flow['fan_in']} accounts and sent "
                f"{flow['pass_through']:.0%} of it on to {flow['fan_out']}: a money-mule pattern.",
                MULE_SIGNAL,
                evidence,
            )
        )
    elif passed_on and flow["amount_in"] >= MATERIAL_TRANSFER_MIN:
        reasons.append(
            Reason(
                "money_flow",
                f"Account {start} received {_money(flow['amount_in'])} and sent {flow['pass_through']:.0%} "
                f"of it on to {flow['fan_out']} account{'s' if flow['fan_out'] != 1 else ''}: "
                "a pass-through hop, money being layered.",
                PASS_THROUGH_SIGNAL,
                evidence,
            )
        )
    material = material_accounts(flow)
    flagged = sorted(set(flow.get("flagged_accounts", [])) & material)
    if flagged:
        reasons.append(
            Reason(
                "money_flow",
                f"Account {start} moved money of {_money(MATERIAL_TRANSFER_MIN)} or more per transfer "
                f"with already flagged account{'s' if len(flagged) != 1 else ''} {_names(flagged)}.",
                FLAGGED_MONEY_SIGNAL,
                {"flagged_accounts": flagged, "material_accounts": sorted(material)},
            )
        )
    for key, verb in (("fan_out", "sent money to"), ("fan_in", "received money from")):
        if flow[key] >= WIDE_FAN:
            reasons.append(
                Reason(
                    "money_flow",
                    f"Account {start} {verb} {flow[key]} different accounts.",
                    WIDE_FAN_SIGNAL,
                    {key: flow[key]},
                )
            )
    return reasons


def material_accounts(flow: Mapping[str, Any]) -> set[str]:
    """Accounts the money moved through in transfers of MATERIAL_TRANSFER_MIN or more,
    from the investigated account outwards, stopping at the first smaller transfer."""
    found: set[str] = set()
    for chain in flow.get("chains_out", []):  # [start, a1, a2...], amounts in that order
        for account, amount in zip(chain["accounts"][1:], chain["amounts"], strict=False):
            if amount < MATERIAL_TRANSFER_MIN:
                break
            found.add(account)
    for chain in flow.get("chains_in", []):  # [..., a2, a1, start], in the money's direction
        backwards = zip(reversed(chain["accounts"][:-1]), reversed(chain["amounts"]), strict=False)
        for account, amount in backwards:
            if amount < MATERIAL_TRANSFER_MIN:
                break
            found.add(account)
    return found - {flow.get("start", {}).get("id")}


def _transfer_role(role: str, transfer: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "role": role,
        "amount": transfer["amount"],
        "first_seen": transfer["first_seen"],
        "last_seen": transfer["last_seen"],
    }


def _flag_start_ms(investigation: Investigation) -> int:
    if investigation.window_start:
        return epoch_ms(parse_time(investigation.window_start, "window_start"))
    return investigation.reference_ms


def money_roles(
    investigation: Investigation, analyses: Mapping[str, Any], reasons: list[Reason] | None = None
) -> dict[str, dict[str, Any]]:
    """What each account did in the money flow around the flag, when there is a pattern.

    Around a money-flow pattern (a mule, a pass-through hop, a cycle, flagged counterparties)
    the investigated account is the ``collector`` (fed by two or more accounts), the
    ``distributor`` (paying out to two or more) or a ``pass_through`` hop; the accounts that
    paid it from :data:`ROLE_TRANSFER_LOOKBACK_MS` before the flag's window on are its
    ``source`` accounts and those it paid are its ``cash_out`` accounts, whatever the
    amounts (a collector is fed in small sums as often as in large ones); accounts further
    along material transfers are ``forwarder`` accounts. Around an account takeover the
    account is the ``victim`` and the accounts it paid from the intruder's device on, payees
    it had never paid before, are ``beneficiary`` accounts.
    """
    roles: dict[str, dict[str, Any]] = {}
    flow = analyses.get("money_flow") or {}
    start = investigation.entity_id
    since = _flag_start_ms(investigation) - ROLE_TRANSFER_LOOKBACK_MS
    if flow and any(r.signal == "money_flow" and r.strength > 0 for r in reasons or []):
        for account in material_accounts(flow):
            roles[account] = {"role": "forwarder"}
        sources = [t for t in flow.get("transfers_in", []) if t["last_seen"] >= since]
        paid = [t for t in flow.get("transfers_out", []) if t["last_seen"] >= since]
        for transfer in sources:
            roles[transfer["account"]] = _transfer_role("source", transfer)
        for transfer in paid:
            roles[transfer["account"]] = _transfer_role("cash_out", transfer)
        if len(sources) >= MULE_SENDERS_MIN:
            roles[start] = {"role": "collector"}
        elif len(paid) >= MULE_SENDERS_MIN:
            roles[start] = {"role": "distributor"}
        else:
            roles[start] = {"role": "pass_through"}
    change = (analyses.get("shared_device") or {}).get("account_change") or {}
    if change.get("takeover"):
        appeared = change.get("new_device_first_seen") or _flag_start_ms(investigation)
        for transfer in flow.get("transfers_out", []):
            if transfer["first_seen"] >= appeared:
                roles[transfer["account"]] = _transfer_role("beneficiary", transfer)
        roles[start] = {"role": "victim"}
    return roles


#: roles that say only how an account came into a case: a money or takeover role says more
GENERIC_ROLES = ("flagged", "ring_member")


def merge_roles(
    known: Mapping[str, Mapping[str, Any]], found: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """A case's member roles after one more investigation: a role found replaces a generic
    one (``flagged``, ``ring_member``) but never a specific one found before."""
    merged = {member: dict(role) for member, role in known.items()}
    for member, role in found.items():
        if merged.get(member, {}).get("role") in (None, *GENERIC_ROLES):
            merged[member] = dict(role)
    return merged


def case_members(
    investigation: Investigation, analyses: Mapping[str, Any], reasons: list[Reason] | None = None
) -> list[str]:
    """Ring members, accounts on device farms, accounts in money cycles and, when the money
    flow shows a pattern or the account was taken over, the accounts with a money role
    (see :func:`money_roles`) (capped)."""
    return sorted(member_roles(investigation, analyses, reasons))[:CASE_MEMBER_CAP]


def member_roles(
    investigation: Investigation, analyses: Mapping[str, Any], reasons: list[Reason] | None = None
) -> dict[str, dict[str, Any]]:
    """Every member of the case with its role (a money role wins over a ring role)."""
    roles: dict[str, dict[str, Any]] = {}
    for member in analyses.get("ring", {}).get("members", []):
        roles[member] = {"role": "ring_member"}
    for item in analyses.get("shared_device", {}).get("identifiers", []):
        if item["class"] == "device_farm":
            for account in item["account_ids"]:
                roles[account] = {"role": "farm_account"}
    flow = analyses.get("money_flow") or {}
    for cycle in flow.get("cycles", []):
        for account in cycle["accounts"]:
            roles[account] = {"role": "cycle"}
    roles.update(money_roles(investigation, analyses, reasons))
    if investigation.entity_type == "account":
        roles.setdefault(investigation.entity_id, {"role": "flagged"})
    return roles


def _uncorroborated_small_cluster(
    investigation: Investigation, ring: Mapping[str, Any] | None, reasons: list[Reason]
) -> bool:
    """Two or three accounts on one card, email or phone and nothing else wrong: the flag is
    about the sharing alone (not about money or a critical pattern such as card testing),
    none of the accounts is flagged, and neither money flow nor device evidence points
    anywhere. Families share cards and contact details; a ring shows more than that."""
    if not ring or not 2 <= len(ring.get("members", [])) <= SMALL_CLUSTER_MAX:
        return False
    if investigation.is_manual or investigation.entity_type == "account":
        return False
    if investigation.severity in ("high", "critical") or ring.get("flagged_members"):
        return False
    return not any(r.strength > 0 for r in reasons if r.signal not in ("flag", "ring"))


def _small_cluster_reason(ring: Mapping[str, Any]) -> Reason:
    members = list(ring["members"])
    kinds = " and ".join(sorted({s["type"] for s in ring.get("shared_identifiers", [])}))
    return Reason(
        "ring",
        f"Only {len(members)} accounts ({_names(members)}) share {kinds or 'identifiers'}, none of them "
        "is flagged and no money or device evidence links them further: as likely a family as a ring, "
        "so the score is held below suspicious until more evidence comes in.",
        0.0,
        {"members": members, "small_cluster": True, "cap": SMALL_CLUSTER_CAP},
    )


def combine(strengths: list[float]) -> float:
    remaining = 1.0
    for strength in strengths:
        remaining *= 1.0 - max(0.0, min(strength, 1.0))
    return round(1.0 - remaining, 3)


#: the roles of a case that is an account takeover and nothing else
TAKEOVER_ROLES = frozenset({"victim", "beneficiary"})


def rests_on_absence(reason: Reason) -> bool:
    """A device-farm finding about a device: its accounts use that device and nothing else
    and never paid in person, i.e. they showed no life of their own *yet*. That is evidence
    of an absence, which a later look may contradict (a family computer's users show their
    phones and their shopping as the day goes on)."""
    return (
        reason.signal == "shared_device"
        and reason.strength > 0
        and reason.evidence.get("type") == "device"
        and reason.evidence.get("class") == "device_farm"
    )


def is_provisional(assessment: Assessment) -> bool:
    """The verdict rests on an absence: without its device-farm findings about a device
    (:func:`rests_on_absence`) it would be less severe. Such a verdict is provisional: a
    re-look may lower it (:mod:`fraudcore.investigation.case`)."""
    if assessment.verdict == "cleared" or not any(rests_on_absence(r) for r in assessment.reasons):
        return False
    rest = combine([r.strength for r in assessment.reasons if not rests_on_absence(r)])
    without = decide(min(rest, assessment.score), len(assessment.members))
    return VERDICTS.index(without) > VERDICTS.index(assessment.verdict)


def decide(score: float, member_count: int, *, takeover: bool = False) -> str:
    """The verdict for a score; ``takeover``: the case is an account takeover alone."""
    if score >= FRAUD_RING_MIN and takeover:
        return "account_takeover"
    if score >= FRAUD_RING_MIN and member_count >= 2:
        return "fraud_ring"
    if score >= SUSPICIOUS_MIN:
        return "suspicious"
    return "cleared"


def assess(investigation: Investigation, analyses: Mapping[str, Any]) -> Assessment:
    """Score every finding of the analyses that ran and decide the verdict."""
    reasons = [
        *flag_reasons(investigation),
        *ring_reasons(analyses.get("ring")),
        *shared_device_reasons(analyses.get("shared_device")),
        *money_flow_reasons(analyses.get("money_flow")),
    ]
    score = combine([r.strength for r in reasons])
    household = bool(analyses.get("ring", {}).get("benign_cluster"))
    strong_elsewhere = any(r.strength >= SUSPICIOUS_MIN for r in reasons if r.signal != "flag")
    if household and not strong_elsewhere:
        score = min(score, HOUSEHOLD_CAP)
    elif _uncorroborated_small_cluster(investigation, analyses.get("ring"), reasons):
        score = min(score, SMALL_CLUSTER_CAP)
        reasons.append(_small_cluster_reason(analyses["ring"]))
    roles = member_roles(investigation, analyses, reasons)
    members = sorted(roles)[:CASE_MEMBER_CAP]
    takeover = bool(roles) and all(role["role"] in TAKEOVER_ROLES for role in roles.values())
    verdict = decide(score, len(members), takeover=takeover)
    reasons.sort(key=lambda r: -r.strength)
    return Assessment(
        verdict=verdict,
        score=score,
        members=members,
        reasons=reasons,
        roles={member: roles[member] for member in members},
    )
