"""The event-source-mapping emulator follows Lambda's retry, checkpoint and bisect rules."""

from __future__ import annotations

import base64
import json
from collections import Counter

from fraudlocal.emulators.kinesis_esm import EventSourceMapping, LocalStream, shard_for


def payloads(event) -> list[int]:
    return [json.loads(base64.b64decode(r["kinesis"]["data"]))["n"] for r in event["Records"]]


def make_stream(n: int, shards: int = 1) -> LocalStream:
    stream = LocalStream(shards)
    for i in range(n):
        stream.put({"n": i}, partition_key=f"acct-{i % 7}")
    return stream


def test_batches_are_in_order_and_bounded():
    seen: list[list[int]] = []
    mapping = EventSourceMapping(
        "f", lambda e: seen.append(payloads(e)) or {"batchItemFailures": []}, batch_size=4
    )
    assert mapping.poll(make_stream(10)) == 10
    assert seen == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert mapping.poll(make_stream(0)) == 0  # nothing new


def test_partial_failure_resumes_from_the_lowest_failed_record():
    calls: list[list[int]] = []
    failures_left = Counter({5: 1, 6: 1})

    def handler(event):
        numbers = payloads(event)
        calls.append(numbers)
        failed = []
        for record, n in zip(event["Records"], numbers, strict=True):
            if failures_left[n] > 0:
                failures_left[n] -= 1
                failed.append({"itemIdentifier": record["kinesis"]["sequenceNumber"]})
        return {"batchItemFailures": list(reversed(failed))}

    mapping = EventSourceMapping("f", handler, batch_size=8)
    mapping.poll(make_stream(8))
    assert calls == [[0, 1, 2, 3, 4, 5, 6, 7], [5, 6, 7]]
    assert mapping.stats.partial_failures == 1
    assert mapping.stats.batches_given_up == 0


def test_function_errors_bisect_and_poison_records_go_to_the_on_failure_destination(tmp_path):
    delivered: Counter = Counter()

    def handler(event):
        numbers = payloads(event)
        if 3 in numbers:
            raise RuntimeError("poison record")
        delivered.update(numbers)
        return {}

    destination = tmp_path / "on-failure.jsonl"
    mapping = EventSourceMapping("f", handler, batch_size=8, max_retries=3, on_failure=destination)
    mapping.poll(make_stream(8))
    assert set(delivered) == {0, 1, 2, 4, 5, 6, 7}
    assert mapping.stats.bisections >= 2
    lines = [json.loads(line) for line in destination.read_text().splitlines()]
    assert len(lines) == 1
    assert lines[0]["KinesisBatchInfo"]["batchSize"] == 1
    assert "poison record" in lines[0]["reason"]


def test_records_of_one_partition_key_stay_on_one_shard_in_order():
    stream = make_stream(200, shards=4)
    assert sum(len(s) for s in stream.shards) == 200
    assert sum(1 for s in stream.shards if s) > 1
    for shard in stream.shards:
        for record in shard:
            assert shard_for(record.partition_key, 4) == int(record.shard_id.rsplit("-", 1)[1])
        numbers = [json.loads(r.data)["n"] for r in shard]
        assert numbers == sorted(numbers)
