"""The graph store's memory of the vertices the graph holds: bounded, recent ids kept."""

from __future__ import annotations

import pytest

from fraudcore.graph.store import KnownVertices
from fraudcore.graph.upserts import VertexUpsert


def vertices(*ids: str) -> list[VertexUpsert]:
    return [VertexUpsert(vid, "account", vid, 0) for vid in ids]


def test_known_ids_are_left_out_and_unknown_ones_kept_in_order():
    known = KnownVertices(limit=10)
    known.add_all(["a", "c"])
    assert [v.vid for v in known.unknown(vertices("a", "b", "c", "d"))] == ["b", "d"]
    assert "a" in known and "b" not in known


def test_it_holds_at_most_its_limit_and_forgets_the_oldest_generation():
    known = KnownVertices(limit=4)
    known.add_all(["a", "b"])  # the recent generation is full (limit // 2)
    known.add_all(["c", "d"])  # a and b become the older generation
    assert len(known) == 4 and all(vid in known for vid in "abcd")
    known.add("e")  # c and d become the older generation, a and b are forgotten
    assert len(known) <= 4
    assert "a" not in known and "b" not in known
    assert all(vid in known for vid in "cde")


def test_an_id_met_again_in_the_older_generation_is_kept():
    known = KnownVertices(limit=4)
    known.add_all(["a", "b", "c", "d"])  # a, b older; c, d recent
    assert known.unknown(vertices("a")) == []  # a met again: recent again
    known.add_all(["e", "f"])
    assert "a" in known and "b" not in known


def test_a_limit_below_two_remembers_nothing_and_clear_forgets_all():
    off = KnownVertices(limit=0)
    off.add("a")
    assert "a" not in off and len(off) == 0
    known = KnownVertices(limit=10)
    known.add_all(["a", "b"])
    known.clear()
    assert len(known) == 0
    with pytest.raises(ValueError):
        KnownVertices(limit=-1)
