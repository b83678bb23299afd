"""The case workflow on every graph backend: one ring one case, related and superseded
cases, no case without members, decisions and their history, labels for the backtest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from gremlin_python.process.graph_traversal import GraphTraversalSource
from gremlin_python.process.traversal import T

from fraudcore.graph import schema
from fraudcore.graph.dsl import fraud_source
from fraudcore.investigation import casework
from fraudcore.investigation.case import record_case
from fraudcore.investigation.model import Investigation

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def add_accounts(g: GraphTraversalSource, *accounts: str) -> None:
    rows = [
        {"match": {T.id: schema.vertex_id(schema.ACCOUNT, a), T.label: schema.ACCOUNT}, "create": {}}
        for a in accounts
    ]
    fraud_source(g).merge_vertices(rows).to_list()


def manual(account: str) -> Investigation:
    return Investigation(
        entity_type="account",
        entity_id=account,
        trigger="manual",
        rule="manual",
        reference_time="2026-11-02T12:00:00.000Z",
        risk_score=0.0,
    )


def ip_flag(ip: str) -> Investigation:
    return Investigation(
        entity_type="ip",
        entity_id=ip,
        trigger="flag",
        rule="ip_account_burst",
        reference_time="2026-11-02T12:00:00.000Z",
        risk_score=0.5,
        severity="medium",
    )


def ring(members: list[str], score: float) -> dict[str, Any]:
    return {
        "ring": {
            "members": members,
            "shared_identifiers": [{"type": "device", "id": "d-1", "accounts": members}],
            "density": 1.0,
            "flagged_share": 0.0,
            "ring_score": score,
        }
    }


def cases_by_id(g: GraphTraversalSource) -> dict[str, dict[str, Any]]:
    return {case["case_id"]: case for case in casework.list_cases(g)}


def test_a_bigger_stronger_ring_supersedes_a_case_it_contains_and_both_say_so(graph_backend: Any) -> None:
    g = graph_backend
    add_accounts(g, "a1", "a2", "a3", "a4", "a5")
    weak = record_case(g, None, manual("a1"), ring(["a1", "a2"], 0.2), NOW)
    assert weak["verdict"] == "cleared"
    strong = record_case(g, None, manual("a3"), ring(["a1", "a2", "a3", "a4", "a5"], 0.9), NOW)
    assert strong["verdict"] == "fraud_ring"
    assert strong["case_id"] != weak["case_id"]  # overlap 2/5 < the same-ring threshold
    cases = cases_by_id(g)
    assert cases[weak["case_id"]]["superseded_by"] == strong["case_id"]
    assert cases[weak["case_id"]]["related_cases"] == [strong["case_id"]]
    assert cases[strong["case_id"]]["related_cases"] == [weak["case_id"]]
    assert cases[strong["case_id"]]["superseded_by"] is None
    assert strong["related_cases"] == [weak["case_id"]]


def test_overlapping_cases_link_each_other_and_the_same_ring_updates_one_case(graph_backend: Any) -> None:
    g = graph_backend
    add_accounts(g, "b1", "b2", "b3", "b4", "b5")
    first = record_case(g, None, manual("b1"), ring(["b1", "b2", "b3"], 0.8), NOW)
    again = record_case(g, None, manual("b2"), ring(["b1", "b2", "b3", "b4"], 0.8), NOW + timedelta(hours=1))
    assert again["case_id"] == first["case_id"]  # 3/4 overlap: the same ring
    other = record_case(g, None, manual("b5"), ring(["b4", "b5"], 0.8), NOW)
    cases = cases_by_id(g)
    assert len(cases) == 2
    assert cases[other["case_id"]]["related_cases"] == [first["case_id"]]
    assert cases[first["case_id"]]["related_cases"] == [other["case_id"]]
    # neither holds all of the other's members: no supersession
    assert {c["superseded_by"] for c in cases.values()} == {None}
    member_of: dict[str, set[str]] = {}
    for case in cases.values():
        assert case["members"], "no case without members"
        for member in case["members"]:
            member_of.setdefault(member, set()).add(case["case_id"])
    for member, ids in member_of.items():
        for case_id in ids:
            assert ids - {case_id} <= set(cases[case_id]["related_cases"]), member


def test_no_case_without_members(graph_backend: Any) -> None:
    g = graph_backend
    add_accounts(g, "c1")
    summary = record_case(g, None, ip_flag("203.0.113.9"), {"ring": {"members": []}}, NOW)
    assert (summary["case_id"], summary["status"], summary["members"]) == (None, "no_case", [])
    assert casework.list_cases(g) == []


def test_decisions_move_the_status_and_keep_the_history(graph_backend: Any) -> None:
    g = graph_backend
    add_accounts(g, "d1", "d2")
    case_id = record_case(g, None, manual("d1"), ring(["d1", "d2"], 0.9), NOW)["case_id"]
    assert casework.get_case(g, case_id)["status"] == "open"
    with pytest.raises(casework.InvalidDecision, match="label it --as fraud or legit first"):
        casework.decide(g, case_id, "close", "ana", None, NOW)
    casework.decide(g, case_id, "fraud", "ana", "same device, same payee", NOW)
    casework.decide(g, case_id, "legit", "ben", "a family after all", NOW + timedelta(minutes=5))
    case = casework.decide(g, case_id, "close", "ben", None, NOW + timedelta(minutes=6))
    assert case["status"] == "closed"
    assert [(d["action"], d["by"], d["previous_status"], d["status"]) for d in case["decisions"]] == [
        ("fraud", "ana", "open", "confirmed_fraud"),
        ("legit", "ben", "confirmed_fraud", "false_positive"),
        ("close", "ben", "false_positive", "closed"),
    ]
    assert case["decisions"][0]["note"] == "same device, same payee"
    assert case["decisions"][1]["at"] == "2026-11-02T12:05:00Z"
    with pytest.raises(casework.InvalidDecision, match="closed"):
        casework.decide(g, case_id, "fraud", "ana", None, NOW)
    noted = casework.decide(g, case_id, "note", "ana", "reviewed again", NOW)
    assert noted["status"] == "closed" and noted["decisions"][-1]["note"] == "reviewed again"
    # automation updating the case keeps the analyst's status and history
    record_case(g, None, manual("d2"), ring(["d1", "d2"], 0.95), NOW + timedelta(hours=2))
    assert casework.get_case(g, case_id)["status"] == "closed"
    assert len(casework.get_case(g, case_id)["decisions"]) == 4
    labels = casework.export_labels(casework.list_cases(g))
    assert labels == [
        {"account_id": a, "label": "legit", "pattern": "legit", "ring_id": case_id} for a in ("d1", "d2")
    ]
    with pytest.raises(casework.CaseNotFound, match="cases list"):
        casework.get_case(g, "ring-0000000000000000")


def test_the_queue_is_highest_risk_first_and_filters(graph_backend: Any) -> None:
    g = graph_backend
    add_accounts(g, "e1", "e2", "e3", "e4")
    low = record_case(g, None, manual("e1"), ring(["e1", "e2"], 0.45), NOW)["case_id"]
    high = record_case(g, None, manual("e3"), ring(["e3", "e4"], 0.9), NOW)["case_id"]
    assert [c["case_id"] for c in casework.list_cases(g)] == [high, low]
    assert [c["case_id"] for c in casework.list_cases(g, verdict="suspicious")] == [low]
    casework.decide(g, high, "fraud", "ana", None, NOW)
    assert [c["case_id"] for c in casework.list_cases(g, status="confirmed_fraud")] == [high]
    with pytest.raises(casework.InvalidDecision, match="expected one of"):
        casework.list_cases(g, status="done")


def test_a_decision_is_written_only_over_the_decisions_it_read(graph_backend: Any) -> None:
    g = graph_backend
    add_accounts(g, "f1", "f2")
    case_id = record_case(g, None, manual("f1"), ring(["f1", "f2"], 0.9), NOW)["case_id"]
    vid = schema.vertex_id(schema.CASE, case_id)
    source = fraud_source(g)
    assert source.set_case_properties(vid, {"status": "x"}, {"decision_count": 1}).to_list() == []
    casework.decide(g, case_id, "fraud", "ana", None, NOW)
    # a colleague who read the case before ana's decision cannot overwrite it
    assert source.set_case_properties(vid, {"status": "x"}, {"decision_count": None}).to_list() == []
    assert casework.get_case(g, case_id)["status"] == "confirmed_fraud"
    assert casework.decide(g, case_id, "note", "ben", "seen", NOW)["decisions"][-1]["by"] == "ben"
