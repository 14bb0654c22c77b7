"""PlanEvaluationFunction (state "Plan evaluation")."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fmops.aws.sagemaker import SageMaker
from fmops.config import PlanEvaluationSettings
from fmops.lifecycle.evaluation import plan_evaluation
from fmops.observability import logger, metrics, tracer
from fmops.schemas.base import parse
from fmops.schemas.steps import PlanEvaluationEvent

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@lru_cache(maxsize=1)
def _deps() -> dict[str, Any]:
    # SageMaker: the champion (newest Approved package of the use case) is evaluated beside the new model.
    return {"settings": PlanEvaluationSettings.from_env(), "sagemaker": SageMaker()}


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(PlanEvaluationEvent, event, "plan evaluation input")
    spec = plan_evaluation(request.run, request.dataset, request.training, **_deps())
    return spec.model_dump(mode="json")
