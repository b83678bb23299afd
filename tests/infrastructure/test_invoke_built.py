"""Every function of the *built* application runs as `sam local invoke` runs it.

`scripts/invoke-built` runs each handler from the `sam build` output in a clean python3.12
(the built function, its layers and the runtime's boto3 only), with the environment SAM CLI
computes for `sam local invoke` and the overrides of an env-vars file. Here those overrides
point every function at local services through the same AWS adapters the deployed functions
use: a moto server on 127.0.0.1 (Timestream, SQS, EventBridge, Step Functions, Secrets
Manager; started and stopped here by its PID), the TinkerPop Gremlin Server (Neptune's
stand-in) and, for the default engine (InfluxDB 3), the local InfluxDB 3 server on
127.0.0.1 (its token in a Secrets Manager secret, as on AWS). Each engine gets its run. Each function
gets its sample event from events/.

sam build runs once per session (x86_64 on this machine: the arm64 wheels of the deployable
build do not import here) and is reused by every invocation.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from gremlin_python.driver.driver_remote_connection import DriverRemoteConnection

from fraudlocal.emulators.influxdb3_server import InfluxDB3Server

REPO = Path(__file__).resolve().parents[2]
INVOKE_BUILT = REPO / "scripts" / "invoke-built"
BUILD_DIR = REPO / ".aws-sam" / "build-x86_64"
REGION = "us-east-1"
ACCOUNT = "123456789012"
DATABASE, TABLE = "fraud-local", "transactions"
INFLUXDB_TOKEN = "local-influxdb3-token"

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server on 127.0.0.1, stopped by its PID when the module is done."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto server did not start on {url}: {log.read_text()[-2000:]}")
                time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def aws_resources(moto_server: str) -> dict[str, str]:
    """The stack's resources, created in the moto server under the names the env-vars file gives."""
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=moto_server)

    client("timestream-write").create_database(DatabaseName=DATABASE)
    client("timestream-write").create_table(DatabaseName=DATABASE, TableName=TABLE)
    queue_url = client("sqs").create_queue(QueueName="fraud-local-rejected")["QueueUrl"]
    bus = client("events").create_event_bus(Name="fraud-local-cases")["EventBusArn"].rsplit("/", 1)[-1]
    machine = client("stepfunctions").create_state_machine(
        name="fraud-local-investigation",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/fraud-local-investigation",
    )["stateMachineArn"]
    secret = client("secretsmanager").create_secret(
        Name="fraud-local-influxdb", SecretString=json.dumps({"token": INFLUXDB_TOKEN})
    )["ARN"]
    return {
        "queue_url": queue_url,
        "bus": bus,
        "state_machine": machine,
        "endpoint": moto_server,
        "influxdb_secret": secret,
    }


@pytest.fixture(scope="module")
def influxdb3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The local InfluxDB 3 server on 127.0.0.1 (stopped on exit): the default engine's stand-in."""
    with InfluxDB3Server(tmp_path_factory.mktemp("influxdb3"), INFLUXDB_TOKEN) as server:
        yield server.url


@pytest.fixture(scope="module", params=["influxdb3", "liveanalytics"])
def engine(request: pytest.FixtureRequest) -> str:
    """The template's TimeseriesEngine the env-vars file configures the functions for."""
    return request.param


