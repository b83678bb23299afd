"""Settings read from the environment: errors name the variable; "" is unset for numbers and choices."""

from __future__ import annotations

import pytest

from fraudcore.settings import ConfigurationError, Settings


def test_an_empty_number_or_choice_takes_the_default() -> None:
    # `sam local invoke` gives "" for an environment value the template computes with !If
    settings = Settings.from_env({"TIMESTREAM_MEMORY_RETENTION_HOURS": "", "MAX_INVESTIGATIONS_PER_RUN": " "})
    assert settings.timestream_memory_retention_hours == 24
    assert settings.max_investigations_per_run == 200


def test_an_empty_text_setting_stays_empty() -> None:
    assert Settings.from_env({"RULES_OVERRIDE": ""}).rules_override == ""


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"TIMESTREAM_MEMORY_RETENTION_HOURS": "a day"},
            "TIMESTREAM_MEMORY_RETENTION_HOURS='a day': expected a whole number",
        ),
        ({"MAX_INVESTIGATIONS_PER_RUN": "-1"}, "MAX_INVESTIGATIONS_PER_RUN='-1': must be at least 0"),
    ],
)
def test_a_bad_value_is_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as error:
        Settings.from_env(env)
    assert str(error.value) == message
