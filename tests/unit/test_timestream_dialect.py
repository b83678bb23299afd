"""The Timestream dialect: every rule's SQL parses; the DuckDB translation means the same."""

from __future__ import annotations

import re
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


def _corpus() -> list[str]:
    """Timestream SQL the project sends: every rule at a few runs, the investigations' reads
    of accounts and identifiers (with ids that may and may not be set aside), and texts where
    a bound's look-alike sits in a string, a quoted name or a comment."""
    from fraudcore.timeseries.queries import account_activity_sql, account_history_sql, active_accounts_sql

    corpus = [
        compile_rule(rule, "fraud", "transactions", AT + timedelta(minutes=5 * step))
        for rule in load_rules()
        for step in (0, 1, 97)
    ]
    ids = ["dev-3781dc8563", "acct_0001", "a.b:c@d+e-f", "it's", "x, y", "Ünïcode", "back\\slash", ""]
    for count in (1, 2, 5):
        for offset in range(len(ids)):
            listed = (ids[offset:] + ids[:offset])[:count]
            corpus.append(
                active_accounts_sql(
                    "fraud", "transactions", "device_id", listed, 1793512800000, 1793599200000 + offset
                )
            )
    for account in ids:
        corpus.append(account_history_sql("fraud", "transactions", account, 1793512800000, 1793599200000))
        corpus.append(account_activity_sql("fraud", "transactions", account, 1793512800000, 1793599200000))
    corpus += [
        "SELECT 'from_milliseconds(5)' AS a, \"IN ('x')\" FROM t WHERE b IN ('q') AND c = 'from_iso8601_timestamp(''2026-01-01'')'",
        "SELECT a FROM t -- IN ('x') from_milliseconds(7)\nWHERE a NOT IN ( 'p' ,'q' ) AND time > from_milliseconds( 12 )",
        "SELECT a FROM t /* from_iso8601_timestamp('2026-01-01T00:00:00Z') */ WHERE time >= from_iso8601_timestamp('2026-11-29T12:05:00Z')",
        "SELECT a FROM t WHERE a IN ('p') OR a IN ('q', 'r') OR time < from_milliseconds(1) OR time > from_milliseconds(2)",
        "SELECT a FROM t WHERE a = 'p' AND b <= 'q' AND c >= 'r' AND d != 's' AND e <> 't' AND f='u' AND g = 'it''s'",
    ]
    return corpus


@pytest.mark.parametrize("sql", _corpus())
def test_setting_bounds_aside_translates_as_the_whole_text_does(sql: str) -> None:
    """The cached translation (bounds set aside, put back after) is the text translated whole."""
    from fraudlocal.adapters.timestream_sql import _translate_text

    assert to_duckdb(sql) == _translate_text.__wrapped__(sql)


def test_queries_that_differ_only_in_their_bounds_parse_once() -> None:
    from fraudcore.timeseries.queries import active_accounts_sql
    from fraudlocal.adapters.timestream_sql import _translate_text

    _translate_text.cache_clear()
    for index in range(20):
        values = [f"dev-{index}", f"dev-{index + 1}"][: 1 + index % 2]
        to_duckdb(
            active_accounts_sql("fraud", "transactions", "device_id", values, 1000 * index, 2000 * index)
        )
    assert _translate_text.cache_info().misses == 1


def test_time_bounds_shared_by_queries_are_written_once() -> None:
    from fraudlocal.adapters.timestream_sql import _duckdb_timestamp

    rules = load_rules()[:3]
    _duckdb_timestamp.cache_clear()
    texts = [compile_rule(rule, "fraud", "transactions", AT) for rule in rules for _ in range(2)]
    for sql in texts:
        assert to_duckdb(sql) == _translate_text_whole(sql)
    bounds = {bound for sql in texts for bound in re.findall(r"from_iso8601_timestamp\('([^']*)'\)", sql)}
    assert _duckdb_timestamp.cache_info().misses == len(bounds)
    # a text that is no time is refused at every query, never remembered as written
    for _ in range(2):
        with pytest.raises(TimestreamSQLError, match="not an ISO 8601 timestamp"):
            to_duckdb("SELECT a FROM t WHERE time > from_iso8601_timestamp('noon')")


def _translate_text_whole(sql: str) -> str:
    from fraudlocal.adapters.timestream_sql import _translate_text

    return _translate_text.__wrapped__(sql)
