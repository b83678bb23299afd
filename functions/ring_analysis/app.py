"""RingAnalysisFunction: accounts linked to the flagged entity through shared identifiers.

Input: ``{"investigation": ..., "limits"?: {...}}``. Output: the ring analysis
(``fraudcore.investigation.ring``).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from fraudcore import backends
from fraudcore.investigation import ring_step
from fraudcore.observability import logger, metrics, tracer
from fraudcore.settings import get_settings


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ring = ring_step(event, backends.graph_connection(get_settings()))
    metrics.add_metric(name="RingMembers", unit=MetricUnit.Count, value=len(ring["members"]))
    metrics.add_metric(name="GraphRequests", unit=MetricUnit.Count, value=ring["requests"])
    if ring["truncated"]:
        metrics.add_metric(name="RingAnalysisTruncated", unit=MetricUnit.Count, value=1)
    logger.info(
        "ring analysed",
        extra={k: ring[k] for k in ("start", "members", "ring_score", "benign_cluster", "truncation")},
    )
    return ring
