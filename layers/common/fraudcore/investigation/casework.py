"""Cases as a review workflow: the queue, an analyst's decisions, and how cases relate.

Everything is stored on the ``case`` vertex, so the workflow is the same on Neptune, a
Gremlin Server and the embedded engine:

==================  ==========================================================================
property            meaning
==================  ==========================================================================
``status``          ``open`` -> ``confirmed_fraud`` | ``false_positive`` -> ``closed``
``decisions``       JSON list, oldest first: ``{action, status, by, at, note}`` per decision
``related_cases``   JSON list of the ids of the other cases that share a member with this one
``superseded_by``   the id of a stronger case that holds every member of this one ("" if none)
``provisional``     the verdict rests on an absence and may be lowered by a re-look
``verdict_history`` JSON list, oldest first: each re-look's outcome (raised, lowered, confirmed,
                    grown, kept, not_applied), what it found, the verdict before and after,
                    the members it added, and why (see :mod:`fraudcore.investigation.case`)
==================  ==========================================================================

**Decisions.** ``fraud`` confirms (``confirmed_fraud``), ``legit`` clears
(``false_positive``), ``note`` annotates without changing the status, ``close`` closes a
decided case. A decided case may be relabelled (the analyst changed their mind; both
decisions stay in the history); a closed case takes notes only.

**Related and superseded cases.** A ring is one case: an investigation whose members
overlap an existing case enough updates it (:func:`fraudcore.investigation.case.choose_case_id`).
When the overlap is smaller, the new case and every case it shares a member with name
each other in ``related_cases``, so no account sits in two cases that do not know of each
other. A case whose members all belong to a more severe case (a higher verdict, or the
same verdict and a higher score) is ``superseded_by`` it.

**Amount at stake** is what the members moved (the sum of their transactions' amounts in
the time-series store), per currency.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from gremlin_python.statics import long

from ..contracts import VERDICTS
from ..graph import schema
from ..graph.access import GraphAccess, GraphPort
from ..ports import TimeseriesStore
from ..timeutil import from_epoch_ms, iso_z, parse_utc
from .model import epoch_ms, plain_id

OPEN = "open"
CONFIRMED_FRAUD = "confirmed_fraud"
FALSE_POSITIVE = "false_positive"
CLOSED = "closed"
STATUSES = (OPEN, CONFIRMED_FRAUD, FALSE_POSITIVE, CLOSED)
#: what ``label --as`` records
LABEL_STATUS = {"fraud": CONFIRMED_FRAUD, "legit": FALSE_POSITIVE}
ACTIONS = (*LABEL_STATUS, "note", "close")
#: tries of a decision that raced another one on the same case
DECIDE_ATTEMPTS = 3
#: most member transactions a case page lists
TRANSACTION_LIMIT = 500


class CaseNotFound(LookupError):
    """No case has this id."""


class InvalidDecision(ValueError):
    """The decision cannot be recorded as given; the message says why and what to do."""


def _first(values: Any) -> Any:
    return values[0] if isinstance(values, list) and values else values


def json_list(value: Any) -> list[Any]:
    """A JSON list stored as a case property (``[]`` when absent or unreadable)."""
    value = _first(value)
    if not value:
        return []
    try:
        parsed = json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError:
        return []
    return list(parsed) if isinstance(parsed, list) else []


def json_object(value: Any) -> dict[str, Any]:
    """A JSON object stored as a case property (``{}`` when absent or unreadable)."""
    value = _first(value)
    if not value:
        return {}
    try:
        parsed = json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError:
        return {}
    return dict(parsed) if isinstance(parsed, dict) else {}


def iso_ms(value: Any) -> str | None:
    """Epoch milliseconds stored on the vertex -> ISO 8601 UTC to the second."""
    value = _first(value)
    if value in (None, ""):
        return None
    return iso_z(from_epoch_ms(int(value)).replace(microsecond=0))


def severity_rank(verdict: str, score: float) -> tuple[int, float]:
    """Higher is more severe: the verdict first, then the score."""
    index = VERDICTS.index(verdict) if verdict in VERDICTS else len(VERDICTS)
    return (len(VERDICTS) - index, float(score))


def case_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """A ``cases_with_members`` row -> the case as the queue and the case page show it."""
    props = row.get("properties") or {}
    members = sorted(plain_id(str(m)) for m in row.get("members") or [])
    reasons = json_list(props.get("reason_details")) or [
        {"sentence": sentence} for sentence in json_list(props.get("reasons"))
    ]
    return {
        "case_id": plain_id(str(row["id"])),
        "verdict": str(_first(props.get("verdict")) or "cleared"),
        "score": float(_first(props.get("score")) or 0.0),
        "status": str(_first(props.get("status")) or OPEN),
        "members": members,
        "member_count": len(members),
        "opened_at": iso_ms(props.get("opened_at")),
        "updated_at": iso_ms(props.get("updated_at")),
        "opened_by": _first(props.get("opened_by")),
        "last_rule": _first(props.get("last_rule")),
        "related_cases": sorted(json_list(props.get("related_cases"))),
        "superseded_by": _first(props.get("superseded_by")) or None,
        "decisions": json_list(props.get("decisions")),
        # a verdict resting on an absence (accounts with no life of their own yet), and
        # what each re-look found and did to the verdict, oldest first
        "provisional": bool(_first(props.get("provisional")) or False),
        "verdict_history": json_list(props.get("verdict_history")),
        "reasons": reasons,
        # member -> {role, and for money roles amount, first_seen, last_seen}
        "roles": {
            member: role
            for member, role in json_object(props.get("member_roles")).items()
            if member in members
        },
    }


def list_cases(
    graph: GraphPort | GraphAccess,
    status: str | None = None,
    verdict: str | None = None,
    include_superseded: bool = True,
) -> list[dict[str, Any]]:
    """The review queue: highest risk first (score, then verdict, then most recently updated)."""
    if status is not None and status not in STATUSES:
        raise InvalidDecision(f"status {status!r}: expected one of {', '.join(STATUSES)}")
    if verdict is not None and verdict not in VERDICTS:
        raise InvalidDecision(f"verdict {verdict!r}: expected one of {', '.join(VERDICTS)}")
    access = GraphAccess.of(graph)
    cases = [case_view(row) for row in access.run(lambda g: g.cases_with_members(), "cases: list")]
    cases = [
        case
        for case in cases
        if (status is None or case["status"] == status)
        and (verdict is None or case["verdict"] == verdict)
        and (include_superseded or not case["superseded_by"])
    ]
    cases.sort(
        key=lambda c: (
            -c["score"],
            -severity_rank(c["verdict"], 0)[0],
            "" if c["updated_at"] is None else c["updated_at"],
            c["case_id"],
        )
    )
    return cases


def get_case(graph: GraphPort | GraphAccess, case_id: str) -> dict[str, Any]:
    access = GraphAccess.of(graph)
    case_id = case_id.removeprefix(f"{schema.CASE}:")
    vid = schema.vertex_id(schema.CASE, case_id)
    rows = access.run(lambda g: g.cases_with_members([vid]), "cases: show")
    if not rows:
        raise CaseNotFound(f"case {case_id!r} does not exist; `fraudlocal cases list` shows the case ids")
    return case_view(rows[0])


def next_status(current: str, action: str) -> str:
    if action not in ACTIONS:
        raise InvalidDecision(f"decision {action!r}: expected one of {', '.join(ACTIONS)}")
    if action == "note":
        return current
    if current == CLOSED:
        raise InvalidDecision("the case is closed: it takes notes only (cases label --note is refused)")
    if action == "close":
        if current == OPEN:
            raise InvalidDecision(
                "an open case is closed after a decision: label it --as fraud or legit first"
            )
        return CLOSED
    return LABEL_STATUS[action]


def decide(
    graph: GraphPort | GraphAccess, case_id: str, action: str, by: str, note: str | None, now: datetime
) -> dict[str, Any]:
    """Record an analyst's decision on the case; returns the updated case."""
    if not by or not by.strip():
        raise InvalidDecision("who decided is required (--by NAME)")
    if action == "note" and not (note and note.strip()):
        raise InvalidDecision("a note needs its text (--note TEXT)")
    access = GraphAccess.of(graph)
    for _attempt in range(DECIDE_ATTEMPTS):
        case = get_case(access, case_id)
        status = next_status(case["status"], action)
        decision = {
            "action": action,
            "status": status,
            "previous_status": case["status"],
            "by": by.strip(),
            "at": iso_z(now.replace(microsecond=0)),
            "note": (note or "").strip(),
        }
        vid = schema.vertex_id(schema.CASE, case["case_id"])
        properties = {
            "status": status,
            "decisions": json.dumps([*case["decisions"], decision]),
            "decision_count": len(case["decisions"]) + 1,
            "reviewed_at": long(epoch_ms(now)),
        }
        # Written only if no other decision landed since the read (each request is its own
        # transaction on Neptune, so a read-then-write could lose a colleague's decision).
        expected = {"decision_count": len(case["decisions"]) or None}
        written = access.run(
            lambda g, vid=vid, properties=properties, expected=expected: g.set_case_properties(
                vid, properties, expected
            ),
            "cases: decide",
        )
        if written:
            return get_case(access, case["case_id"])
    raise InvalidDecision(f"case {case_id}: other decisions kept landing at the same time; try again")


