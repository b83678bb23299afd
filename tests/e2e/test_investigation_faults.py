"""A graph connection lost in the middle of an investigation: the state machine's retries finish it.

The investigation runs through the real state machine (local executor) and the real
handlers on the embedded graph. In the middle of it the graph connection drops for longer
than the connection's own retries last: the task fails with ``GraphUnavailableError``, the
state's ``Retry`` runs it again, and the investigation records the same case a run without
the fault records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from e2e.test_investigation_e2e import flag, ingest, investigate, ring_transactions
from gremlin_python.driver.remote_connection import RemoteConnection

import fraudlocal.adapters.graph_embedded as graph_embedded


class Outage:
    """Counts graph requests; requests ``start`` .. ``start + length - 1`` find the connection gone."""

    def __init__(self, start: int | None, length: int) -> None:
        self.start = start
        self.length = length
        self.requests = 0
        self.dropped = 0

    def wrap(self, inner: RemoteConnection) -> RemoteConnection:
        outage = self

        class DroppingConnection(RemoteConnection):
            def __init__(self) -> None:
                super().__init__(None, None)

            def submit(self, bytecode):
                outage.requests += 1
                if (
                    outage.start is not None
                    and outage.start <= outage.requests < outage.start + outage.length
                ):
                    outage.dropped += 1
                    raise ConnectionResetError("connection reset by peer")
                return inner.submit(bytecode)

            def is_closed(self) -> bool:
                return inner.is_closed()

            def close(self) -> None:
                inner.close()

        return DroppingConnection()


def run_with(monkeypatch: pytest.MonkeyPatch, state: Path, outage: Outage) -> dict[str, Any]:
    real_open = graph_embedded.open_embedded_graph
    monkeypatch.setattr(
        graph_embedded, "open_embedded_graph", lambda *a, **k: outage.wrap(real_open(*a, **k))
    )
    # the connection's own retries: 2, quickly; the outage outlasts them
    monkeypatch.setenv("GRAPH_MAX_RETRIES", "2")
    from fraudcore.settings import reset_settings_cache

    reset_settings_cache()
    return investigate(state, flag("a1"), "flag-a1")


def essentials(case: dict[str, Any]) -> tuple:
    return (case["verdict"], case["score"], case["members"], case["flags_propagated"])


def test_a_lost_connection_mid_investigation_is_retried_by_the_state_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_state, faulty_state = tmp_path / "clean", tmp_path / "faulty"
    ingest(clean_state, ring_transactions())
    ingest(faulty_state, ring_transactions())

    clean = run_with(monkeypatch, clean_state, counting := Outage(None, 0))
    assert clean["status"] == "SUCCEEDED", clean["cause"]
    middle = counting.requests // 2

    outage = Outage(middle, length=4)  # more than the connection's 1 + 2 attempts
    faulty = run_with(monkeypatch, faulty_state, outage)

    assert faulty["status"] == "SUCCEEDED", faulty["cause"]
    assert outage.dropped == 4
    retried = [
        retry
        for event in faulty["history"]
        for retry in event.get("retries", [])
        if retry["error"] == "GraphUnavailableError"
    ]
    assert retried, "the state machine retried the task the outage failed"
    assert essentials(faulty["output"]) == essentials(clean["output"])
