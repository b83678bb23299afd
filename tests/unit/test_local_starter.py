"""The local investigation starter: a name is started once, and a duplicate is cheap."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudlocal.adapters.starter_local import LocalInvestigationStarter


def test_a_name_is_started_once_and_its_duplicates_are_not_looked_up_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    starter = LocalInvestigationStarter(tmp_path)
    assert starter.start("velocity-account-a-1", {"rule": "velocity"}) is True
    assert starter.start("velocity-account-a-1", {"rule": "velocity"}) is False
    assert starter.pending_names() == ["velocity-account-a-1"]
    looked_up: list[str] = []
    monkeypatch.setattr(starter, "_exists", lambda name: looked_up.append(name) or False)
    for _ in range(3):
        assert starter.start("velocity-account-a-1", {"rule": "velocity"}) is False
    assert looked_up == []


def test_a_name_another_starter_used_is_a_duplicate(tmp_path: Path) -> None:
    LocalInvestigationStarter(tmp_path).start("shared_card-card-x-2", {"rule": "shared_card"})
    starter = LocalInvestigationStarter(tmp_path)
    assert starter.start("shared_card-card-x-2", {"rule": "shared_card"}) is False
    assert starter.start("shared_card-card-y-2", {"rule": "shared_card"}) is True


def test_a_start_that_failed_is_not_taken_for_a_used_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    starter = LocalInvestigationStarter(tmp_path)

    def refused(*_: object) -> None:
        raise PermissionError("read-only queue")

    monkeypatch.setattr("os.link", refused)
    with pytest.raises(PermissionError):
        starter.start("velocity-account-b-1", {"rule": "velocity"})
    monkeypatch.undo()
    assert starter.start("velocity-account-b-1", {"rule": "velocity"}) is True
