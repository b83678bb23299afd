"""The graph store: one implementation over gremlinpython bytecode for every backend.

Neptune, the TinkerPop Gremlin Server and the embedded engine differ only in the
connection (see :mod:`fraudcore.graph.connection`); the traversals are the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from gremlin_python.process.graph_traversal import GraphTraversal, GraphTraversalSource
from gremlin_python.process.traversal import T

from ..limits import shorten
from ..model import Transaction
from ..ports import WriteOutcome
from .connection import GraphConnection, GraphTimeoutError, GraphUnavailableError
from .upserts import (
    EdgeUpsert,
    GraphBatch,
    VertexUpsert,
    edge_states,
    merge_edges,
    merge_vertices,
    read_edges,
    read_edges_in_full,
)

#: vertices or edges per upsert request. Neptune advises about 200 "records" per request (a
#: vertex, an edge, or one of their properties counts as a record) and fewer than 1,500 steps;
#: 100 upserts of a few properties each stay near that advice.
DEFAULT_OBJECTS_PER_REQUEST = 100
#: edge ids per read of the edges a batch touches (a read has the same steps whatever its ids)
READ_IDS_PER_REQUEST = 500
#: vertex ids a store remembers as present in the graph (:class:`KnownVertices`): an id of
#: about 30 characters and its set entry take about 180 bytes, so at most about 36 MB
KNOWN_VERTICES_LIMIT = 200_000


class KnownVertices:
    """Ids of vertices the graph is known to hold: their ``mergeV`` would change nothing.

    A vertex upsert only creates (``onCreate``; a vertex that exists is left as it is), and
    the application never removes a vertex, so once a ``mergeV`` request that carried a vertex
    has answered, sending that vertex again is a request for nothing. The graph store keeps
    these ids for the life of its process (a warm Lambda container keeps them between
    invocations) and leaves the known vertices out of the next batches' ``mergeV`` requests:
    on a steady stream most vertices of a batch (the accounts, their cards, devices and
    merchants) were written by an earlier batch.

    Bounded: at most ``limit`` ids, in two generations of ``limit // 2``. New ids go into the
    recent one; when it is full, it becomes the older one and the ids of the older one before
    are forgotten (a forgotten vertex is merely sent again). An id found in the older one moves
    back into the recent one, so the ids batches keep meeting stay.

    The ids belong to the graph behind one connection: the store holds its own set (a store is
    made for one connection), and forgets them all when a write fails (:meth:`clear`), since
    the failure may come from a graph that no longer holds them (emptied, restored, replaced
    behind the same endpoint): a batch whose edge leads to a vertex that was removed behind
    the process's back fails (``mergeE`` refuses an edge to a missing vertex) and is written
    again, its vertices included. A vertex with no edge in the batch that removed it stays
    missing until the process restarts or a write fails.
    """

    def __init__(self, limit: int = KNOWN_VERTICES_LIMIT) -> None:
        if limit < 0:
            raise ValueError(f"known vertices limit must be 0 or more, got {limit}")
        self.limit = limit
        self._recent: set[str] = set()
        self._older: set[str] = set()

    def __len__(self) -> int:
        return len(self._recent) + len(self._older)

    def __contains__(self, vid: object) -> bool:
        return vid in self._recent or vid in self._older

    def unknown(self, vertices: Iterable[VertexUpsert]) -> list[VertexUpsert]:
        """The vertices not known to be in the graph; a known one found among the older ids
        is made recent again."""
        recent, older = self._recent, self._older
        missing: list[VertexUpsert] = []
        for vertex in vertices:
            vid = vertex.vid
            if vid in recent:
                continue
            if vid in older:
                self.add(vid)
                continue
            missing.append(vertex)
        return missing

    def add(self, vid: str) -> None:
        if self.limit < 2:
            return
        recent = self._recent
        if len(recent) >= self.limit // 2:
            self._older, self._recent = recent, set()
            recent = self._recent
        recent.add(vid)

    def add_all(self, vids: Iterable[str]) -> None:
        for vid in vids:
            self.add(vid)

    def clear(self) -> None:
        self._recent = set()
        self._older = set()


def object_chunks(transactions: Sequence[Transaction], limit: int) -> list[list[Transaction]]:
    """The transactions in order, cut so no chunk upserts more than ``limit`` distinct vertices
    or more than ``limit`` distinct edges (a request carries one kind).

    A single transaction never exceeds the limit (it touches at most a few identifiers), so
    every chunk holds at least one transaction.
    """
    if limit < 1:
        raise ValueError(f"objects per request must be at least 1, got {limit}")
    cut: list[list[Transaction]] = []
    current: list[Transaction] = []
    vertices: set[str] = set()
    edges: set[str] = set()
    for transaction in transactions:
        own = GraphBatch.from_transactions([transaction])
        new_vertices = own.vertices.keys() - vertices
        new_edges = own.edges.keys() - edges
        if current and (len(vertices) + len(new_vertices) > limit or len(edges) + len(new_edges) > limit):
            cut.append(current)
            current, vertices, edges = [], set(), set()
            new_vertices, new_edges = set(own.vertices), set(own.edges)
        current.append(transaction)
        vertices |= new_vertices
        edges |= new_edges
    if current:
        cut.append(current)
    return cut


class GraphStore:
    def __init__(
        self,
        connection: GraphConnection,
        write_batch: int = DEFAULT_OBJECTS_PER_REQUEST,
        known_vertices_limit: int = KNOWN_VERTICES_LIMIT,
    ):
        self.connection = connection
        #: distinct vertices (or edges) per mergeV (mergeE) request
        self.write_batch = write_batch
        #: vertices this store's requests have written (or found) in the graph: left out of
        #: later batches' mergeV requests (0 ids: every batch sends all its vertices)
        self.known_vertices = KnownVertices(known_vertices_limit)
        #: the connection (its count of opens) the known vertices were gathered on: a new
        #: connection may reach another graph (a server restarted empty), so they are
        #: forgotten then
        self._known_on = self._connection_number()

    # -- ingest -------------------------------------------------------------------------
    def upsert_transactions(self, transactions: Sequence[Transaction]) -> WriteOutcome:
        """Upsert the entities and relations of a batch; a refused record fails only itself.

        The batch goes as one unit first: one read of the edges it touches (their
        ``last_seen`` watermark and aggregates, :data:`READ_IDS_PER_REQUEST` ids a request),
        then its distinct vertices and then its distinct edges in requests of at most
        ``write_batch`` each. When any of these requests fails, the batch is written again
        the isolating way (:meth:`_upsert_isolating`): cut into chunks of at most
        ``write_batch`` vertices and edges, each chunk in its own requests, so that

        - the graph unreachable, or still failing with retryable errors after the
          connection's retries (:class:`GraphUnavailableError`), or a timeout: the chunk's
          records are *failed* (Lambda retries them); after an unavailable graph, so are the
          records of every chunk after it, without trying them (and waiting through the
          retries) again;
        - any other refusal: the chunk is halved and each half written again, down to the
          record the graph refuses, which alone is *rejected* with the graph's reason.

        Upserts are idempotent (an edge counts only events newer than its ``last_seen``), so
        what the first try or a half wrote before a failure counts once.

        The first try leaves out the vertices an earlier request of this store wrote
        (:class:`KnownVertices`); a failure forgets them all, and the isolating writes send
        every vertex of their chunk. So does a new connection (a reconnect, even one a retry
        went through): the graph it reaches may not hold them.
        """
        transactions = list(transactions)
        if not transactions:
            return WriteOutcome()
        before = self.connection.requests
        self._forget_after_reconnect()
        try:
            self._upsert_chunk(transactions, skip_known=True)
            self._forget_after_reconnect()
        except Exception:  # written again in chunks, which classify the failure per record
            self.known_vertices.clear()  # the graph may not hold them (emptied, replaced)
            outcome = WriteOutcome(requests=self.connection.requests - before)
            chunks = object_chunks(transactions, self.write_batch)
            if len(chunks) == 1 and len(transactions) > 1:  # that very request failed: halve it
                middle = len(transactions) // 2
                chunks = [transactions[:middle], transactions[middle:]]
            unavailable: list[str] = []  # the graph's reason, once a chunk found it unavailable
            for chunk in chunks:
                outcome.merge(self._upsert_isolating(chunk, unavailable))
            return outcome
        return WriteOutcome(
            stored={tx.transaction_id for tx in transactions}, requests=self.connection.requests - before
        )

    def _connection_number(self) -> int:
        """The connection's count of opens, counting the one the next request will open."""
        connection = self.connection
        return connection.connects + (0 if connection.opened else 1)

    def _forget_after_reconnect(self) -> None:
        """Forget the known vertices when the connection is not the one they were known on."""
        number = self._connection_number()
        if number != self._known_on:
            self.known_vertices.clear()
            self._known_on = number

    def _upsert_isolating(self, chunk: Sequence[Transaction], unavailable: list[str]) -> WriteOutcome:
        """Write ``chunk``, halving it on a refusal. Once one chunk found the graph unavailable
        after the connection's retries (``unavailable`` then holds the reason), the chunks after
        it are failed at once: they would only wait through the same retries again."""
        outcome = WriteOutcome()
        ids = {tx.transaction_id for tx in chunk}
        if unavailable:
            outcome.failed.update(dict.fromkeys(ids, unavailable[0]))
            return outcome
        before = self.connection.requests
        try:
            self._upsert_chunk(chunk)
        except (GraphUnavailableError, GraphTimeoutError) as error:
            reason = f"graph write failed: {error}"
            outcome.failed.update(dict.fromkeys(ids, reason))
            if isinstance(error, GraphUnavailableError):
                unavailable.append(reason)
        except Exception as error:  # the graph refused something in this chunk
            outcome.requests += self.connection.requests - before
            if len(chunk) > 1:
                middle = len(chunk) // 2
                outcome.merge(self._upsert_isolating(chunk[:middle], unavailable))
                return outcome.merge(self._upsert_isolating(chunk[middle:], unavailable))
            reason = f"the graph refused the record: {type(error).__name__}: {shorten(str(error))}"
            outcome.rejected.update(dict.fromkeys(ids, reason))
            return outcome
        else:
            outcome.stored |= ids
        outcome.requests += self.connection.requests - before
        return outcome

    def _upsert_chunk(self, chunk: Sequence[Transaction], *, skip_known: bool = False) -> None:
        """The distinct vertices and edges of ``chunk``: a read of the edges, then the vertices,
        then the edges, each in requests of at most ``write_batch`` (reads: ids) objects.
        An edge the read finds without some of the properties is read again in full
        (:func:`read_edges_in_full`) before any edge is written.
        With ``skip_known``, the vertices in :attr:`known_vertices` are left out. The vertices
        of each vertex request that answered become known.

        The requests go one at a time, in that order, each built while the one before is in
        flight (:meth:`GraphConnection.run_all`). An edge request needs the reads' answers: it
        is built after them when a vertex request stands between (every edge leaves an account
        vertex of the same chunk, so one does unless every vertex is known); without one, the
        edge requests go after the reads have answered.
        """
        batch = GraphBatch.from_transactions(chunk)
        edge_ids = list(batch.edges)
        existing: dict[str, dict[str, Any]] = {}
        size = self.write_batch
        reads = [
            edge_ids[start : start + READ_IDS_PER_REQUEST]
            for start in range(0, len(edge_ids), READ_IDS_PER_REQUEST)
        ]
        known = self.known_vertices
        vertices = known.unknown(batch.vertices.values()) if skip_known else list(batch.vertices.values())
        edges = list(batch.edges.values())

        def read(part: list[str]) -> Callable[[GraphTraversalSource], GraphTraversal]:
            return lambda g: read_edges(g, part)

        def write_vertices(part: list[VertexUpsert]) -> Callable[[GraphTraversalSource], GraphTraversal]:
            maps: list[dict[Any, Any]] = []

            def build(g: GraphTraversalSource) -> GraphTraversal:
                if not maps:  # made when first built, while the request before is in flight
                    maps.extend(vertex.as_map() for vertex in part)
                return merge_vertices(g, maps)

            return build

        def write_edges(part: list[EdgeUpsert]) -> Callable[[GraphTraversalSource], GraphTraversal]:
            maps: list[dict[Any, Any]] = []

            def build(g: GraphTraversalSource) -> GraphTraversal:
                if not maps:  # made when first built: the reads have answered by then
                    maps.extend(edge.as_map(existing.get(edge.eid)) for edge in part)
                return merge_edges(g, maps)

            return build

        vertex_parts = [vertices[start : start + size] for start in range(0, len(vertices), size)]

        def received(index: int, answer: Any) -> None:
            if index < len(reads):  # one result: the list of the read's rows
                incomplete: list[str] = []  # edges without some of the properties
                for rows in answer:
                    existing.update(edge_states(rows, set(reads[index]), incomplete))
                if incomplete:  # read in full now: nothing is in flight between two requests
                    for rows in self.connection.run(lambda g: read_edges_in_full(g, incomplete)):
                        existing.update(edge_states(rows, set(incomplete)))
            elif index < len(reads) + len(vertex_parts):  # a mergeV request answered: in the graph
                known.add_all(vertex.vid for vertex in vertex_parts[index - len(reads)])

        builds = [read(part) for part in reads]
        builds += [write_vertices(part) for part in vertex_parts]
        edge_builds = [write_edges(edges[start : start + size]) for start in range(0, len(edges), size)]
        if vertex_parts or not reads:
            self.connection.run_all(builds + edge_builds, "toList", on_result=received)
        else:  # every vertex known: the first edge request waits for the reads' answers
            self.connection.run_all(builds, "toList", on_result=received)
            self.connection.run_all(edge_builds, "toList")

    # -- inspection ---------------------------------------------------------------------
    def counts(self) -> dict[str, dict[str, int]]:
        vertices = self.connection.run(lambda g: g.V().group_count().by(T.label), "next") or {}
        edges = self.connection.run(lambda g: g.E().group_count().by(T.label), "next") or {}
        return {
            "vertices": {str(k): int(v) for k, v in sorted(vertices.items())},
            "edges": {str(k): int(v) for k, v in sorted(edges.items())},
        }
