"""The outputs of a pipeline run: figures, flags, cases, rejected records and the HTML report.

``write_outputs`` writes into the output folder:

``summary.json``
    transactions put on the stream, rows stored, records rejected, flags by rule,
    investigations, cases by verdict, elapsed seconds per stage; and, when labels are
    known, the account-level figures: ``precision``, ``recall``, ``recall_by_pattern``,
    ``false_positives_by_confounder`` and ``confounders_in_fraud_ring_cases``.
``flags.json``
    one entry per flag (per execution name: a flag seen by several scheduled runs is
    investigated once and listed once).
``cases.json``
    one entry per case id (a case updated by several investigations appears once, as it
    stands at the end): ``case_id``, ``verdict``, ``score``, ``members``, ``reasons`` and
    the investigations that recorded it.
``rejected.jsonl``
    a copy of the state dir's rejected records.
``report.html``
    one self-contained page (no network): the figures, then every case with its graph
    drawn as inline SVG and its evidence.

A case *detects* its members when its verdict is ``fraud_ring``, ``account_takeover`` or
``suspicious``; ``confounders_in_fraud_ring_cases`` counts rings only (a takeover's victim
and payees are not a ring);
precision and recall are over accounts: detected accounts against the accounts labelled
``fraud``.
"""

from __future__ import annotations

import html
import json
import math
import shutil
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

from fraudcore.contracts import DETECTING_VERDICTS, VERDICTS
from fraudcore.timeutil import iso_z, parse_utc

from ..pipeline.results import STAGES, CaseRecord, PipelineResult
from ..scenario.labels import CONFOUNDER, FRAUD, Label
from ..state_dir import StateDir

ASSETS = Path(__file__).resolve().parent / "assets"
GRAPH_WIDTH, GRAPH_HEIGHT = 960, 560
#: the force layout is quadratic in vertices: big cases get fewer iterations
LAYOUT_BUDGET = 3_000_000


# -- figures ----------------------------------------------------------------------------------
def detected_accounts(cases: list[CaseRecord]) -> set[str]:
    return {member for case in cases if case.verdict in DETECTING_VERDICTS for member in case.members}


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def label_figures(cases: list[CaseRecord], labels: Mapping[str, Label]) -> dict[str, Any]:
    """Account-level precision and recall of the cases against the labels."""
    detected = detected_accounts(cases)
    fraud = {account for account, label in labels.items() if label.label == FRAUD}
    true_positives = detected & fraud
    false_positives = detected - fraud
    patterns = sorted({label.pattern for label in labels.values() if label.label == FRAUD})
    recall_by_pattern = {}
    missed_by_pattern = {}
    for pattern in patterns:
        planted = {a for a in fraud if labels[a].pattern == pattern}
        recall_by_pattern[pattern] = _ratio(len(planted & detected), len(planted))
        missed_by_pattern[pattern] = sorted(planted - detected)
    recall_by_variant = {}
    variants = sorted({(labels[a].pattern, labels[a].variant) for a in fraud if labels[a].variant})
    for pattern, variant in variants:
        planted = {a for a in fraud if labels[a].pattern == pattern and labels[a].variant == variant}
        recall_by_variant[f"{pattern}/{variant}"] = _ratio(len(planted & detected), len(planted))
    recall_by_role = {}
    for role in sorted({labels[a].role for a in fraud if labels[a].role}):
        planted = {a for a in fraud if labels[a].role == role}
        recall_by_role[role] = _ratio(len(planted & detected), len(planted))
    confounders = {a: labels[a] for a in false_positives if a in labels and labels[a].label == CONFOUNDER}
    by_confounder = Counter(label.pattern for label in confounders.values())
    in_rings = sorted(
        {
            member
            for case in cases
            if case.verdict == "fraud_ring"
            for member in case.members
            if member in labels and labels[member].label == CONFOUNDER
        }
    )
    return {
        "labelled_fraud_accounts": len(fraud),
        "detected_accounts": len(detected),
        "true_positives": len(true_positives),
        "false_positives": len(false_positives),
        "precision": _ratio(len(true_positives), len(detected)),
        "recall": _ratio(len(true_positives), len(fraud)),
        "recall_by_pattern": recall_by_pattern,
        "missed_by_pattern": missed_by_pattern,
        "recall_by_variant": recall_by_variant,
        "recall_by_role": recall_by_role,
        "false_positives_by_confounder": dict(sorted(by_confounder.items())),
        "false_positives_unlabelled": sorted(false_positives - set(labels)),
        "confounder_false_positives": sorted(confounders),
        "confounders_in_fraud_ring_cases": in_rings,
    }


