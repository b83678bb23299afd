"""The embedded graph backend: graphersal in-process, behind a gremlinpython RemoteConnection.

Why graphersal (0.3.0, Rust, Apache-2.0): it runs in the Python process (no server, no
JVM), runs the Gremlin the graph store needs (``mergeV``/``mergeE`` with
``option(Merge.onCreate|onMatch)``, ``inject`` batches, application-chosen string ids,
``repeat``/``simplePath``, ``groupCount``, ``dedup``, ``choose``/``coalesce``) and keeps
the graph on disk in a durable Store (every commit is in its write-ahead log before it
returns). The other candidate, gremlite, lacks mergeV/mergeE, inject and string ids,
and compares numbers wrongly in ``P.gt``.

How: the graph store is written once in gremlinpython bytecode. graphersal takes Gremlin
as script text in its own dialect, so :class:`GraphersalRemoteConnection` translates the
bytecode (:mod:`fraudlocal.adapters.gremlin_translate`), runs it, and turns the results into the
values a Gremlin Server returns (gremlinpython ``Vertex``/``Edge``/``Path``, ``T``/
``Direction`` keys in element maps). ``traversal().with_remote(connection)`` then works as
against Neptune or a Gremlin Server, for reads and writes.

What it does not do:

- One value per property: ``Cardinality.single`` semantics only. ``property(list|set, ..)``
  and meta-properties are refused with a clear error. The graph model writes every
  scalar with ``Cardinality.single``, so nothing is lost.
- Single writer: the Store under ``<state_dir>/graph/`` is locked by the process that
  opens it; a second process gets :class:`GraphStoreLockedError`. Within a process,
  :func:`open_embedded_graph` hands out one shared connection per path.
- Each request is its own unit (a failing traversal leaves nothing behind); there are no
  sessions or explicit transactions (``is_session_bound()`` is false).
- Property keys named ``id`` or ``label`` are refused on writes: graphersal's element
  maps would confuse them with ``T.id``/``T.label``.
- ``properties()`` yields property values, not ``VertexProperty`` objects; ``timeLimit``
  is unknown (use ``with_('evaluationTimeout', ms)``, which graphersal honours).
"""

from __future__ import annotations

import atexit
import re
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import graphersal
from gremlin_python.driver.remote_connection import RemoteConnection, RemoteTraversal
from gremlin_python.process.traversal import Bytecode, Traverser

from fraudlocal.adapters.gremlin_translate import Script, TranslationError, convert_result, translate
from fraudlocal.state_dir import StateDir

__all__ = [
    "EmbeddedGraphError",
    "GraphStoreLockedError",
    "GraphersalRemoteConnection",
    "TranslationError",
    "close_embedded_graphs",
    "graph_store_path",
    "open_embedded_graph",
]

_MISSING_STEP = re.compile(r"Function not found: (\w+)")


class EmbeddedGraphError(RuntimeError):
    """The embedded engine refused or failed a traversal; ``help`` carries its guidance."""

    def __init__(self, message: str, *, help: str | None = None) -> None:
        super().__init__(message if not help else f"{message}\nHelp: {help}")
        self.help = help


class GraphStoreLockedError(EmbeddedGraphError):
    """Another process holds the embedded graph store (it has a single writer)."""


