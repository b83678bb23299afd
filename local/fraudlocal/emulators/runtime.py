"""Run a function's real handler in-process, as Lambda would, against the local stores.

The function's environment is the one ``template.yaml`` gives it (Globals merged with the
function's own variables); values that only exist on AWS (``!Ref``, ``!GetAtt``, ...)
are left out, and the backend selectors point at the local stores under the state dir.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import sys
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from fraudcore import backends
from fraudcore.settings import Settings, cached_settings, reset_settings_cache
from fraudlocal.errors import UserError
from fraudlocal.state_dir import StateDir

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"

#: the local time-series engines (``fraudlocal --timeseries``) and the default one
LOCAL_TIMESERIES = ("duckdb", "datafusion")
#: environment variable through which ``fraudlocal --timeseries`` reaches every local run
TIMESERIES_CHOICE_VARIABLE = "FRAUDLOCAL_TIMESERIES"


def local_timeseries_backend() -> str:
    """The local time-series engine chosen with ``fraudlocal --timeseries`` (DuckDB by default)."""
    choice = os.environ.get(TIMESERIES_CHOICE_VARIABLE, "duckdb")
    if choice not in LOCAL_TIMESERIES:
        raise UserError(
            f"{TIMESERIES_CHOICE_VARIABLE}={choice!r}: expected one of {', '.join(LOCAL_TIMESERIES)}"
        )
    return choice


#: what every locally invoked function gets, whatever the template says
LOCAL_OVERRIDES = {
    "GRAPH_BACKEND": "embedded",
    "REJECTED_SINK": "jsonl",
    "EVENT_PUBLISHER": "jsonl",
    "INVESTIGATION_STARTER": "local",
    "NEPTUNE_IAM_AUTH": "false",
    "FRAUD_LOCAL_RUN": "1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_DEV": "false",
    # threshold overrides come from <state dir>/rules-override.yaml locally, never from SSM
    "RULES_OVERRIDE": "",
}

#: vertices (or edges) per mergeV (mergeE) request on the embedded graph, unless the process
#: sets GRAPH_WRITE_BATCH: its store makes every request durable (a write-ahead log sync) before
#: it answers, which costs more than the request's maps, and it has no advice like Neptune's
#: (about 200 records a request; the template keeps 100), so a batch of the local Kinesis
#: mapping (at most 100 records, a few hundred distinct edges) goes in one request of each kind
EMBEDDED_GRAPH_WRITE_BATCH = "500"


@dataclass
class LocalLambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


@dataclass(frozen=True)
class LocalTarget:
    """Where the local stores are, and which graph backend to use."""

    state_dir: Path
    graph_backend: str = "embedded"
    graph_endpoint: str | None = None
    template: Path = DEFAULT_TEMPLATE
    extra_env: tuple[tuple[str, str], ...] = ()
    timeseries_backend: str = field(default_factory=local_timeseries_backend)

    def environment(self, function_env: dict[str, str]) -> dict[str, str]:
        env = dict(function_env)
        env.update(LOCAL_OVERRIDES)
        env["TIMESERIES_BACKEND"] = self.timeseries_backend
        env["FRAUD_STATE_DIR"] = str(self.state_dir)
        override = StateDir(self.state_dir).rules_override
        if override.exists():
            env["RULES_OVERRIDE"] = str(override)
        env["GRAPH_BACKEND"] = self.graph_backend
        if self.graph_backend == "embedded" and not os.environ.get("GRAPH_WRITE_BATCH"):
            env["GRAPH_WRITE_BATCH"] = EMBEDDED_GRAPH_WRITE_BATCH
        if self.graph_endpoint:
            env["GRAPH_ENDPOINT"] = self.graph_endpoint
        # Which graph of a Gremlin Server (it binds several; each test worker has its own): the
        # process's choice, not the template's "g", which is Neptune's only traversal source.
        if os.environ.get("GRAPH_TRAVERSAL_SOURCE"):
            env["GRAPH_TRAVERSAL_SOURCE"] = os.environ["GRAPH_TRAVERSAL_SOURCE"]
        env.update(dict(self.extra_env))
        return env


_modules: dict[Path, ModuleType] = {}


def load_handler(code_dir: Path, handler: str) -> Any:
    """Import ``app.lambda_handler`` from a function folder (each under its own module name)."""
    module_name, _, attribute = handler.rpartition(".")
    path = (code_dir / f"{module_name.replace('.', '/')}.py").resolve()
    module = _modules.get(path)
    if module is None:
        if not path.exists():
            raise UserError(f"handler file {path} does not exist")
        unique = (
            "fn_" + "_".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
            if path.is_relative_to(REPO_ROOT)
            else f"fn_{abs(hash(path))}"
        )
        spec = importlib.util.spec_from_file_location(unique, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[unique] = module
        spec.loader.exec_module(module)
        _modules[path] = module
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise UserError(f"{path} has no function {attribute!r}") from None


Environment = frozenset[tuple[str, str]]

#: the settings read in each environment seen (a function's, the process's own), by the
#: whole environment: ``Settings.from_env`` reads nothing else
_settings_by_environment: dict[Environment, Settings] = {}
_SETTINGS_KEPT = 64


@contextlib.contextmanager
def patched_environment(env: dict[str, str]) -> Iterator[None]:
    """Run with ``env`` over the process's environment; afterwards the environment is again
    exactly what it was, whatever the code run inside changed in it.

    Only the variables that differ are written (each write is a system call), and the
    settings (``fraudcore.settings.get_settings``) of an environment seen before are not
    read again: they are those read in that same environment, else read on first use."""
    saved = dict(os.environ)
    for name, value in env.items():
        if saved.get(name) != value:
            os.environ[name] = value
    patched = {**saved, **env}
    inside = frozenset(patched.items())
    reset_settings_cache(_settings_by_environment.get(inside))
    try:
        yield
    finally:
        current = dict(os.environ)
        _keep_settings(inside, current == patched)
        for name in current.keys() - saved.keys():
            del os.environ[name]
        for name, value in saved.items():
            if current.get(name) != value:
                os.environ[name] = value
        reset_settings_cache(_settings_by_environment.get(frozenset(saved.items())))


def _keep_settings(environment: Environment, unchanged: bool) -> None:
    """Keep the settings read in ``environment`` if the code that read them left it unchanged."""
    settings = cached_settings()
    if settings is None or not unchanged or environment in _settings_by_environment:
        return
    if len(_settings_by_environment) >= _SETTINGS_KEPT:
        _settings_by_environment.clear()
    _settings_by_environment[environment] = settings


_templates: dict[Path, tuple[float, Any]] = {}


def _template(path: Path) -> Any:
    """The parsed template, read again only when the file changed (parsing takes tens of ms)."""
    from .template import load_template

    mtime = path.stat().st_mtime if path.exists() else 0.0
    cached = _templates.get(path)
    if cached is None or cached[0] != mtime:
        cached = _templates[path] = (mtime, load_template(path))
    return cached[1]


def local_function_environment(template: Any, logical_id: str) -> dict[str, str]:
    """The function's variables that mean the same locally: literals and template parameters.

    Values naming AWS resources (``!Ref Queue``, ``!GetAtt``, ``!Sub ...``) have no local
    meaning and are left out; the backend selectors in :data:`LOCAL_OVERRIDES` replace them.
    """
    parameters = (template.data.get("Parameters") or {}).keys()
    rendered = template.local_environment(logical_id)
    kept = {}
    for name, raw in template.function(logical_id).environment.items():
        literal = not isinstance(raw, dict | list)
        parameter = isinstance(raw, dict) and set(raw) == {"Ref"} and raw["Ref"] in parameters
        if (literal or parameter) and name in rendered:
            kept[name] = rendered[name]
    return kept


class FunctionRunner:
    """Invokes the real handlers in-process against one local target.

    The template is parsed and each handler imported once, then every invocation runs with
    the function's environment, a Lambda context, and stdout kept for the caller (Powertools
    prints metrics there). ``verbose=False`` quiets the INFO logs and the metrics of
    thousands of pipeline invocations; warnings and errors still show.
    """

    def __init__(self, target: LocalTarget, *, verbose: bool = True):
        self.target = target
        self.template = _template(target.template)
        self.verbose = verbose
        self._prepared: dict[str, tuple[dict[str, str], Any]] = {}

    def _prepare(self, logical_id: str) -> tuple[dict[str, str], Any]:
        from .template import TemplateError

        prepared = self._prepared.get(logical_id)
        if prepared is None:
            try:
                function = self.template.function(logical_id)
            except TemplateError as error:
                raise UserError(str(error)) from None
            code_dir = self.template.root / (function.code_uri or ".")
            env = self.target.environment(local_function_environment(self.template, logical_id))
            with patched_environment(env):
                handler = load_handler(code_dir, function.handler or "app.lambda_handler")
                if not self.verbose:
                    from fraudcore.observability import logger

                    logger.setLevel("WARNING")
            prepared = self._prepared[logical_id] = (env, handler)
        return prepared

    def prepare(self, logical_id: str) -> None:
        """Import ``logical_id``'s handler now, in its environment, rather than at its first
        invocation (what a Lambda container does on its cold start)."""
        self._prepare(logical_id)

    def environment(self, logical_id: str) -> dict[str, str]:
        """The environment ``logical_id``'s handler runs with (for code acting on its behalf)."""
        return dict(self._prepare(logical_id)[0])

    def invoke(self, logical_id: str, event: Any) -> Any:
        """Invoke ``logical_id``'s handler; exceptions propagate as Lambda reports them
        (``errorType`` is the class name)."""
        env, handler = self._prepare(logical_id)
        context = LocalLambdaContext(function_name=logical_id)
        sink = sys.stderr if self.verbose else io.StringIO()
        with patched_environment(env), contextlib.redirect_stdout(sink), warnings.catch_warnings():
            _name_the_service(env.get("POWERTOOLS_SERVICE_NAME"))
            if not self.verbose:
                # A step that counted nothing makes Powertools warn on every invocation.
                warnings.filterwarnings("ignore", message="No application metrics to publish")
            return handler(event, context)


