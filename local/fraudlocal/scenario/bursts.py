"""Placing short bursts of payments so that every kind of window rule sees them whole.

A burst starts a few seconds after an epoch-aligned boundary and lasts at most
``BURST_SPAN_MS``: whether a rule slides its window or uses bins aligned to the Unix
epoch, the planted payments fall into one window.
"""

from __future__ import annotations

from .population import MINUTE_MS
from .world import World

BURST_BIN_MS = 5 * MINUTE_MS
#: planted bursts last at most this long, well inside their 5-minute bin
BURST_SPAN_MS = 200_000
#: the sum the high_value_burst rule looks for (the AWS guidance's 50,000 in 5 minutes)
HIGH_VALUE_THRESHOLD = 50_000.0


def split_amount(world: World, total: float, parts: int, floor: float = 0.0) -> list[float]:
    """``total`` cut into ``parts`` uneven pieces, each at least ``floor``."""
    weights = [world.rng.uniform(0.6, 1.4) for _ in range(parts)]
    scale = (total - floor * parts) / sum(weights)
    return [round(floor + weight * scale, 2) for weight in weights]


def burst_start(world: World, lo_ms: int, hi_ms: int, step_ms: int = BURST_BIN_MS) -> int:
    """A moment a few seconds after a random ``step_ms`` boundary in ``[lo_ms, hi_ms)``."""
    return world.clock.aligned(world.rng, lo_ms, hi_ms, step_ms) + world.rng.randint(2_000, 40_000)


def burst_times(world: World, start_ms: int, count: int) -> list[int]:
    """``count`` moments within ``BURST_SPAN_MS`` of ``start_ms``, in order."""
    return sorted(start_ms + world.rng.randrange(BURST_SPAN_MS) for _ in range(count))
