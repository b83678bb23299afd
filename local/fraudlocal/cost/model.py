"""The monthly AWS bill of the deployed system at a given rate of transactions.

Every price comes from ``prices.yaml`` (next to this module), with the date it was read and
where; every figure the code cannot derive is an assumption in the same file, printed with
the estimate. What the code derives:

- the size of a transaction: as a Kinesis record (the JSON a producer sends) and as a
  Timestream record (Timestream's storage formula: 8 bytes of time, the names and values
  of the dimensions, the measure names and 8 bytes per DOUBLE), averaged over a generated
  scenario;
- what each rule reads per scheduled run: the compiled query of every enabled rule at the
  given schedule, each scan of the transactions table with its time range, so the bytes
  scanned follow the rule compiler (windows, hops, look-back, history);
- the template's parameters (shards, retention, batch size, memory sizes);
- re-looks: a rule with ``relook_after`` starts more investigations that long after its
  hits (one per hit of a rule that waits for its windows, one per closed window's recheck
  of a rule that rechecks on close: fewer than its hits), and each run sends its query once
  more (the query of the run that long before); how many re-looks each rule started per
  investigation comes from ``measured.yaml``, which ``bench/pipeline.py --cost-figures``
  writes from a run of the demo's scenario.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from sqlglot import exp

from fraudcore.rules import Rule, enabled_rules, format_duration, load_rules
from fraudcore.timeseries import DIMENSIONS, MEASURE_NAME_COLUMN, MEASURES, TIME_COLUMN
from fraudcore.timeseries.rule_sql import compile_rule, evaluation_range, floor_to

try:  # one query for rules sharing a history read; an earlier compiler (which
    # bench/rule_scans.py --before prices to compare) sends one query per rule
    from fraudcore.timeseries.rule_sql import compile_history_lanes, history_groups
except ImportError:  # pragma: no cover - only with an earlier compiler on the path

    def history_groups(rules: Sequence[Rule]) -> list[tuple[Rule, ...]]:
        return []

    def compile_history_lanes(*args: Any, **kwargs: Any) -> str:
        raise NotImplementedError


try:  # a rule with ``every`` queries at some runs only, for the runs since the last
    from fraudcore.timeseries.rule_sql import cadence_lanes, compile_lanes
except ImportError:  # pragma: no cover - only with an earlier compiler on the path
    cadence_lanes = compile_lanes = None  # type: ignore[assignment]


PRICES_FILE = Path(__file__).with_name("prices.yaml")
SECONDS_PER_HOUR = 3600
ENGINES = ("liveanalytics", "influxdb3")
#: how Timestream for LiveAnalytics bills queries: per GB scanned (accounts onboarded before
#: 2024-04-29) or per TCU-hour (the default for accounts onboarded since)
QUERY_PRICING = ("bytes", "tcu")
#: a TCU is billed for at least this long each time it is used
TCU_MINIMUM_SECONDS = 30
#: Kinesis: what one shard takes in
SHARD_BYTES_PER_SECOND = 1_000_000
SHARD_RECORDS_PER_SECOND = 1000
PUT_PAYLOAD_UNIT = 25 * 1024
#: the template's defaults (template.yaml Parameters) the model reads
TEMPLATE_DEFAULTS = {
    "StreamRetentionHours": 168,
    "IngestBatchSize": 100,
    "TimestreamMemoryRetentionHours": 24,
    "TimestreamMagneticRetentionDays": 365,
    "MaxInvestigationsPerRun": 200,
    "LambdaMemoryMB": 512,
}
_TIME_LOW = re.compile(r"\btime\s*>=\s*from_iso8601_timestamp\('([^']+)'\)", re.IGNORECASE)
_TIME_HIGH = re.compile(r"\btime\s*<\s*from_iso8601_timestamp\('([^']+)'\)", re.IGNORECASE)
_TABLE_COLUMNS = frozenset({TIME_COLUMN, MEASURE_NAME_COLUMN, *DIMENSIONS, *MEASURES})


class CostError(ValueError):
    """The inputs of an estimate are wrong: the message says which and why."""


@dataclass(frozen=True)
class Price:
    key: str
    value: float
    unit: str
    source: str
    checked: str
    confirmed: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "unit": self.unit,
            "source": self.source,
            "checked": self.checked,
            "confirmed": self.confirmed,
        }


@dataclass(frozen=True)
class PriceBook:
    region: str
    hours_per_month: float
    prices: dict[str, Price]
    assumptions: dict[str, Any]

    def __getitem__(self, key: str) -> float:
        return self.prices[key].value


def load_prices(path: Path = PRICES_FILE) -> PriceBook:
    """The price book; a malformed entry is refused with the entry's name."""
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise CostError(f"{path}: cannot read the prices: {error}") from None
    prices: dict[str, Price] = {}
    for key, entry in (doc.get("prices") or {}).items():
        missing = {"value", "unit", "source", "checked", "confirmed"} - set(entry or {})
        if missing:
            raise CostError(f"{path}: price {key!r} lacks {', '.join(sorted(missing))}")
        prices[key] = Price(
            key,
            float(entry["value"]),
            str(entry["unit"]),
            str(entry["source"]),
            str(entry["checked"]),
            bool(entry["confirmed"]),
        )
    return PriceBook(str(doc["region"]), float(doc["hours_per_month"]), prices, dict(doc["assumptions"]))


