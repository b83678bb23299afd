"""The stages of a span overlapped (the next span's rules evaluated on a second thread while
this span's graph ingest, ticks and investigations run) give what they give one after another.

Small spans make a small scenario many spans; one record is moved after the start of a later
span (late for the span before it), so one span boundary must keep the serial order.
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from pipeline_outputs import found

from fraudcore.pii import KEY_FILE
from fraudlocal.pipeline.ordering import StreamInput, order_records, ordering_mapping
from fraudlocal.pipeline.run import Pipeline, PipelineConfig
from fraudlocal.reporting import report
from fraudlocal.scenario import generate

pytestmark = pytest.mark.slow

EVERY = timedelta(minutes=15)
SPAN = 500


def scenario() -> list[StreamInput]:
    lines = [
        (json.dumps(r, separators=(",", ":")).encode(), None)
        for r in generate(accounts=500, days=1, seed=23).iter_transactions()
    ]
    records = order_records(lines, ordering_mapping(None))
    # a record of the second span arrives at the start of the fourth: late for the third
    late = records.pop(SPAN + 10)
    records.insert(3 * SPAN, late)
    return records


def run(state: Path, records: list[StreamInput], overlap: bool) -> tuple[Pipeline, dict[str, object]]:
    pipeline = Pipeline(PipelineConfig(state_dir=state, every=EVERY, span_records=SPAN, overlap=overlap))
    result = pipeline.run(records)
    out = state / "out"
    summary = report.write_outputs(result, out, None, {"kind": "test"})
    outputs = {name: (out / name).read_text() for name in ("flags.json", "cases.json")}
    outputs["summary"] = found(summary)
    return pipeline, outputs


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Pipeline, dict[str, object]]]:
    root = tmp_path_factory.mktemp("overlap")
    records = scenario()
    serial = run(root / "serial", records, overlap=False)
    # the same name key, so PII entities get the same pseudonymous execution names
    (root / "overlapped").mkdir()
    shutil.copy(root / "serial" / KEY_FILE, root / "overlapped" / KEY_FILE)
    overlapped = run(root / "overlapped", records, overlap=True)
    return {"serial": serial, "overlapped": overlapped}


def test_spans_overlapped_but_the_late_one(runs: dict[str, tuple[Pipeline, dict[str, object]]]) -> None:
    serial, overlapped = runs["serial"][0], runs["overlapped"][0]
    assert (serial.overlapped_spans, serial.serial_spans) == (0, 0)
    assert overlapped.overlapped_spans >= 3
    assert overlapped.serial_spans == 1  # the span before the late record went through first


def test_the_same_flags_cases_and_figures(runs: dict[str, tuple[Pipeline, dict[str, object]]]) -> None:
    serial, overlapped = runs["serial"][1], runs["overlapped"][1]
    assert len(json.loads(serial["flags.json"])) >= 10  # not vacuous
    assert any(case["verdict"] == "fraud_ring" for case in json.loads(serial["cases.json"]))
    assert overlapped["flags.json"] == serial["flags.json"]
    assert overlapped["cases.json"] == serial["cases.json"]
    assert overlapped["summary"] == serial["summary"]
