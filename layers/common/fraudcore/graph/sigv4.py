"""SigV4 signing of the WebSocket handshake for Neptune IAM database authentication.

Neptune authenticates a Gremlin WebSocket connection once, at the HTTP upgrade request:
the request ``GET https://<host>:<port>/gremlin`` is signed for the service
``neptune-db`` and the signed headers travel with the handshake. A signature is valid for
minutes only, so every new connection (and every reconnect) signs again.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from ..settings import ConfigurationError

SERVICE = "neptune-db"


def handshake_url(endpoint: str) -> str:
    """The HTTPS form of a ``ws(s)://host:port/path`` endpoint, as Neptune verifies the signature."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ConfigurationError(f"GRAPH_ENDPOINT={endpoint!r}: expected wss://host:port/gremlin")
    scheme = "https" if parts.scheme == "wss" else "http"
    return urlunsplit((scheme, parts.netloc, parts.path or "/gremlin", parts.query, ""))


def default_credentials() -> Credentials:
    """Credentials of the default botocore chain (Lambda: the function's role), frozen for one signature."""
    import botocore.session

    credentials = botocore.session.get_session().get_credentials()
    if credentials is None:
        raise ConfigurationError(
            "NEPTUNE_IAM_AUTH=true but no AWS credentials were found "
            "(set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or give the function a role)"
        )
    # Refreshable credentials may rotate between reads; sign with one consistent triple.
    frozen = credentials.get_frozen_credentials()
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token)


def signed_request_headers(url: str, region: str, credentials: Credentials | None = None) -> dict[str, str]:
    """Headers of a SigV4-signed ``GET`` of an https URL of the cluster (e.g. its ``/status``)."""
    if not region:
        raise ConfigurationError("NEPTUNE_IAM_AUTH=true needs a region (AWS_REGION)")
    request = AWSRequest(method="GET", url=url, data=None)
    SigV4Auth(credentials or default_credentials(), SERVICE, region).add_auth(request)
    return dict(request.headers.items())


def signed_handshake_headers(
    endpoint: str, region: str, credentials: Credentials | None = None
) -> dict[str, str]:
    """Headers of a SigV4-signed ``GET`` on the endpoint: ``Authorization``, ``X-Amz-Date`` and, with
    temporary credentials, ``X-Amz-Security-Token``.

    ``host`` is signed as ``host[:port]`` of the endpoint, which is what the WebSocket client sends.
    """
    return signed_request_headers(handshake_url(endpoint), region, credentials)
