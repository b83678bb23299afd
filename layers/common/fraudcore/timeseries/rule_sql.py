"""Compile a window rule to the SQL that evaluates it, in each engine's dialect.

One definition, one compiler: the query is built here once, and the few pieces the engines
spell differently (time literals, window starts, the table name) come from a
:class:`fraudcore.timeseries.dialects.SqlDialect`: Timestream SQL (the default, also what
the local DuckDB store translates) or InfluxDB 3 SQL (DataFusion's ``date_bin``).

Windows are ``[start, start + window)`` with ``start`` on a grid of ``hop`` aligned to the
Unix epoch (``bin(time, window)`` when hop = window; shifted bins otherwise). Time bounds
are explicit (``from_iso8601_timestamp``), never ``ago()``: the same evaluation time gives
the same query, so replays and backtests are deterministic.

An evaluation at time T looks at every window that ends after ``T - lateness`` (lateness:
the rule's, at least the schedule interval) and starts before T, over the events with ``time < T``. A window in progress is evaluated too (all
aggregates only grow as events arrive, so a partial window over the threshold is a real
hit), and a window stays under evaluation for ``lateness`` after its end, to catch events
that arrive late.

Every query returns ``entity_id``, ``window_start`` and ``observed``, one row per hit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..rules import Rule, format_duration, parse_duration
from .dialects import TIMESTREAM, SqlDialect

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def floor_to(moment: datetime, step: timedelta) -> datetime:
    """The start of the epoch-aligned ``step`` interval containing ``moment``."""
    offset = (moment - EPOCH) % step
    return moment - offset


@dataclass(frozen=True)
class EvaluationRange:
    """Windows starting in [first_window_start, end) over events with time < end.

    ``last_window_start``, when set, keeps only the windows starting at or before it (the
    windows a run can flag: those that have closed, for a rule that waits for its windows
    to close); ``end`` is then the end of that last window.
    """

    first_window_start: datetime
    end: datetime
    last_window_start: datetime | None = None

    @property
    def empty(self) -> bool:
        """No window to evaluate: the run needs no query."""
        return self.last_window_start is not None and self.last_window_start < self.first_window_start


def evaluation_range(
    rule: Rule, evaluation_time: datetime, schedule_interval: timedelta | None = None
) -> EvaluationRange:
    """The windows an evaluation at ``evaluation_time`` looks at (see the module docstring).

    The look-back after a window's end is the rule's lateness, but never less than the
    schedule interval: otherwise a window ending between two runs would never be seen whole.
    A rule that waits for its windows to close (``wait_for_close``) flags nothing in a window
    still open: its range holds only the windows closed by ``evaluation_time``, read up to
    the end of the last of them, and is empty at the runs that see no closed window (most
    runs, for a long window: the query is then not run at all).
    """
    lateness = max(rule.lateness, schedule_interval or timedelta(0))
    # The earliest grid start s with s + window > T - lateness.
    earliest = floor_to(evaluation_time - lateness - rule.window, rule.hop) + rule.hop
    if rule.wait_for_close:
        last = floor_to(evaluation_time - rule.window, rule.hop)  # the latest s with s + window <= T
        return EvaluationRange(earliest, last + rule.window, last)
    return EvaluationRange(earliest, evaluation_time)


def span_range(
    rule: Rule, first_tick: datetime, last_tick: datetime, schedule_interval: timedelta | None = None
) -> EvaluationRange:
    """One range covering every evaluation from ``first_tick`` to ``last_tick`` (backtests)."""
    return EvaluationRange(
        evaluation_range(rule, first_tick, schedule_interval).first_window_start, last_tick
    )


def _aggregate_sql(rule: Rule) -> str:
    if rule.distinct_column:
        return f"count(DISTINCT {rule.distinct_column})"
    return rule.aggregate


def _row_conditions(rule: Rule, start: datetime, end: datetime, dialect: SqlDialect) -> list[str]:
    conditions = [
        *dialect.transaction_rows(),
        f"time >= {dialect.timestamp(start)}",
        f"time < {dialect.timestamp(end)}",
        f"{rule.entity_column} IS NOT NULL",
    ]
    if rule.distinct_column:
        conditions.append(f"{rule.distinct_column} IS NOT NULL")
    if rule.filter:
        conditions.append(f"({rule.filter})")
    return conditions


def _window_start_sql(rule: Rule, phase: int, dialect: SqlDialect) -> str:
    return dialect.window_start(rule.window, rule.hop * phase)


def _number_sql(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _threshold_sql(rule: Rule) -> str:
    return f"{rule.op} {_number_sql(rule.threshold)}"


def _phased(rule: Rule, dialect: SqlDialect) -> tuple[str, str]:
    """The window start of a row and what to cross join the read with, for every phase at once.

    With hop < window a row is in ``window / hop`` overlapping windows (one per phase of the
    grid). The read is cross joined with the phase numbers, so the table is read once for
    every phase (a UNION ALL of one SELECT per phase would read it once per phase). With one
    phase there is nothing to join.
    """
    phases = round(rule.window / rule.hop)
    if phases == 1:
        return _window_start_sql(rule, 0, dialect), ""
    cases = " ".join(
        f"WHEN {phase} THEN {_window_start_sql(rule, phase, dialect)}" for phase in range(phases)
    )
    return f"CASE phases.phase {cases} END", f"\nCROSS JOIN {dialect.numbers('phases', 'phase', phases)}"


def _started_in_range(select: str, span: EvaluationRange, dialect: SqlDialect) -> str:
    """Only the windows that started in the range: a shifted phase also produces windows that
    started before it, which would be partial (their early events are outside the range)."""
    return (
        f"SELECT entity_id, window_start, observed FROM (\n{select}\n) AS hits\n"
        f"WHERE window_start >= {dialect.timestamp(span.first_window_start)}"
    )


def _grouped_sql(rule: Rule, database: str, table: str, span: EvaluationRange, dialect: SqlDialect) -> str:
    aggregate = _aggregate_sql(rule)
    where = "\n  AND ".join(_row_conditions(rule, span.first_window_start, span.end, dialect))
    window_start, phases = _phased(rule, dialect)
    select = (
        f"SELECT {rule.entity_column} AS entity_id, {window_start} AS window_start, "
        f"{aggregate} AS observed\n"
        f"FROM {dialect.table(database, table)}{phases}\n"
        f"WHERE {where}\n"
        f"GROUP BY {rule.entity_column}, {window_start}\n"
        f"HAVING {aggregate} {_threshold_sql(rule)}"
    )
    return _started_in_range(select, span, dialect) if phases else select


def _spike_sql(rule: Rule, database: str, table: str, span: EvaluationRange, dialect: SqlDialect) -> str:
    column = rule.entity_column
    conditions = _history_rows(rule, span, dialect)
    candidates = " AND ".join(_candidates(rule, span, dialect))
    table_sql = dialect.table(database, table)
    conditions.append(f"{column} IN (SELECT {column} FROM {table_sql} WHERE {candidates})")
    where = "\n    AND ".join(conditions)
    window_start = dialect.window_start(rule.window)
    rows = "\n  AND ".join(_spike_rows(rule, span, dialect))
    return (
        "WITH scored AS (\n"
        f"  SELECT {column} AS entity_id, time, amount,\n"
        f"    {_baseline_sql(rule)}\n"
        f"  FROM {table_sql}\n"
        f"  WHERE {where}\n"
        ")\n"
        f"SELECT entity_id, {window_start} AS window_start, max(amount / baseline) AS observed\n"
        "FROM scored\n"
        f"WHERE {rows}\n"
        f"GROUP BY entity_id, {window_start}\n"
        f"HAVING max(amount / baseline) {_threshold_sql(rule)}"
    )


def _baseline_sql(rule: Rule, partition: str = "", suffix: str = "") -> str:
    """A payment's baseline (average of the previous ``baseline_transactions``) and its size."""
    frame = (
        f"PARTITION BY {partition}{rule.entity_column} ORDER BY time, transaction_id "
        f"ROWS BETWEEN {int(rule.params['baseline_transactions'])} PRECEDING AND 1 PRECEDING"
    )
    return f"avg(amount) OVER ({frame}) AS baseline{suffix},\n    count(*) OVER ({frame}) AS history{suffix}"


