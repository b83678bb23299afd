"""The small AWS adapters: rejected records to SQS, events to EventBridge, investigations
to Step Functions.

Each takes an optional boto3 client (tests pass one bound to moto); without one it uses a
client created once per execution environment, so warm Lambda invocations reuse it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from botocore.exceptions import ClientError

from .execution_names import check_execution_name
from .ports import RejectedRecord
from .timeutil import utc_now

_client_lock = threading.Lock()
_clients: dict[tuple[str, str], Any] = {}


def aws_client(service: str, config: Any = None, endpoint_url: str = "") -> Any:
    """One boto3 client per service (and endpoint) and execution environment (reused across
    invocations).

    ``config`` (a botocore ``Config``) applies when the client is first created; an
    ``endpoint_url`` replaces the service's regional endpoint.
    """
    with _client_lock:
        key = (service, endpoint_url)
        if key not in _clients:
            import boto3

            _clients[key] = boto3.client(service, config=config, endpoint_url=endpoint_url or None)
        return _clients[key]


def _json(value: Any) -> str:
    # Datetimes and other non-JSON values (e.g. in an event detail) become their text.
    # allow_nan=False: Infinity and NaN are not JSON; Step Functions and EventBridge refuse them
    return json.dumps(value, default=str, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# -- rejected records -> SQS -------------------------------------------------------------


class RejectedRecordSinkError(RuntimeError):
    """Rejected records could not be stored: the caller must retry their Kinesis records."""


#: SendMessageBatch takes at most 10 entries and, in all, the queue's maximum message size.
#: SQS accepts up to 1 MiB when the queue's MaximumMessageSize allows it; 256 KiB is the
#: size every queue accepted before, so a message that fits it fits any queue.
SQS_BATCH_ENTRIES = 10
SQS_MAX_BYTES = 256 * 1024
#: room for the batch's other fields when a message alone is near the limit
_SQS_MESSAGE_BUDGET = SQS_MAX_BYTES - 4 * 1024
#: what the message attributes of one entry (rejection_key, source) count at most
_ATTRIBUTE_BYTES = 512
#: a reason longer than this is cut (a store's message may echo a whole request)
MAX_REASON_CHARS = 4000
TRUNCATED = "…[truncated]"


def _ascii_json(value: Any) -> str:
    # Every non-ASCII character is escaped (\uXXXX), so the body holds only printable ASCII:
    # nothing SQS refuses (control characters, lone surrogates, U+FFFE/U+FFFF) can reach it,
    # and a JSON reader gets the original text back.
    return json.dumps(value, default=str, separators=(",", ":"), ensure_ascii=True)


def rejection_key(record: RejectedRecord) -> str:
    """One rejection of one record by one function, however often Kinesis redelivers it.

    The function and the sequence number identify the delivery; a record without a sequence
    number (rejected outside a stream) is identified by its data.
    """
    basis = record.sequence_number or hashlib.sha256(record.data.encode("utf-8", "surrogatepass")).hexdigest()
    return hashlib.sha256(f"{record.source}\n{basis}".encode()).hexdigest()


def rejected_message_body(record: RejectedRecord, max_bytes: int = _SQS_MESSAGE_BUDGET) -> str:
    """The RejectedRecord as JSON that SQS accepts as it is.

    A reason over :data:`MAX_REASON_CHARS` is cut with a marker; when the whole does not fit
    ``max_bytes``, ``data`` is cut with a marker too and the message keeps the SHA-256 and
    the size in bytes of the original data, so it can be found and matched on the stream.
    """
    doc = record.to_dict()
    if len(record.reason) > MAX_REASON_CHARS:
        doc["reason"] = record.reason[:MAX_REASON_CHARS] + TRUNCATED
        doc["reason_chars"] = len(record.reason)
    body = _ascii_json(doc)
    if len(body) <= max_bytes:
        return body
    original = record.data.encode("utf-8", "surrogatepass")
    doc.update(
        data="", data_truncated_from_bytes=len(original), data_sha256=hashlib.sha256(original).hexdigest()
    )
    # the longest prefix of data that fits (escaping makes the size non-linear: bisect)
    low, high = 0, len(record.data)
    while low < high:
        middle = (low + high + 1) // 2
        doc["data"] = record.data[:middle] + TRUNCATED
        if len(_ascii_json(doc)) <= max_bytes:
            low = middle
        else:
            high = middle - 1
    doc["data"] = record.data[:low] + TRUNCATED
    return _ascii_json(doc)


def _sqs_batches(bodies: Sequence[str]) -> Iterator[list[tuple[str, str]]]:
    """(Id, body) batches of at most 10 entries and 256 KiB."""
    batch: list[tuple[str, str]] = []
    batch_bytes = 0
    for index, body in enumerate(bodies):
        size = len(body.encode("utf-8")) + _ATTRIBUTE_BYTES
        if batch and (len(batch) == SQS_BATCH_ENTRIES or batch_bytes + size > SQS_MAX_BYTES):
            yield batch
            batch, batch_bytes = [], 0
        batch.append((str(index), body))
        batch_bytes += size
    if batch:
        yield batch


class SqsRejectedRecordSink:
    """:class:`fraudcore.ports.RejectedRecordSink` on an SQS queue (one message per record)."""

    def __init__(self, queue_url: str, client: Any = None):
        if not queue_url:
            raise ValueError("SqsRejectedRecordSink needs a queue URL (REJECTED_QUEUE_URL)")
        self.queue_url = queue_url
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws_client("sqs")
        return self._client

    @property
    def fifo(self) -> bool:
        return self.queue_url.endswith(".fifo")

    def send(self, records: Sequence[RejectedRecord]) -> None:
        """Send every record; raise :class:`RejectedRecordSinkError` if any could not be sent.

        Each message carries the attribute ``rejection_key`` (:func:`rejection_key`):
        ``scripts/redrive rejected`` handles one message per key, so a batch Kinesis delivers
        again adds no second rejection. On a FIFO queue the key is also the deduplication id.
        """
        bodies = [rejected_message_body(record) for record in records]
        meta = {str(i): (rejection_key(record), record.source) for i, record in enumerate(records)}
        for batch in _sqs_batches(bodies):
            failures = self._send_batch(batch, meta)
            if failures:
                # One more try, for the failed entries only (throttling, internal errors).
                retry = [entry for entry in batch if entry[0] in failures]
                failures = self._send_batch(retry, meta)
            if failures:
                details = "; ".join(f"entry {key}: {why}" for key, why in sorted(failures.items()))
                raise RejectedRecordSinkError(
                    f"{len(failures)} rejected record(s) could not be sent to {self.queue_url}: {details}"
                )

    def _send_batch(self, batch: list[tuple[str, str]], meta: dict[str, tuple[str, str]]) -> dict[str, str]:
        entries = []
        for key, body in batch:
            rejection, source = meta[key]
            entry: dict[str, Any] = {
                "Id": key,
                "MessageBody": body,
                "MessageAttributes": {
                    "rejection_key": {"DataType": "String", "StringValue": rejection},
                    "source": {"DataType": "String", "StringValue": source},
                },
            }
            if self.fifo:
                entry["MessageGroupId"] = source
                entry["MessageDeduplicationId"] = rejection
            entries.append(entry)
        response = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
        return {
            failure["Id"]: f"{failure.get('Code', 'Error')}: {failure.get('Message', '')}".rstrip(": ")
            for failure in response.get("Failed") or []
        }

    def count(self) -> int:
        """Messages in the queue, visible or being processed (SQS's approximate figures)."""
        attributes = self.client.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
            attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
        )


