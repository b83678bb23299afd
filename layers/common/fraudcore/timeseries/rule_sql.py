"""Compile a window rule to the Timestream SQL that evaluates it.

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
from ..timeutil import iso_z

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def floor_to(moment: datetime, step: timedelta) -> datetime:
    """The start of the epoch-aligned ``step`` interval containing ``moment``."""
    offset = (moment - EPOCH) % step
    return moment - offset


@dataclass(frozen=True)
class EvaluationRange:
    """Windows starting in [first_window_start, end) over events with time < end."""

    first_window_start: datetime
    end: datetime


def evaluation_range(
    rule: Rule, evaluation_time: datetime, schedule_interval: timedelta | None = None
) -> EvaluationRange:
    """The windows an evaluation at ``evaluation_time`` looks at (see the module docstring).

    The look-back after a window's end is the rule's lateness, but never less than the
    schedule interval: otherwise a window ending between two runs would never be seen whole.
    """
    lateness = max(rule.lateness, schedule_interval or timedelta(0))
    # The earliest grid start s with s + window > T - lateness.
    earliest = floor_to(evaluation_time - lateness - rule.window, rule.hop) + rule.hop
    return EvaluationRange(earliest, evaluation_time)


def span_range(
    rule: Rule, first_tick: datetime, last_tick: datetime, schedule_interval: timedelta | None = None
) -> EvaluationRange:
    """One range covering every evaluation from ``first_tick`` to ``last_tick`` (backtests)."""
    return EvaluationRange(
        evaluation_range(rule, first_tick, schedule_interval).first_window_start, last_tick
    )


def _ts(moment: datetime) -> str:
    return f"from_iso8601_timestamp('{iso_z(moment)}')"


def _table(database: str, table: str) -> str:
    return f'"{database.replace(chr(34), "")}"."{table.replace(chr(34), "")}"'


def _aggregate_sql(rule: Rule) -> str:
    if rule.distinct_column:
        return f"count(DISTINCT {rule.distinct_column})"
    return rule.aggregate


def _row_conditions(rule: Rule, start: datetime, end: datetime) -> list[str]:
    conditions = [
        "measure_name = 'transaction'",
        f"time >= {_ts(start)}",
        f"time < {_ts(end)}",
        f"{rule.entity_column} IS NOT NULL",
    ]
    if rule.distinct_column:
        conditions.append(f"{rule.distinct_column} IS NOT NULL")
    if rule.filter:
        conditions.append(f"({rule.filter})")
    return conditions


def _window_start_sql(rule: Rule, phase: int) -> str:
    window = format_duration(rule.window)
    if phase == 0:
        return f"bin(time, {window})"
    shift = format_duration(rule.hop * phase)
    return f"bin(time - {shift}, {window}) + {shift}"


def _number_sql(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _threshold_sql(rule: Rule) -> str:
    return f"{rule.op} {_number_sql(rule.threshold)}"


def _grouped_sql(rule: Rule, database: str, table: str, span: EvaluationRange) -> str:
    aggregate = _aggregate_sql(rule)
    where = "\n  AND ".join(_row_conditions(rule, span.first_window_start, span.end))
    phases = round(rule.window / rule.hop)
    selects = []
    for phase in range(phases):
        window_start = _window_start_sql(rule, phase)
        selects.append(
            f"SELECT {rule.entity_column} AS entity_id, {window_start} AS window_start, "
            f"{aggregate} AS observed\n"
            f"FROM {_table(database, table)}\n"
            f"WHERE {where}\n"
            f"GROUP BY {rule.entity_column}, {window_start}\n"
            f"HAVING {aggregate} {_threshold_sql(rule)}"
        )
    if phases == 1:
        return selects[0]
    # Shifted phases also produce windows that started before the range: they would be
    # partial (their early events are outside the range), so they are left out.
    union = "\nUNION ALL\n".join(selects)
    return (
        f"SELECT entity_id, window_start, observed FROM (\n{union}\n) AS hits\n"
        f"WHERE window_start >= {_ts(span.first_window_start)}"
    )


def _spike_sql(rule: Rule, database: str, table: str, span: EvaluationRange) -> str:
    params = rule.params
    history_start = span.first_window_start - parse_duration(params["history"], rule.id)
    baseline = int(params["baseline_transactions"])
    column = rule.entity_column
    conditions = _row_conditions(rule, history_start, span.end)
    # Only entities with a candidate payment in range need a baseline: on Timestream this
    # keeps a scheduled run from reading the whole history of every account.
    candidates = " AND ".join(
        [
            *_row_conditions(rule, span.first_window_start, span.end),
            f"amount >= {_number_sql(params['min_amount'])}",
        ]
    )
    conditions.append(f"{column} IN (SELECT {column} FROM {_table(database, table)} WHERE {candidates})")
    where = "\n    AND ".join(conditions)
    frame = f"PARTITION BY {column} ORDER BY time, transaction_id ROWS BETWEEN {baseline} PRECEDING AND 1 PRECEDING"
    window = format_duration(rule.window)
    return (
        "WITH scored AS (\n"
        f"  SELECT {column} AS entity_id, time, amount,\n"
        f"    avg(amount) OVER ({frame}) AS baseline,\n"
        f"    count(*) OVER ({frame}) AS history\n"
        f"  FROM {_table(database, table)}\n"
        f"  WHERE {where}\n"
        ")\n"
        f"SELECT entity_id, bin(time, {window}) AS window_start, max(amount / baseline) AS observed\n"
        "FROM scored\n"
        f"WHERE time >= {_ts(span.first_window_start)}\n"
        f"  AND history >= {int(params['min_history'])}\n"
        f"  AND amount >= {_number_sql(params['min_amount'])}\n"
        "  AND baseline > 0\n"
        f"GROUP BY entity_id, bin(time, {window})\n"
        f"HAVING max(amount / baseline) {_threshold_sql(rule)}"
    )


def _pass_through_sql(rule: Rule, database: str, table: str, span: EvaluationRange) -> str:
    """Per account and window: the share of what it received by transfer that it sent on.

    ``moves`` holds each transaction twice over: as money sent by ``account_id`` (any
    channel: a transfer, or a purchase that cashes the money out) and, for transfers, as
    money received by ``counterparty_account_id``. Only accounts that received a transfer
    in range are read as senders, so a scheduled run does not read every account's spending.
    The share is capped at 1: spending more than was received is not passing more on.
    """
    table_sql = _table(database, table)
    received_rows = " AND ".join(
        [
            "measure_name = 'transaction'",
            f"time >= {_ts(span.first_window_start)}",
            f"time < {_ts(span.end)}",
            "counterparty_account_id IS NOT NULL",
        ]
    )
    sent_rows = " AND ".join(
        [
            *_row_conditions(rule, span.first_window_start, span.end),
            f"account_id IN (SELECT counterparty_account_id FROM {table_sql} WHERE {received_rows})",
        ]
    )
    moves = (
        "WITH moves AS (\n"
        f"  SELECT account_id AS entity_id, time, amount AS sent, 0.0 AS received\n"
        f"  FROM {table_sql}\n  WHERE {sent_rows}\n"
        "  UNION ALL\n"
        f"  SELECT counterparty_account_id AS entity_id, time, 0.0 AS sent, amount AS received\n"
        f"  FROM {table_sql}\n  WHERE {received_rows}\n"
        ")\n"
    )
    observed = "least(sum(sent), sum(received)) / sum(received)"
    minimum = _number_sql(rule.params["min_received"])
    selects = []
    for phase in range(round(rule.window / rule.hop)):
        window_start = _window_start_sql(rule, phase)
        selects.append(
            f"SELECT entity_id, {window_start} AS window_start, {observed} AS observed\n"
            "FROM moves\n"
            f"GROUP BY entity_id, {window_start}\n"
            f"HAVING sum(received) >= {minimum} AND {observed} {_threshold_sql(rule)}"
        )
    union = "\nUNION ALL\n".join(selects)
    # As for the other rules, windows that started before the range would be partial.
    return (
        f"{moves}SELECT entity_id, window_start, observed FROM (\n{union}\n) AS hits\n"
        f"WHERE window_start >= {_ts(span.first_window_start)}"
    )


def _signal_conditions(rule: Rule) -> list[str]:
    """Row conditions of a rule's signals over the columns ``_signals_sql`` computes.

    A ``new`` column is new when the account first used it no earlier than ``new_within``
    before the row, while the account itself had been active for at least ``established``
    before that first use (a brand-new account's identifiers are all "new": not a change).
    ``over_habit`` compares the amount with the average of the account's previous
    ``habit_transactions`` transactions, given at least ``min_history`` of them.
    """
    params = rule.params
    new_within = format_duration(parse_duration(params["new_within"], rule.id))
    established = format_duration(parse_duration(params["established"], rule.id))
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


def _signals_sql(rule: Rule, database: str, table: str, span: EvaluationRange) -> str:
    """Windows whose transactions meeting every signal of the rule add up to the threshold.

    The account's profile (first use of each identifier, amount habit) is read from its own
    history over ``params.history``, for the accounts with a candidate transaction in range
    only (at least ``min_amount``): a scheduled run never reads every account's history.
    """
    params = rule.params
    column = rule.entity_column
    table_sql = _table(database, table)
    history_start = span.first_window_start - parse_duration(params["history"], rule.id)
    minimum = _number_sql(params["min_amount"])
    candidates = " AND ".join(
        [*_row_conditions(rule, span.first_window_start, span.end), f"amount >= {minimum}"]
    )
    history = "\n    AND ".join(
        [
            "measure_name = 'transaction'",
            f"time >= {_ts(history_start)}",
            f"time < {_ts(span.end)}",
            f"{column} IN (SELECT {column} FROM {table_sql} WHERE {candidates})",
        ]
    )
    frame = (
        f"PARTITION BY {column} ORDER BY time, transaction_id "
        f"ROWS BETWEEN {int(params['habit_transactions'])} PRECEDING AND 1 PRECEDING"
    )
    new_within = format_duration(parse_duration(params["new_within"], rule.id))
    novelty = sorted({c for signal in rule.signals for c in signal.get("new", [])})
    firsts = "".join(f",\n    min(time) OVER (PARTITION BY {column}, {c}) AS first_{c}" for c in novelty)
    # The habit is made of the account's usual transactions only: those that meet the
    # rule's novelty signals (an intruder's first payments) must not raise the bar for the
    # next ones. The identifiers the account started with are its own, never new.
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
    usual = f"NOT ({' AND '.join(novel)})" if novel else "TRUE"
    aggregate = _aggregate_sql(rule)
    where = "\n  AND ".join(
        [
            f"time >= {_ts(span.first_window_start)}",
            f"amount >= {minimum}",
            *([f"({rule.filter})"] if rule.filter else []),
            *_signal_conditions(rule),
        ]
    )
    selects = []
    for phase in range(round(rule.window / rule.hop)):
        window_start = _window_start_sql(rule, phase)
        selects.append(
            f"SELECT {column} AS entity_id, {window_start} AS window_start, {aggregate} AS observed\n"
            f"FROM profiled\nWHERE {where}\n"
            f"GROUP BY {column}, {window_start}\n"
            f"HAVING {aggregate} {_threshold_sql(rule)}"
        )
    union = "\nUNION ALL\n".join(selects)
    return (
        "WITH firsts AS (\n"
        f"  SELECT *,\n    min(time) OVER (PARTITION BY {column}) AS first_use{firsts}\n"
        f"  FROM {table_sql}\n  WHERE {history}\n"
        "), profiled AS (\n"
        f"  SELECT *,\n    avg(CASE WHEN {usual} THEN amount END) OVER ({frame}) AS habit,\n"
        f"    count(CASE WHEN {usual} THEN amount END) OVER ({frame}) AS habit_transactions\n"
        "  FROM firsts\n"
        ")\n"
        f"SELECT entity_id, window_start, observed FROM (\n{union}\n) AS hits\n"
        f"WHERE window_start >= {_ts(span.first_window_start)}"
    )


def compile_range(rule: Rule, database: str, table: str, span: EvaluationRange) -> str:
    """The Timestream SQL returning the hits of ``rule`` in the windows of ``span``."""
    if rule.signals:
        return _signals_sql(rule, database, table, span)
    if rule.aggregate == "spike":
        return _spike_sql(rule, database, table, span)
    if rule.aggregate == "pass_through":
        return _pass_through_sql(rule, database, table, span)
    return _grouped_sql(rule, database, table, span)


def compile_rule(
    rule: Rule,
    database: str,
    table: str,
    evaluation_time: datetime,
    schedule_interval: timedelta | None = None,
) -> str:
    """The Timestream SQL of one scheduled evaluation of ``rule`` at ``evaluation_time``."""
    return compile_range(rule, database, table, evaluation_range(rule, evaluation_time, schedule_interval))
