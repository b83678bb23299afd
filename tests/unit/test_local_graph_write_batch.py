"""The local functions' graph requests: sized for the embedded engine, Neptune's size elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudcore.settings import Settings
from fraudlocal.emulators.runtime import EMBEDDED_GRAPH_WRITE_BATCH, LocalTarget, patched_environment


def write_batch(target: LocalTarget) -> int:
    with patched_environment(target.environment({})):
        return Settings.from_env().graph_write_batch


def test_the_embedded_graph_takes_a_local_batch_in_one_request_of_each_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GRAPH_WRITE_BATCH", raising=False)
    assert write_batch(LocalTarget(tmp_path)) == int(EMBEDDED_GRAPH_WRITE_BATCH) == 500
    # a server keeps the template's size, Neptune's advice
    server = LocalTarget(tmp_path, graph_backend="gremlin-server", graph_endpoint="ws://127.0.0.1:1/gremlin")
    assert write_batch(server) == 100
    # the process's own setting, and a run's, win
    monkeypatch.setenv("GRAPH_WRITE_BATCH", "40")
    assert write_batch(LocalTarget(tmp_path)) == 40
    monkeypatch.delenv("GRAPH_WRITE_BATCH")
    assert write_batch(LocalTarget(tmp_path, extra_env=(("GRAPH_WRITE_BATCH", "7"),))) == 7
