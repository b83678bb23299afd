"""The JSONPath subset of Amazon States Language.

Reference paths (``$.a.b``, ``$['a b'][0]``) select one node; paths may also use ``[*]``,
``.*`` and slices ``[1:3]`` and then select a list. A path starting with ``$$`` reads the
context object instead of the state's data. Filters (``[?(...)]``) and recursive descent
(``..``) are rejected with an error naming the path, rather than half-supported.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .errors import RuntimeStatesError

_NAME = re.compile(r"[^.\[\]\s]+")
_MISSING = object()


@dataclass(frozen=True)
class Key:
    name: str


@dataclass(frozen=True)
class Index:
    index: int


@dataclass(frozen=True)
class Wildcard:
    pass


@dataclass(frozen=True)
class Slice:
    start: int | None
    stop: int | None
    step: int | None


Token = Key | Index | Wildcard | Slice


class PathSyntaxError(RuntimeStatesError):
    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"Invalid JSONPath {path!r}: {why}")


def is_path(text: Any) -> bool:
    return isinstance(text, str) and text.startswith("$")


def parse(path: str) -> tuple[bool, list[Token]]:
    """Return (reads the context object, tokens)."""
    context, tokens, _ = _parsed(path)
    return context, list(tokens)


@lru_cache(maxsize=1024)
def _parsed(path: str) -> tuple[bool, tuple[Token, ...], bool]:
    """(reads the context object, tokens, definite): a definition's paths are read at every
    state it runs, so each is parsed once."""
    if not is_path(path):
        raise PathSyntaxError(path, "a path starts with '$'")
    context = path.startswith("$$")
    rest = path[2:] if context else path[1:]
    tokens = tuple(_tokens(path, rest))
    return context, tokens, is_definite(tokens)


def _tokens(path: str, rest: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(rest):
        if rest.startswith("..", pos):
            raise PathSyntaxError(path, "recursive descent '..' is not supported")
        if rest[pos] == ".":
            pos += 1
            if rest.startswith("*", pos):
                tokens.append(Wildcard())
                pos += 1
                continue
            match = _NAME.match(rest, pos)
            if not match:
                raise PathSyntaxError(path, f"expected a field name at offset {pos + 1}")
            tokens.append(Key(match.group(0)))
            pos = match.end()
        elif rest[pos] == "[":
            end, token = _bracket(path, rest, pos)
            tokens.append(token)
            pos = end
        else:
            raise PathSyntaxError(path, f"unexpected {rest[pos]!r} at offset {pos + 1}")
    return tokens


def _bracket(path: str, rest: str, pos: int) -> tuple[int, Token]:
    if rest.startswith(("['", '["'), pos):
        quote = rest[pos + 1]
        close = rest.find(quote + "]", pos + 2)
        if close < 0:
            raise PathSyntaxError(path, "unterminated quoted field name")
        return close + 2, Key(rest[pos + 2 : close])
    close = rest.find("]", pos)
    if close < 0:
        raise PathSyntaxError(path, "unterminated '['")
    inner = rest[pos + 1 : close].strip()
    if inner.startswith("?"):
        raise PathSyntaxError(path, "filter expressions are not supported")
    if inner == "*":
        return close + 1, Wildcard()
    try:
        if ":" in inner:
            parts = [int(p) if p.strip() else None for p in inner.split(":")]
            if len(parts) > 3:
                raise ValueError(inner)
            parts += [None] * (3 - len(parts))
            return close + 1, Slice(parts[0], parts[1], parts[2])
        return close + 1, Index(int(inner))
    except ValueError:
        raise PathSyntaxError(path, f"bad index [{inner}]") from None


def is_definite(tokens: list[Token] | tuple[Token, ...]) -> bool:
    return all(isinstance(t, Key | Index) for t in tokens)


def read(path: str, data: Any, context: Any = None) -> Any:
    """Value at ``path``; a list of matches for wildcard/slice paths.

    A definite path that matches nothing is a ``States.Runtime`` error naming the path.
    The value is the one in ``data`` (or ``context``), not a copy: the executor never
    changes a value in place.
    """
    is_context, tokens, definite = _parsed(path)
    root = context if is_context else data
    if definite:
        value = _walk_definite(root, tokens)
        if value is _MISSING:
            where = "the context object" if is_context else "the state input"
            raise RuntimeStatesError(f"The JSONPath {path!r} could not be found in {where}")
        return value
    return _walk_all([root], tokens)


def exists(path: str, data: Any, context: Any = None) -> bool:
    is_context, tokens, definite = _parsed(path)
    root = context if is_context else data
    if definite:
        return _walk_definite(root, tokens) is not _MISSING
    return bool(_walk_all([root], tokens))


def _walk_definite(node: Any, tokens: tuple[Token, ...]) -> Any:
    for token in tokens:
        if isinstance(token, Key):
            if not isinstance(node, dict) or token.name not in node:
                return _MISSING
            node = node[token.name]
        elif isinstance(token, Index):
            if not isinstance(node, list) or not -len(node) <= token.index < len(node):
                return _MISSING
            node = node[token.index]
    return node


def _walk_all(nodes: list[Any], tokens: tuple[Token, ...]) -> list[Any]:
    for token in tokens:
        found: list[Any] = []
        for node in nodes:
            found.extend(_step(node, token))
        nodes = found
    return nodes


def _step(node: Any, token: Token) -> list[Any]:
    if isinstance(token, Key):
        return [node[token.name]] if isinstance(node, dict) and token.name in node else []
    if isinstance(token, Index):
        ok = isinstance(node, list) and -len(node) <= token.index < len(node)
        return [node[token.index]] if ok else []
    if isinstance(token, Wildcard):
        if isinstance(node, dict):
            return list(node.values())
        return list(node) if isinstance(node, list) else []
    if isinstance(node, list):
        return node[token.start : token.stop : token.step]
    return []


def write(path: str, target: Any, value: Any) -> Any:
    """A copy of ``target`` with ``value`` placed at the reference path (ResultPath).

    Missing objects along the way are created, as Step Functions does; stepping into
    something that is not an object is a ``States.Runtime`` error. ``target`` is left as
    it was: the objects along the path are copied, the rest is shared with ``target``
    (and ``value`` is placed as it is), which is safe as the executor never changes a
    value in place.
    """
    is_context, tokens, definite = _parsed(path)
    if is_context or not definite:
        raise PathSyntaxError(path, "ResultPath must be a reference path into the state data")
    if not tokens:
        return value
    if not isinstance(target, dict | list):
        raise RuntimeStatesError(
            f"Unable to apply ResultPath {path!r}: the state input is {type(target).__name__}, not an object"
        )
    root = copy.copy(target)
    node = root
    for i, token in enumerate(tokens):
        last = i == len(tokens) - 1
        node = _descend(path, node, token, None if last else tokens[i + 1], value if last else _MISSING)
    return root


def _descend(path: str, node: Any, token: Token, following: Token | None, value: Any) -> Any:
    if isinstance(token, Key):
        if not isinstance(node, dict):
            raise RuntimeStatesError(
                f"Unable to apply ResultPath {path!r}: {token.name!r} is not in an object"
            )
        if value is not _MISSING:
            node[token.name] = value
            return None
        if token.name not in node:
            node[token.name] = [] if isinstance(following, Index) else {}
        elif not isinstance(node[token.name], dict | list):
            raise RuntimeStatesError(
                f"Unable to apply ResultPath {path!r}: {token.name!r} holds a {type(node[token.name]).__name__}"
            )
        else:
            node[token.name] = copy.copy(node[token.name])
        return node[token.name]
    assert isinstance(token, Index)
    if not isinstance(node, list) or not -len(node) <= token.index < len(node):
        raise RuntimeStatesError(f"Unable to apply ResultPath {path!r}: index {token.index} is out of range")
    if value is not _MISSING:
        node[token.index] = value
        return None
    # the next step writes into it: a copy, the target's own stays as it was
    node[token.index] = copy.copy(node[token.index])
    return node[token.index]
