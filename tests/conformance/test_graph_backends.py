"""The same Gremlin, the same answers: embedded graphersal and TinkerPop Gremlin Server.

These are the traversal shapes the graph store is built from. Each test runs on both
backends (see conftest.py); a difference between them is a defect of the embedded
adapter or a shape the graph store must not use.
"""

from __future__ import annotations

from gremlin_python.process.graph_traversal import GraphTraversalSource, __
from gremlin_python.process.traversal import (
    Cardinality,
    CardinalityValue,
    Column,
    Direction,
    Merge,
    Order,
    P,
    T,
    TextP,
    WithOptions,
)
from gremlin_python.structure.graph import Edge, Path, Vertex

# -- helpers ------------------------------------------------------------------------------


def upsert_vertices(g: GraphTraversalSource, rows: list[dict]) -> list[str]:
    """The batched, idempotent vertex upsert the graph store uses: one request per batch."""
    return (
        g.inject(rows)
        .unfold()
        .as_("m")
        .merge_v(__.select("m").select("match"))
        .option(Merge.on_create, __.select("m").select("create"))
        .option(Merge.on_match, __.select("m").select("update"))
        .id_()
        .to_list()
    )


def upsert_edges(g: GraphTraversalSource, rows: list[dict]) -> list[str]:
    return (
        g.inject(rows)
        .unfold()
        .as_("e")
        .merge_e(__.select("e").select("match"))
        .option(Merge.on_create, __.select("e").select("create"))
        .option(Merge.on_match, __.select("e").select("update"))
        .id_()
        .to_list()
    )


def account_row(n: int, *, seen: int) -> dict:
    return {
        "match": {T.id: f"account:{n}"},
        "create": {T.label: "account", "first_seen": seen, "last_seen": seen, "tx_count": 1},
        "update": {"last_seen": CardinalityValue.single(seen)},
    }


def link(g: GraphTraversalSource, out_id: str, label: str, in_id: str) -> None:
    g.merge_e(
        {T.id: f"{out_id}|{label}|{in_id}", T.label: label, Direction.from_: out_id, Direction.to: in_id}
    ).iterate()


def add_vertex(g: GraphTraversalSource, vid: str, label: str, **props: object) -> None:
    g.merge_v({T.id: vid}).option(Merge.on_create, {T.label: label, **props}).iterate()


def ring_graph(g: GraphTraversalSource) -> None:
    """a1 -uses-> d1 <-uses- a2 -uses-> d2 <-uses- a3, and a4 alone on d3."""
    for vid in ["account:a1", "account:a2", "account:a3", "account:a4"]:
        add_vertex(g, vid, "account")
    for vid in ["device:d1", "device:d2", "device:d3"]:
        add_vertex(g, vid, "device")
    for out_id, in_id in [("a1", "d1"), ("a2", "d1"), ("a2", "d2"), ("a3", "d2"), ("a4", "d3")]:
        link(g, f"account:{out_id}", "uses", f"device:{in_id}")


# -- batched upserts ------------------------------------------------------------------------


def test_batched_upsert_creates_each_vertex_once_and_a_rerun_creates_nothing(graph_backend):
    g = graph_backend
    rows = [account_row(n, seen=1_000 + n) for n in range(150)]

    assert len(upsert_vertices(g, rows)) == 150
    assert g.V().count().next() == 150

    replay = [account_row(n, seen=5_000 + n) for n in range(150)]
    assert sorted(upsert_vertices(g, replay)) == sorted(f"account:{n}" for n in range(150))
    assert g.V().count().next() == 150
    # onMatch updated last_seen in place (single cardinality: one value, not two) ...
    assert g.V("account:7").values("last_seen").to_list() == [5_007]
    # ... and left the onCreate-only properties alone.
    assert g.V("account:7").values("first_seen").to_list() == [1_007]
    assert g.V().has_label("account").count().next() == 150


