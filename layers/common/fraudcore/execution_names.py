"""Step Functions execution names: the rule the service enforces, and the names flags get.

StartExecution names are 1-80 characters, none of whitespace, ``< > { } [ ]``, the
wildcards ``? *``, ``" # % \\ ^ | ~ ` $ & , ; : /`` or control characters
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html).
The name of an investigation is its idempotency key, so the names derived here are
stable for a (rule, entity, period).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

from . import pii

MAX_EXECUTION_NAME = 80
_FORBIDDEN_NAME_CHARACTERS = re.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]")
#: what derived names keep of an id: characters that are safe everywhere (logs, ARNs, files)
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
#: appended to the execution name of the investigation that rechecks a closed window
RECHECK_SUFFIX = "-closed"
#: appended to the execution name of the investigation that looks at a hit again later
RELOOK_SUFFIX = "-relook"
#: the counts that name a growing ring's investigations: roughly one step per half again
GROWTH_STEPS = (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)


def count_step_suffix(observed: float) -> str:
    """``-n<step>``: the largest of :data:`GROWTH_STEPS` not above the count (the count
    itself beyond the last step), so a count growing past a step derives a new name."""
    count = int(observed)
    step = max((s for s in GROWTH_STEPS if s <= count), default=count)
    return f"-n{step if count < GROWTH_STEPS[-1] else count}"


#: a name's count step, before its recheck suffix if it has one
_COUNT_STEP = re.compile(rf"-n\d+(?=(?:{re.escape(RECHECK_SUFFIX)})?$)")


def has_count_step(name: str) -> bool:
    """Whether ``name`` carries a count step (:func:`count_step_suffix`)."""
    return _COUNT_STEP.search(name) is not None


def with_count_step(name: str, observed: float) -> str:
    """``name`` with its count step replaced by the step of ``observed``."""
    return _COUNT_STEP.sub(count_step_suffix(observed), name)


def check_execution_name(name: str) -> str:
    """Return ``name`` if Step Functions accepts it as an execution name; else raise ValueError."""
    if not 1 <= len(name) <= MAX_EXECUTION_NAME:
        raise ValueError(f"execution name {name!r} has {len(name)} characters; Step Functions allows 1 to 80")
    bad = _FORBIDDEN_NAME_CHARACTERS.search(name)
    if bad:
        raise ValueError(
            f"execution name {name!r} contains {bad.group()!r}, which Step Functions does not allow"
        )
    return name


def check_safe_execution_name(name: str) -> str:
    """Return ``name`` if it is 1-80 characters of ``[A-Za-z0-9_-]`` (every name derived here
    is), safe as a file name too; else raise ValueError."""
    if not 1 <= len(name) <= MAX_EXECUTION_NAME or _UNSAFE.search(name):
        raise ValueError(f"execution name {name!r}: must be 1-80 characters of letters, digits, '-' and '_'")
    return name


def safe_part(text: str) -> str:
    """``text`` with every run of characters outside ``[A-Za-z0-9_-]`` replaced by ``-``."""
    return _UNSAFE.sub("-", text)


def execution_name(
    rule_id: str,
    entity_type: str,
    entity_id: str,
    period_start: datetime,
    suffix: str = "",
    name_key: bytes | None = None,
) -> str:
    """``<rule>-<entity_type>-<entity>-<YYYYmmddTHHMMSSZ><suffix>``, within Step Functions' rules.

    An entity id with characters outside ``[A-Za-z0-9_-]``, or too long to fit, is shortened
    and followed by a hash of the original id, so distinct ids never share a name. An email,
    phone, card or IP is personal data: the name carries its keyed hash instead
    (:func:`fraudcore.pii.pseudonym`, with ``name_key`` or the configured key).
    """
    if entity_type in pii.PII_ENTITY_TYPES:
        entity_id = pii.pseudonym(entity_id, name_key or configured_name_key())
    stamp = period_start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ") + suffix
    prefix = f"{rule_id}-{entity_type}-"
    room = MAX_EXECUTION_NAME - len(prefix) - len(stamp) - 1
    safe = safe_part(entity_id).strip("-")
    if safe != entity_id or len(safe) > room:
        digest = hashlib.sha256(entity_id.encode()).hexdigest()[:12]
        safe = f"{safe[: max(0, room - len(digest) - 1)]}-{digest}".lstrip("-")
    return f"{prefix}{safe}-{stamp}"


_pinned = threading.local()


@contextlib.contextmanager
def pinned_name_key(key: bytes) -> Iterator[None]:
    """Within the block, names derived on this thread use ``key`` instead of the key the
    environment configures: for code run on behalf of a function on another thread than the
    one whose environment is the function's (a local replay evaluating rules meanwhile)."""
    previous = getattr(_pinned, "key", None)
    _pinned.key = key
    try:
        yield
    finally:
        _pinned.key = previous


def configured_name_key() -> bytes:
    """The name-hash key of this execution environment (``PII_HASH_KEY``, read once), or the
    key pinned on this thread (:func:`pinned_name_key`)."""
    pinned = getattr(_pinned, "key", None)
    if pinned is not None:
        return pinned
    from .settings import Settings

    # the environment as it is now (the local runner switches it between invocations);
    # the key itself is read once per spec or directory
    settings = Settings.from_env()
    return pii.hash_key(settings.pii_hash_key, settings.state_dir)
