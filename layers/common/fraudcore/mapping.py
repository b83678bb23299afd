"""Field mappings: turn another producer's payload into a canonical transaction.

A mapping is a small YAML or JSON document::

    name: my-producer
    require: {object_type: transaction}      # fields that must have these values
    rename: {acct: account_id, amt: amount}   # source field -> canonical field
    numbers: [amount]                         # coerce text to numbers
    time: {field: timestamp, format: "%d/%m/%Y %H:%M:%S", timezone: UTC}
                                              # format: a strftime pattern, iso8601, epoch_s or epoch_ms
    defaults: {currency: EUR}                 # values for absent fields
    transaction_id: {derive_from: record}     # or a list of canonical fields
    keep_unmapped: false                      # pass through fields that already have canonical names

Shipped mappings live in ``fraudcore/mappings/<name>.yaml`` and are named by ``name``;
anything else is a path.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from .limits import quote
from .model import InvalidRecord, Transaction

SHIPPED_DIR = Path(__file__).parent / "mappings"
TIME_FORMATS = ("iso8601", "epoch_s", "epoch_ms")
CANONICAL_FIELDS = tuple(Transaction.model_fields)


class MappingError(ValueError):
    """The mapping document itself is wrong (not a record): fix the file."""


def derive_transaction_id(source: dict[str, Any], fields_: list[str] | None = None) -> str:
    """A stable id: the same record (or the same chosen fields) always gives the same id."""
    basis = source if fields_ is None else {name: source.get(name) for name in fields_}
    digest = hashlib.sha256(json.dumps(basis, sort_keys=True, default=str).encode()).hexdigest()
    return f"tx-{digest[:32]}"


@dataclass(frozen=True)
class FieldMapping:
    name: str
    rename: dict[str, str] = field(default_factory=dict)
    require: dict[str, Any] = field(default_factory=dict)
    numbers: tuple[str, ...] = ()
    time_field: str = "timestamp"
    time_format: str = "iso8601"
    time_zone: str = "UTC"
    defaults: dict[str, Any] = field(default_factory=dict)
    id_from: tuple[str, ...] | None = None  # None: the whole original record
    keep_unmapped: bool = False
    description: str = ""

    @classmethod
    def from_dict(cls, doc: dict[str, Any], origin: str = "mapping") -> FieldMapping:
        if not isinstance(doc, dict):
            raise MappingError(f"{origin}: a mapping must be an object")
        known = {
            "name",
            "description",
            "rename",
            "require",
            "numbers",
            "time",
            "defaults",
            "transaction_id",
            "keep_unmapped",
        }
        unknown = set(doc) - known
        if unknown:
            raise MappingError(f"{origin}: unknown keys {sorted(unknown)}; allowed: {sorted(known)}")
        rename = dict(doc.get("rename") or {})
        for source, target in rename.items():
            if target not in CANONICAL_FIELDS:
                raise MappingError(
                    f"{origin}: rename {source!r} -> {target!r}: {target!r} is not a canonical field "
                    f"({', '.join(CANONICAL_FIELDS)})"
                )
        time = doc.get("time") or {}
        time_format = str(time.get("format", "iso8601"))
        if time_format not in TIME_FORMATS and "%" not in time_format:
            raise MappingError(
                f"{origin}: time.format {time_format!r}: expected a strftime pattern or one of {TIME_FORMATS}"
            )
        zone = str(time.get("timezone", "UTC"))
        try:
            ZoneInfo(zone)
        except Exception:
            raise MappingError(f"{origin}: time.timezone {zone!r} is not a known time zone") from None
        id_spec = doc.get("transaction_id") or {"derive_from": "record"}
        derive = id_spec.get("derive_from", "record")
        id_from = None if derive == "record" else tuple(derive)
        return cls(
            name=str(doc.get("name") or origin),
            description=str(doc.get("description", "")),
            rename=rename,
            require=dict(doc.get("require") or {}),
            numbers=tuple(doc.get("numbers") or ()),
            time_field=str(time.get("field", "timestamp")),
            time_format=time_format,
            time_zone=zone,
            defaults=dict(doc.get("defaults") or {}),
            id_from=id_from,
            keep_unmapped=bool(doc.get("keep_unmapped", False)),
        )

    @classmethod
    def load(cls, name_or_path: str | Path) -> FieldMapping:
        path = Path(name_or_path)
        if not path.exists():
            shipped = SHIPPED_DIR / f"{name_or_path}.yaml"
            if not shipped.exists():
                names = sorted(p.stem for p in SHIPPED_DIR.glob("*.yaml"))
                raise MappingError(
                    f"mapping {str(name_or_path)!r}: no such file, and no shipped mapping "
                    f"of that name (shipped: {', '.join(names)})"
                )
            path = shipped
        try:
            doc = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            raise MappingError(f"{path}: not valid YAML/JSON: {error}") from None
        return cls.from_dict(doc, origin=str(path))

    def _parse_time(self, value: Any) -> Any:
        if value is None:
            return None
        fmt = self.time_format
        try:
            if fmt == "iso8601":
                return value
            if fmt in ("epoch_s", "epoch_ms"):
                number = float(value)
                seconds = number if fmt == "epoch_s" else number / 1000.0
                return datetime.fromtimestamp(seconds, tz=UTC)
            moment = datetime.strptime(str(value).strip(), fmt)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=ZoneInfo(self.time_zone))
            return moment.astimezone(UTC)
        except (TypeError, ValueError, OverflowError, OSError):
            raise InvalidRecord(
                f"{self.time_field}: {quote(value)} does not match the time format {fmt!r} of mapping "
                f"{self.name!r}, or is outside the range of representable times"
            ) from None

    def apply(self, record: Any) -> dict[str, Any]:
        """The canonical payload for one producer record (validation happens after)."""
        if not isinstance(record, dict):
            raise InvalidRecord(f"record must be a JSON object, got {type(record).__name__}")
        for key, expected in self.require.items():
            if record.get(key) != expected:
                raise InvalidRecord(
                    f"{key}: expected {expected!r} for mapping {self.name!r}, got {record.get(key)!r}"
                )
        out: dict[str, Any] = {}
        if self.keep_unmapped:
            out.update({k: v for k, v in record.items() if k in CANONICAL_FIELDS})
        for source, target in self.rename.items():
            if source in record:
                out[target] = record[source]
        for name in self.numbers:
            value = out.get(name)
            if isinstance(value, str):
                try:
                    out[name] = float(value.replace(",", "").strip())
                except ValueError:
                    raise InvalidRecord(f"{name}: {quote(value)} is not a number") from None
        if self.time_field in out:
            out[self.time_field] = self._parse_time(out[self.time_field])
        for name, value in self.defaults.items():
            if out.get(name) in (None, ""):
                out[name] = value
        if not out.get("transaction_id"):
            if self.id_from is None:
                out["transaction_id"] = derive_transaction_id(record)
            else:
                out["transaction_id"] = derive_transaction_id(out, list(self.id_from))
        return out


class AutoMapping:
    """Canonical records pass as they are; others take the shipped mapping whose ``require`` they meet.

    This is the default (``FIELD_MAPPING=auto``), so the AWS guidance's sample producer and
    canonical producers can share a stream. Name a mapping to accept only its shape.
    """

    name = "auto"

    def __init__(self, mappings: list[FieldMapping]):
        self.mappings = [m for m in mappings if m.require]

    def apply(self, record: Any) -> Any:
        if not isinstance(record, dict) or "account_id" in record:
            return record
        for mapping in self.mappings:
            if all(record.get(k) == v for k, v in mapping.require.items()):
                return mapping.apply(record)
        return record


@lru_cache(maxsize=16)
def load_mapping(name_or_path: str | None) -> FieldMapping | AutoMapping | None:
    """The configured mapping (read once per process); None or "" for canonical input only."""
    if not name_or_path:
        return None
    if name_or_path == "auto":
        return AutoMapping([FieldMapping.load(p) for p in sorted(SHIPPED_DIR.glob("*.yaml"))])
    return FieldMapping.load(name_or_path)
