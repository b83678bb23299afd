"""Fixtures shared by every suite: the TinkerPop Gremlin Server started by `make test`.

The server (``scripts/gremlin-server start``) listens on ``GREMLIN_SERVER_URL`` (default
``ws://127.0.0.1:8182/gremlin``) and binds eight graphs to the traversal sources ``g``,
``g1`` .. ``g7``: each pytest-xdist worker takes its own (gw0 -> ``g``, gw1 -> ``g1`` ...).
When the server does not answer, tests that need it fail under ``CI=true`` (both
backends must run in CI) and are skipped elsewhere, with the command that starts it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from gremlin_python.driver.driver_remote_connection import DriverRemoteConnection
from gremlin_python.process.anonymous_traversal import traversal

import fraudlocal  # noqa: F401  (registers the local adapters with fraudcore.backends)

DEFAULT_GREMLIN_SERVER_URL = "ws://127.0.0.1:8182/gremlin"
SERVER_SOURCES = 8  # g, g1 .. g7, bound by scripts/gremlin/init.groovy


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


def not_running(reason: str) -> None:
    message = (
        f"Gremlin Server at {gremlin_server_url()} does not answer ({reason}); "
        "start it with `scripts/gremlin-server start`"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def gremlin_traversal_source() -> str:
    """This worker's traversal source on the Gremlin Server."""
    return traversal_source_for_worker(os.environ.get("PYTEST_XDIST_WORKER"))


@pytest.fixture(scope="session")
def gremlin_server_connection(gremlin_traversal_source: str) -> Iterator[DriverRemoteConnection | str]:
    """One connection per worker for the whole session, or the reason there is none."""
    try:
        connection = DriverRemoteConnection(gremlin_server_url(), gremlin_traversal_source)
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


@pytest.fixture(scope="session")
def gremlin_server_endpoint() -> str:
    """The Gremlin Server's URL (``GREMLIN_SERVER_URL``)."""
    return gremlin_server_url()


@pytest.fixture
def clean_server_graph(gremlin_server_connection) -> DriverRemoteConnection:
    """This worker's graph on the Gremlin Server, emptied; fails or skips when the server is down."""
    if isinstance(gremlin_server_connection, str):
        not_running(gremlin_server_connection)
    traversal().with_remote(gremlin_server_connection).V().drop().iterate()
    return gremlin_server_connection


@pytest.fixture
def gremlin_server_settings_env(clean_server_graph, gremlin_traversal_source, monkeypatch) -> str:
    """Point the application's graph settings at this worker's empty server graph; returns the URL."""
    monkeypatch.setenv("GRAPH_TRAVERSAL_SOURCE", gremlin_traversal_source)
    return gremlin_server_url()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Modules with a ``slow`` test run first, each module's tests kept together and in order.

    ``scripts/run-tests`` hands whole modules to the two workers (``--dist loadscope``, so a
    module's fixtures are built once), in this order: the long ones start at once and the
    short ones fill the gaps at the end, rather than a long module starting last on one
    worker while the other waits.
    """
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
    ordered = sorted(modules.values(), key=lambda tests: not any(t.get_closest_marker("slow") for t in tests))
    items[:] = [item for tests in ordered for item in tests]