@dataclass(frozen=True)
class RecordSizes:
    """Average sizes of one transaction, measured on a generated scenario.

    ``column_bytes``: what each column adds to ``timestream_bytes`` (Timestream's storage
    formula, column by column: 8 bytes of time, the measure name, each dimension's name
    and value when present, each measure's name and 8-byte value); they add up to it.
    Without them every read is priced as whole records.
    """

    kinesis_bytes: float
    timestream_bytes: float
    sample: int
    column_bytes: dict[str, float] = field(default_factory=dict)

    def row_bytes(self, columns: frozenset[str] | None) -> float:
        """Bytes a read of ``columns`` (None: every column) scans per record."""
        if columns is None or not self.column_bytes:
            return self.timestream_bytes
        return sum(self.column_bytes.get(column, 0.0) for column in columns)


@lru_cache(maxsize=1)
def measure_record_sizes(sample: int = 2000) -> RecordSizes:
    """Sizes averaged over the first ``sample`` transactions of the default scenario."""
    import json

    from fraudcore.model import parse_transaction
    from fraudcore.timeseries import (
        MEASURE_NAME,
        MEASURE_NAME_COLUMN,
        TIME_COLUMN,
        measure_values,
        record_dimensions,
    )

    from ..scenario import generate

    transactions = generate(accounts=500, days=1).transactions[:sample]
    kinesis = 0
    columns: dict[str, float] = {TIME_COLUMN: 0.0, MEASURE_NAME_COLUMN: 0.0}
    for payload in transactions:
        kinesis += len(json.dumps(payload, separators=(",", ":")).encode())
        transaction = parse_transaction(payload)
        columns[TIME_COLUMN] += 8
        columns[MEASURE_NAME_COLUMN] += len(MEASURE_NAME.encode())
        for name, value in record_dimensions(transaction).items():
            columns[name] = columns.get(name, 0.0) + len(name.encode()) + len(value.encode())
        for name in measure_values(transaction):
            columns[name] = columns.get(name, 0.0) + len(name.encode()) + 8
    count = len(transactions)
    per_record = {name: total / count for name, total in columns.items()}
    return RecordSizes(kinesis / count, sum(per_record.values()), count, per_record)


@dataclass
class Scan:
    """One read of the transactions table by one query: its time range and the columns it
    names (None: every column, a ``SELECT *``)."""

    seconds: float
    columns: frozenset[str] | None = None


@dataclass
class RuleScan:
    """What one scheduled query (one rule's, or one for rules sharing a read) reads over a day.

    ``scans`` are the table reads of the query at the first run of the day that runs it;
    ``run_reads`` its reads at each run that queries. A rule that waits for its windows to
    close queries only at the runs that see one close.
    """

    rule: str
    scans: list[Scan]
    runs: int = 1
    run_reads: list[list[Scan]] = field(default_factory=list)
    #: lanes of the query (a rule at a run it answers for) where it has the most
    lanes: int = 1
    #: the index among the day's runs of each run that queries (``run_reads`` in order)
    queried_at: list[int] = field(default_factory=list)

    @property
    def run_seconds(self) -> list[float]:
        """Seconds of data all the query's reads cover, at each run that queries."""
        return [sum(scan.seconds for scan in reads) for reads in self.run_reads]

    def seconds(self) -> float:
        """Seconds of data read per scheduled run, on average over the day's runs."""
        if not self.run_reads:
            return sum(scan.seconds for scan in self.scans)
        return sum(self.run_seconds) / self.runs

    def run_bytes(self, tps: float, sizes: RecordSizes) -> list[float]:
        """Bytes the query scans at each run that queries (only the columns each read names)."""
        return [
            sum(tps * scan.seconds * sizes.row_bytes(scan.columns) for scan in reads)
            for reads in self.run_reads
        ]

    @property
    def queried_runs(self) -> int:
        return len(self.run_reads) if self.run_reads else self.runs


