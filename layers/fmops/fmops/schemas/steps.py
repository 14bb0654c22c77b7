"""What each state of the fine-tune workflow receives and returns (see statemachines/finetune.asl.json).

Every step output is small: S3 URIs and summary numbers, never data.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from fmops.schemas.base import FmopsModel
from fmops.schemas.run import Backend, MetricName, RunRequest

# ----------------------------------------------------------------------------------------------- outputs


class SplitCounts(FmopsModel):
    """Records per split."""

    train: int
    validation: int
    test: int


class DatasetInfo(FmopsModel):
    """Output of "Validate and split dataset" ($.dataset)."""

    source_uri: str
    version_id: str | None = None
    sha256: str
    prepared_prefix: str
    manifest_uri: str
    train_uri: str
    validation_uri: str
    test_uri: str
    counts: SplitCounts
    labels: list[str]
    bedrock_train_uri: str | None = None
    bedrock_validation_uri: str | None = None


class TrainingSpec(FmopsModel):
    """Output of "Plan training" ($.training_spec): the request of exactly one backend."""

    backend: Backend
    job_name: str
    sagemaker: dict[str, Any] | None = None
    bedrock: dict[str, Any] | None = None


class TrainingResult(FmopsModel):
    """$.training, selected by the ASL from DescribeTrainingJob / GetModelCustomizationJob."""

    backend: Backend
    job_name: str
    job_arn: str
    status: str | None = None
    model_artifacts_uri: str | None = None
    custom_model_arn: str | None = None
    output_uri: str | None = None


class EvaluationSpec(FmopsModel):
    """Output of "Plan evaluation" ($.evaluation_spec).

    ``champion_arn``: the Approved model package evaluated beside the fine-tuned model on the same test split
    (its artifact is the processing input ``champion``); None when there is none, with ``champion_note`` saying
    why (none approved yet, a Bedrock champion without an artifact, the lookup was refused).
    """

    job_name: str
    output_uri: str
    sagemaker: dict[str, Any]
    champion_arn: str | None = None
    champion_note: str | None = None


class MetricSummary(FmopsModel):
    """Headline metrics of one model on the test split (per-class numbers and intervals live in evaluation.json).

    Classification: accuracy, f1_macro, f1_weighted, precision_macro, recall_macro. The other tasks carry their own
    metrics as extra fields (numbers only): multilabel subset_accuracy, hamming_loss, f1_micro, f1_macro,
    f1_samples; summarization rouge1, rouge2, rougeL, rougeLsum; qa exact_match, f1 (0-100); chat both sets.
    ``getattr(summary, name)`` reads any of them; absent ones are left out of the dump.
    """

    model_config = ConfigDict(extra="allow", defer_build=True)

    accuracy: float | None = None
    f1_macro: float | None = None
    f1_weighted: float | None = None
    precision_macro: float | None = None
    recall_macro: float | None = None

    @model_validator(mode="after")
    def _numbers_only(self) -> MetricSummary:
        for name, value in (self.__pydantic_extra__ or {}).items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"metric {name!r} must be a number, not {type(value).__name__}")
            self.__pydantic_extra__[name] = float(value)  # type: ignore[index]
        return self

    @model_serializer(mode="wrap")
    def _present_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        return {name: value for name, value in dumped.items() if value is not None}

    def values(self) -> dict[str, float]:
        """Every metric this summary holds."""
        return {name: float(value) for name, value in self.model_dump().items()}


class PairedTest(FmopsModel):
    """The fine-tuned model against another model on the same test examples (``baseline``: base or champion).

    Koehn's paired bootstrap of the gate metric: ``delta`` = fine-tuned minus baseline, its 95% interval, and the
    one-sided p-value that the fine-tuned model is not better. Classification adds McNemar's two-sided test on
    per-example correctness (``fmops.metrics.stats.mcnemar``); the other tasks have no McNemar fields (None) and
    are ``significant`` when the interval of ``delta`` excludes 0. ``verdict``: the result in plain words.
    """

    baseline: Literal["base", "champion"]
    baseline_only_correct: int | None = None
    finetuned_only_correct: int | None = None
    mcnemar_p_value: float | None = None
    mcnemar_method: str | None = None
    metric: MetricName
    delta: float
    delta_ci: list[float]
    bootstrap_p_value: float
    significant: bool
    verdict: str

    @field_validator("delta_ci")
    @classmethod
    def _two_bounds(cls, value: list[float]) -> list[float]:
        if len(value) != 2:
            raise ValueError(f"must be [low, high], got {len(value)} values")
        return value


class EvaluationResult(FmopsModel):
    """Output of "Compute metrics" / "Evaluate Bedrock model" ($.evaluation).

    ``champion_metrics``/``champion_arn``: the current champion evaluated on the same test split (None when there
    is none); ``paired_tests``: ``finetuned_vs_base`` and, with a champion, ``finetuned_vs_champion``.
    Confidence intervals, per-class scores and confusion matrices are in evaluation.json (``evaluation_uri``).
    """

    metric: MetricName
    base_metrics: MetricSummary
    finetuned_metrics: MetricSummary
    test_count: int
    evaluation_uri: str
    report_uri: str
    champion_arn: str | None = None
    champion_metrics: MetricSummary | None = None
    paired_tests: dict[str, PairedTest] = Field(default_factory=dict)


class ModelPackageRef(FmopsModel):
    """Output of "Register model" ($.model_package)."""

    model_package_group_name: str
    model_package_arn: str
    version: int | None = None
    created: bool = True


class GateResult(FmopsModel):
    """Output of "Quality gate" ($.gate)."""

    passed: bool
    reason: str
    metric: MetricName
    value: float
    threshold: float
    champion_arn: str | None = None
    champion_value: float | None = None


class ApprovalDecision(FmopsModel):
    """The task-token output sent by the approval API ($.approval)."""

    decision: Literal["approved", "rejected"]
    approver: str
    reason: str
    decided_at: str


class ApprovalRequested(FmopsModel):
    """Return value of the request-approval Lambda (the state's result is the token's output instead)."""

    run_id: str
    requested_at: str
    expires_at: int


class DeploymentResult(FmopsModel):
    """Output of "Deploy model" ($.deployment) and of "Check provisioned throughput"."""

    backend: Backend
    endpoint_name: str
    endpoint_config_name: str | None = None
    model_name: str | None = None
    provisioned_model_arn: str | None = None
    status: str
    max_polls: int


class EndpointState(FmopsModel):
    """$.endpoint: name and status from DescribeEndpoint (or the provisioned throughput)."""

    name: str
    status: str


class RunCompletion(FmopsModel):
    """Output of "Complete run" ($.result)."""

    run_id: str
    status: Literal["SUCCEEDED"]
    endpoint_name: str
    model_package_arn: str
    finetuned_metrics: MetricSummary


class CatchError(FmopsModel):
    """What a Catch with ResultPath $.error stores."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)

    error: str = Field(default="States.Unknown", alias="Error")
    cause: str | None = Field(default=None, alias="Cause")


