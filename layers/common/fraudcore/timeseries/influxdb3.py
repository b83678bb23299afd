"""The time-series port on Amazon Timestream for InfluxDB 3, over its v3 HTTP API.

Plain HTTPS with urllib3 (botocore's own HTTP library, so nothing new in the Lambda layer):

- **writes**: ``POST /api/v3/write_lp?db=<db>&precision=millisecond&accept_partial=true``,
  line protocol (:mod:`fraudcore.timeseries.line_protocol`), gzip-compressed, at most
  ``max_lines`` lines per request. With ``accept_partial`` the server stores the valid lines
  and answers 400 with the invalid ones (``line_number``, ``error_message``,
  ``original_line``); each is mapped back to its transaction and rejected with the server's
  reason, so one bad line never costs its batch.
- **queries**: ``POST /api/v3/query_sql`` with ``{"db", "q", "format": "json"}``. The SQL is
  InfluxDB 3 SQL (:data:`fraudcore.timeseries.dialects.INFLUXDB3`), always with explicit
  time bounds. Rows come back as JSON objects; InfluxDB leaves NULL columns out of a row,
  and times (``time``, ``window_start``) are returned as UTC datetimes.
- **retries**: 429, 5xx and lost connections are retried with exponential backoff and full
  jitter (``Retry-After`` honoured); a 401/403 refetches the token once (it may have been
  rotated), then fails. Writes that still fail are reported as ``failed`` (Kinesis retries
  those records); lines the server refuses are ``rejected`` (never retried).
- **credentials**: the token is read from Secrets Manager with Powertools Parameters, cached
  for the execution environment (``max_age``), and sent as ``Authorization: Bearer``.

Idempotency: a transaction's series key is its tags (``account_id``, ``transaction_id``)
plus its time, and InfluxDB replaces a point written again with the same key, so a replayed
record overwrites itself with the same values.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import urllib3

from ..model import Transaction
from ..ports import WriteOutcome
from . import MissingColumnError, missing_column, unique_by_key
from .dialects import INFLUXDB3
from .line_protocol import PRECISION, encode_batch

#: lines per write request (InfluxDB recommends batches of about 5,000 lines)
MAX_LINES_PER_WRITE = 5000
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
#: columns whose text values are times (InfluxDB's JSON results carry times as text)
TIME_COLUMNS = frozenset({"time", "window_start"})
_TIMESTAMP_TEXT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?$")


class InfluxDB3Error(RuntimeError):
    """The server refused a request; the message carries its status and its reason."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def token_from_secret(secret: str) -> str:
    """The token in a secret: JSON with a ``token`` key (or one key whose name ends in "token",
    such as an admin or operator token), or the whole text when it is not JSON."""
    text = secret.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            raise InfluxDB3Error("the InfluxDB secret is not valid JSON") from None
        if not isinstance(document, dict):
            raise InfluxDB3Error("the InfluxDB secret is not a JSON object")
        token = document.get("token")
        if not token:
            candidates = [value for key, value in document.items() if key.lower().endswith("token") and value]
            token = candidates[0] if len(candidates) == 1 else None
        if not token:
            raise InfluxDB3Error(
                f'the InfluxDB secret has no "token" key (keys: {", ".join(sorted(document)) or "none"})'
            )
        return str(token)
    if not text:
        raise InfluxDB3Error("the InfluxDB secret is empty")
    return text


def secrets_manager_token(secret_arn: str, max_age: int = 300) -> Callable[[bool], str]:
    """A token provider reading the secret once per ``max_age`` seconds (Powertools Parameters)."""

    def provide(refresh: bool = False) -> str:
        from aws_lambda_powertools.utilities import parameters

        return token_from_secret(str(parameters.get_secret(secret_arn, max_age=max_age, force_fetch=refresh)))

    return provide


def _as_time(value: Any) -> Any:
    if isinstance(value, str) and _TIMESTAMP_TEXT.match(value):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return value


