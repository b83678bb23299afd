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
    if result.relooks:
        # hits looked at again (rules with relook_after): a provisional verdict may be lowered
        metrics.add_metric(name="RelooksStarted", unit=MetricUnit.Count, value=result.relooks_started)
    if result.capped:
        metrics.add_metric(name="InvestigationsCapped", unit=MetricUnit.Count, value=result.capped)
        logger.warning(
            "investigation cap reached: flags left without an investigation",
            extra={"cap": settings.max_investigations_per_run, "capped": result.capped},
        )
    if result.rules_skipped:
        # A rule reading an identifier no producer has sent yet cannot match: not an error.
        metrics.add_metric(name="RulesSkipped", unit=MetricUnit.Count, value=len(result.rules_skipped))
        logger.info("rules skipped", extra={"rules_skipped": result.rules_skipped})
    # what the run skipped, each with its reason and a metric: the rest of the run went on
    for metric, message, details in (
        ("RuleErrors", "rules failed", result.rule_errors),
        ("RuleRowsSkipped", "rule result rows skipped", result.skipped_rows),
        (
            "InvestigationStartFailures",
            "investigations not started; the next run starts them under the same names",
            result.start_failures,
        ),
        (
            "RuleOverridesRefused",
            "rule overrides refused; those rules keep their last good definition",
            result.override_errors,
        ),
    ):
        if details:
            metrics.add_metric(name=metric, unit=MetricUnit.Count, value=len(details))
            logger.error(message, extra={"details": details})
    logger.info(
        "micro-analysis done",
        extra={
            "evaluation_time": response["evaluation_time"],
            "flags": len(result.flags),
            "started": result.started,
            "duplicates": result.duplicates,
            "relooks_started": result.relooks_started,
        },
    )
    return response
