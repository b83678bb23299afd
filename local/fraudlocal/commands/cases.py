"""``fraudlocal cases list|show|label|note|close|export-labels``: the analyst's case queue.

Reads and writes the case vertices of the state dir's graph (after ``demo`` or ``replay``,
the latest run's stores) through :class:`fraudlocal.casedesk.CaseDesk`; ``serve`` shows
the same queue in a browser.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from fraudcore.contracts import VERDICTS
from fraudcore.investigation.casework import STATUSES

from ..casedesk import CaseDesk
from .invoke import add_graph_options, target_from_args


def format_money(stake: dict[str, float]) -> str:
    if not stake:
        return "-"
    return ", ".join(f"{amount:,.2f} {currency}" for currency, amount in sorted(stake.items()))


def format_queue(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no case matches (cases are recorded by investigations: run `fraudlocal demo` or `replay`)"
    header = ("case", "verdict", "score", "status", "members", "at stake", "opened", "updated", "related")
    table = [header]
    for row in rows:
        related = ", ".join(row["related_cases"][:3]) + (" ..." if len(row["related_cases"]) > 3 else "")
        if row["superseded_by"]:
            related = f"superseded by {row['superseded_by']}" + (f"; {related}" if related else "")
        table.append(
            (
                row["case_id"],
                row["verdict"],
                f"{row['score']:.3f}",
                row["status"],
                str(row["member_count"]),
                format_money(row["amount_at_stake"]),
                row["opened_at"] or "",
                row["updated_at"] or "",
                related,
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_relook(entry: dict[str, Any]) -> str:
    """One re-look of ``verdict_history``: its outcome, the verdict before and after, the
    members it added, what it looked at again."""
    before, after = entry.get("from") or {}, entry.get("to") or {}
    added = entry.get("members_added") or []
    return (
        f"{entry.get('at')} {entry.get('outcome')}: {before.get('verdict')} {before.get('score', 0.0):.3f}"
        f" -> {after.get('verdict')} {after.get('score', 0.0):.3f}"
        + (f", members added: {', '.join(added)}" if added else "")
        + f" (re-look of {entry.get('rule')} on {entry.get('entity')})"
    )


def format_case(case: dict[str, Any]) -> str:
    lines = [
        f"Case {case['case_id']}: {case['verdict']}, score {case['score']:.3f}, status {case['status']}",
        f"Opened {case['opened_at']} by {case['opened_by']}; updated {case['updated_at']}",
        f"At stake: {format_money(case['amount_at_stake'])}",
    ]
    if case["superseded_by"]:
        lines.append(f"Superseded by case {case['superseded_by']}, which holds every member of this one")
    if case["related_cases"]:
        lines.append(f"Related cases (sharing members): {', '.join(case['related_cases'])}")
    roles = {m: "member" for m in case["members"]}
    roles.update(case.get("roles") or {})
    lines.append(f"Members ({case['member_count']}):")
    lines += [f"  - {member} ({roles[member]})" for member in case["members"]]
    lines.append("Reasons:")
    for reason in case["reasons"]:
        strength = f" [{reason['strength']:.2f}]" if "strength" in reason else ""
        lines.append(f"  - {reason['sentence']}{strength}")
    if case.get("verdict_history"):
        lines.append("Re-looks (oldest first):")
        lines += [f"  - {format_relook(entry)}" for entry in case["verdict_history"]]
    lines.append(f"Transactions of the members ({len(case['transactions'])}, oldest first):")
    for tx in case["transactions"]:
        to = f" -> {tx['counterparty_account_id']}" if tx.get("counterparty_account_id") else ""
        where = " ".join(
            f"{k}={tx[k]}" for k in ("merchant_id", "device_id", "ip", "card_id", "country") if tx.get(k)
        )
        lines.append(
            f"  {tx['time']}  {tx['account_id']}{to}  {tx['amount']:,.2f} {tx['currency']}  {where}".rstrip()
        )
    lines.append("Decisions:")
    lines += [
        f"  - {d['at']} {d['by']}: {d['action']} ({d['previous_status']} -> {d['status']})"
        + (f": {d['note']}" if d.get("note") else "")
        for d in case["decisions"]
    ] or ["  (none yet: `fraudlocal cases label CASE_ID --as fraud|legit`)"]
    return "\n".join(lines)


def _print(data: Any, as_json: bool, text: str) -> None:
    if as_json:
        json.dump(data, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print(text)


def run_list(args: argparse.Namespace) -> int:
    rows = CaseDesk(target_from_args(args)).queue(args.status, args.verdict, args.search)
    _print(rows, args.json, format_queue(rows))
    return 0


def run_show(args: argparse.Namespace) -> int:
    case = CaseDesk(target_from_args(args)).case(args.case_id)
    _print(case, args.json, format_case(case))
    return 0


def run_decide(args: argparse.Namespace) -> int:
    action = getattr(args, "label_as", None) or args.action
    case = CaseDesk(target_from_args(args)).decide(args.case_id, action, args.by, args.note)
    _print(case, args.json, format_case(case))
    return 0


def run_export(args: argparse.Namespace) -> int:
    count = CaseDesk(target_from_args(args)).export_labels(args.out)
    if args.json:
        _print({"labels": count, "out": str(args.out)}, True, "")
    else:
        print(f"{count} account labels written to {args.out} (use: fraudlocal backtest --labels {args.out})")
    return 0


def _default_analyst() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "analyst"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cases",
        help="the case queue: list, show, label, export the decisions as labels",
        description="Review the cases the investigations recorded: the queue (highest risk first), a "
        "case with its members, reasons, transactions and decisions, and an analyst's decisions.",
    )
    actions = parser.add_subparsers(dest="cases_command", metavar="<action>")
    actions.required = True

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--json", action="store_true", help="print JSON")
        add_graph_options(sub)

    listing = actions.add_parser("list", help="the queue, highest risk first")
    listing.add_argument("--status", choices=STATUSES, help="only cases with this status")
    listing.add_argument("--verdict", choices=VERDICTS, help="only cases with this verdict")
    listing.add_argument("--search", help="only cases whose id, rule or a member contains this text")
    common(listing)
    listing.set_defaults(func=run_list)

    show = actions.add_parser("show", help="one case: members, reasons, transactions, decisions")
    show.add_argument("case_id")
    common(show)
    show.set_defaults(func=run_show)

    label = actions.add_parser("label", help="record a decision: confirmed fraud or a false positive")
    label.add_argument("case_id")
    label.add_argument("--as", dest="label_as", choices=("fraud", "legit"), required=True)
    label.add_argument("--note", default=None, help="why (kept in the case's history)")
    label.add_argument("--by", default=_default_analyst(), help="who decided (default: the current user)")
    common(label)
    label.set_defaults(func=run_decide, action="label")

    for action, help_text, note_required in (
        ("note", "add a note to a case without changing its status", True),
        ("close", "close a decided case", False),
    ):
        sub = actions.add_parser(action, help=help_text)
        sub.add_argument("case_id")
        sub.add_argument("--note", required=note_required, default=None)
        sub.add_argument("--by", default=_default_analyst(), help="who (default: the current user)")
        common(sub)
        sub.set_defaults(func=run_decide, action=action)

    export = actions.add_parser("export-labels", help="the decisions as a labels file for backtest --labels")
    export.add_argument("--out", type=Path, required=True, help="the labels file to write (JSON lines)")
    common(export)
    export.set_defaults(func=run_export)
