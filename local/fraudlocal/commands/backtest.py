"""``fraudlocal backtest``: replay recorded transactions through the window rules."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fraudcore.mapping import MappingError, load_mapping
from fraudcore.rules import RuleError, load_rules, parse_duration
from fraudcore.settings import ConfigurationError, Settings

from ..backtest import BacktestError, run_backtest
from ..errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "backtest",
        help="evaluate the rules at every schedule tick over recorded transactions",
        description="Load transactions into a scratch store, evaluate every rule at every schedule tick "
        "over the data's time span, and report flags per rule (and true/false positives given labels). "
        "Labels: JSON lines or CSV with account_id, pattern (or label), ring_id; a non-empty pattern "
        "other than legit/none marks a fraudulent account.",
    )
    parser.add_argument("--data", type=Path, required=True, help="transactions, one JSON object per line")
    parser.add_argument("--mapping", help="field mapping of the data (a shipped name or a file)")
    parser.add_argument(
        "--labels", type=Path, help="ground truth: account_id,pattern,ring_id (CSV or JSON lines)"
    )
    parser.add_argument(
        "--rules", type=Path, help="a rules file, or an overrides file {rule_id: {threshold: N}}"
    )
    parser.add_argument("--every", default="5m", help="schedule interval (default 5m)")
    parser.add_argument(
        "--per-tick",
        action="store_true",
        help="run every rule at every tick (the scheduled path) instead of once",
    )
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        every = parse_duration(args.every, "--every")
        rules = load_rules(args.rules, override=settings.rules_override)
        mapping = load_mapping(args.mapping)
        report = run_backtest(
            args.data,
            rules,
            mapping=mapping,
            labels=args.labels,
            every=every,
            per_tick=args.per_tick,
            database=settings.timestream_database,
            table=settings.timestream_table,
        )
    except (RuleError, MappingError, BacktestError, ConfigurationError) as error:
        raise UserError(str(error)) from None
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    _print_text(report)
    return 0


def _print_text(report: dict) -> None:
    data = report["data"]
    print(
        f"{data['transactions']} transactions from {data['first_event']} to {data['last_event']} "
        f"({data['rejected']} rejected), {report['ticks']} ticks every {report['every']}, mode {report['mode']}"
    )
    labelled = "labels" in report
    header = f"{'rule':<22}{'flags':>7}{'entities':>10}"
    if labelled:
        header += f"{'TP':>6}{'FP':>6}{'precision':>11}{'fraud acc':>11}{'legit acc':>11}"
    print(header)
    for rule_id, entry in report["rules"].items():
        line = f"{rule_id:<22}{entry['flags']:>7}{entry['entities']:>10}"
        if labelled:
            precision = "-" if entry["precision"] is None else f"{entry['precision']:.2f}"
            line += (
                f"{entry['true_positives']:>6}{entry['false_positives']:>6}{precision:>11}"
                f"{entry['fraud_accounts']:>11}{entry['legit_accounts']:>11}"
            )
        if not entry["enabled"]:
            line += "  (disabled)"
        if rule_id in report.get("rule_errors", {}):
            line += f"  (failed: {report['rule_errors'][rule_id]})"
        print(line)
    if labelled:
        labels = report["labels"]
        print(
            f"fraudulent accounts: {labels['fraud_accounts']}, flagged directly: "
            f"{labels['fraud_accounts_flagged_directly']}"
        )
