"""PlanEvaluationFunction (state "Plan evaluation")."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fmops.config import PlanEvaluationSettings
from fmops.lifecycle.evaluation import plan_evaluation
from fmops.observability import logger, metrics, tracer
from fmops.schemas.base import parse
from fmops.schemas.steps import PlanEvaluationEvent

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@lru_cache(maxsize=1)
def _settings() -> PlanEvaluationSettings:
    return PlanEvaluationSettings.from_env()


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(PlanEvaluationEvent, event, "plan evaluation input")
    spec = plan_evaluation(request.run, request.dataset, request.training, settings=_settings())
    return spec.model_dump(mode="json")
