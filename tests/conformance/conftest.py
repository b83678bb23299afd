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

from collections.abc import Iterator
from pathlib import Path

import pytest
from gremlin_python.driver.remote_connection import RemoteConnection
from gremlin_python.process.anonymous_traversal import traversal
from gremlin_python.process.graph_traversal import GraphTraversalSource

from fraudlocal.adapters.graph_embedded import open_embedded_graph

BACKENDS = ["embedded", pytest.param("gremlin_server", marks=pytest.mark.gremlin_server)]


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
    yield traversal_source(request.getfixturevalue("clean_server_graph"))
