"""``fraudlocal rules``: every window rule, its rationale, and its SQL in each engine's dialect.

Rules reading the history of the same entity are sent as one query by a scheduled run
(:func:`fraudcore.timeseries.rule_sql.compile_history_lanes`); the listing shows that shared
query too, with the rules it serves, since it is what runs (each rule's own SQL runs only
when the shared query fails, and for a re-look). Rules with ``every`` are queried at the
runs of their cadence only, each query answering for the runs since the last (one lane per
rule and run): the shared query is shown as the first such run from ``--at`` sends it, at
the configured schedule (``MICRO_SCHEDULE_INTERVAL``).
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from fraudcore.micro import parse_time, schedule_interval
from fraudcore.rules import RuleError, load_rules
from fraudcore.settings import ConfigurationError, Settings
from fraudcore.timeseries.dialects import INFLUXDB3
from fraudcore.timeseries.rule_sql import (
    cadence_lanes,
    compile_lanes,
    compile_rule,
    floor_to,
    history_groups,
)
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
        "Apache DataFusion), all compiled from the same rule definition; and the one query a scheduled run sends instead for "
        "rules reading the history of the same entity, with the rules it serves.",
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
    database, table = settings.timestream_database, settings.timestream_table
    shown = DIALECT_KEYS if args.dialect == "all" else {args.dialect: DIALECT_KEYS[args.dialect]}

    def dialects(timestream: str, influxdb3: str) -> dict[str, str]:
        sql = {"timestream_sql": timestream, "duckdb_sql": to_duckdb(timestream), "influxdb3_sql": influxdb3}
        return {key: sql[key] for key, _ in shown.values()}

    shared = []
    sent_with: dict[str, str] = {}
    try:
        schedule = schedule_interval(settings.micro_schedule_interval)
        for rule in rules:
            rule.runs_per_query(schedule)
    except (RuleError, ValueError) as error:
        raise UserError(str(error)) from None
    for group in history_groups(rules):
        # the query as the first run from --at that sends it (with every: a run of its cadence)
        every = max((rule.every for rule in group if rule.every), default=None)
        sent_at = at if every is None or floor_to(at, every) == at else floor_to(at, every) + every
        lanes = cadence_lanes(group, sent_at, schedule) or cadence_lanes(group, at, None)
        name = " + ".join(rule.id for rule in group)
        sent_with.update(dict.fromkeys((rule.id for rule in group), name))
        shared.append(
            {
                "rules": [rule.id for rule in group],
                "evaluation_time": iso_z(sent_at),
                "lanes": [{"rule": lane.rule.id, "run": iso_z(lane.run)} for lane in lanes],
                **dialects(
                    compile_lanes(lanes, database, table),
                    compile_lanes(lanes, database, table, dialect=INFLUXDB3),
                ),
            }
        )
    listing = []
    for rule in rules:
        sql = dialects(
            compile_rule(rule, database, table, at),
            compile_rule(rule, database, table, at, dialect=INFLUXDB3),
        )
        item = {**rule.to_dict(), **sql}
        if rule.id in sent_with:
            item["scheduled_with"] = sent_with[rule.id]
        listing.append(item)
    if args.json:
        print(
            json.dumps({"evaluation_time": iso_z(at), "rules": listing, "shared_queries": shared}, indent=2)
        )
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
        if "scheduled_with" in item:
            print(
                f"   A scheduled run sends the shared query of {item['scheduled_with']} (below) for this "
                "rule; the SQL here runs only if that query fails."
            )
        if item.get("relook_after"):
            print(
                f"   Its hits are looked at again {item['relook_after']} later: each scheduled run also "
                f"sends this SQL as the run {item['relook_after']} before it did."
            )
        for key, heading in DIALECT_KEYS.values():
            if key in item:
                print(f"-- {heading}")
                print(item[key])
    for query in shared:
        lanes = ", ".join(f"{lane['rule']} at {lane['run']}" for lane in query["lanes"])
        print(
            f"\n== shared query: {' + '.join(query['rules'])}: one read of the history for these rules, "
            f"as the run at {query['evaluation_time']} sends it; lanes (lane = place in this list): {lanes}"
        )
        for key, heading in DIALECT_KEYS.values():
            if key in query:
                print(f"-- {heading}")
                print(query[key])
    return 0
