"""A name key pinned on a thread names that thread's flags, whatever the environment says."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fraudcore.execution_names import configured_name_key, execution_name, pinned_name_key

PERIOD = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def test_a_pinned_key_names_this_threads_flags_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PII_HASH_KEY", raising=False)
    monkeypatch.setenv("FRAUD_STATE_DIR", str(tmp_path / "configured"))
    configured = configured_name_key()
    pinned = b"k" * 32
    assert pinned != configured
    by_environment = execution_name("shared_email", "email", "a@example.com", PERIOD)
    elsewhere: list[bytes] = []
    with pinned_name_key(pinned):
        assert configured_name_key() == pinned
        # the environment may change meanwhile (another thread invoking a function): no matter
        monkeypatch.setenv("FRAUD_STATE_DIR", str(tmp_path / "another"))
        named = execution_name("shared_email", "email", "a@example.com", PERIOD)
        other = threading.Thread(target=lambda: elsewhere.append(configured_name_key()))
        other.start()
        other.join()
    assert named != by_environment
    assert named == execution_name("shared_email", "email", "a@example.com", PERIOD, name_key=pinned)
    assert elsewhere == [configured_name_key()] and elsewhere[0] != pinned  # the other thread: its env
    monkeypatch.setenv("FRAUD_STATE_DIR", str(tmp_path / "configured"))
    assert configured_name_key() == configured  # unpinned again
