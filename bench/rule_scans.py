"""What the scheduled runs of the window rules read, from DuckDB's own statistics; prints JSON.

A generated scenario is written to the local DuckDB time-series store, in event-time order
as ingestion writes it; then every scheduled run of one day (the scenario's last day, so
that day-long baselines have their history) evaluates every enabled rule the way
``MicroAnalysisFunction`` does (the same range, the same compiled query, no query at a run
whose range is empty), with DuckDB's profiler on. Per rule:

- ``queries``: the runs that queried;
- ``rows_read_per_run``: rows the table scans handed on (the rows inside their time
  predicates: what Timestream, which prunes by time, reads), summed over the query's scans,
  on average over all the day's runs;
- ``rows_scanned_per_run``: rows DuckDB scanned (``total_rows_scanned``: whole row groups
  its zone maps could not skip), on average over all runs;
- ``flags``, ``flags_digest``: the flags every run raised (before deduplication across
  rules), and a digest of them, to compare two versions' results.

Run it on two versions of the code (``PYTHONPATH`` pointing at the other one's
``layers/common`` and ``local``) to compare what each reads and that both raise the same flags.

Usage: python bench/rule_scans.py [--accounts N] [--days N] [--seed N] [--schedule 5m]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from fraudcore.micro import flags_from_rows
from fraudcore.model import parse_transaction
from fraudcore.rules import enabled_rules, load_rules, parse_duration
from fraudcore.timeseries.rule_sql import compile_range, evaluation_range, floor_to
from fraudlocal.adapters.timeseries_duckdb import DuckDBTimeseriesStore
from fraudlocal.scenario import generate


def _scan_rows(node: dict[str, Any]) -> int:
    """Rows handed on by the table scans of a profiled plan (their filters applied)."""
    own = int(node.get("intermediate_rows", 0)) if node.get("type") == "TABLE_SCAN" else 0
    return own + sum(_scan_rows(child) for child in node.get("children", []))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--schedule", default="5m")
    args = parser.parse_args()
    schedule = parse_duration(args.schedule, "--schedule")
    scenario = generate(accounts=args.accounts, days=args.days, seed=args.seed)
    transactions = sorted(
        (parse_transaction(payload) for payload in scenario.transactions), key=lambda t: t.timestamp
    )
    rules = enabled_rules(load_rules())
    with tempfile.TemporaryDirectory() as directory:
        store = DuckDBTimeseriesStore(Path(directory) / "ts.duckdb", "fraud", "transactions")
        for offset in range(0, len(transactions), 500):
            store.write(transactions[offset : offset + 500])
        connection = store._open()
        connection.execute("PRAGMA enable_profiling='no_output'")
        last = floor_to(transactions[-1].timestamp, timedelta(days=1))
        runs = [last + schedule * index for index in range(round(timedelta(days=1) / schedule))]
        report: dict[str, Any] = {}
        for rule in rules:
            queries = read = scanned = flags = 0
            digest = hashlib.sha256()
            for moment in runs:
                span = evaluation_range(rule, moment, schedule)
                if getattr(span, "empty", False):
                    continue
                rows = store.query(compile_range(rule, store.database, store.table, span))
                profile = json.loads(connection.get_profiling_information(format="json"))
                queries += 1
                read += sum(_scan_rows(node) for node in profile.get("operator", []))
                scanned += int(profile.get("query", {}).get("total_rows_scanned", 0))
                for flag in sorted(
                    (flag.execution_name, flag.window_start, flag.observed)
                    for flag in flags_from_rows(rule, rows, moment)
                ):
                    digest.update(repr((moment.isoformat(), *flag)).encode())
                    flags += 1
            report[rule.id] = {
                "queries": queries,
                "rows_read_per_run": round(read / len(runs)),
                "rows_scanned_per_run": round(scanned / len(runs)),
                "flags": flags,
                "flags_digest": digest.hexdigest()[:16],
            }
        store.close()
    print(
        json.dumps(
            {
                "transactions": len(transactions),
                "runs": len(runs),
                "schedule": args.schedule,
                "rules": report,
                "rows_read_per_run": sum(item["rows_read_per_run"] for item in report.values()),
                "rows_scanned_per_run": sum(item["rows_scanned_per_run"] for item in report.values()),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
