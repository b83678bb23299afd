"""The fraud-investigation Gremlin DSL: named domain steps over gremlinpython bytecode.

Following TinkerPop's DSL pattern, investigations read ``g.account_identifiers(...)``
instead of long anonymous chains. Every step is plain bytecode built from a small,
portable subset of Gremlin (V, out/in_, inE/outE, project/by, fold, coalesce, limit,
count, mergeV/mergeE, property(single)), so the same traversal runs on Neptune, the
TinkerPop Gremlin Server and the embedded engine. Aggregation beyond one hop (ring
expansion, chains, scores) is done in Python by :mod:`fraudcore.investigation`, one
bounded request per hop, so no request can wander over the whole graph.

Use :func:`fraud_source` to turn any ``GraphTraversalSource`` (for instance
``GraphConnection.g()``, which carries the evaluation timeout) into a
:class:`FraudTraversalSource`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gremlin_python.process.graph_traversal import GraphTraversal, GraphTraversalSource
from gremlin_python.process.graph_traversal import __ as _plain
from gremlin_python.process.traversal import (
    Bytecode,
    Cardinality,
    Direction,
    Merge,
    P,
    T,
    TraversalStrategies,
)

from . import schema

#: edges from an account to the identifiers through which accounts are linked
IDENTIFIER_EDGES = schema.IDENTIFIER_EDGE_LABELS


class FraudTraversal(GraphTraversal):
    """A traversal with the domain steps of fraud investigations."""

    def identifiers(self) -> FraudTraversal:
        """From accounts to the identifiers they use (card, device, ip, email, phone)."""
        return self.out(*IDENTIFIER_EDGES).has_label(*schema.SHARED_IDENTIFIER_LABELS)

    def identifier_accounts(self) -> FraudTraversal:
        """From identifiers to the accounts that use them."""
        return self.in_(*IDENTIFIER_EDGES).has_label(schema.ACCOUNT)

    def flagged_state(self) -> FraudTraversal:
        """True when the vertex carries ``flagged=true``, False when it has no flag."""
        return self.coalesce(_plain.values("flagged"), _plain.constant(False))

    def number_or_zero(self, key: str) -> FraudTraversal:
        return self.coalesce(_plain.values(key), _plain.constant(0))

    def set_single(self, properties: dict[str, Any]) -> FraudTraversal:
        """Set scalar properties with ``Cardinality.single`` (Neptune's default is ``set``)."""
        traversal = self
        for key, value in properties.items():
            traversal = traversal.property(Cardinality.single, key, value)
        return traversal

    def set_flag(self, properties: dict[str, Any], risk_score: float) -> FraudTraversal:
        """Set the flag properties on the vertices and raise their ``risk_score`` to
        ``risk_score`` where it is lower or absent (never lowers it); each vertex goes on,
        whether its risk rose or not."""
        raise_risk = __.or_(__.not_(__.has("risk_score")), __.has("risk_score", P.lt(risk_score))).property(
            Cardinality.single, "risk_score", risk_score
        )
        return self.set_single(properties).side_effect(raise_risk)

    def record_alert(
        self, alert_vertex_id: str, properties: dict[str, Any], flagged_vertex_id: str, at: int
    ) -> FraudTraversal:
        """Merge the alert vertex (``properties`` when it is new) and its ``flagged_by`` edge
        from ``flagged_vertex_id`` (``created_at`` when new); goes on with the edge. Kept
        as they are when they exist: a retried step writes nothing twice."""
        edge = {
            T.id: schema.edge_id(schema.FLAGGED_BY, flagged_vertex_id, alert_vertex_id),
            T.label: schema.FLAGGED_BY,
            Direction.OUT: flagged_vertex_id,
            Direction.IN: alert_vertex_id,
        }
        return (
            self.merge_v({T.id: alert_vertex_id, T.label: schema.ALERT})
            .option(Merge.on_create, {T.label: schema.ALERT, **properties})
            .merge_e(edge)
            .option(Merge.on_create, {"created_at": at})
        )


class __(_plain):
    """Anonymous traversals that know the domain steps (for ``by()``, ``coalesce()``...)."""

    graph_traversal = FraudTraversal

    @classmethod
    def start(cls) -> FraudTraversal:
        return FraudTraversal(None, None, Bytecode())

    @classmethod
    def identifiers(cls) -> FraudTraversal:
        return cls.start().identifiers()

    @classmethod
    def identifier_accounts(cls) -> FraudTraversal:
        return cls.start().identifier_accounts()

    @classmethod
    def flagged_state(cls) -> FraudTraversal:
        return cls.start().flagged_state()

    @classmethod
    def number_or_zero(cls, key: str) -> FraudTraversal:
        return cls.start().number_or_zero(key)


class FraudTraversalSource(GraphTraversalSource):
    """``g`` with the start steps of investigations; each one is a single bounded request."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.graph_traversal = FraudTraversal

    # -- reads --------------------------------------------------------------------------

    def entities(self, *vertex_ids: str) -> FraudTraversal:
        return self.V(*vertex_ids)

    def existing_ids(self, vertex_ids: Sequence[str]) -> FraudTraversal:
        """The ids among ``vertex_ids`` that are vertices of the graph."""
        return self.V(*vertex_ids).id_()

    def account_identifiers(self, account_ids: Sequence[str], per_account: int) -> FraudTraversal:
        """Each account with at most ``per_account`` of its identifier ids (per-hop fan-out).

        ``{account: id, identifiers: [id, ...]}``; ask for one more than you keep to learn
        whether the fan-out limit cut anything.
        """
        return (
            self.V(*account_ids)
            .has_label(schema.ACCOUNT)
            .project("account", "identifiers")
            .by(T.id)
            .by(__.identifiers().limit(per_account).id_().fold())
        )

    def identifier_usage(
        self, identifier_ids: Sequence[str], account_limit: int, degree_limit: int
    ) -> FraudTraversal:
        """Each identifier with its label, its degree (accounts using it, counted up to
        ``degree_limit``), at most ``account_limit`` of those accounts and, for a card, how
        many times each of them paid with it in person (``in_person_count`` of the edge), and
        what they paid with it in all (``amount_total`` and ``tx_count`` of the edge).

        ``{id, label, degree, accounts: [id, ...], in_person: [{account, count, amount,
        payments}, ...]}``.
        """
        return (
            self.V(*identifier_ids)
            .project("id", "label", "degree", "accounts", "in_person")
            .by(T.id)
            .by(T.label)
            .by(__.identifier_accounts().limit(degree_limit).count())
            .by(__.identifier_accounts().limit(account_limit).id_().fold())
            .by(
                __.in_e(schema.USES)
                .limit(account_limit)
                .project("account", "count", "amount", "payments")
                .by(__.out_v().id_())
                .by(__.number_or_zero("in_person_count"))
                .by(__.number_or_zero("amount_total"))
                .by(__.number_or_zero("tx_count"))
                .fold()
            )
        )

    def flag_states(self, vertex_ids: Sequence[str]) -> FraudTraversal:
        """``{id, flagged, reason}`` for each vertex that exists (``reason``: the last flag's
        ``last_flag_reason``, empty without one)."""
        return (
            self.V(*vertex_ids)
            .project("id", "flagged", "reason")
            .by(T.id)
            .by(__.flagged_state())
            .by(__.coalesce(__.values("last_flag_reason"), __.constant("")))
        )

    def identifiers_of(self, vertex_id: str, labels: Sequence[str]) -> FraudTraversal:
        """The ids of the identifiers with ``labels`` an account uses."""
        return self.V(vertex_id).out(*IDENTIFIER_EDGES).has_label(*labels).dedup().id_()

    def identifier_sightings(
        self,
        identifier_ids: Sequence[str],
        account_limit: int,
        degree_limit: int,
        devices_per_account: int = 5,
    ) -> FraudTraversal:
        """Each identifier with its degree (counted up to ``degree_limit``) and at most
        ``account_limit`` of its usage edges: the account, the edge's first/last seen,
        whether the account is flagged, and up to ``devices_per_account`` ids of the devices
        that account uses (to tell a farm's dedicated accounts from people with their own).

        With each usage edge come its ``tx_count`` and the account's ``card_transactions``
        (the ``tx_count`` and ``in_person_count`` of its card edges, up to
        ``devices_per_account * 4`` identifier edges looked at): an account whose every payment went through this device is a
        farm's, a person also pays in shops, with no device at all.

        ``{id, label, degree, uses: [{account, first_seen, last_seen, flagged, devices,
        tx_count, card_transactions}, ...]}``.
        """
        return (
            self.V(*identifier_ids)
            .project("id", "label", "degree", "uses")
            .by(T.id)
            .by(T.label)
            .by(__.in_e(*IDENTIFIER_EDGES).limit(degree_limit).count())
            .by(
                __.in_e(*IDENTIFIER_EDGES)
                .limit(account_limit)
                .project(
                    "account",
                    "first_seen",
                    "last_seen",
                    "flagged",
                    "devices",
                    "tx_count",
                    "card_transactions",
                )
                .by(__.out_v().id_())
                .by(__.number_or_zero("first_seen"))
                .by(__.number_or_zero("last_seen"))
                .by(__.out_v().flagged_state())
                .by(
                    __.out_v()
                    .out(schema.USES)
                    .has_label(schema.DEVICE)
                    .limit(devices_per_account)
                    .id_()
                    .fold()
                )
                .by(__.number_or_zero("tx_count"))
                .by(
                    __.out_v()
                    .out_e(schema.USES)
                    .limit(devices_per_account * 4)
                    .project("to", "tx_count", "in_person")
                    .by(__.in_v().id_())
                    .by(__.number_or_zero("tx_count"))
                    .by(__.number_or_zero("in_person_count"))
                    .fold()
                )
                .fold()
            )
        )

    def account_uses(self, account_id: str, labels: Sequence[str], limit: int) -> FraudTraversal:
        """The account's own ``uses`` edges to identifiers with ``labels`` (at most ``limit``):
        when it first and last used each one.

        ``{id, label, first_seen, last_seen}`` per identifier.
        """
        return (
            self.V(account_id)
            .has_label(schema.ACCOUNT)
            .out_e(schema.USES)
            .where(__.in_v().has_label(*labels))
            .limit(limit)
            .project("id", "label", "first_seen", "last_seen")
            .by(__.in_v().id_())
            .by(__.in_v().label())
            .by(__.number_or_zero("first_seen"))
            .by(__.number_or_zero("last_seen"))
        )

    def transfers(self, account_ids: Sequence[str], direction: str, per_account: int) -> FraudTraversal:
        """Each account with at most ``per_account`` of its ``transfers_to`` edges in
        ``direction`` (``out``: money sent, ``in``: money received).

        ``{account, transfers: [{account, amount, tx_count, first_seen, last_seen}, ...]}``
        where ``transfers[].account`` is the counterparty.
        """
        if direction == "out":
            edges, other = __.out_e(schema.TRANSFERS_TO), __.in_v().id_()
        elif direction == "in":
            edges, other = __.in_e(schema.TRANSFERS_TO), __.out_v().id_()
        else:
            raise ValueError(f"direction={direction!r}: expected 'out' or 'in'")
        return (
            self.V(*account_ids)
            .has_label(schema.ACCOUNT)
            .project("account", "transfers")
            .by(T.id)
            .by(
                edges.limit(per_account)
                .project("account", "amount", "tx_count", "first_seen", "last_seen")
                .by(other)
                .by(__.number_or_zero("amount_total"))
                .by(__.number_or_zero("tx_count"))
                .by(__.number_or_zero("first_seen"))
                .by(__.number_or_zero("last_seen"))
                .fold()
            )
        )

    def cases_of(self, account_ids: Sequence[str], member_limit: int) -> FraudTraversal:
        """The cases the accounts belong to, each with up to ``member_limit`` member ids."""
        return (
            self.V(*account_ids)
            .out(schema.MEMBER_OF)
            .has_label(schema.CASE)
            .dedup()
            .project("id", "members")
            .by(T.id)
            .by(__.in_(schema.MEMBER_OF).limit(member_limit).id_().fold())
        )

    def case_state(self, case_vertex_id: str) -> FraudTraversal:
        """The case's stored properties (empty when it does not exist yet)."""
        return self.V(case_vertex_id).has_label(schema.CASE).value_map()

    def cases_with_members(
        self, case_vertex_ids: Sequence[str] = (), member_limit: int = 1000
    ) -> FraudTraversal:
        """Each case (the given ones, or every case) with its stored properties and member ids."""
        start = self.V(*case_vertex_ids) if case_vertex_ids else self.V()
        return (
            start.has_label(schema.CASE)
            .project("id", "properties", "members")
            .by(T.id)
            .by(__.value_map())
            .by(__.in_(schema.MEMBER_OF).limit(member_limit).id_().fold())
        )

    def set_case_properties(
        self, case_vertex_id: str, properties: dict[str, Any], expected: dict[str, Any] | None = None
    ) -> FraudTraversal:
        """Set scalar properties on an existing case, only if it still has the ``expected``
        values (None: the property is absent); a compare-and-set in one request, which
        Neptune runs as one transaction;
        yields nothing when the case does not exist or changed."""
        traversal = self.V(case_vertex_id).has_label(schema.CASE)
        for key, value in (expected or {}).items():
            traversal = traversal.not_(__.has(key)) if value is None else traversal.has(key, value)
        return traversal.set_single(properties).id_()

    # -- writes (idempotent: fixed ids, mergeV/mergeE, single cardinality) --------------

    def flag(
        self, vertex_ids: Sequence[str], properties: dict[str, Any], risk_score: float
    ) -> FraudTraversal:
        """Flag the vertices (:meth:`FraudTraversal.set_flag`) in one request; yields the ids
        of those found (an empty result: none of them is in the graph)."""
        return self.V(*vertex_ids).set_flag(properties, risk_score).id_()

    def alert(
        self,
        vertex_id: str,
        alert_vertex_id: str,
        alert_properties: dict[str, Any],
        at: int,
        flag: tuple[dict[str, Any], float] | None = None,
    ) -> FraudTraversal:
        """Record the vertex's alert (:meth:`FraudTraversal.record_alert`), flagging the vertex
        first when ``flag`` (its properties and risk score, :meth:`FraudTraversal.set_flag`)
        is given, in one request; yields the ``flagged_by`` edge's id, nothing (and writes
        nothing) when the vertex is not in the graph."""
        traversal = self.V(vertex_id)
        if flag is not None:
            traversal = traversal.set_flag(*flag)
        return traversal.record_alert(alert_vertex_id, alert_properties, vertex_id, at).id_()

    def merge_vertices(self, rows: list[dict[str, Any]]) -> FraudTraversal:
        """``rows``: ``{match: {T.id, T.label}, create: {...}}``; existing vertices are kept."""
        return (
            self.inject(rows)
            .unfold()
            .as_("row")
            .merge_v(__.select("row").select("match"))
            .option(Merge.on_create, __.select("row").select("create"))
            .id_()
        )

    def merge_edges(self, rows: list[dict[Any, Any]]) -> FraudTraversal:
        """``rows``: ``{match: {T.id, T.label, Direction.OUT, Direction.IN}, create: {...}}``."""
        return (
            self.inject(rows)
            .unfold()
            .as_("row")
            .merge_e(__.select("row").select("match"))
            .option(Merge.on_create, __.select("row").select("create"))
            .id_()
        )

    def upsert_vertex(
        self, vertex_id: str, label: str, on_create: dict[str, Any], always: dict[str, Any]
    ) -> FraudTraversal:
        """Create the vertex with ``on_create`` if it is new, then set ``always`` (single)."""
        return (
            self.merge_v({T.id: vertex_id, T.label: label})
            .option(Merge.on_create, {T.label: label, **on_create})
            .set_single(always)
            .id_()
        )


def fraud_source(g: GraphTraversalSource) -> FraudTraversalSource:
    """The same source (remote connection, evaluation timeout) with the domain steps."""
    if isinstance(g, FraudTraversalSource):
        return g
    source = FraudTraversalSource(g.graph, TraversalStrategies(g.traversal_strategies), Bytecode(g.bytecode))
    source.remote_connection = getattr(g, "remote_connection", None)
    return source
