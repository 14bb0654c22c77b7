"""Small helpers shared by the use cases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from fmops.schemas.run import RunRequest
from fmops.schemas.steps import MetricSummary

Clock = Callable[[], datetime]

STATUS_RUNNING = "RUNNING"
STATUS_REGISTERED = "REGISTERED"
STATUS_AWAITING_APPROVAL = "AWAITING_APPROVAL"
STATUS_APPROVED = "APPROVED"
STATUS_REJECTED = "REJECTED"
STATUS_DEPLOYING = "DEPLOYING"
STATUS_SUCCEEDED = "SUCCEEDED"
STATUS_FAILED = "FAILED"

CODE_KEY = "code/training/sourcedir.tar.gz"
# The metric lines train.py prints (training/fmops_training/metrics_log.py METRIC_NAMES, the same names in the same
# order: tests/unit/fmops/test_task_training_plan.py compares them). Each becomes a training job MetricDefinition.
METRIC_NAMES = (
    "train_loss",
    "learning_rate",
    "validation_loss",
    "validation_accuracy",
    "validation_f1_micro",
    "validation_perplexity",
    "tokens_per_second",
    "rank_train_loss",
    "rank_tokens_per_second",
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def run_tags(run: RunRequest, stack_name: str) -> list[dict[str, str]]:
    """Tags on every resource a run creates (API shape ``{"Key", "Value"}``)."""
    return [
        {"Key": "fmops:run-id", "Value": run.run_id},
        {"Key": "fmops:use-case", "Value": run.use_case},
        {"Key": "fmops:stack", "Value": stack_name},
    ]


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def metric_of(summary: MetricSummary, metric: str) -> float:
    return float(getattr(summary, metric))


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
