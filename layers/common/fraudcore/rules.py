"""Window rules as data: the model, the shipped file, and threshold overrides.

The rules live in ``rules.yaml`` next to this module (the format is documented there).
``RULES_OVERRIDE`` changes thresholds without code: a YAML/JSON file path, inline JSON,
or ``ssm:/parameter/name`` (read once per execution environment), each holding
``{rule_id: {threshold: N, enabled: false, window: 10m, ...}}``.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from .model import DIMENSION_FIELDS

#: libyaml's loader when PyYAML was built with it (several times faster), the pure one otherwise
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

SHIPPED_RULES = Path(__file__).parent / "rules.yaml"

#: entity type -> the time-series column that identifies it
ENTITY_COLUMNS = {
    "account": "account_id",
    "card": "card_id",
    "device": "device_id",
    "ip": "ip",
    "email": "email",
    "phone": "phone",
    "merchant": "merchant_id",
}
SEVERITIES = ("low", "medium", "high", "critical")
OPERATORS = (">", ">=")
OVERRIDABLE = (
    "threshold",
    "enabled",
    "window",
    "hop",
    "severity",
    "cooldown",
    "lateness",
    "recheck_on_close",
    "wait_for_close",
    "every",
)
RULE_KEYS = {
    "id",
    "rationale",
    "entity",
    "window",
    "hop",
    "filter",
    "aggregate",
    "op",
    "threshold",
    "severity",
    "cooldown",
    "lateness",
    "enabled",
    "description",
    "params",
    "recheck_on_close",
    "wait_for_close",
    "relook_after",
    "signals",
    "every",
}
SPIKE_PARAMS = {"baseline_transactions": 20, "min_history": 5, "min_amount": 1000.0, "history": "1d"}
#: pass_through: an account must have received at least this much by transfer in the window
PASS_THROUGH_PARAMS = {"min_received": 10_000.0}
#: the parameters each aggregate takes (and their defaults); the others take none
AGGREGATE_PARAMS: dict[str, dict[str, Any]] = {"spike": SPIKE_PARAMS, "pass_through": PASS_THROUGH_PARAMS}
FILTER_COLUMNS = {"amount", *DIMENSION_FIELDS}
#: the parameters of a rule with signals: how far back the account's profile is read, what
#: "new" means (first used no earlier than ``new_within`` before the transaction), how many
#: earlier transactions make the habit (and how many at least, so that a brand-new account,
#: with nothing to compare with, is never "unusual"), and the smallest amount worth a look
SIGNAL_PARAMS = {
    "history": "30d",
    "new_within": "1h",
    "established": "3h",
    "habit_transactions": 50,
    "min_history": 3,
    "min_amount": 500.0,
}
#: identifiers whose first use by the account a ``new`` signal can test
NOVELTY_COLUMNS = ("device_id", "ip", "country", "counterparty_account_id", "merchant_id", "card_id")
MAX_HOPS_PER_WINDOW = 4
#: no duration of a rule (window, hop, cooldown, lateness, history) is longer
MAX_DURATION = timedelta(days=366)

_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_AGGREGATE = re.compile(
    r"^(sum|max)\(amount\)$|^count\(\*\)$|^count\(distinct ([a-z_]+)\)$|^spike$|^pass_through$"
)
_RULE_ID = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
# A filter may use columns, numbers, quoted strings and comparison/boolean operators: it is
# pasted into SQL, so anything else (semicolons, comments, subqueries) is refused.
_FILTER_TOKEN = re.compile(
    r"\s+|'[^']*'|\d+(?:\.\d+)?|<=|>=|<>|!=|[<>=(),]|[A-Za-z_][A-Za-z0-9_]*",
)
_FILTER_WORDS = {"and", "or", "not", "in", "is", "null", "between", "like", "true", "false"}


class RuleError(ValueError):
    """A rule definition or an override is wrong: the message names the rule and the field."""


def parse_duration(text: Any, where: str) -> timedelta:
    """A Timestream duration (``150s``, ``5m``, ``1h``, ``1d``) as a timedelta, at most a year."""
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise RuleError(f"{where}: {text!r} is not a duration (a positive whole number + ms, s, m, h or d)")
    match = _DURATION.match(str(text).strip())
    if not match or len(match.group(1)) > 12 or int(match.group(1)) == 0:
        raise RuleError(f"{where}: {text!r} is not a duration (a positive whole number + ms, s, m, h or d)")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds > MAX_DURATION.total_seconds():
        raise RuleError(f"{where}: {text!r} is longer than {MAX_DURATION.days} days")
    return timedelta(seconds=seconds)


def format_duration(span: timedelta) -> str:
    """The shortest Timestream duration literal for this span (``300s`` -> ``5m``)."""
    millis = round(span.total_seconds() * 1000)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if millis % size == 0:
            return f"{millis // size}{unit}"
    return f"{millis}ms"


def _check_filter(text: str, where: str) -> str:
    position = 0
    for match in _FILTER_TOKEN.finditer(text):
        if match.start() != position:
            break
        token = match.group(0)
        position = match.end()
        is_word = token[0].isalpha() or token[0] == "_"
        if is_word and token.lower() not in _FILTER_WORDS and token not in FILTER_COLUMNS:
            raise RuleError(
                f"{where}: filter uses {token!r}, which is not a column ({', '.join(sorted(FILTER_COLUMNS))})"
            )
    if position != len(text):
        raise RuleError(
            f"{where}: filter {text!r} has something other than columns, numbers, 'strings' and "
            f"comparisons at character {position}"
        )
    return text


@dataclass(frozen=True)
class Rule:
    id: str
    rationale: str
    entity: str
    window: timedelta
    aggregate: str
    threshold: float
    severity: str
    cooldown: timedelta
    lateness: timedelta
    hop: timedelta
    description: str
    op: str = ">="
    filter: str | None = None
    enabled: bool = True
    params: dict[str, Any] = field(default_factory=dict)
    #: investigate a hit once more when its window has closed (see rules.yaml)
    recheck_on_close: bool = False
    #: investigate a hit only once its window has closed (see rules.yaml)
    wait_for_close: bool = False
    #: look again this long after the window closed, at what the accounts did since; a
    #: verdict that rested on their showing no life of their own may be lowered (rules.yaml)
    relook_after: timedelta | None = None
    #: conditions every counted transaction must meet together (see rules.yaml): each is
    #: ``{"new": [columns]}`` (first use of any of them) or ``{"over_habit": k}``
    signals: tuple[dict[str, Any], ...] = ()
    #: query the rule only this often, each query reproducing the skipped runs (see rules.yaml)
    every: timedelta | None = None

    @property
    def entity_column(self) -> str:
        return ENTITY_COLUMNS[self.entity]

    @property
    def distinct_column(self) -> str | None:
        match = re.match(r"^count\(distinct ([a-z_]+)\)$", self.aggregate)
        return match.group(1) if match else None

    @property
    def filter_columns(self) -> tuple[str, ...]:
        """The columns the rule's filter reads, in order of first use (known once it is parsed)."""
        names = _FILTER_TOKEN.findall(self.filter or "")
        return tuple(dict.fromkeys(name for name in names if name in FILTER_COLUMNS))

    def runs_per_query(self, schedule_interval: timedelta | None) -> int:
        """How many scheduled runs one query of the rule answers (``every`` / the schedule).

        1 without ``every``, or when the schedule is not known (a direct call: every run
        queries). Refused when ``every`` is not a whole multiple of the schedule.
        """
        if self.every is None or schedule_interval is None or self.every == schedule_interval:
            return 1
        runs = self.every / schedule_interval
        if runs != int(runs) or runs < 1:
            raise RuleError(
                f"rule {self.id}: every {format_duration(self.every)} is not a multiple of the schedule "
                f"interval {format_duration(schedule_interval)}: give a multiple of it (every: "
                f"{format_duration(schedule_interval)} queries at every run)"
            )
        return int(runs)

    def hits(self, observed: float) -> bool:
        return observed > self.threshold if self.op == ">" else observed >= self.threshold

    def describe(self, **values: Any) -> str:
        return " ".join(self.description.format(**values).split())

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "rationale": self.rationale,
            "entity": self.entity,
            "window": format_duration(self.window),
            "hop": format_duration(self.hop),
            "aggregate": self.aggregate,
            "op": self.op,
            "threshold": self.threshold,
            "severity": self.severity,
            "cooldown": format_duration(self.cooldown),
            "lateness": format_duration(self.lateness),
            "enabled": self.enabled,
            "description": self.description,
        }
        if self.filter:
            data["filter"] = self.filter
        if self.params:
            data["params"] = dict(self.params)
        if self.recheck_on_close:
            data["recheck_on_close"] = True
        if self.wait_for_close:
            data["wait_for_close"] = True
        if self.relook_after is not None:
            data["relook_after"] = format_duration(self.relook_after)
        if self.signals:
            data["signals"] = [dict(signal) for signal in self.signals]
        if self.every is not None:
            data["every"] = format_duration(self.every)
        return data


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RuleError(f"{where}: expected a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:
        raise RuleError(f"{where}: {value!r} is too large") from None
    if not math.isfinite(number):
        raise RuleError(f"{where}: expected a finite number, got {value!r}")
    return number


def _flag(value: Any, where: str) -> bool:
    # YAML reads `false` as a boolean; "false" in quotes is text, and bool("false") is True.
    if not isinstance(value, bool):
        raise RuleError(f"{where}: expected true or false (unquoted), got {value!r}")
    return value


def _rule_from_dict(doc: Any, default_lateness: timedelta, origin: str) -> Rule:
    if not isinstance(doc, dict):
        raise RuleError(f"{origin}: every rule must be a mapping, got {doc!r}")
    rule_id = str(doc.get("id", ""))
    where = f"{origin}: rule {rule_id or '?'}"
    if not _RULE_ID.match(rule_id):
        raise RuleError(f"{where}: id must be lower_snake_case, 1-32 characters")
    unknown = set(doc) - RULE_KEYS
    if unknown:
        raise RuleError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(RULE_KEYS)}")
    for required in ("rationale", "entity", "window", "aggregate", "threshold", "severity", "description"):
        if doc.get(required) in (None, ""):
            raise RuleError(f"{where}: {required} is required")
    entity = str(doc["entity"])
    if entity not in ENTITY_COLUMNS:
        raise RuleError(f"{where}: entity {entity!r} is not one of {', '.join(ENTITY_COLUMNS)}")
    aggregate = " ".join(str(doc["aggregate"]).split()).lower()
    match = _AGGREGATE.match(aggregate)
    if not match:
        raise RuleError(
            f"{where}: aggregate {doc['aggregate']!r} is not one of sum(amount), max(amount), count(*), "
            "count(distinct <dimension>), spike, pass_through"
        )
    if match.group(2) and match.group(2) not in DIMENSION_FIELDS:
        raise RuleError(
            f"{where}: count(distinct {match.group(2)}): not a dimension ({', '.join(DIMENSION_FIELDS)})"
        )
    window = parse_duration(doc["window"], f"{where}: window")
    hop = parse_duration(doc.get("hop") or doc["window"], f"{where}: hop")
    hops = window / hop
    if hops != int(hops) or hops > MAX_HOPS_PER_WINDOW:
        raise RuleError(
            f"{where}: window {doc['window']} must be 1 to {MAX_HOPS_PER_WINDOW} times hop {doc.get('hop')}"
        )
    severity = str(doc["severity"])
    if severity not in SEVERITIES:
        raise RuleError(f"{where}: severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    op = str(doc.get("op", ">="))
    if op not in OPERATORS:
        raise RuleError(f"{where}: op {op!r} is not one of {', '.join(OPERATORS)}")
    signals = _signals(doc.get("signals"), aggregate, where)
    if signals:
        params = _signal_params(doc.get("params"), where)
    else:
        params = _params(aggregate, doc.get("params"), hop == window, where)
    if aggregate == "pass_through" and entity != "account":
        raise RuleError(f"{where}: aggregate pass_through is about accounts: entity must be account")
    rule = Rule(
        id=rule_id,
        rationale=" ".join(str(doc["rationale"]).split()),
        entity=entity,
        window=window,
        hop=hop,
        aggregate=aggregate,
        op=op,
        threshold=_threshold(doc["threshold"], f"{where}: threshold"),
        severity=severity,
        cooldown=parse_duration(doc.get("cooldown") or doc["window"], f"{where}: cooldown"),
        lateness=(
            parse_duration(doc["lateness"], f"{where}: lateness") if doc.get("lateness") else default_lateness
        ),
        description=" ".join(str(doc["description"]).split()),
        filter=_check_filter(str(doc["filter"]), where) if doc.get("filter") else None,
        enabled=_flag(doc.get("enabled", True), f"{where}: enabled"),
        params=params,
        recheck_on_close=_flag(doc.get("recheck_on_close", False), f"{where}: recheck_on_close"),
        wait_for_close=_flag(doc.get("wait_for_close", False), f"{where}: wait_for_close"),
        relook_after=(
            parse_duration(doc["relook_after"], f"{where}: relook_after") if doc.get("relook_after") else None
        ),
        signals=signals,
        every=parse_duration(doc["every"], f"{where}: every") if doc.get("every") is not None else None,
    )
    _check_every(rule, where)
    if rule.relook_after is not None and not (rule.wait_for_close or rule.recheck_on_close):
        raise RuleError(
            f"{where}: relook_after needs wait_for_close or recheck_on_close: the re-look takes "
            "up a hit judged on its whole window, once"
        )
    if rule.wait_for_close and rule.recheck_on_close:
        raise RuleError(
            f"{where}: wait_for_close and recheck_on_close exclude each other: a rule that waits "
            "for its window to close has nothing to look at again"
        )
    _check_description(rule, where)
    return rule


def _check_every(rule: Rule, where: str) -> None:
    """``every`` is for rules whose query reads a long history (a spike baseline, signals):
    one query then answers several runs at the cost of one read (rule_sql.cadence_lanes)."""
    if rule.every is None:
        return
    if rule.wait_for_close or rule.recheck_on_close:
        raise RuleError(
            f"{where}: every {format_duration(rule.every)} excludes wait_for_close and recheck_on_close: "
            "a rule that waits for its windows to close already queries only when one closes, and a "
            "recheck is started by the run that sees the window close"
        )
    if rule.aggregate != "spike" and not rule.signals:
        raise RuleError(
            f"{where}: every {format_duration(rule.every)} is for rules that read a history (aggregate "
            "spike, or signals): another rule's query reads only its windows, and querying it less "
            "often saves nothing"
        )


def _threshold(value: Any, where: str) -> float:
    threshold = _number(value, where)
    if threshold < 0:
        raise RuleError(f"{where}: must be 0 or more, got {value!r}")
    return threshold


def _params(aggregate: str, given: Any, tumbling: bool, where: str) -> dict[str, Any]:
    """The aggregate's parameters: the defaults with the given ones applied, checked."""
    defaults = AGGREGATE_PARAMS.get(aggregate)
    if defaults is None:
        if given:
            raise RuleError(f"{where}: params are only for aggregates {', '.join(AGGREGATE_PARAMS)}")
        return {}
    given = dict(given or {})
    unknown = set(given) - set(defaults)
    if unknown:
        raise RuleError(f"{where}: unknown params {sorted(unknown)}; allowed: {sorted(defaults)}")
    params = {**defaults, **given}
    if aggregate == "spike":
        if not tumbling:
            raise RuleError(f"{where}: aggregate spike evaluates tumbling windows: leave hop out")
        parse_duration(params["history"], f"{where}: params.history")
        for name in ("baseline_transactions", "min_history"):
            if not isinstance(params[name], int) or params[name] < 1:
                raise RuleError(f"{where}: params.{name} must be a whole number >= 1")
        params["min_amount"] = _number(params["min_amount"], f"{where}: params.min_amount")
    else:
        params["min_received"] = _number(params["min_received"], f"{where}: params.min_received")
        if params["min_received"] <= 0:
            raise RuleError(f"{where}: params.min_received must be more than 0")
    return params


def _signals(given: Any, aggregate: str, where: str) -> tuple[dict[str, Any], ...]:
    """The rule's signals, checked: a list of ``{new: [columns]}`` and ``{over_habit: k}``."""
    if given in (None, []):
        return ()
    if aggregate not in ("sum(amount)", "max(amount)", "count(*)"):
        raise RuleError(
            f"{where}: signals combine with sum(amount), max(amount) or count(*), not {aggregate}"
        )
    if not isinstance(given, list):
        raise RuleError(f"{where}: signals must be a list like [{{new: [device_id]}}, {{over_habit: 5}}]")
    signals = []
    for index, signal in enumerate(given):
        at = f"{where}: signals[{index}]"
        if not isinstance(signal, dict) or len(signal) != 1:
            raise RuleError(f"{at}: expected one of {{new: [columns]}} or {{over_habit: N}}, got {signal!r}")
        ((kind, value),) = signal.items()
        if kind == "new":
            columns = [value] if isinstance(value, str) else value
            if not isinstance(columns, list) or not columns:
                raise RuleError(f"{at}: new takes a column or a list of columns")
            bad = [c for c in columns if c not in NOVELTY_COLUMNS]
            if bad:
                raise RuleError(f"{at}: new {bad}: not one of {', '.join(NOVELTY_COLUMNS)}")
            signals.append({"new": list(dict.fromkeys(columns))})
        elif kind == "over_habit":
            factor = _number(value, f"{at}: over_habit")
            if factor <= 0:
                raise RuleError(f"{at}: over_habit must be more than 0")
            signals.append({"over_habit": factor})
        else:
            raise RuleError(f"{at}: unknown signal {kind!r}; known: new, over_habit")
    return tuple(signals)


def _signal_params(given: Any, where: str) -> dict[str, Any]:
    given = dict(given or {})
    unknown = set(given) - set(SIGNAL_PARAMS)
    if unknown:
        raise RuleError(
            f"{where}: unknown params {sorted(unknown)}; allowed with signals: {sorted(SIGNAL_PARAMS)}"
        )
    params = {**SIGNAL_PARAMS, **given}
    for name in ("history", "new_within", "established"):
        parse_duration(params[name], f"{where}: params.{name}")
    for name in ("habit_transactions", "min_history"):
        if isinstance(params[name], bool) or not isinstance(params[name], int) or params[name] < 1:
            raise RuleError(f"{where}: params.{name} must be a whole number >= 1")
    params["min_amount"] = _number(params["min_amount"], f"{where}: params.min_amount")
    return params


def _check_description(rule: Rule, where: str) -> None:
    try:
        rule.describe(
            entity_type=rule.entity,
            entity_id="x",
            observed=1.0,
            threshold=rule.threshold,
            window=format_duration(rule.window),
            window_start="2026-01-01T00:00:00Z",
            window_end="2026-01-01T00:05:00Z",
        )
    except (KeyError, ValueError, IndexError) as error:
        raise RuleError(f"{where}: description cannot be formatted: {error!r}") from None


def rules_from_document(doc: Any, origin: str = "rules") -> list[Rule]:
    """Rules from a parsed rules document (``{lateness: 10m, rules: [...]}``)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        raise RuleError(f"{origin}: expected a mapping with a 'rules' list")
    lateness = parse_duration(doc.get("lateness", "10m"), f"{origin}: lateness")
    rules = [_rule_from_dict(item, lateness, origin) for item in doc["rules"]]
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise RuleError(f"{origin}: rule id {rule.id!r} appears twice")
        seen.add(rule.id)
    return rules


#: parsed rules documents by (path, modification time, size): every scheduled run loads the
#: rules, and parsing the YAML took a third of a run; an edited file is read again
_parsed_documents: dict[tuple[str, int, int], Any] = {}


def _read_document(path: Path) -> Any:
    try:
        status = path.stat()
        key = (str(path.resolve()), status.st_mtime_ns, status.st_size)
        if key not in _parsed_documents:
            if len(_parsed_documents) >= 8:  # a few rules files are all a process reads
                _parsed_documents.pop(next(iter(_parsed_documents)))
            _parsed_documents[key] = yaml.load(path.read_text(), Loader=_SAFE_LOADER)
        # The caller builds rules from the document: hand it a copy, never the cached one.
        return copy.deepcopy(_parsed_documents[key])
    except OSError as error:
        raise RuleError(f"{path}: cannot read: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise RuleError(f"{path}: not valid YAML/JSON: {error}") from None


def apply_overrides(
    rules: list[Rule], overrides: Any, origin: str = "override", max_lookback: timedelta | None = None
) -> list[Rule]:
    """The rules with ``{rule_id: {threshold, enabled, window, ...}}`` applied.

    ``max_lookback`` (the store's retention) bounds how far back a changed rule may look:
    its window plus lateness, and a spike rule's history.
    """
    if overrides in (None, {}):
        return list(rules)
    if not isinstance(overrides, dict):
        raise RuleError(f"{origin}: expected a mapping of rule id -> changes, got {type(overrides).__name__}")
    by_id = {rule.id: rule for rule in rules}
    unknown = set(overrides) - set(by_id)
    if unknown:
        raise RuleError(f"{origin}: unknown rule ids {sorted(unknown)}; known: {', '.join(by_id)}")
    changed = dict(by_id)
    for rule_id, changes in overrides.items():
        if not isinstance(changes, dict):
            raise RuleError(
                f"{origin}: {rule_id}: expected a mapping like {{threshold: 10}}, got {changes!r}"
            )
        bad = set(changes) - set(OVERRIDABLE)
        if bad:
            raise RuleError(
                f"{origin}: {rule_id}: cannot override {sorted(bad)}; allowed: {', '.join(OVERRIDABLE)}"
            )
        doc = _rule_document(by_id[rule_id])
        if "window" in changes and "hop" not in changes:
            doc["hop"] = changes["window"]  # a new window keeps tumbling unless a hop is given
        doc.update(changes)
        try:
            rule = _rule_from_dict(doc, by_id[rule_id].lateness, origin)
        except RuleError:
            raise
        except Exception as error:  # whatever else a hostile value trips over
            raise RuleError(f"{origin}: {rule_id}: {type(error).__name__}: {error}") from None
        if max_lookback is not None:
            _check_lookback(rule, max_lookback, f"{origin}: {rule_id}")
        changed[rule_id] = rule
    return [changed[rule.id] for rule in rules]


def _check_lookback(rule: Rule, max_lookback: timedelta, where: str) -> None:
    lookback = rule.window + rule.lateness
    if lookback > max_lookback:
        raise RuleError(
            f"{where}: window {format_duration(rule.window)} + lateness {format_duration(rule.lateness)} "
            f"looks back further than the store keeps recent data ({format_duration(max_lookback)})"
        )
    history = rule.params.get("history")
    if history and parse_duration(history, f"{where}: params.history") > max_lookback:
        raise RuleError(
            f"{where}: params.history {history} is longer than the store keeps recent data "
            f"({format_duration(max_lookback)})"
        )


#: rule id -> the rule as the last override that applied cleanly left it (per environment)
_last_good: dict[str, Rule] = {}


def load_rules_keeping_last_good(
    override: str, max_lookback: timedelta | None = None
) -> tuple[list[Rule], dict[str, str]]:
    """The rules for a scheduled run, and the overrides refused (by rule id, ``*`` for the whole).

    Unlike :func:`load_rules`, a bad override does not stop the run: it is refused with its
    reason, and its rule keeps its last good definition (the last override of it that
    applied in this execution environment, else the shipped rule). The other rules take
    their overrides.
    """
    shipped = rules_from_document(_read_document(SHIPPED_RULES), str(SHIPPED_RULES))
    if not override.strip():
        return shipped, {}
    origin = _origin(override)
    try:
        overrides = load_override(override)
        if not isinstance(overrides, dict):
            raise RuleError(
                f"{origin}: expected a mapping of rule id -> changes, got {type(overrides).__name__}"
            )
    except RuleError as error:
        return [_last_good.get(rule.id, rule) for rule in shipped], {"*": str(error)}
    known = {rule.id for rule in shipped}
    errors = {
        str(rule_id): f"{origin}: unknown rule id {rule_id!r}; known: {', '.join(sorted(known))}"
        for rule_id in overrides
        if rule_id not in known
    }
    rules = []
    for rule in shipped:
        if rule.id not in overrides:
            _last_good[rule.id] = rule
            rules.append(rule)
            continue
        try:
            changed = apply_overrides([rule], {rule.id: overrides[rule.id]}, origin, max_lookback)[0]
        except RuleError as error:
            errors[rule.id] = str(error)
            rules.append(_last_good.get(rule.id, rule))
            continue
        _last_good[rule.id] = changed
        rules.append(changed)
    return rules, errors


def _rule_document(rule: Rule) -> dict[str, Any]:
    return rule.to_dict()


def load_override(spec: str) -> Any:
    """The override document named by ``RULES_OVERRIDE``.

    An SSM parameter is read once per execution environment; a file is read every time,
    so a local user's edit applies to the next run.
    """
    spec = spec.strip()
    if not spec:
        return {}
    if spec.startswith("ssm:"):
        from .aws_adapters import ParameterReadError, read_ssm_parameter

        try:
            text, origin = read_ssm_parameter(spec[4:]), spec
        except ParameterReadError as error:
            raise RuleError(f"RULES_OVERRIDE={spec}: {error}") from None
    elif spec.startswith("{"):
        text, origin = spec, "RULES_OVERRIDE"
    else:
        path = Path(spec)
        if not path.is_file():
            raise RuleError(f"RULES_OVERRIDE={spec!r}: no such file (give a file, inline JSON or ssm:/name)")
        text, origin = path.read_text(), str(path)
    try:
        doc = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as error:
        raise RuleError(f"{origin}: not valid YAML/JSON: {error}") from None
    return doc or {}


def load_rules(path: str | Path | None = None, override: str = "") -> list[Rule]:
    """The shipped rules (or those of ``path``), with the ``RULES_OVERRIDE`` spec applied.

    ``path`` may also hold only overrides (``{rule_id: {threshold: N}}``): they are applied
    to the shipped rules, which is how a backtest tries new thresholds.
    """
    rules = rules_from_document(_read_document(SHIPPED_RULES), str(SHIPPED_RULES))
    if path is not None:
        doc = _read_document(Path(path))
        if isinstance(doc, dict) and "rules" in doc:
            rules = rules_from_document(doc, str(path))
        else:
            rules = apply_overrides(rules, doc, str(path))
    if override:
        rules = apply_overrides(rules, load_override(override), _origin(override))
    return rules


def _origin(spec: str) -> str:
    return spec if not spec.strip().startswith("{") else "RULES_OVERRIDE"


def enabled_rules(rules: list[Rule]) -> list[Rule]:
    return [rule for rule in rules if rule.enabled]


def rule_with(rule: Rule, **changes: Any) -> Rule:
    """A copy of a rule with some fields changed (tests and tuning)."""
    return replace(rule, **changes)