def test_merge_e_links_existing_vertices_by_id_with_direction_keys(graph_backend):
    g = graph_backend
    upsert_vertices(g, [account_row(n, seen=1) for n in range(3)])
    rows = [
        {
            "match": {
                T.id: f"account:{n}|transfers_to|account:{(n + 1) % 3}",
                T.label: "transfers_to",
                Direction.from_: f"account:{n}",
                Direction.to: f"account:{(n + 1) % 3}",
            },
            "create": {"tx_count": 1},
            "update": {"tx_count": 2},
        }
        for n in range(3)
    ]

    assert len(upsert_edges(g, rows)) == 3
    assert len(upsert_edges(g, rows)) == 3
    assert g.E().count().next() == 3
    assert g.V().count().next() == 3
    assert g.V("account:0").out("transfers_to").id_().to_list() == ["account:1"]
    assert g.V("account:0").in_("transfers_to").id_().to_list() == ["account:2"]
    assert g.E("account:0|transfers_to|account:1").values("tx_count").next() == 2


def test_property_single_replaces_the_value(graph_backend):
    g = graph_backend
    add_vertex(g, "account:x", "account")
    g.V("account:x").property(Cardinality.single, "risk_score", 0.4).iterate()
    g.V("account:x").property(Cardinality.single, "risk_score", 0.9).iterate()
    g.V("account:x").property(Cardinality.single, "flagged", True).iterate()

    assert g.V("account:x").values("risk_score").to_list() == [0.9]
    assert g.V("account:x").values("flagged").to_list() == [True]


def test_min_max_and_counter_updates_in_one_batched_request(graph_backend):
    g = graph_backend
    upsert_vertices(g, [account_row(n, seen=100) for n in range(3)])
    rows = [
        {"match": {T.id: f"account:{n}"}, "create": {}, "update": {}, "ts": ts}
        for n, ts in enumerate([50, 100, 150])
    ]

    (
        g.inject(rows)
        .unfold()
        .as_("m")
        .merge_v(__.select("m").select("match"))
        .property(
            Cardinality.single,
            "first_seen",
            __.union(__.values("first_seen"), __.select("m").select("ts")).min_(),
        )
        .property(
            Cardinality.single,
            "last_seen",
            __.union(__.values("last_seen"), __.select("m").select("ts")).max_(),
        )
        .property(Cardinality.single, "tx_count", __.union(__.values("tx_count"), __.constant(1)).sum_())
        .iterate()
    )

    summary = (
        g.V()
        .order()
        .by(T.id)
        .project("first", "last", "count")
        .by("first_seen")
        .by("last_seen")
        .by("tx_count")
    )
    assert summary.to_list() == [
        {"first": 50, "last": 100, "count": 2},
        {"first": 100, "last": 100, "count": 2},
        {"first": 100, "last": 150, "count": 2},
    ]


def test_edge_property_update_from_a_traversal(graph_backend):
    g = graph_backend
    ring_graph(g)
    edge = "account:a1|uses|device:d1"
    g.E(edge).property("last_seen", 10).iterate()
    g.E(edge).property("last_seen", __.union(__.values("last_seen"), __.constant(7)).max_()).iterate()
    g.E(edge).property("last_seen", __.union(__.values("last_seen"), __.constant(12)).max_()).iterate()

    assert g.E(edge).values("last_seen").to_list() == [12]


# -- reads ----------------------------------------------------------------------------------


def test_counts_by_label(graph_backend):
    g = graph_backend
    ring_graph(g)

    assert g.V().group_count().by(T.label).next() == {"account": 4, "device": 3}
    assert g.E().group_count().by(T.label).next() == {"uses": 5}
    assert g.V().has_label("device").count().next() == 3


def test_bounded_repeat_with_simple_path_finds_the_ring(graph_backend):
    g = graph_backend
    ring_graph(g)

    def ring_members(hops: int) -> list[str]:
        return sorted(
            g.V("account:a1")
            .repeat(__.both("uses").simple_path())
            .times(hops)
            .emit()
            .has_label("account")
            .dedup()
            .id_()
            .to_list()
        )

    assert ring_members(2) == ["account:a2"]
    assert ring_members(4) == ["account:a2", "account:a3"]
    assert ring_members(8) == ["account:a2", "account:a3"]  # simplePath stops the walk


def test_dedup_and_where_neq_exclude_the_start(graph_backend):
    g = graph_backend
    ring_graph(g)
    for device in ["d1", "d2", "d3"]:
        link(g, "account:a2", "uses", f"device:{device}")  # rerun: no duplicate edges
    link(g, "account:a1", "uses", "device:d2")

    sharing = g.V("account:a1").as_("start").out("uses").in_("uses").where(P.neq("start")).id_().to_list()
    assert sorted(sharing) == ["account:a2", "account:a2", "account:a3"]
    assert sorted(
        g.V("account:a1").as_("start").out("uses").in_("uses").where(P.neq("start")).dedup().id_().to_list()
    ) == [
        "account:a2",
        "account:a3",
    ]


