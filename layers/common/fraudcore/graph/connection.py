"""The one way graph requests leave the process: a reused connection with retries.

Every graph operation goes through :class:`GraphConnection`. It holds one gremlinpython
``RemoteConnection`` per execution environment (a Lambda container keeps it between
invocations), binds traversals to it with a per-request evaluation timeout, and retries
what is worth retrying:

- a lost connection (closed socket, abnormal WebSocket close, refused connect): close,
  reconnect (re-signing the handshake for Neptune IAM auth), back off, retry;
- ``ConcurrentModificationException`` (Neptune's lock conflict between concurrent
  writers): back off and retry on the same connection;
- ``ThrottlingException``, ``TooManyRequestsException``, ``MemoryLimitExceededException``
  and ``InternalFailureException``, which Neptune documents as safe to retry (a serverless
  cluster answers them while it scales up): back off and retry; after the last retry they
  are raised as :class:`GraphBusyError`, which the state machine retries again later.

Anything else (a malformed traversal, an evaluation timeout, a refused signature) is
raised at once as a :class:`GraphError` naming the request and the reason. Writes sent
through :meth:`GraphConnection.run` must be idempotent (``mergeV``/``mergeE`` with fixed
ids), since a request cut off mid-flight may have been applied before it is sent again.

The connection itself comes from a factory, so the same class drives Neptune, a TinkerPop
Gremlin Server and the embedded engine (which supplies its own ``RemoteConnection``).
"""

from __future__ import annotations

import atexit
import gc
import logging
import random
import socket
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Literal

from gremlin_python.driver.protocol import GremlinServerError
from gremlin_python.driver.remote_connection import RemoteConnection, RemoteTraversal
from gremlin_python.driver.request import RequestMessage
from gremlin_python.process.anonymous_traversal import traversal
from gremlin_python.process.graph_traversal import GraphTraversalSource
from gremlin_python.process.traversal import Bytecode, Traversal

from ..retry import RetryPolicy
from ..settings import ConfigurationError, Settings

log = logging.getLogger(__name__)

Terminal = Literal["toList", "iterate", "next"]
RemoteConnectionFactory = Callable[[], RemoteConnection]

#: Gremlin Server's status code for a request that exceeded its evaluation timeout
_STATUS_TIMEOUT = 598
#: texts that mark a lock conflict: Neptune's exception code and TinkerPop's Java exception
_CONFLICT_MARKERS = ("ConcurrentModificationException", "ConcurrentModification")
#: Neptune's code for a write that reached a reader after a failover: a reconnect resolves
#: the cluster endpoint to the new writer
_FAILOVER_MARKERS = ("ReadOnlyViolationException",)
#: Neptune's codes for a request it could not take now but may take on a later try
_BUSY_MARKERS = (
    "ThrottlingException",
    "TooManyRequestsException",
    "MemoryLimitExceededException",
    "InternalFailureException",
)
#: texts of an evaluation timeout: Neptune's exception code, Gremlin Server's and the
#: embedded engine's messages
_TIMEOUT_MARKERS = ("TimeLimitExceeded", "evaluation exceeded", "timeout occurred")
#: gremlinpython's words for a socket that is gone (aiohttp transport, protocol, client)
_CONNECTION_LOST_MARKERS = (
    "Connection was closed by server",
    "Connection was already closed",
    "Received error on read",
    "Server disconnected",
    "Event loop is closed",
    "Client is closed",
    "Cannot write to closing transport",
)


class GraphError(Exception):
    """A graph request failed; the message names the request, the endpoint and the reason."""


class GraphTimeoutError(GraphError):
    """The request exceeded its evaluation timeout: bound the traversal or raise the timeout."""


class GraphUnavailableError(GraphError):
    """The graph could not be reached, or kept failing with retryable errors, after every retry."""


