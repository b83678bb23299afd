"""``fraudlocal stats``: what the local stores hold, as JSON."""

from __future__ import annotations

import argparse
import json
import sys

from fraudcore import backends

from ..runtime import patched_environment
from .invoke import add_graph_options, target_from_args


def collect_stats(target) -> dict[str, object]:
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


def run(args: argparse.Namespace) -> int:
    json.dump(collect_stats(target_from_args(args)), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("stats", help="print what the local stores hold, as JSON")
    parser.add_argument("--json", action="store_true", help="JSON (what stats always prints)")
    add_graph_options(parser)
    parser.set_defaults(func=run)
