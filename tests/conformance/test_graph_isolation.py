"""A record the graph refuses fails only itself, on every graph backend; composite ids never collide."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gremlin_python.driver.protocol import GremlinServerError
from gremlin_python.driver.remote_connection import RemoteConnection
from gremlin_python.process.traversal import Bytecode

from fraudcore.graph import schema
from fraudcore.graph.connection import GraphConnection
from fraudcore.graph.store import GraphStore
from fraudcore.model import Transaction

START = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
POISON = "acct-refused"


def tx(i: int, account: str, **extra: Any) -> Transaction:
    fields: dict[str, Any] = {
        "transaction_id": f"t{i}",
        "timestamp": START + timedelta(seconds=i),
        "account_id": account,
        "amount": 10.0 + i,
        "device_id": f"dev-{i % 7}",
    }
    fields.update(extra)
    return Transaction(**fields)


def _mentions(value: Any, needle: str) -> bool:
    if isinstance(value, str):
        return needle in value
    if isinstance(value, dict):
        return any(_mentions(k, needle) or _mentions(v, needle) for k, v in value.items())
    if isinstance(value, list | tuple | set):
        return any(_mentions(item, needle) for item in value)
    return False


class RefusingConnection(RemoteConnection):
    """The real backend, except that it refuses any write that names one account.

    Stands for what a store refuses for its own reasons (a Neptune constraint, a value a
    server cannot deserialize): a server error that is neither a lost connection nor a
    conflict, so retrying the same request cannot help.
    """

    def __init__(self, inner: RemoteConnection) -> None:
        super().__init__(getattr(inner, "url", None), getattr(inner, "traversal_source", None))
        self.inner = inner
        self.refused = 0

    def submit(self, bytecode: Bytecode):
        writes = any(step[0] in ("mergeV", "mergeE") for step in bytecode.step_instructions)
        if writes and any(_mentions(step[1:], POISON) for step in bytecode.step_instructions):
            self.refused += 1
            raise GremlinServerError(
                {"code": 500, "message": f"value of {POISON} cannot be stored", "attributes": {}}
            )
        return self.inner.submit(bytecode)

    def is_closed(self) -> bool:
        return self.inner.is_closed()

    def close(self) -> None:
        pass  # the fixture owns the real connection


def test_one_refused_record_fails_only_itself_in_a_batch_of_100(graph_backend):
    refusing = RefusingConnection(graph_backend.remote_connection)
    store = GraphStore(GraphConnection(lambda: refusing, name="isolation", max_retries=0), write_batch=150)
    batch = [tx(i, POISON if i == 37 else f"acct-{i % 30}") for i in range(100)]

    outcome = store.upsert_transactions(batch)

    assert set(outcome.rejected) == {"t37"}
    assert "cannot be stored" in outcome.rejected["t37"]
    assert outcome.failed == {}
    assert outcome.stored == {f"t{i}" for i in range(100) if i != 37}
    assert store.counts()["vertices"]["account"] == 30
    # halving found it in a logarithmic number of requests, not one per record
    assert refusing.refused <= 2 * 8
    # a second delivery of the batch changes nothing and refuses the same record again
    again = store.upsert_transactions(batch)
    assert set(again.rejected) == {"t37"} and again.stored == outcome.stored


def test_a_lost_graph_fails_the_records_for_a_retry_instead_of_rejecting_them(graph_backend):
    def unreachable() -> RemoteConnection:
        raise ConnectionRefusedError("graph is down")

    store = GraphStore(GraphConnection(unreachable, name="down", max_retries=1, sleep=lambda _: None))
    outcome = store.upsert_transactions([tx(i, f"acct-{i}") for i in range(5)])
    assert outcome.rejected == {} and outcome.stored == set()
    assert set(outcome.failed) == {f"t{i}" for i in range(5)}


def test_separators_in_identifiers_never_make_two_edges_share_an_id(graph_backend):
    # Joined without escaping, both edges would be "account:a|uses|device:b|uses|device:c".
    assert schema.edge_id(schema.USES, "account:a|uses|device:b", "device:c") != schema.edge_id(
        schema.USES, "account:a", "device:b|uses|device:c"
    )
    assert schema.edge_id("uses", "account:a%7C", "device:c") != schema.edge_id(
        "uses", "account:a|", "device:c"
    )
    store = GraphStore(GraphConnection(lambda: graph_backend.remote_connection, name="ids", max_retries=0))
    outcome = store.upsert_transactions(
        [
            tx(1, "a|uses|device:b", device_id="c"),
            tx(2, "a", device_id="b|uses|device:c"),
            tx(3, "100%", device_id="x%7Cy"),
            tx(4, "100%", device_id="x|y"),
        ]
    )
    assert outcome.stored == {"t1", "t2", "t3", "t4"}
    assert store.counts()["edges"]["uses"] == 4


class EdgeRefusingConnection(RefusingConnection):
    """Refuses only the edge writes that name one device (its vertex is accepted)."""

    def __init__(self, inner: RemoteConnection, device: str) -> None:
        super().__init__(inner)
        self.device = device
        self.submitted: list[str] = []
        self.first_refusal: int | None = None

    def submit(self, bytecode: Bytecode):
        steps = [step[0] for step in bytecode.step_instructions]
        self.submitted.append("mergeE" if "mergeE" in steps else "mergeV" if "mergeV" in steps else "read")
        if "mergeE" in steps and any(_mentions(step[1:], self.device) for step in bytecode.step_instructions):
            self.refused += 1
            if self.first_refusal is None:
                self.first_refusal = len(self.submitted) - 1
            raise GremlinServerError(
                {"code": 500, "message": f"edge to {self.device} refused", "attributes": {}}
            )
        return self.inner.submit(bytecode)


def test_a_record_refused_in_a_later_edge_request_is_rejected_and_the_rest_counted_once(graph_backend):
    """The batch goes first as a whole (one read, then vertex and edge requests); when an edge
    request fails after others were written, the chunked path isolates the record and the edges
    already written are not counted twice."""
    refusing = EdgeRefusingConnection(graph_backend.remote_connection, "dev-refused")
    store = GraphStore(GraphConnection(lambda: refusing, name="isolation", max_retries=0), write_batch=10)
    batch = [
        tx(i, f"acct-{i % 12}", device_id="dev-refused" if i == 41 else f"dev-{i % 12}") for i in range(48)
    ]

    outcome = store.upsert_transactions(batch)

    assert set(outcome.rejected) == {"t41"} and "dev-refused" in outcome.rejected["t41"]
    assert outcome.failed == {}
    assert outcome.stored == {f"t{i}" for i in range(48) if i != 41}
    # the whole-batch try had written an edge request before the refused one
    assert refusing.submitted[: refusing.first_refusal].count("mergeE") >= 1
    g = graph_backend
    for account in range(12):
        edge = (
            g.E(schema.edge_id(schema.USES, f"account:acct-{account}", f"device:dev-{account}"))
            .element_map()
            .next()
        )
        expected = [i for i in range(48) if i % 12 == account and i != 41]
        assert edge["tx_count"] == len(expected), account
        assert edge["amount_total"] == round(sum(10.0 + i for i in expected), 2)
    assert g.V("device:dev-refused").in_e().count().next() == 0


def test_a_request_lost_once_in_the_whole_batch_try_is_written_by_the_chunked_path(graph_backend):
    class LosingOnce(RefusingConnection):
        def __init__(self, inner: RemoteConnection) -> None:
            super().__init__(inner)
            self.calls = 0

        def submit(self, bytecode: Bytecode):
            self.calls += 1
            if self.calls == 3:  # the read and the first vertex request went through
                raise ConnectionResetError("connection reset by peer")
            return self.inner.submit(bytecode)

    losing = LosingOnce(graph_backend.remote_connection)
    store = GraphStore(
        GraphConnection(lambda: losing, name="lossy", max_retries=0, sleep=lambda _: None), write_batch=10
    )
    batch = [tx(i, f"acct-{i % 9}") for i in range(40)]
    outcome = store.upsert_transactions(batch)
    assert outcome.failed == {} and outcome.rejected == {}
    assert outcome.stored == {f"t{i}" for i in range(40)}
    assert store.counts()["vertices"]["account"] == 9
    again = store.upsert_transactions(batch)
    assert again.stored == outcome.stored
    for account in range(9):
        edge = (
            graph_backend.E(
                schema.edge_id(schema.USES, f"account:acct-{account}", f"device:dev-{account % 7}")
            )
            .element_map()
            .next()
        )
        assert edge["tx_count"] == len([i for i in range(40) if i % 9 == account and i % 7 == account % 7])
