"""scripts/put-sample-records and scripts/redrive against moto's Kinesis and SQS."""

from __future__ import annotations

import base64
import importlib.machinery
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import boto3
import pytest
from moto import mock_aws

from fraudcore.aws_adapters import SqsRejectedRecordSink
from fraudcore.ports import RejectedRecord

REPO = Path(__file__).resolve().parents[2]
STREAM = "transactions"


def load_script(name: str) -> ModuleType:
    loader = importlib.machinery.SourceFileLoader(name.replace("-", "_"), str(REPO / "scripts" / name))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module  # dataclasses look their module up while the class is built
    loader.exec_module(module)
    return module


put_sample_records = load_script("put-sample-records")
redrive = load_script("redrive")
redrive.RECEIVE_WAIT_SECONDS = 0  # moto answers at once; no long polling needed


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        kinesis = boto3.client("kinesis")
        kinesis.create_stream(StreamName=STREAM, ShardCount=1)
        yield kinesis, boto3.client("sqs")


def stream_records(kinesis) -> list[dict]:
    shard = kinesis.describe_stream(StreamName=STREAM)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName=STREAM, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    return kinesis.get_records(ShardIterator=iterator["ShardIterator"], Limit=10_000)["Records"]


def transactions(n: int) -> list[dict]:
    return [{"transaction_id": f"t{i}", "account_id": f"a{i % 3}", "amount": i} for i in range(n)]


def test_jsonl_file_goes_on_the_stream_keyed_by_account(aws, tmp_path: Path, capsys) -> None:
    kinesis, _ = aws
    data = tmp_path / "tx.jsonl"
    data.write_text("\n".join(json.dumps(t) for t in transactions(1203)) + "\n")
    assert put_sample_records.main(["--stream-name", STREAM, str(data)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == {"records": 1203, "put": 1203, "failed": 0, "requests": 3}
    records = stream_records(kinesis)
    assert len(records) == 1203
    assert json.loads(records[4]["Data"]) == transactions(5)[4]
    assert records[4]["PartitionKey"] == "a1"


def test_kinesis_event_records_are_put_as_they_are(aws, capsys) -> None:
    kinesis, _ = aws
    event_file = REPO / "events" / "ingest" / "mixed-batch.json"
    event = json.loads(event_file.read_text())
    assert put_sample_records.main(["--stream-name", STREAM, str(event_file)]) == 0
    records = stream_records(kinesis)
    expected = [base64.b64decode(r["kinesis"]["data"]) for r in event["Records"]]
    assert [r["Data"] for r in records] == expected  # invalid ones too: the functions must reject them
    assert [r["PartitionKey"] for r in records] == [r["kinesis"]["partitionKey"] for r in event["Records"]]


def test_throttled_records_are_retried_until_accepted() -> None:
    class ThrottlingStream:
        def __init__(self) -> None:
            self.calls: list[int] = []

        def put_records(self, StreamName: str, Records: list[dict]) -> dict:
            self.calls.append(len(Records))
            # The first call throttles every second record.
            throttle = len(self.calls) == 1
            return {
                "Records": [
                    {"ErrorCode": "ProvisionedThroughputExceededException"} if throttle and i % 2 else {}
                    for i in range(len(Records))
                ]
            }

    stream = ThrottlingStream()
    records = [put_sample_records.StreamRecord(b"{}", "a") for _ in range(10)]
    summary = put_sample_records.put_records(stream, STREAM, records, sleep=lambda _: None)
    assert stream.calls == [10, 5]
    assert summary == {"records": 10, "put": 10, "failed": 0, "requests": 2}


def test_bad_input_names_the_file_and_line(tmp_path: Path, capsys) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"account_id": "a", "amount": 1}\n{"amount": 2}\n')
    assert put_sample_records.main(["--dry-run", str(data)]) == 2
    assert f"{data}:2: no 'account_id'" in capsys.readouterr().err


def test_failed_batch_is_read_back_from_the_stream_and_put_again(aws, capsys) -> None:
    kinesis, sqs = aws
    sequence = [
        kinesis.put_record(StreamName=STREAM, Data=json.dumps(t).encode(), PartitionKey=t["account_id"])
        for t in transactions(6)
    ]
    queue_url = sqs.create_queue(QueueName="failed")["QueueUrl"]
    stream_arn = kinesis.describe_stream(StreamName=STREAM)["StreamDescription"]["StreamARN"]
    # What the event-source mapping sends on failure: the batch's position, not its records.
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps(
            {
                "requestContext": {"condition": "RetryAttemptsExhausted", "functionArn": "arn:fn"},
                "KinesisBatchInfo": {
                    "shardId": sequence[2]["ShardId"],
                    "startSequenceNumber": sequence[2]["SequenceNumber"],
                    "endSequenceNumber": sequence[4]["SequenceNumber"],
                    "batchSize": 3,
                    "streamArn": stream_arn,
                },
            }
        ),
    )
    assert redrive.main(["failed", "--queue-url", queue_url]) == 0
    assert json.loads(capsys.readouterr().out) == {"records": 3, "batches": 1, "deleted": 1}
    records = stream_records(kinesis)
    assert [json.loads(r["Data"])["transaction_id"] for r in records[6:]] == ["t2", "t3", "t4"]
    assert "Messages" not in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)


def test_rejected_records_export_and_dry_run(aws, tmp_path: Path, capsys) -> None:
    _, sqs = aws
    queue_url = sqs.create_queue(QueueName="rejected", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    for reason, data in [("amount: must be >= 0", '{"amount": -1}'), ("not JSON", "garbage")]:
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"reason": reason, "data": data}))
    assert redrive.main(["rejected", "--queue-url", queue_url, "--dry-run"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == {"messages": 2, "deleted": 0, "duplicates": 0, "reasons": {"amount": 1, "not JSON": 1}}
    out = tmp_path / "rejected.jsonl"
    assert redrive.main(["rejected", "--queue-url", queue_url, "--to-file", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["deleted"] == 2
    assert sorted(json.loads(line)["data"] for line in out.read_text().splitlines()) == [
        "garbage",
        '{"amount": -1}',
    ]


def test_rejected_redrive_handles_each_rejection_once_and_keeps_truncated_data(
    aws, tmp_path: Path, capsys
) -> None:
    _, sqs = aws
    queue_url = sqs.create_queue(QueueName="rejected", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    sink = SqsRejectedRecordSink(queue_url, client=sqs)
    small = RejectedRecord(
        source="IngestGraphFunction", reason="amount: must be >= 0", data="{}", sequence_number="1"
    )
    big = RejectedRecord(
        source="IngestGraphFunction", reason="too big", data="x" * 400_000, sequence_number="2"
    )
    sink.send([small, big])
    sink.send([small, big])  # the same batch delivered again by Kinesis
    assert redrive.main(["rejected", "--queue-url", queue_url, "--stream-name", STREAM]) == 1
    report = json.loads(capsys.readouterr().out)
    # one rejection put back; its copy and the copy of the truncated one deleted as duplicates;
    # the truncated one kept (only a prefix of its data is in the message)
    assert report["deleted"] == 1 and report["duplicates"] == 2 and report["skipped"] == 1
    left = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"])["data_truncated_from_bytes"] for m in left] == [400_000]
