"""Batched, idempotent graph ingest: the same assertions on every graph backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from gremlin_python.driver.remote_connection import RemoteConnection
from gremlin_python.process.traversal import Bytecode, T

from fraudcore.graph.connection import GraphConnection
from fraudcore.graph.store import GraphStore
from fraudcore.graph.upserts import GraphBatch
from fraudcore.model import Transaction

START = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def connection_for(g) -> GraphConnection:
    remote = g.remote_connection
    return GraphConnection(lambda: remote, name="conformance", max_retries=0)


def tx(i: int, account: str, minutes: int, amount: float = 10.0, **extra) -> Transaction:
    fields = {
        "transaction_id": f"t{i}",
        "timestamp": START + timedelta(minutes=minutes),
        "account_id": account,
        "amount": amount,
        "card_id": f"c-{account}",
        "device_id": "d-shared" if account in ("a1", "a2") else f"d-{account}",
        "ip": "10.0.0.1",
        "email": f"{account}@example.com",
        "phone": f"+1{len(account)}",
        "merchant_id": f"m{i % 2}",
    }
    fields.update(extra)
    return Transaction(**fields)


def hundred_records() -> list[Transaction]:
    return [
        tx(
            i,
            f"acct{i % 40}",
            i,
            amount=5.0 + i,
            counterparty_account_id=f"acct{(i + 1) % 40}" if i % 10 == 0 else None,
        )
        for i in range(100)
    ]


def test_a_hundred_record_batch_takes_at_most_three_requests_per_chunk_of_objects(graph_backend):
    from fraudcore.graph.store import object_chunks

    connection = connection_for(graph_backend)
    store = GraphStore(connection, write_batch=150)
    outcome = store.upsert_transactions(hundred_records())
    assert outcome.failed == {}
    assert len(outcome.stored) == 100
    # 100 records touch far more than 150 distinct edges (each account uses 5 identifiers and
    # pays a merchant): the batch goes in several requests of at most 150 objects each
    chunks = object_chunks(hundred_records(), 150)
    whole = GraphBatch.from_transactions(hundred_records())
    assert len(chunks) >= -(-max(len(whole.vertices), len(whole.edges)) // 150) >= 2
    for chunk in chunks:
        part = GraphBatch.from_transactions(chunk)
        assert len(part.vertices) <= 150 and len(part.edges) <= 150
    assert outcome.requests <= 3 * len(chunks)
    assert connection.requests == outcome.requests
    counts = store.counts()
    assert counts["vertices"]["account"] == 40
    assert counts["vertices"]["merchant"] == 2
    assert counts["edges"]["transfers_to"] == 4  # acct0->1, acct10->11, acct20->21, acct30->31


def test_ingest_is_idempotent_and_keeps_aggregates(graph_backend):
    store = GraphStore(connection_for(graph_backend))
    batch = [tx(1, "a1", 0, 100.0), tx(2, "a1", 5, 50.0), tx(3, "a2", 7, 20.0)]
    store.upsert_transactions(batch)
    first = store.counts()
    store.upsert_transactions(batch)  # a Kinesis retry delivers the same records again
    assert store.counts() == first
    assert first["vertices"] == {
        "account": 2,
        "card": 2,
        "device": 1,
        "email": 2,
        "ip": 1,
        "merchant": 2,
        "phone": 1,
    }
    edge = graph_backend.E("account:a1|uses|device:d-shared").element_map().next()
    assert edge["tx_count"] == 2
    assert edge["amount_total"] == 150.0
    assert edge["first_seen"] == int(START.timestamp() * 1000)
    assert edge["last_seen"] == int((START + timedelta(minutes=5)).timestamp() * 1000)
    # the shared device links both accounts
    sharing = graph_backend.V("device:d-shared").in_("uses").has_label("account").id_().to_list()
    assert sorted(sharing) == ["account:a1", "account:a2"]


def test_newer_events_add_to_edges_and_late_events_move_first_seen(graph_backend):
    store = GraphStore(connection_for(graph_backend))
    store.upsert_transactions([tx(1, "a1", 10, 100.0)])
    store.upsert_transactions([tx(2, "a1", 20, 30.0), tx(3, "a1", 2, 7.0)])  # one newer, one late
    edge = graph_backend.E("account:a1|uses|card:c-a1").element_map().next()
    assert edge["tx_count"] == 2
    assert edge["amount_total"] == 130.0
    assert edge["first_seen"] == int((START + timedelta(minutes=2)).timestamp() * 1000)
    assert edge["last_seen"] == int((START + timedelta(minutes=20)).timestamp() * 1000)


def test_a_card_edge_counts_the_payments_made_in_person(graph_backend):
    store = GraphStore(connection_for(graph_backend))
    at_the_till = {"device_id": None, "ip": None}
    batch = [tx(1, "a1", 10, 20.0, **at_the_till), tx(2, "a1", 20, 30.0), tx(3, "a1", 30, 5.0, **at_the_till)]
    store.upsert_transactions(batch)
    store.upsert_transactions(batch)  # a replay adds nothing
    card = graph_backend.E("account:a1|uses|card:c-a1").element_map().next()
    assert (card["tx_count"], card["in_person_count"]) == (3, 2)
    # an online payment from a device is not in person, whatever the channel says
    device = graph_backend.E("account:a1|uses|device:d-shared").element_map().next()
    assert (device["tx_count"], device["in_person_count"]) == (1, 0)


def test_vertices_carry_value_and_first_seen(graph_backend):
    store = GraphStore(connection_for(graph_backend))
    store.upsert_transactions([tx(1, "a9", 3, ip="198.51.100.7")])
    vertex = graph_backend.V("ip:198.51.100.7").element_map().next()
    assert vertex[T.label] == "ip"
    assert vertex["value"] == "198.51.100.7"
    assert vertex["first_seen"] == int((START + timedelta(minutes=3)).timestamp() * 1000)


def test_transfers_link_accounts_and_duplicates_in_a_batch_count_once(graph_backend):
    store = GraphStore(connection_for(graph_backend))
    transfer = tx(1, "a1", 0, 500.0, counterparty_account_id="a2", merchant_id=None)
    outcome = store.upsert_transactions([transfer, transfer])
    assert outcome.stored == {"t1"}
    edge = graph_backend.E("account:a1|transfers_to|account:a2").element_map().next()
    assert edge["tx_count"] == 1
    assert edge["amount_total"] == 500.0


def test_requests_are_sized_by_objects_not_by_transactions(graph_backend):
    """Neptune advises requests of about 100-200 upserted objects: a batch whose distinct
    vertices or edges exceed the limit is cut, and every record is still stored once."""
    from fraudcore.graph.store import object_chunks

    many = [tx(i, f"acct{i}", i, amount=1.0 + i) for i in range(60)]  # new account + card + ... each
    chunks = object_chunks(many, 50)
    assert len(chunks) > 1 and sum(len(c) for c in chunks) == 60
    for chunk in chunks:
        batch = GraphBatch.from_transactions(chunk)
        assert len(batch.vertices) <= 50 and len(batch.edges) <= 50
    recording = RecordingConnection(graph_backend.remote_connection)
    connection = GraphConnection(lambda: recording, name="conformance", max_retries=0)
    store = GraphStore(connection, write_batch=50)
    outcome = store.upsert_transactions(many)
    assert outcome.failed == {} and len(outcome.stored) == 60
    whole = GraphBatch.from_transactions(many)
    assert len(whole.vertices) > 50 and len(whole.edges) > 50
    # every upsert request carries at most 50 maps, and together they carry each distinct
    # vertex and edge once
    assert recording.upserts["mergeV"] and max(recording.upserts["mergeV"]) <= 50
    assert recording.upserts["mergeE"] and max(recording.upserts["mergeE"]) <= 50
    assert sum(recording.upserts["mergeV"]) == len(whole.vertices)
    assert sum(recording.upserts["mergeE"]) == len(whole.edges)
    assert (
        outcome.requests == connection.requests >= -(-len(whole.vertices) // 50) + -(-len(whole.edges) // 50)
    )
    assert store.counts()["vertices"]["account"] == 60


class RecordingConnection(RemoteConnection):
    """The real backend, recording how many maps each mergeV and mergeE request injects."""

    def __init__(self, inner: RemoteConnection) -> None:
        super().__init__(getattr(inner, "url", None), getattr(inner, "traversal_source", None))
        self.inner = inner
        self.upserts: dict[str, list[int]] = {"mergeV": [], "mergeE": []}

    def submit(self, bytecode: Bytecode):
        steps = [step[0] for step in bytecode.step_instructions]
        for kind in self.upserts:
            if kind in steps:
                injected = next(step[1] for step in bytecode.step_instructions if step[0] == "inject")
                self.upserts[kind].append(len(injected))
        return self.inner.submit(bytecode)

    def is_closed(self) -> bool:
        return self.inner.is_closed()

    def close(self) -> None:
        pass  # the fixture owns the real connection


def test_the_conformance_suite_runs_the_client_neptune_allows():
    """gremlinpython is pinned to the highest client Neptune names for engines 1.3.2.0 and later."""
    from importlib.metadata import version
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    pinned = {
        line.split("==")[1].strip().strip('",')
        for path in (repo / "pyproject.toml", repo / "layers/common/requirements.txt")
        for line in path.read_text().splitlines()
        if line.strip().strip('",').startswith("gremlinpython==")
    }
    assert pinned == {"3.7.3"}
    assert version("gremlinpython") == "3.7.3"


def test_the_edge_state_read_answers_one_list_of_value_lists_in_its_own_order(graph_backend):
    """The read the upserts rely on, on this backend: one result, an ``[id, *EDGE_STATE]`` list
    per existing edge (values in the order the read names them); an edge without some of the
    properties answers a shorter list, set aside and read again in full."""
    from gremlin_python.process.traversal import Direction

    from fraudcore.graph.upserts import EDGE_STATE, edge_states, read_edges, read_edges_in_full

    store = GraphStore(connection_for(graph_backend))
    store.upsert_transactions([tx(1, "a1", 10, 12.5, device_id=None, ip=None), tx(2, "a1", 20, 30.0)])
    # an edge written before in_person_count existed has no such property
    graph_backend.merge_e(
        {
            T.id: "account:a1|old|card:c-a1",
            T.label: "old",
            Direction.OUT: "account:a1",
            Direction.IN: "card:c-a1",
        }
    ).property("first_seen", 1).property("last_seen", 2).property("tx_count", 3).property(
        "amount_total", 4.5
    ).iterate()
    card, old = "account:a1|uses|card:c-a1", "account:a1|old|card:c-a1"
    ids = [card, old, "account:a1|uses|card:nowhere"]
    answer = read_edges(graph_backend, ids).to_list()
    assert len(answer) == 1 and isinstance(answer[0], list) and len(answer[0]) == 2
    rows = {row[0]: row for row in answer[0]}
    assert set(rows) == {card, old}
    first, last = (int((START + timedelta(minutes=m)).timestamp() * 1000) for m in (10, 20))
    assert rows[card] == [card, first, last, 2, 42.5, 1]
    assert len(EDGE_STATE) == 5 and rows[old] == [old, 1, 2, 3, 4.5]  # in_person_count left out
    card_state = {
        "first_seen": first,
        "last_seen": last,
        "tx_count": 2,
        "amount_total": 42.5,
        "in_person_count": 1,
    }
    incomplete: list[str] = []
    assert edge_states(answer[0], set(ids), incomplete) == {card: card_state}
    assert incomplete == [old]
    with pytest.raises(ValueError, match="expected \\[id, first_seen"):
        edge_states(answer[0], set(ids))  # without a list for them, a short row is refused
    # read in full, every edge answers every property, "" for one it does not have
    full = read_edges_in_full(graph_backend, ids).to_list()
    assert sorted(full[0]) == sorted([[card, first, last, 2, 42.5, 1], [old, 1, 2, 3, 4.5, ""]])
    assert edge_states(full[0], set(ids)) == {
        card: card_state,
        old: {"first_seen": 1, "last_seen": 2, "tx_count": 3, "amount_total": 4.5},
    }
    assert read_edges(graph_backend, ["account:a1|uses|card:nowhere"]).to_list() == [[]]


def test_an_edge_written_before_a_property_existed_still_adds_up(graph_backend):
    """The store reads such an edge again in full, and its aggregates go on from what it holds."""
    store = GraphStore(connection_for(graph_backend))
    store.upsert_transactions([tx(1, "a1", 10, 12.5)])
    legacy = "account:a1|uses|card:c-a1"
    graph_backend.E(legacy).properties("in_person_count").drop().iterate()
    assert "in_person_count" not in graph_backend.E(legacy).element_map().next()
    requests = store.connection.requests
    outcome = store.upsert_transactions([tx(2, "a1", 20, 30.0, device_id=None, ip=None)])
    assert outcome.stored == {"t2"}
    card = graph_backend.E(legacy).element_map().next()
    first, last = (int((START + timedelta(minutes=m)).timestamp() * 1000) for m in (10, 20))
    assert (card["first_seen"], card["last_seen"], card["tx_count"], card["amount_total"]) == (
        first,
        last,
        2,
        42.5,
    )
    assert card["in_person_count"] == 1  # counted from nothing: the payment at the till
    # the read, the read in full of the legacy edge, the new merchant's mergeV, the mergeE
    assert store.connection.requests - requests == outcome.requests == 4


def test_an_edge_upsert_sends_its_properties_once_for_both_options(graph_backend):
    """One property map per edge, selected by onCreate and onMatch: a new edge gets it, a
    matched edge is set to it, and the request carries it once."""
    from fraudcore.graph.upserts import EdgeEvent, EdgeUpsert, VertexUpsert, merge_edges, merge_vertices

    vertices = [VertexUpsert("account:x", "account", "x", 1), VertexUpsert("card:y", "card", "y", 1)]
    assert merge_vertices(graph_backend, [v.as_map() for v in vertices]).to_list() == [2]
    edge = EdgeUpsert("account:x|uses|card:y", "uses", "account:x", "card:y", [EdgeEvent(5, 2.5, True)])
    row = edge.as_map(None)
    assert set(row) == {"match", "props"}
    assert merge_edges(graph_backend, [row]).to_list() == [1]
    later = EdgeUpsert(edge.eid, "uses", "account:x", "card:y", [EdgeEvent(9, 1.25), EdgeEvent(3, 1.0)])
    existing = {"first_seen": 5, "last_seen": 5, "tx_count": 1, "amount_total": 2.5, "in_person_count": 1}
    assert merge_edges(graph_backend, [later.as_map(existing)]).to_list() == [1]
    stored = graph_backend.E(edge.eid).element_map().next()
    assert {k: stored[k] for k in existing} == {
        "first_seen": 3,
        "last_seen": 9,
        "tx_count": 2,
        "amount_total": 3.75,
        "in_person_count": 1,
    }
    assert graph_backend.E().count().next() == 1


def test_vertices_the_store_has_written_are_left_out_of_later_batches(graph_backend):
    """A vertex upsert only creates, so a vertex an earlier request wrote is not sent again;
    the graph ends as if every batch had sent all its vertices."""
    recording = RecordingConnection(graph_backend.remote_connection)
    connection = GraphConnection(lambda: recording, name="conformance", max_retries=0)
    store = GraphStore(connection)
    first = [tx(1, "a1", 0, 100.0), tx(2, "a2", 1, 20.0)]
    second = [tx(3, "a1", 5, 50.0), tx(4, "a3", 6, 30.0)]
    store.upsert_transactions(first)
    sent_first = sum(recording.upserts["mergeV"])
    assert sent_first == len(GraphBatch.from_transactions(first).vertices)
    assert set(GraphBatch.from_transactions(first).vertices) <= set(store.known_vertices._recent)

    outcome = store.upsert_transactions(second)
    assert outcome.stored == {"t3", "t4"}
    new = GraphBatch.from_transactions(second).vertices.keys() - GraphBatch.from_transactions(first).vertices
    assert new and sum(recording.upserts["mergeV"]) - sent_first == len(new)
    assert len(recording.upserts["mergeE"]) == 2 and recording.upserts["mergeE"][1] == len(
        GraphBatch.from_transactions(second).edges
    )

    # every vertex known: the batch is the edge read and the edge upserts, nothing else, and the
    # edges still add to what the read found
    before = connection.requests
    outcome = store.upsert_transactions([tx(5, "a1", 9, 7.0)])
    assert outcome.stored == {"t5"} and outcome.requests == connection.requests - before == 2
    assert sum(recording.upserts["mergeV"]) - sent_first == len(new)

    edge = graph_backend.E("account:a1|uses|card:c-a1").element_map().next()
    assert (edge["tx_count"], edge["amount_total"]) == (3, 157.0)
    assert edge["last_seen"] == int((START + timedelta(minutes=9)).timestamp() * 1000)
    # a vertex keeps what its creation wrote
    account = graph_backend.V("account:a1").element_map().next()
    assert account["first_seen"] == int(START.timestamp() * 1000)
    assert store.counts()["vertices"] == {
        "account": 3,
        "card": 3,
        "device": 2,
        "email": 3,
        "ip": 1,
        "merchant": 2,
        "phone": 1,
    }


def test_a_vertex_removed_behind_the_store_is_written_again(graph_backend):
    """The store's known vertices may be wrong about a graph someone else changed: the edge to
    a removed vertex is refused, and the batch is written again with all its vertices."""
    recording = RecordingConnection(graph_backend.remote_connection)
    store = GraphStore(GraphConnection(lambda: recording, name="conformance", max_retries=0))
    store.upsert_transactions([tx(1, "a1", 0, 100.0)])
    assert "card:c-a1" in store.known_vertices
    graph_backend.V("card:c-a1").drop().iterate()  # its edge goes with it

    sent = len(recording.upserts["mergeV"])
    outcome = store.upsert_transactions([tx(2, "a1", 5, 50.0)])

    assert outcome.stored == {"t2"} and outcome.failed == {} and outcome.rejected == {}
    # the first try sent only the vertex new to the store (merchant m0: t1 paid m1); written
    # again, the batch sent every one of its vertices
    vertices = GraphBatch.from_transactions([tx(2, "a1", 5, 50.0)]).vertices
    assert recording.upserts["mergeV"][sent:] == [1, len(vertices)]
    card = graph_backend.V("card:c-a1").element_map().next()
    assert card["first_seen"] == int((START + timedelta(minutes=5)).timestamp() * 1000)
    edge = graph_backend.E("account:a1|uses|card:c-a1").element_map().next()
    assert (edge["tx_count"], edge["amount_total"]) == (1, 50.0)
    other = graph_backend.E("account:a1|uses|device:d-shared").element_map().next()
    assert (other["tx_count"], other["amount_total"]) == (2, 150.0)
    assert set(vertices) <= set(store.known_vertices._recent)


def test_a_new_connection_forgets_the_known_vertices(graph_backend):
    """A reconnect may reach another graph (a server restarted empty): the next batch sends all
    its vertices again."""
    recording = RecordingConnection(graph_backend.remote_connection)
    connection = GraphConnection(lambda: recording, name="conformance", max_retries=0)
    store = GraphStore(connection)
    batch = [tx(1, "a1", 0, 100.0)]
    vertices = len(GraphBatch.from_transactions(batch).vertices)
    store.upsert_transactions(batch)
    store.upsert_transactions([tx(2, "a1", 1, 1.0, merchant_id="m1")])  # t1's vertices
    assert recording.upserts["mergeV"] == [vertices]
    connection.reconnect()
    store.upsert_transactions([tx(3, "a1", 2, 1.0, merchant_id="m1")])
    assert recording.upserts["mergeV"] == [vertices, vertices]
    assert connection.connects == 2
    edge = graph_backend.E("account:a1|uses|card:c-a1").element_map().next()
    assert (edge["tx_count"], edge["amount_total"]) == (3, 102.0)
