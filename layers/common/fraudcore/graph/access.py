"""The graph port of the investigation: what a step is given to reach the graph.

A :class:`~fraudcore.graph.connection.GraphConnection` (Lambda, the local runner: retries,
timeouts, a request counter) or a bare ``GraphTraversalSource`` (tests, benchmarks).
:class:`GraphAccess` runs the investigation's requests on either, counting them, with the
fraud DSL (:mod:`fraudcore.graph.dsl`) on every traversal source.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gremlin_python.process.graph_traversal import GraphTraversalSource
from gremlin_python.process.traversal import Traversal

from .connection import GraphConnection
from .dsl import FraudTraversalSource, fraud_source

#: what a step is given to reach the graph
GraphPort = GraphConnection | GraphTraversalSource


class GraphAccess:
    """Runs the investigation's requests on a ``GraphConnection`` (with its retries and
    request counter) or on a bare ``GraphTraversalSource`` (tests, benchmarks)."""

    def __init__(self, graph: GraphPort, clock: Callable[[], float] = time.monotonic) -> None:
        if not (hasattr(graph, "run") or isinstance(graph, GraphTraversalSource)):
            raise TypeError(
                f"expected a GraphConnection or a GraphTraversalSource, got {type(graph).__name__}"
            )
        self.graph = graph
        self.requests = 0
        self._clock = clock

    @classmethod
    def of(cls, graph: GraphPort | GraphAccess) -> GraphAccess:
        """``graph`` itself when it already is a GraphAccess (one step sharing its counter)."""
        return graph if isinstance(graph, GraphAccess) else cls(graph)

    def run(self, build: Callable[[FraudTraversalSource], Traversal], what: str) -> list[Any]:
        self.requests += 1
        if hasattr(self.graph, "run"):
            return self.graph.run(lambda g: build(fraud_source(g)), "toList", what=what)
        return build(fraud_source(self.graph)).to_list()

    def now(self) -> float:
        return self._clock()