class InfluxDB3Store:
    """:class:`fraudcore.ports.TimeseriesStore` on InfluxDB 3 (Timestream for InfluxDB 3)."""

    sql_dialect = INFLUXDB3

    def __init__(
        self,
        endpoint: str,
        database: str,
        table: str,
        token: Callable[[bool], str],
        *,
        http: urllib3.PoolManager | None = None,
        max_lines: int = MAX_LINES_PER_WRITE,
        max_retries: int = 5,
        base_delay: float = 0.1,
        max_delay: float = 5.0,
        timeout: float = 30.0,
        verify_tls: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not endpoint.startswith(("https://", "http://")):
            raise ValueError(f"InfluxDB endpoint {endpoint!r}: expected https://host:port")
        self.endpoint = endpoint.rstrip("/")
        self.database = database
        self.table = table
        self._token = token
        self._http = http or urllib3.PoolManager(
            retries=False,
            timeout=urllib3.Timeout(connect=5.0, read=timeout),
            cert_reqs="CERT_REQUIRED" if verify_tls else "CERT_NONE",
        )
        self.max_lines = max_lines
        self.max_retries = max_retries
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep

    @classmethod
    def from_settings(cls, settings: Any) -> InfluxDB3Store:
        if settings.influxdb_token:
            fixed = settings.influxdb_token

            def token(refresh: bool = False) -> str:
                return fixed

        else:
            token = secrets_manager_token(settings.influxdb_secret_arn.strip())
        return cls(
            settings.influxdb_endpoint.strip(),
            settings.influxdb_database,
            settings.timestream_table,
            token,
            verify_tls=settings.influxdb_verify_tls,
        )

    # -- HTTP -----------------------------------------------------------------------------

    def _delay(self, attempt: int, response: Any = None) -> float:
        retry_after = response.headers.get("Retry-After") if response is not None else None
        if retry_after:
            try:
                return min(float(retry_after), self.max_delay)
            except ValueError:
                pass
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))

    def _request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> Any:
        """Send with retries; the last response (any status) or an :class:`InfluxDB3Error`."""
        refreshed = False
        attempt = 0
        while True:
            request_headers = {**headers, "Authorization": f"Bearer {self._token(refreshed)}"}
            try:
                response = self._http.request(
                    method, self.endpoint + path, body=body, headers=request_headers, preload_content=True
                )
            except urllib3.exceptions.HTTPError as error:
                if attempt >= self.max_retries:
                    raise InfluxDB3Error(f"{path}: no answer after {attempt + 1} attempts: {error}") from None
                self._sleep(self._delay(attempt))
                attempt += 1
                continue
            if response.status in (401, 403) and not refreshed:
                refreshed = True  # the secret may have been rotated: read it again, once
                continue
            if response.status in RETRYABLE_STATUS and attempt < self.max_retries:
                self._sleep(self._delay(attempt, response))
                attempt += 1
                continue
            return response

    @staticmethod
    def _reason(response: Any) -> str:
        text = response.data.decode("utf-8", "replace")
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            return text.strip()[:500] or f"HTTP {response.status}"
        if isinstance(document, dict):
            return str(document.get("error") or document.get("message") or text)[:500]
        return text[:500]

    # -- writes ---------------------------------------------------------------------------

    def write(self, transactions: Sequence[Transaction]) -> WriteOutcome:
        """Write a batch as line protocol; say per transaction_id what became of it."""
        outcome = WriteOutcome()
        lines, refused = encode_batch(self.table, unique_by_key(list(transactions)))
        outcome.rejected.update(refused)
        for start in range(0, len(lines), self.max_lines):
            outcome.merge(self._write_chunk(lines[start : start + self.max_lines]))
        return outcome

    def _write_chunk(self, lines: list[tuple[str, str]]) -> WriteOutcome:
        outcome = WriteOutcome(requests=1)
        ids = [transaction_id for transaction_id, _ in lines]
        body = gzip.compress("\n".join(line for _, line in lines).encode("utf-8"))
        path = f"/api/v3/write_lp?db={_quote(self.database)}&precision={PRECISION}&accept_partial=true"
        headers = {"Content-Type": "text/plain; charset=utf-8", "Content-Encoding": "gzip"}
        try:
            response = self._request("POST", path, body, headers)
        except InfluxDB3Error as error:
            outcome.failed = dict.fromkeys(ids, str(error))
            return outcome
        if response.status in (200, 204):
            outcome.stored = set(ids)
            return outcome
        line_errors = self._line_errors(response) if response.status == 400 else None
        if line_errors is None:
            reason = f"InfluxDB 3 write failed with HTTP {response.status}: {self._reason(response)}"
            outcome.failed = dict.fromkeys(ids, reason)
            return outcome
        for number, transaction_id in enumerate(ids, start=1):
            if number in line_errors:
                outcome.rejected[transaction_id] = f"InfluxDB 3 refused the line: {line_errors[number]}"
            else:
                outcome.stored.add(transaction_id)
        return outcome

    def _line_errors(self, response: Any) -> dict[int, str] | None:
        """``{line_number: error_message}`` of a partial-write answer; None when it is another 400."""
        try:
            document = json.loads(response.data.decode("utf-8", "replace"))
        except json.JSONDecodeError:
            return None
        data = document.get("data") if isinstance(document, dict) else None
        if not isinstance(data, list) or not data:
            return None
        errors: dict[int, str] = {}
        for item in data:
            if isinstance(item, dict) and isinstance(item.get("line_number"), int):
                errors[item["line_number"]] = str(item.get("error_message") or document.get("error"))
        return errors or None

    # -- queries --------------------------------------------------------------------------

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run InfluxDB 3 SQL; rows as dicts (NULL columns absent, times as UTC datetimes)."""
        body = json.dumps({"db": self.database, "q": sql, "format": "json"}).encode("utf-8")
        response = self._request("POST", "/api/v3/query_sql", body, {"Content-Type": "application/json"})
        if response.status != 200:
            reason = self._reason(response)
            column = missing_column(reason) if response.status == 400 else None
            if column is not None:  # a tag or field no point has carried yet
                raise MissingColumnError(column, reason)
            raise InfluxDB3Error(
                f"InfluxDB 3 query failed with HTTP {response.status}: {reason}", response.status
            )
        text = response.data.decode("utf-8")
        rows = json.loads(text) if text.strip() else []
        return [{k: (_as_time(v) if k in TIME_COLUMNS else v) for k, v in row.items()} for row in rows]

    def count(self) -> int:
        rows = self.query(f'SELECT count(*) AS n FROM "{self.table}"')
        return int(rows[0]["n"]) if rows else 0

    def close(self) -> None:
        self._http.clear()


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")