def _spike_rows(rule: Rule, span: EvaluationRange, dialect: SqlDialect, suffix: str = "") -> list[str]:
    """The scored payments a spike rule compares with their baseline."""
    return [
        f"time >= {dialect.timestamp(span.first_window_start)}",
        f"history{suffix} >= {int(rule.params['min_history'])}",
        f"amount >= {_number_sql(rule.params['min_amount'])}",
        f"baseline{suffix} > 0",
    ]


def _pass_through_sql(
    rule: Rule, database: str, table: str, span: EvaluationRange, dialect: SqlDialect
) -> str:
    """Per account and window: the share of what it received by transfer that it sent on.

    ``moves`` holds each transaction twice over, from one read of the table: as money sent
    by ``account_id`` (any channel: a transfer, or a purchase that cashes the money out) and,
    for transfers, as money received by ``counterparty_account_id``. An account that received
    nothing in a window has no share there (``sum(received)`` is below ``min_received``). The
    share is capped at 1: spending more than was received is not passing more on.
    """
    rows = "\n    AND ".join(
        [
            *dialect.transaction_rows(),
            f"time >= {dialect.timestamp(span.first_window_start)}",
            f"time < {dialect.timestamp(span.end)}",
        ]
    )
    sender = [f"{rule.entity_column} IS NOT NULL", *([f"({rule.filter})"] if rule.filter else [])]
    sending = " AND ".join(["roles.role = 0", *sender])
    moves = (
        "WITH moves AS (\n"
        "  SELECT CASE roles.role WHEN 0 THEN account_id ELSE counterparty_account_id END AS entity_id, time,\n"
        "    CASE roles.role WHEN 0 THEN amount ELSE 0.0 END AS sent,\n"
        "    CASE roles.role WHEN 0 THEN 0.0 ELSE amount END AS received\n"
        f"  FROM {dialect.table(database, table)}\n"
        f"  CROSS JOIN {dialect.numbers('roles', 'role', 2)}\n"
        f"  WHERE {rows}\n"
        f"    AND (({sending}) OR (roles.role = 1 AND counterparty_account_id IS NOT NULL))\n"
        ")\n"
    )
    observed = "least(sum(sent), sum(received)) / sum(received)"
    minimum = _number_sql(rule.params["min_received"])
    window_start, phases = _phased(rule, dialect)
    select = (
        f"SELECT entity_id, {window_start} AS window_start, {observed} AS observed\n"
        f"FROM moves{phases}\n"
        f"GROUP BY entity_id, {window_start}\n"
        f"HAVING sum(received) >= {minimum} AND {observed} {_threshold_sql(rule)}"
    )
    return moves + _started_in_range(select, span, dialect)


