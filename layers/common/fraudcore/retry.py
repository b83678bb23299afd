"""One retry policy: a bounded number of attempts, exponential backoff with full jitter.

Attempts count from 1 (the first try); after failed attempt ``n`` the wait is drawn
uniformly from ``[0, min(max_delay, base_delay * 2**(n - 1))]`` ("full jitter", AWS
Architecture Blog, "Exponential Backoff And Jitter"). Each adapter decides which errors
are worth another attempt; the policy says whether one is left and how long to wait.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Jitter = Callable[[float, float], float]


@dataclass
class RetryPolicy:
    max_attempts: int
    base_delay: float
    max_delay: float
    sleep: Callable[[float], None] = time.sleep
    jitter: Jitter = field(default=random.uniform)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")

    @property
    def max_retries(self) -> int:
        return self.max_attempts - 1

    def can_retry(self, attempt: int) -> bool:
        """Whether another attempt follows failed attempt ``attempt`` (counted from 1)."""
        return attempt < self.max_attempts

    def ceiling(self, attempt: int) -> float:
        return min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))

    def delay(self, attempt: int) -> float:
        """The wait after failed attempt ``attempt``: full jitter up to :meth:`ceiling`."""
        return self.jitter(0.0, self.ceiling(attempt))

    def back_off(self, attempt: int) -> float:
        """Sleep for :meth:`delay` and return it."""
        wait = self.delay(attempt)
        self.sleep(wait)
        return wait
