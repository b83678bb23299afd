"""SharedDeviceAnalysisFunction: who else uses the entity's devices and IPs.

Input: ``{"investigation": ..., "limits"?: {...}}``. Output: the shared-device analysis
(``fraudcore.investigation.shared_device``).
"""

from __future__ import annotations

from typing import Any

from fraudcore import backends
from fraudcore.investigation import shared_device_step
from fraudcore.observability import logger, metrics, tracer
from fraudcore.settings import get_settings


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = get_settings()
    usage = shared_device_step(
        event, backends.graph_connection(settings), backends.timeseries_store(settings)
    )
    logger.info(
        "shared devices analysed",
        extra={"start": usage["start"], "classes": usage["classes"], "truncation": usage["truncation"]},
    )
    return usage
