"""MicroAnalysisFunction: scheduled window rules -> flags -> investigations.

The evaluation time is the scheduled event's ``time`` (EventBridge Scheduler / a scheduled
rule), so a retried or replayed invocation evaluates exactly the same windows.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from fraudcore import backends
from fraudcore.micro import run_scheduled
from fraudcore.observability import logger, metrics, tracer
from fraudcore.settings import get_settings


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = get_settings()
    result = run_scheduled(
        event, settings, backends.timeseries_store(settings), backends.investigation_starter(settings)
    )
    response = result.to_response()
    metrics.add_metric(name="Flags", unit=MetricUnit.Count, value=len(result.flags))
    metrics.add_metric(name="InvestigationsStarted", unit=MetricUnit.Count, value=result.started)
    metrics.add_metric(name="DuplicateFlags", unit=MetricUnit.Count, value=result.duplicates)
    if result.capped:
        metrics.add_metric(name="InvestigationsCapped", unit=MetricUnit.Count, value=result.capped)
        logger.warning(
            "investigation cap reached: flags left without an investigation",
            extra={"cap": settings.max_investigations_per_run, "capped": result.capped},
        )
    if result.rule_errors:
        metrics.add_metric(name="RuleErrors", unit=MetricUnit.Count, value=len(result.rule_errors))
        logger.error("rules failed", extra={"rule_errors": result.rule_errors})
    if result.skipped_rows:
        metrics.add_metric(name="RuleRowsSkipped", unit=MetricUnit.Count, value=len(result.skipped_rows))
        logger.error("rule result rows skipped", extra={"skipped_rows": result.skipped_rows})
    if result.start_failures:
        metrics.add_metric(
            name="InvestigationStartFailures", unit=MetricUnit.Count, value=len(result.start_failures)
        )
        logger.error(
            "investigations not started; the next run starts them under the same names",
            extra={"start_failures": result.start_failures},
        )
    if result.override_errors:
        metrics.add_metric(
            name="RuleOverridesRefused", unit=MetricUnit.Count, value=len(result.override_errors)
        )
        logger.error(
            "rule overrides refused; those rules keep their last good definition",
            extra={"override_errors": result.override_errors},
        )
    logger.info(
        "micro-analysis done",
        extra={
            "evaluation_time": response["evaluation_time"],
            "flags": len(result.flags),
            "started": result.started,
            "duplicates": result.duplicates,
        },
    )
    return response
