"""The contracts between steps dump to the JSON the state machine carries, and a payload of
another shape fails at the step that reads it, naming the field."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from gremlin_python.process.anonymous_traversal import traversal

from fraudcore.contracts import (
    DETECTING_VERDICTS,
    VERDICTS,
    Analyses,
    CaseSummary,
    ContractError,
    Flag,
    MoneyFlowAnalysis,
    RingAnalysis,
    SharedDeviceAnalysis,
)
from fraudcore.investigation import InvalidInvestigationInput, record_case_step
from fraudlocal.adapters.graph_embedded import open_embedded_graph

FLAG: dict[str, Any] = {
    "rule": "card_testing",
    "entity_type": "card",
    "entity_id": "card-1",
    "window_start": "2026-11-01T00:00:00.000Z",
    "window_end": "2026-11-01T00:10:00.000Z",
    "observed": 12,
    "threshold": 8.0,
    "severity": "high",
    "description": "12 small payments in 10m",
    "execution_name": "card_testing-card-abc-20261101T000000Z",
    "evaluation_time": "2026-11-01T00:15:00.000Z",
    "recheck_execution_name": None,
}

RING: dict[str, Any] = {
    "analysis": "ring",
    "start": {"type": "account", "id": "acc-1"},
    "members": ["acc-1", "acc-2"],
    "shared_identifiers": [{"type": "card", "id": "card-1", "degree": 2, "accounts": ["acc-1", "acc-2"]}],
    "density": 1,
    "flagged_share": 0.5,
    "ring_score": 0.61,
}


def test_a_flag_dumps_to_the_execution_input_with_every_field_and_its_number_types() -> None:
    flag = Flag(**FLAG)
    dumped = flag.to_dict()
    assert dumped == FLAG
    assert list(dumped) == list(FLAG)
    assert type(dumped["observed"]) is int and type(dumped["threshold"]) is float


def test_a_payload_keeps_only_the_fields_its_producer_set() -> None:
    assert RingAnalysis.parse(RING, "ring analysis").payload() == RING
    usage = {
        "type": "device",
        "id": "dev-1",
        "accounts": 3,
        "accounts_last_24h": 1,
        "account_ids": ["acc-1", "acc-2", "acc-3"],
        "flagged_accounts": [],
        "class": "household",
    }
    shared = {"analysis": "shared_device", "identifiers": [usage]}
    # the usage class travels as "class", as the JSONPaths and the pages read it
    assert SharedDeviceAnalysis.parse(shared, "shared-device analysis").payload() == shared


def test_a_missing_or_unknown_field_is_named_in_the_error() -> None:
    without_density = {k: v for k, v in RING.items() if k != "density"}
    with pytest.raises(ContractError, match=r"^ring analysis: density: Field required"):
        RingAnalysis.parse(without_density, "ring analysis")
    with pytest.raises(ContractError, match=r"^ring analysis: ring_size: Extra inputs are not permitted$"):
        RingAnalysis.parse({**RING, "ring_size": 2}, "ring analysis")
    with pytest.raises(ContractError, match=r"^money flow: start: Field required; fan_in: Field required;"):
        MoneyFlowAnalysis.parse({"fan_out": 2}, "money flow")
    with pytest.raises(
        ContractError,
        match=r"verdict: Input should be 'fraud_ring', 'account_takeover', 'suspicious' or 'cleared'",
    ):
        CaseSummary.parse({"verdict": "maybe"}, "case summary")


def test_verdicts_most_severe_first() -> None:
    assert VERDICTS == ("fraud_ring", "account_takeover", "suspicious", "cleared")
    assert DETECTING_VERDICTS == ("fraud_ring", "account_takeover", "suspicious")
    assert Analyses.parse({"ring": RING}, "analyses").ring == RingAnalysis.parse(RING, "ring")


def test_the_record_step_refuses_a_malformed_analysis_before_it_writes(tmp_path: Path) -> None:
    connection = open_embedded_graph(tmp_path / "state")
    try:
        g = traversal().with_remote(connection)
        event = {
            "investigation": {
                "entity_type": "account",
                "entity_id": "acc-1",
                "trigger": "flag",
                "rule": "card_testing",
                "reference_time": "2026-11-01T00:10:00.000Z",
            },
            "analyses": {"ring": {**RING, "members": "acc-1"}},
        }
        now = datetime(2026, 11, 1, 0, 15, tzinfo=UTC)
        with pytest.raises(
            InvalidInvestigationInput, match=r"analyses: ring\.members: Input should be a valid list"
        ):
            record_case_step(event, g, None, now)
        assert g.V().count().next() == 0
    finally:
        connection.close()
