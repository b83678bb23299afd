"""``fraudlocal rules`` lists what a scheduled run sends: the shared query of rules reading one history."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from fraudcore.rules import enabled_rules, load_rules
from fraudcore.timeseries.dialects import INFLUXDB3
from fraudcore.timeseries.rule_sql import cadence_lanes, compile_lanes, history_groups
from fraudlocal.adapters.timestream_sql import to_duckdb
from fraudlocal.cli import main

AT = "2026-11-29T12:00:00Z"
MOMENT = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
FIVE = timedelta(minutes=5)  # the default schedule


def test_the_shared_query_is_listed_with_the_rules_it_serves(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--json", "--at", AT]) == 0
    printed = json.loads(capsys.readouterr().out)
    groups = history_groups(enabled_rules(load_rules()))
    assert groups and [query["rules"] for query in printed["shared_queries"]] == [
        [rule.id for rule in group] for group in groups
    ]
    for group, query in zip(groups, printed["shared_queries"], strict=True):
        # 12:00 is a run of the takeover rules' 15-minute cadence: their query answers for
        # 11:50, 11:55 and 12:00, three lanes a rule
        lanes = cadence_lanes(group, MOMENT, FIVE)
        assert len(lanes) == 3 * len(group) and query["evaluation_time"] == AT
        assert [lane["run"] for lane in query["lanes"][:3]] == [
            "2026-11-29T11:50:00Z",
            "2026-11-29T11:55:00Z",
            "2026-11-29T12:00:00Z",
        ]
        timestream = compile_lanes(lanes, "fraud", "transactions")
        assert query["timestream_sql"] == timestream
        assert query["duckdb_sql"] == to_duckdb(timestream)
        assert query["influxdb3_sql"] == compile_lanes(lanes, "fraud", "transactions", dialect=INFLUXDB3)
    shared = {rule.id: " + ".join(r.id for r in group) for group in groups for rule in group}
    for item in printed["rules"]:
        assert item.get("scheduled_with") == shared.get(item["id"]), item["id"]
        assert item["timestream_sql"]  # each rule's own query is still shown


def test_the_text_listing_says_which_query_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--dialect", "duckdb", "--at", AT]) == 0
    text = capsys.readouterr().out
    [group] = history_groups(enabled_rules(load_rules()))
    name = " + ".join(rule.id for rule in group)
    assert f"== shared query: {name}" in text
    assert text.count(f"sends the shared query of {name}") == len(group)
    shared = text.split(f"== shared query: {name}", 1)[1]
    assert to_duckdb(compile_lanes(cadence_lanes(group, MOMENT, FIVE), "fraud", "transactions")) in shared
    assert "-- Timestream SQL" not in shared  # only the dialect asked for
    assert "looked at again 12h later" in text  # the re-look's query, sent 12 hours on


def test_the_shared_query_is_compiled_with_one_lane_per_rule_and_run() -> None:
    """The lanes query of a cadence: per lane, its rule's conditions over its own run's range."""
    [group] = history_groups(enabled_rules(load_rules()))
    lanes = cadence_lanes(group, MOMENT, FIVE)
    assert [(lane.rule.id, lane.run.strftime("%H:%M")) for lane in lanes[:4]] == [
        ("amount_spike", "11:50"),
        ("amount_spike", "11:55"),
        ("amount_spike", "12:00"),
        ("novel_takeover", "11:50"),
    ]
    assert cadence_lanes(group, MOMENT + FIVE, FIVE) == []  # 12:05 sends nothing
    sql = compile_lanes(lanes, "fraud", "transactions")
    assert "UNNEST(ARRAY[0, 1, 2, 3, 4, 5, 6, 7, 8]) AS lanes (lane)" in sql
    assert sql.count('FROM "fraud"."transactions"') == 2  # the history and the candidates: one read each
    for index, lane in enumerate(lanes):
        # each lane reads its run's history up to its run, and keeps its run's windows
        end = f"time < from_iso8601_timestamp('{lane.span.end.strftime('%Y-%m-%dT%H:%M:%S')}"
        assert f"(lanes.lane = {index} AND " in sql and end in sql
        assert f"(lane = {index} AND" in sql
    # one lane: the rule's own query, as an every-run rule sends it
    [single] = cadence_lanes(group[:1], MOMENT, None)
    assert "lanes (lane)" not in compile_lanes([single], "fraud", "transactions")
