"""Bytecode -> graphersal script translation, result conversion and the durable store."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from gremlin_python.process.anonymous_traversal import traversal
from gremlin_python.process.graph_traversal import GraphTraversalSource, __
from gremlin_python.process.traversal import (
    Cardinality,
    CardinalityValue,
    Direction,
    Merge,
    Order,
    P,
    Scope,
    T,
    WithOptions,
)
from gremlin_python.statics import long
from gremlin_python.structure.graph import Graph
from gremlin_python.structure.graph import Path as GremlinPath

from fraudlocal.adapters.graph_embedded import (
    EmbeddedGraphError,
    GraphersalRemoteConnection,
    GraphStoreLockedError,
    open_embedded_graph,
)
from fraudlocal.adapters.gremlin_translate import TranslationError, translate

# Builds bytecode only; nothing is submitted.
G = Graph().traversal()


def script(t) -> str:
    return translate(t.bytecode).text


@pytest.fixture
def g() -> GraphTraversalSource:
    return traversal().with_remote(GraphersalRemoteConnection.in_memory())


# -- script text ----------------------------------------------------------------------------


def test_merge_maps_use_graphersal_token_keys():
    t = G.merge_v({T.id: "account:1"}).option(Merge.on_create, {T.label: "account", "n": 1})
    assert (
        script(t)
        == 'g.mergeV(#{"T.id": "account:1"}).option(Merge.onCreate, #{"T.label": "account", "n": 1}).to_list()'
    )
    e = G.merge_e({T.label: "uses", Direction.from_: "a", Direction.to: "b"}).option(Merge.on_match, {"c": 2})
    assert script(e) == (
        'g.mergeE(#{"T.label": "uses", "Direction.OUT": "a", "Direction.IN": "b"})'
        '.option(Merge.onMatch, #{"c": 2}).to_list()'
    )


def test_iterate_becomes_the_iterate_terminal():
    t = G.V("x").drop()
    t.bytecode.add_step("none")  # what Traversal.iterate() appends
    translated = translate(t.bytecode)
    assert translated.text == 'g.V("x").drop().iterate()'
    assert translated.discards_results


def test_anonymous_traversals_predicates_and_tokens():
    t = (
        G.V()
        .has("amount", P.gt(9.5).and_(P.lt(100)))
        .has(T.label, P.within(["account", "card"]))
        .order()
        .by("amount", Order.desc)
        .local(__.both().limit(Scope.local, 2))
        .value_map()
        .with_(WithOptions.tokens, WithOptions.labels)
    )
    assert script(t) == (
        'g.V().has("amount", P.gt(9.5).and(P.lt(100))).has(T.label, P.within(["account", "card"]))'
        '.order().by("amount", Order.desc).local(__.both().limit(Scope.local, 2))'
        ".valueMap().with(WithOptions.tokens, WithOptions.labels).to_list()"
    )


def test_strings_are_escaped_never_spliced():
    text = script(G.V('x"); g.V().drop(); ("'))
    assert text == 'g.V("x\\"); g.V().drop(); (\\"").to_list()'
    assert script(G.inject("a\\b\nc\x01${d}")) == 'g.inject("a\\\\b\\nc\\x01${d}").to_list()'


def test_values_without_a_literal_form_are_bound_as_params():
    when = dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC)
    translated = translate(G.inject(when, math.inf, -(2**63)).bytecode)
    assert translated.text == "g.inject(_p0, _p1, _p2).to_list()"
    assert translated.params == {"_p0": when, "_p1": math.inf, "_p2": -(2**63)}


def test_cardinality_value_single_is_the_plain_value():
    t = G.merge_v({T.id: "a"}).option(Merge.on_match, {"last_seen": CardinalityValue.single(5)})
    assert '#{"last_seen": 5}' in script(t)


def test_with_evaluation_timeout_is_a_source_option():
    assert (
        script(G.with_("evaluationTimeout", 500).V().count())
        == 'g.with("evaluationTimeout", 500).V().count().to_list()'
    )


def test_many_ids_become_one_list():
    ids = [f"account:{n}" for n in range(12)]
    translated = translate(G.V(*ids).count().bytecode)
    assert translated.text == "g.V(parse_json(_p0)).count().to_list()"
    assert json.loads(translated.params["_p0"]) == ids
    assert script(G.V(*ids[:3]).count()) == 'g.V("account:0", "account:1", "account:2").count().to_list()'
    assert script(G.V().has_label(*ids).count()).startswith('g.V().hasLabel(["account:0", "account:1", ')
    assert script(G.inject(*range(12))) == "g.inject(0, 1, 2, 3, 4, 5, 6, 7, 8, 9).inject(10, 11).to_list()"


def test_many_ids_with_any_characters_find_their_elements(g):
    odd = ['quo"te', "back\\slash", "new\nline", "nul\x00", "astral 😀", "${x}", "#{m}", "a|b%7C"]
    ids = [f"v{n}" for n in range(10)] + odd
    for vid in ids:
        g.add_v("thing").property(T.id, vid).iterate()
    for a, b in itertools.pairwise(ids):
        g.V(a).add_e("next").to(__.V(b)).property(T.id, f"{a}>{b}").iterate()
    assert sorted(g.V(*ids, "absent").id_().to_list()) == sorted(ids)
    edge_ids = [f"{a}>{b}" for a, b in itertools.pairwise(ids)]
    assert sorted(g.E(*edge_ids, "absent").id_().to_list()) == sorted(edge_ids)


def test_a_batch_of_maps_is_bound_as_one_json_parameter():
    rows = [
        {
            "match": {T.id: f"account:{n}", T.label: "account"},
            "create": {"first_seen": long(n), "amount": 1.25},
        }
        for n in range(3)
    ]
    translated = translate(G.inject(rows).unfold().count().bytecode)
    assert translated.text == "g.inject(parse_json(_p0)).unfold().count().to_list()"
    assert json.loads(translated.params["_p0"]) == [
        {"match": {"T.id": f"account:{n}", "T.label": "account"}, "create": {"first_seen": n, "amount": 1.25}}
        for n in range(3)
    ]


@pytest.mark.parametrize(
    "value",
    [
        0.30000000000000004,
        1052.5399999999997,
        1e300,
        5e-324,
        math.nan,
        dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    ],
)
def test_a_batch_holding_a_value_json_would_not_carry_exactly_is_written_as_literals(value):
    translated = translate(G.inject([{"k": value}, {"k": 1}]).bytecode)
    assert "parse_json" not in translated.text


@pytest.mark.parametrize(
    "value",
    [
        'quote " backslash \\ newline \n nul \x00 bell \x07 del \x7f',
        "unicode é 😀 \u2028 and ${braces} #{map}",
        -0.0,
        16204.51,
        1e16,
        2.5e-07,
        2**63 - 1,
        -(2**63) + 1,
        True,
        None,
        [],
        {},
    ],
)
def test_json_batches_read_back_exactly_as_literals_do(g, value):
    literal = translate(G.inject({"k": value}).bytecode)
    batch = translate(G.inject([{"k": value}, {"k": value}]).bytecode)
    assert "parse_json" in batch.text and "parse_json" not in literal.text
    assert g.inject([{"k": value}, {"k": value}]).unfold().select("k").to_list() == [value, value]
    assert g.inject({"k": value}).select("k").to_list() == [value]


def test_a_token_spelled_key_in_a_batch_is_refused_as_in_a_literal_map():
    with pytest.raises(TranslationError, match="reserved by the embedded graph engine"):
        translate(G.inject([{"T.id": "x"}, {"k": 1}]).bytecode)


def test_upserts_through_a_json_batch_match_literal_upserts(g):
    rows = [
        {
            "match": {T.id: f"account:{n}", T.label: "account"},
            "create": {"first_seen": long(n), "amount": n / 4},
        }
        for n in range(5)
    ]
    g.inject(rows).unfold().as_("v").merge_v(__.select("v").select("match")).option(
        Merge.on_create, __.select("v").select("create")
    ).iterate()
    literal = traversal().with_remote(GraphersalRemoteConnection.in_memory())
    for row in rows:
        literal.merge_v(row["match"]).option(Merge.on_create, row["create"]).iterate()
    assert g.V().element_map().to_list() == literal.V().element_map().to_list()
    assert len(g.V().to_list()) == 5


@pytest.mark.parametrize(
    ("build", "named"),
    [
        (lambda: G.V().property(Cardinality.list_, "k", 1), "property(Cardinality.list"),
        (lambda: G.V().property("id", 1), "property('id'"),
        (lambda: G.merge_v({"label": "x"}), "mergeV()"),
        (lambda: G.inject({"T.id": "x"}), "inject()"),
        (lambda: G.inject({1: "x"}), "inject()"),
        (lambda: G.inject(object()), "inject()"),
        (lambda: G.inject(2**70), "inject()"),
        (lambda: G.V().property("k", 1, "meta", 2), "meta-properties"),
        (lambda: G.V().dedup(*[f"a{n}" for n in range(11)]), "dedup() with 11 arguments"),
    ],
)
def test_untranslatable_constructs_name_the_step(build, named):
    with pytest.raises(TranslationError, match=None) as error:
        translate(build().bytecode)
    assert named in str(error.value)


# -- running through gremlinpython ------------------------------------------------------------


def test_remote_connection_reads_and_writes(g):
    g.merge_v({T.id: "account:1"}).option(Merge.on_create, {T.label: "account", "amount": 12.5}).iterate()
    g.merge_v({T.id: "account:2"}).option(Merge.on_create, {T.label: "account", "amount": 3}).iterate()

    assert g.V().has("amount", P.gt(4)).id_().to_list() == ["account:1"]
    assert g.V("account:1").has_next()
    assert not g.V("nope").has_next()
    assert g.V().count().next() == 2
    assert g.V("account:1").element_map().next() == {T.id: "account:1", T.label: "account", "amount": 12.5}


def test_paths_become_gremlinpython_paths(g):
    g.merge_v({T.id: "a"}).iterate()
    g.merge_v({T.id: "b"}).iterate()
    g.merge_e({T.label: "uses", Direction.from_: "a", Direction.to: "b"}).iterate()

    path = g.V("a").out().path().by(T.id).next()
    assert isinstance(path, GremlinPath)
    assert list(path.objects) == ["a", "b"]


def test_unsupported_step_names_the_step(g):
    with pytest.raises(EmbeddedGraphError, match=r"step timeLimit\(\) is not supported"):
        g.V().time_limit(10).to_list()


def test_engine_failures_carry_the_engine_message(g):
    g.merge_v({T.id: "a"}).iterate()
    with pytest.raises(EmbeddedGraphError, match="select"):
        g.V().select(T.id).select("k").to_list()


def test_closed_connection_refuses_requests():
    connection = GraphersalRemoteConnection.in_memory()
    connection.close()
    with pytest.raises(EmbeddedGraphError, match="closed"):
        traversal().with_remote(connection).V().to_list()


# -- the durable store -----------------------------------------------------------------------


def test_store_is_created_under_the_state_dir_and_survives_a_reopen(tmp_path: Path):
    connection = open_embedded_graph(tmp_path)
    assert (tmp_path / "graph").is_dir()
    assert open_embedded_graph(tmp_path) is connection  # one instance per path
    traversal().with_remote(connection).merge_v({T.id: "account:1"}).option(
        Merge.on_create, {T.label: "account"}
    ).iterate()
    connection.close()

    reopened = open_embedded_graph(tmp_path)
    try:
        assert reopened is not connection
        assert traversal().with_remote(reopened).V().id_().to_list() == ["account:1"]
    finally:
        reopened.close()


def test_a_second_process_cannot_open_the_store(tmp_path: Path):
    connection = open_embedded_graph(tmp_path)
    try:
        child = textwrap.dedent(
            f"""
            from pathlib import Path
            from fraudlocal.adapters.graph_embedded import GraphStoreLockedError, open_embedded_graph
            try:
                open_embedded_graph(Path({str(tmp_path)!r}))
            except GraphStoreLockedError as exc:
                print("locked:", exc)
            """
        )
        result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60)
        assert "locked:" in result.stdout, result.stderr
        assert "single writer" in result.stdout
    finally:
        connection.close()
    assert issubclass(GraphStoreLockedError, EmbeddedGraphError)
