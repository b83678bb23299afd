"""``fraudlocal generate``: write a synthetic scenario (transactions and ground-truth labels)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..errors import UserError
from ..scenario import (
    DEFAULT_ACCOUNTS,
    DEFAULT_DAYS,
    DEFAULT_SEED,
    DEFAULT_START,
    PATTERNS,
    VARIETIES,
    generate,
)


def _summary_table(summary: dict) -> str:
    rows = [f"{'pattern':<18} {'label':<11} {'groups':>6} {'accounts':>8}"]
    for pattern in PATTERNS:
        entry = summary["patterns"][pattern]
        rows.append(f"{pattern:<18} {entry['label']:<11} {entry['groups']:>6} {entry['accounts']:>8}")
    rows.append(
        f"{summary['transactions']} transactions, {summary['accounts']} accounts, "
        f"{summary['fraud_accounts']} fraudulent ({summary['fraud_share']:.1%}), "
        f"{summary['confounder_accounts']} confounders"
    )
    return "\n".join(rows)


def run(args: argparse.Namespace) -> int:
    began = time.perf_counter()
    try:
        scenario = generate(
            accounts=args.accounts, days=args.days, seed=args.seed, start=args.start, variety=args.variety
        )
    except ValueError as error:
        raise UserError(f"--{error}") from None
    generated = time.perf_counter() - began
    try:
        paths = scenario.write(args.out)
    except OSError as error:
        raise UserError(f"cannot write the scenario to {args.out}: {error.strerror or error}") from None
    print(_summary_table(scenario.summary()))
    print(
        f"generated in {generated:.2f} s, written in {time.perf_counter() - began - generated:.2f} s: "
        + ", ".join(str(path) for path in paths.values()),
        file=sys.stderr,
    )
    return 0


def add_scenario_options(parser: argparse.ArgumentParser) -> None:
    """The options that define a scenario (shared with ``fraudlocal demo``)."""
    parser.add_argument(
        "--accounts", type=int, default=DEFAULT_ACCOUNTS, help=f"accounts (default {DEFAULT_ACCOUNTS})"
    )
    parser.add_argument(
        "--days", type=int, default=DEFAULT_DAYS, help=f"days of activity (default {DEFAULT_DAYS})"
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})"
    )
    parser.add_argument(
        "--variety",
        choices=VARIETIES,
        default=VARIETIES[0],
        help="classic: the fixed pattern shapes; wide: every pattern's parameters drawn from wide "
        "ranges, with variants (default classic)",
    )
    parser.add_argument(
        "--start", default=DEFAULT_START, help=f"start of the period, ISO 8601 UTC (default {DEFAULT_START})"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="write a synthetic scenario: transactions.jsonl and labels.jsonl (ground truth)",
        description="Generate ordinary customers, confounders and planted fraud, deterministically by seed.",
    )
    add_scenario_options(parser)
    parser.add_argument(
        "--out", type=Path, default=Path("scenario"), help="output directory (default ./scenario)"
    )
    parser.set_defaults(func=run)
