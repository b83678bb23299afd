"""Ingest throughput: both ingest handlers on each local backend, against the naive writer.

Prints one JSON document: for each handler and backend, records/s over ``--records``
transactions in Kinesis batches of ``--batch`` records, and graph requests per batch;
then a one-connection-and-one-traversal-per-record writer (how the AWS guidance's
sample writes Neptune) on the same graph backend, and the ratio; then the graph handler
with requests sized by Neptune's bulk-upsert advice (``GRAPH_WRITE_BATCH``, 100 distinct
vertices or edges per request, the default) against one request per kind for a whole Kinesis
batch (how requests were sized before), with the largest request of each.

``bare_comparison``: on each graph backend (same server, same run), the graph handler against
bare batched ``mergeV``/``mergeE`` requests carrying the same elements: each Kinesis batch's
distinct vertices and edges, built before the clock starts and sent in requests of
``GRAPH_WRITE_BATCH`` maps (the handler's upsert traversals, nothing else: no decoding, no
validation, no read of existing edges, no isolation), one after another, each written to the
connection as the handler's are (``fraudcore.graph.connection.submit_bytecode``). The handler
is invoked on each Kinesis batch in turn through one local runner, as the local pipeline
invokes it (the Lambda wrappers, the partial batch response and the rejected-record sink
included); it builds each request while the one before is in flight, which the bare writer
does not. ``bare_overlapped`` sends the same bare requests with that overlap too (the
handler's ``GraphConnection.run_all``), and ``ratio_overlapped`` compares the handler with it.
All three start from an empty graph and are
timed ``--repeats`` times, alternating, with the inputs of both frozen out of the garbage
collector (``gc.freeze``: walking them would be the benchmark's cost, not the handler's).
The figures are the medians of wall seconds and of this process's CPU seconds (plus the
Gremlin Server's, with ``--gremlin-server-pid``); ``ratio`` is the bare elements/s over the
handler's (1.0: the handler adds nothing), ``ratio_cpu`` the same per CPU second. Elements
count the graph written (each batch's distinct vertices and edges), whatever maps wrote it: the
handler's graph store leaves out the vertices it wrote before (``maps_sent`` says what it
sent), so ``bare_new_vertices`` sends bare requests carrying the same maps as the handler (each
batch's vertices less those of the batches before it, and all its edges), and
``ratio_new_vertices`` (``_cpu``) compares the handler with it: like for like.

    .venv/bin/python bench/ingest.py [--records 10000] [--naive-records 1000]
                                     [--gremlin-server ws://127.0.0.1:8182/gremlin]
                                     [--gremlin-server-pid PID] [--repeats 3]
                                     [--only bare_comparison]

The Gremlin Server figures need a running server (``scripts/gremlin-server start``);
without one they are reported as skipped, with the reason.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from gremlin_python.driver.remote_connection import RemoteConnection
from gremlin_python.process.anonymous_traversal import traversal
from gremlin_python.process.traversal import Direction, T
from gremlin_python.statics import long

from fraudcore import backends
from fraudcore.graph import schema
from fraudcore.graph.connection import submit_bytecode
from fraudcore.model import Transaction, parse_transaction
from fraudlocal.emulators.kinesis_esm import LocalStream, kinesis_event
from fraudlocal.emulators.runtime import FunctionRunner, LocalTarget, patched_environment
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


def process_cpu_seconds(pid: int | None) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` (Linux /proc), 0 without one."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_handler(function: str, events: list[dict], target: LocalTarget, records: int) -> dict:
    """``function`` invoked on each event in turn, as the local pipeline invokes it (one runner:
    the template read and the handler imported once)."""
    connection_requests = []
    runner = FunctionRunner(target)
    graph = None
    if function == "IngestGraphFunction":
        # the connection the handler will use (one per settings), to count its requests
        with patched_environment(runner.environment(function)):
            graph = backends.graph_connection()
    started, cpu_started = time.perf_counter(), time.process_time()
    for event in events:
        before = graph.requests if graph else 0
        response = runner.invoke(function, event)
        if response.get("batchItemFailures"):
            raise SystemExit(f"{function}: batch failures {response['batchItemFailures'][:3]}")
        if graph:
            connection_requests.append(graph.requests - before)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    result = {
        "records": records,
        "seconds": round(elapsed, 3),
        "cpu_seconds": round(cpu, 3),
        "records_per_s": round(records / elapsed, 1),
    }
    if connection_requests:
        result["requests"] = sum(connection_requests)
        result["requests_per_batch"] = {
            "mean": round(statistics.mean(connection_requests), 2),
            "max": max(connection_requests),
        }
    return result


def batch_elements(
    events: list[dict], *, new_vertices_only: bool = False
) -> list[tuple[list[dict], list[dict]]]:
    """Each Kinesis batch's distinct vertices and edges as the upsert maps the handler sends
    (edges as on an empty graph), for the bare writer. With ``new_vertices_only``, a batch's
    vertices less those of the batches before it: what the handler sends, its graph store
    leaving out the vertices it wrote (``fraudcore.graph.store.KnownVertices``)."""
    from fraudcore.graph.upserts import GraphBatch

    written: set[str] = set()
    elements = []
    for event in events:
        transactions = [
            parse_transaction(json.loads(base64.b64decode(record["kinesis"]["data"])))
            for record in event["Records"]
        ]
        batch = GraphBatch.from_transactions(transactions)
        vertices = [v for v in batch.vertices.values() if not (new_vertices_only and v.vid in written)]
        written.update(batch.vertices)
        elements.append(
            (
                [vertex.as_map() for vertex in vertices],
                [edge.as_map(None) for edge in batch.edges.values()],
            )
        )
    return elements


class UpsertMapCount:
    """Counts the maps the graph store's mergeV and mergeE requests carry (while entered)."""

    def __enter__(self) -> UpsertMapCount:
        from fraudcore.graph import store

        self.vertex_maps = self.edge_maps = 0
        self._store, self._originals = store, (store.merge_vertices, store.merge_edges)
        merge_vertices, merge_edges = self._originals

        def counted_vertices(g, maps):
            self.vertex_maps += len(maps)
            return merge_vertices(g, maps)

        def counted_edges(g, maps):
            self.edge_maps += len(maps)
            return merge_edges(g, maps)

        store.merge_vertices, store.merge_edges = counted_vertices, counted_edges
        return self

    def __exit__(self, *exc) -> None:
        self._store.merge_vertices, self._store.merge_edges = self._originals


