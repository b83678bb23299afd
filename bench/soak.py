"""Soak the local pipeline with a long stream of generated transactions; prints JSON.

The transactions are generated as they are put on the stream (nothing holds the whole
input): a fixed population of accounts with their cards, devices, IPs, emails and phones,
paying merchants and each other in event-time order, with a share of invalid records
(negative amounts, missing fields, odd dates, not JSON). They go through the whole local
pipeline: both ingest functions through the Kinesis mapping emulator (which drops what
both mappings have read), the scheduled micro-analysis every 5 minutes of event time, and
the investigations it starts.

At each checkpoint (``--checkpoints``, default 100,000 and 1,000,000 records) it reports
the records put so far, the stores' counts and the peak resident memory of the process so
far (``ru_maxrss``). Memory is bounded when it grows with the population (accounts and
their identifiers: the graph's entities) and not with the number of transactions: the
report states the bound it checks, ``peak RSS at the last checkpoint <= 1.5 x peak RSS at
the first``.

Then the same stream is replayed in full (a redelivery of everything) into the same
stores: the store counts must not change and no case may be opened twice.

Usage: python bench/soak.py [--checkpoints 100000,1000000] [--accounts 20000]
                            [--invalid-share 0.01] [--seed 5] [--no-replay]
                            [--span-records 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# The handlers' EMF metrics are kept by the local runner; nothing else may reach stdout.
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")

from fraudlocal.emulators.runtime import store_stats
from fraudlocal.pipeline.ordering import StreamInput
from fraudlocal.pipeline.run import Pipeline, PipelineConfig

START = datetime(2026, 11, 20, tzinfo=UTC)
#: mean seconds between two transactions of the whole population (1M in about 4 days)
MEAN_GAP_S = 0.35


#: records between two progress lines on stderr
PROGRESS_EVERY = 50_000


def progress(label: str, figures: dict[str, Any]) -> None:
    """One JSON line on stderr, so a long run shows where it is (stdout keeps the report)."""
    print(json.dumps({"replay": label, **figures}), file=sys.stderr, flush=True)


def records_held(pipeline: Pipeline) -> int:
    """Records on the mappings' streams plus those read ahead for the next span."""
    return sum(len(stream) for stream in pipeline.streams.values()) + len(pipeline.pending)


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class Population:
    """Accounts and the identifiers they use (fixed for a run)."""

    def __init__(self, accounts: int, rng: random.Random) -> None:
        self.accounts = [f"acct-{i:06d}" for i in range(accounts)]
        self.profile: dict[str, dict[str, Any]] = {}
        for i, account in enumerate(self.accounts):
            self.profile[account] = {
                "card_id": f"card-{rng.getrandbits(48):012x}",
                "device_id": f"dev-{rng.getrandbits(40):010x}",
                "ip": f"100.{64 + i % 64}.{(i >> 6) % 256}.{1 + i % 254}",
                "email": f"user{i}@example.com",
                "phone": f"+1555{i:07d}",
                "country": rng.choice(["US", "US", "US", "CA", "GB"]),
            }


def transactions(total: int, accounts: int, invalid_share: float, seed: int) -> Iterator[StreamInput]:
    """``total`` stream records in event-time order, generated one by one."""
    rng = random.Random(seed)
    population = Population(accounts, rng)
    moment = START
    for index in range(total):
        moment += timedelta(seconds=rng.expovariate(1 / MEAN_GAP_S))
        account = rng.choice(population.accounts)
        record: dict[str, Any] = {
            "transaction_id": f"soak-{index:08d}",
            "timestamp": moment.isoformat().replace("+00:00", "Z"),
            "account_id": account,
            "amount": round(rng.lognormvariate(3.5, 1.1), 2),
            "merchant_id": f"m-{rng.randrange(2000):04d}",
            "channel": rng.choice(["web", "app", "pos"]),
            **population.profile[account],
        }
        if rng.random() < 0.02:
            record["counterparty_account_id"] = rng.choice(population.accounts)
            record.pop("merchant_id")
        if rng.random() < invalid_share:
            data, event_time = _invalid(record, rng), None
        else:
            data, event_time = json.dumps(record, separators=(",", ":")).encode(), moment
        yield StreamInput(data=data, partition_key=account, event_time=event_time)