# -- events -> EventBridge ---------------------------------------------------------------


class EventPublishError(RuntimeError):
    """EventBridge did not accept an event."""


#: PutEvents error codes worth one more try
_EVENTBRIDGE_TRANSIENT = frozenset({"ThrottlingException", "InternalFailure", "InternalException"})


class EventBridgePublisher:
    """:class:`fraudcore.ports.EventPublisher` on an EventBridge bus."""

    def __init__(self, bus_name: str, source: str, client: Any = None):
        if not bus_name or not source:
            raise ValueError(
                f"EventBridgePublisher needs a bus name and a source, got {bus_name!r}, {source!r}"
            )
        self.bus_name = bus_name
        self.source = source
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws_client("events")
        return self._client

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        if not detail_type:
            raise ValueError("an event needs a detail type (e.g. 'Fraud Case Opened')")
        entry = {
            "Source": self.source,
            "DetailType": detail_type,
            "Detail": _json(dict(detail)),
            "EventBusName": self.bus_name,
        }
        failure = self._put(entry)
        if failure and failure.get("ErrorCode") in _EVENTBRIDGE_TRANSIENT:
            failure = self._put(entry)
        if failure:
            raise EventPublishError(
                f"EventBridge bus {self.bus_name!r} refused the {detail_type!r} event: "
                f"{failure.get('ErrorCode', 'Error')}: {failure.get('ErrorMessage', '')}"
            )

    def _put(self, entry: dict[str, Any]) -> dict[str, Any] | None:
        response = self.client.put_events(Entries=[entry])
        if not response.get("FailedEntryCount"):
            return None
        entries = response.get("Entries") or [{}]
        return entries[0] or {"ErrorCode": "Unknown", "ErrorMessage": "FailedEntryCount > 0"}