def test_project_by(graph_backend):
    g = graph_backend
    ring_graph(g)

    rows = (
        g.V()
        .has_label("device")
        .order()
        .by(T.id)
        .project("id", "users")
        .by(T.id)
        .by(__.in_("uses").count())
        .to_list()
    )
    assert rows == [
        {"id": "device:d1", "users": 2},
        {"id": "device:d2", "users": 2},
        {"id": "device:d3", "users": 1},
    ]


def test_element_map_shapes_use_tokens(graph_backend):
    g = graph_backend
    add_vertex(g, "account:1", "account", risk_score=0.5)
    add_vertex(g, "device:1", "device")
    g.merge_e({T.id: "e1", T.label: "uses", Direction.from_: "account:1", Direction.to: "device:1"}).option(
        Merge.on_create, {"tx_count": 3}
    ).iterate()

    assert g.V("account:1").element_map().next() == {T.id: "account:1", T.label: "account", "risk_score": 0.5}
    assert g.E("e1").element_map().next() == {
        T.id: "e1",
        T.label: "uses",
        Direction.OUT: {T.id: "account:1", T.label: "account"},
        Direction.IN: {T.id: "device:1", T.label: "device"},
        "tx_count": 3,
    }
    assert g.V("account:1").value_map(True).next() == {
        T.id: "account:1",
        T.label: "account",
        "risk_score": [0.5],
    }
    assert g.V("account:1").value_map().with_(WithOptions.tokens).next() == {
        T.id: "account:1",
        T.label: "account",
        "risk_score": [0.5],
    }
    nested = g.V("account:1").project("v", "n").by(__.element_map()).by(__.out().count()).next()
    assert nested == {"v": {T.id: "account:1", T.label: "account", "risk_score": 0.5}, "n": 1}
    assert g.V().has_label("account").element_map().fold().next() == [
        {T.id: "account:1", T.label: "account", "risk_score": 0.5}
    ]


def test_elements_come_back_as_gremlinpython_vertices_and_edges(graph_backend):
    g = graph_backend
    ring_graph(g)

    vertex = g.V("account:a1").next()
    edge = g.E("account:a1|uses|device:d1").next()
    assert isinstance(vertex, Vertex)
    assert (vertex.id, vertex.label) == ("account:a1", "account")
    assert isinstance(edge, Edge)
    assert (edge.id, edge.label, edge.outV.id, edge.inV.id) == (
        "account:a1|uses|device:d1",
        "uses",
        "account:a1",
        "device:d1",
    )
    assert g.V("account:a1").both_e().other_v().id_().to_list() == ["device:d1"]
    assert g.E("account:a1|uses|device:d1").in_v().label().next() == "device"
    assert g.E("account:a1|uses|device:d1").out_v().id_().next() == "account:a1"


def test_has_gt_compares_numbers_as_numbers(graph_backend):
    g = graph_backend
    amounts = {"t1": 5, "t2": 50, "t3": 500, "t4": 9.5, "t5": 10.0, "t6": 100.25, "t7": -20}
    for name, amount in amounts.items():
        add_vertex(g, f"account:{name}", "account", amount=amount)

    def ids(predicate: P) -> list[str]:
        return sorted(v.removeprefix("account:") for v in g.V().has("amount", predicate).id_().to_list())

    assert ids(P.gt(9.99)) == ["t2", "t3", "t5", "t6"]  # 10.0 > 9.99; "500" is not < "9.5" here
    assert ids(P.gt(100)) == ["t3", "t6"]
    assert ids(P.gte(10)) == ["t2", "t3", "t5", "t6"]  # int 10 equals float 10.0
    assert ids(P.lt(0)) == ["t7"]
    assert ids(P.between(9.5, 50)) == ["t4", "t5"]  # between: low inclusive, high exclusive
    assert ids(P.gt(5).and_(P.lt(100))) == ["t2", "t4", "t5"]


