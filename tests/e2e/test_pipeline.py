"""The local pipeline end to end on a small generated scenario.

One demo run (module fixture) is checked for its figures, then replayed from the
generator's own files with their labels: the replay must reproduce the demo's flags,
cases and account-level figures. (The same scenario on the DataFusion engine is compared in
``test_span_evaluation.py``, with the per-tick runs that engine needs.)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from pipeline_outputs import read

from fraudcore.contracts import DETECTING_VERDICTS
from fraudcore.micro import RECHECK_SUFFIX, RELOOK_SUFFIX, execution_name, growth_suffix, parse_time
from fraudcore.pii import KEY_FILE, hash_key
from fraudcore.rules import load_rules
from fraudcore.timeseries.rule_sql import floor_to
from fraudlocal.cli import main
from fraudlocal.scenario import load_labels

pytestmark = pytest.mark.slow

ACCOUNTS = 500
DAYS = 1
SEED = 11


def run_cli(*argv: str) -> None:
    assert main(list(argv)) == 0


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pipeline")
    out = root / "demo-out"
    run_cli(
        "--state-dir", str(root / "state"), "demo",
        "--accounts", str(ACCOUNTS), "--days", str(DAYS), "--seed", str(SEED),
        "--out", str(out), "--quiet",
    )  # fmt: skip
    return out


def test_summary_fields_are_present_and_consistent(demo: Path) -> None:
    summary = read(demo, "summary.json")
    for key in (
        "transactions", "stored_rows", "rejected", "flags_by_rule", "investigations", "cases_by_verdict",
        "elapsed_seconds", "precision", "recall", "recall_by_pattern", "false_positives_by_confounder",
        "confounders_in_fraud_ring_cases",
    ):  # fmt: skip
        assert key in summary, key
    scenario = read(demo / "scenario", "scenario.json")["summary"]
    assert summary["transactions"] == scenario["transactions"]
    assert summary["stored_rows"] == summary["transactions"] - summary["rejected"]
    assert summary["flags"] == sum(summary["flags_by_rule"].values()) == len(read(demo, "flags.json"))
    cases = read(demo, "cases.json")
    assert summary["cases"] == len(cases) == len({c["case_id"] for c in cases})
    assert sum(summary["cases_by_verdict"].values()) == len(cases)
    assert summary["investigations"] >= len(cases) > 0
    assert set(summary["elapsed_seconds"]) >= {
        "ingest_timeseries",
        "ingest_graph",
        "micro_analysis",
        "investigations",
    }
    assert set(summary["recall_by_pattern"]) == {
        "fraud_ring", "card_testing", "account_takeover", "mule_chain", "device_farm",
    }  # fmt: skip
    for case in cases:
        assert set(case) >= {"case_id", "verdict", "score", "members", "reasons"}
        assert case["members"] == sorted(set(case["members"]))
    # The figures agree with the cases and the labels they are computed from.
    labels = load_labels(demo / "scenario" / "labels.jsonl")
    detected = {m for c in cases if c["verdict"] in DETECTING_VERDICTS for m in c["members"]}
    fraud = {a for a, label in labels.items() if label.is_fraud}
    assert summary["detected_accounts"] == len(detected)
    assert summary["recall"] == round(len(detected & fraud) / len(fraud), 4)


def test_the_planted_rings_are_detected(demo: Path) -> None:
    labels = load_labels(demo / "scenario" / "labels.jsonl")
    cases = read(demo, "cases.json")
    rings: dict[str, set[str]] = {}
    for account, label in labels.items():
        if label.pattern == "fraud_ring":
            rings.setdefault(str(label.ring_id), set()).add(account)
    assert rings
    ring_cases = [set(c["members"]) for c in cases if c["verdict"] == "fraud_ring"]
    for ring_id, members in rings.items():
        assert any(members <= found for found in ring_cases), (
            f"{ring_id} {sorted(members)} not in a fraud_ring case"
        )
    summary = read(demo, "summary.json")
    assert summary["recall_by_pattern"]["fraud_ring"] == 1.0
    assert summary["confounders_in_fraud_ring_cases"] == []


def test_every_investigation_left_its_history(demo: Path) -> None:
    summary = read(demo, "summary.json")
    done = sorted((demo.parent / "state" / "demo" / "investigations" / "done").glob("*.json"))
    assert len(done) == summary["investigations"]
    names = {json.loads(path.read_text())["name"] for path in done}
    # a flag's investigation, or the recheck of its window once closed (rules with
    # recheck_on_close); a long entity id is shortened to fit the suffix, so the recheck's
    # name is derived the way the micro-analysis derives it
    rules = {rule.id: rule for rule in load_rules()}
    # names of email, phone, card and IP flags carry a hash keyed by the demo's own key
    key = hash_key("", demo.parent / "state" / "demo")
    flags = read(demo, "flags.json")
    started = {flag["execution_name"] for flag in flags}
    rechecks = {
        execution_name(
            flag["rule"],
            flag["entity_type"],
            flag["entity_id"],
            floor_to(parse_time(flag["window_start"]), rules[flag["rule"]].cooldown),
            growth_suffix(rules[flag["rule"]], flag["observed"]) + RECHECK_SUFFIX,
            name_key=key,
        )
        for flag in flags
    }
    # ... or its re-look, 12 hours on (rules with relook_after): every such hit has one
    relooks = {
        execution_name(
            flag["rule"],
            flag["entity_type"],
            flag["entity_id"],
            floor_to(parse_time(flag["window_start"]), rules[flag["rule"]].cooldown),
            RELOOK_SUFFIX,
            name_key=key,
        )
        for flag in flags
        if rules[flag["rule"]].relook_after is not None
    }
    assert relooks and relooks <= names
    assert started <= names <= started | rechecks | relooks


def test_replay_of_the_generated_files_reproduces_the_demo(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "replay-out"
    # the same name-hash key, so flags of emails, phones, cards and IPs get the same names
    (tmp_path / "state" / "replay").mkdir(parents=True)
    shutil.copy(demo.parent / "state" / "demo" / KEY_FILE, tmp_path / "state" / "replay" / KEY_FILE)
    run_cli(
        "--state-dir", str(tmp_path / "state"), "replay", str(demo / "scenario" / "transactions.jsonl"),
        "--labels", str(demo / "scenario" / "labels.jsonl"), "--out", str(out), "--quiet",
    )  # fmt: skip
    assert read(out, "flags.json") == read(demo, "flags.json")

    def case_view(out_dir: Path) -> list[tuple]:
        return [
            (c["case_id"], c["verdict"], c["score"], tuple(c["members"])) for c in read(out_dir, "cases.json")
        ]

    assert case_view(out) == case_view(demo)
    ignored = {"elapsed_seconds", "transactions_per_second", "source"}
    replayed = {k: v for k, v in read(out, "summary.json").items() if k not in ignored}
    original = {k: v for k, v in read(demo, "summary.json").items() if k not in ignored}
    assert replayed == original


def test_replay_rejects_bad_lines_and_names_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data = tmp_path / "tx.jsonl"
    data.write_text(
        '{"transaction_id":"t1","timestamp":"2026-11-01T00:00:01Z","account_id":"a1","amount":12.5}\n'
        "not json\n"
        '{"transaction_id":"t2","timestamp":"2026-11-01T00:00:02Z","account_id":"a2","amount":-3}\n'
        '{"transaction_id":"t3","timestamp":"2026-11-01T00:00:03Z","account_id":"a1","amount":7}\n'
    )
    out = tmp_path / "out"
    run_cli("--state-dir", str(tmp_path / "state"), "replay", str(data), "--out", str(out), "--quiet")
    summary = read(out, "summary.json")
    assert (summary["transactions"], summary["stored_rows"], summary["rejected"]) == (4, 2, 2)
    reasons = [json.loads(line)["reason"] for line in (out / "rejected.jsonl").read_text().splitlines()]
    assert any("JSON" in reason for reason in reasons) and any("amount" in reason for reason in reasons)

    assert main(["--state-dir", str(tmp_path / "state"), "replay", str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl: no such file" in capsys.readouterr().err
