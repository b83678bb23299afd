"""The analyst's desk over the local stores: the case queue, a case, decisions, labels.

The CLI (``fraudlocal cases``) and the web app (``fraudlocal serve``) both go through
:class:`CaseDesk`, which reaches the stores through the same backends the functions use
(the embedded graph or a Gremlin Server, and the time-series store) and the case workflow
of :mod:`fraudcore.investigation.casework`. Each call opens the stores and closes them
again, so the CLI and a running web app take turns on the embedded stores (each allows
one writer at a time).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fraudcore import backends
from fraudcore.investigation import casework
from fraudcore.investigation.case_graph import case_graph

from .errors import UserError
from .runtime import LocalTarget, patched_environment

#: the columns of the queue the search box looks in
SEARCHED = ("case_id", "verdict", "status", "last_rule", "opened_by")


class CaseDesk:
    def __init__(self, target: LocalTarget, clock: Any = None) -> None:
        self.target = target
        self._clock = clock or (lambda: datetime.now(tz=UTC))
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _stores(self) -> Iterator[tuple[Any, Any]]:
        with self._lock, patched_environment(self.target.environment({})):
            try:
                yield backends.graph_connection(), backends.timeseries_store()
            except (casework.CaseNotFound, casework.InvalidDecision) as error:
                raise UserError(str(error)) from None
            finally:
                backends.reset()

    def queue(
        self,
        status: str | None = None,
        verdict: str | None = None,
        search: str | None = None,
        include_superseded: bool = True,
    ) -> list[dict[str, Any]]:
        """The queue, highest risk first, each case with its amount at stake per currency."""
        with self._stores() as (graph, timeseries):
            cases = casework.list_cases(graph, status, verdict, include_superseded)
            stakes = casework.amounts_at_stake(timeseries, cases)
        needle = (search or "").strip().lower()
        rows = []
        for case in cases:
            if needle and not _matches(case, needle):
                continue
            rows.append(
                {
                    key: case[key]
                    for key in (
                        "case_id",
                        "verdict",
                        "score",
                        "status",
                        "member_count",
                        "opened_at",
                        "updated_at",
                        "related_cases",
                        "superseded_by",
                        "last_rule",
                    )
                }
                | {"amount_at_stake": stakes.get(case["case_id"], {})}
            )
        return rows

    def case(self, case_id: str) -> dict[str, Any]:
        """A case with its members' transactions in time order and its decisions."""
        with self._stores() as (graph, timeseries):
            case = casework.get_case(graph, case_id)
            transactions = casework.member_transactions(timeseries, case["members"])
            case["amount_at_stake"] = casework.amounts_at_stake(timeseries, [case]).get(case["case_id"], {})
            case["graph"] = case_graph(graph, case)
        case["transactions"] = transactions
        return case

    def decide(self, case_id: str, action: str, by: str, note: str | None = None) -> dict[str, Any]:
        with self._stores() as (graph, _timeseries):
            casework.decide(graph, case_id, action, by, note, self._clock())
        return self.case(case_id)

    def labels(self) -> list[dict[str, str]]:
        """The decided cases' members as labels (what ``backtest --labels`` reads)."""
        with self._stores() as (graph, _timeseries):
            return casework.export_labels(casework.list_cases(graph))

    def export_labels(self, out: Path) -> int:
        labels = self.labels()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(row) + "\n" for row in labels))
        return len(labels)


def _matches(case: dict[str, Any], needle: str) -> bool:
    if any(needle in str(case.get(key) or "").lower() for key in SEARCHED):
        return True
    return any(needle in member.lower() for member in case.get("members", []))
