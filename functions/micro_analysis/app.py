"""MicroAnalysisFunction: scheduled window rules -> flags -> investigations.

The evaluation time is the scheduled event's ``time`` (EventBridge Scheduler / a scheduled
rule), so a retried or replayed invocation evaluates exactly the same windows.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from fraudcore import backends
from fraudcore.micro import parse_time, run_micro_analysis
from fraudcore.observability import logger, metrics, tracer
from fraudcore.rules import enabled_rules, load_rules, parse_duration
from fraudcore.settings import get_settings

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")


def schedule_interval() -> timedelta:
    """MICRO_SCHEDULE_INTERVAL: the time between scheduled runs (default 5 minutes).

    A Timestream duration (``15m``) or the schedule's own rate expression
    (``rate(15 minutes)``), so the template can pass the schedule parameter as it is. A
    slower schedule widens each rule's look-back, so no window falls between two runs.
    """
    raw = (os.environ.get("MICRO_SCHEDULE_INTERVAL") or "5m").strip()
    rate = _RATE.match(raw)
    if rate:
        unit = rate.group(2).rstrip("s") + "s"
        return timedelta(**{unit: int(rate.group(1))})
    return parse_duration(raw, "MICRO_SCHEDULE_INTERVAL (e.g. 5m or rate(5 minutes))")


def evaluation_time_of(event: Any) -> datetime:
    """The scheduled time of the event; an event without one (a test call) means now."""
    if isinstance(event, dict) and event.get("time"):
        try:
            return parse_time(event["time"])
        except ValueError as error:
            raise ValueError(f"event.time: {error}") from None
    return datetime.now(tz=UTC).replace(microsecond=0)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = get_settings()
    evaluation_time = evaluation_time_of(event)
    rules = enabled_rules(load_rules(override=settings.rules_override))
    result = run_micro_analysis(
        backends.timeseries_store(settings),
        backends.investigation_starter(settings),
        rules,
        evaluation_time,
        max_investigations=settings.max_investigations_per_run,
        schedule_interval=schedule_interval(),
    )
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
    logger.info(
        "micro-analysis done",
        extra={
            "evaluation_time": result.to_response()["evaluation_time"],
            "rules": len(rules),
            "flags": len(result.flags),
            "started": result.started,
            "duplicates": result.duplicates,
        },
    )
    return result.to_response()
