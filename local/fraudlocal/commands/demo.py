"""``fraudlocal demo [--accounts N] [--days D] [--seed S] [--out DIR]``: generate, then run.

Generates a synthetic scenario with ground truth (``<out>/scenario/``), then replays it
through the whole local pipeline exactly as ``fraudlocal replay
<out>/scenario/transactions.jsonl --labels <out>/scenario/labels.jsonl`` does, so the
two give the same flags, cases and figures. Each run starts from an empty
``<state-dir>/demo`` (only what the local stores create there is removed).
"""

from __future__ import annotations

import argparse
import sys
import time

from ..errors import UserError
from ..pipeline.ordering import ordering_mapping, read_jsonl
from ..pipeline.run import RunRequest, run_to_outputs
from ..scenario import generate
from ..state_dir import fresh_state_dir
from .generate import add_scenario_options
from .replay import add_run_options, config_from_args, read_labels, run_state_dir


def run(args: argparse.Namespace) -> int:
    began = time.perf_counter()
    try:
        scenario = generate(
            accounts=args.accounts, days=args.days, seed=args.seed, start=args.start, variety=args.variety
        )
    except ValueError as error:
        raise UserError(f"--{error}") from None
    paths = scenario.write(args.out / "scenario")
    if not args.quiet:
        summary = scenario.summary()
        print(
            f"scenario: {summary['transactions']:,} transactions, {summary['accounts']:,} accounts, "
            f"{summary['fraud_accounts']} fraudulent, {summary['confounder_accounts']} confounders "
            f"({time.perf_counter() - began:.1f} s) -> {paths['transactions'].parent}",
            file=sys.stderr,
        )
    # The demo reads back the files it wrote, so that a replay of them is the same run.
    records = read_jsonl(paths["transactions"], ordering_mapping(None))
    state_dir = fresh_state_dir(run_state_dir(args, "demo"))
    request = RunRequest(
        config=config_from_args(args, state_dir, None),
        out_dir=args.out,
        source={
            "kind": "demo",
            "path": str(paths["transactions"]),
            "labels": str(paths["labels"]),
            "accounts": args.accounts,
            "days": args.days,
            "seed": args.seed,
            "variety": args.variety,
        },
        labels=read_labels(paths["labels"]),
        total=len(records),
        progress=not args.quiet,
        print_table=not args.quiet,
    )
    run_to_outputs(request, records)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="generate a scenario with ground truth and run it through the whole local pipeline",
        description="Generate ordinary customers, confounders and planted fraud, then run ingest, the "
        "scheduled micro-analysis and the investigations on the embedded stores (in <state-dir>/demo, "
        "emptied first). Prints the figures; writes summary.json, flags.json, cases.json, "
        "rejected.jsonl and report.html to --out.",
    )
    add_scenario_options(parser)
    add_run_options(parser)
    parser.set_defaults(func=run)
