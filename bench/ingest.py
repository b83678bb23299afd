"""Ingest throughput: both ingest handlers on each local backend, against the naive writer.

Prints one JSON document: for each handler and backend, records/s over ``--records``
transactions in Kinesis batches of ``--batch`` records, and graph requests per batch;
then a one-connection-and-one-traversal-per-record writer (how the AWS guidance's
sample writes Neptune) on the same graph backend, and the ratio; then the graph handler
with requests sized by Neptune's bulk-upsert advice (``GRAPH_WRITE_BATCH``, 100 distinct
vertices or edges per request, the default) against one request per kind for a whole Kinesis
batch (how requests were sized before), with the largest request of each.

    .venv/bin/python bench/ingest.py [--records 10000] [--naive-records 1000]
                                     [--gremlin-server ws://127.0.0.1:8182/gremlin]

The Gremlin Server figures need a running server (``scripts/gremlin-server start``);
without one they are reported as skipped, with the reason.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from gremlin_python.process.anonymous_traversal import traversal
from gremlin_python.process.traversal import Direction, T
from gremlin_python.statics import long

from fraudcore import backends
from fraudcore.graph import schema
from fraudcore.model import Transaction, parse_transaction
from fraudlocal.emulators.kinesis_esm import LocalStream, kinesis_event
from fraudlocal.emulators.runtime import LocalTarget, invoke_function, patched_environment
from fraudlocal.scenario import generate


def scenario_transactions(count: int) -> list[dict]:
    accounts = max(500, count // 10)
    transactions = generate(accounts=accounts, days=2, seed=11).transactions
    if len(transactions) < count:
        raise SystemExit(f"the scenario has only {len(transactions)} transactions; ask for fewer")
    return transactions[:count]


def batches(transactions: list[dict], size: int) -> list[dict]:
    stream = LocalStream(1)
    for tx in transactions:
        stream.put(tx, tx["account_id"])
    records = stream.shards[0]
    return [kinesis_event(records[i : i + size]) for i in range(0, len(records), size)]


def run_handler(function: str, events: list[dict], target: LocalTarget, records: int) -> dict:
    connection_requests = []
    started = time.perf_counter()
    for event in events:
        with patched_environment(target.environment({})):
            graph = backends.graph_connection() if function == "IngestGraphFunction" else None
            before = graph.requests if graph else 0
        response = invoke_function(function, event, target)
        if response.get("batchItemFailures"):
            raise SystemExit(f"{function}: batch failures {response['batchItemFailures'][:3]}")
        if graph:
            connection_requests.append(graph.requests - before)
    elapsed = time.perf_counter() - started
    result = {"records": records, "seconds": round(elapsed, 3), "records_per_s": round(records / elapsed, 1)}
    if connection_requests:
        result["requests_per_batch"] = {
            "mean": round(statistics.mean(connection_requests), 2),
            "max": max(connection_requests),
        }
    return result


def largest_request(transactions: list[dict], batch: int, limit: int) -> dict:
    """How many requests each Kinesis batch needs and the most objects one request carries."""
    from fraudcore.graph.store import object_chunks
    from fraudcore.graph.upserts import GraphBatch

    parsed = [parse_transaction(tx) for tx in transactions]
    chunks_per_batch, largest = [], 0
    for start in range(0, len(parsed), batch):
        chunks = object_chunks(parsed[start : start + batch], limit)
        chunks_per_batch.append(len(chunks))
        for chunk in chunks:
            upserts = GraphBatch.from_transactions(chunk)
            largest = max(largest, len(upserts.vertices), len(upserts.edges))
    return {"chunks_per_batch_max": max(chunks_per_batch), "objects_per_request_max": largest}


def request_sizing(
    transactions: list[dict], events: list[dict], root: Path, batch: int, server: str | None
) -> dict:
    """The graph handler with Neptune-sized requests against whole-batch requests."""
    sizing: dict = {}
    backends_to_run = [("embedded", None)] + ([("gremlin-server", server)] if server else [])
    for backend, endpoint in backends_to_run:
        for label, limit in (("neptune_advice_100_objects", 100), ("whole_batch_per_request", 1_000_000)):
            if endpoint:
                server_available(endpoint)  # start from an empty graph
            target = LocalTarget(
                root / f"sizing-{backend}-{limit}",
                graph_backend=backend,
                graph_endpoint=endpoint,
                extra_env=(("GRAPH_WRITE_BATCH", str(limit)),),
            )
            result = run_handler("IngestGraphFunction", events, target, len(transactions))
            result.update(largest_request(transactions, batch, limit))
            sizing[f"{backend}/{label}"] = result
            backends.reset()
    return sizing


def naive_upsert_record(g, tx: Transaction) -> None:
    """One traversal per record upserting its vertices and edges: the AWS guidance sample's approach."""
    account = schema.vertex_id(schema.ACCOUNT, tx.account_id)
    t = g.merge_v({T.id: account, T.label: schema.ACCOUNT})
    for field, (label, edge_label) in schema.FIELD_LINKS.items():
        value = getattr(tx, field)
        if not value:
            continue
        vid = schema.vertex_id(label, value)
        t = (
            t.merge_v({T.id: vid, T.label: label})
            .merge_e(
                {
                    T.id: schema.edge_id(edge_label, account, vid),
                    T.label: edge_label,
                    Direction.OUT: account,
                    Direction.IN: vid,
                }
            )
            .property("last_seen", long(tx.epoch_ms))
        )
    t.iterate()


