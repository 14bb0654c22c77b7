"""Domain errors.

The class names are the contract with the state machine: a Lambda error's ``errorType`` is the class name,
so ``statemachines/finetune.asl.json`` retries ``TransientAwsError`` and ``ResourceNotReadyError`` by name and
routes everything else to the failure path.
"""

from __future__ import annotations

from collections.abc import Sequence


class FmopsError(Exception):
    """Base class of every error fmops raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigurationError(FmopsError):
    """A required setting (environment variable) is missing or invalid."""


class RequestValidationError(FmopsError):
    """A request (run request, use-case config, API body, step input) is malformed."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class LocatedError(FmopsError):
    """An input problem at a 1-based position (``<unit> N``) and field: ``line 7: field 'label': reason``."""

    unit = "line"

    def __init__(self, reason: str, line: int | None = None, field: str | None = None) -> None:
        self.reason = reason
        self.line = line
        self.field = field
        where = []
        if line is not None:
            where.append(f"{self.unit} {line}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(": ".join([*where, reason]))


class DatasetValidationError(LocatedError):
    """A data set is malformed; the message names the 1-based line and the field when there is one."""


class TransientAwsError(FmopsError):
    """An AWS call failed for a reason that a retry can fix (throttling, 5xx, connection); retried."""


class AwsRequestError(FmopsError):
    """An AWS service refused a request for a reason that a retry will not fix."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class ResourceNotFoundError(FmopsError):
    """An AWS resource or record that the use case needs does not exist."""


class ResourceNotReadyError(FmopsError):
    """A resource exists but is not ready yet (an endpoint still updating...); retried."""


class EvaluationError(FmopsError):
    """The evaluation output is missing or malformed."""


class TuningFailedError(FmopsError):
    """A hyperparameter tuning job produced no usable model: no training job completed with an objective value."""


class QualityGateFailedError(FmopsError):
    """The fine-tuned model is below the threshold or below the current champion."""


class ApprovalNotFoundError(FmopsError):
    """No pending approval exists for the run (never requested, already handled, or expired)."""


class ApprovalAlreadyDecidedError(FmopsError):
    """Another decision for the same approval won the race."""


class NotAuthenticatedError(FmopsError):
    """The API request carries no caller identity (IAM auth is required)."""


class DeploymentError(FmopsError):
    """The model could not be deployed (an endpoint in a state that a retry will not fix...)."""


class UnknownModelError(FmopsError):
    """A base model that fmops has no data limits for; the message lists the model ids it knows."""

    def __init__(self, model_id: str, known: Sequence[str]) -> None:
        self.model_id = model_id
        self.known = tuple(known)
        super().__init__(
            f"unknown base model {model_id!r}: fmops has no data limits for it (known: {', '.join(self.known)})"
        )


class MetricInputError(LocatedError):
    """Rows given to ``fmops.metrics.compute_metrics`` are malformed: empty input, a missing field, a wrong type.

    ``line`` is the 1-based number of the offending row (None when the error is about the input as a whole).
    """

    unit = "row"
