"""Turn a batch of transactions into a few batched, idempotent graph upserts.

A batch (a Kinesis batch, or a chunk of one when it is written the isolating way, see
:class:`fraudcore.graph.store.GraphStore`) becomes:

1. reads of the edges the batch touches (their ``last_seen`` watermark and aggregates),
2. ``inject(maps).unfold().mergeV(...)`` requests for its distinct vertices (less those the
   graph store knows the graph already holds: :class:`fraudcore.graph.store.KnownVertices`),
3. ``inject(maps).unfold().mergeE(...)`` requests for its distinct edges,

each of at most ``write_batch`` maps. The number of steps per request is constant whatever
the batch size (the maps are data, not steps), well under Neptune's guidance of 1,500 steps
per request.

Replays are idempotent: vertices and edges have deterministic ids, and an edge's
aggregates (``tx_count``, ``amount_total`` and, on a card edge, ``in_person_count``: payments
with the card that came through no device and no IP) only count events newer than the edge's
``last_seen``, so a batch delivered twice (a Kinesis retry, a bisected batch) adds
nothing the second time. The price: an event that arrives later than a newer event on the
same edge moves ``first_seen`` but is not counted. Edges all leave an account vertex and
Kinesis keeps an account's records (partition key) in order on one shard, so no two
invocations race on the same edge.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gremlin_python.process.graph_traversal import GraphTraversal, GraphTraversalSource, __
from gremlin_python.process.traversal import Column, Direction, Merge, T
from gremlin_python.statics import long

from ..limits import shorten
from ..model import Transaction
from . import schema


@dataclass
class VertexUpsert:
    vid: str
    label: str
    value: str
    first_seen: int

    def as_map(self) -> dict[Any, Any]:
        return {
            "match": {T.id: self.vid, T.label: self.label},
            # onCreate inherits the id and label of the search map
            "create": {"value": self.value, "first_seen": long(self.first_seen)},
        }


@dataclass
class EdgeEvent:
    epoch_ms: int
    amount: float
    #: a card payment that came through no device and no IP: at a till, card in hand
    in_person: bool = False


@dataclass
class EdgeUpsert:
    eid: str
    label: str
    out_id: str
    in_id: str
    events: list[EdgeEvent] = field(default_factory=list)

    def merged_properties(self, existing: dict[str, Any] | None) -> dict[str, Any]:
        """The edge's aggregates after this batch, counting only events newer than last_seen."""
        events = self.events
        first = last = events[0].epoch_ms
        for event in events:
            if event.epoch_ms < first:
                first = event.epoch_ms
            elif event.epoch_ms > last:
                last = event.epoch_ms
        if existing is None:
            return {
                "first_seen": first,
                "last_seen": last,
                "tx_count": len(events),
                "amount_total": round(sum(e.amount for e in events), 2),
                "in_person_count": sum(e.in_person for e in events),
            }
        watermark = int(existing.get("last_seen", 0))
        new = [e for e in events if e.epoch_ms > watermark]
        return {
            "first_seen": min(int(existing.get("first_seen", watermark)), first),
            "last_seen": max(watermark, last),
            "tx_count": int(existing.get("tx_count", 0)) + len(new),
            "amount_total": round(float(existing.get("amount_total", 0.0)) + sum(e.amount for e in new), 2),
            "in_person_count": int(existing.get("in_person_count", 0)) + sum(e.in_person for e in new),
        }

    def as_map(self, existing: dict[str, Any] | None) -> dict[Any, Any]:
        events = self.events
        # epoch milliseconds do not fit a Gremlin int: send them as long
        if existing is None and len(events) == 1:  # most edges of a batch: new, or one event
            event = events[0]
            at = long(event.epoch_ms)
            props = {
                "first_seen": at,
                "last_seen": at,
                "tx_count": long(1),
                "amount_total": round(0 + event.amount, 2),  # as merged_properties sums
                "in_person_count": long(0 + event.in_person),
            }
        elif len(events) == 1:  # an edge seen before, one event: merged_properties, in line
            event = events[0]
            at = event.epoch_ms
            get = existing.get
            watermark = int(get("last_seen", 0))
            first_seen = int(get("first_seen", watermark))
            tx_count = int(get("tx_count", 0))
            amount_total = float(get("amount_total", 0.0))
            in_person_count = int(get("in_person_count", 0))
            if at > watermark:  # newer than the edge's last event: counted
                tx_count += 1
                amount_total += 0 + event.amount
                in_person_count += 0 + event.in_person
            else:  # nothing counted: merged_properties adds sum([]), 0, which turns -0.0 into 0.0
                amount_total += 0
            props = {
                "first_seen": long(first_seen if first_seen < at else at),
                "last_seen": long(at if at > watermark else watermark),
                "tx_count": long(tx_count),
                "amount_total": round(amount_total, 2),
                "in_person_count": long(in_person_count),
            }
        else:
            merged = self.merged_properties(existing)
            props = {
                "first_seen": long(merged["first_seen"]),
                "last_seen": long(merged["last_seen"]),
                "tx_count": long(merged["tx_count"]),
                "amount_total": merged["amount_total"],
                "in_person_count": long(merged["in_person_count"]),
            }
        match = {T.id: self.eid, T.label: self.label, Direction.OUT: self.out_id, Direction.IN: self.in_id}
        # one map for both options: a new edge gets the properties a matched edge is set to
        return {"match": match, "props": props}


