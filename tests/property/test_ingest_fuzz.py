"""Property-based fuzzing of both ingest functions, on DuckDB and on both graph backends.

Hypothesis draws batches of valid records (awkward ids with separators, quotes, non-ASCII,
edge-of-range amounts and times) mixed with hostile ones (huge numbers, NaN, odd dates,
deep nesting, long ids, control characters, not JSON). For every batch:

- the handler returns (no exception) with no ``batchItemFailures``: nothing here is transient;
- stored + rejected == sent: every valid record is in the store, every hostile one in the
  rejected-record sink with a reason;
- a second delivery of the same batch (a Kinesis retry) changes no count.

The examples are bounded (``FUZZ_EXAMPLES``, default 15 per backend) so the suite stays
fast in CI; ``bench/fuzz.py`` runs 100,000 records.
"""

from __future__ import annotations

import os
import random
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from fraudcore.graph.connection import GraphConnection
from fraudcore.graph.store import GraphStore
from fraudcore.ingest import handle_kinesis_event
from fraudcore.mapping import load_mapping
from fraudlocal.adapters.graph_embedded import open_embedded_graph
from fraudlocal.adapters.sinks import JsonlRejectedRecordSink
from fraudlocal.adapters.timeseries_duckdb import DuckDBTimeseriesStore
from fraudlocal.emulators.kinesis_esm import LocalStream, kinesis_event
from fraudlocal.hostile import HOSTILE_KINDS, hostile_record, valid_record

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI failures reproduce
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    # no shrinking in CI: a random source shrinks slowly; the failing example is printed whole
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)

STREAM = LocalStream()

batches = st.tuples(
    st.randoms(use_true_random=False),
    st.integers(min_value=0, max_value=60),  # valid records
    st.lists(st.sampled_from(sorted(HOSTILE_KINDS)), max_size=20),  # hostile records
)


def build_batch(rng: random.Random, valid: int, hostile: list[str]):
    """A shuffled Kinesis event of ``valid`` valid and the given hostile records."""
    prefix = f"f{uuid.uuid4().hex[:8]}-"
    entries = [("valid", valid_record(rng, prefix, i)) for i in range(valid)]
    entries += [("hostile", hostile_record(rng, prefix, 1000 + i, kind)) for i, kind in enumerate(hostile)]
    rng.shuffle(entries)
    valid_ids, accounts = set(), set()
    records = []
    for kind, payload in entries:
        # one stream for every example: sequence numbers are unique, as on a real stream
        records.append(STREAM.put(payload, partition_key=prefix))
        if kind == "valid":
            valid_ids.add(str(payload["transaction_id"]).strip())
            accounts.add(str(payload["account_id"]).strip())
            if payload.get("counterparty_account_id"):
                accounts.add(str(payload["counterparty_account_id"]).strip())
    return kinesis_event(records), valid_ids, accounts, len(hostile)


def deliver(event, write, sink, source: str) -> dict:
    return handle_kinesis_event(event, write=write, sink=sink, source=source, mapping=load_mapping("auto"))


def rejected_by(sink: JsonlRejectedRecordSink, source: str) -> list[dict]:
    return [row for row in sink.read() if row["source"] == source]


@pytest.fixture
def duckdb_store(tmp_path: Path):
    with DuckDBTimeseriesStore(tmp_path / "ts.duckdb", "fraud", "transactions") as store:
        yield store


def test_timeseries_ingest_stores_or_rejects_every_record(duckdb_store, tmp_path: Path):
    sink = JsonlRejectedRecordSink(tmp_path / "sink")

    @FUZZ
    @given(batches)
    def check(batch) -> None:
        rng, valid, hostile = batch
        event, valid_ids, _, hostile_count = build_batch(rng, valid, hostile)
        stored_before = duckdb_store.count()
        rejected_before = len(rejected_by(sink, "IngestTimeseriesFunction"))

        response = deliver(event, duckdb_store.write, sink, "IngestTimeseriesFunction")
        assert response["batchItemFailures"] == []
        stored = duckdb_store.count() - stored_before
        rejected = rejected_by(sink, "IngestTimeseriesFunction")[rejected_before:]
        assert stored == len(valid_ids)
        assert len(rejected) == hostile_count
        assert all(row["reason"] for row in rejected)

        again = deliver(event, duckdb_store.write, sink, "IngestTimeseriesFunction")
        assert again["batchItemFailures"] == []
        assert duckdb_store.count() - stored_before == len(valid_ids)
        assert len(rejected_by(sink, "IngestTimeseriesFunction")) == rejected_before + hostile_count

    check()


def graph_snapshot(store: GraphStore) -> tuple:
    counts = store.counts()
    tx_counts = store.connection.run(lambda g: g.E().values("tx_count"), "toList")
    return counts, sum(int(n) for n in tx_counts)


def graph_ingest_property(store: GraphStore, tmp_path: Path) -> None:
    sink = JsonlRejectedRecordSink(tmp_path / "sink")
    source = "IngestGraphFunction"

    @FUZZ
    @given(batches)
    def check(batch) -> None:
        rng, valid, hostile = batch
        event, _, accounts, hostile_count = build_batch(rng, valid, hostile)
        rejected_before = len(rejected_by(sink, source))

        response = deliver(event, store.upsert_transactions, sink, source)
        assert response["batchItemFailures"] == []
        rejected = rejected_by(sink, source)[rejected_before:]
        assert len(rejected) == hostile_count
        assert all(row["reason"] for row in rejected)
        # every valid record reached the graph: the account vertex of each is there
        vertex_ids = [f"account:{account}" for account in sorted(accounts)]
        if vertex_ids:
            found = store.connection.run(lambda g: g.V(*vertex_ids).id_(), "toList")
            assert sorted(found) == vertex_ids
        after_first = graph_snapshot(store)

        again = deliver(event, store.upsert_transactions, sink, source)
        assert again["batchItemFailures"] == []
        assert graph_snapshot(store) == after_first
        assert len(rejected_by(sink, source)) == rejected_before + hostile_count

    check()


def test_graph_ingest_on_the_embedded_engine(tmp_path: Path):
    remote = open_embedded_graph(tmp_path / "graph")
    try:
        store = GraphStore(GraphConnection(lambda: remote, name="fuzz", max_retries=0))
        graph_ingest_property(store, tmp_path)
    finally:
        remote.close()


@pytest.mark.gremlin_server
def test_graph_ingest_on_gremlin_server(clean_server_graph, tmp_path: Path):
    remote = clean_server_graph
    store = GraphStore(GraphConnection(lambda: remote, name="fuzz", max_retries=0))
    graph_ingest_property(store, tmp_path)
