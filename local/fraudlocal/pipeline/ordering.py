"""The pipeline's input: producer records, put on the stream in event-time order."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fraudcore.limits import parse_json_record
from fraudcore.mapping import FieldMapping, MappingError, load_mapping
from fraudcore.model import parse_transaction

from ..errors import UserError


@dataclass(frozen=True)
class StreamInput:
    """One record for the stream: the bytes as a producer sent them, and what orders it."""

    data: bytes
    partition_key: str
    event_time: datetime | None  # None when the record cannot be read (it will be rejected)


def ordering_mapping(name: str | None) -> Any:
    """The mapping the driver applies to order records (the functions apply it again)."""
    try:
        return load_mapping(name if name is not None else "auto")
    except MappingError as error:
        raise UserError(str(error)) from None


def describe(data: bytes, mapping: Any) -> tuple[str | None, datetime | None]:
    """The account id and event time of a producer record, or None where it cannot be read."""
    try:
        payload = parse_json_record(data.decode("utf-8"))
        canonical = mapping.apply(payload) if mapping is not None else payload
        transaction = parse_transaction(canonical)
    except Exception:  # any record that cannot be read is rejected by the functions, with the reason
        return None, None
    return transaction.account_id, transaction.timestamp


def order_records(items: Iterable[tuple[bytes, str | None]], mapping: Any) -> list[StreamInput]:
    """Records in event-time order: ``(data, partition key or None for the account id)``.

    The sort is stable, and a record whose time cannot be read keeps its place after the
    record before it (it will be rejected by the ingest functions, with the reason).
    """
    keyed: list[tuple[datetime, int, StreamInput]] = []
    previous = datetime.min.replace(tzinfo=UTC)
    for position, (raw, partition_key) in enumerate(items):
        data = raw.strip()
        if not data:
            continue
        account_id, moment = describe(data, mapping)
        key = partition_key or account_id or f"unreadable-{position}"
        previous = moment or previous
        keyed.append((previous, position, StreamInput(data=data, partition_key=key, event_time=moment)))
    keyed.sort(key=lambda item: (item[0], item[1]))
    return [record for _, _, record in keyed]


def read_jsonl(path: Path, mapping: Any) -> list[StreamInput]:
    if not path.is_file():
        raise UserError(f"{path}: no such file (expected transactions as JSON lines)")
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip()
        if head.startswith(b"["):
            raise UserError(
                f"{path} is a JSON array; give one JSON object per line (JSON lines), "
                f"e.g. jq -c '.[]' {path} > transactions.jsonl"
            )
        handle.seek(0)
        records = order_records(((line, None) for line in handle), mapping)
    if not records:
        raise UserError(f"{path} holds no records; give transactions as JSON lines, one object per line")
    return records


def field_mapping_value(mapping: str | None) -> str | None:
    """Check a ``--mapping`` early (a shipped name or a file) so a typo fails before any work."""
    if mapping is None:
        return None
    try:
        FieldMapping.load(mapping)
    except MappingError as error:
        raise UserError(str(error)) from None
    path = Path(mapping)
    return str(path.resolve()) if path.exists() else mapping
