"""MoneyFlowAnalysisFunction: transfers_to chains up to three hops in and out.

Input: ``{"investigation": ..., "limits"?: {...}}``. Output: the money-flow analysis
(``fraudcore.investigation.money_flow``).
"""

from __future__ import annotations

from typing import Any

from fraudcore import backends
from fraudcore.investigation import money_flow_step
from fraudcore.observability import logger, metrics, tracer
from fraudcore.settings import get_settings


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    flow = money_flow_step(event, backends.graph_connection(get_settings()))
    logger.info(
        "money flow analysed",
        extra={k: flow[k] for k in ("start", "fan_in", "fan_out", "amount_in", "amount_out", "truncation")}
        | {"cycles": len(flow["cycles"])},
    )
    return flow
