"""Soak the local pipeline with a long stream of generated transactions; prints JSON.

The transactions are generated as they are put on the stream (nothing holds the whole
input): a fixed population of accounts with their cards, devices, IPs, emails and phones,
paying merchants and each other in event-time order, with a share of invalid records
(negative amounts, missing fields, odd dates, not JSON). They go through the whole local
pipeline: both ingest functions through the Kinesis mapping emulator (which drops what
both mappings have read), the scheduled micro-analysis every 5 minutes of event time, and
the investigations it starts.

At each checkpoint (``--checkpoints``, default 100,000, 300,000 and 1,000,000 records: the
second after the first day of event time, when the longest rule window is full) it reports
the records put so far, the stores' counts, the resident memory now and at its peak
(``ru_maxrss``), and the embedded graph's elements and its own count of the bytes it holds.
The embedded engine keeps the graph in memory, and this stream adds nearly one new
account->merchant edge per transaction, so the graph grows with the input; what must not
grow is everything else. The report states the bound it checks (:func:`memory_bound`):
RSS outside the graph at the last checkpoint <= 1.5 x at the first, and a peak within that
plus the graph plus the transient the engine needs while it writes a snapshot of its store
(which the local adapter has it do as its log grows: ``StoreUpkeep``). Each checkpoint also
reports the graph store's files on disk and its log, which that upkeep keeps bounded.
Progress lines on stderr (every 50,000 records) carry the RSS and its peak, so a jump can be
placed.

Then the same stream is replayed in full (a redelivery of everything) into the same
stores: the store counts must not change and no case may be opened twice.

The second replay can also run on its own, in a later process, into the stores a first
pass left in ``--state-dir`` (``--replay-only``, with the same ``--seed``, ``--accounts``,
``--invalid-share`` and ``--checkpoints``): a 1M run then fits in two sittings. Given the first
pass's report (``--first-report``), it also checks that the stores it found are the ones the
first pass left.

Usage: python bench/soak.py [--checkpoints 100000,300000,1000000] [--accounts 20000]
                            [--invalid-share 0.01] [--seed 5] [--no-replay]
                            [--span-records 5000] [--state-dir DIR]
                            [--replay-only --state-dir DIR [--first-report FILE]]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
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

from fraudlocal import collector
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


def rss_mb() -> float | None:
    """Resident memory now (Linux ``/proc``; None where it is not available)."""
    try:
        with open("/proc/self/statm") as statm:
            return round(int(statm.read().split()[1]) * resource.getpagesize() / 2**20, 1)
    except OSError:
        return None


def graph_figures(state: Path) -> dict[str, Any]:
    """The embedded graph the pipeline writes (its shared connection): elements and memory.

    The memory is the engine's own account of the bytes it holds live (graphersal's memory
    report, ``tracked_live_bytes``; sampled, so it costs a fraction of a second).
    """
    from fraudcore.graph.connection import GraphConnection
    from fraudcore.graph.store import GraphStore
    from fraudlocal.adapters.graph_embedded import graph_store_disk_mb, open_embedded_graph

    counts = GraphStore(GraphConnection.from_factory(lambda: open_embedded_graph(state))).counts()
    connection = open_embedded_graph(state)
    report = connection.graph.memory_report(max_elements=1000)
    vertices, edges = sum(counts["vertices"].values()), sum(counts["edges"].values())
    graph_mb = round(report["tracked_live_bytes"] / 2**20, 1)
    disk = graph_store_disk_mb(state)
    return {
        "vertices": vertices,
        "edges": edges,
        "graph_mb": graph_mb,
        "bytes_per_element": round(report["tracked_live_bytes"] / max(1, vertices + edges)),
        # the snapshots this process's store upkeep has written so far (and pruned the log to)
        "snapshots_written": connection.upkeep.checkpoints if connection.upkeep else 0,
        "snapshot_seconds": round(connection.upkeep.checkpoint_seconds, 1) if connection.upkeep else 0.0,
        # the store's files: its snapshots and its write-ahead log, which the upkeep bounds
        "store_disk_mb": disk["store_mb"],
        "log_disk_mb": disk["log_mb"],
    }


def duckdb_mb(state: Path) -> float:
    """What DuckDB says it holds in memory for the time-series store (buffers, indexes)."""
    from fraudcore import backends
    from fraudlocal.emulators.runtime import LocalTarget, patched_environment

    with patched_environment(LocalTarget(state_dir=state).environment({})):
        rows = backends.timeseries_store().query_duckdb(
            "SELECT coalesce(sum(memory_usage_bytes), 0) AS bytes FROM duckdb_memory()"
        )
    return round(int(rows[0]["bytes"]) / 2**20, 1)


def malloc_mb() -> dict[str, float] | None:
    """The C heap (glibc ``mallinfo2``): bytes in use, and bytes free but kept by the process."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallinfo2 = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    fields = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks")

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (*fields, "keepcost")]

    mallinfo2.restype = MallInfo2
    info = mallinfo2()
    return {
        "in_use_mb": round((info.uordblks + info.hblkhd) / 2**20, 1),
        "free_kept_mb": round(info.fordblks / 2**20, 1),
    }


