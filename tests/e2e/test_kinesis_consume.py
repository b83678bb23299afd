"""``fraudlocal kinesis-consume`` against a real Kinesis API: moto's server on 127.0.0.1.

Records in the AWS guidance sample producer's format are put with plain boto3 through
``AWS_ENDPOINT_URL_KINESIS``; the consumer reads every shard with the shipped
``aws-guidance-sample`` mapping and the records become stored rows and a case.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
FRAUDLOCAL = [sys.executable, "-m", "fraudlocal.cli"]
STREAM = "sample-transactions"
RING = ["1234-5678-31", "1234-5678-32", "1234-5678-33"]
SHARED_EMAIL = "shared@example-anycompany.com"
SHARED_PHONE = "10001000"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def kinesis_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in {
        "AWS_ENDPOINT_URL_KINESIS": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    try:
        yield endpoint
    finally:
        server.stop()


def sample_time(moment: datetime) -> str:
    """The producer's time format: "Nov 29, 2026, 12:00:00.123"."""
    return moment.strftime("%b %d, %Y, %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def sample_records() -> list[dict[str, str]]:
    start = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    records = []
    # Ordinary customers: their own email and phone, small amounts, spread over an hour.
    for n in range(20):
        for k in range(3):
            records.append(
                {
                    "object_type": "transaction",
                    "account": f"1234-5678-{n:02d}",
                    "accountemail": f"customer{n}@example.com",
                    "phone": f"2000{n:04d}",
                    "merchant": f"1234-5678-{1000 + k}",
                    "transaction_amount": str(20 + n + k),
                    "time": sample_time(start + timedelta(minutes=3 * n + 17 * k, seconds=n)),
                }
            )
    # A ring sharing one email and one phone, each member spending 60,000 within 4 minutes.
    burst = start + timedelta(minutes=30, seconds=20)
    for i, account in enumerate(RING):
        for k in range(3):
            records.append(
                {
                    "object_type": "transaction",
                    "account": account,
                    "accountemail": SHARED_EMAIL,
                    "phone": SHARED_PHONE,
                    "merchant": "1234-5678-1003",
                    "transaction_amount": "20000",
                    "time": sample_time(burst + timedelta(seconds=40 * k + 5 * i, milliseconds=123)),
                }
            )
    records.append({"object_type": "heartbeat", "account": "1234-5678-01", "time": sample_time(start)})
    return records


def put_records(records: list[dict[str, str]]) -> None:
    client = boto3.client("kinesis")  # the endpoint comes from AWS_ENDPOINT_URL_KINESIS
    client.create_stream(StreamName=STREAM, ShardCount=2)
    client.get_waiter("stream_exists").wait(StreamName=STREAM)
    for offset in range(0, len(records), 50):
        chunk = records[offset : offset + 50]
        response = client.put_records(
            StreamName=STREAM,
            Records=[{"Data": json.dumps(r).encode(), "PartitionKey": r["account"]} for r in chunk],
        )
        assert response["FailedRecordCount"] == 0


def test_kinesis_consume_turns_sample_records_into_rows_and_a_case(
    kinesis_endpoint: str, tmp_path: Path
) -> None:
    records = sample_records()
    put_records(records)
    out = tmp_path / "out"
    completed = subprocess.run(
        [
            *FRAUDLOCAL,
            "--state-dir",
            str(tmp_path / "state"),
            "kinesis-consume",
            "--stream",
            STREAM,
            "--mapping",
            "aws-guidance-sample",
            "--until-idle",
            "1.5",
            "--out",
            str(out),
            "--quiet",
        ],
        cwd=REPO,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    transactions = sum(1 for r in records if r["object_type"] == "transaction")
    assert summary["transactions"] == len(records)
    assert summary["stored_rows"] == transactions
    assert summary["rejected"] == 1  # the heartbeat: its object_type is not "transaction"
    rejected = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    assert any("object_type" in r["reason"] for r in rejected)
    assert summary["flags_by_rule"].get("high_value_burst", 0) >= len(RING)

    cases = json.loads((out / "cases.json").read_text())
    ring_cases = [c for c in cases if set(RING) <= set(c["members"])]
    assert len(ring_cases) == 1, cases
    case = ring_cases[0]
    assert case["verdict"] in ("fraud_ring", "suspicious")
    assert not any(m.startswith("1234-5678-0") or m.startswith("1234-5678-1") for m in case["members"])
    assert any(reason["signal"] == "ring" for reason in case["reasons"])
