"""GraphConnection: retries, backoff, error classification, request counting, SigV4 signing.

The graph engines themselves are exercised against a real Gremlin Server in
tests/integration/test_gremlin_server_script.py. Here the only stand-in is the transport:
a RemoteConnection that fails the way a network, Neptune or a server restart makes it
fail, a given number of times, then answers ``inject(...)`` with its arguments.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import random
from collections.abc import Callable
from dataclasses import replace

import pytest
from botocore.credentials import Credentials
from gremlin_python.driver.driver_remote_connection import DriverRemoteConnection
from gremlin_python.driver.protocol import GremlinServerError
from gremlin_python.driver.remote_connection import RemoteConnection, RemoteTraversal
from gremlin_python.process.strategies import OptionsStrategy
from gremlin_python.process.traversal import Bytecode, Traverser

from fraudcore import backends
from fraudcore.graph import sigv4
from fraudcore.graph.connection import (
    ConcurrentModificationError,
    GraphConnection,
    GraphError,
    GraphTimeoutError,
    GraphUnavailableError,
    driver_factory,
)
from fraudcore.settings import ConfigurationError, Settings


def server_error(code: int, message: str, exceptions: list[str] | None = None) -> GremlinServerError:
    return GremlinServerError(
        {"code": code, "message": message, "attributes": {"exceptions": exceptions or []}}
    )


NEPTUNE_CME = server_error(
    500,
    '{"detailedMessage":"Failed to complete Insert operation for a Vertex due to conflicting '
    'concurrent operations. Please retry.","requestId":"0b1c","code":"ConcurrentModificationException"}',
)
TINKERPOP_CME = server_error(500, "conflict", ["java.util.ConcurrentModificationException"])
SERVER_CLOSED = RuntimeError("Connection was closed by server.")
SERVER_DISCONNECTED = server_error(500, "Server disconnected - please try to reconnect")
REFUSED = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 8182)")


class ScriptedTransport:
    """Hands out connections that raise the scripted errors in order, then succeed."""

    def __init__(self, failures: list[BaseException]) -> None:
        self.failures = list(failures)
        self.connections: list[FlakyConnection] = []

    def factory(self) -> RemoteConnection:
        connection = FlakyConnection(self)
        self.connections.append(connection)
        return connection


class FlakyConnection(RemoteConnection):
    def __init__(self, transport: ScriptedTransport) -> None:
        super().__init__("ws://test/gremlin", "g")
        self.transport = transport
        self.closed = False
        self.submitted: list[Bytecode] = []

    def submit(self, bytecode: Bytecode) -> RemoteTraversal:
        self.submitted.append(bytecode)
        if self.closed:
            raise RuntimeError("Connection was already closed.")
        if self.transport.failures:
            raise self.transport.failures.pop(0)
        name, *values = bytecode.step_instructions[0]
        assert name == "inject", "this transport only answers inject(...)"
        return RemoteTraversal(iter([Traverser(value) for value in values]))

    def is_closed(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class UpperBound(random.Random):
    """Full jitter at its ceiling, so the backoff schedule is visible."""

    def uniform(self, a: float, b: float) -> float:
        return b


def make(
    failures: list[BaseException], max_retries: int = 5, rng: random.Random | None = None
) -> tuple[GraphConnection, ScriptedTransport, RecordingSleep]:
    transport = ScriptedTransport(failures)
    sleep = RecordingSleep()
    connection = GraphConnection(
        transport.factory,
        name="test graph",
        eval_timeout_ms=1234,
        max_retries=max_retries,
        sleep=sleep,
        rng=rng or random.Random(7),
    )
    return connection, transport, sleep


def inject(*values: object) -> Callable:
    return lambda g: g.inject(*values)


def test_success_sends_one_request_on_one_connection() -> None:
    connection, _, sleep = make([])
    assert connection.run(inject(1, 2, 3)) == [1, 2, 3]
    assert (connection.requests, connection.connects, sleep.delays) == (1, 1, [])


@pytest.mark.parametrize(
    "lost", [SERVER_CLOSED, SERVER_DISCONNECTED, REFUSED, BrokenPipeError(32, "Broken pipe")]
)
def test_lost_connection_is_closed_reopened_and_retried(lost: BaseException) -> None:
    connection, transport, sleep = make([lost, lost])
    assert connection.run(inject("account:1")) == ["account:1"]
    assert connection.requests == 3
    assert len(transport.connections) == 3
    assert [c.closed for c in transport.connections] == [True, True, False]
    assert len(sleep.delays) == 2
    assert connection.retries == 2


@pytest.mark.parametrize("conflict", [NEPTUNE_CME, TINKERPOP_CME])
def test_concurrent_modification_backs_off_and_retries_on_the_same_connection(
    conflict: BaseException,
) -> None:
    connection, transport, sleep = make([conflict, conflict, conflict])
    assert connection.run(inject(7), "next") == 7
    assert connection.requests == 4
    assert len(transport.connections) == 1
    assert len(sleep.delays) == 3


def test_conflict_code_after_a_long_message_is_still_recognised() -> None:
    long_conflict = server_error(
        500, '{"detailedMessage":"' + "x" * 2000 + '","code":"ConcurrentModificationException"}'
    )
    connection, _, sleep = make([long_conflict])
    assert connection.run(inject(1)) == [1]
    assert len(sleep.delays) == 1


def test_write_to_a_reader_after_failover_reconnects() -> None:
    failover = server_error(
        500, '{"code":"ReadOnlyViolationException","detailedMessage":"read-only replica"}'
    )
    connection, transport, _ = make([failover])
    assert connection.run(inject(1)) == [1]
    assert [c.closed for c in transport.connections] == [True, False]


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    connection, _, sleep = make([SERVER_CLOSED] * 8, max_retries=8, rng=UpperBound())
    connection.run(inject(1), "iterate")
    assert sleep.delays == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0])

    jittered, _, jittered_sleep = make([SERVER_CLOSED] * 8, max_retries=8, rng=random.Random(3))
    jittered.run(inject(1), "iterate")
    ceilings = [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    assert all(0 <= d <= c for d, c in zip(jittered_sleep.delays, ceilings, strict=True))
    assert jittered_sleep.delays != pytest.approx(ceilings)


def test_gives_up_after_max_retries_naming_the_request() -> None:
    connection, _, sleep = make([NEPTUNE_CME] * 10, max_retries=3)
    # a conflict that outlasts the retries has its own class, for the state machine's Retry
    with pytest.raises(ConcurrentModificationError) as raised:
        connection.run(lambda g: g.inject({"id": "account:1"}).unfold(), what="upsert 1 account")
    message = str(raised.value)
    assert "upsert 1 account" in message
    assert "4 attempts" in message
    assert "ConcurrentModificationException" in message
    assert connection.requests == 4
    assert len(sleep.delays) == 3


def test_zero_retries_fails_on_the_first_transient_error() -> None:
    connection, _, sleep = make([SERVER_CLOSED], max_retries=0)
    with pytest.raises(GraphUnavailableError, match="1 attempts") as lost:
        connection.run(inject(1))
    assert not isinstance(lost.value, ConcurrentModificationError)  # a lost connection is no conflict
    assert (connection.requests, sleep.delays) == (1, [])


def test_malformed_traversal_is_raised_at_once_with_the_steps_named() -> None:
    malformed = server_error(597, "The provided traversal has a step that cannot be resolved")
    connection, _, sleep = make([malformed])
    with pytest.raises(GraphError) as raised:
        connection.run(lambda g: g.inject(1).unfold().count())
    assert not isinstance(raised.value, GraphUnavailableError)
    assert "'inject.unfold.count'" in str(raised.value)
    assert "597" in str(raised.value)
    assert (connection.requests, sleep.delays) == (1, [])


@pytest.mark.parametrize(
    "timeout",
    [
        server_error(598, "A timeout occurred during traversal evaluation"),
        server_error(500, '{"code":"TimeLimitExceededException","detailedMessage":"Operation terminated"}'),
    ],
)
def test_evaluation_timeout_is_not_retried(timeout: BaseException) -> None:
    connection, _, sleep = make([timeout])
    with pytest.raises(GraphTimeoutError, match="evaluation timeout of 1234 ms"):
        connection.run(inject(1))
    assert (connection.requests, sleep.delays) == (1, [])


def handshake_error(status: int, message: str) -> BaseException:
    import aiohttp
    from multidict import CIMultiDict, CIMultiDictProxy
    from yarl import URL

    url = URL(ENDPOINT)
    info = aiohttp.RequestInfo(url, "GET", CIMultiDictProxy(CIMultiDict()), url)
    return aiohttp.WSServerHandshakeError(info, (), status=status, message=message)


@pytest.mark.parametrize(
    "refused",
    [
        # what gremlinpython's transport raises for a 403 (bad or expired signature)
        Exception("Failed to connect to server: HTTP Error code 403 - Forbidden."),
        "handshake 401",
    ],
)
def test_refused_handshake_is_not_retried(refused: BaseException | str) -> None:
    error = handshake_error(401, "Unauthorized") if isinstance(refused, str) else refused
    connection, _, sleep = make([error])
    with pytest.raises(GraphError, match=r"403|401"):
        connection.run(inject(1))
    assert sleep.delays == []


def test_unavailable_endpoint_during_restart_is_retried() -> None:
    connection, _, sleep = make([handshake_error(503, "Service Unavailable")])
    assert connection.run(inject(2)) == [2]
    assert len(sleep.delays) == 1


def test_next_on_an_empty_result_names_the_request() -> None:
    connection, _, _ = make([])
    with pytest.raises(GraphError, match="returned no result"):
        connection.run(lambda g: g.inject(), "next", what="find account:404")


def test_unknown_terminal_is_rejected() -> None:
    connection, _, _ = make([])
    with pytest.raises(ValueError, match="terminal='all'"):
        connection.run(inject(1), "all")  # type: ignore[arg-type]


def test_every_request_carries_the_evaluation_timeout() -> None:
    connection, transport, _ = make([])
    connection.run(inject(1))
    connection.run(inject(1), eval_timeout_ms=200)
    options = [
        next(i[1] for i in b.source_instructions if isinstance(i[1], OptionsStrategy)).configuration
        for b in transport.connections[0].submitted
    ]
    assert [o["evaluationTimeout"] for o in options] == [1234, 200]


def test_traversals_built_on_g_directly_are_counted_too() -> None:
    connection, _, _ = make([])
    assert connection.g().inject(1, 2).to_list() == [1, 2]
    connection.run(inject(3))
    assert connection.requests == 2


def test_close_forgets_the_connection_and_the_next_request_reopens() -> None:
    connection, transport, _ = make([])
    connection.run(inject(1))
    connection.close()
    assert transport.connections[0].closed
    connection.run(inject(1))
    assert connection.connects == 2


def test_settings_supply_timeout_and_retries() -> None:
    settings = Settings(
        graph_backend="gremlin-server",
        graph_endpoint="ws://127.0.0.1:8182/gremlin",
        graph_eval_timeout_ms=777,
        graph_max_retries=2,
    )
    connection = GraphConnection.from_settings(settings, traversal_source="g3")
    assert (connection.eval_timeout_ms, connection.max_retries) == (777, 2)
    assert "g3" in connection.name
    embedded = GraphConnection.from_factory(ScriptedTransport([]).factory, settings)
    assert (embedded.eval_timeout_ms, embedded.max_retries) == (777, 2)


def test_embedded_backend_has_no_network_connection() -> None:
    with pytest.raises(ConfigurationError, match="GRAPH_BACKEND='embedded'"):
        GraphConnection.from_settings(Settings(graph_backend="embedded"))


def test_bad_endpoint_is_named() -> None:
    with pytest.raises(ConfigurationError, match="GRAPH_ENDPOINT='http://x:8182'"):
        driver_factory("http://x:8182")


def test_one_shared_connection_per_endpoint_and_source(tmp_path) -> None:
    transport = ScriptedTransport([])
    backends.register(
        "graph",
        "scripted",
        lambda settings: GraphConnection.from_factory(transport.factory, settings, name="scripted graph"),
    )
    backends.reset()
    a = Settings(graph_backend="gremlin-server", graph_endpoint="ws://127.0.0.1:8182/gremlin")
    b = Settings(graph_backend="gremlin-server", graph_endpoint="ws://127.0.0.1:8183/gremlin")
    shared_connection = backends.graph_connection
    try:
        assert shared_connection(a) is shared_connection(a)
        assert shared_connection(a) is not shared_connection(b)
        assert shared_connection(replace(a, graph_traversal_source="g1")) is not shared_connection(a)
        embedded = Settings(graph_backend="scripted", state_dir=tmp_path)
        first = shared_connection(embedded)
        assert shared_connection(embedded) is first
        first.run(inject(1))
    finally:
        backends.reset()
    assert transport.connections[0].closed
    try:
        assert shared_connection(embedded) is not first
    finally:
        backends.reset()
        backends.unregister("graph", "scripted")


# -- SigV4 -------------------------------------------------------------------------------

FROZEN = datetime.datetime(2025, 1, 2, 3, 4, 5)
ENDPOINT = "wss://db.cluster-abc.us-east-1.neptune.amazonaws.com:8182/gremlin"


@pytest.fixture
def frozen_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.auth

    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: FROZEN)


def expected_signature(secret: str, signed: dict[str, str], region: str = "us-east-1") -> str:
    """SigV4 computed from the specification, independently of botocore."""
    names = sorted(signed)
    canonical = "\n".join(
        [
            "GET",
            "/gremlin",
            "",
            *[f"{n}:{signed[n]}" for n in names],
            "",
            ";".join(names),
            hashlib.sha256(b"").hexdigest(),
        ]
    )
    scope = f"20250102/{region}/neptune-db/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", "20250102T030405Z", scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = f"AWS4{secret}".encode()
    for part in ("20250102", region, "neptune-db", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def test_handshake_is_signed_for_neptune_db(frozen_time: None) -> None:
    headers = sigv4.signed_handshake_headers(ENDPOINT, "us-east-1", Credentials("AKIDEXAMPLE", "secret"))
    assert headers["X-Amz-Date"] == "20250102T030405Z"
    assert "X-Amz-Security-Token" not in headers
    host = "db.cluster-abc.us-east-1.neptune.amazonaws.com:8182"
    signature = expected_signature("secret", {"host": host, "x-amz-date": "20250102T030405Z"})
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250102/us-east-1/neptune-db/aws4_request, "
        f"SignedHeaders=host;x-amz-date, Signature={signature}"
    )


def test_session_token_is_sent_and_signed(frozen_time: None) -> None:
    credentials = Credentials("ASIAEXAMPLE", "secret", "session-token")
    headers = sigv4.signed_handshake_headers(ENDPOINT, "eu-west-1", credentials)
    assert headers["X-Amz-Security-Token"] == "session-token"
    assert "Credential=ASIAEXAMPLE/20250102/eu-west-1/neptune-db/aws4_request" in headers["Authorization"]
    assert "SignedHeaders=host;x-amz-date;x-amz-security-token," in headers["Authorization"]
    signature = expected_signature(
        "secret",
        {
            "host": "db.cluster-abc.us-east-1.neptune.amazonaws.com:8182",
            "x-amz-date": "20250102T030405Z",
            "x-amz-security-token": "session-token",
        },
        region="eu-west-1",
    )
    assert headers["Authorization"].endswith(f"Signature={signature}")


def test_handshake_url_is_the_https_form_of_the_endpoint() -> None:
    assert (
        sigv4.handshake_url(ENDPOINT) == "https://db.cluster-abc.us-east-1.neptune.amazonaws.com:8182/gremlin"
    )
    with pytest.raises(ConfigurationError, match="GRAPH_ENDPOINT='https://x/gremlin'"):
        sigv4.handshake_url("https://x/gremlin")


def test_missing_credentials_are_reported(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    with pytest.raises(ConfigurationError, match="no AWS credentials"):
        sigv4.signed_handshake_headers(ENDPOINT, "us-east-1")


def test_every_new_connection_is_signed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.auth

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token-1")
    clock = iter([FROZEN, FROZEN + datetime.timedelta(minutes=10)])
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: next(clock))
    factory = driver_factory(ENDPOINT, iam_auth=True, region="us-east-1")
    opened = [factory(), factory()]
    try:
        assert all(isinstance(c, DriverRemoteConnection) for c in opened)
        headers = [c._client._headers for c in opened]
        assert [h["X-Amz-Date"] for h in headers] == ["20250102T030405Z", "20250102T031405Z"]
        assert headers[0]["Authorization"] != headers[1]["Authorization"]
        assert all(h["X-Amz-Security-Token"] == "token-1" for h in headers)
    finally:
        for c in opened:
            c.close()


def test_without_iam_auth_no_signature_is_sent() -> None:
    connection = driver_factory("ws://127.0.0.1:8182/gremlin", "g2")()
    try:
        assert "Authorization" not in (connection._client._headers or {})
        assert connection._client.traversal_source == "g2"
    finally:
        connection.close()


# -- errors Neptune documents as safe to retry -----------------------------------------------


def neptune_error(code: str) -> GremlinServerError:
    return server_error(500, f'{{"detailedMessage":"try again later","requestId":"1","code":"{code}"}}')


@pytest.mark.parametrize(
    "code",
    [
        "ThrottlingException",
        "TooManyRequestsException",
        "MemoryLimitExceededException",
        "InternalFailureException",
    ],
)
def test_neptune_busy_errors_back_off_and_retry_on_the_same_connection(code: str) -> None:
    connection, transport, sleep = make([neptune_error(code), neptune_error(code)])
    assert connection.run(inject(3), "next") == 3
    assert connection.requests == 3
    assert len(transport.connections) == 1  # no reconnect: the cluster answered
    assert len(sleep.delays) == 2


def test_neptune_busy_after_the_last_retry_is_a_graph_busy_error() -> None:
    from fraudcore.graph.connection import GraphBusyError

    connection, _, sleep = make([neptune_error("ThrottlingException")] * 4, max_retries=3)
    with pytest.raises(GraphBusyError, match="ThrottlingException") as raised:
        connection.run(inject(1))
    # a GraphUnavailableError too, so callers that retry unavailability retry this
    assert isinstance(raised.value, GraphUnavailableError)
    assert connection.requests == 4 and len(sleep.delays) == 3


def test_a_malformed_request_is_still_not_retried() -> None:
    connection, _, sleep = make([neptune_error("MalformedQueryException")])
    with pytest.raises(GraphError) as raised:
        connection.run(inject(1))
    assert not isinstance(raised.value, GraphUnavailableError)
    assert connection.requests == 1 and sleep.delays == []


# -- the engine version check ------------------------------------------------------------------


def test_engine_versions_parse_with_release_and_patch_prefix() -> None:
    from fraudcore.graph.engine import parse_engine_version

    assert parse_engine_version("1.3.2.0.R1") == (1, 3, 2, 0)
    assert parse_engine_version("Patch-1.4.7.0.R2") == (1, 4, 7, 0)
    with pytest.raises(ValueError, match="not a Neptune engine version"):
        parse_engine_version("tinkerpop-3.7.1")


def test_an_engine_older_than_1_3_2_0_is_refused_with_what_to_do() -> None:
    from fraudcore.graph.engine import verify_engine

    def status(body: dict) -> Callable[[str, dict[str, str]], bytes]:
        def fetch(url: str, headers: dict[str, str]) -> bytes:
            assert url == "https://db.example:8182/status"
            return json.dumps(body).encode()

        return fetch

    with pytest.raises(ConfigurationError, match=r"engine 1\.2\.1\.2\.R3.*1\.3\.2\.0"):
        verify_engine(
            "wss://db.example:8182/gremlin",
            iam_auth=False,
            region="",
            fetch=status({"status": "healthy", "dbEngineVersion": "1.2.1.2.R3"}),
        )
    assert (
        verify_engine(
            "wss://db.example:8182/gremlin",
            iam_auth=False,
            region="",
            fetch=status({"status": "healthy", "dbEngineVersion": "1.3.2.0.R1"}),
        )
        == "1.3.2.0.R1"
    )


def test_an_unreadable_status_endpoint_skips_the_check(caplog: pytest.LogCaptureFixture) -> None:
    from fraudcore.graph.engine import verify_engine

    def forbidden(url: str, headers: dict[str, str]) -> bytes:
        raise PermissionError("403 Forbidden")

    assert verify_engine("wss://db.example:8182/gremlin", iam_auth=False, region="", fetch=forbidden) is None
    assert "not checked" in caplog.text


def test_the_status_request_is_signed_with_iam_auth() -> None:
    from fraudcore.graph import engine

    seen: dict[str, str] = {}

    def fetch(url: str, headers: dict[str, str]) -> bytes:
        seen.update(headers)
        return b'{"dbEngineVersion": "1.4.7.0.R1"}'

    credentials = Credentials("AKIDEXAMPLE", "secret")
    original = sigv4.default_credentials
    sigv4.default_credentials = lambda: credentials  # type: ignore[assignment]
    try:
        assert engine.verify_engine(
            "wss://db.example:8182/gremlin", iam_auth=True, region="us-east-1", fetch=fetch
        )
    finally:
        sigv4.default_credentials = original  # type: ignore[assignment]
    assert seen["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/us-east-1/neptune-db/aws4_request" in seen["Authorization"]


def test_the_neptune_factory_checks_the_engine_once_before_the_first_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fraudcore.graph import engine

    checks: list[str] = []
    monkeypatch.setattr(engine, "verify_engine", lambda endpoint, **_: checks.append(endpoint) or "1.4.7.0")
    opened: list[str] = []
    monkeypatch.setattr(DriverRemoteConnection, "__init__", lambda self, url, *a, **k: opened.append(url))
    factory = driver_factory("wss://db.example:8182/gremlin", check_engine=True)
    factory()
    factory()
    assert checks == ["wss://db.example:8182/gremlin"] and len(opened) == 2
    unchecked = driver_factory("ws://127.0.0.1:8182/gremlin")
    unchecked()
    assert len(checks) == 1


def test_run_all_builds_the_next_request_while_one_is_in_flight_and_sends_in_order() -> None:
    connection, transport, _ = make([])
    events: list[str] = []

    def build(i: int) -> Callable:
        def built(g):
            events.append(f"build {i}")
            return g.inject(i)

        return built

    def received(index: int, result: object) -> None:
        events.append(f"result {index}={result}")

    connection.run_all([build(0), build(1), build(2)], on_result=received)
    assert events == [
        "build 0",
        "build 1",
        "result 0=[0]",
        "build 2",
        "result 1=[1]",
        "result 2=[2]",
    ]
    assert [b.step_instructions[0][1] for b in transport.connections[0].submitted] == [0, 1, 2]
    assert connection.requests == 3


def test_run_all_retries_a_request_as_run_does_and_stops_at_one_that_cannot_succeed() -> None:
    connection, transport, sleep = make([SERVER_CLOSED])
    results: list[object] = []
    connection.run_all([inject(1), inject(2)], on_result=lambda _, result: results.append(result))
    assert results == [[1], [2]]
    assert (connection.requests, len(sleep.delays), len(transport.connections)) == (3, 1, 2)

    refused, refused_transport, _ = make([server_error(500, "no such property")] * 3)
    with pytest.raises(GraphError, match="no such property"):
        refused.run_all([inject(1), inject(2), inject(3)])
    # the refused request is not retried, and nothing after it is sent
    assert refused.requests == 1
    assert len(refused_transport.connections[0].submitted) == 1


def test_a_graph_still_unavailable_in_the_fallback_fails_the_other_chunks_without_waiting_again() -> None:
    from datetime import UTC, datetime, timedelta

    from fraudcore.graph.store import GraphStore, object_chunks
    from fraudcore.model import Transaction

    def refused() -> RemoteConnection:
        raise REFUSED

    sleep = RecordingSleep()
    store = GraphStore(GraphConnection(refused, name="down", max_retries=2, sleep=sleep), write_batch=10)
    start = datetime(2026, 11, 29, tzinfo=UTC)
    batch = [
        Transaction(
            transaction_id=f"t{i}",
            timestamp=start + timedelta(seconds=i),
            account_id=f"acct-{i}",
            amount=10.0,
            device_id=f"dev-{i}",
        )
        for i in range(40)
    ]
    assert len(object_chunks(batch, 10)) > 2
    outcome = store.upsert_transactions(batch)
    assert outcome.stored == set() and outcome.rejected == {}
    assert set(outcome.failed) == {f"t{i}" for i in range(40)}
    assert all("graph write failed" in reason for reason in outcome.failed.values())
    # the whole batch's try and the first chunk's: each waits through the retries once
    assert len(sleep.delays) == 2 * 2