def _reads(rule: Rule, sql: str, table: str) -> list[tuple[datetime, datetime, frozenset[str] | None]]:
    """The time range and columns of every read of ``table`` by ``sql`` (a common table
    expression is evaluated where it is referenced: once per reference).

    A read's range is bounded by the time conditions its WHERE requires of every row (those
    inside an OR bound only some rows); its columns are those its SELECT names, every column
    for ``SELECT *``.
    """
    from fraudlocal.adapters.timestream_sql import parse

    tree = parse(sql)
    reads: list[tuple[datetime, datetime, frozenset[str] | None]] = []
    for read in tree.find_all(exp.Table):
        if read.name != table:
            continue
        select = read.find_ancestor(exp.Select)
        where = select.args.get("where") if select is not None else None
        conjuncts = (
            list(where.this.flatten()) if where is not None and isinstance(where.this, exp.And) else []
        )
        if where is not None and not conjuncts:
            conjuncts = [where.this]
        text = " AND ".join(
            conjunct.sql(dialect="trino") for conjunct in conjuncts if not conjunct.find(exp.Select, exp.Or)
        )
        low, high = _TIME_LOW.findall(text), _TIME_HIGH.findall(text)
        if not low or not high:
            raise CostError(f"{rule.id}: a read of {table} without explicit time bounds: {text[:200]}")
        start = max(_instant(value) for value in low)
        end = min(_instant(value) for value in high)
        columns = _columns_read(select) if select is not None else None
        cte = read.find_ancestor(exp.CTE)
        times = sum(1 for ref in tree.find_all(exp.Table) if ref.name == cte.alias) if cte is not None else 1
        reads.extend((start, end, columns) for _ in range(max(1, times)))
    return reads


def _columns_read(select: exp.Select) -> frozenset[str] | None:
    """The table columns a SELECT reading the table names (not its subqueries': their own reads)."""
    if any(isinstance(projection, exp.Star) for projection in select.expressions):
        return None
    return frozenset(
        column.name.lower()
        for column in select.find_all(exp.Column)
        if column.find_ancestor(exp.Select) is select and column.name.lower() in _TABLE_COLUMNS
    )


def query_scans(
    group: Sequence[Rule], database: str, table: str, schedule: timedelta, earlier: timedelta = timedelta(0)
) -> RuleScan:
    """The table reads of one scheduled query over a day of runs: ``group`` is one rule, or
    rules evaluated by one query (``history_groups``). ``earlier``: each run sends the query
    of the run that long before it (a re-look: ``fraudcore.micro.relooks_due``).

    The compiler bounds every read by the runs' ranges (first window starts, less a history
    for a baseline, up to the ranges' end): a query is parsed for each arrangement of the
    rules' ranges relative to one another (one, for a single rule), each read's bounds taken
    relative to the first rule's range, and every run with the same arrangement reads the
    same relative bounds of its own ranges. Rules with ``every`` (n schedule intervals) send
    their query at one run in n only, answering for the n runs since the last: one read of
    the union of their ranges (``fraudcore.timeseries.rule_sql.cadence_lanes``).
    """
    day = floor_to(datetime(2026, 1, 1, tzinfo=UTC), schedule)
    runs = max(1, round(timedelta(days=1) / schedule))
    name = " + ".join(rule.id for rule in group) + (" (re-look)" if earlier else "")
    shapes: dict[tuple[Any, ...], list[tuple[timedelta, timedelta, frozenset[str] | None]]] = {}
    run_reads: list[list[Scan]] = []
    first_reads: list[Scan] = []
    most_lanes = 1
    queried_at: list[int] = []
    for index in range(runs):
        moment = day + schedule * index - earlier
        if cadence_lanes is not None:
            lanes = [lane for lane in cadence_lanes(group, moment, schedule) if not lane.span.empty]
            spans = [lane.span for lane in lanes]
        else:
            spans = [span for span in (evaluation_range(rule, moment, schedule) for rule in group)]
            spans = [span for span in spans if not getattr(span, "empty", False)]
        if not spans:
            continue  # no query at this run: no closed window, or not a run of the rule's cadence
        most_lanes = max(most_lanes, len(spans))
        anchor = spans[0]
        key = tuple(
            (span.first_window_start - anchor.first_window_start, span.end - anchor.end) for span in spans[1:]
        )
        if key not in shapes:
            if compile_lanes is not None:
                sql = compile_lanes(lanes, database, table)
            elif len(group) == 1:
                sql = compile_rule(group[0], database, table, moment, schedule)
            else:
                sql = compile_history_lanes(group, database, table, spans)
            shapes[key] = [
                (low - anchor.first_window_start, high - anchor.end, columns)
                for low, high, columns in _reads(group[0], sql, table)
            ]
        reads = [
            Scan(((anchor.end + high) - (anchor.first_window_start + low)).total_seconds(), columns)
            for low, high, columns in shapes[key]
        ]
        first_reads = first_reads or reads
        run_reads.append(reads)
        queried_at.append(index)
    return RuleScan(name, first_reads, runs, run_reads, most_lanes, queried_at)


def rule_scans(rule: Rule, database: str, table: str, schedule: timedelta) -> RuleScan:
    """The table reads of ``rule``'s own scheduled query over a day of runs."""
    return query_scans([rule], database, table, schedule)


def scheduled_queries(rules: Sequence[Rule]) -> list[tuple[Rule, ...]]:
    """The queries a scheduled run sends, as ``fraudcore.micro.evaluate_rules`` does: one per
    group of rules sharing a history read, one per other rule, in rule order."""
    grouped = {rule.id: group for group in history_groups(rules) for rule in group}
    queries: list[tuple[Rule, ...]] = []
    for rule in rules:
        group = grouped.get(rule.id, (rule,))
        if group not in queries:
            queries.append(group)
    return queries