def _signal_conditions(rule: Rule, dialect: SqlDialect, suffix: str = "") -> list[str]:
    """Row conditions of a rule's signals over the columns ``_signals_sql`` computes.

    A ``new`` column is new when the account first used it no earlier than ``new_within``
    before the row, while the account itself had been active for at least ``established``
    before that first use (a brand-new account's identifiers are all "new": not a change).
    ``over_habit`` compares the amount with the average of the account's previous
    ``habit_transactions`` transactions, given at least ``min_history`` of them.
    """
    params = rule.params
    new_within = dialect.duration(parse_duration(params["new_within"], rule.id))
    established = dialect.duration(parse_duration(params["established"], rule.id))
    conditions = [f"habit_transactions{suffix} >= {int(params['min_history'])}"]
    for signal in rule.signals:
        if "new" in signal:
            anyof = [
                f"({column} IS NOT NULL AND first_{column} >= time - {new_within} "
                f"AND first_use <= first_{column} - {established})"
                for column in signal["new"]
            ]
            conditions.append(anyof[0] if len(anyof) == 1 else "(" + " OR ".join(anyof) + ")")
        else:
            conditions.append(
                f"habit{suffix} > 0 AND amount >= {_number_sql(signal['over_habit'])} * habit{suffix}"
            )
    return conditions


def _novelty_columns(rule: Rule) -> list[str]:
    return sorted({c for signal in rule.signals for c in signal.get("new", [])})


def _history_columns(rules: Sequence[Rule]) -> list[str]:
    """The columns a history read projects for ``rules``: only those their queries use.

    Timestream meters the columns a query reads (a read of ``*`` reads every dimension):
    the entity, time, the order key, the amount, the columns a novelty signal watches and
    the columns a filter names.
    """
    base = [rules[0].entity_column, "time", "transaction_id", "amount"]
    extra = {c for rule in rules for c in (*_novelty_columns(rule), *rule.filter_columns)}
    return base + sorted(extra - set(base))


def _firsts_sql(column: str, novelty: Sequence[str], partition: str = "") -> str:
    """First use of the entity and of each watched column in its history (``first_use``, ``first_<c>``)."""
    firsts = "".join(
        f",\n    min(time) OVER (PARTITION BY {partition}{column}, {c}) AS first_{c}" for c in novelty
    )
    return f"min(time) OVER (PARTITION BY {partition}{column}) AS first_use{firsts}"


