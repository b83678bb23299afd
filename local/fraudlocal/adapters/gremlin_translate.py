"""Translate gremlinpython bytecode into graphersal script text, and its results back.

graphersal takes Gremlin as script text in its own Rhai-based dialect: double-quoted
strings, ``#{..}`` maps whose token keys are the reserved strings ``"T.id"``,
``"T.label"``, ``"Direction.OUT"`` and ``"Direction.IN"``, enum tokens spelled like
gremlin-groovy (``Merge.onCreate``, ``Order.desc``) and a terminal (``.to_list()``,
``.iterate()``) that makes the traversal run. The graph store is written once in
gremlinpython bytecode; this module is what lets the same bytecode run in-process.

Safety: user values never reach the script unescaped. Strings become double-quoted
literals with every quote, backslash and control character escaped (double-quoted
Rhai strings do not interpolate); values without a literal form (dates and times,
UUIDs, NaN and the infinities, the smallest int64) are bound through graphersal's
``params``. Anything this module cannot translate raises :class:`TranslationError`
naming the step.

Data batches: a list of maps (``inject(rows)`` of a batched upsert) is bound as one JSON
string parameter and read by the script's ``parse_json``: the engine parses JSON several
times faster than the same data written as script literals, and the script text stays
short. Only values JSON carries exactly take that path: strings, booleans, nulls, int64
integers and floats whose shortest decimal form the engine's JSON reader reads back
exactly (at most 15 significant digits, a decimal exponent within 22); a batch holding
anything else is written as literals, as before.

Results: graphersal returns ``graphersal.Vertex``/``Edge``, plain lists for paths and
plain string keys ``"id"``/``"label"``/``"IN"``/``"OUT"`` in element maps. The
translator records the *shape* the traversal produces (element map, path, a list or a
``project`` map of those) so :func:`convert_result` can give callers the same values a
Gremlin Server gives: gremlinpython ``Vertex``/``Edge``/``Path`` and ``T``/``Direction``
keys.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gremlin_python.process.strategies import OptionsStrategy
from gremlin_python.process.traversal import (
    Binding,
    Bytecode,
    Cardinality,
    CardinalityValue,
    Direction,
    P,
    T,
    TextP,
    TraversalStrategy,
    WithOptions,
)
from gremlin_python.statics import long
from gremlin_python.structure.graph import Edge, Element, Path, Property, Vertex, VertexProperty

__all__ = [
    "RESERVED_MAP_KEYS",
    "Script",
    "TranslationError",
    "convert_result",
    "translate",
]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

#: String keys graphersal reads as tokens inside a map; a plain string key spelled like
#: one would silently change meaning, so the translator refuses it.
RESERVED_MAP_KEYS = frozenset({"T.id", "T.label", "Direction.OUT", "Direction.IN"})

#: Property names that collide with the token entries of an element map in graphersal's
#: Python results (``{"id": .., "label": ..}``), so writing them is refused.
_RESERVED_PROPERTY_KEYS = frozenset({"id", "label"})

# Enum member names that differ between gremlinpython (snake_case, trailing "_") and
# the script dialect (gremlin-groovy spelling).
_ENUM_SPELLING = {
    ("Merge", "on_create"): "onCreate",
    ("Merge", "on_match"): "onMatch",
    ("Merge", "out_v"): "outV",
    ("Merge", "in_v"): "inV",
    ("Operator", "add_all"): "addAll",
    ("Operator", "sum_long"): "sumLong",
    ("Barrier", "norm_sack"): "normSack",
}

#: graphersal's script functions take at most this many arguments.
_MAX_ARGS = 10
#: Steps whose many string arguments graphersal also takes as one list (same meaning).
#: start steps whose many string ids go as one JSON list parameter
_ID_LIST_STEPS = frozenset({"V", "E"})
_LIST_ARGUMENT_STEPS = frozenset(
    {
        "V",
        "E",
        "hasId",
        "hasLabel",
        "hasKey",
        "values",
        "out",
        "in",
        "both",
        "outE",
        "inE",
        "bothE",
        "project",
    }
    | {"elementMap", "valueMap", "properties", "select"}
)

_ENUM_KINDS = frozenset(
    {
        "Barrier",
        "Cardinality",
        "Column",
        "DT",
        "Direction",
        "Merge",
        "Operator",
        "Order",
        "Pick",
        "Pop",
        "Scope",
        "T",
    }
)

_WITH_OPTION_TOKENS = {WithOptions.tokens: "WithOptions.tokens", WithOptions.indexer: "WithOptions.indexer"}
_WITH_TOKENS_FLAGS = {0: "none", 1: "ids", 2: "labels", 4: "keys", 8: "values", 15: "all"}
_WITH_INDEXER_FLAGS = {0: "list", 1: "map"}

# Steps that keep the shape of what flows through them (filters, ordering, labels).
_SHAPE_PRESERVING = frozenset(
    {
        "as",
        "and",
        "barrier",
        "by",
        "coin",
        "cyclicPath",
        "dedup",
        "emit",
        "filter",
        "has",
        "hasId",
        "hasKey",
        "hasLabel",
        "hasNot",
        "hasValue",
        "identity",
        "is",
        "limit",
        "none",
        "not",
        "optional",
        "or",
        "order",
        "range",
        "sample",
        "sideEffect",
        "simplePath",
        "skip",
        "tail",
        "times",
        "until",
        "where",
        "with",
        "aggregate",
        "store",
    }
)

_STRING_ESCAPES = {ord('"'): '\\"', ord("\\"): "\\\\", ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}
_STRING_ESCAPES.update({c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F] if c not in _STRING_ESCAPES})


class TranslationError(ValueError):
    """The bytecode uses something the embedded engine cannot run; the message names the step."""


# Result shapes: what one result of a traversal looks like, so that graphersal's plain
# values can be turned into the gremlinpython values a Gremlin Server returns.
ELEMENT_MAP = "element_map"
VALUE_MAP = "value_map"  # valueMap() without tokens: becomes ELEMENT_MAP with tokens
PATH = "path"
Shape = Any  # None | ELEMENT_MAP | VALUE_MAP | PATH | ("list", Shape) | ("map", dict[str, Shape])


@dataclass
class Script:
    """A translated traversal: script text, its bound parameters and its result shape."""

    text: str
    params: dict[str, Any] = field(default_factory=dict)
    shape: Shape = None
    discards_results: bool = False


def translate(bytecode: Bytecode, *, source_name: str = "g") -> Script:
    """Translate a root traversal's bytecode into one graphersal script."""
    writer = _ScriptWriter()
    steps = list(bytecode.step_instructions)
    discards = bool(steps) and steps[-1][0] == "none"
    if discards:
        steps = steps[:-1]
    parts = [source_name]
    parts.extend(writer.source_instruction(instr) for instr in bytecode.source_instructions)
    parts.extend(writer.step(instr) for instr in steps)
    parts.append(".iterate()" if discards else ".to_list()")
    return Script(
        text="".join(parts),
        params=writer.params,
        shape=None if discards else shape_of(steps),
        discards_results=discards,
    )


