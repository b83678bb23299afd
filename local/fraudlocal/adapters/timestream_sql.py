"""Timestream SQL, read by sqlglot, written as DuckDB SQL.

Timestream for LiveAnalytics speaks a Trino-like SQL with a few additions this module
teaches sqlglot: duration literals (``5m``, ``1h``, ``250ms``), ``bin(time, 5m)``,
``ago(1h)``, ``now()``, ``from_milliseconds(ms)`` and ``from_iso8601_timestamp(text)``.
The Timestream text is the only SQL anyone writes; the DuckDB text is derived from it.

Times in the DuckDB store are naive ``TIMESTAMP`` values in UTC, so every derived time
expression is made naive UTC too (DuckDB's ``now()`` is a ``TIMESTAMPTZ`` that would
otherwise be compared in the session's time zone). ``bin()`` becomes ``time_bucket`` with
an explicit Unix-epoch origin: DuckDB's default origin (2000-01-03) would shift bins
wider than a day away from Timestream's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.dialects.trino import Trino
from sqlglot.errors import ParseError
from sqlglot.tokens import TokenType

#: Timestream duration units -> SQL interval units (and the size of one, for checks)
DURATION_UNITS = {
    "ns": ("NANOSECOND", 1e-9),
    "us": ("MICROSECOND", 1e-6),
    "ms": ("MILLISECOND", 1e-3),
    "s": ("SECOND", 1),
    "m": ("MINUTE", 60),
    "h": ("HOUR", 3600),
    "d": ("DAY", 86400),
}

_SLOT = "__bound_{}__"
_SLOT_RE = re.compile(r"^__bound_\d+__$")
_EPOCH = exp.cast(exp.Literal.string("1970-01-01 00:00:00"), exp.DataType.build("TIMESTAMP"))


class TimestreamSQLError(ValueError):
    """The text is not Timestream SQL this dialect can read or translate."""


def _parse_number_or_duration(parser, token):
    """A number, or a duration literal when a unit follows with no space (``5m``)."""
    following = parser._curr
    if (
        following is not None
        and following.token_type in (TokenType.VAR, TokenType.IDENTIFIER)
        and following.start == token.end + 1
        and following.text.lower() in DURATION_UNITS
        and token.text.isdigit()
    ):
        parser._advance()
        unit = DURATION_UNITS[following.text.lower()][0]
        return exp.Interval(this=exp.Literal.string(token.text), unit=exp.var(unit))
    return exp.Literal.number(token.text)


class Timestream(Trino):
    """sqlglot dialect for Amazon Timestream for LiveAnalytics (read side)."""

    class Parser(Trino.Parser):
        PRIMARY_PARSERS = {
            **Trino.Parser.PRIMARY_PARSERS,
            TokenType.NUMBER: _parse_number_or_duration,
        }


def parse(timestream_sql: str) -> exp.Expression:
    """Parse Timestream SQL; a :class:`TimestreamSQLError` names what could not be read."""
    try:
        tree = sqlglot.parse_one(timestream_sql, read=Timestream)
    except ParseError as error:
        raise TimestreamSQLError(f"not valid Timestream SQL: {error}") from None
    if tree is None:
        raise TimestreamSQLError("empty Timestream SQL")
    return tree


def _naive_utc(moment: exp.Expression) -> exp.Expression:
    return exp.func("timezone", exp.Literal.string("UTC"), moment)


def _iso_literal_to_timestamp(text: str) -> exp.Expression:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise TimestreamSQLError(f"from_iso8601_timestamp({text!r}): not an ISO 8601 timestamp") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return exp.cast(exp.Literal.string(moment.isoformat(sep=" ")), exp.DataType.build("TIMESTAMP"))


@lru_cache(maxsize=4096)
def _duckdb_timestamp(text: str) -> str:
    """The DuckDB literal of a ``from_iso8601_timestamp`` text: the scheduled runs of every rule
    share their time bounds, so each is written (by sqlglot) once."""
    return _iso_literal_to_timestamp(text).sql(dialect="duckdb")


def _function_name(node: exp.Expression) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    return ""


def _translate(node: exp.Expression) -> exp.Expression:
    name = _function_name(node)
    args = list(node.expressions) if isinstance(node, exp.Anonymous) else []
    if name == "bin":
        if len(args) != 2:
            raise TimestreamSQLError(f"bin() takes (time, duration), got {len(args)} arguments")
        return exp.func("time_bucket", args[1], args[0], _EPOCH.copy())
    if name == "ago":
        if len(args) != 1:
            raise TimestreamSQLError("ago() takes one duration")
        return exp.Sub(this=_naive_utc(exp.CurrentTimestamp()), expression=args[0])
    if name == "from_milliseconds":
        return exp.func("epoch_ms", *args)
    if name == "from_iso8601_timestamp":
        (text,) = args
        if isinstance(text, exp.Literal) and text.is_string and _SLOT_RE.match(text.this):
            return exp.cast(exp.Literal.string(text.this), exp.DataType.build("TIMESTAMP"))
        if isinstance(text, exp.Literal) and text.is_string:
            return _iso_literal_to_timestamp(text.this)
        return _naive_utc(exp.cast(text, exp.DataType.build("TIMESTAMPTZ")))
    if isinstance(node, exp.CurrentTimestamp) and not isinstance(node.parent, exp.Anonymous):
        return _naive_utc(exp.CurrentTimestamp())
    return node


def _normalise_known_functions(tree: exp.Expression) -> exp.Expression:
    """Turn the functions sqlglot already knows (from Trino) back into their Timestream names.

    Trino's parser reads some of them into typed nodes whose DuckDB rendering does not keep
    the UTC-naive convention; handling all of them as named calls keeps one translation path.
    """

    def rename(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.UnixToTime) and node.args.get("scale") is not None:
            scale = node.args["scale"]
            if isinstance(scale, exp.Literal) and scale.this == "3":
                return exp.Anonymous(this="from_milliseconds", expressions=[node.this])
        if isinstance(node, exp.Func) and not isinstance(node, exp.Anonymous):
            sql_name = node.sql_name().lower() if hasattr(node, "sql_name") else ""
            if sql_name == "from_iso8601_timestamp":
                return exp.Anonymous(this="from_iso8601_timestamp", expressions=[node.this])
        return node

    return tree.transform(rename)


@lru_cache(maxsize=512)
def _translate_text(timestream_sql: str) -> str:
    tree = _normalise_known_functions(parse(timestream_sql))
    # A replaced call's arguments are not revisited by transform(): repeat until nothing
    # changes, so nested calls (bin(from_iso8601_timestamp(...), 1h)) are translated too.
    for _ in range(8):
        translated = tree.transform(_translate)
        if translated == tree:
            break
        tree = translated
    return tree.sql(dialect="duckdb")


#: what one scan of the text meets, in this order at each position: a comment, a quoted
#: identifier or a string literal (kept whole, so nothing inside one is taken for a bound),
#: else a bound that may be set aside: an ISO time, epoch milliseconds, a list of plain strings
_BOUNDS = re.compile(
    r"(?P<comment>--[^\n]*|/\*.*?\*/)"
    r"|(?P<quoted>\"(?:[^\"]|\"\")*\")"
    r"|(?P<iso>from_iso8601_timestamp\(\s*'(?P<iso_text>[^']*)'\s*\))"
    r"|(?P<millis>from_milliseconds\(\s*(?P<millis_value>\d{1,19})\s*\))"
    r"|(?P<listed>\bIN\s*\(\s*(?P<items>'[\w.:@+\-]*'(?:\s*,\s*'[\w.:@+\-]*')*)\s*\))"
    r"|(?P<equal>(?<![<>!])=\s*(?P<value>'[\w.:@+\-]*'))"
    r"|(?P<string>'(?:[^']|'')*')",
    re.IGNORECASE | re.DOTALL,
)


def _set_aside(timestream_sql: str, slot: Callable[[str, str], str]) -> str:
    """The text with each bound replaced by ``slot(kind, text)``: the ISO text of a
    ``from_iso8601_timestamp('...')`` call, the digits of a ``from_milliseconds(...)`` call,
    the items of an ``IN (...)`` list of plain strings (letters, digits, ``_.:@+-``: written the
    same in both dialects), such a string a column is equal to. Comments, quoted names and other string literals stay as they are."""

    def replace(match: re.Match[str]) -> str:
        if match.group("iso") is not None:
            return f"from_iso8601_timestamp('{slot('iso', match.group('iso_text'))}')"
        if match.group("millis") is not None:
            return f"from_milliseconds('{slot('millis', match.group('millis_value'))}')"
        if match.group("listed") is not None:
            return f"IN ('{slot('listed', match.group('items'))}')"
        if match.group("equal") is not None:
            return f"= '{slot('listed', match.group('value'))}'"
        return match.group(0)

    return _BOUNDS.sub(replace, timestream_sql)


def to_duckdb(timestream_sql: str) -> str:
    """The DuckDB query that means the same as this Timestream query, on the same schema."""
    # Scheduled queries differ only in their time bounds, and an investigation's in its
    # accounts or identifiers and its time range: translating the text with those set aside
    # lets one parse serve every evaluation of a rule (a backtest runs thousands) and every
    # investigation. Each is converted on its own and put back where its slot is.
    fills: list[tuple[str, str]] = []

    def slot(kind: str, text: str) -> str:
        name = _SLOT.format(len(fills))
        if kind == "iso":
            fills.append((f"CAST('{name}' AS TIMESTAMP)", _duckdb_timestamp(text)))
        elif kind == "millis":
            fills.append((f"'{name}'", str(int(text))))
        else:  # the items of a list, written alike in both dialects
            fills.append((f"'{name}'", re.sub(r"\s*,\s*", ", ", text)))
        return name

    template = _translate_text(_set_aside(timestream_sql, slot))
    for placeholder, value in fills:
        if template.count(placeholder) != 1:  # the translation moved a slot: translate it all
            return _translate_text(timestream_sql)
        template = template.replace(placeholder, value)
    return template


@lru_cache(maxsize=512)
def _column_names(timestream_sql_without_bounds: str) -> frozenset[str]:
    return frozenset(column.name for column in parse(timestream_sql_without_bounds).find_all(exp.Column))


def column_references(timestream_sql: str) -> list[tuple[str, int, int]]:
    """Every column name the query reads, with the line and column (1-based) of its first use,
    in the order they appear: what Timestream's "Column 'x' does not exist" points at."""
    found = []
    # keyed without the bounds (none names a column): a rule's scheduled queries, and an
    # investigation's queries, then parse once
    for name in _column_names(_set_aside(timestream_sql, lambda kind, text: "bound")):
        match = re.search(rf'(?<![\w."]){re.escape(name)}(?![\w"])|"{re.escape(name)}"', timestream_sql)
        offset = match.start() if match else 0
        line = timestream_sql.count("\n", 0, offset) + 1
        column = offset - (timestream_sql.rfind("\n", 0, offset) + 1) + 1
        found.append((name, line, column, offset))
    return [(name, line, column) for name, line, column, _ in sorted(found, key=lambda item: item[3])]
