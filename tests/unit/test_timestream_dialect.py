"""The Timestream dialect: every rule's SQL parses; the DuckDB translation means the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from sqlglot import exp

from fraudcore.rules import load_rules
from fraudcore.timeseries.rule_sql import compile_rule
from fraudlocal.adapters.timestream_sql import TimestreamSQLError, parse, to_duckdb

AT = datetime(2026, 11, 29, 12, 5, tzinfo=UTC)


def scalar(timestream_sql: str):
    return duckdb.connect().execute(to_duckdb(timestream_sql)).fetchone()[0]


@pytest.mark.parametrize("rule", load_rules(), ids=lambda rule: rule.id)
def test_every_rules_timestream_sql_parses_with_the_dialect(rule) -> None:
    tree = parse(compile_rule(rule, "fraud", "transactions", AT))
    calls = {node.name.lower() for node in tree.find_all(exp.Anonymous)}
    assert "bin" in calls  # windows are Timestream bins, read as such
    assert any(isinstance(node, exp.Interval) for node in tree.walk())  # duration literals were understood
    derived = to_duckdb(compile_rule(rule, "fraud", "transactions", AT))
    assert "TIME_BUCKET(" in derived and "CAST('1970-01-01 00:00:00' AS TIMESTAMP)" in derived
    end = "12:00:00" if rule.wait_for_close else "12:05:00"  # the last closed window's end
    assert f"CAST('2026-11-29 {end}' AS TIMESTAMP)" in derived


@pytest.mark.parametrize(
    ("literal", "seconds"),
    [("250ms", 0.25), ("30s", 30), ("5m", 300), ("1h", 3600), ("2d", 172_800)],
)
def test_duration_literals(literal: str, seconds: float) -> None:
    start = "from_iso8601_timestamp('2026-01-01T00:00:00Z')"
    moment = scalar(f"SELECT {start} + {literal}")
    assert moment == datetime(2026, 1, 1) + timedelta(seconds=seconds)


def test_bins_are_aligned_to_the_unix_epoch() -> None:
    # 1970-01-01 was a Thursday: 7-day bins start on Thursdays (DuckDB's own default origin,
    # 2000-01-03, is a Monday and would disagree with Timestream).
    assert scalar("SELECT bin(from_iso8601_timestamp('2026-11-29T12:34:56Z'), 7d)") == datetime(2026, 11, 26)
    assert scalar("SELECT bin(from_iso8601_timestamp('2026-11-29T12:34:56Z'), 150s)") == datetime(
        2026, 11, 29, 12, 32, 30
    )
    assert scalar("SELECT bin(from_milliseconds(1764419696000), 1h)") == datetime(2025, 11, 29, 12, 0)


def test_iso_timestamps_with_offsets_become_naive_utc() -> None:
    assert scalar("SELECT from_iso8601_timestamp('2026-06-17T08:04:05+05:00')") == datetime(
        2026, 6, 17, 3, 4, 5
    )
    text = "'2026-06-17T08:04:05.250Z'"
    assert scalar(f"SELECT from_iso8601_timestamp({text})") == datetime(2026, 6, 17, 8, 4, 5, 250_000)


def test_now_and_ago_are_utc() -> None:
    utc_now = datetime.now(tz=UTC).replace(tzinfo=None)
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'America/New_York'")  # the session zone must not matter
    now, hour_ago = connection.execute(to_duckdb("SELECT now(), ago(1h)")).fetchone()
    assert abs((now - utc_now).total_seconds()) < 60
    assert now - hour_ago == timedelta(hours=1)


def test_the_same_query_at_another_time_translates_the_same_way() -> None:
    rule = load_rules()[0]
    first = to_duckdb(compile_rule(rule, "fraud", "transactions", AT))
    second = to_duckdb(compile_rule(rule, "fraud", "transactions", AT + timedelta(minutes=5)))
    assert first.replace("12:05:00", "12:10:00").replace("11:52:30", "11:57:30") == second


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT FROM WHERE", "not valid Timestream SQL"),
        ("SELECT bin(time) FROM t", "bin() takes (time, duration)"),
        ("SELECT from_iso8601_timestamp('yesterday')", "not an ISO 8601 timestamp"),
    ],
)
def test_errors_name_the_problem(sql: str, message: str) -> None:
    with pytest.raises(TimestreamSQLError, match=message.replace("(", r"\(").replace(")", r"\)")):
        to_duckdb(sql)
