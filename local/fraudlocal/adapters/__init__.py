"""The local adapters of fraudcore's ports, registered with :mod:`fraudcore.backends`.

Importing :mod:`fraudlocal` registers them: DuckDB or DataFusion for the time series, the embedded graph
engine, JSON-lines files for rejected records and published events, and the on-disk queue
of investigations. Each factory imports its adapter only when a setting chooses it.
"""

from __future__ import annotations

from fraudcore import backends
from fraudcore.settings import Settings

from ..state_dir import StateDir


def _duckdb(settings: Settings):
    from fraudlocal.adapters.timeseries_duckdb import DuckDBTimeseriesStore
    from fraudlocal.adapters.timeseries_served import ServedTimeseriesStore, owner_of

    settings.state_dir.mkdir(parents=True, exist_ok=True)
    path = StateDir(settings.state_dir).timeseries
    if owner_of(path) is not None:  # another process owns the file (the span worker)
        return ServedTimeseriesStore(path, settings.timestream_database, settings.timestream_table)
    return DuckDBTimeseriesStore(path, settings.timestream_database, settings.timestream_table)


def _datafusion(settings: Settings):
    from fraudlocal.adapters.timeseries_datafusion import open_store

    return open_store(
        StateDir(settings.state_dir).timeseries_datafusion,
        settings.timestream_database,
        settings.timestream_table,
    )


def _embedded_graph(settings: Settings):
    from fraudcore.graph.connection import GraphConnection
    from fraudlocal.adapters.graph_embedded import open_embedded_graph

    return GraphConnection.from_factory(lambda: open_embedded_graph(settings.state_dir), settings=settings)


def _jsonl_rejected(settings: Settings):
    from fraudlocal.adapters.sinks import JsonlRejectedRecordSink

    return JsonlRejectedRecordSink(settings.state_dir)


def _jsonl_events(settings: Settings):
    from fraudlocal.adapters.sinks import JsonlEventPublisher

    return JsonlEventPublisher(settings.state_dir, source=settings.event_source)


def _local_starter(settings: Settings):
    from fraudlocal.adapters.starter_local import LocalInvestigationStarter

    return LocalInvestigationStarter(settings.state_dir)


def register() -> None:
    backends.register("timeseries", "duckdb", _duckdb)
    backends.register("timeseries", "datafusion", _datafusion)
    backends.register("graph", "embedded", _embedded_graph)
    backends.register("rejected", "jsonl", _jsonl_rejected)
    backends.register("publisher", "jsonl", _jsonl_events)
    backends.register("starter", "local", _local_starter)