def _usual_sql(rule: Rule, dialect: SqlDialect) -> str:
    """Whether a history row is part of the account's habit.

    The habit is made of the account's usual transactions: the candidates that meet the
    rule's novelty signals (an intruder's first large payments) must not raise the bar for
    the next ones; a small payment from a device new to the account is the owner's habit
    all the same. The identifiers the account started with are its own, never new.
    """
    new_within = dialect.duration(parse_duration(rule.params["new_within"], rule.id))
    novel = [
        "("
        + " OR ".join(
            f"({c} IS NOT NULL AND first_{c} >= time - {new_within} AND first_{c} > first_use)"
            for c in signal["new"]
        )
        + ")"
        for signal in rule.signals
        if "new" in signal
    ]
    minimum = _number_sql(rule.params["min_amount"])
    return f"NOT ({' AND '.join([*novel, f'amount >= {minimum}'])})" if novel else "TRUE"


def _habit_sql(rule: Rule, dialect: SqlDialect, partition: str = "", suffix: str = "") -> str:
    """The habit (average of the previous ``habit_transactions`` usual amounts) and its size."""
    usual = _usual_sql(rule, dialect)
    frame = (
        f"PARTITION BY {partition}{rule.entity_column} ORDER BY time, transaction_id "
        f"ROWS BETWEEN {int(rule.params['habit_transactions'])} PRECEDING AND 1 PRECEDING"
    )
    return (
        f"avg(CASE WHEN {usual} THEN amount END) OVER ({frame}) AS habit{suffix},\n"
        f"    count(CASE WHEN {usual} THEN amount END) OVER ({frame}) AS habit_transactions{suffix}"
    )


def _signal_rows(rule: Rule, span: EvaluationRange, dialect: SqlDialect, suffix: str = "") -> list[str]:
    """The profiled rows a signals rule counts: in range, large enough, meeting every signal."""
    return [
        f"time >= {dialect.timestamp(span.first_window_start)}",
        f"amount >= {_number_sql(rule.params['min_amount'])}",
        *([f"({rule.filter})"] if rule.filter else []),
        *_signal_conditions(rule, dialect, suffix),
    ]


def _history_start(rule: Rule, span: EvaluationRange) -> datetime:
    return span.first_window_start - parse_duration(rule.params["history"], rule.id)


def _history_rows(rule: Rule, span: EvaluationRange, dialect: SqlDialect) -> list[str]:
    """The rows a rule's baseline (spike: its own rows) or profile (every transaction of the
    entity) is computed over, from the history start to the range's end."""
    start = _history_start(rule, span)
    if rule.aggregate == "spike":
        return _row_conditions(rule, start, span.end, dialect)
    return [
        *dialect.transaction_rows(),
        f"time >= {dialect.timestamp(start)}",
        f"time < {dialect.timestamp(span.end)}",
    ]


def _candidates(rule: Rule, span: EvaluationRange, dialect: SqlDialect) -> list[str]:
    """Rows that can make a hit: in range, at least ``min_amount``. Only the entities with one
    need a history: a scheduled run never reads every entity's history."""
    return [
        *_row_conditions(rule, span.first_window_start, span.end, dialect),
        f"amount >= {_number_sql(rule.params['min_amount'])}",
    ]


def _signals_sql(rule: Rule, database: str, table: str, span: EvaluationRange, dialect: SqlDialect) -> str:
    """Windows whose transactions meeting every signal of the rule add up to the threshold.

    The account's profile (first use of each identifier, amount habit) is read from its own
    history over ``params.history``, for the accounts with a candidate transaction in range
    only (at least ``min_amount``): a scheduled run never reads every account's history.
    """
    column = rule.entity_column
    table_sql = dialect.table(database, table)
    candidates = " AND ".join(_candidates(rule, span, dialect))
    history = "\n    AND ".join(
        [
            *_history_rows(rule, span, dialect),
            f"{column} IN (SELECT {column} FROM {table_sql} WHERE {candidates})",
        ]
    )
    aggregate = _aggregate_sql(rule)
    where = "\n  AND ".join(_signal_rows(rule, span, dialect))
    window_start, phases = _phased(rule, dialect)
    select = (
        f"SELECT {column} AS entity_id, {window_start} AS window_start, {aggregate} AS observed\n"
        f"FROM profiled{phases}\nWHERE {where}\n"
        f"GROUP BY {column}, {window_start}\n"
        f"HAVING {aggregate} {_threshold_sql(rule)}"
    )
    return (
        "WITH firsts AS (\n"
        f"  SELECT {', '.join(_history_columns([rule]))},\n"
        f"    {_firsts_sql(column, _novelty_columns(rule))}\n"
        f"  FROM {table_sql}\n  WHERE {history}\n"
        "), profiled AS (\n"
        f"  SELECT *,\n    {_habit_sql(rule, dialect)}\n"
        "  FROM firsts\n"
        ")\n" + _started_in_range(select, span, dialect)
    )


