"""The cyclic garbage collector's settings for local runs: set inside, restored after."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from fraudlocal import collector
from fraudlocal.pipeline.ordering import order_records, ordering_mapping
from fraudlocal.pipeline.run import Pipeline, PipelineConfig
from fraudlocal.scenario import generate


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield (700, 10, 10)
    gc.set_threshold(*before)


def test_batch_run_thresholds_inside_and_restored_after_a_failure(thresholds: tuple[int, int, int]) -> None:
    with pytest.raises(RuntimeError, match="inside"), collector.for_batch_run():
        assert gc.get_threshold() == collector.BATCH_THRESHOLDS
        raise RuntimeError("inside")
    assert gc.get_threshold() == thresholds


def test_paused_restores_what_it_found() -> None:
    assert gc.isenabled()
    with collector.paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


@pytest.mark.slow
def test_a_pipeline_run_sets_the_thresholds_and_restores_them(
    thresholds: tuple[int, int, int], tmp_path: Path
) -> None:
    lines = [
        (json.dumps(r, separators=(",", ":")).encode(), None)
        for r in generate(accounts=500, days=1, seed=5).iter_transactions()
    ]
    records = order_records(lines, ordering_mapping(None))
    seen: list[tuple[int, int, int]] = []
    pipeline = Pipeline(
        PipelineConfig(state_dir=tmp_path, every=timedelta(minutes=15)),
        on_progress=lambda _: seen.append(gc.get_threshold()),
    )
    result = pipeline.run(records)
    assert result.transactions == len(records)
    assert seen and set(seen) == {collector.BATCH_THRESHOLDS}
    assert gc.get_threshold() == thresholds
