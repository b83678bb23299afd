"""Benchmark the local pipeline end to end at several scenario sizes; prints JSON.

For each size: generate a scenario, put it through the whole pipeline (both ingest
functions through the Kinesis mapping emulator, the scheduled micro-analysis every 5
minutes of event time, the investigations) on fresh embedded stores, and report
transactions per second end to end (wall clock, and the CPU time of the process and of its
span worker: the machine may be shared), the seconds spent per stage, and peak memory.

As ``fraudlocal`` does by default where it may use two CPUs, the stages of consecutive
spans overlap (``--overlap``; ``--no-overlap`` runs them one after another in one process):
a second process, the span worker, reads the next span into the time series and evaluates
its rules while this span's graph ingest and investigations run. Stage seconds are wall
time, so the time-series and micro-analysis seconds then overlap the others' and the stages
may add up to more than the pipeline's. Each size runs in its own process, so peak RSS
(``ru_maxrss``) is that size's alone; the span worker's is ``worker_peak_rss_mb``.
``graph_disk`` is what the embedded graph store left on disk (its snapshots and its
write-ahead log, which ``StoreUpkeep`` keeps bounded).

``graph_engine`` is the embedded graph engine's own part of the main process: its requests and
the wall seconds spent inside them (``graph_embedded.ENGINE_CLOCK``), and their share of the
main process's CPU seconds (``main_cpu_seconds``; the rest is the Python around the engine:
handlers, translation, the state machine executor). ``bounds`` are two floors the run's wall
time cannot go under on this machine as the pipeline is built: ``two_cpus``, the CPU
seconds of both processes over two CPUs (no schedule of that work does better), and
``main_process``, the main process's CPU seconds (graph ingest and investigations share
one graph and alternate at each tick, so that work is serial); each with the transactions/s
it would allow. The
default sizes are about 20,000 (the demo's default), 200,000 and 1,000,000 transactions.

Usage: python bench/pipeline.py [--sizes 2000x2,20000x2,100000x2] [--every MINUTES] [--per-tick]
       [--overlap | --no-overlap] [--span-records N]
       [--cost-figures local/fraudlocal/cost/measured.yaml]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path


def relooks_started(done: Path, suffix: str) -> dict[str, int]:
    """The re-looks the run started, counted by rule: the investigations done whose name
    ends with ``suffix`` (``fraudcore.micro.relook`` names them so), each counted under the
    rule of its input flag, which names the investigation it looks at again (``relook_of``)."""
    counts: Counter[str] = Counter()
    for path in done.glob(f"*{suffix}.json"):
        flag = json.loads(path.read_text()).get("input") or {}
        if not flag.get("relook_of") or not flag.get("rule"):
            raise SystemExit(
                f"{path.name}: a re-look without the rule or the investigation it looks at again"
            )
        counts[str(flag["rule"])] += 1
    return dict(sorted(counts.items()))


def run_one(
    accounts: int,
    days: int,
    every: float,
    per_tick: bool,
    overlap: bool = False,
    span_records: int | None = None,
) -> dict:
    from fraudcore.execution_names import RELOOK_SUFFIX
    from fraudlocal.adapters.graph_embedded import ENGINE_CLOCK, graph_store_disk_mb
    from fraudlocal.pipeline.ordering import order_records, ordering_mapping
    from fraudlocal.pipeline.run import Pipeline, PipelineConfig
    from fraudlocal.scenario import generate

    began = time.perf_counter()
    scenario = generate(accounts=accounts, days=days)
    lines = [(json.dumps(r, separators=(",", ":")).encode(), None) for r in scenario.iter_transactions()]
    del scenario
    generated = time.perf_counter() - began
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as state:
        config = PipelineConfig(
            state_dir=Path(state),
            every=timedelta(minutes=every),
            per_tick=per_tick,
            overlap=overlap,
            span_records=span_records,
        )
        pipeline = Pipeline(config)
        records = order_records(lines, ordering_mapping(None))
        del lines
        cpu = time.process_time()
        engine_before = ENGINE_CLOCK.figures()
        result = pipeline.run(records)  # as fraudlocal runs it (the collector set for a batch run)
        main_cpu = time.process_time() - cpu
        engine_requests, engine_seconds = (
            after - before for after, before in zip(ENGINE_CLOCK.figures(), engine_before, strict=True)
        )
        cpu = main_cpu + pipeline.worker_cpu_seconds
        relooks_by_rule = relooks_started(pipeline.starter.done, RELOOK_SUFFIX)
        # the embedded graph store's files once the run closed it: snapshots and write-ahead log
        graph_disk = graph_store_disk_mb(Path(state))
    total = result.elapsed["total"]
    evaluation = pipeline.rule_query_statistics()
    return {
        "accounts": accounts,
        "days": days,
        "transactions": result.transactions,
        "micro_analysis_runs": result.ticks,
        "investigations": result.investigations,
        "relooks": sum(relooks_by_rule.values()),
        "relooks_by_rule": relooks_by_rule,
        "cases": len(result.cases),
        "generate_seconds": round(generated, 3),
        "pipeline_seconds": total,
        "mode": "per-tick" if per_tick else "per-span",
        "stages": "overlapped" if overlap and not per_tick else "serial",
        "span_records": None if per_tick else config.records_per_span,
        "spans_overlapped": pipeline.overlapped_spans,
        "transactions_per_second": round(result.transactions / total, 1),
        "cpu_seconds": round(cpu, 1),
        "transactions_per_cpu_second": round(result.transactions / max(cpu, 1e-9), 1),
        "flags": len(result.flags),
        "flags_by_rule": dict(sorted(Counter(flag["rule"] for flag in result.flags).items())),
        "rule_queries": evaluation,
        "seconds_per_stage": {k: v for k, v in result.elapsed.items() if k != "total"},
        "ms_per_micro_analysis_run": round(1000 * result.elapsed["micro_analysis"] / max(1, result.ticks), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        # the span worker's, with the stages overlapped (a second process)
        "worker_cpu_seconds": round(pipeline.worker_cpu_seconds, 1),
        "worker_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "graph_disk": graph_disk,
        "main_cpu_seconds": round(main_cpu, 1),
        "graph_engine": {
            "requests": engine_requests,
            "seconds": round(engine_seconds, 1),
            "share_of_main_cpu": round(engine_seconds / max(main_cpu, 1e-9), 3),
        },
        "bounds": {
            name: {
                "seconds": round(floor, 1),
                "transactions_per_second": round(result.transactions / max(floor, 1e-9), 1),
            }
            for name, floor in (("two_cpus", cpu / 2), ("main_process", main_cpu))
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="2000x2,20000x2,100000x2",
        help="accounts x days, comma separated (default 2000x2,20000x2,100000x2)",
    )
    parser.add_argument("--per-tick", action="store_true", help="invoke the micro-analysis at every tick")
    parser.add_argument("--every", type=float, default=5.0, help="minutes between scheduled runs (default 5)")
    parser.add_argument(
        "--overlap",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="stage the next span (time series and rules) in a second process while this span runs, "
        "as fraudlocal does by default with two CPUs or more; --no-overlap: one stage after another",
    )
    parser.add_argument("--span-records", type=int, help="records a span (default: the pipeline's)")
    parser.add_argument(
        "--cost-figures",
        type=Path,
        metavar="FILE",
        help="write the first size's investigations, hits by rule and re-looks by rule to FILE, the cost "
        "model's measured figures (local/fraudlocal/cost/measured.yaml)",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one size in this process
    args = parser.parse_args()
    if args.overlap is None:
        from fraudlocal.pipeline.run import default_overlap

        args.overlap = default_overlap()
    if args.one:
        accounts, days = (int(x) for x in args.one.split("x"))
        print(json.dumps(run_one(accounts, days, args.every, args.per_tick, args.overlap, args.span_records)))
        return
    results = []
    for size in args.sizes.split(","):
        completed = subprocess.run(
            [sys.executable, __file__, "--one", size.strip(), "--every", str(args.every)]
            + (["--per-tick"] if args.per_tick else [])
            + (["--overlap"] if args.overlap else ["--no-overlap"])
            + (["--span-records", str(args.span_records)] if args.span_records else []),
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            raise SystemExit(f"size {size}: {completed.stderr[-2000:]}")
        results.append(json.loads(completed.stdout.strip().splitlines()[-1]))
    print(json.dumps({"benchmark": "pipeline", "graph_backend": "embedded", "sizes": results}, indent=2))
    if args.cost_figures is not None:
        from fraudlocal.cost.model import write_demo_rates

        size = args.sizes.split(",")[0].strip()
        write_demo_rates(
            results[0],
            f"python bench/pipeline.py --sizes {size} --cost-figures {args.cost_figures}",
            args.cost_figures,
        )


if __name__ == "__main__":
    main()
