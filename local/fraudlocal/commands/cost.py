"""``fraudlocal cost --tps N [--schedule 5m] [--engine liveanalytics|influxdb3] [--json]``.

The monthly AWS bill at a mean rate of transactions, per component, from the code's own
figures (record sizes, each rule's compiled query) and the dated prices and assumptions of
``fraudlocal/cost/prices.yaml``. ``--write-docs FILE`` regenerates the cost tables of the
deployment guide between their markers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fraudcore.rules import RuleError, parse_duration

from ..cost import CostError, estimate, render_text
from ..cost.docs import update_document
from ..errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cost",
        help="estimate the monthly AWS bill at a rate of transactions",
        description="Estimate the monthly AWS bill per component at a mean rate of transactions per "
        "second, from measured record sizes, the rules' compiled queries and dated list prices.",
    )
    parser.add_argument("--tps", type=float, help="mean transactions per second (e.g. 100)")
    parser.add_argument("--schedule", default="5m", help="time between scheduled rule runs (default 5m)")
    parser.add_argument(
        "--engine",
        choices=("liveanalytics", "influxdb3"),
        default="liveanalytics",
        help="time-series engine (default liveanalytics: Timestream for LiveAnalytics)",
    )
    parser.add_argument(
        "--query-pricing",
        choices=("bytes", "tcu"),
        default="bytes",
        help="how Timestream for LiveAnalytics bills queries: per GB scanned (default) or per TCU-hour "
        "(the default for AWS accounts onboarded after 2024-04-29)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--write-docs",
        type=Path,
        metavar="FILE",
        help="regenerate the cost tables between the cost-table markers of FILE (docs/deploy.md)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.write_docs is not None:
        try:
            changed = update_document(args.write_docs)
        except (OSError, CostError) as error:
            raise UserError(f"--write-docs {args.write_docs}: {error}") from None
        print(f"{args.write_docs}: {'updated' if changed else 'already up to date'}", file=sys.stderr)
        return 0
    if args.tps is None:
        raise UserError("--tps is needed (mean transactions per second, e.g. --tps 100)")
    try:
        schedule = parse_duration(args.schedule, "--schedule")
        result = estimate(args.tps, schedule, args.engine, query_pricing=args.query_pricing)
    except (RuleError, CostError) as error:
        raise UserError(str(error)) from None
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render_text(result))
    return 0