def _name_the_service(service: str | None) -> None:
    """Logs and metrics name the invoked function's service, as each Lambda function's own do.

    Powertools reads ``POWERTOOLS_SERVICE_NAME`` once, when the shared logger and metrics are
    created; in one local process every function shares them, so the name is set per call.
    """
    if not service:
        return
    from fraudcore.observability import logger, metrics

    logger.append_keys(service=service)
    metrics.service = service


def invoke_function(logical_id: str, event: Any, state_dir: Path | LocalTarget) -> Any:
    """Invoke the real handler of ``logical_id`` in-process and return its response."""
    target = state_dir if isinstance(state_dir, LocalTarget) else LocalTarget(Path(state_dir))
    return FunctionRunner(target).invoke(logical_id, event)


def close_local_backends() -> None:
    """Close every adapter the local invocations opened (files, connections)."""
    backends.reset()


def store_stats(target: LocalTarget) -> dict[str, object]:
    """What the local stores of ``target`` hold: rows, vertices, edges, rejected records."""
    env = target.environment({})
    with patched_environment(env):
        try:
            graph = backends.graph_store().counts()
            return {
                "timeseries_rows": backends.timeseries_store().count(),
                "graph_vertices": graph["vertices"],
                "graph_edges": graph["edges"],
                "rejected_records": backends.rejected_sink().count(),
            }
        finally:
            backends.reset()
