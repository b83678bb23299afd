"""What a pipeline run produced: its cases and its figures (the report reads these)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fraudcore.contracts import VERDICTS
from fraudcore.investigation.scoring import merge_roles

#: the stages whose time a run measures
STAGES = ("ingest_timeseries", "ingest_graph", "micro_analysis", "investigations")


@dataclass
class CaseRecord:
    """A case as the investigations left it: one entry per case id."""

    case_id: str
    verdict: str
    score: float
    members: set[str] = field(default_factory=set)
    reasons: list[dict[str, Any]] = field(default_factory=list)
    investigations: list[dict[str, Any]] = field(default_factory=list)
    analyses: list[dict[str, Any]] = field(default_factory=list)
    #: member -> its role (a specific role found by one investigation wins over a generic one)
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    _best: tuple[int, float] = (99, -1.0)

    def update(self, summary: Mapping[str, Any], name: str, analyses: Mapping[str, Any] | None) -> None:
        # The recorded verdict and score are already the most severe of the case's
        # investigations (only a re-look lowers a provisional verdict); members only grow.
        self.verdict = str(summary["verdict"])
        self.score = float(summary["score"])
        self.members.update(str(m) for m in summary.get("members", []))
        self.roles = merge_roles(self.roles, summary.get("roles") or {})
        own_verdict = str(summary.get("investigation_verdict", summary["verdict"]))
        own_score = float(summary.get("investigation_score", summary["score"]))
        rank = (_verdict_rank(own_verdict), -own_score)
        if (summary.get("relook") or {}).get("outcome") == "lowered":
            # a re-look lowered the verdict: its reasons are the case's now
            self._best = (99, -1.0)
        if rank < self._best:
            # The reasons shown are those of the investigation that found the most.
            self._best = rank
            self.reasons = list(summary.get("reasons", []))
        self.investigations.append(
            {
                "execution_name": name,
                "rule": summary.get("rule"),
                "entity": summary.get("entity"),
                "verdict": own_verdict,
                "score": own_score,
                "members": list(summary.get("members", [])),
                "status": summary.get("status"),
            }
        )
        if analyses:
            self.analyses.append(dict(analyses))

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "verdict": self.verdict,
            "score": self.score,
            "members": sorted(self.members),
            "roles": {member: self.roles[member] for member in sorted(self.roles)},
            "reasons": self.reasons,
            "investigations": self.investigations,
        }


def _verdict_rank(verdict: str) -> int:
    return VERDICTS.index(verdict) if verdict in VERDICTS else len(VERDICTS)


@dataclass
class PipelineResult:
    """What a run produced; :mod:`fraudlocal.reporting.report` turns it into the output files."""

    transactions: int
    stats: dict[str, Any]
    rejected_by_function: dict[str, int]
    mappings: dict[str, dict[str, int]]
    flags: list[dict[str, Any]]
    cases: list[CaseRecord]
    investigations: int
    failed_investigations: list[dict[str, Any]]
    ticks: int
    every: timedelta
    first_event: datetime | None
    last_event: datetime | None
    elapsed: dict[str, float]
    state_dir: Path
    #: event time of each partition key's (account's) first record, and of the first case
    #: recorded with each account among its members (the run's tick): detection latency
    first_event_by_key: dict[str, datetime] = field(default_factory=dict)
    first_case_by_account: dict[str, datetime] = field(default_factory=dict)