def memory_figures(state: Path) -> dict[str, Any]:
    graph = graph_figures(state)
    now = rss_mb()
    outside = None if now is None else round(now - graph["graph_mb"], 1)
    return {
        "peak_rss_mb": peak_rss_mb(),
        "rss_mb": now,
        "rss_outside_graph_mb": outside,
        "graph": graph,
        # where the memory outside the graph is: DuckDB's own account, the C heap, Python objects
        "duckdb_mb": duckdb_mb(state),
        "malloc": malloc_mb(),
        "python_objects": len(gc.get_objects()),
    }


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
    # with the cyclic collector as fraudlocal sets it for a run (Pipeline.run): the memory
    # bound holds for what the commands do
    with collector.for_batch_run():
        return _replay(state, checkpoints, args, label)


def _replay(state: Path, checkpoints: list[int], args: argparse.Namespace, label: str) -> dict[str, Any]:
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
        if index in checkpoints:
            pipeline.poll()
            reports.append(
                {
                    "records": index,
                    "seconds": round(time.perf_counter() - began, 1),
                    **memory_figures(state),
                    "records_held": records_held(pipeline),
                }
            )
            progress(label, reports[-1])
        elif index % PROGRESS_EVERY == 0:
            figures = {"seconds": round(time.perf_counter() - began, 1), "peak_rss_mb": peak_rss_mb()}
            progress(label, {"records": index, **figures, "rss_mb": rss_mb()})
    result = pipeline.finish()
    elapsed = time.perf_counter() - began
    reports[-1]["peak_rss_after_finish_mb"] = peak_rss_mb()
    reports[-1]["records_held_after_finish"] = records_held(pipeline)
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


#: the graph engine's transient while it writes a snapshot of its store, per MB of graph it
#: holds: bench/graph_snapshot.py measured 2.28 (322,000 elements) and 2.36 (1,022,000)
SNAPSHOT_EXTRA_PER_GRAPH_MB = 2.5


def memory_bound(checkpoints: list[dict[str, Any]]) -> dict[str, Any]:
    """The bound: the memory the pipeline holds besides the graph does not grow with the input.

    The embedded graph engine keeps the graph in memory (as Neptune keeps it on its
    instances): it grows with the entities and relationships seen (in this stream nearly one
    new account->merchant ``pays`` edge per transaction), at the engine's bytes per element,
    not with streams, read-ahead, time-series rows or the history of runs. So:

    - steady: the memory outside the graph at the last checkpoint stays within 1.5x of its
      value at the first;
    - peak: the store writes a snapshot of the graph from time to time (``snapshots_written``,
      :class:`fraudlocal.adapters.graph_embedded.StoreUpkeep`), holding a transient form of
      the graph meanwhile
      (:data:`SNAPSHOT_EXTRA_PER_GRAPH_MB`, measured apart by bench/graph_snapshot.py). At
      every checkpoint the peak so far stays within 1.5x the first checkpoint's memory
      outside the graph, plus the graph, plus that transient.
    """
    first, last = checkpoints[0], checkpoints[-1]
    allowance = 1.5 * (first["rss_outside_graph_mb"] or 0)
    figures: dict[str, Any] = {
        "rule": (
            "steady: RSS outside the graph (RSS minus the graph engine's live bytes) at the last checkpoint "
            "<= 1.5 x at the first; peak: at every checkpoint, peak RSS <= 1.5 x the first checkpoint's RSS "
            f"outside the graph + (1 + {SNAPSHOT_EXTRA_PER_GRAPH_MB}) x the graph (its snapshot transient)"
        ),
        "per_checkpoint": [
            {
                "records": c["records"],
                "rss_mb": c["rss_mb"],
                "peak_rss_mb": c["peak_rss_mb"],
                "graph_mb": c["graph"]["graph_mb"],
                "graph_elements": c["graph"]["vertices"] + c["graph"]["edges"],
                "graph_bytes_per_element": c["graph"]["bytes_per_element"],
                "rss_outside_graph_mb": c["rss_outside_graph_mb"],
                "graph_snapshots_written": c["graph"]["snapshots_written"],
                "graph_store_disk_mb": c["graph"]["store_disk_mb"],
                "graph_log_disk_mb": c["graph"]["log_disk_mb"],
                "peak_bound_mb": round(
                    allowance + (1 + SNAPSHOT_EXTRA_PER_GRAPH_MB) * c["graph"]["graph_mb"], 1
                ),
            }
            for c in checkpoints
        ],
        "peak_rss_ratio": round(last["peak_rss_mb"] / first["peak_rss_mb"], 2),
    }
    if first["rss_outside_graph_mb"] is None or last["rss_outside_graph_mb"] is None:
        figures["holds"] = None  # no /proc: only the peak is known
        return figures
    outside = last["rss_outside_graph_mb"] / first["rss_outside_graph_mb"]
    peak_outside = (last["peak_rss_mb"] - last["graph"]["graph_mb"]) / (
        first["peak_rss_mb"] - first["graph"]["graph_mb"]
    )
    figures["outside_graph_ratio"] = round(outside, 2)
    # informational: a snapshot between two checkpoints raises it by its transient
    figures["peak_outside_graph_ratio"] = round(peak_outside, 2)
    peak_within = all(c["peak_rss_mb"] <= c["peak_bound_mb"] for c in figures["per_checkpoint"])
    figures["holds"] = outside <= 1.5 and peak_within
    return figures


