"""RecordCaseFunction: score the evidence, decide, record the case and publish it.

Input: ``{"investigation": ..., "analyses": {"ring"?, "shared_device"?, "money_flow"?}}``.
Output: the case summary (``case_id``, ``verdict``, ``score``, ``members``, ``reasons``...),
which becomes the execution's output.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from fraudcore import backends
from fraudcore.investigation import record_case_step
from fraudcore.observability import logger, metrics, tracer
from fraudcore.settings import get_settings


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = get_settings()
    case = record_case_step(
        event,
        backends.graph_connection(settings),
        backends.event_publisher(settings),
        datetime.now(tz=UTC),
    )
    metrics.add_metric(name=f"Verdict_{case['verdict']}", unit=MetricUnit.Count, value=1)
    metrics.add_metric(
        name="CasesOpened" if case["status"] == "opened" else "CasesUpdated", unit=MetricUnit.Count, value=1
    )
    logger.info(
        "case recorded",
        extra={k: case[k] for k in ("case_id", "status", "verdict", "score", "members", "flags_propagated")},
    )
    return case
