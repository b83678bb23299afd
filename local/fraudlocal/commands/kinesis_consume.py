"""``fraudlocal kinesis-consume --stream NAME [--endpoint-url URL] [--mapping FILE] ...``.

Reads every shard of a real Kinesis API (AWS, or a local emulator such as kinesalite or
moto's server; boto3 honours ``AWS_ENDPOINT_URL_KINESIS``) and runs the records through
the same local pipeline as ``fraudlocal replay``. Records of each GetRecords round are
put on the emulated stream in event-time order, keeping the producer's partition key.
When no record has come for ``--until-idle`` seconds, the schedule runs on until the
last windows closed, the investigations finish and the outputs are written.

Each run starts from an empty ``<state-dir>/kinesis-consume``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fraudlocal.adapters.kinesis_reader import START_POSITIONS, KinesisReader

from ..errors import UserError
from ..pipeline.ordering import StreamInput, field_mapping_value, order_records, ordering_mapping
from ..pipeline.run import RunRequest, run_to_outputs
from ..state_dir import fresh_state_dir
from .replay import add_run_options, config_from_args, read_labels, run_state_dir


def stream_records(reader: KinesisReader, until_idle: float, mapping: Any) -> Iterator[StreamInput]:
    """The records of each GetRecords round, in event-time order, keeping their partition keys."""
    for round_records in reader.follow(until_idle):
        yield from order_records(((r.data, r.partition_key or None) for r in round_records), mapping)


def run(args: argparse.Namespace) -> int:
    if args.until_idle <= 0:
        raise UserError(f"--until-idle {args.until_idle}: must be a positive number of seconds")
    mapping = field_mapping_value(args.mapping)
    reader = KinesisReader(args.stream, endpoint_url=args.endpoint_url, start=args.start)
    shards = reader.open()
    if not args.quiet:
        print(
            f"reading {len(shards)} shard(s) of {args.stream}, until idle for {args.until_idle:g} s",
            file=sys.stderr,
        )
    state_dir = fresh_state_dir(run_state_dir(args, "kinesis-consume"))
    request = RunRequest(
        config=config_from_args(args, state_dir, mapping),
        out_dir=args.out,
        source={
            "kind": "kinesis",
            "stream": args.stream,
            "endpoint_url": args.endpoint_url,
            "mapping": mapping,
        },
        labels=read_labels(args.labels),
        total=None,
        progress=not args.quiet,
        print_table=not args.quiet,
    )
    run_to_outputs(request, stream_records(reader, args.until_idle, ordering_mapping(mapping)))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "kinesis-consume",
        help="read a Kinesis stream (AWS or a local emulator) and run the records through the local pipeline",
        description="Read every shard of a Kinesis stream with boto3 (AWS_ENDPOINT_URL_KINESIS is honoured) "
        "and run ingest, the scheduled micro-analysis and the investigations locally, in "
        "<state-dir>/kinesis-consume (emptied first).",
    )
    parser.add_argument("--stream", required=True, help="the stream name")
    parser.add_argument(
        "--endpoint-url", default=None, help="Kinesis endpoint (default: AWS_ENDPOINT_URL_KINESIS or AWS)"
    )
    parser.add_argument(
        "--mapping", default=None, help="field mapping: a shipped name (aws-guidance-sample) or a file"
    )
    parser.add_argument(
        "--from",
        dest="start",
        choices=tuple(START_POSITIONS),
        default="trim_horizon",
        help="where to start reading each shard (default trim_horizon)",
    )
    parser.add_argument(
        "--until-idle",
        type=float,
        default=30.0,
        help="stop when no record came for this many seconds (default 30)",
    )
    parser.add_argument("--labels", type=Path, default=None, help="ground truth for precision and recall")
    add_run_options(parser)
    parser.set_defaults(func=run)
