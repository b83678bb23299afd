"""The faster GraphBinary reader answers what gremlinpython's own reader answers."""

from __future__ import annotations

import datetime
import io
import math
import uuid

import pytest
from gremlin_python.driver.serializer import GraphBinarySerializersV1
from gremlin_python.process.traversal import Direction, T
from gremlin_python.statics import FloatType, SingleByte, long
from gremlin_python.structure.graph import Edge, Path, Vertex
from gremlin_python.structure.io.graphbinaryV1 import DataType, GraphBinaryReader, GraphBinaryWriter, LongIO

from fraudcore.graph.connection import driver_factory
from fraudcore.graph.wire import FastGraphBinaryReader, fast_message_serializer

VALUES = [
    0,
    -1,
    2**31 - 1,
    -(2**31),
    long(2**31),
    long(-(2**63)),
    long(2**63 - 1),
    long(1_700_000_000_123),
    "",
    "account:a-1",
    "é|%7C|東京|\U0001f600",
    "x" * 70_000,
    0.0,
    -0.0,
    12.345,
    1e308,
    float("inf"),
    FloatType(1.5),
    True,
    False,
    [],
    [None, 1, long(2), "3", 4.5, True, [["deep", [None]]]],
    [["e1", long(1), long(2), long(3), 4.5, ""], ["e2", long(5), long(6), long(7), 8.0, long(2)]],
    {"a": 1, "b": [1, 2, {"c": None}]},
    {T.id: "account:1", T.label: "account", "risk_score": 0.5, Direction.OUT: "x"},
    {1, 2, "three"},
    Vertex("account:1", "account"),
    Edge("a|uses|d", Vertex("a", "account"), "uses", Vertex("d", "device")),
    Path([{"v"}, set()], [Vertex("a", "account"), "x"]),
    datetime.datetime(2026, 12, 1, 12, 30, 15),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    SingleByte(7),
    [{"v": Vertex("a", "account"), "n": long(3)}, {1, 2}, [datetime.datetime(2026, 1, 1)]],
]


def encode(value) -> bytes:
    return bytes(GraphBinaryWriter().write_object(value))


def shape(value):
    """The value with every type spelled out (1 == 1.0 == True in Python; the types differ)."""
    if isinstance(value, list):
        return ["list", [shape(item) for item in value]]
    if isinstance(value, dict):
        return ["dict", sorted((repr(shape(k)), repr(shape(v))) for k, v in value.items())]
    if isinstance(value, set):
        return ["set", sorted(repr(shape(item)) for item in value)]
    if isinstance(value, float) and math.isnan(value):
        return [type(value).__name__, "nan"]
    return [type(value).__name__, repr(value)]


@pytest.mark.parametrize("value", VALUES, ids=lambda value: type(value).__name__)
def test_the_fast_reader_answers_what_the_drivers_reader_answers(value):
    data = encode(value)
    theirs = GraphBinaryReader().read_object(bytearray(data))
    ours = FastGraphBinaryReader().read_object(bytearray(data))
    assert shape(ours) == shape(theirs)
    # from a stream too, as the driver and the deserializers of maps and sets call it
    assert shape(FastGraphBinaryReader().to_object(io.BytesIO(data))) == shape(theirs)


def test_typed_nulls_in_line_are_read_as_the_driver_reads_them():
    # a value flag of 0x01 after a type code: a null of that type (a Gremlin Server can send one)
    for data_type in (DataType.int, DataType.long, DataType.string, DataType.double, DataType.list):
        data = bytes([data_type.value, 0x01])
        assert GraphBinaryReader().read_object(bytearray(data)) is None
        assert FastGraphBinaryReader().read_object(bytearray(data)) is None


def test_an_unknown_type_code_fails_as_in_the_driver():
    data = bytearray([0x70, 0x00, 0x01])
    with pytest.raises(ValueError) as theirs:
        GraphBinaryReader().read_object(data)
    with pytest.raises(ValueError) as ours:
        FastGraphBinaryReader().read_object(data)
    assert str(ours.value) == str(theirs.value)


def test_a_deserializer_given_for_a_type_read_in_line_is_used():
    class TaggedLong:  # not a subclass of LongIO: those replace the driver's own for every reader
        @staticmethod
        def objectify(buff, reader, nullable=True):
            return ("tagged", LongIO.objectify(buff, reader, nullable))

    reader = FastGraphBinaryReader({DataType.long: TaggedLong})
    assert reader.read_object(bytearray(encode([long(5), "s"]))) == [("tagged", 5), "s"]


def test_a_whole_response_message_reads_the_same():
    theirs = GraphBinarySerializersV1()
    ours = fast_message_serializer()
    result = [["e1", long(1), long(2), long(3), 4.5, ""], {T.id: "a", "n": long(1)}]
    body = io.BytesIO()
    body.write(bytes([0x81]))  # version
    body.write(bytes([0x00]))  # a request id follows
    body.write(uuid.UUID("12345678-1234-5678-1234-567812345678").bytes)
    body.write((200).to_bytes(4, "big"))
    body.write(bytes([0x00]))  # status message: present
    body.write((2).to_bytes(4, "big") + b"OK")
    body.write((0).to_bytes(4, "big"))  # status attributes: an empty map
    body.write((0).to_bytes(4, "big"))  # meta attributes: an empty map
    body.write(encode(result))
    message = bytes(body.getvalue())
    assert shape(ours.deserialize_message(message)) == shape(theirs.deserialize_message(message))
    assert ours.deserialize_message(message)["result"]["data"] == result


def test_the_driver_factory_uses_the_fast_reader_unless_told_otherwise(monkeypatch):
    made = []

    class Recorder:
        def __init__(self, *args, **kwargs):
            made.append(kwargs)

    import gremlin_python.driver.driver_remote_connection as driver

    monkeypatch.setattr(driver, "DriverRemoteConnection", Recorder)
    driver_factory("ws://127.0.0.1:1/gremlin")()
    assert isinstance(made[-1]["message_serializer"]._graphbinary_reader, FastGraphBinaryReader)
    own = GraphBinarySerializersV1()
    driver_factory("ws://127.0.0.1:1/gremlin", message_serializer=own)()
    assert made[-1]["message_serializer"] is own
