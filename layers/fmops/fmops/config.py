"""Settings read from the environment once per handler (each handler caches its settings at first call).

A missing or empty variable fails loudly with its name; nothing falls back to a placeholder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fmops.errors import ConfigurationError


class _EnvSettings(BaseModel):
    """Base: each field is read from the environment variable of the same name in upper case."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Build the settings from ``environ`` (default ``os.environ``).

        Raises:
            ConfigurationError: a required variable is missing or empty, or a value is invalid.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        missing: list[str] = []
        for name, field in cls.model_fields.items():
            var = name.upper()
            raw = env.get(var, "").strip()
            if raw:
                values[name] = raw
            elif field.is_required():
                missing.append(var)
        if missing:
            raise ConfigurationError(f"missing environment variable(s): {', '.join(missing)}")
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            var = str(first["loc"][0]).upper() if first["loc"] else "?"
            raise ConfigurationError(f"invalid environment variable {var}: {first['msg']}") from exc


class CommonSettings(_EnvSettings):
    """Environment shared by every function (CONTRACTS.md)."""

    runs_table: str
    approvals_table: str
    notification_topic_arn: str
    datasets_bucket: str
    artifacts_bucket: str
    reports_bucket: str
    kms_key_arn: str
    stack_name: str


class IngestSettings(CommonSettings):
    """IngestFunction."""

    finetune_state_machine_arn: str
    dataset_prefix: str

    @field_validator("dataset_prefix")
    @classmethod
    def _slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"


class PlanDatasetSettings(CommonSettings):
    """PlanDatasetFunction: files above this size are validated in byte-range shards."""

    data_shard_bytes: int = Field(ge=1024)


class _NetworkSettings(CommonSettings):
    subnet_ids: tuple[str, ...] = Field(min_length=1)
    training_security_group_id: str

    @field_validator("subnet_ids", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value


class PlanTrainingSettings(_NetworkSettings):
    """PlanTrainingFunction.

    ``training_image_uri``: an image URI, or ``auto`` / ``auto:<framework version>`` for the AWS Hugging Face
    PyTorch training image of the region (``fmops.lifecycle.training.HF_TRAINING_IMAGES``). ``aws_region``: set by
    Lambda (``AWS_REGION``); without it the region of ``kms_key_arn``. ``stage_name``: the stack's stage, tagged
    on training jobs and custom models for cost allocation.
    """

    sagemaker_role_arn: str
    bedrock_role_arn: str
    training_image_uri: str
    aws_region: str | None = None
    stage_name: str | None = None

    @property
    def region(self) -> str:
        """``aws_region``, else the region of the stack's KMS key ARN, else us-east-1."""
        if self.aws_region:
            return self.aws_region
        parts = self.kms_key_arn.split(":")
        return parts[3] if len(parts) > 3 and parts[0] == "arn" and parts[3] else "us-east-1"


class PlanEvaluationSettings(_NetworkSettings):
    """PlanEvaluationFunction."""

    sagemaker_role_arn: str
    processing_image_uri: str


class RegisterModelSettings(CommonSettings):
    """RegisterModelFunction."""

    inference_image_uri: str


class RequestApprovalSettings(CommonSettings):
    """RequestApprovalFunction."""

    api_url: str


class DeployModelSettings(_NetworkSettings):
    """DeployModelFunction."""

    sagemaker_role_arn: str
