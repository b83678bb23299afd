"""scripts/gremlin-server and GraphConnection against a real TinkerPop Gremlin Server.

The module starts its own server through the script, on a free port of its own, and stops
it at the end by the script's pid file; a server started for the rest of the suite
(port 8182) is left alone.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from gremlin_python.driver.driver_remote_connection import DriverRemoteConnection
from gremlin_python.process.anonymous_traversal import traversal
from gremlin_python.process.graph_traversal import GraphTraversal, GraphTraversalSource, __
from gremlin_python.process.strategies import RepeatUnrollStrategy
from gremlin_python.process.traversal import Direction, T

from fraudcore.graph.connection import GraphConnection, GraphError, GraphTimeoutError
from fraudcore.settings import Settings

pytestmark = pytest.mark.gremlin_server

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gremlin-server"
SOURCES = ["g"] + [f"g{n}" for n in range(1, 8)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def process_alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped (a stopped server may linger as one)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@dataclass
class Server:
    port: int

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gremlin"

    @property
    def pid_file(self) -> Path:
        return REPO / ".cache" / "gremlin-server" / f"server-{self.port}.pid"

    def script(self, command: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "GREMLIN_SERVER_PORT": str(self.port)}
        return subprocess.run(
            [str(SCRIPT), command], env=env, capture_output=True, text=True, timeout=180, check=False
        )

    def start(self) -> None:
        started = self.script("start")
        assert started.returncode == 0, f"start failed:\n{started.stdout}\n{started.stderr}"
        assert started.stdout.strip().endswith(self.url)

    def settings(self, **overrides: object) -> Settings:
        return Settings(graph_backend="gremlin-server", graph_endpoint=self.url, **overrides)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    running = Server(free_port())
    running.start()
    try:
        yield running
    finally:
        pid = int(running.pid_file.read_text())
        stopped = running.script("stop")
        assert stopped.returncode == 0, stopped.stderr
        assert f"stopped (pid {pid}" in stopped.stdout
        assert not process_alive(pid)
        log = running.pid_file.with_suffix(".log")
        log.unlink(missing_ok=True)


def test_start_is_idempotent_and_status_and_url_answer(server: Server) -> None:
    pid = server.pid_file.read_text().strip()
    again = server.script("start")
    assert again.returncode == 0
    assert f"already running on {server.url} (pid {pid})" in again.stdout
    assert server.script("status").returncode == 0
    assert server.script("url").stdout.strip() == server.url


def test_eight_independent_graphs_with_string_ids(server: Server) -> None:
    for index, source in enumerate(SOURCES):
        remote = DriverRemoteConnection(server.url, source)
        try:
            g = traversal().with_remote(remote)
            g.V().drop().iterate()
            g.add_v("account").property(T.id, "account:1").iterate()
            for _ in range(2):  # mergeV / mergeE are idempotent on fixed ids
                g.merge_v({T.id: f"device:{source}", T.label: "device"}).iterate()
                g.merge_e(
                    {
                        T.id: f"account:1|uses|device:{source}",
                        T.label: "uses",
                        Direction.OUT: "account:1",
                        Direction.IN: f"device:{source}",
                    }
                ).iterate()
            for extra in range(index):  # a different vertex count in each graph
                g.add_v("ip").property(T.id, f"ip:{extra}").iterate()
        finally:
            remote.close()
    for index, source in enumerate(SOURCES):
        remote = DriverRemoteConnection(server.url, source)
        try:
            g = traversal().with_remote(remote)
            assert g.V().count().next() == 2 + index
            assert g.V("account:1").out("uses").id_().to_list() == [f"device:{source}"]
        finally:
            remote.close()


def test_run_round_trip_counts_requests(server: Server) -> None:
    connection = GraphConnection.from_settings(server.settings(), traversal_source="g1")
    try:
        connection.run(lambda g: g.V().drop(), "iterate")
        connection.run(
            lambda g: (
                g.inject([{T.id: "account:a", T.label: "account"}, {T.id: "account:b", T.label: "account"}])
                .unfold()
                .merge_v()
            ),
            "iterate",
        )
        assert connection.run(lambda g: g.V().has_label("account").id_().order()) == [
            "account:a",
            "account:b",
        ]
        assert connection.run(lambda g: g.V().count(), "next") == 2
        assert (connection.requests, connection.connects, connection.retries) == (4, 1, 0)
    finally:
        connection.close()


def test_evaluation_timeout_is_honoured_and_not_retried(server: Server) -> None:
    connection = GraphConnection.from_settings(server.settings(graph_max_retries=3), traversal_source="g2")
    try:
        # RepeatUnrollStrategy would expand times(n) into n steps before evaluation starts
        # (and before any timeout applies); without it the loop runs, and is interrupted.
        def endless(g: GraphTraversalSource) -> GraphTraversal:
            return g.without_strategies(RepeatUnrollStrategy).inject(1).repeat(__.identity()).times(2**31 - 1)

        with pytest.raises(GraphTimeoutError, match="evaluation timeout of 200 ms") as raised:
            connection.run(endless, eval_timeout_ms=200)
        assert "598" in str(raised.value)
        assert connection.requests == 1
        # The connection stays usable after a timeout.
        assert connection.run(lambda g: g.inject(42), "next") == 42
    finally:
        connection.close()


def test_malformed_traversal_fails_at_once_with_the_server_reason(server: Server) -> None:
    connection = GraphConnection.from_settings(server.settings(), traversal_source="g3")
    try:
        with pytest.raises(GraphError, match="must resolve to a Number") as raised:
            connection.run(lambda g: g.inject(1).math("_ + x"))
        assert "'inject.math'" in str(raised.value)
        assert connection.requests == 1
    finally:
        connection.close()


def test_reconnects_after_the_server_restarts(server: Server) -> None:
    connection = GraphConnection.from_settings(server.settings(), traversal_source="g4")
    try:
        assert connection.run(lambda g: g.inject("before"), "next") == "before"
        old_pid = int(server.pid_file.read_text())
        assert server.script("stop").returncode == 0
        assert not server.pid_file.exists()
        assert not process_alive(old_pid)
        assert server.script("status").returncode == 1
        server.start()
        assert int(server.pid_file.read_text()) != old_pid

        assert connection.run(lambda g: g.inject("after"), "next") == "after"
        assert connection.connects == 2
        assert connection.retries >= 1
    finally:
        connection.close()


def test_requests_skip_the_drivers_debug_formatting_unless_debug_logging_is_on(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same answers whichever way a request is written; the driver's own way (which formats
    each request for its debug log) only when that log is on."""
    import logging

    through_driver: list[str] = []
    driver_submit = DriverRemoteConnection.submit

    def counting_submit(self, bytecode):
        through_driver.append(str(bytecode))
        return driver_submit(self, bytecode)

    monkeypatch.setattr(DriverRemoteConnection, "submit", counting_submit)
    connection = GraphConnection.from_settings(server.settings(), traversal_source="g3")

    def answers() -> list[object]:
        connection.run(lambda g: g.V().drop(), "iterate")
        connection.run_all(
            [
                lambda g, i=i: g.inject([{T.id: f"account:{i}", T.label: "account"}]).unfold().merge_v()
                for i in range(3)
            ]
        )
        return connection.run(lambda g: g.V().id_().order())

    try:
        assert answers() == ["account:0", "account:1", "account:2"]
        assert through_driver == []  # written directly, the same message the driver writes
        driver_log = logging.getLogger("gremlinpython")
        level = driver_log.level
        driver_log.setLevel(logging.DEBUG)
        try:
            assert answers() == ["account:0", "account:1", "account:2"]
        finally:
            driver_log.setLevel(level)
        assert len(through_driver) == 5 and "mergeV" in through_driver[1]
    finally:
        connection.close()
