"""Python's cyclic garbage collector, set for the local runs.

A replay allocates millions of short-lived objects (decoded records, upsert batches, request
rows), almost none of them in a reference cycle: reference counting frees them. With the
default thresholds (700, 10, 10) the cyclic collector still ran 72 full passes over the heap
in the main process of a 100,000-transaction replay, 12.7 s of its 107 s.

- :func:`paused`: no cyclic collection at all, for a burst that builds acyclic data
  (scenario generation: its passes over hundreds of thousands of small objects doubled the
  run time and never freed anything).
- :func:`for_batch_run`: the young generation collected every :data:`BATCH_THRESHOLDS`\\[0]
  allocations instead of 700, and the older ones correspondingly less often, for a whole
  pipeline run. Cycles are still found, so memory stays bounded: the same replay ran with 4
  full passes (0.4 s) at the same peak RSS (361 MB against 360 MB).

Both restore the settings they found.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["BATCH_THRESHOLDS", "for_batch_run", "paused", "set_for_batch_run"]

#: the collector's thresholds during a pipeline run: generation 0 every 10,000 allocations
#: net of deallocations, generation 1 every 50 of those, generation 2 every 50 of those (and,
#: as always, only once the objects promoted since its last pass reach a quarter of the heap)
BATCH_THRESHOLDS = (10_000, 50, 50)


@contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection inside the block (reference counting still frees)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def set_for_batch_run() -> None:
    """:data:`BATCH_THRESHOLDS` for the rest of the process (a process that only runs the
    pipeline's stages, such as the span worker)."""
    gc.set_threshold(*BATCH_THRESHOLDS)


@contextmanager
def for_batch_run() -> Iterator[None]:
    """:data:`BATCH_THRESHOLDS` inside the block, the thresholds found before it afterwards."""
    before = gc.get_threshold()
    set_for_batch_run()
    try:
        yield
    finally:
        gc.set_threshold(*before)