class Direct(RemoteConnection):
    """A connection that sends requests as the handler's graph connection does
    (:func:`fraudcore.graph.connection.submit_bytecode`), without its retries or counting."""

    def __init__(self, inner: RemoteConnection) -> None:
        super().__init__(getattr(inner, "url", None), getattr(inner, "traversal_source", None))
        self.inner = inner

    def submit(self, bytecode):
        return submit_bytecode(self.inner, bytecode)

    def close(self) -> None:
        self.inner.close()


def run_bare(g, elements: list[tuple[list[dict], list[dict]]], per_request: int) -> dict:
    """Bare batched mergeV/mergeE requests: the handler's upsert traversals on prepared maps."""
    from fraudcore.graph.upserts import merge_edges, merge_vertices

    requests = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    for vertices, edges in elements:
        for start in range(0, len(vertices), per_request):
            merge_vertices(g, vertices[start : start + per_request]).iterate()
            requests += 1
        for start in range(0, len(edges), per_request):
            merge_edges(g, edges[start : start + per_request]).iterate()
            requests += 1
    return {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu_started,
        "requests": requests,
    }


def run_bare_overlapped(connection, elements: list[tuple[list[dict], list[dict]]], per_request: int) -> dict:
    """The same bare requests, each built while the one before is in flight, as the handler's
    are (:meth:`fraudcore.graph.connection.GraphConnection.run_all`, no retries)."""
    from fraudcore.graph.connection import GraphConnection
    from fraudcore.graph.upserts import merge_edges, merge_vertices

    graph = GraphConnection(lambda: connection, name="bare", max_retries=0)
    builds = []
    for vertices, edges in elements:
        for start in range(0, len(vertices), per_request):
            builds.append(lambda g, part=vertices[start : start + per_request]: merge_vertices(g, part))
        for start in range(0, len(edges), per_request):
            builds.append(lambda g, part=edges[start : start + per_request]: merge_edges(g, part))
    started, cpu_started = time.perf_counter(), time.process_time()
    graph.run_all(builds)
    return {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu_started,
        "requests": graph.requests,
    }


