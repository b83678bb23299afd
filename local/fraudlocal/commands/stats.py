"""``fraudlocal stats``: what the local stores hold, as JSON."""

from __future__ import annotations

import argparse
import json
import sys

from ..emulators.runtime import store_stats
from .invoke import add_graph_options, target_from_args


def run(args: argparse.Namespace) -> int:
    json.dump(store_stats(target_from_args(args)), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("stats", help="print what the local stores hold, as JSON")
    parser.add_argument("--json", action="store_true", help="JSON (what stats always prints)")
    add_graph_options(parser)
    parser.set_defaults(func=run)
