"""Intrinsic functions (``States.Format('{}', $.x)`` and friends).

A small recursive-descent parser turns the call text into a tree; arguments are string
literals (single quotes, backslash escapes), numbers, ``true``/``false``/``null``, paths
(``$.x``, ``$$.Execution.Name``) and nested calls. Failures are
``States.IntrinsicFailure`` errors that name the function and what was wrong.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import paths
from .errors import IntrinsicFailure

_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")
_FUNCTION = re.compile(r"States\.[A-Za-z0-9]+")
_PATH_END = re.compile(r"[\s,)]")


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class PathArg:
    path: str


@dataclass(frozen=True)
class Literal:
    value: Any


def is_intrinsic(text: Any) -> bool:
    return isinstance(text, str) and text.startswith("States.")


def evaluate(text: str, data: Any, context: Any) -> Any:
    """Evaluate one intrinsic function call against the state data and context object."""
    call = _Parser(text).parse()
    return _eval(call, data, context)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, why: str) -> IntrinsicFailure:
        return IntrinsicFailure(f"Cannot parse {self.text!r} at offset {self.pos}: {why}")

    def parse(self) -> Call:
        call = self.call()
        self.skip_space()
        if self.pos != len(self.text):
            raise self.fail("unexpected text after the closing parenthesis")
        return call

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def call(self) -> Call:
        match = _FUNCTION.match(self.text, self.pos)
        if not match or not self.text.startswith("(", match.end()):
            raise self.fail("expected a call such as States.Format(...)")
        self.pos = match.end() + 1
        args: list[Any] = []
        self.skip_space()
        if self.text.startswith(")", self.pos):
            self.pos += 1
            return Call(match.group(0), ())
        while True:
            self.skip_space()
            args.append(self.argument())
            self.skip_space()
            if self.text.startswith(",", self.pos):
                self.pos += 1
            elif self.text.startswith(")", self.pos):
                self.pos += 1
                return Call(match.group(0), tuple(args))
            else:
                raise self.fail("expected ',' or ')'")

    def argument(self) -> Any:
        rest = self.text[self.pos :]
        if rest.startswith("'"):
            return Literal(self.string())
        if rest.startswith("States."):
            return self.call()
        if rest.startswith("$"):
            end = _PATH_END.search(self.text, self.pos)
            stop = end.start() if end else len(self.text)
            path, self.pos = self.text[self.pos : stop], stop
            return PathArg(path)
        for word, value in (("true", True), ("false", False), ("null", None)):
            if rest.startswith(word):
                self.pos += len(word)
                return Literal(value)
        match = _NUMBER.match(self.text, self.pos)
        if match:
            self.pos = match.end()
            number = match.group(0)
            return Literal(float(number) if match.group(1) or match.group(2) else int(number))
        raise self.fail("expected a string, number, boolean, null, path or call")

    def string(self) -> str:
        out: list[str] = []
        self.pos += 1
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\" and self.pos + 1 < len(self.text):
                # Escapes stay marked so that States.Format can tell \{ from a placeholder.
                out.append("\\" + self.text[self.pos + 1])
                self.pos += 2
                continue
            if char == "'":
                self.pos += 1
                return "".join(out)
            out.append(char)
            self.pos += 1
        raise self.fail("unterminated string literal")


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _eval(node: Any, data: Any, context: Any) -> Any:
    if isinstance(node, Literal):
        return _unescape(node.value) if isinstance(node.value, str) else node.value
    if isinstance(node, PathArg):
        return paths.read(node.path, data, context)
    function = _FUNCTIONS.get(node.name)
    if function is None:
        raise IntrinsicFailure(f"Unknown intrinsic function {node.name}")
    if node.name == "States.Format":
        return _format(node, data, context)
    args = [_eval(arg, data, context) for arg in node.args]
    try:
        return function(*args)
    except IntrinsicFailure:
        raise
    except (TypeError, ValueError, KeyError, IndexError, json.JSONDecodeError) as exc:
        raise IntrinsicFailure(f"{node.name} failed with arguments {args!r}: {exc}") from None


def _format(node: Call, data: Any, context: Any) -> str:
    if not node.args or not isinstance(node.args[0], Literal) or not isinstance(node.args[0].value, str):
        raise IntrinsicFailure("States.Format needs a string literal template as its first argument")
    template = node.args[0].value
    values = [_eval(arg, data, context) for arg in node.args[1:]]
    pieces = re.split(r"(\\.|\{\})", template)
    if pieces.count("{}") != len(values):
        raise IntrinsicFailure(
            f"States.Format template {_unescape(template)!r} has {pieces.count('{}')} placeholders "
            f"but {len(values)} arguments"
        )
    out: list[str] = []
    remaining = iter(values)
    for piece in pieces:
        if piece == "{}":
            out.append(_format_value(next(remaining)))
        else:
            out.append(_unescape(piece))
    return "".join(out)


def _format_value(value: Any) -> str:
    if isinstance(value, dict | list):
        raise IntrinsicFailure(
            "States.Format accepts strings, numbers, booleans and null, not objects or arrays"
        )
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return str(value)


def _need(condition: bool, message: str) -> None:
    if not condition:
        raise IntrinsicFailure(message)


def _array_partition(items: list[Any], size: int) -> list[list[Any]]:
    _need(
        isinstance(items, list) and isinstance(size, int) and size > 0, "States.ArrayPartition(array, size>0)"
    )
    return [items[i : i + size] for i in range(0, len(items), size)]


def _array_range(start: int, stop: int, step: int) -> list[int]:
    _need(
        all(isinstance(v, int) for v in (start, stop, step)) and step != 0, "States.ArrayRange needs integers"
    )
    values = list(range(start, stop + (1 if step > 0 else -1), step))
    _need(len(values) <= 1000, "States.ArrayRange produces at most 1000 items")
    return values


def _array_get_item(items: list[Any], index: int) -> Any:
    _need(isinstance(items, list), "States.ArrayGetItem needs an array")
    _need(isinstance(index, int) and 0 <= index < len(items), f"index {index} is out of range")
    return items[index]


def _array_unique(items: list[Any]) -> list[Any]:
    unique: list[Any] = []
    for item in items:
        if item not in unique:
            unique.append(item)
    return unique


_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


def _hash(value: Any, algorithm: str) -> str:
    _need(algorithm in _HASHES, f"States.Hash algorithm must be one of {sorted(_HASHES)}, not {algorithm!r}")
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return hashlib.new(_HASHES[algorithm], text.encode()).hexdigest()


def _json_merge(left: dict[str, Any], right: dict[str, Any], deep: bool) -> dict[str, Any]:
    _need(isinstance(left, dict) and isinstance(right, dict), "States.JsonMerge merges two objects")
    _need(deep is False, "States.JsonMerge supports only a shallow merge (third argument false)")
    return {**left, **right}


def _math_random(start: int, end: int, seed: int | None = None) -> int:
    rng = random.Random(seed) if seed is not None else random.Random()
    return rng.randrange(start, end)


def _math_add(left: Any, right: Any) -> int:
    _need(
        all(isinstance(v, int | float) and not isinstance(v, bool) for v in (left, right)),
        "MathAdd needs numbers",
    )
    return int(left) + int(right)


def _string_split(text: str, delimiters: str) -> list[str]:
    _need(isinstance(text, str) and isinstance(delimiters, str), "States.StringSplit needs two strings")
    parts = re.split("|".join(re.escape(d) for d in delimiters), text) if delimiters else [text]
    return [p for p in parts if p]


def _string_to_json(text: str) -> Any:
    _need(isinstance(text, str), "States.StringToJson needs a string")
    return json.loads(text)


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "States.Format": lambda *_: None,  # evaluated by _format: it needs the raw template
    "States.StringToJson": _string_to_json,
    "States.JsonToString": lambda value: json.dumps(value, separators=(",", ":")),
    "States.Array": lambda *values: list(values),
    "States.ArrayPartition": _array_partition,
    "States.ArrayContains": lambda items, value: value in items,
    "States.ArrayRange": _array_range,
    "States.ArrayGetItem": _array_get_item,
    "States.ArrayLength": lambda items: (
        len(items) if isinstance(items, list) else _need(False, "not an array")
    ),
    "States.ArrayUnique": _array_unique,
    "States.Base64Encode": lambda text: base64.b64encode(text.encode()).decode(),
    "States.Base64Decode": lambda text: base64.b64decode(text.encode(), validate=True).decode(),
    "States.Hash": _hash,
    "States.JsonMerge": _json_merge,
    "States.MathRandom": _math_random,
    "States.MathAdd": _math_add,
    "States.StringSplit": _string_split,
    "States.UUID": lambda: str(uuid.uuid4()),
}
