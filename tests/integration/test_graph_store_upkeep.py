"""The embedded graph store's log stays bounded while it is written (StoreUpkeep), on the real engine."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import graphersal
import pytest
from gremlin_python.process.anonymous_traversal import traversal
from gremlin_python.process.traversal import Direction, T

from fraudcore.graph.upserts import EdgeEvent, EdgeUpsert, VertexUpsert, merge_edges, merge_vertices
from fraudlocal.adapters.graph_embedded import (
    ENGINE_CLOCK,
    EmbeddedGraphError,
    GraphersalRemoteConnection,
    StoreUpkeep,
    close_embedded_graphs,
    open_embedded_graph,
)

ACCOUNTS = 50


@pytest.fixture(autouse=True)
def _closed_after():
    yield
    close_embedded_graphs()


def _segments(store_dir: Path) -> list[int]:
    return sorted(int(name[:-4]) for name in os.listdir(store_dir / "wal") if name.endswith(".wal"))


def _wal_bytes(store_dir: Path) -> int:
    return sum(entry.stat().st_size for entry in os.scandir(store_dir / "wal"))


def _snapshots(connection) -> list[int]:
    """The store's snapshots (a snapshot shares the segments that did not change with the one
    before, so their directories are not the listing)."""
    return [int(snapshot["commit_seq"]) for snapshot in connection.store.snapshots()]


def _write_rounds(g, rounds: int, start: int = 0) -> None:
    """The ingest's own requests: the vertices once, then every edge updated once a round (a
    graph that stops growing while its log keeps growing)."""
    if start == 0:
        vertices = [VertexUpsert(f"account:{i}", "account", str(i), 1).as_map() for i in range(ACCOUNTS)]
        vertices += [VertexUpsert(f"merchant:{i}", "merchant", str(i), 1).as_map() for i in range(ACCOUNTS)]
        merge_vertices(g, vertices).iterate()
    for round_ in range(start, start + rounds):
        edges = [
            EdgeUpsert(
                f"e{i}", "pays", f"account:{i}", f"merchant:{i}", [EdgeEvent(1_000 + round_, 1.5)]
            ).as_map(None)
            for i in range(ACCOUNTS)
        ]
        merge_edges(g, edges).iterate()


def test_a_long_log_is_checkpointed_and_pruned_while_writes_go_on(tmp_path: Path) -> None:
    connection = open_embedded_graph(tmp_path)
    store_dir = connection.path
    upkeep = connection.upkeep
    assert upkeep is not None and upkeep.log_bytes == 32 * 2**20  # the default bound
    upkeep.log_bytes, upkeep.check_every = 20_000, 5
    g = traversal().with_remote(connection)
    _write_rounds(g, 10)
    upkeep.wait()
    per_round = _wal_bytes(store_dir) / 10  # what the log grows by a round
    written, on_disk = 10, []
    while upkeep.checkpoints < 8 and written < 2_000:
        _write_rounds(g, 10, start=written)
        written += 10
        upkeep.wait()
        on_disk.append(_wal_bytes(store_dir))
    assert upkeep.checkpoints == 8, f"{written} rounds written, {upkeep.checkpoints} checkpoints"
    assert upkeep.last_error is None and upkeep.checkpoint_seconds > 0

    # the log on disk stays near the bound while what was written grows past it many times
    assert per_round * written > 8 * 20_000
    assert max(on_disk) < 4 * 20_000 + 20 * per_round, (on_disk, per_round)
    # the first snapshot and log segment are gone; only the last few snapshots stay
    snapshots, segments = _snapshots(connection), _segments(store_dir)
    assert len(snapshots) == 2 and 0 not in snapshots and 1 not in segments, (snapshots, segments)

    counts = g.E().values("tx_count").sum_().next()
    connection.close()
    g = traversal().with_remote(open_embedded_graph(tmp_path))
    assert g.E().values("tx_count").sum_().next() == counts == ACCOUNTS
    assert g.E().values("last_seen").max_().next() == 1_000 + written - 1
    reopened = open_embedded_graph(tmp_path)
    report = reopened.store.open_report()
    assert report["clean_close"] and report["commits_replayed"] < 40, report


def test_below_the_bound_nothing_is_written_and_the_default_leaves_a_demo_alone(tmp_path: Path) -> None:
    connection = open_embedded_graph(tmp_path)
    upkeep = connection.upkeep
    assert upkeep is not None
    upkeep.check_every = 1
    _write_rounds(traversal().with_remote(connection), 20)
    upkeep.wait()
    log_bytes, elements = upkeep.log_since_snapshot()
    assert 0 < log_bytes < upkeep.log_bytes and elements == 0
    assert upkeep.checkpoints == 0 and _snapshots(connection) == [0]
    assert upkeep.check() is False


def test_a_larger_graph_waits_for_more_log(tmp_path: Path) -> None:
    connection = open_embedded_graph(tmp_path)
    upkeep = connection.upkeep
    upkeep.check_every = 10**9
    g = traversal().with_remote(connection)
    _write_rounds(g, 5)
    connection.store.checkpoint()
    log_bytes, elements = upkeep.log_since_snapshot()
    assert elements == 3 * ACCOUNTS and log_bytes < 1_000  # 2 vertices and an edge an account; a new segment
    _write_rounds(g, 5, start=5)
    log_bytes, elements = upkeep.log_since_snapshot()
    assert log_bytes > 0
    # past the fixed bound, not past the graph's share: not yet
    upkeep.log_bytes = 1
    upkeep.log_bytes_per_element = log_bytes // elements + 1
    assert upkeep.bound(elements) > log_bytes
    assert upkeep.check() is False
    upkeep.log_bytes_per_element = log_bytes // elements
    assert upkeep.bound(elements) <= log_bytes
    assert upkeep.check() is True
    upkeep.wait()
    assert upkeep.checkpoints == 1


def test_a_failed_checkpoint_is_logged_and_tried_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    connection = open_embedded_graph(tmp_path)
    upkeep = connection.upkeep
    upkeep.log_bytes, upkeep.check_every = 1, 10**9
    g = traversal().with_remote(connection)
    _write_rounds(g, 3)
    # the engine refuses to write a snapshot where one is: put something where the next goes
    at = connection.store.mark("before")["commit_seq"]
    blocker = connection.path / "snapshots" / f"{at:020d}"
    blocker.write_text("not a snapshot")
    with caplog.at_level(logging.WARNING, logger="fraudlocal.adapters.graph_embedded"):
        assert upkeep.check() is True
        upkeep.wait()
    assert upkeep.checkpoints == 0
    assert "a snapshot at commit" in (upkeep.last_error or "")
    assert "could not checkpoint (tried again later)" in caplog.text
    _write_rounds(g, 1, start=3)  # the graph goes on
    blocker.unlink()
    assert upkeep.check() is True
    upkeep.wait()
    assert upkeep.checkpoints == 1
    assert len(_snapshots(connection)) == 2


def test_close_waits_for_the_checkpoint_being_written(tmp_path: Path) -> None:
    connection = open_embedded_graph(tmp_path)
    upkeep = connection.upkeep
    upkeep.log_bytes, upkeep.check_every = 1, 10**9
    _write_rounds(traversal().with_remote(connection), 30)
    assert upkeep.check() is True
    connection.close()
    assert upkeep.checkpoints == 1
    store = graphersal.Store.open(str(tmp_path / "graph"))
    try:
        assert store.open_report()["commits_replayed"] == 0
    finally:
        store.close()


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="1 or more"):
        StoreUpkeep(None, Path("."), log_bytes=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="0 or more"):
        StoreUpkeep(None, Path("."), log_bytes_per_element=-1)  # type: ignore[arg-type]


def test_the_engine_clock_counts_every_request_and_its_seconds(tmp_path):
    """``ENGINE_CLOCK`` counts each request the engine ran on any connection, a refused one
    too, and the seconds spent in it, which the benchmarks set against the process's CPU."""
    durable = open_embedded_graph(tmp_path)
    in_memory = GraphersalRemoteConnection.in_memory()
    requests, seconds = ENGINE_CLOCK.figures()
    g = traversal().with_remote(durable)
    merge_vertices(
        g, [VertexUpsert(f"account:a{i}", "account", f"a{i}", 1).as_map() for i in range(200)]
    ).iterate()
    assert g.V().count().next() == 200
    assert traversal().with_remote(in_memory).V().count().next() == 0
    with pytest.raises(EmbeddedGraphError, match="could not be resolved"):  # a missing end vertex
        g.merge_e({T.label: "uses", Direction.OUT: "account:none", Direction.IN: "account:a1"}).iterate()
    after_requests, after_seconds = ENGINE_CLOCK.figures()
    assert after_requests - requests == 4
    assert after_seconds > seconds
    in_memory.close()