def compile_range(
    rule: Rule, database: str, table: str, span: EvaluationRange, dialect: SqlDialect = TIMESTREAM
) -> str:
    """The SQL (Timestream's unless ``dialect`` says otherwise) returning the hits of ``rule`` in ``span``."""
    if rule.signals:
        sql = _signals_sql(rule, database, table, span, dialect)
    elif rule.aggregate == "spike":
        sql = _spike_sql(rule, database, table, span, dialect)
    elif rule.aggregate == "pass_through":
        sql = _pass_through_sql(rule, database, table, span, dialect)
    else:
        sql = _grouped_sql(rule, database, table, span, dialect)
    if span.last_window_start is None:
        return sql
    return (
        f"SELECT entity_id, window_start, observed FROM (\n{sql}\n) AS closed\n"
        f"WHERE window_start <= {dialect.timestamp(span.last_window_start)}"
    )


def reads_history(rule: Rule) -> bool:
    """Whether the rule's query reads its entities' history (a baseline or a profile)."""
    return rule.aggregate == "spike" or bool(rule.signals)


def history_groups(rules: Sequence[Rule]) -> list[tuple[Rule, ...]]:
    """Rules evaluated by one query: those reading the history of the same entity, at the
    same cadence (``every``).

    Such rules each read a long history (a day) of the same entities: one query reads it
    once for all of them (:func:`compile_history_lanes`). A rule that waits for its windows
    to close queries at other runs, so it keeps its own query. A group of one is left out,
    unless its rule has ``every``: its query then answers several runs, one lane each
    (:func:`cadence_lanes`).
    """
    by_key: dict[tuple[str, timedelta | None], list[Rule]] = {}
    for rule in rules:
        if rule.enabled and reads_history(rule) and not rule.wait_for_close:
            by_key.setdefault((rule.entity_column, rule.every), []).append(rule)
    return [tuple(group) for (_, every), group in by_key.items() if len(group) > 1 or every is not None]


def cadence_runs(
    rule: Rule, evaluation_time: datetime, schedule_interval: timedelta | None
) -> tuple[datetime, ...]:
    """The scheduled runs whose results the run at ``evaluation_time`` gives for ``rule``, oldest first.

    Without ``every``: the run itself. With ``every`` (n times the schedule): nothing, except
    at the run whose interval since the previous run holds a multiple of ``every`` (aligned
    to the epoch: the run at that multiple when the runs are aligned); that run gives the n
    runs up to it, itself and the n - 1 skipped since the previous query. Each run's result
    is exactly what that run alone finds (the events before it, its own ranges), so a rule
    queried every 15 minutes flags what it would have flagged every 5, up to 10 minutes later.
    """
    runs = rule.runs_per_query(schedule_interval)
    if runs == 1 or schedule_interval is None:
        return (evaluation_time,)
    if floor_to(evaluation_time, rule.every) <= evaluation_time - schedule_interval:
        return ()
    return tuple(evaluation_time - schedule_interval * back for back in range(runs - 1, -1, -1))


@dataclass(frozen=True)
class Lane:
    """One rule at one scheduled run, in a query answering several (:func:`compile_history_lanes`)."""

    rule: Rule
    run: datetime
    span: EvaluationRange


def cadence_lanes(
    group: Sequence[Rule], evaluation_time: datetime, schedule_interval: timedelta | None
) -> list[Lane]:
    """The lanes of ``group``'s query at ``evaluation_time``: each rule at each run it answers
    for (:func:`cadence_runs`), rule by rule, oldest run first. Empty when it sends none."""
    return [
        Lane(rule, run, evaluation_range(rule, run, schedule_interval))
        for rule in group
        for run in cadence_runs(rule, evaluation_time, schedule_interval)
    ]


