"""Build the adapters the settings choose, once per execution environment.

A registry of adapter factories keyed by (port, backend name). fraudcore registers its
AWS adapters and the network graph backends here; other packages register theirs on
import (the local stack's embedded stores and files register when ``fraudlocal`` is
imported), so the Lambda layer carries and imports none of them. Every adapter built is
kept in one cache, keyed by port and settings, and closed by :func:`reset`.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .ports import EventPublisher, InvestigationStarter, RejectedRecordSink, TimeseriesStore
from .settings import ConfigurationError, Settings, get_settings

if TYPE_CHECKING:
    from .graph.connection import GraphConnection
    from .graph.store import GraphStore

T = TypeVar("T")
Factory = Callable[[Settings], Any]

#: port -> the setting that names its backend
PORTS = {
    "timeseries": "timeseries_backend",
    "graph": "graph_backend",
    "rejected": "rejected_sink",
    "publisher": "event_publisher",
    "starter": "investigation_starter",
}

_factories: dict[tuple[str, str], Factory] = {}
_cache: dict[tuple[str, Settings], Any] = {}
_lock = threading.RLock()  # graph_store builds graph_connection inside the lock


def register(port: str, backend: str, factory: Factory) -> None:
    """Make ``factory(settings)`` the adapter of ``port`` when the settings choose ``backend``."""
    if port not in PORTS:
        raise ValueError(f"unknown port {port!r}: expected one of {', '.join(PORTS)}")
    with _lock:
        _factories[(port, backend)] = factory


def unregister(port: str, backend: str) -> None:
    with _lock:
        _factories.pop((port, backend), None)


def _build(port: str, settings: Settings) -> Any:
    backend = getattr(settings, PORTS[port])
    factory = _factories.get((port, backend))
    if factory is None:
        known = sorted(name for (p, name) in _factories if p == port)
        raise ConfigurationError(
            f"{Settings.env_name(PORTS[port])}={backend!r}: no adapter is registered for it in this process "
            f"(registered: {', '.join(known) or 'none'}); the local adapters register when "
            "fraudlocal is imported, and are not part of the Lambda layer"
        )
    return factory(settings)


def _cached(port: str, settings: Settings) -> Any:
    key = (port, settings)
    with _lock:
        if key not in _cache:
            _cache[key] = _build(port, settings)
        return _cache[key]


def reset() -> None:
    """Close and forget every adapter (the local runner switches state dirs between runs)."""
    with _lock:
        adapters = list(_cache.values())
        _cache.clear()
    for adapter in adapters:
        close = getattr(adapter, "close", None)
        if callable(close):
            close()


atexit.register(reset)


def timeseries_store(settings: Settings | None = None) -> TimeseriesStore:
    settings = settings or get_settings()
    return _cached("timeseries", settings)


def graph_connection(settings: Settings | None = None) -> GraphConnection:
    """The graph connection of this execution environment (see fraudcore.graph.connection)."""
    settings = settings or get_settings()
    return _cached("graph", settings)


def graph_store(settings: Settings | None = None) -> GraphStore:
    settings = settings or get_settings()
    with _lock:
        key = ("graph_store", settings)
        if key not in _cache:
            from .graph.store import GraphStore

            _cache[key] = GraphStore(graph_connection(settings), write_batch=settings.graph_write_batch)
        return _cache[key]


def rejected_sink(settings: Settings | None = None) -> RejectedRecordSink:
    settings = settings or get_settings()
    return _cached("rejected", settings)


def event_publisher(settings: Settings | None = None) -> EventPublisher:
    settings = settings or get_settings()
    return _cached("publisher", settings)


def investigation_starter(settings: Settings | None = None) -> InvestigationStarter:
    settings = settings or get_settings()
    return _cached("starter", settings)


# -- the adapters of the Lambda layer ------------------------------------------------------


def _timestream(settings: Settings) -> TimeseriesStore:
    from .timeseries.timestream import TimestreamStore

    return TimestreamStore(
        settings.timestream_database,
        settings.timestream_table,
        settings.timestream_memory_retention_hours,
        query_endpoint=settings.timestream_query_endpoint,
    )


def _influxdb3(settings: Settings) -> TimeseriesStore:
    from .timeseries.influxdb3 import InfluxDB3Store

    return InfluxDB3Store.from_settings(settings)


def _network_graph(settings: Settings) -> GraphConnection:
    from .graph.connection import GraphConnection

    return GraphConnection.from_settings(settings, traversal_source=settings.graph_traversal_source)


def _sqs(settings: Settings) -> RejectedRecordSink:
    from .aws_adapters import SqsRejectedRecordSink

    return SqsRejectedRecordSink(settings.rejected_queue_url)


def _eventbridge(settings: Settings) -> EventPublisher:
    from .aws_adapters import EventBridgePublisher

    return EventBridgePublisher(settings.event_bus_name, settings.event_source)


def _stepfunctions(settings: Settings) -> InvestigationStarter:
    from .aws_adapters import StepFunctionsInvestigationStarter

    return StepFunctionsInvestigationStarter(settings.state_machine_arn)


register("timeseries", "timestream", _timestream)
register("timeseries", "influxdb3", _influxdb3)
register("graph", "neptune", _network_graph)
register("graph", "gremlin-server", _network_graph)
register("rejected", "sqs", _sqs)
register("publisher", "eventbridge", _eventbridge)
register("starter", "stepfunctions", _stepfunctions)
