"""The time-series side of the per-span pipeline in a second process (``--overlap``).

On AWS, ``IngestTimeseriesFunction``'s mapping, ``IngestGraphFunction``'s mapping and the
schedule run at the same time, each in its own Lambda process. Locally, with
``overlap``, this process does what the main thread did for a span before it went
through the clock: it reads the span into the time-series store through the
function's own mapping (:class:`~fraudlocal.emulators.kinesis_esm.EventSourceMapping`:
retries, bisection, the on-failure file) and evaluates the rules over the span's ticks
(:class:`~.span_evaluation.SpanEvaluator`, built in ``MicroAnalysisFunction``'s
environment). Meanwhile the main process puts the previous span through the clock: graph
ingest, ticks, investigations. The two share no interpreter, so neither waits for the
other's GIL (a second thread did: see docs/architecture.md).

This process owns the DuckDB file: DuckDB lets one process at a time open a database
for writing. The functions the main process invokes read the time series through
:class:`~fraudlocal.adapters.timeseries_served.ServedTimeseriesStore`, which sends each
query here with the replay horizon of the calling thread; a thread of this process answers
it while the other stages the next span, each with its own horizon. Once the worker is
closed, the store opens the file itself.

The process is started with ``spawn`` (no fork of a process running threads) and stopped
by whoever started it: :meth:`SpanWorker.close` asks it to end, and kills it by its PID
if it does not.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import signal
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from fraudcore.timeseries import MissingColumnError
from fraudlocal import collector
from fraudlocal.adapters import timeseries_served
from fraudlocal.state_dir import StateDir

from .functions import INGEST_TIMESERIES, Stopwatch, evaluation_setup, stage_span, timed_handler

#: seconds :meth:`SpanWorker.close` waits for the process to end before it kills it
STOP_TIMEOUT_S = 30.0
#: threads DuckDB gives a query in the worker: at 100,000 transactions, one thread made the run
#: 4% faster than DuckDB's default (one per core), which took the main process's core
WORKER_DUCKDB_THREADS = 1


@dataclass(frozen=True)
class WorkerSetup:
    """What the worker needs to build the time-series mapping and the span evaluator."""

    target: Any  # LocalTarget (picklable: paths and strings)
    shards: int
    batch_size: int
    max_retries: int
    verbose: bool


@dataclass
class StagedResult:
    """A span staged by the worker: each tick's run, and what it took."""

    runs: dict[datetime, Any]
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class WorkerReport:
    """What the worker hands back when it ends: its mapping's figures, the rule queries, and
    the CPU seconds it used."""

    mapping_stats: dict[str, int]
    statistics: dict[str, int] | None
    cpu_seconds: float


class SpanWorkerError(RuntimeError):
    """The worker failed (its traceback is in the message) or ended unexpectedly."""


