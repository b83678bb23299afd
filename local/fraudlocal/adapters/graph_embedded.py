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
- The store's write-ahead log is kept bounded (:class:`StoreUpkeep`): a snapshot is written
  in the background once the log since the last one is large, and the log only older
  snapshots needed is removed.
- Property keys named ``id`` or ``label`` are refused on writes: graphersal's element
  maps would confuse them with ``T.id``/``T.label``.
- ``properties()`` yields property values, not ``VertexProperty`` objects; ``timeLimit``
  is unknown (use ``with_('evaluationTimeout', ms)``, which graphersal honours).
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import graphersal
from gremlin_python.driver.remote_connection import RemoteConnection, RemoteTraversal
from gremlin_python.process.traversal import Bytecode, Traverser

from fraudlocal.adapters.gremlin_translate import Script, TranslationError, convert_result, translate
from fraudlocal.state_dir import StateDir

__all__ = [
    "ENGINE_CLOCK",
    "EmbeddedGraphError",
    "EngineClock",
    "GraphStoreLockedError",
    "GraphersalRemoteConnection",
    "StoreUpkeep",
    "TranslationError",
    "close_embedded_graphs",
    "graph_store_disk_mb",
    "graph_store_path",
    "open_embedded_graph",
]

_MISSING_STEP = re.compile(r"Function not found: (\w+)")

log = logging.getLogger(__name__)

#: a durable store is checkpointed once its write-ahead log since the last snapshot holds this
#: many bytes, or :data:`CHECKPOINT_LOG_BYTES_PER_ELEMENT` for each vertex and edge of that
#: snapshot when that is more (:class:`StoreUpkeep`)
CHECKPOINT_LOG_BYTES = 32 * 2**20
CHECKPOINT_LOG_BYTES_PER_ELEMENT = 64
#: requests between two looks at the size of the log
LOG_CHECK_EVERY = 256


class EngineClock:
    """What the embedded engine itself took in this process: its ``execute`` calls and their
    wall seconds, over every connection (the benchmarks read it to tell the engine's share of a
    run from the Python around it: translation, handlers, executor). Reading
    ``time.perf_counter`` twice a request costs well under a microsecond."""

    def __init__(self) -> None:
        self.requests = 0
        self.seconds = 0.0

    def figures(self) -> tuple[int, float]:
        """``(requests, seconds)`` so far; subtract two readings for the figures of a stretch."""
        return self.requests, self.seconds


#: the process's engine clock (:class:`EngineClock`)
ENGINE_CLOCK = EngineClock()


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
        #: keeps the durable store's log bounded (None for an in-memory graph)
        self.upkeep = StoreUpkeep(store, path) if store is not None and path is not None else None

    @classmethod
    def in_memory(cls) -> GraphersalRemoteConnection:
        """A connection to a new, empty graph that lives only as long as the process."""
        return cls(graphersal.Graph())

    @property
    def graph(self) -> graphersal.Graph:
        """The underlying graphersal graph (for tooling; the application speaks bytecode)."""
        return self._graph

    @property
    def store(self) -> graphersal.Store | None:
        """The durable store the graph is kept in, ``None`` for an in-memory graph (for tooling)."""
        return self._store

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
        started = time.perf_counter()
        try:
            result = self._graph.execute(script.text, params=script.params or None)
        except graphersal.GraphersalError as exc:
            raise _engine_error(exc, script) from exc
        except UnicodeEncodeError as exc:  # a lone surrogate in a Python string
            raise TranslationError(f"a string in the traversal is not valid Unicode: {exc.reason}") from exc
        finally:
            ENGINE_CLOCK.requests += 1
            ENGINE_CLOCK.seconds += time.perf_counter() - started
            if self.upkeep is not None:
                self.upkeep.after_request()
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
        if self.upkeep is not None:
            self.upkeep.wait()  # a checkpoint still being written ends first
        if self._store is not None:
            self._store.close()


