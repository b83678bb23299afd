"""Record the case: score, decide, link the members, propagate flags, publish.

**Case id.** A case is identified by its ring, not by the flag that found it:
``case_id_for(members)`` is ``ring-`` + the first 16 hex digits of the SHA-256 of the
sorted member ids. Two flags that find the same ring therefore record one case. Because
two investigations of one ring may see it slightly differently (a member more or less,
as the graph grew between them), an existing case is reused when it overlaps the new
member set enough: the case linked to any of the members with the highest Jaccard
similarity ``|A & B| / |A | B|``, if at least :data:`SAME_RING_MIN_JACCARD`. Only when no
such case exists is a new id derived. (Two investigations racing on a ring no case
covers yet, seeing different member sets, can still open two cases.)

**Updates** never lower what automation found on evidence: the recorded verdict and score
are the most severe of the case's investigations; analysts, not flags, clear a case.
Members are added, never removed.

**Provisional verdicts and re-looks.** A verdict that rests on an absence (a device farm:
accounts that had shown no life of their own when the window closed, see
:func:`fraudcore.investigation.scoring.is_provisional`) is provisional: the case keeps,
besides its ``verdict``, its ``settled_verdict`` and ``settled_score`` (the most severe
verdict of its investigations that did not rest on an absence) and ``provisional`` (the
verdict is more severe than the settled one). A re-look of the flag (``trigger`` ``relook``)
counts as settled evidence: it is the later look. When the case is provisional and the
re-look finds less, the verdict is lowered to the settled one, the re-look's included,
never below it, and only while no analyst has written on the case (a compare-and-set on
the absence of ``decision_count``, so a decision that lands first wins). Every re-look,
lowering or not, is appended to ``verdict_history`` with its outcome, what it found, what
the case went from and to, the members it added and its reasons; the case is published as
updated. Its outcome: ``raised`` (the verdict is graver: a ring that grew, a cleared pair
now cashing out), ``lowered``, ``confirmed`` (the provisional verdict stands), ``grown``
(the verdict stands and the case has more members: a late joiner), ``kept`` (the verdict
did not rest on an absence and nothing changed) or ``not_applied`` (an analyst has written
on the case, which keeps a provisional verdict).

**Flag propagation** (verdict ``fraud_ring`` only: an ``account_takeover`` case's victim was
robbed, not part of a ring, and its payees are left to the analyst): every member other than the
investigated entity (unless an analyst started the investigation, which flags nothing by
itself) gets ``flagged``, ``last_flag_reason=ring_member``,
``last_flagged_at``, its ``risk_score`` raised to the case score, and an ``alert``
(reason ``ring_member``) linked to it by ``flagged_by`` and to the case by ``alert_of``.

**Event**: ``FraudCaseOpened`` when the case vertex is new, ``FraudCaseUpdated``
otherwise, with the case summary as detail.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gremlin_python.process.traversal import Direction, T
from gremlin_python.statics import long

from ..chunking import chunks
from ..contracts import VERDICTS, CaseSummary
from ..graph import schema
from ..graph.access import GraphAccess, GraphPort
from ..ports import EventPublisher
from ..timeutil import from_epoch_ms, iso_z
from .casework import OPEN, json_list, json_object, link_related_cases
from .model import Investigation, epoch_ms, plain_id
from .scoring import Assessment, assess, is_provisional, merge_roles

SAME_RING_MIN_JACCARD = 0.5
RING_MEMBER_REASON = "ring_member"
CASE_OPENED = "FraudCaseOpened"
CASE_UPDATED = "FraudCaseUpdated"
#: objects per inject(...).mergeV/mergeE request (Neptune: about 100-200 per request)
WRITE_BATCH = 100


def case_id_for(members: list[str]) -> str:
    digest = hashlib.sha256("\n".join(sorted(set(members))).encode()).hexdigest()
    return f"ring-{digest[:16]}"


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def _first(values: Any) -> Any:
    return values[0] if isinstance(values, list) and values else values


def choose_case_id(access: GraphAccess, members: list[str]) -> tuple[str, float]:
    """The id of the existing case that is this ring, or a new one; with the overlap found."""
    case_id, overlap, _ = _choose_case(access, members)
    return case_id, overlap


#: members read per existing case to choose the case (far above a ring's ``member_cap``)
CASE_MEMBERS_READ = 1000


def _choose_case(access: GraphAccess, members: list[str]) -> tuple[str, float, frozenset[str]]:
    """:func:`choose_case_id`, with the members the chosen case has (none for a new one)."""
    vids = [schema.vertex_id(schema.ACCOUNT, m) for m in members]
    rows = access.run(
        lambda g: g.cases_of(vids, member_limit=CASE_MEMBERS_READ), "case: existing cases of members"
    )
    wanted = set(members)
    best: tuple[float, str, frozenset[str]] | None = None
    for row in rows:
        had = frozenset(plain_id(str(m)) for m in row["members"])
        overlap = jaccard(wanted, set(had))
        candidate = (overlap, plain_id(str(row["id"])), had)
        # highest overlap wins; on a tie the smallest id, so every run picks the same case
        if overlap >= SAME_RING_MIN_JACCARD and (
            best is None or (-candidate[0], candidate[1]) < (-best[0], best[1])
        ):
            best = candidate
    if best is not None:
        return best[1], best[0], best[2]
    return case_id_for(members), 0.0, frozenset()


def _more_severe(a: str, b: str) -> str:
    return a if VERDICTS.index(a) <= VERDICTS.index(b) else b


def _graver(a: tuple[str, float], b: tuple[str, float]) -> tuple[str, float]:
    """The more severe of two (verdict, score); on the same verdict the higher score."""
    if a[0] == b[0]:
        return a[0], max(a[1], b[1])
    return a if _more_severe(a[0], b[0]) == a[0] else b


#: outcomes of a re-look, as ``verdict_history`` records them
RAISED, LOWERED, CONFIRMED, GROWN, KEPT, NOT_APPLIED = (
    "raised",
    "lowered",
    "confirmed",
    "grown",
    "kept",
    "not_applied",
)


@dataclass(frozen=True)
class _Verdicts:
    """What the case records after one more investigation."""

    verdict: str
    score: float
    settled: tuple[str, float]
    #: for a re-look: raised (a graver verdict), lowered, confirmed (the provisional verdict
    #: stands), grown (the verdict stands, with more members), kept (the verdict did not rest
    #: on an absence and stands as it was) or not_applied (an analyst has written on the case)
    relook: str | None = None


def _verdicts(
    investigation: Investigation,
    assessment: Assessment,
    prior: Mapping[str, Any],
    analyst: bool,
    grew: bool = False,
) -> _Verdicts:
    """The case's verdicts after ``investigation``; ``grew``: it adds members to the case."""
    found = (assessment.verdict, float(assessment.score))
    # a re-look is the later look: what it finds is settled, whatever it rests on
    counts = investigation.is_relook or not is_provisional(assessment)
    if not prior:
        return _Verdicts(found[0], found[1], found if counts else ("cleared", 0.0))
    recorded = (str(_first(prior.get("verdict"))), float(_first(prior.get("score", 0.0))))
    # a case recorded before verdicts could be provisional: all it holds is settled
    before = (
        (str(_first(prior["settled_verdict"])), float(_first(prior.get("settled_score", 0.0))))
        if prior.get("settled_verdict")
        else recorded
    )
    settled = _graver(before, found) if counts else before
    verdict, score = _graver(recorded, found)
    if not investigation.is_relook:
        return _Verdicts(verdict, score, settled)
    if VERDICTS.index(verdict) < VERDICTS.index(recorded[0]):
        return _Verdicts(verdict, score, settled, RAISED)
    if VERDICTS.index(recorded[0]) >= VERDICTS.index(before[0]):
        # the verdict did not rest on an absence: it stands, with or without new members
        return _Verdicts(verdict, score, settled, GROWN if grew else KEPT)
    if VERDICTS.index(found[0]) <= VERDICTS.index(recorded[0]):
        return _Verdicts(verdict, score, settled, CONFIRMED)
    if analyst:
        return _Verdicts(verdict, score, settled, NOT_APPLIED)
    return _Verdicts(settled[0], settled[1], settled, LOWERED)