def run_naive(transactions: list[dict], open_connection, reuse: bool) -> dict:
    parsed = [parse_transaction(tx) for tx in transactions]
    shared = open_connection() if reuse else None
    started = time.perf_counter()
    for tx in parsed:
        connection = shared or open_connection()
        try:
            naive_upsert_record(traversal().with_remote(connection), tx)
        finally:
            if not reuse:
                connection.close()
    elapsed = time.perf_counter() - started
    if shared:
        shared.close()
    return {
        "records": len(parsed),
        "seconds": round(elapsed, 3),
        "records_per_s": round(len(parsed) / elapsed, 1),
        "requests_per_record": 1,
        "connection_per_record": not reuse,
    }


def server_available(url: str) -> str | None:
    from gremlin_python.driver.driver_remote_connection import DriverRemoteConnection

    try:
        connection = DriverRemoteConnection(url, "g")
        traversal().with_remote(connection).V().drop().iterate()
        connection.close()
        return None
    except Exception as error:
        return f"{type(error).__name__}: {error}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--naive-records", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--gremlin-server", default="ws://127.0.0.1:8182/gremlin")
    args = parser.parse_args()

    transactions = scenario_transactions(args.records)
    events = batches(transactions, args.batch)
    report: dict = {"records": args.records, "batch_size": args.batch, "results": {}}
    with tempfile.TemporaryDirectory() as tmp:
        embedded = LocalTarget(Path(tmp) / "embedded")
        report["results"]["IngestTimeseriesFunction/duckdb"] = run_handler(
            "IngestTimeseriesFunction", events, embedded, args.records
        )
        report["results"]["IngestGraphFunction/embedded"] = run_handler(
            "IngestGraphFunction", events, embedded, args.records
        )
        backends.reset()

        from fraudlocal.adapters.graph_embedded import open_embedded_graph

        naive_graph = open_embedded_graph(Path(tmp) / "naive")  # the same durable store as the handler's
        report["results"]["naive_writer/embedded"] = run_naive(
            transactions[: args.naive_records], lambda: naive_graph, reuse=True
        )
        report["results"]["naive_writer/embedded"]["note"] = (
            "in-process engine: no connection to open, so one traversal per record on one connection"
        )

        reason = server_available(args.gremlin_server)
        if reason is None:
            server = LocalTarget(
                Path(tmp) / "server", graph_backend="gremlin-server", graph_endpoint=args.gremlin_server
            )
            report["results"]["IngestGraphFunction/gremlin-server"] = run_handler(
                "IngestGraphFunction", events, server, args.records
            )
            backends.reset()
            server_available(args.gremlin_server)  # empty the graph again

            from gremlin_python.driver.driver_remote_connection import DriverRemoteConnection

            report["results"]["naive_writer/gremlin-server"] = run_naive(
                transactions[: args.naive_records],
                lambda: DriverRemoteConnection(args.gremlin_server, "g"),
                reuse=False,
            )
        else:
            report["results"]["gremlin-server"] = {"skipped": reason}
        report["request_sizing"] = request_sizing(
            transactions, events, Path(tmp), args.batch, args.gremlin_server if reason is None else None
        )

    results = report["results"]
    for backend in ("embedded", "gremlin-server"):
        batched, naive = results.get(f"IngestGraphFunction/{backend}"), results.get(f"naive_writer/{backend}")
        if batched and naive:
            report[f"speedup_batched_vs_naive/{backend}"] = round(
                batched["records_per_s"] / naive["records_per_s"], 1
            )
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