def compile_lanes(lanes: Sequence[Lane], database: str, table: str, dialect: SqlDialect = TIMESTREAM) -> str:
    """The SQL of a query answering ``lanes``: the rule's own query for one lane (its rows
    have no ``lane``), :func:`compile_history_lanes` for more."""
    if len(lanes) == 1:
        return compile_range(lanes[0].rule, database, table, lanes[0].span, dialect)
    return compile_history_lanes(
        [lane.rule for lane in lanes], database, table, [lane.span for lane in lanes], dialect
    )


def _lane_aggregate(rule: Rule, lane: int) -> str:
    """The rule's aggregate over the rows of its lane only (every group holds one lane)."""
    if rule.aggregate == "spike":
        return f"max(CASE WHEN lane = {lane} THEN amount / baseline_{lane} END)"
    aggregate = _aggregate_sql(rule)
    if aggregate == "count(*)":
        return f"count(CASE WHEN lane = {lane} THEN 1 END)"
    function = aggregate.split("(", 1)[0]  # sum(amount) | max(amount): rules.py allows no other
    return f"{function}(CASE WHEN lane = {lane} THEN amount END)"


def _lane_window_start(rule: Rule, dialect: SqlDialect) -> tuple[str, int]:
    """The window start of a row in the rule's lane, and how many phases the lane uses."""
    count = 1 if rule.aggregate == "spike" else round(rule.window / rule.hop)
    if count == 1:
        return _window_start_sql(rule, 0, dialect), 1
    cases = " ".join(f"WHEN {phase} THEN {_window_start_sql(rule, phase, dialect)}" for phase in range(count))
    return f"CASE phases.phase {cases} END", count


