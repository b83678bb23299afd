"""SQS sink, EventBridge publisher and Step Functions starter against moto (and Stubber for
the partial failures moto cannot produce)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from fraudcore.aws_adapters import (
    EventBridgePublisher,
    EventPublishError,
    InvestigationStartError,
    RejectedRecordSinkError,
    SqsRejectedRecordSink,
    StepFunctionsInvestigationStarter,
    check_execution_name,
    rejected_message_body,
    rejection_key,
)
from fraudcore.ports import EventPublisher, InvestigationStarter, RejectedRecord, RejectedRecordSink

REGION = "us-east-1"


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture
def aws() -> Any:
    with mock_aws():
        yield


def record(n: int, data: str = "") -> RejectedRecord:
    return RejectedRecord(
        source="IngestTimeseriesFunction",
        reason=f"amount: must be >= 0 (got -{n})",
        data=data or json.dumps({"transaction_id": f"tx-{n}", "amount": -n}),
        sequence_number=str(1000 + n),
        partition_key="acct-1",
        transaction_id=f"tx-{n}",
    )


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        bodies += [json.loads(m["Body"]) for m in messages]


# -- SQS ---------------------------------------------------------------------------------


def test_sqs_sink_sends_batches_of_ten_with_the_record_json(aws: Any) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="rejected")["QueueUrl"]
    calls: list[int] = []
    sqs.meta.events.register(
        "provide-client-params.sqs.SendMessageBatch", lambda params, **_: calls.append(len(params["Entries"]))
    )
    sink = SqsRejectedRecordSink(queue_url, client=sqs)
    assert isinstance(sink, RejectedRecordSink)

    sink.send([record(n) for n in range(23)])

    assert calls == [10, 10, 3]
    assert sink.count() == 23
    bodies = drain(sqs, queue_url)
    assert sorted(b["transaction_id"] for b in bodies) == sorted(f"tx-{n}" for n in range(23))
    first = next(b for b in bodies if b["transaction_id"] == "tx-4")
    assert first == record(4).to_dict()


def test_sqs_sink_sends_nothing_for_no_records(aws: Any) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="rejected")["QueueUrl"]
    sink = SqsRejectedRecordSink(queue_url, client=sqs)
    sink.send([])
    assert sink.count() == 0


def test_sqs_sink_splits_batches_by_size_and_truncates_huge_data(aws: Any) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="rejected")["QueueUrl"]
    calls: list[int] = []
    sqs.meta.events.register(
        "provide-client-params.sqs.SendMessageBatch", lambda params, **_: calls.append(len(params["Entries"]))
    )
    sink = SqsRejectedRecordSink(queue_url, client=sqs)
    big = [record(n, data="x" * 100_000) for n in range(3)]
    huge = record(9, data="y" * 600_000)

    sink.send([*big, huge])

    assert calls == [2, 1, 1]  # 2 x 100 KB fit in 256 KiB, a third does not
    body = json.loads(rejected_message_body(huge))
    assert body["data_truncated_from_bytes"] == 600_000
    assert len(rejected_message_body(huge).encode()) <= 256 * 1024
    assert sink.count() == 4


def test_sqs_sink_retries_failed_entries_once() -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    sink = SqsRejectedRecordSink("https://sqs.us-east-1.amazonaws.com/123456789012/rejected", client=sqs)
    stub = Stubber(sqs)
    stub.add_response(
        "send_message_batch",
        {
            "Successful": [{"Id": "0", "MessageId": "m0", "MD5OfMessageBody": "x"}],
            "Failed": [{"Id": "1", "SenderFault": False, "Code": "InternalError", "Message": "try again"}],
        },
    )
    stub.add_response(
        "send_message_batch",
        {"Successful": [{"Id": "1", "MessageId": "m1", "MD5OfMessageBody": "x"}], "Failed": []},
        {
            "QueueUrl": sink.queue_url,
            "Entries": [
                {
                    "Id": "1",
                    "MessageBody": rejected_message_body(record(1)),
                    "MessageAttributes": {
                        "rejection_key": {"DataType": "String", "StringValue": rejection_key(record(1))},
                        "source": {"DataType": "String", "StringValue": record(1).source},
                    },
                }
            ],
        },
    )
    with stub:
        sink.send([record(0), record(1)])
    stub.assert_no_pending_responses()


def test_sqs_sink_raises_when_entries_still_fail() -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    sink = SqsRejectedRecordSink("https://sqs.us-east-1.amazonaws.com/123456789012/rejected", client=sqs)
    failed = {
        "Successful": [],
        "Failed": [{"Id": "0", "SenderFault": False, "Code": "InternalError", "Message": "down"}],
    }
    stub = Stubber(sqs)
    stub.add_response("send_message_batch", failed)
    stub.add_response("send_message_batch", failed)
    with stub, pytest.raises(RejectedRecordSinkError, match=r"1 rejected record.*InternalError: down"):
        sink.send([record(0)])


def test_sqs_message_fits_and_keeps_hash_and_size_of_the_original() -> None:
    # Non-ASCII data grows when escaped: the cut must still fit, with its marker.
    data = "\u00e9\U0001f600" * 200_000
    huge = RejectedRecord(source="IngestGraphFunction", reason="r" * 50_000, data=data, sequence_number="7")
    body_text = rejected_message_body(huge)
    body = json.loads(body_text)
    assert len(body_text.encode()) <= 256 * 1024
    assert body["data"].endswith("…[truncated]")
    assert data.startswith(body["data"].removesuffix("…[truncated]"))
    original = data.encode()
    assert body["data_truncated_from_bytes"] == len(original)
    assert body["data_sha256"] == hashlib.sha256(original).hexdigest()
    assert body["reason"].endswith("…[truncated]") and body["reason_chars"] == 50_000


def test_sqs_message_escapes_every_character_sqs_refuses() -> None:
    # SQS accepts #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF only.
    nasty = "a\x00b\x1fc\ud800d\uffffe\ufffef\x7f"
    body = rejected_message_body(RejectedRecord(source="s", reason=f"bad {nasty}", data=nasty))
    assert all(0x20 <= ord(ch) < 0x7F for ch in body)
    assert json.loads(body)["data"] == nasty


def test_sqs_sink_marks_each_rejection_so_a_redelivery_is_a_duplicate(aws: Any) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="rejected")["QueueUrl"]
    sink = SqsRejectedRecordSink(queue_url, client=sqs)
    sink.send([record(1), record(2)])
    sink.send([record(1)])  # Kinesis delivered the batch again
    messages = []
    while batch := sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", []):
        messages += batch
        for message in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    keys = [m["MessageAttributes"]["rejection_key"]["StringValue"] for m in messages]
    assert len(keys) == 3 and len(set(keys)) == 2
    assert rejection_key(record(1)) != rejection_key(record(2))
    assert rejection_key(record(1)) != rejection_key(
        RejectedRecord(source="IngestTimeseriesFunction", reason="r", data="d", sequence_number="1")
    )


def test_sqs_sink_on_a_fifo_queue_deduplicates_a_redelivery(aws: Any) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="rejected.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    sink = SqsRejectedRecordSink(queue_url, client=sqs)
    sink.send([record(1), record(2)])
    sink.send([record(1), record(2)])
    assert sink.count() == 2


def test_sqs_sink_needs_a_queue_url() -> None:
    with pytest.raises(ValueError, match="REJECTED_QUEUE_URL"):
        SqsRejectedRecordSink("")


# -- EventBridge -------------------------------------------------------------------------


def test_eventbridge_publisher_puts_the_event_on_the_bus(aws: Any) -> None:
    events = boto3.client("events", region_name=REGION)
    events.create_event_bus(Name="fraud")
    entries: list[dict[str, Any]] = []
    events.meta.events.register(
        "provide-client-params.events.PutEvents", lambda params, **_: entries.extend(params["Entries"])
    )
    publisher = EventBridgePublisher("fraud", "fraud-detection", client=events)
    assert isinstance(publisher, EventPublisher)

    publisher.publish(
        "Fraud Case Opened",
        {"case_id": "case:1", "score": 0.93, "opened_at": datetime(2026, 11, 29, tzinfo=UTC)},
    )

    assert entries == [
        {
            "Source": "fraud-detection",
            "DetailType": "Fraud Case Opened",
            "Detail": '{"case_id":"case:1","score":0.93,"opened_at":"2026-11-29 00:00:00+00:00"}',
            "EventBusName": "fraud",
        }
    ]


def test_eventbridge_publisher_raises_on_a_failed_entry() -> None:
    events = boto3.client("events", region_name=REGION)
    publisher = EventBridgePublisher("fraud", "fraud-detection", client=events)
    stub = Stubber(events)
    stub.add_response(
        "put_events",
        {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "AccessDenied", "ErrorMessage": "no bus access"}]},
    )
    with stub, pytest.raises(EventPublishError, match="AccessDenied: no bus access"):
        publisher.publish("Fraud Case Opened", {"case_id": "c"})
    stub.assert_no_pending_responses()  # a permanent error is not retried


def test_eventbridge_publisher_retries_a_throttled_entry_once() -> None:
    events = boto3.client("events", region_name=REGION)
    publisher = EventBridgePublisher("fraud", "fraud-detection", client=events)
    stub = Stubber(events)
    stub.add_response(
        "put_events",
        {
            "FailedEntryCount": 1,
            "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"}],
        },
    )
    stub.add_response("put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "e1"}]})
    with stub:
        publisher.publish("Fraud Case Opened", {"case_id": "c"})
    stub.assert_no_pending_responses()


# -- Step Functions ----------------------------------------------------------------------

DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})


def state_machine(sfn: Any) -> str:
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    return sfn.create_state_machine(name="investigation", definition=DEFINITION, roleArn=role)[
        "stateMachineArn"
    ]


def test_step_functions_starter_starts_once_per_name(aws: Any) -> None:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = state_machine(sfn)
    starter = StepFunctionsInvestigationStarter(arn, client=sfn)
    assert isinstance(starter, InvestigationStarter)
    payload = {"entity_type": "account", "entity_id": "acct-1", "rule": "velocity"}

    assert starter.start("velocity-account-acct-1-20261129T1200", payload) is True
    # Same name, other input: ExecutionAlreadyExists.
    assert starter.start("velocity-account-acct-1-20261129T1200", {**payload, "score": 1}) is False
    assert starter.start("velocity-account-acct-2-20261129T1200", payload) is True

    executions = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert sorted(e["name"] for e in executions) == [
        "velocity-account-acct-1-20261129T1200",
        "velocity-account-acct-2-20261129T1200",
    ]
    started = sfn.describe_execution(executionArn=executions[0]["executionArn"])
    assert json.loads(started["input"])["entity_type"] == "account"


def test_step_functions_same_name_and_input_while_running_is_a_duplicate(aws: Any) -> None:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = state_machine(sfn)
    first = StepFunctionsInvestigationStarter(arn, client=sfn)
    assert first.start("ring-acct-9", {"entity_id": "acct-9"}) is True
    # Step Functions answers with the running execution: its start date gives it away.
    later = StepFunctionsInvestigationStarter(
        arn, client=sfn, clock=lambda: datetime.now(UTC) + timedelta(minutes=1)
    )
    assert later.start("ring-acct-9", {"entity_id": "acct-9"}) is False
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 1


def test_step_functions_other_errors_raise(aws: Any) -> None:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    missing = "arn:aws:states:us-east-1:123456789012:stateMachine:missing"
    starter = StepFunctionsInvestigationStarter(missing, client=sfn)
    with pytest.raises(InvestigationStartError, match="StateMachineDoesNotExist"):
        starter.start("ring-acct-9", {"entity_id": "acct-9"})


@pytest.mark.parametrize(
    ("name", "problem"),
    [("", "1 to 80"), ("x" * 81, "1 to 80"), ("has space", "' '"), ("a:b", "':'"), ("a/b", "'/'")],
)
def test_execution_names_step_functions_refuses_are_caught_early(name: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_execution_name(name)
    assert check_execution_name("velocity.account_acct-1-2026") == "velocity.account_acct-1-2026"
