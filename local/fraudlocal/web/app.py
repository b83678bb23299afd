"""The analyst's workstation in a browser: the case queue, a case page, decisions.

A Starlette app over :class:`fraudlocal.casedesk.CaseDesk`, so a decision taken in the
page is the same write as ``fraudlocal cases label``. Everything the page loads is
served from the project's own files: the page, its script and style from
``web/static/``, and the graph library (Cytoscape.js, from the npm install) from
``node_modules``; nothing comes from a CDN.

JSON API:

=========================================  ==================================================
``GET /api/cases?status=&verdict=&q=``      the queue, highest risk first
``GET /api/cases.csv?...``                  the same queue as CSV (export)
``GET /api/cases/{case_id}``                a case: members, reasons, graph, transactions
``POST /api/cases/{case_id}/decisions``     ``{"action": "fraud"|"legit"|"note"|"close",
                                            "by": NAME, "note": TEXT}`` -> the updated case
``GET /api/labels.jsonl``                   the decisions as a labels file (backtest --labels)
=========================================  ==================================================
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from fraudcore.investigation import casework

from ..casedesk import CaseDesk
from ..errors import UserError
from ..runtime import REPO_ROOT

STATIC = Path(__file__).parent / "static"
CYTOSCAPE = REPO_ROOT / "node_modules" / "cytoscape" / "dist" / "cytoscape.min.js"


class MissingAsset(UserError):
    """A file the page needs is not installed."""


def check_assets(cytoscape: Path = CYTOSCAPE) -> None:
    if not cytoscape.is_file():
        raise MissingAsset(
            f"{cytoscape} is missing (the graph library of the case page); run `make node_modules/.installed`"
        )


def _error(error: Exception, status: int) -> JSONResponse:
    return JSONResponse({"error": str(error)}, status_code=status)


def create_app(desk: CaseDesk, cytoscape: Path = CYTOSCAPE) -> Starlette:
    check_assets(cytoscape)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    async def cytoscape_js(request: Request) -> Response:
        return FileResponse(cytoscape, media_type="text/javascript")

    def _queue(request: Request) -> list[dict[str, Any]]:
        params = request.query_params
        return desk.queue(
            status=params.get("status") or None,
            verdict=params.get("verdict") or None,
            search=params.get("q") or None,
        )

    async def queue(request: Request) -> Response:
        try:
            return JSONResponse(await run_in_threadpool(_queue, request))
        except UserError as error:
            return _error(error, 400)

    async def queue_csv(request: Request) -> Response:
        try:
            rows = await run_in_threadpool(_queue, request)
        except UserError as error:
            return PlainTextResponse(str(error), status_code=400)
        out = io.StringIO()
        columns = ["case_id", "verdict", "score", "status", "member_count", "amount_at_stake"]
        columns += ["opened_at", "updated_at", "related_cases", "superseded_by", "last_rule"]
        writer = csv.writer(out)
        writer.writerow(columns)
        for row in rows:
            stake = "; ".join(
                f"{amount:.2f} {currency}" for currency, amount in row["amount_at_stake"].items()
            )
            values = {**row, "amount_at_stake": stake, "related_cases": " ".join(row["related_cases"])}
            writer.writerow(["" if values[c] is None else values[c] for c in columns])
        return Response(
            out.getvalue(),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="cases.csv"'},
        )

    async def case(request: Request) -> Response:
        try:
            return JSONResponse(await run_in_threadpool(desk.case, request.path_params["case_id"]))
        except UserError as error:
            return _error(error, 404 if "does not exist" in str(error) else 400)

    async def decide(request: Request) -> Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error(ValueError("expected a JSON body {action, by, note}"), 400)
        if not isinstance(body, dict) or body.get("action") not in casework.ACTIONS:
            return _error(ValueError(f"action: expected one of {', '.join(casework.ACTIONS)}"), 400)
        try:
            updated = await run_in_threadpool(
                desk.decide,
                request.path_params["case_id"],
                body["action"],
                str(body.get("by") or ""),
                body.get("note"),
            )
        except UserError as error:
            return _error(error, 404 if "does not exist" in str(error) else 409)
        return JSONResponse(updated)

    async def labels(request: Request) -> Response:
        def export() -> str:
            rows = desk.labels()
            return "".join(json.dumps(row) + "\n" for row in rows)

        return Response(
            await run_in_threadpool(export),
            media_type="application/x-ndjson",
            headers={"Content-Disposition": 'attachment; filename="labels.jsonl"'},
        )

    routes = [
        Route("/", index),
        Route("/vendor/cytoscape.min.js", cytoscape_js),
        Route("/api/cases", queue),
        Route("/api/cases.csv", queue_csv),
        Route("/api/labels.jsonl", labels),
        Route("/api/cases/{case_id}", case),
        Route("/api/cases/{case_id}/decisions", decide, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes)