class GraphBusyError(GraphUnavailableError):
    """Neptune kept answering throttling, too many requests, memory limit or internal failure.

    Its own class (the name Lambda reports as ``errorType``) so the state machine can wait
    longer before the next try than for a lost connection: a serverless cluster that is
    scaling up needs seconds to tens of seconds.
    """


class ConcurrentModificationError(GraphUnavailableError):
    """Neptune kept reporting a conflicting concurrent write after every retry.

    Its own class (the name Lambda reports as ``errorType``) so the state machine can
    retry a conflict later, with a longer backoff than the connection's.
    """


def _full_text(error: BaseException) -> str:
    if isinstance(error, GremlinServerError):
        exceptions = (error.status_attributes or {}).get("exceptions") or []
        text = f"status {error.status_code}: {error.status_message}"
        return text + (f" ({', '.join(map(str, exceptions))})" if exceptions else "")
    return f"{type(error).__name__}: {error}"


def _error_text(error: BaseException) -> str:
    """The reason, kept short for messages: a server message may echo a whole batch of upserts."""
    text = _full_text(error)
    return text if len(text) <= 600 else text[:597] + "..."


def _is_connection_lost(error: BaseException) -> bool:
    if isinstance(error, GremlinServerError):
        return any(marker in str(error) for marker in _CONNECTION_LOST_MARKERS)
    # Refused or reset sockets, DNS failures while an endpoint moves, read timeouts.
    if isinstance(error, (ConnectionError, TimeoutError, socket.gaierror, EOFError)):
        return True
    if _is_aiohttp_connection_error(error):
        return True
    return any(marker in str(error) for marker in _CONNECTION_LOST_MARKERS)


def _free_dropped_transports() -> None:
    """Free now the transports of a lost or refused connection, while no event loop runs.

    A gremlinpython connection whose socket failed (a refused connect, a server gone) is left
    in reference cycles with the error that ended it. When the cyclic collector frees it later,
    its ``AiohttpTransport.__del__`` closes its own event loop with ``run_until_complete``:
    if that happens while another connection's loop is running (the next attempt), it fails
    with "Cannot run the event loop while another loop is running", and Python prints an
    ignored exception and a never-awaited coroutine. Collecting here, between attempts and
    before the retry's wait, frees them where closing works. It runs only after a lost
    connection.
    """
    gc.collect()


def _is_aiohttp_connection_error(error: BaseException) -> bool:
    try:
        import aiohttp
    except ImportError:  # a RemoteConnection that does not use aiohttp
        return False
    if isinstance(error, aiohttp.ClientResponseError):
        # A refused handshake (403: bad or expired signature, missing IAM permission) is
        # not cured by retrying; other statuses (502/503 while Neptune restarts) are.
        return error.status >= 500
    return isinstance(error, aiohttp.ClientError)


def _is_conflict(error: BaseException) -> bool:
    text = _full_text(error)
    return any(marker in text for marker in _CONFLICT_MARKERS + _FAILOVER_MARKERS)


def _is_busy(error: BaseException) -> bool:
    text = _full_text(error)
    return any(marker in text for marker in _BUSY_MARKERS)


def _exhausted_error(error: BaseException) -> type[GraphUnavailableError]:
    if _is_conflict(error):
        return ConcurrentModificationError
    if _is_busy(error):
        return GraphBusyError
    return GraphUnavailableError


def is_timeout(error: BaseException) -> bool:
    """An evaluation timeout, whichever layer reported it (this connection, the server, the engine)."""
    if isinstance(error, GraphTimeoutError):
        return True
    if isinstance(error, GremlinServerError) and error.status_code == _STATUS_TIMEOUT:
        return True
    text = f"{_full_text(error)} {error}"
    return any(marker in text for marker in _TIMEOUT_MARKERS)


def describe(bytecode: Bytecode) -> str:
    """A short, readable name of a request: its steps, without the (possibly large) arguments."""
    steps = [instruction[0] for instruction in bytecode.step_instructions]
    text = ".".join(steps)
    return text if len(text) <= 160 else text[:157] + "..."


