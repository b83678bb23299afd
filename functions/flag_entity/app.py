"""FlagEntityFunction: the first step of an investigation, flag the suspicious entity.

Input: the execution input (a micro-analysis flag, or ``{"entity_type", "entity_id"}``
from an analyst). Output: ``$.investigation`` for the following steps.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from fraudcore import backends
from fraudcore.investigation import flag_step
from fraudcore.observability import logger, metrics, tracer
from fraudcore.settings import get_settings


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    investigation = flag_step(event, backends.graph_connection(get_settings()), datetime.now(tz=UTC))
    metrics.add_metric(name="EntitiesFlagged", unit=MetricUnit.Count, value=1)
    logger.info("entity flagged", extra={"investigation": investigation})
    return investigation
