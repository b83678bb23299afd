"""Evaluate the window rules once per span of data, with each scheduled run's flags exact.

A scheduled run at T evaluates every rule over the windows it can see (``evaluation_range``)
with the events before T. Re-querying every rule at every tick is most of the time a
local replay spends. This module gives, for a list of ticks whose data is all in the store,
the flags each run would have produced: the same flags, in the same order, with the same
``observed`` values and the same rule errors.

How, per rule:

- Plain aggregates (``count(*)``, ``count(distinct x)``, ``sum(amount)`` and ``max(amount)``
  with amounts >= 0, compared with ``>``/``>=``) only grow as a window fills. One query
  over the whole span gives the windows that hit with all their events (the candidates);
  a window no run can see as a candidate never hits at any run. A run that sees a candidate
  after the window closed sees all its events: the span's value. A run that sees it while
  it is still open sees the events up to the run: one probe query
  (:func:`fraudcore.timeseries.rule_sql.compile_window_probes`) answers every such (window, run) pair.
- ``spike`` does not only grow (a payment's baseline moves with the run's history start):
  a run can only hit in a window holding a payment of at least ``min_amount`` that it sees,
  so one probe per such (entity, window, run) (:func:`fraudcore.timeseries.rule_sql.compile_spike_probes`)
  answers exactly what the run's query answers for that window.
- ``pass_through`` (a share) does not only grow either: the rule's own per-run query runs,
  but only at the runs that can see a window in which some account had, with the events
  before the run, received at least ``min_received`` by transfer and sent at least the
  threshold's share of ``min_received``: a condition every hit needs (the share is
  ``least(sent, received) / received``), checked on every prefix of the window's events.
- A rule with ``signals`` (novelty and habit as of each transaction) does not only grow: its
  own per-run query runs, at the runs whose windows hold a transaction of at least its
  ``min_amount`` (none other can hit).
- The runs that send their own query send it as the scheduled run does; on DuckDB the
  queries of many runs go in one statement (each whole, as a branch of a ``UNION ALL``),
  which returns each query's own rows exactly.
- A rule whose span query fails runs at every tick as the scheduled path does, so its
  errors are reported run by run as they would be.
- A rule with ``every`` is evaluated as above at the runs its queries answer for, and each
  tick that queries it raises what its query finds for them
  (:func:`fraudcore.micro.answered_flags`), as the scheduled path does.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fraudcore.micro import Flag, answered_flags, dedupe_flags, flags_from_rows, parse_time, priority
from fraudcore.ports import TimeseriesStore
from fraudcore.rules import Rule, RuleError, parse_duration, rule_with
from fraudcore.timeseries.dialects import TIMESTREAM
from fraudcore.timeseries.rule_sql import (
    EvaluationRange,
    SpikeProbe,
    WindowProbe,
    cadence_runs,
    compile_range,
    compile_rule,
    compile_spike_probes,
    compile_window_probes,
    evaluation_range,
    floor_to,
    span_range,
)
from fraudcore.timeutil import iso_z

#: plain aggregates whose value never decreases as events are added to a window
GROWING_AGGREGATES = ("count(*)", "sum(amount)", "max(amount)")
#: relative slack on the sums a screen compares (they are added in another order than the query's)
_SUM_MARGIN = 1e-6
#: errors of this code itself, which the per-tick fallback must not absorb
PROGRAMMING_ERRORS = (ImportError, NameError, AttributeError, TypeError, AssertionError)
#: probes per query (the VALUES list is SQL text; very long texts parse slowly)
PROBES_PER_QUERY = 400
#: runs' own queries per statement (:meth:`SpanEvaluator._own_rows`)
OWN_QUERIES_PER_STATEMENT = 50
#: the share of the runs of a batched check (:meth:`SpanEvaluator._may_hit`) that hit above
#: which the runs after them send their query unchecked (a pass-through rule's runs, over a
#: day of mule activity, nearly all hit: the check would save a few of their queries)
HITTING_SHARE = 0.9
#: runs per batched screen query: each run reads its own history in it, so the query's
#: memory grows with the runs (400 runs of the demo's takeover rules: about 300 MB more)
RUNS_PER_QUERY = 50


def grows_with_events(rule: Rule) -> bool:
    """Whether a window that hits at some run also hits over all its events."""
    plain = rule.aggregate in GROWING_AGGREGATES or rule.distinct_column is not None
    # a rule with signals counts only what is new and far above the habit as of each row:
    # its windows can stop hitting as the account's history moves
    return plain and rule.op in (">", ">=") and not rule.signals


@dataclass
class RunFlags:
    """What one scheduled run evaluates: its flags (deduplicated, most urgent first) and errors."""

    flags: list[Flag] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


@dataclass
class SpanStatistics:
    """How much work the span took: queries run, and per-tick queries avoided."""

    span_queries: int = 0
    probe_queries: int = 0
    per_tick_queries: int = 0
    ticks: int = 0
    rules: int = 0

    def to_dict(self) -> dict[str, int]:
        return {
            "ticks": self.ticks,
            "rules": self.rules,
            "queries": self.span_queries + self.probe_queries + self.per_tick_queries,
            "queries_per_tick_mode": self.ticks * self.rules,
        }


class SpanEvaluator:
    """The flags of each scheduled run over a span of ticks, from a few queries per rule."""

    def __init__(
        self, store: TimeseriesStore, rules: Sequence[Rule], schedule_interval: timedelta | None
    ) -> None:
        self.store = store
        self.rules = [rule for rule in rules if rule.enabled]
        self.schedule_interval = schedule_interval
        self.statistics = SpanStatistics()

    def evaluate(self, ticks: Sequence[datetime]) -> dict[datetime, RunFlags]:
        """Each tick's run, given that every event before the last tick is in the store."""
        ticks = sorted(ticks)
        runs = {tick: RunFlags() for tick in ticks}
        if not ticks:
            return runs
        self.statistics.ticks += len(ticks)
        self.statistics.rules = len(self.rules)
        raw: dict[datetime, list[Flag]] = defaultdict(list)
        answered: dict[datetime, list[Flag]] = defaultdict(list)
        for rule in self.rules:
            try:
                cadenced = rule.runs_per_query(self.schedule_interval) > 1
            except RuleError as error:  # as evaluate_rules reports it, at every run
                for tick in ticks:
                    runs[tick].errors[rule.id] = str(error)
                continue
            if cadenced:
                self._cadenced(rule, ticks, runs, answered)
                continue
            for tick, outcome in self._rule_by_tick(rule, ticks).items():
                if isinstance(outcome, str):
                    runs[tick].errors[rule.id] = outcome
                else:
                    raw[tick].extend(outcome)
        for tick in ticks:
            runs[tick].flags = sorted(dedupe_flags(raw.get(tick, [])) + answered.get(tick, []), key=priority)
        return runs

    def _cadenced(
        self,
        rule: Rule,
        ticks: Sequence[datetime],
        runs: dict[datetime, RunFlags],
        answered: dict[datetime, list[Flag]],
    ) -> None:
        """A rule with ``every``: at each tick that queries it, what that query answers for the
        runs since the previous one (:func:`fraudcore.timeseries.rule_sql.cadence_runs`), each
        run evaluated as one without ``every`` is (some may precede the span: their events
        are in the store)."""
        queried = {tick: cadence_runs(rule, tick, self.schedule_interval) for tick in ticks}
        queried = {tick: answering for tick, answering in queried.items() if answering}
        if not queried:
            return
        every_run = rule_with(rule, every=None)
        outcomes = self._rule_by_tick(every_run, sorted({run for each in queried.values() for run in each}))
        for tick, answering in queried.items():
            found = []
            for run in answering:
                outcome = outcomes[run]
                if isinstance(outcome, str):
                    runs[tick].errors[rule.id] = outcome
                else:
                    found.append((run, outcome))
            answered[tick].extend(answered_flags(found, tick))

    # -- per rule -------------------------------------------------------------------------
    def _rule_by_tick(self, rule: Rule, ticks: Sequence[datetime]) -> dict[datetime, list[Flag] | str]:
        try:
            if grows_with_events(rule):
                return self._growing(rule, ticks)
            if rule.aggregate == "spike":
                return self._spike(rule, ticks)
            return self._own_queries(rule, ticks, self._screen(rule, ticks))
        except PROGRAMMING_ERRORS:
            raise  # a bug here, not a query the store refused: never hidden by the fallback
        except Exception:  # the scheduled path reports a failing rule run by run
            return self._screened(rule, ticks, list(ticks))

    def _growing(self, rule: Rule, ticks: Sequence[datetime]) -> dict[datetime, list[Flag] | str]:
        span = span_range(rule, ticks[0], ticks[-1], self.schedule_interval)
        self.statistics.span_queries += 1
        rows = self.store.query(compile_range(rule, self.store.database, self.store.table, span))
        candidates = sorted(
            (
                (parse_time(row["window_start"]), str(row["entity_id"]), float(row["observed"]))
                for row in rows
            ),
            key=lambda item: (item[0], item[1]),
        )
        starts = [start for start, _, _ in candidates]
        seen: dict[datetime, list[dict[str, Any]]] = {}
        requests: list[WindowProbe] = []
        for tick in ticks:
            low = bisect_left(starts, self._first_window_start(rule, tick))
            high = bisect_left(starts, tick)
            closed = seen.setdefault(tick, [])
            for start, entity, observed in candidates[low:high]:
                if start + rule.window <= tick:
                    closed.append({"entity_id": entity, "window_start": start, "observed": observed})
                else:
                    requests.append(WindowProbe(entity, start, tick))
        probes, same_as = self._unchanged_windows(rule, span, requests)
        answers: dict[WindowProbe, dict[str, Any]] = {}
        for offset in range(0, len(probes), PROBES_PER_QUERY):
            chunk = probes[offset : offset + PROBES_PER_QUERY]
            self.statistics.probe_queries += 1
            for row in self._probe(rule, chunk):
                moment = parse_time(row["evaluation_time"])
                answers[WindowProbe(str(row["entity_id"]), parse_time(row["window_start"]), moment)] = row
                seen[moment].append(row)
        for request, probe in same_as.items():
            answer = answers.get(probe)
            if answer is not None:  # the probe's window hit, with the rows this run sees
                seen[request.evaluation_time].append({**answer, "evaluation_time": request.evaluation_time})
        return {tick: flags_from_rows(rule, seen.get(tick, []), tick) for tick in ticks}

    def _unchanged_windows(
        self, rule: Rule, span: EvaluationRange, requests: Sequence[WindowProbe]
    ) -> tuple[list[WindowProbe], dict[WindowProbe, WindowProbe]]:
        """The probes to send for ``requests`` (each open window at each run that sees it, run
        by run), and the requests an earlier probe of the same window answers: no row the
        probe counts (the entity's, with the rule's filter and its distinct column set) arrived
        between that probe's run and theirs, so their run counts the same rows, and the probe's
        answer is theirs. A window whose entity is quiet is then probed once, not at every run.
        """
        if not requests:
            return [], {}
        column = rule.entity_column
        entities = sorted({request.entity_id for request in requests})
        present = [f"{column} IS NOT NULL"]
        if rule.distinct_column:
            present.append(f"{rule.distinct_column} IS NOT NULL")
        times: dict[str, list[datetime]] = defaultdict(list)
        for offset in range(0, len(entities), PROBES_PER_QUERY):
            listed = ", ".join(
                "'" + entity.replace("'", "''") + "'"
                for entity in entities[offset : offset + PROBES_PER_QUERY]
            )
            self.statistics.span_queries += 1
            rows = self._read(
                self._select_sql(
                    rule,
                    f"time, {column} AS entity_id",
                    span.first_window_start,
                    span.end,
                    [*present, f"{column} IN ({listed})"],
                )
            )
            for row in rows:
                times[str(row["entity_id"])].append(parse_time(row["time"]))
        for moments in times.values():
            moments.sort()
        probes: list[WindowProbe] = []
        same_as: dict[WindowProbe, WindowProbe] = {}
        last: dict[tuple[str, datetime], WindowProbe] = {}
        for request in requests:
            key = (request.entity_id, request.window_start)
            probe = last.get(key)
            moments = times.get(request.entity_id, [])
            if probe is not None and bisect_left(moments, probe.evaluation_time) == bisect_left(
                moments, request.evaluation_time
            ):
                same_as[request] = probe
                continue
            probes.append(request)
            last[key] = request
        return probes, same_as

    def _spike(self, rule: Rule, ticks: Sequence[datetime]) -> dict[datetime, list[Flag] | str]:
        """Each run's spike hits, from the windows holding a payment of at least ``min_amount``.

        A run can only hit in such a window, with such a payment it can see (after its first
        window start, before the run): one probe per (entity, window, run) answers exactly
        what that run's query answers for the window.
        """
        span = span_range(rule, ticks[0], ticks[-1], self.schedule_interval)
        self.statistics.span_queries += 1
        payments = self.store.query(
            _select_rows(
                rule,
                self.store,
                f"time, {rule.entity_column} AS entity_id",
                span.first_window_start,
                span.end,
                [f"amount >= {float(rule.params['min_amount'])!r}", f"{rule.entity_column} IS NOT NULL"],
            )
        )
        moments = sorted((parse_time(row["time"]), str(row["entity_id"])) for row in payments)
        times = [moment for moment, _ in moments]
        probes: dict[tuple[str, datetime, datetime], SpikeProbe] = {}
        for tick in ticks:
            first = self._first_window_start(rule, tick)
            for moment, entity in moments[bisect_left(times, first) : bisect_left(times, tick)]:
                window_start = floor_to(moment, rule.window)
                probes.setdefault((entity, window_start, tick), SpikeProbe(entity, window_start, tick, first))
        seen: dict[datetime, list[dict[str, Any]]] = defaultdict(list)
        listed = list(probes.values())
        for offset in range(0, len(listed), PROBES_PER_QUERY):
            self.statistics.probe_queries += 1
            for row in self._probe(rule, listed[offset : offset + PROBES_PER_QUERY]):
                seen[parse_time(row["evaluation_time"])].append(row)
        return {tick: flags_from_rows(rule, seen.get(tick, []), tick) for tick in ticks}

    def _probe(self, rule: Rule, probes: list[Any]) -> list[dict[str, Any]]:
        """The probe query's rows; on DuckDB its list of probes skips the SQL translator.

        Translating a long list of literal rows costs milliseconds per row, and only the rows
        differ from one probe query to the next: the query is translated with one
        placeholder row (once per rule), and the rows are written in DuckDB's own literals.
        """
        spike = rule.aggregate == "spike"
        compile_probes = compile_spike_probes if spike else compile_window_probes
        database, table = self.store.database, self.store.table
        native = getattr(self.store, "query_duckdb", None)
        if native is None:
            return self.store.query(compile_probes(rule, database, table, probes))
        from fraudlocal.adapters.timestream_sql import to_duckdb

        dummy = _SPIKE_PLACEHOLDER if spike else _PLACEHOLDER
        template = to_duckdb(compile_probes(rule, database, table, [dummy]))
        placeholder = _duckdb_row(dummy)
        if template.count(placeholder) != 1:
            return self.store.query(compile_probes(rule, database, table, probes))
        return native(template.replace(placeholder, ", ".join(_duckdb_row(probe) for probe in probes)))

    def _own_queries(
        self, rule: Rule, ticks: Sequence[datetime], needed: Sequence[datetime]
    ) -> dict[datetime, list[Flag] | str]:
        """The rule's own query at each needed run that can hit, as the scheduled run sends it.

        The first needed run always sends its query, so a query the store refuses (a column
        no record has used) is refused here and the caller reports it at every run, as the
        scheduled path does; the others send theirs only where one batched query of the
        relaxed rule (:meth:`_may_hit`) finds a hit.
        """
        outcome: dict[datetime, list[Flag] | str] = {tick: [] for tick in ticks}
        if not needed:
            return outcome
        first, *rest = needed
        sql = compile_rule(rule, self.store.database, self.store.table, first, self.schedule_interval)
        self.statistics.per_tick_queries += 1
        outcome[first] = flags_from_rows(rule, self.store.query(sql), first)
        for tick, rows in self._own_rows(rule, self._may_hit(rule, rest)).items():
            outcome[tick] = flags_from_rows(rule, rows, tick)
        return outcome

    def _own_rows(self, rule: Rule, ticks: Sequence[datetime]) -> dict[datetime, list[dict[str, Any]]]:
        """The rows of the rule's own query at each of ``ticks``, as the scheduled run sends it.

        On DuckDB the queries of up to :data:`OWN_QUERIES_PER_STATEMENT` runs go in one
        statement, each run's query whole as a branch of a ``UNION ALL`` (tagged with the
        run's index): every branch is planned and aggregated on its own, over the rows its
        query alone reads, in the same order, so it returns exactly that query's rows (sums
        to the last bit), for one statement's parsing, planning and round trip instead of
        one per run. The caller has sent the rule's query once already: a column no record
        has used would have been refused there.
        """
        found: dict[datetime, list[dict[str, Any]]] = {tick: [] for tick in ticks}
        database, table = self.store.database, self.store.table
        native = getattr(self.store, "query_duckdb", None)
        if native is None:
            for tick in ticks:
                self.statistics.per_tick_queries += 1
                found[tick] = self.store.query(
                    compile_rule(rule, database, table, tick, self.schedule_interval)
                )
            return found
        from fraudlocal.adapters.timestream_sql import to_duckdb

        for offset in range(0, len(ticks), OWN_QUERIES_PER_STATEMENT):
            chunk = ticks[offset : offset + OWN_QUERIES_PER_STATEMENT]
            branches = [
                f"SELECT {index} AS span_run, * FROM (\n"
                + to_duckdb(compile_rule(rule, database, table, tick, self.schedule_interval))
                + "\n) AS own_query"
                for index, tick in enumerate(chunk)
            ]
            self.statistics.per_tick_queries += len(chunk)
            for row in native("\nUNION ALL\n".join(branches)):
                found[chunk[row.pop("span_run")]].append(row)
        return found

    def _may_hit(self, rule: Rule, ticks: Sequence[datetime]) -> list[datetime]:
        """The runs among ``ticks`` whose query can return a hit, from one query for many runs.

        The rule's own per-run query, written once with its time bounds read from a row of
        runs (a lateral join: every run gets its own history, first uses, habits and
        windows, exactly as alone), for a *relaxed* rule: its threshold (and
        ``min_received``, the ``over_habit`` factors) a millionth of a percent easier. A
        run's aggregates come out of another order of floating-point additions than its
        own query's, so they may differ in the last bits; relaxed, every run whose own
        query hits is still found (the rows it counts are among the relaxed rule's, and
        amounts are not negative). The runs found then send their own query, which gives
        the flags. Where the batched query cannot be written (another engine, bounds the
        template cannot carry), every run is kept, and so is every run after a batch that
        finds nearly all its runs hitting (:data:`HITTING_SHARE`).
        """
        native = getattr(self.store, "query_duckdb", None)
        if native is None or not ticks:
            return list(ticks)
        relaxed = _relaxed(rule)
        template = _lateral_template(relaxed, self.store, ticks[0], self.schedule_interval)
        if template is None or template != _lateral_template(
            relaxed, self.store, ticks[-1], self.schedule_interval
        ):
            return list(ticks)
        names = list(_run_bounds(rule, ticks[0], self.schedule_interval))
        hits: set[datetime] = set()
        for offset in range(0, len(ticks), RUNS_PER_QUERY):
            chunk = ticks[offset : offset + RUNS_PER_QUERY]
            rows = ", ".join(
                "("
                + ", ".join(
                    _duckdb_time(value) for value in _run_bounds(rule, tick, self.schedule_interval).values()
                )
                + ")"
                for tick in chunk
            )
            self.statistics.probe_queries += 1
            found = native(
                f"SELECT DISTINCT span_run.run FROM (VALUES {rows}) AS span_run ({', '.join(names)}), "
                f"LATERAL ({template}) AS span_hits"
            )
            hits.update(parse_time(row["run"]) for row in found)
            rest = ticks[offset + len(chunk) :]
            if rest and len(found) >= HITTING_SHARE * len(chunk):
                # nearly every run hits: the check costs more than the few queries it saves
                return [tick for tick in ticks[: offset + len(chunk)] if tick in hits] + list(rest)
        return [tick for tick in ticks if tick in hits]

    def _screened(
        self, rule: Rule, ticks: Sequence[datetime], needed: Iterable[datetime]
    ) -> dict[datetime, list[Flag] | str]:
        outcome: dict[datetime, list[Flag] | str] = {tick: [] for tick in ticks}
        for tick in needed:
            sql = compile_rule(rule, self.store.database, self.store.table, tick, self.schedule_interval)
            self.statistics.per_tick_queries += 1
            try:
                rows = self.store.query(sql)
            except Exception as error:  # as evaluate_rules reports it
                outcome[tick] = f"{type(error).__name__}: {error}"
                continue
            outcome[tick] = flags_from_rows(rule, rows, tick)
        return outcome

    # -- screens: a condition every hit needs, checked over the span -------------------------
    def _screen(self, rule: Rule, ticks: Sequence[datetime]) -> list[datetime]:
        span = span_range(rule, ticks[0], ticks[-1], self.schedule_interval)
        if rule.aggregate == "pass_through":
            return self._ticks_seeing(
                rule, ticks, self._passing_windows(rule, span.first_window_start, span.end)
            )
        if rule.signals and rule.aggregate in GROWING_AGGREGATES and rule.op in (">", ">="):
            return self._ticks_seeing(
                rule, ticks, self._filling_windows(rule, span.first_window_start, span.end)
            )
        if rule.signals:
            # a run hits only with a transaction of at least min_amount in its windows
            self.statistics.span_queries += 1
            minimum = float(rule.params["min_amount"])
            rows = self.store.query(
                _select_rows(
                    rule, self.store, "time", span.first_window_start, span.end, [f"amount >= {minimum}"]
                )
            )
            times = sorted(parse_time(row["time"]) for row in rows)
            return [
                tick
                for tick in ticks
                if bisect_left(times, tick) > bisect_left(times, self._first_window_start(rule, tick))
            ]
        return list(ticks)

    def _ticks_seeing(
        self, rule: Rule, ticks: Sequence[datetime], windows: dict[datetime, datetime]
    ) -> list[datetime]:
        """The ticks that can see one of ``windows`` (window start -> the earliest moment it
        could hit): a window that started in the tick's range, with that moment before the tick."""
        passing = sorted(windows.items())
        starts = [window_start for window_start, _ in passing]
        # earliest_from[i]: the earliest moment any window from the i-th start on could hit
        earliest_from: list[datetime] = [datetime.max.replace(tzinfo=UTC)] * (len(passing) + 1)
        for index in range(len(passing) - 1, -1, -1):
            earliest_from[index] = min(passing[index][1], earliest_from[index + 1])
        return [
            tick
            for tick in ticks
            if earliest_from[bisect_left(starts, self._first_window_start(rule, tick))] < tick
        ]

    def _filling_windows(self, rule: Rule, start: datetime, end: datetime) -> dict[datetime, datetime]:
        """Per window start, the first event time at which some entity's transactions that may
        count (:meth:`_may_count`: at least ``min_amount``, the rule's filter applied, and
        able to meet its signals) in that window reached the threshold: a run before that
        moment cannot see the window hit.

        The rows a rule with signals aggregates are some of these (those meeting every
        signal as of their time), and its aggregate only grows with rows, so their aggregate
        is at most this one. Sums get a margin for the order floating-point additions are
        done in.
        """
        self.statistics.span_queries += 1
        minimum = float(rule.params["min_amount"])
        column = rule.entity_column
        novelty = _novelty_columns(rule)
        candidates = [f"amount >= {minimum}", f"{column} IS NOT NULL"]
        rows = self._read(
            self._select_sql(
                rule,
                ", ".join([f"time, {column} AS entity_id, amount", *novelty]),
                start,
                end,
                candidates,
            )
        )
        may_count = self._may_count(rule, start, end, candidates)
        threshold = float(rule.threshold)
        need = threshold - _SUM_MARGIN * abs(threshold)
        phases = round(rule.window / rule.hop)
        totals: dict[tuple[str, datetime], float] = defaultdict(float)
        filling: dict[datetime, datetime] = {}
        moves = sorted(
            (
                (moment, entity, float(row["amount"]))
                for row in rows
                for moment, entity in [(parse_time(row["time"]), str(row["entity_id"]))]
                if may_count(row, moment, entity)
            ),
            key=lambda move: move[0],
        )
        for moment, entity, amount in moves:
            for phase in range(phases):
                shift = rule.hop * phase
                window_start = floor_to(moment - shift, rule.window) + shift
                key = (entity, window_start)
                if rule.aggregate == "sum(amount)":
                    totals[key] += amount
                elif rule.aggregate == "count(*)":
                    totals[key] += 1
                else:  # max(amount)
                    totals[key] = max(totals[key], amount)
                if window_start not in filling and totals[key] >= need:
                    filling[window_start] = moment
        return filling

    def _may_count(
        self, rule: Rule, start: datetime, end: datetime, candidates: list[str]
    ) -> Callable[[dict[str, Any], datetime, str], bool]:
        """Whether a transaction in [start, end) can be counted by some run of a rule with
        signals, from what every such run's profile of its entity needs (a necessary
        condition, true for all the rows a run counts, whatever its history start):

        - ``habit_transactions >= min_history``: the entity has at least ``min_history``
          transactions before it;
        - each ``new`` signal, for one of its columns: the value is set, and the entity did
          not use it within ``[time - history, time - new_within)`` (the run's history
          starts ``history`` before its first window start, at or before ``time - history``:
          a use there would be its first use, earlier than ``new_within`` before the row), and
          the entity had a transaction at least ``established`` before the row (its first
          use in the run's history is at least that long before the value's first use, which
          is not after the row).

        Read from every transaction of the entities with a candidate row in [start, end)
        (``candidates``: its conditions), from ``history`` before ``start`` (the earliest
        history start of the runs) to ``end``.
        """
        history = parse_duration(rule.params["history"], rule.id)
        new_within = parse_duration(rule.params["new_within"], rule.id)
        established = parse_duration(rule.params["established"], rule.id)
        min_history = int(rule.params["min_history"])
        column = rule.entity_column
        novelty = _novelty_columns(rule)
        self.statistics.span_queries += 1
        rows = self._read(
            self._select_sql(
                rule,
                ", ".join([f"time, {column} AS entity_id", *novelty]),
                start - history,
                end,
                [f"{column} IN ({self._select_sql(rule, column, start, end, candidates)})"],
                with_rule_conditions=False,
            )
        )
        activity: dict[str, list[datetime]] = defaultdict(list)
        uses: dict[tuple[str, str, str], list[datetime]] = defaultdict(list)
        for row in rows:
            moment, entity = parse_time(row["time"]), str(row["entity_id"])
            activity[entity].append(moment)
            for name in novelty:
                if row[name] is not None:
                    uses[(name, entity, str(row[name]))].append(moment)
        for times in (*activity.values(), *uses.values()):
            times.sort()

        def unused(name: str, entity: str, value: Any, moment: datetime) -> bool:
            if value is None:
                return False
            times = uses.get((name, entity, str(value)), [])
            return bisect_left(times, moment - history) == bisect_left(times, moment - new_within)

        def may_count(row: dict[str, Any], moment: datetime, entity: str) -> bool:
            times = activity.get(entity)
            if not times:
                return True  # the row itself is among them: never reached, never a reason to drop it
            if times[0] > moment - established or bisect_right(times, moment) - 1 < min_history:
                return False
            return all(
                any(unused(name, entity, row[name], moment) for name in signal["new"])
                for signal in rule.signals
                if "new" in signal
            )

        return may_count

    def _passing_windows(self, rule: Rule, start: datetime, end: datetime) -> dict[datetime, datetime]:
        """Per window start, the first event time at which some account in that window had
        received at least ``min_received`` by transfer and sent at least the threshold's share
        of it: a run before that moment cannot see the window hit.

        Sums over all rows in range (the rule's filters and the query's reading of only
        receiving accounts as senders can only make its sums smaller), with a margin for the
        order floating-point additions are done in. One query: each account's running sums
        per window, in time order (the sums at a row hold every row before it, and those at
        the last row of a time every row up to it: the first time they pass is the same
        whichever order rows of one time come in).
        """
        self.statistics.span_queries += 1
        minimum = float(rule.params["min_received"])
        need_received = minimum - _SUM_MARGIN * abs(minimum)
        need_sent = max(0.0, min(float(rule.threshold), 1.0)) * minimum - _SUM_MARGIN * abs(minimum)
        moves = [
            _select_rows(
                rule,
                self.store,
                f"{account} AS account, time, {sent} AS sent, {received} AS received",
                start,
                end,
                [f"{account} IS NOT NULL"],
                with_rule_conditions=False,
            )
            for account, sent, received in (
                ("account_id", "amount", "0.0"),
                ("counterparty_account_id", "0.0", "amount"),
            )
        ]
        phases = round(rule.window / rule.hop)
        starts = " ".join(
            f"WHEN {phase} THEN {TIMESTREAM.window_start(rule.window, rule.hop * phase)}"
            for phase in range(phases)
        )
        frame = "PARTITION BY account, window_start ORDER BY time ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
        rows = self.store.query(
            f"WITH moves AS (\n{moves[0]}\nUNION ALL\n{moves[1]}\n), phased AS (\n"
            f"SELECT account, time, sent, received, CASE phases.phase {starts} END AS window_start\n"
            f"FROM moves CROSS JOIN {TIMESTREAM.numbers('phases', 'phase', phases)}\n), running AS (\n"
            f"SELECT window_start, time, sum(received) OVER ({frame}) AS received,\n"
            f"  sum(sent) OVER ({frame}) AS sent\nFROM phased\n)\n"
            "SELECT window_start, min(time) AS moment FROM running\n"
            f"WHERE received >= {need_received!r} AND sent >= {need_sent!r}\nGROUP BY window_start"
        )
        return {parse_time(row["window_start"]): parse_time(row["moment"]) for row in rows}

    def _read(self, sql: str) -> list[dict[str, Any]]:
        """The rows of a :meth:`_select_sql` text; on DuckDB in its own SQL, as the probes are:
        the screens' texts differ from rule to rule, and translating each costs more than it reads.

        For the reads of the novelty screen and of the probed windows' rows only: DuckDB's
        table has every column, so a column no record has used is not refused here (the
        rule's own queries and span query refuse it, as the scheduled path does)."""
        native = getattr(self.store, "query_duckdb", None)
        return self.store.query(sql) if native is None else native(sql)

    def _select_sql(
        self,
        rule: Rule,
        columns: str,
        start: datetime,
        end: datetime,
        extra: list[str],
        *,
        with_rule_conditions: bool = True,
    ) -> str:
        native = getattr(self.store, "query_duckdb", None) is not None
        return _select_rows(
            rule,
            self.store,
            columns,
            start,
            end,
            extra,
            with_rule_conditions=with_rule_conditions,
            time=_duckdb_time if native else _timestream_time,
        )

    def _first_window_start(self, rule: Rule, tick: datetime) -> datetime:
        return evaluation_range(rule, tick, self.schedule_interval).first_window_start