#: gremlinpython's logger: its debug lines format every request in full
_DRIVER_LOG = logging.getLogger("gremlinpython")


def send_bytecode(remote: RemoteConnection, bytecode: Bytecode) -> Callable[[], RemoteTraversal]:
    """Send a request on ``remote`` now; the function returned waits for its results (or raises
    its error).

    A sessionless gremlinpython ``DriverRemoteConnection`` gets the request written by
    :func:`_write_request` and answers while the server works on it; any other connection
    (the embedded engine's) answers at once, through ``remote.submit``.
    """
    try:
        written = _write_request(remote, bytecode)
        if written is not None:
            return written
        answered = remote.submit(bytecode)
    except Exception as error:
        return _raising(error)
    return lambda: answered


def submit_bytecode(remote: RemoteConnection, bytecode: Bytecode) -> RemoteTraversal:
    """``remote.submit(bytecode)``, a ``DriverRemoteConnection``'s written by :func:`_write_request`."""
    written = _write_request(remote, bytecode)
    return written() if written is not None else remote.submit(bytecode)


def _write_request(remote: RemoteConnection, bytecode: Bytecode) -> Callable[[], RemoteTraversal] | None:
    """Write the request on a gremlinpython connection without formatting it for logs nobody
    reads; the function returned waits for its results. None for another kind of connection.

    gremlinpython's ``DriverRemoteConnection.submit`` and ``Client.submit_async`` call
    ``str(bytecode)`` for three debug log lines whether debug logging is on or not: for a
    batched upsert of 100 maps that costs more client CPU than building and serialising the
    request. For a sessionless ``DriverRemoteConnection`` (what :func:`driver_factory` builds)
    with the ``gremlinpython`` logger not at DEBUG, this writes the same request message
    (processor ``traversal``, op ``bytecode``, the traversal source alias and the request
    options of an ``OptionsStrategy``, such as ``evaluationTimeout``) on a pooled connection,
    as the driver does, and returns while the server works on it.
    """
    driver = sys.modules.get("gremlin_python.driver.driver_remote_connection")  # imported when used
    if (
        driver is None
        or type(remote) is not driver.DriverRemoteConnection
        or _DRIVER_LOG.isEnabledFor(logging.DEBUG)
    ):
        return None
    client = getattr(remote, "_client", None)
    pool = getattr(client, "_pool", None)
    if pool is None or client._session_enabled or client.is_closed():
        return None  # the driver's own submit says what is wrong
    args: dict[str, Any] = {"gremlin": bytecode, "aliases": {"g": client._traversal_source}}
    options = remote._extract_request_options(bytecode)
    if options:
        args.update(options)
    message = RequestMessage(processor="traversal", op="bytecode", args=args)
    written = pool.get(True).write(message)  # blocks while the previous request is read
    return lambda: RemoteTraversal(iter(written.result().all().result()))


def _raising(error: BaseException) -> Callable[[], Any]:
    """A wait function for a request that already failed: it raises the request's error."""

    def fail() -> Any:
        raise error

    return fail


class _CountingConnection(RemoteConnection):
    """Counts every traversal submitted to the wrapped connection, retries included."""

    def __init__(self, inner: RemoteConnection, on_submit: Callable[[], None]) -> None:
        super().__init__(getattr(inner, "url", None), getattr(inner, "traversal_source", None))
        self.inner = inner
        self._on_submit = on_submit

    def submit(self, bytecode: Bytecode) -> RemoteTraversal:
        self._on_submit()
        return submit_bytecode(self.inner, bytecode)

    def send(self, bytecode: Bytecode) -> Callable[[], RemoteTraversal]:
        """Send now, wait later (:func:`send_bytecode`)."""
        self._on_submit()
        return send_bytecode(self.inner, bytecode)

    def submit_async(self, bytecode: Bytecode) -> Any:
        self._on_submit()
        return self.inner.submit_async(bytecode)

    def is_closed(self) -> bool:
        return self.inner.is_closed()

    def is_session_bound(self) -> bool:
        return self.inner.is_session_bound()

    def close(self) -> None:
        self.inner.close()


