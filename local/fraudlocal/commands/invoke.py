"""``fraudlocal invoke <LogicalId> --event FILE``: what ``sam local invoke`` does, without Docker."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import UserError
from ..runtime import LocalTarget, close_local_backends, invoke_function
from ..state_dir import resolve


def add_graph_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--graph",
        choices=("embedded", "gremlin-server"),
        default="embedded",
        help="graph backend: the embedded engine (default) or a TinkerPop Gremlin Server",
    )
    parser.add_argument(
        "--graph-endpoint",
        default=None,
        help="Gremlin Server URL for --graph gremlin-server (default ws://127.0.0.1:8182/gremlin)",
    )


def target_from_args(args: argparse.Namespace) -> LocalTarget:
    """The stores a command reads: the state dir's, or its latest pipeline run's."""
    return LocalTarget(
        state_dir=resolve(args.state_dir),
        graph_backend=getattr(args, "graph", "embedded"),
        graph_endpoint=getattr(args, "graph_endpoint", None),
    )


def read_json_file(path: Path, what: str) -> object:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{what} {path}: no such file") from None
    except json.JSONDecodeError as error:
        raise UserError(f"{what} {path}: not valid JSON ({error})") from None


def run(args: argparse.Namespace) -> int:
    event = read_json_file(args.event, "event file") if args.event else {}
    try:
        response = invoke_function(args.logical_id, event, target_from_args(args))
    except UserError:
        raise
    except Exception as error:  # what Lambda reports as errorType / errorMessage
        raise UserError(
            f"{args.logical_id} failed: {type(error).__name__}: {error} "
            "(on AWS the invocation returns this as errorType and errorMessage)"
        ) from None
    finally:
        close_local_backends()
    json.dump(response, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "invoke",
        help="run one function's handler in-process against the local stores",
        description="Run a function's real handler in-process, with the environment template.yaml "
        "gives it and the local stores, and print its JSON response.",
    )
    parser.add_argument(
        "logical_id", help="the function's logical id in template.yaml, e.g. IngestGraphFunction"
    )
    parser.add_argument("--event", "-e", type=Path, help="the event JSON file (see events/)")
    add_graph_options(parser)
    parser.set_defaults(func=run)
