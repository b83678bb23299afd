"""The investigation workflow's steps: flag, analyse (ring, shared devices, money flow), record.

Each step of ``statemachines/investigation.asl.json`` calls one function here with its
task input; the handlers in ``functions/`` only add logging, metrics and the backends.

Task inputs: the flag step gets the execution input (a micro-analysis flag or a
hand-started request) and returns ``$.investigation``; each analysis gets
``{"investigation": ..., "limits": {...optional}}`` and returns its result; the record
step gets ``{"investigation": ..., "analyses": {"ring"?, "shared_device"?, "money_flow"?}}``
and returns the case summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..contracts import (
    ANALYSES,
    Analyses,
    ContractError,
    MoneyFlowAnalysis,
    RingAnalysis,
    SharedDeviceAnalysis,
)
from ..graph.access import GraphPort
from ..ports import EventPublisher, TimeseriesStore
from .case import case_id_for, record_case
from .flagging import flag_entity
from .model import (
    EntityNotFound,
    EntityNotInGraph,
    InvalidInvestigationInput,
    Investigation,
    MoneyFlowLimits,
    RingLimits,
    SharedDeviceLimits,
    limits_from,
    parse_investigation_input,
)
from .money_flow import analyse_money_flow
from .ring import analyse_ring
from .scoring import assess
from .shared_device import analyse_shared_devices

__all__ = [
    "EntityNotFound",
    "EntityNotInGraph",
    "InvalidInvestigationInput",
    "Investigation",
    "analyse_money_flow",
    "analyse_ring",
    "analyse_shared_devices",
    "assess",
    "case_id_for",
    "flag_step",
    "money_flow_step",
    "record_case",
    "record_case_step",
    "ring_step",
    "shared_device_step",
]


def _investigation(event: Mapping[str, Any]) -> Investigation:
    if not isinstance(event, Mapping) or "investigation" not in event:
        raise InvalidInvestigationInput(
            "task input: expected {'investigation': <the flag step's output>, ...}; "
            "the state machine passes $ with $.investigation set by the flag step"
        )
    return Investigation.from_dict(event["investigation"])


def flag_step(event: Mapping[str, Any], graph: GraphPort, now: datetime) -> dict[str, Any]:
    """Execution input -> ``$.investigation`` (the entity flagged, its alert recorded)."""
    return flag_entity(graph, parse_investigation_input(event, now), now)


def ring_step(event: Mapping[str, Any], graph: GraphPort) -> dict[str, Any]:
    result = analyse_ring(graph, _investigation(event), limits_from(RingLimits, event.get("limits")))
    return RingAnalysis.parse(result, "ring analysis").payload()


def shared_device_step(
    event: Mapping[str, Any], graph: GraphPort, timeseries: TimeseriesStore | None
) -> dict[str, Any]:
    result = analyse_shared_devices(
        graph, timeseries, _investigation(event), limits_from(SharedDeviceLimits, event.get("limits"))
    )
    return SharedDeviceAnalysis.parse(result, "shared-device analysis").payload()


def money_flow_step(event: Mapping[str, Any], graph: GraphPort) -> dict[str, Any]:
    result = analyse_money_flow(
        graph, _investigation(event), limits_from(MoneyFlowLimits, event.get("limits"))
    )
    return MoneyFlowAnalysis.parse(result, "money-flow analysis").payload()


def record_case_step(
    event: Mapping[str, Any], graph: GraphPort, publisher: EventPublisher | None, now: datetime
) -> dict[str, Any]:
    investigation = _investigation(event)
    analyses = event.get("analyses") or {}
    if not isinstance(analyses, Mapping):
        raise InvalidInvestigationInput(f"analyses: expected an object keyed by {', '.join(ANALYSES)}")
    unknown = sorted(set(analyses) - set(ANALYSES))
    if unknown:
        raise InvalidInvestigationInput(
            f"analyses: unknown {', '.join(unknown)}; expected {', '.join(ANALYSES)}"
        )
    try:
        parsed = Analyses.parse(analyses, "analyses")
    except ContractError as error:
        raise InvalidInvestigationInput(f"{error}: pass the analysis steps' outputs unchanged") from None
    checked = {name: result.payload() for name, result in parsed if result is not None}
    alert = event["investigation"].get("alert_id")
    return record_case(graph, publisher, investigation, checked, now, trigger_alert_id=alert)
