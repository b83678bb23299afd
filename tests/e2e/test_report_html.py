"""``report.html`` opened in headless Chromium: every case's graph is drawn.

The page's script counts, per case, the vertices and edges the browser laid out (a
non-empty bounding box) and writes the counts into the DOM; the test reads them back
with ``--dump-dom`` and compares them with the graph the page was given. A screenshot
of the page must not be blank.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from browser import CHROMIUM_FLAGS, chromium
from two_rings import two_rings_day

from fraudlocal.cli import main

pytestmark = pytest.mark.slow


def transactions() -> list[dict]:
    return sorted(two_rings_day(), key=lambda r: r["timestamp"])


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    data = root / "tx.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in transactions()))
    out = root / "out"
    assert main(["--state-dir", str(root / "state"), "replay", str(data), "--out", str(out), "--quiet"]) == 0
    return out


def test_every_case_graph_is_rendered(report: Path, tmp_path: Path) -> None:
    cases = json.loads((report / "cases.json").read_text())
    assert len(cases) >= 2
    page = (report / "report.html").read_text()
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")  # self-contained
    assert "https://" not in page
    expected = dict(re.findall(r'data-case-id="([^"]+)".*?data-expected-nodes="(\d+)"', page, re.S))
    assert set(expected) == {c["case_id"] for c in cases}

    profile = tmp_path / "profile"
    dom = subprocess.run(
        [
            chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--dump-dom",
            (report / "report.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    rendered = dict(
        re.findall(
            r'<section class="case" id="[^"]*" data-case-id="([^"]+)" data-rendered-nodes="(\d+)"', dom
        )
    )
    assert set(rendered) == set(expected), dom[:2000]
    for case in cases:
        drawn = int(rendered[case["case_id"]])
        assert drawn == int(expected[case["case_id"]]), case["case_id"]
        assert drawn >= len(case["members"])  # every member is a vertex, plus the identifiers
    assert f'data-rendered-graphs="{len(cases)}"' in dom

    shot = tmp_path / "report.png"
    subprocess.run(
        [
            chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}",
            "--window-size=1200,1600", (report / "report.html").as_uri(),
        ],
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    image = shot.read_bytes()
    assert image.startswith(b"\x89PNG")
    assert len(image) > 20_000  # a blank page compresses to a few kilobytes
