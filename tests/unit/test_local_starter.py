"""The local investigation starter: a name is started once, and a duplicate is cheap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fraudcore.aws_adapters import EXECUTION_INPUT_MAX_BYTES, InvestigationStartError
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


def test_an_input_over_the_start_execution_quota_is_refused_as_step_functions_refuses_it(
    tmp_path: Path,
) -> None:
    starter = LocalInvestigationStarter(tmp_path)
    envelope = len('{"evidence":""}')
    room = EXECUTION_INPUT_MAX_BYTES - envelope
    at_quota = {"evidence": "é" * (room // 2) + "x" * (room % 2)}  # é: 2 bytes in UTF-8
    assert (
        len(json.dumps(at_quota, ensure_ascii=False, separators=(",", ":")).encode())
        == EXECUTION_INPUT_MAX_BYTES
    )
    over = {"evidence": at_quota["evidence"] + "x"}
    with pytest.raises(
        InvestigationStartError, match=r"ValidationException: .*262144 \(the input has 262145 bytes"
    ):
        starter.start("velocity-account-c-1", over)
    assert starter.pending_names() == []
    # a refused start does not use the name up
    assert starter.start("velocity-account-c-1", at_quota) is True
    assert starter.pending_names() == ["velocity-account-c-1"]


def test_an_input_that_is_not_json_is_refused_as_the_aws_starter_refuses_it(tmp_path: Path) -> None:
    starter = LocalInvestigationStarter(tmp_path)
    with pytest.raises(ValueError, match="JSON compliant"):
        starter.start("velocity-account-d-1", {"observed": float("nan")})
    assert starter.pending_names() == []
