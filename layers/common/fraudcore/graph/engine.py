"""Which Neptune engine answers, checked once before the first Gremlin request.

The functions speak gremlinpython 3.7.x, which Neptune accepts from engine 1.3.2.0 on (its
TinkerPop compatibility table); mergeV/mergeE, which the upserts use, came with 1.2.1.0. An
existing cluster on an older engine would fail on every batch with errors that do not say
why, so the first connection reads the engine version from Neptune's status endpoint
(``GET https://<endpoint>:<port>/status``, field ``dbEngineVersion``, SigV4-signed with IAM
auth) and refuses a too-old engine with a message that names it.

When the status endpoint cannot be read (no ``neptune-db:GetEngineStatus`` permission, a
network problem), the check is skipped with a warning: the Gremlin requests themselves will
say whether the cluster is reachable.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.request
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from ..settings import ConfigurationError

log = logging.getLogger(__name__)

#: the oldest engine that accepts gremlinpython 3.7.x clients
MINIMUM_ENGINE = (1, 3, 2, 0)
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)\.(\d+)")

Fetch = Callable[[str, dict[str, str]], bytes]


def parse_engine_version(text: str) -> tuple[int, int, int, int]:
    """``1.3.2.0.R1`` or ``Patch-1.4.7.0.R2`` -> (1, 3, 2, 0)."""
    found = _VERSION.search(text or "")
    if not found:
        raise ValueError(f"{text!r} is not a Neptune engine version (expected e.g. 1.4.7.0.R1)")
    major, minor, patch, build = (int(part) for part in found.groups())
    return major, minor, patch, build


def check_engine_version(text: str, endpoint: str) -> None:
    """Refuse an engine older than :data:`MINIMUM_ENGINE`, naming it and what to do."""
    if parse_engine_version(text) < MINIMUM_ENGINE:
        minimum = ".".join(map(str, MINIMUM_ENGINE))
        raise ConfigurationError(
            f"the Neptune cluster at {endpoint} runs engine {text}; these functions use gremlinpython "
            f"3.7.x, which Neptune accepts from engine {minimum} on: upgrade the cluster "
            f"(aws neptune modify-db-cluster --engine-version ...) or deploy with a new cluster"
        )


def status_url(endpoint: str) -> str:
    """``wss://host:port/gremlin`` -> ``https://host:port/status``."""
    parts = urlsplit(endpoint)
    scheme = "https" if parts.scheme == "wss" else "http"
    return urlunsplit((scheme, parts.netloc, "/status", "", ""))


def _http_get(url: str, headers: dict[str, str]) -> bytes:
    request = urllib.request.Request(url, headers=headers, method="GET")
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read()


def engine_version(endpoint: str, *, iam_auth: bool, region: str, fetch: Fetch = _http_get) -> str | None:
    """The engine version the status endpoint reports, or None when it cannot be read."""
    url = status_url(endpoint)
    try:
        headers: dict[str, str] = {}
        if iam_auth:
            from .sigv4 import signed_request_headers

            headers = signed_request_headers(url, region)
        document = json.loads(fetch(url, headers))
        version = document.get("dbEngineVersion")
        return str(version) if version else None
    except ConfigurationError:
        raise
    except Exception as error:  # a status endpoint we cannot read is not a reason to stop
        log.warning("could not read the Neptune engine version from %s (%s); not checked", url, error)
        return None


def verify_engine(endpoint: str, *, iam_auth: bool, region: str, fetch: Fetch = _http_get) -> str | None:
    """Read the engine version and refuse one that is too old; returns the version read."""
    version = engine_version(endpoint, iam_auth=iam_auth, region=region, fetch=fetch)
    if version is not None:
        check_engine_version(version, endpoint)
    return version