_PLACEHOLDER = WindowProbe(
    "probe-placeholder", datetime(2000, 1, 1, tzinfo=UTC), datetime(2000, 1, 2, tzinfo=UTC)
)
_SPIKE_PLACEHOLDER = SpikeProbe(
    "probe-placeholder",
    datetime(2000, 1, 1, tzinfo=UTC),
    datetime(2000, 1, 2, tzinfo=UTC),
    datetime(2000, 1, 3, tzinfo=UTC),
)


def _novelty_columns(rule: Rule) -> list[str]:
    """The columns the ``new`` signals of a rule watch."""
    return sorted({name for signal in rule.signals for name in signal.get("new", [])})


def _timestream_time(value: datetime) -> str:
    return f"from_iso8601_timestamp('{iso_z(value)}')"


def _duckdb_time(value: datetime) -> str:
    """A time as the translator writes a timestamp literal (naive UTC)."""
    return f"CAST('{value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=' ')}' AS TIMESTAMP)"


def _duckdb_row(probe: WindowProbe | SpikeProbe) -> str:
    """A probe as the translator writes a VALUES row: text, then naive UTC timestamps."""
    entity = probe.entity_id.replace("'", "''")
    times = [probe.window_start, probe.evaluation_time]
    if isinstance(probe, SpikeProbe):
        times.append(probe.first_window_start)
    return f"('{entity}', " + ", ".join(_duckdb_time(value) for value in times) + ")"


