"""The run request (state machine input) and the optional use-case config file."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator

from fmops.schemas.base import FmopsModel, StrictModel

USE_CASE_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,22}[a-z0-9])?$"
RUN_ID_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$"
DEFAULT_BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_HYPERPARAMETERS = {"epochs": "1", "learning_rate": "5e-5", "batch_size": "32", "max_length": "32"}
_HP_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _coerce_hyperparameters(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    out: dict[Any, Any] = {}
    for key, item in value.items():
        if isinstance(item, bool):
            out[key] = "true" if item else "false"
        elif isinstance(item, int | float):
            out[key] = str(item)
        else:
            out[key] = item
    return out


def _check_hyperparameters(value: dict[str, str]) -> dict[str, str]:
    for key, item in value.items():
        if not _HP_KEY.match(key):
            raise ValueError(f"hyperparameter name {key!r} must match [A-Za-z0-9_.-]{{1,64}}")
        if key.startswith("sagemaker_"):
            raise ValueError(f"hyperparameter {key!r} is reserved (set by fmops)")
        if len(item) > 2500:
            raise ValueError(f"hyperparameter {key!r} is longer than 2500 characters")
    return value


UseCase = Annotated[str, Field(pattern=USE_CASE_PATTERN)]
RunId = Annotated[str, Field(pattern=RUN_ID_PATTERN)]
Backend = Literal["sagemaker", "bedrock"]
Task = Literal["classification"]
MetricName = Literal["accuracy", "f1_macro"]
InstanceType = Annotated[str, Field(pattern=r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")]
Hyperparameters = Annotated[
    dict[str, str], BeforeValidator(_coerce_hyperparameters), AfterValidator(_check_hyperparameters)
]
Threshold = Annotated[float, Field(ge=0.0, le=1.0)]
ApprovalTimeout = Annotated[int, Field(ge=5, le=7 * 24 * 3600)]
PollSeconds = Annotated[int, Field(ge=1, le=300)]
InstanceCount = Annotated[int, Field(ge=1, le=64)]
BaseModelId = Annotated[str, Field(min_length=1, max_length=2048)]
VolumeSize = Annotated[int, Field(ge=1, le=16384)]
MaxRuntime = Annotated[int, Field(ge=60, le=28 * 24 * 3600)]
MaxWait = Annotated[int, Field(ge=60, le=28 * 24 * 3600)]


class DatasetRef(StrictModel):
    """The uploaded data set object."""

    bucket: str = Field(min_length=3, max_length=63)
    key: str = Field(min_length=1, max_length=1024)
    version_id: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class SplitConfig(StrictModel):
    """Train/validation/test ratios (each >= 0, summing to 1; train and test > 0) and the shuffle seed."""

    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = Field(default=42, ge=0, le=2**32 - 1)
    # Files larger than this are validated in parallel byte-range shards (a Distributed Map); None: the
    # stack's default (the DataShardBytes parameter).
    shard_bytes: int | None = Field(default=None, ge=1024)

    @field_validator("ratios")
    @classmethod
    def _check_ratios(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(r < 0 or not math.isfinite(r) for r in value):
            raise ValueError(f"each ratio must be >= 0 (got {list(value)})")
        if not math.isclose(sum(value), 1.0, abs_tol=1e-6):
            raise ValueError(f"ratios must sum to 1 (got {sum(value):g})")
        if value[0] <= 0 or value[2] <= 0:
            raise ValueError(f"the train and test ratios must be > 0 (got {list(value)})")
        return value


class RunOptions(StrictModel):
    """Everything a run can be configured with (defaults here; overridden by fmops.json, then the request)."""

    backend: Backend = "sagemaker"
    task: Task = "classification"
    base_model: BaseModelId = DEFAULT_BASE_MODEL
    hyperparameters: Hyperparameters = Field(default_factory=lambda: dict(DEFAULT_HYPERPARAMETERS))
    instance_type: InstanceType = "ml.g5.xlarge"
    instance_count: InstanceCount = 1
    volume_size_gb: VolumeSize = 30
    max_runtime_seconds: MaxRuntime = 24 * 3600
    # SageMaker managed spot training: billed at the spot price; the job may wait for capacity and be interrupted
    # (SageMaker restarts it; /opt/ml/checkpoints is synced to S3). max_wait_seconds bounds waiting plus running
    # (>= max_runtime_seconds; None: twice max_runtime_seconds, at most 28 days) and is ignored unless spot is on.
    # The Bedrock backend ignores both.
    spot: bool = False
    max_wait_seconds: MaxWait | None = None
    evaluation_instance_type: InstanceType = "ml.m5.xlarge"
    inference_instance_type: InstanceType = "ml.m5.xlarge"
    inference_instance_count: InstanceCount = 1
    metric: MetricName = "accuracy"
    threshold: Threshold = 0.8
    split: SplitConfig = Field(default_factory=SplitConfig)
    approval_timeout_seconds: ApprovalTimeout = 24 * 3600
    poll_seconds: PollSeconds = 30

    @field_validator("max_wait_seconds")
    @classmethod
    def _wait_covers_runtime(cls, value: int | None, info: ValidationInfo) -> int | None:
        runtime = info.data.get("max_runtime_seconds")
        if value is not None and isinstance(runtime, int) and value < runtime:
            raise ValueError(
                f"must be >= max_runtime_seconds ({runtime}): it bounds waiting for spot capacity plus running"
            )
        return value


class RunRequest(RunOptions):
    """The state machine input (CONTRACTS.md); the execution name is ``run_id``."""

    run_id: RunId
    use_case: UseCase
    dataset: DatasetRef


class UseCaseConfig(StrictModel):
    """``datasets/<use_case>/fmops.json``: the same options as RunRequest, all optional."""

    backend: Backend | None = None
    task: Task | None = None
    base_model: BaseModelId | None = None
    hyperparameters: Hyperparameters | None = None
    instance_type: InstanceType | None = None
    instance_count: InstanceCount | None = None
    volume_size_gb: VolumeSize | None = None
    max_runtime_seconds: MaxRuntime | None = None
    spot: bool | None = None
    max_wait_seconds: MaxWait | None = None
    evaluation_instance_type: InstanceType | None = None
    inference_instance_type: InstanceType | None = None
    inference_instance_count: InstanceCount | None = None
    metric: MetricName | None = None
    threshold: Threshold | None = None
    split: SplitConfig | None = None
    approval_timeout_seconds: ApprovalTimeout | None = None
    poll_seconds: PollSeconds | None = None

    def options(self) -> dict[str, Any]:
        """The options that the file sets (JSON-compatible)."""
        return self.model_dump(mode="json", exclude_none=True)


class RunRef(FmopsModel):
    """The few fields of a run that the failure handler can rely on (the request may be malformed)."""

    run_id: str | None = None
    use_case: str | None = None
