"""Mistakes a user makes on the command line: one line on stderr that says what to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fraudlocal.cli import main


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    return err


def test_an_empty_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert main(["--state-dir", str(tmp_path / "s"), "replay", str(empty), "--quiet"]) == 2
    assert "holds no records; give transactions as JSON lines" in one_line(capsys)


def test_a_json_array_gets_the_json_lines_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    array = tmp_path / "tx.json"
    array.write_text(json.dumps([{"transaction_id": "t1"}], indent=2))
    assert main(["--state-dir", str(tmp_path / "s"), "replay", str(array), "--quiet"]) == 2
    assert "is a JSON array; give one JSON object per line (JSON lines)" in one_line(capsys)
    labels = tmp_path / "labels.json"
    labels.write_text("[]")
    data = tmp_path / "tx.jsonl"
    data.write_text(
        json.dumps(
            {"transaction_id": "t", "timestamp": "2026-11-01T00:00:00Z", "account_id": "a", "amount": 1}
        )
        + "\n"
    )
    assert main(["backtest", "--data", str(data), "--labels", str(labels)]) == 2
    assert "JSON array; give one JSON object per line" in one_line(capsys)


@pytest.mark.parametrize(("every", "message"), [("5x", "is not a duration"), ("-5", "must be positive")])
def test_every_takes_durations_as_backtest_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], every: str, message: str
) -> None:
    data = tmp_path / "tx.jsonl"
    data.write_text(
        json.dumps(
            {"transaction_id": "t", "timestamp": "2026-11-01T00:00:00Z", "account_id": "a", "amount": 1}
        )
        + "\n"
    )
    assert main(["--state-dir", str(tmp_path / "s"), "replay", str(data), "--quiet", "--every", every]) == 2
    assert message in one_line(capsys)


def test_an_unknown_entity_fails_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "tx.jsonl"
    data.write_text(
        json.dumps(
            {"transaction_id": "t", "timestamp": "2026-11-01T00:00:00Z", "account_id": "a", "amount": 1}
        )
        + "\n"
    )
    state = tmp_path / "s"
    assert main(["--state-dir", str(state), "replay", str(data), "--quiet", "--every", "15m"]) == 0
    capsys.readouterr()
    assert main(["--state-dir", str(state), "investigate", "account:nobody"]) == 2
    err = one_line(capsys)
    assert "account:nobody is not in the graph" in err and "check the id" in err
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"entity_type": "account", "entity_id": "nobody"}))
    assert main(["--state-dir", str(state), "invoke", "FlagEntityFunction", "--event", str(event)]) == 2
    assert "FlagEntityFunction failed: EntityNotFound: account 'nobody' is not in the graph" in one_line(
        capsys
    )
