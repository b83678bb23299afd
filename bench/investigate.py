"""Ring-analysis latency from flagged accounts, on the embedded engine and a Gremlin Server.

    .venv/bin/python bench/investigate.py [--sizes 10000 100000] [--samples 60]
        [--backends embedded gremlin-server] [--gremlin-server-url ws://127.0.0.1:8182/gremlin]
        [--traversal-source g]

Builds a synthetic graph per size (the model of fraudcore.graph.schema): every account
has its own card, device and IP; 2 % of accounts sit in rings of 4-8 sharing a card, a
device or a phone; 5 % in households of 2-3 sharing an IP and a device; and 3 public IPs
are each used by 500 accounts. Half the investigated accounts are ring members, half are
ordinary accounts. Prints one JSON object: p50/p99/mean milliseconds and requests per
analysis, per backend and size. Loading the 100,000-account graph takes minutes.

The Gremlin Server's graph behind ``--traversal-source`` is emptied first.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gremlin_python.process.anonymous_traversal import traversal
from gremlin_python.process.graph_traversal import GraphTraversalSource, __
from gremlin_python.process.traversal import Cardinality, Direction, Merge, T
from gremlin_python.statics import long

from fraudcore.graph import schema
from fraudcore.investigation import Investigation, analyse_ring

BATCH = 500
REFERENCE = "2026-11-29T12:00:00.000Z"
SEEN = 1_795_953_600_000


def synthetic_graph(
    accounts: int, seed: int = 11
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str], list[str]]:
    rng = random.Random(seed)
    vertices: dict[str, dict[str, Any]] = {}
    edges: dict[str, dict[Any, Any]] = {}

    def vertex(label: str, value: str) -> str:
        vid = schema.vertex_id(label, value)
        vertices.setdefault(vid, {"match": {T.id: vid, T.label: label}, "create": {"value": value}})
        return vid

    def link(account: str, label: str, value: str) -> None:
        out_id, in_id = vertex(schema.ACCOUNT, account), vertex(label, value)
        edge_label = {"email": schema.HAS_EMAIL, "phone": schema.HAS_PHONE}.get(label, schema.USES)
        eid = schema.edge_id(edge_label, out_id, in_id)
        edges[eid] = {
            "match": {T.id: eid, T.label: edge_label, Direction.OUT: out_id, Direction.IN: in_id},
            "create": {"first_seen": long(SEEN), "last_seen": long(SEEN), "tx_count": long(1)},
        }

    names = [f"acc-{n:06d}" for n in range(accounts)]
    for name in names:
        link(name, "card", f"card-{name}")
        link(name, "device", f"dev-{name}")
        link(name, "ip", f"ip-{name}")
    shuffled = names[:]
    rng.shuffle(shuffled)
    cursor, ring_members = 0, []
    while cursor < accounts * 0.02:
        size = rng.randint(4, 8)
        ring = shuffled[cursor : cursor + size]
        cursor += size
        for i, member in enumerate(ring):
            kind = ("card", "device", "phone")[i % 3]
            link(member, kind, f"ring-{kind}-{cursor}")
            link(member, "device", f"ring-dev-{cursor}") if i % 2 else None
        ring_members.extend(ring)
    households_end = cursor + int(accounts * 0.05)
    while cursor < households_end:
        size = rng.randint(2, 3)
        for member in shuffled[cursor : cursor + size]:
            link(member, "ip", f"home-ip-{cursor}")
            link(member, "device", f"home-dev-{cursor}")
        cursor += size
    for public in range(3):
        for member in rng.sample(names, 500):
            link(member, "ip", f"public-ip-{public}")
    ordinary = shuffled[cursor:]
    return list(vertices.values()), list(edges.values()), ring_members, ordinary


def load(g: GraphTraversalSource, vertices: list[dict[str, Any]], edges: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    for rows, step in ((vertices, "merge_v"), (edges, "merge_e")):
        for i in range(0, len(rows), BATCH):
            source = g.inject(rows[i : i + BATCH]).unfold().as_("row")
            getattr(source, step)(__.select("row").select("match")).option(
                Merge.on_create, __.select("row").select("create")
            ).iterate()
    return time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def measure(g: GraphTraversalSource, accounts: list[str]) -> dict[str, Any]:
    latencies, requests, members = [], [], []
    for account in accounts:
        g.V(schema.vertex_id(schema.ACCOUNT, account)).property(Cardinality.single, "flagged", True).iterate()
        subject = Investigation("account", account, "flag", "high_value_burst", REFERENCE, 0.7)
        started = time.perf_counter()
        result = analyse_ring(g, subject)
        latencies.append((time.perf_counter() - started) * 1000)
        requests.append(result["requests"])
        members.append(len(result["members"]))
    return {
        "analyses": len(latencies),
        "p50_ms": round(percentile(latencies, 0.5), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "mean_ms": round(statistics.fmean(latencies), 2),
        "max_ms": round(max(latencies), 2),
        "requests_per_analysis": round(statistics.fmean(requests), 2),
        "mean_members": round(statistics.fmean(members), 2),
    }


def open_backend(name: str, args: argparse.Namespace, workdir: Path) -> tuple[Any, Any]:
    if name == "embedded":
        from fraudlocal.adapters.graph_embedded import open_embedded_graph

        connection = open_embedded_graph(workdir)
    else:
        from gremlin_python.driver.driver_remote_connection import DriverRemoteConnection

        connection = DriverRemoteConnection(args.gremlin_server_url, args.traversal_source)
    g = traversal().with_remote(connection)
    if name != "embedded":
        g.V().drop().iterate()
    return g, connection


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--samples", type=int, default=60, help="analyses per backend and size")
    parser.add_argument(
        "--backends",
        nargs="+",
        default=["embedded", "gremlin-server"],
        choices=["embedded", "gremlin-server"],
    )
    parser.add_argument("--gremlin-server-url", default="ws://127.0.0.1:8182/gremlin")
    parser.add_argument("--traversal-source", default="g")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"benchmark": "ring_analysis", "results": []}
    for size in args.sizes:
        vertices, edges, ring_members, ordinary = synthetic_graph(size)
        rng = random.Random(size)
        half = args.samples // 2
        sample = rng.sample(ring_members, min(half, len(ring_members))) + rng.sample(
            ordinary, args.samples - half
        )
        for backend in args.backends:
            with tempfile.TemporaryDirectory() as workdir:
                g, connection = open_backend(backend, args, Path(workdir))
                try:
                    load_seconds = load(g, vertices, edges)
                    result = measure(g, sample)
                finally:
                    if backend != "embedded":
                        g.V().drop().iterate()
                    connection.close()
            entry = {
                "backend": backend,
                "accounts": size,
                "vertices": len(vertices),
                "edges": len(edges),
                "load_seconds": round(load_seconds, 1),
                **result,
            }
            report["results"].append(entry)
            print(json.dumps(entry), file=sys.stderr)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
