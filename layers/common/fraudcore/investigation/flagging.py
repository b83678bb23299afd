"""Flag the investigated entity: the first step of every investigation.

An automated flag marks the vertex (``flagged``, ``risk_score`` raised, never lowered,
``last_flag_reason``, ``last_flagged_at``) and records an ``alert`` vertex linked by
``flagged_by``, so the history of flags stays. A hand-started investigation records an
alert (reason ``manual_investigation``) but does not mark the entity flagged: an analyst
looking at an account is not evidence against it.

A re-look (a flag looked at again later) neither marks the entity nor records an alert:
the flag it looks at again did both; what it finds goes to the case's history.

Alert ids are derived from the flag (rule, entity, window end), so a retried step or a
re-delivered flag writes the same alert once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gremlin_python.statics import long

from ..graph import schema
from ..graph.access import GraphAccess, GraphPort
from .model import EntityNotFound, EntityNotInGraph, Investigation, epoch_ms

MANUAL_REASON = "manual_investigation"


def alert_id(investigation: Investigation) -> str:
    return schema.vertex_id(
        schema.ALERT,
        f"{investigation.rule}:{investigation.entity_type}:{investigation.entity_id}:{investigation.reference_ms}",
    )


def flag_entity(
    graph: GraphPort | GraphAccess, investigation: Investigation, now: datetime
) -> dict[str, Any]:
    """Flag the entity and record its alert; returns ``$.investigation`` for the next steps."""
    access = GraphAccess.of(graph)
    vid = investigation.vertex_id
    at = long(epoch_ms(now))  # epoch ms exceed GraphBinary's 32-bit int
    alert = alert_id(investigation)
    if investigation.is_relook:
        found = access.run(lambda g: g.existing_ids([vid]), "flag: entity exists")
    else:
        alert_props = {
            "reason": MANUAL_REASON if investigation.is_manual else investigation.rule,
            "summary": investigation.summary,
            "entity": vid,
            "risk_score": investigation.risk_score,
            "reference_time": investigation.reference_time,
            "created_at": at,
        }
        flag = {"flagged": True, "last_flag_reason": investigation.rule, "last_flagged_at": at}
        # found, marked (not when started by hand) and its alert recorded in one request
        found = access.run(
            lambda g: g.alert(
                vid,
                alert,
                alert_props,
                at,
                flag=None if investigation.is_manual else (flag, investigation.risk_score),
            ),
            "flag: mark entity, record alert",
        )
    if not found:
        if investigation.is_manual:
            # An analyst's typo: retrying cannot help. A flag's entity may still be on its
            # way through ingest (the two run independently), so that one is retried.
            raise EntityNotFound(
                f"{investigation.entity_type} {investigation.entity_id!r} is not in the graph (vertex {vid}): "
                "check the id (case members and flagged entities are listed by the case queue)"
            )
        raise EntityNotInGraph(
            f"{investigation.entity_type} {investigation.entity_id!r} is not in the graph (vertex {vid}): "
            "check the id, or wait until its transactions are ingested"
        )
    if investigation.is_relook:
        return investigation.to_dict()
    return {**investigation.to_dict(), "alert_id": alert, "flagged_at": at}
