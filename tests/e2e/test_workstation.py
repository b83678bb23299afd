"""The analyst's workstation end to end: a replay, the case queue on the CLI, decisions,
labels for the backtest, and ``fraudlocal serve`` clicked through in headless Chromium.

The browser test saves its screenshots under ``out/test-artifacts/workstation/``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import CHROMIUM_FLAGS, chromium
from two_rings import two_rings_day

from fraudlocal.cli import main

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "out" / "test-artifacts" / "workstation"


def transactions() -> list[dict]:
    rows = two_rings_day(currency="EUR")
    rows.append(
        {
            "transaction_id": "tx-transfer",
            "timestamp": "2026-11-02T09:50:00Z",
            "account_id": "ring-a",
            "amount": 9_000,
            "currency": "EUR",
            "counterparty_account_id": "ring-b",
            "device_id": "dev-ring-0",
        }
    )
    return sorted(rows, key=lambda r: r["timestamp"])


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("workstation")
    data = root / "tx.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in transactions()))
    assert main(["--state-dir", str(root), "replay", str(data), "--out", str(root / "out"), "--quiet"]) == 0
    return root


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> object:
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_queue_after_a_replay_needs_no_further_flag(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = cli_json(capsys, "--state-dir", str(state), "cases", "list")
    assert isinstance(queue, list) and len(queue) >= 2
    assert [row["score"] for row in queue] == sorted((row["score"] for row in queue), reverse=True)
    for row in queue:
        assert row["member_count"] >= 1
        assert row["status"] == "open"
        assert set(row["amount_at_stake"]) == {"EUR"} and row["amount_at_stake"]["EUR"] > 0
    rings = cli_json(capsys, "--state-dir", str(state), "cases", "list", "--verdict", "fraud_ring")
    assert {row["verdict"] for row in rings} == {"fraud_ring"}
    stats = cli_json(capsys, "--state-dir", str(state), "stats")
    assert stats["timeseries_rows"] == len(transactions())


def test_no_account_in_two_open_cases_without_a_link(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    queue = cli_json(capsys, "--state-dir", str(state), "cases", "list", "--status", "open")
    cases = {
        row["case_id"]: cli_json(capsys, "--state-dir", str(state), "cases", "show", row["case_id"])
        for row in queue
    }
    holders: dict[str, set[str]] = {}
    for case in cases.values():
        assert case["members"]
        for member in case["members"]:
            holders.setdefault(member, set()).add(case["case_id"])
    for ids in holders.values():
        for case_id in ids:
            assert ids - {case_id} <= set(cases[case_id]["related_cases"])


def test_a_case_page_names_members_reasons_and_transactions(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ring = cli_json(capsys, "--state-dir", str(state), "cases", "list", "--verdict", "fraud_ring")[0]
    case = cli_json(capsys, "--state-dir", str(state), "cases", "show", ring["case_id"])
    assert case["reasons"] and all(reason["sentence"] for reason in case["reasons"])
    times = [tx["time"] for tx in case["transactions"]]
    assert times == sorted(times) and {tx["account_id"] for tx in case["transactions"]} == set(
        case["members"]
    )
    nodes = {node["id"] for node in case["graph"]["nodes"]}
    assert {f"account:{m}" for m in case["members"]} <= nodes
    capsys.readouterr()
    assert main(["--state-dir", str(state), "cases", "show", ring["case_id"]]) == 0
    text = capsys.readouterr().out
    assert f"Case {ring['case_id']}: fraud_ring" in text and "EUR" in text and "Decisions:" in text


def test_a_decision_from_the_cli_and_its_labels_in_the_backtest(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = cli_json(capsys, "--state-dir", str(state), "cases", "list", "--verdict", "fraud_ring")
    case_id = queue[-1]["case_id"]
    labelled = cli_json(
        capsys, "--state-dir", str(state), "cases", "label", case_id, "--as", "legit", "--note", "family",
        "--by", "ben",
    )  # fmt: skip
    assert labelled["status"] == "false_positive"
    assert labelled["decisions"][-1] | {"at": None} == {
        "action": "legit", "status": "false_positive", "previous_status": "open", "by": "ben",
        "note": "family", "at": None,
    }  # fmt: skip
    capsys.readouterr()
    assert main(["--state-dir", str(state), "cases", "close", case_id, "--by", "ben"]) == 0
    assert main(["--state-dir", str(state), "cases", "label", case_id, "--as", "fraud", "--by", "ben"]) == 2
    assert "the case is closed" in capsys.readouterr().err
    labels = tmp_path / "labels.jsonl"
    assert main(["--state-dir", str(state), "cases", "export-labels", "--out", str(labels)]) == 0
    rows = [json.loads(line) for line in labels.read_text().splitlines()]
    assert {row["label"] for row in rows} >= {"legit"}
    assert {row["account_id"] for row in rows if row["ring_id"] == case_id} == set(labelled["members"])
    data = tmp_path / "tx.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in transactions()))
    report = cli_json(capsys, "backtest", "--data", str(data), "--labels", str(labels))
    flagged_legit = {a for rule in report["rules"].values() for a in rule.get("legit_account_ids", [])}
    assert set(labelled["members"]) <= flagged_legit | set(report["labels"]["fraud_not_caught"]) | {
        a for rule in report["rules"].values() for a in rule.get("fraud_account_ids", [])
    }
    assert report["labels"]["fraud_accounts"] == sum(1 for row in rows if row["label"] == "fraud")


def test_an_unknown_case_is_one_line_with_a_hint(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--state-dir", str(state), "cases", "show", "ring-0000000000000000"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not exist" in err and "cases list" in err


# -- the web app in headless Chromium -----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server(state: Path) -> Iterator[str]:
    if not (REPO / "node_modules" / "cytoscape" / "dist" / "cytoscape.min.js").is_file():
        pytest.fail("node_modules is not installed: run `make node_modules/.installed`", pytrace=False)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "fraudlocal.cli", "--state-dir", str(state), "serve", "--port", str(port)],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(600):
            if process.poll() is not None:
                pytest.fail(f"serve exited: {process.stderr.read() if process.stderr else ''}")
            try:
                with urllib.request.urlopen(url + "api/cases", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.chromium
def test_serve_filter_open_and_label_a_case_in_chromium(
    server: str, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    flags = [flag for flag in CHROMIUM_FLAGS if flag != "--headless"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), headless=True, args=flags)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(server)
            page.wait_for_selector("#queue tbody tr")
            everything = page.locator("#queue tbody tr").count()
            page.select_option("#filter-verdict", "fraud_ring")
            page.select_option("#filter-status", "open")
            page.wait_for_function(
                "() => [...document.querySelectorAll('#queue tbody tr')]"
                ".every(r => r.matches('.verdict-fraud_ring.status-open'))"
            )
            rings = page.locator("#queue tbody tr").count()
            assert 0 < rings <= everything
            page.click("#queue th[data-key='member_count']")  # sort by members, most first
            page.screenshot(path=str(ARTIFACTS / "queue.png"), full_page=True)
            first = page.locator("#queue tbody tr a.case-link").first
            case_id = first.inner_text()
            first.click()
            page.wait_for_selector("#graph[data-nodes]")
            assert int(page.get_attribute("#graph", "data-nodes") or 0) >= 2
            assert page.locator("#timeline circle.tx").count() > 0
            assert page.locator("#legend li").count() >= 7
            assert page.inner_text("#case-status") == "open"
            # the case's re-looks, each with its outcome and the verdict it went from
            history = cli_json(capsys, "--state-dir", str(state), "cases", "show", case_id)["verdict_history"]
            relooks = page.inner_text("#relooks")
            if history:
                assert all(f"{h['outcome']}: {h['from']['verdict']} " in relooks for h in history), relooks
            else:
                assert relooks == "no re-look"
            page.fill("#decision-by", "ana")
            page.fill("#decision-note", "two accounts on one device moving the same money")
            page.screenshot(path=str(ARTIFACTS / "case.png"), full_page=True)
            page.click("#btn-confirm")
            page.wait_for_function(
                "() => document.querySelector('#case-status').textContent === 'confirmed_fraud'"
            )
            assert "ana: fraud (open → confirmed_fraud)" in page.inner_text("#decisions")
            page.screenshot(path=str(ARTIFACTS / "case-confirmed.png"), full_page=True)
        finally:
            browser.close()
    case = cli_json(capsys, "--state-dir", str(state), "cases", "show", case_id)
    assert case["status"] == "confirmed_fraud"
    assert (case["decisions"][-1]["by"], case["decisions"][-1]["note"]) == (
        "ana",
        "two accounts on one device moving the same money",
    )
    for shot in ("queue.png", "case.png", "case-confirmed.png"):
        image = (ARTIFACTS / shot).read_bytes()
        assert image.startswith(b"\x89PNG") and len(image) > 20_000


def test_investigate_defaults_to_the_data_time_and_explains_its_choices(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    latest = max(row["timestamp"] for row in transactions())
    capsys.readouterr()
    assert main(["--state-dir", str(state), "investigate", "account:ring-a", "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # the functions' logs stay off unless --verbose
    result = json.loads(captured.out)
    execution = result["execution"]
    assert execution["input"]["reference_time"] == latest.replace("Z", ".000Z")
    history = execution["history"]
    entered = [event["entered_at"] for event in history if not event["parent"]]
    assert entered == sorted(entered) and entered[0] < entered[-1]  # the simulated clock runs
    for event in history:
        assert event["exited_at"] >= event["entered_at"]
        assert "input" in event and "output" in event
    choices = [event for event in history if event["type"] == "Choice"]
    assert choices[0]["choice"] == {
        "rule": 0,
        "next": "Run every analysis",
        "values": {"$.investigation.trigger": "manual"},
    }
    assert choices[-1]["choice"]["values"] == {"$.verdict": result["verdict"]}
    assert main(["--state-dir", str(state), "investigate", "account:ring-a", "--at", latest]) == 0
    text = capsys.readouterr().out
    assert f"Verdict: {result['investigation_verdict']}, score {result['investigation_score']:.3f}" in text
    assert "rule 1 (investigation.trigger='manual') -> Run every analysis" in text
    assert main(["--state-dir", str(state), "investigate", "account:ring-a", "--at", "yesterday"]) == 2
    assert "--at 'yesterday'" in capsys.readouterr().err
