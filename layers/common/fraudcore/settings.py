"""Typed configuration, read once from the environment (as Lambda receives it).

Every default runs locally with no AWS account: DuckDB for the time series, the embedded
graph engine, JSON-lines files for rejected records and published events, all under
``FRAUD_STATE_DIR``. ``template.yaml`` sets the AWS values for the deployed functions.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any

from .limits import DEFAULT_MAX_AMOUNT

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


def _positive_float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r}: expected a number") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"{name}={raw!r}: must be a finite number more than 0")
    return value


def _choice(name: str, raw: str, allowed: tuple[str, ...]) -> str:
    if raw not in allowed:
        raise ConfigurationError(f"{name}={raw!r}: expected one of {', '.join(allowed)}")
    return raw


def _env(
    name: str,
    default: Any,
    *,
    minimum: int | None = None,
    choices: tuple[str, ...] | None = None,
    also: tuple[str, ...] = (),
) -> Any:
    """A setting read from the environment variable ``name`` (or the first of ``also`` set)."""
    spec = {"env": name, "minimum": minimum, "choices": choices, "also": also}
    if isinstance(default, Path):
        return field(default_factory=lambda: Path(default), metadata=spec)
    return field(default=default, metadata=spec)


def _parse(setting: Field[Any], raw: str) -> Any:
    name, spec = setting.metadata["env"], setting.metadata
    if spec["choices"]:
        return _choice(name, raw, spec["choices"])
    if setting.type in ("bool", bool):
        return _bool(name, raw)
    if setting.type in ("int", int):
        return _int(name, raw, spec["minimum"] or 0)
    if setting.type in ("float", float):
        return _positive_float(name, raw)
    if setting.type in ("Path", Path):
        return Path(raw)
    return raw


def _has_default_when_empty(setting: Field[Any]) -> bool:
    return bool(setting.metadata["choices"]) or setting.type in ("int", int, "float", float)


@dataclass(frozen=True)
class Settings:
    """Everything a function needs to know about where its data lives.

    Each field names its environment variable once; :meth:`from_env` reads them all.
    """

    # Time-series store
    timeseries_backend: str = _env("TIMESERIES_BACKEND", "duckdb", choices=TIMESERIES_BACKENDS)
    timestream_database: str = _env("TIMESTREAM_DATABASE", "fraud")
    timestream_table: str = _env("TIMESTREAM_TABLE", "transactions")
    #: hours of the Timestream memory store: older records must go to the magnetic store
    timestream_memory_retention_hours: int = _env("TIMESTREAM_MEMORY_RETENTION_HOURS", 24, minimum=1)
    #: https://<query cell>.timestream.<region>.amazonaws.com: query that cell directly, without
    #: endpoint discovery (a VPC with interface endpoints has no route to the discovery endpoint)
    timestream_query_endpoint: str = _env("TIMESTREAM_QUERY_ENDPOINT", "")
    #: Timestream for InfluxDB 3: https://host:port of the cluster, its database, and the
    #: Secrets Manager secret holding the token (see fraudcore.timeseries.influxdb3)
    influxdb_endpoint: str = _env("INFLUXDB_ENDPOINT", "")
    influxdb_database: str = _env("INFLUXDB_DATABASE", "fraud")
    influxdb_secret_arn: str = _env("INFLUXDB_SECRET_ARN", "")
    influxdb_token: str = _env("INFLUXDB_TOKEN", "")
    influxdb_verify_tls: bool = _env("INFLUXDB_VERIFY_TLS", True)
    # Graph store
    graph_backend: str = _env("GRAPH_BACKEND", "embedded", choices=GRAPH_BACKENDS)
    #: ws(s)://host:port/gremlin for neptune and gremlin-server
    graph_endpoint: str = _env("GRAPH_ENDPOINT", "ws://127.0.0.1:8182/gremlin")
    #: the server's traversal source (Gremlin Server can bind several graphs; Neptune has g)
    graph_traversal_source: str = _env("GRAPH_TRAVERSAL_SOURCE", "g")
    neptune_iam_auth: bool = _env("NEPTUNE_IAM_AUTH", False)
    graph_eval_timeout_ms: int = _env("GRAPH_EVAL_TIMEOUT_MS", 30_000, minimum=1)
    #: objects (vertices or edges) per mergeV/mergeE request (Neptune's bulk-upsert advice)
    graph_write_batch: int = _env("GRAPH_WRITE_BATCH", 100, minimum=1)
    graph_max_retries: int = _env("GRAPH_MAX_RETRIES", 5, minimum=0)
    # Sinks and publishers
    rejected_sink: str = _env("REJECTED_SINK", "jsonl", choices=SINK_BACKENDS)
    rejected_queue_url: str = _env("REJECTED_QUEUE_URL", "")
    event_publisher: str = _env("EVENT_PUBLISHER", "jsonl", choices=PUBLISHER_BACKENDS)
    event_bus_name: str = _env("EVENT_BUS_NAME", "default")
    event_source: str = _env("EVENT_SOURCE", "fraud-detection")
    investigation_starter: str = _env("INVESTIGATION_STARTER", "local", choices=STARTER_BACKENDS)
    state_machine_arn: str = _env("STATE_MACHINE_ARN", "")
    #: mapping applied to incoming records: "auto" (canonical, or a shipped mapping whose
    #: ``require`` matches), a shipped mapping name, a file path, or "" for canonical only
    field_mapping: str = _env("FIELD_MAPPING", "auto")
    #: the largest amount a record may carry (a bigger one is rejected, see fraudcore.limits)
    max_amount: float = _env("MAX_AMOUNT", DEFAULT_MAX_AMOUNT)
    #: key of the keyed hash of personal identifiers in execution names: ssm:/name or
    #: secretsmanager:<id> on AWS; empty: a key file in the state dir (see fraudcore.pii)
    pii_hash_key: str = _env("PII_HASH_KEY", "")
    # Micro-analysis
    rules_override: str = _env("RULES_OVERRIDE", "")
    max_investigations_per_run: int = _env("MAX_INVESTIGATIONS_PER_RUN", 200, minimum=0)
    #: time between scheduled runs: a duration (15m) or the schedule's rate(15 minutes)
    micro_schedule_interval: str = _env("MICRO_SCHEDULE_INTERVAL", "5m")
    # Local state
    state_dir: Path = _env("FRAUD_STATE_DIR", Path(".fraudlocal"))  # noqa: RUF009 (a field() with a factory)
    aws_region: str = _env("AWS_REGION", "us-east-1", also=("AWS_DEFAULT_REGION",))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        for setting in fields(cls):
            names = (setting.metadata["env"], *setting.metadata["also"])
            raw = next((env[name] for name in names if env.get(name)), None)
            if raw is None and setting.metadata["env"] in env and not setting.metadata["also"]:
                raw = env[setting.metadata["env"]]  # set but empty: empty is a value of a text setting
            if raw is not None and not raw.strip() and _has_default_when_empty(setting):
                # a number or a choice set to "" is unset: `sam local invoke` gives "" for a
                # value the template computes (an !If on the engine, for one)
                raw = None
            if raw is not None:
                values[setting.name] = _parse(setting, raw)
        for name in ("micro_schedule_interval", "pii_hash_key"):
            if name in values:
                values[name] = values[name].strip()
        settings = cls(**values)
        settings.check()
        return settings

    @classmethod
    def env_name(cls, setting: str) -> str:
        """The environment variable of a setting: ``env_name("graph_backend") == "GRAPH_BACKEND"``."""
        return next(f.metadata["env"] for f in fields(cls) if f.name == setting)

    def check(self) -> None:
        """Fail early, naming the setting, when a chosen backend lacks what it needs."""
        if self.timestream_query_endpoint and not self.timestream_query_endpoint.startswith("https://"):
            raise ConfigurationError(
                f"TIMESTREAM_QUERY_ENDPOINT={self.timestream_query_endpoint!r}: expected "
                "https://<query cell>.timestream.<region>.amazonaws.com, or empty for endpoint discovery"
            )
        if self.timeseries_backend == "influxdb3":
            if not self.influxdb_endpoint.strip().startswith(("https://", "http://")):
                raise ConfigurationError(
                    f"TIMESERIES_BACKEND=influxdb3 needs INFLUXDB_ENDPOINT=https://host:port, got {self.influxdb_endpoint!r}"
                )
            if not (self.influxdb_secret_arn.strip() or self.influxdb_token):
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


_settings: Settings | None = None


def get_settings() -> Settings:
    """The settings of this execution environment, read once."""
    global _settings
    settings = _settings
    if settings is None:
        settings = _settings = Settings.from_env()
    return settings


def cached_settings() -> Settings | None:
    """The settings :func:`get_settings` read, None when it has not read them since the last reset."""
    return _settings


def reset_settings_cache(settings: Settings | None = None) -> None:
    """Forget the cached settings (the local runner changes the environment between invocations).

    With ``settings``, those are what :func:`get_settings` returns next: the settings of the
    environment now in place, read before (the local runner keeps them per environment)."""
    global _settings
    _settings = settings