def build_summary(
    result: PipelineResult, labels: Mapping[str, Label] | None, source: Mapping[str, Any]
) -> dict[str, Any]:
    rejected = result.rejected_by_function
    stored = int(result.stats.get("timeseries_rows", 0))
    # Each ingest function rejects an unreadable record on its own: count records once,
    # through the time-series function (the graph function's figure is kept apart).
    rejected_records = rejected.get("IngestTimeseriesFunction", 0)
    flags_by_rule = Counter(flag["rule"] for flag in result.flags)
    verdicts = Counter(case.verdict for case in result.cases)
    elapsed = {stage: result.elapsed.get(stage, 0.0) for stage in STAGES}
    elapsed["total"] = result.elapsed.get("total", 0.0)
    summary: dict[str, Any] = {
        "source": dict(source),
        "transactions": result.transactions,
        "stored_rows": stored,
        "rejected": rejected_records,
        "rejected_by_function": rejected,
        "given_up_by_mapping": {name: stats["records_given_up"] for name, stats in result.mappings.items()},
        "graph": {
            "vertices": sum(result.stats.get("graph_vertices", {}).values()),
            "edges": sum(result.stats.get("graph_edges", {}).values()),
            "vertices_by_label": result.stats.get("graph_vertices", {}),
            "edges_by_label": result.stats.get("graph_edges", {}),
        },
        "event_time": {
            "first": _iso(result.first_event),
            "last": _iso(result.last_event),
        },
        "schedule_every_seconds": int(result.every.total_seconds()),
        "micro_analysis_runs": result.ticks,
        "flags": len(result.flags),
        "flags_by_rule": dict(sorted(flags_by_rule.items())),
        "investigations": result.investigations,
        "investigations_failed": len(result.failed_investigations),
        "cases": len(result.cases),
        "cases_by_verdict": {verdict: verdicts.get(verdict, 0) for verdict in VERDICTS},
        "elapsed_seconds": elapsed,
        "transactions_per_second": round(result.transactions / elapsed["total"], 1)
        if elapsed["total"]
        else None,
        "event_source_mappings": result.mappings,
    }
    if labels is not None:
        summary.update(label_figures(result.cases, labels))
        summary["detection_latency"] = detection_latency(result, labels)
    return summary


def _percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile (``share`` in 0..1) of ``values``, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _latency(seconds: list[float]) -> dict[str, Any]:
    return {
        "accounts": len(seconds),
        "p50_seconds": _percentile(seconds, 0.5),
        "p95_seconds": _percentile(seconds, 0.95),
        "max_seconds": max(seconds) if seconds else None,
    }