# -- the main process's side ------------------------------------------------------------------
class SpanWorker:
    """The handle on the worker process: stage spans, ask queries, close. While it runs, the
    stores of its time-series file opened in this process ask it
    (:meth:`serve`, :meth:`close`)."""

    def __init__(self, setup: WorkerSetup):
        context = multiprocessing.get_context("spawn")
        self._stage_end, stage_end = context.Pipe()
        self._query_end, query_end = context.Pipe()
        self._query_lock = threading.Lock()
        self.path = _timeseries_path(setup.target.state_dir)
        self.process = context.Process(
            target=_serve,
            args=(setup, stage_end, query_end),
            name="span-worker",
            daemon=True,
        )
        self.process.start()
        stage_end.close()
        query_end.close()
        self.busy = False
        self.closed = False

    def serve(self) -> None:
        """From now on, stores of the worker's file opened in this process ask the worker."""
        timeseries_served.serve_from(self.path, self)

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def stage(self, records: Sequence[tuple[bytes | str, str]], ticks: Sequence[datetime]) -> None:
        """Send a span to be read into the store and its ``ticks`` evaluated; :meth:`collect`
        waits for it."""
        if self.busy:
            raise SpanWorkerError("the span worker is still staging the previous span")
        self._send(self._stage_end, ("stage", list(records), list(ticks)))
        self.busy = True

    def collect(self) -> StagedResult:
        """Wait for the span sent last."""
        if not self.busy:
            raise SpanWorkerError("no span is being staged")
        self.busy = False
        return self._answer(self._stage_end)

    def query(self, sql: str, horizon: datetime | None, database: str, table: str) -> list[dict[str, Any]]:
        with self._query_lock:
            self._send(self._query_end, ("query", sql, horizon, database, table))
            return self._answer(self._query_end)

    def count(self, database: str, table: str) -> int:
        with self._query_lock:
            self._send(self._query_end, ("count", database, table))
            return self._answer(self._query_end)

    def close(self) -> WorkerReport | None:
        """End the worker (after the span it is staging, if any); returns its report, or None
        when it had failed. A worker that does not end is killed by its PID."""
        if self.closed:
            return None
        self.closed = True
        timeseries_served.stop_serving(self.path, self)
        report: WorkerReport | None = None
        try:
            if self.busy:
                self.busy = False
                self._answer(self._stage_end)
            self._send(self._stage_end, ("close",))
            report = self._answer(self._stage_end)
        except Exception:  # it failed (already reported by the call that waited for it) or died
            report = None
        finally:
            for end in (self._stage_end, self._query_end):
                end.close()
            self.process.join(STOP_TIMEOUT_S)
            if self.process.is_alive() and self.process.pid is not None:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.join()
        return report

    def _send(self, end: Any, message: tuple[Any, ...]) -> None:
        try:
            end.send(message)
        except (OSError, EOFError) as error:
            raise SpanWorkerError(f"the span worker (pid {self.pid}) is gone: {error}") from None

    def _answer(self, end: Any) -> Any:
        try:
            status, value = end.recv()
        except (OSError, EOFError) as error:
            raise SpanWorkerError(
                f"the span worker (pid {self.pid}) ended without answering"
                f" (exit code {self.process.exitcode}): {error or 'connection closed'}"
            ) from None
        if status == "ok":
            return value
        if status == "missing_column":
            raise MissingColumnError(*value)
        if status == "raised":
            raise value
        raise SpanWorkerError(f"the span worker failed:\n{value}")


def _timeseries_path(state_dir: Path) -> Path:
    return StateDir(state_dir).timeseries.resolve()


# -- the worker process -----------------------------------------------------------------------
def _serve(setup: WorkerSetup, stage_end: Any, query_end: Any) -> None:
    """The worker's main: a thread answers queries, this one stages spans until ``close``."""
    # Ctrl+C reaches the whole process group: the main process handles it and closes the
    # worker, which finishes what it was doing rather than dying half way with a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    collector.set_for_batch_run()  # this process runs nothing but the pipeline's stages
    stores: dict[tuple[str, str], Any] = {}
    stores_lock = threading.Lock()
    path = _timeseries_path(setup.target.state_dir)

    def store(database: str, table: str) -> Any:
        from fraudlocal.adapters.timeseries_duckdb import DuckDBTimeseriesStore

        with stores_lock:
            if (database, table) not in stores:
                stores[(database, table)] = DuckDBTimeseriesStore(path, database, table)
            return stores[(database, table)]

    answering = threading.Thread(
        target=_answer_queries, args=(query_end, store, path), name="span-worker-queries", daemon=True
    )
    answering.start()
    # Built at once, while the main process reads its input; a failure is the answer to the
    # first span.
    stager: _Stager | None = None
    failure: Exception | None = None
    try:
        stager = _Stager(setup)
    except Exception as error:
        failure = error

    def stage(records: list[tuple[bytes | str, str]], ticks: list[datetime]) -> StagedResult:
        if stager is None:
            assert failure is not None
            raise failure
        return stager.stage(records, ticks)

    try:
        for message in _messages(stage_end):
            if message[0] == "close":
                _reply(
                    stage_end,
                    lambda: stager.close() if stager else WorkerReport({}, None, time.process_time()),
                )
                break
            _, records, ticks = message
            _reply(stage_end, lambda records=records, ticks=ticks: stage(records, ticks))
    finally:
        from fraudlocal.emulators.runtime import close_local_backends

        close_local_backends()
        with stores_lock:
            for opened in stores.values():
                opened.close()


