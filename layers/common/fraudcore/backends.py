"""Build the adapters the settings choose, once per execution environment.

Local-only adapters (DuckDB, the embedded graph, JSON-lines sinks, the local investigation
queue) live in ``fraudlocal`` and are imported here only when chosen, so the Lambda layer
never needs them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from .ports import EventPublisher, InvestigationStarter, RejectedRecordSink, TimeseriesStore
from .settings import Settings, get_settings

T = TypeVar("T")
_cache: dict[tuple[str, Settings], Any] = {}
_lock = threading.RLock()  # graph_store builds graph_connection inside the lock


def _cached(kind: str, settings: Settings, build: Callable[[], T]) -> T:
    key = (kind, settings)
    with _lock:
        if key not in _cache:
            _cache[key] = build()
        return _cache[key]


def reset() -> None:
    """Close and forget every adapter (the local runner switches state dirs between runs)."""
    with _lock:
        for adapter in _cache.values():
            close = getattr(adapter, "close", None)
            if callable(close):
                close()
        _cache.clear()


def timeseries_store(settings: Settings | None = None) -> TimeseriesStore:
    settings = settings or get_settings()

    def build() -> TimeseriesStore:
        if settings.timeseries_backend == "timestream":
            from .timeseries.timestream import TimestreamStore

            return TimestreamStore(
                settings.timestream_database,
                settings.timestream_table,
                settings.timestream_memory_retention_hours,
            )
        if settings.timeseries_backend == "influxdb3":
            from .timeseries.influxdb3 import InfluxDB3Store

            return InfluxDB3Store.from_settings(settings)
        if settings.timeseries_backend == "datafusion":
            from fraudlocal.timeseries_datafusion import open_store

            return open_store(
                settings.state_dir / "timeseries-datafusion",
                settings.timestream_database,
                settings.timestream_table,
            )
        from fraudlocal.timeseries_duckdb import DuckDBTimeseriesStore

        settings.state_dir.mkdir(parents=True, exist_ok=True)
        return DuckDBTimeseriesStore(
            settings.state_dir / "timeseries.duckdb", settings.timestream_database, settings.timestream_table
        )

    return _cached("timeseries", settings, build)


def graph_connection(settings: Settings | None = None):
    """The graph connection of this execution environment (see fraudcore.graph.connection)."""
    settings = settings or get_settings()

    def build():
        from .graph.connection import GraphConnection

        if settings.graph_backend == "embedded":
            from fraudlocal.graph_embedded import open_embedded_graph

            return GraphConnection.from_factory(
                lambda: open_embedded_graph(settings.state_dir), settings=settings
            )
        return GraphConnection.from_settings(settings, traversal_source=settings.graph_traversal_source)

    return _cached("graph", settings, build)


def graph_store(settings: Settings | None = None):
    settings = settings or get_settings()

    def build():
        from .graph.store import GraphStore

        return GraphStore(graph_connection(settings), write_batch=settings.graph_write_batch)

    return _cached("graph_store", settings, build)


def rejected_sink(settings: Settings | None = None) -> RejectedRecordSink:
    settings = settings or get_settings()

    def build() -> RejectedRecordSink:
        if settings.rejected_sink == "sqs":
            from .aws_adapters import SqsRejectedRecordSink

            return SqsRejectedRecordSink(settings.rejected_queue_url)
        from fraudlocal.sinks import JsonlRejectedRecordSink

        return JsonlRejectedRecordSink(settings.state_dir)

    return _cached("rejected", settings, build)


def event_publisher(settings: Settings | None = None) -> EventPublisher:
    settings = settings or get_settings()

    def build() -> EventPublisher:
        if settings.event_publisher == "eventbridge":
            from .aws_adapters import EventBridgePublisher

            return EventBridgePublisher(settings.event_bus_name, settings.event_source)
        from fraudlocal.sinks import JsonlEventPublisher

        return JsonlEventPublisher(settings.state_dir, source=settings.event_source)

    return _cached("publisher", settings, build)


def investigation_starter(settings: Settings | None = None) -> InvestigationStarter:
    settings = settings or get_settings()

    def build() -> InvestigationStarter:
        if settings.investigation_starter == "stepfunctions":
            from .aws_adapters import StepFunctionsInvestigationStarter

            return StepFunctionsInvestigationStarter(settings.state_machine_arn)
        from fraudlocal.starter_local import LocalInvestigationStarter

        return LocalInvestigationStarter(settings.state_dir)

    return _cached("starter", settings, build)
