"""The simulated clock: the schedule of ``MicroAnalysisFunction``, in event time.

A tick fires every ``every`` of event time (epoch-aligned), once both Kinesis mappings have
caught up with every record before it. Ticks where nothing can change are skipped: once
the clock is more than ``horizon`` (the longest ``window + lateness`` of the rules) past
the last record, no rule can see an event, so a quiet period of the input costs nothing.
When the input ends, the clock keeps ticking until the last record's windows have closed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fraudcore.rules import RuleError, enabled_rules, load_rules
from fraudcore.timeseries.rule_sql import floor_to
from fraudcore.timeutil import iso_z

from ..errors import UserError

#: how long the clock runs past the last record when no rule is enabled
FALLBACK_HORIZON = timedelta(hours=1, minutes=10)


def rules_horizon(override: Path | None) -> timedelta:
    """How long after the last event a rule can still see it: the longest window + lateness."""
    try:
        rules = enabled_rules(load_rules(override=str(override) if override else ""))
    except RuleError as error:
        raise UserError(str(error)) from None
    if not rules:
        return FALLBACK_HORIZON
    return max(rule.window + rule.lateness for rule in rules)


@dataclass
class SimulatedClock:
    every: timedelta
    horizon: timedelta
    next_tick: datetime | None = None

    def due(self, event_time: datetime, last_event: datetime | None) -> Iterator[datetime]:
        """The ticks to run before a record at ``event_time`` is put on the stream."""
        if self.next_tick is None:
            self.next_tick = floor_to(event_time, self.every) + self.every
        while event_time >= self.next_tick:
            if last_event is not None and self.next_tick > last_event + self.horizon:
                # Nothing recorded can be seen by a rule any more: jump over the quiet period.
                self.next_tick = max(self.next_tick, floor_to(event_time, self.every) + self.every)
                continue
            yield self.next_tick
            self.next_tick += self.every

    def closing(self, last_event: datetime | None) -> Iterator[datetime]:
        """The ticks after the input ended, until every window of the last record has closed."""
        if last_event is None or self.next_tick is None:
            return
        while self.next_tick <= last_event + self.horizon + self.every:
            yield self.next_tick
            self.next_tick += self.every


def scheduled_event(moment: datetime) -> dict[str, Any]:
    """The event EventBridge Scheduler sends ``MicroAnalysisFunction`` at ``moment``."""
    stamp = iso_z(moment.astimezone(UTC))
    return {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"fraudlocal-tick:{stamp}")),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": stamp,
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:000000000000:rule/fraud-micro-analysis-schedule"],
        "detail": {},
    }
