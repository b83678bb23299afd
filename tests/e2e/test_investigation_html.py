"""The investigation page in headless Chromium: the ring graph is drawn by the page itself.

A real investigation (local executor, real handlers) writes the page; Chromium loads it
with no network, runs its inline script, and we read back what the script drew
(``data-rendered-nodes`` / ``data-rendered-edges``) from the DOM and take a screenshot.
"""

from __future__ import annotations

import re
import struct
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from browser import CHROMIUM_FLAGS, chromium

from fraudcore import backends
from fraudcore.model import Transaction
from fraudcore.settings import Settings
from fraudlocal.commands.investigate import run_investigation
from fraudlocal.emulators.runtime import LocalTarget
from fraudlocal.reporting.investigation_html import render_investigation_html, write_investigation_html

WINDOW_END = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
RING = ["a1", "a2", "a3", "a4"]
WINDOW = (1200, 900)


def run_chromium(page: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp / 'profile'}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            "--virtual-time-budget=3000",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=120,
    )


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def execution(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    state = tmp_path_factory.mktemp("html") / "state"
    txs = [
        Transaction(
            transaction_id=f"t-{a}",
            timestamp=WINDOW_END - timedelta(minutes=30 + i),
            account_id=a,
            amount=120.0,
            card_id="card-ring",
            device_id="dev-ring",
        )
        for i, a in enumerate(RING)
    ]
    txs += [
        Transaction(
            transaction_id=f"t-burst-{k}",
            timestamp=WINDOW_END - timedelta(minutes=k),
            account_id="a1",
            amount=20_000.0,
        )
        for k in range(3)
    ]
    settings = Settings(state_dir=state)
    try:
        backends.graph_store(settings).upsert_transactions(txs)
        backends.timeseries_store(settings).write(txs)
    finally:
        backends.reset()
    flag = {
        "rule": "high_value_burst",
        "entity_type": "account",
        "entity_id": "a1",
        "window_start": "2026-11-29T11:55:00Z",
        "window_end": "2026-11-29T12:00:00Z",
        "severity": "high",
        "description": "60,000.00 in 5 minutes",
    }
    result = run_investigation(LocalTarget(state), flag, "html-a1")
    assert result["status"] == "SUCCEEDED", result["cause"]
    return result


def test_page_is_self_contained(execution: dict[str, Any]) -> None:
    page = render_investigation_html(execution)
    assert "<script src" not in page and "<link" not in page
    # the only URL is the SVG namespace, which is never fetched
    assert set(re.findall(r"https?://[^\s\"')]+", page)) == {"http://www.w3.org/2000/svg"}
    assert "Score the evidence and record the case" in page  # the history
    assert execution["output"]["case_id"] in page


@pytest.mark.chromium
def test_chromium_draws_the_ring(execution: dict[str, Any], tmp_path: Path) -> None:
    page = tmp_path / "investigation.html"
    write_investigation_html(execution, page)
    dom = run_chromium(page, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body, dom.stdout[:500]
    # four accounts and the card and device that link them; each account uses both
    assert 'data-rendered-nodes="6"' in body.group(0)
    assert 'data-rendered-edges="8"' in body.group(0)
    assert len(re.findall(r'class="node node-account', dom.stdout)) == 4
    # a1 was flagged by its own burst before the case; a2..a4 were flagged by the case
    assert re.findall(r'class="node node-account flagged start" data-id="account:a1"', dom.stdout)
    assert len(re.findall(r'class="node node-account propagated"', dom.stdout)) == 3

    shot = tmp_path / "investigation.png"
    done = run_chromium(page, tmp_path, f"--screenshot={shot}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert png_size(shot) == WINDOW
    # the same page with nothing to draw compresses to a visibly smaller picture
    empty = dict(execution, output={**execution["output"], "members": []}, history=[])
    blank_page = tmp_path / "blank.html"
    blank_page.write_text(render_investigation_html(empty))
    blank_shot = tmp_path / "blank.png"
    assert run_chromium(blank_page, tmp_path, f"--screenshot={blank_shot}").returncode == 0
    assert shot.stat().st_size > blank_shot.stat().st_size * 1.1
