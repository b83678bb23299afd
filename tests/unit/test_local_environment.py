"""The environment the local runner gives a function: set for the call, undone exactly after it,
with the settings of the environment in place."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from fraudcore.settings import get_settings, reset_settings_cache
from fraudlocal.emulators.runtime import patched_environment

FUNCTION_ENV = {"GRAPH_WRITE_BATCH": "9", "MAX_INVESTIGATIONS_PER_RUN": "3"}


@pytest.fixture
def process_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("GRAPH_WRITE_BATCH", "7")
    monkeypatch.delenv("MAX_INVESTIGATIONS_PER_RUN", raising=False)
    monkeypatch.delenv("FRAUD_TEST_ADDED", raising=False)
    reset_settings_cache()
    yield
    reset_settings_cache()


def test_each_call_sees_its_environment_and_its_settings(process_env: None) -> None:
    before = dict(os.environ)
    assert get_settings().graph_write_batch == 7
    for _ in range(3):  # after the first call, from the settings kept for that environment
        with patched_environment(FUNCTION_ENV):
            assert os.environ["GRAPH_WRITE_BATCH"] == "9"
            settings = get_settings()
            assert (settings.graph_write_batch, settings.max_investigations_per_run) == (9, 3)
        assert dict(os.environ) == before
        assert (get_settings().graph_write_batch, get_settings().max_investigations_per_run) == (7, 200)
    with patched_environment({**FUNCTION_ENV, "GRAPH_WRITE_BATCH": "10"}):  # another environment
        assert get_settings().graph_write_batch == 10


def test_what_the_code_inside_changes_is_undone_and_not_kept(process_env: None) -> None:
    before = dict(os.environ)
    with patched_environment(FUNCTION_ENV):
        os.environ["FRAUD_TEST_ADDED"] = "x"
        del os.environ["MAX_INVESTIGATIONS_PER_RUN"]
        os.environ["GRAPH_WRITE_BATCH"] = "11"
        reset_settings_cache()
        assert get_settings().graph_write_batch == 11
    assert dict(os.environ) == before
    assert get_settings().graph_write_batch == 7
    with patched_environment(FUNCTION_ENV):  # the settings read in the changed one are not this one's
        assert get_settings().graph_write_batch == 9


def test_nested_environments_restore_each_level(process_env: None) -> None:
    before = dict(os.environ)
    with patched_environment({"MAX_INVESTIGATIONS_PER_RUN": "5"}):
        assert get_settings().max_investigations_per_run == 5
        with patched_environment(FUNCTION_ENV):
            assert get_settings().max_investigations_per_run == 3
        assert os.environ["MAX_INVESTIGATIONS_PER_RUN"] == "5"
        assert get_settings().max_investigations_per_run == 5
    assert dict(os.environ) == before
