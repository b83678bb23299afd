"""Per-span evaluation of the rules gives what the per-tick scheduled runs give.

The default pipeline evaluates the rules once per span of input and replays each tick's
run from that evaluation; ``--per-tick`` invokes MicroAnalysisFunction at every tick. On
the same scenario the two must produce the same flags (names, windows, observed values,
evaluation times), the same cases (members, verdicts, scores, reasons) and the same
figures. The DataFusion engine (InfluxDB 3 SQL as it is, per tick: the per-span
evaluation needs the DuckDB store) replays the same scenario and must give the DuckDB run's
flags and figures too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pipeline_outputs import found, read

from fraudcore.pii import KEY_FILE
from fraudlocal.cli import main

pytestmark = pytest.mark.slow

ACCOUNTS = 500
DAYS = 1
SEED = 23
#: a quarter-hour schedule: a third of the per-tick runs of the default 5 minutes, the same comparison
EVERY = "15m"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("span")
    span = root / "span"
    args = [
        "--accounts",
        str(ACCOUNTS),
        "--days",
        str(DAYS),
        "--seed",
        str(SEED),
        "--every",
        EVERY,
        "--quiet",
    ]
    assert main(["--state-dir", str(root / "state"), "demo", *args, "--out", str(span)]) == 0
    tick = root / "tick"
    # The same name key, so PII entities get the same pseudonymous execution names.
    (root / "state" / "replay").mkdir(parents=True, exist_ok=True)
    shutil.copy(root / "state" / "demo" / KEY_FILE, root / "state" / "replay" / KEY_FILE)
    scenario = span / "scenario"
    replay = ["replay", str(scenario / "transactions.jsonl"), "--labels", str(scenario / "labels.jsonl")]
    assert (
        main(
            [
                "--state-dir",
                str(root / "state"),
                *replay,
                "--out",
                str(tick),
                "--every",
                EVERY,
                "--quiet",
                "--per-tick",
            ]
        )
        == 0
    )
    return {"span": span, "tick": tick}


@pytest.fixture(scope="module")
def datafusion_run(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The span run's scenario replayed on DataFusion (the same name key); (output, state dir)."""
    root = tmp_path_factory.mktemp("span-datafusion")
    state, out = root / "state", root / "datafusion-out"
    (state / "replay").mkdir(parents=True)
    shutil.copy(runs["span"].parent / "state" / "demo" / KEY_FILE, state / "replay" / KEY_FILE)
    scenario = runs["span"] / "scenario"
    replay = ["replay", str(scenario / "transactions.jsonl"), "--labels", str(scenario / "labels.jsonl")]
    argv = ["--timeseries", "datafusion", "--state-dir", str(state), *replay, "--out", str(out)]
    assert main([*argv, "--every", EVERY, "--quiet"]) == 0
    return out, state


def test_the_same_flags(runs: dict[str, Path]) -> None:
    span, tick = read(runs["span"], "flags.json"), read(runs["tick"], "flags.json")
    assert len(span) >= 10  # the scenario's fraud is flagged: the comparison is not vacuous
    assert span == tick


def test_the_same_cases(runs: dict[str, Path]) -> None:
    span, tick = read(runs["span"], "cases.json"), read(runs["tick"], "cases.json")
    assert any(case["verdict"] == "fraud_ring" for case in span)
    assert span == tick


def test_the_same_figures(runs: dict[str, Path]) -> None:
    span, tick = read(runs["span"], "summary.json"), read(runs["tick"], "summary.json")
    assert span["investigations"] > 0
    assert found(span) == found(tick)


def test_the_datafusion_engine_flags_what_duckdb_flags(runs: dict[str, Path], datafusion_run) -> None:
    out, state = datafusion_run
    assert (state / "replay" / "timeseries-datafusion").is_dir()
    assert not (state / "replay" / "timeseries.duckdb").exists()

    def flag_keys(folder: Path) -> list[tuple]:
        return sorted(
            (f["rule"], f["entity_type"], f["entity_id"], f["window_start"], f["observed"])
            for f in read(folder, "flags.json")
        )

    assert len(flag_keys(runs["span"])) > 0
    assert flag_keys(out) == flag_keys(runs["span"])
    duckdb_summary, datafusion_summary = read(runs["span"], "summary.json"), read(out, "summary.json")
    for figure in ("stored_rows", "flags", "precision", "recall", "detected_accounts", "recall_by_pattern"):
        assert datafusion_summary[figure] == duckdb_summary[figure], figure
