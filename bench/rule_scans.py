"""What the scheduled runs of the window rules read, from DuckDB's own statistics and from
the cost model; prints JSON.

A generated scenario is written to the local DuckDB time-series store, in event-time order
as ingestion writes it; then every scheduled run of one day (the scenario's last day, so
that day-long baselines have their history) sends the queries ``MicroAnalysisFunction``
sends (one per rule, one for the rules sharing a history read; the same ranges, the same
SQL, no query at a run whose range is empty, a rule with ``every`` queried only at the runs
of its cadence), with DuckDB's profiler on. Per query:

- ``queries``: the runs that queried;
- ``rows_read_per_run``: rows the table scans handed on (the rows inside their time
  predicates: what Timestream, which prunes by time, reads), summed over the query's scans,
  on average over all the day's runs;
- ``bytes_read_per_run``: the bytes those scans handed on (DuckDB's
  ``intermediate_size_bytes``: only the columns a scan projects);
- ``rows_scanned_per_run``: rows DuckDB scanned (``total_rows_scanned``: whole row groups
  its zone maps could not skip), on average over all runs.

Per rule: ``flags`` and ``flags_digest``: the set of (entity, window, observed) the day's
runs find (each run's hits, before deduplication; a rule with ``every`` finds them at the
runs that query it, for the runs they answer for), to compare two versions' results. ``model``: the cost model's bytes per run at
100 transactions/s (``fraudlocal cost --tps 100``) for the same queries.

``--before COMMIT`` runs the same on that commit's rule compiler (its ``layers/common``,
exported with ``git archive``; this tree's ``local``) and prints both, with the ratios and
whether every rule's flags are the same.

Usage: python bench/rule_scans.py [--accounts N] [--days N] [--seed N] [--schedule 5m] [--before COMMIT]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from datetime import timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

from fraudcore.micro import flags_from_rows
from fraudcore.model import parse_transaction
from fraudcore.rules import enabled_rules, load_rules, parse_duration
from fraudcore.timeseries import rule_sql
from fraudcore.timeseries.rule_sql import compile_range, evaluation_range, floor_to
from fraudlocal.adapters.timeseries_duckdb import DuckDBTimeseriesStore
from fraudlocal.cost import estimate
from fraudlocal.cost.model import scheduled_queries
from fraudlocal.scenario import generate

ROOT = Path(__file__).resolve().parents[1]


def _scans(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The table scans of a profiled plan."""
    own = [node] if node.get("type") == "TABLE_SCAN" else []
    return own + [scan for child in node.get("children", []) for scan in _scans(child)]


def _query(
    group: tuple[Any, ...], store: DuckDBTimeseriesStore, moment: Any, schedule: timedelta
) -> tuple[str, list[tuple[Any, Any]]]:
    """The SQL a run at ``moment`` sends for ``group`` and its lanes (rule, run answered for),
    in the order of the ``lane`` column; no SQL when it sends none (a rule waiting for its
    windows to close, or with ``every``, at a run that does not query it)."""
    if hasattr(rule_sql, "cadence_lanes"):
        lanes = [lane for lane in rule_sql.cadence_lanes(group, moment, schedule) if not lane.span.empty]
        if not lanes:
            return "", []
        sql = rule_sql.compile_lanes(lanes, store.database, store.table)
        return sql, [(lane.rule, lane.run) for lane in lanes]
    # an earlier compiler: every run queries (one query per rule, or one for a group)
    spans = [evaluation_range(rule, moment, schedule) for rule in group]
    if all(getattr(span, "empty", False) for span in spans):
        return "", []
    if len(group) == 1:
        return compile_range(group[0], store.database, store.table, spans[0]), [(group[0], moment)]
    sql = rule_sql.compile_history_lanes(group, store.database, store.table, spans)
    return sql, [(rule, moment) for rule in group]


