"""PlanTrainingFunction (state "Plan training")."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fmops.aws.dynamodb import Table
from fmops.aws.s3 import S3Storage
from fmops.config import PlanTrainingSettings
from fmops.lifecycle.training import plan_training
from fmops.observability import logger, metrics, tracer
from fmops.schemas.base import parse
from fmops.schemas.steps import PlanTrainingEvent

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@lru_cache(maxsize=1)
def _deps() -> dict[str, Any]:
    settings = PlanTrainingSettings.from_env()
    return {
        "settings": settings,
        "runs": Table(settings.runs_table),
        "s3": S3Storage(kms_key_id=settings.kms_key_arn),
    }


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(PlanTrainingEvent, event, "plan training input")
    return plan_training(request.run, request.dataset, **_deps()).model_dump(mode="json")
