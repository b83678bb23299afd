"""The investigation's time-series queries, in the store's SQL dialect.

The window rules' SQL is compiled in :mod:`fraudcore.timeseries.rule_sql`; these are the
fixed queries of the shared-device analysis. Both take the engine-specific pieces (time
literals, the table name, the transaction-row filter) from a
:class:`fraudcore.timeseries.dialects.SqlDialect`: Timestream SQL by default (DuckDB runs it
translated), InfluxDB 3 SQL for InfluxDB 3 and the local DataFusion store.
"""

from __future__ import annotations

from . import quote_literal
from .dialects import TIMESTREAM, SqlDialect


def active_accounts_sql(
    database: str,
    table: str,
    column: str,
    values: list[str],
    start_ms: int,
    end_ms: int,
    dialect: SqlDialect = TIMESTREAM,
) -> str:
    """Distinct accounts per identifier value within [start, end]."""
    listed = ", ".join(quote_literal(v) for v in values)
    return (
        f"SELECT {column} AS identifier, COUNT(DISTINCT account_id) AS accounts "
        f"FROM {dialect.table(database, table)} "
        f"WHERE time BETWEEN {dialect.from_millis(start_ms)} AND {dialect.from_millis(end_ms)} "
        f"AND {column} IN ({listed}) "
        f"GROUP BY {column}"
    )


def _account_window(
    database: str, table: str, account: str, start_ms: int, end_ms: int, dialect: SqlDialect
) -> str:
    """FROM and WHERE of the account's transactions in [start, end)."""
    conditions = [
        *dialect.transaction_rows(),
        f"account_id = {quote_literal(account)}",
        f"time >= {dialect.from_millis(start_ms)}",
        f"time < {dialect.from_millis(end_ms)}",
    ]
    return f"FROM {dialect.table(database, table)} WHERE {' AND '.join(conditions)} "


def account_activity_sql(
    database: str, table: str, account: str, start_ms: int, end_ms: int, dialect: SqlDialect = TIMESTREAM
) -> str:
    """The account's amounts in [start, end) by device, IP and country."""
    return (
        "SELECT device_id, ip, country, SUM(amount) AS amount, COUNT(*) AS transactions "
        + _account_window(database, table, account, start_ms, end_ms, dialect)
        + "GROUP BY device_id, ip, country"
    )


def account_history_sql(
    database: str, table: str, account: str, start_ms: int, end_ms: int, dialect: SqlDialect = TIMESTREAM
) -> str:
    """The account's payments in [start, end) by country (a NULL country for those without)."""
    return (
        "SELECT country, COUNT(*) AS payments "
        + _account_window(database, table, account, start_ms, end_ms, dialect)
        + "GROUP BY country"
    )
