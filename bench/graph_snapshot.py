"""The memory the embedded graph engine needs while it writes a snapshot of its store; prints JSON.

The local graph is a durable graphersal Store: every commit goes to its write-ahead log, and
from time to time the engine writes a snapshot of the whole graph (``Store.checkpoint``;
the store also takes them by itself as its log grows). While it writes one, the process
holds a second, transient form of the graph. This benchmark measures that transient on a
graph shaped like the pipeline's (accounts paying merchants, edges of three properties):

- the graph is loaded into a new store from a generated GraphML file (one bulk load);
- ``graph_mb``: the engine's own count of the bytes it holds live (``tracked_live_bytes``);
- ``checkpoint_peak_extra_mb``: the highest resident memory while ``checkpoint()`` runs,
  sampled every 5 ms, minus the resident memory just before it;
- ``extra_per_graph_mb``: the ratio of the two, the factor docs/operations.md uses to say
  what a local replay needs at its peak.

Usage: python bench/graph_snapshot.py [--edges 300000,1000000] [--accounts 20000] [--merchants 2000]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import graphersal


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


def write_graphml(path: Path, accounts: int, merchants: int, edges: int, seed: int) -> None:
    rng = random.Random(seed)
    with path.open("w") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        out.write('<graphml xmlns="http://graphml.graphdrawing.org/xmlns">\n')
        for key, owner, kind in (
            ("labelV", "node", "string"),
            ("labelE", "edge", "string"),
            ("entity_id", "node", "string"),
            ("amount", "edge", "double"),
            ("first_seen", "edge", "string"),
            ("count", "edge", "int"),
        ):
            out.write(f'<key id="{key}" for="{owner}" attr.name="{key}" attr.type="{kind}"/>\n')
        out.write('<graph id="G" edgedefault="directed">\n')
        for i in range(accounts + merchants):
            label, name = (
                ("account", f"acct-{i:06d}") if i < accounts else ("merchant", f"m-{i - accounts:04d}")
            )
            out.write(
                f'<node id="{i}"><data key="labelV">{label}</data><data key="entity_id">{name}</data></node>\n'
            )
        for j in range(edges):
            source, target = rng.randrange(accounts), accounts + rng.randrange(merchants)
            out.write(
                f'<edge id="e{j}" source="{source}" target="{target}"><data key="labelE">pays</data>'
                f'<data key="amount">{rng.lognormvariate(3.5, 1.1):.2f}</data>'
                '<data key="first_seen">2026-11-20T00:00:00Z</data><data key="count">1</data></edge>\n'
            )
        out.write("</graph></graphml>\n")


def measure(workdir: Path, accounts: int, merchants: int, edges: int, seed: int) -> dict[str, Any]:
    source = workdir / f"graph-{edges}.graphml"
    write_graphml(source, accounts, merchants, edges, seed)
    store = graphersal.Store.create(str(workdir / f"store-{edges}"))
    try:
        began = time.perf_counter()
        store.graph.import_graphml(str(source))
        load_s = time.perf_counter() - began
        graph_mb = store.graph.memory_report(max_elements=1000)["tracked_live_bytes"] / 2**20
        before = rss_mb()
        highest = [before]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                highest[0] = max(highest[0], rss_mb())
                time.sleep(0.005)

        sampler = threading.Thread(target=sample)
        sampler.start()
        began = time.perf_counter()
        store.checkpoint()
        checkpoint_s = time.perf_counter() - began
        done.set()
        sampler.join()
        extra = highest[0] - before
        return {
            "elements": accounts + merchants + edges,
            "graph_mb": round(graph_mb, 1),
            "rss_before_checkpoint_mb": round(before, 1),
            "checkpoint_peak_extra_mb": round(extra, 1),
            "extra_per_graph_mb": round(extra / graph_mb, 2),
            "load_seconds": round(load_s, 1),
            "checkpoint_seconds": round(checkpoint_s, 1),
        }
    finally:
        store.close()
        source.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", default="300000,1000000")
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--merchants", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-graph-snapshot-") as tmp:
        runs = [
            measure(Path(tmp), args.accounts, args.merchants, int(n), args.seed)
            for n in args.edges.split(",")
        ]
    print(json.dumps({"benchmark": "graph_snapshot", "engine": "graphersal Store", "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