@dataclass
class GraphBatch:
    """The distinct vertices and edges of a batch of transactions."""

    vertices: dict[str, VertexUpsert] = field(default_factory=dict)
    edges: dict[str, EdgeUpsert] = field(default_factory=dict)

    def add_vertex(self, label: str, value: str, epoch_ms: int) -> str:
        vid = schema.vertex_id(label, value)
        known = self.vertices.get(vid)
        if known is None:
            self.vertices[vid] = VertexUpsert(vid, label, value, epoch_ms)
        elif epoch_ms < known.first_seen:
            known.first_seen = epoch_ms
        return vid

    def add_edge(
        self, label: str, out_id: str, in_id: str, epoch_ms: int, amount: float, in_person: bool = False
    ) -> None:
        eid = schema.edge_id(label, out_id, in_id)
        edge = self.edges.get(eid)
        if edge is None:
            edge = self.edges[eid] = EdgeUpsert(eid, label, out_id, in_id)
        edge.events.append(EdgeEvent(epoch_ms, amount, in_person))

    @classmethod
    def from_transactions(cls, transactions: Iterable[Transaction]) -> GraphBatch:
        batch = cls()
        seen: set[str] = set()
        for tx in transactions:
            if tx.transaction_id in seen:  # the same transaction twice in one batch counts once
                continue
            seen.add(tx.transaction_id)
            at = tx.epoch_ms
            account = batch.add_vertex(schema.ACCOUNT, tx.account_id, at)
            in_person = not tx.device_id and not tx.ip
            for field_name, (label, edge_label) in schema.FIELD_LINKS.items():
                value = getattr(tx, field_name)
                if value:
                    target = batch.add_vertex(label, value, at)
                    batch.add_edge(
                        edge_label, account, target, at, tx.amount, in_person and label == schema.CARD
                    )
            if tx.counterparty_account_id and tx.counterparty_account_id != tx.account_id:
                other = batch.add_vertex(schema.ACCOUNT, tx.counterparty_account_id, at)
                batch.add_edge(schema.TRANSFERS_TO, account, other, at, tx.amount)
        return batch


#: the properties of an edge its next upsert reads back
EDGE_STATE = ("first_seen", "last_seen", "tx_count", "amount_total", "in_person_count")
#: what the read answers for a property the edge does not have (the stored values are numbers)
_ABSENT = ""


