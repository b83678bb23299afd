"""``fraudlocal rules`` lists what a scheduled run sends: the shared query of rules reading one history."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from fraudcore.rules import enabled_rules, load_rules
from fraudcore.timeseries.dialects import INFLUXDB3
from fraudcore.timeseries.rule_sql import compile_history_lanes, evaluation_range, history_groups
from fraudlocal.adapters.timestream_sql import to_duckdb
from fraudlocal.cli import main

AT = "2026-11-29T12:00:00Z"
MOMENT = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def test_the_shared_query_is_listed_with_the_rules_it_serves(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--json", "--at", AT]) == 0
    printed = json.loads(capsys.readouterr().out)
    groups = history_groups(enabled_rules(load_rules()))
    assert groups and [query["rules"] for query in printed["shared_queries"]] == [
        [rule.id for rule in group] for group in groups
    ]
    for group, query in zip(groups, printed["shared_queries"], strict=True):
        spans = [evaluation_range(rule, MOMENT) for rule in group]
        timestream = compile_history_lanes(group, "fraud", "transactions", spans)
        assert query["timestream_sql"] == timestream
        assert query["duckdb_sql"] == to_duckdb(timestream)
        assert query["influxdb3_sql"] == compile_history_lanes(
            group, "fraud", "transactions", spans, dialect=INFLUXDB3
        )
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
    spans = [evaluation_range(rule, MOMENT) for rule in group]
    assert to_duckdb(compile_history_lanes(group, "fraud", "transactions", spans)) in shared
    assert "-- Timestream SQL" not in shared  # only the dialect asked for
    assert "looked at again 12h later" in text  # the re-look's query, sent 12 hours on
