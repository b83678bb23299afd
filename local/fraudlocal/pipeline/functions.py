"""The functions of ``template.yaml`` the local pipeline invokes, and what evaluating the rules
per span takes from ``MicroAnalysisFunction``'s environment (the main process reads it, and
so does the span worker, each as the function would)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fraudcore import backends
from fraudcore.execution_names import configured_name_key
from fraudcore.micro import schedule_interval
from fraudcore.rules import Rule, enabled_rules, load_rules_keeping_last_good
from fraudcore.settings import get_settings

from ..emulators.runtime import FunctionRunner, patched_environment
from .span_evaluation import SpanEvaluator

INGEST_TIMESERIES = "IngestTimeseriesFunction"
INGEST_GRAPH = "IngestGraphFunction"
MICRO_ANALYSIS = "MicroAnalysisFunction"


@dataclass
class EvaluationSetup:
    """What evaluating the rules per span takes, read in ``MicroAnalysisFunction``'s
    environment as the function would read it: its settings, enabled rules, the cap on the
    investigations a run starts, and the key behind the PII entities' execution names."""

    settings: Any
    rules: list[Rule]
    max_investigations: int
    name_key: bytes

    @property
    def relook_rules(self) -> dict[str, Rule]:
        """The rules that look at their hits again."""
        return {rule.id: rule for rule in self.rules if rule.relook_after is not None}

    def evaluator(self) -> SpanEvaluator:
        """The span evaluator, on the function's time-series store."""
        return SpanEvaluator(
            backends.timeseries_store(self.settings),
            self.rules,
            schedule_interval(self.settings.micro_schedule_interval),
        )


def evaluation_setup(runner: FunctionRunner) -> EvaluationSetup:
    """Read the settings, the enabled rules (an override that does not load keeps the last
    good ones, as the function does) and the name key in ``MicroAnalysisFunction``'s
    environment."""
    with patched_environment(runner.environment(MICRO_ANALYSIS)):
        settings = get_settings()
        rules, _ = load_rules_keeping_last_good(
            settings.rules_override, timedelta(hours=settings.timestream_memory_retention_hours)
        )
        return EvaluationSetup(
            settings, enabled_rules(rules), settings.max_investigations_per_run, configured_name_key()
        )
