"""``fraudlocal serve [--port N]``: the case queue and case pages in a browser, on 127.0.0.1.

The same stores as ``fraudlocal cases`` (the state dir's, or its latest run's); a
decision taken in the page is the one ``cases show`` prints. Stop it with Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys

from ..casedesk import CaseDesk
from ..errors import UserError
from .invoke import add_graph_options, target_from_args

HOST = "127.0.0.1"


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ..web.app import create_app

    if not 0 < args.port < 65536:
        raise UserError(f"--port {args.port}: expected a TCP port, 1-65535")
    target = target_from_args(args)
    app = create_app(CaseDesk(target))
    print(
        f"serving the cases of {target.state_dir} on http://{HOST}:{args.port}/ (Ctrl-C stops)",
        file=sys.stderr,
    )
    try:
        uvicorn.run(app, host=HOST, port=args.port, log_level="info" if args.verbose else "warning")
    except OSError as error:
        raise UserError(f"cannot listen on {HOST}:{args.port} ({error}); give another --port") from None
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="the analyst's workstation in a browser: case queue, case pages, decisions",
        description="Serve the case queue (filters, sorting, search, CSV export) and case pages (graph, "
        "transaction timeline, reasons, decisions) on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=8400, help="TCP port on 127.0.0.1 (default 8400)")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    add_graph_options(parser)
    parser.set_defaults(func=run)
