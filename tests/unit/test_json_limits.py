"""The JSON limits of a record: how deep it may nest (objects and arrays, any mix)."""

from __future__ import annotations

import base64
import json

import pytest

from fraudcore.ingest import decode_record
from fraudcore.limits import MAX_JSON_DEPTH, LimitExceeded, json_depth, parse_json_record


def nested(depth: int, kind: str) -> str:
    """A JSON text nesting ``depth`` levels of arrays, objects or both in turn."""
    text = "1"
    for level in range(depth):
        use_object = kind == "object" or (kind == "mixed" and level % 2 == 0)
        text = f'{{"k": {text}}}' if use_object else f"[{text}]"
    return text


@pytest.mark.parametrize("kind", ["array", "object", "mixed"])
def test_a_record_may_nest_to_the_limit_and_no_deeper(kind):
    deepest = nested(MAX_JSON_DEPTH, kind)
    assert json_depth(parse_json_record(deepest)) == MAX_JSON_DEPTH
    with pytest.raises(LimitExceeded, match=f"JSON nests deeper than {MAX_JSON_DEPTH} levels"):
        parse_json_record(nested(MAX_JSON_DEPTH + 1, kind))


def test_depth_is_counted_on_the_value_not_on_the_brackets_of_its_text():
    # brackets inside strings are text: many of them, and the record is still shallow
    shallow = json.dumps({"merchant_id": "[" * 40 + "{" * 40, "tags": [["a"], ["b"]] * 10})
    assert json_depth(parse_json_record(shallow)) == 3
    # siblings do not add up: wide is not deep
    wide = json.dumps({"a": [[1]] * 30, "b": [{"c": 1}] * 30})
    assert json_depth(parse_json_record(wide)) == 3
    # a deep branch among shallow ones is found
    deep_branch = json.dumps({"a": [1] * 20, "b": json.loads(nested(MAX_JSON_DEPTH, "mixed"))})
    with pytest.raises(LimitExceeded):
        parse_json_record(deep_branch)


def test_far_too_deep_a_record_is_refused_not_a_crash():
    with pytest.raises(LimitExceeded, match="JSON nests deeper"):
        parse_json_record("[" * 30_000 + "]" * 30_000)  # within the size limit


def test_a_too_deep_record_is_rejected_with_its_reason():
    data = base64.b64encode(nested(MAX_JSON_DEPTH + 1, "mixed").encode()).decode()
    record = decode_record({"kinesis": {"data": data, "sequenceNumber": "7", "partitionKey": "a"}}, None)
    assert record.transaction is None
    assert (
        record.reason
        == f"record is outside the accepted limits: JSON nests deeper than {MAX_JSON_DEPTH} levels"
    )
