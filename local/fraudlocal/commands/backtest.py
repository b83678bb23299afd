"""``fraudlocal backtest``: replay recorded transactions through the window rules."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from fraudcore.mapping import MappingError, load_mapping
from fraudcore.rules import RuleError, load_rules, parse_duration
from fraudcore.settings import ConfigurationError, Settings

from ..backtest import BacktestError, compare, run_backtest
from ..errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "backtest",
        help="evaluate the rules at every schedule tick over recorded transactions",
        description="Load transactions into a scratch store, evaluate every rule at every schedule tick "
        "over the data's time span, and report flags per rule (and true/false positives given labels). "
        "Labels: JSON lines or CSV with account_id, label (fraud, legit or confounder) and/or pattern, "
        "ring_id; the scenario's labels.jsonl and `cases export-labels` files work as they are. "
        "Confounders and unlabelled accounts count as legitimate.",
    )
    parser.add_argument("--data", type=Path, required=True, help="transactions, one JSON object per line")
    parser.add_argument("--mapping", help="field mapping of the data (a shipped name or a file)")
    parser.add_argument(
        "--labels", type=Path, help="ground truth: account_id,pattern,ring_id (CSV or JSON lines)"
    )
    parser.add_argument(
        "--rules",
        type=Path,
        help="CANDIDATE rules (a rules file, or overrides {rule_id: {threshold: N}}): backtest them as well "
        "and print what they change against the current rules, account by account",
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
        mapping = load_mapping(args.mapping)

        def backtest(rules_file: Path | None) -> dict[str, Any]:
            return run_backtest(
                args.data,
                load_rules(rules_file, override=settings.rules_override),
                mapping=mapping,
                labels=args.labels,
                every=every,
                per_tick=args.per_tick,
                database=settings.timestream_database,
                table=settings.timestream_table,
            )

        report = backtest(None)
        if args.rules is not None:
            candidate = backtest(args.rules)
            report = {
                "current": report,
                "candidate": candidate,
                "candidate_rules": str(args.rules),
                "difference": compare(report, candidate) if args.labels else None,
            }
    except (RuleError, MappingError, BacktestError, ConfigurationError) as error:
        raise UserError(str(error)) from None
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    if args.rules is None:
        _print_text(report)
        return 0
    print("current rules:")
    _print_text(report["current"])
    print(f"\ncandidate rules ({args.rules}):")
    _print_text(report["candidate"])
    print()
    _print_difference(report["difference"])
    return 0


def _names(accounts: list[str], limit: int = 8) -> str:
    shown = ", ".join(accounts[:limit])
    return shown + (f" and {len(accounts) - limit} more" if len(accounts) > limit else "")


def _print_difference(difference: dict[str, Any] | None) -> None:
    if difference is None:
        print("no labels (--labels): the accounts gained and lost cannot be told fraud or legit")
        return
    if not difference["rules"]:
        print("the candidate rules flag the same accounts as the current ones")
        return
    print("difference (candidate against current), by account:")
    for rule_id, change in difference["rules"].items():
        threshold = change["threshold"]
        print(f"  {rule_id}: threshold {threshold['current']} -> {threshold['candidate']}")
        for key, what in (
            ("fraud_gained", "fraud gained"),
            ("fraud_lost", "fraud lost"),
            ("legit_gained", "legit gained"),
            ("legit_lost", "legit lost"),
        ):
            accounts = change[key]
            print(f"    {what:<13} {len(accounts):>4}  {_names(accounts)}".rstrip())
    total = difference["all_rules"]
    print(
        "  all rules: fraud {} gained, {} lost; legit {} gained, {} lost".format(
            *(len(total[k]) for k in ("fraud_gained", "fraud_lost", "legit_gained", "legit_lost"))
        )
    )


def _print_text(report: dict) -> None:
    data = report["data"]
    print(
        f"{data['transactions']} transactions from {data['first_event']} to {data['last_event']} "
        f"({data['rejected']} rejected), {report['ticks']} ticks every {report['every']}, mode {report['mode']}"
    )
    labelled = "labels" in report
    header = f"{'rule':<24}{'flags':>7}{'entities':>10}"
    if labelled:
        header += f"{'fraud acc':>11}{'legit acc':>11}{'precision':>11}{'recall':>8}"
    print(header)
    for rule_id, entry in report["rules"].items():
        line = f"{rule_id:<24}{entry['flags']:>7}{entry['entities']:>10}"
        if labelled:
            precision = "-" if entry["precision"] is None else f"{entry['precision']:.2f}"
            recall = "-" if entry["recall"] is None else f"{entry['recall']:.2f}"
            line += f"{entry['fraud_accounts']:>11}{entry['legit_accounts']:>11}{precision:>11}{recall:>8}"
        if not entry["enabled"]:
            line += "  (disabled)"
        if rule_id in report.get("rule_errors", {}):
            line += f"  (failed: {report['rule_errors'][rule_id]})"
        print(line)
    if labelled:
        labels = report["labels"]
        missed = labels["fraud_not_caught"]
        print(
            f"fraudulent accounts: {labels['fraud_accounts']}, caught by some rule: "
            f"{labels['fraud_accounts_caught']}, caught by no rule: {len(missed)}"
            + (f" ({_names(missed)})" if missed else "")
        )
