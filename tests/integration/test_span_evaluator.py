"""SpanEvaluator: each scheduled run's flags from a few queries per rule, exactly.

Against the scheduled path itself (every rule at every tick), on a generated day in the
local DuckDB store, with the shipped thresholds and with thresholds lowered so that every
kind of rule (plain aggregates, the spike, the pass-through) hits at many runs, while its
windows are still open and after they closed.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fraudcore.execution_names import configured_name_key, pinned_name_key
from fraudcore.micro import evaluate_rules
from fraudcore.model import parse_transaction
from fraudcore.rules import enabled_rules, load_rules, rule_with
from fraudcore.timeseries.rule_sql import compile_rule
from fraudlocal.adapters.timeseries_duckdb import DuckDBTimeseriesStore
from fraudlocal.backtest import load_store, schedule_ticks
from fraudlocal.pipeline import span_evaluation
from fraudlocal.pipeline.span_evaluation import SpanEvaluator, grows_with_events
from fraudlocal.scenario import generate

pytestmark = pytest.mark.slow

EVERY = timedelta(minutes=5)
TICKS = 96  # eight hours of scheduled runs


@pytest.fixture(autouse=True)
def name_key() -> Iterator[None]:
    """The flags' name key pinned, as the pipeline pins it while the rules are evaluated (both
    sides name their flags with it; reading the environment at every flag is not the point here)."""
    with pinned_name_key(configured_name_key()):
        yield


@pytest.fixture(scope="module")
def store():
    transactions = [parse_transaction(row) for row in generate(accounts=500, days=1, seed=5).transactions]
    with tempfile.TemporaryDirectory(prefix="span-eval-") as scratch:
        store = DuckDBTimeseriesStore(Path(scratch) / "ts.duckdb", "fraud", "transactions")
        load_store(store, transactions)
        first = min(tx.timestamp for tx in transactions)
        last = max(tx.timestamp for tx in transactions)
        store.ticks = schedule_ticks(first, last, EVERY)[60 : 60 + TICKS]  # type: ignore[attr-defined]
        yield store
        store.close()


#: parameters that let the spike and the pass-through hit on an ordinary day
EASIER = {
    "amount_spike": {"min_amount": 50.0},
    "mule_pass_through": {"min_received": 200.0},
    "slow_pass_through": {"min_received": 200.0},
}


def lowered(factor: float) -> list:
    rules = []
    for rule in enabled_rules(load_rules()):
        params = {**rule.params, **EASIER.get(rule.id, {})} if factor < 1 else rule.params
        rules.append(rule_with(rule, threshold=rule.threshold * factor, params=params))
    return rules


@pytest.mark.parametrize("factor", [1.0, 0.15], ids=["shipped", "lowered"])
def test_every_run_gets_the_flags_of_the_scheduled_path(store, factor: float) -> None:
    rules = lowered(factor)
    evaluator = SpanEvaluator(store, rules, EVERY)
    runs = evaluator.evaluate(store.ticks)
    hits = 0
    for tick in store.ticks:
        flags, errors = evaluate_rules(store, rules, tick, EVERY)
        assert runs[tick].flags == flags, tick
        assert runs[tick].errors == errors == {}
        hits += len(flags)
    assert hits > 0
    if factor < 1:
        # every kind of rule hit somewhere, so each path of the evaluator was compared
        flagged = {flag.rule for run in runs.values() for flag in run.flags}
        assert {"amount_spike", "mule_pass_through", "velocity", "shared_card"} <= flagged
    # far fewer queries on an ordinary day; fewer even when every rule hits all the time (a
    # rule with signals runs its own query at the runs that see a large enough payment)
    spans = SpanEvaluator(store, [rule for rule in rules if not rule.signals], EVERY)
    spans.evaluate(store.ticks)
    statistics = spans.statistics.to_dict()
    assert statistics["queries"] < statistics["queries_per_tick_mode"] / (3 if factor == 1 else 1)


def takeover_store(path: Path, extra: Sequence[dict] = ()) -> tuple[DuckDBTimeseriesStore, list[datetime]]:
    """A takeover whose windows fill, hit, and (as the intruder's device stops being new)
    stop hitting, amid customers paying large sums all day; and the runs after it began."""
    first = TAKEOVER_DAY
    # other customers paying large sums from their usual phones all day: candidates, no hits
    base = [
        {
            "account_id": f"c{n % 5}",
            "transaction_id": f"c{n}",
            "amount": 300.0 + n,
            "timestamp": first + timedelta(minutes=13 * n),
            "device_id": f"phone-{n % 5}",
            "ip": f"home-{n % 5}",
            "country": "US",
        }
        for n in range(60)
    ]
    victim = {"account_id": "victim", "device_id": "victim-phone", "ip": "victim-home", "country": "US"}
    rows = [
        *base,
        *(
            {**victim, "transaction_id": f"v{n}", "amount": 40.0 + n, "timestamp": first + timedelta(hours=n)}
            for n in range(8)
        ),
        *(
            {
                "account_id": "victim",
                "transaction_id": f"i{n}",
                "amount": 900.0 + 10 * n,
                "timestamp": first + timedelta(hours=9, minutes=7 * n),
                "device_id": "intruder",
                "ip": "proxy",
                "country": "RO",
            }
            for n in range(4)
        ),
        # the owner's own small payment amid the intrusion: not new, not counted
        {
            **victim,
            "transaction_id": "v-amid",
            "amount": 45.0,
            "timestamp": first + timedelta(hours=9, minutes=10),
        },
        *extra,
    ]
    transactions = [parse_transaction(row) for row in rows]
    store = DuckDBTimeseriesStore(path / "ts.duckdb", "fraud", "transactions")
    load_store(store, transactions)
    return store, [tick for tick in schedule_ticks(first, first + timedelta(hours=12), EVERY)][96:]


TAKEOVER_DAY = datetime(2026, 11, 1, tzinfo=UTC)


def assert_scheduled_flags(store: DuckDBTimeseriesStore, rules: list, ticks: list[datetime]) -> list:
    evaluator = SpanEvaluator(store, rules, EVERY)
    runs = evaluator.evaluate(ticks)
    hits = []
    for tick in ticks:
        flags, errors = evaluate_rules(store, rules, tick, EVERY)
        assert runs[tick].flags == flags, tick
        assert runs[tick].errors == errors == {}
        hits += flags
    # the runs whose windows hold large payments send their own query only if they can hit
    assert evaluator.statistics.per_tick_queries < len(ticks) * len(rules)
    return hits


def test_a_rule_with_signals_gets_the_flags_of_the_scheduled_path(tmp_path: Path) -> None:
    store, ticks = takeover_store(tmp_path)
    hits = assert_scheduled_flags(store, [rule for rule in load_rules() if rule.signals], ticks)
    assert hits
    store.close()


def test_a_window_exactly_at_the_threshold_is_still_found(tmp_path: Path) -> None:
    """The batched screen's sums may differ from a run's own in the last bits: a window
    whose sum is the threshold itself must still be flagged, at every run that sees it."""
    store, ticks = takeover_store(tmp_path)
    rules = [rule for rule in load_rules() if rule.signals]
    flag = assert_scheduled_flags(store, rules, ticks)[0]
    exact = [rule_with(rule, threshold=flag.observed) for rule in rules if rule.id == flag.rule]
    hits = assert_scheduled_flags(store, exact, ticks)
    assert any(hit.observed == flag.observed for hit in hits)
    store.close()


def test_a_failing_rule_is_reported_at_every_run(store) -> None:
    broken = [rule_with(rule, filter="no_such_column > 1") for rule in lowered(1.0)[:1]]
    runs = SpanEvaluator(store, broken, EVERY).evaluate(store.ticks[:3])
    for tick in store.ticks[:3]:
        _, errors = evaluate_rules(store, broken, tick, EVERY)
        assert runs[tick].errors == errors
        assert set(errors) == {broken[0].id}


def test_a_bug_in_the_evaluator_is_raised_not_turned_into_per_tick_queries(store, monkeypatch) -> None:
    # A store's refusal falls back to the per-tick queries (above); an error of the
    # evaluator's own code (a broken import, say) must not hide behind that fallback.
    evaluator = SpanEvaluator(store, lowered(1.0)[:1], EVERY)

    def broken(*_: object) -> None:
        raise ImportError("No module named 'fraudlocal.pipeline.timestream_sql'")

    monkeypatch.setattr(evaluator, "_growing", broken)
    with pytest.raises(ImportError, match="timestream_sql"):
        evaluator.evaluate(store.ticks[:3])
    assert evaluator.statistics.per_tick_queries == 0


def test_only_growing_aggregates_skip_the_per_run_query() -> None:
    kinds = {rule.aggregate: grows_with_events(rule) for rule in load_rules() if not rule.signals}
    assert kinds["count(*)"] and kinds["sum(amount)"] and kinds["count(distinct account_id)"]
    assert not kinds["spike"] and not kinds["pass_through"]
    # novelty and habit are as of each transaction: a window can stop hitting
    assert not grows_with_events(next(rule for rule in load_rules() if rule.signals))


def test_the_runs_own_queries_in_one_statement_give_each_query_s_rows(store, monkeypatch) -> None:
    """The own queries of many runs go in one statement, and each run gets its own query's
    rows exactly: the same windows, the sums to the last bit."""
    rule = next(rule for rule in lowered(0.15) if rule.id == "slow_pass_through")
    evaluator = SpanEvaluator(store, [rule], EVERY)
    statements: list[str] = []
    native = store.query_duckdb

    def counted(sql: str, parameters=None) -> list:
        statements.append(sql)
        return native(sql, parameters)

    monkeypatch.setattr(store, "query_duckdb", counted)
    found = evaluator._own_rows(rule, store.ticks)
    assert len(statements) == -(-len(store.ticks) // span_evaluation.OWN_QUERIES_PER_STATEMENT)
    hits = 0
    for tick in store.ticks:
        own = store.query(compile_rule(rule, store.database, store.table, tick, EVERY))
        assert sorted(found[tick], key=repr) == sorted(own, key=repr), tick
        hits += len(own)
    assert hits > 0
    assert evaluator.statistics.per_tick_queries == len(store.ticks)


def test_the_screen_of_a_rule_with_signals_drops_the_runs_that_see_only_usual_payments(
    tmp_path: Path,
) -> None:
    """Large payments from the account's own device, network and country add up past the
    threshold every hour, but none can meet a novelty signal: the runs that see only them
    send no query. Every run that hits is kept, and gets the scheduled path's flags."""
    regular = {"account_id": "big-spender", "device_id": "own-phone", "ip": "own-home", "country": "US"}
    payments = [
        {
            **regular,
            "transaction_id": f"b{n}",
            "amount": 700.0 + n,
            "timestamp": TAKEOVER_DAY + timedelta(hours=4, minutes=20 * n),
        }
        for n in range(24)
    ]
    store, ticks = takeover_store(tmp_path, payments)
    rules = [rule_with(rule, every=None) for rule in load_rules() if rule.signals]
    for rule in rules:
        screened = SpanEvaluator(store, [rule], EVERY)._screen(rule, ticks)
        hitting = [tick for tick in ticks if evaluate_rules(store, [rule], tick, EVERY)[0]]
        assert hitting, rule.id
        assert set(hitting) <= set(screened), rule.id
        # the big spender's hours before the intrusion (09:00) are not worth a query
        assert min(screened) > TAKEOVER_DAY + timedelta(hours=9), rule.id
    assert_scheduled_flags(store, rules, ticks)
    store.close()


def test_the_batched_check_stops_when_nearly_every_run_hits(store, monkeypatch) -> None:
    """A pass-through rule over a day of transfers hits at nearly every run: after a batch
    that finds so, the other runs send their own query unchecked (and get their flags)."""
    rule = next(rule for rule in lowered(0.15) if rule.id == "slow_pass_through")
    checks: list[str] = []
    native = store.query_duckdb

    def counted(sql: str, parameters=None) -> list:
        checks.extend(["check"] if "LATERAL" in sql else [])
        return native(sql, parameters)

    monkeypatch.setattr(store, "query_duckdb", counted)
    kept = SpanEvaluator(store, [rule], EVERY)._may_hit(rule, store.ticks)
    hitting = [tick for tick in store.ticks if evaluate_rules(store, [rule], tick, EVERY)[0]]
    first = store.ticks[: span_evaluation.RUNS_PER_QUERY]
    assert len(set(hitting) & set(first)) >= span_evaluation.HITTING_SHARE * len(first)
    assert set(hitting) <= set(kept)
    assert len(store.ticks) > span_evaluation.RUNS_PER_QUERY
    assert checks == ["check"]


def replayed_passing_windows(store, rule, start: datetime, end: datetime) -> dict[datetime, datetime]:
    """The pass-through screen's windows replayed in Python, transaction by transaction."""
    from fraudcore.micro import parse_time
    from fraudcore.timeseries.rule_sql import floor_to
    from fraudcore.timeutil import iso_z

    rows = store.query(
        "SELECT time, account_id, counterparty_account_id, amount FROM fraud.transactions "
        f"WHERE time >= from_iso8601_timestamp('{iso_z(start)}') AND time < from_iso8601_timestamp('{iso_z(end)}')"
    )
    minimum = float(rule.params["min_received"])
    margin = span_evaluation._SUM_MARGIN * minimum
    received: dict = defaultdict(float)
    sent: dict = defaultdict(float)
    passing: dict[datetime, datetime] = {}
    for row in sorted(rows, key=lambda row: row["time"]):
        moment = parse_time(row["time"])
        for phase in range(round(rule.window / rule.hop)):
            window_start = floor_to(moment - rule.hop * phase, rule.window) + rule.hop * phase
            for account, totals in ((row["counterparty_account_id"], received), (row["account_id"], sent)):
                if account is None:
                    continue
                key = (account, window_start)
                totals[key] += row["amount"]
                if (
                    received[key] >= minimum - margin
                    and sent[key] >= min(rule.threshold, 1.0) * minimum - margin
                ):
                    passing.setdefault(window_start, moment)
    return passing


@pytest.mark.parametrize("rule_id", ["mule_pass_through", "slow_pass_through"])
def test_the_pass_through_screen_finds_when_each_window_can_first_hit(store, rule_id: str) -> None:
    rule = next(rule for rule in lowered(0.15) if rule.id == rule_id)
    start, end = store.ticks[0] - timedelta(hours=13), store.ticks[-1]
    windows = SpanEvaluator(store, [rule], EVERY)._passing_windows(rule, start, end)
    assert len(windows) >= 3
    assert windows == replayed_passing_windows(store, rule, start, end)


@pytest.mark.parametrize("rule_id", ["shared_card", "ip_account_burst", "device_cash_out"])
def test_an_open_window_is_probed_again_only_once_its_entity_has_new_rows(store, rule_id: str) -> None:
    """A run that sees an open window counts the rows of its entity before the run: the runs
    until the entity's next row count the same rows, and are answered by one probe."""
    rule = next(rule for rule in lowered(0.15) if rule.id == rule_id)
    evaluator = SpanEvaluator(store, [rule], EVERY)
    requested: list = []
    sent: list = []
    unchanged, probe = evaluator._unchanged_windows, evaluator._probe

    def requesting(rule, span, requests):
        requested.extend(requests)
        return unchanged(rule, span, requests)

    def sending(rule, probes):
        sent.extend(probes)
        return probe(rule, probes)

    evaluator._unchanged_windows, evaluator._probe = requesting, sending
    runs = evaluator.evaluate(store.ticks)
    for tick in store.ticks:
        assert runs[tick].flags == evaluate_rules(store, [rule], tick, EVERY)[0], tick
    assert 0 < len(sent) < len(requested)
    # every (window, run) still answered: by its own probe, or by the window's earlier one
    assert {(p.entity_id, p.window_start) for p in sent} == {(p.entity_id, p.window_start) for p in requested}


def test_the_screens_reads_are_sent_in_duckdb_sql_untranslated(store, monkeypatch) -> None:
    """The novelty screen's and the probed windows' reads differ from rule to rule: they go to
    DuckDB as they are, not through the Timestream SQL translator."""
    rules = {rule.id: rule_with(rule, every=None) for rule in lowered(0.15)}
    evaluator = SpanEvaluator(store, list(rules.values()), EVERY)
    span = span_evaluation.span_range(rules["shared_card"], store.ticks[0], store.ticks[-1], EVERY)
    requests = [
        span_evaluation.WindowProbe("card-x", span.first_window_start, tick) for tick in store.ticks[:3]
    ]

    def translated(sql: str) -> list:
        raise AssertionError(f"sent through the translator: {sql}")

    within = (
        f"time >= '{span.first_window_start:%Y-%m-%d %H:%M:%S}' AND time < '{span.end:%Y-%m-%d %H:%M:%S}'"
    )
    (account,) = store.query_duckdb(
        f"SELECT account_id FROM fraud.transactions WHERE amount >= 250 AND {within} ORDER BY time LIMIT 1"
    )[0].values()
    monkeypatch.setattr(store, "query", translated)
    probes, same_as = evaluator._unchanged_windows(rules["shared_card"], span, requests)
    assert probes == requests[:1] and set(same_as) == set(requests[1:])  # card-x has no rows
    may_count = evaluator._may_count(
        rules["novel_takeover"], span.first_window_start, span.end, ["amount >= 250"]
    )
    # a payment with no device is never from a new one
    assert not may_count({"device_id": None, "ip": "x", "country": "x"}, store.ticks[-1], account)