def detection_latency(result: PipelineResult, labels: Mapping[str, Label]) -> dict[str, Any]:
    """Event time from a fraudulent account's first transaction to its first flag and first case.

    The labels mark accounts, not transactions: an account's first transaction stands for
    the start of its fraud. The first flag is the first scheduled run that flagged the
    account itself (account rules); the first case is the run whose investigation recorded
    a case with the account among its members. Accounts never flagged (or never in a case)
    are counted apart.
    """
    fraud = {account for account, label in labels.items() if label.label == FRAUD}
    first_flag: dict[str, datetime] = {}
    for flag in result.flags:
        if flag["entity_type"] == "account" and flag["entity_id"] in fraud:
            at = parse_utc(flag["evaluation_time"])
            account = flag["entity_id"]
            first_flag[account] = min(first_flag.get(account, at), at)
    began = {
        account: result.first_event_by_key[account]
        for account in fraud
        if account in result.first_event_by_key
    }

    def delays(reached: Mapping[str, datetime]) -> list[float]:
        return [(reached[a] - began[a]).total_seconds() for a in sorted(reached) if a in began and a in fraud]

    return {
        "basis": "event time from the account's first transaction",
        "to_first_flag": {
            **_latency(delays(first_flag)),
            "fraud_accounts_never_flagged_directly": len(fraud - set(first_flag)),
        },
        "to_case": {
            **_latency(delays(result.first_case_by_account)),
            "fraud_accounts_in_no_case": len(fraud - set(result.first_case_by_account)),
        },
    }


def _iso(moment: Any) -> str | None:
    return None if moment is None else iso_z(moment, "exact")


