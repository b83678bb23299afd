"""The investigation page: the ring drawn as a graph, the evidence and the execution history.

One self-contained HTML file (no CDN, no network): the layout is computed here with a
small deterministic force-directed layout, embedded as JSON, and drawn as SVG by the
inline script in ``assets/investigation.js``, which then writes how many vertices and
edges it drew into ``<body data-rendered-nodes=... data-rendered-edges=...>``.
"""

from __future__ import annotations

import html
import json
import math
import random
import re
from pathlib import Path
from typing import Any

from .state_machine import RECORD_CASE_STATE

ASSETS = Path(__file__).resolve().parent / "assets"
WIDTH, HEIGHT, MARGIN = 960, 560, 50


def analyses_from_history(history: list[dict[str, Any]]) -> dict[str, Any]:
    """The analyses the record step received (its input), from the execution history."""
    for event in history:
        if event.get("state") == RECORD_CASE_STATE and isinstance(event.get("input"), dict):
            return dict(event["input"].get("analyses") or {})
    return {}


# -- graph and layout -----------------------------------------------------------------------


def ring_graph(
    case: dict[str, Any], analyses: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Vertices (accounts and the identifiers that link them) and edges of the case's ring."""
    ring = analyses.get("ring") or {}
    start = (case.get("entity") or ring.get("start") or {}).get("id")
    flagged_before = set(ring.get("flagged_members", []))
    propagated = set(case.get("flags_propagated", []))
    members = list(dict.fromkeys([*ring.get("members", []), *case.get("members", [])]))
    nodes: dict[str, dict[str, Any]] = {}
    for account in members:
        state = (
            "flagged before this case"
            if account in flagged_before
            else ("flagged by this case" if account in propagated else "not flagged")
        )
        nodes[f"account:{account}"] = {
            "id": f"account:{account}",
            "label": account,
            "kind": "account",
            "flagged": account in flagged_before,
            "propagated": account in propagated and account not in flagged_before,
            "start": account == start,
            "tooltip": f"account {account} ({state})",
        }
    edges = []
    identifiers = list(ring.get("shared_identifiers", []))
    for item in (analyses.get("shared_device") or {}).get("identifiers", []):
        if item["class"] in ("device_farm", "household") and len(item["account_ids"]) >= 2:
            identifiers.append(
                {
                    "type": item["type"],
                    "id": item["id"],
                    "degree": item["accounts"],
                    "accounts": item["account_ids"],
                }
            )
    for item in identifiers:
        vid = f"{item['type']}:{item['id']}"
        if vid not in nodes:
            nodes[vid] = {
                "id": vid,
                "label": item["id"],
                "kind": item["type"],
                "flagged": False,
                "propagated": False,
                "start": item["id"] == start,
                "tooltip": f"{item['type']} {item['id']}: used by {item['degree']} accounts",
            }
        for account in item["accounts"]:
            aid = f"account:{account}"
            if aid not in nodes:
                continue
            edge = {"source": aid, "target": vid, "type": item["type"]}
            if edge not in edges:
                edges.append(edge)
    return list(nodes.values()), edges


def layout(nodes: list[dict[str, Any]], edges: list[dict[str, Any]], iterations: int = 300) -> None:
    """Fruchterman-Reingold, seeded: the same case always draws the same picture."""
    count = len(nodes)
    if count == 0:
        return
    rng = random.Random(7)
    index = {n["id"]: i for i, n in enumerate(nodes)}
    pos = [
        [
            math.cos(2 * math.pi * i / count) * 0.4 + rng.uniform(-0.01, 0.01),
            math.sin(2 * math.pi * i / count) * 0.4,
        ]
        for i in range(count)
    ]
    k = math.sqrt(1.0 / count)
    links = [(index[e["source"]], index[e["target"]]) for e in edges]
    temperature = 0.1
    for _ in range(iterations):
        shift = [[0.0, 0.0] for _ in range(count)]
        for i in range(count):
            for j in range(i + 1, count):
                dx, dy = pos[i][0] - pos[j][0], pos[i][1] - pos[j][1]
                dist = max(math.hypot(dx, dy), 1e-4)
                force = k * k / dist
                shift[i][0] += dx / dist * force
                shift[i][1] += dy / dist * force
                shift[j][0] -= dx / dist * force
                shift[j][1] -= dy / dist * force
        for i, j in links:
            dx, dy = pos[i][0] - pos[j][0], pos[i][1] - pos[j][1]
            dist = max(math.hypot(dx, dy), 1e-4)
            force = dist * dist / k
            shift[i][0] -= dx / dist * force
            shift[i][1] -= dy / dist * force
            shift[j][0] += dx / dist * force
            shift[j][1] += dy / dist * force
        for i in range(count):
            # a weak pull to the centre keeps separate components on the canvas
            shift[i][0] -= pos[i][0] * 0.05
            shift[i][1] -= pos[i][1] * 0.05
            length = max(math.hypot(*shift[i]), 1e-9)
            step = min(length, temperature)
            pos[i][0] += shift[i][0] / length * step
            pos[i][1] += shift[i][1] / length * step
        temperature = max(temperature * 0.985, 0.002)
    xs, ys = [p[0] for p in pos], [p[1] for p in pos]
    span_x, span_y = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    for node, (x, y) in zip(nodes, pos, strict=True):
        node["x"] = (
            round(MARGIN + (x - min(xs)) / span_x * (WIDTH - 2 * MARGIN), 1) if count > 1 else WIDTH / 2
        )
        node["y"] = (
            round(MARGIN + (y - min(ys)) / span_y * (HEIGHT - 2 * MARGIN), 1) if count > 1 else HEIGHT / 2
        )


# -- sections ------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(headers: list[str], rows: list[list[Any]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=num' if i in numeric else ''}>{_e(c)}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _reasons(case: dict[str, Any]) -> str:
    items = []
    for reason in case.get("reasons", []):
        evidence = json.dumps(reason.get("evidence", {}), indent=2, sort_keys=True)
        items.append(
            f"<li><p>{_e(reason['sentence'])} <span class=meta>({_e(reason['signal'])}, "
            f"strength {float(reason.get('strength', 0)):.2f})</span></p>"
            f"<details><summary>evidence</summary><pre>{_e(evidence)}</pre></details></li>"
        )
    return (
        "<h2>Reasons</h2><ol>" + "".join(items) + "</ol>"
        if items
        else "<h2>Reasons</h2><p>None recorded.</p>"
    )


def _analyses(analyses: dict[str, Any]) -> str:
    parts = []
    ring = analyses.get("ring")
    if ring:
        rows = [
            [s["type"], s["id"], s["degree"], ", ".join(s["accounts"])] for s in ring["shared_identifiers"]
        ]
        rows += [
            [s["type"], s["id"], s["degree"], "skipped: used by too many accounts"]
            for s in ring.get("skipped_identifiers", [])
        ]
        parts.append(
            f"<h2>Ring analysis</h2><p>{len(ring['members'])} members, density {ring['density']}, "
            f"flagged share {ring['flagged_share']}, ring score {ring['ring_score']}"
            f"{', benign household pattern' if ring.get('benign_cluster') else ''}"
            f"{'; bounded: ' + _e('; '.join(t['detail'] for t in ring['truncation'])) if ring.get('truncated') else ''}</p>"
            + _table(["type", "identifier", "accounts using it", "ring members on it"], rows, {2})
        )
    usage = analyses.get("shared_device")
    if usage:
        rows = [
            [
                i["type"],
                i["id"],
                i["class"],
                i["accounts"],
                i["accounts_last_24h"],
                ", ".join(i["flagged_accounts"]),
                i.get("first_seen_at") or "",
                i.get("last_seen_at") or "",
            ]
            for i in usage["identifiers"]
        ]
        parts.append(
            "<h2>Shared devices and IPs</h2>"
            + _table(
                ["type", "id", "class", "accounts", "last 24 h", "flagged", "first seen", "last seen"],
                rows,
                {3, 4},
            )
        )
    flow = analyses.get("money_flow")
    if flow:
        chains = [
            [kind, " -> ".join(c["accounts"]), ", ".join(f"{a:,.2f}" for a in c["amounts"])]
            for kind, key in (("cycle", "cycles"), ("out", "chains_out"), ("in", "chains_in"))
            for c in flow[key]
        ]
        parts.append(
            f"<h2>Money flow</h2><p>in {flow['amount_in']:,.2f} from {flow['fan_in']} accounts, out "
            f"{flow['amount_out']:,.2f} to {flow['fan_out']} accounts, pass-through {flow['pass_through']}</p>"
            + _table(["kind", "chain", "amounts"], chains)
        )
    return "".join(parts)


def _history(history: list[dict[str, Any]]) -> str:
    rows = [
        [
            e.get("state", ""),
            e.get("type", ""),
            e.get("entered_at", ""),
            f"{float(e.get('duration_ms') or 0):.1f}",
            len(e.get("retries") or []),
            e.get("error") or "",
        ]
        for e in history
    ]
    return "<h2>Execution history</h2>" + _table(
        ["state", "type", "entered", "ms", "retries", "error"], rows, {3, 4}
    )


def render_investigation_html(execution: dict[str, Any]) -> str:
    """The page for one execution (``Execution.to_dict()`` of the local executor)."""
    history = execution.get("history") or []
    case = execution.get("output") if execution.get("status") == "SUCCEEDED" else None
    case = case or {}
    analyses = analyses_from_history(history)
    nodes, edges = ring_graph(case, analyses)
    layout(nodes, edges)
    entity = case.get("entity") or {}
    subject = f"{entity.get('type', '')} {entity.get('id', '')}".strip() or execution.get("name", "")
    if case:
        badge = f'<span class="verdict verdict-{_e(case["verdict"])}">{_e(case["verdict"])}</span>'
        meta = (
            f"score {case['score']:.3f} - case {case['case_id']} ({case.get('status', '')}) - "
            f"{len(case.get('members', []))} members - rule {case.get('rule', '')} - reference time {case.get('reference_time', '')}"
        )
    else:
        badge = '<span class="verdict verdict-failed">failed</span>'
        meta = f"{execution.get('error') or ''}: {execution.get('cause') or ''}"
    sections = _reasons(case) + _analyses(analyses) + _history(history)
    data = json.dumps({"width": WIDTH, "height": HEIGHT, "nodes": nodes, "edges": edges}).replace(
        "</", "<\\/"
    )
    template = (ASSETS / "investigation.html").read_text()
    replacements = {
        "{{title}}": _e(f"Investigation of {subject}"),
        "{{heading}}": _e(f"Investigation of {subject}"),
        "{{verdict_badge}}": badge,
        "{{meta}}": _e(meta),
        "{{sections}}": sections,
        "{{data}}": data,
        "{{script}}": (ASSETS / "investigation.js").read_text(),
    }
    # one pass, so text from the data (which may contain "{{") is never expanded again
    return re.sub(r"\{\{\w+\}\}", lambda m: replacements.get(m.group(0), m.group(0)), template)


def write_investigation_html(execution: dict[str, Any], path: Path) -> int:
    """Write the page; returns the number of vertices of the ring graph."""
    page = render_investigation_html(execution)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return page.count('"kind":')
