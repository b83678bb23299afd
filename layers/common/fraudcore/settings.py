"""Typed configuration, read once from the environment (as Lambda receives it).

Every default runs locally with no AWS account: DuckDB for the time series, the embedded
graph engine, JSON-lines files for rejected records and published events, all under
``FRAUD_STATE_DIR``. ``template.yaml`` sets the AWS values for the deployed functions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path

TIMESERIES_BACKENDS = ("timestream", "influxdb3", "duckdb", "datafusion")
GRAPH_BACKENDS = ("neptune", "gremlin-server", "embedded")
SINK_BACKENDS = ("sqs", "jsonl")
PUBLISHER_BACKENDS = ("eventbridge", "jsonl")
STARTER_BACKENDS = ("stepfunctions", "local")


class ConfigurationError(ValueError):
    """A setting is missing or has a value the system cannot use."""


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ConfigurationError(f"{name}={raw!r}: expected true or false")


def _int(name: str, raw: str, minimum: int = 0) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r}: expected a whole number") from None
    if value < minimum:
        raise ConfigurationError(f"{name}={raw!r}: must be at least {minimum}")
    return value


def _choice(name: str, raw: str, allowed: tuple[str, ...]) -> str:
    if raw not in allowed:
        raise ConfigurationError(f"{name}={raw!r}: expected one of {', '.join(allowed)}")
    return raw


@dataclass(frozen=True)
class Settings:
    """Everything a function needs to know about where its data lives."""

    # Time-series store
    timeseries_backend: str = "duckdb"
    timestream_database: str = "fraud"
    timestream_table: str = "transactions"
    #: hours of the Timestream memory store: older records must go to the magnetic store
    timestream_memory_retention_hours: int = 24
    #: Timestream for InfluxDB 3: https://host:port of the cluster, its database, and the
    #: Secrets Manager secret holding the token (see fraudcore.timeseries.influxdb3)
    influxdb_endpoint: str = ""
    influxdb_database: str = "fraud"
    influxdb_secret_arn: str = ""
    influxdb_token: str = ""
    influxdb_verify_tls: bool = True
    # Graph store
    graph_backend: str = "embedded"
    #: ws(s)://host:port/gremlin for neptune and gremlin-server
    graph_endpoint: str = "ws://127.0.0.1:8182/gremlin"
    #: the server's traversal source (Gremlin Server can bind several graphs; Neptune has g)
    graph_traversal_source: str = "g"
    neptune_iam_auth: bool = False
    graph_eval_timeout_ms: int = 30_000
    #: objects (vertices or edges) per mergeV/mergeE request
    graph_write_batch: int = 150
    graph_max_retries: int = 5
    # Sinks and publishers
    rejected_sink: str = "jsonl"
    rejected_queue_url: str = ""
    event_publisher: str = "jsonl"
    event_bus_name: str = "default"
    event_source: str = "fraud-detection"
    investigation_starter: str = "local"
    state_machine_arn: str = ""
    #: mapping applied to incoming records: "auto" (canonical, or a shipped mapping whose
    #: ``require`` matches), a shipped mapping name, a file path, or "" for canonical only
    field_mapping: str = "auto"
    # Micro-analysis
    rules_override: str = ""
    max_investigations_per_run: int = 200
    #: time between scheduled runs: a duration (15m) or the schedule's rate(15 minutes)
    micro_schedule_interval: str = "5m"
    # Local state
    state_dir: Path = field(default_factory=lambda: Path(".fraudlocal"))
    aws_region: str = "us-east-1"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        d = cls()

        def get(name: str, default: object) -> str:
            return env.get(name, str(default) if not isinstance(default, bool) else str(default).lower())

        settings = cls(
            timeseries_backend=_choice(
                "TIMESERIES_BACKEND", get("TIMESERIES_BACKEND", d.timeseries_backend), TIMESERIES_BACKENDS
            ),
            timestream_database=get("TIMESTREAM_DATABASE", d.timestream_database),
            timestream_table=get("TIMESTREAM_TABLE", d.timestream_table),
            timestream_memory_retention_hours=_int(
                "TIMESTREAM_MEMORY_RETENTION_HOURS",
                get("TIMESTREAM_MEMORY_RETENTION_HOURS", d.timestream_memory_retention_hours),
                1,
            ),
            influxdb_endpoint=get("INFLUXDB_ENDPOINT", d.influxdb_endpoint).strip().rstrip("/"),
            influxdb_database=get("INFLUXDB_DATABASE", d.influxdb_database),
            influxdb_secret_arn=get("INFLUXDB_SECRET_ARN", d.influxdb_secret_arn).strip(),
            influxdb_token=get("INFLUXDB_TOKEN", d.influxdb_token),
            influxdb_verify_tls=_bool(
                "INFLUXDB_VERIFY_TLS", get("INFLUXDB_VERIFY_TLS", d.influxdb_verify_tls)
            ),
            graph_backend=_choice("GRAPH_BACKEND", get("GRAPH_BACKEND", d.graph_backend), GRAPH_BACKENDS),
            graph_endpoint=get("GRAPH_ENDPOINT", d.graph_endpoint),
            graph_traversal_source=get("GRAPH_TRAVERSAL_SOURCE", d.graph_traversal_source),
            neptune_iam_auth=_bool("NEPTUNE_IAM_AUTH", get("NEPTUNE_IAM_AUTH", d.neptune_iam_auth)),
            graph_eval_timeout_ms=_int(
                "GRAPH_EVAL_TIMEOUT_MS", get("GRAPH_EVAL_TIMEOUT_MS", d.graph_eval_timeout_ms), 1
            ),
            graph_write_batch=_int("GRAPH_WRITE_BATCH", get("GRAPH_WRITE_BATCH", d.graph_write_batch), 1),
            graph_max_retries=_int("GRAPH_MAX_RETRIES", get("GRAPH_MAX_RETRIES", d.graph_max_retries), 0),
            rejected_sink=_choice("REJECTED_SINK", get("REJECTED_SINK", d.rejected_sink), SINK_BACKENDS),
            rejected_queue_url=get("REJECTED_QUEUE_URL", d.rejected_queue_url),
            event_publisher=_choice(
                "EVENT_PUBLISHER", get("EVENT_PUBLISHER", d.event_publisher), PUBLISHER_BACKENDS
            ),
            event_bus_name=get("EVENT_BUS_NAME", d.event_bus_name),
            event_source=get("EVENT_SOURCE", d.event_source),
            investigation_starter=_choice(
                "INVESTIGATION_STARTER",
                get("INVESTIGATION_STARTER", d.investigation_starter),
                STARTER_BACKENDS,
            ),
            state_machine_arn=get("STATE_MACHINE_ARN", d.state_machine_arn),
            field_mapping=get("FIELD_MAPPING", d.field_mapping),
            rules_override=get("RULES_OVERRIDE", d.rules_override),
            max_investigations_per_run=_int(
                "MAX_INVESTIGATIONS_PER_RUN",
                get("MAX_INVESTIGATIONS_PER_RUN", d.max_investigations_per_run),
                0,
            ),
            micro_schedule_interval=get("MICRO_SCHEDULE_INTERVAL", d.micro_schedule_interval).strip(),
            state_dir=Path(get("FRAUD_STATE_DIR", d.state_dir)),
            aws_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or d.aws_region,
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Fail early, naming the setting, when a chosen backend lacks what it needs."""
        if self.timeseries_backend == "influxdb3":
            if not self.influxdb_endpoint.startswith(("https://", "http://")):
                raise ConfigurationError(
                    f"TIMESERIES_BACKEND=influxdb3 needs INFLUXDB_ENDPOINT=https://host:port, got {self.influxdb_endpoint!r}"
                )
            if not (self.influxdb_secret_arn or self.influxdb_token):
                raise ConfigurationError(
                    "TIMESERIES_BACKEND=influxdb3 needs INFLUXDB_SECRET_ARN (or INFLUXDB_TOKEN)"
                )
        if self.rejected_sink == "sqs" and not self.rejected_queue_url:
            raise ConfigurationError("REJECTED_SINK=sqs needs REJECTED_QUEUE_URL")
        if self.investigation_starter == "stepfunctions" and not self.state_machine_arn:
            raise ConfigurationError("INVESTIGATION_STARTER=stepfunctions needs STATE_MACHINE_ARN")
        if self.graph_backend in ("neptune", "gremlin-server") and not self.graph_endpoint.startswith(
            ("ws://", "wss://")
        ):
            raise ConfigurationError(
                f"GRAPH_ENDPOINT={self.graph_endpoint!r}: expected ws://host:port/gremlin or wss://..."
            )

    def as_dict(self) -> dict[str, object]:
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this execution environment, read once."""
    return Settings.from_env()


def reset_settings_cache() -> None:
    """Forget the cached settings (the local runner changes the environment between invocations)."""
    get_settings.cache_clear()