class StoreUpkeep:
    """Keeps the write-ahead log of a durable store bounded, while its graph is in use.

    Every commit goes to the store's log, and nothing removes it by itself: the store also
    keeps every snapshot and the log since the oldest, so that any past commit can be
    reached. Left alone, the log of a local run grows with every request (about 420 bytes a
    transaction at the demo's size, even when the graph stops growing: an edge seen again is
    logged again), and every open replays it all: each command that reads the graph after a
    long replay, and each ``kinesis-consume`` restart.

    So, every :data:`LOG_CHECK_EVERY` requests, the log written since the last snapshot is
    measured (its segments on disk). Past :data:`CHECKPOINT_LOG_BYTES`, a thread writes a
    snapshot (``Store.checkpoint``) and then prunes the store up to it (``Store.prune``): the
    engine keeps the last two snapshots and the log from the older one, and removes the rest.
    Snapshots are written by segment, and a segment that did not change is shared with the
    snapshot before, so only changed segments are written again.

    A checkpoint costs about 0.09 s a MB of log it replays (the demo's 8.5 MB: 0.78 s) and the
    writing of the segments that changed: on a graph of 802,000 vertices and edges, 2.8 s for
    its first snapshot (every segment new, 9.6 MB of log), 1.1-1.3 s for the next ones (30,000
    edges updated, 10 MB of log). So a larger graph waits for more log:
    :data:`CHECKPOINT_LOG_BYTES_PER_ELEMENT` for each of its elements, when that is more than
    the fixed bound.

    The checkpoint runs beside the requests: the engine releases the GIL while it writes the
    snapshot, and commits go on (each is in the log before it returns, whether the snapshot has
    it or not). What it costs is CPU in that thread and memory while the snapshot is written
    (docs/operations.md, "Memory of a local run"). The application never reaches
    back to a past commit (no marks, no forks), so what the prune removes was only disk.

    A checkpoint that fails is logged and tried again at a later look: the log then stays
    longer, nothing is lost.
    """

    def __init__(
        self,
        store: graphersal.Store,
        path: Path,
        *,
        log_bytes: int = CHECKPOINT_LOG_BYTES,
        log_bytes_per_element: int = CHECKPOINT_LOG_BYTES_PER_ELEMENT,
        check_every: int = LOG_CHECK_EVERY,
    ) -> None:
        if log_bytes < 1 or check_every < 1 or log_bytes_per_element < 0:
            raise ValueError(
                "log_bytes and check_every must be 1 or more and log_bytes_per_element 0 or more, got "
                f"{log_bytes}, {check_every} and {log_bytes_per_element}"
            )
        self.store = store
        self.path = Path(path)
        self.log_bytes = log_bytes
        self.log_bytes_per_element = log_bytes_per_element
        self.check_every = check_every
        #: checkpoints written (and pruned to) by this upkeep, the seconds they took in its
        #: thread, and the last failure
        self.checkpoints = 0
        self.checkpoint_seconds = 0.0
        self.last_error: str | None = None
        self._requests = 0
        self._thread: threading.Thread | None = None

    def after_request(self) -> None:
        self._requests += 1
        if self._requests >= self.check_every:
            self._requests = 0
            self.check()

    def log_since_snapshot(self) -> tuple[int, int]:
        """The bytes of the log segments written after the last snapshot (a segment is named by
        its first commit, and a checkpoint starts a new one), and that snapshot's vertices and
        edges."""
        snapshots = self.store.snapshots()
        last = snapshots[-1] if snapshots else {"commit_seq": 0, "vertex_count": 0, "edge_count": 0}
        after = int(last["commit_seq"])
        log_bytes = 0
        for entry in os.scandir(self.path / "wal"):
            stem = entry.name[:-4] if entry.name.endswith(".wal") else ""
            if stem.isdigit() and int(stem) > after:
                log_bytes += entry.stat().st_size
        return log_bytes, int(last["vertex_count"]) + int(last["edge_count"])

    def bound(self, elements: int) -> int:
        """The log a snapshot of ``elements`` vertices and edges waits for before the next."""
        return max(self.log_bytes, self.log_bytes_per_element * elements)

    def check(self) -> bool:
        """Start a checkpoint when the log is due for one (and none is running); whether one
        started."""
        if self._thread is not None and self._thread.is_alive():
            return False
        try:
            log_bytes, elements = self.log_since_snapshot()
        except (OSError, graphersal.GraphersalError) as exc:  # looked at again next time
            self._failed("measure its log", exc)
            return False
        if log_bytes < self.bound(elements):
            return False
        self._thread = threading.Thread(target=self._checkpoint, name="graph-store-checkpoint", daemon=True)
        self._thread.start()
        return True

    def _checkpoint(self) -> None:
        began = time.perf_counter()
        try:
            snapshot = self.store.checkpoint()
            self.store.prune(int(snapshot["commit_seq"]))
        except (OSError, graphersal.GraphersalError) as exc:
            self._failed("checkpoint", exc)
        else:
            self.checkpoints += 1
        finally:
            self.checkpoint_seconds += time.perf_counter() - began

    def _failed(self, what: str, exc: Exception) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        log.warning(
            "the graph store %s could not %s (tried again later): %s", self.path, what, self.last_error
        )

    def wait(self) -> None:
        """Return once no checkpoint is being written."""
        thread = self._thread
        if thread is not None:
            thread.join()


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


def graph_store_disk_mb(state_dir: Path) -> dict[str, float]:
    """What the graph store of a state directory holds on disk, in MiB: all its files
    (``store_mb``: snapshots and log) and its write-ahead log (``log_mb``, which
    :class:`StoreUpkeep` keeps bounded). For the benchmarks' reports."""
    path = graph_store_path(state_dir)

    def mib(directory: Path) -> float:
        return round(sum(file.stat().st_size for file in directory.rglob("*") if file.is_file()) / 2**20, 1)

    return {"store_mb": mib(path), "log_mb": mib(path / "wal")}


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