def bare_comparison(
    events: list[dict],
    root: Path,
    server: str | None,
    server_pid: int | None,
    repeats: int,
    per_request: int,
) -> dict:
    """IngestGraphFunction against bare mergeV/mergeE requests carrying the same elements."""
    from gremlin_python.driver.driver_remote_connection import DriverRemoteConnection

    from fraudlocal.adapters.graph_embedded import open_embedded_graph

    elements = batch_elements(events)
    new_elements = batch_elements(events, new_vertices_only=True)
    # The inputs of both sides (the scenario, the Kinesis events, the prepared maps) stay alive
    # for the whole run: out of the collector's reach, so that neither side pays for walking them.
    gc.collect()
    gc.freeze()
    vertices = sum(len(v) for v, _ in elements)
    edges = sum(len(e) for _, e in elements)
    total = vertices + edges
    new_total = sum(len(v) + len(e) for v, e in new_elements)
    records = sum(len(event["Records"]) for event in events)
    report: dict = {}
    backends_to_run = [("embedded", None)] + ([("gremlin-server", server)] if server else [])
    for backend, endpoint in backends_to_run:
        # warm up (the server's JIT, the handler's imports) before anything is timed
        run_handler(
            "IngestGraphFunction",
            events[:5],
            LocalTarget(root / f"warmup-{backend}", graph_backend=backend, graph_endpoint=endpoint),
            sum(len(event["Records"]) for event in events[:5]),
        )
        backends.reset()
        runs: dict[str, list[dict]] = {
            "handler": [],
            "bare": [],
            "bare_overlapped": [],
            "bare_new_vertices": [],
        }
        for attempt in range(repeats):
            order = ["handler", "bare", "bare_overlapped", "bare_new_vertices"]
            for kind in order if attempt % 2 == 0 else order[::-1]:
                if endpoint:
                    server_available(endpoint)  # start from an empty graph
                server_cpu = process_cpu_seconds(server_pid if endpoint else None)
                state = root / f"compare-{backend}-{kind}-{attempt}"
                if kind == "handler":
                    target = LocalTarget(
                        state,
                        graph_backend=backend,
                        graph_endpoint=endpoint,
                        extra_env=(("GRAPH_WRITE_BATCH", str(per_request)),),
                    )
                    with UpsertMapCount() as sent:
                        run = run_handler("IngestGraphFunction", events, target, records)
                    run["maps_sent"] = {"vertices": sent.vertex_maps, "edges": sent.edge_maps}
                    backends.reset()
                else:
                    connection = (
                        DriverRemoteConnection(endpoint, "g") if endpoint else open_embedded_graph(state)
                    )
                    try:
                        if kind in ("bare", "bare_new_vertices"):
                            run = run_bare(
                                traversal().with_remote(Direct(connection)),
                                elements if kind == "bare" else new_elements,
                                per_request,
                            )
                        else:
                            run = run_bare_overlapped(connection, elements, per_request)
                    finally:
                        connection.close()
                if endpoint and server_pid:
                    run["server_cpu_seconds"] = process_cpu_seconds(server_pid) - server_cpu
                runs[kind].append(run)
        figures = {}
        for kind, kind_runs in runs.items():
            seconds = statistics.median(run["seconds"] for run in kind_runs)
            figure = {
                "seconds": round(seconds, 3),
                "seconds_runs": [round(run["seconds"], 3) for run in kind_runs],
                "cpu_seconds": round(statistics.median(run["cpu_seconds"] for run in kind_runs), 3),
                # the graph written, whatever the maps that wrote it: each batch's distinct
                # vertices and edges
                "elements_per_s": round(total / seconds, 1),
                "requests": kind_runs[-1]["requests"],
            }
            if "maps_sent" in kind_runs[-1]:
                figure["maps_sent"] = kind_runs[-1]["maps_sent"]
            if "server_cpu_seconds" in kind_runs[0]:
                figure["server_cpu_seconds"] = round(
                    statistics.median(run["server_cpu_seconds"] for run in kind_runs), 3
                )
            figure["elements_per_cpu_s"] = round(
                total / (figure["cpu_seconds"] + figure.get("server_cpu_seconds", 0.0)), 1
            )
            figures[kind] = figure
        report[backend] = {
            "records": records,
            "vertices": vertices,
            "edges": edges,
            "elements": total,
            "objects_per_request": per_request,
            "repeats": repeats,
            "handler": figures["handler"],
            "bare": figures["bare"],
            "ratio": round(figures["bare"]["elements_per_s"] / figures["handler"]["elements_per_s"], 2),
            "ratio_cpu": round(
                figures["bare"]["elements_per_cpu_s"] / figures["handler"]["elements_per_cpu_s"], 2
            ),
            "bare_overlapped": figures["bare_overlapped"],
            "ratio_overlapped": round(
                figures["bare_overlapped"]["elements_per_s"] / figures["handler"]["elements_per_s"], 2
            ),
            "new_vertices_only": {"vertices": new_total - edges, "edges": edges, "elements": new_total},
            "bare_new_vertices": figures["bare_new_vertices"],
            "ratio_new_vertices": round(
                figures["bare_new_vertices"]["elements_per_s"] / figures["handler"]["elements_per_s"], 2
            ),
            "ratio_new_vertices_cpu": round(
                figures["bare_new_vertices"]["elements_per_cpu_s"] / figures["handler"]["elements_per_cpu_s"],
                2,
            ),
        }
    gc.unfreeze()
    return report


