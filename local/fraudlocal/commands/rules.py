"""``fraudlocal rules``: every window rule, its rationale, its Timestream SQL and its DuckDB SQL."""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from fraudcore.micro import parse_time
from fraudcore.rules import RuleError, load_rules
from fraudcore.settings import ConfigurationError, Settings
from fraudcore.timeseries.rule_sql import compile_rule, floor_to
from fraudcore.timeutil import iso_z

from ..errors import UserError
from ..timestream_sql import to_duckdb


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rules",
        help="list the window rules with their Timestream and DuckDB SQL",
        description="List every micro-analysis rule: rationale, thresholds, and the SQL one scheduled "
        "evaluation runs (Timestream SQL, and the DuckDB SQL derived from it).",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--rules", type=Path, help="a rules file, or an overrides file, instead of the shipped rules"
    )
    parser.add_argument(
        "--at",
        help="evaluation time of the SQL shown (ISO 8601; default: now, on the 5-minute grid)",
    )
    parser.set_defaults(func=run)


def _evaluation_time(text: str | None) -> datetime:
    if text:
        try:
            return parse_time(text)
        except ValueError as error:
            raise UserError(f"--at: {error}") from None
    from datetime import timedelta

    return floor_to(datetime.now(tz=UTC), timedelta(minutes=5))


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        rules = load_rules(args.rules, override=settings.rules_override)
    except (RuleError, ConfigurationError) as error:
        raise UserError(str(error)) from None
    at = _evaluation_time(args.at)
    listing = []
    for rule in rules:
        timestream = compile_rule(rule, settings.timestream_database, settings.timestream_table, at)
        listing.append({**rule.to_dict(), "timestream_sql": timestream, "duckdb_sql": to_duckdb(timestream)})
    if args.json:
        print(json.dumps({"evaluation_time": iso_z(at), "rules": listing}, indent=2))
        return 0
    override = os.environ.get("RULES_OVERRIDE")
    print(
        f"{len(listing)} rules, SQL for an evaluation at {iso_z(at)}"
        + (f" (overrides: {override})" if override else "")
    )
    for item in listing:
        state = "" if item["enabled"] else "  [disabled]"
        print(
            f"\n== {item['id']}{state}: {item['entity']} {item['aggregate']} {item['op']} {item['threshold']:g} "
            f"in {item['window']} (hop {item['hop']}), severity {item['severity']}, cooldown {item['cooldown']}"
        )
        print(f"   {item['rationale']}")
        print("-- Timestream SQL")
        print(item["timestream_sql"])
        print("-- DuckDB SQL")
        print(item["duckdb_sql"])
    return 0