class GraphersalRemoteConnection(RemoteConnection):
    """A gremlinpython RemoteConnection that runs bytecode on an in-process graphersal graph."""

    def __init__(
        self,
        graph: graphersal.Graph,
        *,
        url: str = "graphersal:memory",
        store: graphersal.Store | None = None,
        path: Path | None = None,
    ) -> None:
        super().__init__(url, "g")
        self._graph = graph
        self._store = store
        self._path = path
        self._closed = False

    @classmethod
    def in_memory(cls) -> GraphersalRemoteConnection:
        """A connection to a new, empty graph that lives only as long as the process."""
        return cls(graphersal.Graph())

    @property
    def graph(self) -> graphersal.Graph:
        """The underlying graphersal graph (for tooling; the application speaks bytecode)."""
        return self._graph

    @property
    def path(self) -> Path | None:
        """The store directory, ``None`` for an in-memory graph."""
        return self._path

    def submit(self, bytecode: Bytecode) -> RemoteTraversal:
        results = self.execute(bytecode)
        return RemoteTraversal(iter([Traverser(result) for result in results]))

    def submit_async(self, bytecode: Bytecode) -> Future[RemoteTraversal]:
        # The engine is in-process and releases the GIL while it runs: a completed future
        # is the honest answer.
        future: Future[RemoteTraversal] = Future()
        try:
            future.set_result(self.submit(bytecode))
        except Exception as exc:  # handed to the caller through the future
            future.set_exception(exc)
        return future

    def execute(self, bytecode: Bytecode) -> list[Any]:
        """Run one traversal and return its results as a Gremlin Server would."""
        if self._closed:
            raise EmbeddedGraphError(f"the embedded graph connection {self.url} is closed; open it again")
        script = translate(bytecode)
        raw = self._run(script)
        if script.discards_results:
            return []
        return [convert_result(item, script.shape) for item in raw]

    def _run(self, script: Script) -> list[Any]:
        try:
            result = self._graph.execute(script.text, params=script.params or None)
        except graphersal.GraphersalError as exc:
            raise _engine_error(exc, script) from exc
        except UnicodeEncodeError as exc:  # a lone surrogate in a Python string
            raise TranslationError(f"a string in the traversal is not valid Unicode: {exc.reason}") from exc
        return [] if result is None else result

    def is_closed(self) -> bool:
        return self._closed

    def is_session_bound(self) -> bool:
        return False

    def close(self) -> None:
        """Release the store (and its lock); the connection refuses requests afterwards."""
        if self._closed:
            return
        self._closed = True
        if self._path is not None:
            with _registry_lock:
                if _open_graphs.get(self._path) is self:
                    del _open_graphs[self._path]
        if self._store is not None:
            self._store.close()


def _engine_error(exc: graphersal.GraphersalError, script: Script) -> EmbeddedGraphError:
    message = str(exc)
    missing = _MISSING_STEP.search(message)
    if missing:
        return EmbeddedGraphError(
            f"step {missing.group(1)}() is not supported by the embedded graph engine (graphersal): {message}"
        )
    excerpt = script.text if len(script.text) <= 300 else script.text[:300] + "..."
    return EmbeddedGraphError(
        f"embedded graph engine failed the traversal {excerpt}: {message}", help=exc.help
    )


# -- the durable store under the state directory ------------------------------------------

_registry_lock = threading.Lock()
_open_graphs: dict[Path, GraphersalRemoteConnection] = {}


def graph_store_path(state_dir: Path) -> Path:
    """Where the embedded graph of a state directory lives: ``<state_dir>/graph/``."""
    return StateDir(Path(state_dir)).graph


def open_embedded_graph(state_dir: Path) -> GraphersalRemoteConnection:
    """The process-wide connection to the durable graph under ``<state_dir>/graph/``.

    The store is created when absent and reopened (with its recovery) when present; every
    commit is durable when the request returns. The same connection is returned for the
    same path until it is closed. A store held by another process raises
    :class:`GraphStoreLockedError`.
    """
    path = graph_store_path(state_dir).resolve()
    with _registry_lock:
        connection = _open_graphs.get(path)
        if connection is not None and not connection.is_closed():
            return connection
        store = _open_store(path)
        connection = GraphersalRemoteConnection(store.graph, url=f"graphersal:{path}", store=store, path=path)
        _open_graphs[path] = connection
        return connection


def _open_store(path: Path) -> graphersal.Store:
    existing = path.is_dir() and any(path.iterdir())
    if not existing:
        path.mkdir(parents=True, exist_ok=True)
    try:
        return graphersal.Store.open(str(path)) if existing else graphersal.Store.create(str(path))
    except graphersal.GraphersalError as exc:
        if "in use" in str(exc) or "lock" in str(exc).lower():
            raise GraphStoreLockedError(
                f"the embedded graph store {path} is in use by another process (it has a single writer); "
                "stop that process, or give this one its own --state-dir"
            ) from exc
        raise EmbeddedGraphError(
            f"cannot open the embedded graph store {path}: {exc}", help=exc.help
        ) from exc


def close_embedded_graphs() -> None:
    """Close every store this process opened (a clean close: no recovery on the next open)."""
    with _registry_lock:
        connections = list(_open_graphs.values())
    for connection in connections:
        connection.close()


atexit.register(close_embedded_graphs)
