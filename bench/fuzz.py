"""Fuzz both ingest functions with 100,000 records, valid and hostile; prints JSON counts.

The records come from :mod:`fraudlocal.hostile` (the same kinds the property-based tests
draw): valid ones with awkward identifiers and edge-of-range values, and hostile ones
(huge numbers, NaN, odd dates, deep nesting, long ids, control characters, not JSON...).
They go through the ingest handler's code (``handle_kinesis_event``) in Kinesis batches of
100 into DuckDB, the embedded graph and, with ``--gremlin-server URL``, a TinkerPop Gremlin
Server; then every batch is delivered a second time, as a Kinesis retry would.

For each target it reports: sent, valid, hostile, stored, rejected, batch item failures,
handler exceptions, lost (= sent - stored - rejected), and whether the second delivery
changed any count.

Usage: python bench/fuzz.py [--records 100000] [--hostile-share 0.2] [--seed 11]
                            [--gremlin-server ws://127.0.0.1:8182/gremlin]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fraudcore.graph.connection import GraphConnection
from fraudcore.graph.store import GraphStore
from fraudcore.ingest import handle_kinesis_event
from fraudcore.mapping import load_mapping
from fraudcore.model import Transaction
from fraudcore.observability import logger, metrics
from fraudcore.ports import WriteOutcome
from fraudlocal.adapters.graph_embedded import open_embedded_graph
from fraudlocal.adapters.sinks import JsonlRejectedRecordSink
from fraudlocal.adapters.timeseries_duckdb import DuckDBTimeseriesStore
from fraudlocal.emulators.kinesis_esm import LocalStream, kinesis_event
from fraudlocal.hostile import HOSTILE_KINDS, hostile_record, valid_record

BATCH = 100


def make_records(count: int, hostile_share: float, seed: int) -> tuple[list[Any], set[str], Counter[str]]:
    rng = random.Random(seed)
    stream = LocalStream()
    valid_ids: set[str] = set()
    kinds: Counter[str] = Counter()
    for index in range(count):
        prefix = f"z{index // BATCH}-"
        if rng.random() < hostile_share:
            kind = rng.choice(sorted(HOSTILE_KINDS))
            kinds[kind] += 1
            stream.put(hostile_record(rng, prefix, index, kind), partition_key=prefix)
        else:
            record = valid_record(rng, prefix, index)
            valid_ids.add(str(record["transaction_id"]).strip())
            stream.put(record, partition_key=prefix)
    return stream.shards[0], valid_ids, kinds


def run_target(
    name: str, write: Callable[[Sequence[Transaction]], WriteOutcome], records: list[Any], state: Path
) -> dict[str, Any]:
    sink = JsonlRejectedRecordSink(state / name)
    stored: set[str] = set()

    def counting_write(transactions: Sequence[Transaction]) -> WriteOutcome:
        outcome = write(transactions)
        stored.update(outcome.stored)
        return outcome

    mapping = load_mapping("auto")
    figures: dict[str, Any] = {}
    for delivery in ("first", "second"):
        failures = exceptions = 0
        began = time.perf_counter()
        for start in range(0, len(records), BATCH):
            event = kinesis_event(records[start : start + BATCH])
            try:
                response = handle_kinesis_event(event, counting_write, sink, name, mapping)
            except Exception:  # counted: there must be none
                exceptions += 1
                continue
            failures += len(response["batchItemFailures"])
            metrics.clear_metrics()  # EMF would go to stdout, where this benchmark prints its JSON
        seconds = time.perf_counter() - began
        figures[delivery] = {
            "stored": len(stored),
            "rejected": sink.count(),
            "batch_item_failures": failures,
            "handler_exceptions": exceptions,
            "seconds": round(seconds, 2),
            "records_per_second": round(len(records) / seconds, 1),
        }
    first, second = figures["first"], figures["second"]
    return {
        "sent": len(records),
        "stored": first["stored"],
        "rejected": first["rejected"],
        "lost": len(records) - first["stored"] - first["rejected"],
        "batch_item_failures": first["batch_item_failures"] + second["batch_item_failures"],
        "handler_exceptions": first["handler_exceptions"] + second["handler_exceptions"],
        "second_delivery_changed_counts": (first["stored"], first["rejected"])
        != (second["stored"], second["rejected"]),
        "records_per_second": first["records_per_second"],
        "second_delivery_records_per_second": second["records_per_second"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--hostile-share", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--gremlin-server", help="also fuzz a Gremlin Server graph (its source g7)")
    args = parser.parse_args()
    logger.setLevel("WARNING")

    records, valid_ids, kinds = make_records(args.records, args.hostile_share, args.seed)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-fuzz-") as tmp:
        state = Path(tmp)
        with DuckDBTimeseriesStore(state / "ts.duckdb", "fraud", "transactions") as duckdb_store:
            results["IngestTimeseriesFunction (DuckDB)"] = run_target(
                "IngestTimeseriesFunction", duckdb_store.write, records, state / "duckdb"
            )
            results["IngestTimeseriesFunction (DuckDB)"]["table_rows"] = duckdb_store.count()
        embedded = open_embedded_graph(state / "graph")
        try:
            store = GraphStore(GraphConnection(lambda: embedded, name="fuzz", max_retries=0))
            results["IngestGraphFunction (embedded graph)"] = run_target(
                "IngestGraphFunction", store.upsert_transactions, records, state / "embedded"
            )
        finally:
            embedded.close()
        if args.gremlin_server:
            from gremlin_python.driver.driver_remote_connection import DriverRemoteConnection

            remote = DriverRemoteConnection(args.gremlin_server, "g7")
            try:
                connection = GraphConnection(lambda: remote, name="fuzz-server", max_retries=2)
                connection.run(lambda g: g.V().drop(), "iterate")
                store = GraphStore(connection)
                results["IngestGraphFunction (Gremlin Server)"] = run_target(
                    "IngestGraphFunction", store.upsert_transactions, records, state / "server"
                )
                connection.run(lambda g: g.V().drop(), "iterate")
            finally:
                remote.close()
    print(
        json.dumps(
            {
                "benchmark": "fuzz",
                "records": args.records,
                "valid": len(valid_ids),
                "hostile": sum(kinds.values()),
                "hostile_by_kind": dict(sorted(kinds.items())),
                "seed": args.seed,
                "targets": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
