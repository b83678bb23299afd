"""The span worker: a second process that owns the time-series file while the main process
puts spans through the clock (``--overlap``).

What the main process's functions see through it must be what they would see opening the
file themselves: the same rows under the same replay horizon, the same missing-column
error; a write is refused while the worker owns the file; once the worker is closed the
file is the main process's again; a worker that dies is reported with its PID and exit
code, not waited for.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fraudcore import backends
from fraudcore.timeseries import MissingColumnError
from fraudlocal.adapters.timeseries_duckdb import DuckDBTimeseriesStore, read_horizon
from fraudlocal.adapters.timeseries_served import ServedTimeseriesStore, StoreOwnedElsewhereError, owner_of
from fraudlocal.emulators.runtime import (
    FunctionRunner,
    LocalTarget,
    close_local_backends,
    patched_environment,
)
from fraudlocal.pipeline.span_worker import SpanWorker, SpanWorkerError, WorkerSetup
from fraudlocal.state_dir import StateDir

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
RECORDS = 30


def record(index: int) -> tuple[bytes, str]:
    account = f"acct-{index % 7}"
    body = {
        "transaction_id": f"tx-{index:04d}",
        "account_id": account,
        "timestamp": (START + timedelta(minutes=index)).isoformat().replace("+00:00", "Z"),
        "amount": 10.0 + index,
        "currency": "EUR",
        "merchant_id": f"m-{index % 3}",
        "device_id": f"d-{index % 5}",
        "ip_address": f"10.0.0.{index % 4}",
    }
    return json.dumps(body).encode(), account


@pytest.fixture
def target(tmp_path: Path) -> LocalTarget:
    close_local_backends()
    return LocalTarget(state_dir=tmp_path.resolve(), timeseries_backend="duckdb")


@pytest.fixture
def worker(target: LocalTarget) -> Iterator[SpanWorker]:
    started = SpanWorker(WorkerSetup(target=target, shards=1, batch_size=10, max_retries=3, verbose=False))
    started.serve()
    try:
        yield started
    finally:
        started.close()
        close_local_backends()


def function_store(target: LocalTarget) -> object:
    """The store SharedDeviceAnalysisFunction gets, as the main process builds it."""
    runner = FunctionRunner(target, verbose=False)
    with patched_environment(runner.environment("SharedDeviceAnalysisFunction")):
        return backends.timeseries_store()


def test_the_main_process_reads_through_the_worker_with_its_horizon(
    target: LocalTarget, worker: SpanWorker
) -> None:
    worker.stage([record(i) for i in range(RECORDS)], [])
    staged = worker.collect()
    assert staged.runs == {}
    assert staged.seconds["ingest_timeseries"] > 0
    store = function_store(target)
    assert isinstance(store, ServedTimeseriesStore)
    path = StateDir(target.state_dir).timeseries
    database, table = store.database, store.table
    sql = f'SELECT count(*) AS n FROM "{database}"."{table}"'
    assert int(store.query(sql)[0]["n"]) == RECORDS
    assert store.count() == RECORDS
    # the worker's DuckDB leaves the main process its core
    assert worker.query("SELECT current_setting('threads') AS t", None, database, table) == [{"t": 1}]
    # the calling thread's horizon travels with the query: rows before it, nothing after
    with read_horizon(path, START + timedelta(minutes=10)):
        assert int(store.query(sql)[0]["n"]) == 10
    with read_horizon(path, START):
        assert int(store.query(sql)[0]["n"]) == 0
    # a column no record used is missing, as Timestream (and the file opened here) says
    with pytest.raises(MissingColumnError) as missing:
        store.query(f'SELECT card_id FROM "{database}"."{table}"')
    assert missing.value.column == "card_id"
    # a column used only after the horizon does not exist yet under it
    with read_horizon(path, START), pytest.raises(MissingColumnError):
        store.query(f'SELECT device_id FROM "{database}"."{table}"')
    # an error of the query itself comes back as itself, naming what was wrong
    with pytest.raises(Exception, match="nonexistent_table"):
        store.query(f'SELECT * FROM "{database}"."nonexistent_table"')
    # the file is the worker's: the main process may not write it meanwhile
    with pytest.raises(StoreOwnedElsewhereError, match=f"pid {worker.pid}"):
        store.write([])


def test_closing_hands_back_the_file_and_the_figures(target: LocalTarget, worker: SpanWorker) -> None:
    worker.stage([record(i) for i in range(RECORDS)], [])
    store = function_store(target)  # asked while the span is being staged
    report = worker.close()
    assert report is not None
    assert report.mapping_stats["records_delivered"] == RECORDS
    assert report.mapping_stats["invocations"] == RECORDS // 10
    assert report.statistics is None  # no tick was evaluated
    assert not worker.process.is_alive()
    assert owner_of(StateDir(target.state_dir).timeseries) is None
    # the store opens the file itself now, and a store opened anew is a plain one
    assert store.count() == RECORDS  # type: ignore[attr-defined]
    store.close()  # type: ignore[attr-defined]
    close_local_backends()
    assert isinstance(function_store(target), DuckDBTimeseriesStore)


def test_a_dead_worker_is_reported_not_waited_for(target: LocalTarget, worker: SpanWorker) -> None:
    worker.stage([record(i) for i in range(RECORDS)], [])
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)
    with pytest.raises(SpanWorkerError, match=rf"pid {worker.pid}.*exit code|pid {worker.pid}"):
        worker.collect()
    assert worker.close() is None
    assert not worker.process.is_alive()
    with pytest.raises(SpanWorkerError, match="pid"):
        worker.query("SELECT 1", None, "fraud", "transactions")


def test_a_file_held_here_fails_the_first_span_with_the_reason(target: LocalTarget) -> None:
    held = DuckDBTimeseriesStore(StateDir(target.state_dir).timeseries, "fraud", "transactions")
    worker = SpanWorker(WorkerSetup(target=target, shards=1, batch_size=10, max_retries=3, verbose=False))
    try:
        worker.stage([record(i) for i in range(RECORDS)], [])
        with pytest.raises(Exception, match=r"(?i)lock") as failed:
            worker.collect()
        # where it was raised in the worker travels with it
        assert any(f"span worker (pid {worker.pid})" in note for note in failed.value.__notes__)
    finally:
        assert worker.close() is not None  # it answers to the end, then ends
        held.close()
    assert not worker.process.is_alive()
