"""The local pipeline, end to end, on the embedded stores under the state dir.

Transactions are put, in event-time order, on an in-memory Kinesis stream
(:class:`fraudlocal.emulators.kinesis_esm.LocalStream`, partition key = account id). Two
event-source mappings read it, as on AWS: one delivers batches to
``IngestTimeseriesFunction``, the other to ``IngestGraphFunction`` (partial batch
failures retried, bisect on error, an on-failure file). A simulated clock fires
``MicroAnalysisFunction`` every ``every`` of *event* time with the scheduled event's
``time`` set to the tick, after both mappings have caught up with every record before the
tick; the investigations it starts (the local starter's pending queue) then run through
the local executor of ``statemachines/investigation.asl.json`` with each task dispatched
to the real handler. When the input ends, the clock keeps ticking until the last
record's windows have closed (what the schedule would do on AWS), so every window is
evaluated whole, then the last investigations run.

Ticks where nothing can change are skipped: once the clock is more than the longest
``window + lateness`` of the rules past the last record, no rule can see an event, so a
quiet period of the input costs nothing.

By default the rules are evaluated once per span of input rather than at every tick
(:mod:`.span_evaluation`): ``IngestTimeseriesFunction``'s mapping reads a span of
records ahead (on AWS the two mappings and the schedule run concurrently too), every rule
is evaluated over the span with each scheduled run's result kept exact, and the clock then
runs the span as above with the graph filled up to each tick, each run starting the
investigations of its flags (same cap, same names) before they run. The flags, cases and
figures are those of the per-tick run (``per_tick=True``, ``--per-tick``), which invokes
``MicroAnalysisFunction`` at every tick.

With ``overlap=True`` (``--overlap``, the command line's default where two CPUs are free
to the process) the stages of consecutive spans overlap as they would on AWS: while a span
goes through the clock, the span worker, a second process (:mod:`.span_worker`), reads the
next span into the time-series store and evaluates its rules (see :meth:`Pipeline._run_span`
for what keeps that exact). ``PipelineConfig``'s default runs each span's stages one after
another in this process.

The outputs (see :mod:`fraudlocal.reporting.report`) go to ``--out``; the execution history of each
investigation stays in ``<state>/investigations/done/<name>.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fraudcore.contracts import VERDICTS, Flag
from fraudcore.execution_names import pinned_name_key
from fraudcore.micro import MicroResult, relook, start_investigations, start_relooks
from fraudcore.rules import Rule, format_duration
from fraudcore.timeutil import iso_z

from .. import collector
from ..adapters.sinks import rejected_by_function
from ..adapters.starter_local import LocalInvestigationStarter
from ..adapters.timeseries_duckdb import read_horizon
from ..emulators.asl import execute, load_state_machine
from ..emulators.kinesis_esm import EventSourceMapping, LocalStream, MappingStats, discard_consumed
from ..emulators.runtime import (
    FunctionRunner,
    LocalTarget,
    close_local_backends,
    store_stats,
)
from ..errors import UserError
from ..reporting import report
from ..state_dir import StateDir
from ..state_machine import RECORD_CASE_STATE, STATE_MACHINE
from .clock import ScheduleClock, rules_horizon, scheduled_event
from .functions import (
    INGEST_GRAPH,
    INGEST_TIMESERIES,
    MICRO_ANALYSIS,
    EvaluationSetup,
    Stopwatch,
    evaluation_setup,
    stage_span,
    timed_handler,
)
from .ordering import StreamInput
from .results import CaseRecord, PipelineResult
from .span_evaluation import RunFlags, SpanEvaluator
from .span_worker import SpanWorker, WorkerSetup

#: what Lambda's Kinesis mapping is given in template.yaml (batch size, retries, bisect)
DEFAULT_BATCH_SIZE = 100
DEFAULT_MAX_RETRIES = 3
#: the stream is polled after this many new records, so the stores fill as the stream does
DEFAULT_POLL_EVERY = 500
#: records read ahead and evaluated at once when the rules run per span, one stage after
#: another, and when the next span is staged while this one runs (``overlap``): smaller,
#: so a run of the demo's size is several spans (a span costs a few more queries; the
#: span worker takes them)
DEFAULT_SPAN_RECORDS = 50_000
OVERLAPPED_SPAN_RECORDS = 5_000
#: with ``overlap``, the first span is shorter: nothing goes through the clock before it is
#: staged, so its staging is the one the main process waits for
FIRST_OVERLAPPED_SPAN_RECORDS = 1_000


def default_overlap() -> bool:
    """Whether the stages of consecutive spans overlap by default: when this process may run
    on two CPUs or more (its affinity where the platform tells it, else the machine's count)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return cpus >= 2


@dataclass
class PipelineConfig:
    """How one run of the pipeline is set up."""

    state_dir: Path
    every: timedelta = timedelta(minutes=5)
    shards: int = 1
    batch_size: int = DEFAULT_BATCH_SIZE
    max_retries: int = DEFAULT_MAX_RETRIES
    poll_every: int = DEFAULT_POLL_EVERY
    mapping: str | None = None  # FIELD_MAPPING for the ingest functions; None = the template's (auto)
    rules_override: Path | None = None
    graph_backend: str = "embedded"
    graph_endpoint: str | None = None
    verbose: bool = False
    #: invoke MicroAnalysisFunction at every tick instead of evaluating the rules per span
    per_tick: bool = False
    #: records a span (None: OVERLAPPED_SPAN_RECORDS with overlap, else DEFAULT_SPAN_RECORDS)
    span_records: int | None = None
    #: read the next span into the time series and evaluate its rules in a second process (the
    #: span worker) while this span's graph ingest, ticks and investigations run (by default,
    #: one stage after another in this process)
    overlap: bool = False

    @property
    def records_per_span(self) -> int:
        if self.span_records is not None:
            return self.span_records
        return OVERLAPPED_SPAN_RECORDS if self.overlap else DEFAULT_SPAN_RECORDS

    @property
    def records_first_span(self) -> int:
        if self.overlap:
            return min(self.records_per_span, FIRST_OVERLAPPED_SPAN_RECORDS)
        return self.records_per_span

    def target(self) -> LocalTarget:
        # the functions' schedule interval is the clock's (a rule's ``every`` is a multiple of it)
        extra: list[tuple[str, str]] = [("MICRO_SCHEDULE_INTERVAL", format_duration(self.every))]
        if self.mapping is not None:
            extra.append(("FIELD_MAPPING", self.mapping))
        if self.rules_override is not None:
            extra.append(("RULES_OVERRIDE", str(self.rules_override.resolve())))
        return LocalTarget(
            state_dir=self.state_dir.resolve(),
            graph_backend=self.graph_backend,
            graph_endpoint=self.graph_endpoint,
            extra_env=tuple(extra),
        )


@dataclass
class StagedSpan:
    """A span read into the time-series store, its rules evaluated (or being staged by the
    span worker), not yet through the clock."""

    records: list[StreamInput]
    ticks: list[datetime]
    runs: dict[datetime, RunFlags] = field(default_factory=dict)
    #: sent to the span worker, not yet collected
    staging: bool = False


class Pipeline:
    """Feed it records (:meth:`put`), then :meth:`finish`; the clock follows event time."""

    def __init__(
        self,
        config: PipelineConfig,
        on_progress: Callable[[Pipeline], None] | None = None,
    ):
        if config.every <= timedelta(0):
            raise UserError("--every must be a positive number of minutes")
        self.config = config
        self.target = config.target()
        self.state_dir = self.target.state_dir
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.runner = FunctionRunner(self.target, verbose=config.verbose)
        self.watch = Stopwatch()
        # One stream per mapping, with the same records: the time-series mapping may read
        # ahead of the graph mapping (per-span evaluation), each keeps its own position.
        self.streams = {
            INGEST_TIMESERIES: LocalStream(config.shards),
            INGEST_GRAPH: LocalStream(config.shards),
        }
        failures = StateDir(self.state_dir).ingest_failures
        self.mappings = [
            EventSourceMapping(
                name=function,
                handler=timed_handler(self.runner, function, self.watch, stage),
                batch_size=config.batch_size,
                max_retries=config.max_retries,
                bisect_on_error=True,
                on_failure=failures,
            )
            for function, stage in ((INGEST_TIMESERIES, "ingest_timeseries"), (INGEST_GRAPH, "ingest_graph"))
        ]
        self.starter = LocalInvestigationStarter(self.state_dir)
        self.machine = load_state_machine(self.runner.template, STATE_MACHINE)
        self.horizon = rules_horizon(self._rules_override(), config.every)
        # Per span needs the replay horizon of the DuckDB store; another engine runs per tick.
        self.per_span = not config.per_tick and self.target.timeseries_backend == "duckdb"
        self.clock = ScheduleClock(config.every, self.horizon)
        self.on_progress = on_progress
        self.put_count = 0
        self.unpolled = 0
        self.first_event: datetime | None = None
        self.first_event_by_key: dict[str, datetime] = {}
        self.first_case_by_account: dict[str, datetime] = {}
        self.last_tick: datetime | None = None
        self.last_event: datetime | None = None
        self.pending: list[StreamInput] = []  # read ahead, not yet through the clock (per span)
        self.scheduled: dict[datetime, RunFlags] = {}  # each tick's evaluated run (per span)
        self.span_evaluator: SpanEvaluator | None = None
        self.evaluation: EvaluationSetup | None = None
        #: per span: the clock as far as the time-series store has been read (ahead of
        #: ``clock``), the span read and evaluated but not yet through the clock, the process
        #: staging the next span meanwhile (``overlap``), the rule queries it counted, and the
        #: name key of the function's environment
        self.preview = ScheduleClock(config.every, self.horizon)
        self.staged: StagedSpan | None = None
        self.worker: SpanWorker | None = None
        self.worker_statistics: dict[str, int] | None = None
        self.worker_cpu_seconds = 0.0
        self.name_key: bytes | None = None
        #: spans that went through the clock while the next one was staged, and spans held
        #: to the serial order (the next span had a record before their last tick)
        self.overlapped_spans = 0
        self.serial_spans = 0
        self.spans = 0
        #: per span: the rules that look at their hits again, and the hits due for a re-look
        #: by when (the scheduled function finds them again with the earlier run's query)
        self.relook_rules: dict[str, Rule] = {}
        self.relooks_pending: dict[datetime, list[Flag]] = {}
        self.max_investigations = 0
        self.ticks = 0
        self.flags: dict[str, dict[str, Any]] = {}
        self.cases: dict[str, CaseRecord] = {}
        self.investigations = 0
        #: investigations that found no account to hold a case
        self.without_case = 0
        self.failed: list[dict[str, Any]] = []
        self.began = time.perf_counter()
        if self.per_span and config.overlap:
            self._start_worker()  # it starts up while the input is read; run() or close() stops it

    # -- set-up -------------------------------------------------------------------------
    def _rules_override(self) -> Path | None:
        """The override the functions will see: the run's own, or the state dir's file."""
        if self.config.rules_override:
            return self.config.rules_override.resolve()
        local = StateDir(self.state_dir).rules_override
        return local if local.exists() else None

    @property
    def next_tick(self) -> datetime | None:
        return self.clock.next_tick

    # -- input --------------------------------------------------------------------------
    def put(self, record: StreamInput) -> None:
        """Put one record on the stream; ticks whose time has come run first.

        Per span, records are read ahead and go through the clock a span at a time.
        """
        if not self.per_span:
            self._put_on_streams(record, tuple(self.streams))
            return
        self.pending.append(record)
        limit = self.config.records_per_span if self.spans else self.config.records_first_span
        if len(self.pending) >= limit:
            self._run_span()

    def _put_on_streams(self, record: StreamInput, functions: tuple[str, ...]) -> None:
        if record.event_time is not None:
            for moment in self.clock.advance(record.event_time):
                self.tick(moment)
            self.first_event = min(self.first_event or record.event_time, record.event_time)
            self.first_event_by_key.setdefault(record.partition_key, record.event_time)
            self.last_event = max(self.last_event or record.event_time, record.event_time)
        for function in functions:
            self.streams[function].put(record.data, record.partition_key)
        self.put_count += 1
        self.unpolled += 1
        if self.unpolled >= self.config.poll_every:
            self.poll()

    def _run_span(self, closing: bool = False) -> None:
        """Read the pending records into the time-series store, evaluate their ticks, run them.

        With ``overlap``, a span goes through the clock (graph ingest, ticks, investigations)
        only once the next span has been sent to the span worker, so the two overlap. The
        next span is sent only after this span's evaluation ended (it is read into the store
        the serial order gives it), and only when none of its records is before this span's
        last tick (the investigations, which see the store up to their tick, cannot tell it
        is there); otherwise this span goes through the clock first, as in the serial order.
        """
        span, self.pending = self.pending, []
        self.spans += 1
        previous, self.staged = self.staged, None
        if previous is not None:
            self._collect(previous)
            if not _after_ticks(span, previous.ticks):
                self.serial_spans += 1
                self._through_clock(previous)
                previous = None
        current = self._stage(span, closing)
        if previous is not None:
            self.overlapped_spans += 1
            self._through_clock(previous)
        if closing or not self.config.overlap:
            self._collect(current)
            self._through_clock(current)
        else:
            self.staged = current

    def _stage(self, span: list[StreamInput], closing: bool) -> StagedSpan:
        """Read ``span`` into the time-series store and evaluate the ticks it brings (in the
        span worker with ``overlap``)."""
        ticks = [
            moment
            for record in span
            if record.event_time
            for moment in self.preview.advance(record.event_time)
        ]
        if closing:
            ticks += self.preview.closing()
        staged = StagedSpan(span, ticks)
        if self.config.overlap:
            if self.worker is None:
                raise RuntimeError("the pipeline is closed: its span worker has ended")
            self._evaluation()  # what the clock needs of the function's settings
            self.worker.stage([(record.data, record.partition_key) for record in span], ticks)
            staged.staging = True
            if self.spans == 1:
                self._cold_starts()
            return staged
        staged.runs = stage_span(
            self.streams[INGEST_TIMESERIES],
            self.mappings[0],
            ((record.data, record.partition_key) for record in span),
            ticks,
            lambda: (self._evaluator(), self._evaluation().name_key),
            self.watch,
        )
        return staged

    def _cold_starts(self) -> None:
        """Import the handlers this process invokes while the worker stages the first span:
        nothing goes through the clock before that span is staged."""
        for logical_id in self.runner.template.functions():
            if logical_id not in (INGEST_TIMESERIES, MICRO_ANALYSIS):
                self.runner.prepare(logical_id)

    def _start_worker(self) -> None:
        """Start the span worker. It opens the time-series file, so this process first closes
        the stores it has open."""
        close_local_backends()
        self.worker = SpanWorker(
            WorkerSetup(
                target=self.target,
                shards=self.config.shards,
                batch_size=self.config.batch_size,
                max_retries=self.config.max_retries,
                verbose=self.config.verbose,
            )
        )
        self.worker.serve()

    def _collect(self, staged: StagedSpan) -> None:
        """Wait for the span's staging; its runs are then due at their ticks."""
        if staged.staging:
            assert self.worker is not None
            staged.staging = False
            result = self.worker.collect()
            staged.runs = result.runs
            self.watch.add(result.seconds)
        self.scheduled.update(staged.runs)

    def _through_clock(self, staged: StagedSpan) -> None:
        for record in staged.records:
            self._put_on_streams(record, (INGEST_GRAPH,))

    def _evaluation(self) -> EvaluationSetup:
        """What evaluating the rules takes, read once in the function's environment; the clock
        keeps the cap on investigations, the re-looking rules and the name key."""
        if self.evaluation is None:
            with self.watch.measure("micro_analysis"):
                self.evaluation = evaluation_setup(self.runner)
            self.relook_rules = self.evaluation.relook_rules
            self.max_investigations = self.evaluation.max_investigations
            self.name_key = self.evaluation.name_key
        return self.evaluation

    def _evaluator(self) -> SpanEvaluator:
        """The span evaluator, built as the function would build its own."""
        if self.span_evaluator is None:
            self.span_evaluator = self._evaluation().evaluator()
        return self.span_evaluator

    def rule_query_statistics(self) -> dict[str, int] | None:
        """The rule queries of the per-span evaluation (the span worker's, with ``overlap``)."""
        if self.span_evaluator is not None:
            return self.span_evaluator.statistics.to_dict()
        return self.worker_statistics

    def run(self, records: Iterable[StreamInput]) -> PipelineResult:
        """Put every record and finish, with the cyclic garbage collector set for a batch run
        (:func:`fraudlocal.collector.for_batch_run`); then (even when that failed) stop the span
        worker and close the local stores."""
        try:
            with collector.for_batch_run():
                self.put_all(records)
                return self.finish()
        finally:
            self.close()
            close_local_backends()

    def close(self) -> None:
        """Stop the span worker (after the span it may still be staging, when a run failed) and
        take its mapping's figures; the time-series file is then this process's again."""
        worker, self.worker = self.worker, None
        if worker is None:
            return
        report = worker.close()
        if report is not None:
            self.mappings[0].stats = MappingStats(**report.mapping_stats)
            self.worker_statistics = report.statistics
            self.worker_cpu_seconds = report.cpu_seconds

    def put_all(self, records: Iterable[StreamInput]) -> None:
        for record in records:
            self.put(record)

    def poll(self) -> None:
        """Let both mappings read everything on their stream (each keeps its own checkpoints)."""
        for mapping in self.mappings:
            mapping.poll(self.streams[mapping.name])
            # a long replay stays in bounded memory
            discard_consumed(self.streams[mapping.name], [mapping])
        self.unpolled = 0
        self._report_progress()

    # -- the simulated clock ------------------------------------------------------------
    def tick(self, moment: datetime) -> None:
        """One scheduled run: the stores catch up, the rules run at ``moment``, investigations run."""
        self.poll()
        run = self.scheduled.pop(moment, None)
        if run is not None:
            # Evaluated with its span: start its investigations as the function would.
            with self.watch.measure("micro_analysis"):
                result = MicroResult(evaluation_time=moment, flags=run.flags, rule_errors=run.errors)
                start_investigations(self.starter, run.flags, self.max_investigations, result)
                start_relooks(
                    self.starter, self._relooks_due(run.flags, moment), self.max_investigations, result
                )
                response = result.to_response()
        else:
            event = scheduled_event(moment)
            with self.watch.measure("micro_analysis"):
                response = self.runner.invoke(MICRO_ANALYSIS, event)
        self.ticks += 1
        self.last_tick = moment
        for flag in (response or {}).get("flags", []):
            self.flags.setdefault(flag["execution_name"], flag)
        self.run_investigations(moment)

    def _relooks_due(self, flags: list[Flag], moment: datetime) -> list[Flag]:
        """Keep this run's hits that are to be looked at again (those judged on their whole
        window: a rule that rechecks on close is looked at again from its rechecks, as
        ``relooks_due`` does); return the re-looks due now."""
        for flag in flags:
            rule = self.relook_rules.get(flag.rule)
            if rule is None or rule.relook_after is None:
                continue
            if rule.wait_for_close or flag.recheck_execution_name is not None:
                self.relooks_pending.setdefault(moment + rule.relook_after, []).append(flag)
        due = sorted(at for at in self.relooks_pending if at <= moment)
        if not due:
            return []
        # named as the function names them: a card's, email's or phone's name carries the
        # keyed hash of the function's environment (read when the evaluator was built)
        assert self.name_key is not None
        with pinned_name_key(self.name_key):
            return [
                relook(self.relook_rules[flag.rule], flag, moment)
                for at in due
                for flag in self.relooks_pending.pop(at)
            ]

    def run_investigations(self, moment: datetime | None = None) -> int:
        """Run every pending investigation through the local executor; returns how many ran."""
        ran = 0
        # Records read ahead of the clock (per span) stay out of sight of a run at ``moment``.
        horizon = (
            read_horizon(StateDir(self.state_dir).timeseries, moment)
            if moment is not None and self.per_span
            else contextlib.nullcontext()
        )
        with horizon:
            for name in self.starter.pending_names():
                with self.watch.measure("investigations"):
                    self._investigate(name, moment)
                ran += 1
        if ran:
            self._report_progress()
        return ran

    def _investigate(self, name: str, moment: datetime | None) -> None:
        pending = self.starter.pending / f"{name}.json"
        payload = json.loads(pending.read_text())
        execution = execute(
            self.machine.definition,
            payload,
            self.runner.invoke,
            name=name,
            state_machine_name=STATE_MACHINE,
            start_time=moment,
        )
        self.starter.done.mkdir(parents=True, exist_ok=True)
        # on one line: an indented dump takes json's pure-Python encoder, ~5x slower
        (self.starter.done / f"{name}.json").write_text(json.dumps(execution.to_dict(), default=str))
        pending.unlink()
        self.investigations += 1
        if (
            not execution.succeeded
            or not isinstance(execution.output, dict)
            or "case_id" not in execution.output
        ):
            self.failed.append(
                {
                    "execution_name": name,
                    "status": execution.status,
                    "error": execution.error,
                    "cause": execution.cause,
                }
            )
            return
        summary = execution.output
        if summary["case_id"] is None:  # nothing to review: no account behind the flag
            self.without_case += 1
            return
        case = self.cases.get(summary["case_id"])
        if case is None:
            case = self.cases[summary["case_id"]] = CaseRecord(
                summary["case_id"], summary["verdict"], float(summary["score"])
            )
        recorded = execution.events(RECORD_CASE_STATE)
        analyses = (
            recorded[-1].input.get("analyses") if recorded and isinstance(recorded[-1].input, dict) else None
        )
        case.update(summary, name, analyses)
        recorded_at = moment or self.last_tick
        if recorded_at is not None:
            for member in summary.get("members", []):
                self.first_case_by_account.setdefault(str(member), recorded_at)

    def _report_progress(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self)

    # -- the end --------------------------------------------------------------------------
    def finish(self) -> PipelineResult:
        """Drain the stream, let the clock run until every window closed, run the last investigations."""
        if self.per_span:
            self._run_span(closing=True)
        self.close()
        self.poll()
        for moment in self.clock.closing():
            self.tick(moment)
        self.run_investigations()
        self.poll()
        elapsed = dict(self.watch.seconds)
        elapsed["total"] = time.perf_counter() - self.began
        result = PipelineResult(
            transactions=self.put_count,
            stats=store_stats(self.target),
            rejected_by_function=rejected_by_function(self.state_dir),
            mappings={m.name: m.stats.to_dict() for m in self.mappings},
            flags=sorted(self.flags.values(), key=lambda f: (f["window_start"], f["execution_name"])),
            cases=sorted(self.cases.values(), key=lambda c: c.case_id),
            investigations=self.investigations,
            failed_investigations=self.failed,
            ticks=self.ticks,
            every=self.config.every,
            first_event=self.first_event,
            first_event_by_key=self.first_event_by_key,
            first_case_by_account=self.first_case_by_account,
            last_event=self.last_event,
            elapsed={k: round(v, 3) for k, v in elapsed.items()},
            state_dir=self.state_dir,
        )
        close_local_backends()
        return result


def _after_ticks(span: list[StreamInput], ticks: list[datetime]) -> bool:
    """Whether every record of ``span`` has a time, none before the last of ``ticks``."""
    if not ticks:
        return True
    last = max(ticks)
    return all(record.event_time is not None and record.event_time >= last for record in span)


# -- one run, with progress and outputs -------------------------------------------------------
@dataclass
class RunRequest:
    """Everything a command hands over: where to run, what to read, where to write."""

    config: PipelineConfig
    out_dir: Path
    source: dict[str, Any]
    labels: Mapping[str, Any] | None = None
    total: int | None = None  # records expected, for the progress bar (None: unknown)
    progress: bool = True
    print_table: bool = True


def run_to_outputs(request: RunRequest, records: Iterable[StreamInput]) -> dict[str, Any]:
    """Run the pipeline over ``records`` (in order) and write the outputs; returns the summary."""
    from rich.console import Console

    console = Console(stderr=True)
    show = request.progress and console.is_terminal
    with _progress(console, show, request.total) as on_progress:
        result = Pipeline(request.config, on_progress=on_progress).run(records)
    summary = report.write_outputs(result, request.out_dir, request.labels, request.source)
    if request.print_table:
        report.print_table(summary, request.out_dir, Console())
    return summary


@contextlib.contextmanager
def _progress(console: Any, show: bool, total: int | None) -> Iterator[Callable[[Pipeline], None] | None]:
    if not show:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bars:
        records = bars.add_task("records", total=total, detail="")
        checks = bars.add_task("investigations", total=None, detail="")

        def update(pipeline: Pipeline) -> None:
            clock = iso_z(pipeline.next_tick) if pipeline.next_tick else "-"
            bars.update(records, completed=pipeline.put_count, detail=f"clock {clock}")
            verdicts = Counter(case.verdict for case in pipeline.cases.values())
            shown = ", ".join(f"{verdicts[v]} {v}" for v in VERDICTS if verdicts[v])
            bars.update(
                checks,
                completed=pipeline.investigations,
                detail=f"{len(pipeline.flags)} flags, {len(pipeline.cases)} cases"
                + (f" ({shown})" if shown else ""),
            )

        yield update
