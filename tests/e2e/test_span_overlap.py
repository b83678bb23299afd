"""The stages of a span overlapped (the next span read into the time series and its rules
evaluated by the span worker, a second process, while this span's graph ingest, ticks and
investigations run) give what they give one after another.

Small spans make a small scenario many spans; one record is moved after the start of a later
span (late for the span before it), so one span boundary must keep the serial order. Records
that a function rejects are in the scenario too: the worker's time-series function and this
process's graph function each reject them, into the same sink.
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
    # rejected by both ingest functions: one in the first span, one in a later one
    for position, data in ((7, b'{"transaction_id": "bad-1", "amount": "a lot"}'), (4 * SPAN + 3, b"[1, 2")):
        neighbour = records[position]
        records.insert(position, StreamInput(data, neighbour.partition_key, neighbour.event_time))
    return records


def run(state: Path, records: list[StreamInput], overlap: bool) -> tuple[Pipeline, dict[str, object]]:
    pipeline = Pipeline(PipelineConfig(state_dir=state, every=EVERY, span_records=SPAN, overlap=overlap))
    result = pipeline.run(records)
    out = state / "out"
    summary = report.write_outputs(result, out, None, {"kind": "test"})
    outputs: dict[str, object] = {name: (out / name).read_text() for name in ("flags.json", "cases.json")}
    outputs["summary"] = found(summary)
    outputs["mappings"] = result.mappings
    # two processes append to the sink: the same rejections, each function's in its order
    rejected = [json.loads(line) for line in (state / "rejected.jsonl").read_text().splitlines()]
    outputs["rejected"] = {
        source: [(row["sequence_number"], row["reason"]) for row in rejected if row["source"] == source]
        for source in sorted({row["source"] for row in rejected})
    }
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


def test_the_same_rejections_and_mapping_figures(runs: dict[str, tuple[Pipeline, dict[str, object]]]) -> None:
    serial, overlapped = runs["serial"][1], runs["overlapped"][1]
    rejected = serial["rejected"]
    assert isinstance(rejected, dict) and len(rejected) == 2  # both functions rejected
    assert all(len(rows) == 2 for rows in rejected.values())
    assert overlapped["rejected"] == rejected
    # the time-series mapping ran in the worker: its figures came back with it
    assert overlapped["mappings"] == serial["mappings"]


def test_the_worker_is_stopped_and_its_cpu_counted(
    runs: dict[str, tuple[Pipeline, dict[str, object]]],
) -> None:
    serial, overlapped = runs["serial"][0], runs["overlapped"][0]
    assert serial.worker_cpu_seconds == 0.0
    assert overlapped.worker is None  # closed by run()
    assert overlapped.worker_cpu_seconds > 0.0
    statistics = overlapped.rule_query_statistics()
    assert statistics is not None and statistics["ticks"] == serial.rule_query_statistics()["ticks"]