#: how much easier the relaxed rule of a batched screen is (relative): far above the last
#: bits floating-point additions in another order change, far below any real difference
_RELAXATION = 1e-9


def _relaxed(rule: Rule) -> Rule:
    """The rule with its threshold, ``min_received`` and ``over_habit`` factors a little easier."""
    params = dict(rule.params)
    if "min_received" in params:
        params["min_received"] = float(params["min_received"]) * (1 - _RELAXATION)
    signals = tuple(
        {**signal, "over_habit": float(signal["over_habit"]) * (1 - _RELAXATION)}
        if "over_habit" in signal
        else signal
        for signal in rule.signals
    )
    threshold = float(rule.threshold)
    return rule_with(
        rule, threshold=threshold - _RELAXATION * max(abs(threshold), 1.0), params=params, signals=signals
    )


def _run_bounds(rule: Rule, tick: datetime, schedule_interval: timedelta | None) -> dict[str, datetime]:
    """The times a run's query is bounded by (the first column is the run itself)."""
    span = evaluation_range(rule, tick, schedule_interval)
    bounds = {"run": tick, "first_window_start": span.first_window_start, "range_end": span.end}
    if span.last_window_start is not None:
        bounds["last_window_start"] = span.last_window_start
    if "history" in rule.params:
        bounds["history_start"] = span.first_window_start - parse_duration(rule.params["history"], rule.id)
    return bounds


