"""Detection quality on randomized ("wide") worlds the rules were not written against; prints JSON.

Each seed generates a wide world (every pattern's parameters drawn from wide ranges, with
variants: see ``fraudlocal.scenario.wide``), runs the whole local pipeline on it (ingest,
the scheduled micro-analysis, every investigation through the state machine) and scores
the cases against the labels at account level.

The seeds are fixed and split in two, so that thresholds cannot be fitted to what is
reported:

- ``TUNING_SEEDS``: look at these while changing a rule, a threshold or a signal;
- ``EVALUATION_SEEDS``: run only to report; never change anything because of them.

Printed: per seed, account-level precision and recall, recall per pattern, per variant and
per role, the confounders detected and those inside ``fraud_ring`` cases; then the mean
and minimum of precision and recall, the minimum recall of each pattern across seeds, and
whether the targets hold (mean precision >= 0.95, mean recall >= 0.9, every pattern's
minimum recall >= 0.8, no confounder in a fraud_ring case).

Usage: python bench/quality.py [--set evaluation|tuning|all] [--accounts 300] [--days 1]
       [--seeds 1001,1002] [--every 5] [--jobs 2] [--keep DIR]

Each seed runs in its own process (``--jobs`` of them at once).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

#: 11-15 from the start; 16-20 added when 11-15 no longer showed a false positive; 21-40
#: added when 11-20 no longer did either: with them the tuning worlds hold families of four
#: and five on one card and phone, homes of four to six, offices of up to 14, VPN exits,
#: hub rings and takeovers abroad of accounts with little history; 41-60 added when 11-40
#: held no household inside a fraud_ring case (they hold five, and hub rings on a device)
TUNING_SEEDS = tuple(range(11, 61))
EVALUATION_SEEDS = (1001, 1002, 1003, 1004, 1005)
DEFAULT_ACCOUNTS = 300
DEFAULT_DAYS = 1
TARGETS = {"mean_precision": 0.95, "mean_recall": 0.9, "min_pattern_recall": 0.8}


def run_seed(seed: int, accounts: int, days: int, every: float, keep: str | None = None) -> dict:
    from fraudlocal.emulators.runtime import close_local_backends
    from fraudlocal.pipeline.ordering import order_records, ordering_mapping
    from fraudlocal.pipeline.run import Pipeline, PipelineConfig
    from fraudlocal.reporting.report import label_figures
    from fraudlocal.scenario import generate

    scenario = generate(accounts=accounts, days=days, seed=seed, variety="wide")
    lines = [(json.dumps(r, separators=(",", ":")).encode(), None) for r in scenario.iter_transactions()]
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as state:
        pipeline = Pipeline(PipelineConfig(state_dir=Path(state), every=timedelta(minutes=every)))
        pipeline.put_all(order_records(lines, ordering_mapping(None)))
        result = pipeline.finish()
        close_local_backends()
    figures = label_figures(result.cases, scenario.labels)
    if keep:  # the cases and flags of a tuning seed, to see why an account was missed
        out = Path(keep) / f"seed-{seed}"
        out.mkdir(parents=True, exist_ok=True)
        (out / "cases.json").write_text(
            json.dumps([c.to_dict() for c in result.cases], indent=1, default=str)
        )
        (out / "flags.json").write_text(json.dumps(result.flags, indent=1, default=str))
        scenario.write(out / "scenario")
    return {
        "seed": seed,
        "transactions": result.transactions,
        "fraud_accounts": figures["labelled_fraud_accounts"],
        "investigations": result.investigations,
        "cases": len(result.cases),
        "precision": figures["precision"],
        "recall": figures["recall"],
        "recall_by_pattern": figures["recall_by_pattern"],
        "recall_by_variant": figures["recall_by_variant"],
        "recall_by_role": figures["recall_by_role"],
        "missed": {p: m for p, m in figures["missed_by_pattern"].items() if m},
        "confounders_detected": figures["false_positives_by_confounder"],
        "unlabelled_detected": len(figures["false_positives_unlabelled"]),
        "confounders_in_fraud_ring_cases": figures["confounders_in_fraud_ring_cases"],
        "pipeline_seconds": result.elapsed.get("total"),
        "seconds_per_stage": {k: v for k, v in result.elapsed.items() if k != "total"},
    }


def aggregate(runs: list[dict]) -> dict:
    precisions = [r["precision"] or 0.0 for r in runs]
    recalls = [r["recall"] or 0.0 for r in runs]
    patterns = sorted({p for r in runs for p in r["recall_by_pattern"]})
    min_by_pattern = {
        p: min(r["recall_by_pattern"][p] for r in runs if r["recall_by_pattern"].get(p) is not None)
        for p in patterns
    }
    variants = sorted({v for r in runs for v in r["recall_by_variant"]})
    min_by_variant = {
        v: min(r["recall_by_variant"][v] for r in runs if r["recall_by_variant"].get(v) is not None)
        for v in variants
    }
    in_rings = sum(len(r["confounders_in_fraud_ring_cases"]) for r in runs)
    confounders: dict[str, int] = {}
    for run in runs:
        for pattern, count in run["confounders_detected"].items():
            confounders[pattern] = confounders.get(pattern, 0) + count
    summary = {
        "mean_precision": round(statistics.mean(precisions), 4),
        "min_precision": round(min(precisions), 4),
        "mean_recall": round(statistics.mean(recalls), 4),
        "min_recall": round(min(recalls), 4),
        "min_recall_by_pattern": min_by_pattern,
        "min_recall_by_variant": min_by_variant,
        "confounders_detected": dict(sorted(confounders.items())),
        "confounders_in_fraud_ring_cases": in_rings,
    }
    summary["targets_met"] = {
        "mean_precision": summary["mean_precision"] >= TARGETS["mean_precision"],
        "mean_recall": summary["mean_recall"] >= TARGETS["mean_recall"],
        "min_pattern_recall": all(v >= TARGETS["min_pattern_recall"] for v in min_by_pattern.values()),
        "no_confounder_in_fraud_ring_case": in_rings == 0,
    }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("evaluation", "tuning", "all"), default="evaluation")
    parser.add_argument("--seeds", help="comma-separated seeds instead of a fixed set")
    parser.add_argument(
        "--accounts",
        type=int,
        default=DEFAULT_ACCOUNTS,
        help="accounts per world (default 300, the least a wide world holds)",
    )
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help="days per world (default 1)")
    parser.add_argument("--every", type=float, default=5.0, help="minutes between scheduled runs (default 5)")
    parser.add_argument("--jobs", type=int, default=1, help="seeds run at once, each in its own process")
    parser.add_argument("--keep", help="write each seed's cases, flags and scenario under this folder")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: one seed in this process
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(run_seed(args.one, args.accounts, args.days, args.every, args.keep)))
        return
    if args.seeds:
        seeds = [int(s) for s in args.seeds.split(",")]
    else:
        seeds = {
            "tuning": list(TUNING_SEEDS),
            "evaluation": list(EVALUATION_SEEDS),
            "all": [*TUNING_SEEDS, *EVALUATION_SEEDS],
        }[args.set]

    def command(seed: int) -> list[str]:
        return [
            sys.executable,
            __file__,
            "--one",
            str(seed),
            "--accounts",
            str(args.accounts),
            "--days",
            str(args.days),
            "--every",
            str(args.every),
            *(["--keep", args.keep] if args.keep else []),
        ]

    def run(seed: int) -> dict:
        completed = subprocess.run(command(seed), capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            raise SystemExit(f"seed {seed} failed:\n{completed.stderr}")
        found = json.loads(completed.stdout.strip().splitlines()[-1])
        print(f"seed {seed}: precision {found['precision']} recall {found['recall']}", file=sys.stderr)
        return found

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        runs = list(pool.map(run, seeds))
    report = {
        "world": {
            "variety": "wide",
            "accounts": args.accounts,
            "days": args.days,
            "every_minutes": args.every,
        },
        "seed_set": "custom" if args.seeds else args.set,
        "seeds": seeds,
        "targets": TARGETS,
        "runs": runs,
        "summary": aggregate(runs),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