def measure(args: argparse.Namespace) -> dict[str, Any]:
    schedule = parse_duration(args.schedule, "--schedule")
    scenario = generate(accounts=args.accounts, days=args.days, seed=args.seed)
    transactions = sorted(
        (parse_transaction(payload) for payload in scenario.transactions), key=lambda t: t.timestamp
    )
    rules = enabled_rules(load_rules())
    flags: dict[str, set[tuple[Any, ...]]] = {rule.id: set() for rule in rules}
    queries: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as directory:
        store = DuckDBTimeseriesStore(Path(directory) / "ts.duckdb", "fraud", "transactions")
        for offset in range(0, len(transactions), 500):
            store.write(transactions[offset : offset + 500])
        connection = store._open()
        connection.execute("PRAGMA enable_profiling='no_output'")
        last = floor_to(transactions[-1].timestamp, timedelta(days=1))
        # the runs after midnight up to the next: a rule queried every 15 minutes (or any
        # divisor of a day) answers for exactly these runs, its last query at midnight
        runs = [last + schedule * (index + 1) for index in range(round(timedelta(days=1) / schedule))]
        for group in scheduled_queries(rules):
            count = rows_read = bytes_read = scanned = 0
            for moment in runs:
                sql, lanes = _query(group, store, moment, schedule)
                if not sql:
                    continue
                rows = store.query(sql)
                profile = json.loads(connection.get_profiling_information(format="json"))
                scans = [scan for node in profile.get("operator", []) for scan in _scans(node)]
                count += 1
                rows_read += sum(int(scan.get("intermediate_rows", 0)) for scan in scans)
                bytes_read += sum(int(scan.get("intermediate_size_bytes", 0)) for scan in scans)
                scanned += int(profile.get("query", {}).get("total_rows_scanned", 0))
                for lane, (rule, run) in enumerate(lanes):
                    own = [row for row in rows if len(lanes) == 1 or int(row["lane"]) == lane]
                    flags[rule.id] |= {
                        (flag.entity_id, flag.window_start, flag.observed)
                        for flag in flags_from_rows(rule, own, run)
                    }
            queries[" + ".join(rule.id for rule in group)] = {
                "queries": count,
                "rows_read_per_run": round(rows_read / len(runs)),
                "bytes_read_per_run": round(bytes_read / len(runs)),
                "rows_scanned_per_run": round(scanned / len(runs)),
            }
        store.close()
    model = estimate(100.0, schedule)
    return {
        "transactions": len(transactions),
        "runs": len(runs),
        "schedule": args.schedule,
        "queries": queries,
        "rules": {
            rule_id: {
                "flags": len(items),
                "flags_digest": hashlib.sha256(repr(sorted(items)).encode()).hexdigest()[:16],
            }
            for rule_id, items in flags.items()
        },
        "rows_read_per_run": sum(item["rows_read_per_run"] for item in queries.values()),
        "bytes_read_per_run": sum(item["bytes_read_per_run"] for item in queries.values()),
        "rows_scanned_per_run": sum(item["rows_scanned_per_run"] for item in queries.values()),
        "model": {
            "tps": 100,
            "bytes_scanned_per_run": model.derived["bytes_scanned_per_run"],
            "queries": {scan["rule"]: scan["bytes"] for scan in model.scans},
        },
    }


def before(args: argparse.Namespace) -> dict[str, Any]:
    """The same figures from ``args.before``'s rule compiler, run in another interpreter."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", args.before, "layers/common"], check=True, capture_output=True
    ).stdout
    with tempfile.TemporaryDirectory() as directory:
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(directory, filter="data")
        command = [sys.executable, __file__, "--accounts", str(args.accounts), "--days", str(args.days)]
        command += ["--seed", str(args.seed), "--schedule", args.schedule]
        path = os.pathsep.join([str(Path(directory) / "layers" / "common"), str(ROOT / "local")])
        printed = subprocess.run(
            command, check=True, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": path}
        ).stdout
    return json.loads(printed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--schedule", default="5m")
    parser.add_argument("--before", help="a commit whose rule compiler to measure too, for comparison")
    args = parser.parse_args()
    after = measure(args)
    if not args.before:
        print(json.dumps(after, indent=2))
        return
    earlier = before(args)
    figures = ("rows_read_per_run", "bytes_read_per_run", "rows_scanned_per_run")
    print(
        json.dumps(
            {
                "before": {"commit": args.before, **earlier},
                "after": after,
                "ratios": {
                    **{
                        name: round(earlier[name] / after[name], 2)
                        for name in figures
                        if earlier.get(name) and after.get(name)
                    },
                    "model_bytes_scanned_per_run": round(
                        earlier["model"]["bytes_scanned_per_run"] / after["model"]["bytes_scanned_per_run"], 2
                    ),
                },
                "same_flags": {
                    rule: earlier["rules"].get(rule) == after["rules"][rule] for rule in after["rules"]
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
