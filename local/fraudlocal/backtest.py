"""Backtest the window rules over recorded transactions.

The transactions are loaded into a scratch DuckDB store (a temporary directory), every
rule is evaluated at every schedule tick over the data's span, flags are deduplicated by
execution name (as the investigation starter would), and, given labels, each rule's flags
are scored as true or false positives at account level.

Two evaluation modes give the same investigations (same execution names):

- ``span`` (default): each rule runs ONCE over the whole span, its windows on the same
  epoch-aligned grid as the scheduled runs: 8 queries instead of 288 x 8 for a day at
  5-minute ticks. With all data present from the start, a window any tick looks at is
  seen whole by the last tick that looks at it (the look-back after a window's end is at
  least the schedule interval), and every aggregate only grows as a window fills, so a
  window hits at some tick exactly when it hits over its whole content. Span mode then
  replays each tick's view of those windows (the windows its run would evaluate, merged
  as a run merges overlapping windows), so flags are named and deduplicated as the
  scheduled runs name them. The one difference: a run may flag a window while it is
  still filling, so span mode can date a flag earlier (``evaluation_time``) and report
  the whole window's observation.
- ``per-tick`` (``--per-tick``): the scheduled path itself, every rule at every tick.

Labels (``--labels``): JSON lines or CSV with ``account_id``, ``label`` and/or
``pattern``, and an optional ``ring_id`` (the scenario's ``labels.jsonl`` and
``fraudlocal cases export-labels`` both qualify). An account is fraudulent when its
``label`` is ``fraud`` (or, without a label, when its ``pattern`` names fraud);
``legit``, ``confounder`` and the confounder patterns (households, public IPs...) are
legitimate, and so is every account without a row. The accounts behind a flag are the
account itself, or the accounts that used the flagged card, device or IP in its window.

Per rule, at account level: the fraudulent and the legitimate accounts it flagged,
precision (fraud among the flagged accounts) and recall (of all fraudulent accounts);
overall, the fraudulent accounts no rule caught. :func:`compare` diffs two backtests
(current rules and a candidate) account by account.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fraudcore.mapping import FieldMapping
from fraudcore.micro import Flag, dedupe_flags, evaluate_rules, flags_from_rows, parse_time
from fraudcore.model import InvalidRecord, Transaction, parse_transaction
from fraudcore.ports import TimeseriesStore
from fraudcore.rules import Rule, format_duration, rule_with
from fraudcore.timeseries import MissingColumnError
from fraudcore.timeseries.dialects import dialect_of
from fraudcore.timeseries.rule_sql import compile_range, evaluation_range, floor_to, span_range
from fraudcore.timeutil import iso_z

from .adapters.timeseries_duckdb import DuckDBTimeseriesStore
from .emulators.runtime import local_timeseries_backend
from .scenario.labels import CONFOUNDER, CONFOUNDER_PATTERNS

LEGIT_PATTERNS = {"", "legit", "legitimate", "none", "normal", "0", "false"}


class BacktestError(ValueError):
    """The data, labels or options of a backtest are wrong: the message says which and why."""


LOAD_BATCH = 10_000


def open_scratch_store(scratch: Path, database: str, table: str) -> TimeseriesStore:
    """A scratch store on the local engine ``fraudlocal --timeseries`` chose (DuckDB by default)."""
    if local_timeseries_backend() == "datafusion":
        from .adapters.timeseries_datafusion import DataFusionTimeseriesStore

        return DataFusionTimeseriesStore(scratch / "datafusion", database, table)
    return DuckDBTimeseriesStore(scratch / "backtest.duckdb", database, table)


def load_store(store: TimeseriesStore, transactions: Sequence[Transaction]) -> None:
    """Write the transactions through the local adapter, in large batches."""
    for offset in range(0, len(transactions), LOAD_BATCH):
        outcome = store.write(transactions[offset : offset + LOAD_BATCH])
        if outcome.failed:
            raise BacktestError(f"loading the scratch store failed: {next(iter(outcome.failed.values()))}")


@dataclass
class LoadedData:
    transactions: list[Transaction]
    rejected: list[str] = field(default_factory=list)
    duplicates: int = 0


def read_transactions(path: Path, mapping: FieldMapping | None = None) -> LoadedData:
    """Canonical transactions from a JSON-lines file; bad lines are reported, not fatal."""
    if not path.is_file():
        raise BacktestError(f"--data {path}: no such file")
    loaded = LoadedData(transactions=[])
    seen: set[str] = set()
    with path.open() as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                payload = mapping.apply(record) if mapping else record
                transaction = parse_transaction(payload)
            except json.JSONDecodeError as error:
                loaded.rejected.append(f"line {number}: not JSON ({error.msg})")
                continue
            except InvalidRecord as error:
                loaded.rejected.append(f"line {number}: {error.reason}")
                continue
            if transaction.transaction_id in seen:
                loaded.duplicates += 1
                continue
            seen.add(transaction.transaction_id)
            loaded.transactions.append(transaction)
    if not loaded.transactions:
        detail = f" ({loaded.rejected[0]})" if loaded.rejected else ""
        raise BacktestError(f"--data {path}: no valid transaction{detail}")
    return loaded


def label_class(text: str) -> str:
    """``fraud``, ``confounder`` (benign but fraud-like) or ``legit`` for a label or pattern."""
    word = text.strip().lower()
    if word in LEGIT_PATTERNS:
        return "legit"
    if word == CONFOUNDER or word in CONFOUNDER_PATTERNS:
        return CONFOUNDER
    return "fraud"


def read_labels(path: Path) -> dict[str, dict[str, str]]:
    """account_id -> {class (fraud|confounder|legit), pattern, ring_id} for every labelled account."""
    if not path.is_file():
        raise BacktestError(f"--labels {path}: no such file")
    text = path.read_text()
    stripped = text.lstrip()
    if stripped.startswith("["):
        raise BacktestError(
            f"--labels {path}: a JSON array; give one JSON object per line (JSON lines), "
            "e.g. jq -c '.[]' FILE > labels.jsonl"
        )
    if stripped.startswith("{"):
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise BacktestError(f"--labels {path}: line {number} is not JSON ({error.msg})") from None
    else:
        rows = list(csv.DictReader(io.StringIO(text)))
    labels: dict[str, dict[str, str]] = {}
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or not row.get("account_id"):
            raise BacktestError(
                f"--labels {path}: row {number} has no account_id (columns: account_id,label,pattern,ring_id)"
            )
        label = str(row.get("label") or "").strip()
        pattern = str(row.get("pattern") or "").strip()
        labels[str(row["account_id"])] = {
            "class": label_class(label or pattern),
            "pattern": pattern or label,
            "ring_id": str(row.get("ring_id") or ""),
        }
    return labels


def fraud_of(labels: dict[str, dict[str, str]]) -> set[str]:
    return {account for account, label in labels.items() if label["class"] == "fraud"}


def schedule_ticks(first_event: datetime, last_event: datetime, every: timedelta) -> list[datetime]:
    """Every tick from the first after the first event to the first after the last event."""
    first = floor_to(first_event, every) + every
    last = floor_to(last_event, every) + every
    return [first + every * index for index in range(int((last - first) / every) + 1)]


def evaluate_span(
    store: TimeseriesStore,
    rules: Sequence[Rule],
    ticks: Sequence[datetime],
    every: timedelta,
    skipped: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> list[Flag]:
    """Each rule once over the span, then each tick's view of those windows, as a run sees it.

    A rule on a column the data never carries is skipped, as the scheduled run skips it; a
    rule whose query fails otherwise is reported in ``errors`` and the others go on.
    """
    first_seen: dict[str, Flag] = {}
    for rule in rules:
        span = span_range(rule, ticks[0], ticks[-1], every)
        try:
            rows = store.query(compile_range(rule, store.database, store.table, span, dialect_of(store)))
        except MissingColumnError as error:
            if skipped is not None:
                skipped[rule.id] = error.skip_reason()
            continue
        except Exception as error:  # one broken rule must not hide the others' hits
            if errors is None:
                raise
            errors[rule.id] = f"{type(error).__name__}: {error}"
            continue
        hits = sorted(flags_from_rows(rule, rows, ticks[-1]), key=lambda flag: flag.window_start)
        starts = [flag.window_start for flag in hits]  # ISO texts in UTC sort in time order
        for tick in ticks:
            # The windows this tick's run evaluates, merged as a run merges them.
            low = bisect_left(starts, iso_z(evaluation_range(rule, tick, every).first_window_start))
            high = bisect_left(starts, iso_z(tick))
            for flag in dedupe_flags(hits[low:high]):
                if flag.execution_name not in first_seen:
                    first_seen[flag.execution_name] = flag.model_copy(update={"evaluation_time": iso_z(tick)})
    # named by the tick that raised them, as each run names its flags
    return dedupe_flags(first_seen.values(), grow=False)


def evaluate_per_tick(
    store: TimeseriesStore,
    rules: Sequence[Rule],
    ticks: Sequence[datetime],
    every: timedelta,
    skipped: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> list[Flag]:
    flags: list[Flag] = []
    for tick in ticks:
        tick_flags, tick_errors = evaluate_rules(store, rules, tick, every, skipped)
        if tick_errors and errors is None:
            raise BacktestError(f"rules failed at {iso_z(tick)}: {tick_errors}")
        for rule_id, message in tick_errors.items():
            errors.setdefault(rule_id, message)  # type: ignore[union-attr]
        flags.extend(tick_flags)
    return dedupe_flags(_first_seen(flags), grow=False)


def _first_seen(flags: Iterable[Flag]) -> list[Flag]:
    first: dict[str, Flag] = {}
    for flag in flags:
        if (
            flag.execution_name not in first
            or flag.evaluation_time < first[flag.execution_name].evaluation_time
        ):
            first[flag.execution_name] = flag
    return list(first.values())


def flag_accounts(store: TimeseriesStore, flag: Flag, entity_column: str) -> set[str]:
    """The accounts behind a flag: itself, or those that used the card/device/IP in its window."""
    if flag.entity_type == "account":
        return {flag.entity_id}
    dialect = dialect_of(store)
    entity = "'" + flag.entity_id.replace("'", "''") + "'"
    rows = store.query(
        f"SELECT DISTINCT account_id FROM {dialect.table(store.database, store.table)} "
        f"WHERE {entity_column} = {entity} "
        f"AND time >= {dialect.timestamp(parse_time(flag.window_start))} "
        f"AND time < {dialect.timestamp(parse_time(flag.window_end))}"
    )
    return {row["account_id"] for row in rows}


def score(
    store: TimeseriesStore,
    rules: Sequence[Rule],
    flags: Sequence[Flag],
    labels: dict[str, dict[str, str]] | None,
) -> dict[str, dict[str, Any]]:
    """Per rule: flags, distinct entities, and (with labels) the accounts it flagged, split
    into fraudulent and legitimate, with precision and recall over accounts."""
    report: dict[str, dict[str, Any]] = {}
    by_rule = {rule.id: rule for rule in rules}
    fraud = fraud_of(labels) if labels is not None else set()
    for rule in rules:
        mine = [flag for flag in flags if flag.rule == rule.id]
        entry: dict[str, Any] = {
            "enabled": rule.enabled,
            "threshold": rule.threshold,
            "window": format_duration(rule.window),
            "flags": len(mine),
            "entities": len({flag.entity_id for flag in mine}),
        }
        if labels is not None:
            flagged: set[str] = set()
            true_positives = 0
            for flag in mine:
                accounts = flag_accounts(store, flag, by_rule[flag.rule].entity_column)
                true_positives += bool(accounts & fraud)
                flagged |= accounts
            fraud_accounts = sorted(flagged & fraud)
            legit_accounts = sorted(flagged - fraud)
            legit_by_label: dict[str, int] = {}
            for account in legit_accounts:
                kind = labels[account]["class"] if account in labels else "unlabelled"
                legit_by_label[kind] = legit_by_label.get(kind, 0) + 1
            entry.update(
                {
                    "true_positives": true_positives,
                    "false_positives": len(mine) - true_positives,
                    "fraud_accounts": len(fraud_accounts),
                    "legit_accounts": len(legit_accounts),
                    "legit_accounts_by_label": dict(sorted(legit_by_label.items())),
                    "precision": round(len(fraud_accounts) / len(flagged), 4) if flagged else None,
                    "recall": round(len(fraud_accounts) / len(fraud), 4) if fraud else None,
                    "fraud_account_ids": fraud_accounts,
                    "legit_account_ids": legit_accounts,
                }
            )
        report[rule.id] = entry
    return report


def compare(current: dict[str, Any], candidate: dict[str, Any]) -> dict[str, Any]:
    """What the candidate rules change, account by account (both reports need labels)."""

    def accounts(report: dict[str, Any], rule_id: str | None, kind: str) -> set[str]:
        rules = report["rules"].values() if rule_id is None else [report["rules"].get(rule_id, {})]
        return {a for entry in rules for a in entry.get(f"{kind}_account_ids", [])}

    def diff(rule_id: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for kind in ("fraud", "legit"):
            before, after = accounts(current, rule_id, kind), accounts(candidate, rule_id, kind)
            out[f"{kind}_gained"] = sorted(after - before)
            out[f"{kind}_lost"] = sorted(before - after)
        return out

    per_rule = {}
    for rule_id in sorted(set(current["rules"]) | set(candidate["rules"])):
        before, after = current["rules"].get(rule_id, {}), candidate["rules"].get(rule_id, {})
        change = diff(rule_id)
        if before.get("threshold") != after.get("threshold") or any(change.values()):
            per_rule[rule_id] = {
                "threshold": {"current": before.get("threshold"), "candidate": after.get("threshold")},
                "precision": {"current": before.get("precision"), "candidate": after.get("precision")},
                "recall": {"current": before.get("recall"), "candidate": after.get("recall")},
                **change,
            }
    return {"rules": per_rule, "all_rules": diff(None)}


def run_backtest(
    data: Path,
    rules: Sequence[Rule],
    mapping: FieldMapping | None = None,
    labels: Path | None = None,
    every: timedelta = timedelta(minutes=5),
    per_tick: bool = False,
    database: str = "fraud",
    table: str = "transactions",
) -> dict[str, Any]:
    loaded = read_transactions(data, mapping)
    labelled = read_labels(labels) if labels else None
    # ``every`` changes when a rule's flags are raised, not which: a backtest evaluates
    # every rule at every tick, so both modes date a flag by the run that first saw it
    active = [rule_with(rule, every=None) for rule in rules if rule.enabled]
    first = min(tx.timestamp for tx in loaded.transactions)
    last = max(tx.timestamp for tx in loaded.transactions)
    ticks = schedule_ticks(first, last, every)
    mode = "per-tick" if per_tick else "span"
    skipped: dict[str, str] = {}
    rule_errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="fraud-backtest-") as scratch:
        store = open_scratch_store(Path(scratch), database, table)
        try:
            load_store(store, loaded.transactions)
            flags = (
                evaluate_per_tick(store, active, ticks, every, skipped, rule_errors)
                if mode == "per-tick"
                else evaluate_span(store, active, ticks, every, skipped, rule_errors)
            )
            per_rule = score(store, rules, flags, labelled)
        finally:
            store.close()
    result: dict[str, Any] = {
        "data": {
            "file": str(data),
            "transactions": len(loaded.transactions),
            "rejected": len(loaded.rejected),
            "rejected_examples": loaded.rejected[:5],
            "duplicate_ids": loaded.duplicates,
            "first_event": iso_z(first),
            "last_event": iso_z(last),
        },
        "every": format_duration(every),
        "ticks": len(ticks),
        "mode": mode,
        "rules": per_rule,
        "flags": [flag.to_dict() for flag in flags],
        **({"rule_errors": rule_errors} if rule_errors else {}),
    }
    if skipped:
        result["rules_skipped"] = skipped
    if labelled is not None:
        fraud = fraud_of(labelled)
        flagged = {flag.entity_id for flag in flags if flag.entity_type == "account"}
        caught = {a for entry in per_rule.values() for a in entry["fraud_account_ids"]}
        result["labels"] = {
            "fraud_accounts": len(fraud),
            "legit_accounts_labelled": len(labelled) - len(fraud),
            "fraud_accounts_flagged_directly": len(flagged & fraud),
            "fraud_accounts_caught": len(caught),
            "fraud_not_caught": sorted(fraud - caught),
        }
    return result