@pytest.fixture(scope="module")
def env_vars(
    engine: str,
    aws_resources: dict[str, str],
    gremlin_server_endpoint: str,
    influxdb3_server: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """What a developer writes into env.local.json for a local moto server and Gremlin Server."""
    if engine == "influxdb3":
        timeseries = {
            "TIMESERIES_BACKEND": "influxdb3",
            "INFLUXDB_ENDPOINT": influxdb3_server,
            "INFLUXDB_DATABASE": DATABASE,
            "INFLUXDB_SECRET_ARN": aws_resources["influxdb_secret"],
        }
    else:
        timeseries = {"TIMESERIES_BACKEND": "timestream", "TIMESTREAM_DATABASE": DATABASE}
    shared = {
        **timeseries,
        "TIMESTREAM_TABLE": TABLE,
        "REJECTED_QUEUE_URL": aws_resources["queue_url"],
        "EVENT_BUS_NAME": aws_resources["bus"],
        "GRAPH_BACKEND": "gremlin-server",
        "GRAPH_ENDPOINT": gremlin_server_endpoint,
        "NEPTUNE_IAM_AUTH": "false",
        "RULES_OVERRIDE": "",
    }
    document = {
        "Parameters": shared,
        "MicroAnalysisFunction": {"STATE_MACHINE_ARN": aws_resources["state_machine"]},
    }
    path = tmp_path_factory.mktemp("env") / "env.json"
    path.write_text(json.dumps(document))
    return path


@pytest.fixture(scope="module")
def built() -> Path:
    """sam build (x86_64) once for the session; the later invocations reuse it."""
    completed = subprocess.run(
        [str(INVOKE_BUILT), "--build-only", "--build-dir", str(BUILD_DIR)],
        capture_output=True, text=True, cwd=REPO, timeout=1500,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-4000:]
    return BUILD_DIR


def invoke(
    function: str,
    event: Path | dict[str, Any],
    env_vars: Path,
    endpoint: str,
    tmp_path: Path,
    traversal_source: str,
) -> tuple[int, Any, str]:
    if isinstance(event, dict):
        path = tmp_path / f"{function}-event.json"
        path.write_text(json.dumps(event))
        event = path
    overrides = json.loads(env_vars.read_text())
    overrides["Parameters"]["GRAPH_TRAVERSAL_SOURCE"] = traversal_source
    env_file = tmp_path / "env-vars.json"
    env_file.write_text(json.dumps(overrides))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION})
    completed = subprocess.run(
        [str(INVOKE_BUILT), function, "--event", str(event), "--env-vars", str(env_file),
         "--aws-endpoint-url", endpoint, "--build-dir", str(BUILD_DIR)],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=900,
    )  # fmt: skip
    lines = completed.stdout.strip().splitlines()
    response = json.loads(lines[-1]) if lines else None
    return completed.returncode, response, completed.stderr


def seed_event() -> dict[str, Any]:
    """Transactions of the account and device the investigation samples name, as a Kinesis batch."""
    from fraudlocal.emulators.kinesis_esm import LocalStream, kinesis_event

    stream = LocalStream(1)
    end = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    for n in range(4):
        stream.put(
            {
                "transaction_id": f"seed-{n}",
                "timestamp": (end - timedelta(minutes=4 - n)).isoformat(),
                "account_id": "acc-000123" if n < 3 else "acc-000456",
                "amount": 20_000.0,
                "device_id": "dev-000042",
                "ip": "203.0.113.9",
                "merchant_id": "m-jewels",
            },
            "acc-000123",
        )
    return kinesis_event(stream.shards[0])


