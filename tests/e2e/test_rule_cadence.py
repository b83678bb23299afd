"""A rule queried less often than the schedule (``every``) flags what it flags at every run.

The shipped takeover rules (``amount_spike``, ``novel_takeover``, ``takeover_abroad``) are
queried every 15 minutes at the demo's 5-minute schedule, each query answering for the runs
since the last. On one scenario, with only those rules enabled:

- per span (the default, on DuckDB) and per tick (MicroAnalysisFunction at every tick,
  sending the lanes query; on DataFusion, in InfluxDB 3 SQL) give the same flags, cases and
  figures;
- the same rules queried at every run (``every: 5m``) flag the same (rule, entity, window,
  observed), each raised at the first run from its own that queries.
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from pipeline_outputs import found, read

from fraudcore.pii import KEY_FILE
from fraudcore.rules import load_rules
from fraudcore.timeseries.rule_sql import floor_to
from fraudcore.timeutil import parse_utc
from fraudlocal.cli import main

pytestmark = pytest.mark.slow

ACCOUNTS = 500
DAYS = 1
SEED = 23
SCHEDULE = "5m"
CADENCED = ("amount_spike", "novel_takeover", "takeover_abroad")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cadence")
    only = {rule.id: {"enabled": False} for rule in load_rules() if rule.id not in CADENCED}
    cadenced = root / "cadenced.json"
    cadenced.write_text(json.dumps(only))
    every_run = root / "every-run.json"
    every_run.write_text(json.dumps({**only, **{rule_id: {"every": SCHEDULE} for rule_id in CADENCED}}))
    common = ["--every", SCHEDULE, "--quiet"]
    out = {name: root / name for name in ("span", "tick", "every_run")}
    scenario_args = ["--accounts", str(ACCOUNTS), "--days", str(DAYS), "--seed", str(SEED)]
    state = root / "state"
    demo = ["--state-dir", str(state), "demo", *scenario_args, "--rules-override", str(cadenced)]
    assert main([*demo, *common, "--out", str(out["span"])]) == 0
    # The same name key, so PII entities get the same pseudonymous execution names.
    (state / "replay").mkdir(parents=True, exist_ok=True)
    shutil.copy(state / "demo" / KEY_FILE, state / "replay" / KEY_FILE)
    scenario = out["span"] / "scenario"
    replay = ["replay", str(scenario / "transactions.jsonl"), "--labels", str(scenario / "labels.jsonl")]
    # (another engine than DuckDB runs per tick)
    for name, engine, override in (("tick", "datafusion", cadenced), ("every_run", "duckdb", every_run)):
        command = [
            "--state-dir",
            str(state),
            "--timeseries",
            engine,
            *replay,
            "--rules-override",
            str(override),
        ]
        mode = ["--per-tick"] if name == "tick" else []
        assert main([*command, *common, *mode, "--out", str(out[name])]) == 0
    return out


def test_per_span_and_per_tick_agree(runs: dict[str, Path]) -> None:
    span, tick = read(runs["span"], "flags.json"), read(runs["tick"], "flags.json")
    # the scenario's takeovers are flagged: the comparison is not vacuous
    assert len(span) >= 4 and {"amount_spike", "novel_takeover"} <= {flag["rule"] for flag in span}
    assert span == tick
    assert read(runs["span"], "cases.json") == read(runs["tick"], "cases.json")
    span, tick = read(runs["span"], "summary.json"), read(runs["tick"], "summary.json")
    assert found(span) == found(tick)


def test_the_same_flags_as_every_run_raised_at_the_next_query(runs: dict[str, Path]) -> None:
    every = timedelta(minutes=15)
    schedule = timedelta(minutes=5)
    cadenced = {flag["execution_name"]: flag for flag in read(runs["span"], "flags.json")}
    every_run = {flag["execution_name"]: flag for flag in read(runs["every_run"], "flags.json")}
    fields = ("rule", "entity_id", "window_start", "window_end", "observed")
    assert {name: [flag[k] for k in fields] for name, flag in cadenced.items()} == {
        name: [flag[k] for k in fields] for name, flag in every_run.items()
    }
    later = 0
    for name, flag in cadenced.items():
        raised = parse_utc(every_run[name]["evaluation_time"])
        assert parse_utc(flag["evaluation_time"]) == floor_to(raised - schedule, every) + every, name
        later += parse_utc(flag["evaluation_time"]) > raised
    assert later  # some flags were first raised by a run that does not query
