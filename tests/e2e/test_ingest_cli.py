"""`fraudlocal invoke` of both ingest functions on the sample events, then `fraudlocal stats`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fraudlocal.cli import main

EVENTS = Path(__file__).resolve().parents[2] / "events" / "ingest"


def run_cli(capsys, *args: str) -> dict:
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out)


def stats(capsys, state: Path, *extra: str) -> dict:
    return run_cli(capsys, "--state-dir", str(state), "stats", *extra)


def invoke(capsys, state: Path, function: str, event: str, *extra: str) -> dict:
    return run_cli(
        capsys, "--state-dir", str(state), "invoke", function, "--event", str(EVENTS / event), *extra
    )


def test_mixed_batch_stores_the_valid_and_rejects_the_invalid_with_reasons(tmp_path, capsys):
    state = tmp_path / "state"
    response = invoke(capsys, state, "IngestTimeseriesFunction", "mixed-batch.json")
    assert response == {"batchItemFailures": []}
    after_first = stats(capsys, state)
    assert after_first["timeseries_rows"] == 3
    assert after_first["rejected_records"] == 4

    rejected = [json.loads(line) for line in (state / "rejected.jsonl").read_text().splitlines()]
    reasons = sorted(r["reason"] for r in rejected)
    assert any(r.startswith("not valid JSON") for r in reasons)
    assert "account_id: required field is missing" in reasons
    assert any(r.startswith("amount: must be >= 0") for r in reasons)
    assert any(r.startswith("timestamp: '29/11/2026 12:23' is not ISO 8601") for r in reasons)
    assert all(
        r["data"] and r["sequence_number"] and r["source"] == "IngestTimeseriesFunction" for r in rejected
    )

    # the same event again (a Kinesis retry) changes no count
    assert invoke(capsys, state, "IngestTimeseriesFunction", "mixed-batch.json") == {"batchItemFailures": []}
    assert stats(capsys, state) == after_first


def test_graph_ingest_is_idempotent_on_the_embedded_engine(tmp_path, capsys):
    state = tmp_path / "state"
    assert invoke(capsys, state, "IngestGraphFunction", "valid-batch.json") == {"batchItemFailures": []}
    first = stats(capsys, state)
    assert first["graph_vertices"]["account"] == 4
    assert first["graph_edges"]["transfers_to"] == 1
    assert first["rejected_records"] == 0
    invoke(capsys, state, "IngestGraphFunction", "valid-batch.json")
    assert stats(capsys, state) == first


@pytest.mark.gremlin_server
def test_graph_ingest_on_the_gremlin_server(tmp_path, capsys, gremlin_server_settings_env):
    state = tmp_path / "state"
    options = ("--graph", "gremlin-server", "--graph-endpoint", gremlin_server_settings_env)
    invoke(capsys, state, "IngestGraphFunction", "aws-sample-producer-batch.json", *options)
    first = stats(capsys, state, *options)
    assert first["graph_vertices"] == {"account": 3, "email": 4, "merchant": 4, "phone": 2}
    invoke(capsys, state, "IngestGraphFunction", "aws-sample-producer-batch.json", *options)
    assert stats(capsys, state, *options) == first


def test_aws_sample_producer_records_are_mapped(tmp_path, capsys):
    state = tmp_path / "state"
    invoke(capsys, state, "IngestTimeseriesFunction", "aws-sample-producer-batch.json")
    assert stats(capsys, state)["timeseries_rows"] == 6


def test_unknown_function_is_a_clear_error(tmp_path, capsys):
    assert (
        main(
            [
                "--state-dir",
                str(tmp_path),
                "invoke",
                "NoSuchFunction",
                "--event",
                str(EVENTS / "valid-batch.json"),
            ]
        )
        == 2
    )
    assert "NoSuchFunction" in capsys.readouterr().err
