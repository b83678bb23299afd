"""JSON-lines rejected-record sink and event publisher under the state dir."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fraudcore.ports import EventPublisher, RejectedRecord, RejectedRecordSink
from fraudlocal.adapters.sinks import JsonlEventPublisher, JsonlRejectedRecordSink


def rejected(n: int, **extra: str) -> RejectedRecord:
    fields = {"data": '{"amount": 5}', **extra}
    return RejectedRecord(
        source="IngestTimeseriesFunction",
        reason="account_id: required field is missing",
        sequence_number=f"49590338271490256608559692538361571095921575989136588{n}",
        **fields,
    )


def test_rejected_records_are_appended_one_json_object_per_line(tmp_path: Path) -> None:
    sink = JsonlRejectedRecordSink(tmp_path / "state")
    assert isinstance(sink, RejectedRecordSink)
    assert sink.count() == 0

    sink.send([rejected(1), rejected(2)])
    sink.send([rejected(3, rejected_at="2026-11-29T12:00:00Z")])

    lines = (tmp_path / "state" / "rejected.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3 and sink.count() == 3
    first = json.loads(lines[0])
    assert first["reason"] == "account_id: required field is missing"
    assert first["data"] == '{"amount": 5}'
    assert first["source"] == "IngestTimeseriesFunction"
    assert "partition_key" not in first  # absent fields are left out
    assert datetime.fromisoformat(first["rejected_at"].replace("Z", "+00:00")).tzinfo is not None
    assert json.loads(lines[2])["rejected_at"] == "2026-11-29T12:00:00Z"


def test_rejected_sink_keeps_earlier_lines_across_instances(tmp_path: Path) -> None:
    JsonlRejectedRecordSink(tmp_path).send([rejected(1)])
    again = JsonlRejectedRecordSink(tmp_path)
    again.send([rejected(2)])
    assert again.count() == 2
    assert [r["sequence_number"][-1] for r in again.read()] == ["1", "2"]


def test_rejected_sink_writes_each_send_immediately(tmp_path: Path) -> None:
    sink = JsonlRejectedRecordSink(tmp_path)
    sink.send([rejected(1, data="line one\nline two")])
    # Another reader sees it at once; a newline inside the data stays inside one JSON line.
    text = (tmp_path / "rejected.jsonl").read_text(encoding="utf-8")
    assert text.count("\n") == 1
    assert json.loads(text)["data"] == "line one\nline two"


def test_events_are_appended_with_time_source_type_and_detail(tmp_path: Path) -> None:
    publisher = JsonlEventPublisher(tmp_path)
    assert isinstance(publisher, EventPublisher)
    publisher.publish(
        "Fraud Case Opened", {"case_id": "case:1", "opened_at": datetime(2026, 11, 29, tzinfo=UTC)}
    )
    publisher.publish("Fraud Case Updated", {"case_id": "case:1", "score": 0.7})

    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [set(e) for e in events] == [{"time", "source", "detail_type", "detail"}] * 2
    assert events[0]["source"] == "fraud-detection"
    assert events[0]["detail_type"] == "Fraud Case Opened"
    assert events[0]["detail"] == {"case_id": "case:1", "opened_at": "2026-11-29 00:00:00+00:00"}
    assert events[1]["detail"]["score"] == 0.7
    assert publisher.count() == 2 and publisher.read() == events


def test_event_needs_a_detail_type(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="detail type"):
        JsonlEventPublisher(tmp_path).publish("", {})
    assert not (tmp_path / "events.jsonl").exists()