def test_within_on_properties_ids_and_labels(graph_backend):
    g = graph_backend
    for n, country in enumerate(["US", "FR", "DE", "US"]):
        add_vertex(g, f"account:{n}", "account", country=country)
    add_vertex(g, "device:1", "device")

    assert sorted(g.V().has("country", P.within(["US", "FR"])).id_().to_list()) == [
        "account:0",
        "account:1",
        "account:3",
    ]
    assert sorted(g.V().has("country", P.without(["US"])).id_().to_list()) == ["account:1", "account:2"]
    assert sorted(g.V().has_id(P.within(["account:1", "device:1", "nope"])).id_().to_list()) == [
        "account:1",
        "device:1",
    ]
    assert g.V(["account:2", "account:3"]).count().next() == 2
    assert g.V().has_label(P.within(["device"])).count().next() == 1
    assert g.V().has("account", "country", "DE").id_().to_list() == ["account:2"]
    assert g.V().has("country", TextP.starting_with("F")).id_().to_list() == ["account:1"]


def test_order_limit_and_range(graph_backend):
    g = graph_backend
    for n, amount in enumerate([30, 10, 50, 20, 40]):
        add_vertex(g, f"account:{n}", "account", amount=amount)

    assert g.V().order().by("amount", Order.desc).limit(3).values("amount").to_list() == [50, 40, 30]
    assert g.V().values("amount").order().range_(1, 3).to_list() == [20, 30]
    assert g.V().order().by("amount").limit(1).id_().next() == "account:1"


def test_path_objects(graph_backend):
    g = graph_backend
    ring_graph(g)

    path = g.V("account:a1").out_e("uses").in_v().path().next()
    assert isinstance(path, Path)
    assert [type(o) for o in path.objects] == [Vertex, Edge, Vertex]
    assert [o.id for o in path.objects] == ["account:a1", "account:a1|uses|device:d1", "device:d1"]
    by_id = g.V("account:a1").repeat(__.both("uses").simple_path()).times(2).path().by(T.id).next()
    assert isinstance(by_id, Path)
    assert list(by_id.objects) == ["account:a1", "device:d1", "account:a2"]


# -- the rest of the step vocabulary -------------------------------------------------------------


def test_choose_coalesce_and_side_effect(graph_backend):
    g = graph_backend
    ring_graph(g)
    g.V("account:a1").side_effect(__.property(Cardinality.single, "flagged", True)).iterate()

    verdicts = (
        g.V()
        .has_label("account")
        .order()
        .by(T.id)
        .choose(__.has("flagged", True), __.constant("flagged"), __.constant("clear"))
        .to_list()
    )
    assert verdicts == ["flagged", "clear", "clear", "clear"]
    assert g.V("account:a2").coalesce(__.values("flagged"), __.constant(False)).next() is False
    assert g.V("account:a1").coalesce(__.values("flagged"), __.constant(False)).next() is True


def test_select_from_injected_maps_and_fold_unfold(graph_backend):
    g = graph_backend

    assert g.inject([{"m": {"k": 5}}, {"m": {"k": 7}}]).unfold().as_("x").select("x").select("m").select(
        "k"
    ).to_list() == [5, 7]
    assert g.inject([3, 1, 2]).unfold().order().fold().next() == [1, 2, 3]
    assert g.inject(4).math("_ * 2 + 1").next() == 9.0
    assert g.inject(1).union(__.constant(3), __.constant(9), __.constant(4)).max_().next() == 9
    assert g.inject(1).constant("x").is_("x").count().next() == 1
    assert g.inject(1).not_(__.is_(1)).count().next() == 0
    assert g.inject(2).and_(__.is_(P.gt(1)), __.is_(P.lt(3))).or_(__.is_(0), __.is_(2)).next() == 2


def test_local_group_count_and_select_columns(graph_backend):
    g = graph_backend
    ring_graph(g)

    degrees = g.V().has_label("device").order().by(T.id).local(__.in_("uses").count()).to_list()
    assert degrees == [2, 2, 1]
    counts = g.V().has_label("account").out("uses").group_count().by(T.id).next()
    assert counts == {"device:d1": 2, "device:d2": 2, "device:d3": 1}
    assert sorted(g.V().group_count().by(T.label).select(Column.keys).next()) == ["account", "device"]


