"""Rules reading the history of the same entity, evaluated by one query: each rule's own hits.

``compile_history_lanes`` reads the history once for ``amount_spike`` and ``novel_takeover``
(each a lane); on a generated scenario, at runs through a day, every lane must return
exactly what the rule's own query returns, on DuckDB (Timestream SQL translated) and on
DataFusion (InfluxDB 3 SQL). ``evaluate_rules`` sends that one query, and when it fails each
rule runs its own, so a rule's error or missing column stays its own.

With ``every`` (the shipped takeover rules: 15 minutes at a 5-minute schedule), one query
answers for the runs skipped since the last: each of its lanes (a rule at a run) returns
exactly that run's own query's rows, and the flags the schedule starts are the same, each
raised at the next run that queries.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from engine_stores import both_engines

from fraudcore.micro import dedupe_flags, evaluate_rules, parse_time
from fraudcore.model import Transaction
from fraudcore.rules import load_rules, rule_with
from fraudcore.timeseries.dialects import INFLUXDB3, TIMESTREAM
from fraudcore.timeseries.rule_sql import (
    cadence_lanes,
    compile_history_lanes,
    compile_lanes,
    compile_range,
    evaluation_range,
    floor_to,
    history_groups,
    span_range,
)
from fraudlocal.adapters.timeseries_duckdb import DuckDBTimeseriesStore
from fraudlocal.scenario.generator import generate

RULES = {rule.id: rule for rule in load_rules()}
#: the shipped takeover rules, and the same queried at every run
CADENCED = (RULES["amount_spike"], RULES["novel_takeover"], RULES["takeover_abroad"])
SPIKE, NOVEL, ABROAD = (rule_with(rule, every=None) for rule in CADENCED)
FIVE = timedelta(minutes=5)
#: the shipped pair, and variants that take the other paths of the lanes query: a filter in
#: each lane, a count, a single-phase window, a spike over another baseline
VARIANTS = {
    "shipped": (SPIKE, NOVEL),
    "filters_counts_phases": (
        rule_with(SPIKE, filter="channel <> 'transfer'", threshold=4.0),
        rule_with(
            NOVEL,
            aggregate="count(*)",
            threshold=1,
            hop=NOVEL.window,
            filter="country IS NOT NULL",
            params={**NOVEL.params, "min_amount": 100},
        ),
        rule_with(SPIKE, id="spike_wide", params={**SPIKE.params, "baseline_transactions": 5}, threshold=3.0),
    ),
}


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory):
    """Two generated days (500 accounts, planted fraud) in DuckDB and in DataFusion."""
    root = tmp_path_factory.mktemp("lanes")
    scenario = generate(accounts=500, days=2, seed=29)
    transactions = sorted(
        (Transaction.model_validate(row) for row in scenario.transactions), key=lambda t: t.timestamp
    )
    duck, fusion = both_engines(root, transactions)
    last_day = floor_to(transactions[-1].timestamp, timedelta(days=1))
    # runs through the last day: every 6 hours, and two after each window a rule of a
    # variant hits over the whole day (most runs see no hit at all)
    moments = {last_day + timedelta(hours=hours, minutes=5) for hours in range(0, 24, 6)}
    for rule in [rule for rules in VARIANTS.values() for rule in rules]:
        span = span_range(rule, last_day, last_day + timedelta(days=1), FIVE)
        for row in duck.query(compile_range(rule, "fraud", "transactions", span)):
            start = floor_to(parse_time(row["window_start"]), FIVE)
            moments |= {start + FIVE * runs for runs in (1, 6)}
    yield duck, fusion, sorted(moments)
    duck.close()
    fusion.close()


class Recording:
    """A store that keeps the SQL it is sent."""

    def __init__(self, store: DuckDBTimeseriesStore) -> None:
        self.store = store
        self.sent: list[str] = []
        self.database, self.table = store.database, store.table

    def query(self, sql: str) -> list[dict[str, Any]]:
        self.sent.append(sql)
        return self.store.query(sql)


def _rows(rows: list[dict[str, Any]]) -> list[tuple[str, Any, float]]:
    return sorted(
        (str(row["entity_id"]), row["window_start"], round(float(row["observed"]), 6)) for row in rows
    )


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
@pytest.mark.parametrize("engine", ["duckdb", "datafusion"])
def test_each_lane_returns_its_rules_own_hits(stores, variant: str, engine: str) -> None:
    duck, fusion, moments = stores
    store, dialect = (duck, TIMESTREAM) if engine == "duckdb" else (fusion, INFLUXDB3)
    rules = VARIANTS[variant]
    (group,) = history_groups(list(rules))
    assert group == rules
    hits = dict.fromkeys(range(len(rules)), 0)
    for moment in moments:
        spans = [evaluation_range(rule, moment, FIVE) for rule in rules]
        rows = store.query(compile_history_lanes(rules, "fraud", "transactions", spans, dialect))
        for lane, (rule, span) in enumerate(zip(rules, spans, strict=True)):
            own = _rows(store.query(compile_range(rule, "fraud", "transactions", span, dialect)))
            assert _rows([row for row in rows if int(row["lane"]) == lane]) == own, (rule.id, moment)
            hits[lane] += len(own)
    assert all(hits.values()), hits  # every lane had hits to compare


def test_the_scheduled_run_sends_one_query_for_the_group(stores) -> None:
    duck, _, moments = stores
    recording = Recording(duck)
    sent = recording.sent
    flagged = 0
    for moment in moments[::2]:
        flags, errors = evaluate_rules(recording, [SPIKE, NOVEL], moment, FIVE)
        assert errors == {} and len(sent) == 1 and "AS lanes (lane)" in sent.pop()
        own = dedupe_flags(
            [flag for rule in (SPIKE, NOVEL) for flag in evaluate_rules(duck, [rule], moment, FIVE)[0]]
        )
        assert [flag.to_dict() for flag in flags] == [flag.to_dict() for flag in own]
        flagged += len(flags)
    assert flagged > 0


def test_a_failing_group_query_leaves_each_rule_its_own_outcome(tmp_path: Path) -> None:
    store = DuckDBTimeseriesStore(tmp_path / "ts.duckdb", "fraud", "transactions")
    scenario = generate(accounts=500, days=1, seed=31)
    rows = [row for row in scenario.transactions if "card_id" not in row]  # no record carries a card
    store.write([Transaction.model_validate(row) for row in rows])
    carded = rule_with(SPIKE, filter="card_id IS NOT NULL")
    at = floor_to(max(Transaction.model_validate(row).timestamp for row in rows), FIVE)
    skipped: dict[str, str] = {}
    flags, errors = evaluate_rules(store, [carded, NOVEL], at, FIVE, skipped)
    assert errors == {}
    assert set(skipped) == {"amount_spike"} and "card_id" in skipped["amount_spike"]
    assert [f.to_dict() for f in flags] == [f.to_dict() for f in evaluate_rules(store, [NOVEL], at, FIVE)[0]]
    broken = rule_with(NOVEL, params={**NOVEL.params, "habit_transactions": "many"})
    flags, errors = evaluate_rules(store, [SPIKE, broken], at, FIVE)
    assert set(errors) == {"novel_takeover"}
    assert [f.to_dict() for f in flags] == [f.to_dict() for f in evaluate_rules(store, [SPIKE], at, FIVE)[0]]
    store.close()


@pytest.mark.parametrize("engine", ["duckdb", "datafusion"])
def test_a_cadence_query_returns_each_runs_own_hits(stores, engine: str) -> None:
    """At a run that queries the rules with ``every``, each lane (a rule at one of the runs it
    answers for) returns exactly that run's own query's rows."""
    duck, fusion, moments = stores
    store, dialect = (duck, TIMESTREAM) if engine == "duckdb" else (fusion, INFLUXDB3)
    fifteen = CADENCED[0].every
    queried = sorted({floor_to(moment - FIVE, fifteen) + fifteen for moment in moments})
    hits = dict.fromkeys((rule.id for rule in CADENCED), 0)
    for moment in queried[::2]:
        lanes = cadence_lanes(CADENCED, moment, FIVE)
        assert [(lane.rule.id, lane.run) for lane in lanes] == [
            (rule.id, moment - FIVE * back) for rule in CADENCED for back in (2, 1, 0)
        ]
        rows = store.query(compile_lanes(lanes, "fraud", "transactions", dialect))
        for index, lane in enumerate(lanes):
            own = _rows(store.query(compile_range(lane.rule, "fraud", "transactions", lane.span, dialect)))
            assert _rows([row for row in rows if int(row["lane"]) == index]) == own, (lane.rule.id, lane.run)
            hits[lane.rule.id] += len(own)
    assert all(hits.values()), hits


def _first_flags(flags_by_run: list[list[Any]]) -> dict[str, tuple[Any, ...]]:
    """What the schedule starts: per execution name, the first flag raised (runs in order)."""
    first: dict[str, tuple[Any, ...]] = {}
    for flags in flags_by_run:
        for flag in flags:
            first.setdefault(
                flag.execution_name,
                (flag.rule, flag.entity_id, flag.window_start, flag.observed, flag.evaluation_time),
            )
    return first


def test_every_flags_what_every_run_flags_at_the_next_query(stores) -> None:
    """Runs every 5 minutes around the day's hits: the rules with ``every: 15m`` start the
    same flags (rule, entity, window, observed) as queried at every run, each raised at the
    first run from its own that queries; only those runs send a query (one each)."""
    duck, _, moments = stores
    recording = Recording(duck)
    sent = recording.sent
    fifteen = CADENCED[0].every
    # whole blocks of runs: the three runs up to each run that queries, around each moment
    queried = {floor_to(moment - FIVE, fifteen) + fifteen for moment in moments}
    runs = sorted({run - FIVE * back for run in queried for back in (2, 1, 0)})
    every_run, cadenced = [], []
    for run in runs:
        every_run.append(evaluate_rules(duck, [SPIKE, NOVEL, ABROAD], run, FIVE)[0])
        flags, errors = evaluate_rules(recording, list(CADENCED), run, FIVE)
        assert errors == {}
        assert len(sent) == (1 if floor_to(run, fifteen) == run else 0), run
        sent.clear()
        cadenced.append(flags)
    expected = _first_flags(every_run)
    got = _first_flags(cadenced)
    assert {flag[0] for flag in expected.values()} == {rule.id for rule in CADENCED}, expected
    assert {name: flag[:4] for name, flag in got.items()} == {
        name: flag[:4] for name, flag in expected.items()
    }
    delayed = 0
    for name, flag in got.items():
        raised = parse_time(expected[name][4])
        assert parse_time(flag[4]) == floor_to(raised - FIVE, fifteen) + fifteen, name
        delayed += parse_time(flag[4]) > raised
    assert delayed  # some flag was first raised by a run that did not query


def test_at_a_one_minute_schedule_one_query_answers_for_fifteen_runs(stores) -> None:
    """Prod's schedule: every 15m is 15 runs a query, 45 lanes; each still its run's own rows."""
    duck, _, moments = stores
    minute, fifteen = timedelta(minutes=1), CADENCED[0].every
    # the run at the end of a window amount_spike hits in (15 minutes: the 15 runs see it fill)
    last_day = floor_to(moments[0], timedelta(days=1))
    span = span_range(SPIKE, last_day, last_day + timedelta(days=1), minute)
    spiked = sorted(
        {
            parse_time(row["window_start"])
            for row in duck.query(compile_range(SPIKE, "fraud", "transactions", span))
        }
    )
    hits = 0
    for window_start in spiked[:1]:
        lanes = cadence_lanes(CADENCED, window_start + fifteen, minute)
        assert len(lanes) == 45 and len({lane.run for lane in lanes}) == 15
        rows = duck.query(compile_lanes(lanes, "fraud", "transactions"))
        for index, lane in enumerate(lanes):
            own = _rows(duck.query(compile_range(lane.rule, "fraud", "transactions", lane.span)))
            assert _rows([row for row in rows if int(row["lane"]) == index]) == own, (lane.rule.id, lane.run)
            hits += len(own)
    assert hits
