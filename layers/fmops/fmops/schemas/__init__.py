"""Pydantic models: the run request, step inputs and outputs, job requests, API bodies."""

from fmops.schemas.base import FmopsModel, StrictModel, parse
from fmops.schemas.run import DatasetRef, RunOptions, RunRequest, SplitConfig, UseCaseConfig
from fmops.schemas.steps import (
    ApprovalDecision,
    DatasetInfo,
    DeploymentResult,
    EndpointState,
    EvaluationResult,
    EvaluationSpec,
    FailureResult,
    GateResult,
    IngestResult,
    MetricSummary,
    ModelPackageRef,
    RunCompletion,
    SplitCounts,
    TrainingResult,
    TrainingSpec,
)

__all__ = [
    "ApprovalDecision",
    "DatasetInfo",
    "DatasetRef",
    "DeploymentResult",
    "EndpointState",
    "EvaluationResult",
    "EvaluationSpec",
    "FailureResult",
    "FmopsModel",
    "GateResult",
    "IngestResult",
    "MetricSummary",
    "ModelPackageRef",
    "RunCompletion",
    "RunOptions",
    "RunRequest",
    "SplitConfig",
    "SplitCounts",
    "StrictModel",
    "TrainingResult",
    "TrainingSpec",
    "UseCaseConfig",
    "parse",
]
