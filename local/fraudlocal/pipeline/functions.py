"""What the local pipeline's two processes share: the functions of ``template.yaml`` they
invoke, what evaluating the rules per span takes from ``MicroAnalysisFunction``'s environment
(each reads it as the function would), the stopwatch of their stages, and the staging of a
span (read into the time series, its ticks evaluated), which the main process does itself
one stage after another and the span worker does with ``overlap``."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fraudcore import backends
from fraudcore.execution_names import configured_name_key, pinned_name_key
from fraudcore.micro import schedule_interval
from fraudcore.rules import Rule, enabled_rules, load_rules_keeping_last_good
from fraudcore.settings import get_settings

from ..emulators.kinesis_esm import EventSourceMapping, LocalStream, discard_consumed
from ..emulators.runtime import FunctionRunner, patched_environment
from .results import STAGES
from .span_evaluation import RunFlags, SpanEvaluator

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


@dataclass
class Stopwatch:
    """Wall seconds per stage (stages on two threads or processes overlap: they may add up to
    more than the run)."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    lock: threading.Lock = field(default_factory=threading.Lock)

    @contextlib.contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.add({stage: time.perf_counter() - began})

    def add(self, seconds: dict[str, float]) -> None:
        """Count seconds measured elsewhere (the span worker's)."""
        with self.lock:
            for stage, elapsed in seconds.items():
                self.seconds[stage] = self.seconds.get(stage, 0.0) + elapsed


def timed_handler(
    runner: FunctionRunner, function: str, watch: Stopwatch, stage: str
) -> Callable[[dict[str, Any]], Any]:
    """``function``'s invocation as a mapping's handler, its seconds counted under ``stage``."""

    def handler(event: dict[str, Any]) -> Any:
        with watch.measure(stage):
            return runner.invoke(function, event)

    return handler


def stage_span(
    stream: LocalStream,
    mapping: EventSourceMapping,
    records: Iterable[tuple[bytes | str, str]],
    ticks: list[datetime],
    evaluation: Callable[[], tuple[SpanEvaluator, bytes]],
    watch: Stopwatch,
) -> dict[datetime, RunFlags]:
    """Read ``records`` (data, partition key) into the time series through
    ``IngestTimeseriesFunction``'s ``mapping``, then evaluate ``ticks`` with the evaluator and
    name key ``evaluation`` gives (asked only when there are ticks)."""
    for data, partition_key in records:
        stream.put(data, partition_key)
    mapping.poll(stream)
    discard_consumed(stream, [mapping])
    if not ticks:
        return {}
    evaluator, name_key = evaluation()
    with watch.measure("micro_analysis"), pinned_name_key(name_key):
        return evaluator.evaluate(ticks)