def _messages(end: Any) -> Iterator[tuple[Any, ...]]:
    while True:
        try:
            yield end.recv()
        except (EOFError, OSError):  # the main process closed its end: stop
            return


def _answer_queries(end: Any, store: Any, path: Path) -> None:
    from fraudlocal.adapters.timeseries_duckdb import read_horizon

    for message in _messages(end):
        if message[0] == "count":
            _, database, table = message
            _reply(end, lambda database=database, table=table: store(database, table).count())
            continue
        _, sql, horizon, database, table = message

        def run(
            sql: str = sql, horizon: datetime | None = horizon, database: str = database, table: str = table
        ) -> Any:
            if horizon is None:
                return store(database, table).query(sql)
            with read_horizon(path, horizon):
                return store(database, table).query(sql)

        _reply(end, run)


def _reply(end: Any, compute: Any) -> None:
    """Send ``("ok", value)``, or the error: a missing column as itself, another exception
    as itself when it pickles, else its traceback."""
    try:
        answer: tuple[str, Any] = ("ok", compute())
    except MissingColumnError as error:
        answer = ("missing_column", (error.column, str(error)))
    except Exception as error:  # handed to the main process, which raises it
        where = traceback.format_exc()
        error.add_note(f"raised in the span worker (pid {os.getpid()}):\n{where}")
        answer = ("raised", error)
        try:
            pickle.loads(pickle.dumps(error))
        except Exception:
            answer = ("failed", where)
    with contextlib.suppress(OSError, EOFError):  # the main process is gone
        end.send(answer)


class _Stager:
    """The time-series mapping and the span evaluator, as the main thread had them."""

    def __init__(self, setup: WorkerSetup):
        import duckdb

        from fraudcore import backends
        from fraudlocal.emulators.kinesis_esm import EventSourceMapping, LocalStream
        from fraudlocal.emulators.runtime import FunctionRunner, patched_environment

        self.runner = FunctionRunner(setup.target, verbose=setup.verbose)
        # The function's store, opened now: a file this process cannot open (another process
        # holds it) fails the first span, rather than every batch of the mapping.
        with patched_environment(self.runner.environment(INGEST_TIMESERIES)):
            backends.timeseries_store()
        # DuckDB runs this process's queries on one thread: the main process has the other core
        # (a setting of the database, which the store's connection keeps open).
        with duckdb.connect(str(_timeseries_path(setup.target.state_dir))) as connection:
            connection.execute(f"SET threads = {WORKER_DUCKDB_THREADS}")
        self.watch = Stopwatch({})
        self.stream = LocalStream(setup.shards)
        self.mapping = EventSourceMapping(
            name=INGEST_TIMESERIES,
            handler=timed_handler(self.runner, INGEST_TIMESERIES, self.watch, "ingest_timeseries"),
            batch_size=setup.batch_size,
            max_retries=setup.max_retries,
            bisect_on_error=True,
            on_failure=StateDir(setup.target.state_dir).ingest_failures,
        )
        self.evaluator: Any = None
        self.name_key: bytes | None = None

    def stage(self, records: list[tuple[bytes | str, str]], ticks: list[datetime]) -> StagedResult:
        self.watch.seconds = {}
        runs = stage_span(self.stream, self.mapping, records, ticks, self._evaluation, self.watch)
        return StagedResult(runs, self.watch.seconds)

    def _evaluation(self) -> tuple[Any, bytes]:
        if self.evaluator is None:
            setup = evaluation_setup(self.runner)
            self.evaluator = setup.evaluator()
            self.name_key = setup.name_key
        assert self.name_key is not None
        return self.evaluator, self.name_key

    def close(self) -> WorkerReport:
        statistics = self.evaluator.statistics.to_dict() if self.evaluator is not None else None
        return WorkerReport(self.mapping.stats.to_dict(), statistics, time.process_time())
