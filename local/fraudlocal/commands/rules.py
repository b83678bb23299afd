"""``fraudlocal rules``: every window rule, its rationale, and its SQL in each engine's dialect."""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from fraudcore.micro import parse_time
from fraudcore.rules import RuleError, load_rules
from fraudcore.settings import ConfigurationError, Settings
from fraudcore.timeseries.dialects import INFLUXDB3
from fraudcore.timeseries.rule_sql import compile_rule, floor_to
from fraudcore.timeutil import iso_z
from fraudlocal.adapters.timestream_sql import to_duckdb

from ..errors import UserError

#: --dialect value -> the key of that SQL in the listing, and its heading
DIALECT_KEYS = {
    "timestream": ("timestream_sql", "Timestream SQL"),
    "duckdb": ("duckdb_sql", "DuckDB SQL"),
    "influxdb3": ("influxdb3_sql", "InfluxDB 3 SQL"),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rules",
        help="list the window rules with their SQL (Timestream, DuckDB, InfluxDB 3)",
        description="List every micro-analysis rule: rationale, thresholds, and the SQL one scheduled "
        "evaluation runs: Timestream SQL, the DuckDB SQL derived from it, and InfluxDB 3 SQL (run by "
        "Apache DataFusion), all compiled from the same rule definition.",
    )
    parser.add_argument(
        "--dialect",
        choices=(*DIALECT_KEYS, "all"),
        default="all",
        help="the SQL to print (default: all)",
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
        influxdb3 = compile_rule(
            rule, settings.timestream_database, settings.timestream_table, at, dialect=INFLUXDB3
        )
        sql = {"timestream_sql": timestream, "duckdb_sql": to_duckdb(timestream), "influxdb3_sql": influxdb3}
        shown = DIALECT_KEYS if args.dialect == "all" else {args.dialect: DIALECT_KEYS[args.dialect]}
        listing.append({**rule.to_dict(), **{key: sql[key] for key, _ in shown.values()}})
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
        for key, heading in DIALECT_KEYS.values():
            if key in item:
                print(f"-- {heading}")
                print(item[key])
    return 0
