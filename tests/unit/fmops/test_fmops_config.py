"""Settings: read from the environment, loud when something is missing."""

from __future__ import annotations

import pytest

from fmops.config import CommonSettings, IngestSettings, PlanTrainingSettings
from fmops.errors import ConfigurationError


def test_settings_read_every_variable(env: dict[str, str]) -> None:
    settings = PlanTrainingSettings.from_env()
    assert settings.runs_table == "fmops-runs"
    assert settings.subnet_ids == ("subnet-0a", "subnet-0b")
    assert settings.training_security_group_id == "sg-0training"


def test_a_missing_variable_fails_with_its_name() -> None:
    environ = {"RUNS_TABLE": "t"}
    with pytest.raises(ConfigurationError, match="APPROVALS_TABLE") as caught:
        CommonSettings.from_env(environ)
    assert "REPORTS_BUCKET" in str(caught.value)


def test_an_empty_variable_counts_as_missing(env: dict[str, str]) -> None:
    environ = {**env, "KMS_KEY_ARN": "  "}
    with pytest.raises(ConfigurationError, match="KMS_KEY_ARN"):
        CommonSettings.from_env(environ)


def test_dataset_prefix_gets_its_slash(env: dict[str, str]) -> None:
    assert IngestSettings.from_env({**env, "DATASET_PREFIX": "datasets"}).dataset_prefix == "datasets/"


def test_an_empty_subnet_list_is_invalid(env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="SUBNET_IDS"):
        PlanTrainingSettings.from_env({**env, "SUBNET_IDS": " , "})