def relook_queries(rules: Sequence[Rule]) -> list[Rule]:
    """The rules whose hits are looked at again (``relook_after``): each scheduled run also
    sends such a rule's own query as the run ``relook_after`` earlier sent it, to find the
    hits due (``fraudcore.micro.relooks_due``), in rule order."""
    # (getattr: bench/rule_scans.py --before prices an earlier rule model, without re-looks)
    return [rule for rule in rules if rule.enabled and getattr(rule, "relook_after", None) is not None]


@dataclass(frozen=True)
class DemoRates:
    """What the demo's pipeline measured (``measured.yaml``, written by ``bench/pipeline.py
    --cost-figures``): its investigations, the re-looks among them, the hits of each rule
    and the re-looks each rule's hits started."""

    measured: str
    command: str
    transactions: int
    investigations: int
    relooks: int
    flags_by_rule: dict[str, int]
    relooks_by_rule: dict[str, int]

    def relooks_of(self, rules: Sequence[Rule]) -> int:
        """The re-looks measured for the rules with ``relook_after`` among ``rules`` (a rule
        disabled, or without ``relook_after`` there, adds none)."""
        return sum(self.relooks_by_rule.get(rule.id, 0) for rule in relook_queries(rules))

    def relooks_per_investigation(self, rules: Sequence[Rule]) -> float:
        """Re-looks per investigation started by a flag: the re-looks the measured run started
        for the rules with ``relook_after`` among ``rules``, over the investigations the flags
        started. A rule that waits for its windows looked again once per hit; one that
        rechecks on close once per closed window's recheck (``fraudcore.micro.relooks_due``),
        not once per hit."""
        return self.relooks_of(rules) / max(1, self.investigations - self.relooks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "measured": self.measured,
            "command": self.command,
            "transactions": self.transactions,
            "investigations": self.investigations,
            "relooks": self.relooks,
            "flags_by_rule": dict(self.flags_by_rule),
            "relooks_by_rule": dict(self.relooks_by_rule),
        }


MEASURED_FILE = Path(__file__).with_name("measured.yaml")


def load_demo_rates(path: Path = MEASURED_FILE) -> DemoRates:
    """The demo's measured rates; a missing or malformed field is refused with its name."""
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise CostError(f"{path}: cannot read the measured figures: {error}") from None
    fields = (
        "measured",
        "command",
        "transactions",
        "investigations",
        "relooks",
        "flags_by_rule",
        "relooks_by_rule",
    )
    missing = [name for name in fields if name not in doc]
    if missing:
        raise CostError(f"{path}: lacks {', '.join(missing)}")
    try:
        flags = {str(rule): int(count) for rule, count in dict(doc["flags_by_rule"]).items()}
        relooks = {str(rule): int(count) for rule, count in dict(doc["relooks_by_rule"] or {}).items()}
        rates = DemoRates(
            str(doc["measured"]),
            str(doc["command"]),
            int(doc["transactions"]),
            int(doc["investigations"]),
            int(doc["relooks"]),
            flags,
            relooks,
        )
    except (TypeError, ValueError) as error:
        raise CostError(f"{path}: a count that is not a whole number: {error}") from None
    if sum(rates.relooks_by_rule.values()) != rates.relooks:
        raise CostError(
            f"{path}: relooks_by_rule adds up to {sum(rates.relooks_by_rule.values())}, "
            f"relooks is {rates.relooks}"
        )
    return rates


def write_demo_rates(run: dict[str, Any], command: str, path: Path = MEASURED_FILE) -> None:
    """Write ``measured.yaml`` from one ``bench/pipeline.py`` run's JSON (its date today)."""
    doc = {
        "measured": datetime.now(tz=UTC).date().isoformat(),
        "command": command,
        "scenario": f"{run['accounts']} accounts x {run['days']} days",
        "transactions": run["transactions"],
        "investigations": run["investigations"],
        "relooks": run["relooks"],
        "flags_by_rule": dict(run["flags_by_rule"]),
        "relooks_by_rule": dict(run["relooks_by_rule"]),
    }
    header = (
        "# Measured by the command below on the local pipeline (do not edit by hand): the\n"
        "# investigations of the demo's scenario, the re-looks among them, each rule's hits\n"
        "# and the re-looks each rule's hits started.\n"
        "# The cost model derives the re-looks a month from them (local/fraudlocal/cost/model.py).\n"
    )
    path.write_text(header + yaml.safe_dump(doc, sort_keys=False))


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Line:
    """One component of the bill."""

    component: str
    monthly_usd: float
    quantity: float
    unit: str
    prices: list[str]
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "monthly_usd": round(self.monthly_usd, 2),
            "quantity": round(self.quantity, 3),
            "unit": self.unit,
            "prices": self.prices,
            "note": self.note,
        }