def compile_history_lanes(
    rules: Sequence[Rule],
    database: str,
    table: str,
    spans: Sequence[EvaluationRange],
    dialect: SqlDialect = TIMESTREAM,
) -> str:
    """One query for rules that read the history of the same entity (:func:`history_groups`).

    Each (rule, range) pair is a lane: the history of the candidate entities is read once,
    over the union of the ranges, cross joined with the lane numbers (as a hopping window's
    phases are), and each lane keeps the rows of its own range; every window function is
    partitioned by lane, so a lane sees exactly the rows its rule's own query
    (:func:`compile_range`) over its range reads, in the same order. The entities read are
    those with a candidate row in any lane: an entity with no candidate in a lane has no hit
    there (a hit needs such a row), so each lane's hits are its own query's. A rule may be
    in several lanes, one per scheduled run it answers for (:func:`cadence_lanes`). Rows:
    ``lane`` (the index in ``rules``), ``entity_id``, ``window_start``, ``observed``.
    """
    if len(rules) < 2 or len(spans) != len(rules) or len({rule.entity_column for rule in rules}) != 1:
        raise ValueError("history lanes need two or more lanes on one entity, each with its range")
    if not all(reads_history(rule) for rule in rules) or any(span.last_window_start for span in spans):
        raise ValueError("history lanes are for rules reading a history whose windows need not close")
    column = rules[0].entity_column
    table_sql = dialect.table(database, table)
    lanes = list(zip(range(len(rules)), rules, spans, strict=True))
    first = min(span.first_window_start for span in spans)
    start = min(_history_start(rule, span) for rule, span in zip(rules, spans, strict=True))
    end = max(span.end for span in spans)
    candidates = " AND ".join(
        [
            *dialect.transaction_rows(),
            f"time >= {dialect.timestamp(first)}",
            f"time < {dialect.timestamp(end)}",
            "("
            + " OR ".join(
                "(" + " AND ".join(_candidates(rule, span, dialect)) + ")" for _, rule, span in lanes
            )
            + ")",
        ]
    )
    own_rows = [
        f"(lanes.lane = {lane} AND " + " AND ".join(_history_rows(rule, span, dialect)) + ")"
        for lane, rule, span in lanes
    ]
    history = "\n    AND ".join(
        [
            *dialect.transaction_rows(),
            f"time >= {dialect.timestamp(start)}",
            f"time < {dialect.timestamp(end)}",
            f"{column} IN (SELECT {column} FROM {table_sql} WHERE {candidates})",
            "(" + "\n      OR ".join(own_rows) + ")",
        ]
    )
    novelty = sorted({c for rule in rules for c in _novelty_columns(rule)})
    firsts = f",\n    {_firsts_sql(column, novelty, 'lanes.lane, ')}" if any(r.signals for r in rules) else ""
    scores = ",\n    ".join(
        _baseline_sql(rule, "lane, ", f"_{lane}")
        if rule.aggregate == "spike"
        else _habit_sql(rule, dialect, "lane, ", f"_{lane}")
        for lane, rule, _ in lanes
    )
    phase_count = max(_lane_window_start(rule, dialect)[1] for rule in rules)
    starts, counted, kept, hits = [], [], [], []
    for lane, rule, span in lanes:
        window_start, phases = _lane_window_start(rule, dialect)
        starts.append(f"WHEN {lane} THEN {window_start}")
        rows = (
            _spike_rows(rule, span, dialect, f"_{lane}")
            if rule.aggregate == "spike"
            else _signal_rows(rule, span, dialect, f"_{lane}")
        )
        if phases < phase_count:
            rows = [f"phases.phase < {phases}", *rows]
        counted.append(f"(lane = {lane} AND " + " AND ".join(rows) + ")")
        aggregate = _lane_aggregate(rule, lane)
        hits.append(f"(lane = {lane} AND {aggregate} {_threshold_sql(rule)})")
        # a shifted phase also makes windows that started before the range (partial ones)
        kept.append(
            f"lane = {lane}"
            if rule.aggregate == "spike"
            else f"(lane = {lane} AND window_start >= {dialect.timestamp(span.first_window_start)})"
        )
    window_start = f"CASE lane {' '.join(starts)} END"
    observed = f"CASE lane {' '.join(f'WHEN {lane} THEN {_lane_aggregate(rule, lane)}' for lane, rule, _ in lanes)} END"
    counted_sql = "\n   OR ".join(counted)
    phases_sql = f"\nCROSS JOIN {dialect.numbers('phases', 'phase', phase_count)}" if phase_count > 1 else ""
    return (
        "WITH lane_rows AS (\n"
        f"  SELECT lanes.lane AS lane, {', '.join(_history_columns(rules))}{firsts}\n"
        f"  FROM {table_sql}\n"
        f"  CROSS JOIN {dialect.numbers('lanes', 'lane', len(rules))}\n"
        f"  WHERE {history}\n"
        "), profiled AS (\n"
        f"  SELECT *,\n    {scores}\n"
        "  FROM lane_rows\n"
        ")\n"
        "SELECT lane, entity_id, window_start, observed FROM (\n"
        f"SELECT lane, {column} AS entity_id, {window_start} AS window_start, {observed} AS observed\n"
        f"FROM profiled{phases_sql}\n"
        f"WHERE {counted_sql}\n"
        f"GROUP BY lane, {column}, {window_start}\n"
        f"HAVING {' OR '.join(hits)}\n"
        ") AS hits\n"
        f"WHERE {' OR '.join(kept)}"
    )


def compile_rule(
    rule: Rule,
    database: str,
    table: str,
    evaluation_time: datetime,
    schedule_interval: timedelta | None = None,
    dialect: SqlDialect = TIMESTREAM,
) -> str:
    """The SQL of one scheduled evaluation of ``rule`` at ``evaluation_time``, in ``dialect``."""
    return compile_range(
        rule, database, table, evaluation_range(rule, evaluation_time, schedule_interval), dialect
    )


@dataclass(frozen=True)
class WindowProbe:
    """One window of one entity, looked at by the run at ``evaluation_time`` (before it closed)."""

    entity_id: str
    window_start: datetime
    evaluation_time: datetime


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def compile_window_probes(rule: Rule, database: str, table: str, probes: list[WindowProbe]) -> str:
    """The SQL giving, for each probe that hits, what the run at its evaluation time observes.

    A run at T sees a window that is still open with the events from its start up to T: the
    same rows as :func:`compile_rule` reads for that window, so the same ``observed``. One
    query answers many (entity, window, run) triples; rows: ``entity_id``, ``window_start``,
    ``evaluation_time``, ``observed`` for the probes over the rule's threshold. Only for
    rules whose ``aggregate`` is a plain SQL aggregate (not ``spike`` or ``pass_through``).
    """
    if rule.aggregate in ("spike", "pass_through") or not probes:
        raise ValueError(f"{rule.id}: window probes need a plain aggregate and at least one probe")
    aggregate = _aggregate_sql(rule)
    values = ",\n  ".join(
        f"({_text(probe.entity_id)}, {TIMESTREAM.timestamp(probe.window_start)}, {TIMESTREAM.timestamp(probe.evaluation_time)})"
        for probe in probes
    )
    conditions = [
        "measure_name = 'transaction'",
        "tx.time >= probe.window_start",
        "tx.time < probe.evaluation_time",
    ]
    if rule.distinct_column:
        conditions.append(f"{rule.distinct_column} IS NOT NULL")
    if rule.filter:
        conditions.append(f"({rule.filter})")
    where = "\n  AND ".join(conditions)
    return (
        "SELECT probe.entity_id, probe.window_start, probe.evaluation_time, "
        f"{aggregate} AS observed\n"
        f"FROM (VALUES\n  {values}\n) AS probe (entity_id, window_start, evaluation_time)\n"
        f"JOIN {TIMESTREAM.table(database, table)} AS tx ON tx.{rule.entity_column} = probe.entity_id\n"
        f"WHERE {where}\n"
        "GROUP BY probe.entity_id, probe.window_start, probe.evaluation_time\n"
        f"HAVING {aggregate} {_threshold_sql(rule)}"
    )


