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