@dataclass
class Estimate:
    tps: float
    schedule: timedelta
    engine: str
    lines: list[Line] = field(default_factory=list)
    scans: list[dict[str, Any]] = field(default_factory=list)
    derived: dict[str, Any] = field(default_factory=dict)
    assumptions: dict[str, Any] = field(default_factory=dict)
    prices: dict[str, Price] = field(default_factory=dict)
    query_pricing: str = "bytes"
    measured: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(line.monthly_usd for line in self.lines)

    def line(self, component: str) -> Line:
        return next(line for line in self.lines if line.component == component)

    def to_dict(self) -> dict[str, Any]:
        used = sorted({key for line in self.lines for key in line.prices})
        return {
            "tps": self.tps,
            "schedule": format_duration(self.schedule),
            "engine": self.engine,
            "query_pricing": self.query_pricing,
            "region": "us-east-1",
            "monthly_total_usd": round(self.total, 2),
            "components": [line.to_dict() for line in self.lines],
            "query_scans_per_run": self.scans,
            "derived": self.derived,
            "assumptions": self.assumptions,
            "measured": self.measured,
            "prices": {key: self.prices[key].to_dict() for key in used},
        }


def estimate(
    tps: float,
    schedule: timedelta = timedelta(minutes=5),
    engine: str = "liveanalytics",
    rules: list[Rule] | None = None,
    book: PriceBook | None = None,
    sizes: RecordSizes | None = None,
    query_pricing: str = "bytes",
    rates: DemoRates | None = None,
) -> Estimate:
    """The monthly cost of every component at ``tps`` transactions per second (mean).

    ``query_pricing`` says how Timestream for LiveAnalytics bills the queries: ``bytes``
    (per GB scanned, 10 MB at least per query) or ``tcu`` (TCU-hours: the account's
    TCUs, 4 at least, busy for the run's scan at an assumed rate, 30 seconds at least).
    """
    if tps <= 0:
        raise CostError(f"--tps {tps}: must be a positive number of transactions per second")
    if engine not in ENGINES:
        raise CostError(f"--engine {engine}: must be one of {', '.join(ENGINES)}")
    if query_pricing not in QUERY_PRICING:
        raise CostError(f"--query-pricing {query_pricing}: must be one of {', '.join(QUERY_PRICING)}")
    if schedule <= timedelta(0):
        raise CostError("--schedule must be a positive duration (e.g. 5m)")
    book = book or load_prices()
    sizes = sizes or measure_record_sizes()
    rates = rates or load_demo_rates()
    rules = enabled_rules(rules if rules is not None else load_rules())
    a = book.assumptions
    hours = book.hours_per_month
    seconds = hours * SECONDS_PER_HOUR
    transactions = tps * seconds
    runs = seconds / schedule.total_seconds()
    result = Estimate(tps, schedule, engine, assumptions=dict(a), prices=book.prices)
    result.query_pricing = query_pricing
    result.measured = rates.to_dict()
    add = result.lines.append

    # -- Kinesis ------------------------------------------------------------------------
    peak = tps * float(a["peak_to_mean"])
    shards = max(
        1,
        math.ceil(peak / SHARD_RECORDS_PER_SECOND),
        math.ceil(peak * sizes.kinesis_bytes / SHARD_BYTES_PER_SECOND),
    )
    retention = TEMPLATE_DEFAULTS["StreamRetentionHours"]
    add(
        Line(
            "Kinesis shard-hours",
            shards * hours * book["kinesis_shard_hour"],
            shards * hours,
            "shard-hours",
            ["kinesis_shard_hour"],
            f"{shards} shard(s) for {peak:g}/s at peak",
        )
    )
    if retention > 24:
        add(
            Line(
                "Kinesis extended retention",
                shards * hours * book["kinesis_extended_retention_shard_hour"],
                shards * hours,
                "shard-hours",
                ["kinesis_extended_retention_shard_hour"],
                f"StreamRetentionHours={retention}",
            )
        )
    units = transactions * math.ceil(sizes.kinesis_bytes / PUT_PAYLOAD_UNIT)
    add(
        Line(
            "Kinesis PUT payload units",
            units / 1e6 * book["kinesis_put_payload_units_million"],
            units,
            "payload units",
            ["kinesis_put_payload_units_million"],
        )
    )

    # -- Lambda -------------------------------------------------------------------------
    batch = min(TEMPLATE_DEFAULTS["IngestBatchSize"], max(1.0, tps / shards))  # a 1 s batch window
    ingest_invocations = 2 * transactions / batch
    # A rule with relook_after starts more investigations that long after its hits (its
    # re-looks): as many per investigation as those rules started in the demo, within the cap.
    flagged = transactions * float(a["investigations_per_thousand_transactions"]) / 1000
    relook_share = rates.relooks_per_investigation(rules)
    relooks = flagged * relook_share
    investigations = min(flagged + relooks, runs * TEMPLATE_DEFAULTS["MaxInvestigationsPerRun"])
    # a run starts its own flags' investigations first, its re-looks within what the cap leaves
    relooks_started = max(0.0, investigations - flagged)
    looked_again = relook_queries(rules)
    result.assumptions["relooks"] = (
        "the hits of "
        + (
            ", ".join(
                f"{rule.id} (relook_after {format_duration(rule.relook_after)})" for rule in looked_again
            )
            if looked_again
            else "no rule (none has relook_after)"
        )
        + " start more investigations that long after (one per hit of a rule that waits for its "
        "windows, one per closed window's recheck of a rule that rechecks on close), and each "
        "scheduled run sends that rule's query once more (as the run that long before sent it); "
        "re-looks per investigation started by a flag = the re-looks those rules started in the "
        f"demo / the investigations the flags started there ({rates.relooks_of(rules)} / "
        f"{rates.investigations - rates.relooks}, measured.yaml {rates.measured}: "
        + (
            ", ".join(
                f"{rule.id} {rates.relooks_by_rule.get(rule.id, 0)} re-looks for "
                f"{rates.flags_by_rule.get(rule.id, 0)} hits"
                for rule in looked_again
            )
            or "none"
        )
        + f") = {relook_share:.4f}"
    )
    step_invocations = investigations * float(a["lambda_invocations_per_investigation"])
    memory_gb = TEMPLATE_DEFAULTS["LambdaMemoryMB"] / 1024
    gb_seconds = (
        memory_gb
        * (
            ingest_invocations * float(a["lambda_ms_per_ingest_batch"])
            + runs * float(a["lambda_ms_per_micro_run"])
            + step_invocations * float(a["lambda_ms_per_investigation_step"])
        )
        / 1000
    )
    invocations = ingest_invocations + runs + step_invocations
    add(
        Line(
            "Lambda (ingest, micro-analysis, investigation steps)",
            gb_seconds * book["lambda_arm_gb_second"] + invocations / 1e6 * book["lambda_requests_million"],
            invocations,
            "invocations",
            ["lambda_arm_gb_second", "lambda_requests_million"],
            f"{gb_seconds:,.0f} GB-s; ingest batches of {batch:g} records",
        )
    )

    # -- Step Functions -----------------------------------------------------------------
    transitions = investigations * float(a["transitions_per_investigation"])
    billable = max(0.0, transitions - 4000)
    add(
        Line(
            "Step Functions transitions",
            billable / 1000 * book["step_functions_transitions_thousand"],
            transitions,
            "transitions",
            ["step_functions_transitions_thousand"],
            f"{investigations:,.0f} investigations a month, {relooks_started:,.0f} of them re-looks "
            "(4,000 transitions free)",
        )
    )

    # -- time series --------------------------------------------------------------------
    bytes_per_row = sizes.timestream_bytes
    scans = [query_scans(group, "fraud", "transactions", schedule) for group in scheduled_queries(rules)]
    # a rule that rechecks on close is asked for its closed windows only, as one that waits
    # for them (fraudcore.micro.relooks_due): only the runs that see one close send it
    scans += [
        query_scans(
            [replace(rule, wait_for_close=True)], "fraud", "transactions", schedule, earlier=rule.relook_after
        )
        for rule in looked_again
        if rule.relook_after is not None
    ]
    cadenced = [rule for rule in rules if rule.enabled and getattr(rule, "every", None) is not None]
    result.assumptions["cadence"] = (
        "; ".join(
            f"{rule.id} is queried every {format_duration(rule.every)} "
            f"({rule.runs_per_query(schedule)} runs a query)"
            for rule in cadenced
            if rule.every is not None
        )
        + ": each query answers for the runs since the last one (one lane per rule and run, "
        "each exactly that run's own query), reading the union of their ranges once; the same "
        "flags, raised up to every - schedule later"
        if cadenced
        else "every rule is queried at every run (no rule has every)"
    )
    per_run_bytes = 0.0
    billed_per_run = 0.0
    # bytes each of the day's runs scans: runs differ when a query is sent at some runs only
    day_runs = max(1, round(timedelta(days=1) / schedule))
    bytes_by_run = [0.0] * day_runs
    minimum = book["timestream_query_minimum_mb"] * 1e6
    queries_per_run = 0.0
    for scan in scans:
        rows = tps * scan.seconds()
        run_bytes = scan.run_bytes(tps, sizes)
        scanned = sum(run_bytes) / max(1, scan.runs)
        # each query is billed on its own (rounded up to the MB, at least the minimum)
        billed = sum(max(minimum, math.ceil(size / 1e6) * 1e6) for size in run_bytes) / max(1, scan.runs)
        per_run_bytes += scanned
        billed_per_run += billed
        for index, size in zip(scan.queried_at or range(len(run_bytes)), run_bytes, strict=True):
            bytes_by_run[index % day_runs] += size
        queries_per_run += scan.queried_runs / scan.runs
        result.scans.append(
            {
                "rule": scan.rule,
                "table_reads": len(scan.scans),
                "queries_per_day": round(scan.queried_runs * timedelta(days=1) / (scan.runs * schedule)),
                "lanes": scan.lanes,
                "seconds_of_data": round(scan.seconds()),
                "rows": round(rows),
                "bytes_per_row": round(scanned / rows, 1) if rows else 0.0,
                "bytes": round(scanned),
                "billed_bytes": round(billed),
            }
        )
    result.derived.update(
        {
            "kinesis_record_bytes": round(sizes.kinesis_bytes, 1),
            "timestream_record_bytes": round(sizes.timestream_bytes, 1),
            "records_measured": sizes.sample,
            "transactions_per_month": round(transactions),
            "scheduled_runs_per_month": round(runs),
            "queries_per_run": round(queries_per_run, 2),
            "bytes_scanned_per_run": round(per_run_bytes),
            "bytes_billed_per_run": round(billed_per_run),
            "investigations_per_month": round(investigations),
            "relooks_per_investigation": round(relook_share, 4),
            "relook_investigations_per_month": round(relooks_started),
            "shards": shards,
        }
    )
    gigabytes = transactions * bytes_per_row / 1e9
    if engine == "liveanalytics":
        writes = transactions * math.ceil(max(bytes_per_row, 1) / 1024)
        add(
            Line(
                "Timestream writes",
                writes / 1e6 * book["timestream_writes_million"],
                writes,
                "1 KB writes",
                ["timestream_writes_million"],
            )
        )
        memory_hours = TEMPLATE_DEFAULTS["TimestreamMemoryRetentionHours"]
        memory_gb_resident = tps * SECONDS_PER_HOUR * memory_hours * bytes_per_row / 1e9
        add(
            Line(
                "Timestream memory store",
                memory_gb_resident * hours * book["timestream_memory_gb_hour"],
                memory_gb_resident,
                "GB resident",
                ["timestream_memory_gb_hour"],
                f"{memory_hours} h of data in the memory store",
            )
        )
        magnetic_months = TEMPLATE_DEFAULTS["TimestreamMagneticRetentionDays"] / 30.4
        add(
            Line(
                "Timestream magnetic store",
                gigabytes * magnetic_months * book["timestream_magnetic_gb_month"],
                gigabytes * magnetic_months,
                "GB stored",
                ["timestream_magnetic_gb_month"],
                "once the retention is full (a year of data)",
            )
        )
        # TCU pricing: a run's queries share the account's TCUs (the minimum, 4), busy while
        # they get through the run's scan, and billed for 30 seconds at least
        tcus = float(a["timestream_min_tcu"])
        rate = tcus * float(a["timestream_tcu_gb_per_second"])
        busy = per_run_bytes / 1e9 / rate
        billed_seconds = [max(float(TCU_MINIMUM_SECONDS), size / 1e9 / rate) for size in bytes_by_run]
        tcu_hours = runs * tcus * (sum(billed_seconds) / day_runs) / SECONDS_PER_HOUR
        result.derived["tcu_seconds_busy_per_run"] = round(busy, 1)
        result.derived["tcu_seconds_busy_busiest_run"] = round(max(bytes_by_run) / 1e9 / rate, 1)
        result.derived["tcu_hours_per_month"] = round(tcu_hours)
        if query_pricing == "tcu":
            add(
                Line(
                    "Timestream queries",
                    tcu_hours * book["timestream_tcu_hour"],
                    tcu_hours,
                    "TCU-hours",
                    ["timestream_tcu_hour"],
                    f"{tcus:g} TCUs x max(30 s, the run's busy time) a run ({busy:,.1f} s on average)",
                )
            )
        else:
            add(
                Line(
                    "Timestream queries",
                    runs * billed_per_run / 1e9 * book["timestream_query_gb"],
                    runs * billed_per_run / 1e9,
                    "GB billed",
                    ["timestream_query_gb", "timestream_query_minimum_mb"],
                    f"{queries_per_run:.1f} queries a run, {billed_per_run / 1e6:,.0f} MB billed a run (average)",
                )
            )
    else:
        instances = float(a["influxdb3_instances"])
        add(
            Line(
                "InfluxDB 3 instance hours",
                instances * hours * book["influxdb3_instance_hour"],
                instances * hours,
                "instance-hours",
                ["influxdb3_instance_hour"],
                "no charge per query",
            )
        )
        stored = gigabytes * TEMPLATE_DEFAULTS["TimestreamMagneticRetentionDays"] / 30.4
        add(
            Line(
                "InfluxDB 3 storage",
                stored * book["influxdb3_storage_gb_month"],
                stored,
                "GB stored",
                ["influxdb3_storage_gb_month"],
                "once a year of data is kept",
            )
        )

    # -- Neptune ------------------------------------------------------------------------
    ncu = float(a["neptune_min_ncu"]) + tps / 100 * float(a["neptune_ncu_per_100_tps"])
    add(
        Line(
            "Neptune serverless capacity",
            ncu * hours * book["neptune_ncu_hour"],
            ncu * hours,
            "NCU-hours",
            ["neptune_ncu_hour"],
            f"{ncu:g} NCU on average",
        )
    )
    graph_gb = transactions * 12 * float(a["neptune_bytes_per_transaction"]) / 1e9
    io = transactions * float(a["neptune_io_per_transaction"])
    add(
        Line(
            "Neptune storage and I/O",
            graph_gb * book["neptune_storage_gb_month"] + io / 1e6 * book["neptune_io_million"],
            io,
            "I/O requests",
            ["neptune_storage_gb_month", "neptune_io_million"],
            f"{graph_gb:,.1f} GB after a year",
        )
    )

    # -- the rest -----------------------------------------------------------------------
    events = investigations  # one case event per investigation on the event bus
    add(
        Line(
            "EventBridge (schedule and case events)",
            events / 1e6 * book["eventbridge_custom_events_million"],
            events,
            "custom events",
            ["eventbridge_custom_events_million"],
            "scheduled rule events are free",
        )
    )
    add(
        Line(
            "SQS (on-failure and dead-letter queues)",
            0.0,
            0,
            "requests",
            ["sqs_requests_million"],
            "only failed batches; within the free tier",
        )
    )
    nat = float(a["nat_gateways"])
    nat_gb = float(a["nat_gb_per_month"])
    add(
        Line(
            "NAT gateway",
            nat * hours * book["nat_gateway_hour"] + nat_gb * book["nat_gateway_gb"],
            nat * hours,
            "gateway-hours",
            ["nat_gateway_hour", "nat_gateway_gb"],
        )
    )
    log_gb = invocations * float(a["log_bytes_per_invocation"]) / 1e9
    add(
        Line(
            "CloudWatch (alarms, dashboard, logs)",
            float(a["cloudwatch_alarms"]) * book["cloudwatch_alarm_month"]
            + float(a["cloudwatch_dashboards"]) * book["cloudwatch_dashboard_month"]
            + log_gb * book["cloudwatch_logs_gb"],
            log_gb,
            "GB of logs",
            ["cloudwatch_alarm_month", "cloudwatch_dashboard_month", "cloudwatch_logs_gb"],
        )
    )
    per_second = invocations / seconds
    sampled = seconds * min(per_second, 1.0) + max(0.0, per_second - 1.0) * seconds * 0.05
    traces = max(0.0, sampled - 100_000)
    add(
        Line(
            "X-Ray traces",
            traces / 1e6 * book["xray_traces_million"],
            sampled,
            "traces recorded",
            ["xray_traces_million"],
            str(a["xray_sampling"]),
        )
    )
    return result


