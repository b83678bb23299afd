"""A line-protocol reader, as strict as InfluxDB 3's: what the local stores and the v3 server read.

Each line is ``measurement[,tag=value...] field=value[,field=value...] [timestamp]``:

- measurement: ``\\,`` and ``\\ `` are escapes; tag keys, tag values and field keys: ``\\,``,
  ``\\=`` and ``\\ ``. A backslash before any other character is itself.
- field values: ``"string"`` (``\\"`` and ``\\\\`` escaped), ``1.5`` / ``1e3`` (float), ``12i``
  (integer), ``12u`` (unsigned), ``t``/``true``/``f``/``false`` (any case); at least one field.
- timestamp: an integer in the write's precision; absent means the time of the write.

A line that breaks a rule raises :class:`LineError` with what was wrong and where; the
caller reports it with the line number, as InfluxDB's partial-write errors do. Empty lines
and ``#`` comments are skipped.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

#: multiplier from each ``precision`` to nanoseconds
PRECISIONS = {
    "nanosecond": 1,
    "microsecond": 1_000,
    "millisecond": 1_000_000,
    "second": 1_000_000_000,
}
_FLOAT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_INTEGER = re.compile(r"^[+-]?\d+i$")
_UNSIGNED = re.compile(r"^\d+u$")
_BOOLEANS = {"t": True, "true": True, "f": False, "false": False}
_INT64 = (-(2**63), 2**63 - 1)


class LineError(ValueError):
    """A line that is not valid line protocol."""


@dataclass(frozen=True)
class Point:
    """One parsed line: the table, its tags, its typed fields and its time in nanoseconds."""

    measurement: str
    tags: dict[str, str]
    fields: dict[str, Any]
    time_ns: int


@lru_cache(maxsize=8)
def _run_pattern(stops: str, specials: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(a run up to the first unescaped stop, an escape sequence) for these characters."""
    special_class = re.escape(specials)
    run = re.compile(rf"(?:\\[{special_class}]|\\(?![{special_class}])|[^{re.escape(stops)}\\])*", re.DOTALL)
    return run, re.compile(rf"\\([{special_class}])")


def _unescape_until(text: str, start: int, stops: str, specials: str) -> tuple[str, int]:
    """Read from ``start`` up to the first unescaped character of ``stops``; (value, its end)."""
    run, escape = _run_pattern(stops, specials)
    match = run.match(text, start)
    end = match.end() if match else start
    chunk = text[start:end]
    return (escape.sub(r"\1", chunk) if "\\" in chunk else chunk), end


def _auto_precision(value: int) -> int:
    """InfluxDB 3's ``precision=auto``: the unit is guessed from the magnitude."""
    magnitude = abs(value)
    if magnitude < 5e9:
        return PRECISIONS["second"]
    if magnitude < 5e12:
        return PRECISIONS["millisecond"]
    if magnitude < 5e15:
        return PRECISIONS["microsecond"]
    return 1


def _field_value(key: str, raw: str) -> Any:
    if raw in ("", None):
        raise LineError(f"field {key!r} has no value")
    if raw.lower() in _BOOLEANS:
        return _BOOLEANS[raw.lower()]
    if _INTEGER.match(raw):
        value = int(raw[:-1])
        if not _INT64[0] <= value <= _INT64[1]:
            raise LineError(f"field {key!r}: integer {raw} is out of range")
        return value
    if _UNSIGNED.match(raw):
        value = int(raw[:-1])
        if value > 2**64 - 1:
            raise LineError(f"field {key!r}: unsigned integer {raw} is out of range")
        return ("u", value)
    if _FLOAT.match(raw):
        return float(raw)
    raise LineError(f"field {key!r}: invalid value {raw!r}")


_STRING = re.compile(r'"((?:\\["\\]|\\(?!["\\])|[^"\\])*)"', re.DOTALL)
_STRING_ESCAPE = re.compile(r'\\(["\\])')


def _string_field(text: str, index: int, key: str) -> tuple[str, int]:
    """Read a double-quoted string starting at ``text[index] == '"'``; (value, index after it)."""
    match = _STRING.match(text, index)
    if not match:
        raise LineError(f"field {key!r}: string value has no closing double quote")
    value = match.group(1)
    return (_STRING_ESCAPE.sub(r"\1", value) if "\\" in value else value), match.end()


def parse_line(line: str, precision: str = "auto", now_ns: int | None = None) -> Point:
    """One line of line protocol (:class:`LineError` when it is not valid)."""
    measurement, index = _unescape_until(line, 0, ", ", ", \\")
    if not measurement:
        raise LineError("missing measurement")
    tags: dict[str, str] = {}
    while index < len(line) and line[index] == ",":
        key, index = _unescape_until(line, index + 1, "=, ", ",= ")
        if index >= len(line) or line[index] != "=":
            raise LineError(f"tag {key!r} has no value")
        value, index = _unescape_until(line, index + 1, ", ", ",= ")
        if not key or not value:
            raise LineError(f"tag {key!r}: tag keys and values must not be empty")
        if key in tags:
            raise LineError(f"tag {key!r} appears twice")
        tags[key] = value
    if index >= len(line) or line[index] != " ":
        raise LineError("expected a space before the fields")
    index += 1
    fields: dict[str, Any] = {}
    while True:
        key, index = _unescape_until(line, index, "=, ", ",= ")
        if not key or index >= len(line) or line[index] != "=":
            raise LineError(f"field {key!r} has no value" if key else "missing fields")
        index += 1
        if index < len(line) and line[index] == '"':
            value, index = _string_field(line, index, key)
        else:
            end = index
            while end < len(line) and line[end] not in ", ":
                end += 1
            value, index = _field_value(key, line[index:end]), end
        if key in fields:
            raise LineError(f"field {key!r} appears twice")
        if key in tags:
            raise LineError(f"{key!r} is both a tag and a field")
        fields[key] = value
        if index < len(line) and line[index] == ",":
            index += 1
            continue
        break
    rest = line[index:].strip(" ")
    if not rest:
        time_ns = now_ns if now_ns is not None else time.time_ns()
    else:
        if not re.fullmatch(r"-?\d+", rest):
            raise LineError(f"invalid timestamp {rest!r}")
        stamp = int(rest)
        scale = _auto_precision(stamp) if precision == "auto" else PRECISIONS[precision]
        time_ns = stamp * scale
        if not _INT64[0] <= time_ns <= _INT64[1]:
            raise LineError(f"timestamp {rest} is out of range for precision {precision}")
    return Point(measurement, tags, fields, time_ns)


def parse_lines(
    body: str, precision: str = "auto"
) -> tuple[list[tuple[int, str, Point]], list[dict[str, Any]]]:
    """Every line of a write: ``([(line_number, line, point)], [error as InfluxDB reports it])``.

    Line numbers count from 1 over every line of the body, blank and comment lines included.
    """
    if precision != "auto" and precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: expected auto, {', '.join(PRECISIONS)}")
    now_ns = time.time_ns()
    points: list[tuple[int, str, Point]] = []
    errors: list[dict[str, Any]] = []
    for number, line in enumerate(body.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            points.append((number, line, parse_line(line, precision, now_ns)))
        except LineError as error:
            errors.append({"original_line": line, "line_number": number, "error_message": str(error)})
    return points, errors