def export_labels(cases: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Every decided case's members as labels (``backtest --labels`` reads them): the latest
    decision wins for an account in several decided cases."""
    labels: dict[str, dict[str, str]] = {}
    decided = [c for c in cases if _decided_label(c)]
    for case in sorted(decided, key=lambda c: _last_decision_at(c)):
        label = _decided_label(case)
        for account in case["members"]:
            labels[account] = {
                "account_id": account,
                "label": label,
                "pattern": f"case:{case['case_id']}" if label == "fraud" else "legit",
                "ring_id": case["case_id"],
            }
    return [labels[account] for account in sorted(labels)]


def _decided_label(case: Mapping[str, Any]) -> str | None:
    for decision in reversed(case.get("decisions") or []):
        if decision.get("action") in LABEL_STATUS:
            return str(decision["action"])
    return None


def _last_decision_at(case: Mapping[str, Any]) -> str:
    decisions = case.get("decisions") or []
    return str(decisions[-1].get("at", "")) if decisions else ""


# -- relations between cases (called when a case is recorded) -------------------------------


def link_related_cases(access: GraphAccess, case_vid: str) -> dict[str, Any]:
    """Link the case with every case it shares a member with, and mark supersession both
    ways; returns ``{"related_cases": [...], "superseded_by": id | None}`` of the case."""
    rows = access.run(lambda g: g.cases_with_members([case_vid]), "case: members for links")
    if not rows:
        return {"related_cases": [], "superseded_by": None}
    this = case_view(rows[0])
    member_vids = [schema.vertex_id(schema.ACCOUNT, m) for m in this["members"]]
    other_ids = sorted(
        {
            plain_id(str(row["id"]))
            for row in access.run(lambda g: g.cases_of(member_vids, member_limit=1), "case: overlapping")
        }
        - {this["case_id"]}
    )
    others = (
        [
            case_view(row)
            for row in access.run(
                lambda g: g.cases_with_members([schema.vertex_id(schema.CASE, i) for i in other_ids]),
                "case: overlapping cases",
            )
        ]
        if other_ids
        else []
    )
    updates: dict[str, dict[str, Any]] = {}
    related = set(this["related_cases"]) | {o["case_id"] for o in others}
    if related != set(this["related_cases"]):
        updates[this["case_id"]] = {"related_cases": json.dumps(sorted(related))}
    superseded_by = _stronger_container(this, others)
    if superseded_by != this["superseded_by"]:
        updates.setdefault(this["case_id"], {})["superseded_by"] = superseded_by or ""
    for other in others:
        change: dict[str, Any] = {}
        if this["case_id"] not in other["related_cases"]:
            change["related_cases"] = json.dumps(sorted({*other["related_cases"], this["case_id"]}))
        if _supersedes(this, other) and other["superseded_by"] != this["case_id"]:
            change["superseded_by"] = this["case_id"]
        elif other["superseded_by"] == this["case_id"] and not _supersedes(this, other):
            change["superseded_by"] = ""
        if change:
            updates[other["case_id"]] = change
    for case_id, properties in sorted(updates.items()):
        vid = schema.vertex_id(schema.CASE, case_id)
        access.run(
            lambda g, vid=vid, properties=properties: g.set_case_properties(vid, properties),
            "case: related cases",
        )
    return {"related_cases": sorted(related), "superseded_by": superseded_by}


def _supersedes(stronger: Mapping[str, Any], weaker: Mapping[str, Any]) -> bool:
    return (
        bool(weaker["members"])
        and set(weaker["members"]) <= set(stronger["members"])
        and severity_rank(stronger["verdict"], stronger["score"])
        > severity_rank(weaker["verdict"], weaker["score"])
    )


def _stronger_container(case: Mapping[str, Any], others: Sequence[Mapping[str, Any]]) -> str | None:
    containers = [o for o in others if _supersedes(o, case)]
    if not containers:
        return None
    best = max(containers, key=lambda o: (severity_rank(o["verdict"], o["score"]), o["case_id"]))
    return str(best["case_id"])


# -- the members' transactions (the time-series store) ---------------------------------------


def _quoted(values: Iterable[str]) -> str:
    return ", ".join("'" + value.replace("'", "''") + "'" for value in values)


def member_transactions(
    timeseries: TimeseriesStore, accounts: Sequence[str], limit: int = TRANSACTION_LIMIT
) -> list[dict[str, Any]]:
    """The members' transactions in time order (``SELECT *``: Timestream refuses a column
    no record ever wrote, and which identifiers a table has depends on its producers)."""
    if not accounts:
        return []
    sql = (
        f'SELECT * FROM "{timeseries.database}"."{timeseries.table}" '
        f"WHERE measure_name = 'transaction' AND account_id IN ({_quoted(sorted(set(accounts)))}) "
        f"ORDER BY time ASC LIMIT {int(limit)}"
    )
    rows = timeseries.query(sql)
    return [_transaction_row(row) for row in rows]


def _transaction_row(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if value is None or key == "measure_name":
            continue
        if key == "time":
            value = _iso_time(value)
        elif key == "amount":
            value = float(value)
        out[key] = value
    out.setdefault("currency", "USD")
    return out


def _iso_time(value: Any) -> str:
    """A row's ``time`` (a datetime, or Timestream's text) -> ISO 8601 UTC to the second."""
    return iso_z(parse_utc(value if isinstance(value, datetime) else str(value)).replace(microsecond=0))


def amounts_at_stake(
    timeseries: TimeseriesStore, cases: Sequence[Mapping[str, Any]]
) -> dict[str, dict[str, float]]:
    """case id -> {currency: amount the members moved}, in one query over every member."""
    accounts = sorted({m for case in cases for m in case["members"]})
    if not accounts:
        return {}
    totals: dict[str, dict[str, float]] = {}
    for offset in range(0, len(accounts), 1000):
        chunk = accounts[offset : offset + 1000]
        sql = (
            f"SELECT account_id, currency, SUM(amount) AS amount "
            f'FROM "{timeseries.database}"."{timeseries.table}" '
            f"WHERE measure_name = 'transaction' AND account_id IN ({_quoted(chunk)}) "
            f"GROUP BY account_id, currency"
        )
        for row in timeseries.query(sql):
            per = totals.setdefault(str(row["account_id"]), {})
            currency = str(row.get("currency") or "USD")
            per[currency] = per.get(currency, 0.0) + float(row["amount"] or 0.0)
    stakes: dict[str, dict[str, float]] = {}
    for case in cases:
        stake: dict[str, float] = {}
        for member in case["members"]:
            for currency, amount in totals.get(member, {}).items():
                stake[currency] = round(stake.get(currency, 0.0) + amount, 2)
        stakes[case["case_id"]] = stake
    return stakes
