"""PlanTuningFunction (HPO state machine, state "Plan tuning")."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fmops.aws.dynamodb import Table
from fmops.config import CommonSettings
from fmops.errors import RequestValidationError
from fmops.lifecycle.tuning import plan_tuning
from fmops.observability import logger, metrics, tracer
from fmops.schemas.base import parse
from fmops.schemas.jobs import CreateTrainingJobRequest
from fmops.schemas.tuning import PlanTuningEvent

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@lru_cache(maxsize=1)
def _deps() -> dict[str, Any]:
    settings = CommonSettings.from_env()
    return {"stack_name": settings.stack_name, "runs": Table(settings.runs_table)}


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(PlanTuningEvent, event, "plan tuning input")
    if request.training_spec.sagemaker is None:
        raise RequestValidationError(
            "plan tuning input: field 'training_spec': the planned training job is not a SageMaker one "
            "(tuning runs SageMaker training jobs only)",
            field="training_spec",
        )
    training = parse(CreateTrainingJobRequest, request.training_spec.sagemaker, "planned training job")
    return plan_tuning(request.run, training, **_deps()).model_dump(mode="json")
