"""RegisterModelFunction (state "Register model")."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fmops.aws.dynamodb import Table
from fmops.aws.s3 import S3Storage
from fmops.aws.sagemaker import SageMaker
from fmops.config import RegisterModelSettings
from fmops.lifecycle.registry import register_model
from fmops.observability import logger, metrics, tracer
from fmops.schemas.base import parse
from fmops.schemas.steps import RegisterModelEvent

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@lru_cache(maxsize=1)
def _deps() -> dict[str, Any]:
    settings = RegisterModelSettings.from_env()
    return {
        "settings": settings,
        "sagemaker": SageMaker(),
        "s3": S3Storage(kms_key_id=settings.kms_key_arn),
        "runs": Table(settings.runs_table),
    }


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(RegisterModelEvent, event, "register model input")
    return register_model(request, **_deps()).model_dump(mode="json")