def second_replay(
    state: Path,
    checkpoints: list[int],
    args: argparse.Namespace,
    counts_before: dict[str, Any],
    report: dict[str, Any],
    checks: dict[str, Any],
) -> dict[str, Any]:
    """The same stream again into ``state``; adds to ``report`` and ``checks`` what it changed."""
    second = replay(state, checkpoints, args, "second (the same stream again)")
    counts_second = store_counts(state)
    report["second"] = second
    checks["store_counts_unchanged_by_replay"] = counts_second == counts_before
    checks["cases_opened_by_replay"] = second["cases_this_replay"]
    if counts_second != counts_before:
        report["store_counts_after_replay"] = counts_second
    return second


def first_pass_counts(path: Path) -> dict[str, Any]:
    """The store counts a first pass reported: its JSON report, or the last report on its stderr."""
    text = path.read_text()
    try:
        return json.loads(text)["store_counts"]
    except (json.JSONDecodeError, KeyError):
        pass
    for line in reversed(text.splitlines()):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and "report_so_far" in entry:
            return entry["report_so_far"]["store_counts"]
    raise SystemExit(f"{path}: no store_counts in a report or in a report_so_far line")


def replay_only(checkpoints: list[int], args: argparse.Namespace) -> dict[str, Any]:
    """The second full replay alone, into stores an earlier process's first pass left."""
    state = args.state_dir
    if state is None or not (state / "timeseries.duckdb").exists():
        raise SystemExit("--replay-only needs --state-dir holding a first pass's stores (timeseries.duckdb)")
    counts_found = store_counts(state)
    report: dict[str, Any] = {
        "benchmark": "soak",
        "mode": "replay only, into the stores an earlier first pass left",
        "accounts": args.accounts,
        "seed": args.seed,
        "store_counts_found": counts_found,
    }
    checks: dict[str, Any] = {}
    if args.first_report:
        checks["stores_found_as_first_pass_left_them"] = counts_found == first_pass_counts(args.first_report)
    progress("second", {"store_counts_found": counts_found, "checks": checks})
    second = second_replay(state, checkpoints, args, counts_found, report, checks)
    checks["records_given_up"] = sum(second["records_given_up"].values())
    report["checks"] = checks
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", default="100000,300000,1000000")
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
    parser.add_argument(
        "--replay-only",
        action="store_true",
        help="only the second full replay, into the stores a first pass left in --state-dir",
    )
    parser.add_argument(
        "--first-report",
        type=Path,
        help="with --replay-only: the first pass's JSON report (or its stderr), to check the stores found",
    )
    args = parser.parse_args()
    checkpoints = sorted(int(n) for n in args.checkpoints.split(","))
    if args.replay_only:
        print(json.dumps(replay_only(checkpoints, args), indent=2, default=str))
        return

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
        report["memory_bound"] = memory_bound(first["checkpoints"])
        checks = {
            "stored_equals_valid": counts_first["timeseries_rows"] == first["valid"],
            "rejected_equals_invalid": sum(first["rejected_by_function"].values()) == 2 * first["invalid"],
            "records_given_up": sum(first["records_given_up"].values()),
        }
        progress("first", {"report_so_far": {**report, "checks": checks}})
        if not args.no_replay:
            second_replay(state, checkpoints, args, counts_first, report, checks)
        report["checks"] = checks
        print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