# -- files ------------------------------------------------------------------------------------
def write_outputs(
    result: PipelineResult,
    out_dir: Path,
    labels: Mapping[str, Label] | None,
    source: Mapping[str, Any],
) -> dict[str, Any]:
    """Write every output file; returns the summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = build_summary(result, labels, source)
    _dump(out_dir / "summary.json", summary)
    _dump(out_dir / "flags.json", result.flags)
    _dump(out_dir / "cases.json", [case.to_dict() for case in result.cases])
    rejected = StateDir(result.state_dir).rejected
    if rejected.exists():
        shutil.copyfile(rejected, out_dir / "rejected.jsonl")
    else:
        (out_dir / "rejected.jsonl").write_text("")
    (out_dir / "report.html").write_text(render_report(summary, result, labels), encoding="utf-8")
    return summary


def _dump(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, default=str) + "\n", encoding="utf-8")


# -- the table printed at the end ----------------------------------------------------------------
def print_table(summary: Mapping[str, Any], out_dir: Path, console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    figures = Table(title="fraudlocal pipeline", show_header=True, header_style="bold")
    figures.add_column("figure")
    figures.add_column("value", justify="right")
    rows: list[tuple[str, str]] = [
        ("transactions", f"{summary['transactions']:,}"),
        ("stored rows", f"{summary['stored_rows']:,}"),
        ("rejected", f"{summary['rejected']:,}"),
        ("flags", f"{summary['flags']:,}"),
        *((f"  {rule}", str(count)) for rule, count in summary["flags_by_rule"].items()),
        (
            "investigations",
            f"{summary['investigations']:,}"
            + (f" ({summary['investigations_failed']} failed)" if summary["investigations_failed"] else ""),
        ),
        ("cases", f"{summary['cases']:,}"),
        *((f"  {verdict}", str(count)) for verdict, count in summary["cases_by_verdict"].items()),
    ]
    if "precision" in summary:
        rows += [
            ("precision (accounts)", _pct(summary["precision"])),
            ("recall (accounts)", _pct(summary["recall"])),
        ]
        rows += [
            (f"  recall {pattern}", _pct(value)) for pattern, value in summary["recall_by_pattern"].items()
        ]
        rows += [
            (f"  recall {variant}", _pct(value))
            for variant, value in summary.get("recall_by_variant", {}).items()
        ]
        confounders = summary["false_positives_by_confounder"]
        rows.append(("confounders detected", _by(sum(confounders.values()), confounders)))
        rows.append(("confounders in fraud_ring cases", str(len(summary["confounders_in_fraud_ring_cases"]))))
        latency = summary["detection_latency"]
        for key, title in (("to_first_flag", "first flag"), ("to_case", "case")):
            figures_of = latency[key]
            rows.append(
                (
                    f"latency to {title} (event time)",
                    f"p50 {_minutes(figures_of['p50_seconds'])}, p95 {_minutes(figures_of['p95_seconds'])} "
                    f"({figures_of['accounts']} fraud accounts)",
                )
            )
    for name, value in rows:
        figures.add_row(name, value)
    stages = Table(title="elapsed", show_header=True, header_style="bold")
    stages.add_column("stage")
    stages.add_column("seconds", justify="right")
    for stage, seconds in summary["elapsed_seconds"].items():
        stages.add_row(stage.replace("_", " "), f"{seconds:.1f}")
    console.print(figures)
    console.print(stages)
    console.print(f"outputs: {out_dir}/summary.json, flags.json, cases.json, rejected.jsonl, report.html")


def _by(total: int, parts: Mapping[str, int]) -> str:
    shown = ", ".join(f"{name} {count}" for name, count in parts.items() if count)
    return f"{total:,}" + (f" ({shown})" if shown else "")


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:,.0f} min"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


# -- the HTML report ---------------------------------------------------------------------------
def _e(value: Any) -> str:
    return html.escape(str(value))


def case_graph(case: CaseRecord) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The case's accounts, the identifiers that link them and their transfers, laid out."""
    from .investigation_html import layout, ring_graph

    first = case.investigations[0] if case.investigations else {}
    summary = {
        "members": sorted(case.members),
        "entity": first.get("entity") or {},
        "flags_propagated": [],
    }
    nodes: dict[str, dict[str, Any]] = {}
    edges: dict[tuple[str, str, str], dict[str, Any]] = {}
    for analyses in case.analyses or [{}]:
        found_nodes, found_edges = ring_graph(summary, analyses)
        for node in found_nodes:
            nodes.setdefault(node["id"], node)
        for edge in found_edges:
            edges.setdefault((edge["source"], edge["target"], edge["type"]), edge)
        for chain in _chains(analyses.get("money_flow") or {}):
            for payer, payee in pairwise(chain):
                source, target = f"account:{payer}", f"account:{payee}"
                if source in nodes and target in nodes:
                    edges.setdefault(
                        (source, target, "transfers_to"),
                        {"source": source, "target": target, "type": "transfers_to"},
                    )
    node_list, edge_list = list(nodes.values()), list(edges.values())
    iterations = max(40, min(300, LAYOUT_BUDGET // max(1, len(node_list) ** 2)))
    layout(node_list, edge_list, iterations=iterations)
    return node_list, edge_list


def _chains(flow: Mapping[str, Any]) -> list[list[str]]:
    chains = []
    for key in ("cycles", "chains_out"):
        chains += [list(chain["accounts"]) for chain in flow.get(key, [])]
    chains += [list(chain["accounts"]) for chain in flow.get("chains_in", [])]
    return chains


_COLOURS = {
    "card": "#af7ac5",
    "device": "#48c9b0",
    "ip": "#f4d03f",
    "email": "#5dade2",
    "phone": "#eb984e",
    "merchant": "#aab7b8",
}


def graph_svg(case: CaseRecord, labels: Mapping[str, Label] | None) -> str:
    nodes, edges = case_graph(case)
    by_id = {node["id"]: node for node in nodes}
    parts = [
        f'<svg class="case-graph" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {GRAPH_WIDTH} {GRAPH_HEIGHT}" '
        f'role="img" aria-label="graph of case {_e(case.case_id)}" data-expected-nodes="{len(nodes)}" '
        f'data-expected-edges="{len(edges)}"><g class="edges">'
    ]
    for edge in edges:
        a, b = by_id[edge["source"]], by_id[edge["target"]]
        dashed = ' stroke-dasharray="6 4"' if edge["type"] == "transfers_to" else ""
        parts.append(
            f'<line class="edge edge-{_e(edge["type"])}" x1="{a["x"]}" y1="{a["y"]}" x2="{b["x"]}" y2="{b["y"]}"{dashed}/>'
        )
    parts.append('</g><g class="nodes">')
    for node in nodes:
        parts.append(_node_svg(node, labels))
    parts.append("</g></svg>")
    return "".join(parts)


def _node_svg(node: Mapping[str, Any], labels: Mapping[str, Label] | None) -> str:
    x, y = node["x"], node["y"]
    tooltip = str(node.get("tooltip") or node["id"])
    if node["kind"] == "account":
        label = (labels or {}).get(str(node["label"]))
        truth = "unlabelled" if label is None else f"{label.label}:{label.pattern}"
        tooltip += "" if labels is None else f" - ground truth {truth}"
        fill = (
            "#c0392b"
            if label is not None and label.label == FRAUD
            else ("#2471a3" if label is not None else "#5d6d7e")
        )
        stroke = (
            ' stroke="#1b2631" stroke-width="3"' if node.get("start") else ' stroke="#fff" stroke-width="2"'
        )
        shape = f'<circle r="{13 if node.get("start") else 10}" fill="{fill}"{stroke}/>'
        text_y = 26
    else:
        fill = _COLOURS.get(str(node["kind"]), "#aab7b8")
        shape = (
            f'<rect x="-8" y="-8" width="16" height="16" transform="rotate(45)" fill="{fill}" stroke="#fff"/>'
        )
        text_y = 22
    return (
        f'<g class="node node-{_e(node["kind"])}" data-id="{_e(node["id"])}" transform="translate({x},{y})">'
        f"<title>{_e(tooltip)}</title>{shape}"
        f'<text y="{text_y}" text-anchor="middle">{_e(node["label"])}</text></g>'
    )


def _figures_html(summary: Mapping[str, Any]) -> str:
    rows = [
        ("transactions", summary["transactions"]),
        ("stored rows", summary["stored_rows"]),
        ("rejected", summary["rejected"]),
        ("graph vertices / edges", f"{summary['graph']['vertices']} / {summary['graph']['edges']}"),
        ("micro-analysis runs", summary["micro_analysis_runs"]),
        ("flags", summary["flags"]),
        ("investigations", summary["investigations"]),
        ("cases", summary["cases"]),
    ]
    if "precision" in summary:
        rows += [
            ("precision (accounts)", _pct(summary["precision"])),
            ("recall (accounts)", _pct(summary["recall"])),
        ]
    table = "".join(f"<tr><th>{_e(k)}</th><td class=num>{_e(v)}</td></tr>" for k, v in rows)
    return f'<table class="figures">{table}</table>'


def _bars(title: str, values: Mapping[str, float], fmt: str = "{:,.0f}", scale: float | None = None) -> str:
    """A horizontal bar chart as inline SVG."""
    if not values:
        return ""
    top = scale or max(values.values()) or 1
    height = 24 * len(values) + 10
    bars = []
    for i, (name, value) in enumerate(values.items()):
        width = 0 if value is None else max(1.0, 420 * float(value) / top)
        shown = "n/a" if value is None else fmt.format(value)
        bars.append(
            f'<text x="0" y="{24 * i + 20}" class="bar-label">{_e(name)}</text>'
            f'<rect x="200" y="{24 * i + 6}" width="{width:.1f}" height="18" class="bar"/>'
            f'<text x="{205 + width:.1f}" y="{24 * i + 20}">{_e(shown)}</text>'
        )
    return (
        f'<figure><figcaption>{_e(title)}</figcaption><svg class="chart" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 720 {height}" width="720" height="{height}">{"".join(bars)}</svg></figure>'
    )


def _member_text(case: CaseRecord, member: str, labels: Mapping[str, Label] | None) -> str:
    role = case.roles.get(member, {}).get("role")
    text = f"{member} [{role}]" if role else member
    if labels is None:
        return text
    label = labels.get(member)
    return f"{text} ({label.pattern})" if label is not None else f"{text} (unlabelled)"


def _case_html(case: CaseRecord, labels: Mapping[str, Label] | None) -> str:
    members = sorted(case.members)
    member_text = ", ".join(_member_text(case, m, labels) for m in members)
    reasons = "".join(
        f"<li>{_e(reason.get('sentence', ''))} <span class=meta>({_e(reason.get('signal', ''))}, strength "
        f"{float(reason.get('strength', 0)):.2f})</span><details><summary>evidence</summary><pre>"
        f"{_e(json.dumps(reason.get('evidence', {}), indent=1, sort_keys=True))}</pre></details></li>"
        for reason in case.reasons
    )
    runs = "".join(
        f"<tr><td>{_e(i['execution_name'])}</td><td>{_e(i.get('rule') or 'manual')}</td>"
        f"<td>{_e((i.get('entity') or {}).get('type', ''))} {_e((i.get('entity') or {}).get('id', ''))}</td>"
        f"<td>{_e(i['verdict'])}</td><td class=num>{i['score']:.3f}</td></tr>"
        for i in case.investigations
    )
    return (
        f'<section class="case" id="{_e(case.case_id)}" data-case-id="{_e(case.case_id)}">'
        f'<h2>{_e(case.case_id)} <span class="verdict verdict-{_e(case.verdict)}">{_e(case.verdict)}</span> '
        f'<span class="meta">score {case.score:.3f}, {len(members)} members</span></h2>'
        f"<p class=meta>Members: {_e(member_text)}</p>"
        f'<div class="graph">{graph_svg(case, labels)}<p class="rendered meta"></p></div>'
        f"<h3>Reasons</h3><ol>{reasons or '<li>none recorded</li>'}</ol>"
        f"<h3>Investigations</h3><table><thead><tr><th>execution</th><th>rule</th><th>entity</th>"
        f"<th>verdict</th><th>score</th></tr></thead><tbody>{runs}</tbody></table></section>"
    )


def render_report(
    summary: Mapping[str, Any], result: PipelineResult, labels: Mapping[str, Label] | None
) -> str:
    charts = [
        _bars("flags by rule", summary["flags_by_rule"]),
        _bars("cases by verdict", summary["cases_by_verdict"]),
        _bars("elapsed seconds per stage", summary["elapsed_seconds"], "{:,.1f}"),
    ]
    if "recall_by_pattern" in summary:
        charts.append(_bars("recall by pattern", summary["recall_by_pattern"], "{:.0%}", scale=1.0))
        if summary["false_positives_by_confounder"]:
            charts.append(_bars("confounder accounts detected", summary["false_positives_by_confounder"]))
    order = {verdict: i for i, verdict in enumerate(VERDICTS)}
    cases = sorted(result.cases, key=lambda c: (order.get(c.verdict, 9), -c.score, c.case_id))
    failed = ""
    if result.failed_investigations:
        failed = (
            "<h2>Failed investigations</h2><ul>"
            + "".join(
                f"<li>{_e(f['execution_name'])}: {_e(f.get('error'))} {_e(f.get('cause'))}</li>"
                for f in result.failed_investigations
            )
            + "</ul>"
        )
    body = (
        "<h1>Fraud detection: local pipeline report</h1>"
        f"<p class=meta>{_e(summary['source'].get('kind', ''))} {_e(summary['source'].get('path', '') or '')} - "
        f"event time {_e(summary['event_time']['first'])} to {_e(summary['event_time']['last'])}</p>"
        f"<h2>Overview</h2>{_figures_html(summary)}<div class=charts>{''.join(charts)}</div>{failed}"
        f"<h2>Cases ({len(cases)})</h2>" + "".join(_case_html(case, labels) for case in cases)
    )
    template = (ASSETS / "report.html").read_text(encoding="utf-8")
    return (
        template.replace("{{title}}", "Fraud detection report")
        .replace("{{style}}", (ASSETS / "report.css").read_text(encoding="utf-8"))
        .replace("{{body}}", body)
        .replace("{{script}}", (ASSETS / "report.js").read_text(encoding="utf-8"))
    )
