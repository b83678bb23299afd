"""The graph backends every conformance test runs against.

``graph_backend`` yields a gremlinpython ``GraphTraversalSource`` for each backend:

- ``embedded``: graphersal in-process, on a durable store in a fresh state directory.
- ``gremlin_server``: Apache TinkerPop Gremlin Server (TinkerGraph) on 127.0.0.1, at
  ``GREMLIN_SERVER_URL`` (default ``ws://127.0.0.1:8182/gremlin``), started with
  ``scripts/gremlin-server start``. Each pytest-xdist worker takes its own traversal
  source (gw0 -> ``g``, gw1 -> ``g1`` .. gw7 -> ``g7``), and every test starts with that
  graph emptied. When the server does not answer the test is skipped, or fails under
  ``CI=true``, where both backends must run.

The yielded source's ``remote_connection`` is the backend's RemoteConnection, so a test
can build the application's graph store on it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fraudlocal.graph_embedded import open_embedded_graph
from gremlin_python.driver.driver_remote_connection import DriverRemoteConnection
from gremlin_python.driver.remote_connection import RemoteConnection
from gremlin_python.process.anonymous_traversal import traversal
from gremlin_python.process.graph_traversal import GraphTraversalSource

DEFAULT_GREMLIN_SERVER_URL = "ws://127.0.0.1:8182/gremlin"
SERVER_SOURCES = 8  # g, g1 .. g7, bound by scripts/gremlin/init.groovy

BACKENDS = ["embedded", pytest.param("gremlin_server", marks=pytest.mark.gremlin_server)]


def gremlin_server_url() -> str:
    return os.environ.get("GREMLIN_SERVER_URL", DEFAULT_GREMLIN_SERVER_URL)


def traversal_source_for_worker(worker: str | None) -> str:
    """gw0 (or no xdist) -> g, gw1 -> g1, ... gw7 -> g7: parallel workers never share a graph."""
    if not worker or worker == "master":
        return "g"
    index = int(worker.removeprefix("gw"))
    if index >= SERVER_SOURCES:
        raise pytest.UsageError(
            f"pytest-xdist worker {worker}: the Gremlin Server has {SERVER_SOURCES} traversal sources; "
            f"run with -n {SERVER_SOURCES} or fewer"
        )
    return "g" if index == 0 else f"g{index}"


def _not_running(reason: str) -> None:
    message = (
        f"Gremlin Server at {gremlin_server_url()} does not answer ({reason}); "
        "start it with `scripts/gremlin-server start`"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def gremlin_server_connection() -> Iterator[DriverRemoteConnection | str]:
    """One connection per worker for the whole session, or the reason there is none."""
    source = traversal_source_for_worker(os.environ.get("PYTEST_XDIST_WORKER"))
    try:
        connection = DriverRemoteConnection(gremlin_server_url(), source)
    except Exception as exc:  # refused, DNS, handshake: all mean "not there"
        yield f"{type(exc).__name__}: {exc}"
        return
    try:
        traversal().with_remote(connection).inject(1).next()
    except Exception as exc:
        connection.close()
        yield f"{type(exc).__name__}: {exc}"
        return
    yield connection
    connection.close()


def traversal_source(connection: RemoteConnection) -> GraphTraversalSource:
    """A traversal source on ``connection`` whose ``remote_connection`` names it.

    gremlinpython's ``with_remote`` records the connection on the *old* source only;
    tests that build a graph store from the fixture read it from the new one.
    """
    g = traversal().with_remote(connection)
    g.remote_connection = connection
    return g


@pytest.fixture(params=BACKENDS)
def graph_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GraphTraversalSource]:
    """A traversal source on an empty graph of each backend."""
    if request.param == "embedded":
        connection = open_embedded_graph(tmp_path / "state")
        try:
            yield traversal_source(connection)
        finally:
            connection.close()
        return
    server = request.getfixturevalue("gremlin_server_connection")
    if isinstance(server, str):
        _not_running(server)
    g = traversal_source(server)
    g.V().drop().iterate()
    yield g
