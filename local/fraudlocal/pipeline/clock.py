"""The simulated clock: the schedule of ``MicroAnalysisFunction``, in event time.

A tick fires every ``every`` of event time (epoch-aligned), once both Kinesis mappings have
caught up with every record before it. Ticks where nothing can change are skipped: once
the clock is more than ``horizon`` (the longest ``window + lateness`` of the rules) past
the last record, no rule can see an event, so a quiet period of the input costs nothing.
When the input ends, the clock keeps ticking until the last record's windows have closed.
"""

from __future__ import annotations

import uuid
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


def rules_horizon(override: Path | None, every: timedelta | None = None) -> timedelta:
    """How long after the last event a rule can still see it: the longest window + lateness
    (+ its ``relook_after``, + its ``every``: the run that queries it may come that much later).

    A rule whose ``every`` is not a multiple of the schedule interval ``every`` is refused.
    """
    try:
        rules = enabled_rules(load_rules(override=str(override) if override else ""))
        for rule in rules:
            rule.runs_per_query(every)
    except RuleError as error:
        raise UserError(str(error)) from None
    if not rules:
        return FALLBACK_HORIZON
    # a rule that looks at its hits again does so after ``relook_after``
    return max(
        rule.window + rule.lateness + (rule.relook_after or timedelta(0)) + (rule.every or timedelta(0))
        for rule in rules
    )


@dataclass
class ScheduleClock:
    """The simulated schedule: which ticks fire as event time advances.

    A tick fires when the first record at or after it arrives; ticks more than
    ``horizon`` after the last record are skipped (no rule can see an event any more).
    """

    every: timedelta
    horizon: timedelta
    next_tick: datetime | None = None
    last_event: datetime | None = None

    def advance(self, event_time: datetime) -> list[datetime]:
        """The ticks due before a record at ``event_time``, in order; then the record counts."""
        due: list[datetime] = []
        if self.next_tick is None:
            self.next_tick = floor_to(event_time, self.every) + self.every
        while event_time >= self.next_tick:
            if self.last_event is not None and self.next_tick > self.last_event + self.horizon:
                # Nothing recorded can be seen by a rule any more: jump over the quiet period.
                self.next_tick = max(self.next_tick, floor_to(event_time, self.every) + self.every)
                continue
            due.append(self.next_tick)
            self.next_tick += self.every
        self.last_event = max(self.last_event or event_time, event_time)
        return due

    def closing(self) -> list[datetime]:
        """The ticks after the input ends, until every window of the last record has closed."""
        due: list[datetime] = []
        if self.last_event is not None and self.next_tick is not None:
            while self.next_tick <= self.last_event + self.horizon + self.every:
                due.append(self.next_tick)
                self.next_tick += self.every
        return due


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
