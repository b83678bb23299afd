"""``fraudlocal``: run the fraud-detection system on a laptop, on embedded stores.

Global options come before the subcommand: ``fraudlocal --state-dir DIR <command> ...``.
Every module of :mod:`fraudlocal.commands` with a ``register(subparsers)`` function adds
one subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from pathlib import Path

from . import commands
from .emulators.runtime import LOCAL_TIMESERIES, TIMESERIES_CHOICE_VARIABLE
from .errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fraudlocal",
        description="Run the fraud-detection functions, rules and investigations locally.",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".fraudlocal"),
        help="where the local stores keep their files (default: .fraudlocal)",
    )
    parser.add_argument(
        "--timeseries",
        choices=LOCAL_TIMESERIES,
        default=None,
        help="local time-series engine: duckdb (default; runs the Timestream SQL translated) or "
        "datafusion (Apache DataFusion, the engine of InfluxDB 3; runs the InfluxDB 3 SQL as it is)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="<command>")
    subparsers.required = True
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        register = getattr(module, "register", None)
        if callable(register):
            register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    saved = os.environ.get(TIMESERIES_CHOICE_VARIABLE)
    if args.timeseries:
        os.environ[TIMESERIES_CHOICE_VARIABLE] = args.timeseries
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except UserError as error:
        print(f"fraudlocal {args.command}: {error}", file=sys.stderr)
        return 2
    finally:
        if saved is None:
            os.environ.pop(TIMESERIES_CHOICE_VARIABLE, None)
        else:
            os.environ[TIMESERIES_CHOICE_VARIABLE] = saved


if __name__ == "__main__":
    sys.exit(main())
