"""Personal data out of logs, traces and execution names.

Emails, phone numbers, card identifiers and IP addresses identify people. The stores keep
them (analysts need them; see docs/architecture.md), but nothing a wider audience reads does:

- **logs** (and anything else a person reads in passing) show masked forms:
  ``a***@example.com``, ``****0123`` for a phone or a card, ``100.64.*.*`` for an IPv4
  address; :func:`mask_value` is applied to every log record by the functions' logger;
- **Step Functions execution names** (listed to anyone who may list executions, kept in
  CloudTrail and in the names of log streams) carry a keyed hash of such an identifier
  (:func:`pseudonym`): stable, so a flag is investigated once, and not reversible without
  the key. The key comes from SSM Parameter Store or Secrets Manager on AWS
  (``PII_HASH_KEY=ssm:/name`` or ``secretsmanager:<id>``) and from a file in the state
  directory locally (created on first use).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: entity types whose identifiers are personal data
PII_ENTITY_TYPES = frozenset({"email", "phone", "card", "ip"})
#: record fields holding personal data, by entity type
PII_FIELDS = {"email": "email", "phone": "phone", "card_id": "card", "ip": "ip"}
KEY_FILE = "pii-hash.key"

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_VERTEX = re.compile(r"\b(card|email|phone|ip):([^\s,;'\"\]\)}]+)")
#: E.164-like numbers in free text (a leading +, so dates and counts are left alone)
_PHONE = re.compile(r"(?<![\w.])\+\d[\d\s().-]{6,}\d(?![\w.])")
#: card numbers: 13 to 19 digits that pass the Luhn check
_PAN = re.compile(r"(?<!\d)\d{13,19}(?!\d)")
_IPV4 = re.compile(r"\b(\d{1,3})\.(\d{1,3})\.\d{1,3}\.\d{1,3}\b")
_CARD_TOKEN = re.compile(r"\bcard-[0-9A-Za-z]{4,}")


def mask(entity_type: str, value: str) -> str:
    """The masked form of one identifier of ``entity_type`` (what a person may read in logs)."""
    if entity_type == "email":
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}" if domain else "***"
    if entity_type == "ip":
        match = _IPV4.fullmatch(value)
        return f"{match.group(1)}.{match.group(2)}.*.*" if match else "****"
    if entity_type in ("phone", "card"):
        digits = [c for c in value if c.isalnum()]
        return "****" + "".join(digits[-4:]) if len(digits) > 4 else "****"
    return value


def mask_text(text: str) -> str:
    """``text`` with every email, phone number, card identifier and IPv4 address masked."""
    text = _VERTEX.sub(lambda m: f"{m.group(1)}:{mask(m.group(1), m.group(2))}", text)
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    text = _CARD_TOKEN.sub(lambda m: mask("card", m.group(0)), text)
    text = _IPV4.sub(lambda m: f"{m.group(1)}.{m.group(2)}.*.*", text)
    text = _PHONE.sub(lambda m: mask("phone", m.group(0)), text)
    return _PAN.sub(lambda m: mask("card", m.group(0)) if _luhn(m.group(0)) else m.group(0), text)


def _luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def mask_value(value: Any, field: str | None = None) -> Any:
    """A copy of a log value (dicts, lists, text) with personal data masked."""
    if isinstance(value, str):
        if field in PII_FIELDS:
            return mask(PII_FIELDS[field], value)
        return mask_text(value)
    if isinstance(value, Mapping):
        masked = {key: mask_value(item, str(key)) for key, item in value.items()}
        entity_type = value.get("entity_type")
        if entity_type in PII_ENTITY_TYPES and isinstance(value.get("entity_id"), str):
            masked["entity_id"] = mask(str(entity_type), value["entity_id"])
        return masked
    if isinstance(value, list | tuple | set | frozenset):
        return [mask_value(item, field) for item in value]
    return value


# -- keyed hashes for names ------------------------------------------------------------------

_key_lock = threading.Lock()
_keys: dict[str, bytes] = {}


def _key_from_aws(spec: str) -> bytes:
    import boto3  # on AWS only: boto3 comes with the Lambda runtime

    if spec.startswith("ssm:"):
        response = boto3.client("ssm").get_parameter(Name=spec[4:], WithDecryption=True)
        return response["Parameter"]["Value"].encode()
    response = boto3.client("secretsmanager").get_secret_value(SecretId=spec.removeprefix("secretsmanager:"))
    return str(response["SecretString"]).encode()


def _key_from_state_dir(state_dir: Path) -> bytes:
    path = state_dir / KEY_FILE
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        candidate = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
        candidate.write_text(secrets.token_hex(32))
        candidate.chmod(0o600)
        try:
            candidate.rename(path) if not path.exists() else candidate.unlink()
        except OSError:
            candidate.unlink(missing_ok=True)
    return path.read_text().strip().encode()


def hash_key(spec: str = "", state_dir: Path | str = ".fraudlocal") -> bytes:
    """The key of :func:`pseudonym`, read once per execution environment."""
    cache_key = spec or f"file:{Path(state_dir).resolve()}"
    with _key_lock:
        if cache_key not in _keys:
            if spec.startswith(("ssm:", "secretsmanager:")):
                key = _key_from_aws(spec)
            else:
                key = _key_from_state_dir(Path(state_dir))
            if len(key) < 16:
                raise ValueError(f"PII_HASH_KEY {spec or cache_key}: the key must have at least 16 bytes")
            _keys[cache_key] = key
        return _keys[cache_key]


def pseudonym(value: str, key: bytes) -> str:
    """A keyed hash of an identifier: 20 hex characters, stable for one key."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:20]