def _history_entry(
    investigation: Investigation,
    assessment: Assessment,
    prior: Mapping[str, Any],
    outcome: _Verdicts,
    at: int,
    added: list[str],
) -> dict[str, Any]:
    return {
        "at": iso_z(from_epoch_ms(int(at)).replace(microsecond=0)),
        "by": "re-look",
        "outcome": outcome.relook,
        "rule": investigation.rule,
        "entity": f"{investigation.entity_type}:{investigation.entity_id}",
        "relook_of": investigation.relook_of,
        "reference_time": investigation.reference_time,
        "found": {"verdict": assessment.verdict, "score": assessment.score},
        "from": {
            "verdict": str(_first(prior.get("verdict"))),
            "score": float(_first(prior.get("score", 0.0))),
        },
        "to": {"verdict": outcome.verdict, "score": outcome.score},
        "members_added": added,
        "reasons": assessment.sentences(),
    }


def _write_case(
    access: GraphAccess,
    case_vid: str,
    investigation: Investigation,
    assessment: Assessment,
    prior: Mapping[str, Any],
    at: int,
    added: list[str],
) -> _Verdicts:
    """Write the case's properties; ``added``: the members the investigation adds to it."""
    analyst = prior.get("decision_count") is not None
    outcome = _verdicts(investigation, assessment, prior, analyst, grew=bool(added))
    history = json_list(prior.get("verdict_history"))
    # one entry per re-look: a retried record step finds it there already
    if outcome.relook is not None and all(e.get("relook_of") != investigation.relook_of for e in history):
        history.append(_history_entry(investigation, assessment, prior, outcome, at, added))
    always = {
        "verdict": outcome.verdict,
        "score": outcome.score,
        "settled_verdict": outcome.settled[0],
        "settled_score": outcome.settled[1],
        "provisional": VERDICTS.index(outcome.verdict) < VERDICTS.index(outcome.settled[0]),
        "updated_at": at,
        "last_rule": investigation.rule,
        "last_entity": investigation.vertex_id,
        "last_verdict": assessment.verdict,
        "reasons": json.dumps(assessment.sentences()),
        "reason_details": json.dumps([r.to_dict() for r in assessment.reasons], default=str),
        # what each member did (collector, source, cash_out...), kept across investigations
        "member_roles": json.dumps(
            merge_roles(json_object(prior.get("member_roles")), assessment.roles), sort_keys=True
        ),
    }
    if history:
        always["verdict_history"] = json.dumps(history, default=str)
    if outcome.relook == LOWERED:
        # Lowered only if no analyst has written on the case since it was read: a decision
        # that lands first wins, and the re-look is then recorded as not applied.
        written = access.run(
            lambda g: g.set_case_properties(case_vid, always, {"decision_count": None}),
            "case: re-look lowers",
        )
        if written:
            return outcome
        rows = access.run(lambda g: g.case_state(case_vid), "case: state after a decision")
        return _write_case(access, case_vid, investigation, assessment, rows[0] if rows else prior, at, added)
    on_create = {
        "case_id": plain_id(case_vid),
        "opened_at": at,
        "opened_by": investigation.vertex_id,
        "status": OPEN,
        "decisions": "[]",
        "related_cases": "[]",
    }
    access.run(lambda g: g.upsert_vertex(case_vid, schema.CASE, on_create, always), "case: upsert")
    return outcome


