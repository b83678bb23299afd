"""The local pipeline, end to end, on the embedded stores under the state dir.

Transactions are put, in event-time order, on an in-memory Kinesis stream
(:class:`fraudlocal.kinesis_esm.LocalStream`, partition key = account id). Two
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
(:mod:`fraudlocal.span_evaluation`): ``IngestTimeseriesFunction``'s mapping reads a span of
records ahead (on AWS the two mappings and the schedule run concurrently too), every rule
is evaluated over the span with each scheduled run's result kept exact, and the clock then
runs the span as above with the graph filled up to each tick, each run starting the
investigations of its flags (same cap, same names) before they run. The flags, cases and
figures are those of the per-tick run (``per_tick=True``, ``--per-tick``), which invokes
``MicroAnalysisFunction`` at every tick.

The outputs (see :mod:`fraudlocal.report`) go to ``--out``; the execution history of each
investigation stays in ``<state>/investigations/done/<name>.json``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fraudcore import backends
from fraudcore.investigation.scoring import VERDICTS
from fraudcore.limits import parse_json_record
from fraudcore.mapping import FieldMapping, MappingError, load_mapping
from fraudcore.micro import MicroResult, schedule_interval, start_investigations
from fraudcore.model import parse_transaction
from fraudcore.pii import KEY_FILE
from fraudcore.rules import RuleError, enabled_rules, load_rules, load_rules_keeping_last_good
from fraudcore.settings import get_settings
from fraudcore.timeseries.rule_sql import floor_to
from fraudcore.timeutil import iso_z

from .asl import execute, load_state_machine
from .errors import UserError
from .kinesis_esm import EventSourceMapping, LocalStream, discard_consumed
from .runtime import FunctionRunner, LocalTarget, close_local_backends, patched_environment
from .span_evaluation import RunFlags, SpanEvaluator
from .starter_local import LocalInvestigationStarter
from .state_machine import RECORD_CASE_STATE, STATE_MACHINE
from .timeseries_duckdb import read_horizon

INGEST_TIMESERIES = "IngestTimeseriesFunction"
INGEST_GRAPH = "IngestGraphFunction"
MICRO_ANALYSIS = "MicroAnalysisFunction"
STAGES = ("ingest_timeseries", "ingest_graph", "micro_analysis", "investigations")
#: what Lambda's Kinesis mapping is given in template.yaml (batch size, retries, bisect)
DEFAULT_BATCH_SIZE = 100
DEFAULT_MAX_RETRIES = 3
#: the stream is polled after this many new records, so the stores fill as the stream does
DEFAULT_POLL_EVERY = 500
#: records read ahead and evaluated at once when the rules run per span
DEFAULT_SPAN_RECORDS = 50_000
FALLBACK_HORIZON = timedelta(hours=1, minutes=10)
#: the time-series store of a state dir (as fraudcore.backends opens it)
TIMESERIES_FILE = "timeseries.duckdb"


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
    span_records: int = DEFAULT_SPAN_RECORDS

    def target(self) -> LocalTarget:
        extra: list[tuple[str, str]] = []
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


@dataclass(frozen=True)
class StreamInput:
    """One record for the stream: the bytes as a producer sent them, and what orders it."""

    data: bytes
    partition_key: str
    event_time: datetime | None  # None when the record cannot be read (it will be rejected)


@dataclass
class ScheduleClock:
    """The simulated schedule: which ticks fire as event time advances.

    A tick fires when the first record at or after it arrives; ticks more than
    ``horizon`` after the last record are skipped (no rule can see an event any more).
    """

    every: timedelta
    horizon: timedelta
    next_tick: datetime | None = None
    last_event: datetime | None = None

    def advance(self, event_time: datetime) -> list[datetime]:
        """The ticks due before a record at ``event_time``, in order; then the record counts."""
        due: list[datetime] = []
        if self.next_tick is None:
            self.next_tick = floor_to(event_time, self.every) + self.every
        while event_time >= self.next_tick:
            if self.last_event is not None and self.next_tick > self.last_event + self.horizon:
                # Nothing recorded can be seen by a rule any more: jump over the quiet period.
                self.next_tick = max(self.next_tick, floor_to(event_time, self.every) + self.every)
                continue
            due.append(self.next_tick)
            self.next_tick += self.every
        self.last_event = max(self.last_event or event_time, event_time)
        return due

    def closing(self) -> list[datetime]:
        """The ticks after the input ends, until every window of the last record has closed."""
        due: list[datetime] = []
        if self.last_event is not None and self.next_tick is not None:
            while self.next_tick <= self.last_event + self.horizon + self.every:
                due.append(self.next_tick)
                self.next_tick += self.every
        return due


@dataclass
class Stopwatch:
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    @contextlib.contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - began


@dataclass
class CaseRecord:
    """A case as the investigations left it: one entry per case id."""

    case_id: str
    verdict: str
    score: float
    members: set[str] = field(default_factory=set)
    reasons: list[dict[str, Any]] = field(default_factory=list)
    investigations: list[dict[str, Any]] = field(default_factory=list)
    analyses: list[dict[str, Any]] = field(default_factory=list)
    _best: tuple[int, float] = (99, -1.0)

    def update(self, summary: Mapping[str, Any], name: str, analyses: Mapping[str, Any] | None) -> None:
        # The recorded verdict and score are already the most severe of the case's
        # investigations (a case is never downgraded by automation); members only grow.
        self.verdict = str(summary["verdict"])
        self.score = float(summary["score"])
        self.members.update(str(m) for m in summary.get("members", []))
        own_verdict = str(summary.get("investigation_verdict", summary["verdict"]))
        own_score = float(summary.get("investigation_score", summary["score"]))
        rank = (_verdict_rank(own_verdict), -own_score)
        if rank < self._best:
            # The reasons shown are those of the investigation that found the most.
            self._best = rank
            self.reasons = list(summary.get("reasons", []))
        self.investigations.append(
            {
                "execution_name": name,
                "rule": summary.get("rule"),
                "entity": summary.get("entity"),
                "verdict": own_verdict,
                "score": own_score,
                "members": list(summary.get("members", [])),
                "status": summary.get("status"),
            }
        )
        if analyses:
            self.analyses.append(dict(analyses))

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "verdict": self.verdict,
            "score": self.score,
            "members": sorted(self.members),
            "reasons": self.reasons,
            "investigations": self.investigations,
        }


def _verdict_rank(verdict: str) -> int:
    return VERDICTS.index(verdict) if verdict in VERDICTS else len(VERDICTS)


@dataclass
class PipelineResult:
    """What a run produced; :mod:`fraudlocal.report` turns it into the output files."""

    transactions: int
    stats: dict[str, Any]
    rejected_by_function: dict[str, int]
    mappings: dict[str, dict[str, int]]
    flags: list[dict[str, Any]]
    cases: list[CaseRecord]
    investigations: int
    failed_investigations: list[dict[str, Any]]
    ticks: int
    every: timedelta
    first_event: datetime | None
    last_event: datetime | None
    elapsed: dict[str, float]
    state_dir: Path
    #: event time of each partition key's (account's) first record, and of the first case
    #: recorded with each account among its members (the run's tick): detection latency
    first_event_by_key: dict[str, datetime] = field(default_factory=dict)
    first_case_by_account: dict[str, datetime] = field(default_factory=dict)


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
        failures = self.state_dir / "ingest-failures.jsonl"
        self.mappings = [
            EventSourceMapping(
                name=function,
                handler=self._timed_handler(function, stage),
                batch_size=config.batch_size,
                max_retries=config.max_retries,
                bisect_on_error=True,
                on_failure=failures,
            )
            for function, stage in ((INGEST_TIMESERIES, "ingest_timeseries"), (INGEST_GRAPH, "ingest_graph"))
        ]
        self.starter = LocalInvestigationStarter(self.state_dir)
        self.machine = load_state_machine(self.runner.template, STATE_MACHINE)
        self.horizon = self._rules_horizon()
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
        self.max_investigations = 0
        self.ticks = 0
        self.flags: dict[str, dict[str, Any]] = {}
        self.cases: dict[str, CaseRecord] = {}
        self.investigations = 0
        #: investigations that found no account to hold a case
        self.without_case = 0
        self.failed: list[dict[str, Any]] = []
        self.began = time.perf_counter()

    # -- set-up -------------------------------------------------------------------------
    def _timed_handler(self, function: str, stage: str) -> Callable[[dict[str, Any]], Any]:
        def handler(event: dict[str, Any]) -> Any:
            with self.watch.measure(stage):
                return self.runner.invoke(function, event)

        return handler

    def _rules_horizon(self) -> timedelta:
        """How long after the last event a rule can still see it: the longest window + lateness."""
        override = str(self.config.rules_override.resolve()) if self.config.rules_override else ""
        if not override and (self.state_dir / "rules-override.yaml").exists():
            override = str(self.state_dir / "rules-override.yaml")
        try:
            rules = enabled_rules(load_rules(override=override))
        except RuleError as error:
            raise UserError(str(error)) from None
        if not rules:
            return FALLBACK_HORIZON
        return max(rule.window + rule.lateness for rule in rules)

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
        if len(self.pending) >= self.config.span_records:
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
        """Read the pending records into the time-series store, evaluate their ticks, run them."""
        span, self.pending = self.pending, []
        timeseries = self.streams[INGEST_TIMESERIES]
        for record in span:
            timeseries.put(record.data, record.partition_key)
        self.mappings[0].poll(timeseries)
        discard_consumed(timeseries, [self.mappings[0]])
        preview = ScheduleClock(
            self.clock.every, self.clock.horizon, self.clock.next_tick, self.clock.last_event
        )
        ticks = [
            moment for record in span if record.event_time for moment in preview.advance(record.event_time)
        ]
        if closing:
            ticks += preview.closing()
        self._evaluate(ticks)
        for record in span:
            self._put_on_streams(record, (INGEST_GRAPH,))

    def _evaluate(self, ticks: list[datetime]) -> None:
        if not ticks:
            return
        # As the function would: its settings (state dir, name key, overrides), its store.
        environment = patched_environment(self.runner.environment(MICRO_ANALYSIS))
        with self.watch.measure("micro_analysis"), environment:
            if self.span_evaluator is None:
                settings = get_settings()
                rules, _ = load_rules_keeping_last_good(
                    settings.rules_override, timedelta(hours=settings.timestream_memory_retention_hours)
                )
                rules = enabled_rules(rules)
                self.max_investigations = settings.max_investigations_per_run
                self.span_evaluator = SpanEvaluator(
                    backends.timeseries_store(settings),
                    rules,
                    schedule_interval(settings.micro_schedule_interval),
                )
            self.scheduled.update(self.span_evaluator.evaluate(ticks))

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

    def run_investigations(self, moment: datetime | None = None) -> int:
        """Run every pending investigation through the local executor; returns how many ran."""
        ran = 0
        # Records read ahead of the clock (per span) stay out of sight of a run at ``moment``.
        horizon = (
            read_horizon(self.state_dir / TIMESERIES_FILE, moment)
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
        (self.starter.done / f"{name}.json").write_text(
            json.dumps(execution.to_dict(), indent=1, default=str)
        )
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


def scheduled_event(moment: datetime) -> dict[str, Any]:
    """The event EventBridge Scheduler sends ``MicroAnalysisFunction`` at ``moment``."""
    stamp = iso_z(moment.astimezone(UTC))
    return {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"fraudlocal-tick:{stamp}")),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": stamp,
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:000000000000:rule/fraud-micro-analysis-schedule"],
        "detail": {},
    }


def store_stats(target: LocalTarget) -> dict[str, Any]:
    from .commands.stats import collect_stats

    return collect_stats(target)


def rejected_by_function(state_dir: Path) -> dict[str, int]:
    path = state_dir / "rejected.jsonl"
    counts: Counter[str] = Counter()
    if path.exists():
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    counts[str(json.loads(line).get("source", "unknown"))] += 1
    return dict(sorted(counts.items()))


# -- reading input --------------------------------------------------------------------------
def ordering_mapping(name: str | None) -> Any:
    """The mapping the driver applies to order records (the functions apply it again)."""
    try:
        return load_mapping(name if name is not None else "auto")
    except MappingError as error:
        raise UserError(str(error)) from None


def describe(data: bytes, mapping: Any) -> tuple[str | None, datetime | None]:
    """The account id and event time of a producer record, or None where it cannot be read."""
    try:
        payload = parse_json_record(data.decode("utf-8"))
        canonical = mapping.apply(payload) if mapping is not None else payload
        transaction = parse_transaction(canonical)
    except Exception:  # any record that cannot be read is rejected by the functions, with the reason
        return None, None
    return transaction.account_id, transaction.timestamp


def order_records(items: Iterable[tuple[bytes, str | None]], mapping: Any) -> list[StreamInput]:
    """Records in event-time order: ``(data, partition key or None for the account id)``.

    The sort is stable, and a record whose time cannot be read keeps its place after the
    record before it (it will be rejected by the ingest functions, with the reason).
    """
    keyed: list[tuple[datetime, int, StreamInput]] = []
    previous = datetime.min.replace(tzinfo=UTC)
    for position, (raw, partition_key) in enumerate(items):
        data = raw.strip()
        if not data:
            continue
        account_id, moment = describe(data, mapping)
        key = partition_key or account_id or f"unreadable-{position}"
        previous = moment or previous
        keyed.append((previous, position, StreamInput(data=data, partition_key=key, event_time=moment)))
    keyed.sort(key=lambda item: (item[0], item[1]))
    return [record for _, _, record in keyed]


def read_jsonl(path: Path, mapping: Any) -> list[StreamInput]:
    if not path.is_file():
        raise UserError(f"{path}: no such file (expected transactions as JSON lines)")
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip()
        if head.startswith(b"["):
            raise UserError(
                f"{path} is a JSON array; give one JSON object per line (JSON lines), "
                f"e.g. jq -c '.[]' {path} > transactions.jsonl"
            )
        handle.seek(0)
        records = order_records(((line, None) for line in handle), mapping)
    if not records:
        raise UserError(f"{path} holds no records; give transactions as JSON lines, one object per line")
    return records


def fresh_state_dir(state_dir: Path) -> Path:
    """Empty ``state_dir`` for a run; refuse to wipe a folder that is not a state dir."""
    if state_dir.exists():
        known = {
            "timeseries.duckdb",
            "timeseries.duckdb.wal",
            "timeseries-datafusion",
            "graph",
            "rejected.jsonl",
            "events.jsonl",
            "investigations",
            "ingest-failures.jsonl",
            "rules-override.yaml",
            KEY_FILE,
        }
        strangers = [p.name for p in state_dir.iterdir() if p.name not in known]
        if strangers:
            raise UserError(
                f"{state_dir} holds files the local stores did not create ({', '.join(sorted(strangers)[:5])}); "
                "give another --state-dir (or remove it)"
            )
        for child in state_dir.iterdir():
            if child.name in ("rules-override.yaml", KEY_FILE):  # kept: the same key, the same names
                continue
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    state_dir.mkdir(parents=True, exist_ok=True)
    return state_dir


def field_mapping_value(mapping: str | None) -> str | None:
    """Check a ``--mapping`` early (a shipped name or a file) so a typo fails before any work."""
    if mapping is None:
        return None
    try:
        FieldMapping.load(mapping)
    except MappingError as error:
        raise UserError(str(error)) from None
    path = Path(mapping)
    return str(path.resolve()) if path.exists() else mapping


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

    from . import report

    console = Console(stderr=True)
    show = request.progress and console.is_terminal
    with _progress(console, show, request.total) as on_progress:
        pipeline = Pipeline(request.config, on_progress=on_progress)
        try:
            pipeline.put_all(records)
            result = pipeline.finish()
        finally:
            close_local_backends()
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