class FailureResult(FmopsModel):
    """Output of "Handle failure" ($.failure): what the Fail state surfaces."""

    run_id: str | None = None
    error: str
    cause: str
    failed_step: str | None = None


class IngestResult(FmopsModel):
    """Output of the ingest function."""

    started: bool = False
    duplicate: bool = False
    skipped: bool = False
    reason: str | None = None
    run_id: str | None = None
    execution_arn: str | None = None


# ------------------------------------------------------------------------------------------------ inputs


class Shard(FmopsModel):
    """A byte range ``[start, end)`` of the data set; it owns the lines that start inside it."""

    index: int = Field(ge=0)
    start: int = Field(ge=0)
    end: int = Field(gt=0)


class DataPlan(FmopsModel):
    """Output of "Plan data validation" ($.data_plan)."""

    size: int
    sharded: bool
    shards: list[Shard]


class ShardSummary(FmopsModel):
    """Output of "Validate shard": the full result is in S3 at ``uri``."""

    index: int
    uri: str
    lines: int
    error_count: int


class PlanDatasetEvent(FmopsModel):
    """Input of "Plan data validation"."""

    run: RunRequest


class ValidateShardEvent(FmopsModel):
    """Input of "Validate shard" (one item of the Distributed Map)."""

    run: RunRequest
    shard: Shard


class ValidateDatasetEvent(FmopsModel):
    """Input of "Validate and split dataset" (``shards``: the results of the sharded validation, if any)."""

    run: RunRequest
    shards: list[ShardSummary] | None = None


class PlanTrainingEvent(FmopsModel):
    """Input of "Plan training"."""

    run: RunRequest
    dataset: DatasetInfo


class PlanEvaluationEvent(FmopsModel):
    """Input of "Plan evaluation"."""

    run: RunRequest
    dataset: DatasetInfo
    training: TrainingResult


class EvaluateEvent(FmopsModel):
    """Input of "Compute metrics" (with evaluation_spec) and "Evaluate Bedrock model" (without)."""

    run: RunRequest
    dataset: DatasetInfo
    training: TrainingResult
    evaluation_spec: EvaluationSpec | None = None
    # Bedrock: the provisioned throughput that serves the custom model (a custom model is invoked through it).
    deployment: DeploymentResult | None = None


class RegisterModelEvent(FmopsModel):
    """Input of "Register model"."""

    run: RunRequest
    dataset: DatasetInfo
    training: TrainingResult
    evaluation: EvaluationResult


class QualityGateEvent(FmopsModel):
    """Input of "Quality gate"."""

    run: RunRequest
    evaluation: EvaluationResult
    model_package: ModelPackageRef


class RequestApprovalEvent(FmopsModel):
    """Input of "Request approval" (waitForTaskToken)."""

    task_token: str = Field(min_length=1)
    run: RunRequest
    evaluation: EvaluationResult
    model_package: ModelPackageRef
    gate: GateResult


class DeployModelEvent(FmopsModel):
    """Input of "Deploy model" and "Check provisioned throughput"."""

    run: RunRequest
    training: TrainingResult
    # Absent when Bedrock capacity is provisioned for evaluation, before registration and approval.
    model_package: ModelPackageRef | None = None
    approval: ApprovalDecision | None = None


class CompleteRunEvent(FmopsModel):
    """Input of "Complete run"."""

    run: RunRequest
    evaluation: EvaluationResult
    model_package: ModelPackageRef
    approval: ApprovalDecision
    deployment: DeploymentResult
    endpoint: EndpointState


class HandleFailureEvent(FmopsModel):
    """Input of "Handle failure": the whole workflow state, which may be partial or malformed."""

    run: dict[str, Any] | None = None
    error: CatchError = Field(default_factory=CatchError)
    data_plan: dict[str, Any] | None = None
    shard_results: list[Any] | None = None
    dataset: dict[str, Any] | None = None
    training_spec: dict[str, Any] | None = None
    training: dict[str, Any] | None = None
    evaluation_spec: dict[str, Any] | None = None
    evaluation_job: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None
    model_package: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None
    approval: dict[str, Any] | None = None
    deployment: dict[str, Any] | None = None
    endpoint: dict[str, Any] | None = None
