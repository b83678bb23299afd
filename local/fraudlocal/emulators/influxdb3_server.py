"""A local server for the two InfluxDB 3 HTTP endpoints the adapter uses, over the DataFusion store.

It binds 127.0.0.1 only and answers as InfluxDB 3 does, so the HTTP adapter is tested
against the same behaviour it meets on AWS:

- ``POST /api/v3/write_lp?db=&precision=&accept_partial=``: line protocol (gzip when
  ``Content-Encoding: gzip``); 204 when every line is stored; with ``accept_partial=true``
  (the default) the valid lines are stored and the answer is 400 with
  ``{"error": "partial write of line protocol occurred", "data": [{"original_line",
  "line_number", "error_message"}]}``; with ``accept_partial=false`` nothing is stored.
- ``POST /api/v3/query_sql`` (JSON ``{"db", "q", "format"}``) or ``GET`` with those as query
  parameters: the SQL runs on DataFusion over the database's tables; ``json`` (an array of
  objects, NULL columns left out, times as ``YYYY-MM-DDTHH:MM:SS[.fff]``) or ``jsonl``.
  An unknown database is 404, SQL DataFusion refuses (unknown table or column) is 400.
- every request needs ``Authorization: Bearer <token>`` (or ``Token <token>``): 401 otherwise.
- :meth:`InfluxDB3Server.inject` makes the next requests fail (429 with ``Retry-After``, 5xx,
  or a dropped connection), for the retry tests.

``with InfluxDB3Server(directory, token) as server:`` starts it on a free port (``server.url``)
in a thread and stops it on exit.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections import deque
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa
from datafusion import SessionContext

from ..adapters.line_protocol import PRECISIONS, parse_lines
from ..adapters.timeseries_datafusion import DataFusionTimeseriesStore


class InfluxDB3Server:
    """The v3 write and query endpoints on 127.0.0.1, backed by DataFusion stores."""

    def __init__(self, directory: str | Path, token: str):
        self.directory = Path(directory)
        self.token = token
        self._stores: dict[tuple[str, str], DataFusionTimeseriesStore] = {}
        self._databases: set[str] = set()
        self._lock = threading.RLock()
        self._faults: deque[tuple[int | None, dict[str, str]]] = deque()
        #: (method, path, headers) of every request, for assertions
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> InfluxDB3Server:
        handler = type("Handler", (_Handler,), {"server_state": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="influxdb3-local", daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() the server first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        with self._lock:
            for store in self._stores.values():
                store.close()
            self._stores.clear()

    def __enter__(self) -> InfluxDB3Server:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- test controls --------------------------------------------------------------------

    def create_database(self, name: str) -> None:
        with self._lock:
            self._databases.add(name)

    def inject(self, status: int | None, times: int = 1, retry_after: str | None = None) -> None:
        """Fail the next ``times`` requests with ``status`` (None: drop the connection)."""
        headers = {"Retry-After": retry_after} if retry_after else {}
        with self._lock:
            self._faults.extend([(status, headers)] * times)

    def store(self, database: str, table: str) -> DataFusionTimeseriesStore:
        with self._lock:
            key = (database, table)
            if key not in self._stores:
                self._stores[key] = DataFusionTimeseriesStore(self.directory, database, table)
            return self._stores[key]

    # -- the endpoints --------------------------------------------------------------------

    def next_fault(self) -> tuple[int | None, dict[str, str]] | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def write(self, params: dict[str, str], body: bytes) -> tuple[int, dict[str, Any] | None]:
        database = params.get("db")
        if not database:
            return 400, {"error": "missing query parameter: db"}
        precision = params.get("precision", "auto")
        if precision != "auto" and precision not in PRECISIONS:
            return 400, {"error": f"invalid precision: {precision}"}
        accept_partial = params.get("accept_partial", "true").lower() != "false"
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return 400, {"error": "line protocol must be UTF-8"}
        points, errors = parse_lines(text, precision)
        if errors and not accept_partial:
            return 400, {"error": "parsing failed for write_lp endpoint", "data": errors}
        with self._lock:
            self._databases.add(database)
            by_table: dict[str, list[Any]] = {}
            for item in points:
                by_table.setdefault(item[2].measurement, []).append(item)
            for table, items in by_table.items():
                errors += self.store(database, table).write_points(items)
        if errors:
            errors.sort(key=lambda error: error["line_number"])
            return 400, {"error": "partial write of line protocol occurred", "data": errors}
        return 204, None

    def query(self, database: str | None, sql: str | None, output: str) -> tuple[int, Any]:
        if not database or not sql:
            return 400, {"error": "a query needs db and q"}
        if output not in ("json", "jsonl"):
            return 400, {"error": f"format {output!r}: this server answers json or jsonl"}
        with self._lock:
            if database not in self._databases:
                return 404, {"error": f"database not found: {database}"}
            context = SessionContext()
            for (db, table), store in self._stores.items():
                data = store.arrow_table() if db == database else None
                if data is not None:
                    context.register_record_batches(table, [data.to_batches()])
        try:
            result = context.sql(sql).to_arrow_table()
        except Exception as error:  # DataFusion's planning and execution errors
            return 400, {"error": f"query error: {error}"}
        return 200, _json_rows(result)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        text = value.astimezone(UTC).replace(tzinfo=None).isoformat()
        return text[:23] if "." in text else text
    return value


def _json_rows(table: pa.Table) -> list[dict[str, Any]]:
    columns = {}
    for field in table.schema:
        column = table.column(field.name)
        if pa.types.is_dictionary(field.type):
            column = column.cast(field.type.value_type)
        elif pa.types.is_timestamp(field.type):
            column = column.cast(pa.timestamp("us", tz="UTC"), safe=False)
        columns[field.name] = column.to_pylist()
    rows = []
    for index in range(table.num_rows):
        rows.append(
            {
                name: _json_value(values[index])
                for name, values in columns.items()
                if values[index] is not None
            }
        )
    return rows


class _Handler(BaseHTTPRequestHandler):
    server_state: InfluxDB3Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read server.requests
        return

    def _send(
        self, status: int, document: Any = None, headers: dict[str, str] | None = None, jsonl: bool = False
    ) -> None:
        if document is None:
            body = b""
        elif jsonl:
            body = "".join(json.dumps(row) + "\n" for row in document).encode()
        else:
            body = json.dumps(document).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body:
            self.send_header("Content-Type", "application/jsonl" if jsonl else "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        return body

    def _authorised(self) -> bool:
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        return scheme in ("Bearer", "Token") and token == self.server_state.token

    def _handle(self, method: str) -> None:
        state = self.server_state
        parts = urlsplit(self.path)
        params = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        state.requests.append((method, parts.path, dict(self.headers.items())))
        body = self._body()
        fault = state.next_fault()
        if fault is not None:
            status, headers = fault
            if status is None:  # a lost connection: no answer at all
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self._send(status, {"error": f"injected HTTP {status}"}, headers)
            return
        if not self._authorised():
            self._send(401, {"error": "the request was not authenticated"})
            return
        if parts.path == "/api/v3/write_lp" and method == "POST":
            self._send(*state.write(params, body))
            return
        if parts.path == "/api/v3/query_sql":
            if method == "POST":
                try:
                    request = json.loads(body or b"{}")
                except json.JSONDecodeError:
                    self._send(400, {"error": "the request body is not JSON"})
                    return
            else:
                request = params
            output = str(request.get("format") or "json")
            status, document = state.query(request.get("db"), request.get("q"), output)
            self._send(status, document, jsonl=status == 200 and output == "jsonl")
            return
        self._send(404, {"error": f"no endpoint {method} {parts.path}"})

    def do_POST(self) -> None:
        self._handle("POST")

    def do_GET(self) -> None:
        self._handle("GET")