def _invalid(record: dict[str, Any], rng: random.Random) -> bytes:
    kind = rng.randrange(5)
    if kind == 0:
        record["amount"] = -record["amount"]
    elif kind == 1:
        record.pop("transaction_id")
    elif kind == 2:
        record["timestamp"] = "31/02/2026 25:61"
    elif kind == 3:
        record["amount"] = 1e308
    else:
        return b"{not json"
    return json.dumps(record, separators=(",", ":")).encode()


def store_counts(state: Path) -> dict[str, Any]:
    from fraudlocal.emulators.runtime import LocalTarget

    return store_stats(LocalTarget(state_dir=state))


def replay(state: Path, checkpoints: list[int], args: argparse.Namespace, label: str) -> dict[str, Any]:
    # A short read-ahead, so that each checkpoint measures records the stores have taken in
    # (the span evaluation gives the same flags whatever its length).
    pipeline = Pipeline(PipelineConfig(state_dir=state, span_records=args.span_records))
    total = checkpoints[-1]
    reports = []
    began = time.perf_counter()
    valid = invalid = 0
    for index, item in enumerate(transactions(total, args.accounts, args.invalid_share, args.seed), start=1):
        pipeline.put(item)
        valid += item.event_time is not None
        invalid += item.event_time is None
        if index in checkpoints and index != total:
            pipeline.poll()
            reports.append(
                {
                    "records": index,
                    "seconds": round(time.perf_counter() - began, 1),
                    "peak_rss_mb": peak_rss_mb(),
                    "records_held": records_held(pipeline),
                }
            )
            progress(label, reports[-1])
        elif index % PROGRESS_EVERY == 0:
            progress(label, {"records": index, "seconds": round(time.perf_counter() - began, 1)})
    result = pipeline.finish()
    elapsed = time.perf_counter() - began
    reports.append(
        {
            "records": total,
            "seconds": round(elapsed, 1),
            "peak_rss_mb": peak_rss_mb(),
            "records_held": records_held(pipeline),
        }
    )
    return {
        "replay": label,
        "records": total,
        "valid": valid,
        "invalid": invalid,
        "checkpoints": reports,
        "records_per_second": round(total / elapsed, 1),
        "seconds_per_stage": result.elapsed,
        "micro_analysis_runs": result.ticks,
        "investigations": result.investigations,
        "cases_this_replay": len(result.cases),
        "rejected_by_function": result.rejected_by_function,
        "records_given_up": {name: stats["records_given_up"] for name, stats in result.mappings.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", default="100000,1000000")
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--invalid-share", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--no-replay", action="store_true", help="skip the second full replay")
    parser.add_argument(
        "--span-records",
        type=int,
        default=5_000,
        help="records read ahead per rule evaluation (default 5,000)",
    )
    parser.add_argument("--state-dir", type=Path, help="keep the stores here (default: a temporary dir)")
    args = parser.parse_args()
    checkpoints = sorted(int(n) for n in args.checkpoints.split(","))

    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        state = args.state_dir or Path(tmp)
        first = replay(state, checkpoints, args, "first")
        counts_first = store_counts(state)
        report: dict[str, Any] = {
            "benchmark": "soak",
            "accounts": args.accounts,
            "seed": args.seed,
            "first": first,
            "store_counts": counts_first,
        }
        low, high = first["checkpoints"][0]["peak_rss_mb"], first["checkpoints"][-1]["peak_rss_mb"]
        report["memory_bound"] = {
            "rule": "peak RSS at the last checkpoint <= 1.5 x peak RSS at the first",
            "first_checkpoint_mb": low,
            "last_checkpoint_mb": high,
            "ratio": round(high / low, 2),
            "holds": high <= 1.5 * low,
        }
        checks = {
            "stored_equals_valid": counts_first["timeseries_rows"] == first["valid"],
            "rejected_equals_invalid": sum(first["rejected_by_function"].values()) == 2 * first["invalid"],
            "records_given_up": sum(first["records_given_up"].values()),
        }
        progress("first", {"report_so_far": {**report, "checks": checks}})
        if not args.no_replay:
            second = replay(state, checkpoints, args, "second (the same stream again)")
            counts_second = store_counts(state)
            report["second"] = second
            checks["store_counts_unchanged_by_replay"] = counts_second == counts_first
            checks["cases_opened_by_replay"] = second["cases_this_replay"]
            if counts_second != counts_first:
                report["store_counts_after_replay"] = counts_second
        report["checks"] = checks
        print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
