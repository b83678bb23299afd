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
    params = rule.params
    history_start = span.first_window_start - parse_duration(params["history"], rule.id)
    baseline = int(params["baseline_transactions"])
    column = rule.entity_column
    conditions = _row_conditions(rule, history_start, span.end, dialect)
    # Only entities with a candidate payment in range need a baseline: on Timestream this
    # keeps a scheduled run from reading the whole history of every account.
    candidates = " AND ".join(
        [
            *_row_conditions(rule, span.first_window_start, span.end, dialect),
            f"amount >= {_number_sql(params['min_amount'])}",
        ]
    )
    table_sql = dialect.table(database, table)
    conditions.append(f"{column} IN (SELECT {column} FROM {table_sql} WHERE {candidates})")
    where = "\n    AND ".join(conditions)
    frame = f"PARTITION BY {column} ORDER BY time, transaction_id ROWS BETWEEN {baseline} PRECEDING AND 1 PRECEDING"
    window_start = dialect.window_start(rule.window)
    return (
        "WITH scored AS (\n"
        f"  SELECT {column} AS entity_id, time, amount,\n"
        f"    avg(amount) OVER ({frame}) AS baseline,\n"
        f"    count(*) OVER ({frame}) AS history\n"
        f"  FROM {table_sql}\n"
        f"  WHERE {where}\n"
        ")\n"
        f"SELECT entity_id, {window_start} AS window_start, max(amount / baseline) AS observed\n"
        "FROM scored\n"
        f"WHERE time >= {dialect.timestamp(span.first_window_start)}\n"
        f"  AND history >= {int(params['min_history'])}\n"
        f"  AND amount >= {_number_sql(params['min_amount'])}\n"
        "  AND baseline > 0\n"
        f"GROUP BY entity_id, {window_start}\n"
        f"HAVING max(amount / baseline) {_threshold_sql(rule)}"
    )


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


def _signal_conditions(rule: Rule, dialect: SqlDialect) -> list[str]:
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
    conditions = [f"habit_transactions >= {int(params['min_history'])}"]
    for signal in rule.signals:
        if "new" in signal:
            anyof = [
                f"({column} IS NOT NULL AND first_{column} >= time - {new_within} "
                f"AND first_use <= first_{column} - {established})"
                for column in signal["new"]
            ]
            conditions.append(anyof[0] if len(anyof) == 1 else "(" + " OR ".join(anyof) + ")")
        else:
            conditions.append(f"habit > 0 AND amount >= {_number_sql(signal['over_habit'])} * habit")
    return conditions


def _signals_sql(rule: Rule, database: str, table: str, span: EvaluationRange, dialect: SqlDialect) -> str:
    """Windows whose transactions meeting every signal of the rule add up to the threshold.

    The account's profile (first use of each identifier, amount habit) is read from its own
    history over ``params.history``, for the accounts with a candidate transaction in range
    only (at least ``min_amount``): a scheduled run never reads every account's history.
    """
    params = rule.params
    column = rule.entity_column
    table_sql = dialect.table(database, table)
    history_start = span.first_window_start - parse_duration(params["history"], rule.id)
    minimum = _number_sql(params["min_amount"])
    candidates = " AND ".join(
        [*_row_conditions(rule, span.first_window_start, span.end, dialect), f"amount >= {minimum}"]
    )
    history = "\n    AND ".join(
        [
            *dialect.transaction_rows(),
            f"time >= {dialect.timestamp(history_start)}",
            f"time < {dialect.timestamp(span.end)}",
            f"{column} IN (SELECT {column} FROM {table_sql} WHERE {candidates})",
        ]
    )
    frame = (
        f"PARTITION BY {column} ORDER BY time, transaction_id "
        f"ROWS BETWEEN {int(params['habit_transactions'])} PRECEDING AND 1 PRECEDING"
    )
    new_within = dialect.duration(parse_duration(params["new_within"], rule.id))
    novelty = sorted({c for signal in rule.signals for c in signal.get("new", [])})
    firsts = "".join(f",\n    min(time) OVER (PARTITION BY {column}, {c}) AS first_{c}" for c in novelty)
    # The habit is made of the account's usual transactions: the candidates that meet the
    # rule's novelty signals (an intruder's first large payments) must not raise the bar
    # for the next ones; a small payment from a device new to the account is the owner's
    # habit all the same. The identifiers the account started with are its own, never new.
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
    usual = f"NOT ({' AND '.join([*novel, f'amount >= {minimum}'])})" if novel else "TRUE"
    aggregate = _aggregate_sql(rule)
    where = "\n  AND ".join(
        [
            f"time >= {dialect.timestamp(span.first_window_start)}",
            f"amount >= {minimum}",
            *([f"({rule.filter})"] if rule.filter else []),
            *_signal_conditions(rule, dialect),
        ]
    )
    window_start, phases = _phased(rule, dialect)
    select = (
        f"SELECT {column} AS entity_id, {window_start} AS window_start, {aggregate} AS observed\n"
        f"FROM profiled{phases}\nWHERE {where}\n"
        f"GROUP BY {column}, {window_start}\n"
        f"HAVING {aggregate} {_threshold_sql(rule)}"
    )
    return (
        "WITH firsts AS (\n"
        f"  SELECT *,\n    min(time) OVER (PARTITION BY {column}) AS first_use{firsts}\n"
        f"  FROM {table_sql}\n  WHERE {history}\n"
        "), profiled AS (\n"
        f"  SELECT *,\n    avg(CASE WHEN {usual} THEN amount END) OVER ({frame}) AS habit,\n"
        f"    count(CASE WHEN {usual} THEN amount END) OVER ({frame}) AS habit_transactions\n"
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