def render_text(result: Estimate) -> str:
    """The estimate as a table, with the derived figures and the assumptions."""
    rows = [
        f"Monthly cost at {result.tps:g} transactions/s, rules every {format_duration(result.schedule)}, "
        f"{result.engine} (us-east-1, USD)",
        "",
    ]
    width = max(len(line.component) for line in result.lines)
    for line in result.lines:
        rows.append(f"  {line.component:<{width}}  {line.monthly_usd:>10,.2f}  {line.note}")
    rows.append(f"  {'total':<{width}}  {result.total:>10,.2f}")
    rows += ["", "Derived from the code:"]
    rows += [
        f"  {key}: {value:,}" if isinstance(value, int | float) else f"  {key}: {value}"
        for key, value in result.derived.items()
    ]
    rows += [
        "",
        "Scanned per scheduled run, on average over a day of runs (rows = rate x seconds of data "
        "each read covers):",
    ]
    for scan in result.scans:
        rows.append(
            f"  {scan['rule']:<22} {scan['table_reads']} read(s) {scan['queries_per_day']:>4}/day "
            f"{scan['seconds_of_data']:>7,} s  "
            f"{scan['rows']:>10,} rows  {scan['bytes'] / 1e6:>9,.1f} MB  billed {scan['billed_bytes'] / 1e6:,.0f} MB"
        )
    rows += ["", "Assumed (local/fraudlocal/cost/prices.yaml):"]
    rows += [f"  {key}: {value}" for key, value in result.assumptions.items()]
    measured = result.measured
    if measured:
        rows += [
            "",
            f"Measured (local/fraudlocal/cost/{MEASURED_FILE.name}, {measured['measured']}, `{measured['command']}`): "
            f"{measured['transactions']:,} transactions, {measured['investigations']} investigations of "
            f"which {measured['relooks']} re-looks; hits by rule: "
            + ", ".join(f"{rule} {count}" for rule, count in measured["flags_by_rule"].items())
            + "; re-looks by rule: "
            + ", ".join(f"{rule} {count}" for rule, count in measured["relooks_by_rule"].items()),
        ]
    unconfirmed = sorted(
        {key for line in result.lines for key in line.prices if not result.prices[key].confirmed}
    )
    rows += ["", f"Prices not confirmed on an AWS page: {', '.join(unconfirmed)}"]
    return "\n".join(rows)
