"""``fraudlocal replay FILE.jsonl [--mapping FILE] [--labels FILE] [--out DIR]``.

Runs recorded transactions from any producer through the local pipeline: the records are
put on the stream as they are, in event-time order (the driver applies ``--mapping``
only to read each record's time and account; the ingest functions apply it again, as
they would on AWS with ``FIELD_MAPPING``). With ``--labels`` the summary has the
account-level precision and recall.

Each run starts from an empty ``<state-dir>/replay`` (only what the local stores create
there is removed; a ``rules-override.yaml`` is kept).
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from fraudcore.rules import RuleError, parse_duration

from ..errors import UserError
from ..pipeline.ordering import field_mapping_value, ordering_mapping, read_jsonl
from ..pipeline.run import PipelineConfig, RunRequest, default_overlap, run_to_outputs
from ..scenario.labels import LabelsError, load_labels
from ..state_dir import StateDir, fresh_state_dir, run_folder
from .invoke import add_graph_options


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Options every pipeline command shares."""
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder (default ./out)")
    parser.add_argument(
        "--every",
        default="5m",
        help="event time between scheduled micro-analysis runs, as backtest takes it: 5m, 15m, 1h "
        "(a bare number is minutes; default 5m)",
    )
    parser.add_argument(
        "--rules-override",
        type=Path,
        default=None,
        help="threshold overrides {rule_id: {threshold: N}} (default <state-dir>/rules-override.yaml if present)",
    )
    parser.add_argument("--shards", type=int, default=1, help="shards of the emulated stream (default 1)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=100,
        help="records per ingest invocation, as the mapping's BatchSize (default 100)",
    )
    parser.add_argument(
        "--per-tick",
        action="store_true",
        help="invoke MicroAnalysisFunction at every tick instead of evaluating the rules once per span "
        "of input (same flags and cases, several times slower)",
    )
    parser.add_argument(
        "--overlap",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="read the next span of input (5,000 records) into the time series and evaluate its rules in "
        "a second process while this span's graph ingest and investigations run, as Lambda runs the "
        "stages concurrently (same flags and cases); by default on when this process may use two or "
        "more CPUs; --no-overlap runs each span's stages one after another in one process",
    )
    add_graph_options(parser)
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars and no table")
    parser.add_argument(
        "--verbose", action="store_true", help="show the functions' logs and metrics on stderr"
    )


def run_state_dir(args: argparse.Namespace, command: str) -> Path:
    return run_folder(Path(args.state_dir), command)


def schedule_interval(text: str) -> timedelta:
    """``--every``: a duration (``5m``, ``1h``) or a bare number of minutes (``5``, ``2.5``)."""
    try:
        minutes = float(text)
    except ValueError:
        try:
            return parse_duration(text, "--every")
        except RuleError as error:
            raise UserError(f"{error}; e.g. --every 5m") from None
    if minutes <= 0:
        raise UserError(f"--every {text}: must be positive, e.g. --every 5m")
    return timedelta(minutes=minutes)


def config_from_args(args: argparse.Namespace, state_dir: Path, mapping: str | None) -> PipelineConfig:
    every = schedule_interval(args.every)
    if args.shards < 1 or args.batch_size < 1:
        raise UserError("--shards and --batch-size must be at least 1")
    override = args.rules_override
    if override is None and StateDir(Path(args.state_dir)).rules_override.is_file():
        override = StateDir(Path(args.state_dir)).rules_override
    if override is not None and not override.is_file():
        raise UserError(f"--rules-override {override}: no such file")
    return PipelineConfig(
        state_dir=state_dir,
        every=every,
        shards=args.shards,
        batch_size=args.batch_size,
        mapping=mapping,
        rules_override=override,
        graph_backend=args.graph,
        graph_endpoint=args.graph_endpoint,
        verbose=args.verbose,
        per_tick=args.per_tick,
        overlap=default_overlap() if args.overlap is None else args.overlap,
    )


def read_labels(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        return load_labels(path)
    except LabelsError as error:
        raise UserError(str(error)) from None


def run(args: argparse.Namespace) -> int:
    mapping = field_mapping_value(args.mapping)
    labels = read_labels(args.labels)
    records = read_jsonl(args.file, ordering_mapping(mapping))
    state_dir = fresh_state_dir(run_state_dir(args, "replay"))
    request = RunRequest(
        config=config_from_args(args, state_dir, mapping),
        out_dir=args.out,
        source={
            "kind": "replay",
            "path": str(args.file),
            "mapping": mapping,
            "labels": str(args.labels) if args.labels else None,
        },
        labels=labels,
        total=len(records),
        progress=not args.quiet,
        print_table=not args.quiet,
    )
    run_to_outputs(request, records)
    if args.quiet:
        print(f"outputs written to {args.out}", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="run recorded transactions (JSON lines, any producer) through the local pipeline",
        description="Put recorded transactions on the emulated stream in event-time order and run the "
        "whole pipeline: ingest, scheduled micro-analysis, investigations. Runs in <state-dir>/replay, "
        "emptied first.",
    )
    parser.add_argument("file", type=Path, help="transactions, one JSON object per line")
    parser.add_argument(
        "--mapping",
        default=None,
        help="field mapping for another producer's records: a shipped name (aws-guidance-sample) or a file "
        "(default: canonical records, or a shipped mapping whose 'require' they meet)",
    )
    parser.add_argument(
        "--labels", type=Path, default=None, help="ground truth (labels.jsonl) for precision and recall"
    )
    add_run_options(parser)
    parser.set_defaults(func=run)