def _link_members(
    access: GraphAccess, case_vid: str, member_vids: list[str], at: int, trigger_alert_id: str | None
) -> None:
    """The members' ``member_of`` edges and the triggering alert's ``alert_of`` edge, in as
    few requests as the batch size allows."""
    rows = [
        {
            "match": {
                T.id: schema.edge_id(schema.MEMBER_OF, vid, case_vid),
                T.label: schema.MEMBER_OF,
                Direction.OUT: vid,
                Direction.IN: case_vid,
            },
            "create": {"added_at": at},
        }
        for vid in member_vids
    ]
    if trigger_alert_id:
        rows.append(_edge_row(schema.ALERT_OF, trigger_alert_id, case_vid, at))
    for chunk in chunks(rows, WRITE_BATCH):
        access.run(lambda g, chunk=chunk: g.merge_edges(chunk), "case: member_of and alert_of edges")


def _propagate_flags(
    access: GraphAccess, case_vid: str, member_vids: list[str], score: float, at: int
) -> list[str]:
    if not member_vids:
        return []
    case_id = plain_id(case_vid)
    alerts = {
        vid: schema.vertex_id(schema.ALERT, f"{RING_MEMBER_REASON}:{case_id}:{vid}") for vid in member_vids
    }
    for chunk in chunks(member_vids, WRITE_BATCH):
        access.run(
            lambda g, chunk=chunk: g.flag(
                chunk, {"flagged": True, "last_flag_reason": RING_MEMBER_REASON, "last_flagged_at": at}, score
            ),
            "case: flag members, raise their risk",
        )
    vertex_rows = [
        {
            "match": {T.id: alert, T.label: schema.ALERT},
            "create": {
                "reason": RING_MEMBER_REASON,
                "entity": vid,
                "case_id": case_id,
                "risk_score": score,
                "created_at": at,
            },
        }
        for vid, alert in alerts.items()
    ]
    for chunk in chunks(vertex_rows, WRITE_BATCH):
        access.run(lambda g, chunk=chunk: g.merge_vertices(chunk), "case: member alerts")
    edge_rows = []
    for vid, alert in alerts.items():
        edge_rows.append(_edge_row(schema.FLAGGED_BY, vid, alert, at))
        edge_rows.append(_edge_row(schema.ALERT_OF, alert, case_vid, at))
    for chunk in chunks(edge_rows, WRITE_BATCH):
        access.run(lambda g, chunk=chunk: g.merge_edges(chunk), "case: alert edges")
    return sorted(plain_id(v) for v in member_vids)


