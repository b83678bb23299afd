"""Micro-analysis: evaluate the window rules, turn hits into flags, start investigations.

Each flag starts one investigation whose execution name is derived from (rule, entity,
cooldown period of the window), so however many scheduled runs see a hit, and however
often a run is retried or replayed, the entity is investigated once per period.

A rule with ``relook_after`` has each hit looked at again that long after its window
closed (:func:`relooks_due`): the run that is due finds the hits again with the query of
the run ``relook_after`` earlier, and starts each as a re-look under its own name
(``-relook``), which may lower a verdict that rested on an absence
(:mod:`fraudcore.investigation.case`).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from .contracts import Flag
from .execution_names import (
    RECHECK_SUFFIX,
    RELOOK_SUFFIX,
    count_step_suffix,
    execution_name,
    has_count_step,
    with_count_step,
)
from .ports import InvestigationStarter, TimeseriesStore
from .rules import (
    Rule,
    RuleError,
    enabled_rules,
    format_duration,
    load_rules_keeping_last_good,
    parse_duration,
)
from .timeseries import MissingColumnError
from .timeseries.dialects import dialect_of
from .timeseries.rule_sql import (
    Lane,
    cadence_lanes,
    compile_lanes,
    compile_range,
    floor_to,
    history_groups,
)
from .timeutil import iso_z, parse_utc

_SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}


@dataclass
class MicroResult:
    evaluation_time: datetime
    flags: list[Flag] = field(default_factory=list)
    started: int = 0
    duplicates: int = 0
    capped: int = 0
    rule_errors: dict[str, str] = field(default_factory=dict)
    #: rules not evaluated because a column they read does not exist yet, with the reason
    rules_skipped: dict[str, str] = field(default_factory=dict)
    #: rows of a rule's result that could not become a flag (a non-finite observed value...)
    skipped_rows: list[str] = field(default_factory=list)
    #: execution name -> why StartExecution failed; the flag is seen again by the next run,
    #: and its name is the same, so it is started then (never twice)
    start_failures: dict[str, str] = field(default_factory=dict)
    #: rule id -> why its override was refused (the rule kept its last good definition)
    override_errors: dict[str, str] = field(default_factory=dict)
    #: hits looked at again now (rules with ``relook_after``), and how many of those started
    relooks: list[Flag] = field(default_factory=list)
    relooks_started: int = 0

    def to_response(self) -> dict[str, Any]:
        response: dict[str, Any] = {
            "evaluation_time": iso_z(self.evaluation_time),
            "flags": [flag.to_dict() for flag in self.flags],
            "started": self.started,
            "duplicates": self.duplicates,
            "capped": self.capped,
        }
        if self.rule_errors:
            response["rule_errors"] = self.rule_errors
        if self.rules_skipped:
            response["rules_skipped"] = self.rules_skipped
        if self.skipped_rows:
            response["skipped_rows"] = self.skipped_rows
        if self.start_failures:
            response["start_failures"] = self.start_failures
        if self.override_errors:
            response["override_errors"] = self.override_errors
        if self.relooks:
            response["relooks"] = [flag.to_dict() for flag in self.relooks]
            response["relooks_started"] = self.relooks_started
        return response


def growth_suffix(rule: Rule, observed: float) -> str:
    """``-n<step>`` for rules that recheck on close, else nothing.

    Their hits count accounts on one identifier: a count that grows after an investigation
    (an account joining the ring late) past the next of ``execution_names.GROWTH_STEPS`` is a new
    execution name, so it is investigated again; a count within the same step derives the
    same name, so it never is twice (and a family card that two, then three people use in
    turn is not investigated at every window).
    """
    return count_step_suffix(observed) if rule.recheck_on_close else ""


def parse_time(value: Any) -> datetime:
    """A time from an event or a query row (datetime, ISO text, Timestream text, epoch ms)."""
    return parse_utc(value)


def flags_from_rows(
    rule: Rule,
    rows: Iterable[Mapping[str, Any]],
    evaluation_time: datetime,
    skipped: list[str] | None = None,
) -> list[Flag]:
    """The flags of one rule's query result (rows of entity_id, window_start, observed).

    A row that cannot become a flag (a missing column, a time out of range, an observed
    value that is not a finite number) is skipped with its reason appended to ``skipped``;
    the other rows are not affected.
    """
    flags = []
    for row in rows:
        try:
            flag = _flag_from_row(rule, row, evaluation_time)
        except (KeyError, TypeError, ValueError, OverflowError) as error:
            if skipped is not None:
                skipped.append(f"{rule.id}: row skipped: {type(error).__name__}: {error}")
            continue
        if flag is not None:
            flags.append(flag)
    return flags


def _flag_from_row(rule: Rule, row: Mapping[str, Any], evaluation_time: datetime) -> Flag | None:
    window_start = parse_time(row["window_start"])
    window_end = window_start + rule.window
    observed = float(row["observed"])
    if not math.isfinite(observed):
        raise ValueError(f"observed value {observed} for {row.get('entity_id')!r} is not finite")
    if not rule.hits(observed):  # the query already filtered; this guards other adapters
        return None
    entity_id = str(row["entity_id"])
    period = floor_to(window_start, rule.cooldown)
    grown = growth_suffix(rule, observed)
    # Every event before the evaluation time is in: a window ended by then is complete.
    closed = window_end <= evaluation_time
    if rule.wait_for_close and not closed:
        return None  # judged on the whole window, once it has closed
    return Flag(
        rule=rule.id,
        entity_type=rule.entity,
        entity_id=entity_id,
        window_start=iso_z(window_start),
        window_end=iso_z(window_end),
        observed=round(observed, 6),
        threshold=rule.threshold,
        severity=rule.severity,
        description=rule.describe(
            entity_type=rule.entity,
            entity_id=entity_id,
            observed=observed,
            threshold=rule.threshold,
            window=format_duration(rule.window),
            window_start=iso_z(window_start),
            window_end=iso_z(window_end),
        ),
        execution_name=execution_name(rule.id, rule.entity, entity_id, period, grown),
        evaluation_time=iso_z(evaluation_time),
        recheck_execution_name=(
            execution_name(rule.id, rule.entity, entity_id, period, grown + RECHECK_SUFFIX)
            if rule.recheck_on_close and closed
            else None
        ),
    )


def dedupe_flags(flags: Iterable[Flag], grow: bool = True) -> list[Flag]:
    """One flag per burst and per execution name, most urgent first.

    Overlapping windows of one rule and entity (hop < window) see the same activity: they
    are merged into the earliest window, which says when the activity began and which the
    following runs see too, so they derive the same execution name. Flags that still share
    a name (later windows of one cooldown period) keep the earliest window. A cluster of
    a rule that names its executions by the observed count (``-n3``) takes the largest
    count of its windows: a late joiner seen by a later overlapping window grows the count.
    With ``grow=False`` (flags already named by the runs that raised them, gathered over
    many runs) the names are kept as they are.
    """
    by_entity: dict[tuple[str, str], list[Flag]] = {}
    for flag in flags:
        by_entity.setdefault((flag.rule, flag.entity_id), []).append(flag)
    best: dict[str, Flag] = {}
    for group in by_entity.values():
        group.sort(key=lambda flag: (flag.window_start, -flag.observed))
        clusters: list[list[Flag]] = []
        cluster_end = ""
        for flag in group:
            if clusters and flag.window_start < cluster_end:  # ISO texts in UTC compare in time order
                cluster_end = max(cluster_end, flag.window_end)
                clusters[-1].append(flag)
                continue
            cluster_end = flag.window_end
            clusters.append([flag])
        for cluster in clusters:
            first = cluster[0]
            if grow and has_count_step(first.execution_name):
                largest = max(cluster, key=lambda flag: flag.observed)
                first = _with_count(first, largest.observed)
            best.setdefault(first.execution_name, first)
    return sorted(best.values(), key=priority)


def _with_count(flag: Flag, observed: float) -> Flag:
    """The flag named (and described) by a larger count of its cluster."""
    if observed <= flag.observed:
        return flag
    return flag.model_copy(
        update={
            "observed": observed,
            "execution_name": with_count_step(flag.execution_name, observed),
            "recheck_execution_name": (
                with_count_step(flag.recheck_execution_name, observed)
                if flag.recheck_execution_name
                else None
            ),
        }
    )


def priority(flag: Flag) -> tuple[Any, ...]:
    """Most severe first, then the furthest over its threshold: the order the cap keeps."""
    ratio = flag.observed / flag.threshold if flag.threshold else float("inf")
    return (_SEVERITY_ORDER.get(flag.severity, 9), -ratio, flag.execution_name)


def evaluate_rules(
    store: TimeseriesStore,
    rules: Sequence[Rule],
    evaluation_time: datetime,
    schedule_interval: timedelta | None = None,
    skipped: dict[str, str] | None = None,
    skipped_rows: list[str] | None = None,
) -> tuple[list[Flag], dict[str, str]]:
    """Run every enabled rule once at ``evaluation_time``; a failing rule does not stop the others.

    A rule that reads a column no record has used yet (a producer that never sends cards,
    say) cannot match anything: it is left out, with the reason, in ``skipped``. A result row
    that cannot become a flag (a non-finite observed value...) is named in ``skipped_rows``.
    Rules reading the history of the same entity are evaluated by one query
    (:func:`fraudcore.timeseries.rule_sql.compile_history_lanes`: the history is read once);
    when that query fails, each of them runs its own, so errors and skips stay per rule. A
    rule with ``every`` is queried only at some runs, each query answering for the runs
    skipped since the previous one (:func:`fraudcore.timeseries.rule_sql.cadence_runs`);
    its flags are those the skipped runs would have raised first (:func:`answered_flags`).
    """
    errors: dict[str, str] = {}
    valid = []
    for rule in rules:
        if not rule.enabled:
            continue
        try:
            rule.runs_per_query(schedule_interval)
        except RuleError as error:  # an every that is no multiple of this schedule
            errors[rule.id] = str(error)
            continue
        valid.append(rule)
    groups = history_groups(valid)
    lanes = [cadence_lanes(group, evaluation_time, schedule_interval) for group in groups]
    done = {rule.id for group in groups for rule in group}
    lanes += [
        cadence_lanes([rule], evaluation_time, schedule_interval) for rule in valid if rule.id not in done
    ]
    found: list[tuple[Lane, list[Flag]]] = []
    for query in lanes:
        answered = _evaluate_lanes(store, query, skipped_rows) if len(query) > 1 else None
        if answered is None:  # one lane, or the shared query failed: each lane's own query
            answered = _evaluate_own(store, query, skipped, skipped_rows, errors)
        found.extend(answered)
    plain: list[Flag] = []
    by_rule: dict[str, list[tuple[datetime, list[Flag]]]] = {}
    for lane, flags in found:
        if lane.run == evaluation_time and lane.rule.runs_per_query(schedule_interval) == 1:
            plain.extend(flags)
        else:
            by_rule.setdefault(lane.rule.id, []).append((lane.run, flags))
    answered_for = [flag for runs in by_rule.values() for flag in answered_flags(runs, evaluation_time)]
    return sorted(dedupe_flags(plain) + answered_for, key=priority), errors


def answered_flags(runs: Sequence[tuple[datetime, Sequence[Flag]]], evaluation_time: datetime) -> list[Flag]:
    """The flags of one rule raised at ``evaluation_time`` for the runs it answers for.

    ``runs``: each run's flags (in any order). The schedule would have started, for each
    execution name, the flag of the earliest run that raised it (the later ones are
    duplicates of its name): those are kept, each as its run deduplicated it, raised now
    (``evaluation_time``, the investigation's reference time). So the flags started are
    those the schedule would have started, each up to ``every`` later.
    """
    kept: dict[str, Flag] = {}
    for _, flags in sorted(runs, key=lambda item: item[0]):
        for flag in dedupe_flags(flags):
            kept.setdefault(flag.execution_name, flag)
    now = iso_z(evaluation_time)
    return [flag.model_copy(update={"evaluation_time": now}) for flag in kept.values()]


def _evaluate_own(
    store: TimeseriesStore,
    lanes: Sequence[Lane],
    skipped: dict[str, str] | None,
    skipped_rows: list[str] | None,
    errors: dict[str, str],
) -> list[tuple[Lane, list[Flag]]]:
    """Each lane's flags from its rule's own query over its range; a lane that fails records
    its rule's error (or skip) and gives nothing."""
    found = []
    for lane in lanes:
        if lane.span.empty:
            continue  # it waits for its windows to close, and none has closed since the last look
        try:
            rows = store.query(
                compile_range(lane.rule, store.database, store.table, lane.span, dialect_of(store))
            )
            found.append((lane, flags_from_rows(lane.rule, rows, lane.run, skipped_rows)))
        except MissingColumnError as error:
            if skipped is not None:
                skipped[lane.rule.id] = error.skip_reason()
        except Exception as error:  # one broken rule must not hide the hits of the others
            errors[lane.rule.id] = f"{type(error).__name__}: {error}"
    return found


def _evaluate_lanes(
    store: TimeseriesStore, lanes: Sequence[Lane], skipped_rows: list[str] | None
) -> list[tuple[Lane, list[Flag]]] | None:
    """Each lane's flags, from one query (rules sharing a history read, runs of a rule with
    ``every``); None when it failed."""
    try:
        rows = store.query(compile_lanes(lanes, store.database, store.table, dialect_of(store)))
        by_lane: dict[int, list[Mapping[str, Any]]] = {}
        for row in rows:
            by_lane.setdefault(int(row["lane"]), []).append(row)
    except Exception as error:  # a missing column or a broken rule: each rule's own query says which
        logging.getLogger(__name__).info(
            "the query of %s failed (%s: %s); each runs its own",
            ", ".join(dict.fromkeys(lane.rule.id for lane in lanes)),
            type(error).__name__,
            error,
        )
        return None
    return [
        (lane, flags_from_rows(lane.rule, by_lane.get(index, []), lane.run, skipped_rows))
        for index, lane in enumerate(lanes)
    ]


def start_investigations(
    starter: InvestigationStarter, flags: Sequence[Flag], max_investigations: int, result: MicroResult
) -> None:
    """Start one investigation per flag, up to ``max_investigations`` new ones.

    A flag whose closed window is to be rechecked starts its recheck only when its first
    investigation already existed, i.e. ran while the window was still filling: a hit
    first seen once its window had closed is investigated whole the first time.
    """
    for flag in flags:
        if result.started >= max_investigations:
            result.capped += 1
            continue
        started = _start(starter, flag.execution_name, flag, result)
        if started is None:
            continue
        if started:
            result.started += 1
            continue
        result.duplicates += 1
        if flag.recheck_execution_name is None:
            continue
        if result.started >= max_investigations:
            result.capped += 1
            continue
        started = _start(starter, flag.recheck_execution_name, flag, result)
        if started:
            result.started += 1
        elif started is not None:
            result.duplicates += 1


def _start(starter: InvestigationStarter, name: str, flag: Flag, result: MicroResult) -> bool | None:
    """Start one investigation; None when the start failed (recorded; the other flags go on)."""
    try:
        return starter.start(name, flag.to_dict())
    except Exception as error:  # throttling, a refused input: only this flag waits for the next run
        result.start_failures[name] = f"{type(error).__name__}: {error}"
        return None


def relook(rule: Rule, flag: Flag, at: datetime) -> Flag:
    """The re-look of a hit of ``rule`` (one with ``relook_after``), at ``at``.

    Same rule, entity and window as the hit; its own execution name (the hit's, suffixed
    ``-relook``: one re-look per investigation, however many runs or retries see it), and
    ``evaluation_time`` the re-look's, which the investigation takes as its reference time:
    it looks at what the accounts did up to then.
    """
    period = floor_to(parse_time(flag.window_start), rule.cooldown)
    return flag.model_copy(
        update={
            "execution_name": execution_name(rule.id, rule.entity, flag.entity_id, period, RELOOK_SUFFIX),
            "evaluation_time": iso_z(at),
            "recheck_execution_name": None,
            # the investigation of the whole window: the recheck of a rule that rechecks on close
            "relook_of": flag.recheck_execution_name or flag.execution_name,
        }
    )


def relooks_due(
    store: TimeseriesStore,
    rules: Sequence[Rule],
    evaluation_time: datetime,
    schedule_interval: timedelta | None = None,
) -> tuple[list[Flag], dict[str, str]]:
    """The re-looks due at ``evaluation_time``: the hits of each rule with ``relook_after``
    that the run ``relook_after`` earlier judged on their whole window, found again by that
    run's own query for the windows it saw close (nothing in them has changed since), so the
    schedule keeps no state of its own. A rule that rechecks its windows on close is asked
    for its closed windows only, as one that waits for them: its re-looks take up the
    rechecks, once each, and the query runs only at the runs that see a window close."""
    found: list[Flag] = []
    errors: dict[str, str] = {}
    by_id = {rule.id: rule for rule in rules}
    for rule in rules:
        if not rule.enabled or rule.relook_after is None:
            continue
        earlier = evaluation_time - rule.relook_after
        closed = rule if rule.wait_for_close else replace(rule, wait_for_close=True)
        flags, failed = evaluate_rules(store, [closed], earlier, schedule_interval, {}, [])
        errors.update({f"{rule_id} (re-look)": error for rule_id, error in failed.items()})
        found.extend(relook(by_id[flag.rule], flag, evaluation_time) for flag in flags)
    return found, errors


def start_relooks(
    starter: InvestigationStarter, relooks: Sequence[Flag], max_investigations: int, result: MicroResult
) -> None:
    """Start the re-looks (after the run's own investigations, within the same cap)."""
    result.relooks = list(relooks)
    for flag in relooks:
        if result.started + result.relooks_started >= max_investigations:
            result.capped += 1
            continue
        started = _start(starter, flag.execution_name, flag, result)
        if started:
            result.relooks_started += 1
        elif started is not None:
            result.duplicates += 1


def run_micro_analysis(
    store: TimeseriesStore,
    starter: InvestigationStarter,
    rules: Sequence[Rule],
    evaluation_time: datetime,
    max_investigations: int = 200,
    schedule_interval: timedelta | None = None,
) -> MicroResult:
    """One scheduled run: evaluate, flag, and start at most ``max_investigations`` investigations.

    ``schedule_interval`` (the time between runs) widens each rule's look-back when it is
    longer than the rule's lateness, so no window falls between two runs.
    """
    evaluation_time = parse_time(evaluation_time)
    skipped: dict[str, str] = {}
    skipped_rows: list[str] = []
    flags, errors = evaluate_rules(store, rules, evaluation_time, schedule_interval, skipped, skipped_rows)
    result = MicroResult(
        evaluation_time=evaluation_time,
        flags=flags,
        rule_errors=errors,
        rules_skipped=skipped,
        skipped_rows=skipped_rows,
    )
    start_investigations(starter, flags, max_investigations, result)
    relooks, relook_errors = relooks_due(store, rules, evaluation_time, schedule_interval)
    result.rule_errors.update(relook_errors)
    start_relooks(starter, relooks, max_investigations, result)
    return result


# -- the scheduled function ------------------------------------------------------------------

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")


def schedule_interval(raw: str) -> timedelta:
    """The time between scheduled runs, from a duration (``15m``) or a rate expression.

    The template passes the schedule parameter as it is (``rate(15 minutes)``). A slower
    schedule widens each rule's look-back, so no window falls between two runs.
    """
    rate = _RATE.match(raw.strip())
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


def run_scheduled(
    event: Any, settings: Any, store: TimeseriesStore, starter: InvestigationStarter
) -> MicroResult:
    """One scheduled run: the rules at the event's time, with the configured overrides and cap."""
    rules, override_errors = load_rules_keeping_last_good(
        settings.rules_override, timedelta(hours=settings.timestream_memory_retention_hours)
    )
    result = run_micro_analysis(
        store,
        starter,
        enabled_rules(rules),
        evaluation_time_of(event),
        max_investigations=settings.max_investigations_per_run,
        schedule_interval=schedule_interval(settings.micro_schedule_interval),
    )
    result.override_errors = override_errors
    return result
