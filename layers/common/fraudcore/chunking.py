"""Split a sequence into consecutive chunks of at most ``size`` items (request size limits)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")
    return [items[start : start + size] for start in range(0, len(items), size)]