def test_drop_removes_the_vertex_and_its_edges(graph_backend):
    g = graph_backend
    ring_graph(g)

    g.V("device:d1").drop().iterate()
    assert g.V().count().next() == 6
    assert g.E().count().next() == 3
    assert not g.V("device:d1").has_next()
    assert g.V("account:a1").has_next()


def test_strings_survive_the_round_trip(graph_backend):
    g = graph_backend
    awkward = [
        'quote " and \\ backslash',
        "line\nbreak\ttab\r",
        "${interpolation} `tick` 'single'",
        "é€😀",
        "#{}[]()",
    ]
    for n, text in enumerate(awkward):
        add_vertex(g, f"account:{n}", "account", note=text)

    assert [g.V(f"account:{n}").values("note").next() for n in range(len(awkward))] == awkward
    assert g.V().has("note", awkward[2]).id_().to_list() == ["account:2"]


def test_evaluation_timeout_option_is_accepted(graph_backend):
    g = graph_backend
    ring_graph(g)

    assert g.with_("evaluationTimeout", 30_000).V().count().next() == 7


def test_flag_marks_the_vertices_found_and_raises_their_risk_never_lowering_it(graph_backend):
    from gremlin_python.statics import long

    from fraudcore.graph.dsl import fraud_source

    g = graph_backend
    add_vertex(g, "account:low", "account", risk_score=0.2)
    add_vertex(g, "account:high", "account", risk_score=0.9)
    add_vertex(g, "account:none", "account")
    flag = {"flagged": True, "last_flag_reason": "shared_card", "last_flagged_at": long(1_700_000_000_000)}

    found = fraud_source(g).flag(["account:low", "account:high", "account:none", "account:gone"], flag, 0.5)

    assert sorted(found.to_list()) == ["account:high", "account:low", "account:none"]
    rows = g.V("account:low", "account:high", "account:none").order().by(T.id).value_map().to_list()
    assert [row["risk_score"] for row in rows] == [[0.9], [0.5], [0.5]]  # high, low, none
    assert all(row["flagged"] == [True] and row["last_flag_reason"] == ["shared_card"] for row in rows)
    assert fraud_source(g).flag(["account:gone"], flag, 0.5).to_list() == []
    assert g.V("account:gone").count().next() == 0


def test_alert_flags_the_vertex_and_records_its_alert_once_and_nothing_for_a_missing_vertex(graph_backend):
    from gremlin_python.statics import long

    from fraudcore.graph.dsl import fraud_source

    g = graph_backend
    add_vertex(g, "account:a1", "account", risk_score=0.2)
    add_vertex(g, "account:a2", "account")
    flag = ({"flagged": True, "last_flag_reason": "shared_card", "last_flagged_at": long(5)}, 0.6)
    first = {"reason": "shared_card", "risk_score": 0.6, "created_at": long(5)}

    assert fraud_source(g).alert("account:a1", "alert:1", first, long(5), flag=flag).to_list() == [
        "account:a1|flagged_by|alert:1"
    ]
    again = {"reason": "changed", "risk_score": 0.1, "created_at": long(9)}
    assert fraud_source(g).alert("account:a1", "alert:1", again, long(9), flag=flag).to_list() == [
        "account:a1|flagged_by|alert:1"
    ]
    # by hand: the alert, and no flag
    fraud_source(g).alert("account:a2", "alert:2", {"reason": "manual_investigation"}, long(5)).iterate()

    assert fraud_source(g).alert("account:gone", "alert:3", first, long(5), flag=flag).to_list() == []
    assert g.V().has_label("alert").order().by(T.id).id_().to_list() == ["alert:1", "alert:2"]
    assert g.V("alert:1").value_map("reason", "risk_score", "created_at").next() == {
        "reason": ["shared_card"],
        "risk_score": [0.6],
        "created_at": [5],
    }
    edges = g.E().has_label("flagged_by").order().by(T.id).project("out", "in", "at")
    edges = edges.by(__.out_v().id_()).by(__.in_v().id_()).by(__.values("created_at")).to_list()
    assert edges == [
        {"out": "account:a1", "in": "alert:1", "at": 5},
        {"out": "account:a2", "in": "alert:2", "at": 5},
    ]
    accounts = g.V("account:a1", "account:a2").order().by(T.id).value_map().to_list()
    assert [(row.get("flagged"), row.get("risk_score")) for row in accounts] == [
        ([True], [0.6]),
        (None, None),
    ]