# -- investigations -> Step Functions ----------------------------------------------------


class InvestigationStartError(RuntimeError):
    """Step Functions refused to start an investigation."""


#: StartExecution's input: at most 262,144 bytes of UTF-8
#: (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html);
#: over it, Step Functions answers ``ValidationException`` ("The input does not satisfy the
#: constraints specified by an Amazon Web Services service", https://docs.aws.amazon.com/
#: botocore/latest/reference/services/stepfunctions/client/exceptions/ValidationException.html)
EXECUTION_INPUT_MAX_BYTES = 262_144


def execution_input(payload: Mapping[str, Any]) -> str:
    """An investigation's input as StartExecution receives it (``ValueError`` for a value that
    is not JSON, such as an infinite number, before Step Functions sees it)."""
    return _json(dict(payload))


#: a StartExecution answered with a startDate older than this is an earlier execution
_REPLAY_TOLERANCE = timedelta(seconds=5)


class StepFunctionsInvestigationStarter:
    """:class:`fraudcore.ports.InvestigationStarter` on a Step Functions state machine.

    The execution name is the idempotency key. Step Functions answers a repeated name in
    two ways: ``ExecutionAlreadyExists`` (the first execution has ended, or its input
    differed), or, for a Standard workflow whose execution with that name and the same
    input is still running, success with the running execution's ARN and start date.
    Both are duplicates: the second is recognised by a start date before this call.
    """

    def __init__(
        self,
        state_machine_arn: str,
        client: Any = None,
        *,
        clock: Callable[[], datetime] = utc_now,
    ):
        if not state_machine_arn:
            raise ValueError(
                "StepFunctionsInvestigationStarter needs a state machine ARN (STATE_MACHINE_ARN)"
            )
        self.state_machine_arn = state_machine_arn
        self._client = client
        self._clock = clock

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws_client("stepfunctions")
        return self._client

    def start(self, name: str, payload: Mapping[str, Any]) -> bool:
        """Start one investigation; False when that name was already started (a duplicate)."""
        check_execution_name(name)
        called_at = self._clock()
        try:
            response = self.client.start_execution(
                stateMachineArn=self.state_machine_arn, name=name, input=execution_input(payload)
            )
        except ClientError as error:
            details = error.response.get("Error", {})
            if details.get("Code") == "ExecutionAlreadyExists":
                return False
            raise InvestigationStartError(
                f"Step Functions could not start investigation {name!r} on {self.state_machine_arn}: "
                f"{details.get('Code', 'Error')}: {details.get('Message', '')}"
            ) from error
        started = response.get("startDate")
        if isinstance(started, datetime):
            started = started if started.tzinfo else started.replace(tzinfo=UTC)
            if started < called_at - _REPLAY_TOLERANCE:
                return False  # the same running execution, returned again
        return True


# -- configuration <- SSM Parameter Store ------------------------------------------------


class ParameterReadError(RuntimeError):
    """An SSM parameter could not be read."""


@lru_cache(maxsize=8)
def read_ssm_parameter(name: str) -> str:
    """The value of an SSM parameter (decrypted), read once per execution environment.

    Once: a changed parameter reaches new environments, and a scheduled run does not pay
    an SSM call (or its throttling) every time.
    """
    import boto3

    try:
        response = boto3.client("ssm").get_parameter(Name=name, WithDecryption=True)
    except Exception as error:
        raise ParameterReadError(f"cannot read the SSM parameter: {error}") from None
    return response["Parameter"]["Value"]