def read_edges(g: GraphTraversalSource, edge_ids: Sequence[str]) -> GraphTraversal:
    """One list holding, for each existing edge, ``[id, first_seen, last_seen, tx_count,
    amount_total, in_person_count]``: only what the upsert needs (an ``elementMap`` would also
    carry both vertices' ids and labels), a list per edge rather than a map (no keys to send
    back and decode: half the values) and one result for the whole read rather than a result
    per edge (one response message, one value to decode).

    ``project()`` makes an ordered map (the order of its keys), so ``select(values)`` lists the
    values in that order; :func:`edge_states` checks that each list starts with a requested id.

    Each property is read with ``by(key)``, which costs the graph less than a ``coalesce`` per
    value: on a Gremlin Server, 0.10-0.17 against 0.27-0.29 CPU seconds for 48,754 edges. An edge
    without one of the properties (written before it existed) answers a shorter list: since
    TinkerPop 3.6 a ``by()`` that yields nothing leaves its key out of ``project()``
    (TINKERPOP-2635). Which key is missing cannot be told from the list, so :func:`edge_states`
    sets such edges aside and they are read again with :func:`read_edges_in_full`.
    """
    return _edge_state_read(g, edge_ids, list(EDGE_STATE))


def read_edges_in_full(g: GraphTraversalSource, edge_ids: Sequence[str]) -> GraphTraversal:
    """:func:`read_edges` answering a full list for every edge: a property the edge does not
    have is read as ``""`` (the stored values are numbers), which :func:`edge_states` leaves out."""
    return _edge_state_read(
        g, edge_ids, [__.coalesce(__.values(key), __.constant(_ABSENT)) for key in EDGE_STATE]
    )


def _edge_state_read(g: GraphTraversalSource, edge_ids: Sequence[str], values: list[Any]) -> GraphTraversal:
    """``[id, *EDGE_STATE]`` per existing edge, in one list: each of ``values`` (a property
    key or a traversal, one per EDGE_STATE) modulates its ``project()`` key in order."""
    read = g.E(*edge_ids).project("id", *EDGE_STATE).by(T.id)
    for value in values:
        read = read.by(value)
    return read.select(Column.values).fold()


def edge_states(
    rows: Sequence[Any], edge_ids: Collection[str], incomplete: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """The answer of :func:`read_edges` (or :func:`read_edges_in_full`) as {edge id: the
    properties the edge has}.

    A shorter list of a requested edge (an edge without some of the properties) is not
    guessed at: its id goes to ``incomplete``, to be read in full. Raises ``ValueError`` when a
    row is not such a list of one of ``edge_ids`` (a graph that answered the read in another
    shape), or is shorter and no ``incomplete`` list is given: the aggregates must never be read
    from the wrong field.
    """
    states: dict[str, dict[str, Any]] = {}
    full = len(EDGE_STATE) + 1
    for row in rows:
        if isinstance(row, list) and 1 <= len(row) <= full and str(row[0]) in edge_ids:
            if len(row) == full:
                states[str(row[0])] = {
                    key: value
                    for key, value in zip(EDGE_STATE, row[1:], strict=True)
                    if value != _ABSENT and value is not None
                }
                continue
            if incomplete is not None:
                incomplete.append(str(row[0]))
                continue
        raise ValueError(
            f"the read of edge states answered {shorten(repr(row))}: expected "
            f"[id, {', '.join(EDGE_STATE)}] for one of the requested edges"
        )
    return states


def inject_rows(g: GraphTraversalSource, rows: list[dict[Any, Any]]) -> GraphTraversal:
    """``g.inject(rows)`` without gremlinpython's walk of every row.

    ``inject`` converts its arguments recursively (every key and value of every map) to find
    child traversals and bindings; upsert rows hold only strings, numbers, ``T`` and
    ``Direction`` keys, so the list goes into the request as it is: the same bytecode.
    """
    traversal = g.inject()
    traversal.bytecode.step_instructions[-1].append(rows)
    return traversal


def merge_vertices(g: GraphTraversalSource, vertex_maps: list[dict[Any, Any]]) -> GraphTraversal:
    return (
        inject_rows(g, vertex_maps)
        .unfold()
        .as_("v")
        .merge_v(__.select("v").select("match"))
        .option(Merge.on_create, __.select("v").select("create"))
        .count()
    )


def merge_edges(g: GraphTraversalSource, edge_maps: list[dict[Any, Any]]) -> GraphTraversal:
    return (
        inject_rows(g, edge_maps)
        .unfold()
        .as_("e")
        .merge_e(__.select("e").select("match"))
        .option(Merge.on_create, __.select("e").select("props"))
        .option(Merge.on_match, __.select("e").select("props"))
        .count()
    )