def _lateral_template(
    rule: Rule, store: TimeseriesStore, tick: datetime, schedule_interval: timedelta | None
) -> str | None:
    """The DuckDB SQL of the rule's query at ``tick`` with its time bounds read from ``span_run``.

    None when the bounds cannot be told apart in the SQL (two equal, or one missing).
    """
    from fraudlocal.adapters.timestream_sql import to_duckdb

    bounds = _run_bounds(rule, tick, schedule_interval)
    del bounds["run"]
    literals = {_duckdb_time(value): name for name, value in bounds.items()}
    if len(literals) != len(bounds):
        return None
    sql = to_duckdb(compile_rule(rule, store.database, store.table, tick, schedule_interval))
    for literal, name in literals.items():
        if literal not in sql:
            return None
        sql = sql.replace(literal, f"span_run.{name}")
    return sql


def _select_rows(
    rule: Rule,
    store: TimeseriesStore,
    columns: str,
    start: datetime,
    end: datetime,
    extra: list[str],
    *,
    with_rule_conditions: bool = True,
    time: Callable[[datetime], str] | None = None,
) -> str:
    """Timestream SQL reading ``columns`` of the transactions in [start, end) (DuckDB SQL when
    ``time`` writes DuckDB time literals: the rest of the text is the same in both)."""
    time = time or _timestream_time
    conditions = [
        "measure_name = 'transaction'",
        f"time >= {time(start)}",
        f"time < {time(end)}",
        *extra,
    ]
    if with_rule_conditions and rule.filter:
        conditions.append(f"({rule.filter})")
    return f'SELECT {columns} FROM "{store.database}"."{store.table}" WHERE ' + " AND ".join(conditions)
