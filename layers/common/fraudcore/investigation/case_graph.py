"""The graph of one case, as an analyst looks at it: nodes and edges to draw.

Nodes: the members (accounts), every identifier (card, device, IP, email, phone) shared
by two or more members or named by a reason (a takeover's new device and IP, a farm's
device, a ring's shared email), and the counterparties of the members' transfers that a
reason names. Edges: ``uses`` from an account to those identifiers, and ``transfers_to``
between drawn accounts, directed as the money went, with the amount and count.

Bounded: at most :data:`IDENTIFIERS_PER_MEMBER` identifiers and
:data:`TRANSFERS_PER_MEMBER` transfers each way are read per member.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

from ..graph import schema
from ..graph.access import GraphAccess, GraphPort
from .model import label_of, plain_id

IDENTIFIERS_PER_MEMBER = 50
TRANSFERS_PER_MEMBER = 50


def case_graph(graph: GraphPort | GraphAccess, case: Mapping[str, Any]) -> dict[str, Any]:
    access = GraphAccess.of(graph)
    members = list(case["members"])
    member_vids = [schema.vertex_id(schema.ACCOUNT, m) for m in members]
    named = json.dumps(case.get("reasons") or [], default=str)
    nodes: dict[str, dict[str, Any]] = {
        vid: {"id": vid, "label": schema.ACCOUNT, "value": plain_id(vid), "member": True}
        for vid in member_vids
    }
    edges: list[dict[str, Any]] = []
    if not member_vids:
        return {"nodes": [], "edges": []}
    uses = access.run(
        lambda g: g.account_identifiers(member_vids, IDENTIFIERS_PER_MEMBER), "case graph: identifiers"
    )
    holders: Counter[str] = Counter()
    for row in uses:
        for identifier in row["identifiers"]:
            holders[str(identifier)] += 1
    for row in uses:
        account = str(row["account"])
        for identifier in map(str, row["identifiers"]):
            value = plain_id(identifier)
            if holders[identifier] >= 2 or identifier in named or f'"{value}"' in named:
                nodes.setdefault(
                    identifier,
                    {
                        "id": identifier,
                        "label": label_of(identifier),
                        "value": value,
                        "member": False,
                        "named_by_reason": identifier in named or f'"{value}"' in named,
                        "members_using": holders[identifier],
                    },
                )
                edges.append({"source": account, "target": identifier, "label": "uses"})
    seen: set[str] = set()
    for direction in ("out", "in"):
        rows = access.run(
            lambda g, direction=direction: g.transfers(member_vids, direction, TRANSFERS_PER_MEMBER),
            f"case graph: transfers {direction}",
        )
        for row in rows:
            account = str(row["account"])
            for transfer in row["transfers"]:
                other = str(transfer["account"])
                source, target = (account, other) if direction == "out" else (other, account)
                key = f"{source}>{target}"
                if key in seen:
                    continue
                if other not in nodes and other not in named and f'"{plain_id(other)}"' not in named:
                    continue
                seen.add(key)
                nodes.setdefault(
                    other,
                    {"id": other, "label": schema.ACCOUNT, "value": plain_id(other), "member": False},
                )
                edges.append(
                    {
                        "source": source,
                        "target": target,
                        "label": "transfers_to",
                        "amount": round(float(transfer["amount"]), 2),
                        "tx_count": int(transfer["tx_count"]),
                    }
                )
    return {"nodes": list(nodes.values()), "edges": edges}
