"""QualityGateFunction (state "Quality gate")."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fmops.aws.sagemaker import SageMaker
from fmops.config import CommonSettings
from fmops.lifecycle.registry import quality_gate
from fmops.observability import logger, metrics, tracer
from fmops.schemas.base import parse
from fmops.schemas.steps import QualityGateEvent

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@lru_cache(maxsize=1)
def _deps() -> dict[str, Any]:
    return {"settings": CommonSettings.from_env(), "sagemaker": SageMaker()}


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(QualityGateEvent, event, "quality gate input")
    return quality_gate(request, **_deps()).model_dump(mode="json")
