"""The investigation's time-series queries, as Timestream SQL (DuckDB runs them translated).

The window rules' SQL is compiled in :mod:`fraudcore.timeseries.rule_sql`; these are the
fixed queries of the shared-device analysis.
"""

from __future__ import annotations

from . import quote_identifier, quote_literal


def active_accounts_sql(
    database: str, table: str, column: str, values: list[str], start_ms: int, end_ms: int
) -> str:
    """Timestream SQL: distinct accounts per identifier value within [start, end]."""
    listed = ", ".join(quote_literal(v) for v in values)
    return (
        f"SELECT {column} AS identifier, COUNT(DISTINCT account_id) AS accounts "
        f"FROM {quote_identifier(database)}.{quote_identifier(table)} "
        f"WHERE time BETWEEN from_milliseconds({start_ms}) AND from_milliseconds({end_ms}) "
        f"AND {column} IN ({listed}) "
        f"GROUP BY {column}"
    )


def _account_window(database: str, table: str, account: str, start_ms: int, end_ms: int) -> str:
    """FROM and WHERE of the account's transactions in [start, end)."""
    return (
        f"FROM {quote_identifier(database)}.{quote_identifier(table)} "
        f"WHERE measure_name = 'transaction' AND account_id = {quote_literal(account)} "
        f"AND time >= from_milliseconds({start_ms}) AND time < from_milliseconds({end_ms}) "
    )


def account_activity_sql(database: str, table: str, account: str, start_ms: int, end_ms: int) -> str:
    """Timestream SQL: the account's amounts in [start, end) by device, IP and country."""
    return (
        "SELECT device_id, ip, country, SUM(amount) AS amount, COUNT(*) AS transactions "
        + _account_window(database, table, account, start_ms, end_ms)
        + "GROUP BY device_id, ip, country"
    )


def account_countries_sql(database: str, table: str, account: str, start_ms: int, end_ms: int) -> str:
    """Timestream SQL: the countries of the account's activity in [start, end)."""
    return (
        "SELECT DISTINCT country "
        + _account_window(database, table, account, start_ms, end_ms)
        + "AND country IS NOT NULL"
    )
