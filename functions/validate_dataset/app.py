"""ValidateDatasetFunction (state "Validate and split dataset")."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fmops.aws.s3 import S3Storage
from fmops.config import CommonSettings
from fmops.lifecycle.dataset import validate_dataset
from fmops.observability import logger, metrics, tracer
from fmops.schemas.base import parse
from fmops.schemas.steps import ValidateDatasetEvent

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@lru_cache(maxsize=1)
def _deps() -> dict[str, Any]:
    settings = CommonSettings.from_env()
    return {"settings": settings, "s3": S3Storage(kms_key_id=settings.kms_key_arn)}


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(ValidateDatasetEvent, event, "run request")
    return validate_dataset(request.run, shards=request.shards, **_deps()).model_dump(mode="json")