def test_every_function_runs_from_the_build_against_local_endpoints(
    built: Path,
    env_vars: Path,
    aws_resources: dict[str, str],
    clean_server_graph: DriverRemoteConnection,
    gremlin_traversal_source: str,
    tmp_path: Path,
) -> None:
    endpoint = aws_resources["endpoint"]

    def run(function: str, event: Path | dict[str, Any]) -> Any:
        code, response, logs = invoke(function, event, env_vars, endpoint, tmp_path, gremlin_traversal_source)
        assert code == 0, f"{function}: {response}\n{logs[-3000:]}"
        return response

    # Setup: the entities the investigation samples name, through both built ingest functions.
    assert run("IngestGraphFunction", seed_event()) == {"batchItemFailures": []}
    assert run("IngestTimeseriesFunction", seed_event()) == {"batchItemFailures": []}

    # The eight functions with their samples.
    assert run("IngestTimeseriesFunction", REPO / "events/ingest/valid-batch.json") == {
        "batchItemFailures": []
    }
    mixed = run("IngestGraphFunction", REPO / "events/ingest/mixed-batch.json")
    assert mixed == {"batchItemFailures": []}  # the invalid records went to the queue, not back
    sqs = boto3.client(
        "sqs", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t"
    )
    attributes = sqs.get_queue_attributes(QueueUrl=aws_resources["queue_url"], AttributeNames=["All"])
    assert int(attributes["Attributes"]["ApproximateNumberOfMessages"]) >= 1

    micro = run("MicroAnalysisFunction", REPO / "events/micro_analysis/scheduled.json")
    assert micro["evaluation_time"] == "2026-11-29T12:05:00Z"
    assert "rule_errors" not in micro, micro

    investigation = run("FlagEntityFunction", REPO / "events/investigation/flag-entity.json")
    assert investigation["entity_id"] == "acc-000123"
    ring = run("RingAnalysisFunction", REPO / "events/investigation/ring-analysis.json")
    assert ring["analysis"] == "ring"
    # acc-000123 and acc-000456 share the device and the IP of the seed batch
    devices = run("SharedDeviceAnalysisFunction", REPO / "events/investigation/shared-device-analysis.json")
    assert devices["analysis"] == "shared_device"
    money = run("MoneyFlowAnalysisFunction", REPO / "events/investigation/money-flow-analysis.json")
    assert money["analysis"] == "money_flow"
    case = run("RecordCaseFunction", REPO / "events/investigation/record-case.json")
    assert case["verdict"] in ("fraud_ring", "suspicious", "cleared")


def test_the_build_never_imports_the_local_stack(built: Path) -> None:
    assert (BUILD_DIR / "template.yaml").exists()
    offenders = [
        str(path.relative_to(BUILD_DIR))
        for path in BUILD_DIR.rglob("*.py")
        if re.search(r"^\s*(from|import)\s+fraudlocal\b", path.read_text(errors="replace"), re.M)
    ]
    assert offenders == []
    assert not list(BUILD_DIR.rglob("fraudlocal"))


def test_boto3_and_botocore_in_the_layer_match(built: Path) -> None:
    """aws-xray-sdk brings botocore into the layer, where it shadows the runtime's: boto3 must
    be there too, from the same resolution."""
    site = BUILD_DIR / "CommonLayer" / "python"
    versions = {
        match.group(1).lower(): match.group(2)
        for info in site.glob("*.dist-info")
        if (match := re.match(r"(boto3|botocore)-([\d.]+)\.dist-info", info.name))
    }
    assert set(versions) == {"boto3", "botocore"}, versions
    requires = (site / f"boto3-{versions['boto3']}.dist-info" / "METADATA").read_text()
    wanted = re.search(r"Requires-Dist: botocore[^\n]*", requires).group(0)
    low = re.search(r">=([\d.]+)", wanted).group(1)
    high = re.search(r"<([\d.]+)", wanted).group(1)

    def as_tuple(text: str) -> tuple[int, ...]:
        return tuple(int(p) for p in text.split("."))

    assert as_tuple(low) <= as_tuple(versions["botocore"]) < as_tuple(high), (wanted, versions)


def test_what_exists_only_in_the_dev_environment_cannot_be_imported(
    built: Path, env_vars: Path, aws_resources: dict[str, str], tmp_path: Path
) -> None:
    """The local stack (DuckDB, fraudlocal) is installed in the dev venv but not in the build: a
    function told to use it fails there as it would in Lambda."""
    overrides = json.loads(env_vars.read_text())
    overrides["Parameters"]["TIMESERIES_BACKEND"] = "duckdb"
    local_only = tmp_path / "local-only.json"
    local_only.write_text(json.dumps(overrides))
    code, response, _ = invoke(
        "IngestTimeseriesFunction",
        REPO / "events/ingest/valid-batch.json",
        local_only,
        aws_resources["endpoint"],
        tmp_path,
        "g",
    )
    assert code == 1
    assert response["errorType"] in ("ModuleNotFoundError", "ConfigurationError"), response
    assert "fraudlocal" in response["errorMessage"] or "duckdb" in response["errorMessage"], response