def largest_request(transactions: list[dict], batch: int, limit: int) -> dict:
    """How many upsert requests each Kinesis batch needs and the most objects one carries."""
    from fraudcore.graph.upserts import GraphBatch

    parsed = [parse_transaction(tx) for tx in transactions]
    requests_per_batch, largest = [], 0
    for start in range(0, len(parsed), batch):
        upserts = GraphBatch.from_transactions(parsed[start : start + batch])
        vertices, edges = len(upserts.vertices), len(upserts.edges)
        requests_per_batch.append(-(-vertices // limit) + -(-edges // limit))
        largest = max(largest, min(limit, max(vertices, edges)))
    return {"upsert_requests_per_batch_max": max(requests_per_batch), "objects_per_request_max": largest}


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
    parser.add_argument(
        "--gremlin-server-pid", type=int, help="the server's pid, to count its CPU time in bare_comparison"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each side in bare_comparison")
    parser.add_argument(
        "--only", choices=["bare_comparison"], help="run only this part (the others take minutes)"
    )
    args = parser.parse_args()

    transactions = scenario_transactions(args.records)
    events = batches(transactions, args.batch)
    report: dict = {"records": args.records, "batch_size": args.batch, "results": {}}
    with tempfile.TemporaryDirectory() as tmp:
        reason = server_available(args.gremlin_server)
        if reason is not None:
            report["gremlin_server_skipped"] = reason
        server = args.gremlin_server if reason is None else None
        if args.only != "bare_comparison":
            run_sections(report, transactions, events, Path(tmp), args, server)
        report["bare_comparison"] = bare_comparison(
            events,
            Path(tmp),
            server,
            args.gremlin_server_pid,
            args.repeats,
            int(os.environ.get("GRAPH_WRITE_BATCH", "100")),
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


def run_sections(
    report: dict, transactions: list[dict], events: list[dict], tmp: Path, args, server: str | None
) -> None:
    """The handlers, the naive writer and the request sizing."""
    embedded = LocalTarget(tmp / "embedded")
    report["results"]["IngestTimeseriesFunction/duckdb"] = run_handler(
        "IngestTimeseriesFunction", events, embedded, args.records
    )
    report["results"]["IngestGraphFunction/embedded"] = run_handler(
        "IngestGraphFunction", events, embedded, args.records
    )
    backends.reset()

    from fraudlocal.adapters.graph_embedded import open_embedded_graph

    naive_graph = open_embedded_graph(tmp / "naive")  # the same durable store as the handler's
    report["results"]["naive_writer/embedded"] = run_naive(
        transactions[: args.naive_records], lambda: naive_graph, reuse=True
    )
    report["results"]["naive_writer/embedded"]["note"] = (
        "in-process engine: no connection to open, so one traversal per record on one connection"
    )

    if server:
        target = LocalTarget(tmp / "server", graph_backend="gremlin-server", graph_endpoint=server)
        report["results"]["IngestGraphFunction/gremlin-server"] = run_handler(
            "IngestGraphFunction", events, target, args.records
        )
        backends.reset()
        server_available(server)  # empty the graph again

        from gremlin_python.driver.driver_remote_connection import DriverRemoteConnection

        report["results"]["naive_writer/gremlin-server"] = run_naive(
            transactions[: args.naive_records],
            lambda: DriverRemoteConnection(server, "g"),
            reuse=False,
        )
    else:
        report["results"]["gremlin-server"] = {"skipped": report["gremlin_server_skipped"]}
    report["request_sizing"] = request_sizing(transactions, events, tmp, args.batch, server)


if __name__ == "__main__":
    main()