@dataclass(frozen=True)
class SpikeProbe:
    """A spike window of one entity as the run at ``evaluation_time`` sees it.

    ``first_window_start`` is that run's (:func:`evaluation_range`); its history starts the
    rule's ``history`` earlier.
    """

    entity_id: str
    window_start: datetime
    evaluation_time: datetime
    first_window_start: datetime


def compile_spike_probes(rule: Rule, database: str, table: str, probes: list[SpikeProbe]) -> str:
    """What the spike rule's run at each probe's evaluation time observes in the probe's window.

    The same rows, order and frame as the run's own query (:func:`compile_rule`), one
    partition per probe: a payment's baseline is the average of the entity's previous
    ``baseline_transactions`` payments since the run's history start. Rows: ``entity_id``,
    ``window_start``, ``evaluation_time``, ``observed`` for the probes over the threshold.
    """
    if rule.aggregate != "spike" or not probes:
        raise ValueError(f"{rule.id}: spike probes need the spike aggregate and at least one probe")
    params = rule.params
    parse_duration(params["history"], rule.id)  # a duration literal, checked before it is pasted
    values = ",\n  ".join(
        f"({_text(probe.entity_id)}, {TIMESTREAM.timestamp(probe.window_start)}, {TIMESTREAM.timestamp(probe.evaluation_time)}, "
        f"{TIMESTREAM.timestamp(probe.first_window_start)})"
        for probe in probes
    )
    conditions = [
        "measure_name = 'transaction'",
        f"tx.time >= probe.first_window_start - {params['history']}",
        "tx.time < probe.evaluation_time",
    ]
    if rule.filter:
        conditions.append(f"({rule.filter})")
    where = "\n    AND ".join(conditions)
    baseline = int(params["baseline_transactions"])
    partition = "probe.entity_id, probe.window_start, probe.evaluation_time"
    frame = (
        f"PARTITION BY {partition} ORDER BY tx.time, tx.transaction_id "
        f"ROWS BETWEEN {baseline} PRECEDING AND 1 PRECEDING"
    )
    return (
        "WITH scored AS (\n"
        "  SELECT probe.entity_id, probe.window_start, probe.evaluation_time, probe.first_window_start,\n"
        "    tx.time, tx.amount,\n"
        f"    avg(tx.amount) OVER ({frame}) AS baseline,\n"
        f"    count(*) OVER ({frame}) AS history\n"
        f"  FROM (VALUES\n  {values}\n) AS probe (entity_id, window_start, evaluation_time, first_window_start)\n"
        f"  JOIN {TIMESTREAM.table(database, table)} AS tx ON tx.{rule.entity_column} = probe.entity_id\n"
        f"  WHERE {where}\n"
        ")\n"
        "SELECT entity_id, window_start, evaluation_time, max(amount / baseline) AS observed\n"
        "FROM scored\n"
        "WHERE time >= window_start\n"
        "  AND time >= first_window_start\n"
        f"  AND time < window_start + {format_duration(rule.window)}\n"
        f"  AND history >= {int(params['min_history'])}\n"
        f"  AND amount >= {_number_sql(params['min_amount'])}\n"
        "  AND baseline > 0\n"
        "GROUP BY entity_id, window_start, evaluation_time\n"
        f"HAVING max(amount / baseline) {_threshold_sql(rule)}"
    )