class _ScriptWriter:
    """Renders instructions and arguments; scalars without a literal form go to params."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    # -- instructions -------------------------------------------------------------------

    def source_instruction(self, instruction: list[Any]) -> str:
        name, *args = instruction
        if name == "withStrategies":
            return "".join(self._strategy(strategy) for strategy in args)
        if name in {"withSideEffect", "withSack", "withBulk", "withPath"}:
            return self._call(name, args, step=name)
        raise TranslationError(
            f"source step {name}() is not supported by the embedded graph engine; "
            "supported: with_(), with_side_effect(), with_sack()"
        )

    def _strategy(self, strategy: Any) -> str:
        if isinstance(strategy, OptionsStrategy) or (
            isinstance(strategy, TraversalStrategy) and strategy.strategy_name == "OptionsStrategy"
        ):
            # with_(key, value): graphersal reads its own options (evaluationTimeout, ...)
            # and ignores the names it does not know (Neptune's query hints).
            return "".join(
                f".with({self._string(str(key))}, {self.value(value, step='with')})"
                for key, value in strategy.configuration.items()
            )
        name = getattr(strategy, "strategy_name", type(strategy).__name__)
        raise TranslationError(
            f"traversal strategy {name} (withStrategies) is not supported by the embedded graph engine"
        )

    def step(self, instruction: list[Any]) -> str:
        name, *args = instruction
        if not isinstance(name, str) or not name.isidentifier():
            raise TranslationError(f"step name {name!r} is not a Gremlin step")
        if name == "none":
            raise TranslationError("none() (iterate) is only supported as the last step of a traversal")
        if name == "property":
            self._check_property_step(args)
        elif name in {"mergeV", "mergeE", "addV", "addE"} or name == "option":
            self._check_write_maps(name, args)
        elif name == "with":
            return self._with_step(args)
        return self._call(name, args, step=name)

    def _call(self, name: str, args: list[Any], *, step: str) -> str:
        if len(args) > _MAX_ARGS:
            return self._long_call(name, args, step=step)
        rendered = ", ".join(self.value(arg, step=step) for arg in args)
        return f".{name}({rendered})"

    def _long_call(self, name: str, args: list[Any], *, step: str) -> str:
        """A step with more arguments than a script function takes, in an equivalent form."""
        if name in _LIST_ARGUMENT_STEPS and all(type(arg) is str for arg in args):
            if name in _ID_LIST_STEPS:  # many ids (a batch's edges): one JSON parameter, as data batches
                return f".{name}(parse_json({self._param(json.dumps(args, ensure_ascii=False))}))"
            return f".{name}({self.value(list(args), step=step)})"
        chunks = [args[i : i + _MAX_ARGS] for i in range(0, len(args), _MAX_ARGS)]
        if name == "inject":  # inject(a, b).inject(c) yields a, b, c
            return "".join(self._call(name, chunk, step=step) for chunk in chunks)
        if name == "union" and all(isinstance(arg, Bytecode) for arg in args):
            nested = ", ".join("__" + self._call("union", chunk, step=step) for chunk in chunks)
            return f".union({nested})"
        if name == "coalesce" and all(isinstance(arg, Bytecode) for arg in args):
            head = ", ".join(self.value(arg, step=step) for arg in args[: _MAX_ARGS - 1])
            return f".coalesce({head}, __{self._call('coalesce', args[_MAX_ARGS - 1 :], step=step)})"
        raise TranslationError(
            f"{name}() with {len(args)} arguments: the embedded graph engine takes at most {_MAX_ARGS} "
            "arguments per step; split the call"
        )

    def _check_property_step(self, args: list[Any]) -> None:
        if args and isinstance(args[0], Cardinality):
            if args[0] is not Cardinality.single:
                raise TranslationError(
                    f"property(Cardinality.{args[0].name.rstrip('_')}, ..) is not supported: the embedded graph "
                    "engine stores one value per property; write with Cardinality.single"
                )
            args = args[1:]
        if len(args) > 2:
            raise TranslationError(
                "property(key, value, ...) with meta-properties is not supported by the embedded graph engine"
            )
        if args and isinstance(args[0], str) and args[0] in _RESERVED_PROPERTY_KEYS:
            raise TranslationError(
                f"property({args[0]!r}, ..): a property named {args[0]!r} is refused because element maps "
                "would confuse it with T.id/T.label; use another key"
            )

    def _check_write_maps(self, name: str, args: list[Any]) -> None:
        for arg in args:
            if isinstance(arg, Mapping):
                bad = sorted(k for k in arg if isinstance(k, str) and k in _RESERVED_PROPERTY_KEYS)
                if bad:
                    raise TranslationError(
                        f"{name}(): property key {bad[0]!r} is refused because element maps would confuse it "
                        "with T.id/T.label; use T.id/T.label or another key"
                    )

    def _with_step(self, args: list[Any]) -> str:
        # valueMap().with_(WithOptions.tokens[, flags]) arrives as its string and int constants.
        if args and isinstance(args[0], str) and args[0] in _WITH_OPTION_TOKENS:
            key = args[0]
            rendered = [_WITH_OPTION_TOKENS[key]]
            flags = _WITH_TOKENS_FLAGS if key == WithOptions.tokens else _WITH_INDEXER_FLAGS
            for flag in args[1:]:
                if not isinstance(flag, int) or flag not in flags:
                    raise TranslationError(f"with_({key!r}, {flag!r}): unknown WithOptions value")
                rendered.append(f"WithOptions.{flags[flag]}")
            return f".with({', '.join(rendered)})"
        return self._call("with", args, step="with")

    # -- values ---------------------------------------------------------------------------

    def value(self, arg: Any, *, step: str) -> str:
        # Exact-type fast paths first: a write batch is thousands of strings and ints.
        kind = type(arg)
        if kind is str:
            return '"' + arg.translate(_STRING_ESCAPES) + '"'
        if kind is int and _INT64_MIN < arg <= _INT64_MAX:
            return str(arg)
        if kind is dict:
            return self._map(arg, step)
        if (kind is list or kind is tuple) and arg and type(arg[0]) is dict:
            rows = _json_data(arg, step)
            if rows is not None:
                return (
                    f"parse_json({self._param(json.dumps(rows, ensure_ascii=False, separators=(',', ':')))})"
                )
        if arg is None:
            return "()"
        if isinstance(arg, enum.Enum):
            return self._enum(arg)
        if isinstance(arg, bool):
            return "true" if arg else "false"
        if isinstance(arg, int):
            return self._int(arg, step)
        if isinstance(arg, float):
            return repr(arg) if math.isfinite(arg) else self._param(arg)
        if isinstance(arg, str):
            return self._string(arg)
        if isinstance(arg, CardinalityValue):
            return self._cardinality_value(arg, step)
        if isinstance(arg, Bytecode):
            return self._anonymous(arg)
        if isinstance(arg, P):
            return self._predicate(arg, step)
        if isinstance(arg, Mapping):
            return self._map(arg, step)
        if isinstance(arg, list | tuple | set | frozenset):
            items = sorted(arg, key=repr) if isinstance(arg, set | frozenset) else arg
            return "[" + ", ".join(self.value(item, step=step) for item in items) + "]"
        if isinstance(arg, Binding):
            return self.value(arg.value, step=step)
        if isinstance(arg, Element):
            # An element stands for its id, as on a Gremlin Server (g.V(v)).
            return self.value(arg.id, step=step)
        if isinstance(arg, dt.datetime | dt.date | dt.time | dt.timedelta | uuid.UUID):
            return self._param(arg)
        raise TranslationError(
            f"{step}(): a value of type {type(arg).__name__} cannot be sent to the embedded graph engine"
            + (" (lambdas are not supported)" if callable(arg) else "")
        )

    def _int(self, number: int, step: str) -> str:
        if _INT64_MIN < number <= _INT64_MAX:
            return str(number)
        if number == _INT64_MIN:  # "-9223372036854775808" would overflow as a literal
            return self._param(number)
        raise TranslationError(f"{step}(): integer {number} does not fit in 64 bits")

    def _string(self, text: str) -> str:
        return '"' + text.translate(_STRING_ESCAPES) + '"'

    def _param(self, value: Any) -> str:
        name = f"_p{len(self.params)}"
        self.params[name] = value
        return name

    def _enum(self, member: enum.Enum) -> str:
        kind = type(member).__name__
        name = _ENUM_SPELLING.get((kind, member.name), member.name.rstrip("_"))
        if kind in _ENUM_KINDS:
            return f"{kind}.{name}"
        raise TranslationError(f"token {kind}.{member.name} is not supported by the embedded graph engine")

    def _cardinality_value(self, value: CardinalityValue, step: str) -> str:
        _, cardinality, inner = value.source_instructions[0]
        if cardinality is not Cardinality.single:
            raise TranslationError(
                f"{step}(): Cardinality.{cardinality.name.rstrip('_')}(..) is not supported: the embedded graph "
                "engine stores one value per property"
            )
        # graphersal keeps one value per property, so a single-cardinality value is the
        # plain value; spelled as a token it would not survive inside injected data.
        return self.value(inner, step=step)

    def _anonymous(self, bytecode: Bytecode) -> str:
        if bytecode.source_instructions:
            raise TranslationError(
                "a child traversal must be anonymous (built with __), not from a traversal source"
            )
        return "__" + "".join(self.step(instr) for instr in bytecode.step_instructions)

    def _predicate(self, predicate: P, step: str) -> str:
        kind = "TextP" if isinstance(predicate, TextP) else "P"
        operator = predicate.operator
        if operator in {"and", "or"} and isinstance(predicate.other, P):
            left = self._predicate(predicate.value, step)
            right = self._predicate(predicate.other, step)
            return f"{left}.{operator}({right})"
        if operator == "not":
            return f"P.not({self._predicate(predicate.value, step)})"
        args = [predicate.value] if predicate.other is None else [predicate.value, predicate.other]
        rendered = ", ".join(self.value(arg, step=step) for arg in args)
        return f"{kind}.{operator}({rendered})"

    def _map(self, mapping: Mapping[Any, Any], step: str) -> str:
        entries = [
            f"{self._map_key(key, step)}: {self.value(value, step=step)}" for key, value in mapping.items()
        ]
        return "#{" + ", ".join(entries) + "}"

    def _map_key(self, key: Any, step: str) -> str:
        if type(key) is str and key not in RESERVED_MAP_KEYS:
            return '"' + key.translate(_STRING_ESCAPES) + '"'
        if isinstance(key, T) and key.name.rstrip("_") in {"id", "label"}:
            return f'"T.{key.name.rstrip("_")}"'
        if isinstance(key, Direction) and key.name in {"OUT", "IN"}:
            return f'"Direction.{key.name}"'
        if isinstance(key, str):
            if key in RESERVED_MAP_KEYS:
                raise _reserved_key_error(key, step)
            return self._string(key)
        raise TranslationError(
            f"{step}(): map key {key!r} is not supported: maps sent to the embedded graph engine take string "
            "keys, T.id/T.label and Direction.OUT/IN"
        )


# -- data batches as JSON ---------------------------------------------------------------


class _NotJson(Exception):
    """A value JSON does not carry exactly: the batch is written as script literals."""


_JSON_TOKEN_KEYS: dict[Any, str] = {
    T.id: "T.id",
    T.label: "T.label",
    Direction.OUT: "Direction.OUT",
    Direction.IN: "Direction.IN",
}


def _json_data(rows: list[Any] | tuple[Any, ...], step: str) -> list[Any] | None:
    """``rows`` as JSON-ready data with the engine's token keys, or None when some value has no
    exact JSON form. A plain string key spelled like a token is refused as in a literal map."""
    try:
        return [_json_map(row, step) if type(row) is dict else _json_value(row, step) for row in rows]
    except _NotJson:
        return None


#: the token keys by identity: ``T``/``Direction`` members hash in Python code (aenum)
_JSON_TOKEN_KEYS_BY_ID: dict[int, str] = {id(token): text for token, text in _JSON_TOKEN_KEYS.items()}


def _json_map(mapping: dict[Any, Any], step: str) -> dict[str, Any]:
    # Inlined for the common scalars: a batch holds thousands of them.
    out: dict[str, Any] = {}
    for key, item in mapping.items():
        if type(key) is not str:
            key = _JSON_TOKEN_KEYS_BY_ID.get(id(key)) or _json_key(key, step)
        elif key in RESERVED_MAP_KEYS:
            raise _reserved_key_error(key, step)
        kind = type(item)
        if kind is str or item is None or ((kind is int or kind is long) and _INT64_MIN < item <= _INT64_MAX):
            out[key] = item
        elif kind is dict:
            out[key] = _json_map(item, step)
        else:
            out[key] = _json_value(item, step)
    return out


def _json_value(value: Any, step: str) -> Any:
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return value
    if kind is dict:
        return _json_map(value, step)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        if _INT64_MIN < value <= _INT64_MAX:
            return int(value)
        raise _NotJson
    if kind is float:
        if _exact_in_json(value):
            return value
        raise _NotJson
    if kind is list or kind is tuple:
        return [_json_value(item, step) for item in value]
    raise _NotJson


def _json_key(key: Any, step: str) -> str:
    if type(key) is str:
        if key in RESERVED_MAP_KEYS:
            raise _reserved_key_error(key, step)
        return key
    if isinstance(key, T | Direction):
        token = _JSON_TOKEN_KEYS.get(key)
        if token is not None:
            return token
    raise _NotJson


def _reserved_key_error(key: str, step: str) -> TranslationError:
    return TranslationError(
        f"{step}(): the map key {key!r} is reserved by the embedded graph engine for a token; "
        "use the token itself (T.id, T.label, Direction.OUT, Direction.IN)"
    )


def _exact_in_json(number: float) -> bool:
    """Whether the engine's JSON reader reads ``repr(number)`` back as ``number``: its exact path
    takes a significand below 2**53 times a power of ten within 10**22 (one rounding), so a
    shortest form of at most 15 significant digits and a decimal exponent within 22 is exact."""
    if not math.isfinite(number):
        return False
    text = repr(number)
    if len(text) <= 16 and "e" not in text:  # at most 15 digits, a power within 10**-15..10**15
        return True
    mantissa, _, exponent = text.lstrip("-").partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    significant = digits.rstrip("0")
    power = int(exponent or 0) - len(fraction) + len(digits) - len(significant)
    return len(significant) <= 15 and -22 <= power <= 22


# -- result shapes ----------------------------------------------------------------------


def shape_of(steps: list[list[Any]], start: Shape = None) -> Shape:
    """The shape of one result of a step list (see the module docstring)."""
    shape = start
    pending_keys: list[str] = []  # project()/select() keys still waiting for their by()
    for name, *args in steps:
        if name == "by" and pending_keys:
            key = pending_keys.pop(0)
            child = args[0] if args else None
            shape[1][key] = shape_of(child.step_instructions) if isinstance(child, Bytecode) else None
            continue
        pending_keys = []
        if name == "elementMap":
            shape = ELEMENT_MAP
        elif name == "valueMap":
            shape = ELEMENT_MAP if args and args[0] is True else VALUE_MAP
        elif name == "with" and shape == VALUE_MAP and args and args[0] == WithOptions.tokens:
            shape = ELEMENT_MAP
        elif name == "path":
            shape = PATH
        elif name == "fold":
            shape = ("list", shape)
        elif name == "unfold":
            shape = shape[1] if isinstance(shape, tuple) and shape[0] == "list" else None
        elif name == "project" or (
            name == "select" and len(args) > 1 and all(isinstance(a, str) for a in args)
        ):
            pending_keys = list(args)
            shape = ("map", dict.fromkeys(args))
        elif name == "select" and len(args) == 1 and isinstance(shape, tuple) and shape[0] == "map":
            shape = shape[1].get(args[0]) if isinstance(args[0], str) else None
        elif name == "local" and args and isinstance(args[0], Bytecode):
            shape = shape_of(args[0].step_instructions, shape)
        elif name in {"coalesce", "union"} and args and all(isinstance(a, Bytecode) for a in args):
            branch_shapes = [shape_of(a.step_instructions, shape) for a in args]
            shape = branch_shapes[0] if all(s == branch_shapes[0] for s in branch_shapes) else None
        elif name not in _SHAPE_PRESERVING:
            shape = None
    return shape


def convert_result(value: Any, shape: Shape = None) -> Any:
    """One graphersal result as the value a Gremlin Server would have returned."""
    kind = type(value)
    if kind is str or kind is int or kind is float or value is None:  # most of a result
        return value
    import graphersal  # local: fraudlocal imports this module without needing the engine

    if isinstance(value, graphersal.Vertex):
        return _vertex(value)
    if isinstance(value, graphersal.Edge):
        return _edge(value)
    if isinstance(value, list):
        if shape == PATH:
            return Path([set() for _ in value], [convert_result(item) for item in value])
        item_shape = shape[1] if isinstance(shape, tuple) and shape[0] == "list" else None
        converted = []
        append = converted.append
        for item in value:  # the scalars in line: a read's rows are lists of them
            kind = type(item)
            append(
                item
                if kind is str or kind is int or kind is float or item is None
                else convert_result(item, item_shape)
            )
        return converted
    if isinstance(value, dict):
        if shape in (ELEMENT_MAP, VALUE_MAP):  # a tuple: shapes may be unhashable
            return _element_map(value)
        key_shapes = shape[1] if isinstance(shape, tuple) and shape[0] == "map" else {}
        return {convert_result(k): convert_result(v, key_shapes.get(k)) for k, v in value.items()}
    return value


def _vertex(vertex: Any) -> Vertex:
    result = Vertex(vertex.id, vertex.label)
    result.properties = [VertexProperty(None, key, value, result) for key, value in vertex.properties.items()]
    return result


def _edge(edge: Any) -> Edge:
    out_v = Vertex(edge.out_v.id, edge.out_v.label)
    in_v = Vertex(edge.in_v.id, edge.in_v.label)
    result = Edge(edge.id, out_v, edge.label, in_v)
    result.properties = [Property(key, value, result) for key, value in edge.properties.items()]
    return result


_TOKEN_KEYS: dict[str, Any] = {"id": T.id, "label": T.label, "IN": Direction.IN, "OUT": Direction.OUT}


def _element_map(mapping: dict[str, Any]) -> dict[Any, Any]:
    result: dict[Any, Any] = {}
    for key, value in mapping.items():
        token = _TOKEN_KEYS.get(key)
        if isinstance(token, Direction) and isinstance(value, dict):
            result[token] = _element_map(value)
        elif token is not None and not isinstance(token, Direction):
            result[token] = value
        else:
            result[key] = convert_result(value)
    return result
