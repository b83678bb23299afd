"""Read every shard of a real Kinesis stream (AWS, kinesalite, moto's server) with boto3.

ListShards, then one GetShardIterator per shard (``TRIM_HORIZON`` or ``LATEST``), then
rounds of GetRecords over all open shards. boto3 honours ``AWS_ENDPOINT_URL_KINESIS``
(and ``AWS_ENDPOINT_URL``) by itself; ``endpoint_url`` overrides both.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fraudlocal.errors import UserError

START_POSITIONS = {"trim_horizon": "TRIM_HORIZON", "latest": "LATEST"}
#: GetRecords returns at most 10,000 records or 10 MB per call
GET_RECORDS_LIMIT = 10_000
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class KinesisRecord:
    data: bytes
    partition_key: str
    sequence_number: str
    shard_id: str
    arrival: float


class KinesisReader:
    def __init__(
        self,
        stream: str,
        endpoint_url: str | None = None,
        start: str = "trim_horizon",
        client: Any = None,
        poll_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        if start not in START_POSITIONS:
            raise UserError(f"--from {start!r}: expected one of {', '.join(START_POSITIONS)}")
        self.stream = stream
        self.start = START_POSITIONS[start]
        self.client = client or _client(endpoint_url)
        # GetRecords allows 5 calls per second per shard: an empty round waits this long.
        self.poll_interval = poll_interval
        self.clock = clock
        self.iterators: dict[str, str] = {}

    def open(self) -> list[str]:
        """An iterator for every shard of the stream; returns the shard ids."""
        shards: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"NextToken": token} if token else {"StreamName": self.stream}
            response = self._call("ListShards", self.client.list_shards, **kwargs)
            shards += [shard["ShardId"] for shard in response.get("Shards", [])]
            token = response.get("NextToken")
            if not token:
                break
        for shard_id in shards:
            response = self._call(
                "GetShardIterator",
                self.client.get_shard_iterator,
                StreamName=self.stream,
                ShardId=shard_id,
                ShardIteratorType=self.start,
            )
            self.iterators[shard_id] = response["ShardIterator"]
        return shards

    def read_round(self) -> list[KinesisRecord]:
        """One GetRecords call per open shard (a closed shard drops out)."""
        records: list[KinesisRecord] = []
        for shard_id, iterator in list(self.iterators.items()):
            response = self._call(
                "GetRecords", self.client.get_records, ShardIterator=iterator, Limit=GET_RECORDS_LIMIT
            )
            for item in response.get("Records", []):
                arrival = item.get("ApproximateArrivalTimestamp")
                records.append(
                    KinesisRecord(
                        data=bytes(item["Data"]),
                        partition_key=str(item.get("PartitionKey", "")),
                        sequence_number=str(item["SequenceNumber"]),
                        shard_id=shard_id,
                        arrival=arrival.timestamp() if hasattr(arrival, "timestamp") else float(arrival or 0),
                    )
                )
            following = response.get("NextShardIterator")
            if following:
                self.iterators[shard_id] = following
            else:
                del self.iterators[shard_id]
        return records

    def follow(self, until_idle: float) -> Iterator[list[KinesisRecord]]:
        """Rounds of records until no record came for ``until_idle`` seconds (or every shard closed)."""
        if not self.iterators:
            self.open()
        last_record = self.clock()
        while self.iterators:
            records = self.read_round()
            if records:
                last_record = self.clock()
                yield records
                continue
            if self.clock() - last_record >= until_idle:
                return
            time.sleep(min(self.poll_interval, max(0.05, until_idle / 4)))

    def _call(self, operation: str, method: Callable[..., Any], **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            return method(**kwargs)
        except NoCredentialsError:
            raise UserError(
                "no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE "
                "(any values do for a local emulator)"
            ) from None
        except ClientError as error:
            detail = error.response.get("Error", {})
            raise UserError(
                f"Kinesis {operation} on stream {self.stream!r} failed: {detail.get('Code')}: {detail.get('Message')}"
            ) from None
        except BotoCoreError as error:
            raise UserError(f"Kinesis {operation} on stream {self.stream!r} failed: {error}") from None


def _client(endpoint_url: str | None) -> Any:
    import boto3

    session = boto3.session.Session()
    region = session.region_name or DEFAULT_REGION
    return session.client("kinesis", region_name=region, endpoint_url=endpoint_url)