def _edge_row(label: str, out_id: str, in_id: str, at: int) -> dict[str, Any]:
    return {
        "match": {
            T.id: schema.edge_id(label, out_id, in_id),
            T.label: label,
            Direction.OUT: out_id,
            Direction.IN: in_id,
        },
        "create": {"created_at": at},
    }


def record_case(
    graph: GraphPort | GraphAccess,
    publisher: EventPublisher | None,
    investigation: Investigation,
    analyses: Mapping[str, Any],
    now: datetime,
    trigger_alert_id: str | None = None,
) -> dict[str, Any]:
    """Score, decide, record the case in the graph and publish; returns the case summary."""
    access = GraphAccess.of(graph)
    assessment = assess(investigation, analyses)
    at = long(epoch_ms(now))  # epoch ms exceed GraphBinary's 32-bit int
    member_vids = [schema.vertex_id(schema.ACCOUNT, m) for m in assessment.members]
    existing = (
        set(access.run(lambda g: g.existing_ids(member_vids), "case: members exist"))
        if member_vids
        else set()
    )
    member_vids = [v for v in member_vids if v in existing]
    if not member_vids:
        # A case is about accounts: with none to review there is nothing to open (and the
        # id of an empty ring would gather unrelated identifiers into one case).
        return _no_case_summary(investigation, assessment)
    case_id, overlap, had = _choose_case(access, [plain_id(v) for v in member_vids])
    case_vid = schema.vertex_id(schema.CASE, case_id)
    prior_rows = access.run(lambda g: g.case_state(case_vid), "case: prior state")
    prior = prior_rows[0] if prior_rows else {}
    added = sorted({plain_id(v) for v in member_vids} - had) if prior else []
    outcome = _write_case(access, case_vid, investigation, assessment, prior, at, added)
    verdict, score = outcome.verdict, outcome.score
    _link_members(access, case_vid, member_vids, at, trigger_alert_id)
    links = link_related_cases(access, case_vid)
    propagated: list[str] = []
    if assessment.verdict == "fraud_ring":
        # a flagged entity already carries its own flag; a hand-started one does not
        others = [v for v in member_vids if investigation.is_manual or v != investigation.vertex_id]
        propagated = _propagate_flags(access, case_vid, others, assessment.score, at)
    summary = CaseSummary.parse(
        {
            "case_id": case_id,
            "status": "updated" if prior else "opened",
            "verdict": verdict,
            "score": score,
            "investigation_verdict": assessment.verdict,
            "investigation_score": assessment.score,
            "members": assessment.members,
            "roles": {member: dict(role) for member, role in assessment.roles.items()},
            "reasons": [r.to_dict() for r in assessment.reasons],
            "entity": {"type": investigation.entity_type, "id": investigation.entity_id},
            "trigger": investigation.trigger,
            "rule": investigation.rule,
            "reference_time": investigation.reference_time,
            "flags_propagated": propagated,
            "matched_existing_case": overlap if prior else None,
            "related_cases": links["related_cases"],
            "superseded_by": links["superseded_by"],
            **({"provisional": True} if VERDICTS.index(verdict) < VERDICTS.index(outcome.settled[0]) else {}),
            **(
                {"relook": {"outcome": outcome.relook, "relook_of": investigation.relook_of}}
                if outcome.relook
                else {}
            ),
        },
        "case summary",
    ).payload()
    if publisher is not None:
        publisher.publish(CASE_UPDATED if prior else CASE_OPENED, summary)
    return summary


def _no_case_summary(investigation: Investigation, assessment: Assessment) -> dict[str, Any]:
    """The outcome of an investigation that found no account to hold a case."""
    summary = {
        "case_id": None,
        "status": "no_case",
        "verdict": assessment.verdict,
        "score": assessment.score,
        "investigation_verdict": assessment.verdict,
        "investigation_score": assessment.score,
        "members": [],
        "roles": {},
        "reasons": [r.to_dict() for r in assessment.reasons],
        "entity": {"type": investigation.entity_type, "id": investigation.entity_id},
        "trigger": investigation.trigger,
        "rule": investigation.rule,
        "reference_time": investigation.reference_time,
        "flags_propagated": [],
        "matched_existing_case": None,
        "related_cases": [],
        "superseded_by": None,
    }
    return CaseSummary.parse(summary, "case summary").payload()