_live: weakref.WeakSet[GraphConnection] = weakref.WeakSet()


class GraphConnection:
    """One reused graph connection with per-request timeouts, retries and a request counter.

    ``requests`` counts every traversal submitted (each retry counts again), whether it was
    sent through :meth:`run` or through a traversal built on :meth:`g` directly.
    """

    def __init__(
        self,
        factory: RemoteConnectionFactory,
        *,
        name: str,
        eval_timeout_ms: int = 30_000,
        max_retries: int = 5,
        backoff_base_s: float = 0.05,
        backoff_cap_s: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if eval_timeout_ms < 1:
            raise ConfigurationError(f"evaluation timeout {eval_timeout_ms} ms: must be at least 1")
        if max_retries < 0:
            raise ConfigurationError(f"max_retries {max_retries}: must be 0 or more")
        self._factory = factory
        self.name = name
        self.eval_timeout_ms = eval_timeout_ms
        self.max_retries = max_retries
        self.retry = RetryPolicy(
            max_attempts=max_retries + 1,
            base_delay=backoff_base_s,
            max_delay=backoff_cap_s,
            sleep=sleep,
            jitter=(rng or random.Random()).uniform,
        )
        self._remote: _CountingConnection | None = None
        self._lock = threading.RLock()
        self.requests = 0
        #: connections opened so far (1 + reconnects), for tests and metrics
        self.connects = 0
        self.retries = 0
        _live.add(self)

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_settings(
        cls, settings: Settings, traversal_source: str = "g", **options: Any
    ) -> GraphConnection:
        """A connection to Neptune or a Gremlin Server, as the settings describe it."""
        if settings.graph_backend not in ("neptune", "gremlin-server"):
            raise ConfigurationError(
                f"GRAPH_BACKEND={settings.graph_backend!r} has no network endpoint: "
                "use GraphConnection.from_factory with the embedded engine's RemoteConnection"
            )
        factory = driver_factory(
            settings.graph_endpoint,
            traversal_source,
            iam_auth=settings.neptune_iam_auth,
            region=settings.aws_region,
            check_engine=settings.graph_backend == "neptune",
        )
        options.setdefault("eval_timeout_ms", settings.graph_eval_timeout_ms)
        options.setdefault("max_retries", settings.graph_max_retries)
        return cls(factory, name=f"{settings.graph_endpoint} ({traversal_source})", **options)

    @classmethod
    def from_factory(
        cls,
        factory: RemoteConnectionFactory,
        settings: Settings | None = None,
        name: str = "embedded graph",
        **options: Any,
    ) -> GraphConnection:
        """A connection whose ``RemoteConnection`` comes from ``factory`` (e.g. the embedded engine)."""
        if settings is not None:
            options.setdefault("eval_timeout_ms", settings.graph_eval_timeout_ms)
            options.setdefault("max_retries", settings.graph_max_retries)
        return cls(factory, name=name, **options)

    # -- the connection -----------------------------------------------------------------

    def remote(self) -> RemoteConnection:
        """The live connection, opened on first use."""
        with self._lock:
            if self._remote is None:
                self._remote = _CountingConnection(self._factory(), self._count_request)
                self.connects += 1
            return self._remote

    @property
    def opened(self) -> bool:
        """Whether a connection is open now (when not, the next request opens one)."""
        return self._remote is not None

    def _count_request(self) -> None:
        with self._lock:
            self.requests += 1

    def g(self, eval_timeout_ms: int | None = None) -> GraphTraversalSource:
        """A traversal source bound to the connection, with the per-request evaluation timeout."""
        timeout = self.eval_timeout_ms if eval_timeout_ms is None else eval_timeout_ms
        return traversal().with_remote(self.remote()).with_("evaluationTimeout", timeout)

    def close(self) -> None:
        """Close the connection; the next request opens a new one."""
        with self._lock:
            remote, self._remote = self._remote, None
        if remote is not None:
            try:
                remote.close()
            except Exception as error:  # a dead socket may fail to close; it is dropped anyway
                log.debug("closing %s: %s", self.name, error)

    reconnect = close

    # -- requests -----------------------------------------------------------------------

    def run(
        self,
        build: Callable[[GraphTraversalSource], Traversal],
        terminal: Terminal = "toList",
        *,
        what: str | None = None,
        eval_timeout_ms: int | None = None,
    ) -> Any:
        """Build a traversal on a fresh source and execute it, retrying transient failures.

        ``build`` is called again for each attempt (a traversal runs once). ``what`` names
        the request in errors; by default its step names are used.
        """
        return self._run(build, terminal, what, eval_timeout_ms)

    def run_all(
        self,
        builds: Sequence[Callable[[GraphTraversalSource], Traversal]],
        terminal: Terminal = "toList",
        *,
        on_result: Callable[[int, Any], None] | None = None,
    ) -> None:
        """Run requests in order, each as :meth:`run` runs it, building the next one while the
        one before is in flight.

        One request at a time reaches the graph, in order: request ``i + 1`` is sent only after
        request ``i`` answered (its retries included), and a failure stops the sequence there
        (raised as :meth:`run` raises it; nothing after it is sent). What overlaps is the
        client's work: ``builds[i + 1]`` is called (the traversal and its arguments converted)
        while the graph works on request ``i``, so ``builds[i + 1]`` may rely on the results of
        requests ``0 .. i - 1``, which ``on_result(index, result)`` received first, but not on
        request ``i``'s. ``on_result`` runs while no request is in flight (request ``i + 1`` is
        sent after it returns), so it may run requests of its own on this connection.
        """
        if terminal not in ("toList", "iterate", "next"):
            raise ValueError(f"terminal={terminal!r}: expected 'toList', 'iterate' or 'next'")
        pending: tuple[int, Callable, Traversal | None, Callable | None] | None = None
        for index, build in enumerate([*builds, None]):
            request = None
            if build is not None:
                try:
                    request = build(self.g())
                except Exception:  # built again inside the retries of _run, which report it
                    request = None
            if pending is not None:
                done, done_build, sent, wait = pending
                result = self._run(done_build, terminal, None, None, sent=(sent, wait) if wait else None)
                if on_result is not None:
                    on_result(done, result)
            if build is None:
                break
            wait = None
            if request is not None:
                if terminal == "iterate":
                    request.bytecode.add_step("none")
                try:
                    wait = self.remote().send(request.bytecode)
                except Exception as error:  # the request's first attempt, classified by _run
                    wait = _raising(error)
            pending = (index, build, request, wait)

    def _run(
        self,
        build: Callable[[GraphTraversalSource], Traversal],
        terminal: Terminal,
        what: str | None,
        eval_timeout_ms: int | None,
        *,
        sent: tuple[Traversal, Callable[[], RemoteTraversal]] | None = None,
    ) -> Any:
        """:meth:`run`; with ``sent``, its first attempt is that request, already sent."""
        if terminal not in ("toList", "iterate", "next"):
            raise ValueError(f"terminal={terminal!r}: expected 'toList', 'iterate' or 'next'")
        attempt = 1
        while True:
            label = what or "graph request"
            try:
                if sent is not None:
                    request, wait = sent
                    sent = None
                    label = what or describe(request.bytecode)
                    request.traversers = wait().traversers
                    if terminal == "iterate":  # sent with its none() step: nothing comes back
                        request.to_list()
                        return None
                    return self._execute(request, terminal, label)
                # Opening the connection is inside the retry: a refused connect is transient too.
                request = build(self.g(eval_timeout_ms))
                label = what or describe(request.bytecode)
                return self._execute(request, terminal, label)
            except (GraphError, ConfigurationError):
                raise
            except Exception as error:
                retryable, lost = self._classify(error)
                if not retryable:
                    raise self._fatal(error, label, eval_timeout_ms) from error
                if lost:
                    self.close()
                    _free_dropped_transports()
                if not self.retry.can_retry(attempt):
                    raise _exhausted_error(error)(
                        f"graph request {label!r} on {self.name} still failing after "
                        f"{attempt} attempts: {_error_text(error)}"
                    ) from error
                delay = self.retry.delay(attempt)
                log.warning(
                    "graph request %r on %s failed (%s); retry %d/%d in %.3fs",
                    label,
                    self.name,
                    _error_text(error),
                    attempt,
                    self.max_retries,
                    delay,
                )
                self.retries += 1
                self.retry.sleep(delay)
                attempt += 1

    @staticmethod
    def _execute(request: Traversal, terminal: Terminal, label: str) -> Any:
        if terminal == "toList":
            return request.to_list()
        if terminal == "iterate":
            request.iterate()
            return None
        try:
            return request.next()
        except StopIteration:
            raise GraphError(f"graph request {label!r} returned no result") from None

    @staticmethod
    def _classify(error: BaseException) -> tuple[bool, bool]:
        """(retryable, connection lost)."""
        if is_timeout(error):
            return False, False
        if _is_conflict(error):
            # A failover needs a new socket to reach the new writer; a lock conflict does not.
            return True, any(marker in _full_text(error) for marker in _FAILOVER_MARKERS)
        if _is_busy(error):
            return True, False
        if _is_connection_lost(error):
            return True, True
        return False, False

    def _fatal(self, error: BaseException, label: str, eval_timeout_ms: int | None) -> GraphError:
        if is_timeout(error):
            timeout = self.eval_timeout_ms if eval_timeout_ms is None else eval_timeout_ms
            return GraphTimeoutError(
                f"graph request {label!r} on {self.name} exceeded its evaluation timeout of {timeout} ms: "
                f"{_error_text(error)}"
            )
        return GraphError(f"graph request {label!r} on {self.name} failed: {_error_text(error)}")


# -- RemoteConnection factories ---------------------------------------------------------


def driver_factory(
    endpoint: str,
    traversal_source: str = "g",
    *,
    iam_auth: bool = False,
    region: str = "",
    pool_size: int = 1,
    check_engine: bool = False,
    **driver_options: Any,
) -> RemoteConnectionFactory:
    """A factory of gremlinpython ``DriverRemoteConnection`` s; with ``iam_auth`` each new
    connection carries a freshly SigV4-signed handshake (signatures expire within minutes).

    With ``check_engine`` (Neptune), the first connection first reads the cluster's engine
    version and refuses one too old for this client (:mod:`fraudcore.graph.engine`).

    ``pool_size`` defaults to 1: a Lambda invocation sends one request at a time, and each
    pooled socket would otherwise need its own handshake.
    """
    if not endpoint.startswith(("ws://", "wss://")):
        raise ConfigurationError(f"GRAPH_ENDPOINT={endpoint!r}: expected ws://host:port/gremlin or wss://...")

    engine_checked = not check_engine

    def open_connection() -> RemoteConnection:
        nonlocal engine_checked
        from gremlin_python.driver.driver_remote_connection import DriverRemoteConnection

        if not engine_checked:
            from .engine import verify_engine

            verify_engine(endpoint, iam_auth=iam_auth, region=region)
            engine_checked = True

        headers = None
        if iam_auth:
            from .sigv4 import signed_handshake_headers

            headers = signed_handshake_headers(endpoint, region)
        options = dict(driver_options)
        if "message_serializer" not in options:
            from .wire import fast_message_serializer  # the driver's, reading answers faster

            options["message_serializer"] = fast_message_serializer()
        return DriverRemoteConnection(
            endpoint, traversal_source, headers=headers, pool_size=pool_size, **options
        )

    return open_connection


def close_all() -> None:
    """Close every graph connection of the process (tests; interpreter exit)."""
    for connection in list(_live):
        connection.close()


atexit.register(close_all)
