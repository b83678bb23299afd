"""The SQL dialects of the time-series engines: everything that differs between them, in one place.

The rule compiler (:mod:`fraudcore.timeseries.rule_sql`) and the analyses build their queries once,
asking a :class:`SqlDialect` for the few pieces the engines spell differently:

=====================  =======================================  ===========================================
piece                  Timestream for LiveAnalytics             InfluxDB 3 (Apache DataFusion SQL)
=====================  =======================================  ===========================================
a point in time        ``from_iso8601_timestamp('...Z')``       ``TIMESTAMP '...Z'``
epoch milliseconds     ``from_milliseconds(ms)``                ``to_timestamp_millis(ms)``
the table              ``"database"."table"``                   ``"table"`` (the database is a request
                                                                parameter of ``/api/v3/query_sql``)
window start           ``bin(time, 5m)``, shifted:              ``date_bin(INTERVAL '5 minutes', time,
                       ``bin(time - 150s, 5m) + 150s``          TIMESTAMP '1970-01-01T00:02:30Z')``
transaction rows       ``measure_name = 'transaction'``         (none: the table is the measurement)
integers 0..n-1        ``UNNEST(ARRAY[0, 1]) AS p (phase)``     ``(VALUES (0), (1)) AS p (phase)``
=====================  =======================================  ===========================================

Windows are aligned to the Unix epoch in both (``bin`` is; ``date_bin`` is given the epoch,
or the epoch shifted by the phase, as its origin). Everything else (``count(DISTINCT)``,
window frames, ``IN (subquery)``, ``UNION ALL``, ``least``) is spelled the same.

The local DuckDB store runs the Timestream text translated by sqlglot; the local DataFusion
store runs the InfluxDB 3 text as it is, on the engine InfluxDB 3 itself runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ..rules import format_duration
from ..timeutil import iso_z

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _sql_interval(span: timedelta) -> str:
    """An SQL interval literal in the largest whole unit (``INTERVAL '150 seconds'``)."""
    millis = round(span.total_seconds() * 1000)
    for unit, size in (("days", 86_400_000), ("hours", 3_600_000), ("minutes", 60_000), ("seconds", 1000)):
        if millis % size == 0:
            return f"INTERVAL '{millis // size} {unit}'"
    return f"INTERVAL '{millis} milliseconds'"


def _quote(name: str) -> str:
    return '"' + name.replace('"', "") + '"'


class SqlDialect:
    """How one engine spells the time-dependent and naming parts of a query."""

    name: str

    def timestamp(self, moment: datetime) -> str:
        """A literal point in time (UTC)."""
        raise NotImplementedError

    def from_millis(self, epoch_ms: int) -> str:
        """The point in time ``epoch_ms`` milliseconds after the Unix epoch."""
        raise NotImplementedError

    def table(self, database: str, table: str) -> str:
        """The transactions table as a query names it."""
        raise NotImplementedError

    def duration(self, span: timedelta) -> str:
        """A length of time to add to or subtract from a point in time."""
        raise NotImplementedError

    def window_start(self, window: timedelta, shift: timedelta = timedelta(0)) -> str:
        """The start of the epoch-aligned window (grid shifted by ``shift``) that holds ``time``."""
        raise NotImplementedError

    def transaction_rows(self) -> list[str]:
        """Conditions that keep the transaction records (the table may hold other measures)."""
        return []

    def numbers(self, alias: str, column: str, count: int) -> str:
        """A relation of the integers 0 .. count-1 in ``alias.column``, to cross join a read with:
        each row read once, used ``count`` times (a row in each of its overlapping windows)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<SQL dialect {self.name}>"


class TimestreamDialect(SqlDialect):
    """Timestream for LiveAnalytics SQL (the local DuckDB store runs it translated by sqlglot)."""

    name = "timestream"

    def timestamp(self, moment: datetime) -> str:
        return f"from_iso8601_timestamp('{iso_z(moment)}')"

    def from_millis(self, epoch_ms: int) -> str:
        return f"from_milliseconds({int(epoch_ms)})"

    def table(self, database: str, table: str) -> str:
        return f"{_quote(database)}.{_quote(table)}"

    def duration(self, span: timedelta) -> str:
        return format_duration(span)

    def window_start(self, window: timedelta, shift: timedelta = timedelta(0)) -> str:
        length = format_duration(window)
        if not shift:
            return f"bin(time, {length})"
        offset = format_duration(shift)
        return f"bin(time - {offset}, {length}) + {offset}"

    def transaction_rows(self) -> list[str]:
        return ["measure_name = 'transaction'"]

    def numbers(self, alias: str, column: str, count: int) -> str:
        return f"UNNEST(ARRAY[{', '.join(str(number) for number in range(count))}]) AS {alias} ({column})"


class InfluxDB3Dialect(SqlDialect):
    """InfluxDB 3 SQL, executed by Apache DataFusion (on AWS and in the local DataFusion store)."""

    name = "influxdb3"

    def timestamp(self, moment: datetime) -> str:
        return f"TIMESTAMP '{iso_z(moment)}'"

    def from_millis(self, epoch_ms: int) -> str:
        return f"to_timestamp_millis({int(epoch_ms)})"

    def table(self, database: str, table: str) -> str:
        return _quote(table)  # the database is the db parameter of /api/v3/query_sql

    def duration(self, span: timedelta) -> str:
        return _sql_interval(span)

    def window_start(self, window: timedelta, shift: timedelta = timedelta(0)) -> str:
        return f"date_bin({_sql_interval(window)}, time, {self.timestamp(_EPOCH + shift)})"

    def numbers(self, alias: str, column: str, count: int) -> str:
        rows = ", ".join(f"({number})" for number in range(count))
        return f"(VALUES {rows}) AS {alias} ({column})"


TIMESTREAM = TimestreamDialect()
INFLUXDB3 = InfluxDB3Dialect()
DIALECTS: dict[str, SqlDialect] = {dialect.name: dialect for dialect in (TIMESTREAM, INFLUXDB3)}


def dialect_of(store: object) -> SqlDialect:
    """The dialect a time-series store speaks (``store.sql_dialect``; Timestream SQL when it says none)."""
    return getattr(store, "sql_dialect", TIMESTREAM)
